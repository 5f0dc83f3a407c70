"""Turning a finished PSRP pipeline into Ansible's (rc, stdout, stderr).

Internal use only: this module is not part of the collection's public API.

PSRP has no byte streams: a pipeline returns output objects, error records and host UI calls,
and the exit code only exists when the script called ``exit`` (``$host.SetShouldExit``). This
module renders them the way a PowerShell console would show them, so that module results parse
and error messages stay readable.
"""

from __future__ import annotations

import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import clean_stderr
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import Record

# Error ids PowerShell uses for lines a native program wrote to stderr: shown as the raw text.
_NATIVE_STDERR_IDS = frozenset(("NativeCommandError", "NativeCommandErrorMessage"))


class PipelineResult(Record):
    """What a pipeline produced, in the shape ConnectionBase.exec_command returns."""

    rc: int
    stdout: str
    stderr: str

    def as_bytes(self) -> tuple[int, bytes, bytes]:
        return self.rc, self.stdout.encode("utf-8"), self.stderr.encode("utf-8")


def render_output_object(value: t.Any) -> str:
    """One output object as text: strings as they are, complex objects as their properties."""
    if isinstance(value, str):
        return value
    to_string = getattr(value, "to_string", None)
    if to_string is not None or not hasattr(value, "adapted_properties"):
        return str(value)
    # A complex object without a ToString(): list its properties, one "name: value" a line.
    lines = [str(item) for item in getattr(value, "property_sets", []) or []]
    for properties in (value.adapted_properties, getattr(value, "extended_properties", {})):
        lines.extend(f"{name}: {item}" for name, item in (properties or {}).items())
    return "\n".join(lines)


def render_error_record(record: t.Any, include_stacktrace: bool = False) -> str:
    """An ErrorRecord as PowerShell prints it: message, position, category and error id."""
    fq_error = getattr(record, "fq_error", None) or ""
    message = str(record)
    if fq_error in _NATIVE_STDERR_IDS:
        # Text a native program wrote to stderr. PowerShell 5.1 on Server 2016 sends it as
        # NativeCommandErrorMessage pieces without a target and without newlines: keep them raw.
        if fq_error == "NativeCommandErrorMessage" and not getattr(record, "target_name", None):
            return message
        return f"{message}\r\n"

    command = getattr(record, "command_name", None)
    lines = [f"{command} : {message}" if command else message]
    position = getattr(record, "invocation_position_message", None)
    if position:
        lines.append(position)
    category = getattr(record, "message", None)
    if category:
        lines.append(f"    + CategoryInfo          : {category}")
    if fq_error:
        lines.append(f"    + FullyQualifiedErrorId : {fq_error}")
    stacktrace = getattr(record, "script_stacktrace", None)
    if include_stacktrace and stacktrace:
        lines.append(f"ScriptStackTrace:\r\n{stacktrace}")
    return "\r\n".join(lines) + "\r\n"


def collect_result(
    *,
    output: t.Iterable[t.Any],
    error_records: t.Iterable[t.Any],
    host_stdout: t.Iterable[str],
    host_stderr: t.Iterable[str],
    exit_code: int | None,
    failed: bool,
    include_stacktrace: bool = False,
) -> PipelineResult:
    """Combine everything a pipeline produced into one PipelineResult.

    The exit code is the one the script set with ``exit``; without one, 1 if the pipeline
    ended in the Failed state, else 0 (non-terminating error records alone do not make a
    command fail, as in PowerShell). CLIXML progress records are dropped from stderr.
    """
    stdout = "\r\n".join(render_output_object(item) for item in output)
    host_text = "".join(host_stdout)
    if stdout and host_text:
        stdout += "\r\n"
    stdout += host_text
    stderr = "".join(render_error_record(record, include_stacktrace) for record in error_records)
    stderr = clean_stderr(stderr + "".join(host_stderr))
    rc = exit_code if exit_code else (1 if failed else 0)
    return PipelineResult(rc=rc, stdout=stdout, stderr=stderr)
