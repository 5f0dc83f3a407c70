"""winops.remoting.win_winrm_https_certificate (with win_winrm_listener) through
ansible-playbook against winhost.

The play creates a self-signed certificate in LocalMachine\\My and binds an HTTPS listener on
another port to it; the returned issuer_pem is all a client needs to validate that listener.
Check mode creates nothing; a second run keeps the certificate; a run whose renewal window
covers the certificate's expiry replaces it and rotates the listener to the new thumbprint.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import socket
import ssl
import typing as t
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from roles_hosts import EXTRA_HTTPS_PORT


def cert_tasks(address: str, validity: int, renew: int) -> str:
    return f"""\
- name: certificate
  winops.remoting.win_winrm_https_certificate:
    dns_names: [cert.winops.test]
    ip_addresses: ['{address}']
    validity_days: {validity}
    renew_days_before_expiry: {renew}
    key_length: 2048
  register: https_cert
- name: listener
  winops.remoting.win_winrm_listener:
    transport: https
    address: IP:{address}
    port: {EXTRA_HTTPS_PORT}
    certificate_thumbprint: "{{{{ https_cert.thumbprint }}}}"
"""


def my_store(targets: t.Any) -> list[dict[str, t.Any]]:
    return targets.state("cert")["cert_stores"]["LocalMachine\\My"]


def served_with_trust(address: str, issuer_pem: str, scratch: Path) -> str:
    """Thumbprint of what the listener serves, validated (name: the IP SAN) against
    issuer_pem only."""
    ca_file = scratch / "issuer.pem"
    ca_file.write_text(issuer_pem)
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((address, EXTRA_HTTPS_PORT), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).fingerprint(hashes.SHA1()).hex().upper()


def task_results(run: t.Any, host: str) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    assert run.returncode == 0, run.describe()
    return run.task(host, "certificate").result, run.task(host, "listener").result


@pytest.mark.slow
def test_self_signed_certificate_lifecycle(targets: t.Any, tmp_path: Path) -> None:
    host = targets.name("cert")
    address = targets.address("cert")
    store_before = my_store(targets)
    first_tasks = cert_tasks(address, validity=40, renew=30)

    cert, listener = task_results(
        targets.play("cert", first_tasks, check=True, label="check"), host
    )
    assert cert["changed"] is True and cert["renewal_reason"] == "missing"
    assert cert["thumbprint"] is None and cert["renewed"] is False
    assert cert["diff"]["before"] == {} and cert["diff"]["after"]["thumbprint"] == "(new)"
    assert listener["changed"] is True
    assert any("not known yet" in w for w in listener.get("warnings", [])), listener
    assert my_store(targets) == store_before, "check mode created a certificate"

    cert, listener = task_results(targets.play("cert", first_tasks, label="create"), host)
    assert cert["changed"] is True and cert["renewal_reason"] == "missing"
    thumbprint = cert["thumbprint"]
    # The default subject: the CN, and the creation time that sets it apart from the next one.
    assert re.fullmatch(r"CN=cert\.winops\.test, OU=winops\.remoting \d{14}", cert["subject"]), cert
    assert cert["dns_names"] == ["cert.winops.test"] and cert["ip_addresses"] == [address]
    assert cert["issuer_pem"] == cert["certificate_pem"], "self-signed: its own issuer"
    stored = [c for c in my_store(targets) if c["thumbprint"] == thumbprint]
    assert stored and stored[0]["friendly_name"] == "winops.remoting WinRM HTTPS"
    assert listener["listener"]["certificate_thumbprint"] == thumbprint
    # Live: the new listener serves the new certificate, valid for issuer_pem.
    assert served_with_trust(address, cert["issuer_pem"], tmp_path) == thumbprint

    again = targets.play("cert", first_tasks, label="again")
    cert, listener = task_results(again, host)
    assert cert["changed"] is False and cert["thumbprint"] == thumbprint
    assert again.stats(host).get("changed") == 0, again.describe()

    # The certificate expires in 40 days: a 45-day renewal window replaces it.
    renew_tasks = cert_tasks(address, validity=365, renew=45)
    cert, listener = task_results(targets.play("cert", renew_tasks, label="renew"), host)
    assert cert["changed"] is True and cert["renewed"] is True
    assert cert["renewal_reason"] == "expiring" and cert["previous_thumbprint"] == thumbprint
    assert cert["thumbprint"] != thumbprint
    assert listener["previous_thumbprint"] == thumbprint
    assert served_with_trust(address, cert["issuer_pem"], tmp_path) == cert["thumbprint"]


@pytest.mark.slow
def test_existing_certificate_by_thumbprint_returns_its_issuer(targets: t.Any) -> None:
    host = targets.name("cert")
    ca_pem = Path(targets.session.host_vars(host)["winhost_ca_bundle"]).read_text()
    store = targets.state("cert")["cert_stores"]["LocalMachine\\My"]
    host_cert = next(c for c in store if c["cert_path"] == "certs/host.pem")
    tasks = f"""\
- name: certificate
  winops.remoting.win_winrm_https_certificate:
    source: thumbprint
    thumbprint: "{host_cert["thumbprint"].lower()}"
- name: no thumbprint
  winops.remoting.win_winrm_https_certificate:
    source: thumbprint
  ignore_errors: true
- name: short validity
  winops.remoting.win_winrm_https_certificate:
    validity_days: 10
  ignore_errors: true
