"""What our plugins do when winhost misbehaves (issue 3, item 3).

Each case arms one of winhost's faults (tests/winhost/winhost/faults.py), runs a real
`ansible-playbook`, and asserts either that the run recovered (the operation hit was safe to
repeat) or that it failed with a message naming what happened. In every case the number of
commands winhost started is checked: a command is never started twice.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

import pytest
from connection_matrix import COMBINATIONS_BY_NAME, OUR_PLUGINS

RECOVERS = "recovers"
FAILS = "fails clearly"
EITHER = "recovers or fails clearly"


@dataclasses.dataclass(frozen=True)
class FaultCase:
    name: str
    kind: str
    options: dict[str, t.Any]
    outcome: str  # RECOVERS, FAILS or EITHER
    message: str = ""  # regular expression for the failure message (FAILS / EITHER)
    commands: int = 1  # commands winhost must have started for the task (never more)
    # ansible_<winrm|psrp>_reconnection_retries for the case (None: the plugin default)
    retries: int | None = None
    playbook: str = "ping.yml"
    # (operation timeout, read timeout) in seconds for the case (None: the plugin defaults)
    timeouts: tuple[int, int] | None = None


CASES: tuple[FaultCase, ...] = (
    # The Receive ran and its output was half sent: output may be lost, so a retry that ends
    # with the module's full result or a clear failure are both honest; a second command is not.
    FaultCase(
        "drop-on-receive",
        "drop",
        {"action": "Receive"},
        EITHER,
        message=r"(?i)connection broken|incomplete|closed|reset",
        retries=3,
    ),
    # The Command request ran on the host but its response was lost: repeating it could run
    # the module twice, so the run must stop and say so.
    FaultCase(
        "drop-on-command",
        "drop",
        {"action": "Command"},
        FAILS,
        message=r"(?s)the connection broke while the host was sending its answer.*never repeated",
        retries=3,
    ),
    # The host answers the shell Create, then closes the connection (HTTP.sys's idle timer, a
    # proxy): the next request goes out on a new connection. Over http its message encryption
    # belongs to the closed one, so unless the plugin authenticates afresh the host cannot
    # decrypt it (an empty 400): that must be named, not "HTTP 400, raise retries".
    FaultCase(
        "close-after-create",
        "close",
        {"action": "Create"},
        EITHER,
        message=r"(?s)message encryption failed.*could not decrypt a message.*new connection",
    ),
    # A slow host within the read timeout is simply waited for.
    FaultCase("delay", "delay", {"seconds": 3, "count": 3}, RECOVERS),
    # The host refused to run Command (HTTP 500, w:InternalError): nothing ran, clear failure.
    FaultCase(
        "http500-on-command",
        "http500",
        {"action": "Command"},
        FAILS,
        message=r"(?i)internal error|InternalError|500",
        commands=0,
    ),
    # Receive answering w:TimedOut for a while is normal for a long command: keep receiving.
    FaultCase("receive-timeout", "receive_timeout", {"seconds": 8}, RECOVERS),
    # ERROR_BUSY on Send: the input was not taken, so both plugins send it again (issue 11,
    # item 8: psrp used to fail); a second command is never started.
    FaultCase("busy-on-send", "busy", {"count": 1}, RECOVERS, playbook="small-copy.yml"),
    # No answer to a Receive within the read timeout: the answer may have carried output that
    # Windows hands out once, so neither plugin repeats the Receive (psrp used to, through
    # pypsrp's own five repeats).
    FaultCase(
        "read-timeout-on-receive",
        "delay",
        {"seconds": 6, "action": "Receive"},
        FAILS,
        message=r"did not answer within the read timeout",
        timeouts=(2, 3),
    ),
    # Shell quota exceeded on Create: no shell, no command.
    FaultCase(
        "shell-quota",
        "quota",
        {"count": 1},
        EITHER,
        message=r"(?i)quota|concurrent shells",
    ),
    # A reboot of 6 s: connection refused, retried with backoff until the host is back.
    FaultCase("reboot-with-retries", "reboot", {"seconds": 6}, RECOVERS, retries=6),
    # The same reboot without reconnection retries: a clear connection failure.
    FaultCase(
        "reboot-without-retries",
        "reboot",
        {"seconds": 6},
        FAILS,
        message=r"(?i)refused|connect",
        commands=0,
        retries=0,
    ),
)


def _retry_vars(plugin: str, retries: int | None) -> dict[str, t.Any]:
    if retries is None:
        return {}
    family = plugin.rsplit(".", 1)[1]
    return {
        f"ansible_{family}_reconnection_retries": retries,
        f"ansible_{family}_reconnection_backoff": 1,
    }


def _timeout_vars(plugin: str, timeouts: tuple[int, int] | None) -> dict[str, t.Any]:
    if timeouts is None:
        return {}
    operation, read = timeouts
    if plugin.endswith("winrm"):
        return {
            "ansible_winrm_operation_timeout_sec": operation,
            "ansible_winrm_read_timeout_sec": read,
        }
    return {"ansible_psrp_operation_timeout": operation, "ansible_psrp_read_timeout": read}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_fault(plugin, case: FaultCase, e2e, tmp_path):
    target = e2e.fault_target
    combo = COMBINATIONS_BY_NAME["http-negotiate"]
    hostvars = (
        e2e.host_vars(plugin, combo, target)
        | _retry_vars(plugin, case.retries)
        | _timeout_vars(plugin, case.timeouts)
    )
    extra = e2e.fault_extra_vars

    e2e.winhost.fault(target.name, "clear")
    clean_run_commands = e2e.commands_of_clean_run(case.playbook, hostvars, tmp_path / "clean")
    before = e2e.commands_run(target.name)
    e2e.winhost.fault(target.name, case.kind, **case.options)
    try:
        run = e2e.run(case.playbook, {target.name: hostvars}, tmp_path / "faulted", extra)
        remaining = e2e.armed_faults(target.name)
    finally:
        e2e.winhost.fault(target.name, "clear")
    started = e2e.commands_run(target.name) - before

    if case.kind not in {"reboot", "receive_timeout"}:
        assert not remaining, f"the {case.kind} fault was never hit: {remaining}\n{run.describe()}"
    failure = run.first_failure(target.name)
    e2e.log.record(
        "fault cases",
        plugin,
        case.name,
        f"{'failed' if failure else 'recovered'} ({case.outcome})",
        seconds=run.seconds,
        note=f"commands {started}/{clean_run_commands}; " + (failure.message if failure else ""),
    )
    if case.outcome == RECOVERS or (case.outcome == EITHER and failure is None):
        assert run.returncode == 0, run.describe()
        assert started == clean_run_commands, (
            f"{started} commands started, a clean run starts {clean_run_commands}\n{run.describe()}"
        )
    else:
        assert failure is not None, f"expected a clear failure\n{run.describe()}"
        assert re.search(case.message, failure.message), run.describe()
        assert started <= case.commands, f"{started} commands started\n{run.describe()}"


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_fault_answered_to_a_command_fails_the_task_and_the_host_stays(plugin, e2e, tmp_path):
    """The host answered the command with a fault: the task FAILED, as with the builtin
    plugins, so ignore_errors applies and the play goes on with the host. A connection failure
    would make it UNREACHABLE, which ignore_errors does not cover, and end its play."""
    import yaml

    target = e2e.fault_target
    hostvars = e2e.host_vars(plugin, COMBINATIONS_BY_NAME["http-negotiate"], target)
    tasks = [
        {"name": "one", "ansible.builtin.raw": "echo one"},
        {"name": "two", "ansible.builtin.raw": "echo two", "ignore_errors": True},
        {"name": "three", "ansible.builtin.raw": "echo three"},
    ]
    play = {"name": "a fault", "hosts": "{{ e2e_target }}", "gather_facts": False, "tasks": tasks}
    playbook = tmp_path / "ignored.yml"
    playbook.write_text(yaml.safe_dump([play], sort_keys=False))
    e2e.winhost.fault(target.name, "clear")
    e2e.winhost.fault(target.name, "http500", action="Command", after=1)
    try:
        run = e2e.run(str(playbook), {target.name: hostvars}, tmp_path, e2e.fault_extra_vars)
    finally:
        e2e.winhost.fault(target.name, "clear")
    two = run.task(target.name, "two")
    assert two.failed and not two.result.get("unreachable"), run.describe()
    assert "failed on" in str(two.result.get("msg")), run.describe()
    assert not run.task(target.name, "three").failed, run.describe()
    assert run.returncode == 0, run.describe()
