"""Shared pytest fixtures. Each section belongs to one area; append yours below.

Fixtures only: the helpers behind them are the ``testbed`` package (``testbed/``), which the
benches use too, and the fake ARM server is the ``aci_emulator`` package (``emulator/``).
"""

from __future__ import annotations

# --- no request beyond loopback (area: every test) --------------------------------------
# With no other credential, DefaultAzureCredential probes the instance-metadata service at
# 169.254.169.254. AZURE_POD_IDENTITY_AUTHORITY_HOST moves that probe; it points at a loopback
# port that is bound but never listens, so the probe is refused at once, in this process and
# in every subprocess (they inherit os.environ). tests/unit/test_no_egress.py checks it.
import os
import socket

_CLOSED = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
_CLOSED.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
CLOSED_LOOPBACK_URL = f"http://127.0.0.1:{_CLOSED.getsockname()[1]}"
os.environ["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = CLOSED_LOOPBACK_URL

# --- end of no-egress section ------------------------------------------------------------


# --- fake ARM server (area: emulator/) ------------------------------------------------
# `fake_arm` yields a started aci_emulator.FakeArm on 127.0.0.1 with an ephemeral
# port. Its URL, credential and subscription id are `fake_arm.url`,
# `fake_arm.credential()` and `fake_arm.subscription_id`; `fake_arm_aci_client` is a
# real ContainerInstanceManagementClient pointed at it. See emulator/README.md.
import pathlib  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from azure.mgmt.containerinstance import ContainerInstanceManagementClient  # noqa: E402

from aci_emulator import FakeArm, aci_client, specs_dir  # noqa: E402
from testbed.fake_arm import (  # noqa: E402
    DEPLOYER_ENV_VARS,
    DEPLOYER_RESOURCE_GROUP,
    registry_with_images,
    require_specs,
)


@pytest.fixture
def azure_specs() -> pathlib.Path:
    """The shared Azure REST specs directory (``$ACI_EMULATOR_SPECS``, else
    ``<repo>/../shared/azure-specs``), the one :class:`FakeArm` reads.

    Skips (with the reason) only when it is missing, and fails instead when ``CI``
    is set.

    :return: its path.
    """
    return require_specs(specs_dir(), ci=bool(os.environ.get("CI")))


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

from aci_emulator import FAKE_TOKEN, FakeRegistry  # noqa: E402


@pytest.fixture
def deployer_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for the deployer with no inherited Azure settings.

    :return: the variables set (also applied to ``os.environ`` for the test).
    """
    for name in DEPLOYER_ENV_VARS:
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
def fake_registry() -> Iterator[FakeRegistry]:
    """A registry data plane holding every image ACI deploys at the tags the tests pin
    (:func:`testbed.fake_arm.registry_with_images`); ``deployer_arm`` points the deployer's
    image check at it."""
    with registry_with_images() as registry:
        yield registry


@pytest.fixture
def deployer_arm(
    fake_arm: FakeArm,
    fake_registry: FakeRegistry,
    deployer_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """Point the deployer at ``fake_arm`` and ``fake_registry``; return the full environment
    for subprocesses."""
    env = {
        **deployer_env,
        "DEPLOYER_ARM_ENDPOINT": fake_arm.url,
        "DEPLOYER_REGISTRY_ENDPOINT": fake_registry.server,
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
# `ci` (selected when CI is set, as .ci/run does) runs a fixed 300 examples per property,
# derandomized: the same inputs every run, which fail on every bug the fuzzer found (each
# put back once, see test_fuzz_parsers.py). `fuzz` (`make fuzz`) searches
# anew: 2,000 random examples each. `dev` keeps local runs quick. HYPOTHESIS_PROFILE picks one.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
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
