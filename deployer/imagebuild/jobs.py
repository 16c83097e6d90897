"""What one image build needs and what it reports, shared by both builders."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from deployer.imagebuild.catalogue import ImageSpec

LogSink = Callable[[str], None]
"""Receives one log line of one build (without its newline)."""
TAIL_LINES = 30
"""Lines of a failing build's log shown in the error."""


@dataclass(frozen=True)
class BuildJob:
    """One image to build.

    Args:
        spec (ImageSpec): The image.
        archive (bytes): Its packed context (tar.gz), with the generated Dockerfile.
        dockerfile (str): The Dockerfile's path in the archive.
        context_sha256 (str): Hash of the context's own files.
        build_hash (str): Hash of context, target and parents (the image label).
        refs (tuple[str, ...]): Every ``<registry>/<image>:<tag>`` to push; the first
            is the one to deploy, the second marks the build hash.
        args (dict[str, str]): Build arguments.
        no_cache (bool): Build without the layer cache.
        timeout_s (int): Time limit of the build.
    """

    spec: ImageSpec
    archive: bytes
    dockerfile: str
    context_sha256: str
    build_hash: str
    refs: tuple[str, ...]
    args: dict[str, str]
    no_cache: bool = False
    timeout_s: int = 3600


class BuildFailedError(Exception):
    """A build ran and failed.

    Args:
        message (str): What failed, e.g. ``run cb12 Failed``.
        tail (list[str]): The last lines of its log.
    """

    def __init__(self, message: str, tail: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.tail = tail


class Builder(Protocol):
    """Builds one image and pushes every one of its refs."""

    def build(self, job: BuildJob, log: LogSink) -> str | None:
        """Build and push ``job``; send each log line to ``log``.

        Returns:
            str | None: The pushed manifest digest, when known.

        Raises:
            BuildFailedError: When the build ran and failed.
            DeployerError: When it could not be started.
        """
        ...


@dataclass
class Tail:
    """Keeps the last lines of a log and forwards every line.

    Args:
        sink (LogSink): Where each line goes.
        size (int): Lines kept. Default: :data:`TAIL_LINES`.
    """

    sink: LogSink
    size: int = TAIL_LINES
    lines: deque[str] = field(default_factory=deque)

    def __call__(self, line: str) -> None:
        """Forward ``line`` and keep it."""
        self.lines.append(line)
        while len(self.lines) > self.size:
            self.lines.popleft()
        self.sink(line)
