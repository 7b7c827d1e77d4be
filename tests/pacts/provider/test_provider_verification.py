"""Provider verification (issue 17): every consumer's committed pact in pacts/ is replayed
against a live numbering-service — gunicorn + grpcserver over mTLS on free ports — with the
provider states set through the test-only state-change endpoint. One test per consumer, so
a failure names the consumer; the verifier's output names the interaction.

PACT_BROKER_BASE_URL (optional, never required): when set, the pacts also come from the
broker (docs/contracts.md); the committed files are always verified.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings
from pact import Verifier

import numbering.services.skeleton
from config import provider_states
from core.worm import provision_bucket
from grpc_server import servicer
from grpc_server.gen.numbering.v1 import numbering_pb2 as pb
from tests.api.conftest import make_token
from tests.conftest import _empty_tables
from tests.grpc_server.conftest import Pki, ThreadServer, tls_options
from tests.pacts.provider.live import PACTS_DIR, PROVIDER, LiveProvider, grpc_relay, outbox_producer, run_provider

CONSUMERS = [
    "sms-orchestrator",
    "routing-engine",
    "sender-id-registry",
    "customer-portal-bff",
    "billing-service",
    "regulator-portal-service",
]


@pytest.fixture(scope="module")
def live_provider(
    django_db_setup: Any,
    django_db_blocker: Any,
    s3_server: str,
    export_key_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveProvider]:
    bucket = "pact-exports"
    s3 = {
        "S3_ENDPOINT_URL": s3_server,
        "S3_ACCESS_KEY_ID": "test",
        "S3_SECRET_ACCESS_KEY": "test",
        "S3_MAX_ATTEMPTS": "1",
        "EXPORT_BUCKET": bucket,
        "SIGNING_PROVIDER": "local",
        "EXPORT_LOCAL_KEY_DIR": str(export_key_dir),
        "AUDIT_CHECKPOINTS": "0",
    }
    with django_db_blocker.unblock():
        _empty_tables()
        with override_settings(S3_ENDPOINT_URL=s3_server, S3_ACCESS_KEY_ID="test", S3_SECRET_ACCESS_KEY="test"):
            provision_bucket(bucket)
        try:
            with run_provider(tmp_path_factory.mktemp("pact-provider"), s3) as live:
                yield live
        finally:
            from django.db import connections

            for conn in connections.all():
                conn.close()
            _empty_tables()


def _pact_file(consumer: str) -> Path:
    return PACTS_DIR / f"{consumer}-{PROVIDER}.json"


def _tenant_of_http_interactions(consumer: str) -> str:
    """The tenant a consumer's REST calls act for: the tenant_id of its HTTP interactions' states."""
    pact = json.loads(_pact_file(consumer).read_text())
    tenants = {
        state["params"]["tenant_id"]
        for interaction in pact["interactions"]
        if interaction["type"] == "Synchronous/HTTP"
        for state in interaction.get("providerStates", [])
        if "tenant_id" in state.get("params", {})
    }
    assert len(tenants) == 1, f"{consumer}: its REST interactions must act for one tenant, found {tenants}"
    return tenants.pop()


def _bearer(consumer: str) -> str | None:
    """The token a consumer really sends: a tenant user's for the portal, the regulator
    portal's client-credentials token; none for consumers without REST interactions."""
    if consumer == "customer-portal-bff":
        return make_token("tenant.admin", _tenant_of_http_interactions(consumer), sub="portal-user")
    if consumer == "regulator-portal-service":
        return make_token("regulator.portal", sub="regulator-portal-service")
    return None


