"""winops.remoting.winrm as Ansible drives it: exec_command, put/fetch, reset, secrets, docs.

The plugin is loaded through Ansible's plugin loader; the host is the scripted FakeProtocol of
test_winrm_session, so nothing reaches the network.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import subprocess
import sys
import types
import typing as t
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader
from ansible.template import Templar
from ansible.utils.display import Display
from test_winrm_session import OK, FakeProtocol, FetchHost, PutHost, Scripted

from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
    _winrm_protocol,
    _winrm_session,
)

PASSWORD = "Sécret-Pässwörd!42"
VARIABLES = {
    "inventory_hostname": "win01.example.com",
    "ansible_user": "ansible",
    "ansible_password": PASSWORD,
    "ansible_winrm_transport": "ntlm",
    "ansible_winrm_reconnection_backoff": 0,
}
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


class Host:
    """The FakeProtocol every Protocol() of the plugin returns, and what it was built with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.protocol = FakeProtocol()
        self.created: list[dict[str, t.Any]] = []

        def new_protocol(**kwargs: t.Any) -> FakeProtocol:
            self.created.append(kwargs)
            return self.protocol

        monkeypatch.setattr(_winrm_session, "Protocol", new_protocol)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    return Host(monkeypatch)


def load(variables: dict[str, t.Any] | None = None, no_log: bool = False) -> t.Any:
    play_context = PlayContext()
    play_context.no_log = no_log
    connection = connection_loader.get("winops.remoting.winrm", play_context)
    given = {**VARIABLES, **(variables or {})}
    var_options = connection._resolve_option_variables(
        given, Templar(loader=DataLoader(), variables=given)
    )
    connection.set_options(var_options=var_options)
    return connection


def plugin_module() -> types.ModuleType:
    return sys.modules[connection_loader.get("winops.remoting.winrm", class_only=True).__module__]


def decoded_script(command: tuple[t.Any, ...]) -> str:
    """The PowerShell script inside a recorded run_command's -EncodedCommand."""
    _shell, _program, arguments, _console = command
    return base64.b64decode(arguments[0].split()[-1]).decode("utf-16-le")


# -- exec_command ------------------------------------------------------------------------------


def test_exec_command_with_pipelining_sends_in_data_as_stdin(host: Host) -> None:
    program = Scripted([(b'{"changed": false}\r\n', b"", 0, True)])
    host.protocol.programs.append(program)
    connection = load()
    in_data = b"module wrapper payload " * 20_000  # several Sends at the default envelope
    rc, stdout, stderr = connection.exec_command("PowerShell -NoProfile -", in_data=in_data)
    assert (rc, stdout, stderr) == (0, b'{"changed": false}\r\n', b"")
    assert program.stdin == in_data
    sends = host.protocol.names("send")
    assert len(sends) > 1 and sends[-1][1] is True
    (command,) = host.protocol.names("run_command")
    assert command[3] is False  # console_mode_stdin off: stdin is a pipe
    assert decoded_script(command) == "PowerShell -NoProfile -"


def test_exec_command_keeps_an_encoded_command_line(host: Host) -> None:
    host.protocol.programs.append(Scripted([OK]))
    connection = load()
    encoded = connection._shell._encode_script(
        "Write-Output hi", as_list=False, strict_mode=False, preserve_rc=False
    )
    connection.exec_command(encoded)
    (command,) = host.protocol.names("run_command")
    assert command[1] == "PowerShell"
    assert " ".join([command[1], *command[2]]) == encoded
    assert command[3] is True  # no stdin: console mode


def test_a_task_that_ran_a_module_asks_its_kept_session_to_start_the_next_ahead(
    host: Host,
) -> None:
    """At the task's end, and only for the shell plugin's module bootstrap (run with input)."""
    host.protocol.programs.extend([Scripted([OK]), Scripted([OK])])
    connection = load()
    told: list[tuple[str, tuple[t.Any, ...]]] = []
    bootstrap = connection._shell.build_module_command("", "#!powershell", "").strip()
    connection.exec_command("Write-Output hi")
    connection.exec_command(bootstrap, in_data=b"payload")
    connection._slot.tell_kept = lambda operation, *args: told.append((operation, args))
    assert told == []
    connection.close()
    assert told == [("start_ahead", (bootstrap,))]


