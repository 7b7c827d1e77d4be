"""ValidateLeases (batch) and ValidateLeaseStream against the live server (issue 11 item 4,
ADR 1110): the same answers as ValidateLease, the same permissions, backpressure, deadlines."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest

from config.provider_states import move_lease_end
from core import clock
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.servicer import BATCH_LIMIT, NumberingServicer
from numbering.lease_lookup import LeaseAnswer
from numbering.lifecycle import State
from tests.grpc_server.conftest import as_platform
from tests.grpc_server.test_rpcs import error_of
from tests.numbering.helpers import number_in

Reason = pb.ValidateLeaseResponse.Reason


def _unary(stub: Any, number: str, tenant_id: str) -> tuple[Any, ...]:
    request = pb.ValidateLeaseRequest(number=number, tenant_id=tenant_id)
    try:
        return ("ok", stub.ValidateLease(request, timeout=10).SerializeToString(deterministic=True))
    except grpc.RpcError:
        code, reason, metadata = error_of(stub.ValidateLease, request, timeout=10)
        return ("error", code.name, reason, metadata.get("field", ""))


def _item(response: pb.ValidateLeaseResponse, error: pb.ValidateLeaseItemError, has_response: bool) -> tuple[Any, ...]:
    if has_response:
        return ("ok", response.SerializeToString(deterministic=True))
    return ("error", error.code, error.reason, error.field)


@pytest.fixture
def dataset(alice: Any, bob: Any) -> list[tuple[str, str]]:
    leased = as_platform(lambda: number_in(State.ASSIGNED, alice))
    expired = as_platform(lambda: number_in(State.ASSIGNED, alice))
    available = as_platform(lambda: number_in(State.AVAILABLE, alice))
    past = clock.now() - timedelta(minutes=5)
    move_lease_end(expired.number, past)
    a, b = str(alice.id), str(bob.id)
    return [
        (leased.number, a),  # valid
        (leased.number, b),  # wrong tenant
        (expired.number, a),  # lease expired
        (available.number, a),  # not assigned
        ("+93791234000", a),  # unknown
        ("x", a),  # malformed number
        (leased.number, ""),  # missing tenant
        (leased.number, "not-a-uuid"),  # malformed tenant
    ]


def _stream(stub: Any, items: list[tuple[str, str]], timeout: float = 10) -> dict[str, Any]:
    requests = (
        pb.ValidateLeaseStreamRequest(correlation_id=f"c{i}", number=n, tenant_id=t) for i, (n, t) in enumerate(items)
    )
    return {r.correlation_id: r for r in stub.ValidateLeaseStream(requests, timeout=timeout)}


def _settled_unary(stub: Any, dataset: list[tuple[str, str]]) -> list[tuple[Any, ...]]:
    """The unary answers to the dataset, once the cache-sync has seen the expired lease (an
    older cached entry may answer until then)."""
    expired = pb.ValidateLeaseRequest(number=dataset[2][0], tenant_id=dataset[2][1])
    deadline = time.monotonic() + 5
    while stub.ValidateLease(expired, timeout=10).reason != Reason.Value("LEASE_EXPIRED"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return [_unary(stub, n, t) for n, t in dataset]


def test_batch_and_stream_answer_exactly_as_the_unary_call(grpc_server: Any, connect: Any, dataset: Any) -> None:
    stub = connect(grpc_server, "sms-orchestrator")
    unary = _settled_unary(stub, dataset)
    kinds = [u[0] if u[0] == "error" else Reason.Name(pb.ValidateLeaseResponse.FromString(u[1]).reason) for u in unary]
    assert kinds == ["OK", "WRONG_TENANT", "LEASE_EXPIRED", "NOT_ASSIGNED", "UNKNOWN_NUMBER", "error", "error", "error"]
    assert [u[3] for u in unary[5:]] == ["number", "tenant_id", "tenant_id"]

    batch = stub.ValidateLeases(
        pb.ValidateLeasesRequest(items=[pb.ValidateLeaseRequest(number=n, tenant_id=t) for n, t in dataset]),
        timeout=10,
    )
    assert [_item(r.response, r.error, r.HasField("response")) for r in batch.results] == unary

    # Twice, so the second pass answers from the warm caches, still identically.
    for _ in range(2):
        streamed = _stream(stub, dataset)
        assert sorted(streamed) == sorted(f"c{i}" for i in range(len(dataset)))
        got = [streamed[f"c{i}"] for i in range(len(dataset))]
        assert [_item(r.response, r.error, r.HasField("response")) for r in got] == unary


def test_batch_over_the_limit_is_refused_naming_the_field_and_the_limit(
    grpc_server: Any, connect: Any, alice: Any
) -> None:
    stub = connect(grpc_server, "routing-engine")
    items = [pb.ValidateLeaseRequest(number="+93791234000", tenant_id=str(alice.id))] * (BATCH_LIMIT + 1)
    code, reason, metadata = error_of(stub.ValidateLeases, pb.ValidateLeasesRequest(items=items), timeout=10)
    assert (code, reason, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_ERROR", {"field": "items"})
    with pytest.raises(grpc.RpcError) as raised:
        stub.ValidateLeases(pb.ValidateLeasesRequest(items=items), timeout=10)
    assert "at most 100" in raised.value.details()
    assert len(stub.ValidateLeases(pb.ValidateLeasesRequest(items=items[:BATCH_LIMIT]), timeout=10).results) == 100


@pytest.mark.parametrize(
    ("cn", "code"),
    [("billing-service", grpc.StatusCode.PERMISSION_DENIED), ("intruder", grpc.StatusCode.UNAUTHENTICATED)],
)
def test_callers_without_validate_lease_are_refused_batch_and_stream(
    grpc_server: Any, connect: Any, alice: Any, cn: str, code: grpc.StatusCode
) -> None:
    stub = connect(grpc_server, cn)
    item = pb.ValidateLeaseRequest(number="+93791234000", tenant_id=str(alice.id))
    assert error_of(stub.ValidateLeases, pb.ValidateLeasesRequest(items=[item]), timeout=10)[0] == code
    with pytest.raises(grpc.RpcError) as raised:
        _stream(stub, [("+93791234000", str(alice.id))])
    assert raised.value.code() == code


def test_a_long_stream_answers_every_correlation_id_once(grpc_server: Any, connect: Any, alice: Any) -> None:
    stub = connect(grpc_server, "routing-engine")
    n = as_platform(lambda: number_in(State.ASSIGNED, alice))
    items = [(n.number, str(alice.id)), ("+93791234000", str(alice.id)), ("bad", str(alice.id))] * 700
    streamed = _stream(stub, items)
    assert len(streamed) == len(items)
    assert {Reason.Name(streamed[f"c{i}"].response.reason) for i in range(0, len(items), 3)} == {"OK"}
    assert {streamed[f"c{i}"].error.field for i in range(2, len(items), 3)} == {"number"}


def test_the_deadline_ends_the_stream(grpc_server: Any, connect: Any, alice: Any) -> None:
    stub = connect(grpc_server, "sms-orchestrator")

    def slow() -> Iterator[pb.ValidateLeaseStreamRequest]:
        for i in itertools.count():
            yield pb.ValidateLeaseStreamRequest(correlation_id=str(i), number="+93791234000", tenant_id=str(alice.id))
            time.sleep(0.05)

    answered = 0
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as raised:
        for _ in stub.ValidateLeaseStream(slow(), timeout=0.6):
            answered += 1
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert answered > 0 and time.monotonic() - started < 3


class _HeldLookup:
    """A lookup whose answers wait for the test: shows how far the stream reads ahead."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = 0

    def answer_now(self, number: str, tenant_id: str) -> None:
        return None  # nothing is cached: every item waits

    async def validate(self, number: str, tenant_id: str) -> LeaseAnswer:
        self.started += 1
        await self.release.wait()
        return LeaseAnswer(False, "UNKNOWN_NUMBER", "local")


