"""winops.remoting.win_winrm_firewall through ansible-playbook against winhost.

The play scopes the HTTPS rule to the controller's loopback address, switches the HTTP rule
off and adds a rule for another port. Check mode changes no rule; after the normal run a
connection from an address outside the scope is dropped while the play's own connection
(from 127.0.0.1) keeps working, and plain HTTP is dropped; a second run changes nothing.
"""

from __future__ import annotations

import socket
import ssl
import typing as t

import pytest

FIREWALL_TASKS = """\
- name: scope https
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    port: 5986
    remote_addresses: [127.0.0.1, 127.0.0.0/30]
- name: http off
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTP-In-TCP
    enabled: false
- name: extra port
  winops.remoting.win_winrm_firewall:
    name: winops-extra-In
    display_name: Extra WinRM port
    port: 5990
    remote_addresses: [127.0.0.1]
"""
OUTSIDE = "127.0.0.7"


def https_admits(address: str, source: str, ca_bundle: str) -> bool:
    context = ssl.create_default_context(cafile=ca_bundle)
    context.check_hostname = False
    try:
        with (
            socket.create_connection((address, 5986), timeout=5, source_address=(source, 0)) as raw,
            context.wrap_socket(raw),
        ):
            return True
    except (ssl.SSLError, ConnectionError, TimeoutError):
        return False


def http_admits(address: str) -> bool:
    """An HTTP answer (any status) means the firewall let the connection through."""
    try:
        with socket.create_connection((address, 5985), timeout=5) as raw:
            raw.sendall(b"POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            return raw.recv(12).startswith(b"HTTP/1.1")
    except (ConnectionError, TimeoutError):
        return False


def rules(targets: t.Any) -> dict[str, dict[str, t.Any]]:
    return {rule["Name"]: rule for rule in targets.state("fw")["firewall_rules"]}


@pytest.mark.slow
def test_firewall_scope_check_mode_then_apply_then_idempotent(targets: t.Any) -> None:
    host = targets.name("fw")
    address = targets.address("fw")
    ca_bundle = targets.session.host_vars(host)["winhost_ca_bundle"]
    before = rules(targets)
    assert https_admits(address, OUTSIDE, ca_bundle) and http_admits(address)

    run = targets.play("fw", FIREWALL_TASKS, check=True, label="check")
    assert run.returncode == 0, run.describe()
    scope = run.task(host, "scope https").result
    assert scope["changed"] is True
    assert scope["diff"]["before"]["remote_addresses"] == ["Any"]
    assert scope["diff"]["after"]["remote_addresses"] == ["127.0.0.0/255.255.255.252", "127.0.0.1"]
    assert run.task(host, "http off").result["changed"] is True
    assert run.task(host, "extra port").result["changed"] is True
    assert rules(targets) == before, "check mode changed the firewall"
    assert https_admits(address, OUTSIDE, ca_bundle) and http_admits(address)

    run = targets.play("fw", FIREWALL_TASKS, label="apply")
    assert run.returncode == 0, run.describe()
    after = rules(targets)
    assert after["WINRM-HTTPS-In-TCP"]["RemoteAddress"] == [
        "127.0.0.0/255.255.255.252",
        "127.0.0.1",
    ]
    assert after["WINRM-HTTP-In-TCP"]["Enabled"] is False
    assert after["winops-extra-In"]["LocalPort"] == "5990"
    assert after["winops-extra-In"]["DisplayName"] == "Extra WinRM port"
    # Live: outside the scope is dropped, the controller's address still gets in, HTTP is off.
    assert not https_admits(address, OUTSIDE, ca_bundle)
    assert https_admits(address, "127.0.0.1", ca_bundle)
    assert not http_admits(address)

    again = targets.play("fw", FIREWALL_TASKS, label="again")
    assert again.returncode == 0, again.describe()
    assert again.stats(host).get("changed") == 0, again.describe()


MASK_FORM = """\
- name: scope as windows reports it
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    port: 5986
    remote_addresses: [127.0.0.1, 127.0.0.0/255.255.255.252]
- name: not a mask
  winops.remoting.win_winrm_firewall:
    name: WINRM-HTTPS-In-TCP
    remote_addresses: [127.0.0.0/255.0.255.0]
  ignore_errors: true
"""


@pytest.mark.slow
def test_firewall_takes_a_prefix_in_the_form_windows_reports(targets: t.Any) -> None:
    """New-NetFirewallRule takes "1.2.3.4/255.255.255.0" and Windows reports prefixes so; a
    scope copied from Get-NetFirewallAddressFilter was refused. Runs after the scope test:
    the same scope in mask form changes nothing."""
    host = targets.name("fw")
    before = rules(targets)
    run = targets.play("fw", MASK_FORM, label="mask-form")
    assert run.returncode == 0, run.describe()
    assert run.task(host, "scope as windows reports it").result["changed"] is False
    refused = run.task(host, "not a mask").result
    assert refused["msg"].startswith("remote_addresses entry '127.0.0.0/255.0.255.0' is not"), (
        refused
    )
    assert rules(targets) == before


@pytest.mark.slow
def test_firewall_bad_or_unmodelled_values_fail_naming_them(targets: t.Any) -> None:
    host = targets.name("fw")
    tasks = """\
- name: bad address
  winops.remoting.win_winrm_firewall: {name: x, port: 5990, remote_addresses: [10.0.0.300]}
  ignore_errors: true
- name: shorthand address
  winops.remoting.win_winrm_firewall: {name: x, port: 5990, remote_addresses: [10.1/8]}
  ignore_errors: true
- name: keyword
  winops.remoting.win_winrm_firewall: {name: x, port: 5990, remote_addresses: [DNS]}
  ignore_errors: true
- name: no port
  winops.remoting.win_winrm_firewall: {name: x, remote_addresses: [10.0.0.1]}
  ignore_errors: true
"""
    before = rules(targets)
    run = targets.play("fw", tasks, label="bad")
    assert (
        run.task(host, "bad address")
        .result["msg"]
        .startswith(
            "remote_addresses entry '10.0.0.300' is not an IP address, a prefix (a.b.c.d/n or a.b.c.d/255.255.255.0), a range"
        )
    )
    # .NET would read 10.1 as 10.0.0.1; the module takes IPv4 only as a dotted quad.
    assert (
        run.task(host, "shorthand address")
        .result["msg"]
        .startswith("remote_addresses entry '10.1/8' is not an IP address, a prefix")
    )
    assert run.task(host, "keyword").result["msg"] == (
        "winhost does not model the firewall address keyword 'DNS' (remote_addresses): "
        "give addresses, prefixes, ranges, Any or LocalSubnet"
    )
    assert run.task(host, "no port").result["msg"] == (
        "port is required to create firewall rule name 'x'"
    )
    assert rules(targets) == before
