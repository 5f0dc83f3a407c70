"""The test PKI: a CA, host (server) certificates and client certificates, with `cryptography`.

Certificates are real X.509 with the extensions Windows looks at: serverAuth for the HTTPS
listener (SANs: fqdn, computer name, IP address), clientAuth plus a UPN otherName SAN for
certificate authentication (WinRM maps a client certificate by its issuer and UPN).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

UPN_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
# The extensions an enterprise CA (AD CS) writes to name the template a certificate was issued
# from: the Certificate Template Information of version 2+ templates (MS-WCCE 2.2.2.7.7.2,
# x509.MSCertificateTemplate) and the template name of version 1 templates (MS-WCCE 2.2.2.7.7.1).
TEMPLATE_NAME_OID = ObjectIdentifier("1.3.6.1.4.1.311.20.2")
_VALIDITY = datetime.timedelta(days=825)
# The key usage of a TLS server or client certificate (those the test CA issues and
# New-SelfSignedCertificate -Type SSLServerAuthentication alike): signing for the handshake, key
# encipherment for RSA key exchange.
LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=True,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=False,
    crl_sign=False,
    encipher_only=False,
    decipher_only=False,
)
# A CA's: it signs certificates and revocation lists.
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "winops winhost test PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def thumbprint(cert: x509.Certificate) -> str:
    """The SHA-1 thumbprint as Windows shows it (upper-case hex, no separators)."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()


def _der_utf8_string(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) < 0x80:
        length = bytes([len(raw)])
    else:
        size = (len(raw).bit_length() + 7) // 8
        length = bytes([0x80 | size]) + len(raw).to_bytes(size, "big")
    return b"\x0c" + length + raw


def _parse_der_utf8_string(data: bytes) -> str | None:
    if len(data) < 2 or data[0] != 0x0C:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(data[2 : 2 + size], "big"), 2 + size
    return data[offset : offset + length].decode("utf-8", errors="replace")


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def template_name(name: str) -> bytes:
    """DER of the version 1 template name extension as Windows CAs write it: a BMPString
    (MS-WCCE 2.2.2.7.7.1 describes SEQUENCE { UTF8String }; template_of reads both)."""
    body = name.encode("utf-16-be")
    return b"\x1e" + _der_length(len(body)) + body


def _der_read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One DER element at `offset`: its tag, its contents and the offset after it."""
    tag, length, offset = data[offset], data[offset + 1], offset + 2
    if length & 0x80:
        size = length & 0x7F
        length, offset = int.from_bytes(data[offset : offset + size], "big"), offset + size
    return tag, data[offset : offset + length], offset + length


def template_of(cert: x509.Certificate) -> tuple[str | None, str | None]:
    """The template OID (version 2+ extension) and template name (version 1 extension) of a
    certificate an enterprise CA issued; None for each it lacks."""
    oid: str | None = None
    name: str | None = None
    for extension in cert.extensions:
        value = extension.value
        if isinstance(value, x509.MSCertificateTemplate):  # cryptography decodes this one itself
            oid = value.template_id.dotted_string
            continue
        if not isinstance(value, x509.UnrecognizedExtension):
            continue
        if extension.oid == TEMPLATE_NAME_OID:
            # A bare BMPString as Windows CAs write it, or MS-WCCE's SEQUENCE { UTF8String }.
            tag, body, _ = _der_read(value.value, 0)
            if tag == 0x30:
                tag, body, _ = _der_read(body, 0)
            if tag == 0x1E:
                name = body.decode("utf-16-be", errors="replace")
            elif tag == 0x0C:
                name = body.decode("utf-8", errors="replace")
    return oid, name


def upn_of(cert: x509.Certificate) -> str | None:
    """The UPN otherName SAN of a certificate, if it has one."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id == UPN_OID:
            return _parse_der_utf8_string(other.value)
    return None


class CertificateAuthority:
    """A CA that signs host and client certificates (SHA-256 signatures)."""

    def __init__(self, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> None:
        self.cert = cert
        self.key = key

    @property
    def thumbprint(self) -> str:
        return thumbprint(self.cert)

    @classmethod
    def create(
        cls, common_name: str = "winhost test CA", *, path_length: int = 0
    ) -> CertificateAuthority:
        """A self-signed root CA; `path_length` 1 lets it sign an intermediate CA."""
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        name = _name(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    def issue_intermediate(self, common_name: str) -> CertificateAuthority:
        """An intermediate CA signed by this one (an enterprise PKI's issuing CA)."""
        key = _new_key()
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1825))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        return CertificateAuthority(cert, key)

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"CA key {key_path} is not an RSA key")
        return cls(cert, key)

    def save(self, cert_path: Path, key_path: Path) -> None:
        write_cert(cert_path, self.cert)
        write_key(key_path, self.key)

    def _issue(
        self,
        subject: x509.Name,
        sans: list[x509.GeneralName],
        usage: ObjectIdentifier,
        key: rsa.RSAPrivateKey,
    ) -> x509.Certificate:
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(LEAF_KEY_USAGE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )

    def issue_server(
        self, fqdn: str, computer_name: str, address: str
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A serverAuth certificate for an HTTPS listener, CN=fqdn."""
        key = _new_key()
        sans: list[x509.GeneralName] = [
            x509.DNSName(fqdn),
            x509.DNSName(computer_name),
            x509.IPAddress(ipaddress.ip_address(address)),
        ]
        return self._issue(_name(fqdn), sans, ExtendedKeyUsageOID.SERVER_AUTH, key), key

    def issue_enrolled(
        self,
        fqdn: str,
        computer_name: str,
        *,
        template_oid: str | None,
        template_name_v1: str | None,
        address: str | None = None,
        major_version: int = 100,
        minor_version: int = 0,
        not_before: datetime.datetime | None = None,
        validity: datetime.timedelta = datetime.timedelta(days=365),
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A serverAuth certificate as an enterprise CA issues it to a computer that enrols
        (auto-enrolment, Get-Certificate): subject CN=fqdn, DNS names fqdn and computer name,
        and the template extension(s); `address` adds an IP address, as a template whose subject
        is supplied in the request can carry."""
        key = _new_key()
        start = not_before or datetime.datetime.now(datetime.timezone.utc)
        sans: list[x509.GeneralName] = [x509.DNSName(fqdn), x509.DNSName(computer_name)]
        if address:
            sans.append(x509.IPAddress(ipaddress.ip_address(address)))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, fqdn)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + validity)
            .add_extension(LEAF_KEY_USAGE, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        if template_oid:
            builder = builder.add_extension(
                x509.MSCertificateTemplate(
                    ObjectIdentifier(template_oid), major_version, minor_version
                ),
                critical=False,
            )
        if template_name_v1:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(TEMPLATE_NAME_OID, template_name(template_name_v1)),
                critical=False,
            )
        return builder.sign(self.key, hashes.SHA256()), key

    def issue_client(
        self, upn: str, common_name: str
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A clientAuth certificate with a UPN SAN, as certificate authentication needs."""
        key = _new_key()
        sans: list[x509.GeneralName] = [x509.OtherName(UPN_OID, _der_utf8_string(upn))]
        return self._issue(_name(common_name), sans, ExtendedKeyUsageOID.CLIENT_AUTH, key), key


def write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def write_key(path: Path, key: PrivateKeyTypes) -> None:
    """Write a private key readable by the owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert` (its name is cert's issuer name and the signature holds)."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
