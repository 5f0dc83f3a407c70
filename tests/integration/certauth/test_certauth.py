"""Certificate authentication end to end through ansible-playbook against winhost.

A play makes the client certificate on the controller (winops.remoting.winrm_client_certificate)
and the winrm_auth role trusts it (issuer into Root, or an intermediate issuer into CA with its
root in Root; certificate into TrustedPeople) and maps it
to the `ansible` account; the following plays connect with the certificate alone (their
password is wrong on purpose) through winops.remoting.winrm and winops.remoting.psrp over
HTTPS with validation. A certificate whose issuer is no longer in Root, or that is not mapped,
is refused with the classifier's explanation.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

from winhost import pki

ROOT = "LocalMachine\\Root"
INTERMEDIATE = "LocalMachine\\CA"
PEOPLE = "LocalMachine\\TrustedPeople"
PLUGINS = ("winrm", "psrp")


def thumbprints(state: dict[str, t.Any], store: str) -> set[str]:
    return {cert["thumbprint"].upper() for cert in state["cert_stores"].get(store, [])}


def mapping_for(state: dict[str, t.Any], issuer: str) -> list[dict[str, t.Any]]:
    return [m for m in state["cert_mappings"] if m["issuer"].upper() == issuer]


def assert_connected_as_ansible(run: t.Any, host: str) -> None:
    assert run.returncode == 0, run.describe()
    for plugin in PLUGINS:
        assert run.task(host, f"{plugin} ping").result["ping"] == "pong"
        whoami = run.task(host, f"{plugin} whoami").result
        assert whoami["account"]["account_name"] == "ansible", whoami


def test_self_signed_certificate_end_to_end(certauth: t.Any) -> None:
    host = certauth.name("selfsigned")
    run = certauth.run("selfsigned", "first", certauth_account="ansible")
    assert_connected_as_ansible(run, host)
    made = run.task(host, "client certificate").result
    assert made["changed"] is True
    assert made["self_signed"] is True
    assert made["upn"] == "ansible@localhost"
    assert made["issuer_thumbprint"] == made["thumbprint"]
    assert made["issuer_store"] == "Root"
    key = certauth.cert_dir("selfsigned") / "client.key"
    assert os.stat(key).st_mode & 0o777 == 0o600

    state = certauth.state("selfsigned")
    assert made["thumbprint"] in thumbprints(state, ROOT)
    assert made["thumbprint"] in thumbprints(state, PEOPLE)
    [mapping] = mapping_for(state, made["issuer_thumbprint"])
    assert mapping["subject"] == "ansible@localhost"
    assert mapping["username"] == "ansible"

    again = certauth.run("selfsigned", "again", certauth_account="ansible")
    assert_connected_as_ansible(again, host)
    kept = again.task(host, "client certificate").result
    assert kept["changed"] is False and kept["thumbprint"] == made["thumbprint"]
    assert again.stats(host)["changed"] == 0, again.describe()


def _make_ca(directory: Path) -> tuple[Path, Path, str]:
    """A CA of the test's own (winhost's pki), saved as ca.pem and ca.key (0600)."""
    ca = pki.CertificateAuthority.create("winops certauth test CA")
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    ca.save(cert_path, key_path)
    return cert_path, key_path, ca.thumbprint


def test_ca_signed_certificate_end_to_end(certauth: t.Any) -> None:
    host = certauth.name("casigned")
    ca_path, ca_key_path, ca_thumbprint = _make_ca(certauth.work / "casigned" / "ca")
    run = certauth.run(
        "casigned",
        "first",
        certauth_account="ansible",
        certauth_ca_path=str(ca_path),
        certauth_ca_key_path=str(ca_key_path),
    )
    assert_connected_as_ansible(run, host)
    made = run.task(host, "client certificate").result
    assert made["self_signed"] is False
    assert (made["issuer_thumbprint"], made["issuer_store"]) == (ca_thumbprint, "Root")
    assert made["issuer_path"] == str(ca_path)
    state = certauth.state("casigned")
    assert ca_thumbprint in thumbprints(state, ROOT)
    assert made["thumbprint"] not in thumbprints(state, ROOT)
    assert made["thumbprint"] in thumbprints(state, PEOPLE)
    assert mapping_for(state, ca_thumbprint)[0]["username"] == "ansible"


def test_certificate_from_an_intermediate_ca_end_to_end(certauth: t.Any) -> None:
    """An enterprise PKI's client certificate: signed by an issuing (intermediate) CA under a
    root. The mapping names the intermediate, the certificate's direct issuer (MS-WSMV 2.2.4.3),
    which lives in LocalMachine\\CA with its root in Root. The mapping module refused it
    unless the intermediate was in Root, which would make it a trust anchor of its own."""
    host = certauth.name("intermediate")
    directory = certauth.work / "intermediate" / "pki"
    directory.mkdir(parents=True, exist_ok=True)
    root = pki.CertificateAuthority.create("winops certauth test root", path_length=1)
    issuing = root.issue_intermediate("winops certauth issuing CA")
    root_path = directory / "root.pem"
    pki.write_cert(root_path, root.cert)
    issuing_path, issuing_key_path = directory / "issuing.pem", directory / "issuing.key"
    issuing.save(issuing_path, issuing_key_path)

    run = certauth.run(
        "intermediate",
        "first",
        certauth_account="ansible",
        certauth_ca_path=str(issuing_path),
        certauth_ca_key_path=str(issuing_key_path),
        certauth_chain=[{"src": str(root_path), "store_name": "Root"}],
    )
    assert_connected_as_ansible(run, host)
    made = run.task(host, "client certificate").result
    assert (made["issuer_thumbprint"], made["issuer_store"]) == (issuing.thumbprint, "CA")
    state = certauth.state("intermediate")
    assert root.thumbprint in thumbprints(state, ROOT)
    assert issuing.thumbprint in thumbprints(state, INTERMEDIATE)
    assert issuing.thumbprint not in thumbprints(state, ROOT)
    assert made["thumbprint"] in thumbprints(state, PEOPLE)
    [mapping] = mapping_for(state, issuing.thumbprint)
    assert mapping["username"] == "ansible"


def _refused(run: t.Any, host: str, plugin: str) -> str:
    assert run.returncode != 0, run.describe()
    result = run.task(host, f"{plugin} ping").result
    assert result.get("unreachable") or result.get("failed"), result
    return str(result["msg"])


def test_certificate_whose_issuer_is_not_in_root_is_refused(certauth: t.Any) -> None:
    """Self-signed, trusted and mapped, then its issuer taken out of Root: no longer trusted.
    (The mapping itself cannot be made without the issuer in Root, as on Windows.)"""
    host = certauth.name("untrusted")
    for plugin in PLUGINS:
        run = certauth.run(
            "untrusted",
            plugin,
            certauth_account="ansible",
            certauth_remove_issuer=True,
            certauth_plugins=[plugin],
        )
        made = run.task(host, "client certificate").result
        assert run.task(host, "remove the issuer from Root").result["changed"] is True
        state = certauth.state("untrusted")
        assert made["thumbprint"] not in thumbprints(state, ROOT)
        assert made["thumbprint"] in thumbprints(state, PEOPLE)
        assert mapping_for(state, made["issuer_thumbprint"]), "the mapping stays"
        message = _refused(run, host, plugin)
        assert "the client certificate was refused" in message, message
        assert "LocalMachine\\Root" in message and "winrm_auth_certificate_mappings" in message


def test_certificate_without_mapping_is_refused(certauth: t.Any) -> None:
    host = certauth.name("unmapped")
    for plugin in PLUGINS:
        run = certauth.run(
            "unmapped", plugin, certauth_account="ansible", certauth_map=False,
            certauth_plugins=[plugin],
        )  # fmt: skip
        made = run.task(host, "client certificate").result
        state = certauth.state("unmapped")
        assert made["thumbprint"] in thumbprints(state, ROOT)
        assert mapping_for(state, made["issuer_thumbprint"]) == []
        message = _refused(run, host, plugin)
        assert "the client certificate was refused" in message, message
