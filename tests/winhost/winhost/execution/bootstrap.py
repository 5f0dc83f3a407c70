"""ansible-core 2.19's bootstrap wrapper and exec wrapper, emulated.

Input (stdin lines or PSRP input objects), as module_manifest.py builds it:
1. a JSON line {"name": "exec_wrapper", "script": <exec_wrapper.ps1>, "params": {"MinOSVersion",
   "MinPSVersion", "TempPath"}}, then a line of four NUL characters;
2. the exec manifest JSON {"scripts": {name: {"script": b64, "path": ...}}, "actions": [{"name",
   "params", "secure_params"}, ...], "signed_hashlist": [...]}, optionally followed by another
   NUL line and input for the first action (file data for put).

The actions are run in order: become_wrapper.ps1 switches the effective user (runas), and the
last action does the work: module_wrapper.ps1 (a module, emulated in winhost.modules),
powershell_mkdtemp.ps1, powershell_expand_user.ps1, the builtin put/fetch scripts;
async_wrapper.ps1 runs the rest in the background (execution.async_job). Any other action
(coverage...) fails loudly. A failure inside the wrapper is reported as the exec
wrapper does: one JSON line {"failed": true, "msg": "failure during exec_wrapper: ...",
"exception": ...} on stdout and exit code 1.
"""

from __future__ import annotations

import functools
import json
import typing as t

from winhost.execution import async_job, become, transfer
from winhost.execution.context import ExecContext, expand_user
from winhost.execution.errors import WrapperFailure
from winhost.execution.process import ProgramIO
from winhost.execution.sandbox import SandboxError
from winhost.execution.transfer import ActionFailure
from winhost.modules import run_module_action

# The signature of a final action of the exec wrapper: (context, program io, the action's params,
# the manifest's scripts, the bootstrap's TempPath).
ActionHandler = t.Callable[
    [ExecContext, ProgramIO, dict[str, t.Any], dict[str, t.Any], "str | None"], None
]
# Most final actions need only their own params.
ParamsAction = t.Callable[[ExecContext, ProgramIO, dict[str, t.Any]], None]

NUL_LINE = "\0\0\0\0"


def _read_json_until_marker(io: ProgramIO, what: str) -> tuple[t.Any, bool]:
    """Read lines up to a NUL line or end of input; returns (parsed JSON, saw_marker)."""
    parts: list[str] = []
    saw_marker = False
    for line in io.lines():
        if str(line) == NUL_LINE:
            saw_marker = True
            break
        parts.append(str(line))
    text = "\n".join(parts)
    try:
        return json.loads(text), saw_marker
    except ValueError as err:
        raise WrapperFailure(
            f"winhost could not decode the {what} sent to the bootstrap wrapper as JSON ({err}); "
            f"input began with {text[:120]!r}"
        ) from err


def run_bootstrap(ctx: ExecContext, io: ProgramIO) -> None:
    try:
        bootstrap, saw_marker = _read_json_until_marker(io, "bootstrap manifest")
        if not (isinstance(bootstrap, dict) and bootstrap.get("name") == "exec_wrapper"):
            raise WrapperFailure(
                "winhost models ansible-core 2.19's bootstrap manifest (name 'exec_wrapper'); "
                f"got keys {sorted(bootstrap) if isinstance(bootstrap, dict) else type(bootstrap).__name__}"
            )
        if not saw_marker:
            raise WrapperFailure("the bootstrap input ended before the exec wrapper manifest")
        params = bootstrap.get("params") or {}
        manifest, _ = _read_json_until_marker(io, "exec wrapper manifest")
        if not isinstance(manifest, dict) or not isinstance(manifest.get("actions"), list):
            raise WrapperFailure("the exec wrapper manifest has no 'actions' list")
        _check_versions(params)
    except WrapperFailure as err:
        report_wrapper_failure(io, err.message, err.exception)
    run_wrapped(ctx, io, manifest, params.get("TempPath"))


def report_wrapper_failure(io: ProgramIO, message: str, exception: str) -> t.NoReturn:
    io.write(
        json.dumps(
            {
                "failed": True,
                "msg": f"failure during exec_wrapper: {message}",
                "exception": exception,
            },
            separators=(",", ":"),
        )
    )
    io.exit(1)


