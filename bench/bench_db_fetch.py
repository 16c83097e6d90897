"""NCBI database into storage: ``blast-jobs db fetch`` versus today's way, over the same link.

Today's way follows ``update_blastdb.pl --decompress``: one volume at a time, each tarball
downloaded to disk over one connection, its MD5 checked, unpacked (``gzip -cd | tar xf -``)
and deleted; then ``blast-jobs db upload`` sends the files to storage. ``db fetch`` streams
the volumes in parallel from HTTP through gunzip and tar into Blob storage, with no local
disk. Targets: at least 2x faster end to end, with at most a tenth of the disk.

Both read the same local mirror (NCBI's layout; real makeblastdb databases) through one HTTP
server that caps each connection at the same rate, as a long-distance link does (a TCP
stream is bounded by its window over the round-trip time, so streams add up). The rate is
sized from this machine: first an unthrottled ``db fetch`` measures what the machine itself
needs (T0); the cap is then set so that the mirror's tarballs take ``--link-factor`` x T0 over
8 connections. The link, not the machine, is then what both ways wait for, on any machine.

Disk: the baseline's peak is measured at its two high points per volume (tarball downloaded;
tarball unpacked, not yet deleted); ``db fetch``'s is what the kernel counted the process
writing (wait4's rusage) and the sampled size of its working, home and temporary directories.

Storage is the compose stack's Azurite (needs Docker, Compose and the images of
``make build``). Run from the repository root:

    .venv/bin/python bench/bench_db_fetch.py [--seqs 24000] [--volume-size 1MB] [--smoke]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer
from blast_client.databases import md5_file
from blast_client.demo import DemoSpec, generate

from testbed.bench import run
from testbed.blast_stack import BIN, Stack, bench_stack
from testbed.engine import StackError
from testbed.mirror_server import MirrorServer, disk_usage
from testbed.ncbi_mirror import build, package, write_indexes

CONNECTIONS = 8
"""db fetch's default number of connections (FetchSettings.connections)."""


def sequential(base: str, name: str, volumes: list[str], work: Path, stack: Stack) -> int:
    """update_blastdb.pl --decompress, then blast-jobs db upload; return the peak disk bytes."""
    work.mkdir()
    peak = 0
    for volume in volumes:
        tarball = work / volume
        with urllib.request.urlopen(f"{base}/{volume}") as response, tarball.open("wb") as fh:
            shutil.copyfileobj(response, fh, 1 << 20)
        with urllib.request.urlopen(f"{base}/{volume}.md5") as response:
            expected = response.read().decode().split()[0]
        (work / f"{volume}.md5").write_text(expected + "\n")
        assert md5_file(tarball).hex() == expected, volume
        peak = max(peak, disk_usage(work))
        subprocess.run(f"gzip -cd {volume} | tar xf -", shell=True, cwd=work, check=True)
        peak = max(peak, disk_usage(work))
        tarball.unlink()
    files = sorted(str(p) for p in work.iterdir() if not p.name.endswith(".md5"))
    stack.cli("db", "upload", f"{name}_seq", *files, timeout=1800)
    return peak


def fetch(stack: Stack, source: str, name: str, as_name: str, home: Path) -> tuple[float, int]:
    """``blast-jobs db fetch`` as a user runs it; return seconds and peak disk bytes."""
    (home / "tmp").mkdir(parents=True)
    env = {**stack.env, "HOME": str(home), "TMPDIR": str(home / "tmp")}
    argv = [str(BIN / "blast-jobs"), "db", "fetch", name, "--source", source, "--as", as_name]
    argv += ["--output", "json"]
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, disk_usage(home))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=home, stdout=subprocess.PIPE)
    sampler.start()
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"db fetch failed: {out.decode()[-2000:]}")
    assert json.loads(out)["data"]["status"] == "fetched"
    return seconds, max(peak, usage.ru_oublock * 512)


def main(
    seqs: Annotated[int, typer.Option(help="subjects of 2,000 bases")] = 24_000,
    volume_size: Annotated[str, typer.Option(help="makeblastdb -max_file_sz")] = "1MB",
    link_factor: Annotated[
        float,
        typer.Option(
            help="the throttled link takes this many times T0 for the tarballs over 8 connections"
        ),
    ] = 2.0,
) -> None:
    """Build the mirror, size the link, run both ways, print the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        root = Path(tmp)
        with bench_stack(root, []) as stack:
            data = generate(DemoSpec(name="benchdb", seqs=seqs, seq_len=2000))
            db = build(
                stack.run_tool,
                root / "work",
                "benchdb",
                "nucleotide",
                data.subjects,
                data.queries,
                "db fetch benchmark",
                max_file_sz=volume_size,
            )
            flat = root / "mirror" / "flat"
            meta = package(stack.run_tool, db, flat)
            write_indexes(flat, [meta])
            volumes = sorted(p.name for p in flat.glob("benchdb*.tar.gz"))
            compressed = sum((flat / v).stat().st_size for v in volumes)
            size = sum(p.stat().st_size for p in db.files())
            with MirrorServer(root / "mirror") as server:
                source = server.url("flat")
                t0, _ = fetch(stack, source, "benchdb", "calibrate", root / "home0")
                rate = compressed / (CONNECTIONS * link_factor * t0)
                server.throttle = rate
                fetch_s, fetch_disk = fetch(stack, source, "benchdb", "benchdb", root / "home1")
                start = time.perf_counter()
                seq_disk = sequential(source, "benchdb", volumes, root / "seq", stack)
                seq_s = time.perf_counter() - start
    mib = 2**20
    print(
        f"database: {size / mib:.1f} MiB in {len(volumes)} volumes "
        f"({compressed / mib:.1f} MiB of tarballs)"
    )
    print(f"machine (unthrottled db fetch), T0: {t0:.2f} s")
    print(
        f"link: {rate / mib:.2f} MiB/s per connection "
        f"(sized so that 8 connections need {link_factor:g} x T0)"
    )
    print(
        f"sequential download + unpack + db upload : {seq_s:7.2f} s  "
        f"{compressed / mib / seq_s:6.2f} MiB/s  peak disk {seq_disk / mib:8.2f} MiB"
    )
    print(
        f"db fetch (streamed, parallel volumes)    : {fetch_s:7.2f} s  "
        f"{compressed / mib / fetch_s:6.2f} MiB/s  peak disk {fetch_disk / mib:8.2f} MiB"
    )
    disk = fetch_disk / seq_disk
    print(
        f"speed-up: {seq_s / fetch_s:.2f}x (target >= 2x); disk: {disk:.4f} of the baseline's "
        "(target <= 0.1)"
    )


if __name__ == "__main__":
    # Smoke: two volumes or more (they still go in parallel), over a link that is not slow.
    try:
        run(main, smoke={"seqs": 1000, "volume_size": "300KB", "link_factor": 0.25})
    except StackError as exc:
        sys.exit(f"{Path(__file__).name}: cannot start the test stack: {exc}")
