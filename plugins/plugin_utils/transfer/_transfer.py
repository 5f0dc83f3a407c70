"""File transfer between the controller and a Windows host, shared by the winrm and psrp plugins.

Internal use only: this module is not part of the collection's public API.

Both directions run one of our PowerShell scripts and stream base64 lines through its pipeline
input (WinRS stdin lines or PSRP input objects), and both are verified by SHA-1:

- PUT: input line 1 is ``encode_header({"path": dest})``, then one base64 line per raw chunk
  (``iter_put_lines``). The script answers one JSON line ``{"sha1": ..., "size": ...}``.
- FETCH: input line 1 is ``encode_header({"path": src, "chunk_size": N})``. The script answers
  one base64 line per chunk of at most N bytes and a last JSON line; ``FetchDecoder`` reads it.

On a host-side failure the scripts write the reason to stderr and exit 1 without the JSON line.

``put_file`` and ``fetch_file`` are the one orchestration of both: chunk sizing, streaming,
SHA-1 and size checks, and no partial local file after a failed fetch. Each session is a
``TransferChannel``: it runs a script with input lines and hands its output over as text.
"""

from __future__ import annotations

import base64
import binascii
import collections.abc as c
import contextlib
import hashlib
import itertools
import json
import os
import re
import typing as t

from ansible.errors import AnsibleError

PUT_SCRIPT = r"""# winops.remoting transfer: put v1
begin {
    $ErrorActionPreference = 'Stop'
    $ProgressPreference = 'SilentlyContinue'
    $path = $null
    $stream = $null
    $sha1 = [System.Security.Cryptography.SHA1]::Create()
    $size = [long]0

    function Stop-Transfer([string]$Reason) {
        if ($null -ne $stream) {
            $stream.Dispose()
            # Remove the partial file so that nothing half-written looks like a finished copy.
            [System.IO.File]::Delete($path)
        }
        Write-Error -Message "winops.remoting put: $Reason" -ErrorAction Continue
        exit 1
    }
}
process {
    foreach ($line in $input) {
        $text = ([string]$line).Trim()
        if ($text.Length -eq 0) { continue }
        try {
            $bytes = [System.Convert]::FromBase64String($text)
            if ($null -eq $path) {
                $header = [System.Text.Encoding]::UTF8.GetString($bytes) | ConvertFrom-Json
                $path = [string]$header.path
                if ([string]::IsNullOrEmpty($path)) { Stop-Transfer 'the header names no path' }
                if ([System.IO.Directory]::Exists($path)) {
                    Stop-Transfer "'$path' is a directory"
                }
                $parent = [System.IO.Path]::GetDirectoryName($path)
                if ($parent -and -not [System.IO.Directory]::Exists($parent)) {
                    Stop-Transfer "the parent directory '$parent' of '$path' does not exist"
                }
                $stream = [System.IO.FileStream]::new($path, [System.IO.FileMode]::Create,
                    [System.IO.FileAccess]::Write, [System.IO.FileShare]::None)
                continue
            }
            $stream.Write($bytes, 0, $bytes.Length)
            [void]$sha1.TransformBlock($bytes, 0, $bytes.Length, $null, 0)
            $size += $bytes.Length
        }
        catch {
            if ($null -eq $path) {
                Stop-Transfer "the header line is not base64 JSON: $($_.Exception.Message)"
            }
            Stop-Transfer "writing '$path' failed: $($_.Exception.Message)"
        }
    }
}
end {
    if ($null -eq $path) { Stop-Transfer 'no header line was received' }
    try {
        $stream.Flush()
        $stream.Dispose()
        $stream = $null
    }
    catch {
        Stop-Transfer "closing '$path' failed: $($_.Exception.Message)"
    }
    [void]$sha1.TransformFinalBlock([byte[]]::new(0), 0, 0)
    $hash = [System.BitConverter]::ToString($sha1.Hash).Replace('-', '').ToLowerInvariant()
    Write-Output "{""sha1"":""$hash"",""size"":$size}"
}
"""

