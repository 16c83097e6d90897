"""``deployer local ...``: the local compose stack's helpers, used by ``make up``.

``deployer local secrets compose/.env`` creates the stack's env file with fresh
secrets (kept if it exists); ``deployer local wait`` follows the containers'
health until the stack is ready. Neither prints a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deployer import localstack
from deployer.cli import options as o
from deployer.cli.output import emit, err, guarded
from deployer.errors import DeployerError

app = typer.Typer(
    help="Helpers of the local compose stack (`make up` runs them).", no_args_is_help=True
)


@app.command("secrets")
@guarded("local secrets")
def secrets(
    env_file: Annotated[
        Path, typer.Argument(help="The stack's env file, normally compose/.env.")
    ] = Path("compose/.env"),
    output: o.OutputOpt = None,
) -> None:
    """Create the secret files (compose/secrets/, 0600) and the env file unless they exist
    (tokens survive restarts)."""
    created = localstack.ensure_env_file(env_file)
    emit(
        "local secrets",
        {"file": str(env_file), "created": created},
        output,
        lambda _: err.print(
            f"{'created' if created else 'kept'} {env_file} and "
            f"{localstack.secrets_dir_for(env_file)}/ (the local stack's settings and secrets)",
            markup=False,
        ),
    )


@app.command("wait")
@guarded("local wait")
def wait(
    project: Annotated[
        str | None,
        typer.Argument(help="Compose project name. Default: COMPOSE_PROJECT_NAME of --env-file."),
    ] = None,
    env_file: Annotated[
        Path, typer.Option("--env-file", help="The stack's env file, for the project name.")
    ] = Path("compose/.env"),
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds to wait before giving up.")
    ] = 180.0,
    output: o.OutputOpt = None,
) -> None:
    """Wait until every container is healthy (one-shot services exited 0), showing progress."""
    if project is None:
        found = localstack.read_env_file(env_file) if env_file.exists() else {}
        project = found.get("COMPOSE_PROJECT_NAME") or localstack.PROJECT_NAME
    lines: list[str] = []

    def report(line: str) -> None:
        lines.append(line)
        if line.startswith("["):  # progress; the final verdict becomes the error
            err.print(line, markup=False)

    if not localstack.wait_for_stack(project, timeout, report=report):
        raise DeployerError(
            lines[-1] if lines else f"the stack {project} is not healthy",
            hint="`make logs` shows why; `make down` stops the stack",
            code="StackUnhealthy",
        )
    emit(
        "local wait",
        {"project": project, "ready": True},
        output,
        lambda _: err.print(f"the stack {project} is ready", markup=False),
    )
