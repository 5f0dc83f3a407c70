"""The PowerShell shell driven by the real pypsrp RunspacePool/PowerShell (its HTTP exchange
replaced by an in-process call into envelope parsing, the shell handler and rendering)."""

from __future__ import annotations

import time
import typing as t
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError
from pypsrp.host import PSHost
from pypsrp.messages import MessageType
from pypsrp.powershell import PowerShell, PSInvocationState, RunspacePool
from pypsrp.shell import CommandState
from shells_helpers import InProcessServer, ScriptedEngine, SettingsHost

from winhost import api, faults


@pytest.fixture
def host(tmp_path: Path) -> SettingsHost:
    return SettingsHost(tmp_path)


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def server(host: SettingsHost, engine: ScriptedEngine) -> t.Iterator[InProcessServer]:
    faults.clear(host.computer_name)
    yield InProcessServer(host, engine)
    faults.clear(host.computer_name)


def test_script_output_objects(server: InProcessServer, engine: ScriptedEngine) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("objects")
        assert ps.invoke() == ["one", 2, True]
        assert ps.state == PSInvocationState.COMPLETED
        assert not ps.had_errors and not ps.streams.error
        ps.close()  # terminate signal: the pipeline is forgotten
    principal, commands = engine.pipelines[0]
    assert principal.username == "ansible"
    assert commands == [api.PipelineCommand("objects", True, [])]
    assert not server.handlers[next(iter(server.handlers))].table.shells()  # Delete on exit


