"""The hosts of the brownfield matrix: one winhost per case, each built from the brownfield
profile it starts from (tests/winhost/winhost/profiles.py), and how a user reaches it first.

One winhost session of its own on the `brownfield` block of address_blocks.py (127.0.10.120-149
unless BROWNFIELD_FIRST moves it; OUTSIDE_ADDRESS included). Host FIRST + CASES index is win<N>.

The matrix (parametrize ids are the case names): every starting point runs the whole
setup -> harden -> verify -> second run through one of our connection plugins (FULL), and the
starting points where the plugins' paths differ most (a certificate the play does not validate
yet, one it validates from the start, a listener Hostname that is the FQDN) run
setup -> harden -> verify through the other plugin too (SUBSET), without the second run: the
rerun's changed=0 is decided by the roles, not by the plugin, and each playbook run costs
10-20 s of wall time on CI's two cores.
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from playbook_hosts import http_negotiate, https_validated

from winhost import profiles
from winhost.pytest_plugin import WinhostSession

BLOCK = block("brownfield")
FIRST = BLOCK.first
# One playbook run takes 10-40 s; a run that hangs fails its case after this many seconds
# instead of holding the suite to pytest's timeout.
RUN_TIMEOUT = 240


@dataclasses.dataclass(frozen=True)
class Case:
    """One starting point through one plugin; `full` adds the second run (changed=0)."""

    name: str
    profile: str
    plugin: str
    full: bool


CASES = (
    Case("stock-psrp", "stock", "psrp", full=True),
    Case("cra-winrm", "cra", "winrm", full=True),
    Case("cra-psrp", "cra", "psrp", full=False),
    Case("cra_credssp-psrp", "cra_credssp", "psrp", full=True),
    Case("quickconfig_https-winrm", "quickconfig_https", "winrm", full=True),
    Case("quickconfig_https-psrp", "quickconfig_https", "psrp", full=False),
    Case("gpo-psrp", "gpo", "psrp", full=True),
    Case("credssp_local_gpo-winrm", "credssp_local_gpo", "winrm", full=True),
    Case("bootstrap-psrp", "bootstrap", "psrp", full=True),
    Case("bootstrap-winrm", "bootstrap", "winrm", full=False),
    # Each starting point through the other plugin too (setup -> harden -> verify, no rerun).
    Case("stock-winrm", "stock", "winrm", full=False),
    Case("cra_credssp-winrm", "cra_credssp", "winrm", full=False),
    Case("gpo-winrm", "gpo", "winrm", full=False),
    Case("credssp_local_gpo-psrp", "credssp_local_gpo", "psrp", full=False),
)
assert len(CASES) < BLOCK.size - 1
CONTROLLER_ADDRESS = "127.0.0.1"
# A client outside the firewall scope: another loopback address of this suite's block.
OUTSIDE_ADDRESS = BLOCK.address(BLOCK.size - 1)
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}


def https_unvalidated(plugin: str) -> dict[str, t.Any]:
    """HTTPS on 5986 without certificate validation: how ConfigureRemotingForAnsible.ps1's
    self-signed listener is used (Ansible's WinRM guide: server_cert_validation=ignore)."""
    if plugin == "winrm":
        return {
            "ansible_connection": "winops.remoting.winrm",
            "ansible_port": 5986,
            "ansible_winrm_scheme": "https",
            "ansible_winrm_transport": "ntlm",
            "ansible_winrm_server_cert_validation": "ignore",
        }
    return {
        "ansible_connection": "winops.remoting.psrp",
        "ansible_port": 5986,
        "ansible_psrp_protocol": "https",
        "ansible_psrp_auth": "ntlm",
        "ansible_psrp_cert_validation": "ignore",
    }


@dataclasses.dataclass
class BrownfieldTargets:
    """The session and a way to run a shipped playbook against one case's host."""

    session: WinhostSession
    work: Path

    def index(self, case: Case) -> int:
        return FIRST + CASES.index(case)

    def name(self, case: Case) -> str:
        return profiles.host_name(self.index(case))

    def address(self, case: Case) -> str:
        return f"{profiles.ADDRESS_PREFIX}{self.index(case)}"

    def state(self, case: Case) -> dict[str, t.Any]:
        return self.session.state(self.name(case))

    def issuer_path(self, case: Case) -> Path:
        """Where the playbooks keep this host's issuer on the controller (winops_ca_dir)."""
        return self.work / case.name / "winrm-ca" / f"{self.name(case)}.pem"

    def first_connection(self, case: Case) -> dict[str, t.Any]:
        """How a user reaches the host as the tool left it."""
        if case.profile in ("cra", "cra_credssp"):
            return https_unvalidated(case.plugin)
        if case.profile == "bootstrap":
            # The script removed HTTP; the user copied its issuer PEM to the controller.
            return https_validated(case.plugin, self.issuer_path(case))
        return http_negotiate(case.plugin)

    def run(
        self, playbook: str, case: Case, host_vars: dict[str, t.Any], *, label: str
    ) -> PlaybookRun:
        work = self.work / case.name / label
        work.mkdir(parents=True, exist_ok=True)
        overlay = write_private_yaml(
            work / "overlay.yml", {"all": {"hosts": {self.name(case): host_vars}}}
        )
        return run_playbook(
            playbook,
            [self.session.inventory, overlay],
            work,
            extra_vars={
                "winops_hosts": self.name(case),
                "target": self.name(case),
                "winops_ca_dir": str(self.issuer_path(case).parent),
            },
            timeout=RUN_TIMEOUT,
        )
