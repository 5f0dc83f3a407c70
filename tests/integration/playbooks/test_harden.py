"""winops.remoting.harden end to end on a host someone opened up (Basic on, unencrypted traffic
allowed, the HTTPS port open to Any; see conftest.py), reached over HTTP with NTLM and message
encryption, with the firewall scope limited to this controller (127.0.0.1).

Each refusal is first seen to succeed before the play, so the checks can tell a hardened host
from one that never let the client in:
- plain HTTP: accepted before, refused after (no HTTP listener, nothing listening on 5985,
  winops.remoting.verify fails at the TCP layer);
- Basic over HTTPS: a play with the right password connects before and is refused after;
- a client from an address outside the firewall scope (OUTSIDE_ADDRESS): its TLS handshake
  completes before and is cut off after, while one from the controller's address completes;
- the Ansible account still runs modules over HTTPS with certificate validation against the
  issuer the play fetched, through both plugins, and a second run over HTTPS changes nothing.

Check mode on another such host reports exactly the changes the real run then makes, and
changes nothing itself.
"""

from __future__ import annotations

import typing as t

from playbook_checks import (
    CONNECT_PLAYBOOK,
    changed_tasks,
    https_listeners,
    tcp_connect_error,
    tls_handshake_from,
)
from playbook_hosts import (
    CONTROLLER_ADDRESS,
    OUTSIDE_ADDRESS,
    PlaybookTargets,
    configuration,
    http_negotiate,
    https_validated,
)

from winhost import netfilter

HARDEN = "winops.remoting.harden"
VERIFY = "winops.remoting.verify"
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}


def basic_over_https(ca_path: str) -> dict[str, t.Any]:
    return {**https_validated("winrm", ca_path), "ansible_winrm_transport": "basic"}


def test_harden_refuses_http_basic_and_outside_clients_and_keeps_the_ansible_account(
    targets: PlaybookTargets,
) -> None:
    purpose = "harden"
    host, address = targets.name(purpose), targets.address(purpose)
    test_ca = targets.session.host_vars(host)["winhost_ca_bundle"]

    # What the hardening must take away works before it.
    assert tcp_connect_error(address, 5985) is None
    assert tls_handshake_from(OUTSIDE_ADDRESS, address, 5986) is None
    basic = targets.run(str(CONNECT_PLAYBOOK), purpose, basic_over_https(test_ca), label="basic")
    assert basic.returncode == 0, basic.describe()

    run = targets.run(HARDEN, purpose, {**http_negotiate("winrm"), **SCOPE}, label="harden")
    assert run.returncode == 0, run.describe()

    state = targets.state(purpose)
    assert [li["transport"] for li in state["listeners"]] == ["HTTPS"], state["listeners"]
    assert [li["transport"] for li in state["runtime"]["listening"]] == ["HTTPS"]
    service = state["winrm"]["Service"]
    assert (service["Auth"]["Basic"], service["AllowUnencrypted"]) == ("false", "false")
    assert service["Auth"]["CbtHardeningLevel"].lower() == "strict"
    # Every enabled rule that admits the HTTPS port admits the controller and nothing wider.
    admitting = [
        rule
        for rule in state["firewall_rules"]
        if rule.get("Enabled", True) and str(rule.get("LocalPort")) == "5986"
    ]
    assert admitting and all(
        netfilter.address_matches(CONTROLLER_ADDRESS, rule["RemoteAddress"])
        and not netfilter.address_matches(OUTSIDE_ADDRESS, rule["RemoteAddress"])
        for rule in admitting
    ), admitting

    assert tcp_connect_error(address, 5985) is not None, "plain HTTP still accepts connections"
    refused = tls_handshake_from(OUTSIDE_ADDRESS, address, 5986)
    assert refused is not None, f"{OUTSIDE_ADDRESS} outside the firewall scope got in"
    assert tls_handshake_from(CONTROLLER_ADDRESS, address, 5986) is None

    issuer = str(targets.issuer_path(purpose))
    basic = targets.run(str(CONNECT_PLAYBOOK), purpose, basic_over_https(issuer), label="no-basic")
    assert basic.returncode != 0, basic.describe()
    assert "basic" in basic.task(host, "Ping the host").message.lower()

    http = targets.run(str(CONNECT_PLAYBOOK), purpose, http_negotiate("winrm"), label="no-http")
    assert http.returncode != 0, http.describe()
    assert http.task(host, "Ping the host").result.get("unreachable"), http.describe()
    # winops.remoting.verify over HTTP names the layer: nothing listens on 5985 any more.
    verify = targets.run(VERIFY, purpose, http_negotiate("winrm"), label="verify-http")
    assert verify.returncode != 0, verify.describe()
    doctor = verify.task(host, "Run the WinRM doctor on the controller").result
    assert doctor["failed_layer"] == "TCP connection" and "5985" in doctor["msg"], doctor["msg"]

    for plugin in ("winrm", "psrp"):
        follow = targets.run(
            str(CONNECT_PLAYBOOK), purpose, https_validated(plugin, issuer), label=plugin
        )
        assert follow.returncode == 0, follow.describe()
        assert follow.task(host, "Ping the host").result["ping"] == "pong"

    again = targets.run(
        HARDEN, purpose, {**https_validated("winrm", issuer), **SCOPE}, label="again"
    )
    assert again.returncode == 0, again.describe()
    assert changed_tasks(again, host) == [], again.describe()
    assert https_listeners(targets.state(purpose)) == https_listeners(state)


def test_harden_check_mode_reports_every_change_and_changes_nothing(
    targets: PlaybookTargets,
) -> None:
    purpose = "harden_check_mode"
    host = targets.name(purpose)
    host_vars = {**http_negotiate("winrm"), **SCOPE}
    before = configuration(targets.state(purpose))

    checked = targets.run(HARDEN, purpose, host_vars, label="check", check=True)
    assert checked.returncode == 0, checked.describe()
    assert configuration(targets.state(purpose)) == before
    assert not targets.ca_dir(purpose).exists(), "check mode wrote the issuer on the controller"
    predicted = changed_tasks(checked, host)

    applied = targets.run(HARDEN, purpose, host_vars, label="apply")
    assert applied.returncode == 0, applied.describe()
    made = changed_tasks(applied, host)
    assert configuration(targets.state(purpose)) != before
    assert predicted == made, f"check run: {predicted}\nreal run: {made}"
