"""A certificate enrolled from a domain CA (issue 13, item 1): the role finds it by template or
issuer, the listener serves it, auto-enrolment renews it, and the next run rebinds while the
controller keeps validating against the CA.

winhost's test CA stands in for the enterprise CA (winhost.enrolment): `enroll` leaves a
serverAuth certificate with the template extensions in the host's LocalMachine\\My, as
auto-enrolment does. The host starts from the `default` profile, whose HTTPS listener serves a
test-CA certificate without a template extension, and the controller connects over HTTPS
validating against the test CA (ansible_winrm_ca_trust_path / ansible_psrp_ca_cert) from the
first play to the last: the role never writes a per-host trust file in this mode.

- winrm: found by template OID; a newer certificate of another template is ignored.
- psrp: found by issuer (the CA's distinguished name) and the host's DNS name.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from cryptography import x509
from playbook_checks import changed_tasks, https_listeners, role_task, served_certificate
from playbook_hosts import CONTROLLER_ADDRESS, PlaybookTargets, http_negotiate, https_validated

ENROLLED = Path(__file__).resolve().parent / "playbooks" / "enrolled_certificate.yml"
WINRM_TEMPLATE = "1.3.6.1.4.1.311.21.8.4481379.10351372.1577063.12345.1.601"
OTHER_TEMPLATE = "1.3.6.1.4.1.311.21.8.4481379.10351372.1577063.12345.1.602"


def _dotnet_name(name: x509.Name) -> str:
    """A distinguished name as X500DistinguishedName.Name prints it (most specific first)."""
    return ", ".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_enrolled_certificate_is_found_bound_and_followed(
    targets: PlaybookTargets, plugin: str
) -> None:
    purpose = f"enrolled_{plugin}"
    host = targets.name(purpose)
    address = targets.address(purpose)
    test_ca = Path(targets.session.host_vars(host)["winhost_ca_bundle"])
    ca_name = _dotnet_name(x509.load_pem_x509_certificate(test_ca.read_bytes()).subject)
    fqdn = targets.session.host_vars(host)["winhost_fqdn"]
    if plugin == "winrm":
        selection: dict[str, t.Any] = {"winrm_https_cert_template": WINRM_TEMPLATE}
    else:
        selection = {"winrm_https_cert_issuer": ca_name, "winrm_https_cert_dns_names": [fqdn]}
    host_vars = {
        **https_validated(plugin, test_ca),
        **selection,
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }

    first = targets.session.enroll(host, template_oid=WINRM_TEMPLATE, minor_version=1)
    if plugin == "winrm":
        # Newer, but from another template: picking by template must pass it over.
        targets.session.enroll(host, template_oid=OTHER_TEMPLATE, age_days=0)
    bound = targets.run(str(ENROLLED), purpose, host_vars, label="bind")
    assert bound.returncode == 0, bound.describe()
    chosen = role_task(bound, host, "winrm_https_cert", "Provide the HTTPS certificate").result
    if plugin == "winrm":
        assert chosen["thumbprint"] == first["thumbprint"], chosen
        assert chosen["template"] == {"oid": WINRM_TEMPLATE, "name": None}, chosen
    else:
        # By issuer alone the newest test-CA certificate with the host's name wins: the one
        # just enrolled, newer than the profile's listener certificate.
        assert chosen["thumbprint"] == first["thumbprint"], chosen
    listeners = https_listeners(targets.state(purpose))
    assert {li["certificate_thumbprint"] for li in listeners} == {first["thumbprint"]}, listeners
    assert served_certificate(address, 5986, test_ca)[0] == first["thumbprint"]
    # No per-host trust file: the controller trusts the CA.
    assert not targets.issuer_path(purpose).exists()

    # Auto-enrolment renews: a newer certificate from the same template appears.
    renewed = targets.session.enroll(host, template_oid=WINRM_TEMPLATE, minor_version=2)
    assert renewed["not_before"] > first["not_before"], (first, renewed)
    rebind = targets.run(str(ENROLLED), purpose, host_vars, label="rebind")
    assert rebind.returncode == 0, rebind.describe()
    chosen = role_task(rebind, host, "winrm_https_cert", "Provide the HTTPS certificate").result
    assert chosen["thumbprint"] == renewed["thumbprint"], chosen
    assert chosen["matched_thumbprints"][:2] == [renewed["thumbprint"], first["thumbprint"]]
    assert "winops.remoting.winrm_listener : Create or update the HTTPS listeners" in (
        changed_tasks(rebind, host)
    ), rebind.describe()
    listeners = https_listeners(targets.state(purpose))
    assert {li["certificate_thumbprint"] for li in listeners} == {renewed["thumbprint"]}
    assert served_certificate(address, 5986, test_ca)[0] == renewed["thumbprint"]
    assert not targets.issuer_path(purpose).exists()

    again = targets.run(str(ENROLLED), purpose, host_vars, label="again")
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()

    if plugin == "winrm":
        # No names given: the role asks for the address the controller connects to. A newer
        # certificate without it would fail validation, so it is never bound.
        without_address = targets.session.enroll(
            host, template_oid=WINRM_TEMPLATE, minor_version=3, with_address=False
        )
        kept = targets.run(str(ENROLLED), purpose, host_vars, label="without-address")
        assert kept.returncode == 0, kept.describe()
        chosen = role_task(kept, host, "winrm_https_cert", "Provide the HTTPS certificate").result
        assert chosen["thumbprint"] == renewed["thumbprint"], chosen
        assert without_address["thumbprint"] not in chosen["matched_thumbprints"], chosen
        assert changed_tasks(kept, host) == [], kept.describe()


def test_setup_playbook_binds_the_enrolled_certificate(targets: PlaybookTargets) -> None:
    """winops.remoting.setup with source enrolled, from HTTP: the play moves to HTTPS validating
    against the CA named in the inventory (no trust file is written, so the switch keeps that
    path), the listener serves the enrolled certificate, and the closing message names the CA
    instead of a trust file that does not exist."""
    purpose = "enrolled_setup"
    host = targets.name(purpose)
    address = targets.address(purpose)
    test_ca = Path(targets.session.host_vars(host)["winhost_ca_bundle"])
    enrolled = targets.session.enroll(host, template_oid=WINRM_TEMPLATE)
    host_vars = {
        **http_negotiate("winrm"),
        "ansible_winrm_ca_trust_path": str(test_ca),
        "winrm_https_cert_source": "enrolled",
        "winrm_https_cert_template": WINRM_TEMPLATE,
        "winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS],
    }
    run = targets.run("winops.remoting.setup", purpose, host_vars, label="setup")
    assert run.returncode == 0, run.describe()
    listeners = https_listeners(targets.state(purpose))
    assert {li["certificate_thumbprint"] for li in listeners} == {enrolled["thumbprint"]}
    assert served_certificate(address, 5986, test_ca)[0] == enrolled["thumbprint"]
    assert not targets.issuer_path(purpose).exists()
    message = run.task(host, "Tell how to connect from now on").result["msg"]
    assert "the CA that issued the enrolled certificate" in message, message