def verifier_for(consumer: str, live: LiveProvider) -> Verifier:
    verifier = Verifier(PROVIDER, host="127.0.0.1")
    verifier.add_transport(url=live.web_url)
    # gRPC calls (synchronous messages) go to the live server with the consumer's own CN;
    # events (asynchronous messages) come from the real service and its outbox row.
    relay = grpc_relay(live, consumer)

    def produce(name: str, metadata: dict[str, Any] | None) -> Any:
        metadata = metadata or {}
        return relay(name, metadata) if "request" in metadata else outbox_producer(name, metadata)

    verifier.message_handler(produce)
    verifier.state_handler(live.states_url, body=True)
    verifier.add_source(_pact_file(consumer))
    token = _bearer(consumer)
    if token:
        verifier.add_custom_header("Authorization", f"Bearer {token}")
    broker_source(verifier, consumer, os.environ)
    return verifier


def broker_source(verifier: Verifier, consumer: str, env: Mapping[str, str]) -> bool:
    """Honour a Pact Broker when one is configured (never required): also verify the
    consumer's pacts published there (PACT_BROKER_TOKEN / _USERNAME / _PASSWORD are read by
    pact-python), and publish the results when PACT_PROVIDER_VERSION names this build."""
    broker = env.get("PACT_BROKER_BASE_URL", "").strip()
    if not broker:
        return False
    verifier.broker_source(broker).filter_consumers(consumer)
    version = env.get("PACT_PROVIDER_VERSION", "").strip()
    if version:
        verifier.set_publish_options(version=version, branch=env.get("PACT_PROVIDER_BRANCH") or None)
    return True


def run_verification(consumer: str, live: LiveProvider) -> tuple[bool, str, dict[str, Any]]:
    verifier = verifier_for(consumer, live)
    try:
        verifier.verify()
        ok = True
    except RuntimeError:
        ok = False
    return ok, verifier.output(strip_ansi=True), verifier.results


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_provider_honours_the_pact_of(consumer: str, live_provider: LiveProvider) -> None:
    ok, output, results = run_verification(consumer, live_provider)
    assert ok, output
    assert f"Verifying a pact between {consumer} and {PROVIDER}" in output
    interactions = json.loads(_pact_file(consumer).read_text())["interactions"]
    assert results["result"] is True and len(interactions) >= 4


