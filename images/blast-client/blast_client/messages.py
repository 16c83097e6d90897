"""The job message: versioned JSON, the legacy sample's shape, and the option whitelist.

Version 1 (what ``blast-jobs submit`` sends)::

    {"version": 1, "job_id": "20261122T020000-1a2b3c4d", "program": "blastn", "db": "demo",
     "query": {"fasta": ">q1\\nACGT...\\n"}            # inline, at most 48 KiB
           or {"blob": "20261122T020000-1a2b3c4d/query.fa"},   # in BLAST_INPUTS_CONTAINER
     "options": {"evalue": 1e-5, "max_target_seqs": 10, "word_size": 11,
                 "task": "megablast", "outfmt": [6, 15]},
     "name": "optional label",
     "run_id": "optional run the job belongs to",
     "shard": {"index": 1, "count": 4},   # optional: search shard 2 of 4 of db only
     "hit_fasta": true}                   # optional: also store the hit sequences

``hit_fasta`` asks the worker to store the whole subject of every hit as FASTA
(``blastdbcmd``, :data:`HIT_FASTA_FILE`) beside the results; it costs a database lookup and an
upload after the search, so only jobs that ask for it (the web page's) pay for it. Absent or
false: no hit sequences, and the job row says so (:data:`HIT_FASTA_NOT_ASKED`).

``shard`` (0-based ``index``) makes the worker cache and search only that shard of the
database (:mod:`blast_client.shards`); a run's merge joins the shards of a batch.

Legacy (the original sample's front ends)::

    {"Id": "...", "Name": "...", "InputFile": "query.fa",      # blob in BLAST_INPUTS_CONTAINER
     "DatabaseName": "demo", "Program": "blastn", "Parameters": "-evalue 1e-5"}

``DatabaseName`` defaults to the worker's first ``BLAST_DBS`` entry and ``Program`` to blastn.
``Parameters`` is split like a shell would, then held to the same whitelist; nothing is ever
passed to a shell. Unknown legacy keys are ignored (old front ends send extra bookkeeping);
unknown version-1 keys and options are rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import shlex
from dataclasses import dataclass, field
from typing import Any

from blast_client.fasta import MAX_INLINE_BYTES, FastaError, validate_fasta
from blast_client.names import (
    InvalidName,
    check_blob_path,
    check_db_name,
    check_job_id,
    check_run_id,
)

PROGRAMS = ("blastn", "blastp", "blastx", "tblastn", "tblastx")

TASKS: dict[str, frozenset[str]] = {
    "blastn": frozenset({"megablast", "dc-megablast", "blastn", "blastn-short"}),
    "blastp": frozenset({"blastp", "blastp-fast", "blastp-short"}),
    "blastx": frozenset({"blastx", "blastx-fast"}),
    "tblastn": frozenset({"tblastn", "tblastn-fast"}),
    "tblastx": frozenset(),  # tblastx has no -task
}

OUTPUT_FORMATS = frozenset({6, 7, 15})
"""Formats a job can ask for. The archive (11) is stored only where :func:`keeps_archive`
says."""

TABULAR_FORMATS = frozenset({6, 7})
"""Formats BLAST writes in one pass without an archive (6 is 7 without its comment lines)."""

OPTION_NAMES = ("evalue", "max_target_seqs", "word_size", "task", "outfmt")

FORMAT_EXTENSIONS: dict[int, str] = {11: "asn1", 6: "tsv", 7: "txt", 15: "json"}
"""File extension of each output format: the archive (11) and the derived formats."""
FORMAT_FILES: dict[int, str] = {
    fmt: "results.asn1" if fmt == 11 else f"results.{fmt}.{ext}"
    for fmt, ext in FORMAT_EXTENSIONS.items()
}
"""Result file name for each output format (``results.asn1``, ``results.6.tsv``,
``results.7.txt``, ``results.15.json``); the blob is ``<job id>/<file>`` in the results
container, and a run's merged file has the same name."""
HIT_FASTA_FILE = "hits.fasta"
"""The whole subject of every hit, as FASTA (``blastdbcmd``), beside the format files when the
job asked for it (``JobSpec.hit_fasta``) and the database can be searched by id; the job row's
``hit_fasta`` column says whether it was stored, ``hit_fasta_note`` why not."""
HIT_FASTA_NOT_ASKED = (
    "the job did not ask for them (submit it with hit_fasta, e.g. `blast-jobs submit --hit-fasta`)"
)
"""Why a job has no hit sequences when its message did not set ``hit_fasta``."""
QUERY_FILE = "query.fa"
"""A query too large to travel inline is the blob ``<job id>/query.fa`` in the inputs
container."""


