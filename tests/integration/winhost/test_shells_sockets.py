"""The shells over real sockets: winhost's server (TLS, NTLM, message encryption) with its real
execution engine, driven by real pywinrm and pypsrp as Ansible's plugins drive them."""

from __future__ import annotations

import time
import typing as t
import xml.etree.ElementTree as ET

import pytest
from pypsrp.exceptions import WSManFaultError as PsrpFault
from pypsrp.host import PSHost
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.wsman import WSMan
from winrm.exceptions import WinRMOperationTimeoutError, WSManFaultError
from winrm.protocol import Protocol

from winhost import api
from winhost.pytest_plugin import WinhostSession

CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
WINRS = f"{CONFIG}/winrs"
SERVICE = f"{CONFIG}/service"
READ_STDIN = ["-NoProfile", "-NonInteractive", "-Command", "-"]


@pytest.fixture(scope="module")
def target(winhost: WinhostSession) -> dict[str, t.Any]:
    # The last host of the session, so these tests' settings changes meet fewest others.
    host = winhost.hosts[-1]
    return {"name": host.name, **winhost.host_vars(host.name)}


def https_protocol(target: dict[str, t.Any], **kwargs: t.Any) -> Protocol:
    return Protocol(
        endpoint=f"https://{target['ansible_host']}:5986/wsman",
        transport="ntlm",
        username=target["ansible_user"],
        password=target["ansible_password"],
        ca_trust_path=target["winhost_ca_bundle"],
        **kwargs,
    )


def http_protocol(target: dict[str, t.Any], **kwargs: t.Any) -> Protocol:
    """HTTP with NTLM message encryption, as Ansible uses port 5985."""
    return Protocol(
        endpoint=f"http://{target['ansible_host']}:5985/wsman",
        transport="ntlm",
        username=target["ansible_user"],
        password=target["ansible_password"],
        message_encryption="always",
        **kwargs,
    )


def psrp_wsman(target: dict[str, t.Any], **kwargs: t.Any) -> WSMan:
    return WSMan(
        target["ansible_host"],
        port=5986,
        ssl=True,
        auth="ntlm",
        username=target["ansible_user"],
        password=target["ansible_password"],
        cert_validation=target["winhost_ca_bundle"],
        **kwargs,
    )


class Settings:
    """Change WinRM settings through WS-Management Put (as `winrm set` does) and restore them."""

    def __init__(self, target: dict[str, t.Any]) -> None:
        self.wsman = psrp_wsman(target)
        self.restore: list[tuple[str, str, str, str]] = []

    def _put(self, resource: str, element: str, name: str, value: str) -> None:
        node = ET.Element(f"{{{resource}}}{element}")
        ET.SubElement(node, f"{{{resource}}}{name}").text = value
        self.wsman.put(resource, node)

    def set(self, resource: str, element: str, name: str, value: str, default: str) -> None:
        self._put(resource, element, name, value)
        self.restore.append((resource, element, name, default))

    def close(self) -> None:
        for resource, element, name, value in reversed(self.restore):
            self._put(resource, element, name, value)
        self.wsman.close()


@pytest.fixture
def settings(target: dict[str, t.Any]) -> t.Iterator[Settings]:
    changes = Settings(target)
    yield changes
    changes.close()


@pytest.mark.parametrize("make_protocol", [https_protocol, http_protocol], ids=["https", "http"])
def test_run_commands_with_pywinrm(
    target: dict[str, t.Any], make_protocol: t.Callable[..., Protocol]
) -> None:
    protocol = make_protocol(target)
    shell_id = protocol.open_shell(codepage=65001)
    try:
        for command, arguments, expected in [
            ("hostname", [], (f"{target['winhost_computer_name']}\r\n".encode(), b"", 0)),
            ("cmd", ["/c", "exit /b 4"], (b"", b"", 4)),
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
        ]:
            command_id = protocol.run_command(shell_id, command, arguments)
            assert protocol.get_command_output(shell_id, command_id) == expected
            protocol.cleanup_command(shell_id, command_id)
    finally:
        protocol.close_shell(shell_id)


def test_stdin_timeout_then_output(target: dict[str, t.Any]) -> None:
    """powershell.exe -Command - waits for its script on stdin: Receive times out after the
    OperationTimeout (pywinrm: WinRMOperationTimeoutError) until stdin is sent and ended."""
    protocol = https_protocol(target, operation_timeout_sec=1, read_timeout_sec=10)
    shell_id = protocol.open_shell(codepage=65001)
    command_id = protocol.run_command(shell_id, "powershell.exe", READ_STDIN)
    started = time.monotonic()
    with pytest.raises(WinRMOperationTimeoutError):
        protocol.get_command_output_raw(shell_id, command_id)
    assert 0.9 <= time.monotonic() - started < 3
    protocol.send_command_input(shell_id, command_id, b"Write-Output 'hi \xc3\xbc'\r\n")
    protocol.send_command_input(shell_id, command_id, b"exit 3\r\n", end=True)
    stdout, stderr, code = protocol.get_command_output(shell_id, command_id)
    assert (stdout, stderr, code) == ("hi ü\r\n".encode(), b"", 3)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)


