"""Planning: pure functions from a workload to desired groups, and from desired plus
observed groups to the changes ``up`` makes. Nothing here does I/O.

One module per concern; this package re-exports their public names:

* :mod:`.spec`: the types (:class:`ContainerSpec`, :class:`GroupSpec`, :class:`Plan`);
* :mod:`.common`: what every workload's groups share (containers from contract roles,
  registry pull and tags, image references, storage variables);
* :mod:`.ipyparallel` and :mod:`.blast`: each workload's groups;
* :mod:`.janitor`: the janitor group of a run or of a deployment;
* :mod:`.dbfetch`: the one-off group of ``deployer db fetch``;
* :mod:`.databases`: where each BLAST database's bytes-to-cache comes from;
* :mod:`.planner`: :func:`build`, the whole deployment;
* :mod:`.compare`: :func:`diff` of desired and observed groups.
"""

from deployer.plan.common import (
    LABEL_SUFFIX_UNKNOWN,
    NOTEBOOK_ENDPOINT,
    secret_volume,
    signed_in_links,
    storage_env,
)
from deployer.plan.compare import Action, Change, canonical, diff
from deployer.plan.ipyparallel import (
    HEAD_IP_PLACEHOLDER,
    activity_interval,
    dns_label,
    engine_connection_info,
    head_host,
    known_hosts_line,
    mpi_notes,
    mpi_worlds,
)
from deployer.plan.planner import build, group_names
from deployer.plan.spec import (
    BLAST,
    FETCH_TAG,
    IPP,
    ONE_OFF_TAGS,
    RUN_TAG,
    SECRETS_TAG,
    ContainerSpec,
    EnvValue,
    GroupSpec,
    Plan,
    RegistryAuth,
)

__all__ = [
    "BLAST",
    "FETCH_TAG",
    "HEAD_IP_PLACEHOLDER",
    "IPP",
    "LABEL_SUFFIX_UNKNOWN",
    "NOTEBOOK_ENDPOINT",
    "ONE_OFF_TAGS",
    "RUN_TAG",
    "SECRETS_TAG",
    "Action",
    "Change",
    "ContainerSpec",
    "EnvValue",
    "GroupSpec",
    "Plan",
    "RegistryAuth",
    "activity_interval",
    "build",
    "canonical",
    "diff",
    "dns_label",
    "engine_connection_info",
    "group_names",
    "head_host",
    "known_hosts_line",
    "mpi_notes",
    "mpi_worlds",
    "secret_volume",
    "signed_in_links",
    "storage_env",
]
