"""Execution engine over real sockets: raw commands, become and loud failures, through all four
connection plugins against the running winhost (the session `winhost` fixture, default profile:
HTTPS with NTLM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]

PLAYBOOK = """
- hosts: windows[0]
  gather_facts: false
  tasks:
    - {name: hostname, ansible.builtin.raw: hostname}
    - {name: whoami, ansible.builtin.raw: whoami}
    - {name: exit, ansible.builtin.raw: exit 3, ignore_errors: true}
    - {name: unknown raw, ansible.builtin.raw: Get-Unicorn, ignore_errors: true}
    - {name: unknown shell, ansible.windows.win_shell: Get-Unicorn, ignore_errors: true}
    - name: become operator
      ansible.windows.win_whoami:
      become: true
      become_user: operator
      vars: {ansible_become_password: "{{ winhost_local_password }}"}
    - name: become wrong password
      ansible.windows.win_whoami:
      become: true
      become_user: operator
      vars: {ansible_become_password: not-the-password}
      ignore_errors: true
    - {name: not emulated, ansible.windows.win_service: {name: WinRM}, ignore_errors: true}
    - {name: crash, ansible.windows.win_ping: {data: crash}, ignore_errors: true}
"""

PLUGINS = [
    "ansible.builtin.winrm",
    "ansible.builtin.psrp",
    "winops.remoting.winrm",
    "winops.remoting.psrp",
]


def _connection_vars(plugin: str, ca_bundle: str) -> dict[str, object]:
    if plugin.endswith("winrm"):
        return {
            "ansible_winrm_transport": "ntlm",
            "ansible_winrm_scheme": "https",
            "ansible_winrm_ca_trust_path": ca_bundle,
        }
    return {
        "ansible_psrp_auth": "ntlm",
        "ansible_psrp_protocol": "https",
        "ansible_psrp_ca_cert": ca_bundle,
    }


def _collections_path() -> str:
    shipped = next(
        entry
        for entry in sys.path
        if (Path(entry) / "ansible_collections" / "ansible" / "windows").is_dir()
    )
    # The installed build when `make integration` names it, else the development tree.
    ours = os.environ.get("WINOPS_COLLECTIONS_PATH") or str(REPO / "build" / "dev")
    return os.pathsep.join([ours, shipped])


@pytest.mark.slow
@pytest.mark.parametrize("plugin", PLUGINS)
def test_exec_semantics_over_every_plugin(winhost, plugin: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    target = winhost.hosts[0]  # win<N> for the first index the session was started with
    host_vars = winhost.host_vars(target.name)
    overlay = {
        "all": {
            "children": {
                "windows": {
                    "hosts": {
                        target.name: {
                            "ansible_connection": plugin,
                            "ansible_port": host_vars["winhost_https_port"],
                            "ansible_become_method": "runas",
                            **_connection_vars(plugin, host_vars["winhost_ca_bundle"]),
                        }
                    }
                }
            }
        }
    }
    (tmp_path / "overlay.yml").write_text(yaml.safe_dump(overlay))
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=_collections_path(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(winhost.inventory),
            "-i",
            str(tmp_path / "overlay.yml"),
            str(tmp_path / "play.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-3000:]
    tasks = {
        task["task"]["name"]: task["hosts"][target.name]
        for play in json.loads(completed.stdout)["plays"]
        for task in play["tasks"]
    }
    assert tasks["hostname"]["stdout"].strip() == target.computer_name
    assert tasks["whoami"]["stdout"].strip() == f"{target.name}\\ansible"
    assert tasks["exit"]["rc"] == 3
    assert "The term 'Get-Unicorn' is not recognized" in tasks["unknown raw"]["stderr"]
    # powershell.exe exits 1 when its last statement failed; over PSRP the unknown command
    # fails the pipeline before the plugins' "exit $LASTEXITCODE" (test_raw_fidelity.py).
    assert tasks["unknown raw"]["rc"] == 1
    assert tasks["unknown shell"]["rc"] == 1
    assert tasks["unknown shell"]["msg"] == "non-zero return code"
    assert tasks["become operator"]["account"]["account_name"] == "operator"
    assert tasks["become wrong password"]["failed"] is True
    assert (
        "Failed to logon .\\operator (The user name or password is incorrect, Win32ErrorCode 1326 - 0x0000052E)"
        in tasks["become wrong password"]["msg"]
    )
    assert tasks["not emulated"]["msg"].startswith(
        "winhost does not emulate the module ansible.windows.win_service;"
    )
    assert tasks["crash"]["msg"] == "Unhandled exception while executing module: boom"
