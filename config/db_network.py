"""The keepalive probes on PostgreSQL sessions (ADR 1504), in one table.

The settings give them to libpq (the client's side) and, through `options`, to the server
for its socket of each session. The chaos drills' network forwarder (bench/chaos/netfault.py)
probes its client side with the same numbers, so a partition looks the same through it.
No Django here: the drill runner imports it without settings.
"""

from __future__ import annotations

KEEPALIVE_IDLE_SECONDS = 5
KEEPALIVE_INTERVAL_SECONDS = 2
KEEPALIVE_COUNT = 3
DEFAULT_TCP_USER_TIMEOUT_MS = 10_000  # DATABASE_TCP_USER_TIMEOUT_MS when unset