def keeps_archive(outfmt: tuple[int, ...] | list[int], sharded: bool) -> bool:
    """True when a job's search writes the BLAST archive (11), stores it, and derives its
    formats from it with ``blast_formatter``: a shard's job (a run's merge of shards reads
    every shard's archive) or one asking for more than tabular output (15). Otherwise BLAST
    writes outfmt 7 directly, 6 is derived from it, and there is no archive.

    Args:
        outfmt: The formats the job asked for.
        sharded: Whether the job searches one shard of its database.
    """
    return sharded or not set(outfmt) <= TABULAR_FORMATS


NO_ARCHIVE = (
    "it asked only for tabular output (outfmt 6/7), which BLAST writes directly without "
    "an archive; the archive is kept for jobs that ask for outfmt 15 and for shards"
)
"""Why a job has no archive (11), for error messages."""


def result_blob(job_id: str, fmt: int) -> str:
    """Blob name of one result file of a job in the results container: ``<job id>/<file>``.

    Args:
        job_id: The job id.
        fmt: Output format (11, 6, 7 or 15).
    """
    return f"{job_id}/{FORMAT_FILES[fmt]}"


def hit_fasta_blob(job_id: str) -> str:
    """Blob name of a job's hit sequences in the results container.

    Args:
        job_id: The job id.
    """
    return f"{job_id}/{HIT_FASTA_FILE}"


def query_blob(job_id: str) -> str:
    """Blob name of a job's query in the inputs container, when not inline.

    Args:
        job_id: The job id.
    """
    return f"{job_id}/{QUERY_FILE}"


