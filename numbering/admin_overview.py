"""Data for the admin's inventory overview (DESIGN §3.3) and its inline-SVG charts.

The charts are computed here as plain geometry (no JavaScript, no CDN: the admin must work
on a network without internet access). Each query is one GROUP BY served by the
(state, kind, issuer) / (pool, state) indexes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q

from core import clock
from numbering import selectors
from numbering.lifecycle import State
from numbering.models import Number
from pools.models import InventoryPool

STATE_COLOURS = {
    State.AVAILABLE.value: "#2e7d32",
    State.RESERVED.value: "#f9a825",
    State.ASSIGNED.value: "#1565c0",
    State.QUARANTINED.value: "#8e24aa",
    State.RETIRED.value: "#757575",
}
STATES = list(STATE_COLOURS)


@dataclass
class Segment:
    state: str
    count: int
    x: float
    width: float
    colour: str


@dataclass
class Bar:
    label: str
    total: int
    y: float
    segments: list[Segment] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _stacked(rows: dict[str, dict[str, int]], *, width: float = 560.0, row_height: float = 26.0) -> list[Bar]:
    biggest = max((sum(c.values()) for c in rows.values()), default=0) or 1
    bars = []
    for i, (label, counts) in enumerate(rows.items()):
        bar = Bar(label=label, total=sum(counts.values()), y=i * row_height, counts=counts)
        x = 0.0
        for state in STATES:
            n = counts.get(state, 0)
            if n:
                w = max(width * n / biggest, 3.0)  # a handful of numbers must still show
                bar.segments.append(Segment(state, n, x, w, STATE_COLOURS[state]))
                x += w
        bars.append(bar)
    return bars


def by_issuer_kind_state() -> dict[str, Any]:
    rows: dict[str, dict[str, int]] = {}
    query = (
        Number.objects.values_list("issuer__code", "kind", "state")
        .annotate(n=Count("id"))
        .order_by("issuer__code", "kind")
    )
    for issuer, kind, state, n in query:
        rows.setdefault(f"{issuer} · {kind}", {})[state] = n
    bars = _stacked(rows)
    return {
        "bars": bars,
        "height": max(len(bars), 1) * 26 + 10,
        "states": STATE_COLOURS,
        "total": sum(b.total for b in bars),
    }


@dataclass
class PoolBar:
    code: str
    name: str
    total: int
    available: int
    used: int
    low: int
    critical: int
    level: str
    utilisation: float
    y: float
    used_width: float
    low_x: float
    critical_x: float


def pool_utilisation(width: float = 560.0, row_height: float = 34.0) -> dict[str, Any]:
    pools = list(
        InventoryPool.objects.annotate(
            total=Count("numbers", filter=~Q(numbers__state=State.RETIRED)),
            available=Count("numbers", filter=Q(numbers__state=State.AVAILABLE)),
        ).order_by("code")
    )
    bars = []
    for i, p in enumerate(pools):
        total, available = p.total, p.available
        scale = width / max(total, 1)
        level = "critical" if available <= p.critical_watermark else "low" if available <= p.low_watermark else "ok"
        bars.append(
            PoolBar(
                code=p.code,
                name=p.name,
                total=total,
                available=available,
                used=total - available,
                low=p.low_watermark,
                critical=p.critical_watermark,
                level=level,
                utilisation=round(100 * (total - available) / total, 1) if total else 0.0,
                y=i * row_height,
                used_width=(total - available) * scale,
                # Watermarks are "available below N": drawn from the right end of the bar.
                low_x=max(total - p.low_watermark, 0) * scale,
                critical_x=max(total - p.critical_watermark, 0) * scale,
            )
        )
    return {"bars": bars, "height": max(len(bars), 1) * row_height + 10, "width": width}


def short_code_availability(width: float = 560.0, row_height: float = 26.0) -> dict[str, Any]:
    query = (
        Number.objects.filter(kind=Number.Kind.SHORT_CODE)
        .values_list("vanity_tier")
        .annotate(
            total=Count("id", filter=~Q(state=State.RETIRED)), available=Count("id", filter=Q(state=State.AVAILABLE))
        )
    )
    data = {tier or "STANDARD": (total, available) for tier, total, available in query}
    rows = []
    biggest = max((t for t, _ in data.values()), default=0) or 1
    # Tiers are data (ADR 1650), most expensive first; a code whose tier was retired still shows.
    prices = selectors.tier_prices_in_force(clock.now())
    tiers = sorted(selectors.vanity_tier_codes(), key=lambda t: -(prices[t].monthly_price if t in prices else 0))
    tiers += sorted(t for t in data if t not in tiers and t != "STANDARD")
    for i, label in enumerate(("STANDARD", *tiers)):
        total, available = data.get(label, (0, 0))
        rows.append(
            {
                "label": label,
                "total": total,
                "available": available,
                "y": i * row_height,
                "total_width": width * total / biggest,
                "available_width": width * available / biggest,
                "scarce": total > 0 and available / total < 0.2,
            }
        )
    return {"rows": rows, "height": len(rows) * row_height + 10}


def overview() -> dict[str, Any]:
    return {
        "issuer_chart": by_issuer_kind_state(),
        "pool_chart": pool_utilisation(),
        "short_code_chart": short_code_availability(),
    }
