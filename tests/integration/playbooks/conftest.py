"""The winhost session of the playbook tests (see playbook_hosts.py for its hosts): started once,
with the core's start_session, like the roles' and end-to-end suites' own sessions.

Before the server starts, the hosts harden.yml meets get what an administrator who opened WinRM
up would have left (PERMISSIVE): Basic on and unencrypted traffic allowed, next to the `default`
profile's HTTPS firewall rule open to Any, so that every refusal the hardening promises is
first seen to succeed. The brownfield firewall host gets the HTTPS rules that set-up scripts
and Group Policy leave (playbook_firewall.py), another the GUID-named HTTP rule of Ansible's
WinRM guide next to rules the role must leave (playbook_firewall.py), and one host an HTTPS
listener whose address is written in lower case (playbook_listeners.py).
"""

from __future__ import annotations

import sys
import typing as t
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "e2e"))
sys.path.insert(0, str(HERE))

from playbook_firewall import open_firewall_as_found, open_http_as_found  # noqa: E402
from playbook_hosts import FIRST, OFFSETS, PERMISSIVE, PlaybookTargets  # noqa: E402
from playbook_listeners import add_listener_in_lower_case  # noqa: E402

from winhost import profiles  # noqa: E402
from winhost.pytest_plugin import start_session, stop_session  # noqa: E402


@pytest.fixture(scope="session")
def targets(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[PlaybookTargets]:
    state_dir = tmp_path_factory.mktemp("winhost-playbooks")
    states = profiles.create_state_dir(state_dir, len(OFFSETS), "default", first=FIRST)
    for purpose in PERMISSIVE:
        opened = states[OFFSETS[purpose]]
        opened.set_winrm_setting("Service/Auth/Basic", "true")
        opened.set_winrm_setting("Service/AllowUnencrypted", "true")
        opened.save()
    open_firewall_as_found(states[OFFSETS["harden_brownfield_firewall"]])
    open_http_as_found(states[OFFSETS["harden_guide_http"]])
    open_http_as_found(states[OFFSETS["harden_guide_http_local"]])
    add_listener_in_lower_case(states[OFFSETS["listener_address_case"]])
    session = start_session(state_dir, len(OFFSETS), "default", first=FIRST)
    try:
        yield PlaybookTargets(session, tmp_path_factory.mktemp("playbook-runs"))
    finally:
        stop_session(session)
