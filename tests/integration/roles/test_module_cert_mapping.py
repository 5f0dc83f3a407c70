"""winops.remoting.win_winrm_cert_mapping through ansible-playbook against winhost, and the
certificate authentication it governs, over the wire with pywinrm's certificate transport.

The `mapping` host starts with the default profile's mapping of the test client certificate
(UPN ansible@localhost, issued by the test CA) to the ansible account, written by "someone
else" (no marker). Check mode changes nothing; removal makes certificate authentication fail
(401); mapping again makes it log on as ansible; a second run changes nothing. The changed
password case runs the emulation in-process against a host model (no listener needed).
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from roles_hosts import FIRST, OFFSETS
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

from winhost import api, pki, profiles
from winhost.auth import CERTIFICATE_AUTH_HEADER, ConnectionAuth, TlsInfo
from winhost.execution.context import ExecContext
from winhost.host import WinHost
from winhost.modules import _REGISTRY, _invoke, _load
from winhost.modules.winops_winrm_cert_mapping import MARKER_KEY

# The resource URI of the winrm connection's shell: a mapping's URI must cover it.
CMD_SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


def certificate_logon(host: WinHost, tls: TlsInfo) -> str:
    """How the host answers a certificate logon for a cmd shell request: ok or reject."""
    return ConnectionAuth(host, tls).authenticate(CERTIFICATE_AUTH_HEADER, CMD_SHELL_URI).status


def cert_auth_user(targets: t.Any) -> str:
    """whoami over a cmd shell opened with the client certificate (raises on a 401)."""
    host_vars = targets.session.host_vars(targets.name("mapping"))
    protocol = Protocol(
        endpoint=f"https://{targets.address('mapping')}:5986/wsman",
        transport="certificate",
        cert_pem=host_vars["winhost_client_cert"],
        cert_key_pem=host_vars["winhost_client_key"],
        ca_trust_path=host_vars["winhost_ca_bundle"],
        username="",
        password="",
    )
    shell = protocol.open_shell()
    try:
        command = protocol.run_command(shell, "whoami")
        stdout, _, code = protocol.get_command_output(shell, command)
        protocol.cleanup_command(shell, command)
    finally:
        protocol.close_shell(shell)
    assert code == 0
    return stdout.decode().strip()


@pytest.fixture(scope="module")
def ca_thumbprint(targets: t.Any) -> str:
    bundle = targets.session.host_vars(targets.name("mapping"))["winhost_ca_bundle"]
    return pki.thumbprint(pki.load_cert(Path(bundle)))


def play(
    targets: t.Any, ca: str, state: str, *, check: bool = False, label: str, extra: str = ""
) -> t.Any:
    account = '    username: ansible\n    password: "{{ ansible_password }}"\n'
    tasks = (
        "- name: mapping\n"
        "  winops.remoting.win_winrm_cert_mapping:\n"
        f"    issuer_thumbprint: {ca.lower()}\n"
        "    subject: ansible@localhost\n"
        f"    state: {state}\n" + (account if state == "present" else "") + extra
    )
    run = targets.play("mapping", tasks, check=check, label=label)
    assert run.returncode == 0, run.describe()
    return run.task(targets.name("mapping"), "mapping").result


def mappings(targets: t.Any) -> list[dict[str, t.Any]]:
    return targets.state("mapping")["cert_mappings"]


@pytest.mark.slow
def test_mapping_check_remove_map_idempotent_and_live(targets: t.Any, ca_thumbprint: str) -> None:
    host = targets.name("mapping")
    assert cert_auth_user(targets) == f"{host}\\ansible"
    before = mappings(targets)

    checked = play(targets, ca_thumbprint, "absent", check=True, label="check-absent")
    assert checked["changed"] is True and checked["mapping"] is None
    assert mappings(targets) == before, "check mode removed the mapping"
    assert cert_auth_user(targets) == f"{host}\\ansible"

    removed = play(targets, ca_thumbprint, "absent", label="absent")
    assert removed["changed"] is True
    assert removed["diff"]["before"]["username"] == "ansible" and removed["diff"]["after"] == {}
    assert mappings(targets) == []
    with pytest.raises(InvalidCredentialsError):
        cert_auth_user(targets)
    assert play(targets, ca_thumbprint, "absent", label="absent-again")["changed"] is False

    created_check = play(targets, ca_thumbprint, "present", check=True, label="check-present")
    assert created_check["changed"] is True and created_check["update_reason"] == "created"
    assert mappings(targets) == []

    created = play(targets, ca_thumbprint, "present", label="present")
    assert created["changed"] is True and created["password_updated"] is True
    assert created["update_reason"] == "created"
    assert created["mapping"] == {
        "issuer_thumbprint": ca_thumbprint,
        "subject": "ansible@localhost",
        "uri": "*",
        "username": "ansible",
        "enabled": True,
    }
    assert created["diff"] == {"before": {}, "after": created["mapping"]}
    assert "password" not in str(created["diff"]).lower()
    assert cert_auth_user(targets) == f"{host}\\ansible"
    marker_values = targets.state("mapping")["registry"][MARKER_KEY]
    assert len(marker_values) == 1

    again = play(targets, ca_thumbprint, "present", label="present-again")
    assert (again["changed"], again["update_reason"], again["password_updated"]) == (
        False,
        None,
        False,
    )
    always = play(
        targets, ca_thumbprint, "present", label="always", extra="    update_password: always\n"
    )
    assert always["changed"] is True and always["update_reason"] == "update_password_always"
    disabled = play(
        targets, ca_thumbprint, "present", label="disabled", extra="    enabled: false\n"
    )
    assert disabled["changed"] is True and disabled["update_reason"] is None
    assert disabled["diff"]["before"]["enabled"] is True
    with pytest.raises(InvalidCredentialsError):
        cert_auth_user(targets)
    play(targets, ca_thumbprint, "present", label="enabled")
    assert cert_auth_user(targets) == f"{host}\\ansible"


def test_mapping_bad_input_fails_clearly(targets: t.Any, ca_thumbprint: str) -> None:
    host = targets.name("mapping")
    tasks = f"""\
