"""The plugin glue: what exec_command runs for each kind of command line, files, secrets."""

from __future__ import annotations

import base64
import typing as t
from pathlib import Path
from unittest import mock

import pytest
from ansible.errors import AnsibleError, AnsibleFileNotFound
from test_psrp_support import OURS, load_connection

from ansible_collections.winops.remoting.plugins.connection import psrp
from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _slot
from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_session
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_output import (
    PipelineResult,
)

PASSWORD = "s€cret-Pässwörd"
VARIABLES = {
    "inventory_hostname": "win-01.example.com",
    "ansible_user": "admin",
    "ansible_password": PASSWORD,
}
PREFIX = "PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted"


class FakeSession:
    """Records what the plugin asks of the session layer."""

    instances: t.ClassVar[list[FakeSession]] = []

    def __init__(self, settings: t.Any, **kwargs: t.Any) -> None:
        self.settings = settings
        self.kwargs = kwargs
        self.runs: list[tuple[str, list[str] | None, list[str]]] = []
        self.puts: list[tuple[str, str]] = []
        self.fetches: list[tuple[str, str]] = []
        self.is_open = False
        self.closed = False
        self.result = PipelineResult(0, "ok", "")
        FakeSession.instances.append(self)

    def open(self) -> None:
        self.is_open = True

    def close(self) -> None:
        self.closed = True
        self.is_open = False

    def execute(
        self, script: str, input_lines: t.Any = None, arguments: t.Any = ()
    ) -> tuple[int, bytes, bytes]:
        self.runs.append((script, input_lines, list(arguments)))
        return self.result.as_bytes()

    def put_file(self, in_path: str, out_path: str) -> int:
        self.puts.append((in_path, out_path))
        return 0

    def fetch_file(self, in_path: str, out_path: str) -> int:
        self.fetches.append((in_path, out_path))
        return 0


class Shown:
    """Everything the plugin displays, at any verbosity."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str, host: str | None = None) -> None:
        self.lines.append(message)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def connection() -> t.Iterator[t.Any]:
    FakeSession.instances.clear()
    with mock.patch.object(_psrp_session, "PsrpSession", FakeSession):
        yield load_connection(OURS, VARIABLES)


@pytest.fixture
def shown() -> t.Iterator[Shown]:
    recorder = Shown()
    with (
        mock.patch.object(psrp.display, "vvv", recorder),
        mock.patch.object(psrp.display, "vvvvv", recorder),
        mock.patch.object(psrp.display, "verbosity", 5),
    ):
        yield recorder


def session() -> FakeSession:
    return FakeSession.instances[-1]


def test_pipelined_module_runs_the_bootstrap_in_the_runspace(
    connection: t.Any, shown: Shown
) -> None:
    cmd = connection._shell.build_module_command("", "", "")
    payload = b'{"module": "win_ping"}\n\x00\x00\x00\x00\n{"args": {}}'
    rc, stdout, stderr = connection.exec_command(cmd, in_data=payload)
    assert (rc, stdout, stderr) == (0, b"ok", b"")
    ((script, input_lines, arguments),) = session().runs
    assert script == base64.b64decode(cmd.split()[-1]).decode("utf-16-le")
    assert input_lines == ['{"module": "win_ping"}', "\x00\x00\x00\x00", '{"args": {}}']
    assert arguments == []
    assert "PSRP EXEC (pipelined module bootstrap)" in shown.lines
    assert script not in shown.text


def _told_at_close(connection: t.Any) -> list[tuple[str, tuple[t.Any, ...]]]:
    told: list[tuple[str, tuple[t.Any, ...]]] = []
    connection._slot.tell_kept = lambda operation, *args: told.append((operation, args))
    connection.close()
    return told


def test_a_task_that_ran_a_module_asks_its_kept_session_to_create_the_next_ahead(
    connection: t.Any,
) -> None:
    """At the task's end, and only for the module bootstrap (run with input)."""
    bootstrap = connection._shell.build_module_command("", "", "")
    connection.exec_command("hostname")
    connection.exec_command(bootstrap, in_data=b"payload")
    (script, _input, arguments) = session().runs[-1]
    assert _told_at_close(connection) == [("start_ahead", (script, tuple(arguments)))]


def test_a_task_without_a_module_asks_for_nothing(connection: t.Any) -> None:
    connection.exec_command("hostname")
    assert _told_at_close(connection) == []


def test_session_start_ahead_false_asks_for_nothing_and_keeps_one_runspace() -> None:
    FakeSession.instances.clear()
    with mock.patch.object(_psrp_session, "PsrpSession", FakeSession):
        connection = load_connection(OURS, {**VARIABLES, "ansible_psrp_session_start_ahead": "no"})
        connection.exec_command(connection._shell.build_module_command("", "", ""), b"payload")
        assert session().kwargs["pipeline_ahead"] is False
        assert _told_at_close(connection) == []


def test_a_session_that_cannot_be_kept_opens_a_pool_of_one_runspace(connection: t.Any) -> None:
    """Outside an Ansible worker no session is kept, so no pipeline will wait in the pool."""
    connection.exec_command("hostname")
    assert session().kwargs["pipeline_ahead"] is False


