"""PsrpSession with the real pypsrp client against a real PSRP server (psrpcore), in process.

Only the WinRS/WSMan transport is replaced: pypsrp's RunspacePool and PowerShell build and
fragment real PSRP messages, psrpcore's ServerRunspacePool decodes them and answers, so this
checks the session's use of pypsrp (streamed input, polling, SetShouldExit, stop and
terminate signals, error records) end to end without a network. Server-side "scripts" are
Python handlers chosen by the script text the client sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import typing as t
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

import psrpcore
import pytest
import requests
from psrpcore.types import ErrorCategory, ErrorCategoryInfo, HostMethodIdentifier, NETException
from pypsrp.exceptions import WSManFaultError
from pypsrp.shell import CommandState, SignalCode
from pypsrp.wsman import NAMESPACES, SelectorSet
from test_psrp_session import make_settings
from test_psrp_support import OURS, load_connection, no_network

from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_session
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
    CommandTimeoutError,
    PsrpSession,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer

_ENDED_STATES = (
    psrpcore.types.PSInvocationState.Completed,
    psrpcore.types.PSInvocationState.Failed,
    psrpcore.types.PSInvocationState.Stopped,
)

Handler = t.Callable[["ServerSide", psrpcore.ServerPipeline, list[t.Any]], bool]


class ServerSide:
    """A psrpcore server runspace pool plus the WinRS bookkeeping a Windows host would do."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.pool = psrpcore.ServerRunspacePool()
        self.handlers = handlers
        self.scripts: dict[uuid.UUID, str] = {}
        self.inputs: dict[uuid.UUID, list[t.Any]] = {}
        self.signals: list[tuple[str, str]] = []
        self.commands_started: list[str] = []
        self.sent_sizes: list[int] = []
        self.pending: dict[uuid.UUID | None, bytearray] = {}
        self.files: dict[str, bytes] = {}
        self.pools_opened = 0
        self.pools_closed = 0
        # Faults the host answers the next Command or Send with (what a pool or pipeline that
        # is gone gets), in order.
        self.command_faults: list[BaseException] = []
        self.send_faults: list[BaseException] = []
        # Faults the host answers the next Sends with after taking their data (a loaded host's
        # OperationTimeout), in order.
        self.faults_after_send: list[BaseException] = []
        # The commands whose Receives came over HTTP, one entry per Receive, and those ended.
        self.http_receives: list[str] = []
        self.commands_done: set[str] = set()

    def feed(self, data: bytes, pipeline_id: uuid.UUID | None) -> None:
        self.pool.receive_data(psrpcore.PSRPPayload(data, psrpcore.StreamType.default, pipeline_id))
        while (event := self.pool.next_event()) is not None:
            if isinstance(event, psrpcore.CreatePipelineEvent):
                script = event.pipeline.commands[0].command_text
                self.scripts[event.pipeline_id] = script
                self.inputs[event.pipeline_id] = []
                if event.pipeline.no_input:
                    self.run(event.pipeline_id)
            elif isinstance(event, psrpcore.PipelineInputEvent):
                self.inputs[event.pipeline_id].append(event.data)
            elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
                self.run(event.pipeline_id)
        self.collect()

    def run(self, pipeline_id: uuid.UUID) -> None:
        pipeline = self.pool.pipeline_table[pipeline_id]
        pipeline.start()
        script = self.scripts[pipeline_id]
        handler = self.handlers[script.split("\n", 1)[0]]
        if handler(self, pipeline, self.inputs[pipeline_id]):
            pipeline.complete()

    def collect(self) -> None:
        while (payload := self.pool.data_to_send()) is not None:
            self.pending.setdefault(payload.pipeline_id, bytearray()).extend(payload.data)

    def take(self, pipeline_id: uuid.UUID | None) -> bytes:
        self.collect()
        return bytes(self.pending.pop(pipeline_id, b""))

    def answer_request(self, message: bytes) -> bytes:
        """A Receive that reached pypsrp's HTTP transport (the session sends a streamed
        pipeline's Receives itself, session._psrp_stream), answered as Windows answers it: the
        output, with CommandState Done in the answer that carries the pipeline's end."""
        request = ET.fromstring(message)
        action = request.findtext("s:Header/wsa:Action", namespaces=NAMESPACES)
        desired = request.find("s:Body/rsp:Receive/rsp:DesiredStream", namespaces=NAMESPACES)
        if desired is None or not (action or "").endswith("/Receive"):
            pytest.fail(f"the loopback has no answer for {action} over HTTP")
        command_id = desired.attrib["CommandId"]
        pipeline_id = uuid.UUID(command_id)
        if command_id in self.commands_done:
            pytest.fail(f"a Receive for command {command_id} after it ended")
        self.http_receives.append(command_id)
        data = self.take(pipeline_id)
        pipeline = self.pool.pipeline_table.get(pipeline_id)
        ended = pipeline is None or pipeline.state in _ENDED_STATES
        if not (data or ended):
            pytest.fail("a Receive the loopback would answer only after the operation timeout")
        rsp, wsa = NAMESPACES["rsp"], NAMESPACES["wsa"]
        envelope = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
        header = ET.SubElement(envelope, f"{{{NAMESPACES['s']}}}Header")
        message_id = request.findtext("s:Header/wsa:MessageID", namespaces=NAMESPACES)
        ET.SubElement(header, f"{{{wsa}}}RelatesTo").text = message_id
        body = ET.SubElement(envelope, f"{{{NAMESPACES['s']}}}Body")
        response = ET.SubElement(body, f"{{{rsp}}}ReceiveResponse")
        if data:
            stream = ET.SubElement(response, f"{{{rsp}}}Stream", Name="stdout")
            stream.attrib["CommandId"] = command_id
            stream.text = base64.b64encode(data).decode()
        state = ET.SubElement(response, f"{{{rsp}}}CommandState", CommandId=command_id)
        if ended:
            self.commands_done.add(command_id)
            state.attrib["State"] = CommandState.DONE
            ET.SubElement(state, f"{{{rsp}}}ExitCode").text = "0"
        else:
            state.attrib["State"] = CommandState.RUNNING
        return ET.tostring(envelope)


