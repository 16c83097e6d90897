"""Merging one batch's results from every shard of a database into one search's (pure, no I/O).

Each shard searched the batch with the whole database's statistics (:mod:`blast_client.shards`),
so an HSP has the same raw score and e-value in its shard as in one search of the whole
database; only the order across shards and the cut to ``max_target_seqs`` are left to do.

Per query, the subjects (each with all its HSPs) of every shard are ordered as BLAST orders
them (``s_EvalueCompareHSPLists``): e-value ascending, all e-values below 1e-180 being equal;
then the first HSP's raw score, higher first; then ordinal id, higher first. Within a shard
BLAST's order stands, and a later shard's ordinal ids are all higher, so a tie goes to the
later shard. The list is then cut to ``max_target_seqs`` subjects.

The printed formats round e-values (``5.50e-88``) and omit raw scores, so the sort keys come
from each shard's archive (``-outfmt 11``), which holds every HSP's raw score and its e-value to
15 digits, in the order ``blast_formatter`` writes the HSPs of 6, 7 and 15. A part whose HSPs do
not line up with its archive is refused (:class:`ValueError`), never merged by guess.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from blast_client.merge import json_reports
from blast_client.shards import DEFAULT_MAX_TARGET_SEQS, whole_db

_DOCUMENT = b"Blast4-archive ::= {"

TIED_EVALUE = 1.0e-180
"""BLAST compares e-values below this as equal (``s_EvalueComp``)."""

# A raw score, an e-value, or a Dense-seg's ids block (which closes an HSP). One pattern led
# by the literal "id" lets the regex engine skip ahead: an alternation of three was 10x slower.
_HSP_PART = re.compile(
    rb'id(?:\s+str "score",\s*value int (-?\d+)'
    rb'|\s+str "e_value",\s*value real (?:\{ (-?\d+), 10, (-?\d+) \}|(0))'
    rb"|s \{)"
)
_WORD = re.compile(rb"\w")
_QUERY_SEQ = re.compile(rb"\bseq \{\s*id \{\s*([^\n]*?),?\n")
_RESULTS = re.compile(rb"\n  results \{")
_PROGRAM_LINE = re.compile(r"^# T?BLAST[NPX]+ \S")
_PROCESSED = re.compile(r"^# BLAST processed \d+ quer(?:y|ies)$")
_BL_ORD_ID = re.compile(r"^gnl\|BL_ORD_ID\|(\d+)$")


@dataclass(frozen=True)
class Hsp:
    """One HSP of a shard's archive: what it aligns and its sort keys.

    Attributes:
        query: The query's Seq-id as the archive writes it (``local str "Query_1"``).
        subject: The subject's Seq-id(s), whitespace collapsed.
        score: Raw score.
        evalue: E-value (15 significant digits).
    """

    query: str
    subject: str
    score: int
    evalue: float


@dataclass(frozen=True)
class Archive:
    """What the merge needs from one shard's archive.

    Attributes:
        queries: Every query's Seq-id, in the batch's order (those without hits too).
        hsps: Every HSP, in the order the formatted outputs list them.
    """

    queries: tuple[str, ...]
    hsps: tuple[Hsp, ...]


@dataclass
class _Subject:
    """One subject of one shard for one query: its HSPs' items in one format."""

    shard: int
    rank: int
    evalue: float
    score: int
    items: list[Any] = field(default_factory=list)

    def key(self) -> tuple[float, int, int, int]:
        evalue = 0.0 if self.evalue < TIED_EVALUE else self.evalue
        return (evalue, -self.score, -self.shard, self.rank)


def _norm(text: bytes) -> str:
    return " ".join(text.decode("utf-8", "replace").split()).rstrip(",")


# ASN.1 text: a string is quoted, with "" for a quote inside it, so a brace or comma in a
# Seq-id (a FASTA defline may hold one) is not structure.
_TOKEN = re.compile(rb'"(?:[^"]|"")*"|[{},]')


def _braced(text: bytes, start: int) -> tuple[bytes, int]:
    """The text inside the brace that opens just before ``start``, and where it ends."""
    depth = 1
    for m in _TOKEN.finditer(text, start):
        token = m.group()
        if token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if not depth:
                return text[start : m.start()], m.end()
    raise ValueError("archive is truncated")


