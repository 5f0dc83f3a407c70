"""Running a PowerShell script: recognise what Ansible and our plugins send, run the handful of
raw statements winhost models, fail loudly on everything else.

Recognised whole scripts (by content, never by trusting a name):
- ansible-core's bootstrap wrapper (reads a JSON manifest from $input up to a "`0`0`0`0" line);
- our plugins' transfer scripts (first line "# winops.remoting transfer: put v1" / "fetch v1");
- ansible.windows.win_reboot's boot-time query, restart and abort scripts (execution.restart).
Anything else is run statement by statement. Modelled statements: `hostname`, `whoami`,
`echo`/`Write-Output`/`Write-Host` with literal arguments, `exit [N|$LASTEXITCODE]`,
`Remove-Item '<path>' -Force [-Recurse]` (Ansible's temp-dir cleanup), `Start-Sleep [-Seconds]
N` / `-Milliseconds N` (ended early by a stop signal), `Set-StrictMode`, the
console-encoding line, the exit-code propagation line Ansible's shell plugin adds (on a line of
its own or after a ';', as win_reboot adds it) and `Get-Item` on HKLM: registry keys
(execution.registry_items). An unknown
command is reported as PowerShell reports it (CommandNotFoundException); any other syntax
(variables, pipelines, script blocks...) is a "winhost does not model this" error that stops the
script with exit code 1.
"""

from __future__ import annotations

import functools
import re
import shutil
import typing as t
from pathlib import Path

from winhost.execution import registry_items, restart, transfer
from winhost.execution.context import ExecContext, lookup_env
from winhost.execution.errors import (
    PSError,
    command_not_found,
    not_modelled,
    not_modelled_command,
)
from winhost.execution.process import ProgramIO
from winhost.execution.sandbox import SandboxError

_NOOP_STATEMENTS = [
    re.compile(r"^set-strictmode\s+-version\s+(latest|\d+(\.\d+)?)$", re.I),
    re.compile(
        r"^try\s*\{\s*\[console\]::outputencoding\s*=\s*new-object\s+system\.text\.utf8encoding\s*\}\s*catch\s*\{\s*\}$",
        re.I,
    ),
    # win_shell prefixes the user's command with this.
    re.compile(
        r"^\[console\]::inputencoding\s*=\s*new-object\s+text\.utf8encoding\s+`?\$false$", re.I
    ),
]
# Added by the shell plugin's _encode_script(preserve_rc=True) after the script.
_PROPAGATE_RC = re.compile(
    r"^if\s*\(-not\s+\$\?\)\s*\{\s*if\s*\(get-variable\s+lastexitcode\s+-erroraction\s+silentlycontinue\)\s*"
    r"\{\s*exit\s+\$lastexitcode\s*\}\s*else\s*\{\s*exit\s+1\s*\}\s*\}$",
    re.I,
)
# The same line appended to a script after "; " (win_reboot's commands end with it).
_TRAILING_PROPAGATE_RC = re.compile(r";\s*" + _PROPAGATE_RC.pattern[1:-1] + r"\s*$", re.I)


_STOCK_COMMANDS = Path(__file__).with_name("stock_commands.txt")


@functools.cache
def _stock_commands() -> dict[str, str]:
    """Lower-cased cmdlet and alias names Windows PowerShell has in-box -> their module."""
    found: dict[str, str] = {}
    module = ""
    for line in _STOCK_COMMANDS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            module = line[1 : line.index("]")]
            continue
        for name in line.split():
            found.setdefault(name.lower(), module)
    return found


def stock_command_module(name: str) -> str | None:
    """The module of an in-box Windows PowerShell command or alias (execution/
    stock_commands.txt says where the list comes from); None for a name Windows lacks."""
    return _stock_commands().get(name.lower())


def is_bootstrap_wrapper(script: str) -> bool:
    """ansible-core's bootstrap_wrapper.ps1 (2.19): reads the manifest JSON from $input until a
    line of four NUL characters, then runs the exec wrapper it contains."""
    lowered = script.lower()
    return "$input" in lowered and "convertfrom-json" in lowered and "`0`0`0`0" in script


def run_script(script: str, ctx: ExecContext, io: ProgramIO) -> None:
    """Run a PowerShell script the client sent; sets io.exit_code."""
    marker = transfer.marker_of(script)
    if marker is not None:
        transfer.run_ours(marker, ctx, io)
        return
    if "$exec_wrapper_str" in script and "`0`0`0`0" in script:
        run_statements_error(
            io,
            "the bootstrap wrapper of ansible-core before 2.19 (its exec-wrapper manifest format "
            "is not emulated; winhost emulates ansible-core 2.19's)",
        )
    if is_bootstrap_wrapper(script):
        from winhost.execution.bootstrap import run_bootstrap

        run_bootstrap(ctx, io)
        return
    if restart.run_win_reboot_script(_TRAILING_PROPAGATE_RC.sub("", script), ctx, io):
        return
    StatementRunner(ctx, io).run(script)


