"""The settings chain: flag, then workload file, then environment, then a typed error."""

from __future__ import annotations

import pytest

from deployer.errors import MissingSettingError
from deployer.settings import Overrides, resolve_settings
from deployer.workload import parse

FILE = """
deployment:
  name: demo
  location: eastus
  registry: file.azurecr.io
  resource_group: file-rg
  managed_identity: /id
workloads:
  ipyparallel: {engines: 1}
"""


def test_flag_beats_file_beats_environment(
    deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOYER_REGISTRY", "env.azurecr.io")
    monkeypatch.setenv("DEPLOYER_RESOURCE_GROUP", "env-rg")
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "env-sub")
    workload = parse(FILE)
    s = resolve_settings(workload, Overrides(registry="flag.azurecr.io"), need_azure=True)
    assert s.registry == "flag.azurecr.io"  # flag
    assert s.resource_group == "file-rg"  # file over environment
    assert s.subscription == "env-sub"  # environment when the file is silent
    assert s.image_tag == "latest"


def test_missing_setting_names_flag_field_variable_and_discovery(
    deployer_env: dict[str, str],
) -> None:
    with pytest.raises(MissingSettingError) as info:
        resolve_settings(parse(FILE), Overrides(), need_azure=True)
    err = info.value
    assert err.message == "deployment.subscription is not set"
    assert err.hint == (
        "pass --subscription, or set deployment.subscription in the workload file, or export "
        "AZURE_SUBSCRIPTION_ID (list valid values with `az account list -o table`)"
    )
    assert err.exit_code == 2


def test_admin_credentials_are_the_fallback_without_an_identity(
    deployer_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_identity = parse(FILE.replace("  managed_identity: /id\n", ""))
    with pytest.raises(MissingSettingError, match="managed_identity is not set"):
        resolve_settings(no_identity, Overrides(subscription="s"), need_azure=True)
    monkeypatch.setenv("DEPLOYER_REGISTRY_USERNAME", "acr")
    monkeypatch.setenv("DEPLOYER_REGISTRY_PASSWORD", "pw")
    s = resolve_settings(no_identity, Overrides(subscription="s"), need_azure=True)
    assert s.registry_auth == "admin" and s.registry_username == "acr"
    assert s.registry_password is not None and s.registry_password.reveal() == "pw"
    assert "pw" not in repr(s)
    with_identity = resolve_settings(parse(FILE), Overrides(subscription="s"), need_azure=True)
    assert with_identity.registry_auth == "identity" and with_identity.registry_password is None
