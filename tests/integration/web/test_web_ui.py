"""The BLAST web page on the compose stack, in headless Chromium: log in with the token, search
the demo database with real nucleotide queries, watch the hits appear, open an alignment,
download the TSV and compare it byte for byte with ``blast-jobs results`` and the hit sequences
with ``blastdbcmd -entry``; a search of two batches shows as one search with its progress,
every query's hits and the batches' TSV concatenated, and a database without
``-parse_seqids`` gets a note instead of a FASTA link; markup in FASTA
headers stays inert in the DOM; bad input and oversized uploads give inline messages and queue
nothing; requests without the session or the CSRF token are refused. Screenshots of every
page go to ``artifacts/blast-web/``."""

from __future__ import annotations

import base64
import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from blast_client.demo import DemoSpec, SplitMix64, generate
from docker.models.containers import Container

from testbed.browser import BrowserError, Chromium
from testbed.engine import REPO, project_containers

ARTIFACTS = REPO / "artifacts" / "blast-web"
DEMO = generate(DemoSpec())  # the data set `blast-jobs init --demo-db demo` uploads
SEARCH_TIMEOUT = 240.0
XSS_HEADER = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'


def records(fasta: str) -> list[str]:
    """The records of FASTA text, each with its header line."""
    return [">" + r for r in fasta.split(">") if r.strip()]


PLANTED = records(DEMO.queries)[:3]
DECOY = records(DEMO.queries)[-1]


@pytest.fixture(scope="module")
def base_url(stack: str, stack_secrets: dict[str, str]) -> str:
    """The published page on loopback."""
    return f"http://127.0.0.1:{stack_secrets['WEB_PORT']}"


@pytest.fixture(scope="module")
def worker(docker_client: docker.DockerClient, stack: str) -> Container:
    """A blast-worker container of the stack: it has ``blast-jobs`` and the stack's storage."""
    return project_containers(docker_client, stack, "blast-worker")[0]


def run_in(worker: Container, *argv: str) -> bytes:
    """Run a command in the worker container; return its stdout (fails on exit != 0)."""
    result = worker.exec_run(list(argv), demux=True)
    stdout, stderr = result.output
    assert result.exit_code == 0, (stderr or b"").decode(errors="replace")[-2000:]
    return stdout or b""


def blast_jobs(worker: Container, *args: str) -> bytes:
    """Run ``blast-jobs`` in the worker container; return its stdout (fails on exit != 0)."""
    return run_in(worker, "blast-jobs", *args)


def job_count(worker: Container) -> int:
    """Jobs submitted in the last hour, by the job log."""
    envelope = json.loads(blast_jobs(worker, "recent", "--since", "1h", "--output", "json"))
    return len(envelope["data"])


@pytest.fixture(scope="module")
def browser(base_url: str, stack_secrets: dict[str, str]) -> Iterator[Chromium]:
    """Chromium, logged in through the login form with the stack's token."""
    with Chromium(width=1360, height=1000) as chromium:
        chromium.navigate(f"{base_url}/searches")
        loaded(chromium, "#login-form", "the login form")
        shoot(chromium, "01-login")
        token = json.dumps(stack_secrets["NOTEBOOK_TOKEN"])
        chromium.evaluate(f"document.querySelector('#secret').value = {token}")
        chromium.click("document.querySelector('#login-form button')", "the log-in button")
        chromium.wait_for("location.pathname === '/searches'", 30, "the searches page after login")
        yield chromium


def shoot(chromium: Chromium, name: str) -> None:
    """Save a screenshot of the whole page under artifacts/blast-web/."""
    time.sleep(0.3)  # let layout settle after the last DOM change
    height = chromium.evaluate("document.documentElement.scrollHeight")
    chromium.send(
        "Emulation.setDeviceMetricsOverride",
        width=1360,
        height=min(int(height), 4000),
        deviceScaleFactor=1,
        mobile=False,
    )
    chromium.screenshot(ARTIFACTS / f"{name}.png")
    chromium.send("Emulation.clearDeviceMetricsOverride")


def loaded(chromium: Chromium, selector: str, what: str) -> None:
    """Wait for ``selector`` and for the page's stylesheet (clicks land by layout)."""
    chromium.wait_for(
        f"document.readyState === 'complete' && !!document.querySelector({json.dumps(selector)})",
        30,
        what,
    )


def open_form(chromium: Chromium, base_url: str) -> None:
    chromium.navigate(f"{base_url}/")
    loaded(chromium, "#search-form", "the search form")


