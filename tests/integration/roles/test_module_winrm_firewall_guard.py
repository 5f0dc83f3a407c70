"""win_winrm_firewall's other_rules must not cut off the play that runs it.

The play reaches the host over HTTPS on 5986 from 127.0.0.1 through the profile's open
WINRM-HTTPS-In-TCP rule. Asking to switch the other rules off with a scope that leaves every
connected client out fails before anything changes, naming the clients; with the controller in
the scope the open rule is switched off and the play goes on.
"""

from __future__ import annotations

import socket
import typing as t

import pytest

TASKS = """\
- name: scope without the controller
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    port: 5986
    remote_addresses: [192.0.2.10]
    other_rules: disable
  ignore_errors: true
- name: scope with the controller
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    port: 5986
    remote_addresses: [127.0.0.1]
    other_rules: disable
- name: still connected
  ansible.windows.win_ping:
"""


def rules(targets: t.Any) -> dict[str, dict[str, t.Any]]:
    return {rule["Name"]: rule for rule in targets.state("fw_guard")["firewall_rules"]}


@pytest.mark.slow
def test_other_rules_refuse_to_cut_the_play_off(targets: t.Any) -> None:
    host = targets.name("fw_guard")
    before = rules(targets)
    assert "winops-guard-In" not in before and before["WINRM-HTTPS-In-TCP"]["Enabled"]

    run = targets.play("fw_guard", TASKS, label="guard")
    assert run.returncode == 0, run.describe()
    refused = run.task(host, "scope without the controller").result
    assert refused.get("failed"), refused
    assert "would cut this play off" in refused["msg"] and "127.0.0.1" in refused["msg"]
    assert "Nothing was changed" in refused["msg"]

    scoped = run.task(host, "scope with the controller").result
    assert scoped["changed"] is True
    assert [(o["name"], o["action"]) for o in scoped["other_rules"]] == [
        ("WINRM-HTTPS-In-TCP", "disabled")
    ]
    assert run.task(host, "still connected").result["ping"] == "pong"
    after = rules(targets)
    assert after["WINRM-HTTPS-In-TCP"]["Enabled"] is False
    assert after["winops-guard-In"]["RemoteAddress"] == ["127.0.0.1"]


OWN_RULE_TASKS = """\
- name: only the scoped rule admits 5986
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    port: 5986
    remote_addresses: [127.0.0.1]
- name: open rule off
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    enabled: false
- name: switch off the rule the play comes in by
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    enabled: false
  ignore_errors: true
- name: remove it
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    state: absent
  ignore_errors: true
- name: narrow it to another client
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    remote_addresses: [192.0.2.10]
  ignore_errors: true
- name: move it to another port
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    port: 5990
  ignore_errors: true
- name: open rule on again
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    enabled: true
- name: switch it off now that another rule admits the play
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    enabled: false
- name: still connected after
  ansible.windows.win_ping:
"""


@pytest.mark.slow
def test_the_rule_that_admits_the_play_is_not_taken_away(targets: t.Any) -> None:
    """Switching off, removing, narrowing or moving the one rule that admits the connected
    clients (the module's own example switches a WinRM rule off) used to go through and cut
    the play off; it is refused before anything changes unless another rule admits them."""
    host = targets.name("fw_guard")
    run = targets.play("fw_guard", OWN_RULE_TASKS, label="own-rule")
    assert run.returncode == 0, run.describe()
    for task, change in (
        ("switch off the rule the play comes in by", "switching off"),
        ("remove it", "removing"),
        ("narrow it to another client", "narrowing"),
        ("move it to another port", "narrowing"),
    ):
        refused = run.task(host, task).result
        assert refused.get("failed"), (task, refused)
        message = refused["msg"]
        assert message.startswith(
            f"{change} firewall rule name 'winops-guard-In' would cut this play off"
        ), message
        assert "127.0.0.1 on port 5986" in message and "Nothing was changed" in message, message
    switched = run.task(host, "switch it off now that another rule admits the play").result
    assert switched["changed"] is True, switched
    assert run.task(host, "still connected after").result["ping"] == "pong"
    after = rules(targets)
    assert after["winops-guard-In"]["Enabled"] is False
    assert after["winops-guard-In"]["RemoteAddress"] == ["127.0.0.1"]
    assert after["WINRM-HTTPS-In-TCP"]["Enabled"] is True