FETCH_SCRIPT = r"""# winops.remoting transfer: fetch v1
begin {
    $ErrorActionPreference = 'Stop'
    $ProgressPreference = 'SilentlyContinue'
    $header = $null

    function Stop-Transfer([string]$Reason) {
        Write-Error -Message "winops.remoting fetch: $Reason" -ErrorAction Continue
        exit 1
    }
}
process {
    foreach ($line in $input) {
        $text = ([string]$line).Trim()
        if ($text.Length -eq 0 -or $null -ne $header) { continue }
        try {
            $json = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($text))
            $header = $json | ConvertFrom-Json
        }
        catch {
            Stop-Transfer "the header line is not base64 JSON: $($_.Exception.Message)"
        }
    }
}
end {
    if ($null -eq $header) { Stop-Transfer 'no header line was received' }
    $path = [string]$header.path
    $chunkSize = [int]$header.chunk_size
    if ([string]::IsNullOrEmpty($path)) { Stop-Transfer 'the header names no path' }
    if ($chunkSize -lt 1) { Stop-Transfer "chunk_size $chunkSize is not a positive number" }
    if ([System.IO.Directory]::Exists($path)) { Stop-Transfer "'$path' is a directory" }
    if (-not [System.IO.File]::Exists($path)) { Stop-Transfer "'$path' does not exist" }

    $sha1 = [System.Security.Cryptography.SHA1]::Create()
    $size = [long]0
    $stream = $null
    try {
        $buffer = [byte[]]::new($chunkSize)
        # ReadWrite sharing lets us copy a log file that another process still writes to.
        $stream = [System.IO.FileStream]::new($path, [System.IO.FileMode]::Open,
            [System.IO.FileAccess]::Read, [System.IO.FileShare]::ReadWrite)
        while (($read = $stream.Read($buffer, 0, $chunkSize)) -gt 0) {
            [void]$sha1.TransformBlock($buffer, 0, $read, $null, 0)
            $size += $read
            Write-Output ([System.Convert]::ToBase64String($buffer, 0, $read))
        }
    }
    catch {
        Stop-Transfer "reading '$path' failed: $($_.Exception.Message)"
    }
    finally {
        if ($null -ne $stream) { $stream.Dispose() }
    }
    [void]$sha1.TransformFinalBlock([byte[]]::new(0), 0, 0)
    $hash = [System.BitConverter]::ToString($sha1.Hash).Replace('-', '').ToLowerInvariant()
    Write-Output "{""sha1"":""$hash"",""size"":$size}"
}
"""

# Bytes reserved for the SOAP envelope of a WinRS Send (headers, shell and command ids).
DEFAULT_ENVELOPE_OVERHEAD = 4096
# Below this, a transfer would need so many round trips that a bad setting is the likelier story.
MIN_PUT_CHUNK_SIZE = 3 * 1024
# FETCH output is split into Receive responses by the host, so this only bounds memory per line.
DEFAULT_FETCH_CHUNK_SIZE = 512 * 1024

_SHA1_HEX = re.compile(r"^[0-9a-f]{40}$")


class TransferError(AnsibleError):
    """A file transfer failed or its result could not be trusted."""


def powershell_command_line(script: str) -> str:
    """The WinRS command line that runs ``script``: powershell.exe with -EncodedCommand."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return (
        "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Unrestricted "
        f"-EncodedCommand {encoded}"
    )


def _base64_length(raw_length: int) -> int:
    return 4 * ((raw_length + 2) // 3)


def put_chunk_size(
    max_envelope_size: int, envelope_overhead: int = DEFAULT_ENVELOPE_OVERHEAD
) -> int:
    """Raw bytes per PUT chunk so that one chunk's line, as sent, fits in one WSMan envelope.

    The chunk becomes a base64 line plus ``\\r\\n``; WinRS Send base64-encodes that stdin line
    once more into the envelope's Stream element, so both expansions are budgeted. The result
    is a multiple of 3, so no line carries base64 padding except possibly the last one.
    Raises TransferError when ``max_envelope_size`` leaves less than MIN_PUT_CHUNK_SIZE.
    """
    available = max_envelope_size - envelope_overhead
    # Largest line length L with base64_length(L + 2) <= available, then chunk = L * 3/4.
    line_length = (available // 4) * 3 - 2
    chunk_size = (line_length * 3 // 4) // 3 * 3
    if chunk_size < MIN_PUT_CHUNK_SIZE:
        needed = envelope_overhead + _base64_length(_base64_length(MIN_PUT_CHUNK_SIZE) + 2)
        raise TransferError(
            f"Invalid value {max_envelope_size!r} for max_envelope_size: expected at least "
            f"{needed} bytes, so that a {MIN_PUT_CHUNK_SIZE}-byte file chunk fits next to the "
            f"{envelope_overhead}-byte SOAP overhead"
        )
    return chunk_size


def stdin_chunk_size(max_envelope_size: int) -> int:
    """Raw stdin bytes per WinRS Send of a piped command: base64-encoded in the envelope."""
    return (max_envelope_size - DEFAULT_ENVELOPE_OVERHEAD) // 4 * 3


def encode_header(payload: dict[str, t.Any]) -> str:
    """The first input line of a transfer: base64 of the UTF-8 JSON ``payload``."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.b64encode(data).decode("ascii")


