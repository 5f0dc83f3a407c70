"""The roles that use the three emulations, end to end through ansible-playbook: winrm_hardening
on the `eventlog` host (its WinRM log, script block logging, remoting restricted to the ansible
account with the scheduled WinRM restart) and winrm_auth with a certificate mapping on the
`mapping` host. Each converges, a second run changes nothing, and the result holds over the
wire: the operator account is refused, certificate logon works as the mapped account.

Runs after the module tests of the same hosts (pytest's file order), whose changes it builds on.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from test_module_cert_mapping import cert_auth_user
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

from winhost import pki


def changed_tasks(run: t.Any, host: str) -> list[str]:
    """Names of the tasks that changed the host, without the role prefix."""
    return [
        task["task"]["name"].split(" : ", 1)[-1]
        for play in run.report["plays"]
        for task in play["tasks"]
        if task["hosts"].get(host, {}).get("changed")
    ]


def test_winrm_hardening_converges_and_restricts(targets: t.Any) -> None:
    host = targets.name("eventlog")
    # The play connects as '.\\ansible', the usual way to name a local account: the role hands
    # ansible_user to win_psremoting_access, which must resolve it (issue 9 defect 6).
    tasks = """\
- name: harden
  ansible.builtin.include_role:
    name: winops.remoting.winrm_hardening
  vars:
    ansible_user: .\\ansible
"""
    first = targets.play("eventlog", tasks, label="harden")
    assert first.returncode == 0, first.describe()
    assert "Restrict PowerShell remoting to the Ansible account" in changed_tasks(first, host)
    state = targets.state("eventlog")
    # Every remoting endpoint, not only Microsoft.PowerShell (issue 9 defect 10).
    assert len(set(state["session_configurations"].values())) == 1, state["session_configurations"]
    assert (
        state["session_configurations"]["microsoft.powershell32"]
        == state["winrm"]["Service"]["RootSDDL"]
    )
    assert state["winrm"]["Service"]["Auth"]["CbtHardeningLevel"] == "Strict"
    assert state["event_log_channels"]["Microsoft-Windows-WinRM/Operational"]["enabled"] is True
    second = targets.play("eventlog", tasks, label="harden-again")
    assert second.returncode == 0, second.describe()
    assert changed_tasks(second, host) == []

    host_vars = targets.session.host_vars(host)
    operator = Protocol(
        endpoint=f"https://{targets.address('eventlog')}:5986/wsman",
        transport="ntlm",
        username=host_vars["winhost_local_user"],
        password=host_vars["winhost_local_password"],
        ca_trust_path=host_vars["winhost_ca_bundle"],
    )
    try:
        operator.open_shell()
    except InvalidCredentialsError:
        pass
    else:
        raise AssertionError("the operator account still opens a shell after hardening")


def test_winrm_auth_maps_the_client_certificate(targets: t.Any) -> None:
    host = targets.name("mapping")
    bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    thumbprint = pki.thumbprint(pki.load_cert(Path(bundle)))
    tasks = f"""\
- name: auth
  ansible.builtin.include_role:
    name: winops.remoting.winrm_auth
  vars:
    winrm_auth_methods: [negotiate, kerberos, certificate]
    winrm_auth_certificate_mappings:
      - subject: ansible@localhost
        issuer_thumbprint: {thumbprint}
        username: ansible
        password: "{{{{ ansible_password }}}}"
"""
    first = targets.play("mapping", tasks, label="auth")
    assert first.returncode == 0, first.describe()
    assert "Set the WinRM service authentication methods and encryption" in changed_tasks(
        first, host
    )
    assert cert_auth_user(targets) == f"{host}\\ansible"
    second = targets.play("mapping", tasks, label="auth-again")
    assert second.returncode == 0, second.describe()
    assert changed_tasks(second, host) == []
    password = targets.session.host_vars(host)["ansible_password"]
    assert password not in first.stdout and password not in second.stdout


def test_winrm_auth_removes_a_mapping_without_its_password(targets: t.Any) -> None:
    """Issue 13: a mapping with state=absent needs neither username nor password."""
    host = targets.name("mapping")
    bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    thumbprint = pki.thumbprint(pki.load_cert(Path(bundle)))
    before = targets.state("mapping")["cert_mappings"]
    tasks = f"""\
- name: auth
  ansible.builtin.include_role:
    name: winops.remoting.winrm_auth
  vars:
    winrm_auth_methods: [negotiate, kerberos, certificate]
    winrm_auth_certificate_mappings:
      - subject: gone@localhost
        issuer_thumbprint: {thumbprint}
        state: absent
"""
    run = targets.play("mapping", tasks, label="auth-absent")
    assert run.returncode == 0, run.describe()
    assert "Map client certificates to local accounts" not in changed_tasks(run, host)
    assert targets.state("mapping")["cert_mappings"] == before

    missing = tasks.replace("        state: absent\n", "")
    refused = targets.play("mapping", missing, label="auth-present-no-password")
    assert refused.returncode != 0
    assert "state is present but all of the following are missing: username, password" in (
        refused.stdout
    )


def _self_signed_pem(path: Path, name: str) -> str:
    """A self-signed CA certificate for `name` in PEM at `path`; its thumbprint."""
    authority = pki.CertificateAuthority.create(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pki.write_cert(path, authority.cert)
    return authority.thumbprint


@pytest.mark.slow
def test_trusted_certificates_of_one_file_name_in_check_mode_then_for_real(
    targets: t.Any, tmp_path: Path
) -> None:
    """winrm_auth copied each certificate to C:\\Windows\\Temp by its file name alone, so
    ca/cert.pem and client/cert.pem landed on one path and one was imported into both stores;
    and in check mode the copy was skipped, so the import failed on a missing file."""
    host = targets.name("certstore")
    root = _self_signed_pem(tmp_path / "ca" / "cert.pem", "winops-trust-ca")
    peer = _self_signed_pem(tmp_path / "client" / "cert.pem", "winops-trust-client")
    tasks = f"""\
- name: trust
  ansible.builtin.include_role:
    name: winops.remoting.winrm_auth
  vars:
    winrm_auth_methods: [negotiate, kerberos, certificate]
    winrm_auth_trusted_certificates:
      - {{src: "{tmp_path / "ca" / "cert.pem"}", store_name: Root}}
      - {{src: "{tmp_path / "client" / "cert.pem"}", store_name: TrustedPeople}}
"""

    def stores() -> dict[str, set[str]]:
        found = targets.state("certstore")["cert_stores"]
        return {name: {c["thumbprint"].upper() for c in found.get(name, [])} for name in found}

    before = stores()
    checked = targets.play("certstore", tasks, check=True, label="trust-check")
    assert checked.returncode == 0, checked.describe()
    assert stores() == before
    run = targets.play("certstore", tasks, label="trust")
    assert run.returncode == 0, run.describe()
    after = stores()
    assert root in after["LocalMachine\\Root"] and root not in after["LocalMachine\\TrustedPeople"]
    assert peer in after["LocalMachine\\TrustedPeople"] and peer not in after["LocalMachine\\Root"]
    imports = run.task(
        host, "winops.remoting.winrm_auth : Import the certificates into the machine stores"
    )
    assert imports.result["changed"] is True, imports.result
