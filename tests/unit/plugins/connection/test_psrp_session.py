"""PsrpSession: retries only where safe, pipelines stopped on time limits, verified transfers.

pypsrp's RunspacePool and PowerShell are replaced by small fakes that keep their state machine
(NOT_STARTED -> RUNNING -> COMPLETED/STOPPED) and that run the shared transfer protocol the way
the host-side scripts do, so the session's own logic is what is under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import threading
import time
import types
import typing as t
import uuid
from http.client import IncompleteRead
from pathlib import Path
from unittest import mock

import pytest
import requests
from ansible.errors import AnsibleConnectionFailure, AnsibleError
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import WinRMTransportError, WSManFaultError
from pypsrp.messages import PipelineInput
from pypsrp.powershell import Fragmenter
from pypsrp.serializer import Serializer
from pypsrp.wsman import SelectorSet, WSMan
from test_psrp_support import FakeCredentialCache
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError
from urllib3.exceptions import SSLError as Urllib3SSLError

from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import answer_lost
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import Endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
    PsrpSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
    RetryPolicy,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session import (
    _psrp_session,
    _psrp_stream,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
    CommandTimeoutError,
    PsrpSession,
    is_transient,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer

try:  # ansible-core 2.19+
    from ansible._internal._errors._task_timeout import TaskTimeoutError
except ImportError:  # ansible-core 2.17/2.18
    from ansible.executor.task_executor import TaskTimeoutError  # type: ignore[no-redef]


# --- fakes -------------------------------------------------------------------------------------


class FakeWSMan:
    def __init__(self, **kwargs: t.Any) -> None:
        self.kwargs = kwargs
        self.max_envelope_size = kwargs["max_envelope_size"]
        self.closed = False
        self.deleted: list[dict[str, str]] = []

    def close(self) -> None:
        self.closed = True

    def delete(self, resource_uri: str, selector_set: t.Any = None) -> None:
        # the selector sets of the Delete requests sent for pools whose open failed
        self.deleted.append({name: value for name, value, _ in selector_set.values})


def raise_answer(error: BaseException) -> t.NoReturn:
    """Raise ``error`` as pypsrp does: a WSManFault while handling the HTTP 500 it came in."""
    if isinstance(error, WSManFaultError):
        try:
            raise WinRMTransportError("http", 500, "<s:Envelope/>")
        except WinRMTransportError:
            raise error  # noqa: B904 - pypsrp's implicit context
    raise error


class FakeShell:
    def __init__(self, remote: FakeRemote, pool_id: str) -> None:
        self.remote = remote
        self.pool_id = pool_id

    resource_uri = "http://schemas.microsoft.com/powershell/Microsoft.PowerShell"

    idle_timeout: int | None = None  # the pool's, in its Create

    def open(self, *args: t.Any) -> None:
        self.remote.creates += 1
        if self.remote.create_errors:
            raise_answer(self.remote.create_errors.pop(0))
        most = self.remote.max_idle_timeout
        if self.idle_timeout is not None and most is not None and self.idle_timeout > most:
            raise_answer(
                WSManFaultError(500, "win-01", "idle timeout above MaxIdleTimeoutMs", "", "", "")
            )
        # pypsrp keeps the Create answer's selectors (the pool's ShellId) once it is answered.
        self._selector_set = SelectorSet()
        self._selector_set.add_option("ShellId", self.pool_id)

    def signal(self, code: str, command_id: str) -> None:
        self.remote.signals.append((code, command_id))

    def send(self, stream: str, data: bytes, command_id: str | None = None) -> None:
        self.remote.sends += 1
        if self.remote.send_errors:
            raise self.remote.send_errors.pop(0)

    def receive(
        self, streams: str, command_id: str | None = None, timeout: int | None = None
    ) -> tuple[t.Any, ...]:
        self.remote.receives += 1
        self.remote.receive_timeouts.append(timeout)
        if self.remote.receive_errors:
            raise self.remote.receive_errors.pop(0)
        return (None, None, {streams: b""})


class FakeRemote:
    """The host side: files, what each pipeline was given, and scripted behaviour."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.pools: list[FakeRunspacePool] = []
        self.pipelines: list[FakePowerShell] = []
        self.signals: list[tuple[str, str]] = []
        self.open_errors: list[BaseException] = []
        self.creates = 0
        # the session configuration's MaxIdleTimeoutMs, in seconds, when a test lowers it
        self.max_idle_timeout: int | None = None
        self.create_errors: list[BaseException] = []  # answers to the pool's Create
        self.close_error: BaseException | None = None
        # answers to the Receive requests the pool's open sends, before the one that succeeds
        self.receive_errors: list[BaseException] = []
        self.receives = 0
        self.receive_timeouts: list[int | None] = []
        # answers to the Send requests sent through the pool's shell, before one that succeeds
        self.send_errors: list[BaseException] = []
        self.sends = 0
        # script -> list of poll steps; a step is an exception, "wait", ("out", [..]) or ("rc", n)
        self.plans: dict[str, list[t.Any]] = {}
        self.begin_error: BaseException | None = None
        self.corrupt_put = False

    def plan_for(self, pipeline: FakePowerShell) -> list[t.Any]:
        if pipeline.script == _transfer.PUT_SCRIPT:
            return self._put(pipeline.input_lines)
        if pipeline.script == _transfer.FETCH_SCRIPT:
            return self._fetch(pipeline.input_lines)
        return list(self.plans.get(pipeline.script, [("rc", 0)]))

    def _put(self, lines: list[str]) -> list[t.Any]:
        header = json.loads(base64.b64decode(lines[0]))
        data = b"".join(base64.b64decode(line) for line in lines[1:])
        self.files[header["path"]] = data
        digest = hashlib.sha1(data + (b"x" if self.corrupt_put else b"")).hexdigest()
        return [("out", [json.dumps({"sha1": digest, "size": len(data)})]), ("rc", 0)]

    def _fetch(self, lines: list[str]) -> list[t.Any]:
        header = json.loads(base64.b64decode(lines[0]))
        if header["path"] not in self.files:
            return [("err", f"winops.remoting fetch: '{header['path']}' does not exist"), ("rc", 1)]
        data = self.files[header["path"]]
        size = header["chunk_size"]
        chunks = [base64.b64encode(data[i : i + size]).decode() for i in range(0, len(data), size)]
        steps: list[t.Any] = [("out", chunks[i : i + 50]) for i in range(0, len(chunks), 50)]
        final = {"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)}
        return [*steps, ("out", [json.dumps(final)]), ("rc", 0)]


class FakeRunspacePool:
    remote: FakeRemote

    def __init__(
        self,
        connection: FakeWSMan,
        host: t.Any,
        configuration_name: str,
        max_runspaces: int = 1,
        idle_timeout: int | None = None,
    ) -> None:
        self.connection = connection
        self.max_runspaces = max_runspaces
        self.idle_timeout = idle_timeout
        self.host = host
        self.configuration_name = configuration_name
        self.id = str(uuid.uuid4()).upper()
        self.shell = FakeShell(self.remote, self.id)
        self.shell.idle_timeout = idle_timeout
        self.pipelines: dict[uuid.UUID, FakePowerShell] = {}
        self.closed = False
        self.remote.pools.append(self)

    def open(self) -> None:
        if self.remote.open_errors:
            raise self.remote.open_errors.pop(0)
        self.shell.open()
        self.shell.receive("stdout")

    def close(self) -> None:
        if self.remote.close_error is not None:
            raise self.remote.close_error
        self.closed = True


class FakeStreams:
    def __init__(self) -> None:
        self.error: list[t.Any] = []


class FakePowerShell:
    def __init__(self, pool: FakeRunspacePool) -> None:
        self.pool = pool
        self.remote = pool.remote
        self.id = uuid.uuid4()
        self.state = PSInvocationState.NOT_STARTED
        self.output: list[t.Any] = []
        self.streams = FakeStreams()
        self.had_errors = False
        self.script = ""
        self.arguments: list[str] = []
        self.input_lines: list[str] = []
        self.input_was_streamed = False
        self.begin_calls = 0
        self.poll_timeouts: list[int | None] = []
        self.stop_calls = 0
        self.plan: list[t.Any] = []
        self.remote.pipelines.append(self)

    def add_script(self, script: str, use_local_scope: bool | None = None) -> FakePowerShell:
        self.script = script
        return self

    def add_argument(self, value: str) -> FakePowerShell:
        self.arguments.append(value)
        return self

    def begin_invoke(self, input: t.Any = None) -> None:
        self.begin_calls += 1
        if self.remote.begin_error is not None:
            raise self.remote.begin_error
        self.pool.pipelines[self.id] = self
        self.state = PSInvocationState.RUNNING
        if input is not None:
            self.input_was_streamed = not isinstance(input, list)
            for item in input:  # consumed as pypsrp does: item by item
                self.input_lines.append(item)
        self.plan = self.remote.plan_for(self)

    def poll_invoke(self, timeout: int | None = None) -> None:
        self.take_step(self.next_step(timeout))

    def next_step(self, timeout: int | None) -> t.Any:
        """The host's next answer: what a Receive sent with ``timeout`` gets."""
        self.poll_timeouts.append(timeout)
        step = self.plan.pop(0) if self.plan else "wait"
        if isinstance(step, BaseException):
            raise step
        return step

    def take_step(self, step: t.Any) -> None:
        """What pypsrp does with an answer: output, host calls, the pipeline's state."""
        if callable(step):
            step()
        elif step == "wait":
            return
        elif step[0] == "out":
            self.output.extend(step[1])
        elif step[0] == "err":
            self.pool.host.ui.stderr.append(step[1] + "\r\n")
        elif step[0] == "rc":
            if step[1]:
                self.pool.host.rc = step[1]
            self.state = PSInvocationState.COMPLETED

    def stop(self) -> None:
        self.stop_calls += 1
        self.state = PSInvocationState.STOPPED
        self.pool.pipelines.pop(self.id, None)


def make_settings(**overrides: t.Any) -> PsrpSettings:
    wsman_kwargs = {
        "server": "win-01.example.com",
        "port": 5986,
        "max_envelope_size": 153600,
        "operation_timeout": 20,
        "password": "pässwörd",
    }
    values: dict[str, t.Any] = {
        "plugin": "psrp",
        "endpoint": Endpoint("win-01.example.com", 5986, "https", "wsman"),
        "auth": "negotiate",
        "user": "admin",
        "cert_validation": True,
        "ca_path": None,
        "message_encryption": "auto",
        "kerberos_realm": None,
        "kerberos_service": "WSMAN",
        "kerberos_hostname_override": None,
        "kinit": None,
        "operation_timeout": 20,
        "read_timeout": 30,
        "retry_policy": RetryPolicy(retries=3, backoff=1.0),
        "command_timeout": 0,
        "max_envelope_size": 153600,
        "secrets": ("pässwörd",),
        "wsman_kwargs": wsman_kwargs,
        "configuration_name": "Microsoft.PowerShell",
    }
    values.update(overrides)
    return PsrpSettings(**values)


def fake_send_receive(pipeline: FakePowerShell, timeout: int) -> tuple[bool, t.Any]:
    """session._psrp_stream.send_receive against the fake host: its next answer, unparsed."""
    step = pipeline.next_step(timeout)
    if step == "wait":  # what Windows answers when nothing came within the operation timeout
        raise WSManFaultError(2150858793, "win-01", "The operation timed out", "", "", "")
    return isinstance(step, tuple) and step[0] == "rc", step


def fake_output_of(pipeline: FakePowerShell, step: t.Any) -> list[t.Any]:
    """session._psrp_stream.output_of against the fake host."""
    pipeline.take_step(step)
    output, pipeline.output = pipeline.output, []
    return output


@pytest.fixture
def remote() -> t.Iterator[FakeRemote]:
    fake = FakeRemote()
    pool_class = type("BoundFakeRunspacePool", (FakeRunspacePool,), {"remote": fake})
    with (
        mock.patch.object(_psrp_session, "WSMan", FakeWSMan),
        mock.patch.object(_psrp_session, "RunspacePool", pool_class),
        mock.patch.object(_psrp_session, "PowerShell", FakePowerShell),
        mock.patch.object(_psrp_stream, "send_receive", fake_send_receive),
        mock.patch.object(_psrp_stream, "output_of", fake_output_of),
    ):
        yield fake


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self.logs: list[str] = []


def open_session(
    settings: PsrpSettings | None = None, **kwargs: t.Any
) -> tuple[PsrpSession, Recorder]:
    recorder = Recorder()
    session = PsrpSession(
        settings or make_settings(),
        log=recorder.logs.append,
        sleep=recorder.sleeps.append,
        **kwargs,
    )
    session.open()
    return session, recorder


def connection_reset() -> requests.ConnectionError:
    return requests.ConnectionError(
        ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
    )


def connection_refused() -> requests.ConnectionError:
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")
    return requests.ConnectionError(MaxRetryError(None, "/wsman", reason))


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (connection_reset(), True),
        (WinRMTransportError("http", 503, "busy"), True),
        (WinRMTransportError("http", 502, "bad gateway"), True),
        (WSManFaultError(2150858793, "win-01", "OperationTimeout", "", ""), True),
        (connection_refused(), False),  # pypsrp/urllib3 already retried the connect
        (requests.ConnectTimeout("connect timed out"), False),
        (WinRMTransportError("http", 401, "unauthorized"), False),
        (WSManFaultError(5, "win-01", "AccessDenied", "", ""), False),
        (requests.exceptions.SSLError("certificate verify failed"), False),
    ],
    ids=[
        "reset",
        "503",
        "502",
        "operation-timeout",
        "refused",
        "connect-timeout",
        "401",
        "access-denied",
        "tls",
    ],
)
def test_transient_classification(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


# --- open / close ------------------------------------------------------------------------------


def test_open_retries_a_transient_failure_with_a_fresh_pool(remote: FakeRemote) -> None:
    remote.open_errors = [WinRMTransportError("http", 503, "busy"), connection_reset()]
    session, recorder = open_session()
    assert session.is_open
    assert len(remote.pools) == 3
    assert [pool.connection.closed for pool in remote.pools] == [True, True, False]
    assert recorder.sleeps == [1.0, 2.0]
    assert remote.pools[-1].configuration_name == "Microsoft.PowerShell"


def test_a_kept_session_asks_for_its_idle_timeout_and_does_without_if_refused(
    remote: FakeRemote,
) -> None:
    """A host whose session configuration allows less than the kept session asks refuses the
    Create (New-PSSessionOption -IdleTimeout); the pool is opened with the host's own."""
    session, recorder = open_session(host_idle_timeout=120)
    assert [pool.idle_timeout for pool in remote.pools] == [120]
    session.close()
    remote.max_idle_timeout = 90
    session, recorder = open_session(host_idle_timeout=120)
    assert session.is_open
    assert [pool.idle_timeout for pool in remote.pools[1:]] == [120, None]
    # The host answered the Create with a fault: it created no pool, so none is deleted.
    assert not remote.pools[1].connection.deleted
    assert any("again without IdleTimeOut" in line for line in recorder.logs)


def test_a_refused_create_without_an_idle_timeout_is_not_sent_again(remote: FakeRemote) -> None:
    remote.create_errors = [WSManFaultError(500, "win-01", "access denied", "", "", "")]
    with pytest.raises(AnsibleConnectionFailure):
        open_session()
    assert len(remote.pools) == 1


def operation_timeout() -> WSManFaultError:
    return WSManFaultError(
        2150858793, "win-01", "The WS-Management service cannot complete the operation.", "", "", ""
    )


def test_open_keeps_receiving_on_the_same_pool_after_operation_timeouts(
    remote: FakeRemote,
) -> None:
    remote.receive_errors = [operation_timeout(), operation_timeout()]
    session, recorder = open_session()
    assert session.is_open
    assert len(remote.pools) == 1  # no second shell left behind on the host
    assert remote.receives == 3
    assert recorder.sleeps == []  # the host already waited its OperationTimeout
    assert sum("receiving again" in line for line in recorder.logs) == 2
    assert "receive" not in vars(remote.pools[0].shell)  # pypsrp's own receive is back


def test_open_stops_receiving_after_the_configured_retries(remote: FakeRemote) -> None:
    remote.receive_errors = [operation_timeout() for _ in range(6)]
    settings = make_settings(retry_policy=RetryPolicy(retries=1, backoff=0.5))
    with pytest.raises(AnsibleConnectionFailure) as raised:
        open_session(settings)
    # The Receive is asked twice; the host that was waited for is not given another pool to
    # wait on (issue 11, item 1), and the pool it has is deleted by its id.
    assert remote.receives == 2 and len(remote.pools) == 1
    assert remote.pools[0].connection.deleted == [{"ShellId": remote.pools[0].id}]
    assert "operation timeout" in str(raised.value)


def test_command_timeout_bounds_the_wait_for_the_pool_open(remote: FakeRemote) -> None:
    remote.receive_errors = [operation_timeout() for _ in range(6)]
    clock = iter(range(0, 1000, 4))
    settings = make_settings(command_timeout=10, retry_policy=RetryPolicy(retries=5))
    session = PsrpSession(settings, sleep=lambda seconds: None, clock=lambda: next(clock))
    with pytest.raises(CommandTimeoutError, match="did not open the runspace pool within"):
        session.open()
    # 10 s from the start: Receives at 4 s and 8 s (the second cut to the 2 s left), then none.
    assert remote.receive_timeouts == [6, 2]
    assert len(remote.pools) == 1 and len(remote.pools[0].connection.deleted) == 1


def test_open_does_not_retry_a_refused_connection(remote: FakeRemote) -> None:
    remote.open_errors = [connection_refused()]
    with pytest.raises(AnsibleConnectionFailure) as raised:
        open_session()
    assert len(remote.pools) == 1
    assert "winops.remoting.psrp: " in str(raised.value)
    assert "https://win-01.example.com:5986/wsman" in str(raised.value)


def tls_failure(reason: ssl.SSLError) -> requests.exceptions.SSLError:
    return requests.exceptions.SSLError(MaxRetryError(None, "/wsman", Urllib3SSLError(reason)))


@pytest.mark.parametrize(
    ("error", "deleted"),
    [
        # The connection ended, maybe after the Create went out: the pool may exist.
        pytest.param(tls_failure(ssl.SSLEOFError(8, "EOF occurred")), 1, id="tls-ended"),
        # Refused in the handshake, before any request: nothing to delete.
        pytest.param(
            tls_failure(ssl.SSLCertVerificationError(1, "certificate verify failed")),
            0,
            id="tls-refused",
        ),
        pytest.param(connection_refused(), 0, id="tcp-refused"),
        # The host answered the Create with an error status (here a Kerberos logon's plain
        # message, refused with 500): it created nothing, and the Delete would be refused too.
        pytest.param(WinRMTransportError("http", 500, ""), 0, id="create-answered-500"),
        # A gateway's 504: the host may have taken the Create, so the pool is deleted.
        pytest.param(WinRMTransportError("http", 504, ""), 1, id="create-gateway-504"),
    ],
)
def test_a_failed_open_deletes_the_pool_unless_nothing_reached_the_host(
    remote: FakeRemote, error: BaseException, deleted: int
) -> None:
    remote.create_errors = [error]  # the answer to the pool's Create
    with pytest.raises(AnsibleConnectionFailure):
        open_session(make_settings(retry_policy=RetryPolicy(retries=0)))
    assert len(remote.pools) == 1
    assert len(remote.pools[0].connection.deleted) == deleted


def test_a_pool_created_then_refused_a_receive_is_deleted(remote: FakeRemote) -> None:
    """An error status on a Receive after the Create was answered: the pool exists, and is
    deleted by the ShellId the Create's answer gave."""
    remote.receive_errors = [WinRMTransportError("http", 500, "")]
    with pytest.raises(AnsibleConnectionFailure):
        open_session(make_settings(retry_policy=RetryPolicy(retries=0)))
    assert len(remote.pools) == 1
    assert remote.pools[0].connection.deleted == [{"ShellId": remote.pools[0].id}]


def test_open_gives_up_after_the_configured_retries(remote: FakeRemote) -> None:
    remote.open_errors = [WinRMTransportError("http", 503, "busy") for _ in range(5)]
    settings = make_settings(retry_policy=RetryPolicy(retries=2, backoff=0.5))
    with pytest.raises(AnsibleConnectionFailure):
        open_session(settings)
    assert len(remote.pools) == 3


def test_close_removes_the_kerberos_cache_and_closes_the_pool(remote: FakeRemote) -> None:
    cache = FakeCredentialCache()
    request = KinitRequest(principal="ansible@EXAMPLE.COM", password="pässwörd")
    with mock.patch.object(_psrp_session, "acquire_ticket", return_value=cache) as acquire:
        session, _recorder = open_session(make_settings(kinit=request))
    acquire.assert_called_once_with(request)
    pool = remote.pools[0]
    session.close()
    assert pool.closed and pool.connection.closed and cache.removed
    assert not session.is_open
    session.close()  # a second close is harmless


def test_a_failed_open_removes_the_kerberos_cache(remote: FakeRemote) -> None:
    cache = FakeCredentialCache()
    remote.open_errors = [WinRMTransportError("http", 401, "unauthorized")]
    request = KinitRequest(principal="ansible@EXAMPLE.COM", password="pässwörd")
    with (
        mock.patch.object(_psrp_session, "acquire_ticket", return_value=cache),
        pytest.raises(AnsibleConnectionFailure),
    ):
        open_session(make_settings(kinit=request))
    assert cache.removed


def test_a_local_read_error_is_not_a_connection_failure(remote: FakeRemote, tmp_path: Path) -> None:
    source = tmp_path / "gone.bin"
    source.write_bytes(b"data")
    session, _recorder = open_session()

    def unreadable(path: str, chunk_size: int, digest: t.Any = None) -> t.Iterator[str]:
        raise PermissionError(13, "Permission denied", path)
        yield ""  # pragma: no cover - makes this a generator

    with (
        mock.patch.object(_transfer, "iter_put_lines", unreadable),
        pytest.raises(PermissionError),
    ):
        session.put_file(str(source), "C:\\gone.bin")
    assert remote.pipelines[0].stop_calls == 1


def test_a_local_directory_fails_the_put_as_a_transfer(remote: FakeRemote, tmp_path: Path) -> None:
    session, _recorder = open_session()
    with pytest.raises(
        _transfer.TransferError, match=r"cannot read the local file .*: Is a directory"
    ):
        session.put_file(str(tmp_path), "C:\\dir")


def test_kerberos_cache_is_in_the_environment_only_while_pypsrp_works(remote: FakeRemote) -> None:
    cache = FakeCredentialCache()
    seen: list[str | None] = []
    remote.open_errors = []
    original_open = FakeRunspacePool.open

    def recording_open(pool: FakeRunspacePool) -> None:
        seen.append(os.environ.get("KRB5CCNAME"))
        original_open(pool)

    with (
        mock.patch.object(_psrp_session, "acquire_ticket", return_value=cache),
        mock.patch.object(FakeRunspacePool, "open", recording_open),
    ):
        before = os.environ.get("KRB5CCNAME")
        request = KinitRequest(principal="ansible@EXAMPLE.COM", password="pässwörd")
        session, _recorder = open_session(make_settings(kinit=request))
        assert os.environ.get("KRB5CCNAME") == before
    assert seen == [cache.name]
    session.close()


# --- pipelines ---------------------------------------------------------------------------------


def test_execute_returns_plain_values_for_a_task(remote: FakeRemote) -> None:
    """What a kept session's holder sends a task: nothing that needs pypsrp or our session
    modules to unpickle (the worker of a kept session loads neither)."""
    remote.plans["script"] = ["wait", ("out", ["dé"]), ("rc", 3)]
    session, _recorder = open_session()
    result = session.execute("script", ["in-1"], ["arg"])
    assert result == (3, "dé".encode(), b"")
    assert [type(value) for value in result] == [int, bytes, bytes]
    assert remote.pipelines[0].input_lines == ["in-1"]


def test_run_returns_output_and_exit_code(remote: FakeRemote) -> None:
    remote.plans["script"] = ["wait", ("out", ["line one", "line two"]), ("rc", 3)]
    session, _recorder = open_session()
    result = session.run("script", ["in-1", "in-2"], ["arg"])
    assert (result.rc, result.stdout, result.stderr) == (3, "line one\r\nline two", "")
    pipeline = remote.pipelines[0]
    assert pipeline.input_lines == ["in-1", "in-2"]
    assert pipeline.arguments == ["arg"]
    assert pipeline.poll_timeouts == [20, 20, 20]


def test_a_pipeline_is_never_started_twice(remote: FakeRemote) -> None:
    remote.begin_error = connection_reset()  # transient, yet the start is not repeated
    session, recorder = open_session()
    with pytest.raises(AnsibleConnectionFailure):
        session.run("script")
    assert len(remote.pipelines) == 1
    assert remote.pipelines[0].begin_calls == 1
    assert recorder.sleeps == []


def test_receive_is_retried_after_a_transient_failure(remote: FakeRemote) -> None:
    remote.plans["script"] = [
        WinRMTransportError("http", 503, "busy"),
        connection_reset(),
        ("out", ["done"]),
        ("rc", 0),
    ]
    session, recorder = open_session()
    result = session.run("script")
    assert result.stdout == "done"
    assert remote.pipelines[0].begin_calls == 1
    assert recorder.sleeps == [1.0, 2.0]
    assert any("receive pipeline output failed" in line for line in recorder.logs)


def test_a_failing_receive_stops_the_pipeline(remote: FakeRemote) -> None:
    remote.plans["script"] = [WinRMTransportError("http", 401, "unauthorized")]
    session, _recorder = open_session()
    with pytest.raises(AnsibleConnectionFailure):
        session.run("script")
    assert remote.pipelines[0].stop_calls == 1


def test_command_timeout_stops_the_remote_pipeline(remote: FakeRemote) -> None:
    now = [1000.0]

    def advance() -> None:
        now[0] += 3

    remote.plans["Start-Sleep 3600"] = [advance] * 10
    session, _recorder = open_session(make_settings(command_timeout=5), clock=lambda: now[0])
    with pytest.raises(CommandTimeoutError, match=r"longer than command_timeout \(5s"):
        session.run("Start-Sleep 3600")
    pipeline = remote.pipelines[0]
    assert pipeline.stop_calls == 1
    assert pipeline.state == PSInvocationState.STOPPED
    # Each Receive waits no longer than the time left: 5 s, then 2 s, then the limit is hit.
    assert pipeline.poll_timeouts == [5, 2]


def test_command_timeout_also_bounds_a_streamed_upload(remote: FakeRemote, tmp_path: Path) -> None:
    now = [0.0]
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(300_000))
    ticking_lines = _transfer.iter_put_lines

    def slow_lines(path: str, chunk_size: int, digest: t.Any = None) -> t.Iterator[str]:
        for line in ticking_lines(path, chunk_size, digest):
            now[0] += 4
            yield line

    settings = make_settings(command_timeout=10)
    session, _recorder = open_session(settings, clock=lambda: now[0])
    with (
        mock.patch.object(_transfer, "iter_put_lines", slow_lines),
        pytest.raises(CommandTimeoutError),
    ):
        session.put_file(str(source), "C:\\temp\\big.bin")
    assert remote.pipelines[0].stop_calls == 1


