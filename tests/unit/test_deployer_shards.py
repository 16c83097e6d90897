"""Whole or in shards, standard or large groups: the sizing of a BLAST database (pure), and what
``deployer plan``, ``up`` and ``run`` make of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer import defaults, sizing
from deployer.errors import InputError, SizingError
from deployer.plan.databases import may_shard, require_unsharded, with_volumes, worker_sizing
from deployer.workload import load

GB = defaults.GB
STANDARD = sizing.worker_cache_limit(sizing.ACI)  # about 14.1 GB
LARGE = sizing.large_limits(31, 240)


def test_a_database_that_fits_a_standard_group_is_searched_whole() -> None:
    choice = sizing.choose_shards("swissprot", STANDARD, "auto", LARGE)
    assert (choice.shards, choice.large, choice.limits) == (1, False, sizing.ACI)
    assert "fits one standard group" in choice.why


def test_auto_prefers_one_large_group_over_shards_when_max_group_is_declared() -> None:
    choice = sizing.choose_shards("nr", 100 * GB, "auto", LARGE)
    assert (choice.shards, choice.large, choice.limits) == (1, True, LARGE)
    assert "fits one large group (31 vCPU, 240 GB, deployment.max_group)" in choice.why
    worker = sizing.blast_worker([("nr", choice.shard_bytes)], 2, choice.limits)
    assert worker.memory > sizing.ACI.max_memory
    assert worker.memory <= LARGE.max_memory


def test_auto_shards_a_database_larger_than_the_largest_allowed_group() -> None:
    choice = sizing.choose_shards("nt", 50 * GB, "auto")
    assert choice.shards == 4 and not choice.large  # 50 / 4 = 12.5 GB <= 14.1 GB
    assert choice.shard_bytes <= STANDARD < 50 * GB / 3
    assert "exceeds what the largest allowed group holds (14.1 GB in a standard group)" in (
        choice.why
    )
    # With large groups, as few shards as fit them.
    big = sizing.choose_shards("nt", 500 * GB, "auto", LARGE)
    assert big.shards == 3 and big.large and big.shard_bytes <= sizing.worker_cache_limit(LARGE)


def test_shards_are_whole_volumes_so_their_sizes_decide_the_count() -> None:
    # Even halves would fit (2 x 12 GB), but volumes of 16, 4, 4 GB cut best as 16 | 8.
    with pytest.raises(SizingError, match=r"a volume of 16\.0 GB is larger"):
        sizing.choose_shards("nt", 24 * GB, "auto", volumes=[16 * GB, 4 * GB, 4 * GB])
    choice = sizing.choose_shards("nt", 24 * GB, "auto", volumes=[10 * GB, 6 * GB, 8 * GB])
    assert choice.shards == 2 and choice.shard_bytes == 14 * GB


def test_a_number_of_shards_is_kept_and_sized_standard_or_large() -> None:
    assert sizing.choose_shards("nt", 10 * GB, 4).shards == 4
    forced = sizing.choose_shards("nt", 40 * GB, 2, LARGE)
    assert forced.shards == 2 and forced.large
    with pytest.raises(SizingError, match=r"in 2 shards: a shard of 20\.0 GB needs 22\.5 GB"):
        sizing.choose_shards("nt", 40 * GB, 2)
    with pytest.raises(SizingError, match="has 3 volumes, so at most 3 shards, not 4"):
        sizing.choose_shards("nt", 3 * GB, 4, volumes=[GB, GB, GB])


def test_shards_1_keeps_the_old_one_line_refusal() -> None:
    with pytest.raises(SizingError) as info:
        sizing.choose_shards("nt", 50 * GB, 1)
    assert str(info.value).startswith("database nt needs 55.5 GB per worker")
    assert info.value.code == "DatabaseTooLarge"


def test_only_a_deployment_of_one_database_is_sharded() -> None:
    with pytest.raises(SizingError, match="database nt asks for shards, but only a deployment"):
        sizing.blast_sizing([("a", GB, "auto"), ("nt", GB, 4)], 2)
    together = sizing.blast_sizing([("a", 8 * GB, "auto"), ("b", 8 * GB, "auto")], 2, LARGE)
    assert together.limits == LARGE and together.shards == 1


def _workload(tmp_path: Path, extra: str, db: str) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(
        f"deployment:\n  name: lab\n{extra}workloads:\n  blast:\n    workers: 4\n"
        f"    threads_per_worker: 2\n    databases:\n      - {db}\n"
    )
    return path


def test_plan_says_shards_and_up_refuses_them_in_one_line(tmp_path: Path) -> None:
    workload = load(_workload(tmp_path, "", "{name: nt, bytes_to_cache: 50000000000}"))
    sized = worker_sizing(workload)
    line = sizing.describe_choice(sized.choices[0], sized.worker)
    assert line.startswith("Database nt: searched in 4 shards")
    assert "a run of B batches is B x 4 jobs" in line and "\n" not in line
    assert sized.worker.memory <= sizing.ACI.max_memory
    with pytest.raises(InputError) as info:
        require_unsharded(workload)
    assert "database nt needs 4 shards" in str(info.value)
    assert "the service (deployer up) cannot search shards yet" in str(info.value)
    assert "deployer run" in str(info.value)


def test_max_group_gives_one_large_group_that_up_can_create(tmp_path: Path) -> None:
    extra = "  max_group: {vcpu: 31, memory_gb: 240}\n"
    workload = load(_workload(tmp_path, extra, "{name: nt, bytes_to_cache: 50000000000}"))
    require_unsharded(workload)  # one large group: nothing to shard
    sized = worker_sizing(workload)
    assert sized.limits == LARGE and sized.worker.memory == 555  # 50 GB x 1.1 + 0.5
    line = sizing.describe_choice(sized.choices[0], sized.worker)
    assert "searched whole by workers of 55.5 GB in large groups (31 vCPU, 240 GB" in line


@pytest.mark.parametrize(
    "extra",
    ["  max_group: {vcpu: 32, memory_gb: 240}\n", "  max_group: {vcpu: 8, memory_gb: 241}\n"],
)
def test_max_group_beyond_what_aci_allows_is_refused(tmp_path: Path, extra: str) -> None:
    with pytest.raises(Exception, match="max_group"):
        load(_workload(tmp_path, extra, "{name: nt, bytes_to_cache: 5}"))


def test_shards_are_cut_as_the_workers_cut_and_sized_by_their_share_of_bytes_to_cache() -> None:
    # Volumes' files of 12, 18, 18, 12 GB (headers included) hold 30 GB of bytes-to-cache.
    files = [12 * GB, 18 * GB, 18 * GB, 12 * GB]
    assert sizing.shard_caches(30 * GB, files, 4) == (6 * GB, 9 * GB, 9 * GB, 6 * GB)
    assert sizing.shard_caches(30 * GB, files, 2) == (15 * GB, 15 * GB)
    assert sizing.shard_caches(10, [1, 1, 1], 3) == (4, 4, 4)  # rounded up, never under
    # An even split (30 / 3 = 10 GB) fits standard groups; the real volumes' best 3-way cut
    # (6+9 | 9 | 6, 15 GB) does not, so auto takes 4 shards, each with its own memory.
    assert sizing.choose_shards("nt", 30 * GB, "auto").shards == 3
    choice = sizing.choose_shards("nt", 30 * GB, "auto", volumes=files)
    assert (choice.shards, choice.shard_bytes, choice.by_volumes) == (4, 9 * GB, True)
    assert choice.each == (6 * GB, 9 * GB, 9 * GB, 6 * GB)
    worker = sizing.blast_worker([("nt", choice.shard_bytes)], 2)
    line = sizing.describe_choice(choice, worker)
    assert "searched in 4 shards" in line and "cut by its volumes' sizes in storage" in line
    assert "needing 7.1, 10.4, 10.4, 7.1 GB, up to 9.0 GB of bytes-to-cache and 10.4 GB" in line
    even = sizing.choose_shards("nt", 30 * GB, 3)
    assert "an even split: its volumes' sizes are not known" in sizing.describe_choice(even, worker)
    with pytest.raises(SizingError, match=r"in 3 shards: a shard of 15\.0 GB needs 17 GB per"):
        sizing.choose_shards("nt", 30 * GB, 3, volumes=files)


def test_the_workload_sizes_shards_by_its_volumes_and_storage_is_asked_only_when_they_matter(
    tmp_path: Path,
) -> None:
    db = "{name: nt, bytes_to_cache: 30000000000, volume_bytes: [12, 18, 18, 12]}"
    sized = worker_sizing(load(_workload(tmp_path, "", db)))
    assert sized.shards == 4 and sized.choices[0].by_volumes
    assert sized.worker.memory == 104  # 9 GB (30 GB of 4 volumes in 12:18:18:12) x 1.1 + 0.5
    unknown = load(_workload(tmp_path, "", "{name: nt, bytes_to_cache: 30000000000}"))
    assert worker_sizing(unknown).shards == 3
    assert may_shard(unknown.workloads.blast) == ["nt"]
    filled = with_volumes(unknown, {"nt": (12, 18, 18, 12), "other": (1,)})
    assert worker_sizing(filled).worker == sized.worker
    for small in ("{name: nt, bytes_to_cache: 1000}", "{name: nt, bytes_to_cache: 30000000000, "
                  "shards: 1}", "{name: nt}", db):  # fmt: skip
        assert may_shard(load(_workload(tmp_path, "", small)).workloads.blast) == []
    assert may_shard(load(_workload(tmp_path, "", "{name: nt, bytes_to_cache: 9, shards: 2}"))
                     .workloads.blast) == ["nt"]  # fmt: skip
