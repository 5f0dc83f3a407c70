"""WinRM message encryption over HTTP (MS-WSMV 2.2.9.1): multipart/encrypted bodies sealed
with the connection's security context (NTLM/SPNEGO/Kerberos wrap, or CredSSP's TLS records,
which come in 16 KiB chunks as multipart/x-multi-encrypted)."""

from __future__ import annotations

import re
import struct
import typing as t

BOUNDARY = b"--Encrypted Boundary"
CREDSSP_CHUNK = 16384
_LENGTH = re.compile(rb"Length=(\d+)")
_PROTOCOL = re.compile(r'protocol="([^"]+)"', re.I)


class EncryptionError(ValueError):
    """A multipart/encrypted body that cannot be opened."""


class Sealer(t.Protocol):
    encryption_protocol: str

    def wrap(self, data: bytes) -> tuple[bytes, bytes]: ...

    def unwrap(self, header: bytes, data: bytes) -> bytes: ...


def is_encrypted(content_type: str) -> bool:
    base = content_type.split(";", 1)[0].strip().lower()
    return base in ("multipart/encrypted", "multipart/x-multi-encrypted")


def protocol_of(content_type: str) -> str | None:
    match = _PROTOCOL.search(content_type)
    return match.group(1) if match else None


def unseal(body: bytes, sealer: Sealer) -> bytes:
    """Decrypt every part of an encrypted body and check the declared lengths."""
    parts = [p for p in re.split(re.escape(BOUNDARY) + rb"\r\n", body) if p]
    if len(parts) % 2:
        raise EncryptionError("the encrypted body does not pair headers with payloads")
    message = b""
    for index in range(0, len(parts), 2):
        match = _LENGTH.search(parts[index])
        if match is None:
            raise EncryptionError("an encrypted part has no OriginalContent Length")
        payload = parts[index + 1]
        if payload.endswith(BOUNDARY + b"--\r\n"):
            payload = payload[: -len(BOUNDARY + b"--\r\n")]
        marker = b"Content-Type: application/octet-stream\r\n"
        start = payload.find(marker)
        if start < 0:
            raise EncryptionError("an encrypted part has no application/octet-stream payload")
        sealed = payload[start + len(marker) :]
        if len(sealed) < 4:
            raise EncryptionError("an encrypted payload is shorter than its length prefix")
        (header_length,) = struct.unpack("<I", sealed[:4])
        clear = sealer.unwrap(sealed[4 : 4 + header_length], sealed[4 + header_length :])
        if len(clear) != int(match.group(1)):
            raise EncryptionError("decrypted length differs from the declared Length")
        message += clear
    return message


def _seal_part(message: bytes, sealer: Sealer) -> bytes:
    header, data = sealer.wrap(message)
    return (
        BOUNDARY
        + b"\r\n\tContent-Type: "
        + sealer.encryption_protocol.encode()
        + b"\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
        + str(len(message)).encode()
        + b"\r\n"
        + BOUNDARY
        + b"\r\n\tContent-Type: application/octet-stream\r\n"
        + struct.pack("<I", len(header))
        + header
        + data
    )


def seal(message: bytes, sealer: Sealer) -> tuple[str, bytes]:
    """(Content-Type, body) for an encrypted response."""
    credssp = "credssp" in sealer.encryption_protocol.lower()
    if credssp and len(message) > CREDSSP_CHUNK:
        kind = "multipart/x-multi-encrypted"
        chunks = [message[i : i + CREDSSP_CHUNK] for i in range(0, len(message), CREDSSP_CHUNK)]
        body = b"".join(_seal_part(chunk, sealer) for chunk in chunks)
    else:
        kind = "multipart/encrypted"
        body = _seal_part(message, sealer)
    body += BOUNDARY + b"--\r\n"
    content_type = f'{kind};protocol="{sealer.encryption_protocol}";boundary="Encrypted Boundary"'
    return content_type, body
