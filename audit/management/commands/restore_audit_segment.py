from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.archive import ArchiveError, read_archived_events
from core.worm import StorageError


class Command(BaseCommand):
    help = (
        "Print the archived audit events of one month (and optionally one number) as JSON lines, from"
        " segments verified against their signed manifests: the read path for disputes."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--period", required=True, help="the month, YYYY-MM")
        parser.add_argument("--number", default=None, help="only events of this object id (e.g. +93700000001)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            events = read_archived_events(period=options["period"], object_id=options["number"])
        except (ArchiveError, StorageError) as exc:
            raise CommandError(str(exc), returncode=1) from exc
        for event in events:
            self.stdout.write(json.dumps(event, sort_keys=True, ensure_ascii=False))
        self.stderr.write(f"{len(events)} archived event(s), segment verified")
