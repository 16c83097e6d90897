"""The deployer installs and runs from a clean virtualenv, as README's install line says.

``pip install ./images/blast-client .`` (blast-client is not on PyPI), then ``deployer
--help`` and an offline ``deployer plan`` of an example. The install works on a copy of the
files the deployer image's build context holds too (images/images.toml ``sources``), so the
repository stays clean and a file the package needs but does not ship is caught. No Docker;
it needs the package index (pip's cache makes it quick).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "deployer", "images/blast-client")
EXAMPLE = "examples/cluster.yaml"


def _copy_sources(to: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    for name in SOURCES:
        source, target = REPO / name, to / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=skip)
        else:
            shutil.copy2(source, target)
    (to / EXAMPLE).parent.mkdir(parents=True)
    shutil.copy2(REPO / EXAMPLE, to / EXAMPLE)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def test_pip_install_in_a_clean_virtualenv_gives_a_working_deployer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _copy_sources(src)
    venv = tmp_path / "venv"
    started = time.monotonic()
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path, dict(os.environ))
    # pip keeps this machine's index, proxy CA and cache settings.
    pip_env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    _run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "./images/blast-client", "."],
        src,
        pip_env,
    )
    installed = time.monotonic() - started
    _run([str(venv / "bin" / "pip"), "check"], src, pip_env)  # every requirement is met

    # The deployer runs with nothing from this environment: no Azure scope, no storage.
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DEPLOYER_STATE_DIR": str(tmp_path / "state"),
        # Should anything try a managed identity, it must not reach 169.254.169.254.
        "AZURE_POD_IDENTITY_AUTHORITY_HOST": "http://127.0.0.1:9",
    }
    deployer = str(venv / "bin" / "deployer")
    shown = _run([deployer, "--help"], src, env)
    assert "Usage: deployer" in shown.stdout
    planned = _run([deployer, "plan", EXAMPLE, "--offline", "--output", "json"], src, env)
    doc = json.loads(planned.stdout)
    assert doc["ok"] is True
    kinds = {g["workload"] for g in doc["data"]["groups"]}
    assert kinds == {"ipyparallel", "blast"}, kinds
    print(f"clean venv and pip install: {installed:.1f} s")
