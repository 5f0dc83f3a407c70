"""Native programs and cmd.exe: what a WinRS command line (or win_command) starts.

WinRS runs its command line through cmd.exe, so a WinRS command has cmd.exe semantics (builtins
such as `echo` and `exit`, %VAR% expansion). win_command starts the executable directly
(CreateProcess), so there are no builtins. Modelled executables: powershell.exe/pwsh.exe,
cmd.exe, hostname.exe, whoami.exe and gpupdate.exe (computer policy: winhost.grouppolicy). cmd.exe models `echo`, `exit [/b] N`, `ver` and the
executables above; pipes, redirection and command chaining fail loudly.
"""

from __future__ import annotations

import ntpath
import re

from winhost import grouppolicy
from winhost.execution import commandline
from winhost.execution.context import ExecContext
from winhost.execution.errors import not_modelled
from winhost.execution.powershell import run_script
from winhost.execution.process import ProgramIO
from winhost.execution.sandbox import expand_environment

_EXECUTABLES = {"powershell", "pwsh", "cmd", "hostname", "whoami", "gpupdate"}
# gpupdate switches (Microsoft Learn, windows-commands/gpupdate) that winhost runs as given.
_GPUPDATE_SWITCHES = {"/force", "/target:computer", "/target:user"}


class ExecutableNotFound(Exception):
    """CreateProcess could not find the program (Win32 error 2)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def executable_name(token: str) -> str | None:
    """ "powershell" for "C:\\Windows\\...\\powershell.exe", None for programs not modelled."""
    base = ntpath.basename(token.replace("/", "\\")).lower()
    if base.endswith(".exe"):
        base = base[:-4]
    return base if base in _EXECUTABLES else None


def run_process(argv_line: str, ctx: ExecContext, io: ProgramIO) -> None:
    """CreateProcess semantics: start the program named by the first token.

    powershell.exe with -EncodedCommand writes its error stream to stderr as CLIXML
    (io.clixml_errors)."""
    args = commandline.split_windows_args(argv_line)
    if not args:
        raise ExecutableNotFound("")
    name = executable_name(args[0])
    if name is None:
        raise ExecutableNotFound(args[0])
    if name in ("powershell", "pwsh"):
        try:
            invocation = commandline.parse_powershell_args(args[1:])
        except commandline.CommandLineError as err:
            io.stderr_line(f"winhost: {err}")
            io.exit(1)
        io.clixml_errors = invocation.encoded
        script = invocation.script
        if script is None:
            script = "\n".join(str(line) for line in io.lines())
        run_script(script, ctx, io)
        return
    if name == "cmd":
        _run_cmd_exe(argv_line, args, ctx, io)
        return
    if name == "gpupdate":
        _run_gpupdate(args[1:], ctx, io)
        return
    if len(args) > 1:
        io.stderr_line(
            f"winhost: {args[0]} with arguments {args[1:]!r} is not modelled (only the bare command)"
        )
        io.exit(1)
    io.write(ctx.host.computer_name if name == "hostname" else ctx.principal.qualified_name)
    io.exit_code = 0


def _run_gpupdate(switches: list[str], ctx: ExecContext, io: ProgramIO) -> None:
    """gpupdate.exe: computer policy is processed now (the local GPO's registry policy written
    onto HKLM); user policy holds nothing in winhost. Other switches fail loudly."""
    unknown = [s for s in switches if s.lower() not in _GPUPDATE_SWITCHES]
    if unknown:
        io.error(not_modelled(f"gpupdate.exe switches {unknown!r}"))
        io.exit(1)
    targets = [s.lower().partition(":")[2] for s in switches if s.lower().startswith("/target:")]
    io.write("Updating policy...")
    io.write("")
    if not targets or "computer" in targets:
        with ctx.host.configure() as state:
            grouppolicy.refresh_computer_policy(state)
        io.write("Computer Policy update has completed successfully.")
    if not targets or "user" in targets:
        io.write("User Policy update has completed successfully.")
    io.write("")
    io.exit_code = 0


def _run_cmd_exe(line: str, args: list[str], ctx: ExecContext, io: ProgramIO) -> None:
    rest_index = None
    for index, arg in enumerate(args[1:], start=1):
        lowered = arg.lower()
        if lowered in ("/c", "/k"):
            rest_index = index
            break
        if lowered in ("/s", "/q", "/d", "/u", "/a") or lowered.startswith(("/e:", "/f:", "/v:")):
            continue
        break
    if rest_index is None:
        io.stderr_line("winhost: cmd.exe without /c (an interactive console) is not modelled")
        io.exit(1)
    # Everything after "/c" is the command text, verbatim (cmd.exe re-parses it).
    match = re.search(r"(?i)[/][ck]\s*", line)
    text = line[match.end() :] if match else " ".join(args[rest_index + 1 :])
    if text.startswith('"') and text.endswith('"') and text.count('"') == 2:
        text = text[1:-1]
    run_cmd_line(text, ctx, io)


def run_cmd_line(text: str, ctx: ExecContext, io: ProgramIO) -> None:
    """One cmd.exe command line (as WinRS or `cmd /c` runs it)."""
    expanded = expand_environment(text, ctx.env).strip()
    unquoted = re.sub(r'"[^"]*"', "", expanded)
    if re.search(r"[|<>]|&", unquoted):
        io.error(not_modelled(f"cmd.exe pipes, redirection or chaining in {text!r}"))
        io.exit(1)
    head, _, rest = expanded.partition(" ")
    lowered = head.lower()
    if lowered == "echo" or lowered.startswith("echo."):
        if lowered.startswith("echo.") and not rest:
            io.write(expanded[5:])
        else:
            io.write(rest if rest.strip() else "ECHO is on.")
        io.exit_code = 0
        return
    if lowered == "exit":
        parts = rest.split()
        if parts and parts[0].lower() == "/b":
            parts = parts[1:]
        try:
            code = int(parts[0]) if parts else 0
        except ValueError:
            code = 0  # cmd.exe treats a non-number as 0
        io.exit(code)
    if lowered == "ver":
        io.write("")
        io.write("Microsoft Windows [Version 10.0.17763.1]")
        io.exit_code = 0
        return
    try:
        run_process(expanded, ctx, io)
    except ExecutableNotFound as err:
        name = err.name or head
        io.stderr_line(
            f"'{name}' is not recognized as an internal or external command,\r\n"
            "operable program or batch file."
        )
        io.exit(9009)
