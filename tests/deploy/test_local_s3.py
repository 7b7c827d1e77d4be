"""deploy/local/s3.sh checks S3 health with a real call, not an open port (issue 18 §4).

A broken local server is simulated by an HTTP server that answers 500 to everything, what a
moto left behind by a deleted checkout does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.grpc_server.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "local" / "s3.sh"
BROKEN = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def _fail(self):
        self.send_response(500); self.end_headers(); self.wfile.write(b"boom")
    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _fail
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


@pytest.fixture
def run_s3(tmp_path: Path) -> Iterator[tuple[int, Path, object]]:
    port = free_port()
    pidfile = tmp_path / "s3.pid"
    env = {
        **os.environ,
        "S3_DEV_PORT": str(port),
        "S3_DEV_PIDFILE": str(pidfile),
        "S3_DEV_LOG": str(tmp_path / "s3.log"),
    }

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603
            ["bash", str(SCRIPT)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )

    yield port, pidfile, run
    if pidfile.exists():
        try:
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _broken_server(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", BROKEN, str(port)])  # noqa: S603
    time.sleep(0.5)
    return process


def test_a_broken_server_we_started_is_replaced_by_a_working_one(run_s3: tuple[int, Path, object]) -> None:
    port, pidfile, run = run_s3
    broken = _broken_server(port)
    pidfile.write_text(str(broken.pid))
    result = run()  # type: ignore[operator]
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"127.0.0.1:{port} (pid {broken.pid}, ours) is broken" in result.stdout
    assert "500" in result.stdout
    assert broken.wait(10) is not None, "the broken server was not stopped"
    assert int(pidfile.read_text()) != broken.pid
    again = run()  # type: ignore[operator]
    assert again.returncode == 0 and "healthy" in again.stdout


def test_a_broken_server_that_is_not_ours_is_reported_and_left_alone(run_s3: tuple[int, Path, object]) -> None:
    port, _pidfile, run = run_s3
    broken = _broken_server(port)
    try:
        result = run()  # type: ignore[operator]
        assert result.returncode == 1
        assert f"something listens on 127.0.0.1:{port} but is not a working S3" in result.stderr
        assert "500" in result.stderr and "left alone" in result.stderr
        assert broken.poll() is None, "a server we did not start must not be killed"
    finally:
        broken.kill()
        broken.wait(10)
