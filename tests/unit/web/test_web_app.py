"""The page in-process (ASGI): login, CSRF, the search form's inline errors and limits,
results, alignments and downloads, over the real library's planning and a jobs stand-in."""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from blast_client import DatabaseInfo, JobSpec
from blast_web.app import create_app
from blast_web.service import Service
from blast_web.settings import load_settings
from starlette.testclient import TestClient

from testbed.web import FakeClient, report_doc

TOKEN = "t0ken-for-tests"
DNA = ">seq1 my query\n" + "ACGTTGCAAGGCTTACGATCGATCGGCTAGCTAGGCTAGCATCGACTAGC" * 3 + "\n"
PROTEIN = ">p1\nMKVLAAGIVALLLAAGCSSEQKPEETQAPAQ\n"


def csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


@pytest.fixture()
def fake() -> FakeClient:
    return FakeClient()


def make_client(fake: FakeClient, **env: str) -> TestClient:
    settings = load_settings({"WEB_TOKEN": TOKEN, "WEB_MAX_QUERY_BYTES": "4096", **env})
    return TestClient(create_app(Service(fake), settings), follow_redirects=False)


@pytest.fixture()
def anon(fake: FakeClient) -> Iterator[TestClient]:
    with make_client(fake) as client:
        yield client


@pytest.fixture()
def web(anon: TestClient) -> TestClient:
    response = anon.get(f"/?token={TOKEN}")
    assert response.status_code == 303 and response.headers["location"] == "/"
    return anon


def submit(web: TestClient, **fields: str) -> tuple[int, str]:
    token = csrf(web.get("/").text)
    response = web.post("/", data={"csrf_token": token, **fields})
    return response.status_code, response.text


def test_healthz_answers_without_login(anon: TestClient) -> None:
    response = anon.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_pages_need_login(anon: TestClient, fake: FakeClient) -> None:
    for path in ("/", "/searches", "/searches/web-x"):
        response = anon.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    assert anon.get("/searches/web-x/download/tsv").status_code == 401
    assert anon.get("/searches.json").status_code == 401
    assert anon.get("/?token=wrong").status_code == 403


def test_session_cookie_is_httponly_samesite_and_secure_only_under_tls(fake: FakeClient) -> None:
    with make_client(fake) as client:
        cookie = client.get("/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    with make_client(fake, WEB_TLS="self-signed") as client:
        assert "Secure" in client.get("/login").headers["set-cookie"]


def test_login_form_with_token_and_with_argon2_password(fake: FakeClient) -> None:
    hashed = PasswordHasher().hash("correct horse")
    with make_client(fake, WEB_PASSWORD_HASH="argon2:" + hashed) as client:
        page = client.get("/login?next=/searches")
        bad = client.post("/login", data={"csrf_token": csrf(page.text), "secret": "wrong"})
        assert bad.status_code == 403 and "not right" in bad.text
        before = client.cookies.get("blastweb_session")
        ok = client.post(
            "/login",
            data={"csrf_token": csrf(page.text), "secret": "correct horse", "next": "/searches"},
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/searches"
        assert client.cookies.get("blastweb_session") != before  # a new session at login
        assert client.get("/searches").status_code == 200


def test_open_redirects_are_refused(anon: TestClient) -> None:
    page = anon.get("/login")
    response = anon.post(
        "/login", data={"csrf_token": csrf(page.text), "secret": TOKEN, "next": "//evil.example/"}
    )
    assert response.headers["location"] == "/"


def test_posts_without_a_valid_csrf_token_are_refused(web: TestClient, fake: FakeClient) -> None:
    for data in ({}, {"csrf_token": "forged"}):
        response = web.post("/", data={**data, "query": DNA, "db": "demo"})
        assert response.status_code == 403 and "CSRF" in response.text
    assert fake.submitted == []


def test_a_search_is_planned_by_the_library_and_queued(web: TestClient, fake: FakeClient) -> None:
    page = web.get("/")
    assert "Demo &lt;b&gt;nucleotide&lt;/b&gt; db" in page.text  # the db title is escaped
    status, _ = submit(web, query=DNA, db="demo", program="auto", evalue="1e-5", name="mine")
    assert status == 303
    (spec,) = fake.submitted
    assert spec.program == "blastn" and spec.db == "demo" and spec.name == "mine"
    assert spec.options.outfmt == (6, 15) and spec.options.evalue == 1e-5
    assert spec.run_id and spec.run_id.startswith("web-")
    # The results page offers the hit sequences: its jobs ask the workers for them.
    assert spec.hit_fasta and json.loads(spec.to_message())["hit_fasta"] is True


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"query": "", "db": "demo"}, "query", "at least one FASTA"),
        ({"query": "   \n", "db": "demo"}, "query", "at least one FASTA"),
        ({"query": PROTEIN, "db": "demo", "program": "blastn"}, "program", "use tblastn"),
        ({"query": DNA, "db": "nope"}, "db", "no database named"),
        ({"query": DNA, "db": ""}, "db", "Choose a database"),
        ({"query": "%%% garbage !!!\nnot fasta", "db": "demo"}, "query", "not FASTA"),
        ({"query": ">a\n>b\n", "db": "demo"}, "query", "no sequence"),
        ({"query": DNA, "db": "demo", "evalue": "lots"}, "evalue", "not a number"),
        ({"query": DNA, "db": "demo", "evalue": "0"}, "evalue", "must be in"),
        ({"query": DNA, "db": "demo", "word_size": "2"}, "word_size", "out of range"),
        ({"query": DNA, "db": "demo", "task": "blastp-fast"}, "task", "not valid for blastn"),
        ({"query": DNA, "db": "demo", "program": "psiblast"}, "program", "Unknown program"),
    ],
)
def test_bad_input_gets_an_inline_message_and_no_job(
    web: TestClient, fake: FakeClient, fields: dict[str, str], field: str, message: str
) -> None:
    status, html = submit(web, **fields)
    assert status == 400
    match = re.search(
        rf'<p class="error" id="{field}-error" data-field="{field}">([^<]*)</p>', html
    )
    assert match, f"no inline error next to {field}"
    assert message in match.group(1)
    assert fake.submitted == []


