"""Merging the results of a search's batches into one file per format (pure, no I/O).

Batches are contiguous slices of the query file, so joining them in batch order keeps
query order. What each format needs:

* 6 (tabular): plain concatenation; byte-identical to one blastn of the whole file.
* 7 (commented tabular): blastn writes one header block per query and one closing line
  ``# BLAST processed N queries`` per file; each batch's closing line is dropped and one with
  the total is written at the end, as a single blastn would.
* 15 (JSON): one ``{"BlastOutput2": [...]}`` document holding every query's report.

A part that is not what the worker writes is left out of the merge but never silently:
:class:`Merged` lists it, with the reason, in ``bad``. Each caller decides what that means:
``deployer run`` writes no merged file that misses a batch; the web page shows the good
batches and says which ones it could not read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

_PROCESSED = re.compile(rb"^# BLAST processed (\d+) quer(?:y|ies)\n?\Z", re.MULTILINE)


@dataclass(frozen=True)
class BadPart:
    """A batch's result that could not be merged.

    Attributes:
        batch: Its position among the parts, from 1.
        reason: What is wrong with it, one line.
    """

    batch: int
    reason: str

    def __str__(self) -> str:
        return f"batch {self.batch}: {self.reason}"


@dataclass(frozen=True)
class Merged:
    """One merged file.

    Attributes:
        data: The merge of every good part, in batch order.
        bad: The parts left out, each with why; empty when every part was merged.
    """

    data: bytes
    bad: tuple[BadPart, ...] = ()


def json_reports(part: bytes | str) -> list[Any]:
    """The per-query reports of one ``-outfmt 15`` document.

    Args:
        part: One batch's BLAST JSON.

    Raises:
        ValueError: if it is not a ``{"BlastOutput2": [...]}`` document; the message says why.
    """
    try:
        items = json.loads(part)["BlastOutput2"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("outfmt 15 result is not BLAST JSON") from None
    if isinstance(items, dict):  # a single query is sometimes not wrapped in a list
        items = [items]
    if not isinstance(items, list):
        raise ValueError("BlastOutput2 is not a list")
    return items


def merge_tabular(parts: Sequence[bytes]) -> Merged:
    """Concatenate outfmt 6 parts in batch order (any bytes are a valid part).

    Args:
        parts: One result per batch, in batch order.
    """
    return Merged(b"".join(parts))


def tabular_lines(commented: Iterable[bytes]) -> Iterator[bytes]:
    """The ``-outfmt 6`` lines of BLAST's ``-outfmt 7`` lines (pure): those that are not
    comments (``#``). For one search (or one archive) and the same columns they are the bytes
    BLAST writes for ``-outfmt 6``, so a search that writes 7 need not write 6 too (the worker),
    nor its merge read both (``deployer run``).

    Args:
        commented: The ``-outfmt 7`` lines, each with its line end.
    """
    return (line for line in commented if not line.startswith(b"#"))


def tabular_of_commented(part: bytes) -> bytes:
    """One ``-outfmt 6`` result from its ``-outfmt 7`` result (:func:`tabular_lines`; pure).

    Args:
        part: The commented tabular result.
    """
    return b"".join(tabular_lines(part.splitlines(keepends=True)))


NO_PROCESSED_LINE = "outfmt 7 result has no '# BLAST processed' line"


def split_commented(part: bytes) -> tuple[bytes, int] | None:
    """An outfmt 7 part without its closing line, and the number of queries that line gives;
    None when it has no closing ``# BLAST processed`` line (a truncated file).

    Args:
        part: One batch's commented tabular result.
    """
    lines = part.splitlines(keepends=True)
    if not lines or not (m := _PROCESSED.match(lines[-1])):
        return None
    return b"".join(lines[:-1]), int(m.group(1))


def merge_commented(parts: Sequence[bytes]) -> Merged:
    """Concatenate outfmt 7 parts, keeping each query's header block and one closing line.

    A part without its closing ``# BLAST processed`` line (a truncated file) is left out.

    Args:
        parts: One result per batch, in batch order.
    """
    body: list[bytes] = []
    bad: list[BadPart] = []
    total = 0
    for i, part in enumerate(parts, start=1):
        split = split_commented(part)
        if split is None:
            bad.append(BadPart(i, NO_PROCESSED_LINE))
            continue
        body.append(split[0])
        total += split[1]
    noun = "query" if total == 1 else "queries"
    return Merged(b"".join(body) + f"# BLAST processed {total} {noun}\n".encode(), tuple(bad))


def merge_json(parts: Sequence[bytes]) -> Merged:
    """Join outfmt 15 parts into one BLAST JSON document with every query's report.

    A part that is not BLAST JSON (see :func:`json_reports`) is left out.

    Args:
        parts: One result per batch, in batch order.
    """
    reports: list[Any] = []
    bad: list[BadPart] = []
    for i, part in enumerate(parts, start=1):
        try:
            reports.extend(json_reports(part))
        except ValueError as exc:
            bad.append(BadPart(i, str(exc)))
    return Merged((json.dumps({"BlastOutput2": reports}, indent=2) + "\n").encode(), tuple(bad))


MERGERS: dict[int, Callable[[Sequence[bytes]], Merged]] = {
    6: merge_tabular,
    7: merge_commented,
    15: merge_json,
}
"""The merge of each derived format (``messages.OUTPUT_FORMATS``); the archive (11) is kept
per batch."""


def merge(fmt: int, parts: Sequence[bytes]) -> Merged:
    """Merge the parts of one format (6, 7 or 15).

    Args:
        fmt: The output format.
        parts: One result per batch, in batch order.

    Raises:
        KeyError: for a format that is not merged (11).
    """
    return MERGERS[fmt](parts)