def test_renaming_a_field_the_billing_pact_uses_fails_naming_consumer_and_interaction(
    live_provider: LiveProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The break demo: a provider change that renames data.lease_id in the events billing
    reads must fail verification, and the output must say whose pact and which interaction."""
    real = numbering.services.skeleton.outbox_prepare  # the very function the services call

    def renamed(**kwargs: Any) -> Any:
        data = dict(kwargs["data"])
        if "lease_id" in data:
            data["lease_ref"] = data.pop("lease_id")
        return real(**{**kwargs, "data": data})

    monkeypatch.setattr("numbering.services.skeleton.outbox_prepare", renamed)
    ok, output, _ = run_verification("billing-service", live_provider)
    assert not ok
    assert f"Verifying a pact between billing-service and {PROVIDER}" in output
    assert "numbering.number.assigned.v1 for a long number" in output
    assert "$.data -> Actual map is missing the following keys: lease_id" in output
    assert "There were 6 pact failures" in output  # every billing event carries the lease id


def test_changing_a_validate_lease_reason_fails_the_orchestrators_pact(
    live_provider: LiveProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gRPC side of the break demo: a server that answers an expired lease with
    NOT_ASSIGNED instead of LEASE_EXPIRED (run in this process so the change can be made)
    fails sms-orchestrator's pact on exactly that interaction."""
    monkeypatch.setitem(servicer._REASONS, "LEASE_EXPIRED", pb.ValidateLeaseResponse.Reason.Value("NOT_ASSIGNED"))
    directory = live_provider.pki_dir
    pki = Pki(directory, directory / "ca.pem", directory / "server.pem", directory / "server.key")
    # This server never answers from its in-process lease cache (Redis and PostgreSQL, which
    # the provider state writes synchronously, still answer): the pact reuses one number across
    # interactions, and the state's invalidations reach the worker's listener asynchronously,
    # so a loaded CI box once saw the previous interaction's valid lease ($.valid true). What
    # this test breaks is the reason table, not the cache (tests/cache covers coherence).
    from numbering.lease_lookup import LeaseLookup

    local_answer = LeaseLookup._local_answer
    monkeypatch.setattr(LeaseLookup, "_local_answer", lambda self, c, t: (None, local_answer(self, c, t)[1]))
    server = ThreadServer(tls_options(pki)).start()
    try:
        changed = LiveProvider(live_provider.web_port, server.port, directory)
        ok, output, _ = run_verification("sms-orchestrator", changed)
    finally:
        server.stop()
    assert not ok
    assert f"Verifying a pact between sms-orchestrator and {PROVIDER}" in output
    assert "ValidateLease of a number whose lease has run out" in output
    assert "$.reason -> Expected 'NOT_ASSIGNED' (String) to be equal to 'LEASE_EXPIRED' (String)" in output
    assert "There were 1 pact failures" in output


def test_a_broker_is_honoured_only_when_configured() -> None:
    assert broker_source(Verifier(PROVIDER), "billing-service", {}) is False
    assert broker_source(Verifier(PROVIDER), "billing-service", {"PACT_BROKER_BASE_URL": "  "}) is False
    configured = {"PACT_BROKER_BASE_URL": "https://broker.example", "PACT_PROVIDER_VERSION": "abc123"}
    assert broker_source(Verifier(PROVIDER), "billing-service", configured) is True


# --- the state-change endpoint exists only when the test-only setting is on -----------------


@pytest.mark.django_db
def test_the_state_change_endpoint_is_absent_unless_enabled() -> None:
    assert settings.PACT_PROVIDER_STATES_ENABLED is False
    reply = Client().post("/_pact/provider-states", {"state": "an active tenant"}, content_type="application/json")
    assert reply.status_code == 404
    # Even if the route were reached, the view itself refuses while the setting is off.
    request = RequestFactory().post("/_pact/provider-states", b"{}", content_type="application/json")
    with pytest.raises(provider_states.Http404):
        provider_states.provider_states(request)


def test_production_refuses_the_provider_state_setting() -> None:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "NUMBERING_ENV": "production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "PACT_PROVIDER_STATES_ENABLED": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "PACT_PROVIDER_STATES_ENABLED must be off when NUMBERING_ENV=production" in proc.stderr


@pytest.mark.django_db
@override_settings(PACT_PROVIDER_STATES_ENABLED=True)
@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"not json", 400, "body: must be JSON"),
        (b"[]", 400, "body: must be a JSON object"),
        (b'{"state": "a unicorn"}', 400, "unknown provider state"),
        (b'{"state": "an active tenant", "params": []}', 400, "params: must be a JSON object"),
        (b'{"state": "an active tenant", "params": {}}', 409, "tenant_id: required"),
        (b'{"state": "an active tenant", "params": {"tenant_id": "nope"}}', 409, "tenant_id: must be a UUID"),
        (b'{"state": "an available number", "params": {"number": "+93750000001"}}', 409, "no demo MNO prefix"),
    ],
)
def test_bad_state_requests_are_refused_naming_the_field(body: bytes, status: int, detail: str) -> None:
    request = RequestFactory().post("/_pact/provider-states", body, content_type="application/json")
    reply = provider_states.provider_states(request)
    assert reply.status_code == status
    assert detail in json.loads(reply.content)["detail"]


@pytest.mark.django_db
@override_settings(PACT_PROVIDER_STATES_ENABLED=True)
def test_teardown_and_the_empty_state_change_nothing() -> None:
    for body in (b'{"state": "an active tenant", "action": "teardown"}', b'{"state": ""}'):
        request = RequestFactory().post("/_pact/provider-states", body, content_type="application/json")
        reply = provider_states.provider_states(request)
        assert (reply.status_code, json.loads(reply.content)) == (200, {})
