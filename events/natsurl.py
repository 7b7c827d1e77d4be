"""NATS URLs carry a user's password (issue 13 item 5): never log one as it is."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-z]+://)(?P<user>[^:@/,]*)(?::[^@/,]*)?@")


def redacted(url: str) -> str:
    """`nats://relay:secret@host:4223` → `nats://relay:***@host:4223` (every server of a list)."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url)
