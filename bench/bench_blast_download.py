"""Database download speed: parallel ranged requests (the worker's Provisioner) versus a
sequential loop of 4 MiB ranged requests, on the same blobs in Azurite (target: >= 2x).

Both paths write the files to disk and check their MD5. Storage is the compose stack's Azurite
under a private project (needs Docker, Compose and the images of `make build`; nothing is
needed on the host). Run from the repository root:

    .venv/bin/python bench/bench_blast_download.py [--mib 256] [--files 4] [--concurrency 8]
        [--chunk-mib 8] [--smoke]
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from azure.storage.blob import ContainerClient, ContentSettings
from blast_worker.provision import Provisioner

from testbed.bench import run
from testbed.blast_stack import bench_stack
from testbed.engine import StackError

CHUNK = 4 * 1024 * 1024


def sequential(container: ContainerClient, names: list[str], dest: Path) -> None:
    """The baseline: one 4 MiB range after another, MD5 checked against Content-MD5."""
    for name in names:
        blob = container.get_blob_client(name)
        props = blob.get_blob_properties()
        digest = hashlib.md5(usedforsecurity=False)
        with (dest / name.rsplit("/", 1)[1]).open("wb") as fh:
            for off in range(0, props.size, CHUNK):
                data = blob.download_blob(offset=off, length=min(CHUNK, props.size - off)).readall()
                digest.update(data)
                fh.write(data)
        expected = props.content_settings.content_md5
        assert expected is not None and digest.digest() == bytes(expected)


def main(
    mib: Annotated[int, typer.Option(help="total size (default 256 MiB)")] = 256,
    files: Annotated[int, typer.Option(help="number of blobs (default 4)")] = 4,
    concurrency: Annotated[int, typer.Option(help="parallel ranges (8)")] = 8,
    chunk_mib: Annotated[
        float, typer.Option(help="parallel range size (default 8, the worker default)")
    ] = 8,
    repeat: int = 3,
) -> None:
    """Run the benchmark and print its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-dl-") as tmp:
        root = Path(tmp)
        with bench_stack(root, []) as stack:
            container = stack.storage.container("blastdb")
            size = mib * 2**20 // files
            names = []
            for i in range(files):
                data = os.urandom(size)
                name = f"dlbench/dlbench.{i:02d}.bin"
                container.upload_blob(
                    name,
                    data,
                    overwrite=True,
                    max_concurrency=4,
                    content_settings=ContentSettings(
                        content_md5=bytearray(hashlib.md5(data).digest())
                    ),
                )
                names.append(name)
            prov = Provisioner(
                container,
                root / "cache",
                concurrency=concurrency,
                chunk_size=int(chunk_mib * 2**20),
            )
            seq_t, par_t = [], []
            for _ in range(repeat):
                out = root / "seq"
                out.mkdir()
                t0 = time.perf_counter()
                sequential(container, names, out)
                seq_t.append(time.perf_counter() - t0)
                shutil.rmtree(out)
                out = root / "par"
                out.mkdir()
                remote = prov.remote_files("dlbench")
                t0 = time.perf_counter()
                prov.download_files(remote, out)
                par_t.append(time.perf_counter() - t0)
                shutil.rmtree(out)
    s, p = min(seq_t), min(par_t)
    print(f"{mib} MiB in {files} blobs, best of {repeat}")
    print(f"sequential 4 MiB loop : {s:6.2f} s  {mib / s:7.1f} MiB/s")
    print(f"parallel ranged ({concurrency}x{chunk_mib:g} MiB): {p:6.2f} s  {mib / p:7.1f} MiB/s")
    print(f"speed-up: {s / p:.2f}x (target >= 2x)")


if __name__ == "__main__":
    try:
        run(main, smoke={"mib": 8, "files": 2, "chunk_mib": 1, "repeat": 1})
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
