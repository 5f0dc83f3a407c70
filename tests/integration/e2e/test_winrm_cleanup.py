"""winops.remoting.winrm leaves nothing behind after a fault (issue 11, items 2 and 7).

Real ansible-playbook runs against winhost over HTTP with NTLM message encryption: the
combination where a request that goes out on a new TCP connection must authenticate afresh
before anything sealed is sent (the old connection's keys died with it; the host answers an
empty 400 to a message it cannot decrypt). After each fault, whether the task survived or
failed, winhost's shells for the user are back to what they were before the run
(`counters.open_shells`) and no command was started twice. Each case runs with kept sessions
(the default) and without (WINOPS_REMOTING_SESSION_PERSIST=false).
"""

from __future__ import annotations

import dataclasses
import time
import typing as t
from pathlib import Path

import pytest
from connection_matrix import COMBINATIONS_BY_NAME

PLUGIN = "winops.remoting.winrm"
COMBINATION = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    options: dict[str, t.Any]
    playbook: str = "ping.yml"
    must_pass: bool = False  # the fault hit an operation that is safe to repeat


FAULTS: tuple[Fault, ...] = (
    # The Create ran, its answer was cut: the retry's shell serves the task; the first one is
    # found by its name and deleted (item 7).
    Fault("drop-on-create", "drop", {"action": "Create"}, must_pass=True),
    Fault("drop-on-command", "drop", {"action": "Command"}),
    Fault("drop-on-receive", "drop", {"action": "Receive"}),
    Fault("drop-on-send", "drop", {"action": "Send"}, playbook="small-copy.yml"),
    Fault("drop-on-signal", "drop", {"action": "Signal"}, must_pass=True),
    Fault("drop-on-delete", "drop", {"action": "Delete"}, must_pass=True),
    # The answer arrives whole, then the host closes the connection (HTTP.sys's idle timer):
    # the next request, whatever it is, authenticates again first.
    Fault("close-after-create", "close", {"action": "Create"}, must_pass=True),
    Fault("close-after-command", "close", {"action": "Command"}, must_pass=True),
    Fault("close-after-receive", "close", {"action": "Receive"}, must_pass=True),
    Fault("close-after-send", "close", {"action": "Send"}, "small-copy.yml", must_pass=True),
    Fault("close-after-signal", "close", {"action": "Signal"}, must_pass=True),
)


def _hostvars(e2e: t.Any, persist: bool) -> dict[str, t.Any]:
    return {
        **e2e.host_vars(PLUGIN, COMBINATION, e2e.fault_target),
        "ansible_winrm_reconnection_retries": 3,
        "ansible_winrm_reconnection_backoff": 1,
        "ansible_winrm_session_persist": persist,
    }


def _open_shells(e2e: t.Any, host: str) -> int:
    return int(e2e.winhost.state(host)["counters"]["open_shells"])


def _shells_once_the_run_ended(e2e: t.Any, host: str, before: int) -> int:
    """The host's shells once the run's holders ended (they delete theirs just after it)."""
    deadline = time.monotonic() + 20
    while True:
        left = _open_shells(e2e, host)
        if left <= before or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.mark.parametrize("persist", [True, False], ids=["kept", "not-kept"])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_nothing_is_left_after_a_fault(e2e: t.Any, fault: Fault, persist: bool, tmp_path: Path):
    host = e2e.fault_target.name
    hostvars = _hostvars(e2e, persist)
    e2e.winhost.fault(host, "clear")
    shells_before = _open_shells(e2e, host)
    clean_commands = e2e.commands_of_clean_run(fault.playbook, hostvars, tmp_path / "clean")
    assert _shells_once_the_run_ended(e2e, host, shells_before) == shells_before
    commands_before = e2e.commands_started(host)
    e2e.winhost.fault(host, fault.kind, **fault.options)
    try:
        run = e2e.run(fault.playbook, {host: hostvars}, tmp_path / "faulted", e2e.fault_extra_vars)
        # A kept session deletes its shell just after the run: the fault may hit that Delete.
        left = _shells_once_the_run_ended(e2e, host, shells_before)
        unhit = e2e.armed_faults(host)
    finally:
        e2e.winhost.fault(host, "clear")
    started = e2e.commands_started(host) - commands_before
    failure = run.first_failure(host)
    e2e.log.record(
        "winrm cleanup",
        PLUGIN,
        f"{fault.name} ({'kept' if persist else 'not kept'})",
        "failed" if failure else "recovered",
        seconds=run.seconds,
        note=f"shells {shells_before}->{left}; commands {started}/{clean_commands}",
    )

    assert not unhit, f"the {fault.kind} fault was never hit: {unhit}\n{run.describe()}"
    assert left == shells_before, (
        f"{left - shells_before} shell(s) left on the host\n{run.describe()}"
    )
    assert started <= clean_commands, f"{started} commands started\n{run.describe()}"
    if fault.must_pass:
        assert run.returncode == 0, run.describe()
        assert started == clean_commands, run.describe()
