"""The `bootstrap` profile leaves what Enable-WinopsRemoting.ps1 leaves on the modelled host."""

from __future__ import annotations

from pathlib import Path

from address_blocks import block
from cryptography import x509
from cryptography.x509.oid import NameOID

from winhost import pki, profiles

# Built, never started: the brownfield block's first address only names the host here.
INDEX = block("brownfield").first
SECRETS = {"admin_password": "Ädmin-Pässw0rd!", "operator_password": "Öp-Pässw0rd!"}


def test_certificate_names_the_computer_alone_on_a_workgroup_host(tmp_path: Path) -> None:
    """The script's Get-DefaultDnsName adds HostName.DomainName only where
    IPGlobalProperties.DomainName is not empty, which .NET documents as empty on a computer in
    no domain; winhost's hosts are workgroup members. With -AnsibleHost an address, the SAN is
    the computer name and that address, the CN (and the listener's Hostname) the computer
    name; win_winrm_https_certificate's defaults give the same names, so setup keeps it."""
    state = profiles.build_host(
        tmp_path, INDEX, "bootstrap", pki.CertificateAuthority.create(), SECRETS
    )
    listener = next(li for li in state.listeners if li.transport == "HTTPS")
    stored = next(
        c
        for c in state.cert_stores["LocalMachine\\My"]
        if c.thumbprint == listener.certificate_thumbprint
    )
    cert = pki.load_cert(state.directory / stored.cert_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [state.computer_name]
    assert san.get_values_for_type(x509.DNSName) == state.default_certificate_names()
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [state.address]
    common_name = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert common_name == listener.hostname == state.computer_name
    exported = pki.load_cert(state.directory / "C" / profiles.BOOTSTRAP_ISSUER_PATH)
    assert pki.thumbprint(exported) == listener.certificate_thumbprint
