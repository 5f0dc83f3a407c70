"""ansible.windows.win_shell, win_command and win_whoami.

win_shell and win_command build the command line the real modules build and run it through the
same emulation as a WinRS command (winhost.execution.native), so they model exactly the raw
commands winhost models: anything else fails as PowerShell (win_shell) or CreateProcess
(win_command) reports it.
"""

from __future__ import annotations

import datetime
import typing as t

from winhost.execution.commandline import encode_command
from winhost.execution.context import is_system
from winhost.execution.errors import render_clixml
from winhost.execution.native import ExecutableNotFound, run_process
from winhost.execution.process import ExitRequested, ProgramIO
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.files import legacy_param, resolve


def _capture(
    run: ModuleRun, start: t.Callable[[ProgramIO], None], stdin: str | None
) -> tuple[int, str, str]:
    io = ProgramIO()
    io.feed_text(stdin or "", end=True)
    try:
        start(io)
    except ExitRequested:
        pass
    out, errors, raw, _finished = io.take(0)
    stdout = "".join(f"{line}\r\n" for line in out)
    rendered = [e.render() for e in errors]
    if io.clixml_errors and rendered:
        stderr = render_clixml(rendered).decode("utf-8")
    else:
        stderr = "".join(f"{r}\r\n" for r in rendered)
    stderr += "".join(f"{line}\r\n" for line in raw)
    rc = io.exit_code if io.exit_code is not None else (1 if errors else 0)
    return rc, stdout, stderr


def _clean_clixml(stderr: str) -> str:
    """win_shell's Format-Stderr: the error lines of a CLIXML block, CRLF escapes dropped."""
    if "#< CLIXML" not in stderr:
        return stderr
    import re
    from xml.etree import ElementTree as ET

    match = re.search(r"(?s)(.*)#< CLIXML(.*?)(<Objs.+</Objs>)(.*)", stderr)
    if not match:
        return stderr
    root = ET.fromstring(match.group(3))
    lines = [
        (el.text or "").replace("_x000D__x000A_", "")
        for el in root
        if el.tag.endswith("}S") and el.get("S") == "Error"
    ]
    return (match.group(1) + match.group(2) + "\r\n".join(lines) + "\r\n" + match.group(4)).strip()


def _timed(result: dict[str, t.Any], began: datetime.datetime) -> None:
    ended = datetime.datetime.now(datetime.UTC)
    result["start"] = began.strftime("%Y-%m-%d %H:%M:%S.%f")
    result["end"] = ended.strftime("%Y-%m-%d %H:%M:%S.%f")
    delta = ended - began
    hours, rem = divmod(delta.total_seconds(), 3600)
    minutes, seconds = divmod(rem, 60)
    result["delta"] = f"{int(hours)}:{int(minutes):02d}:{seconds:09.6f}"


def _creates_removes(
    run: ModuleRun, cmd: str, creates: str | None, removes: str | None
) -> dict[str, t.Any] | None:
    if creates:
        target = resolve(run, creates)
        if target is not None and target.local.exists():
            return {
                "msg": f"skipped, since {creates} exists",
                "cmd": cmd,
                "changed": False,
                "skipped": True,
                "rc": 0,
            }
    if removes:
        target = resolve(run, removes)
        if target is None or not target.local.exists():
            return {
                "msg": f"skipped, since {removes} does not exist",
                "cmd": cmd,
                "changed": False,
                "skipped": True,
                "rc": 0,
            }
    return None


@register("ansible.windows.win_shell", None, supports_check_mode=False)
def win_shell(run: ModuleRun) -> dict[str, t.Any]:
    raw = str(legacy_param(run, "_raw_params", required=True)).strip()
    executable = legacy_param(run, "executable", type_="path")
    chdir = legacy_param(run, "chdir", type_="path")
    stdin = legacy_param(run, "stdin")
    skipped = _creates_removes(
        run,
        raw,
        legacy_param(run, "creates", type_="path"),
        legacy_param(run, "removes", type_="path"),
    )
    if skipped is not None:
        return skipped
    if chdir:
        run.ctx.cwd = chdir
    if not executable or executable == "powershell":
        script = "[Console]::InputEncoding = New-Object Text.UTF8Encoding `$false; " + raw
        args = f"-encodedcommand {encode_command(script)}"
        if not stdin:
            args = f"-noninteractive {args}"
        line = f'"powershell.exe" {args}'
    else:
        exe = executable if executable.lower().endswith(".exe") else f"{executable}.exe"
        line = f'"{exe}" /c {raw}'
    result: dict[str, t.Any] = {"changed": True, "cmd": raw}
    began = datetime.datetime.now(datetime.UTC)
    try:
        rc, stdout, stderr = _capture(run, lambda io: run_process(line, run.ctx, io), stdin)
    except ExecutableNotFound as err:
        result.update(changed=False, rc=2)
        raise ModuleFailure(
            f'Exception calling "SearchPath" with "1" argument(s): "Could not find file \'{err.name}\'."',
            **result,
        ) from err
    result.update(stdout=stdout, stderr=_clean_clixml(stderr), rc=rc)
    _timed(result, began)
    if rc != 0:
        raise ModuleFailure("non-zero return code", **result)
    return result


