"""Planning: desired groups from a workload, and the diff against observed groups."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest

from deployer import contract, plan
from deployer.deployment_secrets import DeploymentSecrets, Secret
from deployer.errors import MissingSettingError
from deployer.plan import Action
from deployer.settings import Settings
from deployer.workload import parse

IDENTITY = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
    "userAssignedIdentities/id"
)
SECRETS = DeploymentSecrets.generate("demo")
SUBSCRIPTION = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


def _suffix(subscription: str = SUBSCRIPTION, group: str = "rg", deployment: str = "demo") -> str:
    """The DNS label suffix: six hex digits of sha256 of subscription/group/deployment."""
    return hashlib.sha256(f"{subscription}/{group}/{deployment}".encode()).hexdigest()[:6]


HEAD_LABEL = f"demo-head-{_suffix()}"
WEB_LABEL = f"demo-blast-{_suffix()}"


def _workload(engines: int = 6, blast: bool = True, **ipp: object) -> str:
    extra = "".join(f"    {k}: {json.dumps(v)}\n" for k, v in ipp.items())
    text = (
        f"deployment: {{name: demo}}\nworkloads:\n  ipyparallel:\n    engines: {engines}\n{extra}"
    )
    if blast:
        text += (
            "  blast:\n    workers: 3\n    threads_per_worker: 1\n    databases:\n"
            "      - {name: swissprot, bytes_to_cache: 200000000}\n"
        )
    return text


def _settings(**changes: object) -> Settings:
    base = Settings(
        deployment="demo",
        location="eastus",
        registry="r.azurecr.io",
        image_tag="1.0",
        managed_identity=IDENTITY,
        managed_identity_client_id="client-id",
        storage_account="data",
        subscription=SUBSCRIPTION,
        resource_group="rg",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _plan(text: str | None = None, **settings: object) -> plan.Plan:
    return plan.build(parse(text or _workload()), _settings(**settings), SECRETS)


@pytest.mark.parametrize(
    "text",
    [
        _workload(),
        _workload(engines=13, blast=False, engines_per_container=2),
        "deployment: {name: demo}\nworkloads:\n  blast:\n    workers: 9\n"
        "    databases: [{name: nt, bytes_to_cache: 9000000000}]\n",
    ],
)
def test_group_names_without_secrets_match_the_plan(text: str) -> None:
    names = plan.group_names(parse(text), "demo")
    assert names == [g.name for g in _plan(text).groups]
    assert len(names) > 1


def test_head_exposes_only_the_notebook_and_engine_entry_ports() -> None:
    head = _plan().groups[0]
    assert head.name == "demo-head" and head.ip == "Public"
    assert head.ports == (contract.NOTEBOOK_PORT, contract.ENGINE_ENTRY_PORT)
    assert head.dns_label == HEAD_LABEL
    assert [c.name for c in head.containers] == ["ipcontroller", "notebook"]
    assert {p for c in head.containers for p in c.ports} == {8888, 2222}
    assert head.volumes == ("ipp-security",)
    ctl, nb = head.containers
    assert ctl.mounts == (
        contract.Mount("ipp-security", "/srv/ipython/profile_default/security"),
        contract.Mount("ipcontroller-secrets", "/run/secrets", read_only=True),
    )
    assert nb.mounts[0].read_only and nb.mounts[0].volume == "ipp-security"
    assert nb.mounts[-1] == contract.Mount("notebook-secrets", "/run/secrets", read_only=True)


def test_notebook_off_leaves_only_the_engine_entry_port() -> None:
    head = _plan(_workload(notebook=False)).groups[0]
    assert head.ports == (2222,)
    assert [c.name for c in head.containers] == ["ipcontroller"]


def test_secrets_travel_only_as_files_named_by_file_variables() -> None:
    p = _plan()
    secret_values = {
        SECRETS.ipp_key,
        SECRETS.engine_key.private,
        SECRETS.host_key.private,
        SECRETS.notebook_token,
    }
    for group in p.groups:
        for c in group.containers:
            role = contract.ROLES[c.role]
            env = dict(c.env)
            assert c.secret_files or c.role == "blast-worker"  # workers: managed identity
            for file, secret in c.secret_files:
                var = next(e for e in role.env if e.secret and e.secret_file == file)
                assert env[var.file_var] == f"/run/secrets/{file}"
                assert isinstance(secret, Secret)
            for name, value in c.env:
                assert name not in role.secret_names
                assert not any(s in value for s in secret_values), (c.name, name)
            if c.secret_files:
                assert contract.Mount(f"{c.name}-secrets", "/run/secrets", True) in c.mounts
    assert "********" in repr(p) and SECRETS.ipp_key not in repr(p)


def test_engines_find_the_head_by_dns_name_and_pin_its_host_key() -> None:
    p = _plan()
    engines = [g for g in p.groups if g.kind == "engines"]
    assert [len(g.containers) for g in engines] == [3, 3]  # 6 engines, 1 vCPU/2 GB: 4 max
    c = engines[0].containers[0]
    env, secure = dict(c.env), {k: v.reveal() for k, v in c.secret_files}
    host = f"{HEAD_LABEL}.eastus.azurecontainer.io"
    assert env["IPP_SSH_KNOWN_HOSTS"] == f"[{host}]:2222 " + " ".join(
        SECRETS.host_key.public.split()[:2]
    )
    assert env["IPP_ENGINES_PER_CONTAINER"] == "1"
    assert env["IPP_CONNECTION_INFO_FILE"] == "/run/secrets/ipp_connection_info"
    info = json.loads(secure["ipp_connection_info"])
    assert info["ssh"] == f"ipp@{host}:2222" and info["key"] == SECRETS.ipp_key
    assert info["interface"] == "tcp://127.0.0.1" and info["registration"] == 10101
    assert info["broadcast"] == [10108, 10109] and info["pack"] == "json"
    assert secure["ipp_ssh_key"] == SECRETS.engine_key.private
    assert not any(g.after_head for g in p.groups)


def test_engine_containers_of_a_group_get_their_own_health_port() -> None:
    """A group's containers share localhost (the emulator caught two engines on 8081)."""
    for group in (g for g in _plan().groups if g.kind == "engines"):
        ports = [dict(c.env)["IPP_HEALTH_PORT"] for c in group.containers]
        assert ports == [str(contract.ENGINE_HEALTH_PORT + k) for k in range(len(ports))]


