"""``db upload`` and ``init``: put databases into Blob storage with an MD5 manifest."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from pathlib import Path

from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import ContentSettings

from blast_worker.cli.context import Context
from blast_worker.cli.render import CliError, Result
from blast_worker.demo import DemoSpec, makeblastdb_argv, write_demo
from blast_worker.names import NameError_, check_db_name
from blast_worker.provision import MANIFEST, build_manifest


def upload_database(ctx: Context, name: str, files: list[Path]) -> dict[str, object]:
    """Upload makeblastdb output under ``<name>/`` with Content-MD5s, then the manifest.

    The manifest goes last, so a half-finished upload is never mistaken for a complete one
    (workers check every file against it).

    Args:
        ctx: CLI context.
        name: Database name.
        files: The files to upload.
    """
    try:
        check_db_name(name)
    except NameError_ as exc:
        raise CliError(str(exc), code=2) from None
    if not files:
        raise CliError("give the makeblastdb output files, e.g. mydb.n*", code=2)
    for f in files:
        if not f.is_file():
            raise CliError(f"{f} is not a file", code=2)
    if len({f.name for f in files}) != len(files):
        raise CliError("two files have the same name; upload one database at a time", code=2)
    manifest = build_manifest(name, files)
    container = ctx.storage.container(ctx.cfg.db_container)
    # Remove blobs of an older version that the new file set does not overwrite.
    stale = [
        b.name
        for b in container.list_blobs(name_starts_with=f"{name}/")
        if b.name.split("/", 1)[1] not in manifest["files"]
    ]
    for blob in stale:
        container.delete_blob(blob)
    total = 0
    for f in files:
        md5 = bytes.fromhex(manifest["files"][f.name]["md5"])
        with f.open("rb") as fh:
            container.upload_blob(
                f"{name}/{f.name}",
                fh,
                overwrite=True,
                max_concurrency=4,
                content_settings=ContentSettings(content_md5=bytearray(md5)),
            )
        total += f.stat().st_size
    container.upload_blob(f"{name}/{MANIFEST}", json.dumps(manifest, indent=1), overwrite=True)
    return {
        "db": name,
        "container": ctx.cfg.db_container,
        "files": len(files),
        "bytes": total,
        "manifest": f"{name}/{MANIFEST}",
        "md5": {
            k: base64.b64encode(bytes.fromhex(v["md5"])).decode()
            for k, v in manifest["files"].items()
        },
    }


def db_upload(ctx: Context, name: str, files: list[str]) -> Result:
    """``blast-jobs db upload NAME FILES...``.

    Args:
        ctx: CLI context.
        name: Database name.
        files: makeblastdb output files.
    """
    info = upload_database(ctx, name, [Path(f) for f in files])
    return Result(
        info,
        lambda d: (
            f"uploaded {d['files']} files ({d['bytes']} bytes) as "
            f"{d['container']}/{d['db']}/ with {d['manifest']}"
        ),
    )


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
    created = ctx.storage.ensure_resources()
    info: dict[str, object] = {"created": created, "demo_db": None}
    if demo_db is not None:
        try:
            check_db_name(demo_db)
        except NameError_ as exc:
            raise CliError(str(exc), code=2) from None
        container = ctx.storage.container(ctx.cfg.db_container)
        exists = True
        try:
            container.get_blob_client(f"{demo_db}/{MANIFEST}").get_blob_properties()
        except ResourceNotFoundError:
            exists = False
        if exists and not force:
            info["demo_db"] = {"db": demo_db, "status": "present"}
        else:
            spec = DemoSpec(
                demo_db,
                spec.seqs,
                spec.seq_len,
                spec.queries,
                spec.decoys,
                spec.query_len,
                spec.mutation_rate,
                spec.seed,
            )
            with tempfile.TemporaryDirectory(prefix="blast-demo-") as tmp:
                subjects, queries = write_demo(spec, Path(tmp))
                out = Path(tmp) / "db"
                out.mkdir()
                try:
                    proc = subprocess.run(
                        makeblastdb_argv(subjects, out / demo_db, demo_db),
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                except FileNotFoundError:
                    raise CliError("makeblastdb not found: install ncbi-blast+") from None
                if proc.returncode != 0:
                    raise CliError(f"makeblastdb failed: {proc.stderr.strip()[-500:]}")
                uploaded = upload_database(ctx, demo_db, sorted(out.iterdir()))
                inputs = ctx.storage.container(ctx.cfg.inputs_container)
                inputs.upload_blob(
                    f"demo/{demo_db}.queries.fa", queries.read_bytes(), overwrite=True
                )
            info["demo_db"] = {
                "db": demo_db,
                "status": "uploaded",
                **uploaded,
                "queries_blob": f"demo/{demo_db}.queries.fa",
            }

    def text(d: dict[str, object]) -> str:
        lines = [f"created {c}" for c in d["created"]] or ["all resources already exist"]  # type: ignore[attr-defined]
        demo = d.get("demo_db")
        if isinstance(demo, dict):
            lines.append(f"demo database {demo['db']}: {demo['status']}")
        return "\n".join(lines)

    return Result(info, text)
