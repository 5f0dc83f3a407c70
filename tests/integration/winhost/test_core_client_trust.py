"""winhost's trust decision for certificate authentication (auth.client_trust), no sockets:
issuer chained by signature to LocalMachine\\Root, self-signed also in TrustedPeople, in its
validity period, with the Client Authentication usage."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winhost import pki
from winhost.auth import client_trust

NOW = datetime.datetime.now(datetime.UTC)


class Stores:
    def __init__(self, **stores: list[x509.Certificate]) -> None:
        self.stores = {
            client_trust.ROOT: stores.get("root", []),
            client_trust.INTERMEDIATE: stores.get("ca", []),
            client_trust.TRUSTED_PEOPLE: stores.get("people", []),
        }

    def store_certificates(self, store: str) -> list[x509.Certificate]:
        return self.stores.get(store, [])


def _cert(
    name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    ca: bool = False,
    usage: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CLIENT_AUTH,
    days: tuple[int, int] = (-1, 30),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + datetime.timedelta(days=days[0]))
        .not_valid_after(NOW + datetime.timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


def test_self_signed_needs_root_and_trusted_people() -> None:
    cert, _ = _cert("ansible")
    both = client_trust.evaluate(cert, Stores(root=[cert], people=[cert]), NOW)
    assert both.issuer is cert and both.reason == ""
    only_people = client_trust.evaluate(cert, Stores(people=[cert]), NOW)
    assert only_people.issuer is None
    assert only_people.reason == (
        f"self-signed client certificate {pki.thumbprint(cert)} is not in LocalMachine\\Root"
    )
    only_root = client_trust.evaluate(cert, Stores(root=[cert]), NOW)
    assert only_root.reason.endswith("is not in LocalMachine\\TrustedPeople")


def test_ca_issued_needs_its_issuer_in_root_by_signature() -> None:
    ca = _cert("winops CA", ca=True, usage=None)
    client, _ = _cert("ansible", ca)
    assert client_trust.evaluate(client, Stores(root=[ca[0]]), NOW).issuer is ca[0]
    refused = client_trust.evaluate(client, Stores(people=[client]), NOW)
    assert refused.issuer is None
    assert "does not chain to a certificate in LocalMachine\\Root" in refused.reason
    # Same name, other key: a look-alike CA in Root does not make the certificate trusted.
    impostor = _cert("winops CA", ca=True, usage=None)
    assert client_trust.evaluate(client, Stores(root=[impostor[0]]), NOW).issuer is None


def test_intermediate_chain_gives_the_direct_issuer() -> None:
    root = _cert("winops root", ca=True, usage=None)
    issuing = _cert("winops issuing", root, ca=True, usage=None)
    client, _ = _cert("ansible", issuing)
    trust = client_trust.evaluate(client, Stores(root=[root[0]], ca=[issuing[0]]), NOW)
    assert trust.issuer is issuing[0]
    assert client_trust.evaluate(client, Stores(ca=[issuing[0]]), NOW).issuer is None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"days": (-30, -1)}, "outside its validity period"),
        ({"days": (1, 30)}, "outside its validity period"),
        ({"usage": ExtendedKeyUsageOID.SERVER_AUTH}, "lacks the Client Authentication usage"),
        ({"usage": None}, "lacks the Client Authentication usage"),
    ],
)
def test_expired_future_and_non_client_certificates_are_refused(
    kwargs: dict[str, object], reason: str
) -> None:
    cert, _ = _cert("ansible", **kwargs)  # type: ignore[arg-type]
    trust = client_trust.evaluate(cert, Stores(root=[cert], people=[cert]), NOW)
    assert trust.issuer is None and reason in trust.reason