def test_subnet_mode_uses_the_private_ip_and_creates_the_head_first() -> None:
    text = _workload()
    before = plan.build(parse(text), _settings(subnet_id="/sub/x"), SECRETS)
    head = before.groups[0]
    assert head.ip == "Private" and head.dns_label is None and head.subnet_id == "/sub/x"
    engines = [g for g in before.groups if g.kind == "engines"]
    assert all(g.after_head for g in engines)
    assert plan.HEAD_IP_PLACEHOLDER in dict(engines[0].containers[0].env)["IPP_SSH_KNOWN_HOSTS"]
    after = plan.build(
        parse(text), _settings(subnet_id="/sub/x"), SECRETS, head_private_ip="10.0.0.7"
    )
    env = dict(next(g for g in after.groups if g.kind == "engines").containers[0].env)
    assert env["IPP_SSH_KNOWN_HOSTS"].startswith("[10.0.0.7]:2222 ssh-ed25519 ")


def test_blast_workers_get_storage_through_the_identity_and_own_caches() -> None:
    [group] = [g for g in _plan().groups if g.workload == "blast"]
    assert [c.name for c in group.containers] == [
        "blast-worker-1",
        "blast-worker-2",
        "blast-worker-3",
    ]
    env = dict(group.containers[1].env)
    assert env["AZURE_STORAGE_ACCOUNT"] == "data" and env["AZURE_CLIENT_ID"] == "client-id"
    assert env["BLAST_DBS"] == "swissprot" and env["BLAST_THREADS"] == "1"
    assert env["BLAST_QUEUE"] == "blast-jobs" and env["BLAST_DB_CACHE"] == "/var/cache/blastdb"
    assert group.containers[1].mounts == (contract.Mount("blastdb-cache-2", "/var/cache/blastdb"),)
    assert group.volumes == ("blastdb-cache-1", "blastdb-cache-2", "blastdb-cache-3")


