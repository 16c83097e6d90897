"""The workload file: a YAML document validated with pydantic.

:func:`load` reads a file and returns a :class:`Workload`; every problem is
reported as ``FILE:LINE: field.path: message`` with the allowed values, through
:class:`~deployer.errors.WorkloadFileError`. ``deployer schema`` prints
:func:`json_schema`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from deployer import defaults
from deployer.errors import WorkloadFileError

Tenth = Annotated[float, Field(gt=0)]


def _check_tenth(value: float) -> float:
    if abs(value * defaults.TENTHS - round(value * defaults.TENTHS)) > 1e-9:
        raise ValueError(f"must be a multiple of 0.1 (got {value})")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> int:
    """Parse a duration such as ``90s``, ``60m``, ``8h`` or ``2d`` into whole seconds.

    Args:
        text (str): Digits followed by one unit: s, m, h or d.

    Raises:
        ValueError: When it is not such a duration, or not positive.
    """
    raw = text.strip().lower()
    if len(raw) < 2 or raw[-1] not in _UNITS or not raw[:-1].isdigit() or int(raw[:-1]) < 1:
        raise ValueError(f"must be a duration like 90s, 60m, 8h or 2d (got {text!r})")
    return int(raw[:-1]) * _UNITS[raw[-1]]


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        duration_seconds(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SpotPrices(_Model):
    """ACI Spot prices (priority Spot worker groups)."""

    vcpu_second: float = Field(ge=0, description="Spot price of one vCPU for one second.")
    gb_second: float = Field(ge=0, description="Spot price of one GB of memory for one second.")


class Prices(_Model):
    """ACI Linux list prices (override of the bundled price file)."""

    vcpu_second: float = Field(ge=0, description="Price of one vCPU for one second.")
    gb_second: float = Field(ge=0, description="Price of one GB of memory for one second.")
    currency: str = Field("USD", description="Currency of both prices.")
    spot: SpotPrices | None = Field(
        None,
        description="Spot prices; without them Spot groups are priced at the regular price.",
    )


class MaxGroup(_Model):
    """The largest container group the subscription may create (ACI quota for larger groups)."""

    vcpu: int = Field(
        ge=defaults.MAX_GROUP_CPU // defaults.TENTHS,
        le=defaults.MAX_QUOTA_GROUP_CPU // defaults.TENTHS,
        description="Most vCPU per group, 4 to 31 (above 4 only after an ACI quota request).",
    )
    memory_gb: float = Field(
        ge=defaults.MAX_GROUP_MEMORY / defaults.TENTHS,
        le=defaults.MAX_QUOTA_GROUP_MEMORY / defaults.TENTHS,
        description="Most GB per group, 16 to 240 (above 16 only after an ACI quota request).",
    )

    _tenth = field_validator("memory_gb")(_check_tenth)


class Deployment(_Model):
    """Where and how the workloads run."""

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$",
        description="Deployment name: prefix of every container group and the `deployment` tag. "
        "Lowercase letters, digits and '-', at most 40 characters.",
    )
    subscription: str | None = Field(
        None,
        description="Azure subscription id (`az account list -o table`); "
        "else --subscription or AZURE_SUBSCRIPTION_ID.",
    )
    resource_group: str | None = Field(
        None,
        description="Resource group (`az group list -o table`); else DEPLOYER_RESOURCE_GROUP.",
    )
    location: str | None = Field(
        None,
        pattern=r"^[a-z0-9]+$",
        description="Azure region name, e.g. westeurope "
        "(`az account list-locations -o table`); else DEPLOYER_LOCATION.",
    )
    overflow_locations: list[Annotated[str, Field(pattern=r"^[a-z0-9]+$")]] = Field(
        default_factory=list,
        description="Regions, in order, that take further autoscaled BLAST worker groups "
        "once the primary region's vCPU quota is used up (e.g. [northeurope]). Storage "
        "stays in the primary region: workers elsewhere pay latency and egress.",
    )
    registry: str | None = Field(
        None,
        description="Registry login server, e.g. myacr.azurecr.io "
        "(`az acr list --query [].loginServer -o tsv`); else DEPLOYER_REGISTRY.",
    )
    image_tag: str | None = Field(
        None, description="Image tag; else DEPLOYER_IMAGE_TAG, else latest."
    )
    managed_identity: str | None = Field(
        None,
        description="Resource id of the user-assigned managed identity that pulls images "
        "and reads storage (`az identity list --query [].id -o tsv`).",
    )
    managed_identity_client_id: str | None = Field(
        None,
        description="Client id of that identity, given to containers as AZURE_CLIENT_ID "
        "(`az identity show --ids ID --query clientId -o tsv`).",
    )
    registry_auth: Literal["identity", "admin"] = Field(
        "identity",
        description="How ACI pulls images: the managed identity, or the registry's admin "
        "user (DEPLOYER_REGISTRY_USERNAME / DEPLOYER_REGISTRY_PASSWORD).",
    )
    storage_account: str | None = Field(
        None,
        description="Storage account of the BLAST queue and databases "
        "(`az storage account list --query [].name -o tsv`). Without it, containers get "
        "AZURE_STORAGE_CONNECTION_STRING from the environment.",
    )
    subnet_id: str | None = Field(
        None,
        description="Subnet resource id for private IPs "
        "(`az network vnet subnet list -g RG --vnet-name VNET --query [].id -o tsv`).",
    )
    prices: Prices | None = Field(None, description="Override of the bundled ACI prices.")
    max_group: MaxGroup | None = Field(
        None,
        description="Larger container groups this subscription's quota allows (up to 31 vCPU "
        "and 240 GB, where the region has the capacity). A BLAST database too large for a "
        "standard group (4 vCPU, 16 GB) then gets one large worker group instead of shards "
        "when it fits; `deployer plan` says which and why.",
    )
    ttl: str | None = Field(
        None,
        description="Time to live, e.g. 8h: the janitor deletes every group of the deployment "
        "this long after `deployer up` (or `deployer run`) created it, and the job log says "
        "why. Units s, m, h, d.",
    )

    _ttl = field_validator("ttl")(_check_duration)


class Tls(_Model):
    """TLS of a front door: the notebook or the BLAST web page."""

    mode: Literal["off", "self-signed", "provided"] = "self-signed"
    cert_file: str | None = Field(None, description="PEM certificate when mode is provided.")
    key_file: str | None = Field(None, description="PEM private key when mode is provided.")

    @model_validator(mode="after")
    def _files_when_provided(self) -> Tls:
        if self.mode == "provided" and not (self.cert_file and self.key_file):
            raise ValueError("mode 'provided' needs cert_file and key_file")
        return self


class IPyParallel(_Model):
    """An IPython parallel cluster: a head group plus engine groups."""

    engines: int = Field(ge=1, le=10_000, description="Number of engines.")
    vcpu_per_engine: Tenth = Field(
        defaults.DEFAULT_ENGINE_CPU, description="vCPU per engine (0.1 steps)."
    )
    memory_gb_per_engine: Tenth = Field(
        defaults.DEFAULT_ENGINE_MEMORY_GB, description="GB of memory per engine (0.1 steps)."
    )
    engines_per_container: int = Field(
        1, ge=1, le=64, description="Engine processes per ipengine container."
    )
    mpi: bool = Field(
        False,
        description="Start the engines of each container under mpiexec as one MPI world "
        "(mpi4py, ranks 0..engines_per_container-1). A world never spans containers or "
        "container groups. Needs engines_per_container >= 2.",
    )
    notebook: bool = Field(True, description="Run the Jupyter notebook in the head group.")
    tls: Tls = Field(default_factory=Tls, description="Notebook TLS.")
    dns_label: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$",
        description="DNS label of the head: <label>.<location>.azurecontainer.io, unique in "
        "the region across all of Azure. Default: <deployment>-head-<6 hex digits of a hash of "
        "subscription, resource group and deployment>. Ignored with a subnet.",
    )

    idle_shutdown: str | None = Field(
        None,
        description="Delete the cluster after this long (e.g. 60m) with no kernel activity on "
        "the notebook server and no ipyparallel task pending or running (JupyterHub-culler "
        "behaviour). Units s, m, h, d.",
    )

    _tenths = field_validator("vcpu_per_engine", "memory_gb_per_engine")(_check_tenth)
    _idle = field_validator("idle_shutdown")(_check_duration)

    @model_validator(mode="after")
    def _mpi_needs_ranks(self) -> IPyParallel:
        if self.mpi and self.engines_per_container == 1:
            raise ValueError(
                "mpi: true needs engines_per_container >= 2: the engines of one container "
                "form one MPI world, and one world cannot span containers"
            )
        return self


class Autoscale(_Model):
    """Workers that follow the queue: from ``min_workers`` up to the quota and back."""

    min_workers: int = Field(
        0, ge=0, le=1000, description="Workers kept even when the queue is empty (0: none)."
    )
    max_workers: int = Field(ge=1, le=1000, description="Most workers at once.")
    target_backlog_per_worker: int = Field(
        defaults.DEFAULT_TARGET_BACKLOG_PER_WORKER,
        ge=1,
        le=10_000,
        description="Batches (queued plus in flight) per worker the scaler aims at: desired "
        "workers = ceil(backlog / this), between min_workers and max_workers.",
    )
    scale_in_after: str = Field(
        defaults.DEFAULT_SCALE_IN_AFTER,
        description="A worker that found no batch for this long exits, and its group is "
        "deleted once all its workers have; workers are never stopped mid-batch. Units s, m, h, d.",
    )

    _scale_in = field_validator("scale_in_after")(_check_duration)

    @model_validator(mode="after")
    def _min_below_max(self) -> Autoscale:
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) must be <= max_workers ({self.max_workers})"
            )
        return self


class BlastDatabase(_Model):
    """A BLAST database the workers cache.

    Its bytes-to-cache sizes the workers: ``bytes_to_cache`` given here wins, else the
    ``metadata`` file's, else the database's manifest in storage (written by ``blast-jobs db
    fetch`` and ``db upload``), read when the deployer plans (``deployer plan`` says which).
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Database name, e.g. swissprot.")
    bytes_to_cache: int | None = Field(
        None,
        ge=1,
        description="Bytes the database needs in memory (its metadata's bytes-to-cache). "
        "Default: the metadata file's, else the database's manifest in storage.",
    )
    metadata: str | None = Field(
        None,
        description="BLAST database metadata JSON (`<db>-<type>-metadata.json` of "
        "update_blastdb.pl), read for bytes-to-cache; relative to the workload file.",
    )
    shards: Literal["auto"] | Annotated[int, Field(ge=1, le=1000)] = Field(
        "auto",
        description="Search the database in this many shards (contiguous ranges of its "
        "volumes, each cached by its own workers, merged into one search's results). auto: "
        "shard only a database larger than the largest allowed worker group holds "
        "(deployment.max_group), into as few shards as fit.",
    )
    volume_bytes: tuple[Annotated[int, Field(ge=0)], ...] | None = Field(
        None,
        min_length=1,
        description="Bytes of each of its volumes' files, in its alias file's order: shards "
        "are cut by them as the workers cut them, and each shard's memory is its share of "
        "bytes-to-cache. Default: read from storage when the database may be sharded; an even "
        "split when unknown.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BlastDatabase:
        if self.bytes_to_cache is not None and self.metadata is not None:
            raise ValueError("give bytes_to_cache or metadata, not both")
        return self


class BlastWeb(_Model):
    """The BLAST web page: a container group of its own with a public IP (one port, 8080)."""

    tls: Tls = Field(default_factory=Tls, description="TLS of the page.")
    dns_label: str | None = Field(
        None,
        pattern=r"^[a-z][a-z0-9-]{1,61}[a-z0-9]$",
        description="DNS label of the page: <label>.<location>.azurecontainer.io, unique in "
        "the region across all of Azure. Default: <deployment>-blast-<6 hex digits of a hash "
        "of subscription, resource group and deployment>. Ignored with a subnet.",
    )


class Blast(_Model):
    """A queue-driven BLAST search service: worker groups."""

    workers: int = Field(
        ge=1,
        le=1000,
        description="Number of workers (a fixed pool). With autoscale, leave it out: "
        "autoscale.max_workers sizes the plan.",
    )
    threads_per_worker: int = Field(
        defaults.DEFAULT_BLAST_THREADS,
        ge=1,
        le=defaults.MAX_BLAST_THREADS,
        description="BLAST threads (= vCPU) per worker. Left out, `deployer run` shares the "
        "workers' cores (workers x the default) between workers and threads from the database "
        "size and the queries (deployer plan --queries shows the choice).",
    )
    queue: str = Field(defaults.DEFAULT_BLAST_QUEUE, description="Storage queue of BLAST jobs.")
    autoscale: Autoscale | None = Field(
        None, description="Scale the workers with the queue (`deployer run`); see README."
    )
    priority: Literal["regular", "spot"] = Field(
        "regular",
        description="Priority of the worker groups (never of the head, notebook or janitor). "
        "spot: ACI Spot containers, cheaper but evictable, no IP address and no subnet.",
    )
    spot_fallback: bool = Field(
        False,
        description="With priority spot: when ACI has no Spot capacity, create the worker "
        "group as regular instead of retrying Spot later.",
    )

    databases: list[BlastDatabase] = Field(
        min_length=1, description="Databases every worker caches."
    )
    web: bool | BlastWeb = Field(
        False,
        description="The BLAST web page: true (self-signed TLS, default DNS label) or its "
        "tls and dns_label. It runs in a group of its own.",
    )

    @property
    def web_page(self) -> BlastWeb | None:
        """The web page's settings, or None when it is off."""
        if isinstance(self.web, BlastWeb):
            return self.web
        return BlastWeb() if self.web else None

    @model_validator(mode="before")
    @classmethod
    def _workers_from_autoscale(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("autoscale") is None:
            return data
        if "workers" in data:
            raise ValueError(
                "give either workers (a fixed pool) or autoscale (whose max_workers is the "
                "ceiling), not both"
            )
        auto = data["autoscale"]
        ceiling = auto.get("max_workers") if isinstance(auto, dict) else None
        # A bad max_workers is reported under autoscale; do not report it twice.
        valid = isinstance(ceiling, int) and not isinstance(ceiling, bool) and ceiling >= 1
        return {**data, "workers": ceiling if valid else 1}

    @model_validator(mode="after")
    def _fallback_needs_spot(self) -> Blast:
        if self.spot_fallback and self.priority != "spot":
            raise ValueError("spot_fallback applies only with priority: spot")
        return self


class Workloads(_Model):
    """The workloads; at least one."""

    ipyparallel: IPyParallel | None = None
    blast: Blast | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Workloads:
        if self.ipyparallel is None and self.blast is None:
            raise ValueError("define at least one workload: ipyparallel or blast")
        return self


class Workload(_Model):
    """A whole workload file."""

    deployment: Deployment
    workloads: Workloads

    def with_blast(self, **changes: Any) -> Workload:
        """A copy whose BLAST workload has ``changes`` (as ``model_copy``: not validated again)."""
        blast = self.workloads.blast
        if blast is None:
            raise ValueError("the workload has no blast section")
        new_blast = blast.model_copy(update=changes)
        return self.model_copy(
            update={"workloads": self.workloads.model_copy(update={"blast": new_blast})}
        )

    @model_validator(mode="after")
    def _overflow_needs_autoscale(self) -> Workload:
        overflow = self.deployment.overflow_locations
        if not overflow:
            return self
        blast = self.workloads.blast
        if blast is None or blast.autoscale is None:
            raise ValueError(
                "deployment.overflow_locations needs workloads.blast.autoscale: only "
                "autoscaled worker groups overflow to other regions"
            )
        repeated = sorted({loc for loc in overflow if overflow.count(loc) > 1})
        if repeated:
            raise ValueError(f"deployment.overflow_locations repeats {', '.join(repeated)}")
        if self.deployment.location in overflow:
            raise ValueError(
                f"deployment.overflow_locations lists the primary location "
                f"{self.deployment.location}; list only the other regions"
            )
        return self


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of the workload file."""
    schema = Workload.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "aci-research deployer workload file"
    return schema


# --- loading, with line numbers -------------------------------------------------

Path_ = tuple[str | int, ...]


def _lines(node: yaml.Node, path: Path_, out: dict[Path_, int]) -> None:
    """Record the 1-based line of every key and item below ``node``."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = (*path, str(key.value))
            out[sub] = key.start_mark.line + 1
            _lines(value, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, i)
            out[sub] = item.start_mark.line + 1
            _lines(item, sub, out)


class _Loader(yaml.SafeLoader):
    """YAML with YAML 1.2's booleans: only ``true`` and ``false``.

    Under YAML 1.1 (PyYAML's default) ``on``, ``off``, ``yes`` and ``no`` are booleans too, so
    ``tls: {mode: off}`` would arrive as False where the schema wants the word ``off``. Here
    they stay words: a string field gets the word, and a boolean field still accepts it
    (pydantic reads ``yes``/``no``/``on``/``off`` as booleans).
    """


_BOOL = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _describe(err: dict[str, Any]) -> str:
    """Turn one pydantic error into a short sentence with the allowed values."""
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound} (got {got!r})"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')} (got {got!r})"
    if kind == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')} (got {got!r})"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "string_type" and isinstance(got, bool | int | float):
        # YAML typed the value (1.10 is the number 1.1): only quotes keep the text.
        return f"must be text: put the value in quotes (YAML read it as {got!r})"
    return f"{err['msg'][0].lower()}{err['msg'][1:]} (got {got!r})"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _allowed_fields(loc: Path_) -> list[str]:
    """Return the field names of the model at ``loc`` in the workload file."""
    model: type[BaseModel] = Workload
    for part in loc:
        info = model.model_fields.get(str(part))
        if info is None:
            continue  # a list index
        inner = _models_in(info.annotation)
        if not inner:
            break
        model = inner[0]
    return list(model.model_fields)


def _printable(text: str) -> str:
    """Escape control and other unprintable characters, so each problem stays one line."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def _problem(source: str, lines: dict[Path_, int], err: dict[str, Any]) -> str:
    loc: Path_ = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
    message = _describe(err)
    head, _, rest = message.partition(" ")
    if not loc and tuple(head.split(".")) in lines:
        # A check across sections names its field first: point at that field's line.
        loc, message = tuple(head.split(".")), rest
    line = None
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            line = lines[loc[:end]]
            break
    where = f"{source}:{line}" if line else source
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "extra_forbidden":
        message += f"; allowed: {', '.join(_allowed_fields(loc[:-1]))}"
    return f"{where}: {field}: {message}"


def parse(text: str, source: str = "<workload>", base_dir: Path | None = None) -> Workload:
    """Parse and validate a workload document.

    Args:
        text (str): The YAML text.
        source (str): The file name used in messages. Default: ``<workload>``.
        base_dir (Path | None): Directory that relative ``metadata`` paths start
            from. Default: the current directory.

    Returns:
        Workload: The validated workload, with every ``metadata`` reference
        resolved into ``bytes_to_cache``.

    Raises:
        WorkloadFileError: Listing every problem as ``FILE:LINE: field: message``.
    """
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WorkloadFileError(
            [_printable(f"{source}{line}: not valid YAML: {problem}")]
        ) from None
    except RecursionError:
        raise WorkloadFileError([f"{source}: not valid YAML: nested too deeply"]) from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _lines(node, (), lines)
    if not isinstance(data, dict):
        raise WorkloadFileError(
            [f"{source}:1: (top level): must be a mapping with 'deployment' and 'workloads'"]
        )
    try:
        workload = Workload.model_validate(data)
    except ValidationError as exc:
        raise WorkloadFileError(
            [_printable(_problem(source, lines, e)) for e in exc.errors(include_url=False)]  # type: ignore[arg-type]
        ) from None
    return _resolve_metadata(workload, source, lines, base_dir or Path.cwd())


def _resolve_metadata(
    workload: Workload, source: str, lines: dict[Path_, int], base_dir: Path
) -> Workload:
    blast = workload.workloads.blast
    if blast is None or all(db.metadata is None for db in blast.databases):
        return workload
    resolved = []
    for i, db in enumerate(blast.databases):
        if db.metadata is None:
            resolved.append(db)
            continue
        loc: Path_ = ("workloads", "blast", "databases", i, "metadata")
        where = f"{source}:{lines.get(loc, '?')}: {'.'.join(map(str, loc))}"
        path = base_dir / db.metadata
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            size = int(meta["bytes-to-cache"])
        except OSError as exc:
            raise WorkloadFileError(
                [_printable(f"{where}: cannot read {path}: {exc.strerror}")]
            ) from None
        except (ValueError, KeyError, TypeError):
            raise WorkloadFileError(
                [
                    _printable(
                        f"{where}: {path} is not BLAST database metadata with an integer "
                        "'bytes-to-cache' (get it with `update_blastdb.pl --showall pretty`)"
                    )
                ]
            ) from None
        resolved.append(db.model_copy(update={"bytes_to_cache": size}))
    return workload.with_blast(databases=resolved)


def load(path: Path) -> Workload:
    """Read and validate the workload file at ``path``.

    Args:
        path (Path): The YAML file.

    Raises:
        WorkloadFileError: When it cannot be read or is invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WorkloadFileError(
            [f"{path}: cannot read the workload file: {exc.strerror}"]
        ) from None
    return parse(text, str(path), path.parent)
