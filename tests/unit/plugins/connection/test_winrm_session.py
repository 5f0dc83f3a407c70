"""winops.remoting.winrm session layer: retries, the never-twice rule, time limits, transfers.

A scripted stand-in for winrm.protocol.Protocol plays the host. It runs small Python
"programs" for each WinRS Command: the PUT and FETCH programs speak the collection's transfer
protocol exactly as the PowerShell scripts do, so put_file and fetch_file run end to end.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import tracemalloc
import typing as t

import pytest
import requests.exceptions
import urllib3.exceptions
from ansible.errors import AnsibleConnectionFailure
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)

from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
    DiagnosedTaskFailure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    OptionSource,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
    WinRMSettings,
    build_settings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
    _winrm_protocol,
    _winrm_session,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
    CommandTimeoutError,
    OutputLostError,
    WinRMSession,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
    DEFAULT_ENVELOPE_OVERHEAD,
    FETCH_SCRIPT,
    PUT_SCRIPT,
    TransferError,
    put_chunk_size,
    stdin_chunk_size,
)

try:  # ansible-core 2.19+
    from ansible._internal._errors._task_timeout import TaskTimeoutError

    def task_timeout() -> BaseException:
        return TaskTimeoutError(5)

except ImportError:  # ansible-core 2.17 / 2.18
    from ansible.executor.task_executor import TaskTimeoutError  # type: ignore[no-redef]

    def task_timeout() -> BaseException:
        return TaskTimeoutError()


PASSWORD = "s3cr3t-Pässwörd"
DONE = "done"


# -- the host's side ---------------------------------------------------------------------------


def connection_reset() -> requests.exceptions.ConnectionError:
    cause = urllib3.exceptions.ProtocolError(
        "Connection aborted.", ConnectionResetError(104, "Connection reset by peer")
    )
    return requests.exceptions.ConnectionError(cause)


def connection_refused() -> requests.exceptions.ConnectionError:
    refused = ConnectionRefusedError(111, "Connection refused")
    try:
        raise urllib3.exceptions.NewConnectionError(
            None, "Failed to establish a new connection"
        ) from refused  # type: ignore[arg-type]
    except urllib3.exceptions.NewConnectionError as err:
        wrapped = urllib3.exceptions.MaxRetryError(None, "/wsman", err)  # type: ignore[arg-type]
    return requests.exceptions.ConnectionError(wrapped)


def response_cut_off() -> requests.exceptions.ChunkedEncodingError:
    """What pywinrm sees when the host drops the connection in the middle of its answer."""
    incomplete = http.client.IncompleteRead(b"x" * 896, 896)
    cause = urllib3.exceptions.ProtocolError(f"Connection broken: {incomplete!r}", incomplete)
    return requests.exceptions.ChunkedEncodingError(cause)


def fault(wsman_code: int | None = None, wmi_code: int | None = None) -> WSManFaultError:
    return WSManFaultError(
        code=500,
        message="Bad HTTP response returned from server. Code 500",
        response="<fault/>",
        reason="fault for the test",
        wsman_fault_code=wsman_code,
        wmierror_code=wmi_code,
    )


def as_pywinrm_raises(error: WSManFaultError) -> WSManFaultError:
    """``error`` with the context pywinrm leaves behind a WSMan fault: it parses the fault out
    of the WinRMTransportError it raised for the HTTP 500 while handling requests' HTTPError
    (an OSError, as all of requests' errors are)."""
    answer = requests.Response()
    answer.status_code = 500
    try:
        try:
            try:
                raise requests.exceptions.HTTPError("500 Server Error", response=answer)
            except requests.exceptions.HTTPError:
                raise WinRMTransportError("http", 500, "<fault/>")  # noqa: B904 - as pywinrm
        except WinRMTransportError:
            raise error  # noqa: B904 - as pywinrm
    except WSManFaultError as raised:
        return raised


Reply = tuple[bytes, bytes, int, bool]


class Program:
    """What one WinRS Command does on the fake host."""

    def __init__(self) -> None:
        self.stdin = b""
        self.ended = False

    def feed(self, data: bytes, end: bool) -> None:
        assert not self.ended, "input sent after End"
        self.stdin += data
        self.ended = end

    def receive(self, protocol: FakeProtocol) -> Reply:
        raise NotImplementedError


class Scripted(Program):
    """Answers each Receive with the next item; an exception item is raised."""

    def __init__(self, replies: list[Reply | BaseException]) -> None:
        super().__init__()
        self.replies = list(replies)

    def receive(self, protocol: FakeProtocol) -> Reply:
        item = self.replies.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


class PutHost(Program):
    """The PUT transfer script: header line, base64 chunk lines, one JSON result line."""

    def __init__(self, files: dict[str, bytes], keep: bool = True, lie: bool = False) -> None:
        super().__init__()
        self.files = files
        self.keep = keep
        self.lie = lie
        self.path: str | None = None
        self.digest = hashlib.sha1()
        self.size = 0
        self.chunks: list[bytes] = []

    def feed(self, data: bytes, end: bool) -> None:
        super().feed(data, end)
        *lines, rest = self.stdin.split(b"\r\n")
        self.stdin = rest  # process complete lines at once: a big file is never held
        for line in lines:
            raw = base64.b64decode(line, validate=True)
            if self.path is None:
                self.path = json.loads(raw)["path"]
                continue
            self.digest.update(raw)
            self.size += len(raw)
            if self.keep:
                self.chunks.append(raw)

    def receive(self, protocol: FakeProtocol) -> Reply:
        assert self.ended and self.stdin == b"", "PUT answered before its input ended"
        assert self.path is not None
        self.files[self.path] = b"".join(self.chunks)
        sha1 = hashlib.sha1(b"tampered").hexdigest() if self.lie else self.digest.hexdigest()
        result = json.dumps({"sha1": sha1, "size": self.size}).encode()
        return result + b"\r\n", b"", 0, True


class FetchHost(Program):
    """The FETCH transfer script, streaming its output over many Receives."""

    def __init__(
        self,
        content: t.Callable[[], t.Iterator[bytes]] | None,
        receive_size: int = 7001,
        lie: bool = False,
    ) -> None:
        super().__init__()
        self.content = content
        self.receive_size = receive_size  # odd, so that lines split anywhere
        self.lie = lie
        self._output: t.Iterator[bytes] | None = None
        self._buffer = b""

    def _lines(self, chunk_size: int) -> t.Iterator[bytes]:
        assert self.content is not None
        digest, size, pending = hashlib.sha1(), 0, b""
        for block in self.content():
            pending += block
            while len(pending) >= chunk_size:
                chunk, pending = pending[:chunk_size], pending[chunk_size:]
                digest.update(chunk)
                size += len(chunk)
                yield base64.b64encode(chunk) + b"\r\n"
        if pending:
            digest.update(pending)
            size += len(pending)
            yield base64.b64encode(pending) + b"\r\n"
        sha1 = hashlib.sha1(b"tampered").hexdigest() if self.lie else digest.hexdigest()
        yield json.dumps({"sha1": sha1, "size": size}).encode() + b"\r\n"

    def receive(self, protocol: FakeProtocol) -> Reply:
        assert self.ended
        header = json.loads(base64.b64decode(self.stdin.strip()))
        if self.content is None:
            message = f"winops.remoting fetch: '{header['path']}' does not exist"
            return b"", message.encode(), 1, True
        if self._output is None:
            self._output = self._lines(header["chunk_size"])
        while len(self._buffer) < self.receive_size:
            line = next(self._output, None)
            if line is None:
                out, self._buffer = self._buffer, b""
                return out, b"", 0, True
            self._buffer += line
        out = self._buffer[: self.receive_size]
        self._buffer = self._buffer[self.receive_size :]
        return out, b"", 0, False


class FakeTransport:
    def __init__(self) -> None:
        self.sessions_closed = 0
        self.encryption: object | None = None  # pywinrm's message encryption, when in use

    def close_session(self) -> None:
        self.sessions_closed += 1


class FakeProtocol:
    """Scripted winrm.protocol.Protocol: records every call, answers from ``programs``."""

    def __init__(self, programs: list[Program] | None = None) -> None:
        self.transport = FakeTransport()
        self.operation_timeout_sec = 20
        self.max_env_sz = 153600  # the largest answer asked for (set by the session)
        self.host_limit = 512000  # MaxEnvelopeSizekb 500: what the host takes
        self.refuse_larger: int | None = None  # an older host's limit, refused with HTTP 413
        self.programs = list(programs or [])
        self.running: dict[str, Program] = {}
        self.calls: list[tuple[str, t.Any]] = []
        self.failures: dict[str, list[BaseException | None]] = {}
        self.shells = 0
        self.receive_waits: list[int] = []
        self.on_receive: t.Callable[[int], None] | None = None
        self.shell_names: list[str | None] = []
        self.shell_idle_timeouts: list[int | None] = []
        self.listed: list[tuple[str, str | None]] = []  # what list_shells answers

    def _maybe_fail(self, operation: str) -> None:
        pending = self.failures.get(operation)
        if pending:
            error = pending.pop(0)
            if error is not None:  # None: this call succeeds, a later one fails
                raise error

    def names(self, operation: str) -> list[t.Any]:
        return [detail for name, detail in self.calls if name == operation]

    def open_shell(
        self,
        codepage: int = 437,
        name: str | None = None,
        idle_timeout: int | None = None,
        **kwargs: t.Any,
    ) -> str:
        self.calls.append(("open_shell", codepage))
        self.shell_names.append(name)
        self.shell_idle_timeouts.append(idle_timeout)
        self._maybe_fail("open_shell")
        self.shells += 1
        return f"SHELL-{self.shells}"

    def list_shells(self) -> list[tuple[str, str | None]]:
        self.calls.append(("list_shells", None))
        self._maybe_fail("list_shells")
        return list(self.listed)

    def close_shell(self, shell_id: str, close_session: bool = True) -> None:
        self.calls.append(("close_shell", shell_id))
        self._maybe_fail("close_shell")

    def run_command(
        self,
        shell_id: str,
        command: str,
        arguments: t.Sequence[str] = (),
        console_mode_stdin: bool = True,
        skip_cmd_shell: bool = False,
    ) -> str:
        self.calls.append(("run_command", (shell_id, command, list(arguments), console_mode_stdin)))
        self._maybe_fail("run_command")
        command_id = f"CMD-{len(self.names('run_command'))}"
        self.running[command_id] = self.programs.pop(0)
        return command_id

    def stdin_message(
        self, shell_id: str, command_id: str, data: bytes, end: bool
    ) -> tuple[str, str, bytes, bool]:
        self.calls.append(("build", (len(data), end)))
        return (shell_id, command_id, data, end)

    def send_message(self, message: tuple[str, str, bytes, bool]) -> None:
        _shell_id, command_id, stdin_input, end = message
        envelope = len(base64.b64encode(stdin_input)) + DEFAULT_ENVELOPE_OVERHEAD
        if self.refuse_larger is not None and envelope > self.refuse_larger:
            # An older host's MaxEnvelopeSizekb: HTTP 413, nothing taken.
            self.calls.append(("refused", len(stdin_input)))
            raise WinRMTransportError("http", 413, "")
        self.calls.append(("send", (len(stdin_input), end)))
        assert envelope <= self.host_limit, "a Send would exceed the host's MaxEnvelopeSize"
        self._maybe_fail("send")
        self.running[command_id].feed(stdin_input, end)

    def get_command_output_raw(self, shell_id: str, command_id: str) -> Reply:
        self.calls.append(("receive", command_id))
        self.receive_waits.append(self.operation_timeout_sec)
        if self.on_receive is not None:
            self.on_receive(self.operation_timeout_sec)
        self._maybe_fail("receive")
        return self.running[command_id].receive(self)

    def cleanup_command(self, shell_id: str, command_id: str) -> None:
        self.calls.append(("signal_terminate", command_id))
        self._maybe_fail("signal")


# -- the controller's side ---------------------------------------------------------------------


DEFAULTS: dict[str, t.Any] = {
    "remote_addr": "win01.example.com",
    "remote_user": "ansible",
    "remote_password": PASSWORD,
    "path": "/wsman",
    "server_cert_validation": "validate",
    "send_cbt": True,
    "message_encryption": "auto",
    "credssp_disable_tlsv1_2": False,
    "no_proxy": False,
    "kerberos_delegation": False,
    "service": "HTTP",
    "operation_timeout_sec": 20,
    "read_timeout_sec": 30,
    "reconnection_retries": 3,
    "reconnection_backoff": 1.0,
    "command_timeout": 0,
    "max_envelope_size": 153600,
    "kerberos_command": "kinit",
    "kinit_env_vars": [],
    "session_start_ahead": True,
}


def make_settings(**options: t.Any) -> WinRMSettings:
    """Settings from a dict of options over the plugin's documented defaults."""
    values = {**DEFAULTS, **options}
    source = OptionSource(values.get, {}, extras_prefix="ansible_winrm_", environ={})
    return build_settings(source, _winrm_protocol.protocol_parameters(), False)


class Harness:
    """A WinRMSession wired to a FakeProtocol, a recorded sleep and a controllable clock."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        host_idle_timeout: int | None = None,
        **options: t.Any,
    ) -> None:
        self.protocol = FakeProtocol()
        self.sleeps: list[float] = []
        self.now = 1000.0
        self.logs: list[tuple[int, str]] = []
        self.warnings: list[str] = []
        self.created: list[dict[str, t.Any]] = []

        def new_protocol(**kwargs: t.Any) -> FakeProtocol:
            self.created.append(kwargs)
            return self.protocol

        monkeypatch.setattr(_winrm_session, "Protocol", new_protocol)
        self.session = WinRMSession(
            make_settings(**options),
            log=lambda level, message: self.logs.append((level, message)),
            warn=self.warnings.append,
            sleep=self.sleeps.append,
            clock=lambda: self.now,
            host_idle_timeout=host_idle_timeout,
        )

    def program(self, *programs: Program) -> None:
        self.protocol.programs.extend(programs)

    def fail(self, operation: str, *errors: BaseException | None) -> None:
        self.protocol.failures.setdefault(operation, []).extend(errors)


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Harness:
    return Harness(monkeypatch)


OK: Reply = (b"ok\r\n", b"", 0, True)


# -- the command is never started twice --------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        connection_reset(),
        connection_refused(),
        response_cut_off(),
        WinRMTransportError("http", 503, ""),
    ],
    ids=["reset", "refused", "cut-off", "http-503"],
)
def test_command_is_never_sent_twice(host: Harness, error: Exception) -> None:
    host.program(Scripted([OK]), Scripted([OK]))
    host.fail("run_command", error)
    with pytest.raises(AnsibleConnectionFailure):
        host.session.run("whoami.exe")
    assert len(host.protocol.names("run_command")) == 1
    assert host.sleeps == []


def test_transient_receive_error_is_retried_without_restarting(host: Harness) -> None:
    host.program(Scripted([(b"first ", b"", -1, False), (b"second", b"", 0, True)]))
    host.fail("receive", connection_refused(), WinRMTransportError("http", 502, ""))
    result = host.session.run("whoami.exe")
    assert result == _winrm_session.CommandResult(0, b"first second", b"")
    assert len(host.protocol.names("run_command")) == 1
    assert len(host.protocol.names("receive")) == 4  # two failures, then two answers
    assert host.sleeps == [1.0, 2.0]
    # The refused connection is replaced (authenticating afresh); after the 502 answer the
    # connection itself was fine and is kept. Neither lost an answer: no error.
    assert host.protocol.transport.sessions_closed == 1


def test_response_cut_off_on_receive_fails_clearly(host: Harness) -> None:
    host.program(Scripted([(b"", b"", -1, False), (b"rest", b"", 0, True)]))
    host.fail("receive", response_cut_off())
    with pytest.raises(OutputLostError) as raised:
        host.session.run("whoami.exe")
    # Receiving went on to the end (retried on a new connection), then the loss is reported:
    # the lost answer may have carried output, and WinRS cannot send it again.
    assert len(host.protocol.names("receive")) == 3
    assert len(host.protocol.names("run_command")) == 1
    assert host.protocol.transport.sessions_closed == 1
    assert str(raised.value) == (
        "winops.remoting.winrm: the connection broke while the host answered a Receive for "
        f"command CMD-1 ({response_cut_off()}); the command ran once (exit code 0), but the "
        "output in that answer is lost, so its result cannot be trusted"
    )
    assert host.protocol.names("signal_terminate") == ["CMD-1"]


def test_refused_receive_loses_nothing(host: Harness) -> None:
    host.program(Scripted([OK]))
    host.fail("receive", connection_refused())
    assert host.session.run("whoami.exe").stdout == b"ok\r\n"
    assert host.warnings == []


def test_after_a_broken_command_the_next_request_reconnects(host: Harness) -> None:
    host.program(Scripted([OK]))
    host.session.open()
    host.fail("run_command", response_cut_off())
    with pytest.raises(AnsibleConnectionFailure):
        host.session.run("whoami.exe")
    assert host.protocol.transport.sessions_closed == 0
    host.session.close()
    # The shell is deleted on a new, freshly authenticated connection.
    assert host.protocol.transport.sessions_closed == 1
    assert host.protocol.names("close_shell") == ["SHELL-1"]
    assert host.warnings == []


def test_every_request_logs_on_again_when_the_host_closed_the_connection(
    host: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 11 item 2: the shell Delete (and Signal, retries) went out on the new connection
    # sealed with the old one's keys; only Command checked. Here the host closed the kept
    # connection after the shell was created.
    host.program(Scripted([OK]))
    host.session.open()
    monkeypatch.setattr(_winrm_session, "connection_lost", lambda http: True)
    host.session.close()
    assert host.protocol.transport.sessions_closed == 1
    assert host.protocol.names("close_shell") == ["SHELL-1"]


def test_an_undecryptable_request_is_sent_again_after_a_new_logon(host: Harness) -> None:
    # An empty 400 to an encrypted message: the host could not read it, so it ran nothing.
    host.protocol.transport.encryption = object()
    host.program(Scripted([OK]))
    host.fail("run_command", WinRMTransportError("http", 400, ""))
    assert host.session.run("whoami.exe").stdout == b"ok\r\n"
    assert len(host.protocol.names("run_command")) == 2
    assert host.protocol.transport.sessions_closed == 1


def test_an_undecryptable_request_is_sent_again_once_only(host: Harness) -> None:
    host.protocol.transport.encryption = object()
    host.program(Scripted([OK]))
    host.fail("run_command", *[WinRMTransportError("http", 400, "") for _ in range(2)])
    with pytest.raises(DiagnosedTaskFailure):  # over https a 400 is the host's answer
        host.session.run("whoami.exe")
    assert len(host.protocol.names("run_command")) == 2


def test_a_400_without_message_encryption_is_not_sent_again(host: Harness) -> None:
    host.program(Scripted([OK]))
    host.fail("run_command", WinRMTransportError("http", 400, ""))
    with pytest.raises(DiagnosedTaskFailure):
        host.session.run("whoami.exe")
    assert len(host.protocol.names("run_command")) == 1


def test_a_shell_whose_create_answer_was_lost_is_found_by_name_and_deleted(
    host: Harness,
) -> None:
    # Issue 11 item 7: the first Create ran on the host but its answer was cut off; the
    # retry's shell serves the session, and the first one (same name) is deleted instead of
    # being left to the idle timeout. Shells of other names are never touched.
    host.fail("open_shell", response_cut_off())

    def list_shells() -> list[tuple[str, str | None]]:
        name = host.protocol.shell_names[0]
        return [("LOST-1", name), ("SHELL-1", name), ("OTHER-1", "another task's"), ("X", None)]

    host.protocol.list_shells = list_shells  # type: ignore[method-assign]
    host.session.open()
    assert host.session.shell_id == "SHELL-1"
    assert host.protocol.names("close_shell") == ["LOST-1"]
    assert host.warnings == []


def test_a_lost_shell_that_cannot_be_listed_is_named_in_a_warning(host: Harness) -> None:
    host.fail("open_shell", response_cut_off())
    host.fail("list_shells", WSManFaultError(500, "", "", "access denied"))
    host.session.open()
    (name,) = set(host.protocol.shell_names)
    assert len(host.warnings) == 1
    assert f"a WinRS shell named {name}" in host.warnings[0]
    assert "idle timeout" in host.warnings[0]


def test_a_host_that_does_not_show_shell_names_gets_a_warning_not_a_guess(
    host: Harness,
) -> None:
    # Without the names the lost shell cannot be told from the user's other shells: none is
    # deleted, and the warning says a shell may be left.
    host.fail("open_shell", response_cut_off())
    host.protocol.listed = [("LOST-1", None), ("SHELL-1", None)]
    host.session.open()
    assert host.protocol.names("close_shell") == []
    assert len(host.warnings) == 1
    assert "does not show the name" in host.warnings[0]


def test_a_host_that_refuses_shell_names_still_gets_its_shell(host: Harness) -> None:
    # A name the host's schema refuses must not cut the play off: the Create is sent again
    # without it (a fault means no shell was made).
    refused = WSManFaultError(
        500, "", "", "schema", wsman_fault_code=2150858817, fault_code="s:Sender"
    )
    host.fail("open_shell", refused)
    host.session.open()
    assert host.session.shell_id == "SHELL-1"
    assert host.protocol.shell_names[0] is not None and host.protocol.shell_names[1] is None
    assert host.warnings == []


def test_a_kept_session_asks_for_its_idle_timeout_in_every_shell_it_creates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = Harness(monkeypatch, host_idle_timeout=120)
    host.session.open()
    host.session.reopen_shell()
    assert host.protocol.shell_idle_timeouts == [120, 120]


def test_a_host_whose_schema_refuses_the_idle_timeout_gets_shells_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A schema fault means no shell was made: the Create goes again without the name, then
    # without the idle timeout too, and so do the session's later Creates.
    host = Harness(monkeypatch, host_idle_timeout=120)
    refused = WSManFaultError(
        500, "", "", "schema", wsman_fault_code=2150858817, fault_code="s:Sender"
    )
    host.fail("open_shell", refused, refused)
    host.session.open()
    assert host.session.shell_id == "SHELL-1"
    host.session.reopen_shell()
    assert host.protocol.shell_idle_timeouts == [120, 120, None, None]
    names = host.protocol.shell_names
    assert names[0] is not None and names[1:3] == [None, None]
    assert names[3] is not None  # each shell tries a name again; the idle timeout is not asked
    assert host.warnings == []


def test_another_fault_to_a_create_with_an_idle_timeout_is_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # WinRS caps an idle timeout above the host's own rather than refusing it, so any other
    # fault (a quota, access denied) is the host's answer to the Create itself.
    host = Harness(monkeypatch, host_idle_timeout=120)
    refused = WSManFaultError(500, "", "", "denied", wsman_fault_code=5, fault_code="s:Sender")
    host.fail("open_shell", refused)
    with pytest.raises(AnsibleConnectionFailure):
        host.session.open()
    assert host.protocol.shell_idle_timeouts == [120]


def test_a_fault_to_a_create_without_an_idle_timeout_is_not_sent_again(host: Harness) -> None:
    refused = WSManFaultError(500, "", "", "denied", wsman_fault_code=5, fault_code="s:Sender")
    host.fail("open_shell", refused)
    with pytest.raises(AnsibleConnectionFailure):
        host.session.open()
    assert len(host.protocol.names("open_shell")) == 1


def test_a_refused_create_needs_no_cleanup(host: Harness) -> None:
    host.fail("open_shell", connection_refused())
    host.session.open()
    assert host.protocol.names("list_shells") == []


def _tls_failure(reason: ssl.SSLError) -> requests.exceptions.SSLError:
    try:
        raise urllib3.exceptions.SSLError(reason) from reason
    except urllib3.exceptions.SSLError as err:
        wrapped = urllib3.exceptions.MaxRetryError(None, "/wsman", err)  # type: ignore[arg-type]
    return requests.exceptions.SSLError(wrapped)


@pytest.mark.parametrize(
    ("error", "looked_for"),
    [
        pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), False, id="connect"),
        pytest.param(
            requests.exceptions.ConnectionError(socket.gaierror(-2, "unknown name")),
            False,
            id="dns",
        ),
        # The TLS connection ended, maybe after the Create went out.
        pytest.param(_tls_failure(ssl.SSLEOFError(8, "EOF occurred")), True, id="tls-ended"),
    ],
)
def test_a_create_is_looked_for_only_when_it_may_have_reached_the_host(
    host: Harness, error: BaseException, looked_for: bool
) -> None:
    host.fail("open_shell", error)  # none of these is retried
    with pytest.raises(AnsibleConnectionFailure):
        host.session.open()
    assert bool(host.protocol.names("list_shells")) is looked_for


def test_a_create_that_failed_certificate_validation_needs_no_cleanup(host: Harness) -> None:
    """The TLS handshake failed before any request byte went out: no shell can be left, so
    there is nothing to list and no warning that one may be (the host's certificate is not
    trusted, the failure the task reports)."""
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    try:
        raise urllib3.exceptions.SSLError(verify) from verify
    except urllib3.exceptions.SSLError as err:
        wrapped = urllib3.exceptions.MaxRetryError(None, "/wsman", err)  # type: ignore[arg-type]
    host.fail("open_shell", *[requests.exceptions.SSLError(wrapped) for _ in range(5)])
    with pytest.raises(AnsibleConnectionFailure):
        host.session.open()
    assert host.protocol.names("list_shells") == []
    assert not any("may have left a WinRS shell" in w for w in host.warnings), host.warnings


def test_operation_timeout_on_receive_just_waits_again(host: Harness) -> None:
    timeouts: list[Reply | BaseException] = [WinRMOperationTimeoutError() for _ in range(6)]
    host.program(Scripted([*timeouts, (b"late", b"", 0, True)]))
    result = host.session.run("slow.exe")
    assert result.stdout == b"late"
    assert host.sleeps == []  # no backoff: the host already waited OperationTimeout
    assert len(host.protocol.names("run_command")) == 1


def test_open_shell_is_retried_on_refused_connections(host: Harness) -> None:
    host.fail("open_shell", connection_refused(), connection_refused())
    host.session.open()
    assert host.session.shell_id == "SHELL-1"
    assert host.sleeps == [1.0, 2.0]
    assert host.protocol.names("open_shell") == [65001, 65001, 65001]
    assert any("open shell failed with ConnectionError" in m for _, m in host.logs)


def test_open_shell_gives_up_after_the_retries(host: Harness) -> None:
    host.fail("open_shell", *[connection_refused() for _ in range(4)])
    with pytest.raises(AnsibleConnectionFailure) as raised:
        host.session.open()
    assert "https://win01.example.com:5986/wsman" in str(raised.value)
    assert len(host.protocol.names("open_shell")) == 4
    assert host.sleeps == [1.0, 2.0, 4.0]


def test_retry_count_and_backoff_come_from_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, reconnection_retries=1, reconnection_backoff=0.25)
    harness.fail("open_shell", connection_refused(), connection_refused())
    with pytest.raises(AnsibleConnectionFailure):
        harness.session.open()
    assert harness.sleeps == [0.25]


def test_rejected_credentials_are_not_retried(host: Harness) -> None:
    host.fail("open_shell", InvalidCredentialsError("the specified credentials were rejected"))
    with pytest.raises(AnsibleConnectionFailure):
        host.session.open()
    assert len(host.protocol.names("open_shell")) == 1
    assert host.sleeps == []


def test_shell_deletion_is_retried(host: Harness) -> None:
    host.session.open()
    host.fail("close_shell", connection_reset())
    host.session.close()
    assert host.protocol.names("close_shell") == ["SHELL-1", "SHELL-1"]
    assert host.warnings == []
    assert not host.session.is_open


def test_failed_shell_deletion_is_a_warning(host: Harness) -> None:
    host.session.open()
    host.fail("close_shell", InvalidCredentialsError("rejected"))
    host.session.close()
    assert len(host.warnings) == 1
    assert "could not delete WinRS shell SHELL-1" in host.warnings[0]


def test_deleting_a_shell_the_host_no_longer_has_is_not_a_warning(host: Harness) -> None:
    # After a reboot or a WinRM restart the shell is gone already: nothing was left behind.
    host.session.open()
    host.fail("close_shell", fault(wsman_code=2150858843))
    host.session.close()
    assert host.protocol.names("close_shell") == ["SHELL-1"]
    assert host.warnings == []
    assert not host.session.is_open


def test_busy_send_is_retried_but_a_reset_send_is_not(host: Harness) -> None:
    host.program(Scripted([OK]), Scripted([OK]))
    host.fail("send", fault(wsman_code=170))
    assert host.session.run("more.com", stdin=[b"data"]).rc == 0
    assert host.protocol.names("send") == [(4, True), (4, True)]

    host.fail("send", connection_reset())
    with pytest.raises(AnsibleConnectionFailure):
        host.session.run("more.com", stdin=[b"data"])
    assert len(host.protocol.names("send")) == 3
    # The command whose input broke was stopped.
    assert host.protocol.names("signal_terminate") == ["CMD-1", "CMD-2"]


def test_operation_timeout_on_send_is_not_resent(host: Harness) -> None:
    program = Scripted([OK])
    host.program(program)
    host.fail("send", WinRMOperationTimeoutError())
    assert host.session.run("more.com", stdin=[b"first", b"second"]).rc == 0
    # The timed-out Send is not repeated (the host took it); the next one still goes.
    assert host.protocol.names("send") == [(5, False), (6, True)]
    assert len(host.warnings) == 1
    assert "answered a stdin Send with OperationTimeout" in host.warnings[0]


@pytest.mark.parametrize(
    "refusal",
    [fault(wmi_code=0x803381A6), fault(wsman_code=2150859174)],
    ids=["wmi-error", "wsman-fault"],
)
def test_quota_fault_replaces_the_shell(host: Harness, refusal: WSManFaultError) -> None:
    """ERROR_WSMAN_QUOTA_MAX_OPERATIONS, in an MSFT_WmiError or as the WSManFault's code; the
    fault is a whole answer, so the new shell is made on the same logon."""
    host.program(Scripted([OK]))
    host.session.open()
    host.fail("run_command", as_pywinrm_raises(refusal))
    assert host.session.run("whoami.exe").stdout == b"ok\r\n"
    starts = host.protocol.names("run_command")
    # Refused in the full shell, started once in the new one.
    assert [shell for shell, *_ in starts] == ["SHELL-1", "SHELL-2"]
    assert host.protocol.names("close_shell") == ["SHELL-1"]
    assert host.protocol.transport.sessions_closed == 0


def test_a_wsman_fault_leaves_the_connection_and_a_cut_request_does_not() -> None:
    assert not _winrm_session.breaks_connection(as_pywinrm_raises(fault(wsman_code=170)))
    assert _winrm_session.breaks_connection(response_cut_off())
    assert _winrm_session.breaks_connection(requests.exceptions.ConnectionError("reset"))


def test_stdin_sets_console_mode_and_end(host: Harness) -> None:
    program = Scripted([OK])
    host.program(program, Scripted([OK]))
    host.session.run("PowerShell -NoProfile -", stdin=[b"a" * 10, b"b" * 5])
    assert program.stdin == b"a" * 10 + b"b" * 5
    assert host.protocol.names("send") == [(10, False), (5, True)]
    host.session.run("hostname.exe")
    first, second = host.protocol.names("run_command")
    assert first == ("SHELL-1", "PowerShell", ["-NoProfile -"], False)
    assert second == ("SHELL-1", "hostname.exe", [], True)


def test_empty_stdin_still_closes_the_stream(host: Harness) -> None:
    program = Scripted([OK])
    host.program(program)
    host.session.run("more.com", stdin=[])
    assert host.protocol.names("send") == [(0, True)]
    assert program.ended


# -- stopping commands -------------------------------------------------------------------------


def test_a_finished_command_is_released_off_the_tasks_path(host: Harness) -> None:
    """Its terminate signal is not sent before the result is returned: a kept session's holder
    sends it between tasks (settle), else the next command does."""
    host.program(Scripted([OK]))
    host.session.run("whoami.exe")
    assert host.protocol.names("signal_terminate") == []
    host.session.settle()
    host.session.settle()
    assert host.protocol.names("signal_terminate") == ["CMD-1"]
    assert not any("stopping command" in message for _, message in host.logs)


def test_the_next_command_releases_a_finished_one_first(host: Harness) -> None:
    host.program(Scripted([OK]), Scripted([OK]))
    host.session.run("whoami.exe")
    host.session.run("hostname.exe")
    calls = [name for name, _detail in host.protocol.calls if name != "receive"]
    assert calls == ["open_shell", "run_command", "signal_terminate", "run_command"]


def test_deleting_the_shell_frees_a_finished_command(host: Harness) -> None:
    """MS-WSMV 3.1.4.4.1: a shell's Delete frees its commands, so no signal precedes it."""
    host.program(Scripted([OK]))
    host.session.run("whoami.exe")
    host.session.close()
    assert host.protocol.names("signal_terminate") == []
    assert host.protocol.names("close_shell") == ["SHELL-1"]


# -- commands started ahead for the next tasks (kept sessions) ----------------------------------

MODULE_LINE = "PowerShell -NoProfile -NonInteractive -EncodedCommand Ym9vdHN0cmFw"
PAYLOAD = b"module payload\r\n"
SHELL_GONE = 2150858843  # ERROR_WSMAN_SHELL_NOT_FOUND, also for an unknown command id


def _commands(host: Harness) -> list[t.Any]:
    return [detail for name, detail in host.protocol.calls if name == "run_command"]


def _task(host: Harness, line: str = MODULE_LINE, in_data: bytes | None = PAYLOAD) -> t.Any:
    """One task as a kept session's holder serves it: the command, its end, the settle."""
    result = host.session.execute(line, in_data)
    host.session.settle()
    host.session.start_ahead(MODULE_LINE)
    host.session.settle()
    return result


def test_module_commands_are_started_ahead_and_used_oldest_first(host: Harness) -> None:
    first, older, newer, third = (Scripted([OK]) for _ in range(4))
    host.program(first, older, newer, third)
    assert host.session.execute(MODULE_LINE, PAYLOAD) == (0, b"ok\r\n", b"")
    host.session.settle()
    assert len(_commands(host)) == 1  # within a task nothing is started ahead
    host.session.start_ahead(MODULE_LINE)  # the task's end
    assert len(_commands(host)) == 1  # only once the holder has answered
    host.session.settle()
    started = _commands(host)
    assert len(started) == 3 and started[1] == started[2] == started[0]  # same line
    calls_before = len(host.protocol.calls)
    assert host.session.execute(MODULE_LINE, PAYLOAD) == (0, b"ok\r\n", b"")
    assert ("run_command", started[0]) not in host.protocol.calls[calls_before:]
    assert older.stdin == PAYLOAD and older.ended
    assert newer.stdin == b"" and not newer.ended
    assert any("started ahead after an earlier task" in message for _, message in host.logs)
    # The next task's end starts one more: two wait again.
    host.session.settle()
    host.session.start_ahead(MODULE_LINE)
    host.session.settle()
    assert len(_commands(host)) == 4
    host.session.execute(MODULE_LINE, PAYLOAD)
    assert newer.stdin == PAYLOAD and third.stdin == b""


def test_a_kept_shell_is_replaced_between_tasks_after_its_share_of_commands(
    host: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows holds every command of a cmd shell against the user's operations quota until the
    shell is deleted, so a kept shell is replaced once it has started COMMANDS_PER_SHELL; the
    command line started ahead in it is started ahead again in the new one."""
    monkeypatch.setattr(_winrm_session, "COMMANDS_PER_SHELL", 3)
    programs = [Scripted([OK]) for _ in range(5)]
    host.program(*programs)
    _task(host)  # its command and two started ahead: three in SHELL-1
    assert host.protocol.names("close_shell") == []
    _task(host)  # uses one started ahead; the settle after it replaces the shell
    assert programs[1].stdin == PAYLOAD
    assert host.protocol.names("close_shell") == ["SHELL-1"]
    shells = [shell for shell, *_ in host.protocol.names("run_command")]
    assert shells == ["SHELL-1"] * 3 + ["SHELL-2"] * 2
    assert any("replacing the shell after 3 commands" in message for _, message in host.logs)
    assert host.session.execute(MODULE_LINE, PAYLOAD) == (0, b"ok\r\n", b"")
    assert programs[3].stdin == PAYLOAD and programs[2].stdin == b""
    assert len(host.protocol.names("run_command")) == 5  # no command started twice


def test_session_start_ahead_false_starts_nothing_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, session_start_ahead=False)
    harness.program(Scripted([OK]), Scripted([OK]))
    _task(harness)
    assert len(_commands(harness)) == 1


def test_another_command_leaves_those_started_ahead_for_later_modules(host: Harness) -> None:
    first, ahead, second_ahead, other = (Scripted([OK]) for _ in range(4))
    host.program(first, ahead, second_ahead, other)
    _task(host)
    host.session.execute("hostname.exe", None)
    host.session.settle()
    assert len(_commands(host)) == 4
    host.session.execute(MODULE_LINE, PAYLOAD)
    assert len(_commands(host)) == 4
    assert ahead.stdin == PAYLOAD and other.stdin == b""


@pytest.mark.parametrize("code", [SHELL_GONE, None], ids=["gone", "other-fault"])
def test_a_command_started_ahead_that_refuses_its_input_is_started_afresh_once(
    host: Harness, code: int | None
) -> None:
    """The host answered the Send with a fault (the WinRM service restarted, say): it took
    nothing, so the task's command starts now, once, and the other command started ahead,
    gone the same way, is not used either."""
    first, lost, also_lost, fresh, later = (Scripted([OK]) for _ in range(5))
    host.program(first, lost, also_lost, fresh, later)
    _task(host)
    host.fail("send", fault(wsman_code=code))
    assert host.session.execute(MODULE_LINE, PAYLOAD) == (0, b"ok\r\n", b"")
    assert len(_commands(host)) == 4
    assert lost.stdin == b"" and fresh.stdin == PAYLOAD
    # Commands the host still has are stopped; gone ones cannot be.
    stopped = host.protocol.names("signal_terminate")
    assert [command in stopped for command in ("CMD-2", "CMD-3")] == [code is None] * 2
    host.session.execute(MODULE_LINE, PAYLOAD)
    assert also_lost.stdin == b"" and later.stdin == PAYLOAD


def test_a_broken_send_to_a_command_started_ahead_starts_nothing_else(host: Harness) -> None:
    """The host may have taken the input: the command is stopped, and not started again."""
    host.program(*(Scripted([OK]) for _ in range(4)))
    _task(host)
    host.fail("send", connection_reset())
    with pytest.raises(AnsibleConnectionFailure):
        host.session.execute(MODULE_LINE, PAYLOAD)
    assert len(_commands(host)) == 3
    assert host.protocol.names("signal_terminate")[-1] == "CMD-2"


@pytest.mark.parametrize("replace", ["close", "reopen_shell"])
def test_a_new_shell_forgets_the_command_started_ahead(host: Harness, replace: str) -> None:
    """Deleting the shell ends the commands in it (MS-WSMV 3.1.4.4.1)."""
    host.program(*(Scripted([OK]) for _ in range(4)))
    _task(host)
    getattr(host.session, replace)()
    host.session.execute(MODULE_LINE, PAYLOAD)
    assert len(_commands(host)) == 4
    stopped = host.protocol.names("signal_terminate")
    assert "CMD-2" not in stopped and "CMD-3" not in stopped


def test_command_timeout_stops_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, command_timeout=25)
    running: Reply = (b"", b"", -1, False)
    harness.program(Scripted([running, running, running, OK]))

    def host_holds_the_receive(wait: int) -> None:
        harness.now += wait

    harness.protocol.on_receive = host_holds_the_receive
    with pytest.raises(CommandTimeoutError) as raised:
        harness.session.run("ping.exe -t localhost")
    assert str(raised.value) == (
        "winops.remoting.winrm: the command did not finish within command_timeout (25 seconds);"
        " a WinRS terminate signal was sent to stop it on the host"
    )
    # The second Receive was shortened to the 5 seconds left.
    assert harness.protocol.receive_waits == [20, 5]
    assert harness.protocol.operation_timeout_sec == 20
    assert harness.protocol.names("signal_terminate") == ["CMD-1"]
    assert len(harness.protocol.names("run_command")) == 1


@pytest.mark.parametrize("interruption", [task_timeout, KeyboardInterrupt], ids=["task", "ctrl-c"])
def test_interruption_stops_the_command(
    host: Harness, interruption: t.Callable[[], BaseException]
) -> None:
    """Ansible's task timeout (a BaseException raised from SIGALRM) sends Signal terminate."""
    error = interruption()
    host.program(Scripted([(b"", b"", -1, False), error]))
    with pytest.raises(type(error)):
        host.session.run("ping.exe -t localhost")
    assert host.protocol.names("signal_terminate") == ["CMD-1"]
    assert any("stopping command CMD-1" in message for _, message in host.logs)


def test_stop_after_interruption_tries_a_fresh_connection(host: Harness) -> None:
    host.program(Scripted([task_timeout()]))
    host.fail("signal", WinRMTransportError("http", 400, ""))
    with pytest.raises(BaseException) as raised:
        host.session.run("ping.exe -t localhost")
    assert not isinstance(raised.value, Exception)
    assert host.protocol.names("signal_terminate") == ["CMD-1", "CMD-1"]
    # Replaced once because the interruption left a request half done, and once more after
    # the host rejected the first signal.
    assert host.protocol.transport.sessions_closed == 2
    assert host.warnings == []


def test_unstoppable_command_is_reported(host: Harness) -> None:
    host.program(Scripted([KeyboardInterrupt()]))
    host.fail("signal", *[WinRMTransportError("http", 400, "") for _ in range(2)])
    with pytest.raises(KeyboardInterrupt):
        host.session.run("ping.exe -t localhost")
    assert len(host.warnings) == 1
    assert "could not stop command CMD-1 on the host" in host.warnings[0]


# -- file transfer -----------------------------------------------------------------------------


def test_put_chunks_fit_the_envelope(monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any) -> None:
    harness = Harness(monkeypatch, max_envelope_size=32768)
    harness.protocol.host_limit = 32768
    source = tmp_path / "payload.bin"
    data = os.urandom(50_000)
    source.write_bytes(data)
    files: dict[str, bytes] = {}
    harness.program(PutHost(files))
    harness.session.put_file(str(source), "C:\\Temp\\payload €.bin")
    assert files == {"C:\\Temp\\payload €.bin": data}
    chunk = put_chunk_size(32768)
    sends = harness.protocol.names("send")
    # The header line, then one line per chunk; every Send fits (FakeProtocol asserts it).
    assert len(sends) == 1 + -(-len(data) // chunk)
    assert [end for _, end in sends] == [False] * (len(sends) - 1) + [True]
    command = harness.protocol.names("run_command")[0]
    assert command[1] == "powershell.exe"
    script = base64.b64decode(command[2][0].split()[-1]).decode("utf-16-le")
    assert script == PUT_SCRIPT


def test_an_older_hosts_envelope_limit_is_learnt_from_its_refusal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: t.Any
) -> None:
    """max_envelope_size unset: Sends are sized for Windows' 500 KB; a WinRM 2.0 host's 413
    (nothing taken) makes that Send and all later ones fit 150 KB, on a fresh connection."""
    harness = Harness(monkeypatch, max_envelope_size=None)
    harness.protocol.refuse_larger = 153600
    source = tmp_path / "payload.bin"
    data = os.urandom(1_000_000)
    source.write_bytes(data)
    files: dict[str, bytes] = {}
    harness.program(PutHost(files), PutHost(files))
    harness.session.put_file(str(source), "C:\\Temp\\one.bin")
    harness.session.put_file(str(source), "C:\\Temp\\two.bin")
    assert files == {"C:\\Temp\\one.bin": data, "C:\\Temp\\two.bin": data}
    refused = harness.protocol.names("refused")
    assert len(refused) == 1 and refused[0] > stdin_chunk_size(153600)
    assert max(size for size, _end in harness.protocol.names("send")) <= stdin_chunk_size(153600)
    assert harness.protocol.transport.sessions_closed == 1
    assert any("refused a 512000-byte request as too large" in m for _, m in harness.logs)


def test_a_set_envelope_size_is_not_second_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    harness = Harness(monkeypatch, max_envelope_size=512000)
    harness.protocol.refuse_larger = 153600
    harness.program(Scripted([OK]))
    with pytest.raises(DiagnosedTaskFailure, match="larger than the host's MaxEnvelopeSize"):
        harness.session.execute("powershell.exe -", b"x" * 300_000)
    assert len(harness.protocol.names("refused")) == 1
    assert harness.protocol.names("send") == []


def test_put_empty_file(host: Harness, tmp_path: t.Any) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    files: dict[str, bytes] = {}
    host.program(PutHost(files))
    host.session.put_file(str(source), "C:\\empty.txt")
    assert files == {"C:\\empty.txt": b""}
    assert host.protocol.names("send") == [(len(_header_line("C:\\empty.txt")), True)]


def test_a_local_file_that_cannot_be_read_fails_the_task_not_the_host(
    host: Harness, tmp_path: t.Any
) -> None:
    # A directory (it exists, so the plugin hands it on as the builtin plugins do) was read
    # mid-command: the IsADirectoryError became a connection failure, the host UNREACHABLE.
    from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
        TransferError,
    )

    host.program(PutHost({}))
    with pytest.raises(TransferError) as raised:
        host.session.put_file(str(tmp_path), "C:\\dir")
    assert not isinstance(raised.value, AnsibleConnectionFailure)
    assert str(raised.value).startswith(f"cannot read the local file {tmp_path}: Is a directory")


def _header_line(path: str) -> bytes:
    from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
        encode_header,
    )

    return encode_header({"path": path}).encode() + b"\r\n"


