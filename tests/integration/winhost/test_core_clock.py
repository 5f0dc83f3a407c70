"""A host clock offset (winhost.clock): the server process runs on the host's time."""

from __future__ import annotations

import email.utils
import time
from pathlib import Path

import pytest
import requests
from address_blocks import block

from winhost import clock
from winhost.pytest_plugin import start_session, stop_session

CLOCK_INDEX = block("core_clock").first  # an address of its own (address_blocks.py)


def test_a_host_with_a_clock_offset_dates_its_answers_on_its_own_time(tmp_path: Path) -> None:
    session = start_session(tmp_path / "clock", 1, "default", first=CLOCK_INDEX, clock_offset=-400)
    try:
        answer = requests.get(f"http://127.0.10.{CLOCK_INDEX}:5985/wsman", timeout=10)
        host_time = email.utils.parsedate_to_datetime(answer.headers["Date"]).timestamp()
        assert abs(host_time - (time.time() - 400)) <= 2
        assert session.state(session.hosts[0].name)["clock_offset_seconds"] == -400
    finally:
        stop_session(session)


def test_no_offset_leaves_the_environment_alone() -> None:
    assert clock.server_environment(0) == {}


def test_a_server_refuses_hosts_whose_offset_its_clock_does_not_have(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv("FAKETIME", raising=False)
    clock.require_process_offset([0.0, 0.0])
    with pytest.raises(clock.ClockError, match=r"--clock-offset"):
        clock.require_process_offset([660.0])
    monkeypatch.setenv("LD_PRELOAD", str(clock.libfaketime()))
    monkeypatch.setenv("FAKETIME", "+660")
    clock.require_process_offset([660.0])
    with pytest.raises(clock.ClockError, match="one offset per state directory"):
        clock.require_process_offset([660.0, 0.0])