def test_a_task_with_session_start_ahead_false_asks_for_nothing(host: Host) -> None:
    host.protocol.programs.append(Scripted([OK]))
    connection = load({"ansible_winrm_session_start_ahead": "no"})
    told: list[tuple[str, tuple[t.Any, ...]]] = []
    bootstrap = connection._shell.build_module_command("", "#!powershell", "").strip()
    connection.exec_command(bootstrap, in_data=b"payload")
    connection._slot.tell_kept = lambda operation, *args: told.append((operation, args))
    connection.close()
    assert told == []


def test_only_the_module_bootstrap_counts_as_reading_its_input_first() -> None:
    """What a kept session may start ahead (session_start_ahead): the shell plugin's
    pipelining command line, whose bootstrap reads all its input before it acts."""
    connection = load()
    bootstrap = connection._shell.build_module_command("", "#!powershell", "")
    assert connection._is_module_bootstrap(bootstrap.strip())
    assert not connection._is_module_bootstrap("PowerShell -NoProfile -")
    not_pipelined = connection._shell.build_module_command("", "#!powershell", "win_ping.ps1")
    assert not connection._is_module_bootstrap(not_pipelined.strip())


def test_exec_command_cleans_clixml_stderr(host: Host) -> None:
    clixml = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
        '</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
        '<S S="Error">Something went wrong_x000D__x000A_</S></Objs>'
    )
    host.protocol.programs.append(Scripted([(b"", clixml.encode(), 1, True)]))
    rc, _stdout, stderr = load().exec_command("Write-Error 'Something went wrong'")
    assert rc == 1
    assert stderr.decode().strip() == "Something went wrong"


def test_command_timeout_option_reaches_the_session(host: Host) -> None:
    connection = load(
        {"ansible_winrm_command_timeout": 90, "ansible_winrm_max_envelope_size": 512000}
    )
    connection._connect()
    assert connection._slot.session.settings.command_timeout == 90
    assert host.protocol.max_env_sz == 512000


# -- files -------------------------------------------------------------------------------------


def test_put_file_through_the_plugin(host: Host, tmp_path: t.Any) -> None:
    source = tmp_path / "src.txt"
    source.write_bytes(b"hello \xe2\x82\xac")
    files: dict[str, bytes] = {}
    host.protocol.programs.append(PutHost(files))
    load().put_file(str(source), "'C:\\Users\\ansible\\AppData\\Local\\Temp\\dest file.txt'")
    # The shell's quoting is removed before the path goes into the transfer header.
    assert files == {
        "C:\\Users\\ansible\\AppData\\Local\\Temp\\dest file.txt": b"hello \xe2\x82\xac"
    }


def test_put_file_of_missing_source(host: Host, tmp_path: t.Any) -> None:
    with pytest.raises(AnsibleFileNotFound):
        load().put_file(str(tmp_path / "missing"), "C:\\x")
    assert host.protocol.names("run_command") == []


def test_fetch_file_through_the_plugin(host: Host, tmp_path: t.Any) -> None:
    host.protocol.programs.append(FetchHost(lambda: iter([b"remote content"])))
    target = tmp_path / "out.txt"
    load().fetch_file("C:\\Windows\\win.ini", str(target))
    assert target.read_bytes() == b"remote content"
    header = host.protocol.running["CMD-1"].stdin
    assert json.loads(base64.b64decode(header))["path"] == "C:\\Windows\\win.ini"


# -- lifecycle ---------------------------------------------------------------------------------


def test_reset_replaces_the_shell_and_close_deletes_it(host: Host) -> None:
    connection = load()
    connection._connect()
    assert connection.connected
    connection.reset()
    assert host.protocol.names("close_shell") == ["SHELL-1"]
    assert connection._slot.session.shell_id == "SHELL-2"
    connection.close()
    assert host.protocol.names("close_shell") == ["SHELL-1", "SHELL-2"]
    assert not connection.connected