def test_a_put_builds_each_send_once_and_a_busy_one_again(host: Harness, tmp_path: t.Any) -> None:
    """A put's Sends are built ahead in a thread (session._ahead); the Send a busy host
    refused goes again as a new message, and the file arrives whole and in order."""
    source = tmp_path / "file.bin"
    content = os.urandom(3 * 100_000 + 7)
    source.write_bytes(content)
    files: dict[str, bytes] = {}
    host.program(PutHost(files))
    host.fail("send", None, None, fault(wsman_code=170))
    size = host.session.put_file(str(source), "C:\\file.bin")
    assert files == {"C:\\file.bin": content}
    assert size == len(content)
    sends = host.protocol.names("send")
    builds = host.protocol.names("build")
    # The refused third Send went twice, built afresh for the second time (the thread may
    # have built later ones before that, so the order of building differs).
    assert len(sends) >= 4
    assert sorted(builds) == sorted(sends)
    assert sends[2] == sends[3]
    assert sends[-1][1] is True and not any(end for _, end in sends[:-1])


def test_our_stdin_send_is_the_message_pywinrm_builds() -> None:
    """Protocol.stdin_message builds what pywinrm's send_command_input sends, but for its
    MessageID: the same action, resource, shell selector and Stream element."""
    import xml.etree.ElementTree as ET

    from winrm.protocol import Protocol as PywinrmProtocol

    sent: list[str] = []
    ours = _winrm_session.Protocol("http://win01:5985/wsman", username="u", password="p")
    theirs = PywinrmProtocol("http://win01:5985/wsman", username="u", password="p")
    theirs.send_message = sent.append  # type: ignore[method-assign]
    for data, end in ((b"line one\r\n", False), (b"", True), (bytes(range(256)), True)):
        theirs.send_command_input("SHELL-1", "CMD-1", data, end=end)
        mine = ours.stdin_message("SHELL-1", "CMD-1", data, end)
        assert _comparable(ET.fromstring(mine)) == _comparable(ET.fromstring(sent[-1]))


