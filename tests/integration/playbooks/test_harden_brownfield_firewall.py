"""winops.remoting.harden on a host whose HTTPS port set-up scripts opened to everyone with
GUID-named rules, next to a Group Policy rule (playbook_firewall.py), scoped to this controller.

Before the fix the role looked rules up by name only: the GUID-named rules stayed open and a
client outside the scope still got in. Now, after the run:
- a client from outside the scope (OUTSIDE_ADDRESS) is refused, the controller gets in;
- both GUID-named rules are switched off, found by port;
- the Group Policy rule is unchanged and still admits its management station, and the run
  names it (Name and DisplayName) in a warning and in the firewall task's other_rules;
- a second run changes nothing.
"""

from __future__ import annotations

from playbook_checks import changed_tasks, firewall_rule, role_task, tls_handshake_from
from playbook_firewall import MANAGEMENT_ADDRESS, POLICY_RULE, SCRIPT_RULE, SNIPPET_RULE
from playbook_hosts import (
    CONTROLLER_ADDRESS,
    OUTSIDE_ADDRESS,
    PlaybookTargets,
    http_negotiate,
    https_validated,
)

HARDEN = "winops.remoting.harden"
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}
FIREWALL_TASK = "Allow the HTTPS port from the chosen remote addresses only"


def test_harden_scopes_guid_named_rules_and_reports_the_group_policy_rule(
    targets: PlaybookTargets,
) -> None:
    purpose = "harden_brownfield_firewall"
    host, address = targets.name(purpose), targets.address(purpose)
    # Open to anyone before the play, through the GUID-named rules.
    assert tls_handshake_from(OUTSIDE_ADDRESS, address, 5986) is None

    run = targets.run(HARDEN, purpose, {**http_negotiate("winrm"), **SCOPE}, label="harden")
    assert run.returncode == 0, run.describe()

    refused = tls_handshake_from(OUTSIDE_ADDRESS, address, 5986)
    assert refused is not None, f"{OUTSIDE_ADDRESS} outside the firewall scope still got in"
    assert tls_handshake_from(CONTROLLER_ADDRESS, address, 5986) is None
    # The GPO rule is enforced as before: the host cannot change it.
    assert tls_handshake_from(MANAGEMENT_ADDRESS, address, 5986) is None

    state = targets.state(purpose)
    for opened in (SCRIPT_RULE, SNIPPET_RULE):
        rule = firewall_rule(state, opened["Name"])
        assert rule is not None and rule["Enabled"] is False, rule
    assert firewall_rule(state, POLICY_RULE["Name"]) == POLICY_RULE

    firewall = role_task(run, host, "winrm_listener", FIREWALL_TASK).result
    actions = {other["name"]: other["action"] for other in firewall["other_rules"]}
    assert actions == {
        SCRIPT_RULE["Name"]: "disabled",
        SNIPPET_RULE["Name"]: "disabled",
        POLICY_RULE["Name"]: "reported",
    }, firewall["other_rules"]
    warnings = [w for w in firewall.get("warnings", []) if POLICY_RULE["Name"] in w]
    assert len(warnings) == 1, firewall.get("warnings")
    assert POLICY_RULE["DisplayName"] in warnings[0] and "Group Policy" in warnings[0]
    assert "Servers Baseline" in warnings[0]

    issuer = targets.issuer_path(purpose)
    again = targets.run(
        HARDEN, purpose, {**https_validated("winrm", issuer), **SCOPE}, label="again"
    )
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()
    # Still reported on every run: the GPO rule keeps the port open to its station.
    again_firewall = role_task(again, host, "winrm_listener", FIREWALL_TASK).result
    assert [o["action"] for o in again_firewall["other_rules"]] == ["reported"]
