"""The open-loop lifecycle mix (issue 11 item 3): a load generator the benchmarks and the chaos
drills share. No Django here: it talks to the service as its callers do.

Open loop: operation i is due at start + i / rate, whatever happened to the ones before it, and
its latency is measured from that due time (no coordinated omission). A due operation finds a
free slot among `max_inflight`, or is counted as `shed` (the generator, not the service, was
the limit; a run with shed > 0 says so).

The mix (shares are configurable):
- ValidateLease over gRPC (mTLS CN sms-orchestrator): valid leases, the wrong tenant, unknown
  numbers; every answer is checked against what the dataset says (`wrong_answers`).
- Mutations over gRPC (CN customer-portal-bff, tenant-acting): Reserve / ExtendReservation
  (when the server has it) / Assign / Release on numbers each tenant owns exclusively in the
  dataset, so a CONFLICT on a Reserve is a false conflict (nobody else could hold it). An
  unknown outcome (UNAVAILABLE, DEADLINE_EXCEEDED) is retried with the same idempotency key.
- REST through gunicorn with tenant JWTs: available-number search, reserve-by-criteria, and a
  lease change (release of a number held).

`run_mix` returns a Report: per-operation P50/P95/P99, outcomes by code, the false-CONFLICT
rate, errors, the generator's CPU, and a per-second timeline the drills slice into before,
during and after a fault.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import requests
from google.rpc import error_details_pb2, status_pb2

from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from grpc_server.gen.numbering.v1 import numbering_pb2_grpc as pb_grpc

UNKNOWN_OUTCOME = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
SERVICE_FAILURES = {
    "UNAVAILABLE",
    "DEADLINE_EXCEEDED",
    "INTERNAL",
    "UNKNOWN",
    "DATABASE_UNAVAILABLE",
    "SERVICE_UNAVAILABLE",
}
VALIDATE_CN = "sms-orchestrator"
PORTAL_CN = "customer-portal-bff"


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Target:
    grpc_hot: str  # host:port that serves ValidateLease
    grpc_write: str  # host:port[,host:port...] of the mutation pool's replicas (grpc_hot when not split)
    web: str = ""  # http://host:port of gunicorn ("" = no REST share)
    certs: Path | None = None  # the dev PKI directory (None = plaintext)


@dataclass
class Dataset:
    """What the seed made: tenants (id, token), valid leases, and each tenant's own free numbers."""

    tenants: list[dict[str, str]]  # {"id", "token"}
    leases: list[tuple[str, str]]  # (number, tenant_id) ASSIGNED
    free: dict[str, list[str]]  # tenant_id -> AVAILABLE numbers only this tenant touches
    unknown: list[str]
    prefix: str = ""  # the numbers every tenant's reserve-by-criteria and search contend for

    @classmethod
    def load(cls, path: Path) -> Dataset:
        raw = json.loads(path.read_text())
        return cls(
            tenants=raw["tenants"],
            leases=[tuple(x) for x in raw["leases"]],  # type: ignore[misc]
            free=raw["free"],
            unknown=raw["unknown"],
            prefix=raw.get("prefix", ""),
        )


@dataclass
class Shares:
    validate: float = 0.90
    grpc_write: float = 0.07
    rest: float = 0.03  # searches, reservations by criteria, lease changes
    wrong_tenant: float = 0.10  # of the validations
    unknown: float = 0.05  # of the validations


@dataclass
class Sample:
    op: str
    outcome: str  # "OK" or a code (gRPC status name, domain code, HTTP status)
    due: float  # monotonic due time
    latency: float  # seconds from due to completion