def _split_ids(inner: bytes) -> tuple[str, str]:
    """(query, subject) of a Dense-seg's ``ids`` block: its first Seq-id, and the rest."""
    depth = 0
    for m in _TOKEN.finditer(inner):
        token = m.group()
        if token == b",":
            if not depth:
                return _norm(inner[: m.start()]), _norm(inner[m.end() :])
        elif token in (b"{", b"}"):
            depth += 1 if token == b"{" else -1
    raise ValueError("archive alignment has no subject id")


def parse_archive(archive: bytes) -> Archive:
    """The queries and every HSP's ids, raw score and e-value of a BLAST archive (11).

    BLAST searches many queries in chunks and writes one ``Blast4-archive`` document per
    chunk, one after the other in the same file; they are read in order.

    Raises:
        ValueError: When it is not a BLAST archive with results.
    """
    if not archive.lstrip().startswith(_DOCUMENT):
        raise ValueError("archive is not a BLAST archive (-outfmt 11)")
    queries: list[str] = []
    hsps: list[Hsp] = []
    # A literal search, then the line-start check: ten times faster than a ^ pattern.
    starts = [
        m.start()
        for m in re.finditer(re.escape(_DOCUMENT), archive)
        if m.start() == 0 or archive[m.start() - 1] == ord("\n")
    ]
    for start, end in itertools.pairwise([*starts, len(archive)]):
        doc = _parse_document(archive[start:end])
        queries += doc.queries
        hsps += doc.hsps
    return Archive(tuple(queries), tuple(hsps))


def _parse_document(archive: bytes) -> Archive:
    found = _RESULTS.search(archive)
    if found is None:
        raise ValueError("archive has no results")
    queries = tuple(_norm(m.group(1)) for m in _QUERY_SEQ.finditer(archive, 0, found.start()))
    hsps: list[Hsp] = []
    score: int | None = None
    evalue: float | None = None
    pos = found.end()
    # Each alignment lists its scores, then its segments' ids: an ids block closes an HSP.
    while (m := _HSP_PART.search(archive, pos)) is not None:
        pos = m.end()
        if m.group(1) is not None:
            score = int(m.group(1))
        elif m.group(2) is not None:
            evalue = float(f"{m.group(2).decode()}e{m.group(3).decode()}")
        elif m.group(4) is not None:
            evalue = 0.0
        elif m.start() and _WORD.match(archive, m.start() - 1):
            continue  # "ids {" ending a longer word ("seqids {") is no Dense-seg's
        else:
            inner, pos = _braced(archive, m.end())
            if score is None or evalue is None:
                raise ValueError("archive alignment has no score or e-value")
            query, subject = _split_ids(inner)
            hsps.append(Hsp(query, subject, score, evalue))
            score = evalue = None
    return Archive(queries, tuple(hsps))


def _subjects(shard: int, hsps: Sequence[Hsp], items: Sequence[Any]) -> dict[str, list[_Subject]]:
    """Each query's subjects of one shard, each with the items (lines, hits) of its HSPs."""
    if len(hsps) != len(items):
        raise ValueError(
            f"shard {shard + 1}: {len(items)} HSPs in the output but {len(hsps)} in its archive"
        )
    out: dict[str, list[_Subject]] = {}
    last: tuple[str, str] | None = None
    for hsp, item in zip(hsps, items, strict=True):
        subjects = out.setdefault(hsp.query, [])
        if last != (hsp.query, hsp.subject):
            subjects.append(_Subject(shard, len(subjects), hsp.evalue, hsp.score))
            last = (hsp.query, hsp.subject)
        subjects[-1].items.append(item)
    return out


def _merged(per_shard: Sequence[dict[str, list[_Subject]]], query: str, limit: int) -> list[Any]:
    subjects = [s for shard in per_shard for s in shard.get(query, [])]
    subjects.sort(key=_Subject.key)
    return [item for s in subjects[:limit] for item in s.items]