def test_blast_without_storage_says_what_to_set() -> None:
    with pytest.raises(MissingSettingError) as info:
        _plan(storage_account=None)
    assert "AZURE_STORAGE_CONNECTION_STRING" in (info.value.hint or "")
    p = _plan(storage_account=None, storage_connection_string=Secret("AccountKey=abc"))
    worker = next(g for g in p.groups if g.workload == "blast").containers[0]
    files = dict(worker.secret_files)
    assert files["azure_storage_connection_string"].reveal() == "AccountKey=abc"
    assert dict(worker.env)["AZURE_STORAGE_CONNECTION_STRING_FILE"] == (
        "/run/secrets/azure_storage_connection_string"
    )


def test_tags_name_deployment_workload_and_tool() -> None:
    for group in _plan().groups:
        tags = dict(group.tags)
        assert tags["deployment"] == "demo" and tags["tool"] == "aci-research-deployer"
        assert tags["workload"] in ("ipyparallel", "blast")
        assert len(tags[plan.SECRETS_TAG]) == 32


def test_images_come_from_the_registry_with_the_tag_through_the_identity() -> None:
    head = _plan().groups[0]
    assert head.containers[0].image == "r.azurecr.io/ipcontroller:1.0"
    assert head.registry == plan.RegistryAuth("r.azurecr.io", identity=IDENTITY)
    admin = _plan(registry_auth="admin", registry_username="u", registry_password=Secret("pw"))
    assert admin.groups[0].registry == plan.RegistryAuth(
        "r.azurecr.io", username="u", password=Secret("pw")
    )


def _observed(p: plan.Plan) -> dict[str, dict[str, object]]:
    return {g.name: plan.canonical(g) for g in p.groups}


def test_diff_of_identical_plans_changes_nothing() -> None:
    p = _plan()
    assert {c.action for c in plan.diff(p.groups, _observed(p))} == {Action.UNCHANGED}


def test_diff_creates_missing_and_deletes_extra_groups() -> None:
    small, big = _plan(_workload(engines=2)), _plan(_workload(engines=6))
    changes = plan.diff(small.groups, _observed(big))
    assert [(c.name, c.action) for c in changes if c.action is not Action.UNCHANGED] == [
        ("demo-engines-1", Action.RECREATE),  # 3 engines become 2
        ("demo-engines-2", Action.DELETE),
    ]
    assert [c.action for c in plan.diff(big.groups, {})] == [Action.CREATE] * 4


def test_cpu_change_is_a_recreate_with_the_reason() -> None:
    old, new = _plan(), _plan(_workload(vcpu_per_engine=0.5))
    [change] = [c for c in plan.diff(new.groups, _observed(old)) if c.name == "demo-engines-1"]
    assert change.action is Action.RECREATE
    assert "containers.ipengine-1.cpu: 10 -> 5" in change.reasons


def test_image_tag_change_is_an_in_place_update() -> None:
    old, new = _plan(), _plan(image_tag="2.0")
    changes = plan.diff(new.groups, _observed(old))
    assert {c.action for c in changes} == {Action.UPDATE}
    assert any("image" in r and "-> r.azurecr.io/ipcontroller:2.0" in r for r in changes[0].reasons)