def run_statements_error(io: ProgramIO, what: str) -> t.NoReturn:
    io.error(not_modelled(what))
    io.exit(1)


class _Token(t.NamedTuple):
    kind: str  # "word" (bareword), "str" (quoted, already unescaped), "var", "param", "expr"
    value: str
    column: int


class _Unsupported(Exception):
    pass


def _tokenize(statement: str, env: t.Mapping[str, str]) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(statement)
    while i < n:
        ch = statement[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch in "'\u2018\u2019":
            value: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise _Unsupported("unterminated single-quoted string")
                if statement[i] in "'\u2018\u2019":
                    if i + 1 < n and statement[i + 1] in "'\u2018\u2019":
                        value.append(statement[i])
                        i += 2
                        continue
                    i += 1
                    break
                value.append(statement[i])
                i += 1
            tokens.append(_Token("str", "".join(value), start + 1))
        elif ch == '"':
            value = []
            i += 1
            while True:
                if i >= n:
                    raise _Unsupported("unterminated double-quoted string")
                c = statement[i]
                if c == "`" and i + 1 < n:
                    value.append(
                        {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}.get(
                            statement[i + 1], statement[i + 1]
                        )
                    )
                    i += 2
                    continue
                if c == '"':
                    i += 1
                    break
                if c == "$":
                    match = re.match(r"\$env:([A-Za-z_][\w()]*)", statement[i:])
                    if not match:
                        raise _Unsupported("variable expansion inside a double-quoted string")
                    value.append(lookup_env(env, match.group(1)) or "")
                    i += match.end()
                    continue
                value.append(c)
                i += 1
            tokens.append(_Token("str", "".join(value), start + 1))
        elif ch == "$":
            match = re.match(r"\$(env:)?[\w?]+", statement[i:])
            if not match:
                raise _Unsupported("expression")
            tokens.append(_Token("var", match.group(0), start + 1))
            i += match.end()
        elif ch in "({[@|&><":
            raise _Unsupported(f"the operator or expression starting at {statement[i:]!r}")
        else:
            while i < n and not statement[i].isspace() and statement[i] not in "'\";|&(){}":
                i += 1
            word = statement[start:i]
            kind = (
                "param"
                if word.startswith("-") and len(word) > 1 and not word[1:].isdigit()
                else "word"
            )
            tokens.append(_Token(kind, word, start + 1))
    return tokens


def _split_statements(line: str) -> list[tuple[int, str]]:
    """Split one line on ';' outside quotes; returns (column, text) pairs."""
    parts: list[tuple[int, str]] = []
    quote: str | None = None
    start = 0
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == ";":
            parts.append((start, line[start:i]))
            start = i + 1
    parts.append((start, line[start:]))
    return [(col, text) for col, text in parts if text.strip()]


class StatementRunner:
    """Runs simple statements; tracks $? and $LASTEXITCODE like PowerShell."""

    def __init__(self, ctx: ExecContext, io: ProgramIO) -> None:
        self.ctx = ctx
        self.io = io
        self.last_ok = True
        self.last_exit_code: int | None = None

    def run(self, script: str) -> None:
        for line_no, raw_line in enumerate(script.splitlines(), start=1):
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            if any(p.match(line) for p in _NOOP_STATEMENTS):
                self.last_ok = True
                continue
            if _PROPAGATE_RC.match(line):
                if not self.last_ok:
                    self.io.exit(self.last_exit_code if self.last_exit_code is not None else 1)
                continue
            for column, statement in _split_statements(raw_line):
                self._statement(
                    statement, line_no, raw_line, column + len(statement) - len(statement.lstrip())
                )
        # powershell.exe -Command exits 1 when the last statement failed, else 0.
        self.io.exit_code = 0 if self.last_ok else 1

    def _statement(self, statement: str, line_no: int, line_text: str, column: int) -> None:
        if any(p.match(statement.strip()) for p in _NOOP_STATEMENTS):
            self.last_ok = True
            return
        if _PROPAGATE_RC.match(statement.strip()):
            if not self.last_ok:
                self.io.exit(self.last_exit_code if self.last_exit_code is not None else 1)
            return
        try:
            tokens = _tokenize(statement, self.ctx.env)
        except _Unsupported as err:
            self._unsupported(f"{err} in the statement {statement.strip()!r}", line_no, line_text)
        if not tokens:
            return
        head = tokens[0]
        if head.kind == "str" and len(tokens) == 1:
            # A bare string literal is written to the output stream.
            self.io.write(head.value)
            self.last_ok = True
            return
        if head.kind != "word":
            self._unsupported(f"the statement {statement.strip()!r}", line_no, line_text)
        name = head.value.lower()
        args = tokens[1:]
        handler = _COMMANDS.get(name)
        if handler is None:
            if name in _KEYWORDS:
                self._unsupported(
                    f"the {head.value!r} statement {statement.strip()!r}", line_no, line_text
                )
            stock_module = stock_command_module(name)
            if stock_module is not None:
                self.io.error(
                    not_modelled_command(head.value, stock_module, line_no, line_text.strip())
                )
                self.io.exit(1)
            unknown = command_not_found(head.value, line_no, column + 1, line_text.strip())
            if self.io.command_not_found_terminates:
                self.io.fail(unknown)
            self.io.error(unknown)
            self.last_ok = False
            return
        handler(self, head.value, args, line_no, line_text)

    def _unsupported(self, what: str, line_no: int, line_text: str) -> t.NoReturn:
        self.io.error(not_modelled(f"PowerShell: {what}", line_no, line_text.strip()))
        self.io.exit(1)

    def unsupported(self, what: str, line_no: int, line_text: str) -> t.NoReturn:
        """Stop the script: `what` is not modelled (for statements handled in other modules)."""
        self._unsupported(what, line_no, line_text)

    def value_of(self, token: _Token, line_no: int, line_text: str) -> str:
        if token.kind in ("word", "str", "param"):
            return token.value
        lowered = token.value.lower()
        if lowered == "$lastexitcode":
            return "" if self.last_exit_code is None else str(self.last_exit_code)
        if lowered == "$null":
            return ""
        if lowered in ("$true", "$false"):
            return "True" if lowered == "$true" else "False"
        if lowered.startswith("$env:"):
            return lookup_env(self.ctx.env, token.value[5:]) or ""
        self._unsupported(f"the variable {token.value}", line_no, line_text)

    # -- commands ------------------------------------------------------------------------

    def cmd_hostname(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        if args:
            self._unsupported(f"hostname with arguments {line_text.strip()!r}", line_no, line_text)
        self.io.write(self.ctx.host.computer_name)
        self.last_exit_code = 0
        self.last_ok = True

    def cmd_whoami(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        if args:
            self._unsupported(f"whoami with arguments {line_text.strip()!r}", line_no, line_text)
        self.io.write(self.ctx.principal.qualified_name)
        self.last_exit_code = 0
        self.last_ok = True

    def cmd_write_output(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        values: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token.kind == "param":
                lowered = token.value.lower()
                if lowered in ("-inputobject", "-object", "-message") and i + 1 < len(args):
                    values.append(self.value_of(args[i + 1], line_no, line_text))
                    i += 2
                    continue
                if lowered in ("-noenumerate", "-nonewline"):
                    i += 1
                    continue
                if name.lower() == "write-host" or token.value[1:].isalpha():
                    # PowerShell binds an unknown -word to a parameter; winhost only knows these.
                    self._unsupported(f"{name} parameter {token.value}", line_no, line_text)
            values.append(self.value_of(token, line_no, line_text))
            i += 1
        if name.lower() == "write-host":
            self.io.write_host(" ".join(values))
        else:
            for value in values:
                self.io.write(value)
        self.last_ok = True

    def cmd_exit(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        if not args:
            self.io.exit(0)
        if len(args) > 1:
            self._unsupported(f"the exit statement {line_text.strip()!r}", line_no, line_text)
        text = self.value_of(args[0], line_no, line_text)
        if text == "":
            self.io.exit(0)
        try:
            code = int(text)
        except ValueError:
            self._unsupported(f"exit with a non-integer value {text!r}", line_no, line_text)
        self.io.exit(code)

    def cmd_start_sleep(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        """Start-Sleep [-Seconds] N | -Milliseconds N (Windows PowerShell 5.1: Int32 values;
        Seconds is the positional parameter). A terminate signal ends the wait."""
        scale = 1.0
        values = list(args)
        if values and values[0].kind == "param":
            parameter = values.pop(0).value.lower()
            if parameter == "-milliseconds":
                scale = 0.001
            elif parameter != "-seconds":
                self._unsupported(f"Start-Sleep parameter {parameter}", line_no, line_text)
        if len(values) != 1:
            self._unsupported(f"the statement {line_text.strip()!r}", line_no, line_text)
        text = self.value_of(values[0], line_no, line_text)
        try:
            amount = int(text)
        except ValueError:
            self._unsupported(f"Start-Sleep with a non-integer value {text!r}", line_no, line_text)
        self.io.sleep(max(0, amount) * scale)
        self.last_ok = True

    def cmd_remove_item(self, name: str, args: list[_Token], line_no: int, line_text: str) -> None:
        paths: list[str] = []
        recurse = False
        i = 0
        while i < len(args):
            token = args[i]
            lowered = token.value.lower() if token.kind == "param" else ""
            if lowered in ("-force",):
                i += 1
            elif lowered == "-recurse":
                recurse = True
                i += 1
            elif lowered in ("-path", "-literalpath") and i + 1 < len(args):
                paths.append(self.value_of(args[i + 1], line_no, line_text))
                i += 2
            elif token.kind == "param":
                self._unsupported(f"Remove-Item parameter {token.value}", line_no, line_text)
            else:
                paths.append(self.value_of(token, line_no, line_text))
                i += 1
        if not paths:
            self._unsupported("Remove-Item without a path", line_no, line_text)
        ok = True
        for path in paths:
            if any(c in path for c in "*?["):
                self._unsupported(f"Remove-Item with a wildcard path {path!r}", line_no, line_text)
            try:
                resolved = self.ctx.resolve(self.ctx.expand(path))
            except SandboxError as err:
                self.io.error(_cmdlet_error(err, "Remove-Item", line_no, line_text))
                ok = False
                continue
            local = resolved.local
            if not local.exists():
                self.io.error(
                    PSError(
                        message=f"Cannot find path '{resolved.win}' because it does not exist.",
                        category="ObjectNotFound",
                        error_id="PathNotFound,Microsoft.PowerShell.Commands.RemoveItemCommand",
                        reason="ItemNotFoundException",
                        target=resolved.win,
                        command="Remove-Item",
                        activity="Remove-Item",
                        line_no=line_no,
                        line_text=line_text.strip(),
                        span=len(line_text.strip()),
                    )
                )
                ok = False
            elif local.is_dir():
                if any(local.iterdir()) and not recurse:
                    self._unsupported(
                        f"Remove-Item of the non-empty directory {resolved.win!r} without -Recurse "
                        "(PowerShell would prompt for confirmation)",
                        line_no,
                        line_text,
                    )
                shutil.rmtree(local)
            else:
                local.unlink()
        self.last_ok = ok


def _cmdlet_error(err: SandboxError, cmdlet: str, line_no: int, line_text: str) -> PSError:
    return PSError(
        message=err.message,
        category=err.category,
        error_id=f"{err.error_id},Microsoft.PowerShell.Commands.{cmdlet.replace('-', '')}Command",
        reason=err.hresult_name or "RuntimeException",
        target=err.target,
        command=cmdlet,
        activity=cmdlet,
        line_no=line_no,
        line_text=line_text.strip(),
        span=len(line_text.strip()),
    )


_Handler = t.Callable[[StatementRunner, str, list[_Token], int, str], None]
_COMMANDS: dict[str, _Handler] = {
    "hostname": StatementRunner.cmd_hostname,
    "hostname.exe": StatementRunner.cmd_hostname,
    "whoami": StatementRunner.cmd_whoami,
    "whoami.exe": StatementRunner.cmd_whoami,
    "echo": StatementRunner.cmd_write_output,
    "write": StatementRunner.cmd_write_output,
    "write-output": StatementRunner.cmd_write_output,
    "write-host": StatementRunner.cmd_write_output,
    "exit": StatementRunner.cmd_exit,
    "start-sleep": StatementRunner.cmd_start_sleep,
    "sleep": StatementRunner.cmd_start_sleep,
    "get-item": registry_items.get_item,
    "gi": registry_items.get_item,
    "remove-item": StatementRunner.cmd_remove_item,
    "rm": StatementRunner.cmd_remove_item,
    "del": StatementRunner.cmd_remove_item,
    "ri": StatementRunner.cmd_remove_item,
}
_KEYWORDS = {
    "if",
    "else",
    "elseif",
    "foreach",
    "for",
    "while",
    "do",
    "switch",
    "function",
    "filter",
    "try",
    "catch",
    "finally",
    "trap",
    "param",
    "begin",
    "process",
    "end",
    "return",
    "throw",
    "using",
    "class",
    "enum",
    "break",
    "continue",
    "data",
    "dynamicparam",
}