def _task_timeout_after(seconds: int) -> t.ContextManager[None]:
    """Arm ansible's own task timeout the way the task executor of this ansible-core does."""
    if hasattr(TaskTimeoutError, "alarm_timeout"):  # 2.19+
        return TaskTimeoutError.alarm_timeout(seconds)

    from contextlib import contextmanager

    from ansible.executor.task_executor import task_timeout

    def interrupt(signum: int, _frame: t.Any) -> None:
        # 2.18's TaskTimeoutError walks the interrupted frame's callers up to ansible's executor
        # to name the task, and there is none in a unit test: no frame, as 2.17 takes none.
        task_timeout(signum, None)

    @contextmanager
    def armed() -> t.Iterator[None]:
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return armed()


# pytest-timeout's signal method would own SIGALRM, which ansible's task timeout needs.
@pytest.mark.timeout(120, method="thread")
def test_task_timeout_stops_the_remote_pipeline(remote: FakeRemote) -> None:
    remote.plans["Start-Sleep 3600"] = [lambda: time.sleep(5)] * 3
    session, _recorder = open_session()
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError), _task_timeout_after(1):
        session.run("Start-Sleep 3600")
    assert time.monotonic() - started < 4
    pipeline = remote.pipelines[0]
    assert pipeline.stop_calls == 1
    assert pipeline.state == PSInvocationState.STOPPED


