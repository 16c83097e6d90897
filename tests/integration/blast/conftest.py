"""Fixtures for the BLAST service integration tests, on the compose stack.

The stack itself (Azurite under compose, worker containers, the CLI, the BLAST programs) is
:mod:`testbed.blast_stack`, which the benchmarks use too; the tests only use
:class:`~testbed.blast_stack.Stack` through the ``stack`` fixture.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.blast_stack import (
    BIG_DB,
    BIG_SEQS,
    DEMO_DB,
    BlastTools,
    ComposeAzurite,
    Stack,
    require_images,
)
from testbed.engine import StackError


def _fail_on_stack_error(start: Callable[[], Any]) -> Any:
    """Call ``start``; turn a :class:`StackError` into a test failure (never a skip)."""
    try:
        return start()
    except StackError as exc:
        message = str(exc)
    pytest.fail(message, pytrace=False)  # outside the except: no chained traceback


@pytest.fixture(scope="session")
def blast_images(docker_client: Any) -> None:
    """The worker and Azurite images exist (``make test`` builds them first)."""
    _fail_on_stack_error(lambda: require_images(docker_client))


@pytest.fixture(scope="session")
def azurite(
    docker_client: Any, blast_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposeAzurite]:
    """The compose stack's azurite and init under ``acitest<pid>blast``, for the session."""
    az = _fail_on_stack_error(
        lambda: ComposeAzurite(
            docker_client, tmp_path_factory.mktemp("blast-stack"), f"acitest{os.getpid()}blast"
        )
    )
    try:
        _fail_on_stack_error(az.start)
        yield az
    finally:
        az.close()


@pytest.fixture(scope="session")
def blast_tools(
    docker_client: Any, azurite: ComposeAzurite, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BlastTools]:
    """ncbi-blast+ programs from the worker image, with pytest's temporary root mounted."""
    tools = BlastTools(docker_client, tmp_path_factory.getbasetemp(), azurite.project)
    try:
        yield tools
    finally:
        tools.close()


@pytest.fixture(scope="session")
def session_env(azurite: ComposeAzurite) -> dict[str, str]:
    """CLI environment for the session; the big database uploaded next to init's demo."""
    _fail_on_stack_error(
        lambda: azurite.run_in_network(
            ["blast-jobs", "init", "--demo-db", BIG_DB, "--demo-seqs", str(BIG_SEQS)]
        )
    )
    return {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "BLAST_DB_CONTAINER": "blastdb",
        "BLAST_RESULTS_CONTAINER": "blast-results",
        "BLAST_INPUTS_CONTAINER": "blast-inputs",
    }


@pytest.fixture
def stack(
    session_env: dict[str, str],
    azurite: ComposeAzurite,
    blast_tools: BlastTools,
    tmp_path: Path,
) -> Iterator[Stack]:
    """A fresh queue, poison queue and table on the session's storage; workers on demand."""
    suffix = secrets.token_hex(4)
    env = {**session_env, "BLAST_QUEUE": f"q-{suffix}", "BLAST_JOB_TABLE": f"jobs{suffix}"}
    st = Stack(azurite, blast_tools, tmp_path, env, suffix=suffix)
    st.cli("init")
    try:
        yield st
    finally:
        st.stop_all()
        azurite.ensure_up()  # a failed outage test must not break the next test


@pytest.fixture(scope="session")
def demo_queries() -> str:
    """The demo data set's queries (20 planted, 5 decoys), as FASTA."""
    from blast_client.demo import DemoSpec, generate

    queries: str = generate(DemoSpec(name=DEMO_DB)).queries
    return queries
