"""The WinRS cmd shell driven by the real pywinrm Protocol (its HTTP exchange replaced by an
in-process call into envelope parsing, the shell handler and response rendering)."""

from __future__ import annotations

import time
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError as PsrpFault
from pypsrp.powershell import RunspacePool
from pypsrp.shell import Process, SignalCode, WinRS
from pypsrp.wsman import SelectorSet
from shells_helpers import OTHER, InProcessServer, ScriptedEngine, SettingsHost
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError

from winhost import api, faults


@pytest.fixture
def host(tmp_path: Path) -> SettingsHost:
    return SettingsHost(tmp_path)


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def server(host: SettingsHost, engine: ScriptedEngine) -> t.Iterator[InProcessServer]:
    faults.clear(host.computer_name)
    yield InProcessServer(host, engine)
    faults.clear(host.computer_name)


def run(
    server: InProcessServer, command: str, *args: str, **shell: t.Any
) -> tuple[bytes, bytes, int]:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell(**shell)
    command_id = protocol.run_command(shell_id, command, list(args))
    result = protocol.get_command_output(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)
    return result


def test_command_output_and_exit_code(server: InProcessServer, engine: ScriptedEngine) -> None:
    assert run(server, "echo", "hello", "world") == (b"hello world\r\n", b"", 0)
    stdout, stderr, code = run(server, "exit", "3")
    assert (stdout, stderr, code) == (b"", b"leaving\r\n", 3)
    assert engine.command_lines[0][1:] == ("echo", ["hello world"])  # pywinrm joins arguments
    assert server.handlers  # the shells are gone after Delete
    assert all(not s.commands for s in server.handlers[next(iter(server.handlers))].table.shells())


def test_create_response_carries_the_shell_epr(server: InProcessServer) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    assert shell_id == shell_id.upper() and len(shell_id) == 36
    # pypsrp reads the rsp:Shell resource and the EPR's selector set as Windows sends them.
    wsman = server.pypsrp()
    with WinRS(wsman) as shell:
        assert shell.id and shell.owner == "WIN1\\ansible"
        assert shell.output_streams == "stdout stderr"
        assert shell.idle_time_out == "PT7200.000S"
        assert shell._selector_set is not None
        assert str(shell._selector_set).find(shell.id) >= 0
    protocol.close_shell(shell_id)


def test_stdin_is_sent_and_ended(server: InProcessServer, engine: ScriptedEngine) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell(codepage=65001)
    command_id = protocol.run_command(shell_id, "cat")
    protocol.send_command_input(shell_id, command_id, b"line one\r\n")
    assert not engine.processes[-1].input_ended
    protocol.send_command_input(shell_id, command_id, "zwei ü\r\n".encode(), end=True)
    assert engine.processes[-1].input_ended
    stdout, _, code = protocol.get_command_output(shell_id, command_id)
    assert (stdout, code) == ("line one\r\nzwei ü\r\n".encode(), 0)
    protocol.close_shell(shell_id)


def test_codepage_decides_console_bytes(server: InProcessServer) -> None:
    assert run(server, "umlaut", codepage=65001)[0] == "Grüße ✓\r\n".encode()
    assert run(server, "umlaut")[0] == "Grüße ?\r\n".encode("cp437")  # pywinrm's default 437


def test_receive_times_out_then_output_arrives(server: InProcessServer) -> None:
    protocol = server.pywinrm(operation_timeout_sec=1, read_timeout_sec=5)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "slow", ["2"])
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell_id, command_id)
    assert 0.9 <= time.monotonic() - started < 1.8
    assert server.responses[-1][0] == 500
    stdout, _, code = protocol.get_command_output(shell_id, command_id)  # retries timeouts
    assert (stdout, code) == (b"late\r\n", 0)
    protocol.close_shell(shell_id)


