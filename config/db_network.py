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
TCP_USER_TIMEOUT_MS_BOUNDS = (1_000, 600_000)  # what DATABASE_TCP_USER_TIMEOUT_MS may be


def tcp_user_timeout_ms(raw: str | None) -> int:
    """DATABASE_TCP_USER_TIMEOUT_MS for a process without settings (the drills' forwarder),
    held to the bounds the settings enforce; unset = the default."""
    if raw is None or not raw.strip():
        return DEFAULT_TCP_USER_TIMEOUT_MS
    low, high = TCP_USER_TIMEOUT_MS_BOUNDS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"DATABASE_TCP_USER_TIMEOUT_MS={raw!r} must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise ValueError(f"DATABASE_TCP_USER_TIMEOUT_MS={value} must be from {low} to {high}")
    return value
