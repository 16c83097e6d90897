"""The benches' shared command line (testbed.bench): typer options, and --smoke overriding them."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from testbed.bench import command

Seen = dict[str, object]


def bench(seen: Seen) -> typer.Typer:
    """A bench of three options whose main records what it was given; smoke sets two."""

    def main(
        jobs: Annotated[int, typer.Option(help="jobs per run")] = 8,
        scale_in_after: str = "10s",
        paths: Annotated[list[int] | None, typer.Option(help="paths per cell")] = None,
    ) -> None:
        seen.update(jobs=jobs, scale_in_after=scale_in_after, paths=paths)

    return command(main, smoke={"jobs": 2, "paths": [500]})


def invoke(args: list[str]) -> tuple[int, str, Seen]:
    seen: Seen = {}
    # Wide, so no help text wraps.
    result = CliRunner().invoke(bench(seen), args, env={"COLUMNS": "200"})
    return result.exit_code, result.output, seen


def test_without_smoke_the_command_line_and_defaults_hold() -> None:
    code, _, seen = invoke(["--jobs", "5", "--paths", "1", "--paths", "2"])
    assert code == 0
    assert seen == {"jobs": 5, "scale_in_after": "10s", "paths": [1, 2]}


def test_smoke_overrides_its_options_and_leaves_the_others() -> None:
    code, _, seen = invoke(["--smoke", "--jobs", "5", "--scale-in-after", "3s"])
    assert code == 0
    assert seen == {"jobs": 2, "scale_in_after": "3s", "paths": [500]}


def test_help_has_every_option_and_the_module_docstring() -> None:
    code, output, seen = invoke(["--help"])
    assert code == 0 and not seen
    for text in ("--jobs", "--scale-in-after", "--paths", "--smoke", "jobs per run"):
        assert text in output
    assert "The benches' shared command line" in output


def test_a_bad_value_is_a_usage_error() -> None:
    code, _, seen = invoke(["--jobs", "many"])
    assert code == 2 and not seen


def test_a_smoke_key_that_is_no_option_fails_before_any_run() -> None:
    def main(jobs: int = 8) -> None:
        raise AssertionError("never run")

    with pytest.raises(AssertionError, match="--smoke sets job, which is no option"):
        command(main, smoke={"job": 2})
