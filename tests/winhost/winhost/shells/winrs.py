"""The WinRS cmd shell (resource .../windows/shell/cmd) per MS-WSMV 3.1.4.1.x: Create,
Command, Send, Receive, Signal and Delete, with command lines run by the execution engine.

Console text crosses the wire in the shell's code page (WINRS_CODEPAGE, 437 unless the client
asks otherwise; Ansible asks for 65001): stdin is decoded from it for the engine, which works in
UTF-8, and stdout/stderr are encoded back into it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import threading
import time
import xml.etree.ElementTree as ET

from winhost import api
from winhost.shells import common, hooks
from winhost.shells.common import q, sub

_DEFAULT_CODEPAGE = 437
_UTF8_CODEPAGE = 65001


def _codec_for(codepage: int) -> str | None:
    """The Python codec of a Windows code page; None for UTF-8 (no transcoding)."""
    if codepage == _UTF8_CODEPAGE:
        return None
    name = f"cp{codepage}"
    try:
        codecs.lookup(name)
    except LookupError as err:
        raise common.bad_request_fault(
            f"WINRS_CODEPAGE {codepage} is not a code page winhost knows; use 65001 (UTF-8) or "
            "an OEM/ANSI code page such as 437, 850 or 1252."
        ) from err
    return name


class CmdCommand:
    """One command line started in a cmd shell, with output not yet received."""

    def __init__(self, command_id: str, process: api.Process) -> None:
        self.command_id = command_id
        self.process = process
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.finished = False
        self.done_reported = False
        self.exit_code: int | None = None
        self.receive_lock = threading.Lock()

    def absorb(self, batch: api.OutputBatch, codec: str | None) -> None:
        self.stdout += _to_codepage(batch.stdout, codec)
        self.stderr += _to_codepage(batch.stderr, codec)
        if batch.finished:
            self.finished = True
            self.exit_code = batch.exit_code if batch.exit_code is not None else 0

    @property
    def has_output(self) -> bool:
        return bool(self.stdout or self.stderr)


def _to_codepage(data: bytes, codec: str | None) -> bytes:
    if not data or codec is None:
        return data
    return data.decode("utf-8", errors="replace").encode(codec, errors="replace")


class CmdShell(common.CommandShell[CmdCommand]):
    def __init__(
        self,
        *,
        shell_id: str,
        owner: api.Principal,
        idle_timeout: float,
        codepage: int,
        input_streams: str,
        output_streams: str,
    ) -> None:
        super().__init__(shell_id, common.CMD_RESOURCE_URI, owner, idle_timeout)
        self.codepage = codepage
        self.codec = _codec_for(codepage)
        self.input_streams = input_streams.split()
        self.output_streams = output_streams.split()
        self.commands_started = 0

    def operation_count(self) -> int:
        # Windows does not give a text-based shell's command back to MaxConcurrentOperationsPerUser
        # when it is terminated (MS-WSMV 3.1.4.12, note 118), nor when it ends: only deleting the
        # shell does (docs/winhost-behaviours.md).
        with self.lock:
            return 1 + self.commands_started

    def close(self) -> None:
        with self.lock:
            commands, self.commands = list(self.commands.values()), {}
            self.closed = True
        for command in commands:
            command.process.terminate()


class CmdShellHandler:
    """Implements api.ShellHandler for the WinRS cmd shell."""

    def __init__(
        self, host: api.HostView, engine: api.ExecutionEngine, table: common.ShellTable
    ) -> None:
        self.host = host
        self.engine = engine
        self.table = table

    def handle(self, request: api.WSManRequest, principal: api.Principal) -> api.WSManResponse:
        action = request.action
        if action == common.ACTION_CREATE:
            return self._create(request, principal)
        if action == common.ACTION_ENUMERATE:
            return common.enumerate_response(
                request, principal, self.table, common.CMD_RESOURCE_URI
            )
        operations = {
            common.ACTION_DELETE: self._delete,
            common.ACTION_COMMAND: self._command,
            common.ACTION_SEND: self._send,
            common.ACTION_RECEIVE: self._receive,
            common.ACTION_SIGNAL: self._signal,
        }
        operation = operations.get(action)
        if operation is None:
            raise common.action_not_supported_fault(action, request.resource_uri)
        shell = self.table.get(request, principal, CmdShell)
        with common.Activity(shell):
            return operation(request, shell)

    # -- Create / Delete --------------------------------------------------------------------

    def _create(self, request: api.WSManRequest, principal: api.Principal) -> api.WSManResponse:
        injected = hooks.create_fault(self.host)
        if injected is not None:
            raise injected
        shell_node = common.body_child(request, "Shell")
        _refuse_unmodelled_shell_settings(shell_node)
        codepage_text = request.options.get("WINRS_CODEPAGE", str(_DEFAULT_CODEPAGE))
        try:
            codepage = int(codepage_text)
        except ValueError as err:
            raise common.bad_request_fault(
                f"WINRS_CODEPAGE {codepage_text!r} is not a code page number."
            ) from err
        input_streams = _text(shell_node, "InputStreams") or "stdin"
        output_streams = _text(shell_node, "OutputStreams") or "stdout stderr"
        shell = CmdShell(
            shell_id=(shell_node.get("ShellId") or common.new_shell_id()).upper(),
            owner=principal,
            idle_timeout=self.table.idle_timeout_seconds(common.requested_idle_timeout(shell_node)),
            codepage=codepage,
            input_streams=input_streams,
            output_streams=output_streams,
        )
        shell.name = (_text(shell_node, "Name") or "").strip() or None
        self.table.add(shell)
        return common.create_response(request, self.host, shell, input_streams, output_streams)

    def _delete(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        self.table.remove(shell)
        return common.delete_response()

    # -- Command / Send ---------------------------------------------------------------------

    def _command(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, CmdShell)
        line = common.body_child(request, "CommandLine")
        command_node = line.find(q("rsp", "Command"))
        if command_node is None:
            raise common.bad_request_fault("rsp:CommandLine has no rsp:Command element.")
        command = (command_node.text or "").strip()
        arguments = [node.text or "" for node in line.findall(q("rsp", "Arguments"))]
        if request.options.get("WINRS_SKIP_CMD_SHELL", "").upper() == "TRUE":
            # Windows then starts the program without cmd.exe (no PATH search: a bare
            # "powershell.exe" is "The system cannot find the file specified", pypsrp's
            # recording test_winrs_no_cmd_shell.yml); every winhost command runs through cmd.exe.
            raise common.not_modelled_fault(
                "commands started without cmd.exe (WINRS_SKIP_CMD_SHELL)"
            )
        command_id = (line.get("CommandId") or common.new_shell_id()).upper()
        self.table.check_operation_quota(shell.owner)
        with shell.lock:
            if command_id in shell.commands:
                raise common.bad_request_fault(f"A command with CommandId {command_id} exists.")
            process = self.engine.start_command_line(self.host, shell.owner, command, arguments)
            shell.commands[command_id] = CmdCommand(command_id, process)
            shell.commands_started += 1
        return common.command_response(command_id)

    def _send(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, CmdShell)
        injected = hooks.send_fault(self.host)
        if injected is not None:
            raise injected
        send = common.body_child(request, "Send")
        for stream in send.findall(q("rsp", "Stream")):
            name = stream.get("Name") or ""
            if name not in shell.input_streams:
                raise common.bad_request_fault(
                    f"rsp:Stream Name={name!r} is not an input stream of this shell "
                    f"({' '.join(shell.input_streams)})."
                )
            command = shell.command(stream.get("CommandId"))
            try:
                data = base64.b64decode((stream.text or "").strip(), validate=True)
            except binascii.Error as err:
                raise common.bad_request_fault("rsp:Stream content is not base64.") from err
            end = common.is_true(stream.get("End"))
            if shell.codec is not None and data:
                data = data.decode(shell.codec, errors="replace").encode("utf-8")
            command.process.send_input(data, end)
        return common.send_response()

    # -- Receive ----------------------------------------------------------------------------

    def _receive(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, CmdShell)
        desired = common.body_child(request, "Receive").find(q("rsp", "DesiredStream"))
        if desired is None:
            raise common.bad_request_fault("rsp:Receive has no rsp:DesiredStream element.")
        if not desired.get("CommandId"):
            # The cmd plugin has no shell-level output to give (PSRP's pool receive does).
            raise common.cmd_plugin_invalid_parameter_fault()
        command = shell.command(desired.get("CommandId"))
        streams = (desired.text or "stdout stderr").split()
        timeout = common.operation_timeout(request)
        injected = hooks.receive_fault(self.host, timeout)
        if injected is not None:
            raise injected
        budget = common.response_payload_budget(request, self.host)
        with command.receive_lock:
            deadline = time.monotonic() + timeout
            while not command.has_output and not command.finished:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise hooks.operation_timeout_fault()
                command.absorb(command.process.read_output(remaining), shell.codec)
            return common.receive_response(_receive_body(command, streams, budget))

    # -- Signal -----------------------------------------------------------------------------

    def _signal(self, request: api.WSManRequest, shell: common.Shell) -> api.WSManResponse:
        assert isinstance(shell, CmdShell)
        signal = common.body_child(request, "Signal")
        code = (_text(signal, "Code") or "").strip()
        command = shell.command(signal.get("CommandId"))
        lowered = code.lower()
        if lowered == common.SIGNAL_TERMINATE:
            command.process.terminate()
            with shell.lock:
                shell.commands.pop(command.command_id, None)
        elif lowered in (common.SIGNAL_CTRL_C, common.SIGNAL_CTRL_BREAK):
            # The console's default handler ends the process; its output stays receivable.
            command.process.terminate()
        else:
            raise common.bad_request_fault(f"rsp:Code {code!r} is not a WinRS signal code.")
        return common.signal_response()


def _text(parent: ET.Element, local: str) -> str | None:
    node = parent.find(q("rsp", local))
    return None if node is None else (node.text or "")


def _refuse_unmodelled_shell_settings(shell_node: ET.Element) -> None:
    environment = shell_node.find(q("rsp", "Environment"))
    if environment is not None and len(environment):
        raise common.not_modelled_fault("environment variables set through rsp:Environment")
    directory = _text(shell_node, "WorkingDirectory")
    if directory and directory.strip():
        raise common.not_modelled_fault("a shell working directory (rsp:WorkingDirectory)")


def _receive_body(command: CmdCommand, streams: list[str], budget: int) -> ET.Element:
    """rsp:ReceiveResponse with as much pending output as fits `budget` raw bytes; the final
    CommandState (Done with ExitCode) only once every byte has been handed out."""
    body = common.element("rsp", "ReceiveResponse")
    cid = command.command_id
    for name in streams:
        pending = (
            command.stdout if name == "stdout" else command.stderr if name == "stderr" else None
        )
        if pending is None:
            continue
        chunk = bytes(pending[:budget])
        del pending[: len(chunk)]
        budget -= len(chunk)
        if chunk:
            sub(body, "rsp", "Stream", base64.b64encode(chunk).decode(), Name=name, CommandId=cid)
    done = command.finished and not command.has_output
    if done:
        command.done_reported = True
        for name in streams:
            sub(body, "rsp", "Stream", None, Name=name, CommandId=cid, End="true")
        state = sub(body, "rsp", "CommandState", None, CommandId=cid, State=common.STATE_DONE)
        sub(
            state, "rsp", "ExitCode", str(command.exit_code if command.exit_code is not None else 0)
        )
    else:
        sub(body, "rsp", "CommandState", None, CommandId=cid, State=common.STATE_RUNNING)
    return body