def _comparable(element: t.Any) -> t.Any:
    """An element as nested tuples, its attributes sorted, MessageID's value left out."""
    text = None if element.tag.endswith("}MessageID") else (element.text or "").strip()
    return (
        element.tag,
        tuple(sorted(element.attrib.items())),
        text,
        tuple(_comparable(child) for child in element),
    )


def test_put_sha1_mismatch_is_an_error(host: Harness, tmp_path: t.Any) -> None:
    source = tmp_path / "file.txt"
    source.write_bytes(b"content")
    host.program(PutHost({}, lie=True))
    with pytest.raises(TransferError) as raised:
        host.session.put_file(str(source), "C:\\file.txt")
    local = hashlib.sha1(b"content").hexdigest()
    remote = hashlib.sha1(b"tampered").hexdigest()
    assert str(raised.value) == (
        f"put of C:\\file.txt failed verification: local SHA-1 {local} "
        f"does not match remote SHA-1 {remote}"
    )


def test_put_failure_on_the_host_shows_clean_stderr(host: Harness, tmp_path: t.Any) -> None:
    source = tmp_path / "file.txt"
    source.write_bytes(b"content")
    clixml = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject'
        '</T></TN><MS><I64 N="SourceId">1</I64></MS></Obj>'
        '<S S="Error">winops.remoting put: the parent directory _x0027_C:\\missing_x0027_ '
        "does not exist_x000D__x000A_</S></Objs>"
    )
    host.program(Scripted([(b"", clixml.encode(), 1, True)]))
    with pytest.raises(TransferError) as raised:
        host.session.put_file(str(source), "C:\\missing\\file.txt")
    message = str(raised.value)
    assert message.startswith(
        f"put of {source} to C:\\missing\\file.txt failed on the host (exit code 1): "
        "winops.remoting put: the parent directory 'C:\\missing' does not exist"
    )
    assert "CLIXML" not in message and "progress" not in message