def test_options_are_read_when_connecting(host: Host) -> None:
    """win_reboot changes connection_timeout with set_option() and then calls reset()."""
    connection = load()
    connection._connect()
    connection.set_option("connection_timeout", 5)
    connection.reset()
    assert host.created[-1]["operation_timeout_sec"] == 5
    assert host.created[-1]["read_timeout_sec"] == 15


def test_connection_failure_is_diagnosed(host: Host) -> None:
    from test_winrm_session import connection_refused

    host.protocol.failures["open_shell"] = [connection_refused() for _ in range(4)]
    with pytest.raises(AnsibleConnectionFailure) as raised:
        load()._connect()
    message = str(raised.value)
    assert message.startswith(
        "winops.remoting.winrm: TCP connection failed connecting to "
        "https://win01.example.com:5986/wsman:"
    )
    assert "\n  fix: " in message
    # The underlying error stays attached for tracebacks but is not repeated in the message.
    assert raised.value.__cause__ is not None
    assert message.count("Failed to establish a new connection") == 0
    assert message.count("\n  fix: ") == 1


# -- secrets never shown -----------------------------------------------------------------------


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Everything Display would print, at the highest verbosity."""
    lines: list[str] = []
    display = Display()
    monkeypatch.setattr(display, "verbosity", 6)

    def record(self: Display, msg: str, *args: t.Any, **kwargs: t.Any) -> None:
        lines.append(str(msg))

    monkeypatch.setattr(Display, "display", record)
    monkeypatch.setattr(Display, "warning", record)
    return lines


def test_password_never_shown_at_vvvvvv(
    host: Host, shown: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    echo = f"the password is {PASSWORD}\r\n".encode()
    host.protocol.programs.append(Scripted([(echo, echo, 0, True)]))
    connection = load()
    rc, stdout, _stderr = connection.exec_command(f"Write-Output 'the password is {PASSWORD}'")
    assert rc == 0 and PASSWORD.encode() in stdout  # the module's own output is not altered
    connection.close()

    # A failure whose text carries the password (as some auth libraries' messages do).
    host.protocol.failures["open_shell"] = [ValueError(f"rejected ansible:{PASSWORD}")]
    with pytest.raises(AnsibleConnectionFailure) as raised:
        load()._connect()
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None

    text = "\n".join(shown) + capsys.readouterr().out + capsys.readouterr().err
    assert any("WINRM PROTOCOL ARGUMENTS" in line for line in shown)
    assert any("WINRM RESULT" in line for line in shown)
    assert "********" in text
    assert PASSWORD not in text


def test_no_log_hides_command_output(host: Host, shown: list[str]) -> None:
    host.protocol.programs.append(Scripted([(b"private output", b"", 0, True)]))
    load(no_log=True).exec_command("Get-Secret")
    text = "\n".join(shown)
    assert "private output" not in text
    assert "Get-Secret" not in text
    assert "<censored due to no_log>" in text


# -- documentation -----------------------------------------------------------------------------


def _documented_options(path: str) -> set[str]:
    with open(path, encoding="utf-8") as source:
        tree = ast.parse(source.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
            assert isinstance(node.value, ast.Constant)
            return set(yaml.safe_load(node.value.value)["options"])
    raise AssertionError(f"no DOCUMENTATION in {path}")


def test_every_builtin_option_is_documented() -> None:
    builtin_class = connection_loader.get("ansible.builtin.winrm", class_only=True)
    builtin_path = sys.modules[builtin_class.__module__].__file__
    ours = _documented_options(plugin_module().__file__)
    missing = _documented_options(builtin_path) - ours
    assert not missing, f"options of ansible.builtin.winrm missing here: {sorted(missing)}"


def test_ansible_doc_renders_every_option() -> None:
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "dev"))
    completed = subprocess.run(
        [ansible_doc, "--json", "-t", "connection", "winops.remoting.winrm"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    doc = json.loads(completed.stdout)["winops.remoting.winrm"]["doc"]
    rendered = set(doc["options"])
    expected = _documented_options(plugin_module().__file__) | {"pipelining"}
    assert rendered == expected
    assert all(doc["options"][name].get("description") for name in rendered)


# -- a real ansible-playbook: the task timeout stops the remote command ------------------------

TIMEOUT_PLUGIN = '''
from __future__ import annotations

DOCUMENTATION = {documentation!r}

import os
import time
import types

from ansible_collections.winops.remoting.plugins.connection.winrm import Connection as Ours
from ansible_collections.winops.remoting.plugins.plugin_utils.session import _winrm_session

EVENTS = os.environ["WINRM_TEST_EVENTS"]


def record(event: str) -> None:
    with open(EVENTS, "a", encoding="utf-8") as events:
        events.write(event + "\\n")


class NeverEndingHost:
    """A host whose command keeps running: every Receive waits and brings no output."""

    def __init__(self, **kwargs):
        self.operation_timeout_sec = kwargs["operation_timeout_sec"]
        self.max_env_sz = 153600
        self.transport = types.SimpleNamespace(close_session=lambda: None)

    def open_shell(self, codepage=437, **kwargs):
        record("open_shell")
        return "SHELL-1"

    def run_command(self, shell_id, command, arguments=(), console_mode_stdin=True, skip_cmd_shell=False):
        record("run_command")
        return "CMD-1"

    def get_command_output_raw(self, shell_id, command_id):
        time.sleep(0.2)
        return b"", b"", -1, False

    def cleanup_command(self, shell_id, command_id):
        record("signal_terminate " + command_id)

    def close_shell(self, shell_id, close_session=True):
        record("close_shell")


_winrm_session.Protocol = NeverEndingHost


class Connection(Ours):
    transport = "never_ending"
'''

TIMEOUT_PLAYBOOK = """
- hosts: win1
  gather_facts: false
  tasks:
    - name: Run a command that never ends
      raw: ping.exe -t localhost
      timeout: 2
