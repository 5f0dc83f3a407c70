"""Execution engine under a real `ansible-playbook`, before (and independent of) the network.

The connection plugin used here is ansible-core's own ansible.builtin.winrm with only its WinRS
exchange (`_winrm_exec`) replaced by a direct call into the engine. Everything else is the real
thing: the action plugins (gather_facts, win_copy, fetch, become), the shell plugin, the
exec-wrapper manifests and the put/fetch scripts. The end-to-end suite runs the same flow over real
sockets; this test pins down what the engine must answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
# The flow of the e2e matrix playbook (issue 3): ping, facts, copy, stat, fetch, become.
PLAYBOOK = r"""
- hosts: win1
  gather_facts: false
  vars:
    remote_dir: 'C:\Temp\winops e2e'
    remote_payload: '{{ remote_dir }}\payload.bin'
  tasks:
    - name: ping
      ansible.windows.win_ping:
    - name: facts
      ansible.builtin.setup:
    - ansible.builtin.assert:
        that: [ansible_facts.os_family == 'Windows', ansible_facts.hostname == 'WIN1']
    - ansible.windows.win_file: {path: '{{ remote_dir }}', state: directory}
    - name: copy
      ansible.windows.win_copy: {src: '{{ local_payload }}', dest: '{{ remote_payload }}'}
    - name: stat
      ansible.windows.win_stat: {path: '{{ remote_payload }}', checksum_algorithm: sha1}
    - name: fetch
      ansible.builtin.fetch: {src: '{{ remote_payload }}', dest: '{{ fetch_dest }}', flat: true}
    - name: fetch with become
      ansible.builtin.fetch: {src: '{{ remote_payload }}', dest: '{{ fetch_dest }}.become', flat: true}
      become: true
    - name: become
      ansible.windows.win_whoami:
      become: true
    - ansible.windows.win_file: {path: '{{ remote_dir }}', state: absent}
"""

CONNECTION_PLUGIN = '''
"""ansible.builtin.winrm with the WinRS exchange replaced by winhost's execution engine."""
from __future__ import annotations

import os
from pathlib import Path

from ansible.plugins.connection.winrm import DOCUMENTATION  # noqa: F401 - same options
from ansible.plugins.connection.winrm import Connection as WinRMConnection
from ansible.plugins.shell.powershell import _parse_clixml

from exec_helpers import FakeHost, run_to_end
from winhost import api
from winhost.execution import create_engine


class Connection(WinRMConnection):
    transport = "engine_winrm"

    def _connect(self):
        self._winrm_host = "win1"
        self._connected = True
        self.protocol = None
        self.shell_id = None
        return self

    def close(self):
        self._connected = False

    def _winrm_exec(self, command, args=(), from_exec=False, stdin_iterator=None):
        host = FakeHost(Path(os.environ["WINHOST_EXEC_ROOT"]))
        principal = api.Principal("ansible", "WIN1", "NTLM", is_admin=True)
        text_args = [a.decode() if isinstance(a, bytes) else a for a in args]
        process = create_engine().start_command_line(host, principal, command, text_args)
        if stdin_iterator is not None:
            for data, is_last in stdin_iterator:
                process.send_input(data, is_last)
        batch = run_to_end(process, timeout=120)
        stderr = batch.stderr
        if stderr.startswith(b"#< CLIXML"):
            stderr = _parse_clixml(stderr)
        return batch.exit_code, batch.stdout, stderr
'''


def _collections_path() -> str:
    for entry in sys.path:
        if (Path(entry) / "ansible_collections" / "ansible" / "windows").is_dir():
            return entry
    raise AssertionError("ansible.windows is not installed next to ansible-core")


@pytest.mark.slow
def test_the_e2e_flow_runs_against_the_engine(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "connection_plugins").mkdir()
    (tmp_path / "connection_plugins" / "engine_winrm.py").write_text(CONNECTION_PLUGIN)
    (tmp_path / "inventory.ini").write_text(
        textwrap.dedent(
            """\
            [windows]
            win1 ansible_connection=engine_winrm ansible_become_method=runas ansible_become_user=SYSTEM
            """
        )
    )
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    sha1 = hashlib.sha1(payload.read_bytes()).hexdigest()
    fetched = tmp_path / "fetched.bin"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        WINHOST_EXEC_ROOT=str(tmp_path / "C"),
        PYTHONPATH=os.pathsep.join([str(REPO / "tests" / "winhost"), str(Path(__file__).parent)]),
        ANSIBLE_CONNECTION_PLUGINS=str(tmp_path / "connection_plugins"),
        ANSIBLE_COLLECTIONS_PATH=_collections_path(),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    extra = {"local_payload": str(payload), "fetch_dest": str(fetched)}
    completed = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.ini"),
            str(tmp_path / "play.yml"),
            "-e",
            json.dumps(extra),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-3000:]
    report = json.loads(completed.stdout)
    tasks = {
        task["task"]["name"]: task["hosts"]["win1"]
        for play in report["plays"]
        for task in play["tasks"]
    }
    assert tasks["ping"]["ping"] == "pong"
    assert tasks["facts"]["ansible_facts"]["ansible_fqdn"] == "win1.winops.test"
    assert tasks["copy"]["changed"] is True
    assert tasks["stat"]["stat"]["checksum"] == sha1
    assert tasks["stat"]["stat"]["size"] == payload.stat().st_size
    assert tasks["fetch"]["checksum"] == sha1
    assert hashlib.sha1(fetched.read_bytes()).hexdigest() == sha1
    # With become, fetch reads the file through slurp (run as SYSTEM) instead of fetch_file.
    assert tasks["fetch with become"]["checksum"] == sha1
    assert hashlib.sha1(Path(f"{fetched}.become").read_bytes()).hexdigest() == sha1
    identity = tasks["become"]["account"]
    assert (identity["domain_name"], identity["account_name"]) == ("NT AUTHORITY", "SYSTEM")
    # The temp dirs Ansible created for win_copy were removed again.
    temp = tmp_path / "C" / "Users" / "ansible" / "AppData" / "Local" / "Temp"
    assert [p.name for p in temp.iterdir() if p.name.startswith("ansible-tmp-")] == []
    assert not (tmp_path / "C" / "Temp" / "winops e2e").exists()