HOST_LOCAL_TASKS = """\
- name: only the scoped rule admits 5986
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    port: 5986
    remote_addresses: [127.0.0.1]
    enabled: true
- name: open rule off
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    enabled: false
- name: narrow it to the host's own subnet
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    remote_addresses: [LocalSubnet]
  ignore_errors: true
- name: open rule on again
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    enabled: true
- name: still connected
  ansible.windows.win_ping:
"""


@pytest.mark.slow
def test_a_client_on_the_host_itself_does_not_vouch_for_the_play(targets: t.Any) -> None:
    """A connection the host makes to its own WinRM port (a local tool) is admitted by any
    scope that takes the host's subnet, and firewall rules have no effect on it anyway
    (KB2771908). It counted as a client the narrowed rule keeps, so narrowing the play's rule
    to LocalSubnet went through and cut the play (from 127.0.0.1) off; it is left out now."""
    host = targets.name("fw_guard")
    address = targets.address("fw_guard")
    # Open for the whole play: an established connection from the host's address to itself.
    with socket.create_connection((address, 5986), source_address=(address, 0)):
        run = targets.play("fw_guard", HOST_LOCAL_TASKS, label="host-local")
    assert run.returncode == 0, run.describe()
    refused = run.task(host, "narrow it to the host's own subnet").result
    assert refused.get("failed"), refused
    assert refused["msg"].startswith(
        "narrowing firewall rule name 'winops-guard-In' would cut this play off"
    ), refused["msg"]
    assert address not in refused["msg"].split("(", 1)[1], refused["msg"]
    assert run.task(host, "still connected").result["ping"] == "pong"
    assert rules(targets)["winops-guard-In"]["RemoteAddress"] == ["127.0.0.1"]


CLOSE_WHILE_CONNECTED_TASKS = """\
- name: close 5985 while a client is connected through it
  winops.remoting.win_winrm_firewall:
    name: winops-guard-HTTP-In
    state: absent
    port: 5985
    other_rules: disable
  ignore_errors: true
- name: close 5985 by switching the rule off, same client
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: false
    port: 5985
    other_rules: disable
  ignore_errors: true
- name: close 5985 in check mode
  winops.remoting.win_winrm_firewall:
    name: winops-guard-HTTP-In
    state: absent
    port: 5985
    other_rules: disable
  check_mode: true
- name: still connected
  ansible.windows.win_ping:
"""

CLOSE_TASKS = """\
- name: scope with nothing to scope to
  winops.remoting.win_winrm_firewall:
    name: winops-guard-HTTP-In
    state: absent
    port: 5985
    other_rules: scope
  ignore_errors: true
- name: close without a port
  winops.remoting.win_winrm_firewall:
    name: winops-guard-HTTP-In
    enabled: false
    other_rules: disable
  ignore_errors: true
- name: close 5985
  winops.remoting.win_winrm_firewall:
    name: winops-guard-HTTP-In
    enabled: false
    port: 5985
    other_rules: disable
- name: still connected
  ansible.windows.win_ping:
- name: open 5985 again for the other tests
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: true
"""