class MessageError(ValueError):
    """A message cannot be run; ``reason`` is for the job log, ``job_id`` if one was found.

    Attributes:
        reason: What is wrong and what to do, for users.
        job_id: The job id if the message named a valid one, else None.
    """

    def __init__(self, reason: str, job_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.job_id = job_id


@dataclass(frozen=True)
class Options:
    """Whitelisted BLAST options; None means BLAST's default.

    Attributes:
        evalue: ``-evalue``, in (0, 1000].
        max_target_seqs: ``-max_target_seqs``, 1..5000.
        word_size: ``-word_size``; 4..128 for blastn, 2..7 for the protein-level programs.
        task: ``-task``, one of the program's tasks.
        outfmt: Formats to store (6, 7, 15); default tabular (6).
    """

    evalue: float | None = None
    max_target_seqs: int | None = None
    word_size: int | None = None
    task: str | None = None
    outfmt: tuple[int, ...] = (6,)

    def to_json(self) -> dict[str, Any]:
        """The options as version-1 JSON, omitting defaults."""
        doc: dict[str, Any] = {"outfmt": list(self.outfmt)}
        for key in ("evalue", "max_target_seqs", "word_size", "task"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc


@dataclass(frozen=True)
class Query:
    """Where the query is: inline FASTA or a blob in the inputs container.

    Attributes:
        fasta: Inline FASTA text, or None.
        blob: Blob name in the inputs container, or None.
    """

    fasta: str | None = None
    blob: str | None = None


MAX_SHARDS = 1000
"""More shards than any database has volumes (nt has about 100)."""


@dataclass(frozen=True)
class ShardRef:
    """Which shard of the database a job searches.

    Attributes:
        index: The shard, from 0.
        count: How many shards the database is cut into (2 or more).
    """

    index: int
    count: int

    def to_json(self) -> dict[str, int]:
        """The shard as version-1 JSON."""
        return {"index": self.index, "count": self.count}


@dataclass(frozen=True)
class JobSpec:
    """A validated job.

    Attributes:
        job_id: Unique id; results live under ``<job_id>/``.
        program: One of :data:`PROGRAMS`.
        db: Database name.
        query: Inline FASTA or blob reference.
        options: Whitelisted options.
        name: Optional label.
        legacy: True if the message had the legacy shape.
        run_id: Optional run the job belongs to (``BlastClient.run_jobs`` lists a run's jobs).
        shard: Optional shard of ``db`` to search instead of the whole database.
        hit_fasta: Store the hit sequences (:data:`HIT_FASTA_FILE`) beside the results.
    """

    job_id: str
    program: str
    db: str
    query: Query
    options: Options = field(default_factory=Options)
    name: str | None = None
    legacy: bool = False
    run_id: str | None = None
    shard: ShardRef | None = None
    hit_fasta: bool = False

    def to_message(self) -> str:
        """Serialise as a version-1 message."""
        query: dict[str, str] = (
            {"fasta": self.query.fasta}
            if self.query.fasta is not None
            else {"blob": self.query.blob or ""}
        )
        doc: dict[str, Any] = {
            "version": 1,
            "job_id": self.job_id,
            "program": self.program,
            "db": self.db,
            "query": query,
            "options": self.options.to_json(),
        }
        if self.name is not None:
            doc["name"] = self.name
        if self.run_id is not None:
            doc["run_id"] = self.run_id
        if self.shard is not None:
            doc["shard"] = self.shard.to_json()
        if self.hit_fasta:  # only when set: the message of a job without it is unchanged
            doc["hit_fasta"] = True
        return json.dumps(doc, separators=(",", ":"))


def decode_body(body: str) -> Any:
    """Decode a queue message body: JSON text, or base64-encoded JSON (the encoding the
    Azure Functions/WebJobs front ends use by default).

    Args:
        body: The raw message text.

    Returns:
        The decoded JSON value.

    Raises:
        MessageError: when it is neither.
    """
    try:
        return json.loads(body)
    except ValueError:
        pass
    except RecursionError:  # a 64 KiB message can nest 30k arrays; json recurses per level
        raise MessageError("the message nests JSON too deeply to be a job") from None
    try:
        raw = base64.b64decode(body.strip(), validate=True)
        return json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        pass
    except RecursionError:
        raise MessageError("the message nests JSON too deeply to be a job") from None
    preview = body[:60].replace("\n", " ")
    raise MessageError(f"the message is not JSON (starts with {preview!r})")


def peek_job_id(doc: Any) -> str | None:
    """Return the message's job id if it has a valid one, else None (for error records)."""
    if not isinstance(doc, dict):
        return None
    raw = doc.get("job_id", doc.get("Id"))
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    try:
        return check_job_id(raw)
    except InvalidName:
        return None


def parse_message(body: str, default_db: str | None = None) -> JobSpec:
    """Decode and validate a queue message of either shape.

    Args:
        body: The raw message text.
        default_db: Database for legacy messages that name none (the first of BLAST_DBS).

    Returns:
        The validated job.

    Raises:
        MessageError: naming the first problem found, with the job id when known.
    """
    doc = decode_body(body)
    if not isinstance(doc, dict):
        raise MessageError(f"the message must be a JSON object, not {type(doc).__name__}")
    job_id = peek_job_id(doc)
    try:
        if "Id" in doc and "version" not in doc:
            return _parse_legacy(doc, default_db)
        return _parse_v1(doc)
    except (InvalidName, FastaError) as exc:
        raise MessageError(str(exc), job_id) from None
    except MessageError as exc:
        raise MessageError(exc.reason, job_id) from None


def _parse_v1(doc: dict[str, Any]) -> JobSpec:
    version = doc.get("version")
    if version != 1:
        raise MessageError(
            f"unsupported message version {version!r}: this worker understands version 1 "
            "and the legacy {Id, Name, InputFile} shape"
        )
    allowed = {
        "version",
        "job_id",
        "program",
        "db",
        "query",
        "options",
        "name",
        "run_id",
        "shard",
        "hit_fasta",
    }
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise MessageError(f"unknown message fields {unknown}; allowed: {sorted(allowed)}")
    for required in ("job_id", "program", "db", "query"):
        if required not in doc:
            raise MessageError(f"the message has no {required!r} field")
    job_id = check_job_id(doc["job_id"])
    program = _program(doc["program"])
    db = check_db_name(doc["db"])
    query = _query(doc["query"], program)
    options = parse_options(doc.get("options") or {}, program)
    name = _name(doc.get("name"))
    run_id = check_run_id(doc["run_id"]) if doc.get("run_id") is not None else None
    shard = _shard(doc["shard"]) if doc.get("shard") is not None else None
    hit_fasta = doc.get("hit_fasta")
    if hit_fasta is not None and not isinstance(hit_fasta, bool):
        raise MessageError(f"'hit_fasta' must be true or false, not {hit_fasta!r}")
    return JobSpec(
        job_id,
        program,
        db,
        query,
        options,
        name,
        run_id=run_id,
        shard=shard,
        hit_fasta=bool(hit_fasta),
    )


def _shard(value: object) -> ShardRef:
    if not isinstance(value, dict) or set(value) != {"index", "count"}:
        raise MessageError('\'shard\' must be {"index": <from 0>, "count": <shards>}')
    count, index = value["count"], value["index"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (count, index)):
        raise MessageError("'shard' index and count must be whole numbers")
    if not 2 <= count <= MAX_SHARDS or not 0 <= index < count:
        raise MessageError(
            f"'shard' {index} of {count} does not exist: count is 2..{MAX_SHARDS}, index 0..count-1"
        )
    return ShardRef(index, count)


def _parse_legacy(doc: dict[str, Any], default_db: str | None) -> JobSpec:
    raw_id = doc.get("Id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)
    job_id = check_job_id(raw_id)
    if "InputFile" not in doc:
        raise MessageError("the legacy message has no 'InputFile' (the query blob name)")
    blob = check_blob_path(doc["InputFile"], "InputFile")
    program = _program(doc.get("Program", "blastn"))
    db_raw = doc.get("DatabaseName", doc.get("Database", default_db))
    if db_raw is None:
        raise MessageError(
            "the legacy message names no DatabaseName and the worker has no default "
            "database: add DatabaseName, or set BLAST_DBS on the worker"
        )
    db = check_db_name(db_raw)
    params = doc.get("Parameters")
    options = parse_options(parse_parameter_string(params), program) if params else Options()
    return JobSpec(job_id, program, db, Query(blob=blob), options, _name(doc.get("Name")), True)


def _program(value: object) -> str:
    if not isinstance(value, str) or value not in PROGRAMS:
        raise MessageError(f"unknown program {value!r}; use one of {', '.join(PROGRAMS)}")
    return value


def _name(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise MessageError("'name' must be a string of at most 256 characters")
    return value


def _query(value: object, program: str) -> Query:
    if not isinstance(value, dict) or len(value) != 1 or not ({"fasta", "blob"} & value.keys()):
        raise MessageError(
            '\'query\' must be {"fasta": "<inline FASTA>"} or {"blob": "<name in the '
            'inputs container>"}'
        )
    if "blob" in value:
        return Query(blob=check_blob_path(value["blob"], "query blob"))
    fasta = value["fasta"]
    if not isinstance(fasta, str):
        raise MessageError("'query.fasta' must be a string of FASTA text")
    size = len(fasta.encode("utf-8"))
    if size > MAX_INLINE_BYTES:
        raise MessageError(
            f"the inline query is {size} bytes; at most {MAX_INLINE_BYTES} fit in a message: "
            'upload it to the inputs container and send {"blob": name} (blast-jobs submit '
            "does this for you)"
        )
    validate_fasta(fasta, program)
    return Query(fasta=fasta)


def _number(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"option {key} must be a number, not {value!r}")
    return float(value)


def _integer(key: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MessageError(f"option {key} must be a whole number, not {value!r}")
    if not lo <= value <= hi:
        raise MessageError(f"option {key}={value} is out of range {lo}..{hi}")
    return value


def parse_options(raw: object, program: str) -> Options:
    """Check options against the whitelist for ``program``.

    Args:
        raw: The ``options`` JSON object.
        program: The BLAST program (task and word_size ranges depend on it).

    Returns:
        The validated options.

    Raises:
        MessageError: on any unknown key, wrong type or out-of-range value.
    """
    if not isinstance(raw, dict):
        raise MessageError("'options' must be a JSON object")
    unknown = sorted(str(k) for k in raw if k not in OPTION_NAMES)
    if unknown:
        raise MessageError(
            f"option(s) {', '.join(repr(k) for k in unknown)} not allowed; "
            f"allowed: {', '.join(OPTION_NAMES)}"
        )
    evalue: float | None = None
    if raw.get("evalue") is not None:
        evalue = _number("evalue", raw["evalue"])
        if not (math.isfinite(evalue) and 0 < evalue <= 1000):
            raise MessageError(f"option evalue={raw['evalue']!r} must be in (0, 1000]")
    max_target_seqs = None
    if raw.get("max_target_seqs") is not None:
        max_target_seqs = _integer("max_target_seqs", raw["max_target_seqs"], 1, 5000)
    word_size = None
    if raw.get("word_size") is not None:
        lo, hi = (4, 128) if program == "blastn" else (2, 7)
        word_size = _integer("word_size", raw["word_size"], lo, hi)
    task = None
    if raw.get("task") is not None:
        task = raw["task"]
        if not isinstance(task, str) or task not in TASKS[program]:
            allowed = ", ".join(sorted(TASKS[program])) or "none"
            raise MessageError(f"task {task!r} is not valid for {program}; allowed: {allowed}")
    outfmt: tuple[int, ...] = (6,)
    if raw.get("outfmt") is not None:
        value = raw["outfmt"]
        items = value if isinstance(value, list) else [value]
        if not items:
            raise MessageError("option outfmt must name at least one format (6, 7 or 15)")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, int) or item not in OUTPUT_FORMATS:
                raise MessageError(
                    f"output format {item!r} is not available; choose from 6, 7 and 15 "
                    "(the archive, format 11, is stored with 15)"
                )
        outfmt = tuple(dict.fromkeys(items))
    return Options(evalue, max_target_seqs, word_size, task, outfmt)


_PARAM_TYPES = {
    "evalue": float,
    "max_target_seqs": int,
    "word_size": int,
    "task": str,
    "outfmt": int,
}


def parse_parameter_string(text: object) -> dict[str, Any]:
    """Turn a legacy ``Parameters`` string such as ``"-evalue 1e-5 -task megablast"`` into an
    options object, allowing only whitelisted ``-name value`` pairs.

    Args:
        text: The legacy string.

    Returns:
        Options as JSON values, to be checked by :func:`parse_options`.

    Raises:
        MessageError: on anything but whitelisted ``-name value`` pairs.
    """
    if not isinstance(text, str):
        raise MessageError("'Parameters' must be a string such as \"-evalue 1e-5\"")
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise MessageError(f"'Parameters' cannot be parsed: {exc}") from None
    if len(tokens) % 2:
        raise MessageError("'Parameters' must be '-name value' pairs")
    result: dict[str, Any] = {}
    for flag, value in zip(tokens[::2], tokens[1::2], strict=True):
        key = flag[1:] if flag.startswith("-") else None
        if key not in _PARAM_TYPES:
            raise MessageError(
                f"parameter {flag!r} is not allowed; allowed: "
                + ", ".join("-" + k for k in OPTION_NAMES)
            )
        try:
            result[key] = _PARAM_TYPES[key](value)
        except ValueError:
            raise MessageError(f"parameter {flag} {value!r} has the wrong type") from None
    return result