def test_fetch_streams_per_receive(host: Harness, tmp_path: t.Any) -> None:
    data = os.urandom(300_000)
    host.program(FetchHost(lambda: iter([data])))
    target = tmp_path / "fetched.bin"
    host.session.fetch_file("C:\\Windows\\file.bin", str(target))
    assert target.read_bytes() == data
    assert len(host.protocol.names("receive")) > 50  # 7001-byte Receives, lines split anywhere
    # The header is the only input, sent with End.
    assert [end for _, end in host.protocol.names("send")] == [True]


def test_fetch_whose_output_was_cut_off_starts_again(host: Harness, tmp_path: t.Any) -> None:
    data = os.urandom(300_000)
    host.program(FetchHost(lambda: iter([data])), FetchHost(lambda: iter([data])))
    host.fail("receive", response_cut_off())
    target = tmp_path / "fetched.bin"
    assert host.session.fetch_file("C:\\f.bin", str(target)) == len(data)
    assert target.read_bytes() == data
    # The cut Receive is retried (1 s), the loss reported, and the fetch started again (1 s).
    assert len(host.protocol.names("run_command")) == 2
    assert host.sleeps == [1.0, 1.0]
    assert any(m.startswith("fetch failed with OutputLostError") for _, m in host.logs)


def test_fetch_cut_off_every_time_gives_up_after_the_retries(
    host: Harness, tmp_path: t.Any
) -> None:
    host.program(*(FetchHost(lambda: iter([b"abc" * 1000])) for _ in range(4)))
    target = tmp_path / "fetched.bin"

    def cut_each_command_once(_wait: int) -> None:
        receives = host.protocol.names("receive")
        if receives.count(receives[-1]) == 1:
            host.fail("receive", response_cut_off())

    host.protocol.on_receive = cut_each_command_once
    with pytest.raises(OutputLostError):
        host.session.fetch_file("C:\\f.bin", str(target))
    assert len(host.protocol.names("run_command")) == 4  # the first and three restarts
    assert not target.exists()