def test_finished_pipeline_is_released_before_the_next_one(remote: FakeRemote) -> None:
    session, _recorder = open_session()
    session.run("first")
    assert remote.signals == []
    session.run("second")
    first = remote.pipelines[0]
    assert remote.signals == [(_psrp_session.SignalCode.TERMINATE, str(first.id).upper())]
    assert first.id not in remote.pools[0].pipelines


def test_error_records_and_clixml_are_rendered(remote: FakeRemote) -> None:
    class Record:
        fq_error = "PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand"
        command_name = "Get-Item"
        invocation_position_message = "At line:1 char:1\r\n+ Get-Item C:\\nope"
        message = "ObjectNotFound: (C:\\nope:String) [Get-Item], ItemNotFoundException"
        script_stacktrace = "at <ScriptBlock>, <No file>: line 1"
        target_name = "C:\\nope"

        def __str__(self) -> str:
            return "Cannot find path 'C:\\nope' because it does not exist."

    progress = (
        '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'
        '<Obj S="progress" RefId="0"><MS><I64 N="SourceId">1</I64></MS></Obj></Objs>'
    )

    def fail() -> None:
        pipeline = remote.pipelines[-1]
        pipeline.streams.error.append(Record())
        pipeline.had_errors = True
        pipeline.pool.host.ui.stderr.append(progress)

    remote.plans["Get-Item C:\\nope"] = [fail, ("rc", 0)]
    session, _recorder = open_session()
    result = session.run("Get-Item C:\\nope")
    assert result.rc == 1
    assert result.stderr == (
        "Get-Item : Cannot find path 'C:\\nope' because it does not exist.\r\n"
        "At line:1 char:1\r\n+ Get-Item C:\\nope\r\n"
        "    + CategoryInfo          : ObjectNotFound: (C:\\nope:String) [Get-Item], "
        "ItemNotFoundException\r\n"
        "    + FullyQualifiedErrorId : PathNotFound,Microsoft.PowerShell.Commands.GetItemCommand\r\n"
    )
    # The host object is reset for the next pipeline.
    remote.plans["next"] = [("rc", 0)]
    assert session.run("next").stderr == ""


