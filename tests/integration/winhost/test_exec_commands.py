"""Execution engine: command-line decoding, raw commands, temp dirs and the filesystem sandbox.

Command lines and scripts are produced by ansible-core's own powershell shell plugin, and the
WinRS exchange by ansible-core's own winrm connection plugin (with its network call replaced by
a direct call into the engine), so these tests see the bytes Ansible really sends.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from exec_helpers import (
    ADMIN,
    EngineWinRM,
    FakeHost,
    run_to_end,
    shell_plugin,
    split_command,
)

from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer
from winhost import api
from winhost.execution import commandline
from winhost.execution.sandbox import Sandbox, SandboxError


@pytest.fixture
def winrm(engine: api.ExecutionEngine, host: FakeHost) -> EngineWinRM:
    return EngineWinRM(engine, host, ADMIN)


def run_line(
    engine: api.ExecutionEngine, host: FakeHost, line: str, stdin: bytes | None = None
) -> api.OutputBatch:
    command, args = split_command(line)
    process = engine.start_command_line(host, ADMIN, command, args)
    if stdin is not None:
        process.send_input(stdin, True)
    return run_to_end(process)


# -- command-line decoding ---------------------------------------------------------------------


def test_split_windows_args_follows_commandlinetoargvw_rules() -> None:
    assert commandline.split_windows_args(r'a "b c" d\"e "f\\" g') == [
        "a",
        "b c",
        'd"e',
        "f\\",
        "g",
    ]


def test_powershell_parameter_prefixes_and_encoded_command() -> None:
    encoded = commandline.encode_command("hostname")
    invocation = commandline.parse_powershell_args(
        ["-noni", "-nop", "-ex", "Bypass", "-e", encoded]
    )
    assert invocation.script == "hostname"
    assert invocation.encoded is True
    assert invocation.parameters["executionpolicy"] == "Bypass"


def test_powershell_command_text_and_stdin_script() -> None:
    assert commandline.parse_powershell_args(["-Command", "echo", "hi"]).script == "echo hi"
    assert commandline.parse_powershell_args(["-NoProfile", "-Command", "-"]).script is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-File", "x.ps1"], "running script files is not modelled"),
        (["-EncodedCommand", "not base64!"], "not base64 of UTF-16-LE"),
        (["-Bogus"], "parameter '-Bogus' is not one winhost models"),
        (["-NoProfile"], "interactive console"),
    ],
)
def test_powershell_arguments_winhost_cannot_honour_fail_loudly(
    args: list[str], message: str
) -> None:
    with pytest.raises(commandline.CommandLineError, match=re.escape(message)):
        commandline.parse_powershell_args(args)


# -- raw commands (ansible.builtin.raw through the real winrm plugin) ---------------------------


def test_raw_hostname_whoami_echo_and_exit(winrm: EngineWinRM) -> None:
    conn = winrm.connection
    assert conn.exec_command("hostname") == (0, b"WIN1\r\n", b"")
    assert conn.exec_command("whoami") == (0, b"win1\\ansible\r\n", b"")
    assert conn.exec_command("echo 'hello world' two") == (0, b"hello world\r\ntwo\r\n", b"")
    assert conn.exec_command('Write-Output "$env:COMPUTERNAME in $env:TEMP"')[1] == (
        b"WIN1 in C:\\Users\\ansible\\AppData\\Local\\Temp\r\n"
    )
    assert conn.exec_command("exit 7")[0] == 7
    # The command really went out as powershell.exe -EncodedCommand.
    command, args = winrm.calls[0]
    assert command == "PowerShell"
    assert args[-2] == "-EncodedCommand"


def test_raw_unknown_command_fails_like_powershell(winrm: EngineWinRM) -> None:
    rc, stdout, stderr = winrm.connection.exec_command("Get-Unicorn -Name x")
    assert rc == 1
    assert stdout == b""
    text = stderr.decode()
    assert text.startswith(
        "Get-Unicorn : The term 'Get-Unicorn' is not recognized as the name of a cmdlet, function, "
        "script file, or operable program."
    )
    assert "CommandNotFoundException" in text


@pytest.mark.parametrize(
    ("statement", "name"),
    [
        ("Get-NetFirewallRule -DisplayName x", "Get-NetFirewallRule"),  # NetSecurity
        ("New-SelfSignedCertificate -DnsName x", "New-SelfSignedCertificate"),  # pki
        ("Restart-Service WinRM", "Restart-Service"),  # Microsoft.PowerShell.Management
        ("ls C:\\", "ls"),  # Windows PowerShell's alias of Get-ChildItem
    ],
)
def test_stock_commands_are_not_modelled_not_missing(
    winrm: EngineWinRM, statement: str, name: str
) -> None:
    # Windows has these (execution/stock_commands.txt names the documentation they come
    # from): saying "is not recognized" would claim it does not.
    rc, stdout, stderr = winrm.connection.exec_command(f"{statement}; hostname")
    assert (rc, stdout) == (1, b"")
    text = stderr.decode()
    assert f"winhost does not model {name}" in text
    assert "is not recognized" not in text


def test_unmodelled_syntax_stops_the_script_loudly(winrm: EngineWinRM) -> None:
    rc, stdout, stderr = winrm.connection.exec_command("hostname; $x = Get-Date; whoami")
    assert rc == 1
    assert stdout == b"WIN1\r\n"  # ran up to the statement it cannot model, not past it
    assert b"winhost does not model this" in stderr


def test_clixml_stderr_is_what_the_shell_plugin_decodes(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    shell = shell_plugin()
    batch = run_line(engine, host, shell._encode_script("Nope-Cmd"))
    assert batch.exit_code == 1
    assert batch.stderr.startswith(b"#< CLIXML\r\n<Objs ")
    from ansible.plugins.shell.powershell import _parse_clixml

    assert b"The term 'Nope-Cmd' is not recognized" in _parse_clixml(batch.stderr)


def test_winrs_command_lines_run_through_cmd_exe(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    assert run_line(engine, host, "echo %COMPUTERNAME% says hi").stdout == b"WIN1 says hi\r\n"
    assert run_line(engine, host, "cmd /c exit /b 5").exit_code == 5
    assert (
        run_line(engine, host, "C:\\Windows\\System32\\whoami.exe").stdout == b"win1\\ansible\r\n"
    )
    missing = run_line(engine, host, "ipconfig /all")
    assert missing.exit_code == 9009
    assert missing.stderr == (
        b"'ipconfig' is not recognized as an internal or external command,\r\n"
        b"operable program or batch file.\r\n"
    )
    assert b"not model" in run_line(engine, host, "echo a | findstr a").stderr


def test_powershell_command_dash_reads_the_script_from_stdin(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    batch = run_line(
        engine, host, "powershell.exe -NoProfile -Command -", stdin=b"hostname\r\nexit 4\r\n"
    )
    assert (batch.stdout, batch.exit_code) == (b"WIN1\r\n", 4)
    # The command's processes paid their start-up themselves (winhost.latency).
    assert host.paid == ["process_cmd", "process_powershell"]


def test_pipeline_raw_script_output_and_exit_code(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    # The builtin psrp plugin runs raw commands as "<cmd>\nexit $LASTEXITCODE".
    ok = run_to_end(
        engine.start_pipeline(
            host, ADMIN, [api.PipelineCommand("hostname\nexit $LASTEXITCODE", True, [])]
        )
    )
    assert (ok.objects, ok.had_errors, ok.exit_code) == (["WIN1"], False, None)
    failing = run_to_end(
        engine.start_pipeline(host, ADMIN, [api.PipelineCommand("exit 3", True, [])])
    )
    assert failing.exit_code == 3
    # An unknown command stops the pipeline's script and fails it (see test_shells_engine).
    unknown = run_to_end(
        engine.start_pipeline(
            host, ADMIN, [api.PipelineCommand("Get-Unicorn\nexit $LASTEXITCODE", True, [])]
        )
    )
    assert unknown.had_errors and unknown.errors == [] and unknown.exit_code is None
    assert unknown.terminating_error is not None
    assert unknown.terminating_error.fully_qualified_error_id == "CommandNotFoundException"
    assert unknown.terminating_error.category == "ObjectNotFound"
    assert "The term 'Get-Unicorn' is not recognized" in unknown.terminating_error.message
    cmdlet = run_to_end(
        engine.start_pipeline(
            host, ADMIN, [api.PipelineCommand("Get-Service", False, [("Name", "WinRM")])]
        )
    )
    assert cmdlet.had_errors and "winhost does not model" in cmdlet.errors[0]


# -- temp dirs, as ansible-core 2.19's action base creates and removes them ----------------------


def test_mkdtemp_expand_user_and_cleanup(winrm: EngineWinRM, host: FakeHost) -> None:
    shell = shell_plugin()
    mkdtemp = shell._mkdtemp2("ansible-tmp-1-2-3", tmpdir="%TEMP%")
    rc, stdout, _ = winrm.connection.exec_command(mkdtemp.command, in_data=mkdtemp.input_data)
    assert rc == 0
    path = stdout.decode().strip()
    assert path == "C:\\Users\\ansible\\AppData\\Local\\Temp\\ansible-tmp-1-2-3"
    local = host.root / "Users" / "ansible" / "AppData" / "Local" / "Temp" / "ansible-tmp-1-2-3"
    assert local.is_dir()
    (local / "module.ps1").write_text("x")

    again = winrm.connection.exec_command(mkdtemp.command, in_data=mkdtemp.input_data)
    assert again[0] == 1
    assert "already exists" in again[1].decode()

    expand = shell._expand_user2("~\\Documents")
    assert winrm.connection.exec_command(expand.command, in_data=expand.input_data)[1] == (
        b"C:\\Users\\ansible\\Documents\r\n"
    )

    rc, _, stderr = winrm.connection.exec_command(shell.remove(path, recurse=True))
    assert (rc, stderr) == (0, b"")
    assert not local.exists()
    rc, _, stderr = winrm.connection.exec_command(shell.remove(path, recurse=True))
    assert rc == 1
    assert (
        b"Cannot find path 'C:\\Users\\ansible\\AppData\\Local\\Temp\\ansible-tmp-1-2-3' because it does not exist."
        in stderr
    )


# -- sandbox -------------------------------------------------------------------------------------


def test_sandbox_keeps_every_path_inside_c(tmp_path: Path) -> None:
    root = tmp_path / "C"
    root.mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    box = Sandbox(root)
    assert box.resolve("C:\\..\\..\\secret.txt").local == root.resolve() / "secret.txt"
    assert box.resolve("/etc/passwd").win == "C:\\etc\\passwd"
    assert box.resolve("/etc/passwd").local == root.resolve() / "etc" / "passwd"
    assert box.resolve("..\\..\\x", cwd="C:\\Users\\a").win == "C:\\x"
    assert box.resolve("\\\\?\\C:\\Windows").win == "C:\\Windows"
    with pytest.raises(
        SandboxError,
        match=re.escape("Cannot find drive. A drive with the name 'D' does not exist."),
    ):
        box.resolve("D:\\data")
    with pytest.raises(SandboxError, match="no network shares"):
        box.resolve("\\\\server\\share\\x")
    with pytest.raises(SandboxError, match="Illegal characters in path"):
        box.resolve("C:\\a|b")
    os.symlink(tmp_path, root / "link")
    with pytest.raises(SandboxError, match="symbolic link"):
        box.resolve("C:\\link\\secret.txt")


def test_sandbox_is_case_insensitive_and_case_preserving(tmp_path: Path) -> None:
    root = tmp_path / "C"
    (root / "Program Files" / "App [x] $1 ü").mkdir(parents=True)
    box = Sandbox(root)
    found = box.resolve("c:/PROGRAM files/app [X] $1 Ü/New File.TXT")
    assert found.win == "C:\\Program Files\\App [x] $1 ü\\New File.TXT"
    assert found.local.parent == (root / "Program Files" / "App [x] $1 ü").resolve()
    assert box.resolve("C:\\trailing. ").win == "C:\\trailing"


# -- process lifecycle -----------------------------------------------------------------------------


def test_terminate_ends_a_command_waiting_for_input(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    command, args = split_command(shell_plugin().build_module_command("", "", ""))
    process = engine.start_command_line(host, ADMIN, command, args)
    process.send_input(b'{"name": "exec_wrapper"', False)  # half a manifest, then silence
    assert process.read_output(0.2).finished is False
    process.terminate()
    batch = run_to_end(process, timeout=10)
    assert batch.finished is True
    assert batch.exit_code == 1


def test_output_is_bounded_while_the_client_does_not_read(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    big = host.root / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    big.write_bytes(os.urandom(12 * 1024 * 1024))
    command, *args = _transfer.powershell_command_line(_transfer.FETCH_SCRIPT).split(" ")
    process = engine.start_command_line(host, ADMIN, command, args)
    header = _transfer.encode_header({"path": "C:\\big.bin", "chunk_size": 65536})
    process.send_input(header.encode() + b"\r\n", True)
    time.sleep(1.0)
    first = process.read_output(1.0)
    # The program stopped producing at the high-water mark instead of buffering 16 MB of base64.
    assert 0 < len(first.stdout) < 6 * 1024 * 1024
    assert first.finished is False
    rest = run_to_end(process)
    lines = (first.stdout + rest.stdout).decode().split()
    assert _transfer.parse_result_line(lines[-1])[1] == 12 * 1024 * 1024


def test_start_sleep_waits_and_a_terminate_ends_it() -> None:
    import threading

    from winhost.execution.process import ProgramIO, Terminated

    io = ProgramIO()
    began = time.monotonic()
    io.sleep(0.2)
    assert time.monotonic() - began >= 0.2
    threading.Timer(0.2, io.terminate).start()
    began = time.monotonic()
    with pytest.raises(Terminated):
        io.sleep(30)  # Ctrl+C (the PSRP stop signal) breaks out of Start-Sleep
    assert time.monotonic() - began < 5
