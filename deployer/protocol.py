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

RUN_PROTOCOL = 2
"""The newest run protocol, this deployer's (:data:`PROTOCOLS`)."""

PROTOCOLS = {
    1: "one job per batch",
    2: "a batch of a sharded database is one job per shard, done when all its shards are",
}
"""What each run protocol added. A janitor handles every protocol up to its own."""


def run_protocol(shards: int) -> int:
    """The oldest protocol whose janitor handles a run whose batches are ``shards`` jobs
    each (pure): a run of a whole database needs 1, so an older janitor image still serves
    it."""
    return 2 if shards > 1 else 1
