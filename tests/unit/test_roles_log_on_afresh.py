"""Roles that change how the host authenticates or listens end the play's kept session.

The collection's connection plugins keep one authenticated session per host for a whole run
(docs/sessions.md). A task after such a change must log on again, as it would with a builtin
plugin, or a lock-out would show only in the next run. test_guard_kerberos.py proves it end to
end for winrm_auth; this test keeps every such role honest.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
# Modules whose changes decide whether the next logon succeeds.
LOGON_MODULES = {
    "winops.remoting.win_winrm_service",
    "winops.remoting.win_credssp",
    "winops.remoting.win_winrm_listener",
    "winops.remoting.win_winrm_firewall",
}


def _changes_logon(task: dict[str, object]) -> bool:
    modules = LOGON_MODULES & set(task)
    if not modules or task.get("check_mode"):
        return False
    arguments = task[next(iter(modules))]
    # The WinRM client's own settings (outbound connections from the host) are not the logon.
    return not (isinstance(arguments, dict) and set(arguments) == {"client"})


@pytest.mark.parametrize(
    "role", ["winrm_auth", "winrm_hardening", "credssp_delegation", "winrm_listener"]
)
def test_a_reset_connection_follows_every_change_to_how_the_host_logs_on(role: str) -> None:
    tasks = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text(encoding="utf-8"))
    last_change = max(index for index, task in enumerate(tasks) if _changes_logon(task))
    resets = [
        index
        for index, task in enumerate(tasks)
        if task.get("ansible.builtin.meta") == "reset_connection"
    ]
    assert resets, f"{role} never resets the connection"
    assert max(resets) > last_change, (
        f"{role}: task {tasks[last_change]['name']!r} changes how the host logs on after the "
        "last reset_connection"
    )