- name: wrong password
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: {ca_thumbprint}
    subject: ansible@localhost
    username: ansible
    password: not-the-password
  ignore_errors: true
- name: bad thumbprint
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: 12AB
    subject: x@localhost
    state: absent
  ignore_errors: true
- name: no account
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: {ca_thumbprint}
    subject: x@localhost
  ignore_errors: true
- name: unknown account
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: {ca_thumbprint}
    subject: x@localhost
    username: .\\nobody
    password: x
  ignore_errors: true
- name: domain account
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: {ca_thumbprint}
    subject: x@localhost
    username: OTHERDOMAIN\\ansible
    password: Some-Pass-1
  ignore_errors: true
- name: issuer not trusted
  winops.remoting.win_winrm_cert_mapping:
    issuer_thumbprint: {"A" * 40}
    subject: x@localhost
    username: ansible
    password: x
  ignore_errors: true
"""
    before = targets.state("mapping")
    run = targets.play("mapping", tasks, label="bad")
    messages = {
        name: run.task(host, name).result["msg"]
        for name in (
            "wrong password",
            "bad thumbprint",
            "no account",
            "unknown account",
            "domain account",
            "issuer not trusted",
        )
    }
    assert messages == {
        "wrong password": "password is not accepted for username 'ansible'; the mapping would "
        "store a credential that cannot log on",
        "bad thumbprint": "issuer_thumbprint '12AB' is not a SHA-1 thumbprint of 40 hex digits",
        "no account": "state is present but all of the following are missing: username, password",
        "unknown account": "username '.\\nobody' is not a local account on this host "
        "(certificate mapping needs one): User nobody was not found.",
        # not silently the local account of the same name
        "domain account": "username 'OTHERDOMAIN\\ansible' names an account of 'OTHERDOMAIN', "
        "but a WinRM certificate mapping needs a local account of this host "
        f"({before['computer_name']}); give it as '.\\ansible' or without a prefix",
        "issuer not trusted": f"issuer_thumbprint '{'A' * 40}' is in neither "
        "Cert:\\LocalMachine\\Root nor Cert:\\LocalMachine\\CA; import the issuing certificate "
        "first (a root CA into Root, an intermediate CA into CA with its root in Root)",
    }
    assert "not-the-password" not in run.stdout
    after = targets.state("mapping")
    assert (after["cert_mappings"], after["registry"]) == (
        before["cert_mappings"],
        before["registry"],
    )


def run_module(host: WinHost, args: dict[str, t.Any]) -> dict[str, t.Any]:
    """The emulation as the exec wrapper runs it, as the ansible account."""
    _load()
    principal = api.Principal("ansible", host.computer_name, "NTLM", is_admin=True)
    ctx = ExecContext.for_principal(host, principal)
    result, _ = _invoke(_REGISTRY["winops.remoting.win_winrm_cert_mapping"], ctx, args, None, {})
    return result


class OfflineHost(t.NamedTuple):
    state: t.Any
    host: WinHost
    ca: t.Any
    tls: TlsInfo


def offline_host(tmp_path: Path) -> OfflineHost:
    """A host model of its own that never listens (shut down: configuration changes open no
    sockets; the index only names it), its client CA, and the TLS side of a logon with the
    client certificate it issued to `ansible`."""
    state = profiles.create_state_dir(tmp_path, 1, "default", first=FIRST + OFFSETS["mapping"])[0]
    host = WinHost(state)
    host.shutdown()
    ca = pki.load_cert(tmp_path / "ca" / "ca.pem")
    client = pki.load_cert(tmp_path / "client" / "ansible.pem")
    tls = TlsInfo(b"", client.public_bytes(serialization.Encoding.DER), "TLSv1.3")
    return OfflineHost(state, host, ca, tls)


def test_changed_account_password_is_noticed_and_rewritten(tmp_path: Path) -> None:
    state, host, ca, tls = offline_host(tmp_path)
    password = state.accounts[0].password
    args = {
        "issuer_thumbprint": pki.thumbprint(ca),
        "subject": "ansible@localhost",
        "username": "ansible",
        "password": password,
    }
    assert run_module(host, args)["update_reason"] == "stored_password_unverified"
    assert certificate_logon(host, tls) == "ok"

    # The account's password changes; the mapping still holds the old one, so the logon fails.
    new_password = "Chänged-Pässw0rd-1!"
    state.accounts[0] = dataclasses.replace(state.accounts[0], password=new_password)
    assert certificate_logon(host, tls) == "reject"
    # The module is told the new password: it notices, rewrites, and certificate logon works.
    rewritten = run_module(host, {**args, "password": new_password})
    assert (rewritten["changed"], rewritten["update_reason"]) == (True, "account_password_changed")
    assert certificate_logon(host, tls) == "ok"
    assert run_module(host, {**args, "password": new_password})["changed"] is False


def test_account_restrictions_count_as_a_correct_password(tmp_path: Path) -> None:
    """Issue 13: LogonUser reports restrictions (network logon denied, logon hours...) only
    after the password matched; as ansible.windows' win_user does, they count as a correct
    password (the module warns and stores it). A wrong password still fails, and a disabled
    account fails with LogonUser's error."""
    state, host, ca, tls = offline_host(tmp_path)
    account = state.accounts[0]
    args = {
        "issuer_thumbprint": pki.thumbprint(ca),
        "subject": "ansible@localhost",
        "username": "ansible",
        "password": account.password,
        "update_password": "always",
    }
    # "Deny access to this computer from the network" for the mapped account.
    state.accounts[0] = dataclasses.replace(
        account, logon_restriction="ERROR_LOGON_TYPE_NOT_GRANTED"
    )
    stored = run_module(host, args)
    assert stored.get("failed") is not True, stored
    assert stored["password_updated"] is True
    assert any("ERROR_LOGON_TYPE_NOT_GRANTED" in w for w in stored["warnings"]), stored
    # The restriction refuses the certificate logon too, until it is lifted.
    assert certificate_logon(host, tls) == "reject"
    state.accounts[0] = account
    assert certificate_logon(host, tls) == "ok"

    wrong = run_module(host, {**args, "password": "not-the-password"})
    assert wrong["msg"].startswith("password is not accepted for username 'ansible'")
    state.accounts[0] = dataclasses.replace(account, enabled=False)
    disabled = run_module(host, args)
    assert disabled["msg"].startswith("cannot test the password of username 'ansible'")
    assert "Win32ErrorCode 1331" in disabled["msg"]


