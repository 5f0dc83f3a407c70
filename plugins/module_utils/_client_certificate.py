# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Client certificates for WinRM certificate authentication, made and checked with cryptography.

Internal use only (winops.remoting.winrm_client_certificate). A certificate here is what the
Windows recipe asks for: subject CN=<account>, Client Authentication extended key usage, and a
subject alternative name of type UPN (otherName 1.3.6.1.4.1.311.20.2.3, a UTF8String) that
the host's ClientCertificate mapping matches. It is self-signed or signed by a given CA.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import tempfile
import traceback
import typing as t

# Guarded so that importing this file never fails: the module reports a missing cryptography
# through missing_required_lib (CRYPTOGRAPHY_IMPORT_ERROR), and nothing below touches the
# library at import time.
try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR: str | None = traceback.format_exc()
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None

UPN_OID = "1.3.6.1.4.1.311.20.2.3"
RSA_KEY_SIZES = (2048, 3072, 4096)
# Key size of an ECDSA key -> the name of its curve in cryptography.hazmat...ec.
EC_CURVES = {256: "SECP256R1", 384: "SECP384R1"}
DEFAULT_KEY_SIZE = {"rsa": 2048, "ecdsa": 256}
# Issued five minutes in the past so that a host whose clock is slightly behind accepts it at once.
_BACKDATE = datetime.timedelta(minutes=5)

if t.TYPE_CHECKING:
    PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class ClientCertificateError(ValueError):
    """A request or an input file that cannot be used; the message names the option."""


@dataclasses.dataclass(frozen=True)
class Issuer:
    """A CA that signs the client certificate."""

    cert: x509.Certificate
    key: PrivateKey
    path: str


@dataclasses.dataclass(frozen=True)
class CertificateRequest:
    """What the client certificate must be."""

    username: str
    upn: str
    key_type: str
    key_size: int
    validity_days: int
    renew_days_before_expiry: int
    issuer: Issuer | None = None


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint as Windows shows it: upper-case hex, no separators."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def not_valid_after(cert: x509.Certificate) -> datetime.datetime:
    # not_valid_after_utc exists from cryptography 42; requirements allow 41.
    value = getattr(cert, "not_valid_after_utc", None)
    return (
        value if value is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    )


def not_valid_before(cert: x509.Certificate) -> datetime.datetime:
    # As not_valid_after: not_valid_before_utc exists from cryptography 42.
    value = getattr(cert, "not_valid_before_utc", None)
    return (
        value if value is not None else cert.not_valid_before.replace(tzinfo=datetime.timezone.utc)
    )


