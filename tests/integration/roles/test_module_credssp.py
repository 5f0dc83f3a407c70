"""winops.remoting.win_credssp through ansible-playbook against winhost.

Turning the server role off makes the host refuse CredSSP at once (and on again accepts it);
the delegation lists are written exactly, not added to. Check mode changes nothing; a second
run changes nothing.
"""

from __future__ import annotations

import typing as t
import xml.etree.ElementTree as ET

import pytest
import xmltodict
from requests_credssp.exceptions import AuthenticationException
from winrm.exceptions import InvalidCredentialsError, WinRMTransportError
from winrm.protocol import Protocol

AUTH_URI = "http://schemas.microsoft.com/wbem/wsman/1/config/service/auth"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
DELEGATION = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"
SERVER_OFF = """\
- name: credssp
  winops.remoting.win_credssp:
    server: false
    client: true
    delegate_computers: [a.winops.test, TERMSRV/*]
"""
SERVER_ON = """\
- name: credssp
  winops.remoting.win_credssp:
    server: true
    delegate_computers: [b.winops.test]
"""


def credssp_works(targets: t.Any) -> bool:
    name = targets.name("credssp")
    user, password = targets.session.credentials(name)
    protocol = Protocol(
        f"https://{targets.address('credssp')}:5986/wsman",
        transport="credssp",
        username=user,
        password=password,
        server_cert_validation="validate",
        ca_trust_path=targets.session.host_vars(name)["winhost_ca_bundle"],
    )
    message = {"env:Envelope": protocol.build_wsman_header(GET, AUTH_URI)}
    message["env:Envelope"]["env:Body"] = {}
    try:
        ET.fromstring(protocol.send_message(xmltodict.unparse(message)))
    except (AuthenticationException, InvalidCredentialsError, WinRMTransportError):
        return False
    return True


def result_of(run: t.Any, host: str) -> dict[str, t.Any]:
    assert run.returncode == 0, run.describe()
    return run.task(host, "credssp").result


@pytest.mark.slow
def test_credssp_roles_and_exact_delegation_lists(targets: t.Any) -> None:
    host = targets.name("credssp")
    before = targets.state("credssp")
    assert credssp_works(targets)

    checked = result_of(targets.play("credssp", SERVER_OFF, check=True, label="check"), host)
    assert checked["changed"] is True
    assert checked["diff"]["before"]["server"] is True
    assert checked["diff"]["after"]["delegate_computers"] == ["wsman/a.winops.test", "TERMSRV/*"]
    after_check = targets.state("credssp")
    assert (after_check["winrm"], after_check["registry"]) == (before["winrm"], before["registry"])
    assert credssp_works(targets)

    applied = result_of(targets.play("credssp", SERVER_OFF, label="off"), host)
    assert applied["changed"] is True
    state = targets.state("credssp")
    assert state["winrm"]["Service"]["Auth"]["CredSSP"] == "false"
    assert state["winrm"]["Client"]["Auth"]["CredSSP"] == "true"
    assert state["registry"][f"{DELEGATION}\\AllowFreshCredentials"] == {
        "1": "wsman/a.winops.test",
        "2": "TERMSRV/*",
    }
    assert state["registry"][DELEGATION]["AllowFreshCredentials"] == 1
    assert not credssp_works(targets), "the server role is off: CredSSP must be refused"

    again = targets.play("credssp", SERVER_OFF, label="off-again")
    assert result_of(again, host)["changed"] is False
    assert again.stats(host).get("changed") == 0, again.describe()

    result_of(targets.play("credssp", SERVER_ON, label="on"), host)
    state = targets.state("credssp")
    assert state["registry"][f"{DELEGATION}\\AllowFreshCredentials"] == {"1": "wsman/b.winops.test"}
    assert credssp_works(targets)


GPUPDATE = """\
- name: gpupdate
  ansible.windows.win_command: gpupdate /target:computer /force
"""
EXACT_LIST = """\
- name: credssp
  winops.remoting.win_credssp:
    delegate_computers: [new.winops.test]
"""


@pytest.mark.slow
def test_exact_list_survives_a_policy_refresh_where_enable_wsmancredssp_wrote_it(
    targets: t.Any,
) -> None:
    """Issue 9 defect 8: Enable-WSManCredSSP keeps its list in the local GPO (the `policy`
    host starts as it leaves it), so a list written only to the live key came back at the
    next Group Policy refresh."""
    host = targets.name("policy")
    listed = f"{DELEGATION}\\AllowFreshCredentials"
    assert targets.state("policy")["registry"][listed] == {"1": "wsman/old.winops.test"}

    checked = result_of(targets.play("policy", EXACT_LIST, check=True, label="gpo-check"), host)
    assert checked["changed"] is True
    assert checked["local_group_policy"] == ["delegate_computers"]
    state = targets.state("policy")
    assert state["local_group_policy"][listed] == {"1": "wsman/old.winops.test"}

    applied = result_of(targets.play("policy", EXACT_LIST, label="gpo"), host)
    assert applied["changed"] is True
    assert applied["diff"]["before"]["delegate_computers"] == ["wsman/old.winops.test"]
    assert applied["diff"]["after"]["delegate_computers"] == ["wsman/new.winops.test"]
    # Lists not given are shown unchanged on both sides of the diff, not as removed.
    assert applied["diff"]["before"]["delegate_computers_ntlm_only"] is None
    assert applied["diff"]["after"]["delegate_computers_ntlm_only"] is None

    refreshed = targets.play("policy", GPUPDATE, label="gpupdate")
    assert refreshed.returncode == 0, refreshed.describe()
    stdout = refreshed.task(host, "gpupdate").result["stdout"]
    assert "Computer Policy update has completed successfully." in stdout
    state = targets.state("policy")
    assert state["registry"][listed] == {"1": "wsman/new.winops.test"}, (
        "the policy refresh wrote the local GPO's list back"
    )
    assert state["local_group_policy"][listed] == {"1": "wsman/new.winops.test"}

    again = targets.play("policy", EXACT_LIST, label="gpo-again")
    assert result_of(again, host)["changed"] is False
    assert again.stats(host).get("changed") == 0, again.describe()


