"""The PowerShell shell (resource http://schemas.microsoft.com/powershell/<configuration>): WinRS
operations carrying MS-PSRP fragments, decoded and answered by psrpcore's server runspace pool.

Mapping as on Windows: Create carries the pool's opening fragments in creationXml and the
answers (SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA, RUNSPACEPOOL_STATE) are fetched with a
Receive on the shell; Command with CommandId = pipeline id carries CREATE_PIPELINE; Send
carries the rest of a message, pipeline input and host responses ("pr"); Receive with the
CommandId returns the pipeline's messages, then CommandState Done; Signal
powershell/signal/ctrl_c stops a pipeline and terminate forgets it; Delete closes the pool.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import typing as t
import uuid
import xml.etree.ElementTree as ET

import psrpcore
from psrpcore.types import (
    ErrorCategory,
    ErrorCategoryInfo,
    ErrorRecord,
    HostMethodIdentifier,
    NETException,
    PSInvocationState,
)

from winhost import api
from winhost.shells import common, hooks
from winhost.shells.common import q, sub

# The session configurations a Windows Server has after Enable-PSRemoting, as WinRM's plugin
# table names them (lower case; clients may name them in any case, see state.py).
DEFAULT_CONFIGURATIONS = (
    "microsoft.powershell",
    "microsoft.powershell32",
    "microsoft.powershell.workflow",
    "microsoft.windows.servermanagerworkflows",
)

WSMAN_FAULT_UNKNOWN_RESOURCE = 2150858811  # ERROR_WSMAN_INVALID_RESOURCE_URI
_TERMINAL = (PSInvocationState.Completed, PSInvocationState.Failed, PSInvocationState.Stopped)
_WHILE_DISCONNECTED = (common.ACTION_RECONNECT, common.ACTION_DELETE, common.ACTION_DISCONNECT)


def unknown_configuration_fault(resource_uri: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:DestinationUnreachable",
        WSMAN_FAULT_UNKNOWN_RESOURCE,
        f"The WS-Management service cannot process the request. The resource URI "
        f"({resource_uri}) was not found in the WS-Management catalog. The catalog contains the "
        "metadata that describes resources, or logical endpoints. ",
    )


def _psrp_fault(what: str, err: Exception) -> api.WSManFault:
    return common.bad_request_fault(f"The PSRP data of {what} could not be processed: {err}")


class PSPipeline:
    """One PSRP pipeline: psrpcore's view of it and the engine process running it."""

    def __init__(self, command_id: str, server: psrpcore.ServerPipeline) -> None:
        self.command_id = command_id
        self.server = server
        self.process: api.Process | None = None
        self.done_reported = False
        self.receive_lock = threading.Lock()

    @property
    def pipeline_id(self) -> uuid.UUID:
        return self.server.pipeline_id

    @property
    def ended(self) -> bool:
        return self.server.state in _TERMINAL


class PSShell(common.CommandShell[PSPipeline]):
    """A runspace pool; its commands are its pipelines. All psrpcore calls happen under `lock`;
    psrpcore's outgoing messages are moved at once into per-target outboxes (None = the pool),
    since one Receive only ever asks for one target's data."""

    def __init__(
        self,
        shell_id: str,
        resource_uri: str,
        owner: api.Principal,
        idle_timeout: float,
        fragment_size: int,
    ) -> None:
        super().__init__(shell_id, resource_uri, owner, idle_timeout)
        self.pool = psrpcore.ServerRunspacePool()
        self.fragment_size = fragment_size
        self.outbox: dict[uuid.UUID | None, list[bytes]] = {}
        self.data_ready = threading.Condition(self.lock)
        self.disconnected = False

    def collect(self) -> None:
        """Move everything psrpcore has queued into the outboxes (caller holds the lock)."""
        moved = False
        while (payload := self.pool.data_to_send(self.fragment_size)) is not None:
            self.outbox.setdefault(payload.pipeline_id, []).append(payload.data)
            moved = True
        if moved:
            self.data_ready.notify_all()

    def pipelines_running(self, besides: PSPipeline | None = None) -> int:
        """The pool's pipelines in a runspace: each one not ended (one whose CREATE_PIPELINE is
        still arriving will take one too), but ``besides``."""
        return sum(1 for p in self.commands.values() if p is not besides and not p.ended)

    def take(self, target: uuid.UUID | None, budget: int) -> bytes:
        """Queued data for one target, whole payloads up to `budget` bytes (at least one)."""
        queue = self.outbox.get(target, [])
        taken: list[bytes] = []
        size = 0
        while queue and (not taken or size + len(queue[0]) <= budget):
            chunk = queue.pop(0)
            taken.append(chunk)
            size += len(chunk)
        return b"".join(taken)

    def close(self) -> None:
        with self.lock:
            pipelines, self.commands = list(self.commands.values()), {}
            self.closed = True
            self.data_ready.notify_all()
        for pipeline in pipelines:
            if pipeline.process is not None:
                pipeline.process.terminate()


