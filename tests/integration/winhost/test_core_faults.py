"""winhost's HTTP-level fault injection and its command line, over real sockets."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
import requests
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from address_blocks import block
from core_helpers import config_get, local_values

from winhost.pytest_plugin import WinhostSession

REPO = Path(__file__).resolve().parents[3]
CLI_INDEX = block("core_faults_cli").first  # the CLI test's own host (address_blocks.py)


@pytest.fixture(scope="module")
def target(winhost: WinhostSession) -> dict[str, t.Any]:
    host = winhost.hosts[-1]
    return {"name": host.name, **winhost.host_vars(host.name)}


@pytest.fixture
def client(winhost: WinhostSession, target: dict[str, t.Any]) -> t.Iterator[Protocol]:
    yield Protocol(
        endpoint=f"https://{target['ansible_host']}:5986/wsman",
        transport="ntlm",
        username=target["ansible_user"],
        password=target["ansible_password"],
        ca_trust_path=target["winhost_ca_bundle"],
    )
    winhost.clear_faults(target["name"])


def test_http500_fault_is_a_wsman_fault_and_consumed(
    winhost: WinhostSession, target: dict[str, t.Any], client: Protocol
) -> None:
    winhost.fault(target["name"], "http500", count=1, action="Get")
    assert [f["kind"] for f in winhost.state(target["name"])["faults"]] == ["http500"]
    with pytest.raises(WSManFaultError) as info:
        config_get(client)
    assert info.value.code == 500
    assert info.value.fault_subcode == "w:InternalError"
    assert local_values(config_get(client))["Negotiate"] == "true", "count=1: only one request hit"
    assert winhost.state(target["name"])["faults"] == []


def test_drop_cuts_the_response(
    winhost: WinhostSession, target: dict[str, t.Any], client: Protocol
) -> None:
    config_get(client)  # authenticate first, so the fault hits the request itself
    winhost.fault(target["name"], "drop")
    # Half a body then EOF: requests reports the broken read (IncompleteRead), not a refusal.
    with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
        config_get(client)
    assert local_values(config_get(client))["Negotiate"] == "true"


def test_delay(winhost: WinhostSession, target: dict[str, t.Any], client: Protocol) -> None:
    config_get(client)
    winhost.fault(target["name"], "delay", seconds=1.5)
    started = time.monotonic()
    config_get(client)
    assert time.monotonic() - started >= 1.5
    started = time.monotonic()
    config_get(client)
    assert time.monotonic() - started < 1.5


def _refused(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_reboot_refuses_connections_then_comes_back(
    winhost: WinhostSession, target: dict[str, t.Any], client: Protocol
) -> None:
    config_get(client)
    winhost.fault(target["name"], "reboot", seconds=3)
    address = target["ansible_host"]
    assert _refused(address, 5985) and _refused(address, 5986)
    with pytest.raises(requests.exceptions.ConnectionError):
        config_get(client)  # the kept-alive connection was cut too
    assert winhost.state(target["name"])["runtime"]["down"] is True
    deadline = time.monotonic() + 15
    while _refused(address, 5986) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert local_values(config_get(client))["Negotiate"] == "true"


def test_receive_timeout_is_armed_for_a_while(
    winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    fault = winhost.fault(target["name"], "receive_timeout", seconds=2)
    assert fault["kind"] == "receive_timeout" and 0 < fault["remaining_seconds"] <= 2
    assert [f["kind"] for f in winhost.state(target["name"])["faults"]] == ["receive_timeout"]
    time.sleep(2.2)
    assert winhost.state(target["name"])["faults"] == []


def test_bad_fault_requests_name_the_problem(
    winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    from winhost.faults import FaultError

    with pytest.raises(FaultError, match="unknown fault kind 'melt'"):
        winhost.fault(target["name"], "melt")
    with pytest.raises(FaultError, match="option seconds=N is required"):
        winhost.fault(target["name"], "delay")
    with pytest.raises(FaultError, match=r"unknown option\(s\) colour"):
        winhost.fault(target["name"], "busy", colour="red")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "tests" / "winhost"))
    return subprocess.run(
        [sys.executable, "-m", "winhost", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_command_line(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    started = _cli(
        "start", "--state-dir", str(state_dir), "--profile", "stock", "--first", str(CLI_INDEX)
    )
    assert started.returncode == 0, started.stderr
    try:
        inventory = state_dir / "inventory.yml"
        assert stat.S_IMODE(inventory.stat().st_mode) == 0o600
        assert f"ansible_host: 127.0.10.{CLI_INDEX}" in inventory.read_text(encoding="utf-8")
        state = _cli("state", "--state-dir", str(state_dir), f"win{CLI_INDEX}")
        assert state.returncode == 0, state.stderr
        assert '"profile": "stock"' in state.stdout and "Pässw0rd" not in state.stdout
        # stock = Enable-PSRemoting only: no HTTPS listener
        assert _refused(f"127.0.10.{CLI_INDEX}", 5986)
        assert not _refused(f"127.0.10.{CLI_INDEX}", 5985)
        bad = _cli(
            "fault", "--state-dir", str(state_dir), f"win{CLI_INDEX}", "delay", "seconds=soon"
        )
        assert bad.returncode == 1 and "seconds='soon' is not a number" in bad.stderr
        unknown = _cli("state", "--state-dir", str(state_dir), "win999")
        assert unknown.returncode == 1 and "host 'win999' is unknown" in unknown.stderr
    finally:
        stopped = _cli("stop", "--state-dir", str(state_dir))
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert _refused(f"127.0.10.{CLI_INDEX}", 5985)
    assert not (state_dir / "control.sock").exists()


def test_shell_faults_over_sockets(
    winhost: WinhostSession, target: dict[str, t.Any], client: Protocol
) -> None:
    """The shell-level faults, answered by the shells layer through faults' query API."""
    winhost.fault(target["name"], "quota")
    with pytest.raises(WSManFaultError) as info:
        client.open_shell()
    assert info.value.wsman_fault_code == 2150859173 and info.value.fault_subcode == "w:QuotaLimit"

    shell_id = client.open_shell()
    try:
        command_id = client.run_command(shell_id, "cmd.exe", ["/c", "hostname"])
        winhost.fault(target["name"], "busy")
        with pytest.raises(WSManFaultError) as info:
            client.send_command_input(shell_id, command_id, b"x", end=True)
        assert info.value.wsman_fault_code == 170

        winhost.fault(target["name"], "receive_timeout", seconds=2)
        started = time.monotonic()
        stdout, _, code = client.get_command_output(shell_id, command_id)  # pywinrm retries
        assert time.monotonic() - started >= 1.5
        assert code == 0 and stdout.strip() == target["winhost_computer_name"].encode()
        client.cleanup_command(shell_id, command_id)
    finally:
        client.close_shell(shell_id)


def test_after_lets_the_first_matching_requests_pass(
    winhost: WinhostSession, target: dict[str, t.Any], client: Protocol
) -> None:
    winhost.fault(target["name"], "http500", action="Get", after=1)
    assert local_values(config_get(client))["Negotiate"] == "true", "after=1: the first passes"
    with pytest.raises(WSManFaultError) as info:
        config_get(client)
    assert info.value.code == 500
    assert winhost.state(target["name"])["faults"] == []
