"""BLAST JSON (``-outfmt 15``) as typed rows for the results page (pure functions, no I/O).

A search of many batches has one JSON document per batch; :func:`parse_reports` joins them
in batch order, so query numbers run across the whole search. A batch whose document cannot
be read is left out and named in :attr:`Report.problems`, so the page shows the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from blast_client.merge import BadPart, json_reports


class ReportError(ValueError):
    """A report in a BLAST JSON document is not as BLAST writes it; the message says what."""


@dataclass(frozen=True)
class Hsp:
    """One high-scoring segment pair.

    Attributes:
        bit_score: Bit score.
        evalue: Expect value.
        identity: Identical positions.
        align_len: Alignment length, gaps included.
        gaps: Gap positions.
        query_from: First query position (1-based).
        query_to: Last query position; smaller than ``query_from`` never (BLAST orders them).
        hit_from: First subject position; greater than ``hit_to`` on the minus strand.
        hit_to: Last subject position.
        query_strand: ``Plus``/``Minus`` for nucleotide queries, else empty.
        hit_strand: ``Plus``/``Minus`` for nucleotide subjects, else empty.
        qseq: Aligned query.
        hseq: Aligned subject.
        midline: The line between them.
    """

    bit_score: float
    evalue: float
    identity: int
    align_len: int
    gaps: int
    query_from: int
    query_to: int
    hit_from: int
    hit_to: int
    query_strand: str
    hit_strand: str
    qseq: str
    hseq: str
    midline: str

    @property
    def pct_identity(self) -> float:
        """Identical positions as a percentage of the alignment length."""
        return 100.0 * self.identity / self.align_len if self.align_len else 0.0


@dataclass(frozen=True)
class Hit:
    """One subject sequence with its HSPs (best first, as BLAST orders them).

    Attributes:
        num: Rank within the query, from 1.
        subject_id: The subject's accession or id.
        description: The subject's title (defline); may hold any text.
        length: Subject length.
        hsps: The HSPs, at least one.
        query_coverage: Percent of the query covered by the union of HSPs.
    """

    num: int
    subject_id: str
    description: str
    length: int
    hsps: tuple[Hsp, ...]
    query_coverage: float

    @property
    def best(self) -> Hsp:
        """The top HSP (highest bit score)."""
        return self.hsps[0]

    @property
    def bit_score(self) -> float:
        """Bit score of the top HSP."""
        return self.best.bit_score

    @property
    def evalue(self) -> float:
        """E-value of the top HSP."""
        return self.best.evalue

    @property
    def pct_identity(self) -> float:
        """Percent identity of the top HSP."""
        return self.best.pct_identity


@dataclass(frozen=True)
class QueryResult:
    """The hits of one query.

    Attributes:
        index: Position of the query in the search, from 1.
        query_id: BLAST's query id (``Query_1`` unless the header had a parsable id).
        title: The FASTA header; may hold any text.
        length: Query length.
        hits: The hits in BLAST's order.
        message: BLAST's note, e.g. "No hits found".
    """

    index: int
    query_id: str
    title: str
    length: int
    hits: tuple[Hit, ...]
    message: str

    @property
    def label(self) -> str:
        """The header if there is one, else the id."""
        return self.title or self.query_id


@dataclass(frozen=True)
class Report:
    """A whole search.

    Attributes:
        program: e.g. ``blastn``.
        version: e.g. ``BLASTN 2.16.0+``.
        db: The database searched.
        queries: Every query of the batches that could be read, in order.
        problems: The batches left out, each with why (shown on the page).
    """

    program: str
    version: str
    db: str
    queries: tuple[QueryResult, ...]
    problems: tuple[BadPart, ...] = ()

    @property
    def hit_count(self) -> int:
        """Hits over all queries."""
        return sum(len(q.hits) for q in self.queries)


def query_coverage(intervals: Iterable[tuple[int, int]], query_len: int) -> float:
    """Percent of ``query_len`` covered by the union of 1-based closed intervals.

    Args:
        intervals: ``(from, to)`` pairs, in either order.
        query_len: The query length; 0 gives 0.
    """
    if query_len <= 0:
        return 0.0
    covered = 0
    end = 0
    for lo, hi in sorted((min(a, b), max(a, b)) for a, b in intervals):
        if hi <= end:
            continue
        covered += hi - max(lo - 1, end)
        end = hi
    return 100.0 * min(covered, query_len) / query_len


def _hsp(doc: dict[str, Any]) -> Hsp:
    return Hsp(
        bit_score=float(doc["bit_score"]),
        evalue=float(doc["evalue"]),
        identity=int(doc.get("identity", 0)),
        align_len=int(doc.get("align_len", 0)),
        gaps=int(doc.get("gaps", 0)),
        query_from=int(doc["query_from"]),
        query_to=int(doc["query_to"]),
        hit_from=int(doc["hit_from"]),
        hit_to=int(doc["hit_to"]),
        query_strand=str(doc.get("query_strand", "")),
        hit_strand=str(doc.get("hit_strand", "")),
        qseq=str(doc.get("qseq", "")),
        hseq=str(doc.get("hseq", "")),
        midline=str(doc.get("midline", "")),
    )


def _hit(doc: dict[str, Any], query_len: int) -> Hit:
    descriptions = doc.get("description") or [{}]
    first = descriptions[0]
    hsps = tuple(_hsp(h) for h in doc.get("hsps", ()))
    if not hsps:
        raise ReportError(f"hit {doc.get('num')} has no HSPs")
    subject_id = str(first.get("accession") or first.get("id") or "")
    title = str(first.get("title", ""))
    if str(first.get("id", "")).startswith("gnl|BL_ORD_ID|") and title.split():
        # A database without -parse_seqids numbers its sequences; like BLAST's tabular
        # output, name the subject by the first word of its title instead.
        subject_id = title.split()[0]
    return Hit(
        num=int(doc.get("num", 0)),
        subject_id=subject_id,
        description=title,
        length=int(doc.get("len", 0)),
        hsps=hsps,
        query_coverage=query_coverage(((h.query_from, h.query_to) for h in hsps), query_len),
    )


def parse_reports(documents: Sequence[bytes | str], batches: Sequence[int] | None = None) -> Report:
    """Join the ``-outfmt 15`` documents of a search's batches into one :class:`Report`.

    A document that is not BLAST JSON, or holds a report BLAST would not write, is left out
    whole and named in ``problems``; the other batches are shown.

    Args:
        documents: One JSON document per batch, in batch order.
        batches: The batch number of each document (default 1, 2, ...), for the problems.
    """
    program = version = db = ""
    queries: list[QueryResult] = []
    problems: list[BadPart] = []
    numbers = batches if batches is not None else range(1, len(documents) + 1)
    for number, raw in zip(numbers, documents, strict=True):
        try:
            entries = json_reports(raw)
        except ValueError as exc:
            problems.append(BadPart(number, f"{exc} (-outfmt 15)"))
            continue
        batch: list[QueryResult] = []
        try:
            for entry in entries:
                report = entry["report"]
                program = program or str(report.get("program", ""))
                version = version or str(report.get("version", ""))
                db = db or str(report.get("search_target", {}).get("db", ""))
                search = report["results"]["search"]
                length = int(search.get("query_len", 0))
                hits = tuple(_hit(h, length) for h in search.get("hits", ()))
                batch.append(
                    QueryResult(
                        index=len(queries) + len(batch) + 1,
                        query_id=str(search.get("query_id", "")),
                        title=str(search.get("query_title", "")),
                        length=length,
                        hits=hits,
                        message=str(search.get("message", "")),
                    )
                )
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(BadPart(number, f"unexpected BLAST JSON: {exc}"))
            continue
        queries.extend(batch)
    return Report(program, version, db, tuple(queries), tuple(problems))


SORT_KEYS: dict[str, tuple[str, bool]] = {
    # column -> (label, descending by default)
    "num": ("#", False),
    "subject": ("Subject", False),
    "description": ("Description", False),
    "identity": ("% identity", True),
    "coverage": ("Query cover", True),
    "evalue": ("E-value", False),
    "bits": ("Bit score", True),
}


def sort_hits(hits: Sequence[Hit], key: str, descending: bool) -> list[Hit]:
    """The hits ordered by a column of the hit table; ties keep BLAST's order.

    Args:
        hits: The hits.
        key: One of :data:`SORT_KEYS`; unknown keys keep BLAST's order.
        descending: Largest first.
    """
    getters: dict[str, Any] = {
        "num": lambda h: h.num,
        "subject": lambda h: h.subject_id.lower(),
        "description": lambda h: h.description.lower(),
        "identity": lambda h: h.pct_identity,
        "coverage": lambda h: h.query_coverage,
        "evalue": lambda h: h.evalue,
        "bits": lambda h: h.bit_score,
    }
    getter = getters.get(key)
    if getter is None:
        return list(hits)
    # Two stable sorts: BLAST's rank breaks ties in either direction.
    ranked = sorted(hits, key=lambda h: h.num)
    return sorted(ranked, key=getter, reverse=descending)


@dataclass(frozen=True)
class Page:
    """One page of a list.

    Attributes:
        items: The rows on this page.
        number: This page, from 1.
        pages: Number of pages, at least 1.
        total: Rows over all pages.
        first: 1-based position of the first row here (0 when empty).
    """

    items: tuple[Any, ...]
    number: int
    pages: int
    total: int
    first: int


def paginate(rows: Sequence[Any], page: int, per_page: int) -> Page:
    """Cut one page out of ``rows``; a page number out of range is clamped.

    Args:
        rows: Every row.
        page: The page wanted, from 1.
        per_page: Rows per page, at least 1.
    """
    per_page = max(1, per_page)
    pages = max(1, -(-len(rows) // per_page))
    number = min(max(1, page), pages)
    start = (number - 1) * per_page
    items = tuple(rows[start : start + per_page])
    return Page(items, number, pages, len(rows), start + 1 if items else 0)


def format_evalue(value: float) -> str:
    """E-values as BLAST prints them: ``0.0``, ``3e-45``, ``0.002``, ``1.5``."""
    if value == 0:
        return "0.0"
    if value < 1e-3:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.3g}"