def _limit(max_target_seqs: int | None) -> int:
    return DEFAULT_MAX_TARGET_SEQS if max_target_seqs is None else max_target_seqs


Archives = Sequence[bytes] | Sequence[Archive]
"""Each shard's archive (11), in shard order: its bytes, or as :func:`parse_archive` read them
(a caller that merges several formats of one batch parses them once)."""


def _archives(archives: Archives) -> list[Archive]:
    if not archives:
        raise ValueError("no shard results to merge")
    parsed = [a if isinstance(a, Archive) else parse_archive(a) for a in archives]
    for i, arch in enumerate(parsed[1:], start=2):
        if arch.queries != parsed[0].queries:
            raise ValueError(f"shard {i} searched other queries than shard 1")
    return parsed


def merge_tabular(archives: Archives, parts: Sequence[bytes], max_target_seqs: int | None) -> bytes:
    """Merge the outfmt 6 of every shard of one batch.

    Args:
        archives: Each shard's archive (11), in shard order (:data:`Archives`).
        parts: Each shard's outfmt 6, in shard order.
        max_target_seqs: The job's limit (None: BLAST's 500).

    Raises:
        ValueError: When a part and its archive do not describe the same HSPs.
    """
    parsed = _archives(archives)
    per_shard = [
        _subjects(i, arch.hsps, part.splitlines(keepends=True))
        for i, (arch, part) in enumerate(zip(parsed, parts, strict=True))
    ]
    limit = _limit(max_target_seqs)
    return b"".join(b for q in parsed[0].queries for b in _merged(per_shard, q, limit))


def merged_hsps(archives: Archives, max_target_seqs: int | None) -> int:
    """How many HSPs the merge of one batch's shards keeps after the cut to
    ``max_target_seqs``: the lines of its merged outfmt 6, what a job's ``hits`` counts.

    The shards' own counts add up to more whenever a query has more subjects in all its shards
    together than its limit; this counts from the archives (11) alone, so it needs no format.

    Args:
        archives: Each shard's archive (11), in shard order (:data:`Archives`).
        max_target_seqs: The job's limit (None: BLAST's 500).

    Raises:
        ValueError: When an archive cannot be read, or the shards searched other queries.
    """
    parsed = _archives(archives)
    per_shard = [_subjects(i, arch.hsps, arch.hsps) for i, arch in enumerate(parsed)]
    limit = _limit(max_target_seqs)
    return sum(len(_merged(per_shard, q, limit)) for q in parsed[0].queries)


@dataclass
class _Section:
    """One query of an outfmt 7 document: its header, its hit lines, and the closing line
    ``# BLAST processed N queries`` that follows the last query of each chunk."""

    header: list[str] = field(default_factory=list)
    hits: list[str] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)


def _commented_sections(part: bytes) -> list[_Section]:
    """The sections, one per query, of an outfmt 7 document."""
    lines = part.decode("utf-8").splitlines()
    if not lines or not _PROCESSED.match(lines[-1]):
        raise ValueError("outfmt 7 result has no '# BLAST processed' line")
    sections: list[_Section] = []
    for line in lines:
        if _PROGRAM_LINE.match(line):
            sections.append(_Section())
        if not sections:
            raise ValueError("outfmt 7 result does not start with the program line")
        if _PROCESSED.match(line):
            sections[-1].closing.append(line)
        elif line.startswith("#"):
            sections[-1].header.append(line)
        else:
            sections[-1].hits.append(line)
    return sections


