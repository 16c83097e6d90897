"""``python -m blast_worker.healthcheck``: GET the worker's /healthz, print the JSON, and exit
0 when it answers 200, else 1. Reads ``BLAST_HEALTH_PORT`` (default 8080)."""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request


def check(port: int, timeout: float = 5.0) -> int:
    """Query ``http://127.0.0.1:<port>/healthz`` and print its answer.

    Args:
        port: The worker's health port.
        timeout: Seconds to wait for an answer.

    Returns:
        0 if healthy, 1 otherwise.
    """
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.read().decode() or json.dumps({"status": "unhealthy", "http": exc.code}))
        return 1
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(json.dumps({"status": "unreachable", "url": url, "error": str(reason)}))
        return 1


def main() -> None:
    """Entry point."""
    raw = os.environ.get("BLAST_HEALTH_PORT", "8080").strip() or "8080"
    try:
        port = int(raw)
    except ValueError:
        print(json.dumps({"status": "unhealthy", "error": f"BLAST_HEALTH_PORT={raw!r}"}))
        sys.exit(1)
    sys.exit(check(port))


if __name__ == "__main__":
    main()
