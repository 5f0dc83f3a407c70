"""File transfer scripts: ours (winops.remoting, "put v1"/"fetch v1") and ansible-core 2.19's
builtin winrm/psrp put and fetch actions (run through the bootstrap wrapper).

Everything reads and writes real bytes in the sandbox and computes SHA-1 and sizes from them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import typing as t

from winhost.execution.context import ExecContext
from winhost.execution.errors import PSError
from winhost.execution.process import ProgramIO
from winhost.execution.sandbox import SandboxError, WindowsPath

OUR_MARKERS = {
    "# winops.remoting transfer: put v1": "put",
    "# winops.remoting transfer: fetch v1": "fetch",
}


def marker_of(script: str) -> str | None:
    """ "put"/"fetch" when the script is one of our transfer scripts (its first line says so)."""
    first = script.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first.startswith("# winops.remoting transfer:") and first not in OUR_MARKERS:
        # A future protocol version must not be run with the v1 rules.
        raise ValueError(f"winhost does not model the transfer protocol {first!r}")
    return OUR_MARKERS.get(first)


class _TransferFailed(Exception):
    pass


def _write_error(io: ProgramIO, direction: str, reason: str) -> t.NoReturn:
    # Our scripts report through Write-Error inside their Stop-Transfer function, then exit 1.
    io.error(
        PSError(
            message=f"winops.remoting {direction}: {reason}",
            category="NotSpecified",
            error_id="Microsoft.PowerShell.Commands.WriteErrorException,Stop-Transfer",
            reason="WriteErrorException",
            command="Stop-Transfer",
            activity="Write-Error",
        )
    )
    io.exit(1)


def _decode_b64(text: str) -> bytes:
    return base64.b64decode(text.strip(), validate=True)


def run_ours(direction: str, ctx: ExecContext, io: ProgramIO) -> None:
    if direction == "put":
        _our_put(ctx, io)
    else:
        _our_fetch(ctx, io)


def _our_put(ctx: ExecContext, io: ProgramIO) -> None:
    target: WindowsPath | None = None
    handle: t.BinaryIO | None = None
    digest = hashlib.sha1()
    size = 0

    def fail(reason: str) -> t.NoReturn:
        if handle is not None:
            handle.close()
            if target is not None:
                target.local.unlink(missing_ok=True)
        _write_error(io, "put", reason)

    for line in io.lines():
        text = str(line).strip()
        if not text:
            continue
        if target is None:
            try:
                header = json.loads(_decode_b64(text).decode("utf-8"))
            except (binascii.Error, ValueError) as err:
                fail(f"the header line is not base64 JSON: {err}")
            path = str(header.get("path") or "") if isinstance(header, dict) else ""
            if not path:
                fail("the header names no path")
            try:
                target = ctx.resolve(path)
            except SandboxError as err:
                fail(f"writing '{path}' failed: {err.message}")
            if target.local.is_dir():
                fail(f"'{path}' is a directory")
            if not target.local.parent.is_dir():
                parent = path.replace("/", "\\").rsplit("\\", 1)[0]
                fail(f"the parent directory '{parent}' of '{path}' does not exist")
            handle = open(target.local, "wb")
            continue
        try:
            chunk = _decode_b64(text)
        except (binascii.Error, ValueError):
            fail(
                f"writing '{target.win}' failed: The input is not a valid Base-64 string as it "
                "contains a non-base 64 character, more than two padding characters, or an "
                "illegal character among the padding characters."
            )
        assert handle is not None
        handle.write(chunk)
        digest.update(chunk)
        size += len(chunk)
    if handle is None:
        _write_error(io, "put", "no header line was received")
    handle.close()
    io.write(json.dumps({"sha1": digest.hexdigest(), "size": size}, separators=(",", ":")))
    io.exit_code = 0


def _our_fetch(ctx: ExecContext, io: ProgramIO) -> None:
    header: t.Any = None
    for line in io.lines():
        text = str(line).strip()
        if not text or header is not None:
            continue
        try:
            header = json.loads(_decode_b64(text).decode("utf-8"))
        except (binascii.Error, ValueError) as err:
            _write_error(io, "fetch", f"the header line is not base64 JSON: {err}")
    if header is None:
        _write_error(io, "fetch", "no header line was received")
    path = str(header.get("path") or "") if isinstance(header, dict) else ""
    try:
        chunk_size = int(header.get("chunk_size") or 0) if isinstance(header, dict) else 0
    except (TypeError, ValueError):
        chunk_size = 0
    if not path:
        _write_error(io, "fetch", "the header names no path")
    if chunk_size < 1:
        _write_error(io, "fetch", f"chunk_size {chunk_size} is not a positive number")
    try:
        source = ctx.resolve(path)
    except SandboxError:
        _write_error(io, "fetch", f"'{path}' does not exist")
    if source.local.is_dir():
        _write_error(io, "fetch", f"'{path}' is a directory")
    if not source.local.is_file():
        _write_error(io, "fetch", f"'{path}' does not exist")
    digest = hashlib.sha1()
    size = 0
    with open(source.local, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            size += len(chunk)
            io.write(base64.b64encode(chunk).decode("ascii"))
    io.write(json.dumps({"sha1": digest.hexdigest(), "size": size}, separators=(",", ":")))
    io.exit_code = 0


# -- ansible-core 2.19 builtin actions (called from the exec wrapper) -------------------------


class ActionFailure(Exception):
    """A terminating error inside an exec-wrapper action; the wrapper reports it as JSON."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _dotnet_path(ctx: ExecContext, path: str, method: str, argc: int) -> WindowsPath:
    try:
        return ctx.resolve(path)
    except SandboxError as err:
        raise ActionFailure(
            f'Exception calling "{method}" with "{argc}" argument(s): "{err.message}"'
        ) from err


