"""NumberingService: a thin adapter from protobuf to numbering.services / lease_lookup.

Mutations act as `Actor.service(<client certificate CN>)` (platform RLS scope). A CN that
acts for a tenant (core.authz GrpcGrant) must name the tenant on every mutation and acts as
`Actor.service(cn, tenant_id)`: the holder guard then applies, and idempotency keys and audit
actors are scoped by CN and tenant. A platform CN takes the tenant from the request. The ORM is
synchronous: service calls run on the worker's DB thread pool, one unit of work each.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import grpc
from django.conf import settings
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Histogram

from core import errors, idempotency
from core.actors import Actor
from core.db_wait import DatabaseThreads, DatabaseWaitExpired
from core.formats import parse_uuid
from core.tenant_db import tenant_role
from grpc_server.context import current_caller, current_caller_acts_for_tenant
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc
from grpc_server.interceptors import LATENCY_BUCKETS, MALFORMED, item_error
from numbering import lease_lookup, services
from numbering.lease_lookup import LeaseAnswer, LeaseLookup

_REASONS = {
    name: pb.ValidateLeaseResponse.Reason.Value(name)
    for name in ("OK", "UNKNOWN_NUMBER", "NOT_ASSIGNED", "WRONG_TENANT", "LEASE_EXPIRED")
}
BATCH_LIMIT = 100  # ValidateLeases items per call (issue 11 item 4)
STREAM_WINDOW = 128  # ValidateLeaseStream requests in flight per stream before the server stops reading
_KINDS = {"MSISDN": pb.MSISDN, "SHORT_CODE": pb.SHORT_CODE}

VALIDATE_LATENCY = Histogram(
    "numbering_validate_lease_seconds",
    "ValidateLease latency by result and by the cache layer that answered (local, redis, db)",
    ["result", "cache"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1),
)
_validate_latency: dict[tuple[str, str], Any] = {}
# One ValidateLease answered as an item of another RPC, by its status: the SLIs count these
# beside the unary calls (ADR 1111). method is always "ValidateLease" (what was answered) so
# that one selector takes both series; rpc names the carrier.
ITEM_LATENCY = Histogram(
    "numbering_validate_lease_item_seconds",
    "ValidateLease answers given as items of ValidateLeases or ValidateLeaseStream, by status code",
    ["method", "rpc", "code"],
    buckets=LATENCY_BUCKETS,
)
_item_latency: dict[tuple[str, str], Any] = {}
# One item's answer: its response, or the error the unary call would have ended with.
ItemResult = tuple[pb.ValidateLeaseResponse | None, pb.ValidateLeaseItemError | None]
DB_WAIT_TIMEOUTS = Counter(
    "numbering_grpc_db_wait_timeouts_total",
    "gRPC calls answered UNAVAILABLE because PostgreSQL did not answer within the wait budget",
)


def timestamp(value: str | int | datetime | None) -> Timestamp | None:
    """From an ISO string, a datetime or epoch microseconds (lease_lookup's unit)."""
    if value is None:
        return None
    ts = Timestamp()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        ts.FromDatetime(value)
    else:
        ts.FromMicroseconds(value)
    return ts


def lease_message(lease: dict[str, Any] | None) -> pb.Lease | None:
    if not lease:
        return None
    return pb.Lease(
        lease_id=lease["lease_id"],
        tenant_id=lease["tenant_id"],
        starts_at=timestamp(lease.get("starts_at")),
        expires_at=timestamp(lease.get("expires_at")),
        auto_renew=bool(lease.get("auto_renew")),
    )


def number_message(snapshot: dict[str, Any]) -> pb.Number:
    return pb.Number(
        number=snapshot["number"],
        kind=_KINDS.get(snapshot["kind"], pb.NUMBER_KIND_UNSPECIFIED),
        state=pb.NumberState.Value(snapshot["state"]),
        operator_code=snapshot.get("operator_code") or "",
        vanity=bool(snapshot.get("vanity")),
        vanity_tier=snapshot.get("vanity_tier") or "",
        version=int(snapshot["version"]),
        tenant_id=snapshot.get("tenant_id") or "",
        reserved_until=timestamp(snapshot.get("reserved_until")),
        quarantine_until=timestamp(snapshot.get("quarantine_until")),
        lease=lease_message(snapshot.get("lease")),
    )


def validate_response(answer: LeaseAnswer) -> pb.ValidateLeaseResponse:
    return pb.ValidateLeaseResponse(
        valid=answer.valid,
        reason=_REASONS[answer.reason],
        lease_id=answer.lease_id,
        expires_at=timestamp(answer.expires_at),
        kind=_KINDS.get(answer.kind, pb.NUMBER_KIND_UNSPECIFIED),
        operator_code=answer.operator_code,
    )


def idempotency_key(field_value: str, context: grpc.aio.ServicerContext) -> str | None:
    """The request field or the `idempotency-key` metadata; both present must agree."""
    header = ""
    for key, value in context.invocation_metadata() or ():
        if key == "idempotency-key":
            header = value if isinstance(value, str) else value.decode()
    if field_value and header and field_value != header:
        raise errors.ValidationError(
            "idempotency_key: the request field and the idempotency-key metadata differ", field="idempotency_key"
        )
    key = field_value or header
    if key:
        idempotency.check_key(key)  # the one rule for a key's shape, the same as REST's
    return key or None


class NumberingServicer(pb_grpc.NumberingServiceServicer):
    def __init__(self, *, lookup: LeaseLookup, threads: DatabaseThreads, stream_window: int = STREAM_WINDOW) -> None:
        self._lookup = lookup
        self._threads = threads
        self._stream_window = stream_window
        # Answers repeat (same lease, same reason): build each response message once.
        self._responses: dict[LeaseAnswer, pb.ValidateLeaseResponse] = {}

    async def _db(self, fn: Callable[..., Any], /, **kwargs: Any) -> Any:
        """One unit of work on a database thread, waited for as core.db_wait says (at most
        GRPC_DB_WAIT_SECONDS on the database, never past the caller's deadline): a PostgreSQL
        that stops answering gets UNAVAILABLE (counted, retried by the shipped service config,
        replayed by the idempotency key if the work did commit after all), not a hung call the
        caller cancels (ADR 1504, ADR 1505)."""
        try:
            return await self._threads.run(settings.GRPC_DB_WAIT_SECONDS, _unit_of_work, fn, kwargs)
        except DatabaseWaitExpired as exc:
            DB_WAIT_TIMEOUTS.inc()
            raise errors.ServiceUnavailableError(
                f"the database did not answer in time ({exc}); the outcome is unknown:"
                " retry with the same idempotency key"
            ) from None

    @staticmethod
    def _actor(tenant_id: str = "") -> Actor:
        """The calling service; bound to the request's tenant when its CN acts for a tenant."""
        cn = current_caller.get()
        if not current_caller_acts_for_tenant.get():
            return Actor.service(cn)
        if not tenant_id:
            raise errors.ValidationError(
                f"tenant_id: required; {cn} acts for a tenant and must name it on every mutation", field="tenant_id"
            )
        return Actor.service(cn, tenant_id=parse_uuid(tenant_id, field="tenant_id"))

    @staticmethod
    def _platform_actor(method: str) -> Actor:
        """The interceptor's table already refuses a tenant-acting CN a platform-only method
        (core.authz refuses such a grant); this is the second line."""
        if current_caller_acts_for_tenant.get():
            raise errors.WrongTenant(f"{current_caller.get()} acts for a tenant; {method} is a platform action")
        return Actor.service(current_caller.get())

    async def ValidateLease(self, request: pb.ValidateLeaseRequest, context: Any) -> pb.ValidateLeaseResponse:
        return await self._validate(request.number, request.tenant_id)

    async def ValidateLeases(self, request: pb.ValidateLeasesRequest, context: Any) -> pb.ValidateLeasesResponse:
        """Up to BATCH_LIMIT validations in one call, answered in request order (ADR 1110)."""
        items = request.items
        if len(items) > BATCH_LIMIT:
            raise errors.ValidationError(
                f"items: at most {BATCH_LIMIT} per ValidateLeases call, got {len(items)}", field="items"
            )
        results = await self._items(items, "ValidateLeases")
        return pb.ValidateLeasesResponse(
            results=[pb.ValidateLeaseResult(response=response, error=error) for response, error in results]
        )

    async def ValidateLeaseStream(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
        """Validations as they come, answered as they complete (ADR 1110).

        At most `stream_window` requests are in flight: the reader stops reading when the
        window is full, so HTTP/2 flow control pushes back on the client. A bad item is
        answered with `error`; the call deadline (or the client's cancel) ends the stream,
        cancelling the reader and whatever is in flight."""
        window = asyncio.Semaphore(self._stream_window)
        answers: asyncio.Queue[pb.ValidateLeaseStreamResponse | None] = asyncio.Queue()
        in_flight: set[asyncio.Task[None]] = set()

        async def answer(correlation_id: str, number: str, tenant_id: str) -> None:
            try:
                response, error = await self._item(number, tenant_id, "ValidateLeaseStream")
                answers.put_nowait(
                    pb.ValidateLeaseStreamResponse(correlation_id=correlation_id, response=response, error=error)
                )
            finally:
                window.release()

        async def answer_items(request: pb.ValidateLeaseStreamRequest) -> None:
            """A message that carries items (ADR 1112): one answer message, items in order."""
            try:
                problem = _items_problem(request)
                if problem is not None:
                    cid, refused = request.correlation_id, item_error(problem, "ValidateLeaseStream")
                    answers.put_nowait(pb.ValidateLeaseStreamResponse(correlation_id=cid, error=refused))
                    return
                results = await self._items(request.items, "ValidateLeaseStream")
                answers.put_nowait(
                    pb.ValidateLeaseStreamResponse(
                        correlation_id=request.correlation_id,
                        answers=[
                            pb.ValidateLeaseStreamResponse(correlation_id=item.correlation_id, response=r, error=e)
                            for item, (r, e) in zip(request.items, results, strict=True)
                        ],
                    )
                )
            finally:
                window.release()

        async def read() -> None:
            try:
                async for request in requests:
                    await window.acquire()
                    if request is MALFORMED:
                        window.release()
                        answers.put_nowait(
                            pb.ValidateLeaseStreamResponse(
                                error=pb.ValidateLeaseItemError(
                                    code="INVALID_ARGUMENT",
                                    reason="VALIDATION_ERROR",
                                    message="the request is not a valid message",
                                )
                            )
                        )
                        continue
                    if request.items:
                        task = asyncio.ensure_future(answer_items(request))
                    else:
                        # A local-cache hit is answered here and costs no task. Only an item
                        # that waits (Redis, PostgreSQL) becomes one, and it waits in a task
                        # of its own: asyncio.timeout and friends cancel the current task.
                        now = self._now(request.number, request.tenant_id, "ValidateLeaseStream")
                        if now is not None:
                            window.release()
                            answers.put_nowait(
                                pb.ValidateLeaseStreamResponse(
                                    correlation_id=request.correlation_id, response=now[0], error=now[1]
                                )
                            )
                            continue
                        task = asyncio.ensure_future(answer(request.correlation_id, request.number, request.tenant_id))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                for _ in range(self._stream_window):  # the client half-closed: drain what is in flight
                    await window.acquire()
            finally:
                answers.put_nowait(None)

        reader = asyncio.create_task(read())
        try:
            while (response := await answers.get()) is not None:
                yield response
            await reader  # surfaces a failure of the request stream itself
        finally:
            reader.cancel()
            for task in list(in_flight):
                task.cancel()

    async def _items(self, items: Sequence[Any], method: str) -> list[ItemResult]:
        """Items concurrently, answered in their order. A local-cache hit is answered at once
        and costs no task; only an item that waits for Redis or PostgreSQL becomes one."""
        results: list[ItemResult | None] = [None] * len(items)
        waiting: list[tuple[int, asyncio.Future[Any]]] = []
        for i, item in enumerate(items):
            now = self._now(item.number, item.tenant_id, method)
            if now is not None:
                results[i] = now
                continue
            waiting.append((i, asyncio.ensure_future(self._item(item.number, item.tenant_id, method))))
        if waiting:
            values = await asyncio.gather(*(future for _, future in waiting))
            for (i, _), value in zip(waiting, values, strict=True):
                results[i] = value
        return cast("list[ItemResult]", results)  # every slot is filled by now

    def _now(self, number: str, tenant_id: str, method: str) -> ItemResult | None:
        """One item answered without waiting: from the local cache, or refused as malformed;
        None when it needs Redis or PostgreSQL (then `_item`, in a task of its own)."""
        started = time.perf_counter()
        try:
            answer = self._lookup.answer_now(number, tenant_id)
        except Exception as exc:  # noqa: BLE001 - answered as that item's error, as the unary guard would
            error = item_error(exc, method)
            _observe_item(method, error.code, started)
            return None, error
        if answer is None:
            return None
        response = self._respond(answer, started)
        _observe_item(method, "OK", started)
        return response, None

    async def _item(self, number: str, tenant_id: str, method: str) -> ItemResult:
        started = time.perf_counter()
        try:
            response, error, code = await self._validate(number, tenant_id), None, "OK"
        except Exception as exc:  # noqa: BLE001 - answered as that item's error, as the unary guard would
            response, error = None, item_error(exc, method)
            code = error.code
        _observe_item(method, code, started)
        return response, error

    async def _validate(self, number: str, tenant_id: str) -> pb.ValidateLeaseResponse:
        """The one validation of all three RPCs: LeaseLookup.validate, metrics, the response."""
        started = time.perf_counter()
        return self._respond(await self._lookup.validate(number, tenant_id), started)

    def _respond(self, answer: LeaseAnswer, started: float) -> pb.ValidateLeaseResponse:
        key = (answer.reason, answer.source)
        histogram = _validate_latency.get(key)
        if histogram is None:
            histogram = _validate_latency[key] = VALIDATE_LATENCY.labels(*key)
        histogram.observe(time.perf_counter() - started)
        response = self._responses.get(answer)
        if response is None:
            if len(self._responses) >= 100_000:
                self._responses.clear()
            response = self._responses[answer] = validate_response(answer)
        return response

    async def Lookup(self, request: pb.LookupRequest, context: Any) -> pb.LookupResponse:
        snapshot = await self._db(lease_lookup.number_detail, number=request.number)
        return pb.LookupResponse(number=number_message(snapshot))

    async def Reserve(self, request: pb.ReserveRequest, context: Any) -> pb.ReserveResponse:
        result = await self._db(
            services.number_reserve,
            number=request.number,
            tenant_id=request.tenant_id or None,
            actor=self._actor(request.tenant_id),
            ttl_seconds=request.ttl_seconds or None,
            expected_version=request.expected_version or None,
            idempotency_key=idempotency_key(request.idempotency_key, context),
        )
        reservation = result.reservation or {}
        return pb.ReserveResponse(
            number=number_message(result.number),
            reservation_id=reservation.get("reservation_id") or "",
            expires_at=timestamp(reservation.get("expires_at")),
        )

    async def ExtendReservation(
        self, request: pb.ExtendReservationRequest, context: Any
    ) -> pb.ExtendReservationResponse:
        result = await self._db(
            services.number_extend_reservation,
            number=request.number,
            tenant_id=request.tenant_id or None,
            actor=self._actor(request.tenant_id),
            ttl_seconds=request.ttl_seconds or None,
            until=request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None,
            expected_version=request.expected_version or None,
            idempotency_key=idempotency_key(request.idempotency_key, context),
        )
        reservation = result.reservation or {}
        return pb.ExtendReservationResponse(
            number=number_message(result.number),
            reservation_id=reservation.get("reservation_id") or "",
            expires_at=timestamp(reservation.get("expires_at")),
        )

    async def Assign(self, request: pb.AssignRequest, context: Any) -> pb.AssignResponse:
        result = await self._db(
            services.number_assign,
            number=request.number,
            tenant_id=request.tenant_id or None,
            actor=self._actor(request.tenant_id),
            lease_days=request.lease_days or None,
            auto_renew=request.auto_renew if request.HasField("auto_renew") else None,
            reservation_id=request.reservation_id or None,
            expected_version=request.expected_version or None,
            idempotency_key=idempotency_key(request.idempotency_key, context),
        )
        return pb.AssignResponse(number=number_message(result.number), lease=lease_message(result.lease))

    async def Release(self, request: pb.ReleaseRequest, context: Any) -> pb.ReleaseResponse:
        result = await self._db(
            services.number_release,
            number=request.number,
            tenant_id=request.tenant_id or None,
            actor=self._actor(request.tenant_id),
            reason=request.reason,
            expected_version=request.expected_version or None,
            idempotency_key=idempotency_key(request.idempotency_key, context),
        )
        return pb.ReleaseResponse(number=number_message(result.number))

    async def Recall(self, request: pb.RecallRequest, context: Any) -> pb.RecallResponse:
        result = await self._db(
            services.number_recall,
            number=request.number,
            actor=self._platform_actor("Recall"),
            reason=request.reason,
            expected_version=request.expected_version or None,
            idempotency_key=idempotency_key(request.idempotency_key, context),
        )
        return pb.RecallResponse(number=number_message(result.number))


class EmptyServicer(pb_grpc.NumberingServiceServicer):
    """The benchmark baseline: same server, interceptors and process model, no lookup."""

    _ANSWER = pb.ValidateLeaseResponse(valid=True, reason=pb.ValidateLeaseResponse.OK)

    async def ValidateLease(self, request: pb.ValidateLeaseRequest, context: Any) -> pb.ValidateLeaseResponse:
        return self._ANSWER


def _observe_item(method: str, code: str, started: float) -> None:
    key = (method, code)
    histogram = _item_latency.get(key)
    if histogram is None:
        histogram = _item_latency[key] = ITEM_LATENCY.labels("ValidateLease", method, code)
    histogram.observe(time.perf_counter() - started)


def _items_problem(request: pb.ValidateLeaseStreamRequest) -> errors.ValidationError | None:
    """Why a stream message with items is refused as a whole, or None (ADR 1112)."""
    if len(request.items) > BATCH_LIMIT:
        rule = f"at most {BATCH_LIMIT} per message, got {len(request.items)}"
    elif request.number or request.tenant_id:
        rule = "a message with items carries no number or tenant_id of its own"
    elif any(item.items for item in request.items):
        rule = "an item carries no items of its own"
    else:
        return None
    return errors.ValidationError(f"items: {rule}", field="items")


def _unit_of_work(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """A mutation for a tenant runs as the tenant role, as the tenant portal's requests do
    (ADR 1352); Lookup and the platform's calls run as the app role."""
    actor = kwargs.get("actor")
    if isinstance(actor, Actor) and actor.acts_for_tenant:
        with tenant_role():
            return lease_lookup.db_unit_of_work(fn, **kwargs)
    return lease_lookup.db_unit_of_work(fn, **kwargs)
