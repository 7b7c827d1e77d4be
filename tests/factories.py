"""factory_boy factories. Rows are created in platform RLS scope, as ops would."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any, TypeVar

import factory
from django.db import models, transaction
from django.utils import timezone

from contracts.models import Contract, Issuer, NumberBlock
from core.rls import rls_scope
from numbering.models import Lease, Number, Reservation
from pools.models import InventoryPool, Tenant, TenantPool

_msisdn_seq = itertools.count(1000000)
_short_seq = itertools.count(3000)


_M = TypeVar("_M", bound=models.Model)


class PlatformFactory(factory.django.DjangoModelFactory[_M]):
    """Parametrized with its model, so that a factory call is typed as the model
    (tests/mypy_factories.py)."""

    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class: Any, *args: Any, **kwargs: Any) -> Any:
        with transaction.atomic(), rls_scope(platform=True):
            return super()._create(model_class, *args, **kwargs)


class IssuerFactory(PlatformFactory[Issuer]):
    class Meta:
        model = Issuer
        django_get_or_create = ("code",)

    code = "ROSHAN"
    name = factory.LazyAttribute(lambda o: o.code.title())
    kind = Issuer.Kind.MNO
    msisdn_prefixes = factory.LazyAttribute(lambda o: ["79", "72"] if o.code == "ROSHAN" else [])


class ContractFactory(PlatformFactory[Contract]):
    class Meta:
        model = Contract

    reference = factory.Sequence(lambda n: f"MOU-{n:04d}")
    issuer = factory.SubFactory(IssuerFactory)
    status = Contract.Status.ACTIVE
    starts_on = factory.LazyFunction(lambda: timezone.now().date())


class BlockFactory(PlatformFactory[NumberBlock]):
    class Meta:
        model = NumberBlock

    name = factory.Sequence(lambda n: f"block-{n}")
    issuer = factory.SubFactory(IssuerFactory)
    kind = NumberBlock.Kind.MSISDN


class InventoryPoolFactory(PlatformFactory[InventoryPool]):
    class Meta:
        model = InventoryPool
        django_get_or_create = ("code",)

    code = "GENERAL_MSISDN"
    name = factory.LazyAttribute(lambda o: o.code.replace("_", " ").title())
    kind = InventoryPool.Kind.MSISDN


class TenantFactory(PlatformFactory[Tenant]):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    registration_no = factory.Sequence(lambda n: f"REG-{n:06d}")
    segment = Tenant.Segment.ENTERPRISE


class TenantPoolFactory(PlatformFactory[TenantPool]):
    class Meta:
        model = TenantPool
        skip_postgeneration_save = True

    tenant = factory.SubFactory(TenantFactory)
    quota_msisdn = 10
    quota_short_code = 2
    default_lease_days = 30
    auto_renew_default = True
    reservation_ttl_seconds = 900

    @factory.post_generation
    def inventory_pools(self, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        pools = extracted if extracted is not None else [InventoryPoolFactory()]
        with transaction.atomic(), rls_scope(platform=True):
            self.inventory_pools.set(pools)


class NumberFactory(PlatformFactory[Number]):
    class Meta:
        model = Number

    number = factory.LazyFunction(lambda: f"+9379{next(_msisdn_seq):07d}")
    kind = Number.Kind.MSISDN
    issuer = factory.SubFactory(IssuerFactory)
    pool = factory.SubFactory(InventoryPoolFactory)
    state = "AVAILABLE"


class ShortCodeFactory(NumberFactory):
    number = factory.LazyFunction(lambda: str(next(_short_seq)))
    kind = Number.Kind.SHORT_CODE
    issuer = factory.SubFactory(IssuerFactory, code="ATRA", kind=Issuer.Kind.REGULATOR)
    pool = factory.SubFactory(InventoryPoolFactory, code="STANDARD_SHORT_CODES", kind=InventoryPool.Kind.SHORT_CODE)


def reserved_until(seconds: int = 900) -> Any:
    return timezone.now() + timedelta(seconds=seconds)


__all__ = [
    "ContractFactory",
    "BlockFactory",
    "InventoryPoolFactory",
    "IssuerFactory",
    "Lease",
    "NumberFactory",
    "Reservation",
    "ShortCodeFactory",
    "TenantFactory",
    "TenantPoolFactory",
    "reserved_until",
]
