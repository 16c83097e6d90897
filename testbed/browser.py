"""A minimal headless-Chromium driver over the Chrome DevTools protocol, for the notebook UI
test: navigate, evaluate JavaScript, click with real mouse events, take screenshots.

It starts Debian's ``/usr/bin/chromium`` with a fresh profile and the flags that keep it off
the network (no sync, no component updates, no QUIC), and never downloads a browser.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--hide-scrollbars",
)


class BrowserError(RuntimeError):
    """Chromium did not start, a page script threw, or a wait timed out."""


class Chromium:
    """One headless Chromium with one page, driven over DevTools.

    Args:
        width (int): Window width in CSS pixels.
        height (int): Window height in CSS pixels.
        start_timeout (float): Seconds to wait for the DevTools endpoint.
    """

    def __init__(self, width: int = 1400, height: int = 1000, start_timeout: float = 30) -> None:
        if not Path(CHROMIUM).exists():
            raise BrowserError(f"{CHROMIUM} not found: install Debian's chromium package")
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-test-"))
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                *QUIET_FLAGS,
                f"--user-data-dir={self.profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._ids = itertools.count(1)
        try:
            self.ws = self._connect(start_timeout)
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _connect(self, timeout: float) -> websocket.WebSocket:
        # Chromium writes the port it chose into the profile once DevTools listens.
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.is_file() or not port_file.read_text().strip():
            if self.proc.poll() is not None:
                raise BrowserError(f"chromium exited with {self.proc.returncode} at start")
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium's DevTools did not start within {timeout:.0f} s")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            targets = json.load(r)
        (page,) = [t for t in targets if t["type"] == "page"][:1]
        return websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=60, suppress_origin=True
        )

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a DevTools method and return its result, skipping events meanwhile.

        Args:
            method (str): E.g. ``Page.navigate``.
            **params (Any): The method's parameters.
        """
        call_id = next(self._ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value.

        Args:
            expression (str): The expression.
        """
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        return result["result"].get("value")

    def navigate(self, url: str) -> None:
        """Open a URL in the page.

        Args:
            url (str): The address.
        """
        self.send("Page.navigate", url=url)

    def wait_for(self, expression: str, timeout: float, what: str, interval: float = 0.25) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value.

        Args:
            expression (str): The expression.
            timeout (float): Seconds to wait.
            what (str): What is awaited, for the error message.
            interval (float): Seconds between polls.
        """
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(BrowserError):  # a page between navigations
                value = self.evaluate(expression)
                if value:
                    return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(interval)

    def click(self, element: str, what: str, timeout: float = 30) -> None:
        """Click the centre of an element with real mouse events (Lumino menus need them).

        Args:
            element (str): A JavaScript expression giving the element (or null).
            what (str): The element's description, for the error message.
            timeout (float): Seconds to wait for the element to appear.
        """
        box = self.wait_for(
            f"(() => {{ const e = {element}; if (!e) return null;"
            " const r = e.getBoundingClientRect();"
            " return r.width ? {x: r.x + r.width / 2, y: r.y + r.height / 2} : null; })()",
            timeout,
            what,
        )
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box["x"],
                y=box["y"],
                button="left",
                buttons=1 if kind == "mousePressed" else 0,
                clickCount=1,
            )

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the visible page.

        Args:
            path (Path): Where to write it; parents are created.
        """
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop Chromium and remove its profile."""
        with contextlib.suppress(Exception):
            self.ws.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
