"""winops.remoting.win_winrm_service through ansible-playbook against winhost.

Check mode reports the changes and leaves the host alone; a normal run changes winhost's
WinRM configuration and the host then behaves differently (Basic accepted over HTTPS and,
with AllowUnencrypted, over plain HTTP); a second run changes nothing; a setting that Group
Policy owns is reported, not written.
"""

from __future__ import annotations

import json
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmltodict
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol

SERVICE_TASKS = """\
- name: service settings
  winops.remoting.win_winrm_service:
    auth_basic: true
    allow_unencrypted: true
    cbt_hardening_level: strict
    max_envelope_size_kb: 1024
    auth_negotiate: true
    client:
      trusted_hosts: [b.winops.test, a.winops.test]
"""

WANTED = {
    "auth_basic": True,
    "allow_unencrypted": True,
    "cbt_hardening_level": "strict",
    "max_envelope_size_kb": 1024,
    "auth_negotiate": True,
    "client.trusted_hosts": "a.winops.test,b.winops.test",
}


AUTH_URI = "http://schemas.microsoft.com/wbem/wsman/1/config/service/auth"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"


def service_auth(protocol: Protocol) -> dict[str, str]:
    """winrm get winrm/config/service/auth, through pywinrm's real transport."""
    message = {"env:Envelope": protocol.build_wsman_header(GET, AUTH_URI)}
    message["env:Envelope"]["env:Body"] = {}
    reply = ET.fromstring(protocol.send_message(xmltodict.unparse(message)))
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in reply.iter()}


def basic_protocol(targets: t.Any, role: str, scheme: str) -> Protocol:
    name = targets.name(role)
    user, password = targets.session.credentials(name)
    port = 5986 if scheme == "https" else 5985
    return Protocol(
        f"{scheme}://{targets.address(role)}:{port}/wsman",
        transport="basic",
        username=user,
        password=password,
        server_cert_validation="validate",
        ca_trust_path=targets.session.host_vars(name)["winhost_ca_bundle"],
    )


def basic_works(targets: t.Any, role: str, scheme: str) -> bool:
    try:
        service_auth(basic_protocol(targets, role, scheme))
    except (InvalidCredentialsError, WinRMTransportError):
        return False
    return True


def the_task(run: t.Any, host: str) -> dict[str, t.Any]:
    assert run.returncode == 0, run.describe()
    return run.task(host, "service settings").result


@pytest.mark.slow
def test_service_check_mode_then_apply_then_idempotent(targets: t.Any) -> None:
    host = targets.name("service")
    before = targets.state("service")["winrm"]
    assert not basic_works(targets, "service", "https"), "Basic must start refused"

    checked = the_task(targets.play("service", SERVICE_TASKS, check=True, label="check"), host)
    assert checked["changed"] is True
    assert checked["settings"] == WANTED
    assert checked["diff"]["before"]["auth_basic"] is False
    assert checked["diff"]["before"]["cbt_hardening_level"] == "relaxed"
    assert checked["diff"]["before"]["max_envelope_size_kb"] == 500
    assert checked["diff"]["after"] == WANTED
    assert checked["managed_by_policy"] == []
    assert targets.state("service")["winrm"] == before, "check mode changed the host"
    assert not basic_works(targets, "service", "https")

    applied = the_task(targets.play("service", SERVICE_TASKS, label="apply"), host)
    assert applied["changed"] is True
    winrm = targets.state("service")["winrm"]
    assert winrm["Service"]["Auth"]["Basic"] == "true"
    assert winrm["Service"]["AllowUnencrypted"] == "true"
    assert winrm["Service"]["Auth"]["CbtHardeningLevel"] == "Strict"
    assert winrm["MaxEnvelopeSizekb"] == "1024"
    assert winrm["Client"]["TrustedHosts"] == "b.winops.test,a.winops.test"

    # Live: Basic is accepted now, over HTTPS and (AllowUnencrypted) over plain HTTP; the
    # NTLM connection of the next run still works under CbtHardeningLevel=Strict (it sends
    # channel bindings).
    assert basic_works(targets, "service", "https")
    assert service_auth(basic_protocol(targets, "service", "http"))["Basic"] == "true"

    again = targets.play("service", SERVICE_TASKS, label="again")
    assert the_task(again, host)["changed"] is False
    assert again.stats(host).get("changed") == 0, again.describe()


