"""Fixtures for ``deployer run`` end to end, on the local ACI emulator: one emulator plus
Azurite per module (:func:`testbed.run_stack.emulated_run_stack`), and the demo queries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from blast_client.demo import DemoSpec, generate

from testbed.registry import PushedRegistry
from testbed.run_stack import DEMO_DB, RunStack, emulated_run_stack


@pytest.fixture(scope="module")
def run_stack(
    tmp_path_factory: pytest.TempPathFactory, pushed_images: PushedRegistry
) -> Iterator[RunStack]:
    """One strict emulator plus Azurite (with the demo database) for a module's tests; each
    test uses its own deployment name."""
    with emulated_run_stack(tmp_path_factory.mktemp("run"), pushed_images) as stack:
        yield stack


@pytest.fixture(scope="session")
def demo_fasta() -> str:
    """The demo queries (20 planted, 5 decoys) as FASTA."""
    queries: str = generate(DemoSpec(name=DEMO_DB)).queries
    return queries
