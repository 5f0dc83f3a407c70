"""`raw` through all four connection plugins against winhost, for the behaviours of Windows that
a suite written for real hosts found winhost getting wrong.

- An unknown command fails the task. ansible-core's own win_raw integration target asserts it
  (`raw: uname -a` must give rc != 0, no stdout, an error on stderr) and runs under both winrm
  and psrp. Over PSRP that needs the pipeline to end Failed: ansible's psrp plugins take rc from
  SetShouldExit, else 1 only when pypsrp saw state Failed.
- Over WinRS (the winrm plugins run raw commands through powershell.exe), Write-Host lines end
  with LF and output-stream lines with CRLF (pypsrp's recordings test_winrs_send.yml and
  test_winrs_extra_opts.yml).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from winhost.pytest_plugin import WinhostSession

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from ansible_run import PlaybookRun, run_playbook, write_private_yaml
from connection_matrix import ALL_PLUGINS, COMBINATIONS_BY_NAME, connection_vars, read_targets

PLAYBOOK = Path(__file__).resolve().parent / "playbooks" / "raw_fidelity.yml"
NOT_RECOGNIZED = "The term 'uname' is not recognized as the name of a cmdlet"


def _alias(plugin: str) -> str:
    return "raw_" + plugin.replace(".", "_")


@pytest.fixture(scope="module")
def raw_run(winhost: WinhostSession, tmp_path_factory: pytest.TempPathFactory) -> PlaybookRun:
    work = tmp_path_factory.mktemp("raw-fidelity")
    target = read_targets(winhost.inventory)["win1"]
    combo = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]
    hosts = {
        # The password stays in winhost's inventory: each alias reads win1's.
        _alias(plugin): connection_vars(plugin, combo, target)
        | {"ansible_password": "{{ hostvars['win1'].ansible_password }}"}
        for plugin in ALL_PLUGINS
    }
    overlay = write_private_yaml(
        work / "overlay.yml", {"all": {"children": {"raw_targets": {"hosts": hosts}}}}
    )
    return run_playbook(PLAYBOOK, [winhost.inventory, overlay], work)


@pytest.mark.parametrize("plugin", ALL_PLUGINS)
def test_unknown_command_fails_the_task(raw_run: PlaybookRun, plugin: str) -> None:
    result = raw_run.task(_alias(plugin), "Run an unknown command").result
    assert result.get("failed"), raw_run.describe()
    assert result["rc"] != 0
    assert not result["stdout"]
    assert NOT_RECOGNIZED in result["stderr"]


@pytest.mark.parametrize("plugin", ["winops.remoting.winrm", "ansible.builtin.winrm"])
def test_winrs_write_host_ends_lines_with_lf(raw_run: PlaybookRun, plugin: str) -> None:
    result = raw_run.task(
        _alias(plugin), "Write a host line and an output line through powershell.exe"
    ).result
    assert not result.get("failed"), raw_run.describe()
    assert result["stdout"] == "a\nb\r\n"
