"""Hosts, connections and playbook runs of the tests of the shipped playbooks (setup, harden).

One winhost session of its own: hosts FIRST + offset on the `playbooks` block of
address_blocks.py (127.0.10.60-79 unless PLAYBOOKS_FIRST moves it), all from the `default` profile, one host per test wherever the test changes
state, so that every playbook meets a host as fresh as a newly set-up Windows Server.

The playbooks are run as a user runs them: `ansible-playbook winops.remoting.setup` from the
collection as built and installed (WINOPS_COLLECTIONS_PATH, else build/dev), with this
collection's connection plugins, the session's inventory plus an overlay of connection
variables for the one host a run targets (winops_hosts), and the issuers fetched into a
directory of the test's own (winops_ca_dir).

Firewall scope: winhost sees every connection from this controller coming from 127.0.0.1 (the
kernel's source address on loopback), so that is the controller address the tests give the
roles; winhost does not model keywords such as LocalSubnet and would refuse them.
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_private_yaml

from winhost import profiles
from winhost.pytest_plugin import WinhostSession

BLOCK = block("playbooks")
FIRST = BLOCK.first
OFFSETS = {
    "setup_winrm": 0,
    "setup_psrp": 1,
    "check_mode": 2,
    "bad_auth_method": 3,
    "bad_port": 4,
    "bad_address": 5,
    "harden": 6,
    "harden_check_mode": 7,
    "renewal_listener_unmoved": 8,
    "enrolled_winrm": 9,
    "enrolled_psrp": 10,
    "bad_enrolled": 11,
    "enrolled_setup": 12,
    "harden_brownfield_firewall": 13,
    "renewal_remove_replaced": 14,
    "listener_address_case": 15,
    "harden_guide_http": 16,
    "harden_guide_http_local": 17,
}
# Hosts that start with Basic and unencrypted traffic allowed (see conftest.py).
PERMISSIVE = ("harden", "harden_check_mode")
# The session starts len(OFFSETS) hosts from FIRST: the offsets are 0..n-1, inside the block.
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS)))
assert max(OFFSETS.values()) < BLOCK.size - 2

CONTROLLER_ADDRESS = "127.0.0.1"
# A client address outside the firewall scope the tests give: another loopback address of this
# machine in the suite's block that no host of the session uses.
OUTSIDE_ADDRESS = BLOCK.address(BLOCK.size - 2)
# State that changes with every request rather than with the host's configuration: request
# tallies, what a latency profile slept, and the shells and pools open now (a kept session's
# holder closes its own within seconds of the run's end).
NOISE_KEYS = ("counters", "latency", "shells")


def http_negotiate(plugin: str) -> dict[str, t.Any]:
    """A default Windows host as Ansible first reaches it: HTTP on 5985, NTLM, and message
    encryption required (so nothing of the play crosses the wire in clear text)."""
    if plugin == "winrm":
        return {
            "ansible_connection": "winops.remoting.winrm",
            "ansible_port": 5985,
            "ansible_winrm_scheme": "http",
            "ansible_winrm_transport": "ntlm",
            "ansible_winrm_message_encryption": "always",
        }
    return {
        "ansible_connection": "winops.remoting.psrp",
        "ansible_port": 5985,
        "ansible_psrp_protocol": "http",
        "ansible_psrp_auth": "ntlm",
        "ansible_psrp_message_encryption": "always",
    }


def https_validated(plugin: str, ca_path: Path | str) -> dict[str, t.Any]:
    """HTTPS on 5986 with the server certificate validated against `ca_path`."""
    if plugin == "winrm":
        return {
            "ansible_connection": "winops.remoting.winrm",
            "ansible_port": 5986,
            "ansible_winrm_scheme": "https",
            "ansible_winrm_transport": "ntlm",
            "ansible_winrm_server_cert_validation": "validate",
            "ansible_winrm_ca_trust_path": str(ca_path),
        }
    return {
        "ansible_connection": "winops.remoting.psrp",
        "ansible_port": 5986,
        "ansible_psrp_protocol": "https",
        "ansible_psrp_auth": "ntlm",
        "ansible_psrp_cert_validation": "validate",
        "ansible_psrp_ca_cert": str(ca_path),
    }


def configuration(state: dict[str, t.Any]) -> dict[str, t.Any]:
    """A host's state without its request and latency tallies: what a playbook run may change."""
    return {key: value for key, value in state.items() if key not in NOISE_KEYS}


@dataclasses.dataclass
class PlaybookTargets:
    """The session and a way to run a shipped playbook against one of its hosts."""

    session: WinhostSession
    work: Path

    def name(self, purpose: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[purpose])

    def address(self, purpose: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{FIRST + OFFSETS[purpose]}"

    def state(self, purpose: str) -> dict[str, t.Any]:
        return self.session.state(self.name(purpose))

    def ca_dir(self, purpose: str) -> Path:
        """Where the playbooks save this host's issuer (winops_ca_dir) on the controller."""
        return self.work / purpose / "winrm-ca"

    def issuer_path(self, purpose: str) -> Path:
        return self.ca_dir(purpose) / f"{self.name(purpose)}.pem"

    def run(
        self,
        playbook: str,
        purpose: str,
        host_vars: dict[str, t.Any],
        *,
        label: str,
        check: bool = False,
        for_all_hosts: bool = False,
    ) -> PlaybookRun:
        """Run `playbook` (FQCN of a shipped playbook, or a path) against the one host with
        these variables on top of the session's inventory: as the host's variables, or with
        `for_all_hosts` as group `all`'s, as a Windows-only inventory often has them (the
        controller's implicit localhost then sees them too)."""
        work = self.work / purpose / label
        work.mkdir(parents=True, exist_ok=True)
        if for_all_hosts:
            layout = {"all": {"vars": host_vars}}
        else:
            layout = {"all": {"hosts": {self.name(purpose): host_vars}}}
        overlay = write_private_yaml(work / "overlay.yml", layout)
        return run_playbook(
            playbook,
            [self.session.inventory, overlay],
            work,
            extra_vars={
                "winops_hosts": self.name(purpose),
                "target": self.name(purpose),
                "winops_ca_dir": str(self.ca_dir(purpose)),
            },
            check=check,
        )
