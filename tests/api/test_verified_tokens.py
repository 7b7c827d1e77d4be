"""Tokens this process verified are remembered by their exact text (core.api.auth.VERIFIED,
issue 11): a hit skips the RS256 check and PyJWT's parsing, never the time checks, and never
outlives the key that verified it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from django.test import override_settings
from rest_framework import exceptions

from core.api import auth
from core.api.auth import VERIFIED, decode_token
from tests.api.conftest import make_token


@pytest.fixture(autouse=True)
def _empty() -> Iterator[None]:
    VERIFIED.clear()
    yield
    VERIFIED.clear()


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each full verification (jwt.decode) the auth module makes."""
    made: list[str] = []
    real = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        made.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(auth.jwt, "decode", counted)
    return made


def test_a_token_is_verified_once_and_answered_from_memory_after(verifications: list[str]) -> None:
    token = make_token("numbering.admin")
    first = decode_token(token)
    again = decode_token(token)
    assert again == first and verifications == [token]
    again["sub"] = "changed by a caller"
    assert decode_token(token)["sub"] == first["sub"]  # callers get copies


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch, verifications: list[str]) -> None:
    token = make_token("numbering.admin", ttl=60)
    decode_token(token)
    later = time.time() + 61 + auth.settings.JWT_LEEWAY_SECONDS
    monkeypatch.setattr(auth.time, "time", lambda: later)
    with pytest.raises(exceptions.AuthenticationFailed, match=r"expired \(exp\)"):
        decode_token(token)
    assert verifications == [token]  # refused from memory, by the time check


def test_a_remembered_token_not_valid_yet_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    token = make_token("numbering.admin")
    claims = decode_token(token)
    earlier = claims["iat"] - auth.settings.JWT_LEEWAY_SECONDS - 5
    monkeypatch.setattr(auth.time, "time", lambda: earlier)
    with pytest.raises(exceptions.AuthenticationFailed, match="not valid yet"):
        decode_token(token)


def test_a_key_the_jwks_no_longer_names_is_not_trusted_from_memory(
    monkeypatch: pytest.MonkeyPatch, verifications: list[str]
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    token = make_token("numbering.admin")
    decode_token(token)
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    monkeypatch.setattr(auth.KEYS, "get", lambda kid: rotated)  # the same kid now names another key
    with pytest.raises(exceptions.AuthenticationFailed, match="signature does not verify"):
        decode_token(token)
    assert verifications == [token, token]  # checked in full again

    def gone(kid: Any) -> Any:
        raise exceptions.AuthenticationFailed("the token's signing key (kid) is not trusted")

    monkeypatch.setattr(auth.KEYS, "get", gone)
    with pytest.raises(exceptions.AuthenticationFailed, match="not trusted"):
        decode_token(token)


def test_another_audience_does_not_reuse_the_verification(verifications: list[str]) -> None:
    token = make_token("numbering.admin")
    decode_token(token)
    with override_settings(JWT_AUDIENCE="another-service"), pytest.raises(exceptions.AuthenticationFailed):
        decode_token(token)
    assert len(verifications) == 2


def test_one_changed_character_is_a_different_token(verifications: list[str]) -> None:
    token = make_token("numbering.admin")
    decode_token(token)
    head, body, signature = token.split(".")
    forged = f"{head}.{body}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    with pytest.raises(exceptions.AuthenticationFailed):
        decode_token(forged)
    assert verifications[-1] == forged


def test_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(VERIFIED, "MAX", 3)
    tokens = [make_token("numbering.admin", sub=f"user-{i}") for i in range(5)]
    for token in tokens:
        decode_token(token)
    assert len(VERIFIED._entries) == 3
    assert VERIFIED.get(tokens[0]) is None and VERIFIED.get(tokens[-1]) is not None
