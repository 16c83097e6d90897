"""The one renderer: rich tables and progress for people, a JSON envelope for programs.

``--output text|json`` is accepted before the command (``deployer --output json
status``) and after it; the flag after the command wins. JSON is the envelope every command
line of the project prints, ``{"command", "ok", "data", "error"}`` (defined once in
:mod:`blast_client.cli.output`, which ``blast-jobs`` uses too).

Errors: a :class:`~deployer.errors.DeployerError` prints one line (and its hint) to
stderr, also as an envelope on stdout with ``--output json`` (its ``data`` the error's
partial result, or null), and exits with its code. An Azure SDK or BLAST client error that
reached the command untranslated gets the same treatment through
:func:`deployer.hints.user_error` (Azure's refusals are the user's to fix: a missing sign-in,
role or resource); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import typer
from azure.core.exceptions import AzureError as SdkError
from blast_client import BlastClientError
from blast_client.cli.output import Output, envelope_text, output_format
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from deployer import api, hints
from deployer.errors import DeployerError
from deployer.run.billing import Bill

P = ParamSpec("P")
R = TypeVar("R")


def _console(stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        # Pipes and logs get whole table rows instead of an 80-column wrap.
        console = Console(stderr=stderr, highlight=False, soft_wrap=True, width=160)
    return console


out = _console(stderr=False)
err = _console(stderr=True)


def envelope(command: str, result: Any = None, error: DeployerError | None = None) -> str:
    """Return the JSON envelope every command prints with ``--output json``.

    Args:
        command: The command, e.g. ``run status``.
        result: The result (dataclasses become objects); on failure the partial result.
        error: The error, or None on success.
    """
    return envelope_text(command, api.as_dict(result), error)


def guarded(command: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Resolve ``--output``, and turn a :class:`DeployerError` into one message on
    stderr (plus the JSON envelope with ``--output json``) and its exit code."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def run(*args: P.args, **kwargs: P.kwargs) -> R:
            if "output" in kwargs:
                kwargs["output"] = output_format(kwargs["output"])  # type: ignore[arg-type]
            try:
                return fn(*args, **kwargs)
            except (DeployerError, BlastClientError, SdkError) as caught:
                workload = kwargs.get("file") or kwargs.get("workload")
                exc = hints.user_error(caught, str(workload) if workload else None)
                fmt = kwargs.get("output", Output.text)
                if fmt == Output.json:
                    print(envelope(command, exc.data, exc))
                err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
                raise typer.Exit(int(exc.exit_code)) from None

        return run

    return wrap


def emit(command: str, result: Any, fmt: Output | None, human: Callable[[Any], None]) -> None:
    """Print ``result``: the JSON envelope, or ``human(result)``."""
    if fmt == Output.json:
        print(envelope(command, result))
    else:
        human(result)


@dataclass
class ProgressPrinter:
    """Progress per group: a live table on a TTY, plain lines on stderr otherwise.

    Args:
        title (str): What is happening, e.g. ``up demo``.
        live (bool | None): Force live mode on or off. Default: stderr is a TTY.
    """

    title: str
    live: bool | None = None
    states: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _live: Live | None = None
    _start: float = field(default_factory=time.monotonic)

    def __enter__(self) -> ProgressPrinter:
        if self.live if self.live is not None else err.is_terminal:
            self._live = Live(self._table(), console=err, refresh_per_second=4, transient=False)
            self._live.__enter__()
        else:
            err.print(f"{self.title}", markup=False)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(kind, exc, tb)

    def __call__(self, group: str, status: str) -> None:
        """Record that ``group`` reached ``status``."""
        with self._lock:
            self.states[group] = status
            if self._live is not None:
                self._live.update(self._table())
            else:
                elapsed = time.monotonic() - self._start
                err.print(f"[{elapsed:6.1f}s] {group}: {status}", markup=False)

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", box=None)
        table.add_column("group")
        table.add_column("status")
        for name in sorted(self.states):
            status = self.states[name]
            style = (
                "green"
                if status in ("ready", "deleted")
                else ("red" if status.startswith("failed") else "yellow")
            )
            table.add_row(name, f"[{style}]{escape(status)}[/]")
        return table


def with_progress(title: str, fmt: Output | None, fn: Callable[[ProgressPrinter], R]) -> R:
    """Run ``fn`` with a progress printer (on stderr, also in json mode)."""
    with ProgressPrinter(title, live=False if fmt == Output.json else None) as progress:
        return fn(progress)


def bill_table(bill: Bill) -> Table:
    """The bill: per group its seconds, vCPU-seconds, GB-seconds and cost, and the total."""
    table = Table(box=None, title="billed", title_justify="left")
    left = ("group", "kind", "priority", "location")
    for col in (*left, "seconds", "vCPU-s", "GB-s", "cost"):
        table.add_column(col, justify="left" if col in left else "right")
    for line in bill.lines:
        table.add_row(
            line.group,
            line.kind,
            line.priority,
            line.location,
            f"{line.seconds:.0f}",
            f"{line.vcpu_seconds:.1f}",
            f"{line.gb_seconds:.1f}",
            f"{line.cost:.5f}",
        )
    table.add_row(
        "total",
        "",
        "",
        "",
        "",
        f"{bill.vcpu_seconds:.1f}",
        f"{bill.gb_seconds:.1f}",
        f"{bill.cost:.5f} {bill.currency}",
    )
    return table
