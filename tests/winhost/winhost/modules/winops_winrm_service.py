"""winops.remoting.win_winrm_service against the host's WinRM configuration.

Follows plugins/modules/win_winrm_service.ps1: every option is compared in a normalised form
per kind of setting, settings that Group Policy sets (values under
HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM) are reported in managed_by_policy and
left alone, the rest are written to winrm/config, where the host reads them per request
(authentication, AllowUnencrypted, CbtHardeningLevel, MaxEnvelopeSizekb) or per listener
reconciliation (IPv4Filter). The `SourceOfValue` of WSMan: leaves is not modelled apart from
these policy values.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing as t

from winhost import netfilter
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import (
    MY_STORE,
    check_choice,
    established_connections,
    host_model,
    ps_equal,
    store_cert,
    sub_options,
)
from winhost.state import HostState

POLICY_ROOT = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
# The same key as winhost's registry model names it.
POLICY_REGISTRY_ROOT = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
CBT_LEVELS = ("none", "relaxed", "strict")


@dataclasses.dataclass(frozen=True)
class Setting:
    path: str  # below WSMan:\localhost, backslash-separated
    kind: str  # bool, int, cbt, thumbprint, filter, list
    policy: str | None  # <key>\<value name> below POLICY_ROOT
    # For a policy whose value is an enabled/disabled switch: the value meaning "enabled";
    # without it any value of the policy means Group Policy sets the setting.
    enabled_value: int | None = None


SERVICE_SETTINGS: dict[str, Setting] = {
    "auth_basic": Setting("Service\\Auth\\Basic", "bool", "Service\\AllowBasic"),
    "auth_kerberos": Setting("Service\\Auth\\Kerberos", "bool", "Service\\AllowKerberos"),
    "auth_negotiate": Setting("Service\\Auth\\Negotiate", "bool", "Service\\AllowNegotiate"),
    "auth_certificate": Setting("Service\\Auth\\Certificate", "bool", None),
    "auth_credssp": Setting("Service\\Auth\\CredSSP", "bool", "Service\\AllowCredSSP"),
    "allow_unencrypted": Setting(
        "Service\\AllowUnencrypted", "bool", "Service\\AllowUnencryptedTraffic"
    ),
    # The policy's switch value: 1 enabled (it sets the level), 0 disabled (local again).
    "cbt_hardening_level": Setting(
        "Service\\Auth\\CbtHardeningLevel",
        "cbt",
        "Service\\CBTHardeningLevelStatus",
        enabled_value=1,
    ),
    "certificate_thumbprint": Setting("Service\\CertificateThumbprint", "thumbprint", None),
    "ipv4_filter": Setting("Service\\IPv4Filter", "filter", "Service\\IPv4Filter"),
    "ipv6_filter": Setting("Service\\IPv6Filter", "filter", "Service\\IPv6Filter"),
    "max_envelope_size_kb": Setting("MaxEnvelopeSizekb", "int", None),
}
CLIENT_SETTINGS: dict[str, Setting] = {
    "auth_basic": Setting("Client\\Auth\\Basic", "bool", "Client\\AllowBasic"),
    "auth_digest": Setting("Client\\Auth\\Digest", "bool", "Client\\AllowDigest"),
    "auth_kerberos": Setting("Client\\Auth\\Kerberos", "bool", "Client\\AllowKerberos"),
    "auth_negotiate": Setting("Client\\Auth\\Negotiate", "bool", "Client\\AllowNegotiate"),
    "auth_certificate": Setting("Client\\Auth\\Certificate", "bool", None),
    "auth_credssp": Setting("Client\\Auth\\CredSSP", "bool", "Client\\AllowCredSSP"),
    "allow_unencrypted": Setting(
        "Client\\AllowUnencrypted", "bool", "Client\\AllowUnencryptedTraffic"
    ),
    # The "Trusted Hosts" policy: TrustedHosts 1 (enabled) with the list in TrustedHostsList;
    # disabled, the local list applies (Policy CSP RemoteManagement/TrustedHosts).
    "trusted_hosts": Setting(
        "Client\\TrustedHosts", "list", "Client\\TrustedHosts", enabled_value=1
    ),
}

CLIENT_OPTIONS = {
    name: Option(type="list", elements="str") if setting.kind == "list" else Option(type="bool")
    for name, setting in CLIENT_SETTINGS.items()
}
OPTIONS = {
    "auth_basic": Option(type="bool"),
    "auth_kerberos": Option(type="bool"),
    "auth_negotiate": Option(type="bool"),
    "auth_certificate": Option(type="bool"),
    "auth_credssp": Option(type="bool"),
    "allow_unencrypted": Option(type="bool"),
    "cbt_hardening_level": Option(choices=("none", "relaxed", "strict")),
    "certificate_thumbprint": Option(),
    "ipv4_filter": Option(),
    "ipv6_filter": Option(),
    "max_envelope_size_kb": Option(type="int"),
    "client": Option(type="dict", options=CLIENT_OPTIONS),
}


def _filter_problem(value: str, version: int) -> str | None:
    """Get-IPFilterProblem: why an IPv4Filter/IPv6Filter value is invalid, or None."""
    if value.strip() in ("", "*"):
        return None
    family = "InterNetwork" if version == 4 else "InterNetworkV6"
    for span in value.split(","):
        for end in span.split("-"):
            text = end.strip()
            if version == 4 and re.fullmatch(r"\d+(\.\d+){0,2}", text):
                # .NET's TryParse takes this shorthand (10.1 = 10.0.0.1); the module refuses it.
                return f"'{text}' is not a dotted-quad IPv4 address"
            try:
                parsed = ipaddress.ip_address(text)
            except ValueError:
                parsed = None
            if parsed is None or parsed.version != version:
                return f"'{text}' is not an address of the {family} family"
    return None


def _comparable(value: t.Any, kind: str) -> t.Any:
    """ConvertTo-Comparable: one form per kind for a WSMan string or a module value."""
    text = str(value)
    if kind == "bool":
        return value is True or text.lower() == "true"
    if kind == "int":
        return int(text)
    if kind == "cbt":
        return text.lower()
    if kind == "thumbprint":
        return re.sub(r"[\s\u200e]", "", text).upper()
    if kind == "filter":
        return ",".join(re.split(r"\s*,\s*", text)).strip().lower()
    if kind == "list":
        seen: dict[str, str] = {}
        for item in (part.strip() for part in text.split(",")):
            if item and item.lower() not in seen:  # Sort-Object -Unique ignores case
                seen[item.lower()] = item
        return ",".join(sorted(seen.values(), key=str.lower))
    raise AssertionError(kind)


def _wsman_value(value: t.Any, kind: str) -> str:
    """ConvertTo-WSManValue: the string WinRM stores."""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "cbt":
        return str(value).title()
    if kind == "list":
        return ",".join(str(v) for v in value)
    if kind == "thumbprint":
        return str(_comparable(value, "thumbprint"))
    return str(value)


def _policy_value(state: HostState, policy: str | None) -> t.Any:
    if policy is None:
        return None
    key, name = policy.split("\\", 1)
    values = state.registry.get(f"{POLICY_REGISTRY_ROOT}\\{key}", {})
    match = next((k for k in values if k.lower() == name.lower()), None)
    return None if match is None else values[match]


def _validate(run: ModuleRun, params: dict[str, t.Any], state: HostState) -> None:
    """Every input is checked before anything is touched, as the script does."""
    for name, version in (("ipv4_filter", 4), ("ipv6_filter", 6)):
        value = params[name]
        if value is not None:
            problem = _filter_problem(value, version)
            if problem is not None:
                raise ModuleFailure(
                    f"{name} '{value}' is invalid: {problem}; use '*', '' or comma-separated "
                    "'first-last' ranges"
                )
    size = params["max_envelope_size_kb"]
    if size is not None and size < 32:
        raise ModuleFailure(
            f"max_envelope_size_kb '{size}' must be at least 32 kilobytes, the smallest "
            "MaxEnvelopeSizekb Windows takes"
        )
    if params["certificate_thumbprint"]:
        thumbprint = _comparable(params["certificate_thumbprint"], "thumbprint")
        if not re.fullmatch(r"[0-9A-F]{40}", thumbprint):
            raise ModuleFailure(
                f"certificate_thumbprint '{params['certificate_thumbprint']}' is not a SHA-1 "
                "thumbprint of 40 hex digits"
            )
        stored = store_cert(state, MY_STORE, thumbprint)
        if stored is None:
            if not run.check_mode:
                raise ModuleFailure(
                    f"certificate_thumbprint '{thumbprint}' is not in Cert:\\LocalMachine\\My"
                )
            run.warnings.append(
                f"certificate_thumbprint '{thumbprint}' is not in Cert:\\LocalMachine\\My yet; "
                "continuing because this is check mode"
            )
        elif stored.key_path is None:
            raise ModuleFailure(
                f"certificate_thumbprint '{thumbprint}' has no private key in "
                "Cert:\\LocalMachine\\My, and CredSSP's TLS handshake needs one: import the "
                "certificate with its key (a PFX). Nothing was changed."
            )


def _assert_filters_keep_connection(
    params: dict[str, t.Any], state: HostState, connections: list[tuple[str, int, str]]
) -> None:
    """As the module: filters that leave out every host address the WinRM clients arrive on
    are refused before anything changes (WinRM would stop listening there)."""
    filters = {}
    for name in ("ipv4_filter", "ipv6_filter"):
        setting = SERVICE_SETTINGS[name]
        requested = params[name]
        if requested is not None and _policy_value(state, setting.policy) is None:
            filters[name] = str(requested)
        else:
            filters[name] = state.winrm_setting(setting.path.replace("\\", "/"))
    for local, _port, _remote in connections:
        family = "ipv4_filter" if ipaddress.ip_address(local).version == 4 else "ipv6_filter"
        if filters[family].strip() and netfilter.address_matches(local, filters[family]):
            return
    arrivals = ", ".join(sorted({local for local, _, _ in connections}))
    clients = ", ".join(sorted({remote for _, _, remote in connections}))
    raise ModuleFailure(
        f"ipv4_filter '{filters['ipv4_filter']}' and ipv6_filter '{filters['ipv6_filter']}' would "
        f"cut this play off: the clients connected to WinRM now ({clients}) arrive on "
        f"{arrivals}, which the filters leave out, so WinRM would stop listening there. Include "
        "one of those addresses (this host's own: behind NAT not the one the controller "
        "connects to) or '*'. Nothing was changed."
    )


@register("winops.remoting.win_winrm_service", OPTIONS)
def win_winrm_service(run: ModuleRun) -> dict[str, t.Any]:
    params = dict(run.params)
    check_choice("cbt_hardening_level", params["cbt_hardening_level"], CBT_LEVELS)
    client = sub_options(run, "client", CLIENT_OPTIONS)
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    managed: list[dict[str, t.Any]] = []
    changed = False
    filters_given = params["ipv4_filter"] is not None or params["ipv6_filter"] is not None
    # Read outside the state lock (the host takes its own lock).
    connections = established_connections(run) if filters_given else []
    with host_model(run) as state:
        _validate(run, params, state)
        if connections:
            _assert_filters_keep_connection(params, state, connections)
        requests = [
            ("service", name, setting, params[name])
            for name, setting in SERVICE_SETTINGS.items()
            if params[name] is not None
        ]
        if client is not None:
            requests += [
                ("client", name, setting, client[name])
                for name, setting in CLIENT_SETTINGS.items()
                if client[name] is not None
            ]
        for scope, name, setting, requested in requests:
            label = f"client.{name}" if scope == "client" else name
            path = f"WSMan:\\localhost\\{setting.path}"
            current = _comparable(
                state.winrm_setting(setting.path.replace("\\", "/")), setting.kind
            )
            wanted = _comparable(_wsman_value(requested, setting.kind), setting.kind)
            before[label] = current
            policy_value = _policy_value(state, setting.policy)
            policy_sets = policy_value is not None and (
                setting.enabled_value is None or str(policy_value) == str(setting.enabled_value)
            )
            if policy_sets:
                policy_path = f"{POLICY_ROOT}\\{setting.policy}"
                managed.append(
                    {
                        "setting": label,
                        "path": path,
                        "value": current,
                        "requested": wanted,
                        "policy": policy_path,
                    }
                )
                if not ps_equal(current, wanted):
                    run.warnings.append(
                        f"{label} is set by Group Policy ({policy_path}); leaving it at "
                        f"'{_ps_text(current)}' instead of '{_ps_text(wanted)}'"
                    )
                after[label] = current
                continue
            after[label] = wanted
            if ps_equal(current, wanted):
                continue
            if not run.check_mode:
                state.set_winrm_setting(
                    setting.path.replace("\\", "/"), _wsman_value(requested, setting.kind)
                )
            changed = True
    result: dict[str, t.Any] = {
        "changed": changed,
        "settings": after,
        "managed_by_policy": managed,
    }
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result


def _ps_text(value: t.Any) -> str:
    """How PowerShell expands a value inside a string ("$x" of a bool is True/False)."""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)