def fill(chromium: Chromium, query: str, **fields: str) -> None:
    """Type the query (firing input events, as typing does) and set other fields.

    With a program given, the query goes in without input events, as with JavaScript off:
    the page's script would otherwise grey out a program that does not fit, and the check
    under test is the server's.
    """
    event = "" if "program" in fields else "q.dispatchEvent(new Event('input'));"
    chromium.evaluate(
        "(() => { const q = document.querySelector('#query');"
        f" q.value = {json.dumps(query)}; {event} }})()"
    )
    for name, value in fields.items():
        chromium.evaluate(
            f"(() => {{ const e = document.querySelector('[name={name}]');"
            f" if (e.tagName === 'SELECT') {{ e.value = {json.dumps(value)}; }}"
            f" else {{ e.value = {json.dumps(value)}; e.checked = true; }} }})()"
        )


def submit(chromium: Chromium) -> None:
    chromium.evaluate("window.__submitted = true")
    chromium.click("document.querySelector('#submit')", "the BLAST button")
    chromium.wait_for("!window.__submitted && document.readyState === 'complete'", 60, "the answer")


def fetch_bytes(chromium: Chromium, url: str) -> tuple[int, bytes]:
    """GET ``url`` from inside the page (its session cookie); return status and body."""
    result = chromium.evaluate(
        f"fetch({json.dumps(url)}).then(async r => {{"
        " const b = new Uint8Array(await r.arrayBuffer());"
        " let s = ''; for (const x of b) s += String.fromCharCode(x);"
        " return {status: r.status, body: btoa(s)}; })"
    )
    return int(result["status"]), base64.b64decode(result["body"])


def run_search(chromium: Chromium, base_url: str, query: str, name: str) -> str:
    """Submit ``query`` against demo from the form; wait for its results; return the search id."""
    open_form(chromium, base_url)
    fill(chromium, query, name=name)
    submit(chromium)
    path = chromium.evaluate("location.pathname")
    assert path.startswith("/searches/web-"), chromium.evaluate("document.body.innerText")[:2000]
    return str(path.rsplit("/", 1)[1])


def wait_for_results(chromium: Chromium) -> None:
    """Wait until the page, polling its status, has reloaded itself with the results."""
    try:
        chromium.wait_for(
            "!!(document.querySelector('#hits') || document.querySelector('.query .muted'))",
            SEARCH_TIMEOUT,
            "the hit table to appear",
            interval=1.0,
        )
    except BrowserError:
        page = chromium.evaluate("location.href + '\\n' + document.body.innerText")
        raise AssertionError(
            f"no results after {SEARCH_TIMEOUT:.0f} s; the page:\n{page}"
        ) from None


