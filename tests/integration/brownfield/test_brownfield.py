"""The shipped playbooks on hosts as real users find them (issue 9, "Hosts as they are found").

For each case of brownfield_hosts.CASES, on a host of its own built from the case's profile:
1. the host answers the connection its tool left (the precondition: the profile is reachable
   the way its users reach it);
2. winops.remoting.setup over that connection, then winops.remoting.harden and
   winops.remoting.verify over HTTPS validated against the issuer setup fetched, each run
   with no failed and no unreachable task: the play stays connected throughout;
3. the host ends in the documented state (docs/hardening.md, docs/https-and-certificates.md):
   only an HTTPS listener, serving the certificate it is bound to, which validates against
   the fetched issuer for the address the controller uses; Basic and unencrypted traffic off
   for service and client; channel binding Strict; every enabled inbound rule admitting the
   HTTPS port admits the controller and nothing wider, and a client outside the scope is
   cut off; the doctor's checks pass;
4. (full cases) a second setup and harden report changed=0.
On `bootstrap` the first setup and harden already change nothing (docs/hardening.md,
"Bootstrapping a new host"). Settings that Group Policy owns stay as the policy has them.
"""

from __future__ import annotations

import typing as t

import pytest
from ansible_run import PlaybookRun
from brownfield_hosts import (
    CASES,
    CONTROLLER_ADDRESS,
    OUTSIDE_ADDRESS,
    SCOPE,
    BrownfieldTargets,
    Case,
)
from playbook_checks import (
    CONNECT_PLAYBOOK,
    changed_tasks,
    https_listeners,
    served_certificate,
    tls_handshake_from,
)
from playbook_hosts import https_validated

from winhost import netfilter, profiles

SETUP = "winops.remoting.setup"
HARDEN = "winops.remoting.harden"
VERIFY = "winops.remoting.verify"
DOCTOR_TASK = "Run the WinRM doctor on the controller"


def describe(run: PlaybookRun, host: str) -> str:
    """The run's account plus the messages of failed loop items, which describe() leaves out
    (a failed loop task's own message is only "One or more items failed")."""
    lines = [run.describe()]
    for task in run.tasks(host):
        for item in task.result.get("results", []) or []:
            if item.get("failed") or item.get("unreachable"):
                lines.append(f"  item of {task.task!r}: {str(item.get('msg', item))[:2000]}")
    return "\n".join(lines)


def assert_stayed_connected(run: PlaybookRun, host: str) -> None:
    """The run succeeded and no task of it lost the host."""
    unreachable = [r.task for r in run.tasks(host) if r.result.get("unreachable")]
    assert not unreachable, f"the play lost the host at {unreachable}\n{describe(run, host)}"
    assert run.returncode == 0, describe(run, host)


def policy_values(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """The host's Group Policy registry values (the roles must leave them alone)."""
    return {
        key: values
        for key, values in state["registry"].items()
        if key.upper().startswith("HKLM\\SOFTWARE\\POLICIES\\MICROSOFT\\WINDOWS\\")
        and ("\\WINRM" in key.upper() or "CREDENTIALSDELEGATION" in key.upper())
    }


def assert_documented_end_state(brownfield: BrownfieldTargets, case: Case) -> None:
    host, address = brownfield.name(case), brownfield.address(case)
    state = brownfield.state(case)

    # docs/hardening.md: HTTPS only, on the default port.
    assert [(li["transport"], li["port"]) for li in state["listeners"]] == [("HTTPS", 5986)], state[
        "listeners"
    ]
    running = state["runtime"]["listening"]
    assert [li["transport"] for li in running] == ["HTTPS"], running
    # docs/https-and-certificates.md: the listener serves the certificate it is bound to, from
    # LocalMachine\My, and it validates against the issuer on the controller for the address
    # the controller connects to.
    bound = https_listeners(state)[0]["certificate_thumbprint"]
    assert bound in {c["thumbprint"] for c in state["cert_stores"]["LocalMachine\\My"]}
    assert [li["thumbprint"] for li in running] == [bound], running
    served, _ = served_certificate(address, 5986, brownfield.issuer_path(case))
    assert served == bound

    service, client = state["winrm"]["Service"], state["winrm"]["Client"]
    assert (service["Auth"]["Basic"], service["AllowUnencrypted"]) == ("false", "false")
    assert (client["Auth"]["Basic"], client["AllowUnencrypted"]) == ("false", "false")
    assert service["Auth"]["CbtHardeningLevel"].lower() == "strict"

    # Firewall: whatever the tool named its rule, every enabled inbound allow rule for the
    # HTTPS port admits the controller and nothing wider.
    admitting = [
        rule
        for rule in state["firewall_rules"]
        if rule.get("Enabled", True)
        and str(rule.get("Direction", "Inbound")).lower() == "inbound"
        and str(rule.get("Action", "Allow")).lower() == "allow"
        and str(rule.get("LocalPort")) in ("5986", "Any")
    ]
    too_wide = [
        rule
        for rule in admitting
        if netfilter.address_matches(OUTSIDE_ADDRESS, rule.get("RemoteAddress", "Any"))
    ]
    assert admitting and not too_wide, f"rules admitting 5986 from outside: {too_wide}"
    assert tls_handshake_from(CONTROLLER_ADDRESS, address, 5986) is None
    refused = tls_handshake_from(OUTSIDE_ADDRESS, address, 5986)
    assert refused is not None, f"{OUTSIDE_ADDRESS}, outside the firewall scope, got in ({host})"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_setup_harden_verify_from_a_brownfield_host(
    brownfield: BrownfieldTargets, case: Case
) -> None:
    host = brownfield.name(case)
    before = brownfield.state(case)
    assert before["profile"] == case.profile
    if case.profile == "bootstrap":
        # What the user does after the script: copy its issuer PEM to the controller.
        issuer = brownfield.issuer_path(case)
        issuer.parent.mkdir(parents=True, exist_ok=True)
        on_host = brownfield.session.state_dir / host / "C" / profiles.BOOTSTRAP_ISSUER_PATH
        issuer.write_bytes(on_host.read_bytes())

    first = brownfield.first_connection(case)
    reached = brownfield.run(str(CONNECT_PLAYBOOK), case, first, label="as-found")
    assert_stayed_connected(reached, host)

    setup = brownfield.run(SETUP, case, {**first, **SCOPE}, label="setup")
    assert_stayed_connected(setup, host)
    issuer = brownfield.issuer_path(case)
    assert issuer.is_file(), f"setup did not leave the issuer at {issuer}"
    validated = {**https_validated(case.plugin, issuer), **SCOPE}

    harden = brownfield.run(HARDEN, case, validated, label="harden")
    assert_stayed_connected(harden, host)

    verify = brownfield.run(VERIFY, case, validated, label="verify")
    assert_stayed_connected(verify, host)
    checks = verify.task(host, DOCTOR_TASK).result["checks"]
    assert {c["status"] for c in checks} <= {"ok", "not applicable"}, checks

    assert_documented_end_state(brownfield, case)
    assert policy_values(brownfield.state(case)) == policy_values(before)

    if case.profile == "bootstrap":
        # docs/hardening.md: after the script, setup and harden find nothing to change.
        assert changed_tasks(setup, host) == [], describe(setup, host)
        assert changed_tasks(harden, host) == [], describe(harden, host)
    if not case.full:
        return
    for playbook, label in ((SETUP, "setup-again"), (HARDEN, "harden-again")):
        again = brownfield.run(playbook, case, validated, label=label)
        assert_stayed_connected(again, host)
        assert changed_tasks(again, host) == [], describe(again, host)
    assert_documented_end_state(brownfield, case)