def test_error_records_carry_the_message(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("fail")
        assert ps.invoke() == ["before"]
        assert ps.state == PSInvocationState.COMPLETED
        assert len(ps.streams.error) == 1
        assert str(ps.streams.error[0]) == "Cannot find path 'C:\\nope' because it does not exist."


def test_pipeline_input_reaches_the_engine(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("echo-input")
        assert ps.invoke(input=["a", "b ü"]) == ["got a", "got b ü"]


def test_cmdlet_with_parameters(server: InProcessServer, engine: ScriptedEngine) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-Item").add_parameter("Path", "C:\\x").add_argument(3)
        assert ps.invoke() == ["Get-Item:[('Path', 'C:\\\\x'), (None, 3)]"]
    assert engine.pipelines[0][1] == [
        api.PipelineCommand("Get-Item", False, [("Path", "C:\\x"), (None, 3)])
    ]


def test_exit_code_reaches_the_host_as_set_should_exit(server: InProcessServer) -> None:
    host = PSHost(None, None, False, "winhost-test", None, None, "1.0")
    with RunspacePool(server.pypsrp(), host=host) as pool:
        ps = PowerShell(pool)
        ps.add_script("exit 5")
        ps.invoke()
        assert ps.state == PSInvocationState.COMPLETED
    assert host.rc == 5


def test_stop_terminates_the_running_pipeline(
    server: InProcessServer, engine: ScriptedEngine
) -> None:
    with RunspacePool(server.pypsrp(operation_timeout=1)) as pool:
        ps = PowerShell(pool)
        ps.add_script("sleep")
        ps.begin_invoke()
        ps.poll_invoke(timeout=1)  # nothing yet: the OperationTimeout fault is swallowed
        assert ps.state == PSInvocationState.RUNNING
        ps.stop()
        assert engine.processes[-1].terminated
        # The pool stays usable after a stop.
        again = PowerShell(pool)
        again.add_script("objects")
        assert again.invoke() == ["one", 2, True]


def test_a_pipeline_beyond_the_pools_runspaces_is_refused_loudly(server: InProcessServer) -> None:
    """Windows queues a pipeline until one of the pool's MaxRunspaces runspaces is free, so a
    client that starts one behind a pipeline that waits (for its input, say) waits for good;
    winhost refuses it with a fault naming what it does not model instead of hanging."""
    with RunspacePool(server.pypsrp(operation_timeout=1)) as pool:
        waiting = _sleeping(pool)
        with pytest.raises(WSManFaultError) as err:
            _script(pool, "objects").invoke()
        assert "queued for a runspace" in err.value.reason
        waiting.stop()
        # A runspace is free again once the first pipeline has ended.
        assert _script(pool, "objects").invoke() == ["one", 2, True]


def test_a_pool_of_two_runspaces_runs_a_second_pipeline_beside_a_waiting_one(
    server: InProcessServer,
) -> None:
    with RunspacePool(server.pypsrp(operation_timeout=1), max_runspaces=2) as pool:
        waiting = _sleeping(pool)
        assert _script(pool, "objects").invoke() == ["one", 2, True]
        waiting.stop()


def _script(pool: RunspacePool, script: str) -> PowerShell:
    pipeline = PowerShell(pool)
    pipeline.add_script(script)
    return pipeline


def _sleeping(pool: RunspacePool) -> PowerShell:
    """A pipeline that runs until it is stopped."""
    pipeline = _script(pool, "sleep")
    pipeline.begin_invoke()
    return pipeline


def test_stop_as_ms_psrp_spells_it_reports_stopped(
    server: InProcessServer, engine: ScriptedEngine
) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("sleep")
        ps.begin_invoke()
        pool.shell.signal(
            "http://schemas.microsoft.com/powershell/signal/crtl_c", str(ps.id).upper()
        )
        assert engine.processes[-1].terminated
        ps.poll_invoke()
        assert ps.state == PSInvocationState.STOPPED
        assert "The pipeline has been stopped." in str(ps.streams.error[-1])


def test_receive_times_out_then_output_arrives(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("slow 1.5")
        ps.begin_invoke()
        # Nothing but output or a final state ends a Receive: Windows sends no PIPELINE_STATE
        # Running, so the first Receive waits.
        started = time.monotonic()
        with pytest.raises(WSManFaultError) as err:
            pool._receive(ps.id, timeout=1)
        assert err.value.code == api.WSMAN_FAULT_OPERATION_TIMEOUT
        assert 0.9 <= time.monotonic() - started < 1.5
        assert ps.end_invoke() == ["late"]


def test_first_poll_brings_the_first_output(server: InProcessServer) -> None:
    """ansible-core's psrp fetch polls once and reads "no output" as "nothing to fetch"."""
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("echo-input")
        ps.begin_invoke(["first", "second"])
        ps.poll_invoke()
        assert ps.output[:1] == ["got first"]
        assert ps.end_invoke() == ["got first", "got second"]


def test_unknown_configuration_gets_the_windows_fault(server: InProcessServer) -> None:
    pool = RunspacePool(server.pypsrp(), configuration_name="Contoso.JEA")
    with pytest.raises(WSManFaultError) as err:
        pool.open()
    assert err.value.code == 2150858811
    assert "http://schemas.microsoft.com/powershell/Contoso.JEA) was not found" in err.value.reason


def test_other_default_configuration_names_open(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp(), configuration_name="microsoft.powershell32") as pool:
        ps = PowerShell(pool)
        ps.add_script("objects")
        assert ps.invoke() == ["one", 2, True]


def test_runspace_pool_messages(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        assert pool.get_available_runspaces() == 1
        # psrpcore 0.3.1 reads SET_MAX_RUNSPACES' call id as "ci", pypsrp writes "CI": the
        # shell answers with a loud fault instead of pretending the change was made.
        with pytest.raises(WSManFaultError) as err:
            pool.max_runspaces = 4
        assert "psrpcore could not process it" in err.value.reason
        assert pool.get_available_runspaces() == 1


def test_disconnect_and_reconnect_by_the_same_client(server: InProcessServer) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("slow 0.5")
        ps.begin_invoke()
        pool.disconnect()
        with pytest.raises(WSManFaultError) as err:
            pool._receive(ps.id, timeout=1)
        assert "disconnected PowerShell shell" in err.value.reason
        time.sleep(0.8)  # the pipeline ends while nobody is connected; its output waits
        pool.connect()
        ps.state = PSInvocationState.RUNNING
        assert ps.end_invoke() == ["late"]


# pypsrp raises its default 153600 to 512000 for a PSRP 2.2+ server; a set size stays.
@pytest.mark.parametrize(("max_envelope_size", "declared"), [(153600, 512000), (32768, 32768)])
def test_large_output_is_fragmented_to_fit(
    server: InProcessServer, max_envelope_size: int, declared: int
) -> None:
    wsman = server.pypsrp(max_envelope_size=max_envelope_size)
    with RunspacePool(wsman) as pool:
        ps = PowerShell(pool)
        ps.add_script("many 3000")
        server.responses.clear()
        output = ps.invoke()
    assert len(output) == 3000 and output[-1].startswith("line 002999 ")
    receives = [r for r in server.responses if r[2]]
    assert len(receives) > 3
    assert {limit for _, _, limit in receives} == {declared}
    assert all(status == 200 and size <= declared for status, size, _ in receives)


def test_the_command_ends_in_the_answer_with_the_pipelines_final_state(
    server: InProcessServer,
) -> None:
    """As Windows answers (behaviour table, PSRP): CommandState Done arrives with the last
    PIPELINE_STATE, and not before; session._psrp_stream stops asking there."""
    with RunspacePool(server.pypsrp(max_envelope_size=153600)) as pool:
        ps = PowerShell(pool)
        ps.add_script("many 3000")
        ps.begin_invoke()
        answers = []
        while True:
            state, _rc, streams = pool.shell.receive("stdout", command_id=ps._command_id)
            kinds = [m.message_type for m in pool._fragmenter.defragment(streams["stdout"])]
            answers.append((state, kinds))
            if state == CommandState.DONE:
                break
    assert len(answers) >= 3  # a long output in several answers
    *running, (_last_state, last_kinds) = answers
    assert all(state == CommandState.RUNNING for state, _kinds in running)
    assert all(MessageType.PIPELINE_STATE not in kinds for _state, kinds in running)
    assert last_kinds[-1] == MessageType.PIPELINE_STATE


def test_unknown_shell_and_idle_expiry(server: InProcessServer, host: SettingsHost) -> None:
    host.settings["Winrs/IdleTimeout"] = "400"
    pool = RunspacePool(server.pypsrp())
    pool.open()
    time.sleep(0.7)
    ps = PowerShell(pool)
    ps.add_script("objects")
    with pytest.raises(WSManFaultError) as err:
        ps.invoke()
    assert err.value.code == api.WSMAN_FAULT_SHELL_NOT_FOUND
    assert f"ShellId {pool.shell.id.upper()} failed" in err.value.reason


def test_shells_quota_counts_both_shell_kinds(server: InProcessServer, host: SettingsHost) -> None:
    host.settings["Winrs/MaxShellsPerUser"] = "1"
    server.pywinrm().open_shell()
    with pytest.raises(WSManFaultError) as err:
        RunspacePool(server.pypsrp()).open()
    assert err.value.code == api.WSMAN_FAULT_QUOTA_LIMIT


def test_finished_pipelines_free_their_operation(
    server: InProcessServer, host: SettingsHost
) -> None:
    host.settings["Service/MaxConcurrentOperationsPerUser"] = "2"  # the pool and one pipeline
    with RunspacePool(server.pypsrp()) as pool:
        for _ in range(3):  # never closed, as ansible-core's psrp plugin does
            ps = PowerShell(pool)
            ps.add_script("objects")
            assert ps.invoke() == ["one", 2, True]
        running = _sleeping(pool)
        with pytest.raises(WSManFaultError) as err:
            _script(pool, "objects").invoke()
        assert err.value.code == 2150859174
        running.stop()


def test_busy_send_fault(server: InProcessServer, host: SettingsHost) -> None:
    with RunspacePool(server.pypsrp()) as pool:
        ps = PowerShell(pool)
        ps.add_script("echo-input")
        faults.inject(host.computer_name, "busy")
        with pytest.raises(WSManFaultError) as err:
            ps.invoke(input=["a"])
        assert err.value.code == api.WSMAN_FAULT_BUSY
