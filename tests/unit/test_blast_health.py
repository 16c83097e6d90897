"""The worker's health state, its loopback endpoint and the healthcheck module."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

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


def test_health_endpoint_and_healthcheck_module() -> None:
    h = HealthState("w1")
    h.touch()
    server = serve(h, 0)
    try:
        port = server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "ok" and body["worker_id"] == "w1" and body["state"] == "starting"
        proc = subprocess.run(
            [sys.executable, "-m", "blast_worker.healthcheck"],
            env={"BLAST_HEALTH_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 0 and json.loads(proc.stdout)["worker_id"] == "w1"
        h.stopping = True
        proc = subprocess.run(
            [sys.executable, "-m", "blast_worker.healthcheck"],
            env={"BLAST_HEALTH_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "stopping"
    finally:
        server.shutdown()
        # Close the listening socket too: else the next connect is accepted by the kernel
        # and the healthcheck waits for its timeout instead of failing at once.
        server.server_close()
    proc = subprocess.run(
        [sys.executable, "-m", "blast_worker.healthcheck"],
        env={"BLAST_HEALTH_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and json.loads(proc.stdout)["status"] == "unreachable"
