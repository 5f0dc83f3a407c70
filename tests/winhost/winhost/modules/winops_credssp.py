"""winops.remoting.win_credssp against the host's WinRM configuration and registry model.

Follows plugins/modules/win_credssp.ps1: `server` and `client` switch Service/Auth/CredSSP and
Client/Auth/CredSSP (unless Group Policy's AllowCredSSP sets them), the delegation lists are
written exactly (AllowFreshCredentials and AllowFreshCredentialsWhenNTLMOnly under
HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation, numbered values "1".."n").
winhost reads Service/Auth/CredSSP per request, so the server role takes effect at once; the
client role and the lists are stored (winhost never acts as a CredSSP client).

The local Group Policy Object (HostState.local_group_policy, what its Machine Registry.pol
holds; winhost.grouppolicy writes it onto the registry at boot and at `gpupdate`) is read and
written as the .ps1 does through IGroupPolicyObject: a list the GPO holds is made the wanted
list there too (an empty one takes the policy out of the GPO), so the next refresh keeps it.
"""

from __future__ import annotations

import re
import typing as t

from winhost.grouppolicy import machine_key
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import host_model
from winhost.state import HostState

DELEGATION_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"
DELEGATION_PATH = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"
WINRM_POLICY_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
WINRM_POLICY_PATH = "HKLM:\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM"
# option -> (policy switch value, "also use the defaults" value, subkey holding the list)
DELEGATION_LISTS = {
    "delegate_computers": (
        "AllowFreshCredentials",
        "ConcatenateDefaults_AllowFresh",
        "AllowFreshCredentials",
    ),
    "delegate_computers_ntlm_only": (
        "AllowFreshCredentialsWhenNTLMOnly",
        "ConcatenateDefaults_AllowFreshNTLMOnly",
        "AllowFreshCredentialsWhenNTLMOnly",
    ),
}

OPTIONS = {
    "server": Option(type="bool"),
    "client": Option(type="bool"),
    "delegate_computers": Option(type="list", elements="str"),
    "delegate_computers_ntlm_only": Option(type="list", elements="str"),
}


def _gpo_key(state: HostState, path: str) -> str | None:
    wanted = path.lower()
    return next((k for k in state.local_group_policy if machine_key(k).lower() == wanted), None)


def _gpo_list(state: HostState, switch: str, subkey: str) -> list[str] | None:
    """LocalMachinePolicy.GetList: the numbered SPNs in the local GPO; None when it sets
    neither the switch value nor the list's key."""
    parent = _gpo_key(state, DELEGATION_KEY)
    switch_set = parent is not None and (
        _value(state.local_group_policy[parent], switch) is not None
    )
    list_key = _gpo_key(state, f"{DELEGATION_KEY}\\{subkey}")
    if not switch_set and list_key is None:
        return None
    if list_key is None:
        return []
    values = state.local_group_policy[list_key]
    numbered = sorted((int(n), n) for n in values if re.fullmatch(r"\d+", n))
    return [str(values[name]) for _, name in numbered]


def _write_gpo_list(
    state: HostState, switch: str, concatenate: str, subkey: str, spns: list[str]
) -> None:
    """LocalMachinePolicy.SetList: the GPO's list made exactly `spns`, then saved."""
    list_key = _gpo_key(state, f"{DELEGATION_KEY}\\{subkey}")
    if list_key is not None:
        del state.local_group_policy[list_key]
    parent = _gpo_key(state, DELEGATION_KEY) or DELEGATION_KEY
    values = state.local_group_policy.setdefault(parent, {})
    for name in (switch, concatenate):
        found = _value(values, name)
        if found is not None:
            del values[found]
    if spns:
        values[switch] = 1
        values[concatenate] = 1
        state.local_group_policy[f"{DELEGATION_KEY}\\{subkey}"] = {
            str(index + 1): spn for index, spn in enumerate(spns)
        }
    elif not values:
        del state.local_group_policy[parent]


def _spn(computer: str, option: str) -> str:
    """ConvertTo-DelegationSpn."""
    value = computer.strip()
    if not value:
        raise ModuleFailure(f"{option} contains an empty entry")
    if "/" not in value:
        value = f"wsman/{value}"
    if not re.fullmatch(r"[^/\s]+/[^/\s]+", value):
        raise ModuleFailure(
            f"{option} entry '{computer}' is not a computer name or a 'service/host' SPN"
        )
    return value


def _key(state: HostState, path: str) -> str | None:
    return next((k for k in state.registry if k.lower() == path.lower()), None)


def _value(values: dict[str, t.Any], name: str) -> str | None:
    return next((k for k in values if k.lower() == name.lower()), None)


