"""Emulator mode: container groups run as real containers on the local Docker engine.

:class:`DockerRuntime` (:mod:`.runtime`) composes the parts; each module holds one
concern (images, network, volumes, containers, restarts, probes, logs, labels, state).
"""

from .containers import nano_cpus
from .images import ImageResolver, image_candidates
from .labels import LABEL_CONTAINER, LABEL_GROUP, LABEL_INSTANCE, LABEL_ROLE, remove_instance
from .network import Networking
from .restarts import GROUP_EVICTED_EVENT
from .runtime import DockerRuntime
from .settings import EmulatorError, EmulatorSettings
from .state import ContainerRun, GroupKey, GroupRun, add_event, group_state, should_restart

__all__ = [
    "GROUP_EVICTED_EVENT",
    "LABEL_CONTAINER",
    "LABEL_GROUP",
    "LABEL_INSTANCE",
    "LABEL_ROLE",
    "ContainerRun",
    "DockerRuntime",
    "EmulatorError",
    "EmulatorSettings",
    "GroupKey",
    "GroupRun",
    "ImageResolver",
    "Networking",
    "add_event",
    "group_state",
    "image_candidates",
    "nano_cpus",
    "remove_instance",
    "should_restart",
]
