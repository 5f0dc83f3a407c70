"""Broken winhost set-ups for the doctor tests, started once per session in one server.

Hosts (index FIRST + offset on the `doctor` block of address_blocks.py, 127.0.10.150.. unless
DOCTOR_FIRST moves it):
  +0 healthy     the `default` profile (HTTP and HTTPS from the test CA, Basic off,
                 AllowUnencrypted off, Negotiate and CredSSP on)
  +1 no_credssp  default with Service/Auth/CredSSP false
  +2 firewall    default whose firewall rules admit only 10.0.0.0/8 (not the controller)
  +3 self_signed the HTTPS listener serves a self-signed certificate
  +4 expired     the HTTPS listener's certificate (from the test CA) expired yesterday
  +5 other_name  the HTTPS listener's certificate (from the test CA) names other.winops.test
  +6 no_tls12    SCHANNEL TLS 1.2 Server disabled at boot: the host speaks TLS 1.3 only
  +7 service_down default; test_doctor_setups.py takes its WinRM service down (the reboot
                 fault: listeners closed, connections refused) before checking it
The states are edited on disk before the server starts, as an administrator would have left
the machine; winhost then boots them like any other host.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import sys
import typing as t
from pathlib import Path

import pytest
from address_blocks import block
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winhost import pki, profiles
from winhost.host import SCHANNEL_KEY
from winhost.pytest_plugin import WinhostSession, start_session, stop_session
from winhost.state import HostState

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "kdc"))
from kdc.pytest_plugin import kdc_server, kerberos_env  # noqa: F401 - fixtures

BLOCK = block("doctor")
FIRST = BLOCK.first
OFFSETS = {
    "healthy": 0,
    "no_credssp": 1,
    "firewall": 2,
    "self_signed": 3,
    "expired": 4,
    "other_name": 5,
    "no_tls12": 6,
    "service_down": 7,
}
# test_kerberos_doctor_live.py's hosts follow at offsets 9 and 10.
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS))) and len(OFFSETS) <= 9


def _certificate(
    subject: str,
    sans: list[x509.GeneralName],
    issuer: pki.CertificateAuthority | None,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    signer = issuer.key if issuer else key
    return builder.sign(signer, hashes.SHA256()), key


def _replace_listener_certificate(
    state: HostState, cert: x509.Certificate, key: rsa.RSAPrivateKey
) -> None:
    pki.write_cert(state.directory / "certs" / "host.pem", cert)
    pki.write_key(state.directory / "private" / "host.key", key)
    thumbprint = pki.thumbprint(cert)
    https = next(li for li in state.listeners if li.transport == "HTTPS")
    for stored in state.cert_stores["LocalMachine\\My"]:
        if stored.thumbprint == https.certificate_thumbprint:
            stored.thumbprint = thumbprint
            stored.subject = cert.subject.rfc4514_string()
    https.certificate_thumbprint = thumbprint


def _own_names(state: HostState) -> list[x509.GeneralName]:
    return [
        x509.DNSName(state.fqdn),
        x509.DNSName(state.computer_name),
        x509.IPAddress(ipaddress.ip_address(state.address)),
    ]


def _break(state_dir: Path, states: list[HostState]) -> None:
    ca = pki.CertificateAuthority.load(state_dir / "ca" / "ca.pem", state_dir / "ca" / "ca.key")
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    by_name = {name: states[offset] for name, offset in OFFSETS.items()}

    by_name["no_credssp"].set_winrm_setting("Service/Auth/CredSSP", "false")

    for rule in by_name["firewall"].firewall_rules:
        rule["RemoteAddress"] = "10.0.0.0/8"

    state = by_name["self_signed"]
    _replace_listener_certificate(
        state, *_certificate(state.fqdn, _own_names(state), None, now - day, now + 365 * day)
    )
    state = by_name["expired"]
    _replace_listener_certificate(
        state, *_certificate(state.fqdn, _own_names(state), ca, now - 400 * day, now - day)
    )
    state = by_name["other_name"]
    _replace_listener_certificate(
        state,
        *_certificate(
            "other.winops.test", [x509.DNSName("other.winops.test")], ca, now - day, now + 365 * day
        ),
    )
    state = by_name["no_tls12"]
    state.registry[f"{SCHANNEL_KEY}\\TLS 1.2\\Server"] = {"Enabled": 0, "DisabledByDefault": 1}

    for state in states:
        state.save()


@dataclasses.dataclass
class DoctorHosts:
    session: WinhostSession
    state_dir: Path

    def address(self, name: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{FIRST + OFFSETS[name]}"

    def inventory_name(self, name: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[name])

    @property
    def ca_bundle(self) -> str:
        return str(self.state_dir / "ca" / "ca.pem")

    def credentials(self) -> tuple[str, str]:
        return self.session.credentials(self.inventory_name("healthy"))

    def state(self, name: str) -> dict[str, t.Any]:
        return self.session.state(self.inventory_name(name))


@pytest.fixture(scope="session")
def doctor_hosts(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[DoctorHosts]:
    state_dir = tmp_path_factory.mktemp("doctor-winhost")
    states = profiles.create_state_dir(state_dir, len(OFFSETS), "default", first=FIRST)
    _break(state_dir, states)
    session = start_session(state_dir, len(OFFSETS), "default", first=FIRST)
    try:
        yield DoctorHosts(session, state_dir)
    finally:
        stop_session(session)