@dataclass
class Report:
    rate: float
    duration: float
    offered: int = 0
    shed: int = 0
    samples: list[Sample] = field(default_factory=list)
    wrong_answers: int = 0
    reserve_attempts: int = 0
    false_conflicts: int = 0
    retries: int = 0
    unknown_outcomes: int = 0  # mutations whose outcome stayed unknown after every retry
    retry_refusals: list[dict[str, Any]] = field(default_factory=list)
    generator_cpu_s: float = 0.0
    wall_s: float = 0.0
    started: float = 0.0

    def by_op(self) -> dict[str, list[Sample]]:
        out: dict[str, list[Sample]] = defaultdict(list)
        for s in self.samples:
            out[s.op].append(s)
        return dict(sorted(out.items()))

    def summary(self) -> dict[str, Any]:
        ops = {}
        for op, rows in self.by_op().items():
            lat = [s.latency * 1000 for s in rows]
            ops[op] = {
                "n": len(rows),
                "p50_ms": round(percentile(lat, 50), 2),
                "p95_ms": round(percentile(lat, 95), 2),
                "p99_ms": round(percentile(lat, 99), 2),
                "outcomes": dict(Counter(s.outcome for s in rows).most_common()),
            }
        return {
            "rate": self.rate,
            "duration_s": self.duration,
            "offered": self.offered,
            "completed": len(self.samples),
            "shed": self.shed,
            "achieved_rps": round(len(self.samples) / self.wall_s, 1) if self.wall_s else 0,
            "wrong_answers": self.wrong_answers,
            "reserve_attempts": self.reserve_attempts,
            "false_conflicts": self.false_conflicts,
            "false_conflict_rate": round(self.false_conflicts / self.reserve_attempts, 4)
            if self.reserve_attempts
            else 0,
            "retries_same_key": self.retries,
            "unknown_outcomes": self.unknown_outcomes,
            "errors": sum(1 for s in self.samples if is_error(s.outcome)),
            "generator_cpu_s": round(self.generator_cpu_s, 2),
            "generator_cpu_per_request_ms": round(1000 * self.generator_cpu_s / max(1, len(self.samples)), 3),
            "ops": ops,
        }

    def window(self, start: float, end: float) -> Report:
        """The samples due within [start, end) seconds after the run began (drills: before/during/after)."""
        part = Report(rate=self.rate, duration=end - start, started=self.started, wall_s=end - start)
        part.samples = [s for s in self.samples if start <= s.due - self.started < end]
        return part


def is_error(outcome: str) -> bool:
    """Errors are failures of the service; refusals (a domain code, 4xx) are answers."""
    return outcome in SERVICE_FAILURES or outcome.startswith("EXCEPTION") or (outcome.isdigit() and int(outcome) >= 500)


def domain_code(exc: grpc.aio.AioRpcError) -> str:
    """The domain code (google.rpc.ErrorInfo.reason) of a refusal, else the gRPC status name."""
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return exc.code().name


def _creds(certs: Path | None, cn: str) -> grpc.ChannelCredentials | None:
    if certs is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=(certs / "ca.pem").read_bytes(),
        private_key=(certs / f"{cn}.key").read_bytes(),
        certificate_chain=(certs / f"{cn}.pem").read_bytes(),
    )


def _channel(address: str, certs: Path | None, cn: str) -> grpc.aio.Channel:
    options = [("grpc.use_local_subchannel_pool", 1), ("grpc.ssl_target_name_override", "localhost")]
    creds = _creds(certs, cn)
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)


class _Tenant:
    """One tenant's numbers as the generator last saw them (each number is in one list, or in flight)."""

    def __init__(self, tenant_id: str, token: str, free: list[str]) -> None:
        self.id, self.token = tenant_id, token
        self.free = list(free)
        self.reserved: list[tuple[str, str]] = []  # (number, reservation_id)
        self.assigned: list[str] = []


