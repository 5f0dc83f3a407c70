"""Tests for _client_certificate: certificates as the Windows recipe asks, and their checks."""

from __future__ import annotations

import datetime
import os
import ssl
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.winops.remoting.plugins.module_utils import _client_certificate as cc

NOW = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone.utc)


def _request(**overrides: object) -> cc.CertificateRequest:
    values: dict[str, object] = {
        "username": "ansible",
        "upn": "ansible@localhost",
        "key_type": "rsa",
        "key_size": 2048,
        "validity_days": 365,
        "renew_days_before_expiry": 30,
        "issuer": None,
    }
    values.update(overrides)
    return cc.CertificateRequest(**values)  # type: ignore[arg-type]


def _make_ca(tmp_path: Path, days: int = 3650, name: str = "winops test CA") -> cc.Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(days=1))
        .not_valid_after(NOW + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / f"{name.replace(' ', '_')}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cc.Issuer(cert, key, str(path))


@pytest.mark.parametrize("text", ["ansible@localhost", "bénédicte-ü@localhost", "a" * 300])
def test_utf8_string_round_trips(text: str) -> None:
    encoded = cc.der_utf8_string(text)
    assert encoded[0] == 0x0C
    assert cc.parse_der_utf8_string(encoded) == text


def test_parse_refuses_other_types_and_short_bodies() -> None:
    assert cc.parse_der_utf8_string(b"\x16\x03abc") is None  # IA5String
    assert cc.parse_der_utf8_string(b"\x0c\x05ab") is None


def test_self_signed_certificate_has_what_windows_maps() -> None:
    key = cc.new_private_key("rsa", 2048)
    cert = cc.build_certificate(_request(), key, NOW)
    assert cert.subject.rfc4514_string() == "CN=ansible"
    assert cert.issuer == cert.subject
    assert cc.upn_of(cert) == "ansible@localhost"
    assert cc.has_client_auth(cert)
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cc.signed_by(cert, cert)
    assert cc.not_valid_after(cert) == NOW + datetime.timedelta(days=365)
    assert cc.not_valid_before(cert) < NOW


def test_upn_otherName_matches_the_openssl_recipe(tmp_path: Path) -> None:
    """The seeds' OpenSSL recipe, run as written, gives the same UPN and EKU encoding."""
    conf = tmp_path / "openssl.conf"
    conf.write_text(
        "distinguished_name = req_distinguished_name\n"
        "[req_distinguished_name]\n"
        "[v3_req_client]\n"
        "extendedKeyUsage = clientAuth\n"
        "subjectAltName = otherName:1.3.6.1.4.1.311.20.2.3;UTF8:ansible@localhost\n"
    )
    subprocess.run(
        ["openssl", "req", "-x509", "-nodes", "-days", "3650", "-newkey", "rsa:2048",
         "-out", str(tmp_path / "cert.pem"), "-outform", "PEM",
         "-keyout", str(tmp_path / "cert_key.pem"), "-subj", "/CN=ansible",
         "-extensions", "v3_req_client"],
        check=True, capture_output=True, env={**os.environ, "OPENSSL_CONF": str(conf)},
    )  # fmt: skip
    recipe = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    ours = cc.build_certificate(_request(), cc.new_private_key("rsa", 2048), NOW)

    def san(cert: x509.Certificate) -> x509.SubjectAlternativeName:
        return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value

    assert san(ours) == san(recipe)
    assert ours.subject == recipe.subject
    assert cc.upn_of(recipe) == "ansible@localhost"
    assert cc.has_client_auth(recipe)


def test_key_and_certificate_load_as_a_tls_client_pair(tmp_path: Path) -> None:
    """What urllib3 does with ansible_winrm_cert_pem / cert_key_pem."""
    for key_type, size in (("rsa", 2048), ("ecdsa", 256), ("ecdsa", 384)):
        key = cc.new_private_key(key_type, size)
        cert = cc.build_certificate(_request(key_type=key_type, key_size=size), key, NOW)
        cert_path, key_path = tmp_path / f"{key_type}{size}.pem", tmp_path / f"{key_type}{size}.key"
        cc.write_atomically(str(cert_path), cc.pem_certificate(cert), 0o644)
        cc.write_atomically(str(key_path), cc.pem_private_key(key), 0o600)
        ssl.create_default_context().load_cert_chain(str(cert_path), str(key_path))
        assert cc.key_description(key) == (key_type, size)


def test_ecdsa_certificate_does_not_claim_key_encipherment() -> None:
    key = cc.new_private_key("ecdsa", 256)
    cert = cc.build_certificate(_request(key_type="ecdsa", key_size=256), key, NOW)
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_encipherment


def test_ca_signed_certificate_chains_to_its_ca_and_ends_with_it(tmp_path: Path) -> None:
    ca = _make_ca(tmp_path, days=100)
    key = cc.new_private_key("rsa", 2048)
    cert = cc.build_certificate(_request(issuer=ca), key, NOW)
    assert cert.issuer == ca.cert.subject
    assert cc.signed_by(cert, ca.cert)
    assert not cc.signed_by(cert, cert)
    assert cc.not_valid_after(cert) == cc.not_valid_after(ca.cert)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = x509.SubjectKeyIdentifier.from_public_key(ca.key.public_key())
    assert aki.key_identifier == ski.digest
    assert cc.describe(cert, ca.cert, ca.path)["issuer_thumbprint"] == cc.thumbprint(ca.cert)


def test_matching_pair_has_no_reason_to_reissue() -> None:
    key = cc.new_private_key("rsa", 2048)
    cert = cc.build_certificate(_request(), key, NOW)
    assert cc.reasons_to_reissue(_request(), cert, key, NOW) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"upn": "ops@localhost"}, "UPN is 'ansible@localhost', not 'ops@localhost'"),
        ({"username": "operator", "upn": "ansible@localhost"}, "subject CN is 'ansible'"),
        ({"key_size": 3072}, "key is rsa 2048"),
        ({"key_type": "ecdsa", "key_size": 256}, "key is rsa 2048"),
        ({"renew_days_before_expiry": 365}, "within 365 days"),
    ],
)
def test_changed_request_is_a_reason(change: dict[str, object], expected: str) -> None:
    key = cc.new_private_key("rsa", 2048)
    cert = cc.build_certificate(_request(), key, NOW)
    reasons = cc.reasons_to_reissue(_request(**change), cert, key, NOW)
    assert any(expected in reason for reason in reasons), reasons