class LoopbackShell:
    """Stands in for pypsrp.shell.WinRS: the calls pypsrp makes, answered by ServerSide."""

    server: ServerSide

    def __init__(self, wsman: t.Any, resource_uri: str, id: str, **kwargs: t.Any) -> None:
        self.wsman = wsman
        self.resource_uri = resource_uri
        self.id = id
        self.opened = False

    def open(self, options: t.Any = None, open_content: ET.Element | None = None) -> None:
        assert open_content is not None
        self.opened = True
        self._selector_set = SelectorSet()  # what pypsrp's WinRS keeps once the host created it
        self._selector_set.add_option("ShellId", self.id.upper())
        if self.server.pools_opened:  # a pool after the first: a new one on the host too
            self.server.pool = psrpcore.ServerRunspacePool()
        self.server.pools_opened += 1
        self.server.feed(base64.b64decode(open_content.text or ""), None)

    def command(self, executable: str, arguments: list[str], command_id: str) -> ET.Element:
        if self.server.command_faults:
            raise self.server.command_faults.pop(0)
        pipeline_id = uuid.UUID(command_id)
        self.server.commands_started.append(command_id)
        psrpcore.ServerPipeline(self.server.pool, pipeline_id)
        self.server.feed(base64.b64decode(arguments[0]), pipeline_id)
        rsp = NAMESPACES["rsp"]
        body = ET.Element("Body")
        response = ET.SubElement(body, f"{{{rsp}}}CommandResponse")
        ET.SubElement(response, f"{{{rsp}}}CommandId").text = command_id.upper()
        return body

    def send(self, stream: str, data: bytes, command_id: str | None = None) -> None:
        if self.server.send_faults:
            raise self.server.send_faults.pop(0)
        self.server.sent_sizes.append(len(base64.b64encode(data)))
        self.server.feed(data, uuid.UUID(command_id) if command_id else None)
        if self.server.faults_after_send:
            raise self.server.faults_after_send.pop(0)

    def receive(
        self, stream: str = "stdout", command_id: str | None = None, timeout: int | None = None
    ) -> tuple[str, None, dict[str, bytes]]:
        data = self.server.take(uuid.UUID(command_id) if command_id else None)
        if not data:
            # What Windows answers when nothing happened within the operation timeout.
            raise WSManFaultError(2150858793, "loopback", "OperationTimeout", "", "")
        return "", None, {"stdout": data}

    def signal(self, code: str, command_id: str) -> None:
        self.server.signals.append((code, command_id))
        pipeline = self.server.pool.pipeline_table.get(uuid.UUID(command_id))
        if code == SignalCode.PS_CTRL_C and pipeline is not None:
            pipeline.stop()

    def close(self) -> None:
        self.opened = False
        self.server.pools_closed += 1


