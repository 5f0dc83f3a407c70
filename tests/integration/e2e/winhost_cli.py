"""Drive winhost through its command line, for tests/demo.py and benchmarks/run.py.

The pytest fixture of tests/integration/conftest.py does the same for tests; scripts outside
pytest use this: `python -m winhost start|stop|state|fault --state-dir DIR ...` with
tests/winhost on PYTHONPATH, exactly as a user would run it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import typing as t
from pathlib import Path

from ansible_run import REPO_ROOT

WINHOST_PATH = REPO_ROOT / "tests" / "winhost"


class WinhostError(RuntimeError):
    """The winhost command line failed; the message holds its command and output."""


def _winhost(state_dir: Path, *args: str, timeout: float = 120) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(WINHOST_PATH), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    command = [sys.executable, "-m", "winhost", args[0], "--state-dir", str(state_dir), *args[1:]]
    completed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise WinhostError(
            f"{' '.join(command)} exited {completed.returncode}\n"
            f"{completed.stdout[-2000:]}{completed.stderr[-2000:]}"
        )
    return completed.stdout


def start(
    state_dir: Path, hosts: int = 1, profile: str | None = None, latency: str | None = None
) -> Path:
    """Start winhost; returns the inventory it wrote. `latency` names a winhost.latency
    profile (what Windows' set-up steps cost, slept by winhost)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    args = ["start", "--hosts", str(hosts)]
    if profile:
        args += ["--profile", profile]
    if latency:
        args += ["--latency", latency]
    _winhost(state_dir, *args)
    inventory = state_dir / "inventory.yml"
    if not inventory.is_file():
        raise WinhostError(f"winhost start did not write {inventory}")
    return inventory


def stop(state_dir: Path) -> None:
    _winhost(state_dir, "stop")


def state(state_dir: Path, host: str) -> dict[str, t.Any]:
    """The JSON view of `host`, asked over winhost's control socket (no process per call,
    so benchmarks can read counters between runs cheaply)."""
    if str(WINHOST_PATH) not in sys.path:
        sys.path.insert(0, str(WINHOST_PATH))
    from winhost import cli

    return cli.get_state(state_dir, host)


@contextlib.contextmanager
def running(
    state_dir: Path, hosts: int = 1, profile: str | None = None, latency: str | None = None
) -> t.Iterator[Path]:
    """winhost for the duration of a block; stopped even when the block fails."""
    inventory = start(state_dir, hosts, profile, latency)
    try:
        yield inventory
    finally:
        stop(state_dir)