def test_the_stream_stops_reading_when_its_window_is_full() -> None:
    async def scenario() -> None:
        lookup = _HeldLookup()
        servicer = NumberingServicer(lookup=lookup, threads=None, stream_window=8)  # type: ignore[arg-type]
        consumed = 0

        async def requests() -> AsyncIterator[pb.ValidateLeaseStreamRequest]:
            nonlocal consumed
            for i in range(100):
                consumed += 1
                yield pb.ValidateLeaseStreamRequest(correlation_id=str(i), number="+93791234000", tenant_id="t")

        responses = servicer.ValidateLeaseStream(requests(), None)
        first = asyncio.ensure_future(responses.__anext__())
        await asyncio.sleep(0.2)
        assert lookup.started == 8 and consumed <= 9  # the window, plus the one read that waits for a slot
        lookup.release.set()
        ids = {(await first).correlation_id} | {r.correlation_id async for r in responses}
        assert ids == {str(i) for i in range(100)}

    asyncio.run(scenario())


def test_every_item_counts_as_a_validate_lease_answer_for_the_slis(
    grpc_server: Any, connect: Any, dataset: Any
) -> None:
    """The SLI rules add numbering_validate_lease_item_seconds{method="ValidateLease"} to the
    unary calls (ADR 1111): one observation per item, by its status, under its carrier."""
    from prometheus_client import REGISTRY

    stub = connect(grpc_server, "sms-orchestrator")

    def counts(rpc: str) -> dict[str, float]:
        return {
            code: REGISTRY.get_sample_value(
                "numbering_validate_lease_item_seconds_count", {"method": "ValidateLease", "rpc": rpc, "code": code}
            )
            or 0.0
            for code in ("OK", "INVALID_ARGUMENT")
        }

    def unary_calls() -> float:
        labels = {"method": "ValidateLease", "code": "OK"}
        return REGISTRY.get_sample_value("numbering_grpc_server_handling_seconds_count", labels) or 0.0

    before = {rpc: counts(rpc) for rpc in ("ValidateLeases", "ValidateLeaseStream")}
    calls = unary_calls()
    items = [pb.ValidateLeaseRequest(number=n, tenant_id=t) for n, t in dataset]
    stub.ValidateLeases(pb.ValidateLeasesRequest(items=items), timeout=10)
    _stream(stub, dataset)
    for rpc in before:
        added = {code: counts(rpc)[code] - before[rpc][code] for code in before[rpc]}
        assert added == {"OK": 5, "INVALID_ARGUMENT": 3}, rpc
    assert unary_calls() == calls, "an item is not a unary call"