def der_utf8_string(text: str) -> bytes:
    """DER encoding of an ASN.1 UTF8String (the value of a UPN otherName)."""
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        length = bytes([len(raw)])
    else:
        size = (len(raw).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(raw).to_bytes(size, "big")
    return b"\x0c" + length + raw


def parse_der_utf8_string(data: bytes) -> str | None:
    """The text of a DER UTF8String, or None when `data` is something else."""
    if len(data) < 2 or data[0] != 0x0C:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    body = data[offset : offset + length]
    if len(body) != length:
        return None
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def upn_of(cert: x509.Certificate) -> str | None:
    """The UPN subject alternative name of a certificate, if it has one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id.dotted_string == UPN_OID:
            return parse_der_utf8_string(other.value)
    return None


def common_name_of(cert: x509.Certificate) -> str | None:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def has_client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def key_description(key: t.Any) -> tuple[str, int] | None:
    """(key_type, key_size) of a private or public key this module can make, else None."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "rsa", key.key_size
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return "ecdsa", key.curve.key_size
    return None


def new_private_key(key_type: str, key_size: int) -> PrivateKey:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    return ec.generate_private_key(getattr(ec, EC_CURVES[key_size])())


def same_public_key(a: t.Any, b: t.Any) -> bool:
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(a.public_bytes(der, spki) == b.public_bytes(der, spki))


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` is the certificate's issuer by name and by signature."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def load_certificate(path: str, option: str) -> x509.Certificate:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ClientCertificateError(f"{option}: cannot read {path}: {err.strerror}") from err
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as err:
        raise ClientCertificateError(f"{option}: {path} is not a PEM certificate") from err


def load_private_key(path: str, option: str, passphrase: str | None = None) -> PrivateKey:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise ClientCertificateError(f"{option}: cannot read {path}: {err.strerror}") from err
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode("utf-8") if passphrase else None
        )
    except TypeError as err:
        # Never repeat the library's text: it may describe the passphrase.
        raise ClientCertificateError(
            f"{option}: {path} is encrypted and no passphrase was given, or a passphrase was "
            "given for a key that is not encrypted"
        ) from err
    except ValueError as err:
        raise ClientCertificateError(
            f"{option}: {path} is not a PEM private key, or the passphrase is wrong"
        ) from err
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ClientCertificateError(f"{option}: {path} holds a key type other than RSA or ECDSA")
    return key


def load_issuer(
    ca_path: str, ca_key_path: str, passphrase: str | None, now: datetime.datetime
) -> Issuer:
    """The signing CA, checked: a CA certificate, in its validity period, with its own key."""
    cert = load_certificate(ca_path, "ca_path")
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ClientCertificateError(
            f"ca_path: {ca_path} is not a CA certificate (basicConstraints CA:TRUE is missing)"
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not usage.key_cert_sign:
            raise ClientCertificateError(
                f"ca_path: {ca_path} may not sign certificates (keyUsage lacks keyCertSign)"
            )
    except x509.ExtensionNotFound:
        pass
    if not not_valid_before(cert) <= now < not_valid_after(cert):
        raise ClientCertificateError(
            f"ca_path: {ca_path} is outside its validity period "
            f"({not_valid_before(cert).isoformat()} to {not_valid_after(cert).isoformat()})"
        )
    key = load_private_key(ca_key_path, "ca_key_path", passphrase)
    if not same_public_key(key.public_key(), cert.public_key()):
        raise ClientCertificateError(
            f"ca_key_path: {ca_key_path} is not the private key of the certificate in {ca_path}"
        )
    return Issuer(cert, key, ca_path)


def _key_usage(key_type: str) -> x509.KeyUsage:
    # RSA keys sign the handshake and may encipher (RSA key exchange); EC keys only sign.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_type == "rsa",
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def build_certificate(
    request: CertificateRequest, key: PrivateKey, now: datetime.datetime
) -> x509.Certificate:
    """The client certificate for `request`, signed by its issuer or by `key` itself."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, request.username)])
    signer_key: PrivateKey = key
    issuer_name = subject
    builder = x509.CertificateBuilder()
    if request.issuer is not None:
        signer_key = request.issuer.key
        issuer_name = request.issuer.cert.subject
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(request.issuer.key.public_key()),
            critical=False,
        )
    not_after = now + datetime.timedelta(days=request.validity_days)
    if request.issuer is not None:
        # A certificate outliving its issuer fails chain building once the issuer expires.
        not_after = min(not_after, not_valid_after(request.issuer.cert))
    builder = (
        builder.subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(request.key_type), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.OtherName(x509.ObjectIdentifier(UPN_OID), der_utf8_string(request.upn))]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    return builder.sign(signer_key, hashes.SHA256())


def reasons_to_reissue(
    request: CertificateRequest,
    cert: x509.Certificate,
    key: PrivateKey,
    now: datetime.datetime,
) -> list[str]:
    """Why the existing certificate and key do not satisfy `request`; empty when they do."""
    reasons = []
    if not same_public_key(cert.public_key(), key.public_key()):
        reasons.append("the key file does not hold the certificate's private key")
    if common_name_of(cert) != request.username:
        reasons.append(f"subject CN is {common_name_of(cert)!r}, not {request.username!r}")
    if upn_of(cert) != request.upn:
        reasons.append(f"UPN is {upn_of(cert)!r}, not {request.upn!r}")
    if not has_client_auth(cert):
        reasons.append("the Client Authentication extended key usage is missing")
    if key_description(key) != (request.key_type, request.key_size):
        found = key_description(key)
        reasons.append(f"key is {found[0]} {found[1]}" if found else "key is of another type")
    signer = request.issuer.cert if request.issuer is not None else cert
    if not signed_by(cert, signer):
        reasons.append(
            f"not signed by the CA in {request.issuer.path}"
            if request.issuer is not None
            else "not self-signed"
        )
    remaining = not_valid_after(cert) - now
    if remaining <= datetime.timedelta(days=request.renew_days_before_expiry):
        reasons.append(
            f"expires {not_valid_after(cert).isoformat()}, within "
            f"{request.renew_days_before_expiry} days"
        )
    return reasons


def pem_certificate(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_private_key(key: PrivateKey) -> bytes:
    # Unencrypted on purpose: urllib3, under both connection plugins, cannot load an encrypted key.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_atomically(path: str, data: bytes, mode: int) -> None:
    """Replace `path` with `data`: written to a private temporary file beside it (created 0600,
    so a key is never readable by others, even briefly), synced, given `mode`, then renamed."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=".winops-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def issuer_store(issuer: x509.Certificate) -> str:
    """The host's LocalMachine store for the issuer: Root for a root CA (self-signed), CA
    (Intermediate Certification Authorities) for an intermediate, which Windows chains to its
    root in Root."""
    return "Root" if issuer.issuer == issuer.subject else "CA"


def describe(
    cert: x509.Certificate, issuer: x509.Certificate, issuer_path: str
) -> dict[str, t.Any]:
    """The facts the module returns about a certificate (never key material); `issuer` is the
    certificate that signed it (`cert` itself when self-signed)."""
    return {
        "thumbprint": thumbprint(cert),
        "issuer_thumbprint": thumbprint(issuer),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "upn": upn_of(cert),
        "not_before": not_valid_before(cert).isoformat(),
        "not_after": not_valid_after(cert).isoformat(),
        "serial_number": format(cert.serial_number, "X"),
        "self_signed": cert.issuer == cert.subject,
        "issuer_path": issuer_path,
    }
