"""The lockdown every container of a compose stack must show, by ``docker inspect``: secrets
only as files (none in any container's configuration or logs, each readable by the service's
user alone), all capabilities dropped, no-new-privileges, a read-only root filesystem, a pids
limit and rotated json-file logs."""

from __future__ import annotations

import json
from typing import Any

import docker

from deployer import contract
from testbed.engine import exec_text, project_containers

SERVICE_ROLE = {"init": "init", **{r.name: r.name for r in contract.ROLES.values()}}


def needles(secrets: dict[str, str]) -> dict[str, str]:
    """What must never appear, by secret: the value, or each base64 line of a PEM key,
    or the key part of ``account:key``."""
    out = {}
    for name, value in secrets.items():
        if "PRIVATE KEY" in value:
            for i, line in enumerate(value.splitlines()[1:-1]):
                out[f"{name} line {i}"] = line
        else:
            out[name] = value.rpartition(":")[2] if name == "AZURITE_ACCOUNTS" else value
    return out


def assert_locked_down(
    client: docker.DockerClient, project: str, secrets: dict[str, str]
) -> list[str]:
    """Check every container of ``project``; return the services checked.

    Args:
        client: Docker client.
        project: Compose project name.
        secrets: Secret values by variable name (``NOTEBOOK_TOKEN`` ...).
    """
    look_for = needles(secrets)
    checked = []
    for container in project_containers(client, project):
        container.reload()
        attrs: dict[str, Any] = container.attrs
        service = container.labels["com.docker.compose.service"]
        role = contract.ROLES[SERVICE_ROLE[service]]
        host = attrs["HostConfig"]
        inspect = json.dumps(attrs)
        logs = container.logs().decode(errors="replace")
        for what, needle in look_for.items():
            assert needle not in inspect, f"{what} in docker inspect of {service}"
            assert needle not in logs, f"{what} in the logs of {service}"
        env = dict(e.split("=", 1) for e in attrs["Config"]["Env"] or [])
        assert not role.secret_names & set(env), service
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], service
        assert "no-new-privileges:true" in (host["SecurityOpt"] or []), service
        assert host["ReadonlyRootfs"] is True, service
        assert "/tmp" in (host["Tmpfs"] or {}), service
        assert 0 < (host["PidsLimit"] or 0) <= 1024, service
        assert host["LogConfig"] == {
            "Type": "json-file",
            "Config": {"max-file": "3", "max-size": "10m"},
        }, service
        files = {v.removeprefix("/run/secrets/") for k, v in env.items() if k.endswith("_FILE")}
        assert files, f"{service} mounts no secret"
        if container.status == "running":
            for name in sorted(files):
                path = f"/run/secrets/{name}"
                code, out = exec_text(container, ["stat", "-L", "-c", "%u:%g %a", path])
                assert (code, out.strip()) == (0, f"{contract.USER_UID}:{contract.USER_UID} 600"), (
                    service,
                    name,
                    out,
                )
                code, _ = exec_text(container, ["head", "-c1", path])  # the service's user
                assert code == 0, (service, name)
                other = container.exec_run(["head", "-c1", path], user="4242:4242")
                assert other.exit_code != 0, f"uid 4242 can read {path} in {service}"
                assert b"Permission denied" in other.output, (service, other.output)
            code, out = exec_text(container, ["touch", "/usr/lockdown-probe"])
            assert code != 0 and "Read-only file system" in out, (service, out)
        checked.append(service)
    return checked