def builtin_put(ctx: ExecContext, io: ProgramIO, params: dict[str, t.Any], psrp: bool) -> None:
    """winrm_put_file.ps1 / psrp_put_file.ps1: [File]::Create(Path), base64 lines in, one
    line {"sha1":"..."} out."""
    path = str(params.get("Path") or "")
    target = _dotnet_path(ctx, path, "Create", 1)
    if not target.local.parent.is_dir():
        raise ActionFailure(
            f'Exception calling "Create" with "1" argument(s): "Could not find a part of the '
            f"path '{target.win}'.\""
        )
    if target.local.is_dir():
        raise ActionFailure(
            f'Exception calling "Create" with "1" argument(s): "Access to the path '
            f"'{target.win}' is denied.\""
        )
    digest = hashlib.sha1()
    with open(target.local, "wb") as handle:
        for line in io.lines():
            text = str(line)
            if psrp and not text:
                continue
            try:
                chunk = base64.b64decode(text.strip(), validate=True)
            except (binascii.Error, ValueError) as err:
                raise ActionFailure(
                    'Exception calling "FromBase64String" with "1" argument(s): "The input is not '
                    "a valid Base-64 string as it contains a non-base 64 character, more than two "
                    'padding characters, or an illegal character among the padding characters. "'
                ) from err
            handle.write(chunk)
            digest.update(chunk)
    io.write(json.dumps({"sha1": digest.hexdigest()}, separators=(",", ":")))


def builtin_winrm_fetch(ctx: ExecContext, io: ProgramIO, params: dict[str, t.Any]) -> None:
    """winrm_fetch_file.ps1: one base64 block of BufferSize bytes at Offset, "[DIR]", or
    "<Path> does not exist" on stderr with exit 1."""
    path = str(params.get("Path") or "")
    buffer_size = int(params.get("BufferSize") or 0)
    offset = int(params.get("Offset") or 0)
    source = _resolve_for_test_path(ctx, path)
    if source is not None and source.local.is_file():
        with open(source.local, "rb") as handle:
            handle.seek(offset)
            data = handle.read(buffer_size)
        if data:
            io.write(base64.b64encode(data).decode("ascii"))
    elif source is not None and source.local.is_dir():
        io.write("[DIR]")
    else:
        io.stderr_line(f"{path} does not exist")
        io.exit(1)


def builtin_psrp_fetch(ctx: ExecContext, io: ProgramIO, params: dict[str, t.Any]) -> None:
    """psrp_fetch_file.ps1: "[FILE]" then base64 blocks, "[DIR]", or "<Path> does not exist"."""
    path = str(params.get("Path") or "")
    buffer_size = int(params.get("BufferSize") or 0)
    source = _resolve_for_test_path(ctx, path)
    if source is not None and source.local.is_file():
        io.write("[FILE]")
        with open(source.local, "rb") as handle:
            while data := handle.read(buffer_size):
                io.write(base64.b64encode(data).decode("ascii"))
    elif source is not None and source.local.is_dir():
        io.write("[DIR]")
    else:
        # Write-Error under the exec wrapper's $ErrorActionPreference = 'Stop' is terminating:
        # the wrapper reports it as its failure JSON with exit code 1.
        raise ActionFailure(f"{path} does not exist")


def _resolve_for_test_path(ctx: ExecContext, path: str) -> WindowsPath | None:
    """Test-Path answers False (no error) for paths on missing drives or refused paths."""
    try:
        return ctx.resolve(path)
    except SandboxError:
        return None