def _current_list(state: HostState, switch: str, subkey: str) -> list[str] | None:
    """Get-DelegationList: the SPNs in numbered order; None when the policy is not set."""
    parent = _key(state, DELEGATION_KEY)
    switch_set = parent is not None and _value(state.registry[parent], switch) is not None
    list_key = _key(state, f"{DELEGATION_KEY}\\{subkey}")
    if not switch_set and list_key is None:
        return None
    if list_key is None:
        return []
    values = state.registry[list_key]
    numbered = sorted((int(n), n) for n in values if re.fullmatch(r"\d+", n))
    return [str(values[name]) for _, name in numbered]


def _write_list(
    state: HostState, switch: str, concatenate: str, subkey: str, spns: list[str]
) -> None:
    """Set-DelegationList: replace the list exactly; empty returns it to "not configured"."""
    list_key = _key(state, f"{DELEGATION_KEY}\\{subkey}")
    if list_key is not None:
        del state.registry[list_key]
    parent = _key(state, DELEGATION_KEY)
    if not spns:
        if parent is not None:
            for name in (switch, concatenate):
                found = _value(state.registry[parent], name)
                if found is not None:
                    del state.registry[parent][found]
        return
    if parent is None:
        parent = DELEGATION_KEY
        state.registry[parent] = {}
    state.registry[parent][switch] = 1
    state.registry[parent][concatenate] = 1
    state.registry[f"{DELEGATION_KEY}\\{subkey}"] = {
        str(index + 1): spn for index, spn in enumerate(spns)
    }


@register("winops.remoting.win_credssp", OPTIONS)
def win_credssp(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    wanted_lists = {
        option: [_spn(str(entry), option) for entry in params[option]]
        for option in DELEGATION_LISTS
        if params[option] is not None
    }
    if params["client"] and not wanted_lists.get("delegate_computers"):
        raise ModuleFailure(
            "client is true but delegate_computers is missing or empty; name at least one "
            "computer this host may delegate credentials to"
        )
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    result: dict[str, t.Any] = {"changed": False, "managed_by_policy": []}
    with host_model(run) as state:
        if params["client"] is False and params["delegate_computers"] is None:
            # Disable-WSManCredSSP -Role Client (PowerShell CredSSP.cs, DeleteDelegateSettings):
            # the wsman entries leave the fresh-credentials list, other entries stay.
            switch, _, subkey = DELEGATION_LISTS["delegate_computers"]
            found = _current_list(state, switch, subkey)
            if found is None:
                found = _gpo_list(state, switch, subkey)
            if found is not None:
                wanted_lists["delegate_computers"] = [
                    spn for spn in found if not spn.lower().startswith("wsman")
                ]
        for role, option in (("Service", "server"), ("Client", "client")):
            if params[option] is None:
                continue
            wanted = bool(params[option])
            current = state.winrm_flag(f"{role}/Auth/CredSSP")
            before[option] = current
            after[option] = wanted
            if current == wanted:
                continue
            policy_key = _key(state, f"{WINRM_POLICY_KEY}\\{role}")
            if policy_key is not None and _value(state.registry[policy_key], "AllowCredSSP"):
                path = f"WSMan:\\localhost\\{role}\\Auth\\CredSSP"
                run.warnings.append(
                    f"{path} is set by Group Policy ({WINRM_POLICY_PATH}\\{role}\\AllowCredSSP); "
                    f"leaving it at '{'True' if current else 'False'}'"
                )
                result["managed_by_policy"].append(f"{role}\\Auth\\CredSSP")
                after[option] = current
                continue
            if not run.check_mode:
                state.set_winrm_setting(f"{role}/Auth/CredSSP", "true" if wanted else "false")
            result["changed"] = True
        result["local_group_policy"] = []
        for option, (switch, concatenate, subkey) in DELEGATION_LISTS.items():
            current_list = _current_list(state, switch, subkey)
            in_gpo = _gpo_list(state, switch, subkey)
            before[option] = current_list
            if in_gpo is not None:
                result["local_group_policy"].append(option)
            if option not in wanted_lists:
                after[option] = current_list
                result[option] = current_list
                continue
            wanted_list = wanted_lists[option]
            after[option] = wanted_list
            result[option] = wanted_list
            same = (current_list is None and not wanted_list) or current_list == wanted_list
            # An empty wanted list takes the policy out of the GPO altogether.
            gpo_same = in_gpo is None or (bool(wanted_list) and in_gpo == wanted_list)
            if same and gpo_same:
                continue
            if not run.check_mode:
                if not gpo_same:
                    _write_gpo_list(state, switch, concatenate, subkey, wanted_list)
                if not same:
                    _write_list(state, switch, concatenate, subkey, wanted_list)
            result["changed"] = True
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
