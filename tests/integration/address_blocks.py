"""Which 127.0.10.N addresses each test suite's winhost hosts live on: the one registry.

winhost host N listens on 127.0.10.N (winhost.profiles.ADDRESS_PREFIX), and `start` refuses an
address that already accepts connections. `make integration` runs the suites in two pytest
processes at once, and in each a session-scoped fixture keeps its hosts until the process ends:
two suites whose blocks overlap fail as soon as the second one starts, in either process (the
latency test once started on 127.0.10.240 while the guards suite still held 240-247). So every suite and every test that
starts or names a host of its own takes its first index from here, and
tests/unit/test_address_blocks.py checks that no two blocks overlap, that each fits 1..254, and
that no test under tests/integration picks an index of its own.

A block's environment variable, where it has one, moves it (to run a second session of that
suite beside the first); the registry checks the moved block still fits 1..254, nothing more.
"""

from __future__ import annotations

import dataclasses
import os

ADDRESS_PREFIX = "127.0.10."  # winhost.profiles.ADDRESS_PREFIX
LOWEST_INDEX = 1
HIGHEST_INDEX = 254  # 127.0.10.255 is the /24's broadcast address in winhost's LocalSubnet model


@dataclasses.dataclass(frozen=True)
class AddressBlock:
    """127.0.10.<first>..<first + size - 1>, owned by one suite (or one test module)."""

    name: str
    default_first: int
    size: int
    reason: str
    env: str | None = None

    @property
    def default_last(self) -> int:
        return self.default_first + self.size - 1

    @property
    def first(self) -> int:
        """The first index, moved by the block's environment variable if that is set."""
        if self.env is None or not os.environ.get(self.env):
            return self.default_first
        highest = HIGHEST_INDEX - self.size + 1
        raw = os.environ[self.env]
        try:
            first = int(raw)
        except ValueError:
            first = 0
        if not LOWEST_INDEX <= first <= highest:
            raise ValueError(
                f"{self.env}={raw!r} moves the {self.name} block ({self.size} addresses) out "
                f"of 127.0.10.{LOWEST_INDEX}-{HIGHEST_INDEX}; allowed: {LOWEST_INDEX}..{highest}"
            )
        return first

    def index(self, offset: int) -> int:
        """Host index `offset` places into the block; an offset outside it is an error."""
        if not 0 <= offset < self.size:
            raise ValueError(
                f"offset {offset} is outside the {self.name} block of {self.size} addresses; "
                f"allowed: 0..{self.size - 1} (grow the block in address_blocks.py)"
            )
        return self.first + offset

    def address(self, offset: int) -> str:
        return f"{ADDRESS_PREFIX}{self.index(offset)}"


