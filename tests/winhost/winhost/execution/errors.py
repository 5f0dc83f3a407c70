"""PowerShell error records as winhost reports them, and their text/CLIXML renderings."""

from __future__ import annotations

import dataclasses
import re
from xml.sax.saxutils import escape

from winhost import api

_CLIXML_NS = "http://schemas.microsoft.com/powershell/2004/04"

_SMA = "System.Management.Automation"
# .NET type chains of the exceptions winhost raises (most derived first), as serialised in the
# TN of an ErrorRecord's Exception (pypsrp's recording test_client_execute_ps_failure.yml shows
# CommandNotFoundException's).
_EXCEPTION_TYPES: dict[str, tuple[str, ...]] = {
    "CommandNotFoundException": (
        f"{_SMA}.CommandNotFoundException",
        f"{_SMA}.RuntimeException",
        "System.SystemException",
        "System.Exception",
        "System.Object",
    ),
    "ItemNotFoundException": (
        f"{_SMA}.ItemNotFoundException",
        f"{_SMA}.SessionStateException",
        f"{_SMA}.RuntimeException",
        "System.SystemException",
        "System.Exception",
        "System.Object",
    ),
    "NotImplementedException": (
        "System.NotImplementedException",
        "System.SystemException",
        "System.Exception",
        "System.Object",
    ),
}
_RUNTIME_EXCEPTION = (
    f"{_SMA}.RuntimeException",
    "System.SystemException",
    "System.Exception",
    "System.Object",
)


@dataclasses.dataclass
class PSError:
    """One error record: what `$Error[0]` would show in Windows PowerShell 5.1."""

    message: str
    category: str = "NotSpecified"  # ErrorCategory, e.g. "ObjectNotFound"
    error_id: str = "winhost.NotModelled"  # FullyQualifiedErrorId
    reason: str = "RuntimeException"  # exception type name shown in CategoryInfo
    target: str = ""
    command: str | None = None  # the command that raised it, printed as "<command> : "
    line_no: int = 1
    column: int = 1
    line_text: str = ""
    span: int = 1
    activity: str = ""  # the cmdlet shown in CategoryInfo brackets, e.g. "Remove-Item"

    def render(self) -> str:
        """The error as PowerShell 5.1 prints it (lines joined with CRLF, no trailing newline)."""
        prefix = f"{self.command} : " if self.command else ""
        lines = [f"{prefix}{self.message}"]
        if self.line_text:
            lines.append(f"At line:{self.line_no} char:{self.column}")
            lines.append(f"+ {self.line_text}")
            lines.append("+ " + " " * (self.column - 1) + "~" * max(self.span, 1))
        target = f"({self.target}:String) " if self.target else "(:) "
        lines.append(
            f"    + CategoryInfo          : {self.category}: {target}[{self.activity}], {self.reason}"
        )
        lines.append(f"    + FullyQualifiedErrorId : {self.error_id}")
        return "\r\n".join(lines)

    def record(self) -> api.ErrorRecordData:
        """The error as an ErrorRecord for a PSRP client."""
        return api.ErrorRecordData(
            message=self.message,
            category=self.category,
            fully_qualified_error_id=self.error_id,
            reason=self.reason,
            exception_types=_EXCEPTION_TYPES.get(self.reason, _RUNTIME_EXCEPTION),
            target=self.target,
        )


def command_not_found(name: str, line_no: int, column: int, line_text: str) -> PSError:
    return PSError(
        message=(
            f"The term '{name}' is not recognized as the name of a cmdlet, function, script file, "
            "or operable program. Check the spelling of the name, or if a path was included, "
            "verify that the path is correct and try again."
        ),
        category="ObjectNotFound",
        error_id="CommandNotFoundException",
        reason="CommandNotFoundException",
        target=name,
        command=name,
        line_no=line_no,
        column=column,
        line_text=line_text,
        span=len(name),
    )


def not_modelled(what: str, line_no: int = 1, line_text: str = "") -> PSError:
    """Something winhost does not emulate: a loud error naming it, never a fake success."""
    return PSError(
        message=f"winhost does not model this: {what}",
        category="NotImplemented",
        error_id="winhost.NotModelled",
        reason="NotImplementedException",
        line_no=line_no,
        line_text=line_text,
        column=1,
        span=len(line_text) or 1,
    )


def not_modelled_command(name: str, module: str, line_no: int, line_text: str) -> PSError:
    """A command Windows has (in `module`) that winhost does not emulate: never reported as
    CommandNotFoundException, which would claim Windows lacks it."""
    return PSError(
        message=f"winhost does not model {name} (a command of the Windows module {module})",
        category="NotImplemented",
        error_id="winhost.NotModelled",
        reason="NotImplementedException",
        line_no=line_no,
        line_text=line_text,
        column=1,
        span=len(line_text) or 1,
    )


def _clixml_escape(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        return f"_x{ord(match.group(0)):04X}_"

    # Control characters and a literal "_x" sequence are escaped the way PowerShell's serializer
    # does it; the rest goes through XML escaping.
    text = re.sub(r"_(?=x[0-9A-Fa-f]{4}_)", "_x005F_", text)
    return escape(re.sub(r"[\x00-\x1f]", repl, text))


def render_clixml(errors: list[str]) -> bytes:
    """stderr of powershell.exe started with -EncodedCommand: a CLIXML document of the error
    stream, one <S S="Error"> per line, as Windows PowerShell 5.1 writes it."""
    parts = [f'#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="{_CLIXML_NS}">']
    for text in errors:
        for line in text.split("\r\n"):
            parts.append(f'<S S="Error">{_clixml_escape(line + chr(13) + chr(10))}</S>')
    parts.append("</Objs>")
    return "".join(parts).encode("utf-8")


class WrapperFailure(Exception):
    """A terminating error inside ansible-core's exec wrapper; reported as its failure JSON."""

    def __init__(self, message: str, exception: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exception = exception or message
