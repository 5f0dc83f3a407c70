"""Kept sessions (docs/sessions.md): one logon and one shell or pool per host for a whole run.

Real ansible-playbook runs against winhost over HTTP with NTLM message encryption, the
combination where a kept connection is most fragile. winhost's tallies (`latency.paid`) count
logons, WinRS shells and runspace pools whatever the latency profile; `counters.open_shells`
says what is left on the host.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest
from ansible_run import ansible_environment, ansible_playbook_executable, write_overlay
from connection_matrix import COMBINATIONS_BY_NAME, OUR_PLUGINS

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _channel, _place
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
    PIPELINES_PER_POOL,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
    COMMANDS_PER_SHELL,
)

COMBINATION = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]
TASKS = 8
# What opens a session on the host: a WinRS shell for winrm, a runspace pool for psrp.
OPENED = {"winops.remoting.winrm": "shell_create", "winops.remoting.psrp": "pool_open"}
# The set-up operations winhost counts per host (tests/winhost/winhost/latency.py).
PAID = ("logon", "shell_create", "pool_open")


def _pings(path: Path, tasks: int, between: list[dict[str, t.Any]] | None = None) -> Path:
    import yaml

    steps: list[dict[str, t.Any]] = [
        {"name": f"ping {number}", "ansible.windows.win_ping": {}} for number in range(tasks)
    ]
    if between:
        steps[1:1] = between
    play = {"name": "kept sessions", "hosts": "{{ e2e_target }}", "gather_facts": False}
    path.write_text(yaml.safe_dump([{**play, "tasks": steps}], sort_keys=False))
    return path


def _tally(e2e: t.Any, host: str) -> dict[str, int]:
    tally = {operation: e2e.paid(host, operation) for operation in PAID}
    return {**tally, "open_shells": e2e.open_shells(host)}


def _tally_when_quiet(e2e: t.Any, host: str) -> dict[str, int]:
    e2e.open_shells_when_quiet(host)
    return _tally(e2e, host)


def _run(e2e: t.Any, plugin: str, playbook: Path, work_dir: Path, **hostvars: t.Any) -> t.Any:
    target = e2e.matrix_target
    overlay = {target.name: {**e2e.host_vars(plugin, COMBINATION, target), **hostvars}}
    return e2e.run(str(playbook), overlay, work_dir, {"e2e_target": target.name})


def _ping_loop(path: Path, pings: int) -> Path:
    import yaml

    loop = {"name": "ping in a loop", "ansible.windows.win_ping": {}, "loop": list(range(pings))}
    play = {"name": "a long run", "hosts": "{{ e2e_target }}", "gather_facts": False}
    path.write_text(yaml.safe_dump([{**play, "tasks": [loop]}], sort_keys=False))
    return path


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_run_logs_on_and_opens_a_shell_or_pool_once_per_host(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    host = e2e.matrix_target.name
    before = _tally_when_quiet(e2e, host)
    directories_before = set(_run_directories())
    run = _run(e2e, plugin, _pings(tmp_path / "pings.yml", TASKS), tmp_path)
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    assert after["logon"] - before["logon"] == 1, (before, after)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 1, (before, after)
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]
    # The run's directory held its session's socket and the code and options its later tasks
    # read (kept._run_cache): its last holder removes them all when the run has ended.
    assert _ended_runs_left(directories_before, within=30) == {}


@pytest.mark.parametrize("start_ahead", [True, False], ids=["start-ahead", "off"])
def test_winrm_starts_the_next_module_ahead_and_runs_each_once(
    e2e: t.Any, tmp_path: Path, start_ahead: bool
) -> None:
    """With session_start_ahead, each module task after the first finds its powershell.exe
    started: the host starts two commands more than there are tasks, the ones started for
    tasks that never came, which run nothing and end with the shell."""
    host = e2e.matrix_target.name
    before = _tally_when_quiet(e2e, host)
    counters_before = e2e.winhost.state(host)["counters"]
    run_before = e2e.commands_run(host)
    run = _run(
        e2e,
        "winops.remoting.winrm",
        _pings(tmp_path / "pings.yml", TASKS),
        tmp_path,
        ansible_winrm_session_start_ahead=start_ahead,
    )
    assert run.returncode == 0, run.describe()
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]
    running_before = counters_before["running_commands"]
    assert e2e.running_commands_at_most(host, running_before) == running_before
    assert e2e.commands_run(host) - run_before == TASKS
    started = e2e.winhost.state(host)["counters"]["commands_started"]
    assert started - counters_before["commands_started"] == TASKS + (2 if start_ahead else 0), (
        run.describe()
    )


@pytest.mark.parametrize("start_ahead", [True, False], ids=["start-ahead", "off"])
def test_psrp_creates_the_next_module_pipeline_ahead_and_runs_each_once(
    e2e: t.Any, tmp_path: Path, start_ahead: bool
) -> None:
    """With session_start_ahead, each module task after the first finds its pipeline created:
    the host gets one Command more than there are tasks, for the task that never came, which
    ran nothing and ends with the pool. A raw task between them runs beside the pipeline that
    waits (the kept pool has two runspaces; with one, Windows would queue it for good, which
    winhost refuses)."""
    host = e2e.matrix_target.name
    before = _tally_when_quiet(e2e, host)
    counters_before = e2e.winhost.state(host)["counters"]
    run_before = e2e.commands_run(host)
    raw = {"name": "raw in between", "ansible.builtin.raw": "Write-Output between"}
    run = _run(
        e2e,
        "winops.remoting.psrp",
        _pings(tmp_path / "pings.yml", TASKS, between=[raw]),
        tmp_path,
        ansible_psrp_session_start_ahead=start_ahead,
    )
    assert run.returncode == 0, run.describe()
    assert "between" in run.describe()
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]
    running_before = counters_before["running_commands"]
    assert e2e.running_commands_at_most(host, running_before) == running_before
    assert e2e.commands_run(host) - run_before == TASKS + 1
    started = e2e.winhost.state(host)["counters"]["commands_started"]
    assert started - counters_before["commands_started"] == TASKS + 1 + (1 if start_ahead else 0), (
        run.describe()
    )
    after = _tally(e2e, host)
    assert after["pool_open"] - before["pool_open"] == 1, (before, after)


# Commands a kept session runs before it is renewed, and the logons a renewal costs: a new
# pool is a new connection, a new shell is made on the same one.
RENEWAL = {
    "winops.remoting.psrp": (PIPELINES_PER_POOL, 2),
    "winops.remoting.winrm": (COMMANDS_PER_SHELL, 1),
}


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_kept_shell_or_pool_is_renewed_after_its_share_of_commands(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """psrp: what each module run loads into a pool's wsmprovhost process stays there
    (docs/sessions.md); winrm: Windows holds every command of a cmd shell against the user's
    operations quota until the shell is deleted (docs/winhost-behaviours.md). So the holder
    replaces a pool after PIPELINES_PER_POOL pipelines and a shell after COMMANDS_PER_SHELL
    commands, between two of them."""
    host = e2e.matrix_target.name
    share, logons = RENEWAL[plugin]
    pings = share + 5
    before = _tally_when_quiet(e2e, host)
    commands_before = e2e.commands_run(host)
    run = _run(e2e, plugin, _ping_loop(tmp_path / "loop.yml", pings), tmp_path)
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 2, (before, after)
    assert after["logon"] - before["logon"] == logons, (before, after)
    # One command per ping, none run twice across the renewal; the first one was closed.
    assert e2e.commands_run(host) - commands_before == pings
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]


def _set_operations_quota(e2e: t.Any, value: int) -> None:
    """`winrm set winrm/config/service @{MaxConcurrentOperationsPerUser="N"}`."""
    e2e.winrm_set(
        e2e.matrix_target, "config/service", "Service", MaxConcurrentOperationsPerUser=str(value)
    )


def test_a_host_with_a_small_operations_quota_gets_a_new_shell_when_it_refuses(
    e2e: t.Any, tmp_path: Path
) -> None:
    """A host whose MaxConcurrentOperationsPerUser was lowered refuses a Command in the kept
    shell before COMMANDS_PER_SHELL: the session replaces the shell and starts the command
    there once, and the run goes on."""
    host = e2e.matrix_target.name
    tasks = 14
    _set_operations_quota(e2e, 10)
    try:
        before = _tally_when_quiet(e2e, host)
        commands_before = e2e.commands_run(host)
        run = _run(e2e, "winops.remoting.winrm", _pings(tmp_path / "pings.yml", tasks), tmp_path)
        after = _tally(e2e, host)
    finally:
        _set_operations_quota(e2e, 1500)
    assert run.returncode == 0, run.describe()
    assert after["shell_create"] - before["shell_create"] >= 2, (before, after)
    assert after["logon"] - before["logon"] == 1, (before, after)
    assert e2e.commands_run(host) - commands_before == tasks
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_tasks_delegated_to_one_host_at_once_do_not_wait_for_its_kept_session(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """delegate_to from several hosts to one Windows host (a domain controller, say): a task
    that comes while the kept session runs another task's command does not wait its turn. It
    opens a session of its own, as the builtin plugins' tasks do, and closes it."""
    import yaml

    host = e2e.matrix_target.name
    delegators = [f"delegator-{number}" for number in range(1, 4)]
    on_host = {"delegate_to": "{{ e2e_target }}"}
    tasks = [
        {"name": "open the kept session", "ansible.windows.win_ping": {}, "run_once": True},
        {"name": "sleep on the host", "ansible.windows.win_shell": "Start-Sleep -Seconds 3"},
    ]
    play = {"name": "delegated", "hosts": ",".join(delegators), "gather_facts": False}
    playbook = tmp_path / "delegated.yml"
    playbook.write_text(
        yaml.safe_dump([{**play, "tasks": [{**task, **on_host} for task in tasks]}])
    )
    overlay = {
        host: e2e.host_vars(plugin, COMBINATION, e2e.matrix_target),
        **{name: {"ansible_connection": "local"} for name in delegators},
    }
    before = _tally_when_quiet(e2e, host)
    run = e2e.run(str(playbook), overlay, tmp_path, {"e2e_target": host}, forks=3)
    assert run.returncode == 0, run.describe()
    spans = []
    for name in delegators:
        result = run.task(name, "sleep on the host").result
        spans.append(
            tuple(datetime.datetime.fromisoformat(result[key]) for key in ("start", "end"))
        )
    # The three sleeps ran on the host at the same time, so in three sessions: the kept one
    # and two of the tasks' own, closed when their tasks ended.
    assert max(start for start, _end in spans) < min(end for _start, end in spans), spans
    after = _tally(e2e, host)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 3, (before, after)
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_run_keeps_no_more_sessions_than_session_max_kept(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """Every kept session is a process on the controller (docs/sessions.md): past the limit,
    a host's tasks open and close their own, as with persistence off."""
    targets = [e2e.matrix_target, e2e.negative_target]
    assert len({target.name for target in targets}) == 2, "winhost serves one host only"
    variable = f"ansible_{plugin.rsplit('.', 1)[1]}_session_max_kept"
    overlay = {
        target.name: {**e2e.host_vars(plugin, COMBINATION, target), variable: 1}
        for target in targets
    }
    before = {target.name: _tally_when_quiet(e2e, target.name) for target in targets}
    playbook = _pings(tmp_path / "pings.yml", TASKS)
    hosts = ",".join(target.name for target in targets)
    run = e2e.run(str(playbook), overlay, tmp_path, {"e2e_target": hosts}, forks=1)
    assert run.returncode == 0, run.describe()
    opened = sorted(
        _tally(e2e, name)[OPENED[plugin]] - tally[OPENED[plugin]] for name, tally in before.items()
    )
    assert opened == [1, TASKS], before
    for name, tally in before.items():
        assert e2e.open_shells_at_most(name, tally["open_shells"]) == tally["open_shells"]


def test_new_credentials_during_a_run_replace_the_kept_session(e2e: t.Any, tmp_path: Path) -> None:
    """A secret changed during the run (a rotated password set with set_fact): the session kept
    with the old secrets is of no use to later tasks, so the next task ends it and keeps its
    own. winhost has one password per user, so the changed secret is one NTLM does not use
    (the key password of a client certificate): the slot compares all secrets alike."""
    host = e2e.matrix_target.name
    rotate = [
        {
            "name": "change a secret of the connection",
            "ansible.builtin.set_fact": {"ansible_psrp_certificate_key_password": "rotated"},
        }
    ]
    before = _tally_when_quiet(e2e, host)
    playbook = _pings(tmp_path / "rotated.yml", 3, between=rotate)
    run = _run(e2e, "winops.remoting.psrp", playbook, tmp_path)
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    # ping 0 | new secret | ping 1, ping 2: two pools, the first one closed by ping 1.
    assert after["pool_open"] - before["pool_open"] == 2, (before, after)
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]


