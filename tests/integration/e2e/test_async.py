"""Tasks with `async:` end to end (issue 10: "async tasks work"), with a kept session and without.

A real ansible-playbook run per plugin against winhost, which emulates ansible-core 2.19's
async_wrapper.ps1 and async_watchdog.ps1 and ansible.windows.async_status
(tests/winhost/winhost/execution/async_job.py): a job polled to its end, one run with become,
one that outlives its time limit while another task runs, and its result erased. The builtin
plugins run the same playbook, so a difference between ours and theirs would show here.
"""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest
from connection_matrix import BUILTIN_PLUGINS, COMBINATIONS_BY_NAME, OUR_PLUGINS

COMBINATION = COMBINATIONS_BY_NAME["http-ntlm-encrypted"]
CASES = [
    *((plugin, persist) for plugin in OUR_PLUGINS for persist in (True, False)),
    *((plugin, None) for plugin in BUILTIN_PLUGINS),
]


def _case_id(case: tuple[str, bool | None]) -> str:
    plugin, persist = case
    return plugin if persist is None else f"{plugin}-{'kept' if persist else 'persist-off'}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(case) for case in CASES])
def test_async_jobs_run_to_their_end_or_their_limit(
    e2e: t.Any, case: tuple[str, bool | None], tmp_path: Path
) -> None:
    plugin, persist = case
    target = e2e.matrix_target
    running_before = e2e.winhost.state(target.name)["counters"]["running_commands"]
    hostvars = e2e.host_vars(plugin, COMBINATION, target)
    if persist is not None:
        hostvars[f"ansible_{plugin.rsplit('.', 1)[1]}_session_persist"] = persist
    run = e2e.run("async.yml", {target.name: hostvars}, tmp_path, {"e2e_target": target.name})
    assert run.returncode == 0, run.describe()

    polled = run.task(target.name, "Poll a job to its end").result
    assert polled["finished"] and polled["stdout"] == "polled\r\n", polled
    became = run.task(target.name, "Poll a job run as another user").result
    assert became["account"]["account_name"] == "SYSTEM", became
    slow = run.task(target.name, "Start a job that outlives its time limit").result
    assert slow["started"] and not slow["finished"], slow
    timed_out = run.task(target.name, "Wait for the job's watchdog").result
    assert timed_out["finished"], timed_out
    assert timed_out["msg"] == (
        "failure during async watchdog: timed out waiting for module completion"
    ), timed_out
    erased = run.task(target.name, "Erase the job's result").result
    assert erased.get("erased") == slow["results_file"], erased
    # Every job's watchdog has ended; nothing the run started is left running.
    assert e2e.running_commands_at_most(target.name, running_before) == running_before
