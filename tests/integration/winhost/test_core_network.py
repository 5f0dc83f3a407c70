"""Firewall rules (peer addresses) and IPv4Filter (listener addresses) of the model, on a host
served in process over real sockets."""

from __future__ import annotations

import http.client
import socket
import typing as t
from pathlib import Path

import pytest
from address_blocks import block

from winhost import netfilter, pki, profiles
from winhost.host import WinHost

INDEX = block("core_network").first  # an address of its own (address_blocks.py)
IDENTIFY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[WinHost]:
    state_dir = tmp_path_factory.mktemp("winhost-net")
    secrets = {"admin_password": "Ädmin-Pässw0rd!", "operator_password": "Öp-Pässw0rd!"}
    state = profiles.build_host(
        state_dir, INDEX, "stock", pki.CertificateAuthority.create(), secrets
    )
    running = WinHost(state)
    running.boot()
    yield running
    running.shutdown()


def _identify_from(source: str, address: str) -> int | None:
    """Status of an anonymous Identify sent from `source`, None when the connection closed."""
    connection = http.client.HTTPConnection(address, 5985, timeout=10, source_address=(source, 0))
    try:
        connection.request(
            "POST",
            "/wsman",
            body=IDENTIFY,
            headers={"WSMANIDENTIFY": "unauthenticated", "Content-Type": "application/soap+xml"},
        )
        return connection.getresponse().status
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return None
    finally:
        connection.close()


def test_firewall_rules_decide_which_peers_connect(host: WinHost) -> None:
    address = host.state.address
    assert _identify_from("127.0.0.5", address) == 200
    rules = host.state.firewall_rules
    original = [dict(rule) for rule in rules]
    try:
        rules[0]["RemoteAddress"] = ["127.0.0.5", "10.0.0.0/8"]
        assert _identify_from("127.0.0.5", address) == 200
        assert _identify_from("127.0.0.6", address) is None
        rules.append(
            {"Name": "block", "LocalPort": "Any", "RemoteAddress": "127.0.0.5", "Action": "Block"}
        )
        assert _identify_from("127.0.0.5", address) is None, "a Block rule wins over Allow"
        rules[:] = []
        assert _identify_from("127.0.0.5", address) is None, "inbound default is block"
    finally:
        rules[:] = original
    assert _identify_from("127.0.0.6", address) == 200


def test_a_rule_applies_only_on_a_network_of_its_profiles(host: WinHost) -> None:
    """New-NetFirewallRule -Profile: "The rule is active on the local computer only when the
    specified profile is currently active"; the interface's NetworkCategory decides which."""
    address = host.state.address
    rules = host.state.firewall_rules
    original = [dict(rule) for rule in rules]
    category = host.state.network_category
    try:
        rules[0]["Profile"] = "Domain, Private"
        host.state.network_category = "Private"
        assert _identify_from("127.0.0.5", address) == 200
        host.state.network_category = "Public"
        assert _identify_from("127.0.0.5", address) is None
        rules[0]["Profile"] = ["Public"]
        assert _identify_from("127.0.0.5", address) == 200
        host.state.network_category = "DomainAuthenticated"
        assert _identify_from("127.0.0.5", address) is None
        rules[0]["Profile"] = "Any"
        assert _identify_from("127.0.0.5", address) == 200
    finally:
        rules[:] = original
        host.state.network_category = category
    assert _identify_from("127.0.0.5", address) == 200


def test_profiles_are_compared_only_when_a_network_category_is_given() -> None:
    """The modules' guards read rules without profiles; the host's own filter with them."""
    rule = {"Name": "{A}", "LocalPort": 5986, "Profile": "Domain"}
    assert netfilter.firewall_admits([rule], "127.0.0.9", 5986, "127.0.10.5")
    assert not netfilter.firewall_admits([rule], "127.0.0.9", 5986, "127.0.10.5", "Private")
    with pytest.raises(ValueError, match="'Work'"):
        netfilter.profile_applies("Any", "Work")


