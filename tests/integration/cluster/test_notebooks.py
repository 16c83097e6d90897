"""The shipped notebooks, executed headless (nbclient) inside the notebook container against the
stack's cluster and BLAST service, and their numbers checked independently."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from docker.models.containers import Container

from testbed.engine import exec_text
from testbed.notebooks import BLAST, MONTE_CARLO, MPI_PI, NOTEBOOKS, SHIPPED, execute


def norm_cdf(x: float) -> float:
    """The standard normal distribution function.

    Args:
        x (float): The point.
    """
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(s0: float, k: float, sigma: float, r: float, t: float) -> tuple[float, float]:
    """Black-Scholes prices of a European call and put.

    Args:
        s0 (float): Spot price.
        k (float): Strike.
        sigma (float): Volatility.
        r (float): Risk-free rate, continuously compounded.
        t (float): Maturity in years.
    """
    d1 = (math.log(s0 / k) + (r + 0.5 * sigma**2) * t) / (sigma * math.sqrt(t))
    d2 = d1 - sigma * math.sqrt(t)
    call = s0 * norm_cdf(d1) - k * math.exp(-r * t) * norm_cdf(d2)
    put = k * math.exp(-r * t) * norm_cdf(-d2) - s0 * norm_cdf(-d1)
    return call, put


@pytest.mark.parametrize("name", [MONTE_CARLO, BLAST, MPI_PI])
def test_the_image_ships_the_repository_notebooks(notebook: Container, name: str) -> None:
    code, shipped = exec_text(notebook, ["cat", f"{SHIPPED}/{name}"])
    assert code == 0, shipped
    assert json.loads(shipped) == json.loads((NOTEBOOKS / name).read_text())
    # The start script copies them into the user's work folder.
    code, out = exec_text(notebook, ["test", "-f", f"/home/research/work/{name}"])
    assert code == 0, out


def test_monte_carlo_notebook_prices_agree_with_black_scholes(notebook: Container) -> None:
    report = execute(notebook, MONTE_CARLO)
    # The contour plots and the timing chart were drawn.
    assert isinstance(report["images"], int) and report["images"] >= 2
    files = report["files"]
    assert isinstance(files, dict)
    rows = list(csv.DictReader(io.StringIO(files["monte-carlo-results.csv"])))

    # The notebook's defaults: 6 strikes 90..110 x 5 volatilities 0.1..0.4, 260 days.
    strikes = sorted({float(r["strike"]) for r in rows})
    vols = sorted({float(r["volatility"]) for r in rows})
    assert len(rows) == 30
    assert strikes == pytest.approx([90 + 4 * i for i in range(6)])
    assert vols == pytest.approx([0.1 + 0.075 * i for i in range(5)])
    assert len({r["engine"] for r in rows}) >= 2, "the work was not spread over the engines"

    for row in rows:
        k, sigma = float(row["strike"]), float(row["volatility"])
        call, put = black_scholes(100.0, k, sigma, 0.05, 1.0)
        for price, se, exact, what in (
            (float(row["euro_call"]), float(row["euro_call_se"]), call, "call"),
            (float(row["euro_put"]), float(row["euro_put_se"]), put, "put"),
        ):
            assert 0 < se < 0.5, (k, sigma, what, se)
            assert abs(price - exact) <= 3 * se, (
                f"European {what} K={k} sigma={sigma}: MC {price:.4f} vs "
                f"Black-Scholes {exact:.4f} is {abs(price - exact) / se:.2f} standard errors"
            )
        assert float(row["asian_call"]) < float(row["euro_call"]), (k, sigma)


def test_blast_notebook_finds_the_planted_subjects(notebook: Container) -> None:
    report = execute(notebook, BLAST)
    assert isinstance(report["images"], int) and report["images"] >= 1
    files = report["files"]
    assert isinstance(files, dict)
    hits = list(csv.DictReader(io.StringIO(files["blast-hits.csv"])))

    # The demo queries are windows of known subjects with ~3% substitutions (see
    # blast_client/demo.py), and their headers say which subject each came from.
    code, fasta = exec_text(
        notebook,
        [
            "python",
            "-c",
            # The storage key is a secret file: read the blob as the notebook's client does.
            "from blast_client import BlastClient; "
            "print(BlastClient.from_env().get_input('demo/demo.queries.fa').decode())",
        ],
    )
    assert code == 0, fasta
    planted = {
        line[1:].split()[0]: line.split("planted from ")[1].split(":")[0]
        for line in fasta.splitlines()
        if line.startswith(">") and "planted from" in line
    }
    best: dict[str, tuple[float, str]] = {}
    for hit in hits:
        score = float(hit["bitscore"])
        if score > best.get(hit["query"], (-1.0, ""))[0]:
            best[hit["query"]] = (score, hit["subject"])
    searched = [q for q in planted if q in best]
    assert len(searched) == 4, f"expected hits for the 4 planted queries, got {sorted(best)}"
    for query in searched:
        assert best[query][1] == planted[query], (query, best[query], planted[query])
    # The random decoy has no significant hit at evalue 1e-5.
    assert not [q for q in best if q.startswith("decoy")]

    # The notebook submits through the client library, which records each job as queued
    # before sending it (the row's submission time precedes the worker's start), and the
    # image's blast-jobs (the same library) lists it.
    code, out = exec_text(notebook, ["blast-jobs", "--output", "json", "recent", "--since", "1h"])
    assert code == 0, out
    mine = [
        job
        for job in json.loads(out)["data"]
        if job.get("name") == "notebook: blast-search.ipynb" and job["status"] == "succeeded"
    ]
    assert mine, out
    assert all(job["submitted"] <= job["started"] for job in mine), mine
    source = (NOTEBOOKS / BLAST).read_text()
    assert "blast_client" in source and "send_message" not in source


def test_notebooks_in_the_repository_have_no_outputs() -> None:
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        doc = json.loads(Path(path).read_text())
        for cell in doc["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name