def iter_put_lines(path: str, chunk_size: int, digest: t.Any | None = None) -> t.Iterator[str]:
    """Yield one base64 line (no line terminator) per ``chunk_size`` bytes of the local file.

    The file is streamed, never held whole in memory; an empty file yields nothing. WinRS
    callers append ``\\r\\n`` to each line; PSRP callers send each line as one input object.
    ``digest`` (a hashlib object), when given, is updated with every chunk sent.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    try:
        with open(path, "rb") as source:
            while chunk := source.read(chunk_size):
                if digest is not None:
                    digest.update(chunk)
                yield base64.b64encode(chunk).decode("ascii")
    except OSError as err:
        # The controller's file, not the connection: the task fails, the host stays reachable.
        raise TransferError(f"cannot read the local file {path}: {err.strerror or err}") from None


def sha1_of_file(path: str) -> str:
    """Lower-case hex SHA-1 of a local file, read in blocks."""
    digest = hashlib.sha1()
    with open(path, "rb") as source:
        while block := source.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def parse_result_line(line: str) -> tuple[str, int]:
    """Parse the final ``{"sha1": ..., "size": ...}`` line of either script."""
    try:
        result = json.loads(line)
    except ValueError as err:
        raise TransferError(f"The host's transfer result is not JSON: {line[:200]!r}") from err
    sha1 = result.get("sha1") if isinstance(result, dict) else None
    size = result.get("size") if isinstance(result, dict) else None
    if not isinstance(sha1, str) or not _SHA1_HEX.match(sha1.lower()):
        raise TransferError(f"The host's transfer result has no valid sha1: {line[:200]!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TransferError(f"The host's transfer result has no valid size: {line[:200]!r}")
    return sha1.lower(), size


class FetchDecoder:
    """Turn FETCH script output, fed in pieces of any size, into a local file.

    Chunk lines are decoded and written as soon as they are complete, and hashed on the way,
    so ``local_sha1`` is known without reading the file again. The file is opened (and so
    emptied) when the first bytes come, or at the end for an empty one: a fetch that fails
    before (a missing remote file) leaves a local file of that name as it was.
    """

    def __init__(self, out_path: str) -> None:
        if os.path.isdir(out_path):
            raise TransferError(f"Fetch into {out_path}: it is a directory, not a file")
        self.out_path = out_path
        self.bytes_written = 0
        self._digest = hashlib.sha1()
        self._pending = ""
        self._result: tuple[str, int] | None = None
        # Kept open across feed() calls from the first bytes on; finish() or close() closes it.
        self._out: t.BinaryIO | None = None
        self.opened = False  # whether out_path was opened, and so emptied
        self._finished = False

    def _output(self) -> t.BinaryIO:
        if self._out is None:
            try:
                self._out = open(self.out_path, "wb")
            except OSError as err:
                raise self._cannot_write(err) from err
            self.opened = True
        return self._out

    def _cannot_write(self, err: OSError) -> TransferError:
        # A local failure, raised while the host's answer is being read: named as one, not
        # taken for the connection's.
        return TransferError(f"Fetch into {self.out_path}: cannot write it: {err}")

    @property
    def local_sha1(self) -> str:
        """SHA-1 of the bytes written so far."""
        return self._digest.hexdigest()

    def feed(self, text: str) -> None:
        """Consume more stdout text; complete lines are processed, a partial line is kept."""
        if self._finished:
            raise TransferError(f"Fetch into {self.out_path} was already finished")
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._process_line(line)

    def _process_line(self, raw_line: str) -> None:
        line = raw_line.strip()
        if not line:
            return
        if self._result is not None:
            raise TransferError(f"Unexpected output after the fetch result: {line[:200]!r}")
        # The base64 alphabet has no "{", so a brace can only start the result line.
        if line.startswith("{"):
            self._result = parse_result_line(line)
            return
        try:
            chunk = base64.b64decode(line, validate=True)
        except (binascii.Error, ValueError) as err:
            raise TransferError(f"Fetch output line is not base64: {line[:200]!r}") from err
        try:
            self._output().write(chunk)
        except OSError as err:  # a full disk, say
            raise self._cannot_write(err) from err
        self._digest.update(chunk)
        self.bytes_written += len(chunk)

    def close(self) -> None:
        """Close the output file; safe to call more than once (for error paths)."""
        self._finished = True
        if self._out is not None:
            self._out.close()
            self._out = None

    def finish(self) -> tuple[str, int]:
        """Process the last line, close the file and return (host's sha1, host's size).

        Raises TransferError when the result line is missing or malformed, or when the host's
        size differs from the number of bytes received.
        """
        if self._finished:
            raise TransferError(f"Fetch into {self.out_path} was already finished")
        try:
            pending, self._pending = self._pending, ""
            self._process_line(pending)
            if self._result is not None and self._result[1] == 0 and not self.bytes_written:
                self._output()  # an empty file is a file too
        finally:
            self.close()
        if self._result is None:
            raise TransferError(
                f"Fetch into {self.out_path} ended without the host's sha1/size result line "
                f"after {self.bytes_written} bytes"
            )
        sha1, size = self._result
        if size != self.bytes_written:
            raise TransferError(
                f"Fetch into {self.out_path}: the host sent {self.bytes_written} bytes "
                f"but reported a size of {size}"
            )
        return sha1, size


def verify_sha1(direction: str, path: str, local_sha1: str, remote_sha1: str) -> None:
    """Raise TransferError naming both hashes unless they match (case-insensitively)."""
    if local_sha1.lower() != remote_sha1.lower():
        raise TransferError(
            f"{direction} of {path} failed verification: local SHA-1 {local_sha1.lower()} "
            f"does not match remote SHA-1 {remote_sha1.lower()}"
        )


# -- the orchestration both sessions share ------------------------------------------------------


class ScriptResult(t.NamedTuple):
    """What a transfer script left: exit code, output not handed to a sink, clean stderr."""

    rc: int
    stdout: str
    stderr: str


class TransferChannel(t.Protocol):
    """What a session offers the transfer: a script run with streamed input and output."""

    def transfer_chunk_sizes(self) -> tuple[int, int]:
        """Raw bytes per PUT line and per FETCH line for this session's envelope size."""

    def run_transfer_script(
        self,
        script: str,
        input_lines: c.Iterable[str],
        on_output: c.Callable[[str], None] | None,
    ) -> ScriptResult:
        """Run ``script`` with one input line per item; output text goes to ``on_output``."""


