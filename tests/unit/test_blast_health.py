"""The worker's health state, its loopback endpoint and the healthcheck module."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from blast_worker.health import HealthState, serve


def test_health_reports() -> None:
    h = HealthState("w1", stale_after=60, started=1000.0)
    assert h.report(now=1010)[0] == 200
    code, body = h.report(now=1100)
    assert code == 503 and body["status"] == "unhealthy" and "no successful" in body["reason"]
    h.touch(now=1090)
    h.set("busy", "job-9")
    code, body = h.report(now=1100)
    assert (code, body["state"], body["job"], body["last_poll"]) == (200, "busy", "job-9", 1090)
    assert h.report(now=5000)[0] == 200  # a long BLAST run is not a failure
    h.stopping = True
    assert h.report(now=1100)[0] == 503


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """Run the image's healthcheck module against ``port``."""
    return subprocess.run(
        [sys.executable, "-m", "blast_worker.healthcheck"],
        env={"BLAST_HEALTH_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_health_endpoint_and_healthcheck_module() -> None:
    h = HealthState("w1")
    h.touch()
    server = serve(h, 0)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "ok" and body["worker_id"] == "w1" and body["state"] == "starting"
        proc = healthcheck(port)
        assert proc.returncode == 0 and json.loads(proc.stdout)["worker_id"] == "w1"
        h.stopping = True
        proc = healthcheck(port)
        assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "stopping"
    finally:
        server.shutdown()
        # Close the listening socket too: else the next connect is accepted by the kernel
        # and the healthcheck waits for its timeout instead of failing at once.
        server.server_close()
    proc = healthcheck(port)
    assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "unreachable"


def test_a_probe_that_hangs_up_leaves_no_traceback(capfd: pytest.CaptureFixture[str]) -> None:
    """A client that closes before the answer (a probe timing out) must not print a traceback."""
    # Only this server's handlers count: an earlier test's server in this process may
    # still hold a handler thread (a kept-alive connection), and CI's order varies.
    earlier = set(threading.enumerate())
    server = serve(HealthState("w1"), 0)
    try:
        for _ in range(20):
            with socket.create_connection(("127.0.0.1", server.server_port)) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        # Connections are accepted in order: once a 21st probe is answered, the 20 were
        # accepted; then wait for their handler threads, however slow the machine.
        url = f"http://127.0.0.1:{server.server_port}/healthz"
        with urllib.request.urlopen(url, timeout=30):
            pass
        deadline = time.monotonic() + 30
        while any("process_request" in t.name for t in set(threading.enumerate()) - earlier):
            assert time.monotonic() < deadline, "the server's handlers did not finish"
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capfd.readouterr().err
