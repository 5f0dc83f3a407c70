"""The hosts of the brownfield matrix: one winhost per case, each built from the brownfield
profile it starts from (tests/winhost/winhost/profiles.py), and how a user reaches it first.

One winhost session of its own on the `brownfield` block of address_blocks.py (127.0.10.120-149
unless BROWNFIELD_FIRST moves it; OUTSIDE_ADDRESS included). Host FIRST + CASES index is win<N>.

The matrix (parametrize ids are the case names): every starting point runs the whole
setup -> harden -> verify -> second run through one of our connection plugins (FULL), and the
starting points where the plugins' paths differ most (a certificate the play does not validate
yet, one it validates from the start, a listener Hostname that is the FQDN) run
setup -> harden -> verify through the other plugin too (SUBSET), without the second run: the
rerun's changed=0 is decided by the roles, not by the plugin.

Each step is one ansible-playbook run over all the cases' hosts (run_matrix), not one per case:
a run costs its start (a few seconds of CPU) and harden's 20 s wait for the WinRM restart, which
the hosts then pay together (621 s one run per case and step, 261 s batched, same machine).
"""

from __future__ import annotations

import dataclasses
import typing as t
from pathlib import Path

from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from playbook_checks import CONNECT_PLAYBOOK, served_certificate, tls_handshake_from
from playbook_hosts import http_negotiate, https_validated

from winhost import profiles
from winhost.pytest_plugin import WinhostSession

BLOCK = block("brownfield")
FIRST = BLOCK.first
# A playbook run over all the cases' hosts takes 1-3 minutes on two busy cores; a run that
# hangs fails the matrix after this many seconds instead of holding the suite to pytest's
# timeout (MATRIX_TIMEOUT covers the whole matrix, which the first case's set-up runs).
RUN_TIMEOUT = 600
MATRIX_TIMEOUT = 6 * RUN_TIMEOUT


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
    Case("guide_http-winrm", "guide_http", "winrm", full=True),
    Case("gpo-psrp", "gpo", "psrp", full=True),
    Case("credssp_local_gpo-winrm", "credssp_local_gpo", "winrm", full=True),
    Case("bootstrap-psrp", "bootstrap", "psrp", full=True),
    Case("bootstrap-winrm", "bootstrap", "winrm", full=False),
    # Each starting point through the other plugin too (setup -> harden -> verify, no rerun).
    Case("stock-winrm", "stock", "winrm", full=False),
    Case("cra_credssp-winrm", "cra_credssp", "winrm", full=False),
    Case("gpo-winrm", "gpo", "winrm", full=False),
    Case("credssp_local_gpo-psrp", "credssp_local_gpo", "psrp", full=False),
    Case("guide_http-psrp", "guide_http", "psrp", full=False),
)
assert len(CASES) < BLOCK.size - 1
CONTROLLER_ADDRESS = "127.0.0.1"
# A client outside the firewall scope: another loopback address of this suite's block.
OUTSIDE_ADDRESS = BLOCK.address(BLOCK.size - 1)


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
    """The session and a way to run a shipped playbook against several cases' hosts at once."""

    session: WinhostSession
    work: Path

    def index(self, case: Case) -> int:
        return BLOCK.index(CASES.index(case))

    def name(self, case: Case) -> str:
        return profiles.host_name(self.index(case))

    def address(self, case: Case) -> str:
        return f"{profiles.ADDRESS_PREFIX}{self.index(case)}"

    def state(self, case: Case) -> dict[str, t.Any]:
        return self.session.state(self.name(case))

    @property
    def ca_dir(self) -> Path:
        """Where the playbooks keep the issuers on the controller (winops_ca_dir): one file per
        host, named after it, so the cases of one run share the directory."""
        return self.work / "winrm-ca"

    def issuer_path(self, case: Case) -> Path:
        return self.ca_dir / f"{self.name(case)}.pem"

    def first_connection(self, case: Case) -> dict[str, t.Any]:
        """How a user reaches the host as the tool left it."""
        if case.profile in ("cra", "cra_credssp"):
            return https_unvalidated(case.plugin)
        if case.profile == "bootstrap":
            # The script removed HTTP; the user copied its issuer PEM to the controller.
            return https_validated(case.plugin, self.issuer_path(case))
        return http_negotiate(case.plugin)

    def run(
        self, playbook: str, host_vars: dict[Case, dict[str, t.Any]], *, label: str
    ) -> PlaybookRun:
        """One ansible-playbook run of `playbook` over the hosts of the cases in `host_vars`,
        each with its own connection variables, all of them in parallel (a fork per host):
        a run's cost is mostly its start and the hosts' waits (harden waits 20 s for WinRM's
        restart), which the hosts then share instead of paying them one case after another.
        Each case's result is read back per host (PlaybookRun.tasks/stats)."""
        work = self.work / label
        work.mkdir(parents=True, exist_ok=True)
        hosts = ",".join(self.name(case) for case in host_vars)
        overlay = write_private_yaml(
            work / "overlay.yml",
            {"all": {"hosts": {self.name(case): v for case, v in host_vars.items()}}},
        )
        return run_playbook(
            playbook,
            [self.session.inventory, overlay],
            work,
            extra_vars={"winops_hosts": hosts, "target": hosts, "winops_ca_dir": str(self.ca_dir)},
            forks=len(host_vars),
            timeout=RUN_TIMEOUT,
        )


