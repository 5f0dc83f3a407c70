"""Whether the host trusts a TLS client certificate for WinRM certificate authentication.

What Windows asks of the certificate before WinRM looks for a ClientCertificate mapping:
it is within its validity period, carries the Client Authentication extended key usage, and
chains (by name and signature, through LocalMachine\\CA if needed) to a certificate in
LocalMachine\\Root. A self-signed client certificate is its own issuer, so it must itself be
in Root, and, as the Ansible guide's set-up has it, in LocalMachine\\TrustedPeople too.
The issuer that the mapping names is the certificate's direct issuer.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from winhost import pki

ROOT = "LocalMachine\\Root"
INTERMEDIATE = "LocalMachine\\CA"
TRUSTED_PEOPLE = "LocalMachine\\TrustedPeople"
# A longer chain than this is not built (Windows has no such small limit; test PKIs need none).
_MAX_DEPTH = 5


class CertificateStores(t.Protocol):
    def store_certificates(self, store: str) -> list[x509.Certificate]: ...


@dataclasses.dataclass(frozen=True)
class ClientTrust:
    """The direct issuer when the certificate is trusted, else why not."""

    issuer: x509.Certificate | None
    reason: str = ""


def _valid_at(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _has_client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages


def _chains_to_root(
    cert: x509.Certificate,
    roots: list[x509.Certificate],
    intermediates: list[x509.Certificate],
    now: datetime.datetime,
) -> x509.Certificate | None:
    """The direct issuer of `cert` when a chain from it ends at a root, else None."""
    root_thumbprints = {pki.thumbprint(root) for root in roots}
    current, direct = cert, None
    for _ in range(_MAX_DEPTH):
        candidates = [c for c in roots + intermediates if pki.issued_by(current, c)]
        issuer = next((c for c in candidates if _valid_at(c, now)), None)
        if issuer is None:
            return None
        direct = direct or issuer
        if pki.thumbprint(issuer) in root_thumbprints:
            return direct
        current = issuer
    return None


def evaluate(
    cert: x509.Certificate, stores: CertificateStores, now: datetime.datetime
) -> ClientTrust:
    if not _valid_at(cert, now):
        return ClientTrust(
            None,
            f"client certificate is outside its validity period "
            f"({cert.not_valid_before_utc.isoformat()} to {cert.not_valid_after_utc.isoformat()})",
        )
    if not _has_client_auth(cert):
        return ClientTrust(None, "client certificate lacks the Client Authentication usage")
    roots = stores.store_certificates(ROOT)
    thumbprint = pki.thumbprint(cert)
    if cert.issuer == cert.subject:
        if thumbprint not in {pki.thumbprint(root) for root in roots}:
            return ClientTrust(
                None, f"self-signed client certificate {thumbprint} is not in {ROOT}"
            )
        people = {pki.thumbprint(c) for c in stores.store_certificates(TRUSTED_PEOPLE)}
        if thumbprint not in people:
            return ClientTrust(
                None, f"self-signed client certificate {thumbprint} is not in {TRUSTED_PEOPLE}"
            )
        if not pki.issued_by(cert, cert):
            return ClientTrust(None, "self-signed client certificate has a bad signature")
        return ClientTrust(cert)
    issuer = _chains_to_root(cert, roots, stores.store_certificates(INTERMEDIATE), now)
    if issuer is None:
        return ClientTrust(
            None,
            f"client certificate issuer {cert.issuer.rfc4514_string()!r} does not chain to a "
            f"certificate in {ROOT}",
        )
    return ClientTrust(issuer)
