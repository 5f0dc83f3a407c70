"""Fixtures of the end-to-end tests: winhost targets, test payloads, playbook runs.

The end-to-end tests start their own winhost session (hosts win21-win23 on 127.0.10.21-23, the
`e2e` block of address_blocks.py) with the core's `start_session` (the same code as the shared
`winhost` fixture), so the configuration they change and the faults they arm never meet other tests' hosts. Each playbook
run uses that session's inventory as its first source plus an overlay that picks the plugin and
combination, so credentials are never copied out of winhost's own file.
"""

from __future__ import annotations

import contextlib
import time
import typing as t
from pathlib import Path

import pytest
from address_blocks import block
from ansible_run import PLAYBOOK_DIR, PlaybookRun, run_playbook, write_overlay
from connection_matrix import Combination, Target, connection_vars, read_password, read_targets
from payloads import Payload, random_file

from winhost import pki


@pytest.fixture(scope="session")
def payload_10mb(tmp_path_factory: pytest.TempPathFactory) -> Payload:
    return random_file(tmp_path_factory.mktemp("payload") / "random-10mb.bin", 10 * 1024 * 1024)


class EndToEnd:
    """winhost plus the helpers each end-to-end test needs.

    Hosts: the first serves the matrix (Basic turned on through WS-Management, as
    `winrm set winrm/config/service/auth @{Basic="true"}` does; CredSSP and Certificate are on in
    the `default` profile), the second the negative cases (the `default` profile untouched), the
    last the fault cases.
    """

    def __init__(self, winhost: t.Any, scratch: Path) -> None:
        self.winhost = winhost
        self.inventory = Path(winhost.inventory)
        self.targets = read_targets(self.inventory)
        self.log = _RUN_LOG
        names = sorted(self.targets)
        self.matrix_target = self.targets[names[0]]
        self.negative_target = self.targets[names[1 % len(names)]]
        self.fault_target = self.targets[names[-1]]
        self.enable_service_auth(self.matrix_target, Basic=True)
        small = random_file(scratch / "small.bin", 200 * 1024)
        self.fault_extra_vars = {
            "e2e_target": self.fault_target.name,
            "small_file": str(small.path),
            "small_sha1": small.sha1,
        }

    def host_vars(
        self, plugin: str, combo: Combination, target: Target, ca_bundle: str | None = None
    ) -> dict[str, t.Any]:
        return connection_vars(plugin, combo, target, ca_bundle=ca_bundle)

    def run(
        self,
        playbook: str,
        hosts: dict[str, dict[str, t.Any]],
        work_dir: Path,
        extra_vars: dict[str, t.Any] | None = None,
        forks: int = 5,
    ) -> PlaybookRun:
        overlay = write_overlay(work_dir / "overlay.yml", hosts)
        return run_playbook(
            PLAYBOOK_DIR / playbook,
            [self.inventory, overlay],
            work_dir,
            extra_vars=extra_vars,
            forks=forks,
        )

    @contextlib.contextmanager
    def wsman(self, target: Target) -> t.Iterator[t.Any]:
        """A pypsrp WSMan client for the host's configuration, as an administrator would use
        from another machine: NTLM over HTTPS, the host's account."""
        from pypsrp.wsman import WSMan

        client = WSMan(
            target.address,
            port=5986,
            ssl=True,
            auth="ntlm",
            username=target.user,
            password=read_password(self.inventory, target.name),
            cert_validation=target.ca_bundle,
        )
        try:
            yield client
        finally:
            client.close()

    def winrm_set(self, target: Target, path: str, element: str, **values: str) -> None:
        """`winrm set winrm/<path> @{Name="value"; ...}`: a WS-Management Put of ``element``
        (Config, Service, Auth, ...) holding ``values``, as `winrm set` sends it."""
        import xml.etree.ElementTree as ET

        namespace = f"http://schemas.microsoft.com/wbem/wsman/1/{path}"
        node = ET.Element(f"{{{namespace}}}{element}")
        for name, value in values.items():
            ET.SubElement(node, f"{{{namespace}}}{name}").text = value
        with self.wsman(target) as client:
            client.put(namespace, node)

    def enable_service_auth(self, target: Target, **flags: bool) -> None:
        """Turn WinRM service authentication methods on or off (winrm/config/service/auth)."""
        values = {name: str(value).lower() for name, value in flags.items()}
        self.winrm_set(target, "config/service/auth", "Auth", **values)

    # -- what winhost saw ------------------------------------------------------------------
    def commands_run(self, host: str) -> int:
        """WinRS commands plus PSRP pipelines that have run on `host` so far: started and
        done anything but wait for their first input. A command our winrm plugin started
        ahead for a next task that never came has run nothing (docs/sessions.md)."""
        state = self.winhost.state(host)
        counters = state.get("counters")
        if not isinstance(counters, dict) or "commands_run" not in counters:
            raise AssertionError(
                "winhost's state has no counters.commands_run, so 'a command is never "
                f"run twice' cannot be checked; state keys: {sorted(state)}"
            )
        return int(counters["commands_run"])

    def open_shells(self, host: str) -> int:
        """WinRS shells plus runspace pools open on `host` now."""
        return int(self.winhost.state(host)["counters"]["open_shells"])

    def paid(self, host: str, operation: str) -> int:
        """How often `host` charged a modelled operation (logon, shell_create, pool_open...):
        winhost counts them whatever its latency profile (tests/winhost/winhost/latency.py)."""
        paid = self.winhost.state(host)["latency"]["paid"]
        return int(paid.get(operation, {}).get("count", 0))

    def open_shells_at_most(self, host: str, most: int, limit: float = 20) -> int:
        """The shells and pools open on `host` once no more than `most` are (or after `limit`
        seconds): a kept session's holder closes its own just after its run (docs/sessions.md:
        within 15 s of the run's end)."""
        deadline = time.monotonic() + limit
        while True:
            open_now = self.open_shells(host)
            if open_now <= most or time.monotonic() > deadline:
                return open_now
            time.sleep(0.2)

    def running_commands_at_most(self, host: str, most: int, limit: float = 10) -> int:
        """The commands and pipelines running on `host` once no more than `most` are (or after
        `limit` seconds): a stopped one, or one whose shell was deleted, ends within moments."""
        deadline = time.monotonic() + limit
        while True:
            running = int(self.winhost.state(host)["counters"]["running_commands"])
            if running <= most or time.monotonic() > deadline:
                return running
            time.sleep(0.2)

    def open_shells_when_quiet(self, host: str) -> int:
        """The shells and pools open on `host` once earlier tests' are closed: under load one
        may still be open when the next test starts, and a count taken then would be one too
        many for that test's "before"."""
        return self.open_shells_at_most(host, 0)

    def armed_faults(self, host: str) -> list[t.Any]:
        """Faults still armed on `host` (counted ones not yet hit)."""
        return list(self.winhost.state(host).get("faults") or [])

    def commands_of_clean_run(
        self, playbook: str, hostvars: dict[str, t.Any], work_dir: Path
    ) -> int:
        """How many commands `playbook` starts on the fault host when nothing goes wrong."""
        host = self.fault_target.name
        before = self.commands_run(host)
        run = self.run(playbook, {host: hostvars}, work_dir, self.fault_extra_vars)
        assert run.returncode == 0, f"the clean run failed\n{run.describe()}"
        return self.commands_run(host) - before


