"""Shards of a BLAST database and the merge's refusals (pure; the equality with one search of
the whole database is proved with real BLAST in tests/integration/blast/test_shard_equality.py).
"""

from __future__ import annotations

import itertools

import pytest
from blast_client import shardmerge, shards
from blast_client.shards import Volume


def _volumes(*sizes: int) -> list[Volume]:
    return [Volume(f"nt.{i:02d}", 10 + i, 1000 * (i + 1), size) for i, size in enumerate(sizes)]


def test_split_keeps_volumes_contiguous_in_order_and_offsets_ordinal_ids() -> None:
    vols = _volumes(5, 5, 5, 5, 5)
    parts = shards.split("nt", vols, 2)
    assert [v for s in parts for v in s.volumes] == vols
    assert [s.first_oid for s in parts] == [0, sum(v.sequences for v in parts[0].volumes)]
    assert [s.name for s in parts] == ["nt.shard1of2", "nt.shard2of2"]


@pytest.mark.parametrize("sizes", [(9, 1, 1, 1, 1, 9), (1, 2, 3, 4, 5, 6, 7), (4, 4, 4, 4)])
def test_split_minimises_the_largest_shard(sizes: tuple[int, ...]) -> None:
    vols = _volumes(*sizes)
    for count in range(1, len(vols) + 1):
        best = min(
            max(sum(sizes[a:b]) for a, b in itertools.pairwise((0, *cuts, len(sizes))))
            for cuts in itertools.combinations(range(1, len(sizes)), count - 1)
        )
        parts = shards.split("nt", vols, count)
        assert len(parts) == count and all(s.volumes for s in parts)
        assert max(s.bytes for s in parts) == best


def test_split_refuses_more_shards_than_volumes() -> None:
    with pytest.raises(ValueError, match="has 2 volume"):
        shards.split("nt", _volumes(1, 1), 3)


def test_alias_file_lists_the_volumes_with_the_whole_database_statistics() -> None:
    shard = shards.split("nt", _volumes(1, 1, 1, 1), 2)[1]
    text = shards.alias_file(shard, "nt", 1234, 567890)
    assert "DBLIST nt.02 nt.03\n" in text
    assert "STATS_NSEQ 1234\n" in text and "STATS_TOTLEN 567890\n" in text
    assert "TITLE nt\n" in text


def test_whole_db_names_the_database_a_shard_belongs_to() -> None:
    assert shards.whole_db("/cache/nt/nt.shard2of4") == "/cache/nt/nt"
    assert shards.whole_db("/cache/nt/nt") == "/cache/nt/nt"
    # A worker caches a shard in a directory of its own; reports name the whole database's.
    assert shards.whole_db("/cache/nt.shard2of4/nt.shard2of4") == "/cache/nt/nt"
    assert shards.whole_db("nt.shard2of4/nt.shard2of4") == "nt/nt"


STORED = {
    "nt.nal": 80, "nt.ndb": 4096, "nt.nos": 50, "nt.njs": 300,
    "nt.00.nsq": 700, "nt.00.nhr": 100, "nt.01.nsq": 300, "nt.01.nhr": 100,
    "nt.02.nsq": 300, "nt.02.nhr": 100, "manifest.json": 900,
}  # fmt: skip


def test_stored_volumes_follow_the_alias_order_and_weigh_their_files() -> None:
    alias = "#\nTITLE nt\nDBLIST nt.00 nt.01 nt.02\n"
    vols = shards.stored_volumes("nt", alias, STORED)
    assert [(v.name, v.bytes) for v in vols] == [("nt.00", 800), ("nt.01", 400), ("nt.02", 400)]
    assert [s.volumes for s in shards.split("nt", vols, 2)] == [vols[:1], vols[1:]]
    with pytest.raises(ValueError, match=r"volume nt\.03"):
        shards.stored_volumes("nt", "DBLIST nt.00 nt.03\n", STORED)
    with pytest.raises(ValueError, match="DBLIST"):
        shards.stored_volumes("nt", "TITLE nt\n", STORED)


def test_a_shard_fetches_its_volumes_and_the_databases_own_files_only() -> None:
    vols = shards.stored_volumes("nt", "DBLIST nt.00 nt.01 nt.02\n", STORED)
    second = shards.split("nt", vols, 2)[1]
    assert sorted(shards.shard_files(second, list(STORED))) == [
        "nt.01.nhr", "nt.01.nsq", "nt.02.nhr", "nt.02.nsq", "nt.ndb", "nt.njs", "nt.nos",
    ]  # fmt: skip


def test_shards_are_asked_for_the_users_limit_or_blasts_default() -> None:
    assert shards.shard_max_target_seqs(7) == 7
    assert shards.shard_max_target_seqs(None) == shards.DEFAULT_MAX_TARGET_SEQS == 500


ARCHIVE = b"""Blast4-archive ::= {
  request {
    body queue-search {
      queries bioseq-set {
        seq-set {
          seq {
            id {
              local str "Query_1"
            },
          }
        }
      }
    }
  },
  results {
    alignments {
      {
        score {
          { id str "score", value int 50 },
          { id str "e_value", value real { 123456789012345, 10, -20 } }
        },
        segs denseg { ids { local str "Query_1", general { db "BL_ORD_ID", tag id 3 } } }
      },
      {
        score {
          { id str "score", value int 40 },
          { id str "e_value", value real 0 }
        },
        segs denseg { ids { local str "Query_1", local str "s2" } }
      }
    }
  }
}
"""


def test_parse_archive_reads_ids_raw_scores_and_full_evalues() -> None:
    arch = shardmerge.parse_archive(ARCHIVE)
    assert arch.queries == ('local str "Query_1"',)
    first, second = arch.hsps
    assert first.score == 50 and first.evalue == 1.23456789012345e-6
    assert first.subject == 'general { db "BL_ORD_ID", tag id 3 }'
    assert second.score == 40 and second.evalue == 0.0


def test_parse_archive_reads_quoted_braces_and_commas_as_text() -> None:
    # A FASTA defline becomes a quoted Seq-id; its braces, commas and "" (a quote) are text.
    odd = ARCHIVE.replace(b'local str "s2"', b'local str "s},2{""x"')
    assert shardmerge.parse_archive(odd).hsps[1].subject == 'local str "s},2{""x"'
    with pytest.raises(ValueError, match="truncated"):
        shardmerge.parse_archive(ARCHIVE[: ARCHIVE.index(b"tag id 3") + 8])


def test_merge_refuses_a_part_that_does_not_match_its_archive() -> None:
    with pytest.raises(ValueError, match="1 HSPs in the output but 2 in its archive"):
        shardmerge.merge_tabular([ARCHIVE], [b"q1\ts1\n"], None)
    with pytest.raises(ValueError, match="not a BLAST archive"):
        shardmerge.merge_tabular([b"garbage"], [b""], None)


def test_merges_take_archives_parsed_once_as_well_as_their_bytes() -> None:
    parsed = shardmerge.parse_archive(ARCHIVE)
    part = b"q1\ts1\nq1\ts2\n"
    assert shardmerge.merge_tabular([parsed, parsed], [part, part], 1) == shardmerge.merge_tabular(
        [ARCHIVE, ARCHIVE], [part, part], 1
    )
    assert shardmerge.merged_hsps([parsed, parsed], None) == 4
    assert shardmerge.merged_hsps([parsed, parsed], 1) == shardmerge.merged_hsps([ARCHIVE] * 2, 1)
