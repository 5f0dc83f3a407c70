"""Run a real ansible-playbook for the module tests and read its results back as data.

The run gets its own working directory and environment: this repository's collection (the
installed build when WINOPS_COLLECTIONS_PATH is set, else build/dev) before the collections of
the `ansible` package, and the ansible.posix.json callback. Nothing secret is put in argv or
the environment (passwords stay in winhost's 0600 inventory).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def _collections_path() -> str:
    paths = [os.environ.get("WINOPS_COLLECTIONS_PATH") or str(REPO_ROOT / "build" / "dev")]
    for entry in sys.path:
        if (Path(entry) / "ansible_collections" / "ansible" / "windows").is_dir():
            paths.append(entry)
            break
    return os.pathsep.join(paths)


@dataclasses.dataclass
class PlaybookRun:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, t.Any] | None

    def task(self, host: str, name: str) -> t.Any:
        """The result of the task called `name` on `host` (with a .result dict)."""
        for play in (self.report or {}).get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name and host in task.get("hosts", {}):
                    return TaskResult(name, task["hosts"][host])
        raise AssertionError(f"task {name!r} did not run on {host}\n{self.describe()}")

    def stats(self, host: str) -> dict[str, int]:
        return (self.report or {}).get("stats", {}).get(host, {})

    def describe(self) -> str:
        lines = [f"$ {' '.join(self.command)} (rc={self.returncode})"]
        for play in (self.report or {}).get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    failed = result.get("failed") or result.get("unreachable")
                    lines.append(
                        f"  [{host}] {task['task']['name']}: {'FAILED' if failed else 'ok'}"
                    )
                    if failed:
                        lines.append(f"      {str(result.get('msg', ''))[:3000]}")
        if self.report is None:
            lines.append(f"stdout:\n{self.stdout[-4000:]}")
        if self.stderr.strip():
            lines.append(f"stderr:\n{self.stderr[-4000:]}")
        return "\n".join(lines)


@dataclasses.dataclass
class TaskResult:
    task: str
    result: dict[str, t.Any]


def run_playbook(playbook: Path, inventories: t.Sequence[Path], work_dir: Path) -> PlaybookRun:
    """Run `playbook`; never raises for a failed play (the caller asserts on the result)."""
    executable = Path(sys.executable).parent / "ansible-playbook"
    command = [str(executable), str(playbook)]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop("PYTHONPATH", None)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": _collections_path(),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOCAL_TEMP": str(work_dir / "ansible-local"),
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_TIMEOUT": "30",
        }
    )
    completed = subprocess.run(
        command, cwd=work_dir, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    start = completed.stdout.find("{")
    try:
        report = json.loads(completed.stdout[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        report = None
    return PlaybookRun(command, completed.returncode, completed.stdout, completed.stderr, report)
