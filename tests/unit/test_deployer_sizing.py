"""Sizing: unit and property tests over the ACI limits."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import defaults, sizing
from deployer.errors import QuotaError, SizingError
from deployer.sizing import ACI, Resources

units = st.integers(min_value=1, max_value=400)
cpu = st.integers(min_value=1, max_value=40)
memory = st.integers(min_value=1, max_value=160)
per_container = st.integers(min_value=1, max_value=8)


def _fits(unit: Resources, k: int) -> bool:
    return unit.cpu * k <= ACI.max_cpu and unit.memory * k <= ACI.max_memory


@settings(max_examples=300, deadline=None)
@given(count=units, c=cpu, m=memory, e=per_container)
def test_every_group_respects_every_aci_limit(count: int, c: int, m: int, e: int) -> None:
    unit = Resources(c, m)
    if not _fits(unit, e):
        with pytest.raises(SizingError):
            sizing.pack(count, unit, e)
        return
    for group in sizing.pack(count, unit, e):
        total = group.total
        assert ACI.min_cpu <= total.cpu <= ACI.max_cpu
        assert ACI.min_memory <= total.memory <= ACI.max_memory
        assert 1 <= len(group.containers) <= ACI.max_containers
        assert all(0 < ct.units <= e for ct in group.containers)


@settings(max_examples=300, deadline=None)
@given(count=units, c=cpu, m=memory, e=per_container)
def test_packing_never_loses_or_duplicates_units(count: int, c: int, m: int, e: int) -> None:
    unit = Resources(c, m)
    if not _fits(unit, e):
        return
    placed = [
        i
        for group in sizing.pack(count, unit, e)
        for ct in group.containers
        for i in range(ct.first, ct.first + ct.units)
    ]
    assert placed == list(range(count))


@settings(max_examples=300, deadline=None)
@given(count=units, c=cpu, m=memory, e=per_container)
def test_group_count_is_minimal(count: int, c: int, m: int, e: int) -> None:
    unit = Resources(c, m)
    if not _fits(unit, e):
        return
    groups = sizing.pack(count, unit, e)
    most = max(g.units for g in groups)
    # No group could hold one more unit without breaking a limit...
    capacity = sizing.units_per_group(unit, e, ACI)
    assert not (_fits(unit, capacity + 1) and math.ceil((capacity + 1) / e) <= ACI.max_containers)
    # ...so ceil(count / capacity) groups is the least possible, and that is what we got.
    assert len(groups) == math.ceil(count / capacity)
    assert most <= capacity


def test_small_group_is_padded_to_the_aci_minimum() -> None:
    [group] = sizing.engine_groups(1, 0.5, 0.5, 1)
    assert group.total == Resources(10, 10)


def test_engines_pack_four_per_group_at_one_vcpu() -> None:
    groups = sizing.engine_groups(10, 1, 2, 1)
    assert [g.units for g in groups] == [4, 3, 3]
    assert [len(g.containers) for g in groups] == [4, 3, 3]


def test_container_limit_caps_tiny_engines() -> None:
    groups = sizing.engine_groups(120, 0.1, 0.1, 1)
    assert [g.units for g in groups] == [40, 40, 40]  # 4 vCPU / 0.1
    groups = sizing.pack(130, Resources(1, 1), 1, sizing.Limits(max_cpu=400, max_memory=400))
    assert [len(g.containers) for g in groups] == [44, 43, 43]  # 60 containers cap: 3 groups


def test_engine_that_does_not_fit_is_refused_with_what_to_change() -> None:
    with pytest.raises(SizingError) as info:
        sizing.engine_groups(2, 3, 2, 2)
    assert "6 vCPU" in info.value.message and "at most 4 vCPU" in info.value.message
    assert "engines_per_container" in (info.value.hint or "")


def test_blast_worker_memory_is_cache_times_1_1_plus_overhead() -> None:
    worker = sizing.blast_worker([("a", 2 * defaults.GB), ("b", 1 * defaults.GB)], 2)
    # 3 GB x 1.1 + 0.5 GB = 3.8 GB
    assert worker == Resources(20, 38)


def test_blast_database_that_cannot_fit_is_refused_in_one_line_naming_the_options() -> None:
    with pytest.raises(SizingError) as info:
        sizing.blast_groups(3, [("est_human", 15_200_000_000)], 2)
    err = info.value
    text = str(err)
    assert "\n" not in text and err.hint is None  # one line, no hint line
    assert text.startswith("database est_human needs 17.3 GB per worker")
    assert "the largest worker group holds 16 GB (14.1 GB of bytes-to-cache)" in text
    assert "use a smaller database" in text
    assert "search it in shards (shards: auto or a number" in text
    assert "larger groups (ACI allows up to 240 GB after a quota request" in text
    assert "deployment.max_group)" in text
    assert err.exit_code == 2 and err.code == "DatabaseTooLarge"


def test_databases_that_fit_alone_but_not_together_say_so() -> None:
    with pytest.raises(SizingError) as info:
        sizing.check_cache_fits([("a", 8 * defaults.GB), ("b", 8 * defaults.GB)])
    text = str(info.value)
    assert text.startswith("databases a, b together need 18.1 GB per worker")
    assert "cache fewer databases per worker" in text and "\n" not in text


def test_the_largest_of_several_oversized_databases_is_named_with_the_others() -> None:
    with pytest.raises(SizingError) as info:
        sizing.check_cache_fits([("nr", 15 * defaults.GB), ("nt", 20 * defaults.GB)])
    assert str(info.value).startswith("database nt needs 22.5 GB per worker")
    assert ", and nr is too large as well:" in str(info.value)


@pytest.mark.parametrize(
    "limits", [ACI, sizing.Limits(max_memory=2400), sizing.Limits(max_memory=11)]
)
def test_worker_cache_limit_is_exactly_the_largest_cache_one_worker_group_holds(
    limits: sizing.Limits,
) -> None:
    limit = sizing.worker_cache_limit(limits)
    assert sizing.blast_worker([("db", limit)], 1, limits).memory <= limits.max_memory
    with pytest.raises(SizingError):
        sizing.blast_worker([("db", limit + 1)], 1, limits)
    # what the sharding work divides by: 14.1 GB in a 16 GB group
    if limits == ACI:
        assert limit == 14_090_909_090


@settings(max_examples=200, deadline=None)
@given(
    workers=st.integers(1, 200),
    threads=st.integers(1, 4),
    cache=st.integers(1, 13_000_000_000),
)
def test_blast_groups_respect_limits_and_keep_every_worker(
    workers: int, threads: int, cache: int
) -> None:
    groups = sizing.blast_groups(workers, [("db", cache)], threads)
    assert sum(g.units for g in groups) == workers
    for g in groups:
        assert g.total.cpu <= ACI.max_cpu and g.total.memory <= ACI.max_memory
        assert g.total.cpu >= ACI.min_cpu and g.total.memory >= ACI.min_memory


def test_quota_check_names_the_numbers_and_the_fix() -> None:
    sizing.check_quota(400, 100, 60, "eastus")  # 40.0 vCPU: exactly what is free
    with pytest.raises(QuotaError) as info:
        sizing.check_quota(401, 100, 60, "eastus")  # 40.1 vCPU needs 41 cores
    assert "needs 41 cores" in info.value.message and "only 40 of 100" in info.value.message
    assert info.value.code == "QuotaExceeded" and info.value.exit_code == 1


def test_tenths_round_up_and_format() -> None:
    assert sizing.to_tenths(1.23) == 13
    assert sizing.to_tenths(0.1) == 1
    assert sizing.fmt(15) == "1.5" and sizing.fmt(40) == "4"
