from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.checkpoints import audit_verify_with_checkpoints


class Command(BaseCommand):
    help = (
        "Verify the audit hash chains from the last signed checkpoint on WORM storage (--full: the archived"
        " segments and every hot event, against every checkpoint); exit 0 when clean (and store a new"
        " checkpoint), 1 naming the first break."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--no-checkpoint", action="store_true", help="verify only; do not write a new checkpoint")
        parser.add_argument(
            "--full",
            action="store_true",
            help="also verify every archived segment (signatures, hashes, links) and all hot events from the archive",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = audit_verify_with_checkpoints(write=not options["no_checkpoint"], full=options["full"])
        result = outcome.result
        for warning in outcome.warnings:
            self.stderr.write(f"WARNING: {warning}")
        if outcome.ok:
            if outcome.full:
                self.stdout.write(
                    f"audit archive OK: {outcome.archive_events} events in {outcome.archive_segments} segment(s)"
                )
            self.stdout.write(
                f"audit chain OK: {result.verified} events verified in {result.chains} chain(s)"
                f" from {outcome.started_from}"
            )
            self.stdout.write(f"checked against {outcome.checkpoints_checked} checkpoint(s)")
            if outcome.new_checkpoint:
                self.stdout.write(f"new checkpoint: {outcome.new_checkpoint}")
            return
        for b in result.breaks:
            self.stderr.write(f"audit chain BROKEN: chain {b.chain} at seq {b.seq}: {b.reason}")
        for c in outcome.checkpoint_breaks:
            where = f"chain {c.chain} at seq {c.seq}" if c.chain is not None else "checkpoint"
            self.stderr.write(f"audit chain BROKEN: {where} contradicts checkpoint {c.checkpoint}: {c.reason}")
        for a in outcome.archive_breaks:
            self.stderr.write(f"audit archive BROKEN: segment {a.partition}: {a.reason}")
        if outcome.archive_breaks:
            a = outcome.archive_breaks[0]
            raise CommandError(f"audit archive broken: segment {a.partition}: {a.reason}", returncode=1)
        if result.breaks:
            first = result.breaks[0]
            raise CommandError(
                f"audit chain broken: first break in chain {first.chain} at seq {first.seq} "
                f"({result.verified} events verified before it)",
                returncode=1,
            )
        c = outcome.checkpoint_breaks[0]
        if c.chain is None:
            raise CommandError(f"audit checkpoint {c.checkpoint} is not valid: {c.reason}", returncode=1)
        raise CommandError(
            f"audit chain broken: chain {c.chain} at seq {c.seq} contradicts checkpoint {c.checkpoint} ({c.reason}); "
            "the chain verifies on its own, so it was rewritten after that checkpoint",
            returncode=1,
        )
