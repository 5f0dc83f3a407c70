"""Address matching for the network-facing settings of the model: WinRM's IPv4Filter (which
local addresses listeners may use) and Windows Firewall rules (which peers may connect).

Formats follow what Windows accepts: "*" or "Any"; single addresses; ranges "a-b"; CIDR
"a/n" (firewall only); lists separated by commas (strings) or given as JSON lists.
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


def address_matches(address: str, spec: t.Any) -> bool:
    """Whether `address` is covered by `spec` (an empty spec covers nothing)."""
    ip = ipaddress.ip_address(address)
    for entry in _entries(spec):
        if entry in ("*", "Any", "any"):
            return True
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


def firewall_admits(rules: list[dict[str, t.Any]], peer: str, port: int) -> bool:
    """Windows Firewall for inbound TCP: an enabled Block rule that matches wins, else an
    enabled Allow rule must match; with none, the default inbound action blocks."""
    allowed = False
    for rule in rules:
        if not rule.get("Enabled", True) or str(rule.get("Direction", "Inbound")).lower() not in (
            "in",
            "inbound",
        ):
            continue
        if not _port_matches(port, rule.get("LocalPort", "Any")):
            continue
        if not address_matches(peer, rule.get("RemoteAddress", "Any")):
            continue
        if str(rule.get("Action", "Allow")).lower() == "block":
            return False
        allowed = True
    return allowed
