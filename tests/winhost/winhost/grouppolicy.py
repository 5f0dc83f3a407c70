"""Group Policy on the host: the local GPO's machine registry policy, applied at refresh.

`HostState.local_group_policy` holds what the Machine Registry.pol of the local Group Policy
Object holds (%SystemRoot%\\System32\\GroupPolicy\\Machine\\Registry.pol): HKLM key path ->
value name -> data. Group Policy writes those values onto the registry when the computer
policy is processed: at boot and at every refresh (`gpupdate`, or the background refresh
every 90 minutes, which winhost does not run on its own). A value an administrator or a module
changed only in the live HKLM\\SOFTWARE\\Policies key therefore comes back at the next refresh.

Sources: "Registry Policy File Format" (Microsoft Learn,
previous-versions/windows/desktop/Policy/registry-policy-file-format) for the file's entries
and the special value names **Del.<name>, **DelVals and **DeleteValues; the PowerShell source
(src/Microsoft.WSMan.Management/CredSSP.cs) for Enable-WSManCredSSP writing its delegation
list through IGroupPolicyObject.OpenLocalMachineGPO/GetRegistryKey/Save into that GPO.

Not modelled: domain GPOs, the Registry extension's removal of values a GPO no longer holds
(its history), **DeleteKeys and **SecureKey (refused loudly), user policy.
"""

from __future__ import annotations

import typing as t

from winhost import registry
from winhost.state import HostState

HKLM = "HKLM\\"
_DELETE_ONE = "**del."
_DELETE_ALL = "**delvals."
_DELETE_LIST = "**deletevalues"


class GroupPolicyError(ValueError):
    """A registry policy entry winhost cannot apply; the message names it."""


def machine_key(path: str) -> str:
    """The registry model's key for a Registry.pol key (stored relative to HKLM there)."""
    return path if path.upper().startswith(HKLM) else HKLM + path.lstrip("\\")


def _apply_key(state: HostState, key: str, values: dict[str, t.Any]) -> None:
    registry.create_key(state, key)
    for name, data in values.items():
        lowered = name.lower()
        if lowered == _DELETE_ALL:
            found = registry.find_key(state, key)
            for existing in list(state.registry.get(found or key, {})):
                registry.delete_value(state, key, existing)
        elif lowered.startswith(_DELETE_ONE):
            registry.delete_value(state, key, name[len(_DELETE_ONE) :])
        elif lowered == _DELETE_LIST:
            for target in str(data).split(";"):
                if target.strip():
                    registry.delete_value(state, key, target.strip())
        elif lowered.startswith("**"):
            raise GroupPolicyError(
                f"winhost does not model the registry policy entry {name!r} (key {key})"
            )
        else:
            kind = "dword" if isinstance(data, int) and not isinstance(data, bool) else None
            if kind is None and isinstance(data, str):
                kind = "string"
            if kind is None:
                raise GroupPolicyError(
                    f"winhost does not model registry policy data {data!r} ({key}\\{name})"
                )
            registry.write_value(state, key, name, kind, data)


def refresh_computer_policy(state: HostState) -> list[str]:
    """Process the computer part of the local GPO: write its registry policy onto HKLM.
    Returns the keys it wrote (for logs and tests)."""
    applied = []
    for path, values in state.local_group_policy.items():
        key = machine_key(path)
        _apply_key(state, key, values)
        applied.append(key)
    return applied