def test_fetch_sha1_mismatch_leaves_no_file(host: Harness, tmp_path: t.Any) -> None:
    host.program(FetchHost(lambda: iter([b"abc" * 1000]), lie=True))
    target = tmp_path / "fetched.bin"
    with pytest.raises(TransferError, match=r"^fetch of C:\\f\.bin failed verification: "):
        host.session.fetch_file("C:\\f.bin", str(target))
    assert not target.exists()


def test_fetch_of_missing_file(host: Harness, tmp_path: t.Any) -> None:
    host.program(FetchHost(None))
    target = tmp_path / "fetched.bin"
    with pytest.raises(TransferError) as raised:
        host.session.fetch_file("C:\\nope.txt", str(target))
    assert str(raised.value) == (
        f"fetch of C:\\nope.txt to {target} failed on the host (exit code 1): "
        "winops.remoting fetch: 'C:\\nope.txt' does not exist"
    )
    assert not target.exists()


def test_fetch_empty_file(host: Harness, tmp_path: t.Any) -> None:
    host.program(FetchHost(lambda: iter([])))
    target = tmp_path / "empty"
    host.session.fetch_file("C:\\empty", str(target))
    assert target.read_bytes() == b""


BIG = 100 * 1024 * 1024 + 12345  # over 100 MB
BLOCK = hashlib.sha256(b"block").digest() * 32768  # 1 MiB of varied bytes


