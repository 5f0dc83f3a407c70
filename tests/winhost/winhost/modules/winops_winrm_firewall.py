"""winops.remoting.win_winrm_firewall against the host's firewall rules.

Follows plugins/modules/win_winrm_firewall.ps1: one inbound TCP allow rule by Name; only the
values given are compared; addresses are compared in the form Windows reports them back
(IPv4 prefixes as address/mask, /32 as the bare address). winhost applies rules to every new
connection (winhost.netfilter), so a rule's change takes effect at once.

As on Windows, -Name finds rules of the PersistentStore only (PolicyStoreSourceType Local);
Group Policy rules are seen in the ActiveStore (other_rules) and are never changed here.
other_rules 'disable' with a rule that will admit nothing (state absent, enabled false) closes
the port, refused first when a WinRM client connected through it would be cut off.

LocalSubnet is the host's own subnet, modelled as its address's /24 (winhost.netfilter), and
LocalAddress is matched against the host's one address. A local_addresses scope that none of
the addresses the WinRM clients now arrive on is in is refused before anything changes, as the
module refuses it. Not modelled (fails loudly, naming the
value): the other address keywords (DNS, DHCP, WINS, DefaultGateway, Internet, ...: winhost has
no infrastructure-server or network-isolation model) and profiles other than any (winhost has
no network profile: its rules apply on every connection).
"""

from __future__ import annotations

import ipaddress
import re
import typing as t

from winhost import netfilter
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import (
    check_choice,
    established_connections,
    host_model,
    ps_equal,
)

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

OTHER_RULES = ("keep", "disable", "scope")
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
    "other_rules": Option(default="keep", choices=OTHER_RULES),
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
        masked = re.fullmatch(r"(?P<ip>[^/]+)/(?P<mask>\d{1,3}(?:\.\d{1,3}){3})", text)
        if masked:
            ip = ipaddress.ip_address(masked.group("ip"))
            mask = ipaddress.IPv4Address(masked.group("mask"))
            host_bits = 0xFFFFFFFF - int(mask)
            if ip.version != 4 or (host_bits + 1) & host_bits:
                return None
            return str(ip) if host_bits == 0 else f"{ip}/{mask}"
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
                f"{option} entry '{entry}' is not an IP address, a prefix (a.b.c.d/n or "
                "a.b.c.d/255.255.255.0), a range (first-last) or one of the keywords "
                f"{', '.join(ADDRESS_KEYWORDS)}"
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
    for option in ("remote_addresses", "local_addresses"):
        for entry in wanted.get(option, []):
            if entry in ADDRESS_KEYWORDS and entry not in MODELLED_KEYWORDS:
                raise ModuleFailure(
                    f"winhost does not model the firewall address keyword '{entry}' "
                    f"({option}): give addresses, prefixes, ranges, Any or LocalSubnet"
                )


def _profile_parameter(profile_set: str) -> str:
    if profile_set == "any":
        return "Any"
    return ", ".join(p.title() for p in profile_set.split(","))