@pytest.mark.slow
def test_closing_a_port_refuses_to_cut_off_a_client_connected_through_it(
    targets: t.Any,
) -> None:
    """other_rules 'disable' with a rule that will admit nothing closes the port: every other
    rule for it is switched off. A client connected now through that port from elsewhere,
    which no rule would admit afterwards, stops it before anything changes (the play, on 5986,
    is not what is cut off here: the module cannot tell the clients apart). Check mode skips
    the check, as the role's check runs are still on the port being closed."""
    host = targets.name("fw_guard")
    address = targets.address("fw_guard")
    before = rules(targets)
    assert before["WINRM-HTTP-In-TCP"]["Enabled"] and "winops-guard-HTTP-In" not in before
    with socket.create_connection((address, 5985), source_address=("127.0.0.1", 0)):
        run = targets.play("fw_guard", CLOSE_WHILE_CONNECTED_TASKS, label="close-connected")
    assert run.returncode == 0, run.describe()
    for task, how in (
        ("close 5985 while a client is connected through it", "state 'absent'"),
        ("close 5985 by switching the rule off, same client", "enabled false"),
    ):
        refused = run.task(host, task).result
        assert refused.get("failed"), (task, refused)
        assert refused["msg"].startswith(
            f"other_rules 'disable' with {how} would close TCP port 5985 to WinRM clients "
            "connected now (127.0.0.1 on port 5985)"
        ), refused["msg"]
        assert refused["msg"].endswith("Nothing was changed."), refused["msg"]
    checked = run.task(host, "close 5985 in check mode").result
    assert checked["changed"] is True
    assert [(o["name"], o["action"]) for o in checked["other_rules"]] == [
        ("WINRM-HTTP-In-TCP", "disabled")
    ]
    assert run.task(host, "still connected").result["ping"] == "pong"
    assert rules(targets) == before

    run = targets.play("fw_guard", CLOSE_TASKS, label="close")
    assert run.returncode == 0, run.describe()
    scope = run.task(host, "scope with nothing to scope to").result
    assert scope.get("failed") and "(for 'disable' only)" in scope["msg"], scope
    no_port = run.task(host, "close without a port").result
    assert no_port.get("failed") and "needs port, the TCP port to close" in no_port["msg"]
    closed = run.task(host, "close 5985").result
    # The named rule does not exist: switching it off does not create it.
    assert closed["changed"] is True and closed["rule"] is None, closed
    assert [(o["name"], o["action"]) for o in closed["other_rules"]] == [
        ("WINRM-HTTP-In-TCP", "disabled")
    ]
    assert run.task(host, "still connected").result["ping"] == "pong"
    after = rules(targets)
    assert "winops-guard-HTTP-In" not in after
    assert after["WINRM-HTTP-In-TCP"]["Enabled"] is True  # opened again by the last task


PROFILE_TASKS = """\
- name: open rule on
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    enabled: true
- name: scoped rule off, so that the open rule is what admits the play
  winops.remoting.win_winrm_firewall:
    name: winops-guard-In
    enabled: false
- name: a Domain-only rule in place of the others
  winops.remoting.win_winrm_firewall:
    name: winops-guard-Domain-In
    port: 5986
    remote_addresses: [127.0.0.1, 192.0.2.10]
    profiles: [domain]
    other_rules: disable
  ignore_errors: true
- name: narrow the open rule to the Domain profile
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    profiles: [domain]
  ignore_errors: true
- name: still connected
  ansible.windows.win_ping:
"""


@pytest.mark.slow
def test_a_rule_for_another_network_profile_does_not_vouch_for_the_play(targets: t.Any) -> None:
    """A rule applies only on a network of its profiles. The guards compared ports and
    addresses only, so a Domain-only rule in place of the rules that admit the play, on a
    host whose network is Private, went through and cut the play off; so did narrowing the
    play's own rule to the Domain profile. Both are refused before anything changes."""
    host = targets.name("fw_guard")
    assert targets.state("fw_guard")["network_category"] == "Private"
    run = targets.play("fw_guard", PROFILE_TASKS, label="profiles")
    assert run.returncode == 0, run.describe()
    replaced = run.task(host, "a Domain-only rule in place of the others").result
    assert replaced.get("failed"), replaced
    assert replaced["msg"] == (
        "other_rules 'disable' would cut this play off: the clients connected to WinRM now "
        "(127.0.0.1) arrive on a network of the private profile, which profiles (domain) leave "
        "out, so this rule would not apply to them, and the other rules that admit port 5986 "
        "are what lets them in; add that profile to profiles (or use other_rules 'keep'). "
        "Nothing was changed."
    ), replaced["msg"]
    narrowed = run.task(host, "narrow the open rule to the Domain profile").result
    assert narrowed.get("failed"), narrowed
    assert narrowed["msg"].startswith(
        "narrowing firewall rule name 'WINRM-HTTPS-In-TCP' would cut this play off: it admits "
        "the clients connected to WinRM now (127.0.0.1 on port 5986)"
    ), narrowed["msg"]
    assert run.task(host, "still connected").result["ping"] == "pong"
    after = rules(targets)
    assert "winops-guard-Domain-In" not in after
    assert after["WINRM-HTTPS-In-TCP"]["Enabled"] is True
    assert after["WINRM-HTTPS-In-TCP"].get("Profile", "Any") == "Any"