def merge_commented(
    archives: Archives, parts: Sequence[bytes], max_target_seqs: int | None
) -> bytes:
    """Merge the outfmt 7 of every shard of one batch; headers name the whole database.

    ``blast_formatter`` closes each chunk of queries (one archive document) with its own
    ``# BLAST processed N queries``; every shard searched the same queries in the same chunks,
    so the first shard's closing lines stand.

    Args:
        archives: Each shard's archive (11), in shard order (:data:`Archives`).
        parts: Each shard's outfmt 7, in shard order.
        max_target_seqs: The job's limit (None: BLAST's 500).

    Raises:
        ValueError: When a part and its archive do not describe the same HSPs.
    """
    parsed = _archives(archives)
    sections = [_commented_sections(p) for p in parts]
    for i, secs in enumerate(sections, start=1):
        if len(secs) != len(parsed[0].queries):
            raise ValueError(
                f"shard {i}: outfmt 7 has {len(secs)} queries, its archive {len(parsed[0].queries)}"
            )
    per_shard = [
        _subjects(i, arch.hsps, [line for sec in secs for line in sec.hits])
        for i, (arch, secs) in enumerate(zip(parsed, sections, strict=True))
    ]
    fields = next(
        (h for secs in sections for sec in secs for h in sec.header if h.startswith("# Fields:")),
        None,
    )
    limit = _limit(max_target_seqs)
    out: list[str] = []
    for section, query in zip(sections[0], parsed[0].queries, strict=True):
        hits = _merged(per_shard, query, limit)
        for line in section.header:
            if line.startswith("# Database: "):
                out.append("# Database: " + whole_db(line.removeprefix("# Database: ")))
            elif line.startswith("# Fields:"):
                continue
            elif line.endswith(" hits found"):
                if hits and fields is not None:
                    out.append(fields)
                out.append(f"# {len(hits)} hits found")
            else:
                out.append(line)
        out += hits
        out += section.closing
    return ("\n".join(out) + "\n").encode()


def _global_ids(hit: dict[str, Any], first_oid: int) -> dict[str, Any]:
    """A hit with a shard's ordinal ids (``gnl|BL_ORD_ID|7``) made the whole database's."""
    descriptions = []
    for d in hit.get("description", []):
        found = _BL_ORD_ID.match(str(d.get("id", "")))
        if found is not None:
            oid = str(int(found.group(1)) + first_oid)
            d = {**d, "id": f"gnl|BL_ORD_ID|{oid}", "accession": oid}
        descriptions.append(d)
    return {**hit, "description": descriptions}


def _json_hits(report: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    for hit in report["report"]["results"]["search"].get("hits", []):
        yield hit, len(hit.get("hsps", []))


def merge_json(
    archives: Archives,
    parts: Sequence[bytes],
    max_target_seqs: int | None,
    first_oids: Sequence[int],
    totals: tuple[int, int],
) -> bytes:
    """Merge the outfmt 15 of every shard of one batch into one BLAST JSON document.

    Args:
        archives: Each shard's archive (11), in shard order (:data:`Archives`).
        parts: Each shard's outfmt 15, in shard order.
        max_target_seqs: The job's limit (None: BLAST's 500).
        first_oids: Each shard's first ordinal id in the whole database.
        totals: The whole database's (sequences, letters), which each report's statistics name.

    Raises:
        ValueError: When a part and its archive do not describe the same HSPs.
    """
    parsed = _archives(archives)
    reports = [json_reports(p) for p in parts]
    per_shard = []
    for i, (arch, reps) in enumerate(zip(parsed, reports, strict=True)):
        if len(reps) != len(arch.queries):
            raise ValueError(f"shard {i + 1}: outfmt 15 has {len(reps)} reports, not one a query")
        # One item per HSP: the hit itself on its first HSP, None on the others.
        items: list[Any] = []
        for rep in reps:
            for hit, n in _json_hits(rep):
                items += [_global_ids(hit, first_oids[i]), *[None] * (n - 1)]
        per_shard.append(_subjects(i, arch.hsps, items))
    limit = _limit(max_target_seqs)
    merged: list[Any] = []
    for n, query in enumerate(parsed[0].queries):
        hits = [h for h in _merged(per_shard, query, limit) if h is not None]
        report = json.loads(json.dumps(reports[0][n]))  # a deep copy
        inner = report["report"]
        inner["search_target"]["db"] = whole_db(str(inner["search_target"].get("db", "")))
        search = inner["results"]["search"]
        search["stat"]["db_num"], search["stat"]["db_len"] = totals
        search["hits"] = [{**h, "num": k} for k, h in enumerate(hits, start=1)]
        if hits:
            search.pop("message", None)
        else:
            search["message"] = "No hits found"
        merged.append(report)
    return (json.dumps({"BlastOutput2": merged}, indent=2) + "\n").encode()
