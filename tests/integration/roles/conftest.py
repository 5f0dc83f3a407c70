"""winhost targets for the tests of the collection's PowerShell modules (emulated by winhost).

One winhost session of its own (hosts FIRST.. of roles_hosts.py, 127.0.10.185-199 by default), so
the listeners, authentication settings and policies these tests change never reach other
tests' hosts. Before the server starts, the `policy` host gets what Group Policy would have
left in the registry (AllowCredSSP=0, AllowNegotiate=1 and CBTHardeningLevelStatus=1 under
HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service, and the effective value
CredSSP=false), as an administrator's domain would, and the
delegation list `Enable-WSManCredSSP -Role Client -DelegateComputer old.winops.test` leaves in
the local GPO and the live Policies key (ENABLE_WSMANCREDSSP_LIST); the
`listener` and `cert` hosts' firewalls also admit EXTRA_HTTPS_PORT; the `compat` host has
WinRM's compatibility HTTP listener (port 80) switched on.

Playbooks run through the real ansible-playbook with this collection's winops.remoting.winrm
plugin over HTTPS with NTLM and certificate validation against winhost's test CA.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
import typing as t
from pathlib import Path

import pytest
import yaml

from winhost import profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session
from winhost.state import HostState

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from module_playbook import PlaybookRun, run_playbook  # noqa: E402
from roles_hosts import EXTRA_HTTPS_PORT, FIRST, OFFSETS  # noqa: E402

POLICY_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\WinRM\\Service"
DELEGATION_KEY = "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\CredentialsDelegation"
# What Enable-WSManCredSSP -Role Client -DelegateComputer old.winops.test writes into the local
# GPO (PowerShell's CredSSP.cs, UpdateGPORegistrySettings), which Group Policy copies onto HKLM.
ENABLE_WSMANCREDSSP_LIST = {
    DELEGATION_KEY: {"AllowFreshCredentials": 1, "ConcatenateDefaults_AllowFresh": 1},
    f"{DELEGATION_KEY}\\AllowFreshCredentials": {"1": "wsman/old.winops.test"},
}


@dataclasses.dataclass
class ModuleTargets:
    """The session and a way to run a playbook against one of its hosts."""

    session: WinhostSession
    work: Path

    def name(self, role: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[role])

    def address(self, role: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{FIRST + OFFSETS[role]}"

    def state(self, role: str) -> dict[str, t.Any]:
        return self.session.state(self.name(role))

    def play(
        self, role: str, tasks: str, *, check: bool = False, label: str = "run"
    ) -> PlaybookRun:
        """Run `tasks` (YAML text of a task list) against the host in diff mode, in check mode
        if asked (the play keywords, equivalent to --diff/--check for its tasks)."""
        work = self.work / f"{role}-{label}"
        work.mkdir(parents=True, exist_ok=True)
        path = work / "play.yml"
        header = (
            f"- hosts: {self.name(role)}\n  gather_facts: false\n"
            f"  check_mode: {'true' if check else 'false'}\n  diff: true\n  tasks:\n"
        )
        body = "".join(f"    {line}\n" if line else "\n" for line in tasks.splitlines())
        path.write_text(header + body, encoding="utf-8")
        vars_ = self.session.host_vars(self.name(role))
        overlay = _write_private_yaml(
            work / "connection.yml",
            {
                "all": {
                    "vars": {
                        "ansible_connection": "winops.remoting.winrm",
                        "ansible_port": 5986,
                        "ansible_winrm_scheme": "https",
                        "ansible_winrm_transport": "ntlm",
                        "ansible_winrm_server_cert_validation": "validate",
                        "ansible_winrm_ca_trust_path": vars_["winhost_ca_bundle"],
                        "ansible_shell_type": "powershell",
                    }
                }
            },
        )
        return run_playbook(path, [self.session.inventory, overlay], work)


def _write_private_yaml(path: Path, data: t.Any) -> Path:
    """An inventory overlay readable only by this user (it names the CA bundle's path)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)
    return path


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[ModuleTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-roles")
    states = profiles.create_state_dir(state_dir, len(OFFSETS), "default", first=FIRST)
    policy: HostState = states[OFFSETS["policy"]]
    # "Disallow Negotiate authentication" disabled (AllowNegotiate=1) and "Specify channel
    # binding token hardening level" enabled (CBTHardeningLevelStatus=1): both are policy-set.
    policy.registry[POLICY_KEY] = {
        "AllowCredSSP": 0,
        "AllowNegotiate": 1,
        "CBTHardeningLevelStatus": 1,
    }
    policy.winrm["Service"]["Auth"]["CredSSP"] = "false"
    policy.winrm["Client"]["Auth"]["CredSSP"] = "true"
    policy.local_group_policy = copy.deepcopy(ENABLE_WSMANCREDSSP_LIST)
    policy.registry.update(copy.deepcopy(ENABLE_WSMANCREDSSP_LIST))
    policy.save()
    # The listener tests open an HTTPS listener on EXTRA_HTTPS_PORT; an administrator would
    # have opened the firewall for it (winhost's firewall blocks other ports by default).
    for role in ("listener", "cert"):
        opened: HostState = states[OFFSETS[role]]
        opened.firewall_rules.append(
            {
                "Name": "WINRM-HTTPS-Extra-In-TCP",
                "DisplayName": "WinRM HTTPS (extra port)",
                "Enabled": True,
                "LocalPort": EXTRA_HTTPS_PORT,
                "RemoteAddress": "Any",
            }
        )
        opened.save()
    # WinRM's compatibility HTTP listener on port 80 (winrm/config/Service
    # EnableCompatibilityHttpListener), with the firewall open for it as an administrator who
    # switched it on would have.
    compat: HostState = states[OFFSETS["compat"]]
    compat.set_winrm_setting("Service/EnableCompatibilityHttpListener", "true")
    compat.firewall_rules.append(
        {
            "Name": "WINRM-HTTP-Compat-In-TCP",
            "DisplayName": "Windows Remote Management - Compatibility Mode (HTTP-In)",
            "Enabled": True,
            "LocalPort": 80,
            "RemoteAddress": "Any",
        }
    )
    compat.save()
    session = start_session(state_dir, len(OFFSETS), "default", first=FIRST)
    try:
        yield ModuleTargets(session, tmp_path_factory.mktemp("plays"))
    finally:
        stop_session(session)
