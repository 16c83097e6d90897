"""BLAST JSON to hit rows: parsing, coverage, sorting, pagination, number formats."""

from __future__ import annotations

import json

import pytest
from blast_web.report import (
    format_evalue,
    paginate,
    parse_reports,
    query_coverage,
    sort_hits,
)

from testbed.web import report_doc


def test_batches_join_in_order_with_query_numbers_running_on() -> None:
    report = parse_reports(
        [report_doc([("q1", 300, 2), ("q2", 200, 0)]), report_doc([("q3", 100, 1)])]
    )
    assert [q.index for q in report.queries] == [1, 2, 3]
    assert [q.title for q in report.queries] == ["q1", "q2", "q3"]
    assert [len(q.hits) for q in report.queries] == [2, 0, 1]
    assert report.queries[1].message == "No hits found"
    assert report.program == "blastn" and report.db == "demo" and report.hit_count == 3


def test_hit_rows_take_the_best_hsp_and_the_union_coverage() -> None:
    report = parse_reports([report_doc([("q", 400, 3)])])
    hit = report.queries[0].hits[2]  # hit 3 has two HSPs: 1-100 and 105-400
    assert hit.subject_id == "s3" and hit.description == "subject 3"
    assert hit.bit_score == 397.0 and len(hit.hsps) == 2
    assert hit.pct_identity == pytest.approx(100 * 99 / 100)
    assert hit.query_coverage == pytest.approx(100 * (100 + 296) / 400)


@pytest.mark.parametrize(
    ("intervals", "length", "expected"),
    [
        ([(1, 100)], 100, 100.0),
        ([(1, 50), (26, 75)], 100, 75.0),
        ([(75, 26), (1, 10)], 100, 60.0),  # reversed pairs count the same
        ([(1, 10), (11, 20)], 40, 50.0),  # adjacent intervals do not double count
        ([], 100, 0.0),
        ([(1, 10)], 0, 0.0),
    ],
)
def test_query_coverage(intervals: list[tuple[int, int]], length: int, expected: float) -> None:
    assert query_coverage(intervals, length) == pytest.approx(expected)


def test_sorting_by_each_column_keeps_blast_rank_for_ties() -> None:
    hits = parse_reports([report_doc([("q", 300, 12)])]).queries[0].hits
    assert [h.num for h in sort_hits(hits, "bits", True)] == list(range(1, 13))
    assert [h.num for h in sort_hits(hits, "bits", False)][:2] == [12, 11]
    assert [h.num for h in sort_hits(hits, "evalue", False)][:3] == [1, 2, 3]
    by_cover = sort_hits(hits, "coverage", True)
    covers = [h.query_coverage for h in by_cover]
    assert covers == sorted(covers, reverse=True)
    tied = [h for h in by_cover if h.query_coverage == covers[0]]
    assert [h.num for h in tied] == sorted(h.num for h in tied)
    assert [h.num for h in sort_hits(hits, "nonsense", True)] == list(range(1, 13))


def test_paginate_clamps_and_counts() -> None:
    rows = list(range(1, 121))
    page = paginate(rows, 3, 50)
    assert page.items == tuple(range(101, 121)) and page.pages == 3 and page.first == 101
    assert paginate(rows, 99, 50).number == 3
    assert paginate(rows, -1, 50).number == 1
    empty = paginate([], 1, 50)
    assert empty.items == () and empty.pages == 1 and empty.first == 0


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.0, "0.0"), (3.2e-45, "3e-45"), (0.002, "0.002"), (1.5, "1.5"), (1e-3, "0.001")],
)
def test_evalues_print_like_blast(value: float, text: str) -> None:
    assert format_evalue(value) == text


def test_a_subject_of_a_database_without_seqids_is_named_by_its_title() -> None:
    doc = json.loads(report_doc([("q", 130, 2)]))
    hits = doc["BlastOutput2"][0]["report"]["results"]["search"]["hits"]
    hits[0]["description"] = [
        {"id": "gnl|BL_ORD_ID|45", "accession": "45", "title": "prot_045 synthetic protein"}
    ]
    query = parse_reports([json.dumps(doc)]).queries[0]
    assert [hit.subject_id for hit in query.hits] == ["prot_045", "s2"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"", "not BLAST JSON"),
        (b"{}", "not BLAST JSON"),
        (b"not json", "not BLAST JSON"),
        (b'{"BlastOutput2": 7}', "BlastOutput2 is not a list"),
        (b'{"BlastOutput2": [{"report": {}}]}', "unexpected BLAST JSON"),
    ],
)
def test_a_batch_that_is_not_blast_json_is_named_and_the_others_shown(raw: bytes, why: str) -> None:
    good = report_doc([("q1", 300, 2)])
    report = parse_reports([good, raw, report_doc([("q3", 100, 1)])])
    assert [q.title for q in report.queries] == ["q1", "q3"]
    assert [q.index for q in report.queries] == [1, 2]
    (problem,) = report.problems
    assert problem.batch == 2 and why in str(problem) and str(problem).startswith("batch 2: ")
    # The batch numbers are the search's when given (a failed batch 2 has no document).
    report = parse_reports([good, raw], batches=[1, 3])
    assert [p.batch for p in report.problems] == [3] and len(report.queries) == 1
