"""Channel binding tokens (RFC 5929 tls-server-end-point) as WinRM checks them over HTTPS.

The server hashes its own certificate with the hash of the certificate's signature algorithm
(SHA-256 for MD5/SHA-1), exactly as clients do from the certificate they received. Whether an
NTLM client sent bindings at all is read from its AUTHENTICATE message (the MsvAvChannelBindings
AV pair of the NTLMv2 response), because CbtHardeningLevel=Relaxed only checks bindings a client
sent, while pyspnego's acceptor rejects a missing binding whenever it is given one.
"""

from __future__ import annotations

import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from spnego.channel_bindings import GssChannelBindings

_NTLM_SIGNATURE = b"NTLMSSP\x00"
_AV_EOL = 0x0000
_AV_CHANNEL_BINDINGS = 0x000A


def server_end_point_hash(cert_der: bytes) -> bytes:
    cert = x509.load_der_x509_certificate(cert_der)
    algorithm = cert.signature_hash_algorithm
    if algorithm is None or isinstance(algorithm, (hashes.MD5, hashes.SHA1)):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(cert_der)
    return digest.finalize()


def channel_bindings(cert_der: bytes) -> GssChannelBindings:
    return GssChannelBindings(
        application_data=b"tls-server-end-point:" + server_end_point_hash(cert_der)
    )


def ntlm_authenticate_has_bindings(token: bytes) -> bool | None:
    """Whether the NTLM AUTHENTICATE message in `token` (raw or inside SPNEGO) carries a
    non-zero channel binding hash; None when the token holds no AUTHENTICATE message."""
    start = token.find(_NTLM_SIGNATURE)
    if start < 0 or len(token) < start + 28:
        return None
    message = token[start:]
    (message_type,) = struct.unpack_from("<I", message, 8)
    if message_type != 3:
        return None
    nt_length, _max, nt_offset = struct.unpack_from("<HHI", message, 20)
    response = message[nt_offset : nt_offset + nt_length]
    if len(response) <= 24:
        return False  # NTLMv1 carries no AV pairs, hence no bindings
    # NTLMv2 response: NTProofStr(16) RespType HiRespType Reserved(6) Time(8) Challenge(8)
    # Reserved(4), then the AV pairs.
    position = 16 + 28
    while position + 4 <= len(response):
        av_id, av_length = struct.unpack_from("<HH", response, position)
        value = response[position + 4 : position + 4 + av_length]
        if av_id == _AV_EOL:
            break
        if av_id == _AV_CHANNEL_BINDINGS:
            return value != b"\x00" * len(value)
        position += 4 + av_length
    return False
