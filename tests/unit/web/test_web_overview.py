"""The server-side SVG overview: well-formed, bars where the HSPs are, colours by bit score,
and every header or title escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from blast_web.overview import LEFT, RIGHT, WIDTH, colour_for, overview_svg, ruler_ticks
from blast_web.report import parse_reports

from testbed.web import report_doc

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("bits", "colour"),
    [(500, "#d62728"), (200, "#d62728"), (199.9, "#c51b8a"), (80, "#c51b8a"), (60, "#2ca02c"),
     (45, "#1f77b4"), (39.9, "#444444"), (0, "#444444")],
)  # fmt: skip
def test_colour_bands_follow_ncbi(bits: float, colour: str) -> None:
    assert colour_for(bits) == colour


@pytest.mark.parametrize(
    ("length", "ticks"),
    [(1, [1]), (100, [1, *range(10, 100, 10), 100]), (1234, [1, 200, 400, 600, 800, 1000, 1200])],
)
def test_ruler_ticks_are_round(length: int, ticks: list[int]) -> None:
    assert ruler_ticks(length) == ticks


def test_bars_sit_on_the_query_ruler_and_link_to_alignments() -> None:
    query = parse_reports([report_doc([("q", 401, 3)])]).queries[0]
    root = ET.fromstring(overview_svg(query, link=lambda n: f"/hit/{n}"))
    links = root.findall(f"{SVG}a")
    assert [a.get("href") for a in links] == ["/hit/1", "/hit/2", "/hit/3"]
    # Hit 1: one HSP over query 1..200 of 401 -> from LEFT to the middle of the ruler.
    (bar,) = links[0].iter(f"{SVG}rect")
    span = WIDTH - LEFT - RIGHT
    assert float(bar.get("x") or 0) == pytest.approx(LEFT)
    assert float(bar.get("width") or 0) == pytest.approx(span * 199 / 400, abs=0.1)
    assert bar.get("fill") == colour_for(399.0)
    # Hit 3 has two HSPs, the weak one coloured as such, and a joining line.
    rects = list(links[2].iter(f"{SVG}rect"))
    assert {r.get("fill") for r in rects} == {colour_for(397.0), colour_for(30.0)}
    assert links[2].find(f".//{SVG}line") is not None


def test_rows_are_capped_and_the_cap_is_said() -> None:
    query = parse_reports([report_doc([("q", 300, 30)])]).queries[0]
    svg = overview_svg(query, max_rows=10)
    assert len(ET.fromstring(svg).findall(f"{SVG}g")) == 10
    assert "best 10 of 30 hits shown" in svg


def test_titles_and_descriptions_are_escaped() -> None:
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    doc = report_doc([(evil, 100, 1)]).replace(b"subject 1", evil.replace('"', '\\"').encode())
    query = parse_reports([doc]).queries[0]
    svg = overview_svg(query, link=lambda n: f'/x?"{n}')
    root = ET.fromstring(svg)  # still well-formed
    assert "<script" not in svg and "<img" not in svg
    title, link = root.find(f"{SVG}title"), root.find(f"{SVG}a")
    assert title is not None and evil in (title.text or "")
    assert link is not None and link.get("href") == '/x?"1'
    assert any(evil in (t.text or "") for t in root.iter(f"{SVG}title"))
