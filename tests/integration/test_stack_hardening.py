"""The stack's lockdown, by ``docker inspect`` of every container: secrets only as files
(none in any container's configuration or logs, each readable by the service's user
alone), all capabilities dropped, no-new-privileges, a read-only root filesystem, a pids
limit and rotated json-file logs. The same checks run on the stack that the other
Compose version starts (test_stack.py), since v1.29 and v2 mount secrets differently."""

from __future__ import annotations

import docker

from testbed.lockdown import assert_locked_down


def test_secrets_are_files_and_every_service_is_locked_down(
    docker_client: docker.DockerClient, stack: str, stack_secrets: dict[str, str]
) -> None:
    secrets = {
        k: v for k, v in stack_secrets.items() if k.lower() in {p.lower() for p in SECRET_FILES}
    }
    assert len(secrets) == len(SECRET_FILES)
    checked = assert_locked_down(docker_client, stack, secrets)
    assert sorted(set(checked)) == [
        "azurite",
        "blast-web",
        "blast-worker",
        "init",
        "ipcontroller",
        "ipengine",
        "notebook",
    ]


SECRET_FILES = (
    "AZURITE_ACCOUNTS",
    "AZURE_STORAGE_KEY",
    "NOTEBOOK_TOKEN",
    "IPP_KEY",
    "IPP_SSH_HOST_KEY",
    "IPP_SSH_KEY",
)
