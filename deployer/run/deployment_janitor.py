"""The deployment janitor: ``deployment.ttl`` and ``workloads.ipyparallel.idle_shutdown``.

``deployer up`` adds a ``<deployment>-janitor`` group when either is set. It deletes every
group of the deployment (itself last) when

* the TTL (``JANITOR_TTL`` seconds) has run out, counted from the deployment's first
  container start as ARM reports it (so a later ``deployer up`` or a janitor restart does not
  move it), or
* the cluster has been idle for ``JANITOR_IDLE_SHUTDOWN`` seconds, JupyterHub-culler style.

Idle is read from the notebook server's ``GET /api/kernels`` (token auth): the cluster is
busy while any kernel's ``execution_state`` is ``busy`` or ``starting``, and the idle time
counts from the latest kernel ``last_activity`` (or from the janitor's start when there are
no kernels). A notebook that cannot be reached counts as activity, so an outage never deletes
a cluster. Why it ended is written to the job table (partition ``deployments``) when the
janitor has storage, and to its own log.
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

from deployer.backends.base import Backend, ObservedGroup
from deployer.run import heartbeat

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
            f"idle_shutdown: no kernel activity and no running kernel for {now - since:.0f} s "
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
        from deployer.run.api import storage_client

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
    from deployer import api as deployer_api
    from deployer.run.api import _scope_settings
    from deployer.run.groups import janitor_group_name

    deployment = env["JANITOR_DEPLOYMENT"]
    ttl = float(env["JANITOR_TTL"]) if env.get("JANITOR_TTL") else None
    insecure = env.get("JANITOR_NOTEBOOK_INSECURE") == "1"
    idle = float(env["JANITOR_IDLE_SHUTDOWN"]) if env.get("JANITOR_IDLE_SHUTDOWN") else None
    url, token = env.get("JANITOR_NOTEBOOK_URL", ""), env.get("NOTEBOOK_TOKEN", "")
    interval = float(env.get("JANITOR_INTERVAL") or 10)
    backend = deployer_api.aci_backend(_scope_settings(deployment, deployer_api.NO_OVERRIDES))
    since = time.time()
    while True:
        now = time.time()
        deadline = deadline_of(backend.list(deployment), ttl)
        if idle is not None and url:
            since = idle_since(since, read_activity(url, token, insecure), now)
        reason = verdict(now, deadline, idle, since)
        if reason:
            log.info("%s", reason)
            _record(deployment, reason)
            teardown(backend, deployment, janitor_group_name(deployment))
            return
        heartbeat.beat()
        time.sleep(interval)
