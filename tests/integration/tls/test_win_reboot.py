"""ansible.windows.win_reboot against winhost: the action plugin's own boot-time query, restart
script and post-reboot test run on the host, which really goes down and boots again.

Over HTTP with NTLM message encryption (the way the tls12 role reaches an old host).
"""

from __future__ import annotations

import datetime
import typing as t

import pytest
from conftest import PLUGINS, RefusalWatch, TlsTargets

REBOOT = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: reboot
      ansible.windows.win_reboot:
        msg: "Neustart für 'winops' (test)"
"""

REBOOT_CHECKED = REBOOT.replace("gather_facts: false", "gather_facts: false\n  check_mode: true")

CUSTOM_BOOT_TIME = """
- hosts: HOST
  gather_facts: false
  tasks:
    - name: reboot
      ansible.windows.win_reboot:
        boot_time_command: (Get-CimInstance Win32_OperatingSystem).LastBootUpTime
      ignore_errors: true
"""


def _boot_time(state: dict[str, t.Any]) -> datetime.datetime:
    return datetime.datetime.fromisoformat(state["runtime"]["last_boot_time"])


def test_check_mode_does_not_reboot(tls_targets: TlsTargets) -> None:
    host = tls_targets.name("reboot")
    before = _boot_time(tls_targets.state("reboot"))
    with RefusalWatch(tls_targets.address("reboot")) as watch:
        run = tls_targets.play("reboot", "winrm", "http", REBOOT_CHECKED, label="check")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "reboot").result
    assert result["changed"] is True and result["rebooted"] is True
    assert watch.refused == 0
    state = tls_targets.state("reboot")
    assert _boot_time(state) == before
    assert state["runtime"]["restart_scheduled"] is False


@pytest.mark.parametrize("plugin", PLUGINS)
def test_win_reboot_restarts_the_host(tls_targets: TlsTargets, plugin: str) -> None:
    host = tls_targets.name("reboot")
    before = _boot_time(tls_targets.state("reboot"))
    with RefusalWatch(tls_targets.address("reboot")) as watch:
        run = tls_targets.play("reboot", plugin, "http", REBOOT, label="reboot")
    assert run.returncode == 0, run.describe()
    result = run.task(host, "reboot").result
    assert result["changed"] is True and result["rebooted"] is True, run.describe()
    # The host is down for a few seconds after shutdown.exe's 2 s delay.
    assert isinstance(result["elapsed"], int) and 2 <= result["elapsed"] < 60
    assert watch.refused > 0, "the host never refused a connection during the reboot"
    assert watch.accepted_after_refusal > 0
    state = tls_targets.wait_until_up("reboot")
    assert _boot_time(state) > before
    assert state["runtime"]["restart_scheduled"] is False


def test_unmodelled_boot_time_command_fails_loudly(tls_targets: TlsTargets) -> None:
    host = tls_targets.name("reboot")
    before = _boot_time(tls_targets.state("reboot"))
    run = tls_targets.play("reboot", "winrm", "http", CUSTOM_BOOT_TIME, label="custom")
    result = run.task(host, "reboot").result
    assert result.get("failed") is True, run.describe()
    assert "failed to get host boot time info" in result["msg"]
    assert "winhost does not model this" in result["stderr"]
    assert _boot_time(tls_targets.state("reboot")) == before
