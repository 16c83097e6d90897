"""Property tests (hypothesis) of everything that parses untrusted input.

The job message parser (version 1, legacy, random JSON, random bytes, base64 noise), the
FASTA validator, the blob/database/job/resource name checks and the workload-file parser.
Whatever the input, each either accepts it (and what it accepts is safe) or raises its own
typed, user-facing error whose message is one line; any other exception is a bug.

Under CI (``CI`` set) the ``ci`` profile runs a fixed, derandomized 300 examples per test;
``make fuzz`` runs 2,000 random ones (the ``fuzz`` profile, tests/conftest.py). The fixed 300
were checked against the bugs the fuzzer found, each put back in turn (a name check with
``re.match``, so a trailing newline passed; unescaped workload problems; a YAML error's full
text), and against two more of the kind (a raw message preview, an unknown program shown
with ``str``): each fails a property here, as with 2,000 random examples.
"""

from __future__ import annotations

import base64
import json
import os.path
import string
from pathlib import Path
from typing import Any

import pytest
from blast_client.fasta import FastaError, iter_records, validate_fasta
from blast_client.messages import PROGRAMS, JobSpec, MessageError, parse_message
from blast_client.names import (
    InvalidName,
    check_blob_path,
    check_db_name,
    check_job_id,
    check_resource_name,
    check_run_id,
)
from hypothesis import example, given
from hypothesis import strategies as st

from deployer.errors import WorkloadFileError
from deployer.workload import Workload, parse


def one_line(message: str) -> None:
    """Assert an error message is a single, non-empty line."""
    assert message.strip(), "empty error message"
    assert len(message.splitlines()) == 1, f"multi-line error message: {message!r}"


# --- strategies ----------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
hostile_names = st.sampled_from(
    [
        "..",
        "../etc/passwd",
        "/etc/passwd",
        "a/../../b",
        "a\\..\\b",
        ".hidden",
        "a//b",
        "a/",
        "",
        " ",
        "a\x00b",
        "a\nb",
        "a\rb",
        "a\u2028b",
        "a\x85b",
        "\u202eevil",
        "résumé",
        "\uff21\uff22\uff23",
        "db.name",
        "C:\\x",
        "%2e%2e/x",
        "~root",
        "a" * 65,
        "a" * 2000,
    ]
)
# A valid-looking name with a hostile tail: regex ``$`` also matches before a final newline.
tailed_names = st.builds(
    lambda base, tail: base + tail,
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{2,20}", fullmatch=True),
    st.sampled_from(["\n", "\r\n", "\r", "\x00", "/..", "/../x", " ", "\t", "\u2028", "."]),
)
names = (
    hostile_names
    | tailed_names
    | st.text(max_size=80)
    | st.from_regex(r"[A-Za-z0-9._/\\-]{0,40}", fullmatch=True)
)
residues = st.text(alphabet="ACGTUNacgtn-*XJZ.@ \t", min_size=0, max_size=80)
headers = st.text(max_size=30)
fasta_texts = st.lists(
    st.tuples(headers, st.lists(residues, max_size=3)), min_size=0, max_size=4
).map(lambda recs: "".join(f">{h}\n" + "".join(f"{s}\n" for s in seqs) for h, seqs in recs))
fasta_like = fasta_texts | st.text(alphabet=">ACGT\n\r \x00\x1c\x85\u2028é", max_size=120)
programs = st.sampled_from(PROGRAMS) | st.text(max_size=10)
options = st.dictionaries(
    st.sampled_from(["evalue", "max_target_seqs", "word_size", "task", "outfmt", "bogus"]),
    json_values
    | st.sampled_from([6, 7, 15, 11, [6, 15], [], "megablast", 1e-5, 0, -1, 1e400, 10**30]),
    max_size=5,
)


