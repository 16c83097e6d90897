"""The deterministic demo data set."""

from __future__ import annotations

import hashlib

from blast_client.demo import DemoSpec, generate


def test_demo_data_is_deterministic_and_planted() -> None:
    spec = DemoSpec(seqs=20, seq_len=300, queries=4, decoys=1, query_len=100)
    a, b = generate(spec), generate(spec)
    assert a == b
    digest = hashlib.sha256(a.subjects.encode() + a.queries.encode()).hexdigest()
    # Pinned so that a change to the generator (and thus to every test database) is noticed.
    assert digest == DEMO_DIGEST
    assert a.queries.count(">") == 5 and set(a.planted) == {f"query_00{i}" for i in range(1, 5)}
    assert generate(DemoSpec(seqs=20, seq_len=300, seed=1)) != a


DEMO_DIGEST = "f686980a64480a105b9095bec51c9d2b8b2bf489c81c683d2860addfaecf24fd"
