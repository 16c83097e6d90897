"""The run protocol: how ``deployer run`` records a run and puts its jobs, which the janitor
(the ``deployer`` image, maybe of another build) must understand.

A run's record keeps the protocol it needs (:func:`run_protocol`). The janitor ends a run that
needs a newer protocol than its own instead of mis-handling it
(:func:`deployer.run.decide.decide`), and ``deployer run`` refuses to deploy a janitor image
whose build recorded an older protocol than the run needs (``deployer build`` records
:data:`RUN_PROTOCOL` for the ``deployer`` image). Bump :data:`RUN_PROTOCOL` with any change an
older janitor would misread, and describe it in :data:`PROTOCOLS` and :func:`run_protocol`.
"""

from __future__ import annotations

JANITOR_IMAGE = "deployer"
"""The image a run's janitor runs (``deployer-janitor``)."""

RUN_PROTOCOL = 3
"""The newest run protocol, this deployer's (:data:`PROTOCOLS`)."""

PINNED_PROTOCOL = 3
"""The protocol from which each shard's jobs have a queue of their own and every worker
group is pinned to one shard (``deployer.run.state.Run.pinned``)."""

PROTOCOLS = {
    1: "one job per batch",
    2: "a batch of a sharded database is one job per shard, done when all its shards are",
    3: "each shard's jobs are on a queue of their own, and every worker group serves one shard",
}
"""What each run protocol added. A janitor handles every protocol up to its own."""


def run_protocol(shards: int) -> int:
    """The oldest protocol whose janitor handles a run whose batches are ``shards`` jobs
    each (pure): a run of a whole database needs 1, so an older janitor image still serves
    it. A sharded run needs 3: a janitor of 2 would drop only the run's own queue, and scale
    workers that take no shard's jobs."""
    return PINNED_PROTOCOL if shards > 1 else 1


def shard_queue(queue: str, shard: int) -> str:
    """The queue of one shard's jobs of a run pinned to shards (pure; protocol 3):
    ``<queue>-s<shard>``, 1-based as the shard job ids' ``-s<k>`` (``run-r1a2b3c4d-s2``, its
    poison queue ``run-r1a2b3c4d-s2-poison``: well within Azure's 63 characters)."""
    return f"{queue}-s{shard}"