def test_a_rule_change_cuts_off_a_kept_connection_too(host: WinHost) -> None:
    """Windows re-authorizes an established flow at its next packet after a filter change
    (WFP "ALE Reauthorization"): a keep-alive connection admitted before is not answered once
    no rule admits its peer. winhost checked the rules only when it accepted a connection."""
    address = host.state.address
    rules = host.state.firewall_rules
    original = [dict(rule) for rule in rules]
    connection = http.client.HTTPConnection(
        address, 5985, timeout=10, source_address=("127.0.0.7", 0)
    )
    headers = {"WSMANIDENTIFY": "unauthenticated", "Content-Type": "application/soap+xml"}
    try:
        connection.request("POST", "/wsman", body=IDENTIFY, headers=headers)
        assert connection.getresponse().read() and connection.sock is not None
        rules[0]["RemoteAddress"] = ["10.0.0.0/8"]
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
            connection.request("POST", "/wsman", body=IDENTIFY, headers=headers)
            connection.getresponse()
    finally:
        connection.close()
        rules[:] = original
    assert _identify_from("127.0.0.7", address) == 200


def test_ipv4_filter_decides_where_listeners_listen(host: WinHost) -> None:
    address = host.state.address
    host.state.set_winrm_setting("Service/IPv4Filter", "127.0.0.1-127.0.0.9")
    host.config_changed()
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, 5985), timeout=2).close()
    finally:
        host.state.set_winrm_setting("Service/IPv4Filter", "*")
        host.config_changed()
    assert _identify_from("127.0.0.5", address) == 200


@pytest.mark.parametrize(
    ("address", "spec", "expected"),
    [
        ("127.0.10.7", "*", True),
        ("127.0.10.7", "", False),
        ("127.0.10.7", "127.0.10.1-127.0.10.9", True),
        ("127.0.10.70", "127.0.10.1-127.0.10.9", False),
        ("127.0.10.7", "10.0.0.1, 127.0.10.0/24", True),
        ("127.0.10.7", ["127.0.10.8"], False),
    ],
)
def test_address_matches(address: str, spec: t.Any, expected: bool) -> None:
    assert netfilter.address_matches(address, spec) is expected


def test_bad_filter_names_the_entry() -> None:
    with pytest.raises(netfilter.FilterError, match=r"'10\.0\.0\.300'"):
        netfilter.address_matches("10.0.0.1", "10.0.0.300")


def test_state_dir_layout(host: WinHost) -> None:
    directory = Path(host.state.directory)
    assert (directory / "state.json").stat().st_mode & 0o777 == 0o600
    assert (directory / "private").stat().st_mode & 0o777 == 0o700
    assert (directory / "C" / "Windows" / "Temp").is_dir()


def test_firewall_rule_keys_and_group_policy_merge() -> None:
    """netfilter over rules as Get-NetFirewallRule names them: defaults for missing keys,
    LocalPort ranges, LocalAddress against the host's address, the Enabled enum's text, and a
    Group Policy rule replacing the local rule of the same Name."""
    host, peer = "127.0.10.5", "127.0.0.9"
    open_range = {"Name": "{A}", "LocalPort": "5980-5990", "RemoteAddress": "Any"}
    assert netfilter.firewall_admits([open_range], peer, 5986, host)
    assert not netfilter.firewall_admits([open_range], peer, 5991, host)
    elsewhere = {**open_range, "LocalAddress": "127.0.10.6"}
    assert not netfilter.firewall_admits([elsewhere], peer, 5986, host)
    assert not netfilter.firewall_admits([{**open_range, "Enabled": "False"}], peer, 5986, host)
    assert not netfilter.firewall_admits([{**open_range, "Protocol": "UDP"}], peer, 5986, host)
    local = {"Name": "WinRM", "LocalPort": 5986, "RemoteAddress": "Any"}
    policy = {**local, "RemoteAddress": "10.0.0.1", "PolicyStoreSourceType": "GroupPolicy"}
    assert netfilter.firewall_admits([local], peer, 5986, host)
    assert not netfilter.firewall_admits([local, policy], peer, 5986, host)
    assert netfilter.firewall_admits([local, policy], "10.0.0.1", 5986, host)