@dataclasses.dataclass(frozen=True)
class EndState:
    """What the end-state checks read, taken right after the runs they follow (the next runs
    of the matrix change the host again): the host's state and what clients see of it."""

    state: dict[str, t.Any]
    served_thumbprint: str | None  # what the HTTPS listener serves, validated against the issuer
    served_error: str | None  # why it did not validate, if it did not
    from_controller: str | None  # None: a TLS handshake from CONTROLLER_ADDRESS completes
    from_outside: str | None  # None: one from OUTSIDE_ADDRESS completes (it must not)


def observe_end_state(brownfield: BrownfieldTargets, case: Case) -> EndState:
    address = brownfield.address(case)
    try:
        served: str | None = served_certificate(address, 5986, brownfield.issuer_path(case))[0]
        served_error = None
    except OSError as err:  # ssl.SSLCertVerificationError, refused, timeouts
        served, served_error = None, f"{type(err).__name__}: {err}"
    return EndState(
        state=brownfield.state(case),
        served_thumbprint=served,
        served_error=served_error,
        from_controller=tls_handshake_from(CONTROLLER_ADDRESS, address, 5986),
        from_outside=tls_handshake_from(OUTSIDE_ADDRESS, address, 5986),
    )


def stayed_connected(run: PlaybookRun, host: str) -> bool:
    """The run reached `host` and no task of it failed there or lost it (other hosts of the
    same run may have failed)."""
    stats = run.stats(host)
    lost = any(r.result.get("unreachable") for r in run.tasks(host))
    return bool(stats) and not stats.get("failures") and not stats.get("unreachable") and not lost


@dataclasses.dataclass
class CaseRuns:
    """One case's share of the matrix: its host's state before, the runs that reached it (by
    label), and its end state after verify and, for full cases, after the second run."""

    before: dict[str, t.Any]
    runs: dict[str, PlaybookRun] = dataclasses.field(default_factory=dict)
    end_states: list[EndState] = dataclasses.field(default_factory=list)

    def run(self, label: str) -> PlaybookRun:
        if label not in self.runs:
            raise AssertionError(
                f"the {label!r} run did not include this host: an earlier run failed on it"
            )
        return self.runs[label]


SETUP = "winops.remoting.setup"
HARDEN = "winops.remoting.harden"
VERIFY = "winops.remoting.verify"
SCOPE = {"winrm_listener_firewall_remote_addresses": [CONTROLLER_ADDRESS]}


def run_matrix(brownfield: BrownfieldTargets) -> dict[Case, CaseRuns]:
    """Every case through as-found -> setup -> harden -> verify (-> setup and harden again for
    full cases), one ansible-playbook run per step over all the cases' hosts. A case whose
    host a step failed on or lost leaves the later steps (as its own test would stop there);
    the tests assert on each case's runs and end states."""
    outcome = {case: CaseRuns(before=brownfield.state(case)) for case in CASES}
    brownfield.ca_dir.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        if case.profile == "bootstrap":
            # What the user does after the script: copy its issuer PEM to the controller.
            host = brownfield.name(case)
            on_host = brownfield.session.state_dir / host / "C" / profiles.BOOTSTRAP_ISSUER_PATH
            brownfield.issuer_path(case).write_bytes(on_host.read_bytes())

    def validated(case: Case) -> dict[str, t.Any]:
        return {**https_validated(case.plugin, brownfield.issuer_path(case)), **SCOPE}

    def step(
        playbook: str, label: str, cases: list[Case], host_vars: t.Callable[[Case], dict]
    ) -> list[Case]:
        if not cases:
            return []
        run = brownfield.run(playbook, {case: host_vars(case) for case in cases}, label=label)
        for case in cases:
            outcome[case].runs[label] = run
        return [case for case in cases if stayed_connected(run, brownfield.name(case))]

    reached = step(str(CONNECT_PLAYBOOK), "as-found", list(CASES), brownfield.first_connection)
    set_up = step(SETUP, "setup", reached, lambda c: {**brownfield.first_connection(c), **SCOPE})
    set_up = [case for case in set_up if brownfield.issuer_path(case).is_file()]
    hardened = step(HARDEN, "harden", set_up, validated)
    verified = step(VERIFY, "verify", hardened, validated)
    for case in verified:
        outcome[case].end_states.append(observe_end_state(brownfield, case))
    full = [case for case in verified if case.full]
    again = step(SETUP, "setup-again", full, validated)
    again = step(HARDEN, "harden-again", again, validated)
    for case in again:
        outcome[case].end_states.append(observe_end_state(brownfield, case))
    return outcome
