"""Readiness and liveness probes of emulated containers, with ACI's (Kubernetes') rules.

A probe runs ``initialDelaySeconds`` after each start, then every ``periodSeconds``.
Every failure adds an ``Unhealthy`` event (``Readiness probe failed: ...``), as ACI's
instance view shows it; ``failureThreshold`` consecutive liveness failures kill the
container, which then restarts by the group's restart policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

# ACI's defaults (the spec leaves them to the service; these are Kubernetes').
DEFAULT_PERIOD = 10
DEFAULT_TIMEOUT = 1
DEFAULT_FAILURE_THRESHOLD = 3
_EXEC_SLACK = 3.0

_HTTP_GET = (
    "import ssl, sys, urllib.request\n"
    "ctx = ssl._create_unverified_context()\n"
    "urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]), context=ctx)\n"
)


@dataclass
class Probe:
    """One probe of a container.

    :param kind: ``Readiness`` or ``Liveness``.
    :param command: exec command, or ``None`` for an HTTP GET.
    :param url: ``http(s)://127.0.0.1:<port><path>`` for an HTTP GET.
    :param initial_delay: seconds after a start before the first run.
    :param period: seconds between runs.
    :param timeout: seconds a run may take.
    :param failure_threshold: consecutive failures that count (liveness: kill).
    :param next_due: ``time.monotonic()`` of the next run; ``None`` while stopped.
    :param failures: consecutive failures so far.
    """

    kind: str
    command: list[str] | None
    url: str | None
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    next_due: float | None = None
    failures: int = 0

    def arm(self) -> None:
        """Schedule the first run after a (re)start."""
        self.failures = 0
        self.next_due = time.monotonic() + self.initial_delay

    def due(self, now: float) -> bool:
        """Whether it should run now; if so, the next run is scheduled.

        :param now: ``time.monotonic()``.
        :return: ``True`` when due.
        """
        if self.next_due is None or self.next_due > now:
            return False
        self.next_due = now + self.period
        return True


def probes_of(cprops: dict[str, Any]) -> list[Probe]:
    """The probes a container's properties declare.

    :param cprops: the container's ``properties``.
    :return: readiness first, then liveness.
    """
    out = []
    for kind, key in (("Readiness", "readinessProbe"), ("Liveness", "livenessProbe")):
        spec = cprops.get(key)
        if not spec:
            continue
        command = (spec.get("exec") or {}).get("command")
        http = spec.get("httpGet")
        url = None
        if not command and http:
            scheme = str(http.get("scheme") or "http").lower()
            url = f"{scheme}://127.0.0.1:{int(http['port'])}{http.get('path') or '/'}"
        if not command and not url:
            continue
        out.append(
            Probe(
                kind=kind,
                command=list(command) if command else None,
                url=url,
                initial_delay=float(spec.get("initialDelaySeconds") or 0),
                period=float(spec.get("periodSeconds") or DEFAULT_PERIOD),
                timeout=float(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT),
                failure_threshold=int(spec.get("failureThreshold") or DEFAULT_FAILURE_THRESHOLD),
            )
        )
    return out


def run_probe(
    client: docker.DockerClient, probe: Probe, container_id: str, sandbox_id: str | None
) -> str | None:
    """Run a probe once.

    Exec probes run in the container; HTTP GETs run from the group's sandbox, which
    shares its localhost.

    :param client: the Docker client.
    :param probe: the probe.
    :param container_id: the probed container.
    :param sandbox_id: the group's sandbox (for HTTP GETs).
    :return: ``None`` when it passed, else why it failed (one line).
    """
    if probe.command is not None:
        target, command = container_id, probe.command
    else:
        target = sandbox_id or container_id
        command = ["python3", "-c", _HTTP_GET, str(probe.url), str(probe.timeout)]
    started = time.monotonic()
    try:
        exec_id = client.api.exec_create(target, command, stdout=True, stderr=True)["Id"]
        output = bytes(client.api.exec_start(exec_id)).decode("utf-8", "replace").strip()
        code = client.api.exec_inspect(exec_id).get("ExitCode")
    except docker.errors.APIError as exc:
        return f"{exc.explanation or exc}"
    # Slack for docker exec's own start-up on a busy machine.
    if time.monotonic() - started > probe.timeout + _EXEC_SLACK:
        return f"timeout: the probe took more than {probe.timeout:g} s"
    if code == 0:
        return None
    last = output.splitlines()[-1] if output else f"exit code {code}"
    return last[:200]