def test_a_search_from_paste_to_alignment_and_tsv(
    browser: Chromium, base_url: str, worker: Container
) -> None:
    query = "".join(PLANTED) + DECOY
    open_form(browser, base_url)
    fill(browser, query, name="three planted queries and a decoy")
    assert browser.evaluate("document.querySelector('#molecule').textContent").endswith(
        "nucleotide sequence"
    )
    assert browser.evaluate("document.querySelector('input[name=db]:checked').value") == "demo"
    # The programs that do not fit a nucleotide query on a nucleotide database are disabled.
    disabled = browser.evaluate(
        "Array.from(document.querySelectorAll('#program option')).filter(o => o.disabled)"
        ".map(o => o.value)"
    )
    assert sorted(disabled) == ["blastp", "blastx", "tblastn"]
    shoot(browser, "02-new-search")
    submit(browser)
    search_id = str(browser.evaluate("location.pathname")).rsplit("/", 1)[1]
    assert search_id.startswith("web-")
    shoot(browser, "03-search-progress")
    wait_for_results(browser)
    shoot(browser, "04-results")

    # Each planted query's best hit is the subject it was cut from.
    for index, record in enumerate(PLANTED, start=1):
        query_id = record[1:].split()[0]
        browser.navigate(f"{base_url}/searches/{search_id}?q={index}")
        loaded(browser, "#hits", f"query {index}'s hits")
        top = browser.evaluate("document.querySelector('#hits tbody td.mono').textContent.trim()")
        assert top == DEMO.planted[query_id], (query_id, top)
        assert browser.evaluate("document.querySelectorAll('svg.overview a').length") >= 1
    browser.navigate(f"{base_url}/searches/{search_id}?q=4")
    loaded(browser, "section.query", "the decoy")
    assert "No hits" in browser.evaluate("document.querySelector('section.query').innerText")

    # Sorting by a column (server side, plain links).
    browser.navigate(f"{base_url}/searches/{search_id}?q=1&sort=bits&order=asc")
    loaded(browser, "#hits", "the sorted table")
    scores = browser.evaluate(
        "Array.from(document.querySelectorAll('#hits tbody tr td:last-child'))"
        ".map(td => parseFloat(td.textContent))"
    )
    assert scores == sorted(scores)

    # The alignment of the first query's best hit, opened from the table.
    browser.navigate(f"{base_url}/searches/{search_id}?q=1")
    loaded(browser, "#hits", "the hit table")
    browser.click("document.querySelector('#hits tbody td.mono a')", "the best hit")
    loaded(browser, "pre.alignment", "the alignment")
    text = browser.evaluate("document.querySelector('pre.alignment').textContent")
    assert text.startswith("Query  ") and "Sbjct  " in text and "||||" in text
    shoot(browser, "05-alignment")

    # The TSV download is byte for byte what blast-jobs gives for the same job.
    status, tsv = fetch_bytes(browser, f"/searches/{search_id}/download/tsv")
    assert status == 200 and tsv.count(b"\n") >= 3
    runs = json.loads(blast_jobs(worker, "run-jobs", search_id, "--output", "json"))["data"]
    assert len(runs) == 1
    assert tsv == blast_jobs(worker, "results", runs[0]["job_id"], "--format", "6")
    for kind, marker in (("json", b'"BlastOutput2"'), ("archive", b"Blast4")):
        status, body = fetch_bytes(browser, f"/searches/{search_id}/download/{kind}")
        assert status == 200 and marker in body[:4000], kind

    # The hit sequences are the whole subjects, as blastdbcmd prints them for the hit ids.
    browser.navigate(f"{base_url}/searches/{search_id}")
    loaded(browser, "#hits", "the results")
    assert browser.evaluate("!!document.querySelector('#download-fasta')")
    status, fasta = fetch_bytes(browser, f"/searches/{search_id}/download/fasta")
    ids = list(dict.fromkeys(line.split("\t")[1] for line in tsv.decode().splitlines()))
    assert status == 200 and set(DEMO.planted[r[1:].split()[0]] for r in PLANTED) <= set(ids)
    db = "/var/cache/blastdb/demo/demo"
    assert fasta == run_in(worker, "blastdbcmd", "-db", db, "-entry", ",".join(ids))

    browser.navigate(f"{base_url}/searches")
    loaded(browser, f'tr[data-search="{search_id}"]', "the list")
    row = browser.evaluate(f"document.querySelector('tr[data-search=\"{search_id}\"]').innerText")
    assert "succeeded" in row and "1 of 1 batch" in row
    shoot(browser, "06-searches")


def test_markup_in_headers_is_inert_in_the_dom(browser: Chromium, base_url: str) -> None:
    body = PLANTED[0].split("\n", 1)[1]
    search_id = run_search(browser, base_url, f">{XSS_HEADER}\n{body}", XSS_HEADER)
    wait_for_results(browser)
    for path in (f"/searches/{search_id}", f"/searches/{search_id}/queries/1/hits/1"):
        browser.navigate(base_url + path)
        browser.wait_for("document.readyState === 'complete'", 30, path)
        time.sleep(0.5)
        dom: dict[str, Any] = browser.evaluate(
            "({xss: window.__xss === undefined ? null : window.__xss,"
            " imgs: document.querySelectorAll('img').length,"
            " scripts: Array.from(document.scripts).map(s => s.getAttribute('src')),"
            " text: document.body.innerText})"
        )
        assert dom["xss"] is None and dom["imgs"] == 0, path
        assert dom["scripts"] == ["/static/app.js"], path
        assert "<script>window.__xss=1</script>" in dom["text"], path
    shoot(browser, "07-markup-in-headers")