@register(
    "ansible.windows.win_command",
    {
        "_raw_params": Option(),
        "cmd": Option(),
        "argv": Option(type="list", elements="str"),
        "chdir": Option(type="path"),
        "creates": Option(type="path"),
        "removes": Option(type="path"),
        "stdin": Option(),
        "output_encoding_override": Option(),
    },
    supports_check_mode=False,
)
def win_command(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    provided = [k for k in ("_raw_params", "cmd", "argv") if params.get(k)]
    if len(provided) != 1:
        raise ModuleFailure(
            "parameters are mutually exclusive: _raw_params, cmd, argv"
            if provided
            else "one of the following is required: _raw_params, argv, cmd"
        )
    if params.get("argv"):
        line = " ".join(f'"{a}"' if " " in str(a) else str(a) for a in params["argv"])
    else:
        line = str(params.get("_raw_params") or params.get("cmd")).strip()
    skipped = _creates_removes(run, line, params.get("creates"), params.get("removes"))
    if skipped is not None:
        return skipped
    if params.get("chdir"):
        run.ctx.cwd = run.path(params["chdir"])
    result: dict[str, t.Any] = {"changed": True, "cmd": line}
    began = datetime.datetime.now(datetime.UTC)
    try:
        rc, stdout, stderr = _capture(
            run, lambda io: run_process(line, run.ctx, io), params.get("stdin")
        )
    except ExecutableNotFound as err:
        result.update(changed=False, rc=2)
        name = err.name if err.name.lower().endswith(".exe") else f"{err.name}.exe"
        raise ModuleFailure(
            f'Exception calling "SearchPath" with "1" argument(s): "Could not find file \'{name}\'."',
            **result,
        ) from err
    result.update(stdout=stdout, stderr=stderr, rc=rc)
    _timed(result, began)
    if rc != 0:
        raise ModuleFailure("non-zero return code", **result)
    return result


def _group(sid: str, domain: str, name: str, kind: str, enabled: bool) -> dict[str, t.Any]:
    attributes = (
        ["Mandatory", "Enabled by default", "Enabled"] if enabled else ["Use for deny only"]
    )
    return {
        "sid": sid,
        "domain_name": domain,
        "account_name": name,
        "type": kind,
        "attributes": attributes,
    }


def _token_groups(run: ModuleRun) -> list[dict[str, t.Any]]:
    """The groups of the token that matter to the roles' checks (win_whoami lists every group):
    a local account's carries NT AUTHORITY\\Local account (S-1-5-113) and, for a member of
    Administrators, Local account and member of Administrators group (S-1-5-114); BUILTIN\\
    Administrators is enabled only in a token UAC did not filter."""
    principal = run.ctx.principal
    if is_system(principal):
        return [_group("S-1-5-32-544", "BUILTIN", "Administrators", "Alias", True)]
    groups = []
    if principal.domain.upper() == run.ctx.host.computer_name.upper():
        groups.append(_group("S-1-5-113", "NT AUTHORITY", "Local account", "WellKnownGroup", True))
        if principal.is_admin:
            groups.append(
                _group(
                    "S-1-5-114",
                    "NT AUTHORITY",
                    "Local account and member of Administrators group",
                    "WellKnownGroup",
                    True,
                )
            )
    if principal.is_admin:
        elevated = principal.elevated is not False
        groups.append(_group("S-1-5-32-544", "BUILTIN", "Administrators", "Alias", elevated))
    return groups


@register("ansible.windows.win_whoami", {})
def win_whoami(run: ModuleRun) -> dict[str, t.Any]:
    principal = run.ctx.principal
    system = is_system(principal)
    account = {
        "account_name": principal.username,
        "domain_name": principal.domain,
        "sid": run.ctx.sid,
        "type": "WellKnownGroup" if system else "User",
    }
    return {
        "changed": False,
        "account": account,
        "login_domain": principal.domain,
        "user_flags": [],
        "impersonation_level": "SecurityAnonymous",
        "label": {
            "account_name": "System Mandatory Level"
            if system
            else "High Mandatory Level"
            if principal.is_admin
            else "Medium Mandatory Level",
            "domain_name": "Mandatory Label",
            "type": "Label",
        },
        "privileges": {},
        "groups": _token_groups(run),
        "token_type": "TokenPrimary",
        "rights": [],
        "logon_type": "Service" if system else "Interactive",
    }
