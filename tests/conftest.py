"""Shared pytest fixtures. Each section belongs to one area; append yours below."""

from __future__ import annotations

# --- fake ARM server (area: tests/fakearm) -----------------------------------------
# `fake_arm` yields a started tests.fakearm.FakeArm on 127.0.0.1 with an ephemeral
# port. Its URL, credential and subscription id are `fake_arm.url`,
# `fake_arm.credential()` and `fake_arm.subscription_id`; `fake_arm_aci_client` is a
# real ContainerInstanceManagementClient pointed at it. See tests/fakearm/README.md.
import os
import pathlib
from collections.abc import Iterator

import pytest
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from tests.fakearm import FAKE_SUBSCRIPTION_ID, SPECS_DIR, FakeArm, aci_client

FAKE_ARM_SUBSCRIPTION_ID = FAKE_SUBSCRIPTION_ID


def require_specs(specs_dir: pathlib.Path, ci: bool) -> pathlib.Path:
    """Return ``specs_dir``; when it is missing, skip the test, or fail it under CI.

    :param specs_dir: the Azure REST specs directory.
    :param ci: True when the ``CI`` environment variable is set: nothing may skip there.
    :return: ``specs_dir``.
    """
    if not specs_dir.is_dir():
        message = (
            f"Azure REST specs not found at {specs_dir}: the fake ARM server validates "
            "request bodies against them"
        )
        if ci:
            pytest.fail(message + " (CI is set, so this is a failure, not a skip)")
        pytest.skip(message)
    return specs_dir


@pytest.fixture
def azure_specs() -> pathlib.Path:
    """The shared Azure REST specs directory (``<repo>/../shared/azure-specs``).

    Skips (with the reason) only when it is missing, and fails instead when ``CI``
    is set.

    :return: its path.
    """
    return require_specs(SPECS_DIR, ci=bool(os.environ.get("CI")))


@pytest.fixture
def fake_arm(azure_specs: pathlib.Path) -> Iterator[FakeArm]:
    """A running fake ARM server, fresh for each test.

    Skips (with the reason) only when the shared Azure REST specs are missing, and
    fails instead when ``CI`` is set.

    :param azure_specs: the specs directory (skips or fails the test when absent).
    :return: the server; stopped after the test.
    """
    with FakeArm() as server:
        yield server


@pytest.fixture
def fake_arm_aci_client(fake_arm: FakeArm) -> Iterator[ContainerInstanceManagementClient]:
    """A real ACI management client talking to :func:`fake_arm` over loopback http.

    :param fake_arm: the running fake server.
    :return: the client; closed after the test.
    """
    with aci_client(fake_arm) as client:
        yield client


# --- end of fake ARM server section ------------------------------------------------


# --- deployer (area: deployer/) ------------------------------------------------------
# `deployer_env` isolates the deployer from the developer's machine: secrets state in
# tmp_path, no Azure settings inherited, fast polling. `deployer_arm` also points the
# deployer's real SDK client at `fake_arm` (DEPLOYER_ARM_ENDPOINT, the fake's token as
# DEPLOYER_ACCESS_TOKEN, its subscription, resource group "research") and returns the
# environment for subprocess runs. `workload_file` writes a workload YAML to tmp_path.
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from tests.fakearm import FAKE_TOKEN  # noqa: E402

DEPLOYER_RESOURCE_GROUP = "research"
_DEPLOYER_ENV_VARS = (
    "AZURE_SUBSCRIPTION_ID",
    "DEPLOYER_RESOURCE_GROUP",
    "DEPLOYER_LOCATION",
    "DEPLOYER_REGISTRY",
    "DEPLOYER_IMAGE_TAG",
    "DEPLOYER_ARM_ENDPOINT",
    "DEPLOYER_ACCESS_TOKEN",
    "DEPLOYER_REGISTRY_USERNAME",
    "DEPLOYER_REGISTRY_PASSWORD",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
)


@pytest.fixture
def deployer_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the deployer with no inherited Azure settings.

    :return: the variables set (also applied to ``os.environ`` for the test).
    """
    for name in _DEPLOYER_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state"
    env = {
        "DEPLOYER_STATE_DIR": str(state),
        "DEPLOYER_POLL_INTERVAL": "0.05",
        "DEPLOYER_READY_TIMEOUT": "60",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def deployer_arm(
    fake_arm: FakeArm, deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Point the deployer at ``fake_arm``; return the full environment for subprocesses."""
    env = {
        **deployer_env,
        "DEPLOYER_ARM_ENDPOINT": fake_arm.url,
        "DEPLOYER_ACCESS_TOKEN": FAKE_TOKEN,
        "AZURE_SUBSCRIPTION_ID": fake_arm.subscription_id,
        "DEPLOYER_RESOURCE_GROUP": DEPLOYER_RESOURCE_GROUP,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


@pytest.fixture
def workload_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a workload YAML (dedented) to tmp_path and return its path."""
    import textwrap

    def write(text: str, name: str = "workload.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


# --- end of deployer section ---------------------------------------------------------


# --- hypothesis (area: property tests, tests/unit/test_fuzz_parsers.py) ---------------
# `ci` runs 2,000 examples per property (selected when CI is set, as .ci/run does);
# `dev` keeps local runs quick. HYPOTHESIS_PROFILE picks one explicitly.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=2000,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)

# --- end of hypothesis section -------------------------------------------------------
