"""Helpers for the shell tests: a HostView with settable WinRM settings, a scripted execution
engine, and real pywinrm / pypsrp clients whose transport hands the request bytes to winhost's
envelope parser and shell handlers in process (no sockets; the socket tests use the server).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import typing as t
from pathlib import Path

from pypsrp.exceptions import WinRMTransportError as PsrpTransportError
from pypsrp.wsman import WSMan
from winrm.exceptions import WinRMTransportError
from winrm.protocol import Protocol

from winhost import api
from winhost.shells import shell_handlers
from winhost.wsman import envelope

ADMIN = api.Principal("ansible", "WIN1", "NTLM", is_admin=True)
OTHER = api.Principal("operator", "WIN1", "NTLM", is_admin=False)
ENDPOINT = "http://127.0.10.1:5985/wsman"


@dataclasses.dataclass
class SettingsHost:
    """api.HostView for WIN1 whose WinRM settings a test sets (paths as in winrm_setting)."""

    root: Path
    settings: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def computer_name(self) -> str:
        return "WIN1"

    @property
    def fqdn(self) -> str:
        return "win1.winops.test"

    @property
    def fs_root(self) -> Path:
        return self.root

    def find_account(self, name: str) -> api.Account | None:
        return None

    def account_sid(self, principal: api.Principal) -> str:
        raise ValueError(f"this test host has no accounts ({principal.qualified_name})")

    def pay(self, operation: str) -> None:
        pass  # no latency profile: nothing is slept

    def winrm_setting(self, path: str) -> str:
        for key, value in self.settings.items():
            if key.lower() == path.lower():
                return value
        raise KeyError(path)

    def facts(self) -> dict[str, t.Any]:
        return {}


class ScriptedProcess:
    """api.Process driven by a Python function in a thread (the scripted "program")."""

    def __init__(self, program: t.Callable[[ScriptedProcess], None]) -> None:
        self._cond = threading.Condition()
        self._batch = api.OutputBatch()
        self._input: list[t.Any] = []
        self._input_text = b""
        self.input_ended = False
        self.terminated = False
        self.finished = False
        self._thread = threading.Thread(target=self._run, args=(program,), daemon=True)
        self._thread.start()

    # program side
    def _run(self, program: t.Callable[[ScriptedProcess], None]) -> None:
        try:
            program(self)
        except _Terminated:
            self.finish(1)

    def out(self, data: bytes) -> None:
        with self._cond:
            self._batch.stdout += data
            self._cond.notify_all()

    def err(self, data: bytes) -> None:
        with self._cond:
            self._batch.stderr += data
            self._cond.notify_all()

    def emit(self, obj: t.Any) -> None:
        with self._cond:
            self._batch.objects.append(obj)
            self._cond.notify_all()

    def error(self, message: str) -> None:
        with self._cond:
            self._batch.errors.append(message)
            self._batch.had_errors = True
            self._cond.notify_all()

    def finish(self, code: int | None) -> None:
        with self._cond:
            self._batch.finished = True
            self._batch.exit_code = code
            self.finished = True
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self.terminated and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            if self.terminated:
                raise _Terminated()

    def read_all_input(self) -> tuple[bytes, list[t.Any]]:
        with self._cond:
            while not self.input_ended and not self.terminated:
                self._cond.wait(1.0)
            if self.terminated:
                raise _Terminated()
            return self._input_text, list(self._input)

    # api.Process
    def send_input(self, data: bytes | list[t.Any], end: bool) -> None:
        with self._cond:
            if isinstance(data, bytes):
                self._input_text += data
            else:
                self._input.extend(data)
            self.input_ended = self.input_ended or end
            self._cond.notify_all()

    def read_output(self, timeout: float) -> api.OutputBatch:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                batch = self._batch
                if batch.stdout or batch.stderr or batch.objects or batch.errors or batch.finished:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            self._batch = api.OutputBatch(finished=batch.finished, exit_code=batch.exit_code)
            return batch

    def terminate(self) -> None:
        with self._cond:
            self.terminated = True
            self._cond.notify_all()


class _Terminated(Exception):
    pass


def _cmd_program(command: str, arguments: list[str]) -> t.Callable[[ScriptedProcess], None]:
    words = " ".join([command, *arguments]).split()
    name, args = words[0].lower(), words[1:]

    def program(p: ScriptedProcess) -> None:
        if name == "echo":
            p.out(" ".join(args).encode() + b"\r\n")
            p.finish(0)
        elif name == "exit":
            p.err(b"leaving\r\n")
            p.finish(int(args[0]))
        elif name == "cat":
            text, _ = p.read_all_input()
            p.out(text)
            p.finish(0)
        elif name == "slow":
            p.sleep(float(args[0]))
            p.out(b"late\r\n")
            p.finish(0)
        elif name == "hang":
            p.sleep(3600)
        elif name == "big":
            size = int(args[0])
            p.out(bytes(i % 251 for i in range(size)))
            p.finish(0)
        elif name == "umlaut":
            p.out("Grüße ✓\r\n".encode())
            p.finish(0)
        else:
            p.err(f"'{name}' is not recognized\r\n".encode())
            p.finish(9009)

    return program


def _pipeline_program(commands: list[api.PipelineCommand]) -> t.Callable[[ScriptedProcess], None]:
    first = commands[0]
    words = first.text.split()

    def program(p: ScriptedProcess) -> None:
        if not first.is_script:
            p.emit(f"{first.text}:{first.parameters!r}")
            p.finish(None)
        elif words[0] == "objects":
            for value in ("one", 2, True):
                p.emit(value)
            p.finish(None)
        elif words[0] == "echo-input":
            _, items = p.read_all_input()
            for item in items:
                p.emit(f"got {item}")
            p.finish(None)
        elif words[0] == "fail":
            p.emit("before")
            p.error("Cannot find path 'C:\\nope' because it does not exist.")
            p.finish(None)
        elif words[0] == "exit":
            p.finish(int(words[1]))
        elif words[0] == "slow":
            p.sleep(float(words[1]))
            p.emit("late")
            p.finish(None)
        elif words[0] == "sleep":
            p.sleep(3600)
        elif words[0] == "many":
            for i in range(int(words[1])):
                p.emit(f"line {i:06d} " + "x" * 200)
            p.finish(None)
        else:
            p.error(f"The term '{words[0]}' is not recognized as the name of a cmdlet.")
            p.finish(None)

    return program


class ScriptedEngine:
    """api.ExecutionEngine whose commands are the scripted programs above."""

    def __init__(self) -> None:
        self.command_lines: list[tuple[api.Principal, str, list[str]]] = []
        self.pipelines: list[tuple[api.Principal, list[api.PipelineCommand]]] = []
        self.processes: list[ScriptedProcess] = []

    def start_command_line(
        self, host: api.HostView, principal: api.Principal, command: str, arguments: list[str]
    ) -> api.Process:
        self.command_lines.append((principal, command, arguments))
        process = ScriptedProcess(_cmd_program(command, arguments))
        self.processes.append(process)
        return process

    def start_pipeline(
        self, host: api.HostView, principal: api.Principal, commands: list[api.PipelineCommand]
    ) -> api.Process:
        self.pipelines.append((principal, commands))
        process = ScriptedProcess(_pipeline_program(commands))
        self.processes.append(process)
        return process


class InProcessServer:
    """parse_request -> shell handler -> render_response/render_fault, as the router does."""

    def __init__(self, host: api.HostView, engine: api.ExecutionEngine) -> None:
        self.host = host
        self.handlers = shell_handlers(host, engine)
        self.principal = ADMIN
        self.responses: list[tuple[int, int, int | None]] = []  # (status, size, client max)
        self.last_body = b""

    def exchange(self, data: bytes) -> tuple[int, bytes]:
        request: api.WSManRequest | None = None
        try:
            request = envelope.parse_request(data)
            handler = self.handlers.get(request.resource_uri)
            if handler is None:
                raise AssertionError(f"no shell handler for {request.resource_uri}")
            body = envelope.render_response(request, handler.handle(request, self.principal))
            status = 200
        except api.WSManFault as fault:
            body = envelope.render_fault(request, fault, self.host.computer_name)
            status = fault.http_status
        self.responses.append((status, len(body), request.max_envelope_size if request else None))
        self.last_body = body
        return status, body

    def pywinrm(self, protocol_class: type[Protocol] = Protocol, **kwargs: t.Any) -> t.Any:
        """A real pywinrm Protocol (or the subclass given, such as the winrm plugin's) whose
        HTTP exchange is this server."""
        protocol = protocol_class(
            ENDPOINT, transport="plaintext", username="ansible", password="x", **kwargs
        )

        def send_message(message: str | bytes) -> bytes:
            data = message.encode("utf-8") if isinstance(message, str) else message
            status, body = self.exchange(data)
            if status != 200:
                raise WinRMTransportError("http", status, body.decode("utf-8"))
            return body

        protocol.transport.send_message = send_message  # type: ignore[method-assign]
        return protocol

    def pypsrp(self, **kwargs: t.Any) -> WSMan:
        """A real pypsrp WSMan whose HTTP exchange is this server."""
        wsman = WSMan(
            "127.0.10.1",
            ssl=False,
            auth="basic",
            username="ansible",
            password="x",
            encryption="never",
            **kwargs,
        )

        def send(message: bytes, **_: t.Any) -> bytes:
            status, body = self.exchange(message)
            if status != 200:
                raise PsrpTransportError("http", status, body.decode("utf-8"))
            return body

        wsman.transport.send = send  # type: ignore[method-assign]
        return wsman
