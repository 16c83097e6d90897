"""A real image build behind this machine's TLS interception, without the proxy CA.

``.ci/run`` and these machines intercept TLS to PyPI and npm, so ``images/build.sh``
without ``EXTRA_CA_CERTS`` really fails inside pip; its last line must say what to
set instead of leaving the user with a certificate error deep in the log.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess

import docker
import pytest

from testbed.engine import IMAGE_PREFIX, REPO, image


def test_build_without_the_proxy_ca_ends_with_what_to_set(
    docker_client: docker.DockerClient,
) -> None:
    tag = f"tlshint-{secrets.token_hex(3)}"
    # ipengine's builder stage pip-installs right after its first steps: a cheap failure.
    for base in ("base", "base-builder"):
        docker_client.images.get(image(base)).tag(f"{IMAGE_PREFIX}/{base}", tag)
    env = {k: v for k, v in os.environ.items() if k != "EXTRA_CA_CERTS"}
    env.update(TAG=tag, DOCKER_BUILD_ARGS="--force-rm")  # leave no failed step's container
    try:
        build = subprocess.run(
            [str(REPO / "images" / "build.sh"), "ipengine"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        for name in ("ipengine", "base", "base-builder"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                docker_client.images.remove(f"{IMAGE_PREFIX}/{name}:{tag}", noprune=True)
    if build.returncode == 0:
        message = "TLS is not intercepted on this machine: the build needs no extra CA"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI expects the interception .ci/run describes)")
        pytest.skip(message)
    assert build.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in build.stdout  # pip's own error, in the build log
    last = build.stderr.strip().splitlines()[-1]
    assert "TLS certificate verification failed inside the image build" in last, build.stderr
    assert "set EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt" in last
