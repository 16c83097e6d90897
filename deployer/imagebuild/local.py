"""Builds with the local Docker engine (docker SDK), then tags and pushes.

The packed context goes to the engine as it is (``custom_context``), so
``.dockerignore``, the generated Dockerfile and, behind a TLS-intercepting proxy,
the extra CA bundle in ``build-ca/`` (trusted by apt/pip/npm in builder stages only)
arrive exactly as packed; the working tree is never touched.
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

import docker
from docker.errors import APIError, DockerException

from deployer.errors import DeployerError
from deployer.imagebuild import tls
from deployer.imagebuild.jobs import BuildFailedError, BuildJob, LogSink, Tail

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def docker_client() -> Any:
    """Return a docker SDK client from the environment (``DOCKER_HOST`` or the socket).

    Raises:
        DeployerError: When no engine answers.
    """
    try:
        client = docker.from_env(timeout=600)
        client.ping()
    except DockerException as exc:
        raise DeployerError(
            f"cannot reach the Docker engine: {exc}",
            hint="start it (`sudo systemctl start docker`), or set DOCKER_HOST",
            code="DockerUnavailable",
        ) from None
    return client


class LocalBuilder:
    """Builds with the local engine and pushes every ref of a job.

    Args:
        client (Any): A ``docker.DockerClient``.
        auth_config (dict[str, str] | None): Registry credentials for pushes
            (``username``/``password``); None for an open registry. Default: None.
    """

    def __init__(self, client: Any, auth_config: dict[str, str] | None = None) -> None:
        self.client = client
        self.auth_config = auth_config

    def build(self, job: BuildJob, log: LogSink) -> str | None:
        """Build ``job``, tag it with every ref, push them; return the pushed digest.

        Raises:
            BuildFailedError: When the build or a push fails.
        """
        seen: list[str] = []  # certificate failures only, for the proxy-CA hint

        def log_line(line: str) -> None:
            if tls.is_cert_failure(line):
                seen.append(line)
            log(line)

        tail = Tail(log_line)
        failed = f"docker build of {job.spec.name} failed"
        image_id = None
        try:
            stream = self.client.api.build(
                fileobj=io.BytesIO(job.archive),
                custom_context=True,
                encoding="gzip",
                dockerfile=job.dockerfile,
                tag=job.refs[0],
                buildargs=job.args,
                nocache=job.no_cache,
                rm=True,
                forcerm=True,
                decode=True,
                timeout=job.timeout_s,
            )
            for chunk in stream:
                for line in _ANSI.sub("", str(chunk.get("stream", ""))).splitlines():
                    if line.strip():
                        tail(line)
                if "error" in chunk:
                    tail(str(chunk["error"]).strip())
                    raise BuildFailedError(_with_tls_hint(failed, seen), list(tail.lines))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "ID" in aux:
                    image_id = aux["ID"]
        except APIError as exc:
            tail(str(exc.explanation or exc))
            raise BuildFailedError(failed, list(tail.lines)) from None
        if image_id is None:
            raise BuildFailedError(f"{failed}: no image", list(tail.lines))
        digest = None
        for ref in job.refs:
            repository, _, tag = ref.rpartition(":")
            self.client.api.tag(image_id, repository, tag)
            pushed = self._push(repository, tag, tail)
            digest = digest or pushed
        return digest

    def _push(self, repository: str, tag: str, tail: Tail) -> str | None:
        digest = None
        try:
            for chunk in self.client.api.push(
                repository, tag, stream=True, decode=True, auth_config=self.auth_config
            ):
                if "error" in chunk:
                    tail(str(chunk["error"]).strip())
                    raise BuildFailedError(f"push of {repository}:{tag} failed", list(tail.lines))
                aux = chunk.get("aux")
                if isinstance(aux, dict) and "Digest" in aux:
                    digest = str(aux["Digest"])
        except APIError as exc:
            tail(str(exc.explanation or exc))
            raise BuildFailedError(f"push of {repository}:{tag} failed", list(tail.lines)) from None
        tail(f"pushed {repository}:{tag} {digest or ''}".rstrip())
        return digest


def _with_tls_hint(message: str, cert_failures: list[str]) -> str:
    """Append what to set when the build failed on a distrusted certificate."""
    example = "EXTRA_CA_CERTS={bundle} deployer build --local ..."
    line = tls.hint(cert_failures, os.environ.get("EXTRA_CA_CERTS"), example=example)
    return f"{message}: {line}" if line else message