def test_secret_change_is_detected_without_showing_it() -> None:
    old = _plan()
    new_secrets = DeploymentSecrets.generate("demo")
    new = plan.build(parse(_workload()), _settings(), new_secrets)
    changes = plan.diff(new.groups, _observed(old))
    ipp = [c for c in changes if c.spec and c.spec.workload == "ipyparallel"]
    assert {c.action for c in ipp} == {Action.UPDATE}
    assert all("secrets changed" in c.reasons for c in ipp)
    # Public keys may show; no secret value does.
    shown = " ".join(r for c in changes for r in c.reasons)
    for secrets in (SECRETS, new_secrets):
        for value in (secrets.ipp_key, secrets.notebook_token, secrets.engine_key.private):
            assert value not in shown
    # BLAST workers read storage through the identity: no secrets, nothing to update.
    assert {c.action for c in changes if c not in ipp} == {Action.UNCHANGED}


def _blast_web(web: str) -> str:
    return (
        "deployment: {name: demo}\nworkloads:\n  blast:\n    workers: 1\n"
        f"    databases: [{{name: nt, bytes_to_cache: 1000000}}]\n    web: {web}\n"
    )


def test_blast_web_is_a_group_of_its_own_with_one_public_port_and_tls() -> None:
    p = _plan(_blast_web("true"))
    [web] = [g for g in p.groups if g.kind == "web"]
    assert web.name == "demo-web" and web.workload == "blast"
    assert web.ip == "Public" and web.ports == (contract.WEB_PORT,)
    assert len(web.ports) <= 5 and web.dns_label == WEB_LABEL
    [page] = web.containers
    assert page.role == "blast-web" and page.image == "r.azurecr.io/blast-web:1.0"
    env, secure = dict(page.env), dict(page.secret_files)
    assert env["WEB_TLS"] == "self-signed" and env["AZURE_STORAGE_ACCOUNT"] == "data"
    assert env["WEB_TOKEN_FILE"] == "/run/secrets/web_token" and "WEB_TOKEN" not in env
    assert secure["web_token"].reveal() == SECRETS.notebook_token
    assert ("blast web", f"https://{WEB_LABEL}.eastus.azurecontainer.io:8080/") in p.endpoints


def test_blast_web_settings_label_tls_and_subnet() -> None:
    text = _blast_web("{dns_label: my-blast, tls: {mode: 'off'}}")
    p = _plan(text)
    [web] = [g for g in p.groups if g.kind == "web"]
    assert web.dns_label == "my-blast"
    assert ("blast web", "http://my-blast.eastus.azurecontainer.io:8080/") in p.endpoints
    private = _plan(text, subnet_id="/sub/x")
    [web] = [g for g in private.groups if g.kind == "web"]
    assert web.ip == "Private" and web.dns_label is None
    assert not [g for g in _plan(_blast_web("false")).groups if g.kind == "web"]
    provided = _blast_web("{tls: {mode: provided, cert_file: c.pem, key_file: k.pem}}")
    with pytest.raises(MissingSettingError, match="web page's TLS"):
        _plan(provided)
    p = plan.build(parse(provided), _settings(), SECRETS, web_tls=(Secret("CERT"), Secret("KEY")))
    [web] = [g for g in p.groups if g.kind == "web"]
    assert dict(web.containers[0].secret_files)["web_tls_key"].reveal() == "KEY"


def test_mpi_engines_get_ipp_mpi_and_the_plan_names_each_world() -> None:
    # 10 engines of 1 vCPU, 4 per container: groups of at most 4 vCPU hold one container,
    # and the balanced split leaves the last world smaller.
    p = _plan(_workload(engines=10, blast=False, engines_per_container=4, mpi=True))
    engines = [g for g in p.groups if g.kind == "engines"]
    assert [plan.mpi_worlds(g) for g in engines] == [
        {"ipengine-1": 4},
        {"ipengine-2": 3},
        {"ipengine-3": 3},
    ]
    env = dict(engines[1].containers[0].env)
    assert env["IPP_MPI"] == "1" and env["IPP_ENGINES_PER_CONTAINER"] == "3"
    assert plan.mpi_notes(p) == [
        "MPI world size per container in demo-engines-1: ipengine-1: 4 ranks",
        "MPI world size per container in demo-engines-2: ipengine-2: 3 ranks",
        "MPI world size per container in demo-engines-3: ipengine-3: 3 ranks",
        "MPI: ranks talk only inside their container; one MPI world cannot span ACI "
        "container groups, which reach each other only through the head's ports (at most 5 "
        "per IP)",
    ]


