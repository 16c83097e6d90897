"""JSON-lines logging on stdout; every line carries the current job id (or null).

The job id lives in a context variable so that threads started for a job (downloads,
visibility extension) can copy it with ``contextvars.copy_context``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_job", default=None
)
_worker_id: str | None = None


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: ts, level, logger, msg, job, worker, extras."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line.

        Args:
            record: The log record; keys given through ``extra={"fields": {...}}`` are merged.
        """
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "job": getattr(record, "job", None) or current_job.get(),
            "worker": _worker_id,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                doc.setdefault(key, value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup(worker_id: str | None = None, level: int = logging.INFO) -> None:
    """Send all logging to stdout as JSON lines.

    Args:
        worker_id: Added to every line as ``worker``.
        level: Root log level.
    """
    global _worker_id
    _worker_id = worker_id
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The Azure SDK logs every HTTP request at INFO; keep only its warnings.
    logging.getLogger("azure").setLevel(logging.WARNING)


@contextlib.contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Tag log lines written inside the block with ``job_id``.

    Args:
        job_id: The job id, or None.
    """
    token = current_job.set(job_id)
    try:
        yield
    finally:
        current_job.reset(token)


def kv(**fields: Any) -> dict[str, Any]:
    """Build the ``extra`` argument that adds ``fields`` to a JSON log line.

    Args:
        fields: Extra keys for the line.
    """
    return {"fields": fields}
