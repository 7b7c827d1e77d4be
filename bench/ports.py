"""One way to pick a port for a process that binds it a moment later, for the benches, the
drills and the tests (each had its own copy; the copies that bound to 0 raced the kernel)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port a child process can bind a moment later. Taken below the kernel's ephemeral
    range: a port the kernel hands out (bind to 0) can be taken again by any outgoing
    connection before the child binds it, and a drill opens hundreds of them (a chaos run in
    CI lost its gRPC worker to "Address already in use" on its metrics port that way). Below
    that range only explicit binds compete, and this process never hands a port out twice."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    candidates = list(range(20000, max(20001, min(low, 32768))))
    random.shuffle(candidates)
    for port in candidates[:500]:
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:  # nothing free below the ephemeral range: the kernel's choice
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
