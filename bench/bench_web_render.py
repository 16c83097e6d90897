"""Server-side render time and page weight of the BLAST web page's results view.

A finished search of 5,000 hits over 50 queries (100 hits per query, some with several
HSPs), served in-process through the whole ASGI app (security middleware, view, templates):

* render time of a results page (one query's overview and its first page of 50 hits), cold
  (the JSON parsed in the request) and warm (the parsed report cached, as it is once a search
  is final); target: median at most 300 ms;
* page weight: the HTML plus the stylesheet and script it loads; target: at most 200 KB, and
  no reference to anything outside the app.

Needs only the dev venv. Run from the repository root:

    .venv/bin/python bench/bench_web_render.py [--queries 50] [--hits 100] [--runs 30] [--smoke]
"""

from __future__ import annotations

import re
import statistics
import time
from typing import Annotated

import typer
from blast_web.app import create_app
from blast_web.service import Service
from blast_web.settings import load_settings
from starlette.testclient import TestClient

from testbed.bench import run
from testbed.web import FakeClient, report_doc

TOKEN = "bench-token"
DNA = ">q\n" + "ACGT" * 100 + "\n"
RENDER_TARGET_MS = 300.0
WEIGHT_TARGET_KB = 200.0
EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def main(
    queries: Annotated[int, typer.Option(help="queries (default 50)")] = 50,
    hits: Annotated[int, typer.Option(help="hits per query (default 100)")] = 100,
    runs: Annotated[int, typer.Option(help="timed requests (default 30)")] = 30,
) -> None:
    """Run the benchmark and print its figures."""
    fake = FakeClient()
    settings = load_settings({"WEB_TOKEN": TOKEN})
    service = Service(fake)
    document = report_doc([(f"query {i}", 1500, hits) for i in range(1, queries + 1)])
    with TestClient(create_app(service, settings), follow_redirects=False) as web:
        web.get(f"/?token={TOKEN}")
        (spec,) = fake.plan(DNA, db="demo", run_id="web-bench")
        fake.submit([spec])
        fake.finish(spec.job_id, {15: document, 6: b""})
        url = f"/searches/web-bench?q={(queries + 1) // 2}"  # a query in the middle

        cold: list[float] = []
        for _ in range(max(3, runs // 5)):
            service._reports.clear()  # time the parse as well
            start = time.perf_counter()
            response = web.get(url)
            cold.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.text[:200]
        warm: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            response = web.get(url)
            warm.append((time.perf_counter() - start) * 1000)
        html = response.content
        assert b"Hits 1" in html and b"<svg" in html
        css = web.get("/static/style.css").content
        js = web.get("/static/app.js").content

    total_hits = queries * hits
    weight_kb = (len(html) + len(css) + len(js)) / 1024
    external = EXTERNAL.findall(html.decode()) + EXTERNAL.findall(css.decode())
    median = statistics.median(warm)
    render_ok = "met" if median <= RENDER_TARGET_MS else "MISSED"
    weight_ok = "met" if weight_kb <= WEIGHT_TARGET_KB else "MISSED"
    size_mb = len(document) / 1e6
    print(f"results page, {total_hits} hits over {queries} queries (JSON {size_mb:.1f} MB)")
    print(
        f"  render, cold (parse + render): median {statistics.median(cold):.0f} ms "
        f"over {len(cold)} requests"
    )
    print(
        f"  render, warm (cached report):  median {median:.1f} ms, "
        f"p90 {sorted(warm)[int(0.9 * len(warm)) - 1]:.1f} ms over {len(warm)} requests "
        f"(target <= {RENDER_TARGET_MS:.0f} ms: {render_ok})"
    )
    print(
        f"  page weight: HTML {len(html) / 1024:.1f} KB + CSS {len(css) / 1024:.1f} KB "
        f"+ JS {len(js) / 1024:.1f} KB = {weight_kb:.1f} KB "
        f"(target <= {WEIGHT_TARGET_KB:.0f} KB: {weight_ok})"
    )
    print(f"  external references: {len(external)} {'(none)' if not external else external[:3]}")


if __name__ == "__main__":
    # 51 hits: the results page pages them (50 per page), as it does at full size.
    run(main, smoke={"queries": 3, "hits": 51, "runs": 3})