def test_mpi_worlds_of_one_group_are_listed_in_runs() -> None:
    # Half-vCPU engines, 2 per container: up to 8 per group; 7 leave a world of 1.
    text = _workload(
        engines=7,
        blast=False,
        vcpu_per_engine=0.5,
        memory_gb_per_engine=1,
        engines_per_container=2,
        mpi=True,
    )
    notes = plan.mpi_notes(_plan(text))
    assert notes[0] == (
        "MPI world size per container in demo-engines-1: ipengine-1 to ipengine-3: 2 ranks "
        "each; ipengine-4: 1 rank"
    )


def test_without_mpi_engines_get_no_ipp_mpi_and_no_notes() -> None:
    p = _plan()
    for g in p.groups:
        assert plan.mpi_worlds(g) == {}
        assert all("IPP_MPI" not in dict(c.env) for c in g.containers)
    assert plan.mpi_notes(p) == []


# --- DNS labels: unique per subscription, resource group and deployment ---------------


def test_two_users_deploying_the_same_example_get_different_dns_names() -> None:
    """ACI DNS labels are unique per region across Azure: the default label ends in a hash
    of the subscription, resource group and deployment."""
    mine = _plan()
    theirs = _plan(subscription="5e0f2a3c-8d1b-4c6e-9f70-0a1b2c3d4e5f")
    other_group = _plan(resource_group="rg2")
    heads = [p.groups[0].dns_label for p in (mine, theirs, other_group)]
    assert heads == [
        HEAD_LABEL,
        f"demo-head-{_suffix('5e0f2a3c-8d1b-4c6e-9f70-0a1b2c3d4e5f')}",
        f"demo-head-{_suffix(group='rg2')}",
    ]
    assert len(set(heads)) == 3
    # The same deployment always gets the same name (resource groups ignore case in Azure).
    assert _plan(resource_group="RG").groups[0].dns_label == HEAD_LABEL
    # Every address of the head follows the label: the endpoints and the engines' host.
    assert (
        dict(mine.endpoints)["notebook"] == f"https://{HEAD_LABEL}.eastus.azurecontainer.io:8888/"
    )
    engines = next(g for g in mine.groups if g.kind == "engines")
    assert (
        f"{HEAD_LABEL}.eastus.azurecontainer.io"
        in dict(engines.containers[0].env)["IPP_SSH_KNOWN_HOSTS"]
    )


def test_a_label_the_workload_sets_is_kept_and_an_unknown_scope_shows_a_placeholder() -> None:
    given = _plan(_workload(dns_label="my-lab"))
    assert given.groups[0].dns_label == "my-lab"
    offline = _plan(subscription=None, resource_group=None)
    assert offline.groups[0].dns_label == f"demo-head-{plan.LABEL_SUFFIX_UNKNOWN}"


def test_signed_in_links_open_the_front_doors_with_the_token() -> None:
    endpoints = {
        "notebook": "https://h.eastus.azurecontainer.io:8888/",
        "blast web": "http://w.eastus.azurecontainer.io:8080/",
        "engine entry": "ssh://ipp@h.eastus.azurecontainer.io:2222",
    }
    assert plan.signed_in_links(endpoints, "t0k-en_") == {
        "notebook": "https://h.eastus.azurecontainer.io:8888/lab?token=t0k-en_",
        "blast web": "http://w.eastus.azurecontainer.io:8080/?token=t0k-en_",
    }
