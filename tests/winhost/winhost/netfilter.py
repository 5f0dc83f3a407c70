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


def _port_matches(port: int, spec: t.Any) -> bool:
    return any(
        entry in ("*", "Any", "any") or (entry.isdigit() and int(entry) == port)
        for entry in _entries(spec)
    )


def firewall_admits(rules: list[dict[str, t.Any]], peer: str, port: int, host_address: str) -> bool:
    """Windows Firewall for inbound TCP: an enabled Block rule that matches wins, else an
    enabled Allow rule must match; with none, the default inbound action blocks."""
    subnets = [local_subnet(host_address)]
    allowed = False
    for rule in rules:
        if not rule.get("Enabled", True) or str(rule.get("Direction", "Inbound")).lower() not in (
            "in",
            "inbound",
        ):
            continue
        if not _port_matches(port, rule.get("LocalPort", "Any")):
            continue
        if not address_matches(peer, rule.get("RemoteAddress", "Any"), subnets):
            continue
        if str(rule.get("Action", "Allow")).lower() == "block":
            return False
        allowed = True
    return allowed
