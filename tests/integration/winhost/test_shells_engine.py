"""The shells with winhost's real execution engine (winhost.execution.create_engine), driven by
real pywinrm and pypsrp through the in-process exchange: what a command run through each shell
kind gives the client."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from exec_helpers import FakeHost
from pypsrp.host import PSHost
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from shells_helpers import InProcessServer

from winhost.execution import create_engine
from winhost.shells import shell_handlers


@pytest.fixture
def server(tmp_path: Path) -> InProcessServer:
    return InProcessServer(FakeHost(tmp_path), create_engine())


@pytest.mark.parametrize(
    ("command", "arguments", "expected"),
    [
        ("hostname", [], (b"WIN1\r\n", b"", 0)),
        ("whoami", [], (b"win1\\ansible\r\n", b"", 0)),
        ("cmd", ["/c", "exit /b 4"], (b"", b"", 4)),
        (
            "powershell.exe",
            ["-NoProfile", "-Command", "Write-Output hi; exit 3"],
            (b"hi\r\n", b"", 3),
        ),
        # powershell.exe's console host ends Write-Host lines with LF and output-stream lines
        # with CRLF: pypsrp's recordings test_winrs_send.yml ("output 1\n") and
        # test_winrs_extra_opts.yml ("C:\\Windows\r\n" for (pwd).Path).
        (
            "powershell.exe",
            ["-NoProfile", "-Command", "Write-Host a b; Write-Output c; 'd'"],
            (b"a b\nc\r\nd\r\n", b"", 0),
        ),
        (
            "ipconfig",
            [],
            (
                b"",
                b"'ipconfig' is not recognized as an internal or external command,\r\n"
                b"operable program or batch file.\r\n",
                9009,
            ),
        ),
    ],
)
def test_cmd_shell_runs_engine_commands(
    server: InProcessServer, command: str, arguments: list[str], expected: tuple[bytes, bytes, int]
) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell(codepage=65001)
    command_id = protocol.run_command(shell_id, command, arguments)
    assert protocol.get_command_output(shell_id, command_id) == expected
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)


def test_powershell_shell_runs_engine_scripts(server: InProcessServer) -> None:
    host = PSHost(None, None, False, "winhost-test", None, None, "1.0")
    with RunspacePool(server.pypsrp(), host=host) as pool:
        ps = PowerShell(pool)
        ps.add_script("hostname")
        assert ps.invoke() == ["WIN1"]

        ps = PowerShell(pool)
        ps.add_script("exit 3")
        ps.invoke()
    assert host.rc == 3


def test_unknown_command_fails_the_pipeline_as_windows_does(server: InProcessServer) -> None:
    # Windows ends the pipeline Failed with the CommandNotFoundException as its
    # ExceptionAsErrorRecord (pypsrp's tests/tests_pypsrp/responses/
    # test_client_execute_ps_failure.yml, a Server 2016 recording), and ansible-core's
    # win_raw target asserts `raw: uname -a` fails under psrp, whose plugin appends
    # "exit $LASTEXITCODE": the script stops at the unknown command.
    host = PSHost(None, None, False, "winhost-test", None, None, "1.0")
    with RunspacePool(server.pypsrp(), host=host) as pool:
        ps = PowerShell(pool)
        ps.add_script("uname -a\nexit $LASTEXITCODE")
        assert ps.invoke() == []
        assert ps.state == PSInvocationState.FAILED
        assert ps.had_errors
        assert host.rc is None  # the exit after the unknown command never ran
        [record] = ps.streams.error
        assert str(record) == (
            "The term 'uname' is not recognized as the name of a cmdlet, function, script "
            "file, or operable program. Check the spelling of the name, or if a path was "
            "included, verify that the path is correct and try again."
        )
        assert record.fq_error == "CommandNotFoundException"
        assert record.category == 13  # ErrorCategory.ObjectNotFound
        assert record.reason == "CommandNotFoundException"
        assert record.target_name == "uname"
        assert record.exception.types[0] == (
            "System.Management.Automation.CommandNotFoundException"
        )


def test_router_style_plain_dict_still_serves_every_configuration(tmp_path: Path) -> None:
    """The router copies the mapping into a dict keyed by lower-cased URI."""
    handlers = shell_handlers(FakeHost(tmp_path), create_engine())
    plain: dict[str, t.Any] = {uri.lower(): handler for uri, handler in handlers.items()}
    for name in ("microsoft.powershell", "microsoft.powershell32"):
        assert (
            plain[f"http://schemas.microsoft.com/powershell/{name}"]
            is handlers["http://schemas.microsoft.com/powershell/Microsoft.PowerShell"]
        )
    assert "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd" in plain
