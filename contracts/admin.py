"""Admin for issuers, signing keys, contracts, blocks and imports, with the import wizard:
upload CSV + signature → signature result → preview with per-row errors and the mode →
commit → progress. Every step calls contracts.imports (the one import code path), and
whether a run happens in the request or in the worker is contracts.services.import_dispatch."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from contracts import services, signing
from contracts.imports import import_create
from contracts.models import Contract, ContractEndingNotice, InventoryImport, Issuer, NumberBlock, SigningKey
from contracts.selectors import contract_termination_preview, signing_key_problem
from contracts.services import (
    check_key_window,
    contract_suspend,
    contract_terminate,
    import_dispatch,
    signing_key_add,
    signing_key_approve,
    signing_key_revoke,
)
from core import authz, formats
from core.admin import BigTableAdmin, MatrixAdmin, MatrixPermissions, ReadOnlyAdmin
from core.authz import roles_of, staff_actor
from core.errors import DomainError

TERMINAL = {
    InventoryImport.Status.COMMITTED,
    InventoryImport.Status.REJECTED,
    InventoryImport.Status.FAILED,
    InventoryImport.Status.ALREADY_IMPORTED,
}


class SigningKeyInline(admin.TabularInline):
    model = SigningKey
    fields = ("fingerprint", "valid_from", "valid_to", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _prefixes(values: list[str], field: str) -> list[str]:
    """The service's prefix rule (core.formats), as a form error rather than a 500."""
    try:
        return formats.check_mobile_prefixes(values, field=field)
    except DomainError as exc:
        raise forms.ValidationError(exc.message) from None


class IssuerForm(forms.ModelForm):
    class Meta:
        model = Issuer
        fields = ("code", "name", "kind", "msisdn_prefixes")

    def clean_msisdn_prefixes(self) -> list[str]:
        return _prefixes(self.cleaned_data["msisdn_prefixes"], "msisdn_prefixes")


@admin.register(Issuer)
class IssuerAdmin(MatrixAdmin):
    form = IssuerForm
    matrix_read, matrix_write = "admin.issuers.read", "admin.issuers.write"
    save_service = services.issuer_save
    matrix_deactivate = "admin.issuers.deactivate"

    @staticmethod
    def deactivate_service(row: Issuer, *, actor: Any) -> Any:
        return services.issuer_deactivate(issuer=row, actor=actor)

    list_display = ("code", "name", "kind", "prefixes", "deactivated_at")
    search_fields = ("code", "name")
    inlines = [SigningKeyInline]

    @admin.display(description="MSISDN prefixes")
    def prefixes(self, obj: Issuer) -> str:
        return ", ".join(obj.msisdn_prefixes) or "—"


