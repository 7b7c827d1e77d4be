"""The call guards (grpc_server.interceptors.CallGuard) without a server: the unary guard and
the stream guard bind the caller's deadline and answer a failure through the one mapping
(failure_of), so a stream ends exactly as a unary call would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from django.db import DataError, OperationalError

from core import errors, request_context
from grpc_server.interceptors import CallGuard, failure_of, item_error


class FakeContext:
    def __init__(self, remaining: float) -> None:
        self.remaining = remaining
        self.aborted: tuple[grpc.StatusCode, str, Any] | None = None

    def invocation_metadata(self) -> tuple[()]:
        return ()

    def time_remaining(self) -> float:
        return self.remaining

    async def abort(self, code: grpc.StatusCode, details: str, trailing_metadata: Any = ()) -> None:
        self.aborted = (code, details, trailing_metadata)
        raise grpc.aio.AbortError()


def _stream_guard(behaviour: Any) -> Any:
    return CallGuard(permissions={}, tls=False)._guard_stream("ValidateLeaseStream", behaviour)


async def _drain(guarded: Any, context: FakeContext) -> list[Any]:
    async def requests() -> AsyncIterator[None]:
        yield None

    return [r async for r in guarded(requests(), context)]


def test_the_stream_guard_binds_the_streams_deadline_for_every_wait_inside_it() -> None:
    """A database wait inside a stream item asks time_left(): it must see the stream's
    deadline, as a unary call's wait sees the call's (ADR 1504)."""

    async def behaviour(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for _ in requests:
            yield request_context.time_left()

    assert asyncio.run(_drain(_stream_guard(behaviour), FakeContext(remaining=7.5))) == [
        pytest.approx(7.5 - request_context.DEADLINE_MARGIN_SECONDS)
    ]


@pytest.mark.parametrize(
    ("exc", "code", "reason"),
    [
        (OperationalError("server closed the connection"), grpc.StatusCode.UNAVAILABLE, "DATABASE_UNAVAILABLE"),
        (DataError("value too long"), grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (errors.ValidationError("number: bad", field="number"), grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR"),
        (RuntimeError("boom"), grpc.StatusCode.INTERNAL, "INTERNAL"),
    ],
)
def test_a_failed_stream_ends_with_the_status_a_unary_call_gets(exc: Exception, code: Any, reason: str) -> None:
    """One mapping for both guards and the items: a database outage that ends a stream is
    UNAVAILABLE (retryable), not INTERNAL."""

    async def failing_stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        async for _ in requests:
            raise exc
        yield None  # pragma: no cover - makes this an async generator

    async def failing_call(request: Any, context: Any) -> Any:
        raise exc

    stream_context, unary_context = FakeContext(5), FakeContext(5)
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(_drain(_stream_guard(failing_stream), stream_context))
    unary = CallGuard(permissions={}, tls=False)._guard("ValidateLease", failing_call)
    with pytest.raises(grpc.aio.AbortError):
        asyncio.run(unary(object(), unary_context))
    assert stream_context.aborted is not None and unary_context.aborted is not None
    assert stream_context.aborted[:2] == unary_context.aborted[:2]
    assert stream_context.aborted[0] == code
    failure = failure_of(exc, "test")
    assert (failure.code, failure.reason) == (code, reason)
    item = item_error(exc, "ValidateLeases")
    assert (item.code, item.reason) == (code.name, reason)
    assert item.field == ("number" if isinstance(exc, errors.DomainError) else "")
