"""put_file and fetch_file over a WinRS shell, with the collection's transfer scripts.

Internal use only: this module is not part of the collection's public API.

The wire protocol (header line, base64 chunk lines, JSON result line) is the one in _transfer;
this module feeds it through WinRS stdin and Receive. Both directions stream: a PUT reads the
local file chunk by chunk while sending, a FETCH writes each Receive's output as it arrives.
"""

from __future__ import annotations

import contextlib
import itertools
import os

from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import clean_stderr
from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
    CommandResult,
    WinRMSession,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
    DEFAULT_FETCH_CHUNK_SIZE,
    FETCH_SCRIPT,
    PUT_SCRIPT,
    FetchDecoder,
    TransferError,
    encode_header,
    iter_put_lines,
    parse_result_line,
    powershell_command_line,
    put_chunk_size,
    sha1_of_file,
    verify_sha1,
)

LINE_END = b"\r\n"


def _host_error(action: str, result: CommandResult) -> TransferError:
    reason = clean_stderr(result.stderr.decode("utf-8", errors="replace")).strip()
    return TransferError(f"{action} failed on the host (exit code {result.rc}): {reason}")


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode("utf-8", errors="replace").splitlines()]
    meaningful = [line for line in lines if line]
    return meaningful[-1] if meaningful else ""


def put_file(session: WinRMSession, in_path: str, out_path: str) -> None:
    """Copy the local ``in_path`` to ``out_path`` on the host and verify it by SHA-1 and size."""
    chunk_size = put_chunk_size(session.settings.max_envelope_size)
    local_size = os.path.getsize(in_path)
    lines = itertools.chain(
        [encode_header({"path": out_path})], iter_put_lines(in_path, chunk_size)
    )
    stdin = (line.encode("ascii") + LINE_END for line in lines)
    result = session.run(powershell_command_line(PUT_SCRIPT), stdin=stdin)
    action = f"put of {in_path} to {out_path}"
    if result.rc != 0:
        raise _host_error(action, result)
    remote_sha1, remote_size = parse_result_line(_last_line(result.stdout))
    verify_sha1("put", out_path, sha1_of_file(in_path), remote_sha1)
    if remote_size != local_size:
        raise TransferError(
            f"{action}: the host wrote {remote_size} bytes but the local file has {local_size}"
        )


def fetch_file(session: WinRMSession, in_path: str, out_path: str) -> None:
    """Copy ``in_path`` from the host to the local ``out_path``, verified by SHA-1 and size.

    A failed fetch leaves no partial local file behind.
    """
    header = encode_header({"path": in_path, "chunk_size": DEFAULT_FETCH_CHUNK_SIZE})
    decoder = FetchDecoder(out_path)
    completed = False
    try:

        def feed(data: bytes) -> None:
            # Chunk lines are base64 and the result line is JSON: ASCII, so any Receive
            # boundary is a character boundary.
            decoder.feed(data.decode("utf-8", errors="replace"))

        result = session.run(
            powershell_command_line(FETCH_SCRIPT),
            stdin=[header.encode("ascii") + LINE_END],
            stdout_sink=feed,
        )
        if result.rc != 0:
            raise _host_error(f"fetch of {in_path} to {out_path}", result)
        remote_sha1, _size = decoder.finish()
        verify_sha1("fetch", in_path, decoder.local_sha1, remote_sha1)
        completed = True
    finally:
        decoder.close()
        if not completed:
            with contextlib.suppress(OSError):
                os.remove(out_path)
