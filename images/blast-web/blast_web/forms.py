"""The new-search form: field values in, a planned search or per-field errors out (no I/O).

Checks come from the BLAST client library (FASTA validation, molecule detection, the option
whitelist, batching); this module only says which field an error belongs to, so the page can
show it next to that field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blast_client import PROGRAMS, DatabaseInfo, InvalidRequest, JobSpec
from blast_client.fasta import FastaError, detect_molecule, iter_records, programs_for
from blast_client.messages import MessageError, parse_options

from blast_web.service import OUTPUT_FORMATS

FIELDS = ("query", "db", "program", "task", "evalue", "max_target_seqs", "word_size", "name")
_BARE_SEQUENCE = re.compile(r"^[A-Za-z*\-\s\d]+$")

Planner = Callable[..., list[JobSpec]]


@dataclass
class SearchForm:
    """What the user filled in (strings, as posted) and what is wrong with it.

    Attributes:
        values: Field values, by name.
        errors: Messages by field name; ``form`` for errors of the whole form.
        molecule: The detected query molecule, once the query parsed.
    """

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    molecule: str | None = None

    def get(self, name: str) -> str:
        """The value of a field, or "".

        Args:
            name: The field name.
        """
        return self.values.get(name, "")

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> SearchForm:
        """Keep only known fields, stripped.

        Args:
            fields: The posted text fields.
        """
        values = {k: str(fields.get(k, "")) for k in FIELDS}
        for key in FIELDS:
            if key != "query":
                values[key] = values[key].strip()
        return cls(values=values)


def normalise_query(text: str) -> str:
    """The query text with Windows line ends fixed and a header added to a bare sequence.

    Args:
        text: Pasted or uploaded text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    stripped = text.strip()
    if stripped and not stripped.startswith(">") and _BARE_SEQUENCE.match(stripped):
        digits_free = re.sub(r"[\d\s]", "", stripped)
        return f">query\n{digits_free}\n"
    return text


def _option_errors(form: SearchForm, program: str) -> dict[str, Any]:
    """Check each advanced option alone, so an error lands next to its own field."""
    options: dict[str, Any] = {}
    converters: dict[str, Callable[[str], Any]] = {
        "evalue": float,
        "max_target_seqs": int,
        "word_size": int,
        "task": str,
    }
    for key, convert in converters.items():
        text = form.get(key)
        if not text:
            continue
        try:
            value = convert(text)
        except ValueError:
            form.errors[key] = f"{text!r} is not a number"
            continue
        try:
            parse_options({key: value}, program)
        except MessageError as exc:
            form.errors[key] = str(exc)
            continue
        options[key] = value
    return options


def check_search(
    form: SearchForm,
    databases: Sequence[DatabaseInfo],
    plan: Planner,
    run_id: str,
    max_records: int,
) -> list[JobSpec]:
    """Validate the form and plan its jobs; on any error fill ``form.errors`` and return [].

    Args:
        form: The posted form; ``form.values["query"]`` holds the pasted or uploaded text.
        databases: The databases in storage.
        plan: ``BlastClient.plan``.
        run_id: The new search's id.
        max_records: Most FASTA records accepted.
    """
    query = normalise_query(form.get("query"))
    form.values["query"] = query
    records = []
    if not query.strip():
        form.errors["query"] = "Paste or upload at least one FASTA sequence."
    else:
        try:
            records = list(iter_records(query))
        except FastaError as exc:
            form.errors["query"] = f"This is not FASTA: {exc}."
        if len(records) > max_records:
            form.errors["query"] = (
                f"{len(records)} sequences is more than the {max_records} one search takes; "
                "split the file into several searches."
            )
            records = []
        elif records and not any(r.sequence for r in records):
            form.errors["query"] = "The records have headers but no sequence."
            records = []
    if records:
        form.molecule = detect_molecule(records)

    by_name = {d.name: d for d in databases}
    db = by_name.get(form.get("db"))
    if not form.get("db"):
        form.errors["db"] = "Choose a database."
    elif db is None:
        form.errors["db"] = f"There is no database named {form.get('db')!r}."

    program = form.get("program") or "auto"
    if program != "auto" and program not in PROGRAMS:
        form.errors["program"] = f"Unknown program; choose one of {', '.join(PROGRAMS)}."
        program = "auto"
    if form.molecule and db is not None and db.molecule and "program" not in form.errors:
        fitting = programs_for(form.molecule, db.molecule)
        if program == "auto":
            program = fitting[0]
            form.values["program"] = program
        elif program not in fitting:
            form.errors["program"] = (
                f"The query looks like {form.molecule} and {db.name} is a {db.molecule} "
                f"database: use {' or '.join(fitting)}, not {program}."
            )
    if program == "auto":
        if not form.errors:
            form.errors["program"] = "Choose a program: the database's molecule type is unknown."
        return []

    options = _option_errors(form, program)
    if form.errors:
        return []
    try:
        return plan(
            query,
            db=form.get("db"),
            program=program,
            options={**options, "outfmt": list(OUTPUT_FORMATS)},
            name=form.get("name") or None,
            run_id=run_id,
            hit_fasta=True,  # the results page offers them for download
        )
    except InvalidRequest as exc:
        message = exc.message
        target = "query" if "query" in message or "record" in message else "form"
        form.errors[target] = message[0].upper() + message[1:]
        return []
