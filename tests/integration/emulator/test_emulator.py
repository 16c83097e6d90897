"""The local ACI emulator with real containers, driven through the real ACI SDK.

Each test creates its groups concurrently where it can: the emulator starts them in the
background while the SDK polls, so a test costs a few seconds.
"""

from __future__ import annotations

import time
from typing import Any

import docker
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from aci_emulator import FAKE_TOKEN, FakeArm
from aci_emulator.runtime import GROUP_EVICTED_EVENT, LABEL_INSTANCE
from testbed.engine import wait_for

RG = "research"
# Any registry and tag: the emulator maps <registry>/<name>:<tag> to IMAGE_PREFIX/<name>:TAG.
BASE = "example.azurecr.io/base:v1"
PY_SERVER = ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]


def fetch(*urls: str, headers: dict[str, str] | None = None) -> list[str]:
    """A command that GETs each URL (retrying while the server starts) and prints the status.

    Args:
        urls (str): The URLs, in order.
        headers (dict[str, str] | None): Request headers.
    """
    script = (
        "import sys, time, urllib.request\n"
        f"headers = {headers or {}!r}\n"
        "for url in sys.argv[1:]:\n"
        "    for attempt in range(100):\n"
        "        try:\n"
        "            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),"
        " timeout=5) as r:\n"
        "                print(url, r.status, flush=True)\n"
        "            break\n"
        "        except OSError as exc:\n"
        "            if attempt == 99: raise\n"
        "            time.sleep(0.2)\n"
    )
    return ["python3", "-c", script, *urls]


CONNECT_ONCE = (
    "import socket, sys\n"
    "socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=5).close()\n"
    "print('connected at once', flush=True)\n"
)
"""A command that connects to a loopback port once, with no retry (argv: the port)."""


def container(
    name: str, command: list[str], cpu: float = 0.5, memory: float = 0.5, **kw: Any
) -> m.Container:
    """An SDK container of the base image."""
    return m.Container(
        name=name,
        image=BASE,
        command=command,
        resources=m.ResourceRequirements(requests=m.ResourceRequests(cpu=cpu, memory_in_gb=memory)),
        **kw,
    )


def group(containers: list[m.Container], policy: str = "Always", **kw: Any) -> m.ContainerGroup:
    """An SDK container group in westeurope."""
    return m.ContainerGroup(
        location="westeurope", os_type="Linux", restart_policy=policy, containers=containers, **kw
    )


def create(client: ContainerInstanceManagementClient, groups: dict[str, m.ContainerGroup]) -> None:
    """Create groups concurrently and wait for each create to succeed."""
    pollers = {
        name: client.container_groups.begin_create_or_update(RG, name, g)
        for name, g in groups.items()
    }
    for name, poller in pollers.items():
        assert poller.result().provisioning_state == "Succeeded", name


def get(client: ContainerInstanceManagementClient, name: str) -> Any:
    """A fresh GET of a group (typed loosely: the SDK's fields are all optional)."""
    return client.container_groups.get(RG, name)


def views(client: ContainerInstanceManagementClient, name: str) -> dict[str, Any]:
    """Instance view per container of a group (a fresh GET)."""
    return {c.name: c.instance_view for c in get(client, name).containers}


def read_logs(client: ContainerInstanceManagementClient, name: str, ctr: str, **kw: Any) -> str:
    """A container's logs through the SDK."""
    return str(client.containers.list_logs(RG, name, ctr, **kw).content or "")


def refused(client: ContainerInstanceManagementClient, name: str, body: m.ContainerGroup) -> Any:
    """The ARM error of a create that must be refused."""
    with pytest.raises(HttpResponseError) as err:
        client.container_groups.begin_create_or_update(RG, name, body)
    assert err.value.error is not None
    return err.value.error


def group_state(client: ContainerInstanceManagementClient, name: str) -> str:
    """The group's ``instanceView.state``."""
    view = get(client, name).instance_view
    return str(view.state if view else None)


