"""``blast-jobs db fetch`` end to end: a local mirror in NCBI's layout (real makeblastdb and
blastdbcmd), the CLI from the dev venv, the compose stack's Azurite, and a worker container.

One mirror and one database container serve the whole module; every test fetches under its
own name. Faults happen by construction in the mirror server (a connection cut after N bytes,
a transfer frozen mid-volume), never by timing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from blast_client.demo import DemoSpec, generate

from testbed.blast_stack import BIN, BlastTools, ComposeAzurite, Stack
from testbed.engine import wait_for
from testbed.mirror_server import MirrorServer, disk_usage
from testbed.ncbi_mirror import BuiltDb, build, package, protein_fasta, snapshot, write_indexes

LATEST = "2024-05-02-01-05-02"
OLDER = "2024-05-01-01-05-02"
MV_SPEC = DemoSpec(name="mvdb", seqs=8000, seq_len=2000)
"""16 Mbases: five volumes of -max_file_sz 1MB, about 5.5 MB of tarballs."""


@dataclass
class Mirror:
    """The module's mirror: its databases, the server and the directories it serves.

    Attributes:
        server: The HTTP server (root: the mirror directory).
        mvdb: The multi-volume nucleotide database.
        prot: The protein database.
        old_prot: A smaller protein database in the older snapshot.
    """

    server: MirrorServer
    mvdb: BuiltDb
    prot: BuiltDb
    old_prot: BuiltDb

    def url(self, where: str) -> str:
        """URL of ``flat`` (NCBI's site), ``cloud`` (a bucket) or ``bad``."""
        return self.server.url(where)

    def tarballs(self, where: str = "flat") -> dict[str, int]:
        """The mvdb tarballs and their sizes."""
        root = self.server.root / where
        return {p.name: p.stat().st_size for p in sorted(root.glob("mvdb*.tar.gz"))}


@pytest.fixture(scope="module")
def mirror(blast_tools: BlastTools, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    """Build the databases, package them as NCBI does, and serve them."""
    root = tmp_path_factory.mktemp("ncbi")

    def run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
        return blast_tools.run(argv)

    data = generate(MV_SPEC)
    mvdb = build(
        run,
        root / "work",
        "mvdb",
        "nucleotide",
        data.subjects,
        data.queries,
        "Multi-volume test",
        max_file_sz="1MB",
    )
    subjects, queries = protein_fasta("protdb", 2000, 300, 10, seed=7)
    prot = build(run, root / "work", "protdb", "protein", subjects, queries, "Protein test")
    subjects, queries = protein_fasta("protdb", 1500, 300, 5, seed=11)
    old_prot = build(run, root / "old", "protdb", "protein", subjects, queries, "Protein test")
    served = root / "mirror"
    flat = served / "flat"
    write_indexes(flat, [package(run, mvdb, flat), package(run, prot, flat)])
    older = root / "older"
    write_indexes(older, [package(run, old_prot, older)])
    snapshot(older, served / "cloud", OLDER, latest=False)
    snapshot(flat, served / "cloud", LATEST, latest=True)
    bad = snapshot(flat, served, "bad", latest=False)
    (bad / "mvdb.02.tar.gz.md5").unlink()  # a hard link: replace, do not edit
    (bad / "mvdb.02.tar.gz.md5").write_text("0123456789abcdef0123456789abcdef  mvdb.02.tar.gz\n")
    with MirrorServer(served) as server:
        yield Mirror(server, mvdb, prot, old_prot)


@pytest.fixture(scope="module")
def fetch_stack(
    azurite: ComposeAzurite, blast_tools: BlastTools, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The session's Azurite with a database container of this module's own."""
    suffix = secrets.token_hex(4)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZURE_STORAGE_CONNECTION_STRING": azurite.connection_string,
        "BLAST_DB_CONTAINER": f"fetch{suffix}",
        "BLAST_RESULTS_CONTAINER": "blast-results",
        "BLAST_INPUTS_CONTAINER": "blast-inputs",
        "BLAST_QUEUE": f"q-{suffix}",
        "BLAST_JOB_TABLE": f"jobs{suffix}",
    }
    stack = Stack(azurite, blast_tools, tmp_path_factory.mktemp("fetch-stack"), env, suffix=suffix)
    stack.cli("init")
    try:
        yield stack
    finally:
        stack.stop_all()


def fetch(stack: Stack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return stack.cli("db", "fetch", *args, check=check)


def fetch_json(stack: Stack, *args: str) -> dict[str, Any]:
    proc = fetch(stack, *args, "--output", "json")
    doc: dict[str, Any] = json.loads(proc.stdout)
    assert doc["ok"] and doc["command"] == "db fetch", doc
    return dict(doc["data"])


def manifest(stack: Stack, name: str) -> dict[str, Any] | None:
    container = stack.storage.container(stack.env["BLAST_DB_CONTAINER"])
    blob = container.get_blob_client(f"{name}/manifest.json")
    if not blob.exists():
        return None
    doc: dict[str, Any] = json.loads(blob.download_blob().readall())
    return doc


def assert_same_files(stack: Stack, name: str, db: BuiltDb) -> dict[str, Any]:
    """The stored manifest lists exactly the original files, with their MD5s."""
    doc = manifest(stack, name)
    assert doc is not None, f"{name} was not published"
    original = {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in db.files()}
    alias = {f"{name}.nal", f"{name}.pal"} if name != db.name else set()
    assert {n: e["md5"] for n, e in doc["files"].items() if n not in alias} == original
    container = stack.storage.container(stack.env["BLAST_DB_CONTAINER"])
    for fname, entry in doc["files"].items():
        props = container.get_blob_client(f"{name}/{fname}").get_blob_properties()
        content_md5 = props.content_settings.content_md5
        assert content_md5 is not None and bytes(content_md5).hex() == entry["md5"], fname
    return doc


def search(stack: Stack, db: str, program: str, queries: Path) -> bytes:
    ids = stack.submit(
        queries.read_text(),
        "--db",
        db,
        "--program",
        program,
        "--evalue",
        "1e-5",
        "--max-target-seqs",
        "5",
    )
    stack.cli("wait", *ids, "--timeout", "240", "--interval", "0.5")
    return b"".join(stack.client.result(job, 6) for job in ids)


def direct(stack: Stack, db: BuiltDb, program: str) -> bytes:
    return stack.run_tool(
        [
            program,
            "-db",
            str(db.path),
            "-query",
            str(db.queries),
            "-outfmt",
            "6",
            "-num_threads",
            "1",
            "-evalue",
            "1e-05",
            "-max_target_seqs",
            "5",
        ]
    ).stdout


def test_fetched_databases_search_like_the_originals(fetch_stack: Stack, mirror: Mirror) -> None:
    stack = fetch_stack
    mv = fetch_json(stack, "mvdb", "--source", mirror.url("cloud"))
    assert (mv["status"], mv["volumes"], mv["transferred_volumes"]) == ("fetched", 5, 5)
    assert mv["snapshot"] == LATEST and mv["source"] == mirror.url(f"cloud/{LATEST}")
    assert mv["bytes"] == sum(mirror.tarballs().values())
    assert (mv["sequences"], mv["residues"]) == (MV_SPEC.seqs, MV_SPEC.seqs * MV_SPEC.seq_len)
    doc = assert_same_files(stack, "mvdb", mirror.mvdb)
    ncbi = json.loads((mirror.server.root / "flat" / "mvdb-nucl-metadata.json").read_text())
    assert doc["source"]["metadata"] == ncbi  # NCBI's metadata kept whole
    assert (doc["bytes_to_cache"], doc["last_updated"], doc["title"]) == (
        ncbi["bytes-to-cache"],
        ncbi["last-updated"],
        "Multi-volume test",
    )
    # A server without range requests: the volume streams in one GET; --as adds an alias.
    mirror.server.ranges = False
    try:
        prot = fetch_json(stack, "protdb", "--source", mirror.url("flat"), "--as", "prot")
    finally:
        mirror.server.ranges = True
    assert (prot["db"], prot["source_db"], prot["molecule"]) == ("prot", "protdb", "protein")
    assert "prot.pal" in assert_same_files(stack, "prot", mirror.prot)["files"]

    listed = {
        d["name"]: d for d in json.loads(stack.cli("db", "list", "--output", "json").stdout)["data"]
    }
    assert set(listed) == {"mvdb", "prot"}
    assert listed["mvdb"]["bytes_to_cache"] == ncbi["bytes-to-cache"]
    assert listed["prot"]["source"] == mirror.url("flat")
    text = stack.cli("db", "list").stdout
    assert f"updated {ncbi['last-updated'][:10]}" in text and mirror.url("flat") in text

    worker = stack.start_worker()
    worker.wait_state("idle")
    got = search(stack, "mvdb", "blastn", mirror.mvdb.queries)
    assert got == direct(stack, mirror.mvdb, "blastn")
    assert got.count(b"\n") >= 20  # the planted queries hit
    got = search(stack, "prot", "blastp", mirror.prot.queries)
    assert got == direct(stack, mirror.prot, "blastp") and got

    # A second fetch of a current database transfers nothing and says so.
    mirror.server.clear_log()
    again = fetch(stack, "mvdb", "--source", mirror.url("cloud"))
    assert "mvdb is current" in again.stdout and "nothing to transfer" in again.stdout
    assert mirror.server.requests(".tar.gz") == []
    assert mirror.server.requests(".tar.gz", method="HEAD") == []


def test_md5_mismatch_is_refused_and_nothing_is_published(
    fetch_stack: Stack, mirror: Mirror
) -> None:
    proc = fetch(fetch_stack, "mvdb", "--source", mirror.url("bad"), "--as", "mvbad", check=False)
    assert proc.returncode == 1
    (line,) = proc.stderr.strip().splitlines()[-1:]
    assert "MD5 mismatch for " + mirror.url("bad/mvdb.02.tar.gz") in line
    assert "nothing was published" in line and "4 of 5 volumes are verified" in line
    assert "Traceback" not in proc.stderr
    assert manifest(fetch_stack, "mvbad") is None
    container = fetch_stack.storage.container(fetch_stack.env["BLAST_DB_CONTAINER"])
    assert [b.name for b in container.list_blobs(name_starts_with="mvbad/")] == [
        "mvbad/.fetch/journal.json"  # invisible to workers and db list: a nested name
    ]
    names = [d.name for d in fetch_stack.client.databases()]
    assert "mvbad" not in names and not fetch_stack.client.database_exists("mvbad")


def test_interrupted_fetches_resume_without_fetching_verified_volumes_again(
    fetch_stack: Stack, mirror: Mirror
) -> None:
    stack, server = fetch_stack, mirror.server
    sizes = mirror.tarballs()

    # 1. A connection cut mid-volume: the volume resumes from the byte where it dropped.
    server.clear_log()
    server.drop("/flat/mvdb.02.tar.gz", after=300_000)
    fetch_json(stack, "mvdb", "--source", mirror.url("flat"), "--as", "mvdrop")
    for name, size in sizes.items():
        gets = [(g.start, g.sent, g.complete) for g in server.requests(name)]
        if name == "mvdb.02.tar.gz":
            assert gets == [(0, 300_000, False), (300_000, size - 300_000, True)]
        else:
            assert gets == [(0, size, True)], name
    assert_same_files(stack, "mvdrop", mirror.mvdb)

    # 2. A fetch killed while mvdb.01 is frozen mid-transfer, after the others were verified.
    server.clear_log()
    release = server.hold("/flat/mvdb.01.tar.gz", after=200_000)
    container = stack.storage.container(stack.env["BLAST_DB_CONTAINER"])
    journal = container.get_blob_client("mvkill/.fetch/journal.json")
    proc = subprocess.Popen(
        [
            str(BIN / "blast-jobs"),
            "db",
            "fetch",
            "mvdb",
            "--source",
            mirror.url("flat"),
            "--as",
            "mvkill",
        ],
        env=stack.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def verified() -> bool:
            if not journal.exists():
                return False
            return len(json.loads(journal.download_blob().readall())["volumes"]) == 4

        wait_for(verified, 120, "four verified volumes in the journal", interval=0.1)
        assert proc.poll() is None  # still stuck on mvdb.01 when it is killed
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        release.set()
        if proc.poll() is None:
            proc.kill()
    assert manifest(stack, "mvkill") is None  # nothing visible after the kill
    assert "mvkill" not in [d.name for d in stack.client.databases()]
    server.clear_log()
    done = fetch_json(stack, "mvdb", "--source", mirror.url("flat"), "--as", "mvkill")
    assert (done["transferred_volumes"], done["kept_volumes"]) == (1, 4)
    assert done["bytes"] == sizes["mvdb.01.tar.gz"]
    assert [g.path for g in server.requests(".tar.gz")] == ["/flat/mvdb.01.tar.gz"]
    assert_same_files(stack, "mvkill", mirror.mvdb)
    assert not journal.exists()  # the journal goes once the database is published


def test_bad_names_sources_and_dates_fail_in_one_line(fetch_stack: Stack, mirror: Mirror) -> None:
    cases = [
        (
            ["nosuchdb", "--source", mirror.url("flat")],
            2,
            f"{mirror.url('flat')} has no database 'nosuchdb'; it has: mvdb, protdb",
        ),
        (
            ["mvdb", "--source", "http://127.0.0.1:9/blast/db"],
            1,
            "cannot reach http://127.0.0.1:9/blast/db/latest-dir (Connection refused",
        ),
        (
            ["mvdb", "--source", mirror.url("flat"), "--date", "2024-05-01"],
            2,
            "keeps only its current databases",
        ),
        (
            ["protdb", "--source", mirror.url("cloud"), "--date", "2024-04-28"],
            2,
            "has no snapshot of 2024-04-28; the nearest are 2024-05-01, 2024-05-02",
        ),
        (["protdb", "--date", "May 1st"], 2, "is not a date"),
        (["protdb", "--as", "../etc"], 2, "--as: database name '../etc' is not valid"),
    ]
    for args, code, message in cases:
        proc = fetch(fetch_stack, *args, check=False)
        assert proc.returncode == code, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (args, proc.stderr)
    # Before `blast-jobs init`: refused before any volume is downloaded.
    mirror.server.clear_log()
    env = {**fetch_stack.env, "BLAST_DB_CONTAINER": "nosuchcontainer"}
    proc = subprocess.run(
        [str(BIN / "blast-jobs"), "db", "fetch", "mvdb", "--source", mirror.url("flat")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "run `blast-jobs init` first" in proc.stderr
    assert mirror.server.requests(".tar.gz") == []
    doc = json.loads(
        fetch(
            fetch_stack, "nosuchdb", "--source", mirror.url("flat"), "--output", "json", check=False
        ).stdout
    )
    assert doc["error"]["code"] == "unknown_database" and doc["error"]["exit_code"] == 2


def test_a_dated_snapshot(fetch_stack: Stack, mirror: Mirror) -> None:
    old = fetch_json(
        fetch_stack,
        "protdb",
        "--source",
        mirror.url("cloud"),
        "--date",
        "2024-05-01",
        "--as",
        "prot_0501",
    )
    assert (old["snapshot"], old["sequences"]) == (OLDER, 1500)
    assert_same_files(fetch_stack, "prot_0501", mirror.old_prot)


def run_measured(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, int, int]:
    """Run ``argv``; return its exit code, stderr, the bytes it wrote to disk (the kernel's
    count, from wait4's rusage) and the peak size of its TMPDIR, HOME and cwd (sampled)."""
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = 0
    stop = threading.Event()
    err: list[str] = []

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, disk_usage(cwd))
            stop.wait(0.01)

    def drain() -> None:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read()
        err.append(proc.stderr.read())

    threads = [threading.Thread(target=sample), threading.Thread(target=drain)]
    for t in threads:
        t.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    for t in threads:
        t.join()
    return proc.returncode, "".join(err), usage.ru_oublock * 512, peak


def test_peak_local_disk_during_a_fetch_stays_near_zero(
    fetch_stack: Stack, mirror: Mirror, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    env = {
        **fetch_stack.env,
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    mirror.server.throttle = 4_000_000  # a fraction of a second per volume: time to sample
    try:
        code, err, written, peak = run_measured(
            [
                str(BIN / "blast-jobs"),
                "db",
                "fetch",
                "mvdb",
                "--source",
                mirror.url("flat"),
                "--as",
                "mvdisk",
            ],
            env,
            home,
        )
    finally:
        mirror.server.throttle = None
    assert code == 0, err
    size = sum(
        e["size"] for e in assert_same_files(fetch_stack, "mvdisk", mirror.mvdb)["files"].values()
    )
    print(
        f"\ndb fetch of {size / 2**20:.1f} MiB: {written} bytes written to disk, "
        f"peak {peak} bytes in HOME/TMPDIR/cwd"
    )
    assert size > 5 * 2**20
    assert written < 256 * 1024 and peak == 0
    shutil.rmtree(home)
