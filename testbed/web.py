"""Stand-ins for the unit tests of the web page: BLAST JSON documents shaped like
``blast_formatter -outfmt 15`` output, and a client with the ``BlastClient`` methods the page
uses, keeping jobs in memory. Planning (validation, batching) is the real library's."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from blast_client import DatabaseInfo, JobNotFound, JobSpec, JobStatus, NoResult, plan_jobs


def hsp_doc(num: int, bits: float, qfrom: int, qto: int, length: int = 0) -> dict[str, Any]:
    """One HSP as BLAST JSON writes it; aligned strings of ``qto - qfrom + 1`` columns."""
    cols = qto - qfrom + 1
    qseq = ("ACGT" * (cols // 4 + 1))[:cols]
    hseq = qseq[:-1] + ("A" if qseq[-1] != "A" else "C")
    return {
        "num": num,
        "bit_score": bits,
        "score": int(bits * 2),
        "evalue": 10 ** (-bits / 10),
        "identity": cols - 1,
        "query_from": qfrom,
        "query_to": qto,
        "query_strand": "Plus",
        "hit_from": 100 + qfrom,
        "hit_to": 100 + qto,
        "hit_strand": "Plus",
        "align_len": cols,
        "gaps": 0,
        "qseq": qseq,
        "hseq": hseq,
        "midline": "|" * (cols - 1) + " ",
    }


def report_doc(
    queries: Sequence[tuple[str, int, int]], program: str = "blastn", db: str = "demo"
) -> bytes:
    """A BLAST JSON document: ``queries`` is (title, length, number of hits) per query."""
    entries = []
    for index, (title, length, nhits) in enumerate(queries, start=1):
        hits = []
        for n in range(1, nhits + 1):
            span = max(10, length // (n % 5 + 1))
            hits.append(
                {
                    "num": n,
                    "description": [
                        {"id": f"gnl|demo|s{n}", "accession": f"s{n}", "title": f"subject {n}"}
                    ],
                    "len": 5000,
                    "hsps": [hsp_doc(1, 400.0 - n, 1, span), hsp_doc(2, 30.0, span + 5, length)]
                    if n % 3 == 0 and span + 15 < length
                    else [hsp_doc(1, 400.0 - n, 1, span)],
                }
            )
        entries.append(
            {
                "report": {
                    "program": program,
                    "version": "BLASTN 2.16.0+",
                    "search_target": {"db": db},
                    "results": {
                        "search": {
                            "query_id": f"Query_{index}",
                            "query_title": title,
                            "query_len": length,
                            "hits": hits,
                            "stat": {},
                            **({} if hits else {"message": "No hits found"}),
                        }
                    },
                }
            }
        )
    return json.dumps({"BlastOutput2": entries}).encode()


DEMO = DatabaseInfo("demo", "Demo <b>nucleotide</b> db", "nucleotide", 200, 200_000, 80_000, 9)
PROT = DatabaseInfo("prot", "Proteins", "protein", 10, 3000, 5_000, 9)


class FakeClient:
    """The ``BlastClient`` methods the page uses, over in-memory jobs.

    Args:
        databases: What :meth:`databases` lists.
    """

    def __init__(self, databases: Sequence[DatabaseInfo] = (DEMO, PROT)) -> None:
        self._dbs = list(databases)
        self.jobs: dict[str, JobStatus] = {}
        self.specs: dict[str, JobSpec] = {}
        self.files: dict[tuple[str, int], bytes] = {}
        self.fastas: dict[str, bytes] = {}
        self.submitted: list[JobSpec] = []

    def plan(self, fasta: str, db: str, program: str = "blastn", options: Any = None,
             batch_len: int | None = None, name: str | None = None,
             run_id: str | None = None, hit_fasta: bool = False) -> list[JobSpec]:  # fmt: skip
        return plan_jobs(fasta, db, program, options, batch_len, name, run_id, hit_fasta)

    def submit(self, specs: Sequence[JobSpec]) -> list[str]:
        now = time.time()  # one submission time for all, as BlastClient.submit records it
        for spec in specs:
            self.submitted.append(spec)
            self.specs[spec.job_id] = spec
            self.jobs[spec.job_id] = JobStatus(
                spec.job_id, "queued", spec.program, spec.db, spec.name, spec.run_id,
                submitted=now,
            )  # fmt: skip
        return [s.job_id for s in specs]

    def finish(
        self,
        job_id: str,
        files: dict[int, bytes],
        status: str = "succeeded",
        fasta: bytes | None = None,
        fasta_note: str = "",
    ) -> None:
        """Mark a job final with these result files; ``fasta`` is its stored hit sequences
        (None: none, ``fasta_note`` says why, as the worker records it)."""
        row = {"hit_fasta": fasta is not None, "hit_fasta_note": fasta_note}
        self.jobs[job_id] = replace(self.jobs[job_id], status=status, hits=1, row=row)
        for fmt, data in files.items():
            self.files[(job_id, fmt)] = data
        if fasta is not None:
            self.fastas[job_id] = fasta

    def hit_sequences(self, job_id: str) -> bytes:
        note = self.jobs[job_id].hit_fasta_note
        if note is not None:
            raise NoResult(f"job {job_id} has no hit sequences: {note}")
        return self.fastas[job_id]

    def run_jobs(self, run_id: str) -> list[JobStatus]:
        return sorted((j for j in self.jobs.values() if j.run_id == run_id), key=lambda j: j.job_id)

    def recent(self, limit: int | None = 50, since: float = 86400.0) -> list[JobStatus]:
        rows = sorted(self.jobs.values(), key=lambda j: j.submitted or 0, reverse=True)
        return rows[:limit] if limit is not None else rows

    def result(self, job_id: str, fmt: int = 6) -> bytes:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id} not found")
        if job.status != "succeeded" or (job_id, fmt) not in self.files:
            raise NoResult(f"job {job_id} has no format {fmt} output")
        return self.files[(job_id, fmt)]

    def databases(self) -> list[DatabaseInfo]:
        return list(self._dbs)
