"""winops.remoting.harden on a host set up by Ansible's WinRM guide for HTTP (Enable-PSRemoting
plus its New-NetFirewallRule without -Name: a GUID-named rule that opens 5985 to any address),
next to a Group Policy rule for 5985 and a local rule for every port (playbook_firewall.py).

Before the fix the role switched off Windows' own HTTP rules by name only: the guide's rule
stayed enabled and TCP 5985 stayed open to any address after hardening. Now, after the run:
- no enabled rule admits 5985 from a client outside the scope (OUTSIDE_ADDRESS);
- the guide's rule and Windows' own WINRM-HTTP-In-TCP are switched off, not removed;
- the Group Policy rule and the rule for every port are left as they are, and the task that
  closed the port names both in warnings and in its other_rules;
- the play answered over HTTPS at the end (the role's own check), and a second run over HTTPS
  changes nothing.
"""

from __future__ import annotations

import typing as t

from playbook_checks import changed_tasks, firewall_rule, role_task
from playbook_firewall import EVERY_PORT_RULE, HTTP_POLICY_RULE, SHARED_PORTS_RULE
from playbook_hosts import (
    CONTROLLER_ADDRESS,
    OUTSIDE_ADDRESS,
    PlaybookTargets,
    http_negotiate,
    https_validated,
)

from winhost import netfilter

HARDEN = "winops.remoting.harden"
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}
CLOSE_TASK = "Close the plain HTTP port to the network, whatever its rules are named"
ANSWERS_TASK = "Check that the host still answers over HTTPS"


def guide_rule(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """The guide's rule: Windows' own display name, but a GUID Name."""
    found = [
        rule
        for rule in state["firewall_rules"]
        if rule["DisplayName"] == "Windows Remote Management (HTTP-In)"
        and rule["Name"].startswith("{")
    ]
    assert len(found) == 1, state["firewall_rules"]
    return found[0]


def test_harden_closes_the_http_port_the_guide_opened(targets: PlaybookTargets) -> None:
    purpose = "harden_guide_http"
    host, address = targets.name(purpose), targets.address(purpose)
    before = targets.state(purpose)
    guide = guide_rule(before)
    assert guide["Enabled"] is True and str(guide["LocalPort"]) == "5985"
    assert netfilter.firewall_admits(before["firewall_rules"], OUTSIDE_ADDRESS, 5985, address)

    run = targets.run(HARDEN, purpose, {**http_negotiate("winrm"), **SCOPE}, label="harden")
    assert run.returncode == 0, run.describe()
    # The role's last task: the play still answers, over HTTPS.
    assert role_task(run, host, "winrm_listener", ANSWERS_TASK).result.get("failed") is not True

    after = targets.state(purpose)
    assert not netfilter.firewall_admits(after["firewall_rules"], OUTSIDE_ADDRESS, 5985, address), [
        rule for rule in after["firewall_rules"] if rule.get("Enabled", True)
    ]
    assert firewall_rule(after, guide["Name"]) == {**guide, "Enabled": False}
    builtin = firewall_rule(after, "WINRM-HTTP-In-TCP")
    assert builtin is not None and builtin["Enabled"] is False, builtin
    assert firewall_rule(after, HTTP_POLICY_RULE["Name"]) == HTTP_POLICY_RULE
    assert firewall_rule(after, EVERY_PORT_RULE["Name"]) == EVERY_PORT_RULE
    # A rule that also serves other ports (the web server's) is not switched off with 5985.
    assert firewall_rule(after, SHARED_PORTS_RULE["Name"]) == SHARED_PORTS_RULE

    close_task = role_task(run, host, "winrm_listener", CLOSE_TASK).result
    closed = close_task["results"]
    assert [item["item"] for item in closed] == [5985], closed
    actions = {other["name"]: other["action"] for other in closed[0]["other_rules"]}
    assert actions == {
        guide["Name"]: "disabled",
        "WINRM-HTTP-In-TCP": "disabled",
        HTTP_POLICY_RULE["Name"]: "reported",
        EVERY_PORT_RULE["Name"]: "kept",
        SHARED_PORTS_RULE["Name"]: "kept",
    }, closed[0]["other_rules"]
    # A loop task's result gathers its items' warnings.
    warnings = close_task.get("warnings", [])
    assert any(HTTP_POLICY_RULE["Name"] in w and "Group Policy" in w for w in warnings), warnings
    assert any(EVERY_PORT_RULE["Name"] in w and "to close port 5985" in w for w in warnings), (
        warnings
    )
    assert any(
        SHARED_PORTS_RULE["Name"] in w and "TCP ports 80, 443, 5985" in w for w in warnings
    ), warnings

    again = targets.run(
        HARDEN,
        purpose,
        {**https_validated("winrm", targets.issuer_path(purpose)), **SCOPE},
        label="again",
    )
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()


def test_harden_keeping_local_http_closes_the_port_to_the_network(
    targets: PlaybookTargets,
) -> None:
    """winops_keep_local_http (winrm_listener_http_mode 'localhost'): the loopback HTTP
    listener stays for local tools, and 5985 is closed to the network all the same (rules have
    no effect on loopback traffic, KB2771908)."""
    purpose = "harden_guide_http_local"
    host, address = targets.name(purpose), targets.address(purpose)
    guide = guide_rule(targets.state(purpose))

    run = targets.run(
        HARDEN,
        purpose,
        {**http_negotiate("winrm"), **SCOPE, "winops_keep_local_http": True},
        label="harden",
    )
    assert run.returncode == 0, run.describe()
    after = targets.state(purpose)
    assert [(li["transport"], li["address"]) for li in after["listeners"]] == [
        ("HTTPS", "*"),
        ("HTTP", "IP:127.0.0.1"),
    ], after["listeners"]
    assert firewall_rule(after, guide["Name"]) == {**guide, "Enabled": False}
    assert not netfilter.firewall_admits(after["firewall_rules"], OUTSIDE_ADDRESS, 5985, address)
    closed = role_task(run, host, "winrm_listener", CLOSE_TASK).result["results"]
    assert [item["item"] for item in closed] == [5985], closed
