"""winops.remoting.winrm leaves nothing behind after a fault (issue 11, items 2 and 7).

Real ansible-playbook runs against winhost over HTTP with NTLM message encryption: the
combination where a request that goes out on a new TCP connection must authenticate afresh
before anything sealed is sent (the old connection's keys died with it; the host answers an
empty 400 to a message it cannot decrypt). After each fault, whether the task survived or
failed, winhost's shells for the user are back to what they were before the run
(`counters.open_shells`) and no command was started twice (a fetch cut off mid-answer is
started once more: it only reads). Each case runs with kept sessions
(the default) and without (WINOPS_REMOTING_SESSION_PERSIST=false).
"""

from __future__ import annotations

import dataclasses
import re
import typing as t
from pathlib import Path

import pytest
from connection_matrix import COMBINATIONS_BY_NAME
from payloads import Payload, random_file, sha1_of_file

PLUGIN = "winops.remoting.winrm"
COMBINATION = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]


@dataclasses.dataclass(frozen=True)
class Fault:
    name: str
    kind: str
    options: dict[str, t.Any]
    playbook: str = "ping.yml"
    must_pass: bool = False  # the fault hit an operation that is safe to repeat
    # Commands the operation may start again: a fetch only reads, so the session starts it again
    # after its output was cut off (core._chain.AnswerLost), and then it must succeed.
    reruns: int = 0


FAULTS: tuple[Fault, ...] = (
    # The Create ran, its answer was cut: the retry's shell serves the task; the first one is
    # found by its name and deleted (item 7).
    Fault("drop-on-create", "drop", {"action": "Create"}, must_pass=True),
    Fault("drop-on-command", "drop", {"action": "Command"}),
    Fault("drop-on-receive", "drop", {"action": "Receive"}),
    Fault("drop-on-send", "drop", {"action": "Send"}, playbook="small-copy.yml"),
    # In the middle of a 2 MB put (about 25 Sends) and fetch (about 20 Receives); the file on
    # the controller is then intact or absent, never truncated.
    Fault("drop-mid-put", "drop", {"action": "Send", "after": 8}, "put-big.yml"),
    Fault("drop-mid-fetch", "drop", {"action": "Receive", "after": 6}, "fetch-big.yml", True, 1),
    Fault("close-mid-put", "close", {"action": "Send", "after": 8}, "put-big.yml", True),
    Fault("close-mid-fetch", "close", {"action": "Receive", "after": 6}, "fetch-big.yml", True),
    # A finished command is released (Signal) between a kept session's tasks, or by the next
    # command of the task: win_copy runs several.
    Fault("drop-on-signal", "drop", {"action": "Signal"}, "small-copy.yml", must_pass=True),
    Fault("drop-on-delete", "drop", {"action": "Delete"}, must_pass=True),
    # The answer arrives whole, then the host closes the connection (HTTP.sys's idle timer):
    # the next request, whatever it is, authenticates again first.
    Fault("close-after-create", "close", {"action": "Create"}, must_pass=True),
    Fault("close-after-command", "close", {"action": "Command"}, must_pass=True),
    Fault("close-after-receive", "close", {"action": "Receive"}, must_pass=True),
    Fault("close-after-send", "close", {"action": "Send"}, "small-copy.yml", must_pass=True),
    Fault("close-after-signal", "close", {"action": "Signal"}, "small-copy.yml", must_pass=True),
)


def _hostvars(e2e: t.Any, persist: bool) -> dict[str, t.Any]:
    return {
        **e2e.host_vars(PLUGIN, COMBINATION, e2e.fault_target),
        "ansible_winrm_reconnection_retries": 3,
        "ansible_winrm_reconnection_backoff": 1,
        "ansible_winrm_session_persist": persist,
    }


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Payload:
    return random_file(tmp_path_factory.mktemp("big") / "big.bin", 2 * 1024 * 1024)