def test_a_session_that_may_be_kept_opens_a_pool_for_a_pipeline_ahead(connection: t.Any) -> None:
    with mock.patch.object(_slot.SessionSlot, "may_keep", True):
        connection.exec_command("hostname")
    assert session().kwargs["pipeline_ahead"] is True


def test_encoded_script_is_decoded_and_shown(connection: t.Any, shown: Shown) -> None:
    cmd = connection._shell.exists("C:\\Temp\\a file.txt")
    assert cmd.startswith(f"{PREFIX} -EncodedCommand ")
    connection.exec_command(cmd)
    ((script, input_lines, _arguments),) = session().runs
    assert "C:\\Temp\\a file.txt" in script
    assert input_lines is None
    assert f"PSRP EXEC {script}" in shown.lines


def test_plain_command_passes_the_native_exit_code(connection: t.Any) -> None:
    connection.exec_command("whoami.exe /all", in_data=b"line 1\r\nline 2\r\n")
    assert session().runs == [("whoami.exe /all\nexit $LASTEXITCODE", ["line 1", "line 2"], [])]


def test_input_is_split_at_line_ends_only(connection: t.Any) -> None:
    # U+2028 may appear unescaped inside a JSON string; it must not split the payload.
    payload = '{"text": "a\u2028b\x0cc"}\r\nsecond\n\nlast'.encode()
    connection.exec_command("Write-Output 1", in_data=payload)
    ((_script, input_lines, _arguments),) = session().runs
    assert input_lines == ['{"text": "a\u2028b\x0cc"}', "second", "", "last"]


def test_file_command_runs_the_script_with_its_arguments(connection: t.Any) -> None:
    cmd = f'{PREFIX} -File "C:\\Users\\ädmin\\AppData\\m 1.ps1" "C:\\Users\\ädmin\\args.json"'
    connection.exec_command(cmd)
    ((script, _input_lines, arguments),) = session().runs
    assert script == psrp._RUN_SCRIPT_FILE
    assert arguments == ["C:\\Users\\ädmin\\AppData\\m 1.ps1", "C:\\Users\\ädmin\\args.json"]


def test_python_interpreter_modules_are_refused(connection: t.Any) -> None:
    cmd = connection._shell.build_module_command("", "", "")
    with pytest.raises(
        AnsibleError, match="cannot run a module with the interpreter '/usr/bin/python'"
    ):
        connection.exec_command(cmd, in_data=b"#!/usr/bin/python\nprint(1)\n")
    assert session().runs == []


def test_secrets_never_reach_the_display(connection: t.Any, shown: Shown) -> None:
    connection.exec_command(f"net use Z: \\\\srv\\share /user:admin {PASSWORD}")
    session().result = PipelineResult(2, f"echo {PASSWORD}", f"error {PASSWORD}")
    rc, stdout, _stderr = connection.exec_command(f"Write-Output '{PASSWORD}'")
    assert rc == 2
    assert stdout == f"echo {PASSWORD}".encode()  # the result itself is untouched
    assert shown.lines, "nothing was displayed: the test would prove nothing"
    assert PASSWORD not in shown.text
    assert "********" in shown.text


def test_no_log_hides_the_command_and_its_output_at_any_verbosity(
    connection: t.Any, shown: Shown
) -> None:
    connection._play_context.no_log = True
    connection.exec_command("Write-Output 'classified-command'")
    session().result = PipelineResult(0, "classified-output", "")
    connection.exec_command("Get-Secret")
    assert "classified-output" not in shown.text
    assert "PSRP STDOUT/STDERR: <hidden by no_log>" in shown.lines
    # A raw task's command is what its no_log hides (winops.remoting.winrm hides it too).
    assert "classified-command" not in shown.text and "Get-Secret" not in shown.text
    assert "PSRP EXEC <hidden by no_log>" in shown.lines


def test_put_and_fetch_unquote_the_remote_path(connection: t.Any, tmp_path: Path) -> None:
    source = tmp_path / "src.txt"
    source.write_text("data")
    connection.put_file(str(source), "'C:\\Temp\\dést.txt'")
    connection.fetch_file('"C:\\Temp\\dést.txt"', str(tmp_path / "back.txt"))
    assert session().puts == [(str(source), "C:\\Temp\\dést.txt")]
    assert session().fetches == [("C:\\Temp\\dést.txt", str(tmp_path / "back.txt"))]


def test_put_of_a_missing_local_file(connection: t.Any, tmp_path: Path) -> None:
    with pytest.raises(AnsibleFileNotFound, match="file or module does not exist"):
        connection.put_file(str(tmp_path / "nope.txt"), "C:\\nope.txt")
    assert session().puts == []


def test_reset_closes_and_reopens_with_fresh_options(connection: t.Any) -> None:
    connection.exec_command("hostname")
    first = session()
    # ansible.windows' reboot action changes an option and resets the connection.
    connection.set_option("connection_timeout", 5)
    connection.reset()
    second = session()
    assert first is not second
    assert first.closed and second.is_open
    assert second.settings.wsman_kwargs["connection_timeout"] == 5


def test_close_without_a_session_is_harmless(connection: t.Any) -> None:
    connection.close()
    connection.reset()
    assert FakeSession.instances == []