@pytest.mark.parametrize("size", [12_000, 200_000])  # parsed, and dropped unparsed
def test_oversized_query_is_refused_clearly(web: TestClient, fake: FakeClient, size: int) -> None:
    big = ">big\n" + "ACGT" * (size // 4) + "\n"  # over the 4 KB limit of these tests
    token = csrf(web.get("/").text)
    response = web.post(
        "/", data={"csrf_token": token, "db": "demo"}, files={"query_file": ("../../etc/x.fa", big)}
    )
    assert response.status_code == 413
    assert 'id="query-error"' in response.text and "limit" in response.text
    assert fake.submitted == []


def test_upload_uses_the_contents_never_the_name(web: TestClient, fake: FakeClient) -> None:
    token = csrf(web.get("/").text)
    response = web.post(
        "/", data={"csrf_token": token, "db": "demo"},
        files={"query_file": ("../../../etc/passwd", DNA.encode())},
    )  # fmt: skip
    assert response.status_code == 303
    assert fake.submitted[0].query.fasta == DNA


def test_too_many_records(fake: FakeClient) -> None:
    with make_client(fake, WEB_MAX_RECORDS="2") as web:
        web.get(f"/?token={TOKEN}")
        status, html = submit(web, query=DNA * 3, db="demo")
    assert status == 400 and "more than the 2" in html and fake.submitted == []


def run_search(web: TestClient, fake: FakeClient, query: str = DNA) -> str:
    status, _ = submit(web, query=query, db="demo")
    assert status == 303
    return fake.submitted[-1].run_id or ""


def test_progress_then_results_with_sorting_and_pages(web: TestClient, fake: FakeClient) -> None:
    search_id = run_search(web, fake)
    page = web.get(f"/searches/{search_id}")
    assert (
        page.status_code == 200 and "queued" in page.text and 'data-poll="/searches/' in page.text
    )
    assert web.get(f"/searches/{search_id}/status.json").json()["state"] == "queued"
    (job,) = fake.submitted
    fake.finish(job.job_id, {15: report_doc([("seq1 my query", 150, 120)]), 6: b"a\tb\n"})
    page = web.get(f"/searches/{search_id}")
    assert "<svg" in page.text and "Hits 1\u201350 of 120" in page.text
    rows = re.findall(r'<td class="mono"><a href="[^"]+/hits/(\d+)">', page.text)
    assert rows == [str(n) for n in range(1, 51)]
    last = web.get(f"/searches/{search_id}?q=1&sort=bits&order=asc&page=3")
    rows = re.findall(r'<td class="mono"><a href="[^"]+/hits/(\d+)">', last.text)
    assert rows == [str(n) for n in range(20, 0, -1)]


def test_alignment_and_downloads(web: TestClient, fake: FakeClient) -> None:
    search_id = run_search(web, fake)
    (job,) = fake.submitted
    tsv = b"Query_1\ts1\t99.0\t100\t1\t0\t1\t100\t101\t200\t1e-50\t180\n"
    fasta = b">s1 subject 1\nACGTACGT\n>s2 subject 2\nGGGG\n"
    fake.finish(
        job.job_id, {15: report_doc([("q", 150, 3)]), 6: tsv, 11: b"ASN archive"}, fasta=fasta
    )
    alignment = web.get(f"/searches/{search_id}/queries/1/hits/3")
    assert (
        alignment.status_code == 200 and "Query  1" in alignment.text and "HSP 2" in alignment.text
    )
    download = web.get(f"/searches/{search_id}/download/tsv")
    assert download.content == tsv
    assert (
        download.headers["content-disposition"] == f'attachment; filename="blast-{search_id}.tsv"'
    )
    assert web.get(f"/searches/{search_id}/download/archive").content == b"ASN archive"
    assert web.get(f"/searches/{search_id}/download/fasta").content == fasta
    assert web.get(f"/searches/{search_id}/download/../../x").status_code == 404
    assert web.get(f"/searches/{search_id}/queries/1/hits/99").status_code == 404


def search_of_batches(web: TestClient, fake: FakeClient, batches: int) -> list[JobSpec]:
    """Submit ``batches`` records of 150 letters (seq1, seq2, ...) with a batch length that
    gives each its own batch: one search of that many jobs, which are returned."""
    token = csrf(web.get("/").text)
    original = fake.plan
    fake.plan = lambda *a, **k: original(*a, **{**k, "batch_len": 150})  # type: ignore[method-assign]
    query = "".join(DNA.replace("seq1", f"seq{i}") for i in range(1, batches + 1))
    response = web.post("/", data={"csrf_token": token, "query": query, "db": "demo"})
    assert response.status_code == 303
    jobs = list(fake.submitted)
    assert len(jobs) == batches and len({j.run_id for j in jobs}) == 1
    return jobs


def test_a_multi_batch_search_is_one_search_with_progress(
    web: TestClient, fake: FakeClient
) -> None:
    jobs = search_of_batches(web, fake, 3)
    fake.finish(jobs[0].job_id, {15: report_doc([("seq1", 150, 2)]), 6: b"1\n"})
    listing = web.get("/searches.json").json()["searches"]
    assert len(listing) == 1 and listing[0]["done"] == 1 and listing[0]["total"] == 3
    assert listing[0]["state"] == "running" or listing[0]["state"] == "queued"
    fake.finish(jobs[1].job_id, {15: report_doc([("seq2", 150, 1)]), 6: b"2\n"})
    fake.finish(jobs[2].job_id, {15: report_doc([("seq3", 150, 0)]), 6: b"3\n"})
    run = jobs[0].run_id
    assert web.get(f"/searches/{run}/download/tsv").content == b"1\n2\n3\n"
    page = web.get(f"/searches/{run}?q=3")
    assert "Query 3" in page.text and "No hits for this query" in page.text


def test_a_batch_that_is_not_blast_json_is_named_and_the_rest_shown(
    web: TestClient, fake: FakeClient
) -> None:
    # The same merge as `deployer run`'s (blast_client.merge): a bad part is never dropped
    # silently; here the page says which batch it is and shows the others.
    first, second, third = search_of_batches(web, fake, 3)
    fake.finish(first.job_id, {15: report_doc([("seq1", 150, 2)]), 6: b"1\n"})
    fake.finish(second.job_id, {15: b"<html>gateway timeout</html>", 6: b"2\n"})
    fake.finish(third.job_id, {15: report_doc([("seq3", 150, 1)]), 6: b"3\n"})
    run = first.run_id
    page = web.get(f"/searches/{run}")
    assert page.status_code == 200 and "Query 1" in page.text
    assert "The results of batch 2: outfmt 15 result is not BLAST JSON" in page.text
    assert "(2, 3 hits)" in page.text  # the queries of batches 1 and 3
    assert "seq3" in web.get(f"/searches/{run}?q=2").text
    merged = web.get(f"/searches/{run}/download/json").json()["BlastOutput2"]
    titles = [r["report"]["results"]["search"]["query_title"] for r in merged]
    assert titles == ["seq1", "seq3"]
    assert web.get(f"/searches/{run}/download/tsv").content == b"1\n2\n3\n"


def test_archives_of_several_batches_are_zipped_by_batch_number(
    web: TestClient, fake: FakeClient
) -> None:
    first, second, third = search_of_batches(web, fake, 3)
    fake.finish(first.job_id, {11: b"A1"})
    fake.finish(second.job_id, {}, status="failed")
    fake.finish(third.job_id, {11: b"A3"})
    zipped = web.get(f"/searches/{first.run_id}/download/archive")
    base = f"blast-{first.run_id}"
    assert zipped.headers["content-disposition"] == f'attachment; filename="{base}.zip"'
    with zipfile.ZipFile(io.BytesIO(zipped.content)) as archive:
        assert archive.namelist() == [f"{base}-batch001.asn1", f"{base}-batch003.asn1"]


def test_cancelled_batches_end_a_search(web: TestClient, fake: FakeClient) -> None:
    # `deployer run cancel` and a run's TTL write "cancelled": final, not succeeded.
    first, second = search_of_batches(web, fake, 2)
    fake.finish(first.job_id, {15: report_doc([("seq1", 150, 1)])})
    fake.finish(second.job_id, {}, status="cancelled")
    state = web.get(f"/searches/{first.run_id}/status.json").json()
    assert state["state"] == "partial" and state["final"] and state["done"] == 2
    assert state["errors"] == ["batch 2: cancelled"]


def test_a_database_uploaded_a_moment_ago_is_offered_and_accepted(
    web: TestClient, fake: FakeClient
) -> None:
    assert 'value="fresh"' not in web.get("/").text
    fake._dbs.append(DatabaseInfo("fresh", "Just uploaded", "nucleotide", 1, 100, 100, 9))
    token = csrf(web.get("/").text)
    assert 'value="fresh"' in web.get("/").text
    fake._dbs.append(DatabaseInfo("fresher", "Uploaded later", "nucleotide", 1, 100, 100, 9))
    response = web.post("/", data={"csrf_token": token, "query": DNA, "db": "fresher"})
    assert response.status_code == 303 and fake.submitted[-1].db == "fresher"


def test_hit_sequences_of_batches_are_joined_with_each_subject_once(
    web: TestClient, fake: FakeClient
) -> None:
    first, second = search_of_batches(web, fake, 2)
    fake.finish(first.job_id, {15: report_doc([("seq1", 150, 1)])}, fasta=b">s1 a\nAC\nGT\n")
    fake.finish(
        second.job_id, {15: report_doc([("seq2", 150, 2)])}, fasta=b">s2 b\nTT\n>s1 a\nAC\nGT\n"
    )
    run = first.run_id
    assert 'id="download-fasta"' in web.get(f"/searches/{run}").text
    fasta = web.get(f"/searches/{run}/download/fasta")
    assert fasta.status_code == 200 and fasta.content == b">s1 a\nAC\nGT\n>s2 b\nTT\n"


def test_a_database_without_seqids_says_so_instead_of_a_fasta_link(
    web: TestClient, fake: FakeClient
) -> None:
    search_id = run_search(web, fake)
    (job,) = fake.submitted
    why = "the database was built without makeblastdb -parse_seqids"
    fake.finish(job.job_id, {15: report_doc([("q", 150, 2)]), 6: b"x\n"}, fasta_note=why)
    page = web.get(f"/searches/{search_id}").text
    assert 'id="download-fasta"' not in page
    assert f"No hit sequences (FASTA): {why}." in page
    refused = web.get(f"/searches/{search_id}/download/fasta")
    assert refused.status_code == 409 and why in refused.text


def test_headers_from_fasta_are_escaped_in_every_page(web: TestClient, fake: FakeClient) -> None:
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    search_id = run_search(web, fake, f">{evil}\n" + "ACGT" * 40 + "\n")
    (job,) = fake.submitted
    doc = report_doc([(evil, 160, 2)]).replace(b"subject 1", evil.encode())
    fake.finish(job.job_id, {15: doc, 6: b""})
    for path in (f"/searches/{search_id}", f"/searches/{search_id}/queries/1/hits/1"):
        html = web.get(path).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_security_headers(web: TestClient) -> None:
    headers = web.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
