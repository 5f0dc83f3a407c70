"""The local GPO's registry policy (winhost.grouppolicy): written onto HKLM at boot and at a
policy refresh, with Registry.pol's special value names."""

from __future__ import annotations

from pathlib import Path

import pytest
from address_blocks import block

from winhost import grouppolicy, profiles, registry
from winhost.host import WinHost

# A host model of its own; it never listens (shut down right after boot).
GP_INDEX = block("core_group_policy").first
DELEGATION = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"


def test_boot_writes_the_local_gpo_over_a_value_changed_only_in_the_registry(
    tmp_path: Path,
) -> None:
    state = profiles.create_state_dir(tmp_path, 1, "default", first=GP_INDEX)[0]
    state.local_group_policy = {
        DELEGATION: {"AllowFreshCredentials": 1},
        # Registry.pol stores keys relative to HKLM.
        "SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation\\AllowFreshCredentials": {
            "1": "wsman/gpo.winops.test"
        },
    }
    state.registry[f"{DELEGATION}\\AllowFreshCredentials"] = {"1": "wsman/edited.winops.test"}
    state.save()
    host = WinHost(state)
    host.shutdown()
    listed = registry.read_value(state, f"{DELEGATION}\\AllowFreshCredentials", "1")
    assert listed is not None and listed.data == "wsman/gpo.winops.test"
    assert registry.dword(state, DELEGATION, "AllowFreshCredentials") == 1


def test_special_value_names_delete_and_unknown_ones_fail_loudly(tmp_path: Path) -> None:
    state = profiles.create_state_dir(tmp_path, 1, "default", first=GP_INDEX)[0]
    key = "HKLM\\SOFTWARE\\Policies\\Example"
    state.registry[key] = {"a": 1, "b": 2, "c": 3}
    state.local_group_policy = {key: {"**del.a": "", "**DeleteValues": "b", "d": "x"}}
    grouppolicy.refresh_computer_policy(state)
    assert state.registry[key] == {"c": 3, "d": "x"}
    state.local_group_policy = {key: {"**DelVals.": "", "e": 5}}
    grouppolicy.refresh_computer_policy(state)
    assert state.registry[key] == {"e": 5}
    state.local_group_policy = {key: {"**DeleteKeys": "sub"}}
    with pytest.raises(grouppolicy.GroupPolicyError, match="winhost does not model"):
        grouppolicy.refresh_computer_policy(state)