# --- file transfer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [0, 1, 114_000, 600_001], ids=["empty", "one-byte", "one-chunk", "several-chunks"]
)
def test_put_and_fetch_round_trip(remote: FakeRemote, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    session, _recorder = open_session()
    assert session.put_file(str(source), "C:\\Temp\\fïle ü.bin") == size
    assert remote.files["C:\\Temp\\fïle ü.bin"] == data
    put = remote.pipelines[-1]
    assert put.input_was_streamed
    chunk = session.transfer_chunk_size()
    assert len(put.input_lines) == 1 + -(-size // chunk)

    target = tmp_path / "fetched.bin"
    assert session.fetch_file("C:\\Temp\\fïle ü.bin", str(target)) == size
    assert target.read_bytes() == data
    header = json.loads(base64.b64decode(remote.pipelines[-1].input_lines[0]))
    assert header == {"path": "C:\\Temp\\fïle ü.bin", "chunk_size": chunk}


def test_put_and_fetch_a_file_over_100_mb(remote: FakeRemote, tmp_path: Path) -> None:
    size = 100 * 1024 * 1024 + 12345
    source = tmp_path / "large.bin"
    with source.open("wb") as handle:
        block = os.urandom(1024 * 1024)
        for _ in range(100):
            handle.write(block)
        handle.write(block[:12345])
    session, _recorder = open_session()
    assert session.put_file(str(source), "C:\\large.bin") == size
    assert remote.pipelines[-1].input_was_streamed
    target = tmp_path / "large-back.bin"
    assert session.fetch_file("C:\\large.bin", str(target)) == size
    assert _transfer.sha1_of_file(str(target)) == _transfer.sha1_of_file(str(source))


def test_put_sha1_mismatch_is_an_error(remote: FakeRemote, tmp_path: Path) -> None:
    remote.corrupt_put = True
    source = tmp_path / "source.txt"
    source.write_text("hello")
    session, _recorder = open_session()
    with pytest.raises(_transfer.TransferError, match="failed verification"):
        session.put_file(str(source), "C:\\x.txt")


def test_fetch_sha1_mismatch_is_an_error_and_leaves_no_file(
    remote: FakeRemote, tmp_path: Path
) -> None:
    remote.files["C:\\x.txt"] = b"payload"
    original = remote._fetch

    def lying_fetch(lines: list[str]) -> list[t.Any]:
        steps = original(lines)
        steps[-2] = ("out", [json.dumps({"sha1": "0" * 40, "size": 7})])
        return steps

    remote._fetch = lying_fetch  # type: ignore[method-assign]
    session, _recorder = open_session()
    target = tmp_path / "x.txt"
    with pytest.raises(_transfer.TransferError, match="failed verification"):
        session.fetch_file("C:\\x.txt", str(target))
    assert not target.exists()


def test_fetch_of_a_missing_file_reports_the_host_message(
    remote: FakeRemote, tmp_path: Path
) -> None:
    session, _recorder = open_session()
    target = tmp_path / "missing.txt"
    with pytest.raises(_transfer.TransferError, match=re.escape("'C:\\nope.txt' does not exist")):
        session.fetch_file("C:\\nope.txt", str(target))
    assert not target.exists()


def answer_cut_off() -> requests.exceptions.ChunkedEncodingError:
    cut = IncompleteRead(b"x" * 10, 90)
    return requests.exceptions.ChunkedEncodingError(ProtocolError("Connection broken", cut))


def _cut_first_fetches(remote: FakeRemote, cuts: int) -> None:
    """The first ``cuts`` fetch pipelines lose the connection after their first output."""
    original = remote._fetch
    remaining = [cuts]

    def fetch_cut_off(lines: list[str]) -> list[t.Any]:
        steps = original(lines)
        if remaining[0] > 0:
            remaining[0] -= 1
            steps.insert(1, answer_cut_off())
        return steps

    remote._fetch = fetch_cut_off  # type: ignore[method-assign]


def test_a_fetch_cut_off_mid_answer_starts_again(remote: FakeRemote, tmp_path: Path) -> None:
    data = os.urandom(600_001)
    remote.files["C:\\x.bin"] = data
    _cut_first_fetches(remote, 1)
    session, recorder = open_session()
    target = tmp_path / "x.bin"
    assert session.fetch_file("C:\\x.bin", str(target)) == len(data)
    assert target.read_bytes() == data
    fetches = [p for p in remote.pipelines if p.script == _transfer.FETCH_SCRIPT]
    assert len(fetches) == 2
    assert fetches[0].stop_calls == 1  # the cut pipeline was stopped on the host
    assert recorder.sleeps == [1.0]
    assert any(line.startswith("fetch failed with LostAnswerFailure") for line in recorder.logs)


def test_a_fetch_cut_off_every_time_gives_up_after_the_retries(
    remote: FakeRemote, tmp_path: Path
) -> None:
    remote.files["C:\\x.bin"] = os.urandom(600_001)
    _cut_first_fetches(remote, 4)
    session, recorder = open_session()
    target = tmp_path / "x.bin"
    with pytest.raises(AnsibleConnectionFailure, match="the connection broke while the host"):
        session.fetch_file("C:\\x.bin", str(target))
    assert not target.exists()
    assert len([p for p in remote.pipelines if p.script == _transfer.FETCH_SCRIPT]) == 4
    assert recorder.sleeps == [1.0, 2.0, 4.0]


def test_an_answer_that_cannot_be_parsed_stops_the_fetch_and_its_pipeline(
    remote: FakeRemote, tmp_path: Path
) -> None:
    """A fetch's answers are parsed in a thread of their own (session._ahead WorkedBehind):
    its error still ends the fetch where the Receives are sent, and the pipeline is stopped."""
    remote.files["C:\\x.bin"] = os.urandom(600_001)  # several answers
    parsed: list[t.Any] = []

    def parse(pipeline: FakePowerShell, step: t.Any) -> list[t.Any]:
        parsed.append(step)
        if len(parsed) == 2:
            raise ValueError("corrupt fragment")
        return fake_output_of(pipeline, step)

    session, _recorder = open_session()
    target = tmp_path / "x.bin"
    with mock.patch.object(_psrp_stream, "output_of", parse):
        with pytest.raises(ValueError, match="corrupt fragment"):
            session.fetch_file("C:\\x.bin", str(target))
    assert not target.exists()
    (fetch,) = remote.pipelines
    assert fetch.stop_calls == 1
    assert len(parsed) == 2  # nothing was parsed after the error
    assert not any(thread.name == "winops-worked-behind" for thread in threading.enumerate())
    # The session goes on: the next fetch runs in full.
    assert session.fetch_file("C:\\x.bin", str(target)) == 600_001


def test_a_fetch_asks_again_after_an_operation_timeout(remote: FakeRemote, tmp_path: Path) -> None:
    """Nothing within the operation timeout is no answer (Windows faults the Receive): the
    fetch sends the next Receive and takes the answers that follow."""
    remote.files["C:\\x.bin"] = b"data"
    real_plan = remote.plan_for
    session, _recorder = open_session()
    target = tmp_path / "x.bin"
    with mock.patch.object(
        remote, "plan_for", lambda pipeline: ["wait", "wait", *real_plan(pipeline)]
    ):
        assert session.fetch_file("C:\\x.bin", str(target)) == 4
    (fetch,) = remote.pipelines
    assert len(fetch.poll_timeouts) == 5  # two unanswered, the output, the result, the end
    assert fetch.stop_calls == 0


def test_a_command_cut_off_mid_answer_is_not_run_again(remote: FakeRemote) -> None:
    remote.plans["script"] = [("out", ["part"]), answer_cut_off(), ("rc", 0)]
    session, recorder = open_session()
    with pytest.raises(AnsibleConnectionFailure) as raised:
        session.run("script")
    assert answer_lost(raised.value)  # the one signal a fetch restarts on
    assert len(remote.pipelines) == 1
    assert recorder.sleeps == []


def test_a_pipeline_that_never_started_lost_no_answer(remote: FakeRemote) -> None:
    remote.begin_error = answer_cut_off()
    session, _recorder = open_session()
    with pytest.raises(AnsibleConnectionFailure) as raised:
        session.run("script")
    assert not answer_lost(raised.value)


@pytest.mark.parametrize("max_envelope_size", [153600, 512000, 32768])
def test_a_put_line_travels_in_one_psrp_fragment(max_envelope_size: int) -> None:
    """With real pypsrp framing, one chunk line is one fragment that fits the envelope."""
    wsman = WSMan("win-01.example.com", max_envelope_size=max_envelope_size)
    session = PsrpSession(make_settings())
    session._pool = mock.Mock(connection=wsman)
    chunk = session.transfer_chunk_size()
    line = base64.b64encode(os.urandom(chunk)).decode()
    fragmenter = Fragmenter(wsman.max_payload_size, Serializer())
    fragments = fragmenter.fragment_multiple(
        [PipelineInput(data=line)], str(uuid.uuid4()), str(uuid.uuid4())
    )
    assert len(fragments) == 1
    # Derived from the envelope, not a fixed constant: more than half of it carries file data.
    assert chunk >= (max_envelope_size - _psrp_session.PSRP_ENVELOPE_OVERHEAD) // 2


# --- what is repeated: the decisions shared with the winrm plugin (issue 11, item 8) -----------


def busy() -> WSManFaultError:
    return WSManFaultError(170, "win-01", "The requested resource is in use. ", "", "", "")


def test_a_send_refused_as_busy_is_sent_again(remote: FakeRemote) -> None:
    # Before, psrp failed the task on ERROR_BUSY while winrm sent the input again.
    session, recorder = open_session()
    pool = session._require_pool()
    remote.send_errors = [busy(), busy()]
    pool.shell.send("stdin", b"data", command_id="C1")
    assert remote.sends == 3
    assert recorder.sleeps == [1.0, 2.0]


@pytest.mark.parametrize(
    "error",
    [connection_reset(), WSManFaultError(5, "win-01", "Access is denied.", "", "", "")],
    ids=["reset", "access-denied"],
)
def test_any_other_send_failure_is_not_repeated(remote: FakeRemote, error: BaseException) -> None:
    # The host may have taken the input: sending it again could duplicate it.
    session, _recorder = open_session()
    remote.send_errors = [error]
    with pytest.raises(type(error)):
        session._require_pool().shell.send("stdin", b"data", command_id="C1")
    assert remote.sends == 1


def test_a_receive_is_not_repeated_by_pypsrp_after_a_read_timeout() -> None:
    # pypsrp's WSMan.receive repeats a read timeout five times; a lost answer's output cannot
    # be asked for again, so the plugin's Receive asks pypsrp for no repeats.
    wsman = mock.create_autospec(WSMan, instance=True)
    _psrp_session._receive_without_repeat(wsman, "uri", "resource", None, None, 20)
    wsman.invoke.assert_called_once_with(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
        "uri",
        "resource",
        None,
        None,
        20,
        retries_on_read_timeout=0,
    )


def test_pypsrp_older_than_0_9_is_refused_with_the_version_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pypsrp 0.8.x has no WSMan.invoke(retries_on_read_timeout=...): every Receive would fail
    with a TypeError, so the plugin says which pypsrp it needs instead."""

    class WSManOf081:  # WSMan.invoke's parameters in pypsrp 0.8.1
        def invoke(  # noqa: PLR0917 - pypsrp's own signature
            self,
            action: str,
            resource_uri: str,
            resource: t.Any,
            option_set: t.Any = None,
            selector_set: t.Any = None,
            timeout: int | None = None,
        ) -> t.Any:
            raise AssertionError("not called")

    assert _psrp_session.sends_without_repeats(WSMan)  # the installed pypsrp
    assert not _psrp_session.sends_without_repeats(WSManOf081)
    monkeypatch.setattr(_psrp_session, "PYPSRP_IMPORT_ERROR", ImportError("too old"))
    with pytest.raises(AnsibleError, match=r"0\.9\.0 or later and below 1\.0\.0"):
        _psrp_session.require_pypsrp()


@pytest.mark.real_name_lookup
def test_a_name_that_does_not_resolve_fails_at_once_without_retries(
    remote: FakeRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, pypsrp's urllib3 retried the lookup with backoff while winrm failed at once.
    def no_such_name(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    recorder = Recorder()
    session = PsrpSession(make_settings(), log=recorder.logs.append, sleep=recorder.sleeps.append)
    with pytest.raises(AnsibleConnectionFailure, match="name resolution failed") as raised:
        session.open()
    assert "could not be resolved" in str(raised.value)
    assert remote.pools == [] and recorder.sleeps == []


@pytest.mark.real_name_lookup
def test_through_a_proxy_the_name_is_left_to_the_proxy(
    remote: FakeRemote, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_lookup(*args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise AssertionError("the controller looked the name up")

    monkeypatch.setattr(socket, "getaddrinfo", no_lookup)
    settings = make_settings()
    settings.wsman_kwargs["proxy"] = "http://proxy.example.com:3128"
    session, _recorder = open_session(settings)
    assert session.is_open


# --- a new TCP connection authenticates again (issue 11, item 2) ------------------------------


class FakeHttpSession:
    """A requests.Session as session._pooled.connection_lost reads it: one pool of connections."""

    def __init__(self, connected: bool | None) -> None:
        # None: a connection urllib3 dropped after a failed request (its slot holds None)
        connection = None if connected is None else mock.Mock(is_connected=connected)
        pool = mock.Mock(pool=mock.Mock(queue=[connection]))
        self.adapters = {"http://": mock.Mock(poolmanager=mock.Mock(pools={"key": pool}))}
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeTransport:
    """pypsrp's _TransportHTTP: the requests session and the message-encryption context."""

    def __init__(self, http: FakeHttpSession) -> None:
        self.session: FakeHttpSession | None = http
        # pypsrp's WinRMEncryption: the security context and the unwrap the session replaces
        self.encryption: t.Any = types.SimpleNamespace(context=None, unwrap_message=None)
        self.sent: list[tuple[bytes, FakeHttpSession | None, object | None]] = []

    def send(self, message: bytes, **kwargs: t.Any) -> bytes:
        self.sent.append((message, self.session, self.encryption))
        return b""

    def _build_session(self) -> FakeHttpSession:  # pypsrp builds it on the first send
        raise AssertionError("not sent: the session is not built")


def test_the_session_reads_the_proxy_environment_once() -> None:
    """The requests session pypsrp builds for the pool does not read the proxy variables again
    for every request (session._pooled.environment_read_once, tested there in full)."""
    wsman = WSMan("win-01.test", username="admin", password="secret", ssl=False, auth="ntlm")
    PsrpSession(make_settings())._prepare_transport(wsman)
    assert wsman.transport._build_session().trust_env is False


@pytest.mark.parametrize("connected", [False, None], ids=["closed-by-the-host", "dropped"])
def test_a_request_on_a_new_connection_authenticates_again(connected: bool | None) -> None:
    http = FakeHttpSession(connected)
    transport = FakeTransport(http)
    session = PsrpSession(make_settings())
    session._prepare_transport(mock.Mock(transport=transport))
    transport.send(b"<Signal/>", timeout=5)
    # pypsrp builds a new requests session and authenticates before it seals this message
    assert transport.sent == [(b"<Signal/>", None, None)]
    assert http.closed


def test_a_request_on_the_open_connection_keeps_its_context() -> None:
    http = FakeHttpSession(connected=True)
    transport = FakeTransport(http)
    encryption = transport.encryption
    session = PsrpSession(make_settings())
    session._prepare_transport(mock.Mock(transport=transport))
    transport.send(b"<Receive/>")
    assert transport.sent == [(b"<Receive/>", http, encryption)]
    assert not http.closed


@pytest.mark.parametrize(
    ("error", "warned"),
    [
        (WinRMTransportError("http", 400, ""), True),
        # the host no longer has the pool (a reboot ended it): nothing is left to name
        (WSManFaultError(2150858843, "win-01", "The shell was not found", "", "", ""), False),
    ],
    ids=["refused", "already-gone"],
)
def test_a_close_that_fails_names_the_pool_left(
    remote: FakeRemote, error: BaseException, warned: bool
) -> None:
    warnings: list[str] = []
    session = PsrpSession(make_settings(retry_policy=RetryPolicy(retries=0)), warn=warnings.append)
    session.open()
    remote.close_error = error
    session.close()
    if warned:
        (warning,) = warnings
        assert remote.pools[0].id in warning and "win-01.example.com" in warning
    else:
        assert warnings == []


def test_the_settings_repr_shows_no_secret() -> None:
    settings = make_settings(secrets=("pässwörd",))
    shown = repr(settings)
    assert "pässwörd" not in shown
    assert "win-01.example.com" in shown
