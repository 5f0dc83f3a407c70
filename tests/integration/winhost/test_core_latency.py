"""The opt-in latency profile (winhost.latency): winhost sleeps each modelled cost at the
operation that pays it on Windows, and counts what it slept. These tests read winhost's own
tallies (and lower bounds of winhost's answer times); nothing here times our plugins."""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest
from address_blocks import block
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan
from winrm.protocol import Protocol

from winhost import cli, latency
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

LATENCY_INDEX = block("core_latency").first  # an address of its own (address_blocks.py)
WINDOWS = latency.WINDOWS


def _paid(session: WinhostSession, host: str) -> dict[str, dict[str, float]]:
    state = session.state(host)["latency"]
    return t.cast("dict[str, dict[str, float]]", state["paid"])


def _counts(paid: dict[str, dict[str, float]]) -> dict[str, int]:
    return {operation: int(entry["count"]) for operation, entry in paid.items()}


def test_the_windows_profile_sleeps_at_logon_shell_process_pool_and_pipeline(
    tmp_path: Path,
) -> None:
    session = start_session(
        tmp_path / "latency", 1, "default", first=LATENCY_INDEX, latency_profile="windows"
    )
    try:
        host = session.hosts[0]
        user, password = session.credentials(host.name)
        assert session.state(host.name)["latency"] == {"profile": "windows", "paid": {}}

        # WinRS: one connection, one shell, one command line naming powershell.exe.
        protocol = Protocol(
            endpoint=host.http_endpoint, transport="ntlm", username=user, password=password
        )
        started = time.monotonic()
        shell_id = protocol.open_shell()
        shell_seconds = time.monotonic() - started
        command_id = protocol.run_command(
            shell_id, "powershell.exe", ["-NoProfile", "-Command", "'latency'"]
        )
        answered = time.monotonic()
        stdout, _, rc = protocol.get_command_output(shell_id, command_id)
        output_seconds = time.monotonic() - answered
        protocol.cleanup_command(shell_id, command_id)
        protocol.close_shell(shell_id)
        assert (rc, stdout.strip()) == (0, b"latency")

        paid = _paid(session, host.name)
        counts = _counts(paid)
        assert {op: counts.get(op, 0) for op in latency.OPERATIONS if op != "round_trip"} == {
            "logon": 1,
            "shell_create": 1,
            "process_cmd": 1,
            "process_powershell": 1,
            "pool_open": 0,
            "pipeline": 0,
        }
        requests = int(session.state(host.name)["counters"]["requests"])
        # Every POST pays a round trip: the processed ones and the NTLM 401 leg before them.
        assert counts["round_trip"] > requests >= 5
        for operation, entry in paid.items():
            assert entry["seconds"] == pytest.approx(entry["count"] * WINDOWS.cost(operation))
        # The sleep really delays the answer: Create waited at least logon + shell start.
        assert shell_seconds >= WINDOWS.cost("logon") + WINDOWS.cost("shell_create")
        # cmd.exe and powershell.exe start themselves after the Command's answer (CreateProcess
        # does not wait for that): the command's output waits for both.
        assert output_seconds >= WINDOWS.cost("process_cmd") + WINDOWS.cost("process_powershell")

        # PSRP: a second connection (a second logon), one pool, one pipeline.
        wsman = WSMan(
            host.address, port=5985, ssl=False, auth="ntlm", username=user, password=password
        )
        started = time.monotonic()
        with RunspacePool(wsman) as pool:
            pool_seconds = time.monotonic() - started
            shell = PowerShell(pool)
            shell.add_script("'pipeline'")
            assert shell.invoke() == ["pipeline"]
        counts = _counts(_paid(session, host.name))
        assert (counts["logon"], counts["pool_open"], counts["pipeline"]) == (2, 1, 1)
        assert (counts["shell_create"], counts["process_cmd"]) == (1, 1)
        assert pool_seconds >= WINDOWS.cost("pool_open")
    finally:
        stop_session(session)


