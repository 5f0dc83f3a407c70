"""An encrypted answer in one part unwrapped with plain byte searches, not regular expressions.

Internal use only: this module is not part of the collection's public API.

pypsrp's ``WinRMEncryption.unwrap_message`` splits every encrypted answer with one regular
expression and strips the closing delimiter with another, each a scan of the whole answer in
Python's regular-expression engine: about a fifth of the controller's work per Receive of a
fetch (docs/benchmarks.md). An answer sealed by NTLM or Kerberos is one part (MS-WSMV
2.2.9.1.1.2: the OriginalContent fields, then HT "Content-Type: application/octet-stream", a
32-bit length of the encryption header, the header and the encrypted data), which is taken here
by its fixed layout. Anything else (CredSSP's answers in several parts, a delimiter written
another way, as Exchange does) goes to pypsrp's own method, as before.
"""

from __future__ import annotations

import struct
import typing as t

_OCTET_STREAM = b"\tContent-Type: application/octet-stream\r\n"
_LENGTH_FIELD = b"Length="


class OnePart(t.NamedTuple):
    header: bytes  # the encryption header (NTLM signature, Kerberos token)
    data: bytes  # the encrypted answer
    length: int  # what the decrypted answer's length must be (OriginalContent's Length)


def one_part(message: bytes, boundary: bytes) -> OnePart | None:
    """The parts of an encrypted answer laid out as one MIME part; None for any other layout."""
    delimiter = b"--" + boundary + b"\r\n"
    closing = b"--" + boundary + b"--\r\n"
    if not (message.startswith(delimiter) and message.endswith(closing)):
        return None
    second = message.find(delimiter, len(delimiter))
    if second < 0:
        return None
    _fields, found, length = message[len(delimiter) : second].rpartition(_LENGTH_FIELD)
    length = length.strip()
    if not found or not length.isdigit():
        return None
    start = second + len(delimiter)
    if not message.startswith(_OCTET_STREAM, start):
        return None
    start += len(_OCTET_STREAM)
    end = len(message) - len(closing)
    if end - start < 4 or message.find(delimiter, start, end) >= 0:
        return None  # another part follows
    (header_length,) = struct.unpack_from("<I", message, start)
    start += 4
    if header_length > end - start:
        return None
    return OnePart(
        message[start : start + header_length], message[start + header_length : end], int(length)
    )


def unwrap_one_part_directly(encryption: t.Any) -> None:
    """Make pypsrp's ``encryption`` (a WinRMEncryption) unwrap an answer in one part itself,
    with the same security context and the same length check; other answers as before."""
    from pypsrp.exceptions import WinRMError

    unwrap_any = encryption.unwrap_message

    def unwrap_message(message: bytes, boundary: str) -> bytes:
        part = one_part(message, boundary.encode())
        if part is None:
            return t.cast(bytes, unwrap_any(message, boundary))
        plain = t.cast(bytes, encryption.context.unwrap_winrm(part.header, part.data))
        if len(plain) != part.length:
            raise WinRMError(
                "the decrypted answer is not as long as the host said: "
                f"{len(plain)} bytes, not {part.length}"
            )
        return plain

    encryption.unwrap_message = unwrap_message