BLOCKS: dict[str, AddressBlock] = {
    block.name: block
    for block in (
        AddressBlock(
            "winhost_fixture",
            1,
            3,
            "the session-scoped `winhost` fixture (winhost.pytest_plugin, WINHOST_HOSTS hosts "
            "from WINHOST_FIRST) that the core, exec and shells tests share",
            env="WINHOST_FIRST",
        ),
        AddressBlock(
            "fault_matrix_more",
            4,
            12,
            "the fault matrix's cells beyond the fault_matrix block "
            "(tests/integration/e2e/test_fault_matrix.py), half per plugin",
            env="FAULT_MATRIX_MORE_FIRST",
        ),
        AddressBlock(
            "e2e",
            21,
            3,
            "the end-to-end session (tests/integration/e2e): connection matrix, faults, "
            "negative cases",
            env="E2E_FIRST",
        ),
        AddressBlock(
            "e2e_persist_off",
            161,
            3,
            "`make integration`'s pass with session_persist off: the e2e block moved here "
            "(E2E_FIRST) so that it runs beside the other shard's e2e session",
        ),
        AddressBlock(
            "fault_matrix",
            24,
            36,
            "the fault matrix (tests/integration/e2e/test_fault_matrix.py): one fault per "
            "host, the winrm cases on the first half, the psrp cases on the second",
            env="FAULT_MATRIX_FIRST",
        ),
        AddressBlock(
            "playbooks",
            60,
            20,
            "the shipped playbooks (tests/integration/playbooks): one fresh host per test plus "
            "a client address outside the firewall scope at first + 18",
            env="PLAYBOOKS_FIRST",
        ),
        AddressBlock(
            "molecule",
            80,
            20,
            "the Molecule scenarios (extensions/molecule/*/winhost.yml winhost_first), run by "
            "`make molecule` after the integration stage",
        ),
        AddressBlock(
            "certauth",
            100,
            5,
            "certificate authentication end to end (tests/integration/certauth), one host per case",
            env="CERTAUTH_FIRST",
        ),
        AddressBlock(
            "tls",
            110,
            10,
            "the TLS tests (tests/integration/tls): legacy hosts at first..+2 (also the "
            "server-less SCHANNEL model), the cipher-suite hosts at first + 3..",
            env="TLS_FIRST",
        ),
        AddressBlock(
            "brownfield",
            120,
            30,
            "the brownfield matrix (tests/integration/brownfield): one host per case, and the "
            "last address as a client outside the firewall scope",
            env="BROWNFIELD_FIRST",
        ),
        AddressBlock(
            "doctor",
            150,
            11,
            "the doctor's broken set-ups (tests/integration/doctor) at first..+6, its live "
            "Kerberos hosts at first + 9 and + 10",
            env="DOCTOR_FIRST",
        ),
        AddressBlock(
            "roles",
            185,
            16,
            "the module and role tests (tests/integration/roles): one host per module at "
            "first..+14, HostView.configure's own host at first + 15; the LocalSubnet test "
            "connects from first + 11 (an address of the block, not a host's)",
            env="ROLES_FIRST",
        ),
        AddressBlock(
            "listener_local_scope",
            170,
            3,
            "the HTTPS rule scoped to the listeners' own addresses "
            "(playbooks/test_listener_local_scope.py), one stock host per case",
            env="LOCAL_SCOPE_FIRST",
        ),
        AddressBlock(
            "nat",
            173,
            1,
            "setup through a port forward, as behind NAT (playbooks/test_setup_through_nat.py)",
        ),
        AddressBlock(
            "kerberos",
            201,
            3,
            "the Kerberos hosts served in-process with the KDC (tests/integration/kerberos)",
            env="KERBEROS_FIRST",
        ),
        AddressBlock(
            "kerberos_persist_off",
            204,
            3,
            "`make integration`'s pass with session_persist off: the kerberos block moved "
            "here (KERBEROS_FIRST) so that it runs beside the other shard's kerberos suite",
        ),
        AddressBlock(
            "core_faults_cli",
            210,
            1,
            "`python -m winhost start` from the command line (winhost/test_core_faults.py)",
        ),
        AddressBlock(
            "core_auth_open",
            211,
            1,
            "the `open` profile host of winhost/test_core_auth.py (Basic and unencrypted on)",
        ),
        AddressBlock(
            "core_network",
            220,
            1,
            "a host served in process for the firewall and IPv4Filter tests "
            "(winhost/test_core_network.py)",
        ),
        AddressBlock(
            "core_clock",
            230,
            1,
            "a host with a shifted clock (winhost/test_core_clock.py)",
        ),
        AddressBlock(
            "core_group_policy",
            231,
            1,
            "a host model that boots and shuts down at once (winhost/test_core_grouppolicy.py)",
        ),
        AddressBlock(
            "core_latency",
            232,
            1,
            "a host with Windows' latency profile (winhost/test_core_latency.py)",
        ),
        AddressBlock(
            "core_builtin_administrator",
            233,
            1,
            "a host model that never listens, with a renamed built-in Administrator "
            "(winhost/test_core_builtin_administrator.py)",
        ),
        AddressBlock(
            "guards",
            240,
            10,
            "the guards that keep roles from cutting the play off (tests/integration/guards), "
            "a session-scoped fixture alive until the end of the run",
            env="GUARDS_FIRST",
        ),
        AddressBlock(
            "renewal",
            250,
            4,
            "certificate renewal a year later (playbooks/test_certificate_renewal.py), one "
            "host per (plugin, playbook)",
            env="RENEWAL_FIRST",
        ),
    )
}


def block(name: str) -> AddressBlock:
    """The block registered as `name`."""
    try:
        return BLOCKS[name]
    except KeyError:
        raise KeyError(
            f"no address block {name!r} in address_blocks.py; registered: {', '.join(BLOCKS)}"
        ) from None


if __name__ == "__main__":
    # `python address_blocks.py NAME` prints the block's first index, for the Makefile.
    import sys

    print(block(sys.argv[1]).first)