# --- server-side scripts -----------------------------------------------------------------------


def echo_input(server: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]) -> bool:
    for item in inputs:
        pipeline.write_output(f"got {item}")
    pipeline.host_call(HostMethodIdentifier.SetShouldExit, [7])
    return True


def fail_with_error(
    server: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]
) -> bool:
    pipeline.write_error(
        NETException("Cannot find path 'C:\\nope' because it does not exist."),
        ErrorCategoryInfo(Category=ErrorCategory.ObjectNotFound, Reason="ItemNotFoundException"),
        fully_qualified_error_id="PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand",
    )
    return True


def never_finish(
    server: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]
) -> bool:
    return False


def put_script(server: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]) -> bool:
    header = json.loads(base64.b64decode(inputs[0]))
    data = b"".join(base64.b64decode(line) for line in inputs[1:])
    server.files[header["path"]] = data
    pipeline.write_output(json.dumps({"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)}))
    return True


def fetch_script(
    server: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]
) -> bool:
    header = json.loads(base64.b64decode(inputs[0]))
    data, size = server.files[header["path"]], header["chunk_size"]
    for offset in range(0, len(data), size):
        pipeline.write_output(base64.b64encode(data[offset : offset + size]).decode())
    pipeline.write_output(json.dumps({"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)}))
    return True


HANDLERS: dict[str, Handler] = {
    "echo": echo_input,
    "Get-Item C:\\nope": fail_with_error,
    "Start-Sleep 3600": never_finish,
    _transfer.PUT_SCRIPT.split("\n", 1)[0]: put_script,
    _transfer.FETCH_SCRIPT.split("\n", 1)[0]: fetch_script,
}


@pytest.fixture
def server() -> t.Iterator[ServerSide]:
    side = ServerSide(HANDLERS)
    shell_class = type("BoundLoopbackShell", (LoopbackShell,), {"server": side})

    def answer(transport: t.Any, message: bytes, **kwargs: t.Any) -> bytes:
        return side.answer_request(message)

    with (
        mock.patch("pypsrp.powershell.WinRS", shell_class),
        mock.patch("pypsrp.wsman._TransportHTTP.send", answer),
    ):
        yield side


def open_real_session(*, pipeline_ahead: bool = False, **overrides: t.Any) -> PsrpSession:
    settings = make_settings(**overrides)
    settings.wsman_kwargs.update(server="win-01.example.com", port=5986, ssl=True)
    session = PsrpSession(settings, sleep=lambda seconds: None, pipeline_ahead=pipeline_ahead)
    session.open()
    return session


def _one_task(session: PsrpSession, line: str) -> str:
    """A module task through a kept session: its run, then what the holder does after it."""
    stdout = session.run("echo", [line]).stdout
    session.settle()
    session.start_ahead("echo", ())  # the task's end tells the holder (kept._slot)
    session.settle()
    return stdout


def _gone_fault() -> WSManFaultError:
    return WSManFaultError(
        _psrp_session._wsman_faults.SHELL_NOT_FOUND,
        "loopback",
        "the shell was not found",
        "",
        "",
        "",
    )


def test_the_next_module_pipeline_is_created_ahead_and_takes_the_next_tasks_input(
    server: ServerSide,
) -> None:
    """session_start_ahead: the host gets the next module task's Command between tasks, and
    the task only sends its input there; every input runs once, in its own pipeline."""
    session = open_real_session(pipeline_ahead=True)
    assert session._require_pool().max_runspaces == 2
    assert _one_task(session, "one") == "got one"
    first, ahead = server.commands_started
    assert server.inputs[uuid.UUID(ahead)] == []  # created, and waiting for its input
    assert _one_task(session, "two") == "got two"
    assert server.commands_started[:2] == [first, ahead]
    assert server.inputs[uuid.UUID(ahead)] == ["two"]
    assert len(server.commands_started) == 3  # the next one waits already
    assert [inputs for inputs in server.inputs.values() if inputs] == [["one"], ["two"]]
    session.close()
    assert server.pools_closed == 1


def test_without_a_kept_pool_nothing_is_created_ahead(server: ServerSide) -> None:
    session = open_real_session()
    assert session._require_pool().max_runspaces == 1
    assert _one_task(session, "one") == "got one"
    assert _one_task(session, "two") == "got two"
    assert len(server.commands_started) == 2
    session.close()


def test_a_pipeline_ahead_stays_for_a_module_while_other_scripts_run(server: ServerSide) -> None:
    session = open_real_session(pipeline_ahead=True)
    _one_task(session, "one")
    ahead = server.commands_started[1]
    assert session.run("Get-Item C:\\nope").rc == 0  # another script: its own pipeline
    assert server.inputs[uuid.UUID(ahead)] == []
    assert session.run("echo", ["two"]).stdout == "got two"
    assert server.inputs[uuid.UUID(ahead)] == ["two"]
    assert len(server.commands_started) == 3
    session.close()


@pytest.mark.parametrize(
    ("code", "stopped"),
    [(_psrp_session._wsman_faults.SHELL_NOT_FOUND, False), (2150858770, True)],
    ids=["pipeline-gone", "other-fault"],
)
def test_a_pipeline_ahead_that_took_no_input_is_replaced_and_the_task_runs_once(
    server: ServerSide, code: int, stopped: bool
) -> None:
    """Any fault to the first Send means the host took none of the input: the task's own
    pipeline is created then, for the first time, in the same pool. One the host still has is
    stopped; for an unknown command id (ERROR_WSMAN_SHELL_NOT_FOUND) there is nothing to stop."""
    session = open_real_session(pipeline_ahead=True)
    _one_task(session, "one")
    ahead = server.commands_started[1]
    server.send_faults.append(WSManFaultError(code, "loopback", "refused", "", "", ""))
    assert session.run("echo", ["two"]).stdout == "got two"
    assert ((SignalCode.PS_CTRL_C, ahead.upper()) in server.signals) == stopped
    assert server.inputs[uuid.UUID(ahead)] == []
    assert [inputs for inputs in server.inputs.values() if inputs] == [["one"], ["two"]]
    assert server.pools_opened == 1
    session.close()


def test_an_input_send_answered_with_operation_timeout_counts_as_taken(
    server: ServerSide,
) -> None:
    """A loaded host answers a Send with OperationTimeout after taking the data: the module in
    the pipeline created ahead has its input and runs. Taking the fault as "nothing taken"
    stopped that pipeline and ran the module again in a new one."""
    session = open_real_session(pipeline_ahead=True)
    _one_task(session, "one")
    first, ahead = server.commands_started
    timeout = WSManFaultError(2150858793, "loopback", "OperationTimeout", "", "", "")
    server.faults_after_send.append(timeout)
    assert session.run("echo", ["two"]).stdout == "got two"
    assert (SignalCode.PS_CTRL_C, ahead.upper()) not in server.signals
    assert server.inputs[uuid.UUID(ahead)] == ["two"]
    assert [inputs for inputs in server.inputs.values() if inputs] == [["one"], ["two"]]
    assert server.commands_started == [first, ahead]  # no pipeline created afresh for "two"
    session.close()


def test_a_pipeline_ahead_whose_pool_is_gone_runs_the_task_in_a_new_pool(
    server: ServerSide,
) -> None:
    """After a WinRM restart the host no longer has the kept pool: the first Send to the
    pipeline created ahead and the Command that replaces it are answered
    ERROR_WSMAN_SHELL_NOT_FOUND, nothing ran, and the task runs once in a new pool."""
    session = open_real_session(pipeline_ahead=True)
    _one_task(session, "one")
    server.send_faults.append(_gone_fault())
    server.command_faults.append(_gone_fault())
    assert session.run("echo", ["two"]).stdout == "got two"
    assert server.pools_opened == 2
    assert [inputs for inputs in server.inputs.values() if inputs] == [["one"], ["two"]]
    session.close()


def test_a_failed_creation_ahead_leaves_the_next_task_to_create_its_pipeline(
    server: ServerSide,
) -> None:
    session = open_real_session(pipeline_ahead=True)
    assert session.run("echo", ["one"]).stdout == "got one"
    session.settle()
    server.command_faults.append(_gone_fault())
    session.start_ahead("echo", ())
    session.settle()
    assert len(server.commands_started) == 1  # refused: nothing waits
    assert session.run("echo", ["two"]).stdout == "got two"
    assert len(server.commands_started) == 2
    session.close()


def test_a_creation_ahead_cut_off_replaces_the_pool(server: ServerSide) -> None:
    """A Command whose answer never came may have created the pipeline, which would then wait
    in a runspace for input that never comes: the pool is replaced, and the next task runs."""
    session = open_real_session(pipeline_ahead=True)
    assert session.run("echo", ["one"]).stdout == "got one"
    session.settle()
    server.command_faults.append(requests.ConnectionError("Connection aborted."))
    session.start_ahead("echo", ())
    session.settle()
    assert (server.pools_opened, server.pools_closed) == (2, 1)
    assert session.run("echo", ["two"]).stdout == "got two"
    session.close()


def test_a_renewed_pool_gets_the_pipeline_ahead_again(
    server: ServerSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_psrp_session, "PIPELINES_PER_POOL", 3)
    session = open_real_session(pipeline_ahead=True)
    for number in range(4):
        assert _one_task(session, str(number)) == f"got {number}"
    # Pipelines 1 and 2 ran, 3 was created ahead: the pool was renewed between tasks, and the
    # next module pipeline created ahead in the new one.
    assert (server.pools_opened, server.pools_closed) == (2, 1)
    assert session.run("echo", ["again"]).stdout == "got again"
    assert [inputs for inputs in server.inputs.values() if inputs][-1] == ["again"]
    session.close()


def test_command_output_input_and_exit_code(server: ServerSide) -> None:
    session = open_real_session()
    result = session.run("echo", ["Ärger", "ß-€"])
    assert (result.rc, result.stdout, result.stderr) == (7, "got Ärger\r\ngot ß-€", "")
    # The next pipeline starts clean and the finished one is released with Terminate.
    result = session.run("echo", ["Ölung"])
    assert (result.rc, result.stdout) == (7, "got Ölung")
    assert [code for code, _id in server.signals] == [SignalCode.TERMINATE]
    session.close()


def test_settle_releases_the_finished_pipeline_between_tasks(server: ServerSide) -> None:
    """A kept pool's holder calls settle() after answering, so no task waits for the release."""
    session = open_real_session()
    session.run("echo", ["one"])
    assert server.signals == []
    session.settle()
    session.settle()
    assert [code for code, _id in server.signals] == [SignalCode.TERMINATE]
    session.run("echo", ["two"])
    assert len(server.signals) == 1, "the next pipeline had nothing left to release"
    session.close()


def test_settle_renews_a_pool_that_ran_its_share_of_pipelines(
    server: ServerSide, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pipelines load into a pool's process stays there (session._psrp_session), so a kept
    pool is replaced between tasks once it has run PIPELINES_PER_POOL of them."""
    monkeypatch.setattr(_psrp_session, "PIPELINES_PER_POOL", 3)
    session = open_real_session()
    for number in range(3):
        assert session.run("echo", [str(number)]).stdout == f"got {number}"
        assert (server.pools_opened, server.pools_closed) == (1, 0)
        session.settle()
    # The third pipeline's settle released it, closed the pool and opened another.
    assert (server.pools_opened, server.pools_closed) == (2, 1)
    assert [code for code, _id in server.signals] == [SignalCode.TERMINATE] * 3
    assert session.run("echo", ["again"]).stdout == "got again"
    session.settle()
    assert (server.pools_opened, server.pools_closed) == (2, 1)
    session.close()
    assert server.pools_closed == 2


def test_module_payload_lines_arrive_intact(server: ServerSide) -> None:
    """The bootstrap's separator is a line of four NULs; CLIXML must carry it unchanged."""
    session = open_real_session()
    lines = ['{"name": "win_ping", "params": {}}', "\x00\x00\x00\x00", '{"data": "ü_x0041_\t"}']
    session.run("echo", lines)
    (inputs,) = server.inputs.values()
    assert inputs == lines


def test_error_records_are_readable(server: ServerSide) -> None:
    session = open_real_session()
    result = session.run("Get-Item C:\\nope")
    # A non-terminating error in a completed pipeline sets no exit code, as with the builtin:
    # the exit code comes from `exit` ($host.SetShouldExit) or a failed pipeline.
    assert result.rc == 0
    assert "Cannot find path 'C:\\nope' because it does not exist." in result.stderr
    assert (
        "FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
        in result.stderr
    )


def test_command_timeout_sends_the_psrp_stop_signal(server: ServerSide) -> None:
    clock = iter(range(0, 1000, 4))
    session = PsrpSession(
        make_settings(command_timeout=10), sleep=lambda seconds: None, clock=lambda: next(clock)
    )
    session.open()
    with pytest.raises(CommandTimeoutError):
        session.run("Start-Sleep 3600")
    (pipeline_id,) = server.commands_started
    assert server.signals == [(SignalCode.PS_CTRL_C, pipeline_id.upper())]
    # The pool is still usable afterwards.
    assert session.run("echo", ["after"]).stdout == "got after"


@pytest.mark.parametrize("size", [0, 70_000, 1_000_003], ids=["empty", "small", "one-megabyte"])
def test_file_round_trip_through_real_psrp_framing(
    server: ServerSide, tmp_path: Path, size: int
) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    session = open_real_session()
    assert session.put_file(str(source), "C:\\Windows\\Temp\\ïn.bin") == size
    assert server.files["C:\\Windows\\Temp\\ïn.bin"] == data
    # Every Send fits the envelope pypsrp negotiated (500 KiB once PowerShell 3+ answered).
    envelope = session.max_envelope_size
    assert server.sent_sizes and max(server.sent_sizes) < envelope
    target = tmp_path / "out.bin"
    assert session.fetch_file("C:\\Windows\\Temp\\ïn.bin", str(target)) == size
    assert target.read_bytes() == data
    # The fetch's Receives went out on their own (session._psrp_stream) and stopped at the
    # answer that ended the command (the loopback fails a test on any Receive after it).
    (fetch_command,) = set(server.http_receives)
    assert fetch_command in server.commands_done


def test_the_plugin_end_to_end_over_real_pypsrp(server: ServerSide, tmp_path: Path) -> None:
    """Connection plugin -> session -> pypsrp -> PSRP server: a pipelined module and files."""
    connection = load_connection(
        OURS,
        {
            "inventory_hostname": "win-01.example.com",
            "ansible_user": "admin",
            "ansible_password": "pässwörd",
        },
    )
    bootstrap_cmd = connection._shell.build_module_command("", "", "")
    bootstrap = base64.b64decode(bootstrap_cmd.split()[-1]).decode("utf-16-le")

    def run_module(
        side: ServerSide, pipeline: psrpcore.ServerPipeline, inputs: list[t.Any]
    ) -> bool:
        pipeline.write_output(json.dumps({"changed": False, "ping": "pong", "lines": len(inputs)}))
        return True

    server.handlers[bootstrap.split("\n", 1)[0]] = run_module
    payload = b'{"module_entry": "win_ping"}\n\x00\x00\x00\x00\n{"ANSIBLE_MODULE_ARGS": {}}\n'
    with no_network():
        rc, stdout, stderr = connection.exec_command(bootstrap_cmd, in_data=payload)
    assert (rc, stderr) == (0, b"")
    assert json.loads(stdout) == {"changed": False, "ping": "pong", "lines": 3}

    source = tmp_path / "module.ps1"
    source.write_text("Write-Output 'ü'\n", encoding="utf-8")
    connection.put_file(str(source), "'C:\\Users\\admin\\AppData\\Local\\Temp\\module.ps1'")
    assert server.files["C:\\Users\\admin\\AppData\\Local\\Temp\\module.ps1"] == source.read_bytes()
    target = tmp_path / "fetched.ps1"
    connection.fetch_file("C:\\Users\\admin\\AppData\\Local\\Temp\\module.ps1", str(target))
    assert target.read_bytes() == source.read_bytes()
    connection.close()