def test_terminate_stops_a_running_command(server: InProcessServer, engine: ScriptedEngine) -> None:
    protocol = server.pywinrm(operation_timeout_sec=1, read_timeout_sec=5)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "hang")
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    assert engine.processes[-1].terminated
    with pytest.raises(WSManFaultError) as err:
        protocol.get_command_output_raw(shell_id, command_id)
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_SHELL_NOT_FOUND
    # As Windows words it (pypsrp's recording test_winrs_bad_cmd_id.yml): the generic text in
    # s:Reason, which pywinrm reports, the specific one in f:Message.
    assert err.value.reason == (
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource. "
    )
    assert b"a command identifier that does not exist" in err.value.response.encode()
    protocol.close_shell(shell_id)


def test_ctrl_c_ends_the_command_and_leaves_its_state_receivable(
    server: InProcessServer, engine: ScriptedEngine
) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "hang")
    # pywinrm only sends terminate; pypsrp's WinRS sends ctrl_c to the same shell.
    selectors = SelectorSet()
    selectors.add_option("ShellId", shell_id)
    shell = WinRS(server.pypsrp())
    shell._selector_set = selectors
    shell.signal(SignalCode.CTRL_C, command_id)
    assert engine.processes[-1].terminated
    _, _, code = protocol.get_command_output(shell_id, command_id)
    assert code == 1  # the scripted program's exit code when ended
    protocol.close_shell(shell_id)


def test_unknown_shell_gets_the_windows_fault(server: InProcessServer) -> None:
    protocol = server.pywinrm()
    bogus = "0C8A1B36-5A6E-4C3C-9C5E-000000000000"
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(bogus, "echo", ["x"])
    assert err.value.wsman_fault_code == 2150858843
    assert err.value.fault_subcode == "w:InvalidSelectors"
    assert f"ShellId {bogus} failed because the shell was not found" in err.value.reason


def test_another_users_shell_is_not_found(server: InProcessServer) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    server.principal = OTHER
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "echo", ["x"])
    assert err.value.wsman_fault_code == 2150858843


def test_idle_shell_expires(server: InProcessServer, host: SettingsHost) -> None:
    host.settings["Winrs/IdleTimeout"] = "400"
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    protocol.cleanup_command(shell_id, protocol.run_command(shell_id, "echo", ["x"]))
    time.sleep(0.7)
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "echo", ["x"])
    assert err.value.wsman_fault_code == 2150858843


def test_idle_shell_is_freed_without_a_request(
    server: InProcessServer, host: SettingsHost, engine: ScriptedEngine
) -> None:
    host.settings["Winrs/IdleTimeout"] = "300"
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    protocol.run_command(shell_id, "hang")
    table = server.handlers["http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"].table
    deadline = time.monotonic() + 5
    while table.shells() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not table.shells()
    assert engine.processes[-1].terminated  # its command ended with it


def test_reset_forgets_every_shell_as_a_reboot_does(
    server: InProcessServer, engine: ScriptedEngine
) -> None:
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    protocol.run_command(shell_id, "hang")
    server.handlers.reset()  # type: ignore[attr-defined]
    assert engine.processes[-1].terminated
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "echo", ["x"])
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_SHELL_NOT_FOUND


def test_a_waiting_receive_keeps_the_shell_alive(
    server: InProcessServer, host: SettingsHost
) -> None:
    host.settings["Winrs/IdleTimeout"] = "400"
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "slow", ["1"])
    assert protocol.get_command_output(shell_id, command_id)[0] == b"late\r\n"
    protocol.close_shell(shell_id)


def test_shell_quota(server: InProcessServer, host: SettingsHost) -> None:
    host.settings["Winrs/MaxShellsPerUser"] = "2"
    protocol = server.pywinrm()
    first = protocol.open_shell()
    protocol.open_shell()
    with pytest.raises(WSManFaultError) as err:
        protocol.open_shell()
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_QUOTA_LIMIT
    assert err.value.fault_subcode == "w:QuotaLimit"
    assert "maximum number of 2 concurrent shells" in err.value.reason
    server.principal = OTHER  # the quota is per user
    protocol.open_shell()
    server.principal = api.Principal("ansible", "WIN1", "NTLM", is_admin=True)
    protocol.close_shell(first)
    protocol.open_shell()


