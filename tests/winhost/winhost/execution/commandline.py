"""Decoding WinRS command lines: cmd.exe syntax, powershell.exe parameters, -EncodedCommand."""

from __future__ import annotations

import base64
import binascii
import dataclasses

POWERSHELL_EXES = {"powershell", "powershell.exe", "pwsh", "pwsh.exe"}
CMD_EXES = {"cmd", "cmd.exe"}

# powershell.exe parameters: canonical name -> (shortest accepted prefix, takes a value).
# Windows PowerShell 5.1 matches any unambiguous prefix; "-e"/"-ec" mean -EncodedCommand.
_PS_PARAMETERS: dict[str, tuple[str, bool]] = {
    "command": ("c", True),
    "configurationname": ("config", True),
    "encodedcommand": ("e", True),
    "executionpolicy": ("ex", True),
    "file": ("f", True),
    "inputformat": ("in", True),
    "mta": ("mta", False),
    "noexit": ("noe", False),
    "nologo": ("nol", False),
    "noninteractive": ("noni", False),
    "noprofile": ("nop", False),
    "outputformat": ("o", True),
    "sta": ("s", False),
    "version": ("v", True),
    "windowstyle": ("w", True),
}
_PS_ALIASES = {
    "ec": "encodedcommand",
    "ep": "executionpolicy",
    "if": "inputformat",
    "of": "outputformat",
}


class CommandLineError(Exception):
    """A command line winhost cannot decode; the message names what and why."""


def split_windows_args(line: str) -> list[str]:
    """Split a command line the way CommandLineToArgvW does (quotes group, 2n backslashes
    before a quote become n)."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        current: list[str] = []
        in_quotes = False
        while i < n and (in_quotes or line[i] not in " \t"):
            if line[i] == "\\":
                start = i
                while i < n and line[i] == "\\":
                    i += 1
                count = i - start
                if i < n and line[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                else:
                    current.append("\\" * count)
            elif line[i] == '"':
                if in_quotes and i + 1 < n and line[i + 1] == '"':
                    current.append('"')
                    i += 2
                    continue
                in_quotes = not in_quotes
                i += 1
            else:
                current.append(line[i])
                i += 1
        args.append("".join(current))
    return args


def join_command(command: str, arguments: list[str]) -> str:
    """WinRS runs `command` followed by its arguments separated by spaces, verbatim."""
    return " ".join([command, *arguments]) if arguments else command


@dataclasses.dataclass
class PowerShellInvocation:
    """What powershell.exe was asked to run."""

    script: str | None  # None: read the script from stdin ("-Command -")
    encoded: bool  # -EncodedCommand: errors go to stderr as CLIXML
    parameters: dict[str, str | bool]


def _match_parameter(token: str) -> str:
    name = token.lstrip("-/").lower()
    if name in _PS_ALIASES:
        return _PS_ALIASES[name]
    matches = [
        canonical
        for canonical, (prefix, _value) in _PS_PARAMETERS.items()
        if canonical.startswith(name) and len(name) >= len(prefix)
    ]
    if len(matches) != 1:
        raise CommandLineError(
            f"powershell.exe parameter {token!r} is not one winhost models (known: "
            + ", ".join(f"-{p}" for p in sorted(_PS_PARAMETERS))
            + ")"
        )
    return matches[0]


def parse_powershell_args(args: list[str]) -> PowerShellInvocation:
    """Parse powershell.exe's own parameters; the first non-parameter starts -Command text."""
    params: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("-") or token == "-":
            params["command"] = " ".join(args[i:])
            break
        name = _match_parameter(token)
        takes_value = _PS_PARAMETERS[name][1]
        if name == "command":
            params["command"] = " ".join(args[i + 1 :])
            break
        if takes_value:
            if i + 1 >= len(args):
                raise CommandLineError(
                    f"powershell.exe parameter {token!r} needs a value but the command line ends"
                )
            params[name] = args[i + 1]
            i += 2
        else:
            params[name] = True
            i += 1

    if "file" in params:
        raise CommandLineError(
            f"powershell.exe -File {params['file']!r}: running script files is not modelled "
            "(winhost runs scripts given with -EncodedCommand or -Command only)"
        )
    if "encodedcommand" in params:
        value = str(params["encodedcommand"])
        try:
            script = base64.b64decode(value, validate=True).decode("utf-16-le")
        except (binascii.Error, UnicodeDecodeError) as err:
            raise CommandLineError(
                f"powershell.exe -EncodedCommand value is not base64 of UTF-16-LE text: {err}"
            ) from err
        return PowerShellInvocation(script=script, encoded=True, parameters=params)
    command = str(params.get("command", ""))
    if command.strip() == "-":
        return PowerShellInvocation(script=None, encoded=False, parameters=params)
    if not command:
        raise CommandLineError(
            "powershell.exe without -Command or -EncodedCommand would start an interactive "
            "console, which winhost does not model"
        )
    return PowerShellInvocation(script=command, encoded=False, parameters=params)


def encode_command(script: str) -> str:
    """The -EncodedCommand value for a script (used by the become emulation and by tests)."""
    return base64.b64encode(script.encode("utf-16-le")).decode()
