"""`Get-Item` on registry keys (the HKLM: drive), as a statement of winhost's PowerShell runner.

win_reboot's post-reboot test is `Get-Item -LiteralPath '<key>' -ErrorAction Stop` on the key
LogonUI creates when a boot has finished. Modelled: -LiteralPath/-Path or a positional path
on HKLM:, -ErrorAction Stop, Continue, SilentlyContinue or Ignore. An existing key prints as
PowerShell's table of registry keys; a missing one is the PathNotFound error, terminating
under -ErrorAction Stop. Other drives, providers and parameters fail as not modelled.
"""

from __future__ import annotations

import typing as t

from winhost import registry
from winhost.execution.errors import PSError

if t.TYPE_CHECKING:
    from winhost.execution.powershell import StatementRunner
    from winhost.state import HostState

_ERROR_ACTIONS = ("stop", "continue", "silentlycontinue", "ignore")
_HIVE_NAMES = {"HKLM": "HKEY_LOCAL_MACHINE"}


def get_item(
    runner: StatementRunner, name: str, args: t.Sequence[t.Any], line_no: int, line_text: str
) -> None:
    """The Get-Item statement (args are the runner's tokens after the command name)."""
    paths: list[str] = []
    error_action = "continue"
    i = 0
    while i < len(args):
        token = args[i]
        lowered = token.value.lower() if token.kind == "param" else ""
        if lowered in ("-literalpath", "-path") and i + 1 < len(args):
            paths.append(runner.value_of(args[i + 1], line_no, line_text))
            i += 2
        elif lowered in ("-erroraction", "-ea") and i + 1 < len(args):
            error_action = runner.value_of(args[i + 1], line_no, line_text).lower()
            if error_action not in _ERROR_ACTIONS:
                runner.unsupported(f"Get-Item -ErrorAction {error_action}", line_no, line_text)
            i += 2
        elif token.kind == "param":
            runner.unsupported(f"Get-Item parameter {token.value}", line_no, line_text)
        else:
            paths.append(runner.value_of(token, line_no, line_text))
            i += 1
    if not paths:
        runner.unsupported("Get-Item without a path", line_no, line_text)
    ok = True
    for path in paths:
        drive, _, rest = path.partition(":\\")
        hive = drive.upper()
        if hive not in _HIVE_NAMES or any(c in path for c in "*?["):
            runner.unsupported(
                f"Get-Item of {path!r} (only literal HKLM: registry keys are modelled)",
                line_no,
                line_text,
            )
        with runner.ctx.host.configure() as state:
            view = _key_view(state, f"{hive}\\{rest}")
        if view is not None:
            for line in view:
                runner.io.write(line)
            continue
        ok = False
        if error_action in ("silentlycontinue", "ignore"):
            continue
        runner.io.error(
            PSError(
                message=f"Cannot find path '{path}' because it does not exist.",
                category="ObjectNotFound",
                error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
                reason="ItemNotFoundException",
                target=path,
                command="Get-Item",
                activity="Get-Item",
                line_no=line_no,
                line_text=line_text.strip(),
                span=len(line_text.strip()),
            )
        )
        if error_action == "stop":
            # A terminating error ends the script: powershell.exe exits 1.
            runner.io.exit(1)
    runner.last_ok = ok


def _key_view(state: HostState, path: str) -> list[str] | None:
    """PowerShell 5.1's default view of a RegistryKey (Name, then each value as
    "name : data"), or None when the key does not exist."""
    if not registry.key_exists(state, path):
        return None
    key = registry.find_key(state, path) or path
    hive, _, rest = key.partition("\\")
    parent, _, leaf = rest.rpartition("\\")
    values = [f"{name} : {data}" for name, data in state.registry.get(key, {}).items()]
    rows = [f"{leaf:<31}{values[0] if values else ''}".rstrip()]
    rows.extend(f"{'':<31}{value}" for value in values[1:])
    return [
        "",
        f"    Hive: {_HIVE_NAMES[hive.upper()]}\\{parent}",
        "",
        "",
        f"{'Name':<31}Property",
        f"{'----':<31}--------",
        *rows,
        "",
    ]
