"""The deployment janitor: ``deployment.ttl`` and ``workloads.ipyparallel.idle_shutdown``.

``deployer up`` adds a ``<deployment>-janitor`` group when either is set. It deletes every
group of the deployment (itself last) when

* the TTL (``JANITOR_TTL`` seconds) has run out, counted from the deployment's first
  container start as ARM reports it (so a later ``deployer up`` or a janitor restart does not
  move it), or
* the cluster has been idle for ``JANITOR_IDLE_SHUTDOWN`` seconds, JupyterHub-culler style.

Idle needs both signals idle (without a notebook, only the second counts):

* the notebook server's ``GET /api/kernels`` (token auth): busy while any kernel's
  ``execution_state`` is ``busy`` or ``starting``; its activity is the latest kernel
  ``last_activity``;
* ipyparallel tasks: the ipcontroller container runs ``ipp-activity`` beside the controller,
  a loopback client that logs one JSON line (``"event": "ipp-activity"``) every
  ``IPP_ACTIVITY_INTERVAL`` seconds with the pending and running tasks and the last task
  activity. The janitor reads the tail of that container's log through ARM (as
  ``deployer logs`` does), because the hub's client ports are reachable only inside the
  head group. Busy while tasks are pending or running.

The idle time counts from the latest activity of either signal (or from the janitor's
start). A notebook that cannot be reached, and a missing or stale activity line, count as
activity, so an outage never deletes a cluster. Why it ended is written to the job table
(partition ``deployments``) when the janitor has storage, and to its own log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from blast_client.config import read_secret

from deployer import defaults
from deployer.backends.base import Backend, ObservedGroup
from deployer.plan.janitor import janitor_group_name
from deployer.run import heartbeat
from deployer.scope import aci_backend, scope_settings, storage_client
from deployer.settings import NO_OVERRIDES

log = logging.getLogger("deployer.janitor")


@dataclass(frozen=True)
class Activity:
    """What the notebook server reports.

    Args:
        busy (bool): A kernel is executing (or starting), or the server did not answer.
        last (float | None): Epoch seconds of the latest kernel activity, if any kernel.
    """

    busy: bool
    last: float | None = None


def parse_kernels(body: bytes) -> Activity:
    """Read ``/api/kernels``'s answer (pure).

    Args:
        body (bytes): The JSON list of kernels.
    """
    kernels = json.loads(body)
    busy = any(k.get("execution_state") in ("busy", "starting") for k in kernels)
    stamps = [
        dt.datetime.fromisoformat(str(k["last_activity"]).replace("Z", "+00:00")).timestamp()
        for k in kernels
        if k.get("last_activity")
    ]
    return Activity(busy, max(stamps) if stamps else None)


IPP_EVENT = "ipp-activity"
STALE_INTERVALS = 3
"""An activity line older than this many reporter intervals (plus a minute) is stale."""


@dataclass(frozen=True)
class IppReport:
    """One ``ipp-activity`` line of the ipcontroller container.

    Args:
        time (float): Epoch seconds of the report.
        interval (float): Seconds between reports.
        pending (int): Tasks not yet assigned to an engine.
        running (int): Tasks outstanding on engines.
        last_activity (float | None): Epoch of the last task activity seen, if any.
    """

    time: float
    interval: float
    pending: int
    running: int
    last_activity: float | None


def parse_ipp_log(text: str) -> IppReport | None:
    """The latest ``ipp-activity`` line in a log tail, or None (pure).

    Args:
        text (str): The container's log (other lines and broken lines are skipped).
    """
    for line in reversed(text.splitlines()):
        start = line.find("{")
        if start < 0 or IPP_EVENT not in line:
            continue
        try:
            doc = json.loads(line[start:])
            if doc.get("event") != IPP_EVENT:
                continue
            last = doc.get("last_activity")
            return IppReport(
                time=float(doc["time"]),
                interval=float(doc["interval"]),
                pending=int(doc["pending"]),
                running=int(doc["running"]),
                last_activity=float(last) if last is not None else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return None


def ipp_activity(report: IppReport | None, now: float) -> Activity:
    """What an ``ipp-activity`` report says; none, or a stale one, counts as busy (pure).

    Args:
        report (IppReport | None): The latest report.
        now (float): Epoch seconds.
    """
    if report is None or now - report.time > STALE_INTERVALS * report.interval + 60:
        return Activity(busy=True)
    return Activity(report.pending > 0 or report.running > 0, report.last_activity)


def combine(*signals: Activity) -> Activity:
    """Busy when any signal is busy; the latest activity of all (pure).

    Args:
        signals (Activity): The notebook's and the controller's.
    """
    stamps = [a.last for a in signals if a.last is not None]
    return Activity(any(a.busy for a in signals), max(stamps) if stamps else None)


def idle_since(previous: float, activity: Activity, now: float) -> float:
    """When the idle time began: ``now`` while busy, else the latest known activity (pure).

    Args:
        previous (float): The value of the last pass (the janitor's start at first).
        activity (Activity): This pass's observation.
        now (float): Epoch seconds.
    """
    if activity.busy:
        return now
    return max(previous, activity.last or previous)


def verdict(
    now: float, deadline: float | None, idle_limit: float | None, since: float
) -> str | None:
    """Why the deployment must end now, or None (pure).

    Args:
        now (float): Epoch seconds.
        deadline (float | None): End of ``deployment.ttl``.
        idle_limit (float | None): ``idle_shutdown`` in seconds.
        since (float): Start of the current idle time.
    """
    if deadline is not None and now >= deadline:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(deadline))
        return f"deployment.ttl reached at {when}: deleted every group"
    if idle_limit is not None and now - since >= idle_limit:
        return (
            f"idle_shutdown: no kernel or ipyparallel task activity for {now - since:.0f} s "
            f"(limit {idle_limit:.0f} s): deleted every group"
        )
    return None


def deadline_of(groups: Sequence[ObservedGroup], ttl: float | None) -> float | None:
    """End of the TTL: the first container start of the deployment plus ``ttl`` (pure)."""
    starts = [c.started for g in groups for c in g.containers if c.started is not None]
    if ttl is None or not starts:
        return None
    return min(starts) + ttl


def read_activity(url: str, token: str, insecure: bool = False, timeout: float = 10.0) -> Activity:
    """Ask the notebook server; an error counts as busy (never cull on an outage).

    Args:
        url (str): The notebook server's base URL.
        token (str): Its token.
        insecure (bool): Accept its self-signed certificate (``tls.mode: self-signed``).
        timeout (float): Seconds.
    """
    request = urllib.request.Request(
        url.rstrip("/") + "/api/kernels", headers={"Authorization": f"token {token}"}
    )
    context = None
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as answer:
            return parse_kernels(answer.read())
    except (OSError, ValueError, urllib.error.URLError) as exc:
        log.warning("notebook server did not answer (%s); counting it as activity", exc)
        return Activity(busy=True)


def read_ipp_activity(backend: Backend, group: str, container: str, now: float) -> Activity:
    """Read the controller's latest ``ipp-activity`` line through ARM; an error is busy.

    Args:
        backend (Backend): The deployment's backend.
        group (str): The head group.
        container (str): The ipcontroller container.
        now (float): Epoch seconds.
    """
    try:
        text = backend.logs(group, container, tail=LOG_TAIL)
    except Exception as exc:  # noqa: BLE001 - any failure counts as activity, never a cull
        log.warning("could not read %s/%s logs (%s); counting it as busy", group, container, exc)
        return Activity(busy=True)
    return ipp_activity(parse_ipp_log(text), now)


LOG_TAIL = 200
"""Log lines read per pass: several reports even when the controller logs a lot."""


def teardown(backend: Backend, deployment: str, self_group: str) -> None:
    """Delete every group of the deployment, the janitor's own last."""
    for g in sorted(backend.list(deployment), key=lambda g: g.name):
        if g.name != self_group:
            log.info("deleting %s", g.name)
            backend.delete(g.name)
    log.info("deleting my own group %s", self_group)
    backend.delete(self_group)


def _record(deployment: str, reason: str) -> None:
    try:
        table = storage_client().storage.table
        table.upsert_entity(
            {
                "PartitionKey": "deployments",
                "RowKey": deployment,
                "status": "ended",
                "reason": reason,
                "finished": time.time(),
            }
        )
    except Exception as exc:  # noqa: BLE001 - the log line below still says why
        log.warning("could not record the reason in the job table: %s", exc)


def main_from_env(env: Mapping[str, str]) -> None:
    """``deployer-janitor`` for a deployment: pass every ``JANITOR_INTERVAL`` seconds."""
    deployment = env["JANITOR_DEPLOYMENT"]
    ttl = float(env["JANITOR_TTL"]) if env.get("JANITOR_TTL") else None
    insecure = env.get("JANITOR_NOTEBOOK_INSECURE") == "1"
    idle = float(env["JANITOR_IDLE_SHUTDOWN"]) if env.get("JANITOR_IDLE_SHUTDOWN") else None
    url, token = env.get("JANITOR_NOTEBOOK_URL", ""), read_secret(env, "NOTEBOOK_TOKEN") or ""
    ipp_group, _, ipp_container = env.get("JANITOR_IPP_LOGS", "").partition("/")
    interval = float(env.get("JANITOR_INTERVAL") or defaults.JANITOR_INTERVAL_S)
    backend = aci_backend(scope_settings(None, deployment, NO_OVERRIDES))
    since = time.time()
    while True:
        now = time.time()
        deadline = deadline_of(backend.list(deployment), ttl)
        if idle is not None:
            signals = []
            if url:
                signals.append(read_activity(url, token, insecure))
            if ipp_group:
                signals.append(read_ipp_activity(backend, ipp_group, ipp_container, now))
            if signals:
                since = idle_since(since, combine(*signals), now)
        reason = verdict(now, deadline, idle, since)
        if reason:
            log.info("%s", reason)
            _record(deployment, reason)
            teardown(backend, deployment, janitor_group_name(deployment))
            return
        heartbeat.beat()
        time.sleep(interval)
