"""The problem+json handler for every kind of failure, and the new services' input checks."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DataError, IntegrityError, OperationalError
from django.http import Http404
from django.utils import timezone
from rest_framework import exceptions

from core import errors
from core.actors import Actor
from core.api.errors import flatten_validation, problem_exception_handler
from numbering import selectors, services
from numbering.lifecycle import State
from numbering.models import Lease
from tests.conftest import as_tenant
from tests.numbering.helpers import OPS, number_in


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (Http404(), 404, "NOT_FOUND"),
        (DjangoPermissionDenied(), 403, "FORBIDDEN"),
        (exceptions.Throttled(wait=3), 429, "THROTTLED"),
        (exceptions.NotAcceptable(), 406, "NOT_ACCEPTABLE"),
        (OperationalError("server closed the connection"), 503, "UNAVAILABLE"),
        (IntegrityError("duplicate key"), 409, "CONFLICT"),
        (DataError("value out of range"), 400, "VALIDATION_ERROR"),
        (RuntimeError("bug"), 500, "INTERNAL"),
        (errors.QuotaExceeded("quota"), 429, "QUOTA_EXCEEDED"),
    ],
)
def test_every_failure_becomes_a_problem(exc: Exception, status: int, code: str) -> None:
    response = problem_exception_handler(exc, {})
    assert response.status_code == status
    assert response.data["code"] == code
    assert response.content_type == "application/problem+json"


def test_throttled_carries_retry_after() -> None:
    assert problem_exception_handler(exceptions.Throttled(wait=3), {})["Retry-After"] == "3"


def test_nested_validation_errors_name_every_field() -> None:
    detail = {"a": ["bad"], "b": {"c": ["worse"]}, "items": [{"x": ["nope"]}, {}], "non_field_errors": ["whole"]}
    fields = [e["field"] for e in flatten_validation(exceptions.ValidationError(detail).detail)]
    assert fields == ["a", "b.c", "items[0].x", "request"]


@pytest.mark.django_db
class TestServiceInputChecks:
    def test_reserve_matching_refuses_bad_input(self, alice: Any) -> None:
        with pytest.raises(errors.ValidationError, match="count"):
            services.number_reserve_matching(actor=as_tenant(alice), count=0)
        with pytest.raises(errors.ValidationError, match="ttl_seconds"):
            services.number_reserve_matching(actor=as_tenant(alice), count=1, ttl_seconds=-1)
        with pytest.raises(errors.ValidationError, match="tenant_id"):
            services.number_reserve_matching(actor=OPS, count=1)
        with pytest.raises(errors.ValidationError, match="kind"):
            services.number_reserve_matching(actor=OPS, count=1, tenant_id=alice.id, kind="FAX")
        with pytest.raises(errors.ValidationError, match="prefix"):
            services.number_reserve_matching(actor=OPS, count=1, tenant_id=alice.id, prefix="7a")

    def test_ops_reserve_matching_for_a_tenant(self, alice: Any) -> None:
        number_in(State.AVAILABLE, None, vanity=True, vanity_tier="GOLD")
        batch = services.number_reserve_matching(actor=OPS, count=1, tenant_id=alice.id, vanity=True, issuer="roshan")
        assert batch.results[0]["number"]["tenant_id"] == str(alice.id)

    def test_auto_renew_refusals(self, alice: Any) -> None:
        with pytest.raises(errors.ValidationError, match="lease_id"):
            services.lease_set_auto_renew(lease_id="x", auto_renew=True, actor=OPS)
        with pytest.raises(errors.ValidationError, match="auto_renew"):
            services.lease_set_auto_renew(lease_id=uuid.uuid4(), auto_renew="yes", actor=OPS)  # type: ignore[arg-type]
        with pytest.raises(errors.NotFound):
            services.lease_set_auto_renew(lease_id=uuid.uuid4(), auto_renew=True, actor=OPS)
        n = number_in(State.QUARANTINED, alice)
        ended = Lease.objects.get(number=n)
        with pytest.raises(errors.InvalidTransition):
            services.lease_set_auto_renew(lease_id=ended.id, auto_renew=True, actor=OPS)
        with pytest.raises(errors.InvalidTransition):
            services.lease_renew(lease_id=ended.id, actor=OPS)
        with pytest.raises(errors.NotFound):
            services.lease_renew(lease_id=uuid.uuid4(), actor=OPS)

    def test_reservation_cancel_refusals(self, alice: Any) -> None:
        with pytest.raises(errors.ValidationError):
            services.reservation_cancel(reservation_id="x", actor=OPS)
        n = number_in(State.ASSIGNED, alice)
        converted = n.reservations.get()
        with pytest.raises(errors.InvalidTransition):
            services.reservation_cancel(reservation_id=converted.id, actor=OPS)

    def test_quarantine_policy_refusals(self, alice: Any) -> None:
        now = timezone.now()
        with pytest.raises(errors.ValidationError, match="staff"):
            services.quarantine_policy_update(case="MSISDN", actor=as_tenant(alice), approved_by="x", approved_at=now)
        with pytest.raises(errors.ValidationError, match="approved_by"):
            services.quarantine_policy_update(case="MSISDN", actor=OPS, approved_by=" ", approved_at=now)
        with pytest.raises(errors.ValidationError, match="future"):
            services.quarantine_policy_update(
                case="MSISDN", actor=OPS, approved_by="x", approved_at=now + timedelta(days=1)
            )
        with pytest.raises(errors.ValidationError, match="days"):
            services.quarantine_policy_update(case="MSISDN", actor=OPS, approved_by="x", approved_at=now, days=9999)
        with pytest.raises(errors.NotFound):
            services.quarantine_policy_update(case="NOPE", actor=OPS, approved_by="x", approved_at=now)
        policy = services.quarantine_policy_update(
            case="TEST", actor=OPS, approved_by="legal", approved_at=now, description="test numbers"
        )
        assert policy.description == "test numbers" and policy.days == 0

    def test_contract_actions_are_staff_only(self, alice: Any) -> None:
        from contracts.services import contract_suspend

        with pytest.raises(errors.ValidationError):
            contract_suspend(contract_id=1, actor=as_tenant(alice))

    def test_pool_usage_of_a_tenant_without_pool(self) -> None:
        with pytest.raises(errors.NotFound):
            selectors.tenant_pool_usage(tenant_id=uuid.uuid4())

    def test_bad_pattern_is_refused(self) -> None:
        with pytest.raises(errors.ValidationError, match="pattern"):
            selectors.pattern_q("7.*")

    def test_service_actor_sees_all(self) -> None:
        assert Actor.service("x").identity == "service:x"
