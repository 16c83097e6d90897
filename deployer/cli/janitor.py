"""``deployer-janitor``: the janitor group's entry point (the ``deployer`` image's command).

It finishes one run when ``JANITOR_RUN`` is set (:mod:`deployer.run.janitor`), else it ends
the deployment at its TTL or after its idle time (:mod:`deployer.run.deployment_janitor`).
Both read their settings from the environment the group was created with (``deployer run`` or
``deployer up`` sets it); exit 2 without ``JANITOR_DEPLOYMENT``, 1 on an error.
"""

from __future__ import annotations

import logging
import os
import sys

from deployer.errors import DeployerError
from deployer.run import deployment_janitor, janitor


def configure_logging() -> None:
    """The janitor's lines (its steps and decisions) at INFO on stdout, the group's log."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s janitor %(message)s", stream=sys.stdout
    )
    # The Azure SDK logs every request and its headers at INFO: 20 lines a request, which
    # would bury the janitor's own lines (and ACI keeps only the tail of a container's log).
    logging.getLogger("azure").setLevel(logging.WARNING)


def main() -> None:
    """Finish one run (``JANITOR_RUN``), or watch a deployment's TTL and idle shutdown."""
    configure_logging()
    if not os.environ.get("JANITOR_DEPLOYMENT"):
        print(
            "deployer-janitor: JANITOR_DEPLOYMENT is not set; the janitor runs in the group "
            "`deployer run` or `deployer up` creates, which sets it",
            file=sys.stderr,
        )
        sys.exit(2)
    try:
        if os.environ.get("JANITOR_RUN"):
            janitor.main_from_env(os.environ)
        else:
            deployment_janitor.main_from_env(os.environ)
    except DeployerError as exc:
        print(f"deployer-janitor: {exc}", file=sys.stderr)
        sys.exit(int(exc.exit_code))
    sys.exit(0)
