"""winhost targets for the guards that keep a role from cutting the play off (issue 9 defects
2 and 12, and the address filters of item 13).

One winhost session of its own: hosts FIRST + OFFSETS[case] on the `guards` block of
address_blocks.py (127.0.10.240-249 unless GUARDS_FIRST moves it), `open` profile (Basic and AllowUnencrypted on, certificate authentication
mapped for the test client certificate, CredSSP on), so that a play can connect with the
default transport (Basic) and the changes these tests make reach no other test's hosts.
Playbooks run through the real ansible-playbook (tests/integration/e2e/ansible_run.py) with
winhost's inventory plus an overlay of connection variables, so passwords stay in winhost's
own 0600 inventory.
"""

from __future__ import annotations

import dataclasses
import sys
import typing as t
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from address_blocks import block
from ansible_run import PlaybookRun, run_playbook, write_overlay

from winhost import api, profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

BLOCK = block("guards")
FIRST = BLOCK.first
OFFSETS = {
    "basic_ours": 0,
    "basic_builtin": 1,
    "ssl_cert": 2,
    "credssp": 3,
    "filter_winrm": 4,
    "filter_psrp": 5,
    "filter_builtin_psrp": 6,
    "credssp_included": 7,
    "cbt_winrm": 8,
    "cbt_psrp": 9,
}
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS))) and len(OFFSETS) <= BLOCK.size
# The case whose connecting account is the built-in Administrator (RID 500); its other tests
# (Basic with the builtin plugin) do not depend on the account's RID.
BUILTIN_ADMINISTRATOR_CASE = "basic_builtin"


@dataclasses.dataclass
class GuardTargets:
    session: WinhostSession
    work: Path

    def name(self, case: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[case])

    def address(self, case: str) -> str:
        return f"{profiles.ADDRESS_PREFIX}{FIRST + OFFSETS[case]}"

    def state(self, case: str) -> dict[str, t.Any]:
        return self.session.state(self.name(case))

    def host_vars(self, case: str) -> dict[str, t.Any]:
        return self.session.host_vars(self.name(case))

    def play(self, case: str, body: str, connection: dict[str, t.Any], label: str) -> PlaybookRun:
        """Run `body` (YAML text of one or more plays for `hosts: all`) against the case's host
        alone, with `connection` as its host variables on top of winhost's."""
        work = self.work / case / label
        work.mkdir(parents=True, exist_ok=True)
        playbook = work / "play.yml"
        playbook.write_text(body.replace("hosts: all", f"hosts: {self.name(case)}"), "utf-8")
        overlay = write_overlay(work / "connection.yml", {self.name(case): connection})
        return run_playbook(playbook, [Path(self.session.inventory), overlay], work)


@pytest.fixture(scope="session")
def guards(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[GuardTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-guards")
    states = profiles.create_state_dir(state_dir, len(OFFSETS), "open", first=FIRST)
    # On one host the account the plays connect as is the built-in Administrator, renamed (a
    # common hardening step): RID 500, which UAC's remote restrictions treat apart.
    builtin = next(s for s in states if s.index == FIRST + OFFSETS[BUILTIN_ADMINISTRATOR_CASE])
    builtin.accounts = [
        dataclasses.replace(a, rid=api.BUILTIN_ADMINISTRATOR_RID) if a.name == profiles.ADMIN else a
        for a in builtin.accounts
    ]
    builtin.save()
    session = start_session(state_dir, len(OFFSETS), "open", first=FIRST)
    try:
        yield GuardTargets(session, tmp_path_factory.mktemp("guard-plays"))
    finally:
        stop_session(session)