def test_group_shares_localhost_with_limits_logs_and_delete(
    aci_emulator: FakeArm,
    aci_emulator_client: ContainerInstanceManagementClient,
    docker_client: docker.DockerClient,
) -> None:
    """Two containers share localhost; cpu/memory limits apply; logs and delete work."""
    web = container("web", PY_SERVER, cpu=0.5, memory=0.5)
    probe = container("probe", fetch("http://127.0.0.1:8000/"), cpu=0.25, memory=0.3)
    body = group(
        [web, probe],
        "Never",
        ip_address=m.IpAddress(type="Public", ports=[m.Port(port=8000)], dns_name_label="web1"),
    )
    create(aci_emulator_client, {"pair": body})

    done = wait_for(
        lambda: (
            (v := views(aci_emulator_client, "pair"))["probe"].current_state.state == "Terminated"
            and v
        ),
        60,
        "the probe container to finish",
    )
    probe_view = done["probe"]
    assert probe_view.current_state.exit_code == 0
    assert probe_view.current_state.finish_time is not None
    assert probe_view.restart_count == 0
    assert {"Pulled", "Started"} <= {e.name for e in probe_view.events}
    assert done["web"].current_state.state == "Running"
    assert done["web"].current_state.start_time is not None
    assert group_state(aci_emulator_client, "pair") == "Running"  # web still runs

    logs = read_logs(aci_emulator_client, "pair", "probe")
    assert "http://127.0.0.1:8000/ 200" in logs
    assert read_logs(aci_emulator_client, "pair", "probe", tail=0) == ""

    got = get(aci_emulator_client, "pair")
    ids = aci_emulator.aci.docker_ids(RG, "pair")
    sandbox = docker_client.api.inspect_container(ids["(sandbox)"])
    assert (
        got.ip_address.ip
        == sandbox["NetworkSettings"]["Networks"][aci_emulator.emulator.network.name]["IPAddress"]
    )
    assert got.ip_address.fqdn == "web1.westeurope.azurecontainer.io"
    for name, cpu, memory in (("web", 0.5, 0.5), ("probe", 0.25, 0.3)):
        inspected = docker_client.api.inspect_container(ids[name])
        host = inspected["HostConfig"]
        assert inspected["Config"]["Healthcheck"]["Test"] == ["NONE"]  # as ACI: probes only
        assert host["NanoCpus"] == int(cpu * 1e9)
        assert host["Memory"] == int(memory * 1024**3)
        assert host["NetworkMode"] == f"container:{ids['(sandbox)']}"

    aci_emulator_client.container_groups.begin_delete(RG, "pair").result()
    left = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={aci_emulator.emulator.instance_id}"}
    )
    assert left == []
    with pytest.raises(HttpResponseError) as err:
        get(aci_emulator_client, "pair")
    assert err.value.status_code == 404


def test_restart_policies(aci_emulator_client: ContainerInstanceManagementClient) -> None:
    """OnFailure restarts a failing container, not a succeeded one; Never restarts nothing."""
    fail = ["sh", "-c", "echo failing; exit 3"]
    ok = ["sh", "-c", "echo done"]
    create(
        aci_emulator_client,
        {
            "onfailure": group([container("bad", fail), container("good", ok)], "OnFailure"),
            "never": group([container("bad", fail), container("good", ok)], "Never"),
            "finished": group([container("good", ok)], "OnFailure"),
        },
    )
    restarted = wait_for(
        lambda: (v := views(aci_emulator_client, "onfailure"))["bad"].restart_count >= 2 and v,
        60,
        "OnFailure to restart the failing container twice",
    )
    assert restarted["bad"].previous_state.exit_code == 3
    assert restarted["good"].current_state.state == "Terminated"
    assert restarted["good"].current_state.exit_code == 0
    assert restarted["good"].restart_count == 0
    assert group_state(aci_emulator_client, "onfailure") == "Running"

    wait_for(lambda: group_state(aci_emulator_client, "never") == "Failed", 30, "Never to fail")
    never = views(aci_emulator_client, "never")
    assert never["bad"].current_state.exit_code == 3
    assert never["bad"].restart_count == 0
    assert never["good"].current_state.exit_code == 0

    wait_for(lambda: group_state(aci_emulator_client, "finished") == "Succeeded", 30, "Succeeded")
    # Still not restarted well after the backoff would have fired.
    assert views(aci_emulator_client, "never")["bad"].restart_count == 0
    assert views(aci_emulator_client, "finished")["good"].restart_count == 0
    assert "failing" in read_logs(aci_emulator_client, "never", "bad")