@st.composite
def v1_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Version-1 shaped messages: each field valid, hostile or missing."""
    doc: dict[str, Any] = {
        "version": draw(st.sampled_from([1, 1, 1, 2, "1", None])),
        "job_id": draw(st.sampled_from(["job-1", "20261122T020000-1a2b3c4d"]) | names),
        "program": draw(programs),
        "db": draw(st.just("demo") | names),
        "query": draw(
            st.fixed_dictionaries({"fasta": fasta_like})
            | st.fixed_dictionaries({"blob": names})
            | json_values
        ),
        "options": draw(options | json_values),
        "name": draw(st.none() | st.text(max_size=300) | json_values),
        "run_id": draw(st.none() | st.just("run-1") | names | json_values),
    }
    for key in draw(st.sets(st.sampled_from(sorted(doc)), max_size=2)):
        del doc[key]
    if draw(st.booleans()):
        doc[draw(st.text(max_size=8))] = draw(json_values)
    return doc


@st.composite
def legacy_docs(draw: st.DrawFn) -> dict[str, Any]:
    """Legacy-shaped messages (``Id``, ``InputFile``, ``Parameters`` ...)."""
    doc: dict[str, Any] = {
        "Id": draw(st.integers() | st.just("abc") | names | json_values),
        "Name": draw(st.text(max_size=20) | json_values),
        "InputFile": draw(st.just("query.fa") | names | json_values),
        "DatabaseName": draw(st.just("demo") | names | json_values),
        "Program": draw(programs | json_values),
        "Parameters": draw(
            st.sampled_from(
                ["-evalue 1e-5", "-task megablast -outfmt 6", "-evalue", "-x 1", "'-evalue\n' 1"]
            )
            | st.text(alphabet="-evalue taskmgbs'\"\\\n 0123456789.", max_size=40)
            | json_values
        ),
    }
    for key in draw(st.sets(st.sampled_from(sorted(doc)), max_size=3)):
        if key != "Id":
            del doc[key]
    return doc


def check_parse(body: str) -> JobSpec | None:
    """Parse a message; a result must be safe, an error typed and one line."""
    try:
        spec = parse_message(body, default_db="demo")
    except MessageError as exc:
        one_line(exc.reason)
        one_line(str(exc))
        return None
    assert spec.program in PROGRAMS
    check_job_id(spec.job_id)
    check_db_name(spec.db)
    assert spec.job_id.isprintable() and spec.db.isprintable()
    if spec.query.blob is not None:
        check_blob_path(spec.query.blob)
    else:
        assert spec.query.fasta is not None
        validate_fasta(spec.query.fasta, spec.program)
    assert parse_message(spec.to_message()) == spec if not spec.legacy else True
    return spec


# --- job messages --------------------------------------------------------------------


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_message_parser(data: bytes) -> None:
    check_parse(data.decode("utf-8", errors="replace"))
    check_parse(data.decode("latin-1"))


@given(json_values)
def test_random_json_never_crashes_the_message_parser(value: Any) -> None:
    check_parse(json.dumps(value))


@given(v1_docs())
@example({"version": 1, "job_id": "j", "program": "blastn", "db": "d", "query": {"fasta": "x"}})
def test_v1_shaped_messages_are_accepted_safely_or_refused_in_one_line(
    doc: dict[str, Any],
) -> None:
    check_parse(json.dumps(doc))


@given(legacy_docs())
def test_legacy_shaped_messages_are_accepted_safely_or_refused_in_one_line(
    doc: dict[str, Any],
) -> None:
    check_parse(json.dumps(doc))


@given(v1_docs() | legacy_docs(), st.binary(max_size=8), st.integers(min_value=0))
def test_base64_messages_parse_like_their_json_and_noise_is_refused(
    doc: dict[str, Any], noise: bytes, where: int
) -> None:
    text = json.dumps(doc)
    plain = check_parse(text)
    encoded = base64.b64encode(text.encode()).decode()
    assert check_parse(encoded) == plain
    cut = where % (len(encoded) + 1)
    check_parse(encoded[:cut] + base64.b64encode(noise).decode() + encoded[cut:])
    check_parse(encoded[:cut] + noise.decode("latin-1") + encoded[cut:])


@pytest.mark.parametrize("depth", [100, 5_000, 60_000])
def test_deeply_nested_json_is_refused_not_a_recursion_crash(depth: int) -> None:
    # Regression (found while fuzzing): json.loads raised RecursionError, which is no
    # MessageError, on a queue message of 60k '[' (messages may be 64 KiB).
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        check_parse(body)
        check_parse(base64.b64encode(body.encode()).decode())


def test_legacy_parameter_with_newline_is_refused_in_one_line() -> None:
    # A quoted flag or value holding a newline must not make a two-line job log error.
    doc = {"Id": "j1", "InputFile": "q.fa", "Parameters": "'-evalue\n' 1"}
    assert check_parse(json.dumps(doc)) is None
    doc["Parameters"] = "-evalue '1\n2'"
    assert check_parse(json.dumps(doc)) is None


# --- FASTA ---------------------------------------------------------------------------


@given(fasta_like, st.sampled_from(PROGRAMS))
def test_fasta_validator_accepts_only_clean_records_and_refuses_in_one_line(
    text: str, program: str
) -> None:
    try:
        records = validate_fasta(text, program)
    except FastaError as exc:
        one_line(str(exc))
        return
    assert records
    for rec in records:
        assert rec.sequence
        assert not any(c in rec.sequence for c in string.whitespace + ">\x00")
        assert not any(ord(c) < 32 and c != "\t" for c in rec.header)


@given(
    st.lists(
        st.tuples(
            st.text(alphabet=string.ascii_letters + string.digits + " _|.", max_size=20),
            st.text(alphabet="ACGT", min_size=1, max_size=200),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_valid_fasta_round_trips(records: list[tuple[str, str]]) -> None:
    text = "".join(f">{h}\n{s}\n" for h, s in records)
    parsed = validate_fasta(text, "blastn")
    assert [(r.header, r.sequence) for r in parsed] == [(h.strip(), s) for h, s in records]
    assert "".join(r.text for r in iter_records(text)) == text


# --- names ---------------------------------------------------------------------------


def _safe_relative(path: str) -> bool:
    root = "/srv/root"
    joined = os.path.normpath(os.path.join(root, path))
    return joined.startswith(root + "/")


@given(names)
def test_name_checks_accept_only_safe_names(value: str) -> None:
    for check in (check_db_name, check_job_id, check_run_id):
        try:
            check(value)
        except InvalidName as exc:
            one_line(str(exc))
        else:
            assert value.isascii() and value.isprintable()
            assert "/" not in value and "\\" not in value and "." not in value
            assert _safe_relative(value)
    try:
        check_blob_path(value)
    except InvalidName as exc:
        one_line(str(exc))
    else:
        assert value.isascii() and value.isprintable()
        assert "\\" not in value and not value.startswith("/")
        assert all(seg and not seg.startswith(".") for seg in value.split("/"))
        assert _safe_relative(value)
    for kind in ("queue", "container", "table", "account"):
        try:
            check_resource_name(value, kind)
        except InvalidName as exc:
            one_line(str(exc))
        else:
            assert value.isascii() and all(c.isalnum() or c == "-" for c in value)


@given(json_values)
def test_name_checks_refuse_non_strings_in_one_line(value: Any) -> None:
    for check in (check_db_name, check_job_id, check_run_id, check_blob_path):
        try:
            check(value)
        except InvalidName as exc:
            one_line(str(exc))
        else:
            assert isinstance(value, str)


@pytest.mark.parametrize("tail", ["\n", "\r\n"])
def test_names_with_a_trailing_newline_are_refused(tail: str) -> None:
    # Regression (found by the fuzzer): the checks used re.match with ``$``, which also
    # matches before a final newline, so "job-1\n" passed as a job id, a database name,
    # a blob path and a queue name.
    for check in (check_db_name, check_job_id, check_run_id, check_blob_path):
        with pytest.raises(InvalidName):
            check("job-1" + tail)
    for kind in ("queue", "container", "table", "account"):
        with pytest.raises(InvalidName):
            check_resource_name("abc" + tail, kind)
    doc = {"version": 1, "job_id": "job-1\n", "program": "blastn", "db": "demo"}
    assert check_parse(json.dumps({**doc, "query": {"fasta": ">q\nACGT\n"}})) is None


# --- workload files ------------------------------------------------------------------

workload_keys = st.sampled_from(
    [
        "deployment",
        "workloads",
        "name",
        "location",
        "ipyparallel",
        "blast",
        "engines",
        "workers",
        "databases",
        "metadata",
        "bytes_to_cache",
        "tls",
        "mode",
        "notebook",
        "vcpu_per_engine",
        "memory_gb_per_engine",
    ]
)
yaml_values = st.recursive(
    json_scalars | st.sampled_from(["../../etc/passwd", "a\nb", "/dev/null", "x" * 300]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(workload_keys | st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=15,
)


def check_workload(text: str, base_dir: Path) -> None:
    try:
        result = parse(text, "fuzz.yaml", base_dir)
    except WorkloadFileError as exc:
        assert exc.problems
        for problem in exc.problems:
            one_line(problem)
        return
    assert isinstance(result, Workload)


@given(st.text(alphabet=string.printable + "\x00\x85\u2028é{}[]:-!&*", max_size=200))
def test_random_text_workloads_are_refused_in_one_line(text: str) -> None:
    check_workload(text, Path("/nonexistent"))


@given(yaml_values)
def test_random_structured_workloads_are_refused_in_one_line(value: Any) -> None:
    check_workload(json.dumps(value), Path("/nonexistent"))


@given(
    st.text(max_size=60) | st.sampled_from(["../../etc/passwd", "/etc", "a\nb", "\x00", "."]),
    st.integers(min_value=-5, max_value=10),
)
def test_workload_metadata_paths_are_refused_in_one_line(metadata: str, workers: int) -> None:
    doc = {
        "deployment": {"name": "fuzz", "location": "westeurope"},
        "workloads": {
            "blast": {"workers": workers, "databases": [{"name": "db", "metadata": metadata}]}
        },
    }
    check_workload(json.dumps(doc), Path("/nonexistent"))


def test_workload_metadata_path_with_newline_is_one_line(tmp_path: Path) -> None:
    # Regression (found while fuzzing): the unreadable path was printed raw, so a
    # metadata path with a newline made a two-line problem.
    doc = {
        "deployment": {"name": "fuzz", "location": "westeurope"},
        "workloads": {"blast": {"workers": 1, "databases": [{"name": "db", "metadata": "a\nb"}]}},
    }
    with pytest.raises(WorkloadFileError) as info:
        parse(json.dumps(doc), "w.yaml", tmp_path)
    for problem in info.value.problems:
        one_line(problem)


@pytest.mark.parametrize("depth", [50, 3_000])
def test_deeply_nested_workload_is_refused_not_a_recursion_crash(depth: int) -> None:
    check_workload("[" * depth + "]" * depth, Path("/nonexistent"))