@pytest.mark.parametrize("persist", [True, False], ids=["kept", "not-kept"])
@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.name)
def test_nothing_is_left_after_a_fault(
    e2e: t.Any, fault: Fault, persist: bool, tmp_path: Path, big_file: Payload
):
    host = e2e.fault_target.name
    hostvars = _hostvars(e2e, persist)
    fetched = tmp_path / "fetched.bin"
    extra = {
        **e2e.fault_extra_vars,
        "big_file": str(big_file.path),
        "big_sha1": big_file.sha1,
        "fetch_dest": str(fetched),
    }
    e2e.winhost.fault(host, "clear")
    shells_before = e2e.open_shells_when_quiet(host)
    if fault.playbook == "fetch-big.yml":
        # the file to fetch
        put = e2e.run("put-big.yml", {host: hostvars}, tmp_path / "put", extra)
        assert put.returncode == 0, put.describe()
        assert e2e.open_shells_at_most(host, shells_before) == shells_before
    clean_commands = _commands_of_clean_run(e2e, fault.playbook, hostvars, tmp_path, extra)
    fetched.unlink(missing_ok=True)
    assert e2e.open_shells_at_most(host, shells_before) == shells_before
    commands_before = e2e.commands_run(host)
    e2e.winhost.fault(host, fault.kind, **fault.options)
    try:
        run = e2e.run(fault.playbook, {host: hostvars}, tmp_path / "faulted", extra)
        # A kept session deletes its shell just after the run: the fault may hit that Delete.
        left = e2e.open_shells_at_most(host, shells_before)
        unhit = e2e.armed_faults(host)
    finally:
        e2e.winhost.fault(host, "clear")
    started = e2e.commands_run(host) - commands_before
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
    expected = clean_commands + fault.reruns
    assert started <= expected, f"{started} commands started\n{run.describe()}"
    if fault.must_pass:
        assert run.returncode == 0, run.describe()
        assert started == expected, run.describe()
    if fetched.exists():
        assert sha1_of_file(fetched) == big_file.sha1, "a fetched file was left truncated"


def _commands_of_clean_run(
    e2e: t.Any, playbook: str, hostvars: dict[str, t.Any], tmp_path: Path, extra: dict[str, t.Any]
) -> int:
    host = e2e.fault_target.name
    before = e2e.commands_run(host)
    run = e2e.run(playbook, {host: hostvars}, tmp_path / "clean", extra)
    assert run.returncode == 0, f"the clean run failed\n{run.describe()}"
    return e2e.commands_run(host) - before


@pytest.mark.parametrize("persist", [True, False], ids=["kept", "not-kept"])
def test_a_task_timeout_stops_the_command_and_deletes_the_shell(
    e2e: t.Any, persist: bool, tmp_path: Path
):
    host = e2e.fault_target.name
    e2e.winhost.fault(host, "clear")
    shells_before = e2e.open_shells_when_quiet(host)
    running_before = e2e.running_commands_at_most(host, 0, limit=5)
    run = e2e.run(
        "long-command.yml", {host: _hostvars(e2e, persist)}, tmp_path, e2e.fault_extra_vars
    )
    failure = run.first_failure(host)
    assert failure is not None, run.describe()
    # ansible-core 2.19+ words it "Timed out after 5 second(s)", older ones "...the expected
    # time frame (5)...".
    assert re.search(r"Timed out after 5 second|expected time frame \(5\)", failure.message), (
        run.describe()
    )
    # The command sleeps 120 s; the task's timeout is 5 s.
    assert run.seconds < 60, run.describe()
    left = e2e.open_shells_at_most(host, shells_before)
    running = e2e.running_commands_at_most(host, 0, limit=5)
    e2e.log.record(
        "winrm cleanup",
        PLUGIN,
        f"task timeout ({'kept' if persist else 'not kept'})",
        "failed",
        seconds=run.seconds,
        note=f"shells {shells_before}->{left}; running {running}",
    )
    assert running == running_before, run.describe()
    assert left == shells_before, run.describe()