def test_remote_shell_access_disabled(server: InProcessServer, host: SettingsHost) -> None:
    host.settings["Winrs/AllowRemoteShellAccess"] = "false"
    with pytest.raises(WSManFaultError) as err:
        server.pywinrm().open_shell()
    # MS-WSMV 2.2.4.42 (WinrsType): with AllowRemoteShellAccess false the server "MUST reply
    # with a wsman:InternalError fault"; the code is ERROR_WSMAN_REMOTESHELLS_NOT_ALLOWED.
    assert err.value.fault_subcode == "w:InternalError"
    assert err.value.wsman_fault_code == 2150859180
    assert "configured to not accept any remote shell requests" in err.value.reason
    with pytest.raises(PsrpFault) as psrp_err:  # PowerShell remoting rides on the same shells
        RunspacePool(server.pypsrp()).open()
    assert "not accept any remote shell requests" in psrp_err.value.reason


def test_operations_quota(server: InProcessServer, host: SettingsHost) -> None:
    """A cmd shell's commands hold their operations until the shell is deleted: neither a
    terminate signal (MS-WSMV 3.1.4.12, note 118) nor the command's end gives one back."""
    host.settings["Service/MaxConcurrentOperationsPerUser"] = "3"
    protocol = server.pywinrm()
    shell_id = protocol.open_shell()
    first = protocol.run_command(shell_id, "echo", ["1"])
    assert protocol.get_command_output(shell_id, first) == (b"1\r\n", b"", 0)
    protocol.cleanup_command(shell_id, first)
    second = protocol.run_command(shell_id, "echo", ["2"])
    assert protocol.get_command_output(shell_id, second) == (b"2\r\n", b"", 0)
    protocol.cleanup_command(shell_id, second)
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "echo", ["3"])
    assert err.value.wsman_fault_code == 2150859174
    assert "maximum number of 3 concurrent operations" in err.value.reason
    protocol.close_shell(shell_id)  # the shell's deletion frees them all
    shell_id = protocol.open_shell()
    third = protocol.run_command(shell_id, "echo", ["3"])
    assert protocol.get_command_output(shell_id, third) == (b"3\r\n", b"", 0)
    protocol.close_shell(shell_id)


def test_output_is_chunked_to_the_clients_envelope(server: InProcessServer) -> None:
    size = 400_000
    protocol = server.pywinrm()
    shell_id = protocol.open_shell(codepage=65001)  # UTF-8: the bytes pass through untouched
    command_id = protocol.run_command(shell_id, "big", [str(size)])
    server.responses.clear()
    stdout, _, code = protocol.get_command_output(shell_id, command_id)
    assert code == 0 and stdout == bytes(i % 251 for i in range(size))
    assert len(server.responses) >= 3
    assert all(
        status == 200 and length <= limit for status, length, limit in server.responses if limit
    )
    protocol.close_shell(shell_id)


def test_injected_faults(server: InProcessServer, host: SettingsHost) -> None:
    protocol = server.pywinrm(operation_timeout_sec=5, read_timeout_sec=10)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "cat")
    faults.inject(host.computer_name, "busy")
    with pytest.raises(WSManFaultError) as err:
        protocol.send_command_input(shell_id, command_id, b"x", end=True)
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_BUSY
    protocol.send_command_input(shell_id, command_id, b"x", end=True)  # consumed: works again

    faults.inject(host.computer_name, "receive_timeout", seconds=0.6)
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell_id, command_id)
    # held for the rest of the fault's window (as Windows holds it for OperationTimeout)
    assert 0.4 < time.monotonic() - started < 2
    assert protocol.get_command_output(shell_id, command_id)[0] == b"x"

    faults.inject(host.computer_name, "quota")
    with pytest.raises(WSManFaultError) as err:
        protocol.open_shell()
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_QUOTA_LIMIT
    protocol.close_shell(shell_id)


