"""blast_client.merge: one file per format from a search's batches, used by ``deployer run``
and the web page alike; a bad part is left out and always named, never dropped silently."""

from __future__ import annotations

import json

import pytest
from blast_client.merge import MERGERS, BadPart, json_reports, merge, tabular_of_commented
from blast_client.messages import FORMAT_EXTENSIONS, FORMAT_FILES, OUTPUT_FORMATS


def doc(*queries: int) -> bytes:
    return json.dumps({"BlastOutput2": [{"report": {"q": q}} for q in queries]}).encode()


def test_every_derived_format_has_a_merge_and_a_file_name() -> None:
    assert set(MERGERS) == set(OUTPUT_FORMATS)
    assert set(FORMAT_FILES) == set(FORMAT_EXTENSIONS) == {*OUTPUT_FORMATS, 11}
    assert FORMAT_FILES == {
        11: "results.asn1",
        6: "results.6.tsv",
        7: "results.7.txt",
        15: "results.15.json",
    }


def test_json_keeps_the_good_parts_in_order_and_names_the_bad_ones() -> None:
    merged = merge(15, [doc(1, 2), b"<html>", doc(3), b'{"BlastOutput2": "x"}', doc(4)])
    queries = [r["report"]["q"] for r in json.loads(merged.data)["BlastOutput2"]]
    assert queries == [1, 2, 3, 4]
    assert merged.bad == (
        BadPart(2, "outfmt 15 result is not BLAST JSON"),
        BadPart(4, "BlastOutput2 is not a list"),
    )
    assert str(merged.bad[0]) == "batch 2: outfmt 15 result is not BLAST JSON"


def test_a_single_report_not_wrapped_in_a_list_is_accepted() -> None:
    assert json_reports(b'{"BlastOutput2": {"report": {"q": 1}}}') == [{"report": {"q": 1}}]
    assert merge(15, [b'{"BlastOutput2": {"report": {"q": 1}}}']).bad == ()


def test_commented_tabular_leaves_out_a_truncated_part() -> None:
    whole = b"# Query: q1\n# 0 hits found\n# BLAST processed 1 query\n"
    merged = merge(7, [whole, b"# Query: q2\n", whole])
    assert merged.bad == (BadPart(2, "outfmt 7 result has no '# BLAST processed' line"),)
    assert merged.data.endswith(b"# BLAST processed 2 queries\n")


def test_tabular_takes_any_bytes() -> None:
    assert merge(6, [b"a\n", b"", b"b\n"]).data == b"a\nb\n" and not merge(6, []).bad


def test_tabular_is_commented_tabular_without_its_comment_lines() -> None:
    seven = (
        b"# BLASTN 2.16.0+\n# Query: q1\n# 0 hits found\n# Query: q2\n# 2 hits found\n"
        b"q2\ts1\t100.000\t8\n"
        b"q2\ts2\t99.000\t8\n"
        b"# BLAST processed 2 queries\n"
    )
    assert tabular_of_commented(seven) == b"q2\ts1\t100.000\t8\nq2\ts2\t99.000\t8\n"
    assert tabular_of_commented(b"# Query: q\n# BLAST processed 1 query\n") == b""
    assert tabular_of_commented(b"q\ts\r\nq\tt") == b"q\ts\r\nq\tt"  # line ends kept


def test_the_archive_is_not_merged() -> None:
    with pytest.raises(KeyError):
        merge(11, [b"x"])
