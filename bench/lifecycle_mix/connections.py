"""PostgreSQL connections per service process during the mix (issue 15 item 4: pool sizing).

Every process of the stack connects with its own `application_name` (PGAPPNAME, set by
stack.py), so pg_stat_activity says whose each connection is. A thread samples it every
100 ms. It counts how many connections each process holds open and how many are busy. Busy
means running a statement, or inside a transaction between two statements. Mean busy
connections = throughput × database time per request (Little's law); the P99 and the peak
size a pool.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from typing import Any

import psycopg

from bench.lifecycle_mix.mix import percentile

SQL = (
    "SELECT application_name, state, count(*) FROM pg_stat_activity"
    " WHERE datname = %s AND pid <> pg_backend_pid() GROUP BY 1, 2"
)
BUSY = {"active", "idle in transaction", "idle in transaction (aborted)"}


class ConnectionSampler(threading.Thread):
    def __init__(self, database: str, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.database, self.interval = database, interval
        self.stop_event = threading.Event()
        self.open: dict[str, list[int]] = defaultdict(list)
        self.busy: dict[str, list[int]] = defaultdict(list)
        self.samples = 0

    def run(self) -> None:
        admin = os.environ.get("DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            while not self.stop_event.wait(self.interval):
                rows = conn.execute(SQL, [self.database]).fetchall()
                open_now: dict[str, int] = defaultdict(int)
                busy_now: dict[str, int] = defaultdict(int)
                for app, state, count in rows:
                    name = app or "(unnamed)"
                    open_now[name] += count
                    if state in BUSY:
                        busy_now[name] += count
                for name in set(open_now) | set(self.open):
                    self.open[name].append(open_now.get(name, 0))
                    self.busy[name].append(busy_now.get(name, 0))
                self.samples += 1

    def stop(self) -> dict[str, dict[str, Any]]:
        self.stop_event.set()
        self.join(5)
        out: dict[str, dict[str, Any]] = {}
        for name in sorted(self.open):
            busy = [float(x) for x in self.busy[name]]
            out[name] = {
                "open_max": max(self.open[name]),
                "busy_mean": round(sum(busy) / len(busy), 2) if busy else 0.0,
                "busy_p99": percentile(busy, 99),
                "busy_max": max(busy) if busy else 0,
            }
        return out