def _big_blocks() -> t.Iterator[bytes]:
    remaining, counter = BIG, 0
    while remaining:
        block = (counter.to_bytes(8, "big") + BLOCK)[: min(len(BLOCK), remaining)]
        counter += 1
        remaining -= len(block)
        yield block


def test_put_over_100mb_streams(host: Harness, tmp_path: t.Any) -> None:
    source = tmp_path / "big.bin"
    with source.open("wb") as out:
        for block in _big_blocks():
            out.write(block)
    program = PutHost({}, keep=False)
    host.program(program)
    tracemalloc.start()
    try:
        host.session.put_file(str(source), "C:\\big.bin")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert program.size == BIG
    assert peak < 16 * 1024 * 1024, f"put held {peak} bytes at once"


def test_fetch_over_100mb_streams(host: Harness, tmp_path: t.Any) -> None:
    host.program(FetchHost(_big_blocks, receive_size=400_000))
    target = tmp_path / "big.bin"
    tracemalloc.start()
    try:
        host.session.fetch_file("C:\\big.bin", str(target))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert target.stat().st_size == BIG
    expected = hashlib.sha1()
    for block in _big_blocks():
        expected.update(block)
    assert hashlib.sha1(target.read_bytes()).hexdigest() == expected.hexdigest()
    assert peak < 16 * 1024 * 1024, f"fetch held {peak} bytes at once"