def test_unmodelled_shell_settings_fail_loudly(server: InProcessServer) -> None:
    protocol = server.pywinrm()
    with pytest.raises(WSManFaultError) as err:
        protocol.open_shell(env_vars={"PATH": "C:\\tools"})
    assert "does not model environment variables" in err.value.reason


def test_receive_without_command_id_is_the_cmd_plugins_invalid_parameter(
    server: InProcessServer,
) -> None:
    # As recorded from Windows in pypsrp's tests/tests_pypsrp/responses/
    # test_winrs_fail_poll_process.yml: the cmd shell plugin refuses it with error 87.
    with WinRS(server.pypsrp()) as shell:
        with pytest.raises(PsrpFault) as err:
            shell.receive("stdout stderr")
        body = server.last_body
    assert err.value.code == 87
    assert err.value.provider == "Shell cmd plugin"
    assert err.value.provider_path == "%systemroot%\\system32\\winrscmd.dll"
    assert err.value.provider_fault == "The parameter is incorrect."
    assert err.value.reason == "The parameter is incorrect."
    assert (
        b"<w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/InvalidValue"
        in body
    )
    assert b"<s:Value>w:InvalidParameter</s:Value>" in body


def test_an_action_the_cmd_shell_lacks_is_action_not_supported(server: InProcessServer) -> None:
    # The code is the Windows SDK's ERROR_WSMAN_ACTION_NOT_SUPPORTED (wsmerror.h, as in
    # microsoft/windows-rs RemoteManagement/mod.rs); 2150858754 is ERROR_WSMAN_INVALID_URI.
    with WinRS(server.pypsrp()) as shell:
        disconnect = ET.Element(
            "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}Disconnect"
        )
        with pytest.raises(PsrpFault) as err:
            shell.wsman.disconnect(shell.resource_uri, disconnect, selector_set=shell._selector_set)
    assert err.value.code == 2150858771
    assert "winhost does not model the action" in err.value.reason


def test_an_invalid_operation_timeout_is_the_addressing_fault_windows_sends(
    server: InProcessServer,
) -> None:
    # As recorded from Windows in pypsrp's tests/tests_pypsrp/responses/
    # test_psrp_is_alive_other_wsman_error.yml: a generic s:Reason, the specific text in
    # f:Message, subcode a:InvalidMessageInformationHeader, code 2150858767.
    wsman = server.pypsrp()
    with WinRS(wsman) as shell:
        wsman.operation_timeout = -1
        with pytest.raises(PsrpFault) as err:
            shell.receive("stdout stderr")
        body = server.last_body
        wsman.operation_timeout = 20
    assert err.value.code == 2150858767
    assert err.value.reason == (
        "The WS-Management service cannot process the request. The XML contains an invalid "
        "timeout field in the SOAP header: PT-1S."
    )
    assert b"<s:Value>a:InvalidMessageInformationHeader</s:Value>" in body
    assert (
        b'<s:Text xml:lang="en-US">The WS-Management service cannot process the request. The '
        b"request contains one or more invalid SOAP headers. </s:Text>"
    ) in body
    assert b"http://schemas.xmlsoap.org/ws/2004/08/addressing/fault" in body


def test_commands_without_cmd_exe_fail_as_not_modelled(server: InProcessServer) -> None:
    # WINRS_SKIP_CMD_SHELL=TRUE starts the program without cmd.exe (pypsrp's recording
    # test_winrs_no_cmd_shell.yml); winhost runs every command line through cmd.exe, so it
    # must refuse rather than pretend.
    with WinRS(server.pypsrp()) as shell:
        process = Process(shell, "powershell.exe", ["Write-Host", "hi"], no_shell=True)
        with pytest.raises(PsrpFault) as err:
            process.invoke()
    assert "winhost does not model commands started without cmd.exe" in err.value.reason