# --- messages that carry items (ADR 1112) -------------------------------------------------------
def _items(dataset: list[tuple[str, str]], prefix: str = "i") -> list[pb.ValidateLeaseStreamRequest]:
    return [
        pb.ValidateLeaseStreamRequest(correlation_id=f"{prefix}{k}", number=n, tenant_id=t)
        for k, (n, t) in enumerate(dataset)
    ]


def test_a_message_with_items_gets_one_answer_message_like_the_unary_calls(
    grpc_server: Any, connect: Any, dataset: Any
) -> None:
    stub = connect(grpc_server, "sms-orchestrator")
    unary = _settled_unary(stub, dataset)
    number, tenant = dataset[0]
    messages = [
        pb.ValidateLeaseStreamRequest(correlation_id="m1", items=_items(dataset)),
        pb.ValidateLeaseStreamRequest(correlation_id="single", number=number, tenant_id=tenant),
        pb.ValidateLeaseStreamRequest(correlation_id="m2", items=_items(dataset[:3], "j")),
    ]
    got = {r.correlation_id: r for r in stub.ValidateLeaseStream(iter(messages), timeout=10)}
    assert sorted(got) == ["m1", "m2", "single"]
    m1, m2, single = got["m1"], got["m2"], got["single"]
    assert [a.correlation_id for a in m1.answers] == [f"i{k}" for k in range(len(dataset))]
    assert [_item(a.response, a.error, a.HasField("response")) for a in m1.answers] == unary
    assert [_item(a.response, a.error, a.HasField("response")) for a in m2.answers] == unary[:3]
    assert not (m1.HasField("response") or m1.HasField("error"))
    assert _item(single.response, single.error, single.HasField("response")) == unary[0] and not single.answers


def _item_request(alice: Any, **kw: Any) -> pb.ValidateLeaseStreamRequest:
    return pb.ValidateLeaseStreamRequest(correlation_id="x", number="+93791234000", tenant_id=str(alice.id), **kw)


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda a: {"items": [_item_request(a)] * (BATCH_LIMIT + 1)}, "items: at most 100 per message, got 101"),
        (lambda a: {"number": "+93791234000", "items": [_item_request(a)]}, "no number or tenant_id of its own"),
        (lambda a: {"items": [_item_request(a, items=[_item_request(a)])]}, "an item carries no items of its own"),
    ],
)
def test_a_message_with_bad_items_is_refused_alone_naming_the_rule(
    grpc_server: Any, connect: Any, alice: Any, build: Any, words: str
) -> None:
    stub = connect(grpc_server, "routing-engine")
    messages = [
        pb.ValidateLeaseStreamRequest(correlation_id="bad", **build(alice)),
        pb.ValidateLeaseStreamRequest(correlation_id="good", items=[_item_request(alice)] * BATCH_LIMIT),
    ]
    got = {r.correlation_id: r for r in stub.ValidateLeaseStream(iter(messages), timeout=10)}
    bad = got["bad"]
    assert (bad.error.code, bad.error.reason, bad.error.field) == ("INVALID_ARGUMENT", "VALIDATION_ERROR", "items")
    assert words in bad.error.message and not bad.answers
    assert [Reason.Name(a.response.reason) for a in got["good"].answers] == ["UNKNOWN_NUMBER"] * BATCH_LIMIT


