"""Address matching for the network-facing settings of the model: WinRM's IPv4Filter (which
local addresses listeners may use) and Windows Firewall rules (which peers may connect).

Formats follow what Windows accepts: "*" or "Any"; single addresses; ranges "a-b"; CIDR
"a/n" (firewall only); lists separated by commas (strings) or given as JSON lists.

Firewall rules also take the keyword LocalSubnet: on Windows, the subnets of the host's own
interfaces. winhost's host has one interface, its 127.0.10.N address, and is modelled as on a
/24 (`local_subnet`): LocalSubnet admits peers from 127.0.10.0/24. Other keywords (DNS, DHCP,
WINS, DefaultGateway, Internet, Intranet...) are not modelled and fail as invalid entries.
"""

from __future__ import annotations

import ipaddress
import typing as t


class FilterError(ValueError):
    """An address filter that cannot be parsed; the message quotes it."""


def _entries(spec: t.Any) -> list[str]:
    if isinstance(spec, (list, tuple)):
        return [str(item).strip() for item in spec if str(item).strip()]
    return [part.strip() for part in str(spec).split(",") if part.strip()]


LOCAL_SUBNET_PREFIX = 24


def local_subnet(host_address: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The subnet of the host's interface: its address with a /24 prefix (an assumption:
    winhost models no netmask; 127.0.10.N hosts share 127.0.10.0/24)."""
    return ipaddress.ip_network(f"{host_address}/{LOCAL_SUBNET_PREFIX}", strict=False)


def address_matches(
    address: str,
    spec: t.Any,
    local_subnets: t.Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] | None = None,
) -> bool:
    """Whether `address` is covered by `spec` (an empty spec covers nothing). The keyword
    LocalSubnet is valid only where `local_subnets` is given (firewall rules)."""
    ip = ipaddress.ip_address(address)
    for entry in _entries(spec):
        if entry in ("*", "Any", "any"):
            return True
        if entry.lower() == "localsubnet" and local_subnets is not None:
            if any(ip in subnet for subnet in local_subnets):
                return True
            continue
        try:
            if "-" in entry:
                low, high = (ipaddress.ip_address(p.strip()) for p in entry.split("-", 1))
                if low.version == ip.version and low <= ip <= high:  # type: ignore[operator]
                    return True
            elif "/" in entry:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            elif ip == ipaddress.ip_address(entry):
                return True
        except ValueError as err:
            raise FilterError(f"address filter entry {entry!r} of {spec!r} is invalid") from err
    return False


# The properties of a rule in state, named as Get-NetFirewallRule (and its port and address
# filters) shows them, with the values a key left out takes, so states written before a key
# existed still load. Protocol "TCP" and LocalAddress "Any" are this model's defaults, not
# New-NetFirewallRule's (whose Protocol default is Any): every rule winhost holds is for TCP.
RULE_DEFAULTS: dict[str, t.Any] = {
    "Enabled": True,
    "Direction": "Inbound",
    "Action": "Allow",
    "Protocol": "TCP",
    "LocalPort": "Any",
    "RemoteAddress": "Any",
    "LocalAddress": "Any",
    "PolicyStoreSourceType": "Local",
    "Profile": "Any",
}
# Where a rule comes from (PolicyStoreSourceType): Local is the PersistentStore, which local
# tools change; GroupPolicy rules come from a GPO through the RSOP, are enforced in the
# ActiveStore like local ones, and cannot be changed on the host.
POLICY_SOURCES = ("Local", "GroupPolicy")


def rule_value(rule: dict[str, t.Any], key: str) -> t.Any:
    """A rule's property, or the value a rule without it has (RULE_DEFAULTS)."""
    value = rule.get(key)
    return RULE_DEFAULTS.get(key) if value is None else value


def rule_enabled(rule: dict[str, t.Any]) -> bool:
    """Enabled as a bool: state holds a bool, or the Enabled enum's text 'True'/'False'."""
    value = rule_value(rule, "Enabled")
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def is_group_policy(rule: dict[str, t.Any]) -> bool:
    return str(rule_value(rule, "PolicyStoreSourceType")).lower() == "grouppolicy"


def active_rules(rules: list[dict[str, t.Any]]) -> list[dict[str, t.Any]]:
    """The ActiveStore: every rule, except that a Group Policy rule replaces a local rule of the
    same Name (Get-NetFirewallRule -Name: rules of one name from several stores overwrite one
    another at policy merge, the GPO's winning)."""
    policy_names = {str(rule.get("Name", "")).lower() for rule in rules if is_group_policy(rule)}
    return [
        rule
        for rule in rules
        if is_group_policy(rule) or str(rule.get("Name", "")).lower() not in policy_names
    ]


def port_matches(port: int, spec: t.Any) -> bool:
    """Whether LocalPort `spec` (Any, a number, a range a-b, or a list of them) covers `port`."""
    for entry in _entries(spec):
        if entry.lower() in ("*", "any"):
            return True
        low, _, high = entry.partition("-")
        if low.strip().isdigit() and (high.strip() or low.strip()).isdigit():
            if int(low) <= port <= int(high or low):
                return True
    return False


# Get-NetConnectionProfile's NetworkCategory -> the firewall profile it makes active on that
# interface.
NETWORK_CATEGORIES = {"DomainAuthenticated": "domain", "Private": "private", "Public": "public"}


def profile_applies(spec: t.Any, network_category: str) -> bool:
    """Whether a rule's Profile ('Any', or some of Domain, Private, Public as a list or a
    comma-separated string) is active on an interface of `network_category`."""
    active = NETWORK_CATEGORIES.get(network_category)
    if active is None:
        raise ValueError(
            f"network category {network_category!r} is unknown; allowed: "
            f"{', '.join(NETWORK_CATEGORIES)}"
        )
    entries = {entry.lower() for entry in _entries(spec)}
    return "any" in entries or active in entries


def _protocol_is_tcp(spec: t.Any) -> bool:
    return str(spec).strip().lower() in ("tcp", "6", "any")


def firewall_admits(
    rules: list[dict[str, t.Any]],
    peer: str,
    port: int,
    host_address: str,
    network_category: str | None = None,
) -> bool:
    """Windows Firewall for an inbound TCP connection from `peer` to `host_address`:`port`,
    over the ActiveStore (local and Group Policy rules alike): an enabled Block rule that
    matches wins, else an enabled Allow rule must match; with none, the default inbound action
    blocks. A rule matches on its protocol, LocalPort, RemoteAddress and LocalAddress, and,
    when `network_category` is given (the interface's, as the host's traffic is filtered), on
    its Profile. Without it profiles are not compared, as the modules' guards do not."""
    subnets = [local_subnet(host_address)]
    allowed = False
    for rule in active_rules(rules):
        if not rule_enabled(rule):
            continue
        if network_category is not None and not profile_applies(
            rule_value(rule, "Profile"), network_category
        ):
            continue
        if str(rule_value(rule, "Direction")).lower() not in ("in", "inbound"):
            continue
        if not _protocol_is_tcp(rule_value(rule, "Protocol")):
            continue
        if not port_matches(port, rule_value(rule, "LocalPort")):
            continue
        if not address_matches(peer, rule_value(rule, "RemoteAddress"), subnets):
            continue
        if not address_matches(host_address, rule_value(rule, "LocalAddress"), subnets):
            continue
        if str(rule_value(rule, "Action")).lower() == "block":
            return False
        allowed = True
    return allowed
