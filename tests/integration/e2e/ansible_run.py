"""Run real `ansible-playbook` processes against winhost and read their results.

Shared by the end-to-end tests, tests/demo.py and benchmarks/run.py. Each run gets its own
working directory (no ansible.cfg is picked up from the caller's directory), the collections of
this repository (the installed build when WINOPS_COLLECTIONS_PATH is set, else build/dev) plus
those of the `ansible` package, and the `ansible.posix.json` callback so that every task's
result per host can be read back as data.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
import sys
import time
import typing as t
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK_DIR = Path(__file__).resolve().parent / "playbooks"


def collections_path() -> str:
    """Our collection first, then the collections shipped in the `ansible` package."""
    ours = os.environ.get("WINOPS_COLLECTIONS_PATH") or str(REPO_ROOT / "build" / "dev")
    paths = [ours]
    for entry in sys.path:
        candidate = Path(entry) / "ansible_collections"
        if (candidate / "ansible" / "windows").is_dir():
            paths.append(str(Path(entry)))
            break
    return os.pathsep.join(paths)


def ansible_playbook_executable() -> Path:
    """The virtualenv's ansible-playbook (the one next to this interpreter, else .venv's)."""
    beside_python = Path(sys.executable).parent / "ansible-playbook"
    if beside_python.exists():
        return beside_python
    return REPO_ROOT / ".venv" / "bin" / "ansible-playbook"


def ansible_environment(work_dir: Path) -> dict[str, str]:
    """The environment of one ansible-playbook run; nothing secret is put in it."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ANSIBLE_") and key not in {"PYTHONPATH"}
    }
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": collections_path(),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
            "ANSIBLE_LOCAL_TEMP": str(work_dir / "ansible-local"),
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
            "ANSIBLE_SYSTEM_WARNINGS": "false",
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "ANSIBLE_TIMEOUT": "30",
        }
    )
    return env


@dataclasses.dataclass
class TaskResult:
    """One task's result for one host."""

    task: str
    result: dict[str, t.Any]

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed") or self.result.get("unreachable"))

    @property
    def message(self) -> str:
        parts = [str(self.result.get("msg", ""))]
        for key in ("stderr", "module_stderr", "exception"):
            if self.result.get(key):
                parts.append(str(self.result[key]))
        return "\n".join(part for part in parts if part)


@dataclasses.dataclass
class PlaybookRun:
    """What one ansible-playbook process did."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report: dict[str, t.Any] | None

    def tasks(self, host: str) -> list[TaskResult]:
        """Every task result for `host`, in order, as the json callback recorded them."""
        if self.report is None:
            return []
        found = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                result = task.get("hosts", {}).get(host)
                if result is not None:
                    found.append(TaskResult(task["task"]["name"], result))
        return found

    def task(self, host: str, name: str) -> TaskResult:
        for result in self.tasks(host):
            if result.task == name:
                return result
        raise AssertionError(f"task {name!r} did not run on {host}\n{self.describe()}")

    def task_seconds(self, name: str) -> float:
        """Wall time of the task called `name` (first play that ran it), from the callback."""
        for play in (self.report or {}).get("plays", []):
            for task in play.get("tasks", []):
                if task["task"]["name"] == name:
                    duration = task["task"]["duration"]
                    start = datetime.datetime.fromisoformat(duration["start"].rstrip("Z"))
                    end = datetime.datetime.fromisoformat(duration["end"].rstrip("Z"))
                    return (end - start).total_seconds()
        raise AssertionError(f"task {name!r} did not run\n{self.describe()}")

    def first_failure(self, host: str) -> TaskResult | None:
        for result in self.tasks(host):
            if result.failed and not result.result.get("ignore_errors"):
                return result
        return None

    def stats(self, host: str) -> dict[str, int]:
        """The play recap counters of `host` (ok, changed, failures, unreachable...)."""
        if self.report is None:
            return {}
        return self.report.get("stats", {}).get(host, {})

    def describe(self, host: str | None = None) -> str:
        """A readable account of the run for assertion messages (of one host's tasks only, for
        a run over several hosts, if `host` is given)."""
        lines = [f"$ {' '.join(self.command)}  (rc={self.returncode}, {self.seconds:.1f}s)"]
        if self.report is None:
            lines.append(f"stdout (not JSON):\n{self.stdout[-4000:]}")
        else:
            for play in self.report.get("plays", []):
                for task in play.get("tasks", []):
                    for name, result in task.get("hosts", {}).items():
                        if host is not None and name != host:
                            continue
                        state = (
                            "UNREACHABLE"
                            if result.get("unreachable")
                            else "FAILED"
                            if result.get("failed")
                            else "ok"
                        )
                        lines.append(f"  [{name}] {task['task']['name']}: {state}")
                        if state != "ok":
                            lines.append(f"      {TaskResult('', result).message[:3000]}")
        if self.stderr.strip():
            lines.append(f"stderr:\n{self.stderr[-4000:]}")
        return "\n".join(lines)


def _parse_report(stdout: str) -> dict[str, t.Any] | None:
    start = stdout.find("{")
    if start < 0:
        return None
    try:
        return json.loads(stdout[start:])
    except json.JSONDecodeError:
        return None


def run_playbook(
    playbook: Path | str,
    inventories: t.Sequence[Path],
    work_dir: Path,
    extra_vars: dict[str, t.Any] | None = None,
    *,
    forks: int = 5,
    timeout: float = 900,
    check: bool = False,
    environment: t.Mapping[str, str] | None = None,
) -> PlaybookRun:
    """Run `playbook` (a path, or a collection playbook's FQCN such as winops.remoting.setup)
    and return its parsed result, in check mode (--check --diff) if asked; never raises for a
    failed play. `environment` adds to the controller's environment (a shifted clock, say)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    command = [str(ansible_playbook_executable()), str(playbook), "--forks", str(forks)]
    if check:
        command += ["--check", "--diff"]
    for inventory in inventories:
        command += ["-i", str(inventory)]
    if extra_vars:
        vars_file = work_dir / "extra-vars.json"
        vars_file.write_text(json.dumps(extra_vars))
        command += ["-e", f"@{vars_file}"]
    started = time.monotonic()
    completed = subprocess.run(
        command,
        cwd=work_dir,
        env={**ansible_environment(work_dir), **(environment or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return PlaybookRun(
        command=command,
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
        seconds=time.monotonic() - started,
        report=_parse_report(completed.stdout),
    )


def write_private_yaml(path: Path, data: t.Any) -> Path:
    """Write an inventory (or any YAML) readable only by this user: it may name key paths
    or, for callers that build a whole inventory, hold passwords."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


def write_overlay(path: Path, hosts: dict[str, dict[str, t.Any]]) -> Path:
    """An inventory overlay setting these host variables; used after winhost's inventory,
    whose values for the same hosts it overrides."""
    return write_private_yaml(path, {"all": {"hosts": hosts}})
