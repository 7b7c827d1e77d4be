"""Reads of the audit archive for other apps' adapters (the admin number page)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from audit.archive import ArchiveError, archived_through, read_archived_events
from audit.partitions import month_add
from core.worm import StorageError

# What a caller of archived_events_for catches: a segment that does not verify, or storage down.
ARCHIVE_UNREADABLE = (ArchiveError, StorageError)


def archived_until_month() -> datetime | None:
    """The first day of the newest archived month (None: nothing archived yet)."""
    end = archived_through()
    return month_add(end, -1) if end else None


def archived_events_for(object_id: str, *, period: str | None = None) -> list[dict[str, Any]]:
    """Archived events of one object, from verified segments (raises ArchiveError or
    StorageError when a segment does not verify or cannot be read)."""
    return read_archived_events(period=period, object_id=object_id)
