"""JWT bearer authentication for the REST APIs (DESIGN §3.2, §9; ADR 0400).

RS256 only: the algorithm is pinned before any key is looked up, so `alg: none`, HS256
(with the public key as an HMAC secret) and every other algorithm are refused. Keys come
from a JWKS (JWT_JWKS_URL, fetched and cached; or JWT_JWKS_FILE). exp, nbf, iss and aud
are checked, `sub` is required.

A token with a `tenant_id` is a tenant user: only its tenant roles count and the tenant
comes from the token, never from the URL or body. A token without `tenant_id` is staff or a
platform service: only its staff and service roles count.
"""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core import authz as roles
from core.actors import Actor
from core.request_context import set_tenant

ALGORITHM = "RS256"


@dataclass(frozen=True)
class Principal:
    """The caller of one request, as `request.user`."""

    subject: str
    roles: frozenset[str]
    tenant_id: uuid.UUID | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    is_authenticated = True
    is_anonymous = False

    @property
    def is_tenant(self) -> bool:
        return self.tenant_id is not None

    @property
    def actor(self) -> Actor:
        if self.tenant_id is not None:
            return Actor.tenant(self.subject, self.tenant_id, roles=self.roles)
        return Actor.user(self.subject, roles=self.roles)

    def __str__(self) -> str:
        return self.subject


class _KeySource:
    """The JWKS keys by kid, reloaded after JWT_JWKS_CACHE_SECONDS (or when the file changes).

    Issue 13 item 4: a token's kid is the caller's choice, so an unknown kid must not buy a
    fetch. Unknown kids are negatively cached (JWT_JWKS_NEGATIVE_CACHE_SECONDS); a refetch for
    an unknown kid happens at most once per JWT_JWKS_MIN_REFETCH_SECONDS; one fetch at a time;
    and the lock is never held during the fetch, so a token whose kid we know is answered
    from the current keys while a (slow) refetch runs. Only a process with no keys at all
    waits for the fetch in flight.
    """

    NEGATIVE_CACHE_MAX = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fetched = threading.Condition(self._lock)
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0
        self._origin: tuple[str, str, float] | None = None
        self._fetching = False
        self._last_attempt = -1e18
        self._unknown: dict[str, float] = {}  # kid -> monotonic time until which it is refused
        self.fetches = 0  # fetch attempts (tests and the metrics reader)

    def _origin_now(self) -> tuple[str, str, float]:
        if settings.JWT_JWKS_URL:
            return ("url", settings.JWT_JWKS_URL, 0.0)
        path = Path(settings.JWT_JWKS_FILE)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            mtime = -1.0
        return ("file", str(path), mtime)

    def _fetch(self, origin: tuple[str, str, float]) -> dict[str, Any]:
        kind, where, _ = origin
        if kind == "url":
            import urllib.request

            with urllib.request.urlopen(where, timeout=5) as response:  # noqa: S310 - https enforced in settings
                data = json.loads(response.read())
        else:
            data = json.loads(Path(where).read_text())
        keyset = jwt.PyJWKSet.from_dict(data)
        return {key.key_id or "": key for key in keyset.keys if key.key_type == "RSA"}

    def _plan(self, origin: tuple[str, str, float], kid: str | None, now: float) -> bool:
        """Under the lock: should this caller fetch? Marks the fetch as in flight if so."""
        current = origin == self._origin and bool(self._keys)
        stale = now - self._loaded_at > settings.JWT_JWKS_CACHE_SECONDS
        unknown = bool(kid) and kid not in self._keys
        if unknown and self._unknown.get(kid or "", 0.0) > now and current and not stale:
            return False  # refused recently: answer from the negative cache
        if self._fetching or not (not current or stale or unknown):
            return False
        if current and not stale and now - self._last_attempt < settings.JWT_JWKS_MIN_REFETCH_SECONDS:
            return False  # an unknown kid may trigger a refetch only this often
        self._fetching, self._last_attempt = True, now
        self.fetches += 1
        return True

    def get(self, kid: str | None) -> Any:
        origin = self._origin_now()
        error: Exception | None = None
        with self._lock:
            fetch = self._plan(origin, kid, time.monotonic())
        if fetch:
            keys: dict[str, Any] | None = None
            try:
                keys = self._fetch(origin)  # no lock held: the network may be slow
            except (OSError, ValueError, jwt.PyJWTError) as exc:
                error = exc
            with self._lock:
                self._fetching = False
                if keys is not None:
                    if origin != self._origin:
                        self._unknown.clear()
                    self._keys, self._origin, self._loaded_at = keys, origin, time.monotonic()
                self._fetched.notify_all()
        with self._lock:
            if not self._keys and self._fetching:  # nothing to answer from yet: wait for the first load
                self._fetched.wait_for(lambda: not self._fetching, timeout=10)
            keys_now = self._keys
            if kid and kid not in keys_now and keys_now:
                if len(self._unknown) >= self.NEGATIVE_CACHE_MAX:
                    self._unknown.clear()
                self._unknown.setdefault(kid, time.monotonic() + settings.JWT_JWKS_NEGATIVE_CACHE_SECONDS)
        if not keys_now:
            reason = f" ({error})" if error else ""
            raise exceptions.AuthenticationFailed(f"the token signing keys are unavailable{reason}")
        if kid:
            key = keys_now.get(kid)
        elif len(keys_now) == 1:
            key = next(iter(keys_now.values()))
        else:
            key = None
        if key is None:
            raise exceptions.AuthenticationFailed("the token's signing key (kid) is not trusted")
        return key.key