def test_evict_spot_group_and_restore(
    aci_emulator: FakeArm, aci_emulator_client: ContainerInstanceManagementClient
) -> None:
    """Eviction kills a Spot group's containers and leaves it Stopped until restored."""
    create(
        aci_emulator_client,
        {
            "spot": group([container("work", ["sleep", "600"])], "OnFailure", priority="Spot"),
            "regular": group([container("work", ["sleep", "600"])]),
        },
    )
    wait_for(lambda: group_state(aci_emulator_client, "spot") == "Running", 30, "Running")

    aci_emulator.aci.evict(RG, "spot")
    got = get(aci_emulator_client, "spot")
    assert got.instance_view.state == "Stopped"
    assert [e.name for e in got.instance_view.events] == [GROUP_EVICTED_EVENT]
    work = got.containers[0].instance_view
    assert work.current_state.state == "Terminated"
    assert work.current_state.exit_code == 137
    assert "Killing" in {e.name for e in work.events}
    assert got.provisioning_state == "Succeeded"  # the resource stays, as on ACI

    with pytest.raises(ValueError, match="not a Spot group"):
        aci_emulator.aci.evict(RG, "regular")

    aci_emulator.aci.restore(RG, "spot")
    wait_for(lambda: group_state(aci_emulator_client, "spot") == "Running", 30, "a restore")
    assert views(aci_emulator_client, "spot")["work"].restart_count == 1

    # Capacity coming back by itself, as ACI restarts evicted groups: late enough that the
    # test sees it stopped first (ten times what a look at its state takes here).
    started = time.monotonic()
    group_state(aci_emulator_client, "spot")
    look = time.monotonic() - started
    aci_emulator.aci.evict(RG, "spot", restore_after=max(0.5, 10 * look))
    assert group_state(aci_emulator_client, "spot") == "Stopped"
    wait_for(lambda: group_state(aci_emulator_client, "spot") == "Running", 30, "a restart")
    assert views(aci_emulator_client, "spot")["work"].restart_count == 2


def test_groups_reach_each_other_and_the_emulator(
    aci_emulator: FakeArm, aci_emulator_client: ContainerInstanceManagementClient
) -> None:
    """A group reaches another by IP, DNS label, FQDN and a loopback forward, and the
    emulator's ARM API at the host's own URL."""
    server = group(
        [container("web", PY_SERVER)],
        ip_address=m.IpAddress(type="Public", ports=[m.Port(port=8000)], dns_name_label="srv"),
    )
    create(aci_emulator_client, {"server": server})
    ip = get(aci_emulator_client, "server").ip_address.ip
    aci_emulator.emulator.forward(18080, "srv", 8000)  # groups see the server on loopback
    arm_list = (
        f"{aci_emulator.url}/subscriptions/{aci_emulator.subscription_id}/resourceGroups/{RG}"
        "/providers/Microsoft.ContainerInstance/containerGroups?api-version=2023-05-01"
    )
    client = group(
        [
            container(
                "client",
                fetch(
                    f"http://{ip}:8000/",
                    "http://srv:8000/",
                    "http://srv.westeurope.azurecontainer.io:8000/",
                    "http://127.0.0.1:18080/",
                ),
            ),
            # The janitor's path: the host's own ARM URL works inside a group.
            container(
                "janitor",
                fetch(arm_list, headers={"Authorization": f"Bearer {FAKE_TOKEN}"}),
            ),
            # One try, first thing: on ACI a group's network is up before its containers.
            container("early", ["python3", "-c", CONNECT_ONCE, "18080"]),
        ],
        "Never",
    )
    create(aci_emulator_client, {"client": client})
    wait_for(
        lambda: group_state(aci_emulator_client, "client") in ("Succeeded", "Failed"),
        60,
        "the client group to finish",
    )
    logs = read_logs(aci_emulator_client, "client", "client")
    assert group_state(aci_emulator_client, "client") == "Succeeded", logs
    for url in (f"http://{ip}:8000/", "http://srv:8000/", "srv.westeurope.azurecontainer.io"):
        assert url in logs
    assert "http://127.0.0.1:18080/ 200" in logs
    assert "connected at once" in read_logs(aci_emulator_client, "client", "early")
    janitor = read_logs(aci_emulator_client, "client", "janitor")
    assert f"{arm_list} 200" in janitor


def test_volumes_and_refusals(
    aci_emulator: FakeArm, aci_emulator_client: ContainerInstanceManagementClient
) -> None:
    """Secret files are 0600 for the container's user; emptyDir is shared; bad bodies fail."""
    show = (
        "import os, stat, time\n"
        "st = os.stat('/run/secrets/token')\n"
        "print('mode', oct(stat.S_IMODE(st.st_mode)), 'uid', st.st_uid, os.getuid())\n"
        "print('secret', open('/run/secrets/token').read())\n"
        "for _ in range(100):\n"
        "    if os.path.exists('/scratch/hello'): break\n"
        "    time.sleep(0.1)\n"
        "print('shared', open('/scratch/hello').read())\n"
    )
    body = group(
        [
            container(
                "reader",
                ["python3", "-c", show],
                volume_mounts=[
                    m.VolumeMount(name="secrets", mount_path="/run/secrets"),
                    m.VolumeMount(name="scratch", mount_path="/scratch"),
                ],
            ),
            container(
                "writer",
                ["sh", "-c", "echo hi > /scratch/hello"],
                volume_mounts=[m.VolumeMount(name="scratch", mount_path="/scratch")],
            ),
        ],
        "Never",
        volumes=[
            m.Volume(name="secrets", secret={"token": "czNjcjN0"}),  # "s3cr3t"
            m.Volume(name="scratch", empty_dir={}),
        ],
    )
    create(aci_emulator_client, {"vols": body})
    wait_for(lambda: group_state(aci_emulator_client, "vols") != "Running", 60, "the readers")
    logs = read_logs(aci_emulator_client, "vols", "reader")
    assert group_state(aci_emulator_client, "vols") == "Succeeded", logs
    assert "mode 0o600 uid 1000 1000" in logs
    assert "secret s3cr3t" in logs
    assert "shared hi" in logs
    got = get(aci_emulator_client, "vols")
    assert not any((v.secret or {}).values() for v in got.volumes)  # never returned

    missing = group([container("x", ["true"])])
    missing.containers[0].image = "example.azurecr.io/no-such-image:v1"
    error = refused(aci_emulator_client, "missing", missing)
    assert error.code == "InaccessibleImage"
    assert "make build" in error.message

    share = m.AzureFileVolume(share_name="s", storage_account_name="acct")
    files = group([container("x", ["true"])], volumes=[m.Volume(name="f", azure_file=share)])
    error = refused(aci_emulator_client, "files", files)
    assert error.code == "UnsupportedVolumeType"
    assert "azureFile" in error.message


