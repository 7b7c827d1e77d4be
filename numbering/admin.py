"""Django admin for the inventory (DESIGN §3.3): thin adapters over numbering.services.

Numbers are never edited as rows: every change is an action (bulk on the changelist, or a
button on the number page) that calls the service with the staff user as audit actor and
shows the domain error when the lifecycle refuses it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from audit.selectors import ARCHIVE_UNREADABLE, archived_events_for, archived_until_month
from core import authz, clock
from core.admin import BigTableAdmin, MatrixAdmin, ReadOnlyAdmin, fixed_values_filter
from core.errors import DomainError
from numbering import lifecycle, models, selectors, services
from numbering.admin_overview import overview
from numbering.models import Lease, Number, QuarantinePolicy, Reservation, TierPriceChange, VanityTier

# The number actions the admin offers, each a lifecycle action (its value is the action name).
ACTION_LABELS = {
    "recall": "Recall",
    "retire": "Retire",
    "reinstate": "Reinstate (into quarantine)",
    "renew": "Renew lease",
    "extend_reservation": "Extend reservation",
}
RECALL_REASONS = [
    ("OPS_RECALL", "Ops recall"),
    ("FRAUD", "Fraud (burns the number)"),
    ("COMPLIANCE_SUSPENSION", "Compliance: tenant suspended"),
]


assert set(ACTION_LABELS) <= {a.value for a in lifecycle.Action}


def offered_actions(state: str, role_names: frozenset[str]) -> list[tuple[str, str]]:
    """The buttons of a number page: the actions the lifecycle table has a row for from the
    number's state, that the staff user's roles may take (core.authz). Hiding is a courtesy;
    the service refuses any other action anyway (lifecycle.check)."""
    from_state = lifecycle.actions_from(state)
    return [
        (action, label)
        for action, label in ACTION_LABELS.items()
        if lifecycle.Action(action) in from_state and authz.admin_action_allowed(action, role_names)
    ]


def _call(action: str, number: Number, actor: Any, reason: str) -> Any:
    """One action on one number through numbering.services."""
    if action == "recall":
        return services.number_recall(number=number.number, actor=actor, reason=reason)
    if action == "retire":
        return services.number_retire(number=number.number, actor=actor, reason=reason)
    if action == "reinstate":
        return services.number_reinstate(number=number.number, actor=actor, reason=reason)
    if action == "renew":
        return services.number_renew(number=number.number, actor=actor, tenant_id=number.tenant_id)
    if action == "extend_reservation":
        return services.number_extend_reservation(number=number.number, actor=actor, tenant_id=number.tenant_id)
    raise ValueError(action)


def perform(request: HttpRequest, action: str, numbers: list[Number], reason: str = "") -> tuple[int, list[str]]:
    """Run `action` on each number as the staff user; returns (done, refusals)."""
    if not authz.admin_action_allowed(action, authz.roles_of(request.user)):
        raise PermissionDenied(f"{action} needs one of the roles {', '.join(sorted(authz.admin_action_roles(action)))}")
    actor = authz.staff_actor(request.user)
    done, refused = 0, []
    for number in numbers:
        try:
            _call(action, number, actor, reason or f"admin:{action}")
        except DomainError as exc:
            refused.append(f"{number.number}: {exc.code}: {exc.message}")
        else:
            done += 1
    return done, refused


def _report(request: HttpRequest, action: str, done: int, refused: list[str]) -> None:
    if done:
        messages.success(request, f"{ACTION_LABELS[action]}: {done} number(s) done.")
    for line in refused[:20]:
        messages.error(request, f"{ACTION_LABELS[action]} refused — {line}")
    if len(refused) > 20:
        messages.error(request, f"… and {len(refused) - 20} more refusals")


def _bulk(action: str) -> Callable[..., None]:
    def run(modeladmin: NumberAdmin, request: HttpRequest, queryset: QuerySet[Number]) -> None:
        try:
            done, refused = perform(request, action, list(queryset.select_related("issuer")[:500]))
        except PermissionDenied as exc:
            messages.error(request, str(exc))
            return
        _report(request, action, done, refused)

    run.__name__ = f"action_{action}"
    return admin.action(description=f"{ACTION_LABELS[action]} selected numbers", permissions=["change"])(run)


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(s, s.title()) for s in ("AVAILABLE", "RESERVED", "ASSIGNED", "QUARANTINED", "RETIRED")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Number]) -> QuerySet[Number]:
        return queryset.filter(state=self.value()) if self.value() else queryset


# Staff type numbers as anyone in Afghanistan does (issue 16): core.formats reads them all.
NUMBER_SEARCH_HELP = (
    "Any format: +93791234567, 0093 79 123 4567, 079 123 4567, ۰۷۹۱۲۳۴۵۶۷ (Persian), ٠٧٩١٢٣٤٥٦٧ "
    "(Arabic-Indic), a short code, or a prefix — read as libphonenumber does for region AF."
)


class NumberSearchMixin:
    """Search rows that hang off a number (reservations, leases) by any number format."""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str) -> Any:
        if not search_term.strip():
            return queryset, False
        return queryset.filter(number__in=selectors.number_search(Number.objects.all(), search_term)), False


@admin.register(Number)
class NumberAdmin(BigTableAdmin):
    list_display = ("number", "kind", "state", "issuer", "pool", "vanity_tier", "tenant", "version", "state_changed_at")
    list_select_related = ("issuer", "pool", "tenant")
    list_filter = (
        StateFilter,
        "kind",
        "issuer",
        "pool",
        fixed_values_filter("vanity_tier", selectors.vanity_tier_codes),
    )
    search_fields = ("number",)
    search_help_text = NUMBER_SEARCH_HELP
    raw_id_fields = ("tenant", "last_tenant", "block", "pool")
    readonly_fields = (
        "number",
        "kind",
        "state",
        "issuer",
        "block",
        "pool",
        "vanity",
        "vanity_tier",
        "is_test",
        "tenant",
        "last_tenant",
        "version",
        "reserved_until",
        "quarantine_until",
        "state_changed_at",
        "last_disconnected_at",
        "burned_at",
        "created_at",
    )
    fields = readonly_fields
    actions = [_bulk(a) for a in ACTION_LABELS]
    change_form_template = "admin/numbering/number/change_form.html"
    change_list_template = "admin/numbering/number/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # numbers arrive through signed imports only

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # core.authz decides, as over REST (ADR 1351); the bulk actions check ADMIN_ACTIONS.
        user = request.user
        return bool(user.is_active and user.is_staff) and authz.allowed("admin.numbers.read", authz.roles_of(user))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Number], search_term: str) -> Any:
        return selectors.number_search(queryset, search_term), False

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("overview/", wrap(self.overview_view), name="numbering_number_overview"),
            path("<int:pk>/act/<str:action>/", wrap(self.act_view), name="numbering_number_act"),
            path("<int:pk>/archived-audit/", wrap(self.archived_audit_view), name="numbering_number_archived_audit"),
            *super().get_urls(),
        ]

    def overview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Inventory overview",
            **overview(),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/numbering/overview.html", context)

    def act_view(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        if request.method != "POST" or action not in ACTION_LABELS:
            raise PermissionDenied
        number = get_object_or_404(Number.objects.select_related("issuer"), pk=pk)
        if not self.has_change_permission(request, number):
            raise PermissionDenied
        try:
            done, refused = perform(request, action, [number], reason=request.POST.get("reason", "").strip())
        except PermissionDenied as exc:
            messages.error(request, str(exc))
        else:
            _report(request, action, done, refused)
        return HttpResponseRedirect(reverse("admin:numbering_number_change", args=[pk]))

    def archived_audit_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Older audit history of one number, fetched from the WORM archive on request
        (ADR 1630): whoever may read the audit trail, through the verified read path."""
        if not authz.allowed("admin.audit.read", authz.roles_of(request.user)):
            raise PermissionDenied
        number = get_object_or_404(Number, pk=pk)
        period = request.GET.get("period") or None
        events: list[dict[str, Any]] = []
        error = ""
        try:
            events = archived_events_for(number.number, period=period)
        except ARCHIVE_UNREADABLE as exc:
            error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Archived audit history of {number.number}",
            "number": number,
            "events": events,
            "error": error,
            "period": period or "",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/numbering/number/archived_audit.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        number = self.get_object(request, object_id)
        extra = dict(extra_context or {})
        if number is not None:
            extra.update(self._number_page(request, number))
        extra.update(show_save=False, show_save_and_continue=False, show_save_and_add_another=False, show_delete=False)
        return super().change_view(request, object_id, form_url, extra)

    def _number_page(self, request: HttpRequest, number: Number) -> dict[str, Any]:
        page = selectors.number_history(number=number, limit=50, audit_limit=100)
        user_roles = authz.roles_of(request.user)
        return {
            "active_lease": page["active_lease"],
            "active_reservation": page["active_reservation"],
            "holder_history": page["holder_history"],
            "audit_trail": page["audit_events"],
            "audit_archived_until": archived_until_month(),
            "can_read_archive": authz.allowed("admin.audit.read", user_roles),
            "import_record": number.block.inventory_import if number.block_id and number.block else None,
            "number_actions": offered_actions(number.state, user_roles)
            if self.has_change_permission(request, number)
            else [],
            "recall_reasons": RECALL_REASONS,
            "now": clock.now(),
        }


