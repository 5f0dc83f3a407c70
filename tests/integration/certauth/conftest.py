"""winhost targets for certificate authentication end to end (issue 5).

One winhost session of its own: hosts FIRST + OFFSETS[case] on the `certauth` block of
address_blocks.py (127.0.10.100-104 unless CERTAUTH_FIRST moves it), default profile, so the certificates, stores and mappings these tests change
reach no other test's hosts. Playbooks run through the real ansible-playbook: the first play
connects as the administrator with NTLM over HTTPS (certificate validated against winhost's
test CA); the plays after it connect with the client certificate alone.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import typing as t
from pathlib import Path

import pytest
import yaml
from address_blocks import block

from winhost import profiles
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

HERE = Path(__file__).resolve().parent
PLAYBOOK = HERE / "playbooks" / "certauth.yml"
sys.path.insert(0, str(HERE.parent / "roles"))

from module_playbook import PlaybookRun, run_playbook  # noqa: E402

BLOCK = block("certauth")
FIRST = BLOCK.first
OFFSETS = {"selfsigned": 0, "casigned": 1, "untrusted": 2, "unmapped": 3, "intermediate": 4}
assert sorted(OFFSETS.values()) == list(range(len(OFFSETS))) and len(OFFSETS) <= BLOCK.size


def _write_private_yaml(path: Path, data: t.Any) -> Path:
    """An inventory readable only by this user (it holds the host's password)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)
    return path


@dataclasses.dataclass
class CertAuthTargets:
    session: WinhostSession
    work: Path

    def name(self, case: str) -> str:
        return profiles.host_name(FIRST + OFFSETS[case])

    def state(self, case: str) -> dict[str, t.Any]:
        return self.session.state(self.name(case))

    def cert_dir(self, case: str) -> Path:
        # Spaces and non-ASCII in the controller path on purpose.
        directory = self.work / case / "client certs ü"
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def run(self, case: str, label: str, **case_vars: t.Any) -> PlaybookRun:
        """Run the certauth playbook against the case's host with `case_vars` (certauth_*)."""
        name = self.name(case)
        work = self.work / case / label
        work.mkdir(parents=True, exist_ok=True)
        host_vars = self.session.host_vars(name)
        # An inventory of this host alone (the playbook targets group `windows`), with
        # winhost's variables (its password included, hence 0600) and the case's.
        inventory = _write_private_yaml(
            work / "inventory.yml",
            {
                "all": {
                    "children": {
                        "windows": {
                            "vars": {
                                "ansible_connection": "winops.remoting.winrm",
                                "ansible_port": 5986,
                                "ansible_winrm_scheme": "https",
                                "ansible_winrm_transport": "ntlm",
                                "ansible_winrm_server_cert_validation": "validate",
                                "ansible_winrm_ca_trust_path": host_vars["winhost_ca_bundle"],
                                "ansible_shell_type": "powershell",
                            },
                            "hosts": {
                                name: {
                                    **host_vars,
                                    "certauth_dir": str(self.cert_dir(case)),
                                    **case_vars,
                                }
                            },
                        }
                    }
                }
            },
        )
        return run_playbook(PLAYBOOK, [inventory], work)


@pytest.fixture(scope="session")
def certauth(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[CertAuthTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-certauth")
    profiles.create_state_dir(state_dir, len(OFFSETS), "default", first=FIRST)
    session = start_session(state_dir, len(OFFSETS), "default", first=FIRST)
    try:
        yield CertAuthTargets(session, tmp_path_factory.mktemp("certauth-plays"))
    finally:
        stop_session(session)