@pytest.fixture(scope="session")
def wrong_ca_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA certificate that did not issue winhost's listener certificates."""
    path = tmp_path_factory.mktemp("wrong-ca") / "wrong-ca.pem"
    pki.write_cert(path, pki.CertificateAuthority.create("winops e2e unrelated CA").cert)
    return path


BLOCK = block("e2e")
E2E_HOSTS = 3
assert E2E_HOSTS <= BLOCK.size


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[EndToEnd]:
    from winhost.pytest_plugin import start_session, stop_session

    session = start_session(
        tmp_path_factory.mktemp("winhost-e2e"), E2E_HOSTS, "default", first=BLOCK.first
    )
    try:
        yield EndToEnd(session, tmp_path_factory.mktemp("e2e"))
    finally:
        stop_session(session)


class RunLog:
    """Outcome and duration of every end-to-end run, printed per section at the end."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[str, str, str, float, str]]] = {}
        self.summaries: dict[str, str] = {}  # a section's own closing line

    def record(
        self, section: str, plugin: str, case: str, outcome: str, *, seconds: float, note: str
    ) -> None:
        self.rows.setdefault(section, []).append((plugin, case, outcome, seconds, note))


_RUN_LOG = RunLog()


def pytest_terminal_summary(terminalreporter: t.Any) -> None:
    write = terminalreporter.write_line
    for section, rows in _RUN_LOG.rows.items():
        write("")
        write(f"{section}:")
        total = 0.0
        for plugin, case, outcome, seconds, note in rows:
            total += seconds
            summary = " ".join(note.split())[:150]
            write(f"  {plugin:24} {case:24} {outcome:26} {seconds:6.1f}s  {summary}")
        if section in _RUN_LOG.summaries:
            # the section's own figures (its cases ran at once, so their times do not add up)
            write(f"  {len(rows)} cases; {_RUN_LOG.summaries[section]}")
        else:
            write(f"  {len(rows)} cases, {total:.1f}s in ansible-playbook")


@pytest.fixture(scope="session")
def run_log() -> RunLog:
    """The table printed at the end, for tests that do not need the e2e hosts."""
    return _RUN_LOG