@admin.register(Reservation)
class ReservationAdmin(NumberSearchMixin, ReadOnlyAdmin):
    matrix_read = "admin.numbers.read"
    list_display = (
        "number",
        "tenant",
        "status",
        "created_at",
        "expires_at",
        "ended_at",
        "tier_code",
        "monthly_price",
        "setup_fee",
        "created_by",
    )
    list_select_related = ("number", "tenant")
    list_filter = ("status",)
    raw_id_fields = ("number", "tenant")
    search_fields = ("number__number",)
    search_help_text = NUMBER_SEARCH_HELP


@admin.register(Lease)
class LeaseAdmin(NumberSearchMixin, ReadOnlyAdmin):
    matrix_read = "admin.leases.read"
    list_display = (
        "number",
        "tenant",
        "status",
        "starts_at",
        "expires_at",
        "auto_renew",
        "renewals",
        "tier_code",
        "monthly_price",
        "setup_fee",
        "end_reason",
    )
    list_select_related = ("number", "tenant")
    list_filter = ("status", "auto_renew")
    raw_id_fields = ("number", "tenant", "reservation")
    search_fields = ("number__number",)
    search_help_text = NUMBER_SEARCH_HELP


class QuarantinePolicyForm(forms.ModelForm):
    approved_by = forms.CharField(
        max_length=150, help_text="Name of the Legal approver of this change (recorded with the audit event)."
    )

    class Meta:
        model = QuarantinePolicy
        fields = ("days", "description", "approved_by")