@pytest.mark.parametrize(
    ("case", "query", "fields", "field", "message"),
    [
        ("empty", "", {}, "query", "at least one FASTA"),
        ("protein-for-blastn", ">p\nMKVLAAGIVALLLAAGCSSEQKPEETQAPAQ\n", {"program": "blastn"},
         "program", "use tblastn"),
        ("unknown-db", ">q\nACGTACGTACGTACGTAC\n", {"db": "no_such_db"}, "db", "no database named"),
        ("garbage", "%%% this is not FASTA !!!\n@@@", {}, "query", "not FASTA"),
    ],
)  # fmt: skip
def test_bad_input_gets_inline_messages_and_no_job(
    browser: Chromium,
    base_url: str,
    worker: Container,
    case: str,
    query: str,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    before = job_count(worker)
    open_form(browser, base_url)
    fill(browser, query, **fields)
    submit(browser)
    error = browser.evaluate(f"(document.querySelector('#{field}-error') || {{}}).textContent")
    assert error and message in error, browser.evaluate("document.body.innerText")[:1500]
    assert browser.evaluate("location.pathname") == "/"
    shoot(browser, f"08-bad-input-{case}")
    assert job_count(worker) == before


def test_oversized_upload_is_refused_with_a_clear_message(
    browser: Chromium, base_url: str, worker: Container, tmp_path: Path
) -> None:
    big = tmp_path / "big.fa"
    with big.open("w") as fh:  # 11 MB, over the default 10 MiB limit
        fh.write(">big\n")
        for _ in range(11 * 1024 * 1024 // 61 + 1):
            fh.write("ACGT" * 15 + "\n")
    before = job_count(worker)
    open_form(browser, base_url)
    document = browser.send("DOM.getDocument")
    node = browser.send(
        "DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#query_file"
    )
    browser.send("DOM.setFileInputFiles", files=[str(big)], nodeId=node["nodeId"])
    submit(browser)
    error = browser.evaluate("(document.querySelector('#query-error') || {}).textContent")
    assert error and "larger than" in error and "Nothing was submitted" in error
    shoot(browser, "09-oversized-upload")
    assert job_count(worker) == before


def test_requests_without_session_or_csrf_token_are_refused(
    base_url: str, stack_secrets: dict[str, str], worker: Container
) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    def answer(
        opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None
    ) -> tuple[int, str, str]:
        """Status, Location header and body of one request."""
        try:
            with opener.open(url, data=data, timeout=30) as response:
                body = response.read().decode(errors="replace")
                return int(response.status), response.headers.get("Location", ""), body
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.headers.get("Location", ""), ""

    def status(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> int:
        return answer(opener, url, data)[0]

    jar = http.cookiejar.CookieJar()
    user = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))
    token = urllib.parse.quote(stack_secrets["NOTEBOOK_TOKEN"])
    assert status(user, f"{base_url}/?token={token}") == 303

    # The search this test needs, its own: the form with its CSRF token is accepted.
    code, _, page = answer(user, f"{base_url}/")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert code == 200 and csrf, page[:2000]
    form = {"query": PLANTED[0], "db": "demo", "csrf_token": csrf.group(1)}
    code, location, _ = answer(user, f"{base_url}/", urllib.parse.urlencode(form).encode())
    assert code == 303 and location.startswith("/searches/web-"), (code, location)
    search_id = location.rsplit("/", 1)[1]
    assert status(user, f"{base_url}/searches/{search_id}") == 200

    stranger = urllib.request.build_opener(NoRedirect)
    assert status(stranger, f"{base_url}/searches/{search_id}") == 303  # to the login page
    assert status(stranger, f"{base_url}/searches/{search_id}/download/tsv") == 401
    assert status(stranger, f"{base_url}/searches/{search_id}/status.json") == 401
    assert status(stranger, f"{base_url}/healthz") == 200

    before = job_count(worker)
    assert before >= 1  # the search above, by the job log
    refused = urllib.parse.urlencode({"query": PLANTED[0], "db": "demo"}).encode()
    assert status(user, f"{base_url}/", refused) == 403  # no CSRF token
    forged = urllib.parse.urlencode({"query": PLANTED[0], "db": "demo", "csrf_token": "x"})
    assert status(user, f"{base_url}/", forged.encode()) == 403
    assert job_count(worker) == before


# A protein database built without -parse_seqids, and queries cut from its subjects: blastp
# batches 10,000 residues, so 16 queries of 900 make one search of two batches (11 + 5).
PROT_DB = "webprot"
AMINO = "ACDEFGHIKLMNPQRSTVWY"


def protein_set(subjects: int = 60, length: int = 1000, queries: int = 16) -> tuple[str, str]:
    """Deterministic random proteins and queries (900-residue windows, in subject order)."""
    rng = SplitMix64(1109)
    seqs = ["".join(AMINO[rng.below(20)] for _ in range(length)) for _ in range(subjects)]
    db = "".join(f">prot_{i:03d} synthetic protein {i}\n{seq}\n" for i, seq in enumerate(seqs))
    picks = [rng.below(subjects) for _ in range(queries)]
    query = "".join(
        f">pq_{n:03d} from prot_{i:03d}\n{seqs[i][50:950]}\n" for n, i in enumerate(picks, 1)
    )
    return db, query


def upload_protein_db(worker: Container, fasta: str) -> None:
    """makeblastdb (no -parse_seqids) and ``blast-jobs db upload`` inside the worker."""
    packed = base64.b64encode(zlib.compress(fasta.encode())).decode()
    write = (
        "import base64, sys, zlib; open('/tmp/webprot.fa', 'wb')"
        ".write(zlib.decompress(base64.b64decode(sys.argv[1])))"
    )
    build = (
        'python3 -c "$1" "$2" && makeblastdb -in /tmp/webprot.fa -dbtype prot'
        f" -out /tmp/webprot/{PROT_DB} -title 'Synthetic proteins (no seq ids)' >/dev/null"
        f" && blast-jobs db upload {PROT_DB} /tmp/webprot/{PROT_DB}.*"
    )
    run_in(worker, "sh", "-c", build, "sh", write, packed)  # one exec: each costs a second


def test_a_multi_batch_search_is_one_search_with_every_querys_hits(
    browser: Chromium, base_url: str, worker: Container
) -> None:
    # Runs last: a second database ends the demo database's preselection in the form.
    subjects, query = protein_set()
    upload_protein_db(worker, subjects)
    open_form(browser, base_url)
    fill(browser, query, name="16 proteins in two batches")
    browser.evaluate(f"document.querySelector('input[name=db][value={PROT_DB}]').click()")
    assert browser.evaluate("document.querySelector('#program-hint').textContent") == (
        "Fits: blastp"
    )
    submit(browser)
    search_id = str(browser.evaluate("location.pathname")).rsplit("/", 1)[1]
    assert search_id.startswith("web-"), browser.evaluate("document.body.innerText")[:2000]
    progress = browser.evaluate("document.querySelector('#search-progress').textContent")
    assert re.fullmatch(r"[0-2] of 2 batches", progress), progress

    # The jobs page: one search, its progress over the two batches.
    browser.navigate(f"{base_url}/searches")
    loaded(browser, f'tr[data-search="{search_id}"]', "the list")
    row = browser.evaluate(f"document.querySelector('tr[data-search=\"{search_id}\"]').innerText")
    assert re.search(r"\b[0-2] of 2 batches\b", row), row
    shoot(browser, "10-multi-batch-progress")

    browser.navigate(f"{base_url}/searches/{search_id}")
    wait_for_results(browser)
    assert browser.evaluate("document.querySelector('#search-progress').textContent") == (
        "2 of 2 batches"
    )
    shoot(browser, "11-multi-batch-results")
    jobs = json.loads(blast_jobs(worker, "run-jobs", search_id, "--output", "json"))["data"]
    jobs.sort(key=lambda job: (job["submitted"], job["job_id"]))
    assert len(jobs) == 2 and all(job["status"] == "succeeded" for job in jobs)

    # The TSV is the batches' results concatenated, queries in the order they were pasted.
    status, tsv = fetch_bytes(browser, f"/searches/{search_id}/download/tsv")
    parts = [blast_jobs(worker, "results", job["job_id"], "--format", "6") for job in jobs]
    assert status == 200 and tsv == b"".join(parts)
    lines = [line.split("\t") for line in tsv.decode().splitlines()]
    assert list(dict.fromkeys(f[0] for f in lines)) == [f"pq_{n:03d}" for n in range(1, 17)]

    # Every query is listed with its hits, and its best hit is the protein it was cut from.
    counts = browser.evaluate(
        "Array.from(document.querySelectorAll('aside.queries li'))"
        ".map(li => [li.querySelector('.qlabel').textContent, li.querySelector('.count')"
        ".textContent])"
    )
    expected = {f[0]: len({g[1] for g in lines if g[0] == f[0]}) for f in lines}
    assert [(label.split()[0], int(n)) for label, n in counts] == list(expected.items())
    sources = [r.split()[2] for r in query.splitlines() if r.startswith(">")]
    for q in (1, 12, 16):  # the first query of each batch and the last
        browser.navigate(f"{base_url}/searches/{search_id}?q={q}")
        loaded(browser, "#hits", f"query {q}'s hits")
        top = browser.evaluate("document.querySelector('#hits tbody td.mono').textContent.trim()")
        assert top == sources[q - 1], (q, top)  # named by its title's first word, as BLAST does

    # Without -parse_seqids the subjects cannot be looked up: the page says so, no link.
    note = browser.evaluate("(document.querySelector('#no-hit-fasta') || {}).textContent")
    assert note and "-parse_seqids" in note
    assert not browser.evaluate("!!document.querySelector('#download-fasta')")

    browser.navigate(f"{base_url}/searches")
    loaded(browser, f'tr[data-search="{search_id}"]', "the list")
    row = browser.evaluate(f"document.querySelector('tr[data-search=\"{search_id}\"]').innerText")
    assert "succeeded" in row and "2 of 2 batches" in row
    shoot(browser, "12-multi-batch-searches")
