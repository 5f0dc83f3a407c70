"""The scripts ansible.windows.win_reboot sends, recognised whole, and shutdown.exe's answers.

win_reboot is an action plugin: it runs on the controller and drives the host through the
connection with PowerShell scripts (ansible.windows 3.x, plugin_utils/_reboot.py):

- the boot-time query `(Get-CimInstance -ClassName Win32_OperatingSystem -Property
  LastBootUpTime).LastBootUpTime.ToFileTime()`, before the restart and then until the answer
  changes: the host's last boot as a FILETIME;
- the restart script: removes LogonUI's AutoLogonChecked key (unless the task has its own
  test_command), runs `C:\\Windows\\System32\\shutdown.exe /r /t <delay> /c '<message>'` and
  prints shutdown.exe's stdout, stderr and exit code as one line of JSON;
- `C:\\Windows\\System32\\shutdown.exe /a`, when the restart met a shutdown already pending.

The post-reboot test (`Get-Item -LiteralPath '<AutoLogonChecked key>' -ErrorAction Stop;
'<marker>'`) is ordinary statements (winhost.execution.registry_items). Each script arrives
with the plugin's exit-code line appended, which powershell.run_script strips before asking
here. A script that only resembles these (another shutdown.exe switch, another class) is not
recognised and fails as PowerShell statements do, loudly.
"""

from __future__ import annotations

import datetime
import json
import re

from winhost import registry
from winhost.execution.context import ExecContext
from winhost.execution.process import ProgramIO

_FILETIME_EPOCH = datetime.datetime(1601, 1, 1, tzinfo=datetime.UTC)
# shutdown.exe /t accepts 0 to 315360000 seconds (ten years).
MAX_DELAY = 315_360_000
# shutdown.exe /c takes a comment of at most 512 characters.
MAX_COMMENT = 512
# PowerShell's single-quote characters; inside a single-quoted string two of them are one.
_QUOTES = "'\u2018\u2019\u201a\u201b"
_SINGLE_QUOTED = rf"[{_QUOTES}](?:[^{_QUOTES}]|[{_QUOTES}]{{2}})*[{_QUOTES}]"
_SHUTDOWN_EXE = r"C:\\Windows\\System32\\shutdown\.exe"

_BOOT_TIME_QUERY = re.compile(
    r"^\(\s*Get-CimInstance\s+-ClassName\s+Win32_OperatingSystem\s+-Property\s+LastBootUpTime\s*\)"
    r"\.LastBootUpTime\.ToFileTime\(\)$",
    re.IGNORECASE,
)
_ABORT = re.compile(rf"^{_SHUTDOWN_EXE}\s+/a$", re.IGNORECASE)
# The restart script with runs of whitespace folded to one space (see _folded).
_RESTART = re.compile(
    r"^\$ErrorActionPreference = 'Continue' "
    r"if \(\$(?P<clear>True|False)\) \{ Remove-Item -LiteralPath '(?P<key>HKLM:\\[^']+)' -Force "
    r"-ErrorAction SilentlyContinue \} "
    r"\$stdout = \$null "
    rf"\$stderr = \. \{{ {_SHUTDOWN_EXE} /r /t (?P<delay>\d+) /c (?P<message>{_SINGLE_QUOTED}) "
    r"\| Set-Variable stdout \} 2>&1 \| ForEach-Object ToString "
    r"ConvertTo-Json -Compress -InputObject @\{ "
    r'stdout = \(@\(\$stdout\) -join "`n"\) '
    r'stderr = \(@\(\$stderr\) -join "`n"\) '
    r"rc = \$LASTEXITCODE \}$",
    re.IGNORECASE | re.DOTALL,
)


def _folded(script: str) -> str:
    return " ".join(script.split())


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(rf"([{_QUOTES}])[{_QUOTES}]", r"\1", body)


def filetime(moment: datetime.datetime) -> int:
    """DateTime.ToFileTime(): 100-nanosecond intervals since 1601-01-01 UTC."""
    delta = moment - _FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def run_win_reboot_script(script: str, ctx: ExecContext, io: ProgramIO) -> bool:
    """Run `script` if it is one of win_reboot's (without the exit-code line); False if not."""
    text = script.strip()
    if _BOOT_TIME_QUERY.match(text):
        io.write(str(filetime(ctx.host.last_boot_time)))
        io.exit_code = 0
        return True
    if _ABORT.match(text):
        _abort(ctx, io)
        return True
    match = _RESTART.match(_folded(text))
    if match is None:
        return False
    if match["clear"].lower() == "true":
        _remove_key(ctx, match["key"])
    rc, stdout, stderr = _shutdown_restart(ctx, int(match["delay"]), _unquote(match["message"]))
    io.write(json.dumps({"stdout": stdout, "stderr": stderr, "rc": rc}, separators=(",", ":")))
    io.exit_code = 0
    return True


def _remove_key(ctx: ExecContext, drive_path: str) -> None:
    """Remove-Item -Force -ErrorAction SilentlyContinue on an HKLM: key (the pattern admits
    no other drive): gone if it was there, nothing said if it was not."""
    path = "HKLM\\" + drive_path[len("HKLM:\\") :]
    with ctx.host.configure() as state:
        if registry.key_exists(state, path) and not registry.is_permanent(path):
            registry.delete_key_tree(state, path)


def _shutdown_restart(ctx: ExecContext, delay: int, message: str) -> tuple[int, str, str]:
    """shutdown.exe /r /t <delay> /c <message>: (exit code, stdout, stderr)."""
    if not ctx.principal.is_admin:
        # Only holders of SeShutdownPrivilege may restart; remote users need Administrators.
        return 5, "", "Access is denied.(5)"
    if delay > MAX_DELAY or len(message) > MAX_COMMENT:
        return 87, "", "The parameter is incorrect.(87)"
    if not ctx.host.schedule_restart(float(delay)):
        return 1190, "", "A system shutdown has already been scheduled.(1190)"
    return 0, "", ""


def _abort(ctx: ExecContext, io: ProgramIO) -> None:
    if not ctx.principal.is_admin:
        io.stderr_line("Access is denied.(5)")
        io.exit_code = 5
    elif ctx.host.abort_restart():
        io.exit_code = 0
    else:
        io.stderr_line(
            "Unable to abort the system shutdown because no shutdown was in progress.(1116)"
        )
        io.exit_code = 1116