class Mix:
    def __init__(
        self,
        target: Target,
        data: Dataset,
        *,
        shares: Shares | None = None,
        channels: int = 4,
        max_inflight: int = 2000,
        timeout: float = 5.0,
        retries: int = 3,
        seed: int = 1,
    ) -> None:
        self.target, self.data, self.shares = target, data, shares or Shares()
        self.channels, self.max_inflight, self.timeout, self.retries = channels, max_inflight, timeout, retries
        self.rng = random.Random(seed)
        self.tenants = [_Tenant(t["id"], t["token"], data.free.get(t["id"], [])) for t in data.tenants]
        self.tenant_ids = [t.id for t in self.tenants]
        self.rest = ThreadPoolExecutor(max_workers=32, thread_name_prefix="mix-rest")
        self.local = threading.local()

    async def _open(self) -> None:
        t = self.target
        self.hot = [
            pb_grpc.NumberingServiceStub(_channel(t.grpc_hot, t.certs, VALIDATE_CN)) for _ in range(self.channels)
        ]
        # One or more mutation-pool replicas ("a,b"): each attempt picks one, as a client
        # balancing over a headless Service's pods does.
        self.write = [
            pb_grpc.NumberingServiceStub(_channel(address, t.certs, PORTAL_CN))
            for address in t.grpc_write.split(",")
            for _ in range(2)
        ]
        self.has_extend = hasattr(self.write[0], "ExtendReservation")

    # --- one operation each ---------------------------------------------------------------

    async def validate(self, report: Report) -> tuple[str, str]:
        r = self.rng.random()
        if r < self.shares.unknown or not self.data.leases:
            number, tenant, expect, op = (
                self.rng.choice(self.data.unknown),
                self.rng.choice(self.tenant_ids),
                "UNKNOWN_NUMBER",
                "validate.unknown",
            )
        elif r < self.shares.unknown + self.shares.wrong_tenant:
            number, owner = self.rng.choice(self.data.leases)
            tenant = self.rng.choice([t for t in self.tenant_ids if t != owner] or [owner])
            expect, op = "WRONG_TENANT", "validate.wrong_tenant"
        else:
            (number, tenant), expect, op = self.rng.choice(self.data.leases), "OK", "validate.valid"
        stub = self.rng.choice(self.hot)
        try:
            answer = await stub.ValidateLease(
                pb.ValidateLeaseRequest(number=number, tenant_id=tenant), timeout=self.timeout
            )
        except grpc.aio.AioRpcError as exc:
            return op, exc.code().name
        reason = pb.ValidateLeaseResponse.Reason.Name(answer.reason)
        if reason != expect:
            report.wrong_answers += 1
            return op, f"WRONG:{reason}"
        return op, "OK"

    async def _call(self, report: Report, method: str, request: Any) -> tuple[str, Any]:
        """A mutation, retried with the same idempotency key while its outcome is unknown."""
        seen: list[str] = []
        for attempt in range(self.retries + 1):
            try:
                return "OK", await getattr(self.rng.choice(self.write), method)(request, timeout=self.timeout)
            except grpc.aio.AioRpcError as exc:
                seen.append(domain_code(exc))
                if exc.code() in UNKNOWN_OUTCOME and attempt < self.retries:
                    report.retries += 1
                    await asyncio.sleep(min(1.0, 0.2 * (attempt + 1)))
                    continue
                code = seen[-1]
                if not attempt or code in SERVICE_FAILURES:
                    return code, None
                # A retry with the same key must replay the first outcome; a refusal after a
                # retry (say INVALID_TRANSITION: the first attempt had committed) is a duplicate
                # effect the idempotency key failed to prevent, and the drills look for it.
                report.retry_refusals.append(
                    {
                        "method": method,
                        "number": getattr(request, "number", ""),
                        "key": getattr(request, "idempotency_key", ""),
                        "attempts": seen,
                        "at": time.monotonic(),
                    }
                )
                return f"RETRY:{code}", None
        return "UNAVAILABLE", None  # pragma: no cover - the loop always returns

    async def grpc_write(self, report: Report) -> tuple[str, str]:
        tenant = self.rng.choice(self.tenants)
        key = uuid.uuid4().hex
        r = self.rng.random()
        if tenant.assigned and (r < 0.25 or not (tenant.free or tenant.reserved)):
            number = tenant.assigned.pop(self.rng.randrange(len(tenant.assigned)))
            code, _ = await self._call(
                report, "Release", pb.ReleaseRequest(number=number, tenant_id=tenant.id, idempotency_key=key)
            )
            if code != "OK" and not self._unknown(report, code):
                tenant.assigned.append(number)
            return "grpc.release", code
        if tenant.reserved and (r < 0.75 or not tenant.free):
            number, reservation = tenant.reserved.pop(self.rng.randrange(len(tenant.reserved)))
            if self.has_extend and r < 0.35:
                code, _ = await self._call(
                    report,
                    "ExtendReservation",
                    pb.ExtendReservationRequest(  # type: ignore[attr-defined]
                        number=number, tenant_id=tenant.id, ttl_seconds=900, idempotency_key=key
                    ),
                )
                if not self._unknown(report, code):
                    tenant.reserved.append((number, reservation))
                return "grpc.extend", code
            code, _ = await self._call(
                report,
                "Assign",
                pb.AssignRequest(number=number, tenant_id=tenant.id, reservation_id=reservation, idempotency_key=key),
            )
            if code == "OK":
                tenant.assigned.append(number)
            elif code not in ("NOT_FOUND", "INVALID_TRANSITION", "RESERVATION_EXPIRED") and not self._unknown(
                report, code
            ):
                tenant.reserved.append((number, reservation))
            return "grpc.assign", code
        if not tenant.free:
            return "grpc.reserve", "NO_FREE_NUMBER"
        number = tenant.free.pop()
        report.reserve_attempts += 1
        code, answer = await self._call(
            report,
            "Reserve",
            pb.ReserveRequest(number=number, tenant_id=tenant.id, ttl_seconds=600, idempotency_key=key),
        )
        if code == "OK":
            tenant.reserved.append((number, answer.reservation_id))
        elif code in ("CONFLICT", "NOT_AVAILABLE", "ABORTED"):
            report.false_conflicts += 1  # only this tenant ever touches this number
        else:
            self._unknown(report, code)
        return "grpc.reserve", code

    @staticmethod
    def _unknown(report: Report, code: str) -> bool:
        """An outcome still unknown after every retry: the number may or may not have changed,
        so the generator stops using it (reusing it would make a later refusal look like a
        duplicate effect)."""
        if is_error(code):
            report.unknown_outcomes += 1
            return True
        return False

    def _session(self) -> requests.Session:
        session = getattr(self.local, "session", None)
        if session is None:
            session = self.local.session = requests.Session()
        return session

    def _rest(self, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if method == "POST":
            headers["Idempotency-Key"] = uuid.uuid4().hex
        try:
            response = self._session().request(
                method, self.target.web + path, json=body, headers=headers, timeout=self.timeout
            )
        except requests.RequestException:
            return "EXCEPTION", None
        if response.status_code < 300:
            return "OK", response.json()
        try:
            return str(response.json().get("code") or response.status_code), None
        except ValueError:
            return str(response.status_code), None

    async def rest_op(self, report: Report) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        tenant = self.rng.choice(self.tenants)
        r = self.rng.random()
        if r < 0.5:
            prefix = self.data.prefix + str(self.rng.randrange(10)) if self.data.prefix else ""
            path = f"/api/tenant/v1/numbers/available/?limit=20&prefix={requests.utils.quote(prefix)}"
            code, _ = await loop.run_in_executor(self.rest, self._rest, "GET", path, tenant.token)
            return "rest.search", code
        if r < 0.8 or not tenant.assigned:
            report.reserve_attempts += 1
            code, body = await loop.run_in_executor(
                self.rest,
                self._rest,
                "POST",
                "/api/tenant/v1/reservations/",
                tenant.token,
                {"count": 1, "ttl_seconds": 600, "prefix": self.data.prefix},
            )
            if code == "OK":
                for row in body.get("results", []):
                    number = (row.get("number") or {}).get("number")
                    reservation = (row.get("reservation") or {}).get("reservation_id")
                    if number and reservation:
                        tenant.reserved.append((number, reservation))
            elif code == "CONFLICT":
                report.false_conflicts += 1  # criteria search with free numbers left: never a true conflict
            return "rest.reserve_criteria", code
        number = tenant.assigned.pop(self.rng.randrange(len(tenant.assigned)))
        code, _ = await loop.run_in_executor(
            self.rest,
            self._rest,
            "POST",
            f"/api/tenant/v1/numbers/{requests.utils.quote(number)}/release/",
            tenant.token,
            {},
        )
        if code != "OK" and not self._unknown(report, code):
            tenant.assigned.append(number)
        return "rest.release", code

    # --- the open loop ---------------------------------------------------------------------

    def _pick(self) -> Callable[[Report], Any]:
        r = self.rng.random()
        if r < self.shares.validate:
            return self.validate
        if r < self.shares.validate + self.shares.grpc_write or not self.target.web:
            return self.grpc_write
        return self.rest_op

    async def run(self, rate: float, duration: float, stop: threading.Event | None = None) -> Report:
        await self._open()
        report = Report(rate=rate, duration=duration)
        inflight = asyncio.Semaphore(self.max_inflight)
        tasks: set[asyncio.Task[None]] = set()
        cpu0, start = time.process_time(), time.monotonic()
        report.started = start

        async def one(op: Callable[[Report], Any], due: float) -> None:
            try:
                name, outcome = await op(report)
            except Exception as exc:  # noqa: BLE001 - a generator bug must not stop the load
                name, outcome = getattr(op, "__name__", "op"), f"EXCEPTION:{type(exc).__name__}"
            finally:
                inflight.release()
            report.samples.append(Sample(name, outcome, due, time.monotonic() - due))

        total = int(rate * duration)
        for i in range(total):
            if stop is not None and stop.is_set():
                break
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            report.offered += 1
            if inflight.locked():
                report.shed += 1
                continue
            await inflight.acquire()
            task = asyncio.create_task(one(self._pick(), due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks, timeout=self.timeout * (self.retries + 2))
        report.wall_s = time.monotonic() - start
        report.generator_cpu_s = time.process_time() - cpu0
        self.rest.shutdown(wait=False)
        return report


def warm(target: Target, data: Dataset, concurrency: int = 32) -> int:
    """Validate every lease of the dataset once, through the hot pool: each worker's cache and
    Redis then hold them (a drill that says "cache hits keep answering" needs them cached).
    Returns how many answered OK."""

    async def go() -> int:
        stubs = [pb_grpc.NumberingServiceStub(_channel(target.grpc_hot, target.certs, VALIDATE_CN)) for _ in range(4)]
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int, number: str, tenant: str) -> bool:
            async with gate:
                try:
                    answer = await stubs[i % len(stubs)].ValidateLease(
                        pb.ValidateLeaseRequest(number=number, tenant_id=tenant), timeout=10
                    )
                except grpc.aio.AioRpcError:
                    return False
                return bool(answer.valid)

        results = await asyncio.gather(*(one(i, n, t) for i, (n, t) in enumerate(data.leases * 2)))
        return sum(results) // 2

    return asyncio.run(go())


def run_mix(target: Target, data: Dataset, rate: float, duration: float, **kw: Any) -> Report:
    """Run the mix on a fresh event loop (a drill calls this from a thread)."""
    stop = kw.pop("stop", None)
    return asyncio.run(Mix(target, data, **kw).run(rate, duration, stop=stop))


def process_cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes and their live children, from /proc (Linux)."""
    tick = float(resource.getpagesize() and __import__("os").sysconf("SC_CLK_TCK"))
    total = 0.0
    seen: set[int] = set()
    stack = list(pids)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            stack.extend(int(c) for c in children)
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return total