def test_a_run_that_kept_no_session_leaves_nothing_once_the_next_run_starts(
    e2e: t.Any, tmp_path: Path
) -> None:
    """A run whose tasks never kept a session (its host refused every connection) has no
    holder to remove the run's directory and the compiled code its tasks kept there: the
    next run's first task removes it."""
    target = e2e.matrix_target
    directories_before = set(_run_directories())
    refused = {
        **e2e.host_vars("winops.remoting.winrm", COMBINATION, target),
        "ansible_port": 1,  # nothing listens there
        "ansible_winrm_reconnection_retries": 0,
    }
    failed = e2e.run(
        str(_pings(tmp_path / "refused.yml", 1)),
        {target.name: refused},
        tmp_path / "refused",
        {"e2e_target": target.name},
    )
    assert failed.returncode != 0, failed.describe()
    assert len(_ended_runs_left(directories_before, within=0)) == 1
    run = _run(e2e, "winops.remoting.winrm", _pings(tmp_path / "pings.yml", 1), tmp_path)
    assert run.returncode == 0, run.describe()
    assert _ended_runs_left(directories_before, within=30) == {}


def _run_directories() -> list[str]:
    base = _place.base_dir()
    names = os.listdir(base) if os.path.isdir(base) else []
    return [os.path.join(base, name) for name in names if name.startswith("run-")]


