"""What an import run tells its caller: the outcome, and the refusal that stops a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from contracts.models import InventoryImport

S = InventoryImport.Status


class Refusal(Exception):
    """The file, its signature or its rows are refused; nothing is imported."""


@dataclass
class ImportOutcome:
    import_id: int
    status: str
    message: str
    mode: str
    committed: bool = False
    noop: bool = False
    dry_run: bool = False
    total: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    key_fingerprint: str = ""
    report: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Committed, a no-op re-import, or a dry run that the chosen mode would commit."""
        return self.status in (S.COMMITTED, S.ALREADY_IMPORTED) or (self.dry_run and self.status == S.VERIFIED)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def outcome_of(imp: InventoryImport, message: str, **kw: Any) -> ImportOutcome:
    return ImportOutcome(
        import_id=imp.pk,
        status=imp.status,
        message=message,
        mode=imp.mode,
        total=imp.total_rows,
        accepted=imp.accepted_count,
        rejected=imp.rejected_count,
        duplicates=imp.duplicate_count,
        key_fingerprint=imp.key_fingerprint,
        report=imp.report,
        **kw,
    )


def dry_outcome(imp: InventoryImport, message: str, *, ok: bool) -> ImportOutcome:
    outcome = outcome_of(imp, message, dry_run=True)
    if not ok:
        outcome.status = S.REJECTED  # what a real run would do; the record stays VERIFIED
    return outcome