@admin.register(QuarantinePolicy)
class QuarantinePolicyAdmin(admin.ModelAdmin):
    form = QuarantinePolicyForm
    list_display = ("case", "days", "approved_by", "approved_at", "updated_at")
    readonly_fields = ("case", "approved_at", "updated_at")

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"approved_by": ""}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the cases are fixed by DESIGN §2.1

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        roles = authz.roles_of(request.user) if request.user.is_active and request.user.is_staff else frozenset()
        return authz.allowed("admin.quarantine_policies.read", roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        roles = authz.roles_of(request.user) if request.user.is_active and request.user.is_staff else frozenset()
        return authz.allowed("admin.quarantine_policies.write", roles)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: QuarantinePolicy, form: Any, change: bool) -> None:
        updated = services.quarantine_policy_update(
            case=obj.case,
            days=form.cleaned_data["days"],
            description=form.cleaned_data["description"],
            approved_by=form.cleaned_data["approved_by"],
            actor=authz.staff_actor(request.user),
        )
        obj.approved_at, obj.approved_by, obj.updated_at = updated.approved_at, updated.approved_by, updated.updated_at


# --- background work (issue 6): read-only view of what the detector did ---
@admin.register(models.AnomalySignal)
class AnomalySignalAdmin(ReadOnlyAdmin):
    matrix_read = "admin.numbers.read"
    list_display = ("kind", "subject", "window_start", "count", "created_at")
    list_filter = ("kind",)
    show_full_result_count = False