@pytest.mark.slow
def test_service_turning_basic_off_refuses_it_live(targets: t.Any) -> None:
    host = targets.name("service")
    tasks = (
        "- name: service settings\n  winops.remoting.win_winrm_service:\n    auth_basic: false\n"
    )
    result = the_task(targets.play("service", tasks, label="basic-off"), host)
    assert result["settings"] == {"auth_basic": False}
    assert targets.state("service")["winrm"]["Service"]["Auth"]["Basic"] == "false"
    assert not basic_works(targets, "service", "https")


@pytest.mark.slow
def test_service_group_policy_setting_is_reported_not_written(targets: t.Any) -> None:
    host = targets.name("policy")
    tasks = (
        "- name: service settings\n  winops.remoting.win_winrm_service:\n    auth_credssp: true\n"
    )
    result = the_task(targets.play("policy", tasks, label="policy"), host)
    assert result["changed"] is False
    assert result["settings"] == {"auth_credssp": False}
    assert result["managed_by_policy"] == [
        {
            "setting": "auth_credssp",
            "path": "WSMan:\\localhost\\Service\\Auth\\CredSSP",
            "value": False,
            "requested": True,
            "policy": "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service\\AllowCredSSP",
        }
    ]
    assert any("set by Group Policy" in w for w in result.get("warnings", [])), result
    assert targets.state("policy")["winrm"]["Service"]["Auth"]["CredSSP"] == "false"


@pytest.mark.slow
def test_service_negotiate_and_cbt_policies_are_detected(targets: t.Any) -> None:
    """Issue 13: "Disallow Negotiate authentication" is Service\\AllowNegotiate, and the CBT
    policy is on when CBTHardeningLevelStatus is 1 (Policy CSP RemoteManagement, ADMX mapping
    of DisallowNegotiate_1 and CBTHardeningLevel_1)."""
    host = targets.name("policy")
    tasks = (
        "- name: service settings\n  winops.remoting.win_winrm_service:\n"
        "    auth_negotiate: true\n    cbt_hardening_level: strict\n"
    )
    result = the_task(targets.play("policy", tasks, label="negotiate-cbt"), host)
    root = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service"
    assert {entry["setting"]: entry["policy"] for entry in result["managed_by_policy"]} == {
        "auth_negotiate": f"{root}\\AllowNegotiate",
        "cbt_hardening_level": f"{root}\\CBTHardeningLevelStatus",
    }
    assert result["changed"] is False
    assert targets.state("policy")["winrm"]["Service"]["Auth"]["CbtHardeningLevel"] == "Relaxed"


@pytest.mark.slow
def test_service_bad_values_fail_naming_the_option(targets: t.Any) -> None:
    host = targets.name("service")
    tasks = """\
- name: bad filter
  winops.remoting.win_winrm_service:
    ipv4_filter: 10.0.0.1-not-an-ip
  ignore_errors: true
- name: shorthand filter
  winops.remoting.win_winrm_service:
    ipv4_filter: 10.1-10.0.0.9
  ignore_errors: true
- name: bad level
  winops.remoting.win_winrm_service:
    cbt_hardening_level: paranoid
  ignore_errors: true
- name: missing certificate
  winops.remoting.win_winrm_service:
    certificate_thumbprint: "{{ '0' * 40 }}"
  ignore_errors: true
- name: small envelope
  winops.remoting.win_winrm_service:
    auth_basic: true
    max_envelope_size_kb: 16
  ignore_errors: true
"""
    before = targets.state("service")["winrm"]
    run = targets.play("service", tasks, label="bad")
    bad_filter = run.task(host, "bad filter").result
    assert bad_filter["failed"] and bad_filter["msg"] == (
        "ipv4_filter '10.0.0.1-not-an-ip' is invalid: 'not' is not an address of the "
        "InterNetwork family; use '*', '' or comma-separated 'first-last' ranges"
    )
    shorthand = run.task(host, "shorthand filter").result
    assert shorthand["failed"] and shorthand["msg"].startswith(
        "ipv4_filter '10.1-10.0.0.9' is invalid: '10.1' is not a dotted-quad IPv4 address"
    ), shorthand
    level = run.task(host, "bad level").result
    assert level["msg"] == (
        "value of cbt_hardening_level must be one of: none, relaxed, strict. "
        "Got no match for: paranoid"
    )
    missing = run.task(host, "missing certificate").result
    assert (
        missing["msg"] == f"certificate_thumbprint '{'0' * 40}' is not in Cert:\\LocalMachine\\My"
    )
    small = run.task(host, "small envelope").result
    assert small["failed"] and small["msg"] == (
        "max_envelope_size_kb '16' must be at least 32 kilobytes, the smallest "
        "MaxEnvelopeSizekb Windows takes"
    )
    # Refused before anything was written: Basic, asked for in the same task, stays off.
    assert targets.state("service")["winrm"] == before


