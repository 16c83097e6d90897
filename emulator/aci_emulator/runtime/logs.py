"""Reading a container's output as ACI's logs route returns it."""

from __future__ import annotations

import docker
import docker.errors


def container_logs(
    client: docker.DockerClient, docker_id: str, tail: int | None, timestamps: bool
) -> str:
    """A container's output (stdout and stderr), all its runs.

    :param client: the Docker client.
    :param docker_id: the container.
    :param tail: only the last lines; ``None`` for all.
    :param timestamps: prefix each line with its time.
    :return: the text ("" once the container is gone).
    """
    try:
        raw = client.api.logs(
            docker_id,
            stdout=True,
            stderr=True,
            timestamps=timestamps,
            tail="all" if tail is None else tail,
        )
    except docker.errors.NotFound:
        return ""
    return bytes(raw).decode("utf-8", "replace")