def _check_versions(params: dict[str, t.Any]) -> None:
    # The host is Windows PowerShell 5.1 on a 10.0 kernel: scripts needing more are refused the
    # way the exec wrapper refuses them.
    min_ps = params.get("MinPSVersion")
    if min_ps and _version_tuple(min_ps) > (5, 1):
        raise WrapperFailure(
            f"This module cannot run as it requires a minimum PowerShell version of {min_ps}, "
            'actual was "5.1.17763.1"'
        )
    min_os = params.get("MinOSVersion")
    if min_os and _version_tuple(min_os) > (10, 0, 17763):
        raise WrapperFailure(
            f"This module cannot run on this OS as it requires a minimum version of {min_os}, "
            "actual was 10.0.17763.1"
        )


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in str(text).split(".") if p.isdigit())


def run_actions(
    ctx: ExecContext, io: ProgramIO, manifest: dict[str, t.Any], temp_path: str | None
) -> None:
    scripts = manifest.get("scripts") or {}
    actions = list(manifest["actions"])
    while actions:
        action = actions.pop(0)
        name = str(action.get("name"))
        if name not in scripts:
            raise WrapperFailure(f"Could not find the script '{name}'.")
        params = dict(action.get("params") or {})
        secure = action.get("secure_params") or {}
        if name == "become_wrapper.ps1":
            ctx = become.become(ctx, params, secure)
            continue
        if name == "async_wrapper.ps1":
            async_job.start(
                ctx,
                io,
                params,
                actions,
                lambda job_ctx, job_io, rest: run_wrapped(
                    job_ctx, job_io, {"scripts": scripts, "actions": rest}, temp_path
                ),
            )
            return
        if actions:
            raise WrapperFailure(
                f"winhost does not model the exec-wrapper action '{name}' (it is followed by "
                f"{[a.get('name') for a in actions]}); modelled: become_wrapper.ps1 followed by "
                "module_wrapper.ps1, or one of " + ", ".join(sorted(_FINAL_ACTIONS))
            )
        handler = _FINAL_ACTIONS.get(name)
        if handler is None:
            raise WrapperFailure(
                f"winhost does not model the exec-wrapper action '{name}' (coverage and other "
                "wrappers are not emulated)"
            )
        handler(ctx, io, params, scripts, temp_path)
        return
    raise WrapperFailure("the exec wrapper manifest has no actions")


def run_wrapped(
    ctx: ExecContext, io: ProgramIO, manifest: dict[str, t.Any], temp_path: str | None
) -> None:
    """The exec wrapper running a manifest's actions: a failure is reported as its JSON."""
    try:
        run_actions(ctx, io, manifest, temp_path)
    except (WrapperFailure, ActionFailure) as err:
        exception = err.exception if isinstance(err, WrapperFailure) else err.message
        report_wrapper_failure(io, err.message, exception)


def _mkdtemp(ctx: ExecContext, io: ProgramIO, params: dict[str, t.Any]) -> None:
    directory = ctx.expand(str(params.get("Directory") or ""))
    name = str(params.get("Name") or "")
    try:
        parent = ctx.resolve(directory)
        target = ctx.resolve(directory.rstrip("\\/") + "\\" + name)
    except SandboxError as err:
        raise ActionFailure(err.message) from err
    if not parent.local.is_dir():
        raise ActionFailure(f"Could not find a part of the path '{target.win}'.")
    if target.local.exists():
        raise ActionFailure(f"An item with the specified name {target.win} already exists.")
    target.local.mkdir()
    io.write(target.win)


def _expand_user(ctx: ExecContext, io: ProgramIO, params: dict[str, t.Any]) -> None:
    io.write(expand_user(ctx, str(params.get("Path") or "")))


def _params_only(action: ParamsAction) -> ActionHandler:
    """An ActionHandler for an action that needs only its own params (not the manifest's
    scripts or the wrapper's TempPath)."""
    return lambda ctx, io, params, scripts, temp_path: action(ctx, io, params)


_FINAL_ACTIONS: dict[str, ActionHandler] = {
    "module_wrapper.ps1": run_module_action,
    "powershell_mkdtemp.ps1": _params_only(_mkdtemp),
    "powershell_expand_user.ps1": _params_only(_expand_user),
    "winrm_put_file.ps1": _params_only(functools.partial(transfer.builtin_put, psrp=False)),
    "psrp_put_file.ps1": _params_only(functools.partial(transfer.builtin_put, psrp=True)),
    "winrm_fetch_file.ps1": _params_only(transfer.builtin_winrm_fetch),
    "psrp_fetch_file.ps1": _params_only(transfer.builtin_psrp_fetch),
}
