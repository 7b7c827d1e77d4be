"""Service behaviour beyond the transition table: versions, idempotency, quotas, cool-offs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core import errors, redis_client
from core.models import IdempotencyRecord, OutboxEvent
from numbering import services
from numbering.lifecycle import State
from numbering.models import Lease, Number, QuarantinePolicy, Reservation
from pools.models import Tenant
from tests.conftest import as_tenant
from tests.factories import InventoryPoolFactory, NumberFactory, ShortCodeFactory
from tests.numbering.helpers import OPS, counts, number_in

pytestmark = pytest.mark.django_db


def test_expected_version_mismatch_is_a_conflict_and_changes_nothing(alice: Any) -> None:
    number = NumberFactory()
    with pytest.raises(errors.Conflict) as refused:
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS, expected_version=7)
    assert refused.value.code == "CONFLICT" and refused.value.field == "expected_version"
    assert Number.objects.get(id=number.id).state == "AVAILABLE"
    assert counts(number) == (0, 0)


def test_matching_expected_version_succeeds(alice: Any) -> None:
    number = NumberFactory()
    result = services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS, expected_version=1)
    assert result.number["version"] == 2


def test_a_version_bump_that_left_the_state_unchanged_does_not_fail_a_reserve(alice: Any) -> None:
    number = NumberFactory()
    Number.objects.filter(id=number.id).update(version=5)  # e.g. a metadata change elsewhere
    result = services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS)
    assert result.number["state"] == "RESERVED" and result.number["version"] == 6


def test_reserve_accepts_any_number_format(alice: Any) -> None:
    number = NumberFactory(number="+93791112233")
    result = services.number_reserve(number="079 111 2233", tenant_id=alice.id, actor=OPS)
    assert result.number["number"] == number.number


def test_reserve_of_unknown_number_is_not_found(alice: Any) -> None:
    with pytest.raises(errors.NumberNotFound):
        services.number_reserve(number="+93790000001", tenant_id=alice.id, actor=OPS)


def test_reserve_with_a_malformed_number_names_the_field(alice: Any) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        services.number_reserve(number="=cmd|calc", tenant_id=alice.id, actor=OPS)
    assert refused.value.field == "number" and "not a valid number" in refused.value.message


def test_idempotent_replay_returns_the_first_result_and_writes_nothing(alice: Any) -> None:
    number = NumberFactory()
    actor = as_tenant(alice)
    first = services.number_reserve(number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="k1")
    before = counts(number)
    replay = services.number_reserve(number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="k1")
    assert replay.replayed and not first.replayed
    assert replay.to_dict() == first.to_dict()
    assert counts(number) == before
    assert Reservation.objects.filter(number=number).count() == 1


def test_same_idempotency_key_with_another_request_is_refused(alice: Any) -> None:
    a, b = NumberFactory(), NumberFactory()
    actor = as_tenant(alice)
    services.number_reserve(number=a.number, tenant_id=alice.id, actor=actor, idempotency_key="k2")
    with pytest.raises(errors.IdempotencyKeyReused):
        services.number_reserve(number=b.number, tenant_id=alice.id, actor=actor, idempotency_key="k2")
    assert Number.objects.get(id=b.id).state == "AVAILABLE"


def test_idempotency_keys_are_scoped_to_the_caller(alice: Any, bob: Any) -> None:
    a, b = NumberFactory(), NumberFactory()
    services.number_reserve(number=a.number, tenant_id=alice.id, actor=as_tenant(alice), idempotency_key="same")
    services.number_reserve(number=b.number, tenant_id=bob.id, actor=as_tenant(bob), idempotency_key="same")
    assert IdempotencyRecord.objects.filter(key="same").count() == 2


def test_a_refused_request_stores_no_idempotency_record(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    with pytest.raises(errors.InvalidTransition):
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS, idempotency_key="k3")
    assert not IdempotencyRecord.objects.filter(key="k3").exists()


def test_quota_per_kind_is_enforced(alice: Any) -> None:
    alice.tenant_pool.quota_msisdn = 1
    alice.tenant_pool.save()
    first, second = NumberFactory(), NumberFactory()
    services.number_reserve(number=first.number, tenant_id=alice.id, actor=OPS)
    with pytest.raises(errors.QuotaExceeded) as refused:
        services.number_reserve(number=second.number, tenant_id=alice.id, actor=OPS)
    assert refused.value.http_status == 429 and refused.value.grpc_status == "RESOURCE_EXHAUSTED"
    # Assigning what you already hold does not count twice.
    services.number_assign(number=first.number, tenant_id=alice.id, actor=OPS)


def test_a_number_outside_the_tenants_pools_is_not_available(alice: Any) -> None:
    other = NumberFactory(pool=InventoryPoolFactory(code="GOVERNMENT_RESERVED"))
    with pytest.raises(errors.NotAvailable):
        services.number_reserve(number=other.number, tenant_id=alice.id, actor=OPS)


def test_a_suspended_tenant_cannot_reserve(alice: Any) -> None:
    Tenant.objects.filter(id=alice.id).update(status="SUSPENDED")
    with pytest.raises(errors.TenantNotActive):
        services.number_reserve(number=NumberFactory().number, tenant_id=alice.id, actor=OPS)


def test_assign_of_another_tenants_reservation_is_wrong_tenant(alice: Any, bob: Any) -> None:
    number = number_in(State.RESERVED, alice)
    with pytest.raises(errors.WrongTenant) as refused:
        services.number_assign(number=number.number, tenant_id=bob.id, actor=OPS)
    assert refused.value.http_status == 403


def test_assign_after_the_reservation_expired_is_refused(alice: Any) -> None:
    number = number_in(State.RESERVED, alice, due=True)
    with pytest.raises(errors.ReservationExpired):
        services.number_assign(number=number.number, tenant_id=alice.id, actor=OPS)


def test_assign_with_a_stale_reservation_id_is_refused(alice: Any) -> None:
    number = number_in(State.RESERVED, alice)
    with pytest.raises(errors.ReservationExpired):
        services.number_assign(
            number=number.number, tenant_id=alice.id, actor=OPS, reservation_id="6f1c1d1e-0000-4000-8000-000000000000"
        )


def test_assign_creates_a_lease_with_pool_defaults_and_converts_the_reservation(alice: Any) -> None:
    number = number_in(State.RESERVED, alice)
    reservation = Reservation.objects.get(number=number, status="ACTIVE")
    result = services.number_assign(number=number.number, tenant_id=alice.id, actor=OPS, reservation_id=reservation.id)
    lease = Lease.objects.get(number=number, status="ACTIVE")
    assert lease.term_days == 30 and lease.auto_renew is True
    assert result.lease["lease_id"] == str(lease.id)
    assert Reservation.objects.get(id=reservation.id).status == "CONVERTED"


def test_extension_past_24_hours_from_the_first_reserve_is_refused_naming_the_cap(alice: Any) -> None:
    number = number_in(State.RESERVED, alice)
    Reservation.objects.filter(number=number).update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
    before = Number.objects.get(id=number.id)
    cap = Reservation.objects.get(number=number, status="ACTIVE").created_at + timedelta(hours=24)
    with pytest.raises(errors.ValidationError) as refused:
        services.number_extend_reservation(number=number.number, tenant_id=alice.id, actor=OPS, ttl_seconds=3600)
    assert refused.value.field == "ttl_seconds"
    assert cap.isoformat() in refused.value.message  # the caller learns the latest deadline allowed
    after = Number.objects.get(id=number.id)
    assert (after.version, after.reserved_until) == (before.version, before.reserved_until)


def test_extension_without_a_deadline_is_clamped_to_24_hours_from_the_first_reserve(alice: Any) -> None:
    number = number_in(State.RESERVED, alice)
    Reservation.objects.filter(number=number).update(created_at=timezone.now() - timedelta(hours=23, minutes=59))
    result = services.number_extend_reservation(number=number.number, tenant_id=alice.id, actor=OPS)
    reservation = Reservation.objects.get(number=number, status="ACTIVE")
    assert reservation.expires_at == reservation.created_at + timedelta(hours=24)
    assert result.number["reserved_until"] == reservation.expires_at.isoformat()


def test_extension_that_would_shorten_the_reservation_is_refused(alice: Any) -> None:
    number = number_in(State.RESERVED, alice)
    assert number.reserved_until is not None
    with pytest.raises(errors.ValidationError) as refused:
        services.number_extend_reservation(
            number=number.number, tenant_id=alice.id, actor=OPS, until=number.reserved_until - timedelta(seconds=1)
        )
    assert refused.value.field == "until"


def test_ttl_above_24_hours_is_refused_naming_the_field(alice: Any) -> None:
    with pytest.raises(errors.ValidationError) as refused:
        services.number_reserve(number=NumberFactory().number, tenant_id=alice.id, actor=OPS, ttl_seconds=86401)
    assert refused.value.field == "ttl_seconds"


@pytest.mark.parametrize(
    ("kind", "vanity", "reason", "actor_kind", "days"),
    [
        ("msisdn", False, "", "ops", 90),
        ("short", False, "", "ops", 30),
        ("short", True, "", "ops", 365),
        ("msisdn", False, "ASSIGNED_IN_ERROR", "ops", 0),
        ("msisdn", False, "ASSIGNED_IN_ERROR", "tenant", 90),
    ],
)
def test_release_cool_off_follows_the_quarantine_policy(
    alice: Any, kind: str, vanity: bool, reason: str, actor_kind: str, days: int
) -> None:
    alice.tenant_pool.inventory_pools.add(InventoryPoolFactory(code="STANDARD_SHORT_CODES", kind="SHORT_CODE"))
    factory = ShortCodeFactory if kind == "short" else NumberFactory
    number = number_in(State.ASSIGNED, alice, **({"vanity": vanity} if vanity else {})) if kind == "msisdn" else None
    if number is None:
        n = factory(vanity=vanity)
        services.number_assign(number=n.number, tenant_id=alice.id, actor=OPS)
        number = n
    actor = OPS if actor_kind == "ops" else as_tenant(alice)
    result = services.number_release(number=number.number, actor=actor, reason=reason)
    row = Number.objects.get(id=number.id)
    assert row.state == "QUARANTINED" and row.last_tenant_id == alice.id and row.last_disconnected_at
    assert abs((row.quarantine_until - row.state_changed_at) - timedelta(days=days)) < timedelta(seconds=1)
    assert result.lease["status"] == "RELEASED"


def test_compliance_recall_uses_the_compliance_cool_off_and_fraud_burns_the_number(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    services.number_recall(number=number.number, actor=OPS, reason="FRAUD")
    row = Number.objects.get(id=number.id)
    assert row.burned_at is not None
    assert (row.quarantine_until - row.state_changed_at).days == QuarantinePolicy.objects.get(case="COMPLIANCE").days


def test_test_numbers_have_no_cool_off(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice, is_test=True)
    services.number_release(number=number.number, actor=OPS)
    row = Number.objects.get(id=number.id)
    assert row.quarantine_until == row.state_changed_at


def test_quarantine_never_ends_early(alice: Any) -> None:
    number = number_in(State.QUARANTINED, alice)
    with pytest.raises(errors.InvalidTransition, match="never ended early"):
        services.number_end_quarantine(number=number.number)
    assert Number.objects.get(id=number.id).state == "QUARANTINED"


def test_tenants_cannot_recall_retire_or_reinstate(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    for fn in (services.number_recall, services.number_retire, services.number_reinstate):
        with pytest.raises(errors.ValidationError):
            fn(number=number.number, actor=as_tenant(alice))


def test_renewal_pushes_the_lease_by_its_term_and_refuses_suspended_tenants(alice: Any) -> None:
    number = number_in(State.ASSIGNED, alice)
    lease = Lease.objects.get(number=number, status="ACTIVE")
    services.number_renew(number=number.number, actor=OPS)
    renewed = Lease.objects.get(id=lease.id)
    assert renewed.expires_at == lease.expires_at + timedelta(days=lease.term_days) and renewed.renewals == 1
    Tenant.objects.filter(id=alice.id).update(status="SUSPENDED")
    with pytest.raises(errors.TenantNotActive):
        services.number_renew(number=number.number, actor=OPS)


def test_audit_and_outbox_record_actor_before_after_and_envelope(alice: Any) -> None:
    number = NumberFactory()
    services.number_reserve(number=number.number, tenant_id=alice.id, actor=as_tenant(alice))
    event = AuditEvent.objects.get(object_id=number.number)
    assert event.actor == f"tenant:{alice.id}:user-of-{alice.name.lower()}"
    assert event.before["state"] == "AVAILABLE" and event.after["number"]["state"] == "RESERVED"
    assert event.tenant_id == alice.id
    envelope = OutboxEvent.objects.get(aggregate_id=number.number).envelope
    assert set(envelope) == {"id", "type", "source", "time", "subject", "tenant_id", "sequence", "data"}
    assert envelope["source"] == "numbering-service" and envelope["subject"] == number.number
    assert envelope["tenant_id"] == str(alice.id) and envelope["sequence"] == 2


def test_a_replay_is_answered_from_redis_after_commit_and_from_postgres_without_it(
    alice: Any, django_capture_on_commit_callbacks: Any
) -> None:

    number = NumberFactory()
    actor = as_tenant(alice)
    with django_capture_on_commit_callbacks(execute=True):
        first = services.number_reserve(number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="r1")
    IdempotencyRecord.objects.filter(key="r1").delete()  # only Redis can answer now
    assert (
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="r1").to_dict()
        == first.to_dict()
    )
    with pytest.raises(errors.IdempotencyKeyReused):
        services.number_reserve(
            number=number.number, tenant_id=alice.id, actor=actor, idempotency_key="r1", ttl_seconds=60
        )
    redis_client.client().flushdb()
    other = NumberFactory()
    with django_capture_on_commit_callbacks(execute=False):
        second = services.number_reserve(number=other.number, tenant_id=alice.id, actor=actor, idempotency_key="r2")
    replay = services.number_reserve(number=other.number, tenant_id=alice.id, actor=actor, idempotency_key="r2")
    assert replay.replayed and replay.to_dict() == second.to_dict()


def test_the_lease_cache_is_written_after_commit_and_a_stale_writer_never_wins(
    alice: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from numbering import lease_cache

    number = NumberFactory()
    with django_capture_on_commit_callbacks(execute=True):
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS)
        result = services.number_assign(number=number.number, tenant_id=alice.id, actor=OPS)
    version, entry = lease_cache.read_entry(number.number)
    assert version == result.number["version"] and entry["state"] == "ASSIGNED"
    assert entry["tenant_id"] == str(alice.id) and entry["lease_id"] == result.lease["lease_id"]
    assert lease_cache.write_entry(number.number, version - 1, {"state": "AVAILABLE"}) is False
    assert lease_cache.read_entry(number.number)[1]["state"] == "ASSIGNED"


def test_a_conflict_is_counted_for_the_anomaly_detector(alice: Any) -> None:
    import time

    from numbering import anomaly

    number = NumberFactory()
    with pytest.raises(errors.Conflict):
        services.number_reserve(number=number.number, tenant_id=alice.id, actor=OPS, expected_version=9)
    minute = int(time.time() // 60)
    keys = [anomaly.counter_key("conflict", alice.id, m) for m in (minute - 1, minute)]
    assert sum(int(anomaly.client().get(k) or 0) for k in keys) == 1


def test_an_expired_idempotency_key_may_be_used_afresh_and_is_purged(alice: Any) -> None:
    from django.core.management import call_command

    from core import idempotency

    first, second = NumberFactory(), NumberFactory()
    actor = as_tenant(alice)
    services.number_reserve(number=first.number, tenant_id=alice.id, actor=actor, idempotency_key="old")
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    fresh = services.number_reserve(number=second.number, tenant_id=alice.id, actor=actor, idempotency_key="old")
    assert not fresh.replayed and fresh.number["number"] == second.number
    IdempotencyRecord.objects.filter(key="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    services.number_reserve(number=NumberFactory().number, tenant_id=alice.id, actor=actor, idempotency_key="kept")
    assert idempotency.purge_expired(batch=1) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["kept"]
    call_command("purge_idempotency_records")