BASIC_POLICY = """\
- name: policy
  ansible.windows.win_regedit:
    path: HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service
    name: AllowBasic
    data: {data}
    type: dword
    state: {state}
"""


@pytest.mark.slow
def test_service_group_policy_value_overrides_the_local_setting(targets: t.Any) -> None:
    """A configured WinRM policy value wins over winrm/config (Policy CSP RemoteManagement:
    "Allow Basic authentication" disabled means the service does not accept Basic): with
    Service\\AllowBasic=0 and Auth\\Basic=true locally, Basic is refused, and asking for
    Basic off is no change and no warning, since the policy already keeps it off. Before winhost
    modelled the policy, Basic was still accepted and the module warned that policy left Basic
    at True."""
    host = targets.name("service")
    basic_on = (
        "- name: service settings\n  winops.remoting.win_winrm_service:\n    auth_basic: true\n"
    )
    basic_off = basic_on.replace("auth_basic: true", "auth_basic: false")
    the_task(targets.play("service", basic_on, label="policy-basic-on"), host)
    assert basic_works(targets, "service", "https")
    try:
        set_policy = targets.play(
            "service", BASIC_POLICY.format(data=0, state="present"), label="policy-set"
        )
        assert set_policy.returncode == 0, set_policy.describe()
        assert targets.state("service")["winrm"]["Service"]["Auth"]["Basic"] == "true"
        assert not basic_works(targets, "service", "https"), "policy AllowBasic=0 must win"

        result = the_task(targets.play("service", basic_off, label="policy-basic-off"), host)
        assert result["changed"] is False, result
        assert result["settings"] == {"auth_basic": False}, result
        assert [(m["setting"], m["value"]) for m in result["managed_by_policy"]] == [
            ("auth_basic", False)
        ], result
        assert not result.get("warnings"), result
    finally:
        cleared = targets.play(
            "service", BASIC_POLICY.format(data=0, state="absent"), label="policy-clear"
        )
        assert cleared.returncode == 0, cleared.describe()
        the_task(targets.play("service", basic_off, label="policy-cleanup"), host)
    assert not basic_works(targets, "service", "https")


@pytest.mark.slow
def test_service_thumbprint_is_written_as_it_is_compared(targets: t.Any) -> None:
    """A thumbprint pasted from the certificate dialog (spaces, lower case, a leading U+200E)
    was validated and compared without them but written to Service\\CertificateThumbprint as
    given, where WinRM would look for a certificate of that name."""
    host = targets.name("service")
    stored = targets.state("service")["cert_stores"]["LocalMachine\\My"][0]["thumbprint"].upper()
    pasted = "\u200e" + " ".join(stored[i : i + 2] for i in range(0, 40, 2)).lower()
    tasks = (
        "- name: thumbprint\n  winops.remoting.win_winrm_service:\n"
        f"    certificate_thumbprint: {json.dumps(pasted)}\n"
    )
    run = targets.play("service", tasks, label="thumbprint")
    assert run.returncode == 0, run.describe()
    assert targets.state("service")["winrm"]["Service"]["CertificateThumbprint"] == stored
    again = targets.play("service", tasks, label="thumbprint-again")
    assert again.task(host, "thumbprint").result["changed"] is False, again.describe()