def test_update_recreates_containers_and_delete_during_create_leaves_nothing(
    aci_emulator: FakeArm,
    aci_emulator_client: ContainerInstanceManagementClient,
    docker_client: docker.DockerClient,
) -> None:
    """An injected 503 is retried; an in-place update re-creates the containers on the
    same IP; a delete that overtakes a create still removes every container."""
    say = ["sh", "-c", 'echo "v=$V"; sleep 600']
    version = m.EnvironmentVariable(name="V", value="1")
    body = group(
        [container("app", say, environment_variables=[version])],
        ip_address=m.IpAddress(type="Public", ports=[m.Port(port=80)]),
    )
    aci_emulator.faults.script(503, method="PUT", count=1, retry_after=0.05)
    create(aci_emulator_client, {"upd": body})
    puts = aci_emulator.calls(method="PUT", path="/upd$")
    assert [c.status for c in puts] == [503, 201]  # faults still answer first
    before = aci_emulator.aci.docker_ids(RG, "upd")
    ip = get(aci_emulator_client, "upd").ip_address.ip
    version.value = "2"
    create(aci_emulator_client, {"upd": body})
    after = aci_emulator.aci.docker_ids(RG, "upd")
    assert after["app"] != before["app"]
    assert after["(sandbox)"] == before["(sandbox)"]
    assert get(aci_emulator_client, "upd").ip_address.ip == ip
    wait_for(lambda: "v=2" in read_logs(aci_emulator_client, "upd", "app"), 30, "v=2")
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(before["app"])

    groups = aci_emulator_client.container_groups
    groups.begin_create_or_update(RG, "racer", group([container("a", ["sleep", "600"])]))
    groups.begin_delete(RG, "racer").result()
    groups.begin_delete(RG, "upd").result()
    left = docker_client.containers.list(
        all=True, filters={"label": f"{LABEL_INSTANCE}={aci_emulator.emulator.instance_id}"}
    )
    assert left == []


def test_readiness_and_liveness_probes(
    aci_emulator_client: ContainerInstanceManagementClient,
) -> None:
    """A failing readiness probe adds Unhealthy events; a failing liveness probe gets the
    container killed and restarted."""

    def probe(*command: str) -> m.ContainerProbe:
        return m.ContainerProbe(
            exec_property=m.ContainerExec(command=list(command)),
            initial_delay_seconds=0,
            period_seconds=1,
            failure_threshold=2,
        )

    # Never ready (nothing creates the file), so its probe fails however slow the machine.
    slow = container("slow", ["sleep", "600"])
    slow.readiness_probe = probe("test", "-f", "/tmp/ready")
    doomed = container("doomed", ["sleep", "600"])
    doomed.liveness_probe = probe("false")
    create(aci_emulator_client, {"probed": group([slow, doomed])})

    def restarted_and_unready() -> dict[str, Any] | None:
        v = views(aci_emulator_client, "probed")
        unready = any(e.name == "Unhealthy" for e in v["slow"].events)
        return v if v["doomed"].restart_count >= 1 and unready else None

    killed = wait_for(
        restarted_and_unready, 60, "the liveness probe's restart and a failed readiness probe"
    )
    events = {e.name: e for e in killed["doomed"].events}
    assert "Liveness probe failed" in events["Unhealthy"].message
    assert "failed liveness probe" in events["Killing"].message
    slow_events = [e for e in killed["slow"].events if e.name == "Unhealthy"]
    assert slow_events and "Readiness probe failed" in slow_events[0].message
    assert killed["slow"].restart_count == 0  # readiness never restarts
