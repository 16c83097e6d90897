"""``db upload``, ``db fetch``, ``db list`` and ``init``: databases in Blob storage with an
MD5 manifest."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from blast_client.cli.context import Context
from blast_client.cli.progress import transfer_progress
from blast_client.cli.render import Result
from blast_client.dbfetch import FetchProgress
from blast_client.demo import DemoSpec, makeblastdb_argv, write_demo
from blast_client.errors import BlastClientError, InvalidRequest
from blast_client.names import InvalidName, check_db_name


def db_upload(ctx: Context, name: str, files: list[str]) -> Result:
    """``blast-jobs db upload NAME FILES...``.

    Args:
        ctx: CLI context.
        name: Database name.
        files: makeblastdb output files.
    """
    info = ctx.client.upload_database(name, [Path(f) for f in files])
    return Result(
        info,
        lambda d: (
            f"uploaded {d['files']} files ({d['bytes']} bytes) as "
            f"{d['container']}/{d['db']}/ with {d['manifest']}"
        ),
    )


def fetch_text(d: dict[str, Any]) -> str:
    """What ``db fetch`` says to people about its result (``FetchResult.to_json()``); also
    ``deployer db fetch``'s summary.

    Args:
        d: The result.
    """
    source = d["source"] + (f" (snapshot {d['snapshot']})" if d["snapshot"] else "")
    updated = f", updated {str(d['last_updated'])[:10]}" if d.get("last_updated") else ""
    if d["status"] == "current":
        return (
            f"{d['db']} is current: {d['source_db']} from {source}, {d['volumes']} "
            f"volumes{updated}; nothing to transfer"
        )
    kept = f" ({d['kept_volumes']} kept from an earlier run)" if d["kept_volumes"] else ""
    sequences = f"{d['sequences']:,} sequences" if d.get("sequences") is not None else "?"
    return (
        f"fetched {d['source_db']} from {source}: {d['volumes']} volumes{kept}, "
        f"{d['bytes'] / 2**20:.1f} MiB in {d['seconds']:.1f} s\n"
        f"stored as {d['container']}/{d['db']}/ ({d['files']} files, {d['manifest']}): "
        f"{sequences}{updated}"
    )


def db_fetch(
    ctx: Context, name: str, source: str | None, date: str | None, as_name: str | None
) -> Result:
    """``blast-jobs db fetch NAME [--source URL] [--date YYYY-MM-DD] [--as NAME]``.

    Args:
        ctx: CLI context.
        name: NCBI's database name.
        source: ``ncbi``, ``gcp``, ``aws`` or a mirror's URL.
        date: Snapshot date.
        as_name: Name in storage.
    """
    # JSON lines on stderr when a program follows the log (BLAST_PROGRESS=json), even
    # beside --output json: the envelope stays the only thing on stdout.
    bar = transfer_progress(os.environ, enabled=ctx.output != "json")

    def show(p: FetchProgress) -> None:
        bar.update(p.done, p.total, p.volumes_done, p.volumes_total, p.rate, p.eta)

    try:
        result = ctx.client.fetch_database(
            name, source=source, date=date, as_name=as_name, on_progress=show
        )
    except KeyboardInterrupt:
        raise BlastClientError(
            "interrupted; nothing was published",
            hint="verified volumes are kept: run the same command again to resume",
        ) from None
    finally:
        bar.close()
    return Result(result.to_json(), fetch_text)


def db_list(ctx: Context) -> Result:
    """``blast-jobs db list``: every database with its title, molecule and size."""
    docs = [d.to_json() for d in ctx.client.databases()]

    def text(data: list[dict[str, Any]]) -> str:
        if not data:
            return (
                "no databases; fetch one from NCBI with `blast-jobs db fetch swissprot`, "
                "or upload your own with `blast-jobs db upload NAME FILES...`"
            )
        return "\n".join(
            f"{d['name']}\t{d['molecule'] or '?'}\t"
            f"{d['sequences'] if d['sequences'] is not None else '?'} sequences\t"
            f"{d['size']} bytes\t{d['title'] or ''}"
            + (f"\tupdated {d['last_updated'][:10]}" if d.get("last_updated") else "")
            + (f"\tfrom {d['source']}" if d.get("source") else "")
            for d in data
        )

    return Result(docs, text)


def build_demo(ctx: Context, spec: DemoSpec) -> dict[str, Any]:
    """Generate the demo data, build it with makeblastdb, upload the database and queries.

    Args:
        ctx: CLI context.
        spec: Demo data sizes, seed and database name.
    """
    with tempfile.TemporaryDirectory(prefix="blast-demo-") as tmp:
        subjects, queries = write_demo(spec, Path(tmp))
        out = Path(tmp) / "db"
        out.mkdir()
        try:
            proc = subprocess.run(
                makeblastdb_argv(subjects, out / spec.name, spec.name),
                capture_output=True,
                text=True,
                check=False,
            )
        except FileNotFoundError:
            raise BlastClientError(
                "makeblastdb not found",
                hint="install ncbi-blast+, or run `blast-jobs init` in the blast-worker image",
            ) from None
        if proc.returncode != 0:
            raise BlastClientError(f"makeblastdb failed: {proc.stderr.strip()[-500:]}")
        uploaded = ctx.client.upload_database(spec.name, sorted(out.iterdir()))
        blob = f"demo/{spec.name}.queries.fa"
        ctx.client.put_input(blob, queries.read_bytes())
    return {"db": spec.name, "status": "uploaded", **uploaded, "queries_blob": blob}


def init(ctx: Context, demo_db: str | None, spec: DemoSpec, force: bool) -> Result:
    """Create the queue, poison queue, table and containers; optionally the demo database.

    Idempotent: existing resources are kept, and an existing demo database with a manifest is
    not rebuilt unless ``force``.

    Args:
        ctx: CLI context.
        demo_db: Name for the demo database, or None.
        spec: Demo data sizes and seed.
        force: Rebuild the demo database even if present.
    """
    if demo_db is not None:
        try:
            check_db_name(demo_db)
        except InvalidName as exc:
            raise InvalidRequest(str(exc)) from None
    created = ctx.client.ensure_resources()
    info: dict[str, Any] = {"created": created, "demo_db": None}
    if demo_db is not None:
        if ctx.client.database_exists(demo_db) and not force:
            info["demo_db"] = {"db": demo_db, "status": "present"}
        else:
            info["demo_db"] = build_demo(ctx, dataclasses.replace(spec, name=demo_db))

    def text(d: dict[str, Any]) -> str:
        lines = [f"created {c}" for c in d["created"]] or ["all resources already exist"]
        demo = d.get("demo_db")
        if isinstance(demo, dict):
            lines.append(f"demo database {demo['db']}: {demo['status']}")
        return "\n".join(lines)

    return Result(info, text)