def _last_line(text: str) -> str:
    meaningful = [line.strip() for line in text.splitlines() if line.strip()]
    return meaningful[-1] if meaningful else ""


def _host_error(action: str, result: ScriptResult) -> TransferError:
    return TransferError(
        f"{action} failed on the host (exit code {result.rc}): {result.stderr.strip()}"
    )


def put_file(channel: TransferChannel, in_path: str, out_path: str) -> int:
    """Copy the local ``in_path`` to ``out_path`` on the host, verified by SHA-1 and size."""
    put_chunk, _fetch_chunk = channel.transfer_chunk_sizes()
    local_size = os.path.getsize(in_path)
    digest = hashlib.sha1()
    lines = itertools.chain(
        [encode_header({"path": out_path})], iter_put_lines(in_path, put_chunk, digest)
    )
    result = channel.run_transfer_script(PUT_SCRIPT, lines, None)
    action = f"put of {in_path} to {out_path}"
    if result.rc != 0:
        raise _host_error(action, result)
    remote_sha1, remote_size = parse_result_line(_last_line(result.stdout))
    verify_sha1("put", out_path, digest.hexdigest(), remote_sha1)
    if remote_size != local_size:
        raise TransferError(
            f"{action}: the host wrote {remote_size} bytes but the local file has {local_size}"
        )
    return remote_size


def fetch_file(channel: TransferChannel, in_path: str, out_path: str) -> int:
    """Copy ``in_path`` from the host to the local ``out_path``, verified by SHA-1 and size.

    A failed fetch leaves no partial local file behind, and a local file it had not begun
    to write as it was.
    """
    _put_chunk, fetch_chunk = channel.transfer_chunk_sizes()
    header = encode_header({"path": in_path, "chunk_size": fetch_chunk})
    decoder = FetchDecoder(out_path)
    completed = False
    try:
        result = channel.run_transfer_script(FETCH_SCRIPT, [header], decoder.feed)
        if result.rc != 0:
            raise _host_error(f"fetch of {in_path} to {out_path}", result)
        remote_sha1, size = decoder.finish()
        verify_sha1("fetch", in_path, decoder.local_sha1, remote_sha1)
        completed = True
    finally:
        decoder.close()
        if not completed and decoder.opened:
            # Nothing half-copied may look like a fetched file.
            with contextlib.suppress(OSError):
                os.remove(out_path)
    return size
