"""The graphical overview of one query's hits as server-side SVG (pure functions, no I/O).

As NCBI's graphic summary: the query as a ruler along the top, one row per hit below it, each
HSP a bar placed at its query positions and coloured by bit score. Every string that came
from a FASTA header or the database is escaped here, since the SVG goes into the page as is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from blast_web.report import QueryResult, format_evalue


@dataclass(frozen=True)
class ScoreBin:
    """A colour band of the overview.

    Attributes:
        low: Smallest bit score in the band.
        colour: Fill colour.
        label: Legend text.
    """

    low: float
    colour: str
    label: str


# NCBI's bands, with colours that stay apart for common colour-vision deficiencies.
SCORE_BINS: tuple[ScoreBin, ...] = (
    ScoreBin(200, "#d62728", "≥ 200"),
    ScoreBin(80, "#c51b8a", "80-200"),
    ScoreBin(50, "#2ca02c", "50-80"),
    ScoreBin(40, "#1f77b4", "40-50"),
    ScoreBin(float("-inf"), "#444444", "< 40"),
)

WIDTH = 900
LEFT = 10
RIGHT = 10
ROW = 9
BAR = 6
MAX_ROWS = 100


def colour_for(bit_score: float) -> str:
    """The fill colour of a bar with this bit score.

    Args:
        bit_score: The HSP's bit score.
    """
    for band in SCORE_BINS:
        if bit_score >= band.low:
            return band.colour
    return SCORE_BINS[-1].colour


def ruler_ticks(length: int, target: int = 10) -> list[int]:
    """Round tick positions from 1 to ``length`` (about ``target`` of them).

    Args:
        length: The query length.
        target: Roughly how many ticks.
    """
    if length <= 1:
        return [1]
    raw = length / target
    magnitude = 10 ** (len(str(int(raw))) - 1)
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = [1, *range(step, length, step)]
    if length - ticks[-1] >= step / 2:
        ticks.append(length)
    return ticks


def overview_svg(
    query: QueryResult,
    link: Callable[[int], str] | None = None,
    max_rows: int = MAX_ROWS,
) -> str:
    """The SVG markup of one query's overview.

    Args:
        query: The query and its hits.
        link: Maps a hit number to the URL of its alignment; None draws no links.
        max_rows: Hits drawn at most (the best ones; the table lists all).
    """
    span = WIDTH - LEFT - RIGHT
    length = max(query.length, 1)

    def x(pos: int) -> float:
        return LEFT + span * (pos - 1) / max(length - 1, 1) if length > 1 else LEFT

    hits = query.hits[:max_rows]
    top = 44
    height = top + ROW * len(hits) + 34
    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="overview" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'aria-label="Graphical overview of {len(hits)} hits on query {query.index}">',
        f"<title>{escape(query.label)} ({query.length} letters)</title>",
        # The query ruler.
        f'<rect x="{LEFT}" y="8" width="{span}" height="8" rx="2" class="ruler"/>',
    ]
    for tick in ruler_ticks(query.length):
        tx = x(tick)
        out.append(
            f'<line x1="{tx:.1f}" y1="16" x2="{tx:.1f}" y2="21" class="tick"/>'
            f'<text x="{tx:.1f}" y="32" class="tick-label">{tick}</text>'
        )
    for row, hit in enumerate(hits):
        y = top + row * ROW
        tip = escape(
            f"{hit.subject_id} {hit.description}"[:200]
            + f" — bits {hit.bit_score:.1f}, E {format_evalue(hit.evalue)}"
        )
        bars = []
        # Drawn worst first, so the best HSP is on top where they overlap.
        for hsp in reversed(hit.hsps):
            x1, x2 = x(min(hsp.query_from, hsp.query_to)), x(max(hsp.query_from, hsp.query_to))
            bars.append(
                f'<rect x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 1.5):.1f}" height="{BAR}" '
                f'fill="{colour_for(hsp.bit_score)}"/>'
            )
        # A faint line joins the HSPs of one subject, as NCBI draws it.
        if len(hit.hsps) > 1:
            lo = min(min(h.query_from, h.query_to) for h in hit.hsps)
            hi = max(max(h.query_from, h.query_to) for h in hit.hsps)
            bars.insert(
                0,
                f'<line x1="{x(lo):.1f}" y1="{y + BAR / 2}" x2="{x(hi):.1f}" '
                f'y2="{y + BAR / 2}" class="join"/>',
            )
        group = f"<g><title>{tip}</title>{''.join(bars)}</g>"
        if link is not None:
            group = f'<a href="{escape(link(hit.num))}">{group}</a>'
        out.append(group)
    legend_y = top + ROW * len(hits) + 14
    lx = float(LEFT)
    out.append(f'<text x="{lx}" y="{legend_y + 8}" class="legend">Bit score:</text>')
    lx += 70
    for band in SCORE_BINS:
        out.append(
            f'<rect x="{lx:.0f}" y="{legend_y}" width="14" height="9" fill="{band.colour}"/>'
            f'<text x="{lx + 18:.0f}" y="{legend_y + 8}" class="legend">{escape(band.label)}</text>'
        )
        lx += 90
    if len(query.hits) > len(hits):
        out.append(
            f'<text x="{WIDTH - RIGHT}" y="{legend_y + 8}" class="legend" text-anchor="end">'
            f"best {len(hits)} of {len(query.hits)} hits shown</text>"
        )
    out.append("</svg>")
    return "".join(out)