# --- vanity tiers and their prices (issue 16 part 6, ADR 1650) ---------------------------------
@admin.register(VanityTier)
class VanityTierAdmin(MatrixAdmin):
    """Tiers are reference data: created and renamed or retired (never deleted), audited.
    Their prices change only through proposals a second user approves (below)."""

    matrix_read, matrix_write = "admin.vanity_tiers.read", "admin.vanity_tiers.write"
    save_service = services.vanity_tier_save
    list_display = ("code", "name", "currency", "is_active", "price_in_force", "setup_fee_in_force", "pending")
    fields = ("code", "name", "is_active")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("code",) if obj is not None else ()

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        self._prices = selectors.tier_prices_in_force(clock.now())
        self._pending = set(
            selectors.tier_price_change_list()
            .filter(status=TierPriceChange.Status.PENDING)
            .values_list("tier_id", flat=True)
        )
        return super().changelist_view(request, extra_context)

    @admin.display(description="monthly price (AFN)")
    def price_in_force(self, obj: VanityTier) -> str:
        price = getattr(self, "_prices", {}).get(obj.code)
        return f"{price.monthly_price:,.2f}" if price else "—"

    @admin.display(description="setup fee (AFN)")
    def setup_fee_in_force(self, obj: VanityTier) -> str:
        price = getattr(self, "_prices", {}).get(obj.code)
        return f"{price.setup_fee:,.2f}" if price else "—"

    @admin.display(boolean=True, description="change pending")
    def pending(self, obj: VanityTier) -> bool:
        return obj.code in getattr(self, "_pending", set())


class TierPriceProposeForm(forms.ModelForm):
    class Meta:
        model = TierPriceChange
        fields = ("tier", "monthly_price", "setup_fee", "effective_from", "reason")
        help_texts = {"effective_from": "empty: in force from the approval on; never in the past"}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:
            services.tier_price_check(
                monthly_price=data.get("monthly_price", ""),
                setup_fee=data.get("setup_fee", ""),
                effective_from=data.get("effective_from"),
                reason=data.get("reason") or "",
            )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        tier = data.get("tier")
        if tier is not None and TierPriceChange.objects.filter(tier=tier, status="PENDING").exists():
            self.add_error("tier", f"{tier.code} already has a pending price change; approve or reject it first")
        return data


@admin.register(TierPriceChange)
class TierPriceChangeAdmin(MatrixAdmin):
    """Propose a price (the add form); a second, different staff user approves or rejects
    it with the actions. Nothing here edits a proposal after the fact."""

    matrix_read, matrix_write = "admin.vanity_tiers.read", "admin.vanity_tiers.propose"
    form = TierPriceProposeForm
    list_display = (
        "id",
        "tier",
        "monthly_price",
        "setup_fee",
        "currency",
        "status",
        "effective_from",
        "proposed_by",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status", "tier")
    list_select_related = ("tier",)
    actions = ["approve", "reject"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)  # proposals are never edited

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return authz.allowed("admin.vanity_tiers.approve", self._roles(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return [f.name for f in TierPriceChange._meta.fields]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return TierPriceProposeForm.Meta.fields if obj is None else self.get_readonly_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: TierPriceChange, form: Any, change: bool) -> None:
        change_row = services.tier_price_propose(  # the form ran the same checks (tier_price_check)
            tier_code=obj.tier_id,
            monthly_price=obj.monthly_price,
            setup_fee=obj.setup_fee,
            effective_from=obj.effective_from,
            reason=obj.reason,
            actor=authz.staff_actor(request.user),
        )
        obj.pk = change_row.pk

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # no relations; the service wrote the row

    def _decide(self, request: HttpRequest, queryset: QuerySet[TierPriceChange], approve: bool) -> None:
        service = services.tier_price_approve if approve else services.tier_price_reject
        done = 0
        for row in queryset:
            try:
                service(change_id=row.id, actor=authz.staff_actor(request.user))
                done += 1
            except DomainError as exc:
                messages.error(request, exc.message)
        if done:
            messages.success(request, f"{done} price change(s) {'approved' if approve else 'rejected'}.")

    @admin.action(description="Approve selected price changes (four eyes: not your own)", permissions=["approve"])
    def approve(self, request: HttpRequest, queryset: QuerySet[TierPriceChange]) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected price changes", permissions=["approve"])
    def reject(self, request: HttpRequest, queryset: QuerySet[TierPriceChange]) -> None:
        self._decide(request, queryset, approve=False)
