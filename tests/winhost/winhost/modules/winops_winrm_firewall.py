"""winops.remoting.win_winrm_firewall against the host's firewall rules.

Follows plugins/modules/win_winrm_firewall.ps1: one inbound TCP allow rule by Name; only the
values given are compared; addresses are compared in the form Windows reports them back
(IPv4 prefixes as address/mask, /32 as the bare address). winhost applies rules to every new
connection (winhost.netfilter), so a rule's change takes effect at once.

LocalSubnet is the host's own subnet, modelled as its address's /24 (winhost.netfilter).
Not modelled (fails loudly, naming the value): the other address keywords (DNS, DHCP, WINS,
DefaultGateway, Internet, ...: winhost has no infrastructure-server or network-isolation
model), local_addresses other than
Any (LocalAddress is not enforced) and profiles other than any (winhost has no network
profile: its rules apply on every connection).
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import check_choice, host_model, ps_equal

ADDRESS_KEYWORDS = (
    "Any",
    "LocalSubnet",
    "DNS",
    "DHCP",
    "WINS",
    "DefaultGateway",
    "Internet",
    "Intranet",
    "IntranetRemoteAccess",
    "PlayToDevice",
)
# The keywords winhost.netfilter applies to connections.
MODELLED_KEYWORDS = ("Any", "LocalSubnet")
PROFILES = ("any", "domain", "private", "public")

OPTIONS = {
    "name": Option(required=True),
    "display_name": Option(),
    "description": Option(),
    "port": Option(type="int"),
    "remote_addresses": Option(type="list", elements="str"),
    "local_addresses": Option(type="list", elements="str"),
    "profiles": Option(type="list", elements="str", choices=("any", "domain", "private", "public")),
    "enabled": Option(type="bool", default=True),
    "state": Option(default="present", choices=("present", "absent")),
}


def _rule_address(entry: str) -> str | None:
    """ConvertTo-RuleAddress: the form Windows reports an entry back in, or None."""
    text = entry.strip()
    keyword = next((k for k in ADDRESS_KEYWORDS if k.lower() == text.lower()), None)
    if keyword is not None:
        return keyword
    span = re.fullmatch(r"(?P<first>[^-/]+)-(?P<last>[^-/]+)", text)
    try:
        if span:
            first = ipaddress.ip_address(span.group("first"))
            last = ipaddress.ip_address(span.group("last"))
            return f"{first}-{last}" if first.version == last.version else None
        prefix = re.fullmatch(r"(?P<ip>[^/]+)/(?P<prefix>\d{1,3})", text)
        if prefix:
            ip = ipaddress.ip_address(prefix.group("ip"))
            bits = int(prefix.group("prefix"))
            if ip.version == 4:
                if bits > 32:
                    return None
                if bits == 32:
                    return str(ip)
                return f"{ip}/{ipaddress.IPv4Network(f'0.0.0.0/{bits}').netmask}"
            return f"{ip}/{bits}" if bits <= 128 else None
        if re.search(r"[.:]", text):
            return str(ipaddress.ip_address(text))
    except ValueError:
        return None
    return None


def _sorted_unique(values: t.Iterable[str]) -> list[str]:
    """Sort-Object -Unique: case-insensitive."""
    unique = {value.lower(): value for value in values}
    return sorted(unique.values(), key=str.lower)


def _address_set(entries: list[t.Any], option: str) -> list[str]:
    converted = []
    for entry in entries:
        value = _rule_address(str(entry))
        if value is None:
            raise ModuleFailure(
                f"{option} entry '{entry}' is not an IP address, a prefix (a.b.c.d/n), a range "
                f"(first-last) or one of the keywords {', '.join(ADDRESS_KEYWORDS)}"
            )
        converted.append(value)
    return _sorted_unique(converted)


def _profile_set(profiles: t.Any) -> str:
    """ConvertTo-ProfileSet: 'Domain, Private' or a list -> 'domain,private'; all -> 'any'."""
    items = profiles if isinstance(profiles, list) else [profiles]
    parts = _sorted_unique(
        p.strip().lower() for item in items for p in str(item).split(",") if p.strip()
    )
    if "any" in parts or ",".join(parts) == "domain,private,public":
        return "any"
    return ",".join(parts)


def _as_list(value: t.Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _current(rule: dict[str, t.Any]) -> dict[str, t.Any]:
    return {
        "display_name": str(rule.get("DisplayName") or ""),
        "description": str(rule.get("Description") or ""),
        "enabled": bool(rule.get("Enabled", True)),
        "profiles": _profile_set(rule.get("Profile", "Any")),
        "port": ",".join(_as_list(rule.get("LocalPort", "Any"))),
        "protocol": str(rule.get("Protocol", "TCP")),
        "remote_addresses": _sorted_unique(_as_list(rule.get("RemoteAddress", "Any"))),
        "local_addresses": _sorted_unique(_as_list(rule.get("LocalAddress", "Any"))),
    }


def _refuse_unmodelled(wanted: dict[str, t.Any]) -> None:
    for entry in wanted.get("remote_addresses", []):
        if entry in ADDRESS_KEYWORDS and entry not in MODELLED_KEYWORDS:
            raise ModuleFailure(
                f"winhost does not model the firewall address keyword '{entry}' "
                "(remote_addresses): give addresses, prefixes, ranges, Any or LocalSubnet"
            )
    if wanted.get("local_addresses", ["Any"]) != ["Any"]:
        raise ModuleFailure(
            "winhost does not enforce the LocalAddress of firewall rules (local_addresses "
            f"{wanted['local_addresses']})"
        )
    if wanted.get("profiles", "any") != "any":
        raise ModuleFailure(
            f"winhost does not model network profiles (profiles '{wanted['profiles']}'); "
            "its firewall rules apply to every connection, as with profiles 'any'"
        )


def _profile_parameter(profile_set: str) -> str:
    if profile_set == "any":
        return "Any"
    return ", ".join(p.title() for p in profile_set.split(","))


@register("winops.remoting.win_winrm_firewall", OPTIONS)
def win_winrm_firewall(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    state_wanted = check_choice("state", params["state"], ("present", "absent"))
    if params["profiles"] is not None:
        bad = [p for p in params["profiles"] if str(p).lower() not in PROFILES]
        if bad:
            raise ModuleFailure(
                f"value of profiles must be one or more of: {', '.join(PROFILES)}. "
                f"Got no match for: {', '.join(map(str, bad))}"
            )
    name = params["name"]
    port = params["port"]
    if port is not None and not 1 <= port <= 65535:
        raise ModuleFailure(f"port '{port}' is out of range: it must be between 1 and 65535")
    wanted: dict[str, t.Any] = {}
    if port is not None:
        wanted["port"] = str(port)
    for option in ("remote_addresses", "local_addresses"):
        if params[option] is not None:
            wanted[option] = _address_set(params[option], option)
    if params["profiles"] is not None:
        wanted["profiles"] = _profile_set(params["profiles"])
    for option in ("display_name", "description"):
        if params[option] is not None:
            wanted[option] = params[option]
    wanted["enabled"] = params["enabled"]
    for option in ("remote_addresses", "local_addresses"):
        if option in wanted and not wanted[option]:
            raise ModuleFailure(f"{option} is empty; give 'any' to allow every address")

    result: dict[str, t.Any] = {"changed": False}
    with host_model(run) as state:
        rules = state.firewall_rules
        index = next(
            (i for i, rule in enumerate(rules) if ps_equal(str(rule.get("Name")), name)), None
        )
        current = _current(rules[index]) if index is not None else None
        diff_before = dict(current) if current is not None else {}
        if str(state_wanted).lower() == "absent":
            if index is not None:
                if not run.check_mode:
                    del rules[index]
                result["changed"] = True
            result["rule"] = None
            return _with_diff(run, result, diff_before, {})
        if index is None and not wanted["enabled"] and "port" not in wanted:
            # Switching off a rule this host does not have.
            result["rule"] = None
            return _with_diff(run, result, diff_before, {})
        _refuse_unmodelled(wanted)
        if index is None:
            if "port" not in wanted:
                raise ModuleFailure(f"port is required to create firewall rule name '{name}'")
            if not run.check_mode:
                rules.append(
                    {
                        "Name": name,
                        "DisplayName": wanted.get("display_name") or name,
                        "Description": wanted.get("description", ""),
                        "Enabled": wanted["enabled"],
                        "Direction": "Inbound",
                        "Action": "Allow",
                        "Protocol": "TCP",
                        "LocalPort": wanted["port"],
                        "RemoteAddress": wanted.get("remote_addresses") or ["Any"],
                        "LocalAddress": wanted.get("local_addresses") or ["Any"],
                        "Profile": _profile_parameter(wanted.get("profiles", "any")),
                    }
                )
            result["changed"] = True
            result["rule"] = wanted
            return _with_diff(run, result, diff_before, dict(wanted))
        assert current is not None
        if current["protocol"] and not ps_equal(current["protocol"], "TCP"):
            raise ModuleFailure(
                f"firewall rule name '{name}' exists for protocol '{current['protocol']}', not "
                "TCP; give another name"
            )
        updates = _updates(current, wanted)
        after = {**current, **wanted}
        if updates:
            if not run.check_mode:
                rules[index].update(updates)
            result["changed"] = True
        result["rule"] = after
        return _with_diff(run, result, diff_before, after)


def _updates(current: dict[str, t.Any], wanted: dict[str, t.Any]) -> dict[str, t.Any]:
    """The Set-NetFirewallRule parameters, as the rule's stored properties."""
    updates: dict[str, t.Any] = {}
    if "port" in wanted and not ps_equal(current["port"], wanted["port"]):
        updates["LocalPort"] = wanted["port"]
    for option, key in (("remote_addresses", "RemoteAddress"), ("local_addresses", "LocalAddress")):
        if option in wanted and ",".join(current[option]).lower() != (
            ",".join(wanted[option]).lower()
        ):
            updates[key] = wanted[option]
    if "profiles" in wanted and current["profiles"] != wanted["profiles"]:
        updates["Profile"] = _profile_parameter(wanted["profiles"])
    if "display_name" in wanted and not ps_equal(current["display_name"], wanted["display_name"]):
        updates["DisplayName"] = wanted["display_name"]
    if "description" in wanted and not ps_equal(current["description"], wanted["description"]):
        updates["Description"] = wanted["description"]
    if current["enabled"] != wanted["enabled"]:
        updates["Enabled"] = wanted["enabled"]
    return updates


def _with_diff(
    run: ModuleRun, result: dict[str, t.Any], before: dict[str, t.Any], after: dict[str, t.Any]
) -> dict[str, t.Any]:
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