def test_foreign_key_and_foreign_issuer_are_reasons(tmp_path: Path) -> None:
    key = cc.new_private_key("rsa", 2048)
    cert = cc.build_certificate(_request(), key, NOW)
    other_key = cc.new_private_key("rsa", 2048)
    assert "does not hold the certificate's private key" in " ".join(
        cc.reasons_to_reissue(_request(), cert, other_key, NOW)
    )
    ca = _make_ca(tmp_path)
    assert f"not signed by the CA in {ca.path}" in cc.reasons_to_reissue(
        _request(issuer=ca), cert, key, NOW
    )
    # A CA replaced by another of the same name but a new key: the signature tells them apart.
    signed = cc.build_certificate(_request(issuer=ca), key, NOW)
    (tmp_path / "successor").mkdir()
    successor = _make_ca(tmp_path / "successor", name="winops test CA")
    assert cc.reasons_to_reissue(_request(issuer=ca), signed, key, NOW) == []
    assert cc.reasons_to_reissue(_request(issuer=successor), signed, key, NOW) == [
        f"not signed by the CA in {successor.path}"
    ]
    assert cc.reasons_to_reissue(_request(), signed, key, NOW) == ["not self-signed"]


def _write_key(path: Path, key: object, passphrase: bytes | None = None) -> None:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
    )