def test_terminate_and_unknown_ids(target: dict[str, t.Any]) -> None:
    protocol = https_protocol(target, operation_timeout_sec=1, read_timeout_sec=10)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "powershell.exe", READ_STDIN)
    protocol.cleanup_command(shell_id, command_id)  # terminate while it waits for stdin
    with pytest.raises(WSManFaultError) as err:
        protocol.get_command_output_raw(shell_id, command_id)
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_SHELL_NOT_FOUND
    # Windows' s:Reason is the generic invalid-selectors text; f:Message names the command id.
    assert "request contained invalid selectors" in err.value.reason
    assert "command identifier that does not exist" in err.value.response
    protocol.close_shell(shell_id)
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "hostname")
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_SHELL_NOT_FOUND
    assert f"ShellId {shell_id} failed because the shell was not found" in err.value.reason


def test_idle_shell_expires(target: dict[str, t.Any], settings: Settings) -> None:
    settings.set(WINRS, "Winrs", "IdleTimeout", "1000", "7200000")
    protocol = https_protocol(target)
    shell_id = protocol.open_shell()
    time.sleep(2.5)
    with pytest.raises(WSManFaultError) as err:
        protocol.run_command(shell_id, "hostname")
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_SHELL_NOT_FOUND


def test_shell_and_operation_quotas(target: dict[str, t.Any], settings: Settings) -> None:
    protocol = https_protocol(target)
    settings.set(WINRS, "Winrs", "MaxShellsPerUser", "2", "2147483647")
    shells = [protocol.open_shell(), protocol.open_shell()]
    try:
        with pytest.raises(WSManFaultError) as err:
            protocol.open_shell()
        assert err.value.wsman_fault_code == api.WSMAN_FAULT_QUOTA_LIMIT
        assert err.value.fault_subcode == "w:QuotaLimit"
        assert "maximum number of 2 concurrent shells" in err.value.reason

        settings.set(SERVICE, "Service", "MaxConcurrentOperationsPerUser", "3", "1500")
        protocol.run_command(shells[0], "hostname")
        with pytest.raises(WSManFaultError) as err:
            protocol.run_command(shells[1], "hostname")
        assert err.value.wsman_fault_code == 2150859174
        assert "maximum number of 3 concurrent operations" in err.value.reason
    finally:
        for shell_id in shells:
            protocol.close_shell(shell_id)


def test_injected_receive_timeout_and_busy(
    winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    protocol = https_protocol(target, operation_timeout_sec=5, read_timeout_sec=15)
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "powershell.exe", READ_STDIN)
    winhost.fault(target["name"], "busy")
    with pytest.raises(WSManFaultError) as err:
        protocol.send_command_input(shell_id, command_id, b"hostname\r\n", end=True)
    assert err.value.wsman_fault_code == api.WSMAN_FAULT_BUSY
    protocol.send_command_input(shell_id, command_id, b"hostname\r\n", end=True)
    winhost.fault(target["name"], "receive_timeout", seconds=1.5)
    try:
        started = time.monotonic()
        with pytest.raises(WinRMOperationTimeoutError):
            protocol.get_command_output_raw(shell_id, command_id)
        # held for the rest of the fault's window (shorter than the 5 s OperationTimeout)
        assert 1.0 < time.monotonic() - started < 3
        stdout, _, code = protocol.get_command_output(shell_id, command_id)
    finally:
        winhost.clear_faults(target["name"])
    assert (stdout, code) == (f"{target['winhost_computer_name']}\r\n".encode(), 0)
    protocol.close_shell(shell_id)


def test_powershell_pipelines_with_pypsrp(target: dict[str, t.Any]) -> None:
    host = PSHost(None, None, False, "winhost-test", None, None, "1.0")
    with RunspacePool(psrp_wsman(target), host=host) as pool:
        ps = PowerShell(pool)
        ps.add_script("hostname")
        assert ps.invoke() == [target["winhost_computer_name"]]
        assert ps.state == PSInvocationState.COMPLETED

        ps = PowerShell(pool)
        ps.add_script("Get-Unicorn")
        assert ps.invoke() == []
        assert str(ps.streams.error[0]).startswith(
            "The term 'Get-Unicorn' is not recognized as the name of a cmdlet"
        )

        ps = PowerShell(pool)
        ps.add_script("exit 3")
        ps.invoke()
    assert host.rc == 3


def test_powershell_unknown_configuration(target: dict[str, t.Any]) -> None:
    pool = RunspacePool(psrp_wsman(target), configuration_name="Contoso.JEA")
    with pytest.raises(PsrpFault) as err:
        pool.open()
    assert "http://schemas.microsoft.com/powershell/Contoso.JEA" in err.value.reason
    # Windows' code for a configuration missing from the WS-Management catalog, through the router
    assert err.value.code == 2150858811
