"""Who may publish the events we consume, and the proof (issue 13 item 5, ADR 1353).

Each consumed subject has exactly one publisher identity (compliance.> → compliance-service,
tenant.> → tenant-service). The publisher signs `subject + "\\n" + body` with HMAC-SHA256
under its key and sends the headers `Numbering-Publisher` and `Numbering-Signature` (hex).
The keys are EVENT_PUBLISHER_KEYS (JSON {identity: key}); NATS subject permissions
(deploy/nats/nats-server.conf) are the first line, this check the second: a message from
anyone who could publish on the subject but lacks the identity's key is refused.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings

PUBLISHER_HEADER = "Numbering-Publisher"
SIGNATURE_HEADER = "Numbering-Signature"

SUBJECT_PUBLISHERS: dict[str, str] = {
    "compliance.tenant.suspended.v1": "compliance-service",
    "tenant.deleted.v1": "tenant-service",
    "tenant.created.v1": "tenant-service",
    "tenant.updated.v1": "tenant-service",
}


def signature(key: str, subject: str, data: bytes) -> str:
    return hmac.new(key.encode(), subject.encode() + b"\n" + data, hashlib.sha256).hexdigest()


def signed_headers(identity: str, key: str, subject: str, data: bytes) -> dict[str, str]:
    """The headers a publisher adds (used by tests and publishing tools)."""
    return {PUBLISHER_HEADER: identity, SIGNATURE_HEADER: signature(key, subject, data)}


def publisher_problem(subject: str, data: bytes, headers: dict[str, str] | None) -> str | None:
    """Why this message is not from the subject's publisher (None when it is)."""
    if not settings.EVENT_SIGNATURES_REQUIRED:
        return None
    expected = SUBJECT_PUBLISHERS.get(subject)
    if expected is None:
        return f"publisher: no publisher is allowed on {subject!r}"
    headers = headers or {}
    claimed = headers.get(PUBLISHER_HEADER, "")
    if claimed != expected:
        return f"publisher: {subject} is published by {expected} only, not {claimed or 'an unnamed publisher'!r}"
    key = settings.EVENT_PUBLISHER_KEYS.get(expected)
    if not key:
        return f"publisher: no key configured for {expected} (EVENT_PUBLISHER_KEYS)"
    given = headers.get(SIGNATURE_HEADER, "")
    if not given or not hmac.compare_digest(given, signature(key, subject, data)):
        return f"publisher: the {SIGNATURE_HEADER} of {expected} does not verify over the subject and body"
    return None