"""
    run = targets.play("cert", tasks, label="thumbprint")
    result = run.task(host, "certificate").result
    assert result["changed"] is False and result["thumbprint"] == host_cert["thumbprint"]
    assert result["issuer_pem"] == ca_pem
    assert run.task(host, "no thumbprint").result["msg"] == (
        "source is thumbprint but all of the following are missing: thumbprint"
    )
    assert run.task(host, "short validity").result["msg"] == (
        "validity_days '10' must be greater than renew_days_before_expiry '30', or every run "
        "would renew"
    )


def test_subject_written_without_spaces_is_kept_on_the_next_run(targets: t.Any) -> None:
    # .NET prints "CN=a, O=b"; a subject given as "CN=a,O=b" must still match its certificate.
    host = targets.name("cert")
    tasks = """\
- name: certificate
  winops.remoting.win_winrm_https_certificate:
    dns_names: [subject.winops.test]
    subject: CN=subject.winops.test,O=Winops Test
    friendly_name: winops subject test
    key_length: 2048
  register: https_cert
"""
    first = targets.play("cert", tasks, label="subject-first")
    assert first.returncode == 0, first.describe()
    created = first.task(host, "certificate").result
    assert created["changed"] is True
    assert created["subject"] == "CN=subject.winops.test, O=Winops Test"

    second = targets.play("cert", tasks, label="subject-second")
    assert second.returncode == 0, second.describe()
    kept = second.task(host, "certificate").result
    assert kept["changed"] is False, kept
    assert kept["thumbprint"] == created["thumbprint"]


def _issued_pfx(scratch: Path, address: str) -> tuple[Path, str]:
    """A server certificate for `address` signed by a CA that the host will never see, with its
    key, as a PFX (password 'pfx-pass'); returns (path, thumbprint)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Elsewhere CA")])
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "elsewhere.winops.test")]))
        .issuer_name(ca_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    path = scratch / "elsewhere.pfx"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"elsewhere", leaf_key, leaf, None, BestAvailableEncryption(b"pfx-pass")
        )
    )
    return path, leaf.fingerprint(hashes.SHA1()).hex().upper()


def test_issuer_not_on_the_host_gives_no_issuer_pem(targets: t.Any, tmp_path: Path) -> None:
    # The leaf is no trust anchor: rather null and a warning than a PEM that cannot validate.
    host = targets.name("cert")
    pfx, thumbprint = _issued_pfx(tmp_path, targets.address("cert"))
    tasks = f"""\
- name: copy
  ansible.windows.win_copy:
    src: {pfx}
    dest: C:\\Windows\\Temp\\elsewhere.pfx
- name: import
  ansible.windows.win_certificate_store:
    path: C:\\Windows\\Temp\\elsewhere.pfx
    password: pfx-pass
    store_name: My
    store_location: LocalMachine
- name: certificate
  winops.remoting.win_winrm_https_certificate:
    source: thumbprint
    thumbprint: {thumbprint}
"""
    run = targets.play("cert", tasks, label="elsewhere")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "certificate").result
    assert result["thumbprint"] == thumbprint
    assert result["issuer_pem"] is None
    assert any("Elsewhere CA" in warning for warning in result.get("warnings", [])), result


def test_enrolled_certificate_selection_and_its_errors(targets: t.Any) -> None:
    """source=enrolled: a version 1 template name selects (case-sensitively) the certificate
    whose 1.3.6.1.4.1.311.20.2 extension carries it, in check and diff mode alike, without a
    change; a missing criterion, an issuer that is no distinguished name and criteria nothing
    matches fail with messages that name the option."""
    host = targets.name("cert")
    enrolled = targets.session.enroll(host, template_name="WinopsWebServer")
    tasks = """\
- name: by v1 name
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    template: WinopsWebServer
  check_mode: true
  diff: true
  register: by_name
- name: other case
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    template: winopswebserver
  ignore_errors: true
- name: no criteria
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
  ignore_errors: true
- name: bad issuer
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    issuer: not a name
  ignore_errors: true
- name: bad address
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    template: WinopsWebServer
    ip_addresses: [not-an-address]
  ignore_errors: true
- name: name not in the certificate
  winops.remoting.win_winrm_https_certificate:
    source: enrolled
    template: WinopsWebServer
    dns_names: [elsewhere.winops.test]
  ignore_errors: true
"""
    run = targets.play("cert", tasks, label="enrolled")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "by v1 name").result
    assert result["changed"] is False, result
    assert result["thumbprint"] == enrolled["thumbprint"], result
    assert result["template"] == {"oid": None, "name": "WinopsWebServer"}, result
    assert (
        result["diff"]["before"]
        == result["diff"]["after"]
        == {"thumbprint": enrolled["thumbprint"]}
    )
    assert (
        run.task(host, "other case")
        .result["msg"]
        .startswith(
            "no certificate in Cert:\\LocalMachine\\My matches template 'winopswebserver' with a "
            "private key, the Server Authentication EKU"
        )
    )
    assert run.task(host, "no criteria").result["msg"] == (
        "source is enrolled but any of the following are missing: template, issuer"
    )
    assert (
        run.task(host, "bad issuer")
        .result["msg"]
        .startswith(
            "issuer 'not a name' is not a distinguished name such as "
            "'CN=Example Issuing CA, DC=example, DC=com'"
        )
    )
    assert (
        run.task(host, "name not in the certificate")
        .result["msg"]
        .startswith(
            "no certificate in Cert:\\LocalMachine\\My matches template 'WinopsWebServer', "
            "dns_names 'elsewhere.winops.test' with a private key"
        )
    )
    assert run.task(host, "bad address").result["msg"] == (
        "ip_addresses entry 'not-an-address' is not an IPv4 or IPv6 address"
    )