"""


def test_task_timeout_sends_terminate_in_a_real_playbook(tmp_path: t.Any) -> None:
    """ansible-playbook's own SIGALRM task timeout reaches the plugin and stops the command."""
    documentation = next(
        node.value.value
        for node in ast.parse(Path(plugin_module().__file__).read_text(encoding="utf-8")).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION"
    )
    plugins = tmp_path / "connection_plugins"
    plugins.mkdir()
    (plugins / "never_ending.py").write_text(
        TIMEOUT_PLUGIN.format(documentation=documentation), encoding="utf-8"
    )
    (tmp_path / "inventory.ini").write_text(
        "win1 ansible_connection=never_ending ansible_user=ansible ansible_password=pw "
        "ansible_winrm_transport=ntlm\n",
        encoding="utf-8",
    )
    (tmp_path / "playbook.yml").write_text(TIMEOUT_PLAYBOOK, encoding="utf-8")
    events = tmp_path / "events.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        WINRM_TEST_EVENTS=str(events),
        ANSIBLE_CONNECTION_PLUGINS=str(plugins),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, "build", "dev"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "local-tmp"),
        ANSIBLE_NOCOLOR="1",
    )
    completed = subprocess.run(
        [
            os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
            "-i",
            str(tmp_path / "inventory.ini"),
            str(tmp_path / "playbook.yml"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert "Timed out after 2 second" in completed.stdout or (
        "failed to execute in the expected time frame (2)" in completed.stdout
    ), completed.stdout
    assert events.read_text(encoding="utf-8").splitlines() == [
        "open_shell",
        "run_command",
        "signal_terminate CMD-1",
        "close_shell",
    ]


def test_missing_pywinrm_is_reported_when_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_winrm_protocol, "HAS_WINRM", False)
    monkeypatch.setattr(
        _winrm_protocol, "WINRM_IMPORT_ERROR", ImportError("No module named 'winrm'")
    )
    connection = load()  # loading and setting options works without the library
    with pytest.raises(AnsibleError) as raised:
        connection._connect()
    assert str(raised.value) == (
        "winops.remoting.winrm needs the pywinrm library, which failed to import: "
        "No module named 'winrm'"
    )