def test_load_issuer_accepts_an_encrypted_ca_key(tmp_path: Path) -> None:
    ca = _make_ca(tmp_path)
    _write_key(tmp_path / "ca.key", ca.key, "Päss wört".encode())
    loaded = cc.load_issuer(ca.path, str(tmp_path / "ca.key"), "Päss wört", NOW)
    assert cc.same_public_key(loaded.key.public_key(), ca.cert.public_key())


@pytest.mark.parametrize(
    ("passphrase", "given", "message"),
    [
        ("secret-phrase", None, "is encrypted and no passphrase was given"),
        ("secret-phrase", "wrong-phrase", "or the passphrase is wrong"),
        (None, "stray-phrase", "a passphrase was given for a key that is not encrypted"),
    ],
)
def test_ca_key_problems_name_the_option_not_the_passphrase(
    tmp_path: Path, passphrase: str | None, given: str | None, message: str
) -> None:
    ca = _make_ca(tmp_path)
    _write_key(tmp_path / "ca.key", ca.key, passphrase.encode() if passphrase else None)
    with pytest.raises(cc.ClientCertificateError) as raised:
        cc.load_issuer(ca.path, str(tmp_path / "ca.key"), given, NOW)
    assert str(raised.value).startswith("ca_key_path: ")
    assert message in str(raised.value)
    for phrase in ("secret-phrase", "wrong-phrase", "stray-phrase"):
        assert phrase not in str(raised.value)


def test_load_issuer_refuses_a_leaf_a_foreign_key_and_an_expired_ca(tmp_path: Path) -> None:
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = cc.build_certificate(_request(), leaf_key, NOW)
    (tmp_path / "leaf.pem").write_bytes(cc.pem_certificate(leaf))
    _write_key(tmp_path / "leaf.key", leaf_key)
    with pytest.raises(cc.ClientCertificateError, match=r"^ca_path: .* is not a CA certificate"):
        cc.load_issuer(str(tmp_path / "leaf.pem"), str(tmp_path / "leaf.key"), None, NOW)

    ca = _make_ca(tmp_path)
    with pytest.raises(cc.ClientCertificateError, match=r"^ca_key_path: .* is not the private key"):
        cc.load_issuer(ca.path, str(tmp_path / "leaf.key"), None, NOW)

    _write_key(tmp_path / "ca.key", ca.key)
    later = NOW + datetime.timedelta(days=4000)
    with pytest.raises(cc.ClientCertificateError, match=r"^ca_path: .* outside its validity"):
        cc.load_issuer(ca.path, str(tmp_path / "ca.key"), None, later)


def test_unreadable_and_non_pem_files_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(cc.ClientCertificateError, match=r"^path: cannot read .*missing\.pem"):
        cc.load_certificate(str(tmp_path / "missing.pem"), "path")
    (tmp_path / "junk.pem").write_text("not a certificate")
    with pytest.raises(cc.ClientCertificateError, match=r"^path: .*junk\.pem is not a PEM"):
        cc.load_certificate(str(tmp_path / "junk.pem"), "path")
    with pytest.raises(cc.ClientCertificateError, match=r"^key_path: .*junk\.pem is not a PEM"):
        cc.load_private_key(str(tmp_path / "junk.pem"), "key_path")


def test_atomic_write_is_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "client.key"
    target.write_text("old")
    os.chmod(target, 0o644)
    old_umask = os.umask(0)
    try:
        cc.write_atomically(str(target), b"new", 0o600)
    finally:
        os.umask(old_umask)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.key"]


def test_failed_atomic_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "client.pem"
    target.write_text("old")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device", dst)

    monkeypatch.setattr(cc.os, "replace", refuse)
    with pytest.raises(OSError, match="No space left"):
        cc.write_atomically(str(target), b"new", 0o644)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.pem"]
