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
   cut off; no rule admits plain HTTP (5985) from there any more; the doctor's checks pass;
4. (full cases) a second setup and harden report changed=0.
On `bootstrap` the first setup and harden already change nothing (docs/hardening.md,
"Bootstrapping a new host"). Settings that Group Policy owns stay as the policy has them.

Each step runs once for all cases (brownfield_hosts.run_matrix: one ansible-playbook over all
the hosts, as a user runs a playbook over an inventory); each case's test asserts on its own
host's results in that run and on its end state taken right after the runs it follows.
"""

from __future__ import annotations

import typing as t

import pytest
from ansible_run import PlaybookRun
from brownfield_hosts import (
    CASES,
    MATRIX_TIMEOUT,
    OUTSIDE_ADDRESS,
    BrownfieldTargets,
    Case,
    CaseRuns,
    EndState,
    stayed_connected,
)
from playbook_checks import changed_tasks, https_listeners

from winhost import netfilter

DOCTOR_TASK = "Run the WinRM doctor on the controller"


def describe(run: PlaybookRun, host: str) -> str:
    """The run's account of `host` plus the messages of failed loop items, which describe()
    leaves out (a failed loop task's own message is only "One or more items failed")."""
    lines = [run.describe(host)]
    for task in run.tasks(host):
        for item in task.result.get("results", []) or []:
            if item.get("failed") or item.get("unreachable"):
                lines.append(f"  item of {task.task!r}: {str(item.get('msg', item))[:2000]}")
    return "\n".join(lines)


def assert_stayed_connected(run: PlaybookRun, host: str) -> None:
    """The run succeeded on `host` and no task of it lost the host. The run covers the other
    cases' hosts too, so its exit code is read per host: a non-zero code must come from a
    failure on another host, not from the run itself."""
    unreachable = [r.task for r in run.tasks(host) if r.result.get("unreachable")]
    assert not unreachable, f"the play lost the host at {unreachable}\n{describe(run, host)}"
    assert stayed_connected(run, host), describe(run, host)
    if run.returncode != 0:
        others = (run.report or {}).get("stats", {})
        failed = [h for h, s in others.items() if s.get("failures") or s.get("unreachable")]
        assert failed, f"rc={run.returncode} with no host failed\n{run.describe()}"


def policy_values(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """The host's Group Policy registry values (the roles must leave them alone)."""
    return {
        key: values
        for key, values in state["registry"].items()
        if key.upper().startswith("HKLM\\SOFTWARE\\POLICIES\\MICROSOFT\\WINDOWS\\")
        and ("\\WINRM" in key.upper() or "CREDENTIALSDELEGATION" in key.upper())
    }


def assert_documented_end_state(host: str, seen: EndState) -> None:
    state = seen.state

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
    assert seen.served_error is None, seen.served_error
    assert seen.served_thumbprint == bound

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
    assert seen.from_controller is None, seen.from_controller
    assert seen.from_outside is not None, (
        f"{OUTSIDE_ADDRESS}, outside the firewall scope, got in ({host})"
    )
    # docs/hardening.md, "Closing the HTTP port": no rule admits plain HTTP from outside any
    # more, whatever the tool named it (the guide's rule has a GUID Name).
    http_open = [
        rule
        for rule in state["firewall_rules"]
        if netfilter.firewall_admits([rule], OUTSIDE_ADDRESS, 5985, state["address"])
    ]
    assert not http_open, f"rules admitting 5985 from outside: {http_open}"


@pytest.mark.timeout(MATRIX_TIMEOUT)  # the first case's set-up runs the whole matrix
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_setup_harden_verify_from_a_brownfield_host(
    brownfield: BrownfieldTargets, matrix: dict[Case, CaseRuns], case: Case
) -> None:
    host = brownfield.name(case)
    runs = matrix[case]
    assert runs.before["profile"] == case.profile

    assert_stayed_connected(runs.run("as-found"), host)

    setup = runs.run("setup")
    assert_stayed_connected(setup, host)
    issuer = brownfield.issuer_path(case)
    assert issuer.is_file(), f"setup did not leave the issuer at {issuer}"

    harden = runs.run("harden")
    assert_stayed_connected(harden, host)

    verify = runs.run("verify")
    assert_stayed_connected(verify, host)
    checks = verify.task(host, DOCTOR_TASK).result["checks"]
    assert {c["status"] for c in checks} <= {"ok", "not applicable"}, checks

    after_verify = runs.end_states[0]
    assert_documented_end_state(host, after_verify)
    assert policy_values(after_verify.state) == policy_values(runs.before)

    if case.profile == "bootstrap":
        # docs/hardening.md: after the script, setup and harden find nothing to change.
        assert changed_tasks(setup, host) == [], describe(setup, host)
        assert changed_tasks(harden, host) == [], describe(harden, host)
    if not case.full:
        assert "setup-again" not in runs.runs
        return
    for label in ("setup-again", "harden-again"):
        again = runs.run(label)
        assert_stayed_connected(again, host)
        assert changed_tasks(again, host) == [], describe(again, host)
    after_rerun = runs.end_states[1]
    assert_documented_end_state(host, after_rerun)
    assert policy_values(after_rerun.state) == policy_values(runs.before)
