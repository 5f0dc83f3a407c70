"""winhost's model of AD CS enrolment (winhost.enrolment): what `enroll` leaves in the host's
LocalMachine\\My, that it leaves the listener alone, and its refusals."""

from __future__ import annotations

import hashlib
import socket
import ssl
import typing as t
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from winhost import pki, service
from winhost.pytest_plugin import WinhostSession

TEMPLATE = "1.3.6.1.4.1.311.21.8.1111.2222.3333.4444.1.700"


def _served_thumbprint(address: str) -> str:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((address, 5986), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha1(der).hexdigest().upper()


def test_enroll_stores_a_template_certificate_and_leaves_the_listener(
    winhost: WinhostSession,
) -> None:
    host = winhost.hosts[0]
    served_before = _served_thumbprint(host.address)
    issued = winhost.enroll(
        host.name, template_oid=TEMPLATE, major_version=100, minor_version=5, template_name="Wéb"
    )
    state = winhost.state(host.name)
    stored = next(
        c
        for c in state["cert_stores"]["LocalMachine\\My"]
        if c["thumbprint"] == issued["thumbprint"]
    )
    assert stored["key_path"], stored
    cert = pki.load_cert(winhost.state_dir / host.name / stored["cert_path"])
    assert pki.template_of(cert) == (TEMPLATE, "Wéb")
    template = cert.extensions.get_extension_for_class(x509.MSCertificateTemplate).value
    assert (template.major_version, template.minor_version) == (100, 5)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert host.fqdn in names.get_values_for_type(x509.DNSName)
    ca = x509.load_pem_x509_certificate(
        Path(winhost.host_vars(host.name)["winhost_ca_bundle"]).read_bytes()
    )
    assert pki.issued_by(cert, ca)
    # Windows does not move the listener to an enrolled certificate: neither does winhost.
    assert _served_thumbprint(host.address) == served_before != issued["thumbprint"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "enroll: give template_oid, template_name or both"),
        ({"template_oid": "Machine"}, "enroll: template_oid='Machine' is not a dotted OID"),
        (
            {"template_name": "Machine", "colour": "red"},
            "enroll: unknown option(s) colour; allowed: template_oid, template_name, "
            "major_version, minor_version, age_days, validity_days, with_address",
        ),
        (
            {"template_name": "Machine", "age_days": -1},
            "enroll: option age_days=-1 must be >= 0",
        ),
    ],
)
def test_enroll_refuses_bad_options(
    winhost: WinhostSession, options: dict[str, t.Any], message: str
) -> None:
    host = winhost.hosts[0]
    before = winhost.state(host.name)["cert_stores"]["LocalMachine\\My"]
    with pytest.raises(service.ControlError) as info:
        winhost.enroll(host.name, **options)
    assert str(info.value) == message
    assert winhost.state(host.name)["cert_stores"]["LocalMachine\\My"] == before
