"""ansible-core 2.19's async exec-wrapper actions, emulated: async_wrapper.ps1 and
async_watchdog.ps1 (lib/ansible/executor/powershell), and the results file that
ansible.windows.async_status reads (modules/async_status.py).

A task with `async:` gets the manifest actions [become_wrapper.ps1], async_wrapper.ps1,
async_watchdog.ps1, module_wrapper.ps1. On Windows async_wrapper starts a new powershell.exe
outside the command's job (so it outlives the WinRS shell or the PSRP pool), writes the results
file `<AsyncDir>\\<AsyncJid>.<its own pid>` with started and not finished, waits for the new
process to signal that the watchdog began, and writes that same JSON as the command's output.
The watchdog runs the module in a runspace, waits at most `Timeout` seconds, and writes the
results file again: the module's result merged with finished, or a failure saying it timed out.

Here the new process is a `DetachedProcess` (a thread nothing reads and nothing ends: no
shell's deletion stops it) and the runspace another thread, ended through its ProgramIO when
the time is up, as Start-Sleep ends on a stop. Not modelled, and refused loudly: any action
between the watchdog and the module (coverage_wrapper.ps1). The startup timeout is never hit:
the emulated process starts at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import ntpath
import threading
import time
import typing as t
from pathlib import Path

from winhost.execution.context import ExecContext
from winhost.execution.errors import WrapperFailure
from winhost.execution.process import DetachedProcess, ProgramIO, run_program
from winhost.execution.sandbox import SandboxError
from winhost.execution.transfer import ActionFailure

# Process ids for the jid suffix and ansible_async_watchdog_pid: Windows hands out multiples
# of four (https://devblogs.microsoft.com/oldnewthing/20080228-00/?p=23283).
_PIDS = itertools.count(4104, 4)
# run_rest(ctx, io, actions): the exec wrapper running the manifest's remaining actions.
RunActions = t.Callable[[ExecContext, ProgramIO, list[dict[str, t.Any]]], None]
_PIDS_LOCK = threading.Lock()


def _next_pid() -> int:
    with _PIDS_LOCK:
        return next(_PIDS)


def start(
    ctx: ExecContext,
    io: ProgramIO,
    params: dict[str, t.Any],
    rest: list[dict[str, t.Any]],
    run_rest: RunActions,
) -> None:
    """async_wrapper.ps1: the results file, the watchdog started, its first JSON written.

    `rest` are the manifest's actions after async_wrapper.ps1; `run_rest(ctx, io, actions)`
    runs actions as the exec wrapper does (a failure reported as its JSON, not raised)."""
    names = [str(action.get("name")) for action in rest]
    if names != ["async_watchdog.ps1", "module_wrapper.ps1"]:
        raise WrapperFailure(
            f"winhost models async_wrapper.ps1 followed by async_watchdog.ps1 and "
            f"module_wrapper.ps1 only; this manifest follows it with {names}"
        )
    timeout = _int_param(rest[0].get("params") or {}, "Timeout", "async_watchdog.ps1")
    async_dir = ctx.expand(str(params.get("AsyncDir") or ""))
    jid = str(params.get("AsyncJid") or "")
    if not async_dir or not jid:
        raise WrapperFailure("async_wrapper.ps1 needs its AsyncDir and AsyncJid parameters")
    try:
        directory = ctx.resolve(async_dir)
        local_jid = f"{jid}.{_next_pid()}"
        # [Path]::Combine, as async_status joins them to read the file back.
        results = ctx.resolve(ntpath.join(async_dir, local_jid))
    except SandboxError as err:
        raise ActionFailure(err.message) from err
    directory.local.mkdir(parents=True, exist_ok=True)
    first = {
        "started": True,
        "finished": False,
        "results_file": results.win,
        "ansible_job_id": local_jid,
        "_ansible_suppress_tmpdir_delete": True,
        "ansible_async_watchdog_pid": _next_pid(),
    }
    first_json = json.dumps(first, separators=(",", ":"))
    # [File]::WriteAllText with UTF8Encoding($false): no byte order mark. Written before the
    # watchdog starts, which reads it.
    results.local.write_text(first_json, encoding="utf-8")
    job = _Watchdog(
        ctx=dataclasses.replace(ctx, env=dict(ctx.env)),
        module_actions=rest[1:],
        run_rest=run_rest,
        result=first,
        results_file=results.local,
        timeout=timeout,
    )
    DetachedProcess(job.run, f"async {local_jid}", ctx.host.computer_name)
    io.write(first_json)


def _int_param(params: dict[str, t.Any], name: str, action: str) -> int:
    try:
        return int(params[name])
    except (KeyError, TypeError, ValueError) as err:
        raise WrapperFailure(f"{action} needs an integer {name}, got {params.get(name)!r}") from err


@dataclasses.dataclass
class _Watchdog:
    """async_watchdog.ps1 in its own process: runs the module, waits, writes the results."""

    ctx: ExecContext
    module_actions: list[dict[str, t.Any]]
    run_rest: RunActions
    result: dict[str, t.Any]
    results_file: Path  # in the sandbox
    timeout: int

    def run(self, io: ProgramIO) -> None:
        module_io = ProgramIO()
        # The watchdog completes the runspace's input: the module reads no input of its own.
        module_io.feed_objects([], end=True)
        threading.Thread(
            target=run_program,
            args=(self._run_module, module_io),
            name="winhost-async module",
            daemon=True,
        ).start()
        output, finished = self._collect(module_io)
        result = {**self.result, "finished": True}
        try:
            if not finished:
                # The watchdog's process ends, and the module's runspace with it.
                module_io.terminate()
                raise _WatchdogError("timed out waiting for module completion")
            result = _merged(result, _module_result(output))
        except _WatchdogError as err:
            result.update(
                failed=True,
                msg=f"failure during async watchdog: {err}",
                exception=str(err),
                # The module's output only when it ended: $jobOutput is set after EndInvoke.
                stdout=output if finished else None,
                stderr="",
            )
        # Set-Content -Encoding UTF8 in Windows PowerShell 5.1 writes a byte order mark.
        self.results_file.write_text(
            json.dumps(result, separators=(",", ":")) + "\r\n", encoding="utf-8-sig"
        )

    def _run_module(self, module_io: ProgramIO) -> None:
        self.run_rest(self.ctx, module_io, self.module_actions)

    def _collect(self, module_io: ProgramIO) -> tuple[str, bool]:
        """The module's output as Out-String joins it, and whether it ended in time."""
        deadline = time.monotonic() + self.timeout
        lines: list[str] = []
        while True:
            out, _, _, finished = module_io.take(max(0.0, deadline - time.monotonic()))
            lines.extend(str(line) for line in out)
            if finished:
                return "\r\n".join(lines), True
            if time.monotonic() >= deadline:
                return "\r\n".join(lines), False