def test_fetch_command_is_the_fetch_script(host: Harness, tmp_path: t.Any) -> None:
    host.program(FetchHost(lambda: iter([b"x"])))
    host.session.fetch_file("C:\\x", str(tmp_path / "x"))
    command = host.protocol.names("run_command")[0]
    script = base64.b64decode(command[2][0].split()[-1]).decode("utf-16-le")
    assert script == FETCH_SCRIPT


def test_the_settings_repr_shows_no_secret() -> None:
    settings = make_settings(
        remote_password="sëcret-pässword",
        proxy="http://proxy-user:Prøxy-pw@proxy.example.com:3128",
    )
    shown = repr(settings)
    assert "sëcret-pässword" not in shown
    assert "Prøxy-pw" not in shown
    assert "win01.example.com" in shown  # still a useful repr


@pytest.mark.parametrize("name", ["winops-remoting-x", None], ids=["named", "unnamed"])
def test_the_shell_create_carries_the_idle_timeout_as_windows_takes_it(
    monkeypatch: pytest.MonkeyPatch, name: str | None
) -> None:
    """An xs:duration after the streams, as in pypsrp's recording test_winrs_extra_opts.yml
    (Windows answered PT60.000S); a bare number is refused (pywinrm issue 377)."""
    import xml.etree.ElementTree as ET

    sent: list[str] = []
    answer = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><w:SelectorSet>'
        '<w:Selector Name="ShellId">SHELL-9</w:Selector></w:SelectorSet></s:Body></s:Envelope>'
    )
    protocol = _winrm_protocol.Protocol(
        endpoint="http://host.example:5985/wsman", transport="ntlm", username="u", password="p"
    )
    monkeypatch.setattr(protocol, "send_message", lambda message: sent.append(message) or answer)
    assert protocol.open_shell(name=name, idle_timeout=120) == "SHELL-9"
    rsp = "{http://schemas.microsoft.com/wbem/wsman/1/windows/shell}"
    shell = ET.fromstring(sent[0]).find(f".//{rsp}Shell")
    assert shell is not None
    children = [(child.tag.replace(rsp, ""), child.text) for child in shell]
    streams = [("InputStreams", "stdin"), ("OutputStreams", "stdout stderr")]
    # the order of a Create Windows took (pypsrp's recording test_winrs_extra_opts.yml)
    assert children[: len(streams) + 1 + bool(name)] == (
        streams + [("IdleTimeOut", "PT120S")] + ([("Name", name)] if name else [])
    )
    sent.clear()
    protocol.open_shell(name=name)
    assert "IdleTimeOut" not in sent[0]