def test_client_without_delegate_computers_fails_naming_both(targets: t.Any) -> None:
    host = targets.name("credssp")
    run = targets.play(
        "credssp", "- name: credssp\n  winops.remoting.win_credssp:\n    client: true\n"
    )
    assert run.returncode != 0
    message = run.task(host, "credssp").result["msg"]
    assert message.startswith("client is true but delegate_computers is missing or empty")


TWO_SERVICES = """\
- name: credssp
  winops.remoting.win_credssp:
    client: true
    delegate_computers: [x.winops.test, TERMSRV/*]
"""
CLIENT_OFF = """\
- name: credssp
  winops.remoting.win_credssp:
    client: false
"""


@pytest.mark.slow
def test_client_false_removes_the_wsman_entries_as_disable_wsmancredssp(targets: t.Any) -> None:
    """Disable-WSManCredSSP -Role Client takes the wsman/ entries out of the "Allow delegating
    fresh credentials" list in the local GPO (PowerShell CredSSP.cs, DeleteDelegateSettings) and
    keeps the other services' entries. Before the fix `client: false` only switched
    Client\\Auth\\CredSSP off and left wsman/x.winops.test delegable, live and in the GPO."""
    host = targets.name("policy")
    listed = f"{DELEGATION}\\AllowFreshCredentials"
    result_of(targets.play("policy", TWO_SERVICES, label="two-services"), host)
    state = targets.state("policy")
    assert state["local_group_policy"][listed] == {"1": "wsman/x.winops.test", "2": "TERMSRV/*"}

    applied = result_of(targets.play("policy", CLIENT_OFF, label="client-off"), host)
    assert applied["changed"] is True
    assert applied["delegate_computers"] == ["TERMSRV/*"], applied
    assert applied["diff"]["after"]["delegate_computers"] == ["TERMSRV/*"], applied
    state = targets.state("policy")
    assert state["winrm"]["Client"]["Auth"]["CredSSP"] == "false"
    assert state["registry"][listed] == {"1": "TERMSRV/*"}
    assert state["local_group_policy"][listed] == {"1": "TERMSRV/*"}

    refreshed = targets.play("policy", GPUPDATE, label="client-off-gpupdate")
    assert refreshed.returncode == 0, refreshed.describe()
    assert targets.state("policy")["registry"][listed] == {"1": "TERMSRV/*"}

    again = targets.play("policy", CLIENT_OFF, label="client-off-again")
    assert result_of(again, host)["changed"] is False
    assert again.stats(host).get("changed") == 0, again.describe()


ROLE_DEFAULTS = """\
- name: credssp role
  ansible.builtin.include_role:
    name: winops.remoting.credssp_delegation
"""
ROLE_TASK = "winops.remoting.credssp_delegation : Set the CredSSP server and client roles and the delegation lists"


@pytest.mark.slow
def test_role_with_its_defaults_keeps_other_services_entries(targets: t.Any) -> None:
    """The credssp_delegation role run for the server role alone (client false and no lists,
    its defaults) used to hand the module empty lists, which emptied "Allow delegating fresh
    credentials" and took Remote Desktop's TERMSRV/* with it. Not given, the lists are left
    to `client: false`, which takes out only the wsman/ entries (Disable-WSManCredSSP)."""
    host = targets.name("policy")
    listed = f"{DELEGATION}\\AllowFreshCredentials"
    ntlm_listed = f"{DELEGATION}\\AllowFreshCredentialsWhenNTLMOnly"
    both_lists = (
        "- name: credssp\n  winops.remoting.win_credssp:\n    client: true\n"
        "    delegate_computers: [x.winops.test, TERMSRV/*]\n"
        "    delegate_computers_ntlm_only: [TERMSRV/legacy.winops.test]\n"
    )
    result_of(targets.play("policy", both_lists, label="role-before"), host)

    run = targets.play("policy", ROLE_DEFAULTS, label="role-defaults")
    assert run.returncode == 0, run.describe()
    applied = run.task(host, ROLE_TASK).result
    assert applied["changed"] is True
    assert applied["delegate_computers"] == ["TERMSRV/*"], applied
    state = targets.state("policy")
    assert state["winrm"]["Client"]["Auth"]["CredSSP"] == "false"
    assert state["registry"][listed] == {"1": "TERMSRV/*"}
    assert state["local_group_policy"][listed] == {"1": "TERMSRV/*"}
    assert state["registry"][ntlm_listed] == {"1": "TERMSRV/legacy.winops.test"}

    again = targets.play("policy", ROLE_DEFAULTS, label="role-defaults-again")
    assert again.returncode == 0, again.describe()
    assert again.task(host, ROLE_TASK).result["changed"] is False