class _SomeHeld:
    """Answers numbers ending in 1 only once released; the others at once (a local hit)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def answer_now(self, number: str, tenant_id: str) -> LeaseAnswer | None:
        return None if number.endswith("1") else LeaseAnswer(False, "UNKNOWN_NUMBER", "local")

    async def validate(self, number: str, tenant_id: str) -> LeaseAnswer:
        await self.release.wait()
        return LeaseAnswer(False, "NOT_ASSIGNED", "db")


def test_items_that_wait_and_items_that_do_not_are_answered_in_item_order() -> None:
    """The no-task fast path of `_items` (ADR 1112) keeps the order of a batch and of a
    message's items when only some items wait."""

    async def scenario() -> None:
        lookup = _SomeHeld()
        servicer = NumberingServicer(lookup=lookup, threads=None)  # type: ignore[arg-type]
        numbers = [f"+9379123400{d}" for d in (0, 1, 2, 1, 0)]
        batch = asyncio.ensure_future(
            servicer.ValidateLeases(
                pb.ValidateLeasesRequest(items=[pb.ValidateLeaseRequest(number=n, tenant_id="t") for n in numbers]),
                None,
            )
        )
        await asyncio.sleep(0.05)
        assert not batch.done()  # two items still wait
        lookup.release.set()
        reasons = [Reason.Name(r.response.reason) for r in (await batch).results]
        assert reasons == ["UNKNOWN_NUMBER", "NOT_ASSIGNED", "UNKNOWN_NUMBER", "NOT_ASSIGNED", "UNKNOWN_NUMBER"]

        lookup.release.clear()

        async def requests() -> AsyncIterator[pb.ValidateLeaseStreamRequest]:
            items = [
                pb.ValidateLeaseStreamRequest(correlation_id=str(i), number=n, tenant_id="t")
                for i, n in enumerate(numbers)
            ]
            yield pb.ValidateLeaseStreamRequest(correlation_id="m", items=items)

        responses = servicer.ValidateLeaseStream(requests(), None)
        first = asyncio.ensure_future(responses.__anext__())
        await asyncio.sleep(0.05)
        assert not first.done()
        lookup.release.set()
        message = await first
        assert [a.correlation_id for a in message.answers] == ["0", "1", "2", "3", "4"]
        assert [Reason.Name(a.response.reason) for a in message.answers] == reasons

    asyncio.run(scenario())


class _TimingOut:
    """Nothing cached, and the wait for Redis/PostgreSQL ends in asyncio.timeout, which
    cancels the task it runs in (as redis-py's connect and read timeouts do)."""

    def answer_now(self, number: str, tenant_id: str) -> None:
        return None

    async def validate(self, number: str, tenant_id: str) -> LeaseAnswer:
        async with asyncio.timeout(0.05):
            await asyncio.sleep(5)
        raise AssertionError("unreachable")


def test_an_item_whose_wait_times_out_fails_alone_and_ends_nothing() -> None:
    """The 2026-12-02 CI failure: items that waited were started outside a task of their own,
    so a Redis connect timeout cancelled the batch or the stream instead of the item, and the
    call hung to its deadline. Each waiting item now runs in its own task."""

    async def scenario() -> None:
        servicer = NumberingServicer(lookup=_TimingOut(), threads=None)  # type: ignore[arg-type]
        items = [pb.ValidateLeaseRequest(number=f"+9379123400{d}", tenant_id="t") for d in range(5)]
        batch = await asyncio.wait_for(servicer.ValidateLeases(pb.ValidateLeasesRequest(items=items), None), 2)
        assert [r.error.code for r in batch.results] == ["INTERNAL"] * 5

        async def requests() -> AsyncIterator[pb.ValidateLeaseStreamRequest]:
            yield pb.ValidateLeaseStreamRequest(correlation_id="one", number="+93791234000", tenant_id="t")
            stream_items = [pb.ValidateLeaseStreamRequest(correlation_id=str(i), number="+93791234001", tenant_id="t")
                            for i in range(3)]  # fmt: skip
            yield pb.ValidateLeaseStreamRequest(correlation_id="many", items=stream_items)

        async def collect() -> dict[str, Any]:
            return {r.correlation_id: r async for r in servicer.ValidateLeaseStream(requests(), None)}

        got = await asyncio.wait_for(collect(), 2)
        assert got["one"].error.code == "INTERNAL"
        assert [a.error.code for a in got["many"].answers] == ["INTERNAL"] * 3

    asyncio.run(scenario())