def test_without_a_profile_winhost_sleeps_nothing_but_still_counts(
    winhost: WinhostSession,
) -> None:
    host = winhost.hosts[0]
    user, password = winhost.credentials(host.name)
    before = _counts(_paid(winhost, host.name))
    protocol = Protocol(
        endpoint=host.http_endpoint, transport="ntlm", username=user, password=password
    )
    shell_id = protocol.open_shell()
    command_id = protocol.run_command(shell_id, "cmd.exe", ["/c", "echo", "free"])
    protocol.get_command_output(shell_id, command_id)
    protocol.cleanup_command(shell_id, command_id)
    protocol.close_shell(shell_id)
    state = winhost.state(host.name)["latency"]
    assert state["profile"] == "none"
    assert all(entry["seconds"] == 0 for entry in state["paid"].values())
    after = _counts(state["paid"])
    added = {op: after.get(op, 0) - before.get(op, 0) for op in latency.OPERATIONS}
    assert {op: n for op, n in added.items() if op != "round_trip"} == {
        "logon": 1,
        "shell_create": 1,
        "process_cmd": 1,
        "process_powershell": 0,
        "pool_open": 0,
        "pipeline": 0,
    }


def test_an_unknown_profile_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(cli.StartError, match=r"--latency 'lan' is unknown; allowed: none, windows"):
        cli.start(tmp_path / "refused", 1, first=LATENCY_INDEX, latency_profile="lan")
    assert not (tmp_path / "refused").exists()


@pytest.mark.parametrize(
    ("action", "uri", "expected"),
    [
        ("transfer/Create", "windows/shell/cmd", ["shell_create"]),
        ("transfer/Create", "powershell/Microsoft.PowerShell", ["pool_open"]),
        ("shell/Command", "windows/shell/cmd", []),
        ("shell/Command", "powershell/Microsoft.PowerShell", ["pipeline"]),
        ("shell/Receive", "windows/shell/cmd", []),
        ("shell/Send", "powershell/Microsoft.PowerShell", []),
    ],
)
def test_each_shell_request_pays_the_operations_windows_performs_before_answering(
    action: str, uri: str, expected: list[str]
) -> None:
    prefix = {
        "transfer/Create": "http://schemas.xmlsoap.org/ws/2004/09/",
        "shell/Command": "http://schemas.microsoft.com/wbem/wsman/1/windows/",
        "shell/Receive": "http://schemas.microsoft.com/wbem/wsman/1/windows/",
        "shell/Send": "http://schemas.microsoft.com/wbem/wsman/1/windows/",
    }[action]
    resource = (
        f"http://schemas.microsoft.com/{uri}"
        if uri.startswith("powershell/")
        else f"http://schemas.microsoft.com/wbem/wsman/1/{uri}"
    )
    assert latency.shell_operations(prefix + action, resource) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("ipconfig", ["process_cmd"]),
        (
            "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\PowerShell.EXE -NoProfile",
            ["process_cmd", "process_powershell"],
        ),
        ("pwsh.exe -c 1", ["process_cmd", "process_powershell"]),
        ('"powershell" -EncodedCommand AA==', ["process_cmd", "process_powershell"]),
        (
            '"C:\\Program Files\\PowerShell\\7\\pwsh.exe" -c 1',
            ["process_cmd", "process_powershell"],
        ),
        ('"C:\\Program Files\\tool.exe" powershell', ["process_cmd"]),
        ("", ["process_cmd"]),
    ],
)
def test_a_winrs_command_pays_its_processes_start_up_after_the_answer(
    line: str, expected: list[str]
) -> None:
    assert latency.start_up_operations(line) == expected


def test_a_cost_of_an_unmodelled_operation_fails_loudly() -> None:
    with pytest.raises(latency.LatencyError, match="winhost does not model the cost of 'reboot'"):
        latency.WINDOWS.cost("reboot")