class _WatchdogError(Exception):
    pass


def _merged(result: dict[str, t.Any], module_result: dict[str, t.Any]) -> dict[str, t.Any]:
    """`$result + $moduleResult`: adding hashtables fails on a key both hold (their keys are
    case-insensitive)."""
    held = {key.casefold() for key in result}
    for key in module_result:
        if key.casefold() in held:
            raise _WatchdogError(
                f"Item has already been added. Key in dictionary: '{key}'  Key being added: '{key}'"
            )
    return {**result, **module_result}


def _module_result(output: str) -> dict[str, t.Any]:
    """The JSON between the first '{' and the last '}' of the module's output, as the
    watchdog cuts it out."""
    start = output.find("{")
    if start == -1:
        raise _WatchdogError("No start of json char found in module result")
    end = output.rfind("}")
    if end < start:
        raise _WatchdogError("No end of json char found in module result")
    try:
        parsed = json.loads(output[start : end + 1])
    except ValueError as err:
        raise _WatchdogError(f"the module's result is not JSON: {err}") from err
    if not isinstance(parsed, dict):
        raise _WatchdogError("the module's result is not a JSON object")
    trailing = output[end + 1 :].strip()
    if trailing:
        parsed.setdefault("warnings", []).append(
            f"Module invocation had junk after the JSON data: {trailing}"
        )
    return parsed