def test_a_prefixed_local_account_is_stored_as_new_item_stores_it(tmp_path: Path) -> None:
    """New-Item WSMan:\\localhost\\ClientCertificate -Credential stores the account without
    its prefix (PowerShell's ConfigProvider.cs writes NetworkCredential.UserName, which has
    none). The module stored '.\\ansible' as given, so a mapping made that way was rewritten
    (username_changed) on every first run that named the account with its prefix."""
    state, host, ca, tls = offline_host(tmp_path)
    args = {
        "issuer_thumbprint": pki.thumbprint(ca),
        "subject": "ansible@localhost",
        "username": "ansible",
        "password": state.accounts[0].password,
    }
    assert run_module(host, args)["changed"] is True
    for prefixed in (".\\ansible", f"{host.computer_name}\\ansible"):
        result = run_module(host, {**args, "username": prefixed})
        assert result["changed"] is False, (prefixed, result)
        assert result["mapping"]["username"] == "ansible"
    created = run_module(host, {**args, "subject": "other@localhost", "username": ".\\ansible"})
    assert created["changed"] is True
    stored = {mapping.subject: mapping.username for mapping in state.cert_mappings}
    assert stored["other@localhost"] == "ansible", stored
    assert certificate_logon(host, tls) == "ok"


POWERSHELL_URI = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"