def _ended_runs_left(ignore: set[str], within: float) -> dict[str, list[str]]:
    """Directories of runs that have ended (their ansible-playbook is gone), not in ``ignore``,
    still there ``within`` seconds from now; with what each one holds."""
    deadline = time.monotonic() + within
    while True:
        left = {}
        for path in _run_directories():
            owner = os.path.basename(path).split("-")[1]
            if path in ignore or os.path.exists(f"/proc/{owner}"):
                continue
            with contextlib.suppress(FileNotFoundError):  # removed meanwhile: not left
                left[path] = sorted(os.listdir(path))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_with_persistence_off_every_task_logs_on_and_cleans_up(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    host = e2e.matrix_target.name
    before = _tally_when_quiet(e2e, host)
    variable = f"ansible_{plugin.rsplit('.', 1)[1]}_session_persist"
    run = _run(e2e, plugin, _pings(tmp_path / "pings.yml", TASKS), tmp_path, **{variable: False})
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    assert after["logon"] - before["logon"] >= TASKS, (before, after)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == TASKS, (before, after)
    # No holder: every task deleted its own shell or pool before the run ended.
    assert after["open_shells"] == before["open_shells"]


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_become_applies_to_its_own_task_in_a_kept_session(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """runas is part of each task's module payload, not of the kept shell or pool: tasks with
    and without become take turns in one session, each as its own user."""
    import yaml

    host = e2e.matrix_target.name
    turns = [("as the user", False), ("as SYSTEM", True), ("as the user again", False)]
    turns.append(("as SYSTEM again", True))
    steps = [
        {"name": name, "ansible.windows.win_whoami": {}, "become": become} for name, become in turns
    ]
    play = {"name": "become per task", "hosts": "{{ e2e_target }}", "gather_facts": False}
    playbook = tmp_path / "become.yml"
    playbook.write_text(yaml.safe_dump([{**play, "tasks": steps}], sort_keys=False))
    before = _tally_when_quiet(e2e, host)
    run = _run(e2e, plugin, playbook, tmp_path)
    assert run.returncode == 0, run.describe()
    for name, become in turns:
        account = run.task(host, name).result["account"]
        expected = "SYSTEM" if become else e2e.matrix_target.user
        assert account["account_name"].lower() == expected.lower(), (name, account)
    after = _tally(e2e, host)
    assert after["logon"] - before["logon"] == 1, (before, after)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 1, (before, after)


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_reset_connection_gets_a_fresh_session(e2e: t.Any, plugin: str, tmp_path: Path) -> None:
    host = e2e.matrix_target.name
    reset = [{"name": "reset", "ansible.builtin.meta": "reset_connection"}]
    before = _tally_when_quiet(e2e, host)
    run = _run(e2e, plugin, _pings(tmp_path / "reset.yml", 3, between=reset), tmp_path)
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    # ping 0 | reset | ping 1, ping 2: two sessions, each opened once.
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 2, (before, after)
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_winrm_restart_between_tasks_is_survived_without_running_twice(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """winhost's reboot fault closes the listeners and forgets every shell (as a WinRM restart
    or a reboot does); the next task finds its kept connection closed and its shell gone."""
    host = e2e.matrix_target.name
    state_dir = e2e.winhost.state_dir
    restart = [
        {
            "name": "restart WinRM on the host (winhost's reboot fault, 1 second)",
            "ansible.builtin.command": {
                "argv": [
                    sys.executable,
                    "-m",
                    "winhost",
                    "fault",
                    "--state-dir",
                    str(state_dir),
                    host,
                    "reboot",
                    "seconds=1",
                ]
            },
            "delegate_to": "localhost",
            "environment": {"PYTHONPATH": str(Path(__file__).parents[2] / "winhost")},
        },
        {"name": "wait for the host", "ansible.builtin.pause": {"seconds": 3}},
    ]
    before = _tally_when_quiet(e2e, host)
    commands_before = e2e.commands_run(host)
    started_before = e2e.winhost.state(host)["counters"]["commands_started"]
    run = _run(e2e, plugin, _pings(tmp_path / "restart.yml", 2, between=restart), tmp_path)
    assert run.returncode == 0, run.describe()
    after = _tally(e2e, host)
    assert after[OPENED[plugin]] - before[OPENED[plugin]] == 2, (before, after)
    # One command per ping: the one after the restart was not sent twice.
    assert e2e.commands_run(host) - commands_before == 2
    # winrm: the two processes started ahead after ping 0 went with the restart; ping 1's input
    # was refused by the host, so ping 1 started its own (and two more were started after it).
    # psrp: the same with one pipeline created ahead, and ping 1's in the new pool.
    started = e2e.winhost.state(host)["counters"]["commands_started"] - started_before
    assert started == (6 if plugin == "winops.remoting.winrm" else 4), run.describe()


def _host_state_step(e2e: t.Any, name: str) -> dict[str, t.Any]:
    """A task that reads winhost's state of the matrix host from the controller mid-run."""
    return {
        "name": name,
        "ansible.builtin.command": {
            "argv": [
                sys.executable,
                "-m",
                "winhost",
                "state",
                "--state-dir",
                str(e2e.winhost.state_dir),
                e2e.matrix_target.name,
            ]
        },
        "delegate_to": "localhost",
        "environment": {"PYTHONPATH": str(Path(__file__).parents[2] / "winhost")},
        "changed_when": False,
    }


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_win_reboot_leaves_no_session_kept_for_its_own_connection_timeout(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """win_reboot sets connection_timeout while it waits for the host to come back and sets it
    back only when it had a value: winrm's has none unless the inventory gives one. No later
    task asks for the value win_reboot set, so the sessions opened under it serve the reboot
    task alone and none of them is kept."""
    host = e2e.matrix_target.name
    between = [
        {"name": "reboot", "ansible.windows.win_reboot": {"reboot_timeout": 120}},
        _host_state_step(e2e, "after the reboot"),
        {"name": "ping after the reboot", "ansible.windows.win_ping": {}},
        _host_state_step(e2e, "after the ping"),
    ]
    run = _run(e2e, plugin, _pings(tmp_path / "reboot.yml", 1, between=between), tmp_path)
    assert run.returncode == 0, run.describe()
    assert run.task(host, "reboot").result["rebooted"] is True
    # The reboot forgot ping 0's shell or pool: what is open was opened after it.
    after_reboot = json.loads(run.task(host, "after the reboot").result["stdout"])
    after_ping = json.loads(run.task(host, "after the ping").result["stdout"])
    if plugin == "winops.remoting.winrm":
        # Never set back: the reboot's sessions were its own; the ping keeps a new one.
        assert after_reboot["counters"]["open_shells"] == 0, run.describe()
    else:
        # Set back to its default of 30 (and the connection reset): the reboot's test command
        # ran in a session kept for the task options, which the ping then uses.
        assert after_reboot["counters"]["open_shells"] == 1, run.describe()
        opened = [
            state["latency"]["paid"]["pool_open"]["count"] for state in (after_reboot, after_ping)
        ]
        assert opened[0] == opened[1], run.describe()
    assert after_ping["counters"]["open_shells"] == 1, run.describe()


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_killing_ansible_playbook_ends_the_holder_and_its_shell(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    host = e2e.matrix_target.name
    before = _tally_when_quiet(e2e, host)
    with _paused_run(e2e, plugin, tmp_path) as process:
        socket_path = _wait_for_kept_session(process)
        directory = os.path.dirname(socket_path)
        assert os.stat(directory).st_mode & 0o777 == 0o700
        assert os.stat(os.path.dirname(directory)).st_mode & 0o777 == 0o700
        holder = _holder_pid(socket_path)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        assert _gone_within(holder, 10), f"holder {holder} outlived ansible-playbook"
    assert e2e.open_shells_at_most(host, before["open_shells"]) == before["open_shells"]
    left = sorted(os.listdir(directory)) if os.path.exists(directory) else None
    assert left is None, f"the run's directory was left behind, holding {left}"


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_shell_or_pool_whose_holder_is_killed_ends_soon_after_session_idle_timeout(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """A holder killed outright (a container's end kills every process in it) cannot close its
    shell or pool: the host ends it once it has been idle for session_idle_timeout plus a
    minute (kept._slot), which the session asked for in its Create, not after the host's
    default two hours, during which it would hold a place in the user's shell quota."""
    host = e2e.matrix_target.name
    idle = 30
    e2e.open_shells_when_quiet(host)
    before = {shell["shell_id"] for shell in e2e.winhost.state(host)["shells"]}
    hostvars = {f"ansible_{plugin.rsplit('.', 1)[1]}_session_idle_timeout": idle}
    left: list[dict[str, t.Any]] = []
    try:
        with _paused_run(e2e, plugin, tmp_path, **hostvars) as process:
            holder = _holder_pid(_wait_for_kept_session(process))
            os.kill(holder, signal.SIGKILL)
            assert _gone_within(holder, 10), f"holder {holder} survived SIGKILL"
            left = [s for s in e2e.winhost.state(host)["shells"] if s["shell_id"] not in before]
        assert [shell["idle_timeout"] for shell in left] == [idle + 60], left
    finally:
        _delete_shells(e2e, left)


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_a_holder_stopped_during_a_command_fails_that_task_only(
    e2e: t.Any, plugin: str, tmp_path: Path
) -> None:
    """SIGTERM to a holder (a service manager or a container stopping processes) while it runs
    a task's command: that task fails as an unreachable host, and the run goes on. The holder
    once answered with its own SystemExit, which ended the task's worker and the whole run
    ("A worker was found in a dead state")."""
    import json

    import yaml

    target = e2e.matrix_target
    steps = [
        {"name": "ping first", "ansible.windows.win_ping": {}},
        {
            "name": "long command",
            "ansible.windows.win_shell": "Start-Sleep -Seconds 8",
            "ignore_unreachable": True,
        },
        {"name": "ping after", "ansible.windows.win_ping": {}},
    ]
    play = {"name": "holder stopped", "hosts": "{{ e2e_target }}", "gather_facts": False}
    playbook = tmp_path / "stopped.yml"
    playbook.write_text(yaml.safe_dump([{**play, "tasks": steps}], sort_keys=False))
    overlay = write_overlay(
        tmp_path / "overlay.yml", {target.name: e2e.host_vars(plugin, COMBINATION, target)}
    )
    command = [str(ansible_playbook_executable()), str(playbook), "-i", str(e2e.inventory)]
    command += ["-i", str(overlay), "-e", f"e2e_target={target.name}"]
    # The long command runs once the run has run two programs (its first ping's and its own);
    # programs started ahead for a next task do not count until they get their input.
    started = e2e.commands_run(target.name) + 2
    with subprocess.Popen(
        command,
        cwd=tmp_path,
        env=ansible_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as process:
        try:
            holder = _holder_pid(_wait_for_kept_session(process))
            deadline = time.monotonic() + 30
            while e2e.commands_run(target.name) < started:
                assert time.monotonic() < deadline, "the long command never started"
                time.sleep(0.1)
            time.sleep(1)  # well inside its 8 seconds
            os.kill(holder, signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    output = (stdout + stderr).decode(errors="replace")
    assert b"found in a dead state" not in stdout + stderr, output
    tasks = {
        task["task"]["name"]: task["hosts"][target.name]
        for task in json.loads(stdout)["plays"][0]["tasks"]
    }
    assert set(tasks) == {"ping first", "long command", "ping after"}, output
    long_command = tasks["long command"]
    assert long_command.get("unreachable") is True, long_command
    assert "ended during execute (SystemExit)" in long_command["msg"], long_command["msg"]
    assert tasks["ping after"].get("ping") == "pong", tasks["ping after"]


@contextlib.contextmanager
def _paused_run(
    e2e: t.Any, plugin: str, tmp_path: Path, **hostvars: t.Any
) -> t.Iterator[subprocess.Popen[bytes]]:
    """An ansible-playbook run that pings the host once and then pauses for two minutes, for a
    test to interfere with; ended, and its paused worker too, when the block ends."""
    target = e2e.matrix_target
    pause = [{"name": "wait", "ansible.builtin.pause": {"seconds": 120}}]
    playbook = _pings(tmp_path / "paused.yml", 1, between=pause)
    overlay = write_overlay(
        tmp_path / "overlay.yml",
        {target.name: {**e2e.host_vars(plugin, COMBINATION, target), **hostvars}},
    )
    process = subprocess.Popen(
        [
            str(ansible_playbook_executable()),
            str(playbook),
            "-i",
            str(e2e.inventory),
            "-i",
            str(overlay),
            "-e",
            f"e2e_target={target.name}",
        ],
        cwd=tmp_path,
        env=ansible_environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        # the orphaned worker still sits in its pause: end it too (Ansible's, not ours)
        subprocess.run(["pkill", "-KILL", "-f", str(playbook)], check=False)


def _delete_shells(e2e: t.Any, shells: list[dict[str, t.Any]]) -> None:
    """Delete shells a test left on the host on purpose, as their owner."""
    from pypsrp.wsman import SelectorSet

    with e2e.wsman(e2e.matrix_target) as client:
        for shell in shells:
            selectors = SelectorSet()
            selectors.add_option("ShellId", shell["shell_id"])
            client.delete(shell["resource_uri"], selector_set=selectors)


def _wait_for_kept_session(process: subprocess.Popen[bytes]) -> str:
    base = _place.base_dir()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"ansible-playbook ended early ({process.returncode})"
        prefix = f"run-{process.pid}-"
        runs = (
            [name for name in os.listdir(base) if name.startswith(prefix)]
            if os.path.isdir(base)
            else []
        )
        for run in runs:
            sockets = [n for n in os.listdir(os.path.join(base, run)) if n.endswith(".sock")]
            if sockets:
                return os.path.join(base, run, sockets[0])
        time.sleep(0.2)
    raise AssertionError("no kept session appeared within 60 s")


def _holder_pid(path: str) -> int:
    """Ask the holder who it is: a request with wrong secrets is refused with its pid."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(path)
        _channel.send(connection, {"op": "execute", "args": (), "secrets": "not the secrets"})
        answer = _channel.receive(connection)
    assert answer["status"] == "refused", answer
    return int(answer["holder"])


def _gone_within(pid: int, seconds: float) -> bool:
    """True once ``pid`` ended (a zombie waiting for a reaper that never comes counts)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                if handle.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("plugin", OUR_PLUGINS)
def test_the_doctor_says_whether_a_session_is_kept(e2e: t.Any, plugin: str, tmp_path: Path) -> None:
    host = e2e.matrix_target.name
    doctor = [{"name": "doctor", "winops.remoting.winrm_doctor": {}}]
    run = _run(e2e, plugin, _pings(tmp_path / "doctor.yml", 1, between=doctor), tmp_path)
    assert run.returncode == 0, run.describe()
    assert run.task(host, "doctor").result["session"].startswith("kept: process "), run.describe()
    variable = f"ansible_{plugin.rsplit('.', 1)[1]}_session_persist"
    off = tmp_path / "off"
    off.mkdir()
    run = _run(e2e, plugin, _pings(off / "doctor.yml", 1, between=doctor), off, **{variable: False})
    assert run.returncode == 0, run.describe()
    assert (
        run.task(host, "doctor").result["session"].startswith("not kept (session_persist is off)")
    ), run.describe()
