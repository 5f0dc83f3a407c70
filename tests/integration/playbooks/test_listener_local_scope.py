"""winops.remoting.setup scopes the HTTPS firewall rule to the listeners' own addresses (issue 13,
item 2: "Securing WinRM" allows 5986 only on the listening addresses), and refuses a scope that
would cut the play off.

Three `stock` hosts (Enable-PSRemoting only: HTTP on 5985) of a session of their own, on
127.0.10.170-172 (LOCAL_SCOPE_FIRST moves them), reached over HTTP with NTLM and message
encryption, as users first reach a host:
- with the listener bound to the host's address (`IP:<address>`) and no
  winrm_listener_firewall_local_addresses, the rule's LocalAddress is derived: that address.
  The controller, which reaches the host on it, gets in over HTTPS (winhost matches a rule's
  LocalAddress against the address a connection arrives on), and a second run changes nothing;
- with winrm_listener_firewall_local_addresses naming an address the controller does not use,
  the play stops before anything changes, with a message naming the variable and the address
  the play's connection arrived on; the host's configuration is as before and a new play still
  connects;
- win_winrm_firewall itself, outside check mode, refuses such a scope before anything changes,
  and takes one that holds the address the play arrives on (an address or a prefix), as well
  as any scope for a rule it switches off (which admits nothing).
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from playbook_checks import (
    CONNECT_PLAYBOOK,
    changed_tasks,
    firewall_rule,
    https_listeners,
    role_task,
    served_certificate,
)
from playbook_hosts import CONTROLLER_ADDRESS, configuration, http_negotiate, https_validated

from winhost import profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

FIRST = block("listener_local_scope").first
CASES = ("derived", "refused", "module")
SETUP = "winops.remoting.setup"
RULE = "winops-WinRM-HTTPS-In"
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}
# TEST-NET-1 (RFC 5737): never an address of a winhost host.
FOREIGN_ADDRESS = "192.0.2.20"
REFUSAL_TASK = "Check that the firewall's local addresses keep this play's connection"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[WinhostSession]:
    started = start_session(
        tmp_path_factory.mktemp("winhost-local-scope"), len(CASES), "stock", first=FIRST
    )
    try:
        yield started
    finally:
        stop_session(started)


def _host(case: str) -> tuple[str, str]:
    index = FIRST + CASES.index(case)
    return profiles.host_name(index), f"{profiles.ADDRESS_PREFIX}{index}"


def _run(
    session: WinhostSession,
    work: Path,
    playbook: str | Path,
    host: str,
    host_vars: dict[str, t.Any],
    *,
    label: str,
) -> PlaybookRun:
    run_dir = work / label
    overlay = write_private_yaml(run_dir / "overlay.yml", {"all": {"hosts": {host: host_vars}}})
    return run_playbook(
        str(playbook),
        [session.inventory, overlay],
        run_dir,
        extra_vars={"winops_hosts": host, "target": host, "winops_ca_dir": str(work / "ca")},
    )


def test_rule_takes_the_listener_address_and_admits_the_controller(
    session: WinhostSession, tmp_path: Path
) -> None:
    host, address = _host("derived")
    issuer = tmp_path / "ca" / f"{host}.pem"
    listener = {"winrm_listener_https_addresses": [f"IP:{address}"]}

    run = _run(
        session,
        tmp_path,
        SETUP,
        host,
        {**http_negotiate("winrm"), **SCOPE, **listener},
        label="setup",
    )
    assert run.returncode == 0, run.describe()

    state = session.state(host)
    assert [li["address"] for li in https_listeners(state)] == [f"IP:{address}"]
    rule = firewall_rule(state, RULE)
    assert rule is not None, state["firewall_rules"]
    assert rule["LocalAddress"] == [address], rule
    assert rule["RemoteAddress"] == [CONTROLLER_ADDRESS], rule
    firewall = role_task(
        run, host, "winrm_listener", "Allow the HTTPS port from the chosen remote addresses only"
    ).result
    assert firewall["rule"]["local_addresses"] == [address], firewall
    # The controller reaches the host on that address, so the scoped rule lets it in.
    served_certificate(address, 5986, issuer)

    again = _run(
        session,
        tmp_path,
        SETUP,
        host,
        {**https_validated("winrm", issuer), **SCOPE, **listener},
        label="again",
    )
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()


def test_scope_without_the_controllers_address_is_refused_before_any_change(
    session: WinhostSession, tmp_path: Path
) -> None:
    host, address = _host("refused")
    before = configuration(session.state(host))
    foreign = {"winrm_listener_firewall_local_addresses": [FOREIGN_ADDRESS]}

    run = _run(
        session,
        tmp_path,
        SETUP,
        host,
        {**http_negotiate("winrm"), **SCOPE, **foreign},
        label="setup",
    )
    assert run.returncode != 0, run.describe()
    refusal = role_task(run, host, "winrm_listener", REFUSAL_TASK)
    assert refusal.failed, run.describe()
    message = refusal.message
    for words in (
        "winrm_listener_firewall_local_addresses as given is 192.0.2.20",
        f"reach this host on {address}",
        "would cut this play off",
        "Nothing was changed",
    ):
        assert words in message, message
    # The playbook's validation stopped it: no role task that changes the host ran.
    assert run.stats(host).get("changed", 0) == 0, run.describe()
    assert configuration(session.state(host)) == before

    still = _run(
        session, tmp_path, CONNECT_PLAYBOOK, host, http_negotiate("winrm"), label="connect"
    )
    assert still.returncode == 0, still.describe()


MODULE_PLAY = """\
- name: Scope a WinRM rule's local addresses
  hosts: "{{ target }}"
  gather_facts: false
  tasks:
"""
MODULE_TASK = """\
    - name: {name}
      winops.remoting.win_winrm_firewall:
        name: winops-local-scope-In
        port: 5986
        local_addresses: {scope}
        enabled: {enabled}
"""


def _module_play(path: Path, *tasks: tuple[str, list[str], bool]) -> Path:
    body = "".join(
        MODULE_TASK.format(name=name, scope=scope, enabled=str(enabled).lower())
        for name, scope, enabled in tasks
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(MODULE_PLAY + body, encoding="utf-8")
    return path


def test_module_refuses_a_local_scope_without_the_arrival_address(
    session: WinhostSession, tmp_path: Path
) -> None:
    host, address = _host("module")
    network = address.rsplit(".", 1)[0] + ".0"
    connection = http_negotiate("winrm")
    before = configuration(session.state(host))

    refused_play = _module_play(tmp_path / "refused.yml", ("elsewhere", [FOREIGN_ADDRESS], True))
    refused = _run(session, tmp_path, refused_play, host, connection, label="refused")
    assert refused.returncode != 0, refused.describe()
    message = refused.task(host, "elsewhere").message
    assert f"local_addresses ({FOREIGN_ADDRESS}) would cut this play off" in message, message
    assert f"reach this host on {address}" in message and "Nothing was changed" in message
    assert configuration(session.state(host)) == before

    accepted_play = _module_play(
        tmp_path / "accepted.yml",
        ("switched off, anywhere", [FOREIGN_ADDRESS], False),
        ("on the subnet", [f"{network}/24"], True),
        ("on the address", [address], True),
        ("on the address again", [address], True),
    )
    accepted = _run(session, tmp_path, accepted_play, host, connection, label="accepted")
    assert accepted.returncode == 0, accepted.describe()
    subnet = accepted.task(host, "on the subnet").result
    assert subnet["rule"]["local_addresses"] == [f"{network}/255.255.255.0"], subnet
    assert accepted.task(host, "on the address").result["changed"] is True
    assert accepted.task(host, "on the address again").result["changed"] is False
    rule = firewall_rule(session.state(host), "winops-local-scope-In")
    assert rule is not None and rule["LocalAddress"] == [address] and rule["Enabled"], rule