def _only_mapping(
    host: WinHost, ca: t.Any, replacing_uri: str = "*", **wanted: str
) -> dict[str, t.Any]:
    """Replace the mapping of ansible@localhost for `replacing_uri` (the profile's is for '*')
    with `wanted`: two mappings that both apply to a logon are a case winhost refuses to
    decide."""
    base = {"issuer_thumbprint": pki.thumbprint(ca), "subject": "ansible@localhost"}
    removed = run_module(host, {**base, "uri": replacing_uri, "state": "absent"})
    assert removed["changed"] is True
    password = host.state.accounts[0].password
    return run_module(host, {**base, "username": "ansible", "password": password, **wanted})


def test_a_mapping_for_one_resource_uri_refuses_the_others(tmp_path: Path) -> None:
    """MS-WSMV 2.2.4.3: a mapping applies to the resource URIs its URI covers. Mapped for the
    winrm plugins' cmd shell only, the certificate cannot open a psrp runspace."""
    _, host, ca, tls = offline_host(tmp_path)
    made = _only_mapping(host, ca, uri=CMD_SHELL_URI)
    assert made["changed"] is True and made["mapping"]["uri"] == CMD_SHELL_URI
    assert certificate_logon(host, tls) == "ok"
    psrp = ConnectionAuth(host, tls).authenticate(CERTIFICATE_AUTH_HEADER, POWERSHELL_URI)
    assert psrp.status == "reject", "the PowerShell URI is not covered by a cmd-only mapping"

    prefix = _only_mapping(
        host, ca, replacing_uri=CMD_SHELL_URI, uri="http://schemas.microsoft.com/powershell/*"
    )
    assert prefix["changed"] is True
    assert certificate_logon(host, tls) == "reject"
    psrp = ConnectionAuth(host, tls).authenticate(CERTIFICATE_AUTH_HEADER, POWERSHELL_URI)
    assert psrp.status == "ok"


def test_a_wildcard_subject_maps_every_upn_it_matches(tmp_path: Path) -> None:
    _, host, ca, tls = offline_host(tmp_path)
    assert _only_mapping(host, ca, subject="*@localhost")["changed"] is True
    assert certificate_logon(host, tls) == "ok"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("subject", "ans*ble@localhost"),
        ("subject", "*ansible*"),
        ("subject", ""),
        ("uri", "http://schemas.microsoft.com/*/cmd"),
        ("uri", "*/*"),
        ("uri", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd?x=1"),
        ("uri", "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ cmd"),
    ],
)
def test_patterns_winrm_refuses_fail_before_anything_changes(
    tmp_path: Path, option: str, value: str
) -> None:
    state, host, ca, _ = offline_host(tmp_path)
    before = (list(state.cert_mappings), dict(state.registry))
    args = {
        "issuer_thumbprint": pki.thumbprint(ca),
        "subject": "ansible@localhost",
        "username": "ansible",
        "password": state.accounts[0].password,
        option: value,
    }
    for check_mode in (True, False):
        result = run_module(host, {**args, "_ansible_check_mode": check_mode})
        assert result.get("failed") is True, result
        assert result["msg"].startswith(f"{option} '{value}' is not a pattern WinRM takes")
        assert result["msg"].endswith("Nothing was changed.")
    assert (list(state.cert_mappings), dict(state.registry)) == before
