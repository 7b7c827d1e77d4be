"""Demo inventory for development (`manage.py seed_demo`). Idempotent.

Reference data (issuers, contracts, pools, tenants) is upserted; inventory arrives only
through the real signed import path (contracts.imports) with dev keys generated under
.dev/keys/; every lifecycle state is produced through numbering.services as the
system actor "seed-demo". Never run in production.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import Count

from contracts import signing
from contracts.imports import ImportOutcome, import_file
from contracts.models import Contract, InventoryImport, Issuer, NumberBlock, SigningKey
from contracts.services import contract_suspend, contract_terminate, signing_key_add, signing_key_approve
from core import clock
from core.actors import Actor
from core.rls import rls_scope
from numbering import selectors, services
from numbering.models import Lease, Number, Reservation, TierPriceChange, VanityTier
from pools.models import InventoryPool, Tenant, TenantPool

ACTOR = Actor.system("seed-demo")
APPROVER = Actor.system("seed-demo-approver")

# Vanity tiers and their demo list prices in AFN (ADR 1650): code, name, monthly, setup fee.
# Migration numbering 0009 seeds the same; this puts them back on a database without them.
TIERS = [
    ("PLATINUM", "Platinum", "25000.00", "50000.00"),
    ("GOLD", "Gold", "12000.00", "25000.00"),
    ("SILVER", "Silver", "6000.00", "10000.00"),
    ("BRONZE", "Bronze", "2500.00", "5000.00"),
]

ISSUERS = [
    # code, name, kind, prefixes
    ("ROSHAN", "Roshan (Telecom Development Company Afghanistan)", Issuer.Kind.MNO, ["72", "79"]),
    ("ETISALAT_AF", "Etisalat Afghanistan", Issuer.Kind.MNO, ["73", "78"]),
    ("MTN_AF", "MTN Afghanistan", Issuer.Kind.MNO, ["76", "77"]),
    ("AWCC", "Afghan Wireless Communication Company", Issuer.Kind.MNO, ["70", "71"]),
    ("SALAAM", "Salaam Network", Issuer.Kind.MNO, ["74"]),
    ("ATRA", "Afghanistan Telecom Regulatory Authority", Issuer.Kind.REGULATOR, []),
]

POOLS = [
    # code, name, kind, vanity, government, low, critical
    ("GENERAL_MSISDN", "General MSISDNs", "MSISDN", False, False, 1000, 200),
    ("STANDARD_SHORT_CODES", "Standard short codes", "SHORT_CODE", False, False, 20, 5),
    ("VANITY_SHORT_CODES", "Vanity short codes", "SHORT_CODE", True, False, 5, 2),
    ("GOVERNMENT_RESERVED", "Government-reserved MSISDNs", "MSISDN", False, True, 50, 10),
]

TENANTS = [
    # name, registration no., segment, pools, quota msisdn, quota short code, lease days
    (
        "Kabul Commerce Bank",
        "AF-ENT-0001",
        Tenant.Segment.ENTERPRISE,
        ["GENERAL_MSISDN", "STANDARD_SHORT_CODES", "VANITY_SHORT_CODES"],
        200,
        5,
        365,
    ),
    ("Herat Saffron Traders", "AF-SMB-0001", Tenant.Segment.SMB, ["GENERAL_MSISDN", "STANDARD_SHORT_CODES"], 20, 1, 30),
    (
        "Ministry of Public Health",
        "AF-GOV-0001",
        Tenant.Segment.GOVERNMENT,
        ["GOVERNMENT_RESERVED", "GENERAL_MSISDN", "STANDARD_SHORT_CODES"],
        500,
        5,
        365,
    ),
]

MSISDNS_PER_MNO = 1000
GOVERNMENT_PER_MNO = 40
STANDARD_SHORT_CODES = [str(4000 + i) for i in range(50)]
VANITY = [
    *[(d * 3, "PLATINUM") for d in "123456789"],
    *[(d * 4, "GOLD") for d in "123456789"],
    ("1234", "GOLD"),
    ("2020", "SILVER"),
    ("3030", "SILVER"),
    ("4545", "SILVER"),
    ("5050", "SILVER"),
    ("6060", "BRONZE"),
    ("7070", "BRONZE"),
    ("8080", "BRONZE"),
    ("9090", "BRONZE"),
    ("1212", "BRONZE"),
]


@dataclass
class SeedReport:
    lines: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        self.lines.append(line)


def _dev_dir() -> Path:
    return Path(settings.DEV_DIR)


def _private_key(code: str) -> object:
    keys = _dev_dir() / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    path = keys / f"{code.lower()}.key.pem"
    if not path.exists():
        key = signing.generate_private_key()
        path.write_bytes(signing.private_pem(key))
        path.chmod(0o600)
        (keys / f"{code.lower()}.pub.pem").write_text(signing.public_pem(key))
    from cryptography.hazmat.primitives import serialization

    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _reference_data(report: SeedReport) -> None:
    with transaction.atomic():
        for code, name, kind, prefixes in ISSUERS:
            issuer, _ = Issuer.objects.update_or_create(
                code=code, defaults={"name": name, "kind": kind, "msisdn_prefixes": prefixes}
            )
            Contract.objects.get_or_create(
                reference=f"{'ALLOC' if kind == Issuer.Kind.REGULATOR else 'MOU'}-{code}-2026",
                defaults={
                    "issuer": issuer,
                    "status": Contract.Status.ACTIVE,
                    "starts_on": date(2026, 1, 1),
                    "kind": Contract.Kind.ALLOCATION if kind == Issuer.Kind.REGULATOR else Contract.Kind.MOU,
                    "agreed_prefixes": prefixes,
                },
            )
        for code, name, pool_kind, vanity, gov, low, critical in POOLS:
            InventoryPool.objects.update_or_create(
                code=code,
                defaults={
                    "name": name,
                    "kind": pool_kind,
                    "vanity": vanity,
                    "government_reserved": gov,
                    "low_watermark": low,
                    "critical_watermark": critical,
                },
            )
    report.add(f"issuers: {len(ISSUERS)}, pools: {len(POOLS)}, contracts: {Contract.objects.count()}")


def _tiers(report: SeedReport) -> None:
    """Priced tiers through the four-eyes services: each tier has a price in force; GOLD has a
    rise scheduled in 30 days (approved); SILVER has a cut awaiting a second pair of eyes."""
    now = clock.now()
    with transaction.atomic():
        for code, name, monthly, setup in TIERS:
            tier = VanityTier.objects.filter(code=code).first()
            if tier is None:
                tier = VanityTier(code=code, name=name)
                services.vanity_tier_save(tier, actor=ACTOR, save=tier.save)
            if tier.price_changes.filter(status=TierPriceChange.Status.APPROVED).exists():
                continue
            change = services.tier_price_propose(
                tier_code=code, monthly_price=monthly, setup_fee=setup, actor=ACTOR, reason="demo list price"
            )
            services.tier_price_approve(change_id=change.id, actor=APPROVER)
        pending = set(
            TierPriceChange.objects.filter(status=TierPriceChange.Status.PENDING).values_list("tier_id", flat=True)
        )
        if (
            "GOLD" not in pending
            and not TierPriceChange.objects.filter(tier_id="GOLD", reason="demo: 2027 rise").exists()
        ):
            rise = services.tier_price_propose(
                tier_code="GOLD",
                monthly_price="13500.00",
                setup_fee="25000.00",
                effective_from=now + timedelta(days=30),
                actor=ACTOR,
                reason="demo: 2027 rise",
            )
            services.tier_price_approve(change_id=rise.id, actor=APPROVER, note="demo second pair of eyes")
        if "SILVER" not in pending and not TierPriceChange.objects.filter(reason="demo: awaiting approval").exists():
            services.tier_price_propose(
                tier_code="SILVER",
                monthly_price="5500.00",
                setup_fee="10000.00",
                actor=ACTOR,
                reason="demo: awaiting approval",
            )
    prices = selectors.tier_prices_in_force(now)
    report.add(
        "vanity tiers (AFN/month + setup): "
        + ", ".join(f"{c} {prices[c].monthly_price}+{prices[c].setup_fee}" for c, *_ in TIERS if c in prices)
        + "; GOLD rise scheduled, SILVER cut pending approval"
    )


def _keys(report: SeedReport) -> dict[str, object]:
    keys = {}
    for code, *_ in ISSUERS:
        key = _private_key(code)
        keys[code] = key
        fp = signing.fingerprint(key.public_key())  # type: ignore[attr-defined]
        if not SigningKey.objects.filter(fingerprint=fp).exists():
            signing_key_add(issuer_code=code, public_key_pem=signing.public_pem(key), actor=ACTOR)  # type: ignore[arg-type]
            report.add(f"signing key {fp[:16]}… installed for {code} (private key in .dev/keys/)")
        if SigningKey.objects.filter(fingerprint=fp, approved_at__isnull=True, revoked_at__isnull=True).exists():
            # Four eyes (ADR 1350): the demo's second pair of eyes is a second system actor.
            signing_key_approve(fingerprint=fp, actor=APPROVER)
            report.add(f"signing key {fp[:16]}… of {code} approved by {APPROVER.identity}")
    return keys


def _mno_csv(code: str, prefixes: list[str]) -> str:
    lines = ["number,kind,vanity_tier,block,pool"]
    per_prefix = -(-MSISDNS_PER_MNO // len(prefixes))
    for i, prefix in enumerate(prefixes):
        count = min(per_prefix, MSISDNS_PER_MNO - i * per_prefix)
        lines += [f"+93{prefix}{1000000 + n:07d},MSISDN,,{code}-{prefix}-2026-01," for n in range(count)]
    prefix = prefixes[0]
    lines += [
        f"+93{prefix}{9000000 + n:07d},MSISDN,,{code}-GOV-2026,GOVERNMENT_RESERVED" for n in range(GOVERNMENT_PER_MNO)
    ]
    return "\n".join(lines) + "\n"


def _atra_csv() -> str:
    lines = ["number,kind,vanity_tier,block,pool"]
    lines += [f"{code},SHORT_CODE,,ATRA-STD-2026," for code in STANDARD_SHORT_CODES]
    lines += [f"{code},SHORT_CODE,{tier},ATRA-VANITY-2026," for code, tier in VANITY]
    return "\n".join(lines) + "\n"


def _import(code: str, body: str, key: object, report: SeedReport) -> ImportOutcome | None:
    seed_dir = _dev_dir() / "seed"
    seed_dir.mkdir(parents=True, exist_ok=True)
    data = body.encode()
    csv_path, sig_path = seed_dir / f"{code.lower()}.csv", seed_dir / f"{code.lower()}.csv.sig"
    csv_path.write_bytes(data)
    signature = signing.sign(key, data)  # type: ignore[arg-type]
    sig_path.write_bytes(signature)
    done = InventoryImport.objects.filter(
        issuer__code=code, file_sha256=hashlib.sha256(data).hexdigest(), status=InventoryImport.Status.COMMITTED
    ).first()
    if done is not None:  # keep `make run` from piling up no-op import records
        report.add(f"{code}: already imported (import {done.pk})")
        return None
    outcome = import_file(
        issuer_code=code, csv_file=data, signature=signature, actor=ACTOR, filename=csv_path.name, mode="all-or-nothing"
    )
    if not outcome.ok:
        raise RuntimeError(f"seed import for {code} refused: {outcome.message}")
    report.add(f"{code}: {outcome.message}")
    return outcome


def _tenants(report: SeedReport) -> dict[str, Tenant]:
    tenants: dict[str, Tenant] = {}
    with transaction.atomic(), rls_scope(platform=True):
        pools = {p.code: p for p in InventoryPool.objects.all()}
        for name, reg, segment, pool_codes, q_msisdn, q_short, lease_days in TENANTS:
            tenant, _ = Tenant.objects.update_or_create(
                registration_no=reg, defaults={"name": name, "segment": segment}
            )
            tp, _ = TenantPool.objects.update_or_create(
                tenant=tenant,
                defaults={"quota_msisdn": q_msisdn, "quota_short_code": q_short, "default_lease_days": lease_days},
            )
            tp.inventory_pools.set([pools[c] for c in pool_codes])
            tenants[segment] = tenant
    report.add(f"tenants: {', '.join(t.name for t in tenants.values())}")
    return tenants


def _available(**filters: object) -> list[str]:
    with transaction.atomic(), rls_scope(platform=True):
        return list(
            Number.objects.filter(state="AVAILABLE", **filters).order_by("number").values_list("number", flat=True)
        )


def _states(tenants: dict[str, Tenant], report: SeedReport) -> None:
    with transaction.atomic(), rls_scope(platform=True):
        seeded = Lease.objects.exists() or Reservation.objects.exists()
        reserved = Number.objects.filter(state="RESERVED").exists()
    if seeded:
        # Reservations expire (24 h at most): top them up so RESERVED keeps showing.
        if not reserved:
            for n in _available(issuer__code="ROSHAN", pool__code="GENERAL_MSISDN")[:3]:
                services.number_reserve(number=n, tenant_id=tenants["ENTERPRISE"].id, actor=ACTOR, ttl_seconds=86400)
            report.add("lifecycle demo states present; reservations topped up")
        else:
            report.add("lifecycle demo states already present; left as they are")
        return
    ent, smb, gov = tenants["ENTERPRISE"], tenants["SMB"], tenants["GOVERNMENT"]
    roshan = _available(issuer__code="ROSHAN", pool__code="GENERAL_MSISDN")
    mtn = _available(issuer__code="MTN_AF", pool__code="GENERAL_MSISDN")
    awcc = _available(issuer__code="AWCC", pool__code="GENERAL_MSISDN")
    gov_pool = _available(pool__code="GOVERNMENT_RESERVED")
    short = _available(pool__code="STANDARD_SHORT_CODES")
    vanity = _available(pool__code="VANITY_SHORT_CODES")
    steps: list[tuple[str, Callable[[], object]]] = []

    def assign(number: str, tenant: Tenant) -> None:
        steps.append(("assign", lambda: services.number_assign(number=number, tenant_id=tenant.id, actor=ACTOR)))

    def reserve(number: str, tenant: Tenant) -> None:
        steps.append(
            (
                "reserve",
                lambda: services.number_reserve(number=number, tenant_id=tenant.id, actor=ACTOR, ttl_seconds=6 * 3600),
            )
        )

    for n in roshan[:6]:
        assign(n, ent)
    assign(vanity[0], ent)
    assign(short[0], ent)
    for n in roshan[6:9]:
        reserve(n, ent)
    for n in mtn[:3]:
        assign(n, smb)
    reserve(mtn[3], smb)
    for n in gov_pool[:4]:
        assign(n, gov)
    assign(short[1], gov)
    reserve(gov_pool[4], gov)
    # Quarantine: released by the tenant, and recalled by ops.
    for n in awcc[:3]:
        assign(n, ent)
        steps.append(("release", partial(services.number_release, number=n, tenant_id=ent.id, actor=ACTOR)))
    assign(awcc[3], smb)
    steps.append(("recall", lambda: services.number_recall(number=awcc[3], actor=ACTOR, reason="FRAUD")))
    for n in awcc[4:6]:
        steps.append(("retire", partial(services.number_retire, number=n, actor=ACTOR, reason="demo: damaged range")))
    counts: dict[str, int] = {}
    for action, step in steps:
        step()
        counts[action] = counts.get(action, 0) + 1
    report.add("lifecycle: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


SUSPENDED_DEMO = "MOU-SALAAM-2026"
TERMINATING_DEMO = "MOU-ETISALAT_AF-2024"
TERMINATING_DAYS_AHEAD = 20


def _contracts(tenants: dict[str, Tenant], report: SeedReport) -> None:
    """Issue 16: one SUSPENDED contract (Salaam's: its leases go on, nothing new is taken) and
    one terminating contract — a legacy Etisalat MOU whose small block ends 20 days from the
    first seed (two numbers held by the SMB tenant are recalled then; the rest retired at once)."""
    ops = Actor.system("seed-demo")
    suspended = Contract.objects.filter(reference=SUSPENDED_DEMO, status=Contract.Status.ACTIVE).first()
    if suspended is not None:
        contract_suspend(contract_id=suspended.id, actor=ops, reason="demo: operator dispute")
    with transaction.atomic():
        issuer = Issuer.objects.get(code="ETISALAT_AF")
        legacy, created = Contract.objects.get_or_create(
            reference=TERMINATING_DEMO,
            defaults={
                "issuer": issuer,
                "status": Contract.Status.ACTIVE,
                "starts_on": date(2024, 1, 1),
                "kind": Contract.Kind.MOU,
                "agreed_prefixes": ["78"],
            },
        )
    if created:
        block = NumberBlock.objects.create(
            name="etisalat-legacy-2024", issuer=issuer, contract=legacy, kind=NumberBlock.Kind.MSISDN
        )
        numbers = _available(issuer__code="ETISALAT_AF", pool__code="GENERAL_MSISDN")[:10]
        with transaction.atomic(), rls_scope(platform=True):
            # Demo data only: the legacy range is carved out of the imported inventory.
            Number.objects.filter(number__in=numbers).update(block=block)
        for n in numbers[:2]:
            services.number_assign(number=n, tenant_id=tenants["SMB"].id, actor=ACTOR)
        contract_terminate(
            contract_id=legacy.id,
            actor=ops,
            reason="demo: MOU not renewed",
            ends_on=clock.today() + timedelta(days=TERMINATING_DAYS_AHEAD),
        )
    report.add(f"contracts: {SUSPENDED_DEMO} suspended, {TERMINATING_DEMO} terminating (ends {legacy.ends_on})")


def seed_demo() -> SeedReport:
    if settings.NUMBERING_ENV == "production":
        raise RuntimeError("seed_demo refuses to run when NUMBERING_ENV=production")
    report = SeedReport()
    _reference_data(report)
    _tiers(report)
    keys = _keys(report)
    for code, _name, kind, prefixes in ISSUERS:
        body = _atra_csv() if kind == Issuer.Kind.REGULATOR else _mno_csv(code, prefixes)
        _import(code, body, keys[code], report)
    tenants = _tenants(report)
    _states(tenants, report)
    _contracts(tenants, report)
    with transaction.atomic(), rls_scope(platform=True):
        by_state = dict(Number.objects.values_list("state").order_by("state").annotate(n=Count("id")))
    report.add("numbers by state: " + ", ".join(f"{k} {v}" for k, v in by_state.items()))
    report.add(f"seeded at {clock.now():%Y-%m-%d %H:%M} UTC")
    return report