def test_service_certificate_without_its_key_is_refused(targets: t.Any) -> None:
    """The service certificate is what CredSSP's TLS handshake presents: one imported without
    its private key (a .cer, the usual mistake) is refused before anything is written."""
    host = targets.name("service")
    ca_pem = Path(targets.session.host_vars(host)["winhost_ca_bundle"]).read_text()
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    thumbprint = ca.fingerprint(hashes.SHA1()).hex().upper()  # Windows thumbprints are SHA-1
    tasks = (
        "- name: copy\n  ansible.windows.win_copy:\n"
        f"    content: {json.dumps(ca_pem)}\n    dest: C:\\Windows\\Temp\\keyless.pem\n"
        "- name: import\n  ansible.windows.win_certificate_store:\n"
        "    path: C:\\Windows\\Temp\\keyless.pem\n    store_name: My\n"
        "    store_location: LocalMachine\n"
        "- name: keyless\n  winops.remoting.win_winrm_service:\n"
        f"    certificate_thumbprint: {thumbprint}\n    auth_basic: true\n"
        "  ignore_errors: true\n"
    )
    before = targets.state("service")["winrm"]
    run = targets.play("service", tasks, label="keyless")
    result = run.task(host, "keyless").result
    assert result.get("failed") is True, run.describe()
    assert result["msg"] == (
        f"certificate_thumbprint '{thumbprint}' has no private key in Cert:\\LocalMachine\\My, "
        "and CredSSP's TLS handshake needs one: import the certificate with its key (a PFX). "
        "Nothing was changed."
    )
    assert targets.state("service")["winrm"] == before


def test_service_filters_are_checked_against_where_connections_arrive(
    tmp_path: t.Any,
) -> None:
    """Behind NAT the controller connects to a public address the host does not have, and the
    play's connection arrives on the host's own (private) one: the filter check looks at the
    latter (Get-NetTCPConnection's LocalAddress). The emulation's check, on a host model with a
    connection that arrives on 10.0.0.5 from 198.51.100.7 (a controller connecting to
    203.0.113.5, forwarded)."""
    from roles_hosts import FIRST

    from winhost import profiles
    from winhost.modules import ModuleFailure
    from winhost.modules.winops_winrm_service import _assert_filters_keep_connection

    # A host model of its own that never listens (the index only names it).
    state = profiles.create_state_dir(tmp_path, 1, "default", first=FIRST)[0]
    nat = [("10.0.0.5", 5986, "198.51.100.7")]

    def check(ipv4: str | None, ipv6: str | None = None) -> None:
        _assert_filters_keep_connection({"ipv4_filter": ipv4, "ipv6_filter": ipv6}, state, nat)

    check("10.0.0.1-10.0.0.9")
    check(None, "")  # IPv4 left as it is ('*'): the connection keeps its address
    with pytest.raises(ModuleFailure) as refused:
        check("203.0.113.5")  # the address the controller connects to
    assert str(refused.value).startswith(
        "ipv4_filter '203.0.113.5' and ipv6_filter '*' would cut this play off: the clients "
        "connected to WinRM now (198.51.100.7) arrive on 10.0.0.5"
    ), refused.value
    with pytest.raises(ModuleFailure):
        check("")


@pytest.mark.slow
def test_service_trusted_hosts_policy_counts_only_when_enabled(targets: t.Any) -> None:
    """The "Trusted Hosts" policy is TrustedHosts 1 with the list in TrustedHostsList; disabled
    (0) it leaves the local list in effect (Policy CSP RemoteManagement/TrustedHosts). Any value
    was read as the policy setting the list, so a disabled policy blocked the module."""
    host = targets.name("policy")
    key = "HKLM:\\\\SOFTWARE\\\\Policies\\\\Microsoft\\\\Windows\\\\WinRM\\\\Client"

    def tasks(policy: int, trusted: str) -> str:
        return (
            f"- name: policy\n  ansible.windows.win_regedit:\n    path: {key}\n"
            f"    name: TrustedHosts\n    data: {policy}\n    type: dword\n"
            "- name: service settings\n  winops.remoting.win_winrm_service:\n"
            f"    client:\n      trusted_hosts: [{trusted}]\n"
        )

    disabled = the_task(targets.play("policy", tasks(0, "c.winops.test"), label="th-off"), host)
    assert disabled["changed"] is True and disabled["managed_by_policy"] == [], disabled
    assert targets.state("policy")["winrm"]["Client"]["TrustedHosts"] == "c.winops.test"
    enabled = the_task(targets.play("policy", tasks(1, "d.winops.test"), label="th-on"), host)
    assert enabled["changed"] is False, enabled
    assert [entry["setting"] for entry in enabled["managed_by_policy"]] == ["client.trusted_hosts"]