class PowerShellHandler:
    """Implements api.ShellHandler for every configuration under .../powershell/."""

    def __init__(
        self,
        host: api.HostView,
        engine: api.ExecutionEngine,
        table: common.ShellTable,
        configurations: t.Iterable[str] = DEFAULT_CONFIGURATIONS,
    ) -> None:
        self.host = host
        self.engine = engine
        self.table = table
        self.configuration_names = tuple(configurations)
        self.configurations = {name.lower() for name in self.configuration_names}

    def serves(self, resource_uri: str) -> bool:
        return resource_uri.lower().startswith(common.PS_RESOURCE_PREFIX)

    def handle(self, request: api.WSManRequest, principal: api.Principal) -> api.WSManResponse:
        name = request.resource_uri[len(common.PS_RESOURCE_PREFIX) :]
        if not self.serves(request.resource_uri) or name.lower() not in self.configurations:
            raise unknown_configuration_fault(request.resource_uri)
        if request.action == common.ACTION_CREATE:
            return self._create(request, principal)
        operations = {
            common.ACTION_DELETE: self._delete,
            common.ACTION_COMMAND: self._command,
            common.ACTION_SEND: self._send,
            common.ACTION_RECEIVE: self._receive,
            common.ACTION_SIGNAL: self._signal,
            common.ACTION_DISCONNECT: self._disconnect,
            common.ACTION_RECONNECT: self._reconnect,
        }
        operation = operations.get(request.action)
        if operation is None:
            # Connect from another client and WS-Transfer Get of a shell are not modelled.
            raise common.action_not_supported_fault(request.action, request.resource_uri)
        shell = self.table.get(request, principal, PSShell)
        if shell.disconnected and request.action not in _WHILE_DISCONNECTED:
            raise common.not_modelled_fault(
                f"{request.action.rsplit('/', 1)[-1]} on a disconnected PowerShell shell (only "
                "Reconnect and Delete are)"
            )
        with common.Activity(shell):
            return operation(request, shell)

    # -- Create / Delete --------------------------------------------------------------------

    def _create(self, request: api.WSManRequest, principal: api.Principal) -> api.WSManResponse:
        injected = hooks.create_fault(self.host)
        if injected is not None:
            raise injected
        shell_node = common.body_child(request, "Shell")
        creation = shell_node.find(q("pwsh", "creationXml"))
        if creation is None or not (creation.text or "").strip():
            raise common.bad_request_fault(
                "A PowerShell shell needs the runspace pool's opening fragments in creationXml."
            )
        data = _b64(creation.text or "", "creationXml")
        shell = PSShell(
            shell_id=(shell_node.get("ShellId") or common.new_shell_id()).upper(),
            resource_uri=request.resource_uri,
            owner=principal,
            idle_timeout=self.table.idle_timeout_seconds(common.requested_idle_timeout(shell_node)),
            fragment_size=common.response_payload_budget(request, self.host),
        )
        with shell.lock:
            self._feed(shell, data, None, psrpcore.StreamType.default, "creationXml")
        self.table.add(shell)
        input_streams = _shell_text(shell_node, "InputStreams") or "stdin pr"
        output_streams = _shell_text(shell_node, "OutputStreams") or "stdout"
        return common.create_response(request, self.host, shell, input_streams, output_streams)

    def _delete(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        self.table.remove(shell)
        return common.delete_response()

    # -- Disconnect / Reconnect (the same client coming back) --------------------------------

    def _disconnect(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        common.body_child(request, "Disconnect")
        # Pipelines keep running and their output stays queued until the client reconnects.
        shell.disconnected = True
        return api.WSManResponse(
            action=f"{common.SHELL_URI}DisconnectResponse",
            body=[common.element("rsp", "DisconnectResponse")],
        )

    def _reconnect(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        shell.disconnected = False
        return api.WSManResponse(
            action=f"{common.SHELL_URI}ReconnectResponse",
            body=[common.element("rsp", "ReconnectResponse")],
        )

    # -- Command / Send ---------------------------------------------------------------------

    def _command(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        line = common.body_child(request, "CommandLine")
        try:
            pipeline_id = uuid.UUID(line.get("CommandId") or "")
        except ValueError as err:
            raise common.bad_request_fault(
                f"rsp:CommandLine CommandId {line.get('CommandId')!r} is not the pipeline's GUID."
            ) from err
        command_id = str(pipeline_id).upper()
        arguments = line.findall(q("rsp", "Arguments"))
        if len(arguments) != 1:
            raise common.bad_request_fault(
                "rsp:CommandLine of a PowerShell shell carries one rsp:Arguments element with "
                "the first CREATE_PIPELINE fragment."
            )
        data = _b64(arguments[0].text or "", "rsp:Arguments")
        self.table.check_operation_quota(shell.owner)
        with shell.lock:
            if command_id in shell.commands:
                raise common.bad_request_fault(f"A pipeline with CommandId {command_id} exists.")
            server = psrpcore.ServerPipeline(shell.pool, pipeline_id)
            shell.commands[command_id] = PSPipeline(command_id, server)
            try:
                self._feed(shell, data, pipeline_id, psrpcore.StreamType.default, "CREATE_PIPELINE")
            except api.WSManFault:
                self._forget(shell, shell.commands[command_id])
                raise
        return common.command_response(command_id)

    def _send(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        injected = hooks.send_fault(self.host)
        if injected is not None:
            raise injected
        send = common.body_child(request, "Send")
        for stream in send.findall(q("rsp", "Stream")):
            name = stream.get("Name") or ""
            if name not in ("stdin", "pr"):
                raise common.bad_request_fault(
                    f"rsp:Stream Name={name!r} is not an input stream of a PowerShell shell "
                    "(stdin pr)."
                )
            pipeline_id: uuid.UUID | None = None
            if stream.get("CommandId"):
                pipeline_id = shell.command(stream.get("CommandId")).pipeline_id
            data = _b64(stream.text or "", "rsp:Stream")
            stream_type = (
                psrpcore.StreamType.prompt_response if name == "pr" else psrpcore.StreamType.default
            )
            with shell.lock:
                self._feed(shell, data, pipeline_id, stream_type, f"the {name} stream")
        return common.send_response()

    def _feed(
        self,
        shell: PSShell,
        data: bytes,
        pipeline_id: uuid.UUID | None,
        stream_type: psrpcore.StreamType,
        what: str,
    ) -> None:
        """Give psrpcore the client's bytes and act on every complete message (caller holds
        the shell's lock)."""
        try:
            shell.pool.receive_data(psrpcore.PSRPPayload(data, stream_type, pipeline_id))
            while (event := shell.pool.next_event()) is not None:
                self._on_event(shell, event)
        except psrpcore.PSRPCoreError as err:
            raise _psrp_fault(what, err) from err
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            # psrpcore failing on a message a real client sent (e.g. it reads SET_MAX_RUNSPACES'
            # call id as "ci" where pypsrp writes "CI"): a loud fault, never a made-up answer.
            raise common.not_modelled_fault(
                f"this PSRP message in {what} (psrpcore could not process it: "
                f"{type(err).__name__}: {err})"
            ) from err
        finally:
            shell.collect()

    def _on_event(self, shell: PSShell, event: psrpcore.PSRPEvent) -> None:
        if isinstance(
            event,
            psrpcore.SessionCapabilityEvent
            | psrpcore.InitRunspacePoolEvent
            | psrpcore.PublicKeyEvent
            | psrpcore.PipelineHostResponseEvent
            | psrpcore.RunspacePoolHostResponseEvent,
        ):
            return  # psrpcore answered (or nothing waits for an answer: host calls are void)
        if isinstance(event, psrpcore.CreatePipelineEvent):
            self._start_pipeline(shell, event)
        elif isinstance(event, psrpcore.PipelineInputEvent):
            self._process_of(shell, event.pipeline_id).send_input([event.data], False)
        elif isinstance(event, psrpcore.EndOfPipelineInputEvent):
            self._process_of(shell, event.pipeline_id).send_input([], True)
        elif isinstance(event, psrpcore.GetAvailableRunspacesEvent):
            available = max(0, shell.pool.max_runspaces - shell.pipelines_running())
            shell.pool.runspace_availability_response(event.ci, available)
        elif isinstance(event, psrpcore.SetMaxRunspacesEvent | psrpcore.SetMinRunspacesEvent):
            shell.pool.runspace_availability_response(event.ci, True)
        elif isinstance(event, psrpcore.ResetRunspaceStateEvent):
            # Not modelled: say it failed rather than pretend the state was reset.
            shell.pool.runspace_availability_response(event.ci, False)
        else:
            raise common.not_modelled_fault(f"the PSRP message {type(event).__name__}")

    def _process_of(self, shell: PSShell, pipeline_id: uuid.UUID | None) -> api.Process:
        found = shell.commands.get(str(pipeline_id).upper())
        if found is None or found.process is None:
            raise common.bad_request_fault(f"Pipeline input for an unknown pipeline {pipeline_id}.")
        return found.process

    def _start_pipeline(self, shell: PSShell, event: psrpcore.CreatePipelineEvent) -> None:
        found = shell.commands.get(str(event.pipeline_id).upper())
        if found is None:
            raise common.bad_request_fault(
                f"CREATE_PIPELINE for pipeline {event.pipeline_id} arrived outside its Command."
            )
        described = event.pipeline
        commands = described.commands
        if any(c.end_of_statement for c in commands[:-1]):
            raise common.not_modelled_fault(
                "a PSRP pipeline of several statements (PowerShell.AddStatement)"
            )
        if described.is_nested:
            raise common.not_modelled_fault("nested PSRP pipelines")
        if shell.pipelines_running(besides=found) >= shell.pool.max_runspaces:
            # Windows queues it until a runspace is free (RunspacePool.SetMaxRunspaces: "All
            # requests above that number remain queued until runspaces become available"), so
            # behind a pipeline waiting for input it would wait for good.
            raise common.not_modelled_fault(
                f"a pipeline queued for a runspace (all {shell.pool.max_runspaces} of the "
                "pool's runspaces run pipelines; Windows would queue it until one ends)"
            )
        converted = [
            api.PipelineCommand(
                text=c.command_text, is_script=c.is_script, parameters=list(c.parameters)
            )
            for c in commands
        ]
        # Windows sends no PIPELINE_STATE Running (clients set Running themselves when the
        # Command succeeds); psrpcore's start() would queue one, which made the first Receive
        # return nothing but that state - ansible-core's psrp fetch reads its first poll as
        # "no output" and writes no file. So the state changes without a message.
        found.server._change_state(PSInvocationState.Running, emit=False)
        found.process = self.engine.start_pipeline(self.host, shell.owner, converted)
        if described.no_input:
            found.process.send_input([], True)

    # -- Receive ----------------------------------------------------------------------------

    def _receive(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        desired = common.body_child(request, "Receive").find(q("rsp", "DesiredStream"))
        if desired is None:
            raise common.bad_request_fault("rsp:Receive has no rsp:DesiredStream element.")
        command_id = desired.get("CommandId")
        pipeline = shell.command(command_id) if command_id else None
        injected = hooks.receive_fault(self.host, common.operation_timeout(request))
        if injected is not None:
            raise injected
        deadline = time.monotonic() + common.operation_timeout(request)
        budget = common.response_payload_budget(request, self.host)
        if pipeline is None:
            return self._receive_pool(shell, deadline, budget)
        with pipeline.receive_lock:
            return self._receive_pipeline(shell, pipeline, deadline, budget)

    def _receive_pool(self, shell: PSShell, deadline: float, budget: int) -> api.WSManResponse:
        with shell.lock:
            while not shell.outbox.get(None):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or shell.closed:
                    raise hooks.operation_timeout_fault()
                shell.data_ready.wait(remaining)
            data = shell.take(None, budget)
        body = common.element("rsp", "ReceiveResponse")
        sub(body, "rsp", "Stream", base64.b64encode(data).decode(), Name="stdout")
        return common.receive_response(body)

    def _receive_pipeline(
        self, shell: PSShell, pipeline: PSPipeline, deadline: float, budget: int
    ) -> api.WSManResponse:
        target = pipeline.pipeline_id
        while True:
            with shell.lock:
                if shell.outbox.get(target) or pipeline.ended:
                    data = shell.take(target, budget)
                    done = pipeline.ended and not shell.outbox.get(target)
                    if done and not pipeline.done_reported:
                        pipeline.done_reported = True
                        pipeline.process = None
                        # psrpcore keeps finished pipelines until closed; nothing needs it now.
                        shell.pool.pipeline_table.pop(target, None)
                    break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise hooks.operation_timeout_fault()
            if pipeline.process is None:
                # CREATE_PIPELINE is still arriving in pieces: nothing can be running yet.
                time.sleep(min(remaining, 0.05))
                continue
            batch = pipeline.process.read_output(remaining)
            with shell.lock:
                self._publish(shell, pipeline, batch)
        body = common.element("rsp", "ReceiveResponse")
        if data:
            sub(
                body,
                "rsp",
                "Stream",
                base64.b64encode(data).decode(),
                Name="stdout",
                CommandId=pipeline.command_id,
            )
        state = common.STATE_DONE if done else common.STATE_RUNNING
        sub(body, "rsp", "CommandState", None, CommandId=pipeline.command_id, State=state)
        return common.receive_response(body)

    def _publish(self, shell: PSShell, pipeline: PSPipeline, batch: api.OutputBatch) -> None:
        """Turn what the engine produced into PSRP messages (caller holds the lock)."""
        server = pipeline.server
        if server.state != PSInvocationState.Running:
            return  # stopped by the client: late output of the terminated process is dropped
        for value in batch.objects:
            server.write_output(value)
        for record in _error_records(batch):
            server.write_error(
                record.Exception,
                record.CategoryInfo,
                target_object=record.TargetObject,
                fully_qualified_error_id=record.FullyQualifiedErrorId,
            )
        if batch.finished:
            if batch.terminating_error is not None:
                # Windows ends the pipeline Failed with the error in PIPELINE_STATE's
                # ExceptionAsErrorRecord, not in the error stream (pypsrp's recording
                # test_client_execute_ps_failure.yml); no SetShouldExit is sent. psrpcore
                # has no public call for a failed pipeline.
                server._change_state(
                    PSInvocationState.Failed, error=_error_record(batch.terminating_error)
                )
            else:
                if batch.exit_code:
                    # `exit N` inside a remote pipeline reaches the client as SetShouldExit(N).
                    server.host_call(HostMethodIdentifier.SetShouldExit, [batch.exit_code])
                server.complete()
        shell.collect()

    # -- Signal -----------------------------------------------------------------------------

    def _signal(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, PSShell)
        signal = common.body_child(request, "Signal")
        code_node = signal.find(q("rsp", "Code"))
        code = (code_node.text if code_node is not None else "") or ""
        pipeline = shell.command(signal.get("CommandId"))
        lowered = code.strip().lower()
        if lowered in common.PS_SIGNALS_CTRL_C or lowered == common.SIGNAL_CTRL_C:
            if pipeline.process is not None:
                pipeline.process.terminate()
            with shell.lock:
                if pipeline.server.state in (PSInvocationState.Running, PSInvocationState.Stopping):
                    pipeline.server.stop()
                    self._count("pipelines_stopped")
                shell.collect()
        elif lowered == common.SIGNAL_TERMINATE:
            if pipeline.process is not None:
                pipeline.process.terminate()
            with shell.lock:
                self._forget(shell, pipeline)
        else:
            raise common.bad_request_fault(
                f"rsp:Code {code!r} is not a signal code PowerShell takes."
            )
        return common.signal_response()

    def _count(self, counter: str) -> None:
        # The host's tallies (state's counters) tell tests what the client asked for.
        count = getattr(self.host, "count", None)
        if count is not None:
            count(counter)

    def _forget(self, shell: PSShell, pipeline: PSPipeline) -> None:
        """Drop a pipeline and its undelivered data (caller holds the lock)."""
        if pipeline.server.state in (PSInvocationState.Running, PSInvocationState.Stopping):
            pipeline.server.stop()
        shell.pool.pipeline_table.pop(pipeline.pipeline_id, None)
        shell.commands.pop(pipeline.command_id, None)
        shell.collect()
        shell.outbox.pop(pipeline.pipeline_id, None)


def _error_records(batch: api.OutputBatch) -> list[ErrorRecord]:
    if len(batch.error_records) == len(batch.errors):
        return [_error_record(data) for data in batch.error_records]
    # An engine that gives messages only: Write-Error records, as Write-Error makes them.
    return [
        _error_record(
            api.ErrorRecordData(
                message=message,
                category="NotSpecified",
                fully_qualified_error_id="Microsoft.PowerShell.Commands.WriteErrorException",
                reason="WriteErrorException",
                exception_types=(),
            )
        )
        for message in batch.errors
    ]


def _error_record(data: api.ErrorRecordData) -> ErrorRecord:
    exception = NETException(Message=data.message)
    if data.exception_types:
        exception.PSObject.type_names = list(data.exception_types)
    return ErrorRecord(
        Exception=exception,
        CategoryInfo=ErrorCategoryInfo(
            Category=ErrorCategory[data.category],
            Reason=data.reason,
            TargetName=data.target or None,
            TargetType="String" if data.target else None,
        ),
        TargetObject=data.target or None,
        FullyQualifiedErrorId=data.fully_qualified_error_id,
    )


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except binascii.Error as err:
        raise common.bad_request_fault(f"{what} is not base64.") from err


def _shell_text(shell_node: ET.Element, local: str) -> str | None:
    node = shell_node.find(q("rsp", local))
    return None if node is None else (node.text or "").strip()
