"""The emulator's strict mode: each container's exact reference is pulled, with the body's
registry credentials, from a real registry (Debian's ``docker-registry`` with htpasswd)
standing for the workload's registry host; what ACI cannot pull is 400 ``InaccessibleImage``
with ACI's message, whether the image is missing or the credentials are wrong."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance import models as m

from aci_emulator import FakeArm, aci_client
from testbed.engine import TAG
from testbed.fake_arm import IDENTITY, REGISTRY_ADMIN
from testbed.registry import PushedRegistry, registry_with_pushed_images

pytestmark = pytest.mark.docker
HOST = "strict.azurecr.io"
ADMIN = REGISTRY_ADMIN
RG = "strict"


@dataclass
class Strict:
    """The registry, the pushed image's digest, and a client of the strict emulator."""

    pushed: PushedRegistry
    digest: str
    client: ContainerInstanceManagementClient


@pytest.fixture(scope="module")
def strict(docker_client: docker.DockerClient) -> Iterator[Strict]:
    """A registry holding the base image as ``base:TAG`` (pushed once: its layers are local,
    so the push and the pulls are quick), and a strict emulator in front of it."""
    with (
        registry_with_pushed_images(["base"]) as pushed,
        FakeArm(emulate=pushed.settings((HOST,))) as arm,
        aci_client(arm) as client,
    ):
        yield Strict(pushed, pushed.digests["base"], client)


def _group(image: str, cred: m.ImageRegistryCredential, **kw: Any) -> m.ContainerGroup:
    return m.ContainerGroup(
        location="westeurope",
        os_type="Linux",
        restart_policy="Never",
        containers=[
            m.Container(
                name="one",
                image=image,
                command=["true"],
                resources=m.ResourceRequirements(
                    requests=m.ResourceRequests(cpu=0.5, memory_in_gb=0.5)
                ),
            )
        ],
        image_registry_credentials=[cred],
        **kw,
    )


ADMIN_CRED = m.ImageRegistryCredential(server=HOST, username=ADMIN[0], password=ADMIN[1])


def test_the_exact_tag_and_digest_are_pulled_with_the_admin_login(strict: Strict) -> None:
    for name, image in (
        ("by-tag", f"{HOST}/base:{TAG}"),
        ("by-digest", f"{HOST}/base@{strict.digest}"),
    ):
        poller = strict.client.container_groups.begin_create_or_update(
            RG, name, _group(image, ADMIN_CRED)
        )
        assert poller.result().provisioning_state == "Succeeded", name
        strict.client.container_groups.begin_delete(RG, name).result()


def test_a_managed_identity_pulls_as_the_identity_login(strict: Strict) -> None:
    body = _group(
        f"{HOST}/base:{TAG}",
        m.ImageRegistryCredential(server=HOST, identity=IDENTITY),
        identity=m.ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={IDENTITY: m.UserAssignedIdentities()}
        ),
    )
    poller = strict.client.container_groups.begin_create_or_update(RG, "by-identity", body)
    assert poller.result().provisioning_state == "Succeeded"
    strict.client.container_groups.begin_delete(RG, "by-identity").result()


@pytest.mark.parametrize(
    ("image", "cred"),
    [
        (f"{HOST}/base:no-such-tag", ADMIN_CRED),
        (f"{HOST}/no-such-repo:{TAG}", ADMIN_CRED),
        (f"{HOST}/base@sha256:{'0' * 64}", ADMIN_CRED),
        (f"other.azurecr.io/base:{TAG}", ADMIN_CRED),
        (
            f"{HOST}/base:{TAG}",
            m.ImageRegistryCredential(server=HOST, username=ADMIN[0], password="wrong"),
        ),
    ],
    ids=["tag", "repository", "digest", "registry", "credentials"],
)
def test_what_aci_cannot_pull_is_inaccessible_image(
    strict: Strict, image: str, cred: m.ImageRegistryCredential
) -> None:
    with pytest.raises(HttpResponseError) as err:
        strict.client.container_groups.begin_create_or_update(RG, "refused", _group(image, cred))
    assert err.value.status_code == 400
    assert err.value.error is not None and err.value.error.code == "InaccessibleImage"
    assert err.value.error.message == (
        f"The image '{image}' in container group 'refused' is not accessible. Please check "
        "the image and registry credential."
    )
    assert list(strict.client.container_groups.list_by_resource_group(RG)) == []