class SigningKeyForm(forms.ModelForm):
    class Meta:
        model = SigningKey
        fields = ("issuer", "public_key_pem", "valid_from", "valid_to")

    def clean_public_key_pem(self) -> str:
        try:
            key = signing.load_public_key(self.cleaned_data["public_key_pem"])
        except DomainError as exc:
            raise forms.ValidationError(exc.message) from None
        if SigningKey.objects.filter(fingerprint=signing.fingerprint(key)).exists():
            raise forms.ValidationError("this key is already installed")
        return self.cleaned_data["public_key_pem"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        try:  # the same window rules as the service (not backdated, lifetime cap)
            data["valid_from"], data["valid_to"] = check_key_window(data.get("valid_from"), data.get("valid_to"))
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return data


@admin.register(SigningKey)
class SigningKeyAdmin(MatrixAdmin):
    matrix_read, matrix_write = "admin.signing_keys.read", "admin.signing_keys.write"
    list_display = (
        "issuer",
        "short_fingerprint",
        "valid_from",
        "valid_to",
        "revoked_at",
        "created_by",
        "approved_by",
        "usable",
    )
    list_select_related = ("issuer",)
    list_filter = ("issuer",)
    search_fields = ("fingerprint",)
    actions = ["approve", "revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = SigningKeyForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return (
            "issuer",
            "fingerprint",
            "public_key_pem",
            "valid_from",
            "valid_to",
            "revoked_at",
            "created_at",
            "created_by",
            "approved_by",
            "approved_at",
        )

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("issuer", "public_key_pem", "valid_from", "valid_to")
        return self.get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # keys are revoked, never deleted: old imports name their fingerprint

    @admin.display(description="fingerprint")
    def short_fingerprint(self, obj: SigningKey) -> str:
        return obj.fingerprint[:16] + "…"

    @admin.display(boolean=True)
    def usable(self, obj: SigningKey) -> bool:
        return signing_key_problem(obj) is None

    def save_model(self, request: HttpRequest, obj: SigningKey, form: Any, change: bool) -> None:
        key = signing_key_add(
            issuer_code=obj.issuer.code,
            public_key_pem=obj.public_key_pem,
            valid_from=obj.valid_from,
            valid_to=obj.valid_to,
            actor=staff_actor(request.user),
        )
        obj.pk, obj.fingerprint, obj.created_at = key.pk, key.fingerprint, key.created_at

    @admin.action(description="Approve selected keys (four eyes: not your own)", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        done = 0
        for key in queryset:
            try:
                signing_key_approve(fingerprint=key.fingerprint, actor=staff_actor(request.user))
                done += 1
            except DomainError as exc:
                messages.error(request, exc.message)
        if done:
            messages.success(request, f"{done} key(s) approved.")

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        for key in queryset:
            signing_key_revoke(fingerprint=key.fingerprint, actor=staff_actor(request.user), reason="admin")
        messages.success(request, f"{queryset.count()} key(s) revoked.")


class ContractForm(forms.ModelForm):
    """Status changes are checked like the service checks them (TERMINATED is final)."""

    class Meta:
        model = Contract
        fields = ("reference", "issuer", "kind", "status", "starts_on", "ends_on", "agreed_prefixes")

    roles: frozenset[str] = frozenset()  # the staff user's (set by ContractAdmin.get_form)

    def clean_status(self) -> str:
        new = self.cleaned_data["status"]
        before = None
        if self.instance.pk is not None:
            before = Contract.objects.filter(pk=self.instance.pk).values_list("status", flat=True).first()
        problem = services.contract_status_change_problem(before, new) or services.contract_status_role_problem(
            before, new, self.roles
        )
        if problem:
            raise forms.ValidationError(problem)
        return new

    def clean_agreed_prefixes(self) -> list[str]:
        return _prefixes(self.cleaned_data["agreed_prefixes"], "agreed_prefixes")


class TerminateForm(forms.Form):
    ends_on = forms.DateField(
        label="End date",
        help_text="Held numbers are recalled on this date; tenants are warned 30 and 7 days before. Today or later.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(max_length=500, help_text="Recorded in the audit trail and the event.")


@admin.register(Contract)
class ContractAdmin(MatrixAdmin):
    form = ContractForm
    matrix_read, matrix_write = "admin.contracts.read", "admin.contracts.write"
    save_service = services.contract_save
    list_display = ("reference", "issuer", "kind", "status", "starts_on", "ends_on")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"roles": roles_of(request.user)})

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return authz.allowed("admin.contracts.suspend", roles_of(request.user))

    def has_terminate_permission(self, request: HttpRequest) -> bool:
        return authz.allowed("admin.contracts.terminate", roles_of(request.user))

    list_select_related = ("issuer",)
    list_filter = ("status", "kind", "issuer")
    search_fields = ("reference",)
    actions = ["suspend", "terminate"]

    # The same audited, checked transitions as POST /contracts/{id}/suspend|terminate/.
    @admin.action(description="Suspend selected contracts (audited)", permissions=["suspend"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Contract]) -> None:
        self._transition(request, queryset, contract_suspend, "suspended")

    @admin.action(description="Terminate selected contract… (preview first)", permissions=["terminate"])
    def terminate(self, request: HttpRequest, queryset: QuerySet[Contract]) -> HttpResponse | None:
        """A termination is never one click: it leads to the preview of what it will do
        (numbers per state, per tenant), where the end date is chosen and confirmed."""
        ids = list(queryset.values_list("id", flat=True)[:2])
        if len(ids) != 1:
            messages.error(request, "Terminate one contract at a time: its preview shows what it will do.")
            return None
        return HttpResponseRedirect(reverse("admin:contracts_contract_terminate", args=[ids[0]]))

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/terminate/", wrap(self.terminate_view), name="contracts_contract_terminate"),
            *super().get_urls(),
        ]

    def terminate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the preview (what terminating would retire now and recall at the end date,
        per state and per tenant). POST: terminate with the end date, through the service."""
        if not self.has_terminate_permission(request):
            raise PermissionDenied
        contract = get_object_or_404(Contract.objects.select_related("issuer"), pk=pk)
        form = TerminateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                contract_terminate(
                    contract_id=contract.id,
                    actor=staff_actor(request.user),
                    reason=form.cleaned_data["reason"],
                    ends_on=form.cleaned_data["ends_on"],
                )
            except DomainError as exc:
                form.add_error("ends_on" if exc.field == "ends_on" else None, exc.message)
            else:
                messages.success(request, f"Contract {contract.reference} terminated.")
                return HttpResponseRedirect(reverse("admin:contracts_contract_change", args=[contract.pk]))
        return TemplateResponse(
            request,
            "admin/contracts/contract/terminate.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Terminate contract {contract.reference}?",
                "contract": contract,
                "preview": contract_termination_preview(contract.id),
                "form": form,
                "final": contract.status == Contract.Status.TERMINATED,
            },
        )

    def _transition(self, request: HttpRequest, queryset: QuerySet[Contract], service: Any, done: str) -> None:
        changed = 0
        for contract_id in queryset.values_list("id", flat=True):
            try:
                service(contract_id=contract_id, actor=staff_actor(request.user), reason="admin")
            except DomainError as exc:
                messages.error(request, exc.message)
            else:
                changed += 1
        if changed:
            messages.success(request, f"{changed} contract(s) {done}.")


@admin.register(NumberBlock)
class NumberBlockAdmin(MatrixPermissions, BigTableAdmin):
    matrix_read, matrix_write = "admin.blocks.read", "admin.blocks.write"
    save_service = services.block_save
    matrix_deactivate = "admin.blocks.deactivate"

    @staticmethod
    def deactivate_service(row: NumberBlock, *, actor: Any) -> Any:
        return services.block_deactivate(block=row, actor=actor)

    list_display = (
        "name",
        "issuer",
        "kind",
        "range_start",
        "range_end",
        "contract",
        "inventory_import",
        "deactivated_at",
    )
    list_select_related = ("issuer", "contract", "inventory_import")
    list_filter = ("issuer", "kind")
    search_fields = ("name",)
    raw_id_fields = ("contract", "inventory_import")


class UploadForm(forms.Form):
    issuer = forms.ModelChoiceField(queryset=Issuer.objects.all(), to_field_name="code")
    csv_file = forms.FileField(
        label="CSV file", help_text="Exactly as the issuer signed it (docs/import-csv-format.md)."
    )
    signature = forms.FileField(label="Detached signature", help_text="Raw RSA signature bytes (.sig).")


def _progress(imp: InventoryImport) -> str:
    total = max(imp.total_rows, 1)
    return format_html(
        '<progress max="{}" value="{}"></progress> {}/{}', total, imp.processed_rows, imp.processed_rows, imp.total_rows
    )


@admin.register(InventoryImport)
class InventoryImportAdmin(BigTableAdmin):
    list_display = (
        "id",
        "issuer",
        "filename",
        "status",
        "mode",
        "progress",
        "accepted_count",
        "rejected_count",
        "duplicate_count",
        "created_by",
        "created_at",
    )
    list_select_related = ("issuer",)
    list_filter = ("status", "issuer")
    search_fields = ("=file_sha256", "filename")
    readonly_fields = (
        "issuer",
        "contract",
        "filename",
        "file_sha256",
        "key_fingerprint",
        "mode",
        "status",
        "progress",
        "total_rows",
        "accepted_count",
        "rejected_count",
        "duplicate_count",
        "error",
        "report_table",
        "created_by",
        "created_at",
        "completed_at",
    )
    fields = readonly_fields
    change_list_template = "admin/contracts/inventoryimport/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the wizard is the way in

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # core.authz decides, as over REST (ADR 1351).
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff) and authz.allowed("admin.imports.read", roles_of(user))

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_upload_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff) and authz.allowed("admin.imports.write", roles_of(user))

    @admin.display(description="progress")
    def progress(self, obj: InventoryImport) -> str:
        return _progress(obj)

    @admin.display(description="per-row report (problem rows)")
    def report_table(self, obj: InventoryImport) -> str:
        if not obj.report:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e["row"], e["result"], e["message"]) for e in obj.report[:500]),
        )
        return format_html("<table><tr><th>row</th><th>result</th><th>message</th></tr>{}</table>", rows)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("wizard/", wrap(self.upload_view), name="contracts_inventoryimport_wizard"),
            path("<int:pk>/wizard/", wrap(self.step_view), name="contracts_inventoryimport_step"),
            path("<int:pk>/commit/", wrap(self.commit_view), name="contracts_inventoryimport_commit"),
            path("<int:pk>/status/", wrap(self.status_view), name="contracts_inventoryimport_status"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **kw: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **kw}

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_upload_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                imp = import_create(
                    issuer_code=form.cleaned_data["issuer"].code,
                    csv_file=form.cleaned_data["csv_file"],
                    signature=form.cleaned_data["signature"],
                    actor=staff_actor(request.user),
                    filename=form.cleaned_data["csv_file"].name,
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                # Signature check, then a dry run of every row: the preview (in the worker
                # when imports are asynchronous, so a 100 000-row file never blocks a request).
                import_dispatch(imp.pk, actor=staff_actor(request.user), dry_run=True)
                return HttpResponseRedirect(reverse("admin:contracts_inventoryimport_step", args=[imp.pk]))
        return TemplateResponse(
            request,
            "admin/contracts/inventoryimport/wizard_upload.html",
            self._context(request, title="Import signed inventory — 1. upload", form=form),
        )

    def step_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        imp = get_object_or_404(InventoryImport.objects.select_related("issuer"), pk=pk)
        if not self.has_view_permission(request, imp):
            raise PermissionDenied
        valid = max(imp.total_rows - imp.rejected_count - imp.duplicate_count, 0)
        S = InventoryImport.Status
        return TemplateResponse(
            request,
            "admin/contracts/inventoryimport/wizard_step.html",
            self._context(
                request,
                title=f"Import {imp.pk}: {imp.issuer.code} — {imp.filename}",
                imp=imp,
                valid_rows=valid,
                report=imp.report[:200],
                more=max(len(imp.report) - 200, 0),
                signature_ok=bool(imp.key_fingerprint),
                can_commit=imp.status == S.VERIFIED and valid > 0 and self.has_upload_permission(request),
                waiting=imp.status in (S.PENDING, S.RUNNING),
                terminal=imp.status in TERMINAL,
                modes=InventoryImport.Mode.choices,
            ),
        )

    def commit_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if request.method != "POST" or not self.has_upload_permission(request):
            raise PermissionDenied
        imp = get_object_or_404(InventoryImport, pk=pk)
        try:
            outcome = import_dispatch(imp.pk, actor=staff_actor(request.user), mode=request.POST.get("mode", imp.mode))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            if outcome is None:
                messages.info(request, f"Import {pk} queued; progress below.")
            else:
                level = messages.SUCCESS if outcome.ok else messages.ERROR
                messages.add_message(request, level, f"Import {pk}: {outcome.message}")
        return HttpResponseRedirect(reverse("admin:contracts_inventoryimport_step", args=[pk]))

    def status_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        imp = get_object_or_404(InventoryImport, pk=pk)
        if not self.has_view_permission(request, imp):
            raise PermissionDenied
        return JsonResponse(
            {
                "id": imp.pk,
                "status": imp.status,
                "processed_rows": imp.processed_rows,
                "total_rows": imp.total_rows,
                "accepted": imp.accepted_count,
                "rejected": imp.rejected_count,
                "duplicates": imp.duplicate_count,
                "terminal": imp.status in TERMINAL,
                "error": imp.error,
            }
        )


@admin.register(ContractEndingNotice)
class ContractEndingNoticeAdmin(ReadOnlyAdmin):
    """The end-date warnings sent to tenants (ADR 1611): what was sent, never edited."""

    matrix_read = "admin.contracts.read"
    list_display = ("contract", "tenant", "days_before", "ends_on", "numbers", "sent_at")
    list_filter = ("days_before",)
    search_fields = ("contract__reference",)
    list_select_related = ("contract", "tenant")
