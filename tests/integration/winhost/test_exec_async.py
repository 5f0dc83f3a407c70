"""Execution engine: tasks with `async:` (async_wrapper.ps1, async_watchdog.ps1) and
ansible.windows.async_status, fed the manifests ansible-core 2.19 builds for them."""

from __future__ import annotations

import json
import time
import typing as t

from exec_helpers import (
    ASYNC_DIR,
    FakeHost,
    module_payload,
    run_module,
    run_payload,
    task_args,
)

from winhost import api
from winhost.execution import process

JOBS = "C:\\Users\\ansible\\.ansible_async"


def _status(
    engine: api.ExecutionEngine, host: FakeHost, jid: str, mode: str = "status"
) -> tuple[int, dict[str, t.Any]]:
    """What the async_status action runs: the module with the shell's async_dir."""
    return run_module(
        engine, host, "ansible.windows.async_status", jid=jid, mode=mode, _async_dir=ASYNC_DIR
    )


def _until_finished(
    engine: api.ExecutionEngine, host: FakeHost, jid: str, limit: float = 15
) -> dict[str, t.Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rc, status = _status(engine, host, jid)
        assert rc == 0, status
        if status["finished"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {jid} did not finish within {limit} s")


def _running_at_most(most: int, limit: float = 5) -> int:
    """The host's running programs, once they fell to `most` or `limit` seconds passed."""
    deadline = time.monotonic() + limit
    while (running := process.running_programs("WIN1")) > most and time.monotonic() < deadline:
        time.sleep(0.05)
    return running


def test_an_async_task_answers_at_once_and_its_job_writes_the_result(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    running_before = process.running_programs("WIN1")
    began = time.monotonic()
    rc, first = run_module(
        engine,
        host,
        "ansible.windows.win_shell",
        async_timeout=30,
        _raw_params="Start-Sleep -Milliseconds 3000; echo done",
    )
    # Answered before the module could have finished (and its job still runs below): the
    # margin is the module's whole run, so a loaded machine does not fail the test.
    assert time.monotonic() - began < 3.0, "the async wrapper waited for the module"
    assert rc == 0, first
    assert first["started"] is True and first["finished"] is False, first
    assert first["_ansible_suppress_tmpdir_delete"] is True
    jid = first["ansible_job_id"]
    job, pid = jid.split(".")
    assert job.startswith("j") and job[1:].isdigit() and int(pid) % 4 == 0, jid
    assert first["results_file"] == f"{JOBS}\\{jid}"
    results = host.root / "Users" / "ansible" / ".ansible_async" / jid
    assert json.loads(results.read_text(encoding="utf-8")) == first

    rc, running = _status(engine, host, jid)
    assert (rc, running["started"], running["finished"]) == (0, True, False), running

    final = _until_finished(engine, host, jid)
    assert final["stdout"] == "done\r\n" and final["rc"] == 0 and final["changed"] is True, final
    assert final["ansible_job_id"] == jid and "failed" not in final
    assert results.read_bytes().startswith(b"\xef\xbb\xbf"), "Set-Content -Encoding UTF8"
    # The job's process ended with its watchdog.
    assert _running_at_most(running_before) == running_before

    rc, erased = _status(engine, host, jid, mode="cleanup")
    assert (rc, erased["erased"]) == (0, f"{JOBS}\\{jid}")
    assert not results.exists()
    rc, gone = _status(engine, host, jid)
    assert rc == 1 and gone["msg"] == f"could not find job at '{JOBS}'", gone


def test_a_job_past_its_time_limit_is_ended_and_reported_failed(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    rc, first = run_module(engine, host, "ansible.windows.win_ping", async_timeout=1, data="pong")
    assert rc == 0
    final = _until_finished(engine, host, first["ansible_job_id"])
    assert final.get("failed") is not True and final["ping"] == "pong", final

    rc, first = run_module(
        engine,
        host,
        "ansible.windows.win_shell",
        async_timeout=1,
        _raw_params="Start-Sleep -Seconds 30",
    )
    assert rc == 0
    began = time.monotonic()
    final = _until_finished(engine, host, first["ansible_job_id"])
    assert time.monotonic() - began < 5
    assert final["failed"] is True, final
    assert final["msg"] == "failure during async watchdog: timed out waiting for module completion"
    assert final["stdout"] is None and final["finished"] is True


def test_a_failing_module_in_a_job_is_its_result(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    rc, first = run_module(engine, host, "ansible.windows.win_ping", async_timeout=10, data="crash")
    assert rc == 0, first
    final = _until_finished(engine, host, first["ansible_job_id"])
    assert final["failed"] is True
    assert final["msg"] == "Unhandled exception while executing module: boom", final


def test_async_status_reads_a_file_being_written_and_refuses_a_broken_one(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    jobs = host.root / "Users" / "ansible" / ".ansible_async"
    jobs.mkdir(parents=True)
    (jobs / "j1.4").write_text("")
    rc, status = _status(engine, host, "j1.4")
    assert (rc, status["started"], status["finished"]) == (0, 1, 0), status
    (jobs / "j2.4").write_text("{not json")
    rc, status = _status(engine, host, "j2.4")
    assert rc == 1 and status["msg"] == "Could not parse job output: ", status
    # A result without 'started' (written by something else) counts as finished.
    (jobs / "j3.4").write_text('{"changed": true}')
    rc, status = _status(engine, host, "j3.4")
    assert (rc, status["finished"], status["ansible_job_id"]) == (0, 1, "j3.4"), status


def test_an_action_winhost_does_not_model_after_the_async_wrapper_fails_loudly(
    engine: api.ExecutionEngine, host: FakeHost
) -> None:
    """coverage_wrapper.ps1 would run between the watchdog and the module: not modelled."""
    payload = module_payload(
        "ansible.windows.win_ping",
        task_args("ansible.windows.win_ping"),
        async_timeout=10,
        environment={"ANSIBLE_ASYNC_DIR": ASYNC_DIR},
    )
    bootstrap, manifest_text = payload.decode().split("\n\0\0\0\0\n", 1)
    manifest = json.loads(manifest_text)
    manifest["scripts"]["coverage_wrapper.ps1"] = {"script": "", "path": "coverage_wrapper.ps1"}
    manifest["actions"].insert(-1, {"name": "coverage_wrapper.ps1", "params": {}})
    edited = f"{bootstrap}\n\0\0\0\0\n{json.dumps(manifest)}".encode()
    rc, result = run_payload(engine, host, edited)
    assert rc == 1 and result["failed"] is True, result
    assert "winhost models async_wrapper.ps1 followed by async_watchdog.ps1" in result["msg"]
    assert "coverage_wrapper.ps1" in result["msg"]
    assert not (host.root / "Users" / "ansible" / ".ansible_async").exists()