@register("winops.remoting.win_winrm_firewall", OPTIONS)
def win_winrm_firewall(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    state_wanted = check_choice("state", params["state"], ("present", "absent"))
    other_rules = str(check_choice("other_rules", params["other_rules"], OTHER_RULES)).lower()
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
    # The named rule admits nothing afterwards: other_rules 'disable' then closes the port.
    closes_port = other_rules == "disable" and (
        str(state_wanted).lower() == "absent" or not wanted["enabled"]
    )
    if (
        other_rules != "keep"
        and not closes_port
        and (
            str(state_wanted).lower() != "present"
            or not wanted["enabled"]
            or port is None
            or "remote_addresses" not in wanted
        )
    ):
        raise ModuleFailure(
            f"other_rules '{params['other_rules']}' needs port and either state 'present', "
            "enabled true and remote_addresses, so that this rule admits the port in place of "
            "the rules it changes, or (for 'disable' only) state 'absent' or enabled false, to "
            "close the port. Nothing was changed."
        )
    if closes_port and port is None:
        how = "state 'absent'" if str(state_wanted).lower() == "absent" else "enabled false"
        raise ModuleFailure(
            f"other_rules 'disable' with {how} closes a port and needs port, the TCP port to "
            "close. Nothing was changed."
        )
    # When the port is closed, every other rule admitting it counts, whatever its addresses.
    scope = None if closes_port else wanted.get("remote_addresses")

    result: dict[str, t.Any] = {"changed": False, "other_rules": []}
    # 'Any' admits every local address; a switched-off rule admits nothing.
    local_guard = (
        str(state_wanted).lower() == "present"
        and wanted["enabled"]
        and "local_addresses" in wanted
        and not any(entry.lower() == "any" for entry in wanted["local_addresses"])
    )
    # Read before the state lock is taken (the host takes its own lock first).
    connections = established_connections(run)
    with host_model(run) as state:
        if local_guard:
            _assert_local_scope_keeps_controller(connections, state, wanted["local_addresses"])
        rules = state.firewall_rules
        # Get-NetFirewallRule -Name reads the PersistentStore: Group Policy rules are not in it.
        index = next(
            (
                i
                for i, rule in enumerate(rules)
                if ps_equal(str(rule.get("Name")), name) and not netfilter.is_group_policy(rule)
            ),
            None,
        )
        current = _current(rules[index]) if index is not None else None
        diff_before = dict(current) if current is not None else {}
        # Not in check mode, as the module: earlier tasks have not moved the connection there.
        if closes_port and not run.check_mode:
            _assert_port_close_keeps_clients(
                connections,
                rules,
                index,
                category=state.network_category,
                port=int(wanted["port"]),
                name=name,
                how="state 'absent'" if str(state_wanted).lower() == "absent" else "enabled false",
            )
        elif index is not None and netfilter.rule_enabled(rules[index]) and not run.check_mode:
            _assert_rule_change_keeps_controller(
                connections,
                rules,
                index,
                category=state.network_category,
                name=name,
                state_wanted=str(state_wanted).lower(),
                wanted=wanted,
            )
        if (
            str(state_wanted).lower() == "present"
            and "port" in wanted
            and other_rules != "keep"
            and not closes_port
        ):
            changing = [
                other
                for _, other in _other_admitting(rules, int(wanted["port"]), name, scope)
                if other["policy_store_source_type"].lower() == "local"
                and other["coverage"] == "named"
            ]
            if changing:
                _refuse_unmodelled(wanted)
                _assert_controller_keeps_access(connections, state, wanted, current, other_rules)
        other_options = {"mode": other_rules, "scope": scope, "closes_port": closes_port}

        def finish(rule_after: dict[str, t.Any] | None) -> dict[str, t.Any]:
            """Every way ends alike: the rule as the task leaves it, then the other rules."""
            result["rule"] = rule_after
            diff_after = dict(rule_after) if rule_after is not None else {}
            _other_rules(
                run,
                rules,
                name,
                wanted,
                result=result,
                diff_before=diff_before,
                diff_after=diff_after,
                **other_options,
            )
            return _with_diff(run, result, diff_before, diff_after)

        if str(state_wanted).lower() == "absent":
            if index is not None:
                if not run.check_mode:
                    del rules[index]
                result["changed"] = True
            return finish(None)
        if index is None and not wanted["enabled"]:
            # Switching off a rule this host does not have: not created, port or not, since a
            # switched-off rule would admit nothing anyway.
            return finish(None)
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
            return finish(wanted)
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
        return finish(after)


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


def _port_coverage(local_port: t.Any, port: int) -> str | None:
    """Get-PortCoverage: 'any' (LocalPort Any), 'named' (the number alone), 'shared' (the
    port and others: a wider range, or more entries) or None."""
    covers = others = False
    for entry in _as_list(local_port):
        text = entry.strip()
        if text.lower() == "any":
            return "any"
        if re.fullmatch(r"\d+(-\d+)?", text):
            low, _, high = text.partition("-")
            if int(low) <= port <= int(high or low):
                covers = True
                others = others or int(high or low) != int(low)
                continue
        others = True
    if not covers:
        return None
    return "shared" if others else "named"


def _other_admitting(
    rules: list[dict[str, t.Any]], port: int, own_name: str, wanted: list[str] | None
) -> list[tuple[dict[str, t.Any], dict[str, t.Any]]]:
    """Get-OtherAdmittingRule: (stored rule, report) for every other enabled inbound allow rule
    of the ActiveStore that admits TCP `port` from addresses other than `wanted`."""
    found = []
    for rule in netfilter.active_rules(rules):
        if ps_equal(str(rule.get("Name")), own_name) and not netfilter.is_group_policy(rule):
            continue
        if not netfilter.rule_enabled(rule):
            continue
        if str(netfilter.rule_value(rule, "Direction")).lower() not in ("in", "inbound"):
            continue
        if str(netfilter.rule_value(rule, "Action")).lower() != "allow":
            continue
        if str(netfilter.rule_value(rule, "Protocol")).lower() not in ("tcp", "any", "6"):
            continue
        coverage = _port_coverage(netfilter.rule_value(rule, "LocalPort"), port)
        if coverage is None:
            continue
        remote = _sorted_unique(_as_list(netfilter.rule_value(rule, "RemoteAddress")))
        if wanted is not None and ",".join(remote).lower() == ",".join(wanted).lower():
            continue
        found.append(
            (
                rule,
                {
                    "name": str(rule.get("Name", "")),
                    "display_name": str(rule.get("DisplayName") or ""),
                    "local_ports": _as_list(netfilter.rule_value(rule, "LocalPort")),
                    "remote_addresses": remote,
                    "policy_store_source_type": str(
                        netfilter.rule_value(rule, "PolicyStoreSourceType")
                    ),
                    "policy_store_source": str(rule.get("PolicyStoreSource") or ""),
                    "coverage": coverage,
                },
            )
        )
    return found


def _other_rules(
    run: ModuleRun,
    rules: list[dict[str, t.Any]],
    name: str,
    wanted: dict[str, t.Any],
    *,
    mode: str,
    scope: list[str] | None,
    closes_port: bool,
    result: dict[str, t.Any],
    diff_before: dict[str, t.Any],
    diff_after: dict[str, t.Any],
) -> None:
    """Invoke-OtherRule: switch off or scope the other local rules admitting the port (from
    addresses other than `scope`; None when the port is closed); report Group Policy rules and
    rules for every port, which are left as they are."""
    if "port" not in wanted:
        return
    port = int(wanted["port"])
    report = []
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    for rule, other in _other_admitting(rules, port, name, scope):
        label = f"firewall rule '{other['display_name']}' (Name '{other['name']}')"
        source_from = ", ".join(other["remote_addresses"])
        coverage = other.pop("coverage")
        source_type = other["policy_store_source_type"]
        if source_type.lower() == "grouppolicy":
            other["action"] = "reported"
            gpo = f" '{other['policy_store_source']}'" if other["policy_store_source"] else ""
            run.warnings.append(
                f"{label} comes from Group Policy{gpo} and admits TCP port {port} from "
                f"{source_from}; it cannot be changed on this host, so the port stays open to "
                "those addresses: have the Group Policy administrator scope that rule to the "
                "controllers or remove it from the GPO"
            )
        elif source_type.lower() != "local":
            raise ModuleFailure(
                f"winhost does not model firewall rules of the policy store type '{source_type}'"
                f" ({label})"
            )
        elif coverage != "named":
            other["action"] = "kept"
            goal = (
                f"to close port {port}"
                if closes_port
                else f"to limit port {port} to remote_addresses"
            )
            ports = (
                "every TCP port (LocalPort Any)"
                if coverage == "any"
                else f"TCP ports {', '.join(other['local_ports'])}"
            )
            run.warnings.append(
                f"{label} admits {ports} from {source_from}, port {port} included; it is left "
                "as it is because it serves other ports too: scope or disable it yourself "
                f"{goal}"
            )
        elif mode == "keep":
            other["action"] = "kept"
            run.warnings.append(
                f"{label} also admits TCP port {port} from {source_from}; other_rules is 'keep', "
                "so remote_addresses does not limit who reaches the port"
            )
        else:
            if mode == "disable":
                other["action"] = "disabled"
                update: dict[str, t.Any] = {"Enabled": False}
                before[other["name"]] = {"enabled": True}
                after[other["name"]] = {"enabled": False}
            else:
                other["action"] = "scoped"
                update = {"RemoteAddress": list(wanted["remote_addresses"])}
                before[other["name"]] = {"remote_addresses": other["remote_addresses"]}
                after[other["name"]] = {"remote_addresses": list(wanted["remote_addresses"])}
            if not run.check_mode:
                rule.update(update)
            result["changed"] = True
        report.append(other)
    result["other_rules"] = report
    if before:
        diff_before["other_rules"] = before
        diff_after["other_rules"] = after


def _changed_rule(
    rule: dict[str, t.Any], state_wanted: str, wanted: dict[str, t.Any]
) -> dict[str, t.Any] | None:
    """The rule as the task leaves it, for the firewall's matching; None when it will admit
    nothing (removed or switched off)."""
    if state_wanted == "absent" or not wanted["enabled"]:
        return None
    return {**rule, **_updates(_current(rule), wanted)}


def _assert_rule_change_keeps_controller(
    connections: list[tuple[str, int, str]],
    rules: list[dict[str, t.Any]],
    index: int,
    *,
    category: str,
    name: str,
    state_wanted: str,
    wanted: dict[str, t.Any],
) -> None:
    """Assert-RuleChangeKeepsController: refuse, before anything changes, to remove, switch off
    or narrow this rule when it lets in WinRM clients connected now and afterwards the
    firewall would admit none of them. The firewall compares profiles with the network the
    connections arrive on (Get-NetConnectionProfile: `category`), as the module does."""
    if not connections:
        return
    let_in = [
        (local, port, remote)
        for local, port, remote in connections
        if netfilter.firewall_admits([rules[index]], remote, port, local, category)
    ]
    if not let_in:
        return
    changed = _changed_rule(rules[index], state_wanted, wanted)
    after = [rule for i, rule in enumerate(rules) if i != index]
    if changed is not None:
        after.append(changed)
    if any(
        netfilter.firewall_admits(after, remote, port, local, category)
        for local, port, remote in connections
    ):
        return
    clients = ", ".join(sorted({f"{remote} on port {port}" for _, port, remote in let_in}))
    change = (
        "removing"
        if state_wanted == "absent"
        else ("switching off" if not wanted["enabled"] else "narrowing")
    )
    raise ModuleFailure(
        f"{change} firewall rule name '{name}' would cut this play off: it admits the clients "
        f"connected to WinRM now ({clients}), and afterwards no enabled rule would admit any of "
        "them; connect through a port another rule admits, or add such a rule first. Nothing "
        "was changed."
    )


def _assert_port_close_keeps_clients(
    connections: list[tuple[str, int, str]],
    rules: list[dict[str, t.Any]],
    index: int | None,
    *,
    category: str,
    port: int,
    name: str,
    how: str,
) -> None:
    """Assert-PortCloseKeepsClient: refuse, before anything changes, to close `port` when a
    WinRM client connected now (from elsewhere than the host) is let in by this rule or by an
    other rule about to be switched off and afterwards the firewall would admit it no more."""
    if not connections:
        return
    leaving = [
        rule
        for rule, other in _other_admitting(rules, port, name, None)
        if other["policy_store_source_type"].lower() == "local" and other["coverage"] == "named"
    ]
    if index is not None and netfilter.rule_enabled(rules[index]):
        leaving.append(rules[index])
    if not leaving:
        return
    staying = [rule for rule in rules if not any(rule is gone for gone in leaving)]
    cut_off = [
        (local, client_port, remote)
        for local, client_port, remote in connections
        if netfilter.firewall_admits(leaving, remote, client_port, local, category)
        and not netfilter.firewall_admits(staying, remote, client_port, local, category)
    ]
    if not cut_off:
        return
    clients = ", ".join(sorted({f"{remote} on port {p}" for _, p, remote in cut_off}))
    raise ModuleFailure(
        f"other_rules 'disable' with {how} would close TCP port {port} to WinRM clients "
        f"connected now ({clients}): afterwards no enabled rule would admit them; move them "
        "(the play included) to a port another rule admits first, or use other_rules 'keep'. "
        "Nothing was changed."
    )


def _in_local_scope(address: str, entries: list[str], state: t.Any) -> bool:
    """Test-AddressInScope for a local address: keywords whose members the host cannot list
    (DNS, DHCP, ...) count as admitting it, as in the module."""
    if any(entry in ADDRESS_KEYWORDS and entry not in MODELLED_KEYWORDS for entry in entries):
        return True
    return netfilter.address_matches(address, entries, [netfilter.local_subnet(state.address)])


def _assert_local_scope_keeps_controller(
    connections: list[tuple[str, int, str]], state: t.Any, local_addresses: list[str]
) -> None:
    """Assert-LocalScopeKeepsController: refuse, before anything changes, a local scope that
    none of the host addresses the WinRM clients now connect to is in."""
    if not connections:
        return
    if any(_in_local_scope(local, local_addresses, state) for local, _, _ in connections):
        return
    arrivals = ", ".join(sorted({local for local, _, _ in connections}))
    clients = ", ".join(sorted({remote for _, _, remote in connections}))
    raise ModuleFailure(
        f"local_addresses ({', '.join(local_addresses)}) would cut this play off: the clients "
        f"connected to WinRM now ({clients}) reach this host on {arrivals}, and none of those "
        "addresses is in local_addresses; add the address the controller connects to (or give "
        "'Any'). Nothing was changed."
    )


def _assert_controller_keeps_access(
    connections: list[tuple[str, int, str]],
    state: t.Any,
    wanted: dict[str, t.Any],
    current: dict[str, t.Any] | None,
    mode: str,
) -> None:
    """Assert-ControllerKeepsAccess: refuse when no client now connected to a WinRM port would
    be admitted by this rule (remote_addresses, on a network of its profiles); nothing has
    changed yet."""
    peers = sorted({remote for _, _, remote in connections})
    if not peers:
        return
    subnets = [netfilter.local_subnet(state.address)]
    in_scope = [
        p for p in peers if netfilter.address_matches(p, wanted["remote_addresses"], subnets)
    ]
    # The rule's profiles as the task leaves them: given, else as they are, else Any.
    profiles = wanted.get("profiles") or (current["profiles"] if current is not None else "any")
    # Every connection arrives on the host's one interface, of the host's network category.
    if in_scope and netfilter.profile_applies(profiles.split(","), state.network_category):
        return
    if in_scope:
        network = netfilter.NETWORK_CATEGORIES[state.network_category]
        raise ModuleFailure(
            f"other_rules '{mode}' would cut this play off: the clients connected to WinRM now "
            f"({', '.join(in_scope)}) arrive on a network of the {network} profile, which "
            f"profiles ({profiles}) leave out, so this rule would not apply to them, and the "
            f"other rules that admit port {wanted['port']} are what lets them in; add that "
            "profile to profiles (or use other_rules 'keep'). Nothing was changed."
        )
    raise ModuleFailure(
        f"other_rules '{mode}' would cut this play off: none of the clients connected to WinRM "
        f"now ({', '.join(peers)}) is in remote_addresses "
        f"({', '.join(wanted['remote_addresses'])}), and the other rules that admit port "
        f"{wanted['port']} are what lets them in; add the controllers' addresses to "
        "remote_addresses (or use other_rules 'keep'). Nothing was changed."
    )
