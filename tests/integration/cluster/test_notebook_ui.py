"""The notebook front door: refused without the token; with it, headless Chromium loads
JupyterLab, runs the Monte Carlo notebook from the Run menu, and the plots render. The
screenshots are kept under ``artifacts/notebook-ui/``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from testbed.browser import Chromium
from testbed.cluster import wait_until
from testbed.engine import REPO

ARTIFACTS = REPO / "artifacts" / "notebook-ui"
NOTEBOOK = "monte-carlo-options.ipynb"
CODE_CELLS = sum(
    c["cell_type"] == "code"
    for c in json.loads((REPO / "images" / "notebook" / "notebooks" / NOTEBOOK).read_text())[
        "cells"
    ]
)

# Every code cell's prompt, e.g. "[3]:" once run, "[*]:" while queued or running.
PROMPTS = (
    "Array.from(document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt'))"
    ".map(e => e.textContent.trim())"
)
# The rendered figures: loaded PNGs with a real size.
IMAGES = (
    "Array.from(document.querySelectorAll('.jp-Notebook .jp-RenderedImage img'))"
    ".filter(i => i.complete && i.naturalWidth > 300 && i.naturalHeight > 200).length"
)


def status(url: str) -> int:
    """The HTTP status of a GET, without following redirects.

    Args:
        url (str): The address.
    """

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def kernel_state(base_url: str, token: str) -> str | None:
    """The execution state of the notebook's kernel session, or None while there is none.

    Args:
        base_url (str): The server's address.
        token (str): The access token.
    """
    with urllib.request.urlopen(f"{base_url}/api/sessions?token={token}", timeout=10) as r:
        sessions = json.load(r)
    for session in sessions:
        if session["path"].endswith(NOTEBOOK) and session.get("kernel"):
            return str(session["kernel"]["execution_state"])
    return None


@pytest.fixture()
def base_url(stack: str, stack_secrets: dict[str, str]) -> str:
    """The published notebook address on loopback."""
    return f"http://127.0.0.1:{stack_secrets['NOTEBOOK_PORT']}"


def test_notebook_refuses_requests_without_the_token(
    base_url: str, stack_secrets: dict[str, str]
) -> None:
    token = stack_secrets["NOTEBOOK_TOKEN"]
    for path in ("/api/kernels", "/api/sessions", f"/api/contents/{NOTEBOOK}", "/api/terminals"):
        assert status(base_url + path) == 403, path
        assert status(f"{base_url}{path}?token=not-{token}") == 403, path
    # The UI itself sends an anonymous visitor to the login page.
    assert status(f"{base_url}/lab") == 302
    assert status(f"{base_url}/api/kernels?token={token}") == 200


@pytest.mark.timeout(300)
def test_chromium_runs_the_monte_carlo_notebook_and_renders_the_plots(
    base_url: str, stack_secrets: dict[str, str]
) -> None:
    with Chromium(width=1400, height=1000) as browser:
        try:
            run_the_notebook(browser, base_url, stack_secrets["NOTEBOOK_TOKEN"])
        except BaseException:
            browser.screenshot(ARTIFACTS / "failure.png")
            raise


def run_the_notebook(browser: Chromium, base_url: str, token: str) -> None:
    """Log-in check, then open, run and inspect the Monte Carlo notebook; screenshots.

    Args:
        browser (Chromium): The browser.
        base_url (str): The notebook server's address.
        token (str): The access token.
    """
    # Without the token: the login page, and no notebook.
    browser.navigate(f"{base_url}/lab/tree/{NOTEBOOK}")
    browser.wait_for(
        "location.pathname === '/login' && !!document.querySelector('input[type=password]')",
        30,
        "the login page's password or token field",
    )
    assert not browser.evaluate("!!document.querySelector('.jp-Notebook')")
    browser.screenshot(ARTIFACTS / "login.png")

    browser.navigate(f"{base_url}/lab/tree/{NOTEBOOK}?token={token}")
    browser.wait_for(
        f"document.querySelectorAll('.jp-Notebook .jp-CodeCell').length === {CODE_CELLS}",
        90,
        "JupyterLab to open the notebook",
    )
    wait_until(
        lambda: kernel_state(base_url, token) == "idle",
        90,
        "the notebook's kernel to start",
    )
    previous = max(
        [int(p[1:-2]) for p in browser.evaluate(PROMPTS) if p[1:-2].isdigit()], default=0
    )
    browser.click(
        "Array.from(document.querySelectorAll('.lm-MenuBar-item'))"
        ".find(e => e.textContent.trim() === 'Run')",
        "the Run menu",
    )
    browser.click(
        "document.querySelector('.lm-Menu-item[data-command=\"runmenu:run-all\"]')",
        "Run All Cells",
    )
    # Done when every prompt holds an execution count, in order, all newer than any count
    # before the run (a kernel that already ran cells keeps counting).
    browser.wait_for(
        f"(() => {{ const counts = {PROMPTS}"
        ".map(t => Number((t.match(/^\\[(\\d+)\\]:$/) || [])[1]));"
        f" return counts.length === {CODE_CELLS} && counts[0] > {previous}"
        " && counts.every((c, i) => i === 0 || c > counts[i - 1]); })()"
        f" && {IMAGES} >= 2",
        240,
        "every cell to run and both figures to render",
        interval=1,
    )
    errors = browser.evaluate(
        "Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))"
        ".filter(e => e.dataset.mimeType === 'application/vnd.jupyter.stderr'"
        " && /Error|Traceback/.test(e.textContent)).map(e => e.textContent)"
    )
    assert errors == []
    # textContent: cells scrolled out of view are not laid out, so innerText skips them.
    text = browser.evaluate("document.querySelector('.jp-Notebook').textContent")
    assert "Asian calls cheaper than European calls everywhere: True" in text

    # The price contours, then the timings chart, each scrolled into view.
    for index, name in enumerate(("monte-carlo-contours.png", "monte-carlo-timings.png")):
        browser.evaluate(
            "document.querySelectorAll('.jp-Notebook .jp-RenderedImage img')"
            f"[{index}].scrollIntoView({{block: 'start'}})"
        )
        browser.wait_for(f"{IMAGES} >= 2", 10, "the figures after scrolling")
        shot = browser.screenshot(ARTIFACTS / name)
        assert shot.stat().st_size > 50_000, f"{shot} looks blank"
