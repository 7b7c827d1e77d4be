"""regulator-portal-service's pact with numbering-service (written as its team would).

The interface (issue 17, ADR 1701): read-only REST on the monthly regulator exports with a
client-credentials JWT carrying the role `regulator.portal` — list the exports, download
the signed manifest and the CSV, and ask numbering-service to verify an export before the
portal publishes it to ATRA. The portal needs the period, status and hash of an export,
the manifest's row count, CSV hash, signature and key id, and the verify verdict.
"""

from __future__ import annotations

from typing import Any

import requests
from pact import match

from tests.pacts.consumers.support import EXAMPLE_JWT, bearer, new_pact, write

CONSUMER = "regulator-portal-service"
PERIOD = "2025-01"
E = "/api/admin/v1/exports"
SHA256 = r"^[0-9a-f]{64}$"


class ExportsClient:
    def __init__(self, base: str, token: str) -> None:
        self.base, self.headers = base, {"Authorization": token}

    def _get(self, path: str, **params: str) -> requests.Response:
        reply = requests.get(f"{self.base}{path}", params=params, headers=self.headers, timeout=5)
        reply.raise_for_status()
        return reply

    def publishable(self) -> list[str]:
        return [e["period"] for e in self._get(f"{E}/").json()["results"] if e["status"] == "UPLOADED"]

    def fetch(self, period: str) -> tuple[dict[str, Any], bytes, str]:
        manifest = self._get(f"{E}/{period}/download/", file="manifest").json()
        csv_reply = self._get(f"{E}/{period}/download/", file="csv")
        return manifest, csv_reply.content, csv_reply.headers["Content-Type"]

    def verified(self, period: str) -> bool:
        reply = requests.post(f"{self.base}{E}/{period}/verify/", headers=self.headers, timeout=5)
        reply.raise_for_status()
        return reply.json()["ok"] is True and reply.json()["problems"] == []


def test_regulator_portal_service_contract() -> None:
    pact = new_pact(CONSUMER)
    auth = {"Authorization": bearer()}
    given = ("an uploaded regulator export", {"period": PERIOD})
    sha = match.regex("0" * 64, regex=SHA256)
    (
        pact.upon_receiving("GET the list of regulator exports")
        .given(*given)
        .with_request("GET", f"{E}/")
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(
            {
                "results": match.each_like(
                    {"period": PERIOD, "status": "UPLOADED", "sha256": sha, "row_count": match.int(0)}
                )
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("GET the signed manifest of an export")
        .given(*given)
        .with_request("GET", f"{E}/{PERIOD}/download/")
        .with_query_parameter("file", "manifest")
        .with_headers(auth)
        .will_respond_with(200)
        .with_body(
            {
                "period": PERIOD,
                "row_count": match.int(0),
                "csv": {"sha256": sha},
                "signature": match.str("c2lnbmF0dXJl"),
                "key_id": match.str("export-key-1"),
            },
            "application/json",
        )
    )
    (
        pact.upon_receiving("GET the CSV of an export")
        .given(*given)
        .with_request("GET", f"{E}/{PERIOD}/download/")
        .with_query_parameter("file", "csv")
        .with_headers(auth)
        .will_respond_with(200)
        .with_header("Content-Type", match.regex("text/csv; charset=utf-8", regex=r"^text/csv(;.*)?$"))
        .with_header("Content-Disposition", f'attachment; filename="numbering-{PERIOD}.csv"')
    )
    (
        pact.upon_receiving("POST verify an export")
        .given(*given)
        .with_request("POST", f"{E}/{PERIOD}/verify/")
        .with_headers(auth)
        .will_respond_with(200)
        .with_body({"period": PERIOD, "ok": True, "problems": []}, "application/json")
    )
    with pact.serve() as server:
        client = ExportsClient(str(server.url).rstrip("/"), EXAMPLE_JWT)
        assert client.publishable() == [PERIOD]
        manifest, _csv, content_type = client.fetch(PERIOD)
        assert manifest["period"] == PERIOD and manifest["signature"] and content_type.startswith("text/csv")
        assert client.verified(PERIOD)
    write(pact)