KEYS = _KeySource()


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip():
        raise exceptions.AuthenticationFailed("token claim 'sub' is required")
    raw_roles = claims.get("roles", [])
    if isinstance(raw_roles, str):
        raw_roles = raw_roles.split()
    if not isinstance(raw_roles, list) or not all(isinstance(r, str) for r in raw_roles):
        raise exceptions.AuthenticationFailed("token claim 'roles' must be a list of role names")
    tenant_claim = claims.get("tenant_id")
    if tenant_claim in (None, ""):
        return Principal(subject, frozenset(raw_roles) & frozenset(roles.PLATFORM_ROLES), None, claims)
    try:
        tenant_id = uuid.UUID(str(tenant_claim))
    except ValueError:
        raise exceptions.AuthenticationFailed("token claim 'tenant_id' is not a UUID") from None
    return Principal(subject, frozenset(raw_roles) & frozenset(roles.TENANT_ROLES), tenant_id, claims)


class _VerifiedTokens:
    """Tokens whose signature, algorithm, audience, issuer and required claims this process
    has verified, by their exact text (issue 11: RS256 verification and PyJWT's parsing were
    about 5 % of a search request). A hit is answered only while the key that verified it is
    still the key the JWKS names for its kid (a removed or rotated key misses and is checked
    in full), and only after the time checks run again: exp, nbf and iat against now with
    the leeway, as PyJWT makes them, and check_lifetime. Bounded, least recently used first
    out; the audience and issuer in force are part of the entry's key."""

    MAX = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str, str], tuple[dict[str, Any], str | None, Any]] = OrderedDict()

    @staticmethod
    def key_of(token: str) -> tuple[str, str, str]:
        return (token, str(settings.JWT_AUDIENCE), str(settings.JWT_ISSUER))

    def get(self, token: str) -> dict[str, Any] | None:
        key = self.key_of(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            return None
        claims, kid, verified_by = entry
        if KEYS.get(kid) is not verified_by:
            return None
        _check_times(claims)
        return dict(claims)

    def remember(self, token: str, claims: dict[str, Any], kid: str | None, key: Any) -> None:
        with self._lock:
            self._entries[self.key_of(token)] = (dict(claims), kid, key)
            while len(self._entries) > self.MAX:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


VERIFIED = _VerifiedTokens()


def _check_times(claims: dict[str, Any]) -> None:
    """PyJWT's exp/nbf/iat checks (claims already verified once, so the values are numbers),
    with the same refusals decode_token makes of PyJWT's errors, then check_lifetime."""
    now, leeway = time.time(), settings.JWT_LEEWAY_SECONDS
    if int(claims["exp"]) <= now - leeway:
        raise exceptions.AuthenticationFailed("the token has expired (exp)")
    for name in ("nbf", "iat"):
        if name in claims and int(claims[name]) > now + leeway:
            raise exceptions.AuthenticationFailed("the token is not valid yet (nbf/iat)")
    check_lifetime(claims, now)


def decode_token(token: str) -> dict[str, Any]:
    remembered = VERIFIED.get(token)
    if remembered is not None:
        return remembered
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise exceptions.AuthenticationFailed("the bearer token is not a well-formed JWT") from None
    if header.get("alg") != ALGORITHM:
        raise exceptions.AuthenticationFailed(
            f"token algorithm {header.get('alg')!r} is refused; only RS256 is accepted"
        )
    key = KEYS.get(header.get("kid"))
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=settings.JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise exceptions.AuthenticationFailed("the token has expired (exp)") from None
    except jwt.ImmatureSignatureError:
        raise exceptions.AuthenticationFailed("the token is not valid yet (nbf/iat)") from None
    except jwt.InvalidAudienceError:
        # Never echo what we expect: that is a hint for forging (issue 13 item 9).
        raise exceptions.AuthenticationFailed("the token audience (aud) is not accepted") from None
    except jwt.InvalidIssuerError:
        raise exceptions.AuthenticationFailed("the token issuer (iss) is not accepted") from None
    except jwt.InvalidSignatureError:
        raise exceptions.AuthenticationFailed("the token signature does not verify") from None
    except jwt.MissingRequiredClaimError as exc:
        raise exceptions.AuthenticationFailed(f"token claim {exc.claim!r} is required") from None
    except jwt.PyJWTError as exc:
        raise exceptions.AuthenticationFailed(f"the token is invalid ({exc})") from None
    check_lifetime(claims)
    VERIFIED.remember(token, claims, header.get("kid"), key)
    return claims


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_lifetime(claims: dict[str, Any], now: float | None = None) -> None:
    """exp (and iat when present) are NumericDate numbers, and a token lives at most
    JWT_MAX_LIFETIME_SECONDS: both `exp - iat` and `exp - now` (issue 13 item 9)."""
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise exceptions.AuthenticationFailed("token claim 'exp' must be a number (seconds since the epoch)")
    if iat is not None and not _numeric(iat):
        raise exceptions.AuthenticationFailed("token claim 'iat' must be a number (seconds since the epoch)")
    limit = settings.JWT_MAX_LIFETIME_SECONDS + settings.JWT_LEEWAY_SECONDS
    now = time.time() if now is None else now
    if exp - now > limit or (iat is not None and exp - iat > limit):
        raise exceptions.AuthenticationFailed(
            f"the token lives longer than the accepted maximum of {settings.JWT_MAX_LIFETIME_SECONDS} seconds"
        )


class JWTAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Principal, str] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <JWT>'")
        claims = decode_token(parts[1])
        principal = principal_from_claims(claims)
        set_tenant(principal.tenant_id)
        return principal, parts[1]

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="numbering-service"'


def issue_token(
    *, private_key_pem: bytes, kid: str, subject: str, role_names: list[str], tenant_id: str | None, ttl_seconds: int
) -> str:
    """Sign a token with the given key (the dev command and tests use this)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": subject,
        "roles": role_names,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_seconds,
        "jti": uuid.uuid4().hex,
    }
    if tenant_id:
        claims["tenant_id"] = tenant_id
    return jwt.encode(claims, _signing_key(private_key_pem), algorithm=ALGORITHM, headers={"kid": kid})


@functools.lru_cache(maxsize=8)
def _signing_key(private_key_pem: bytes) -> Any:
    """The parsed key, once per PEM: loading an RSA private key checks it, 57 ms a token on
    this VM against 0.9 ms for the rest of the signing (the dev command, the tests and the
    bench seeders mint tokens in numbers)."""
    return serialization.load_pem_private_key(private_key_pem, password=None)
