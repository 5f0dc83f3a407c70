"""Kept sessions' local side (plugin_utils/kept): places, peers, the holder's life.

A real holder is forked here with a stand-in session object (the forked process cannot
report back through mocks, so the stand-in writes what happened to files); the connection to
a real host is covered by tests/integration/e2e/test_kept_sessions.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import pytest
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import (
    _channel,
    _holder,
    _key,
    _place,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._client import (
    KeptSession,
    KeptSessionBusy,
    KeptSessionGone,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._slot import SessionSlot

OPTIONS = {"remote_addr": "win1", "port": 5985, "remote_user": "ansible"}


def test_the_key_ignores_secrets_and_the_digest_follows_them() -> None:
    with_password = {**OPTIONS, "remote_password": "one", "certificate_key_password": "two"}
    other_password = {**with_password, "remote_password": "three"}
    assert _key.session_key("p", with_password) == _key.session_key("p", other_password)
    assert _key.secrets_digest(with_password) != _key.secrets_digest(other_password)
    assert _key.session_key("p", OPTIONS) != _key.session_key("p", {**OPTIONS, "port": 5986})
    assert _key.session_key("a", OPTIONS) != _key.session_key("b", OPTIONS)
    assert "one" not in _key.session_key("p", with_password)


@pytest.mark.parametrize("scheme", ["http://", ""])
def test_a_proxy_password_names_no_session_and_the_digest_follows_it(scheme: str) -> None:
    # The socket's name is derived from the key: a proxy password in it would be written down.
    proxied = {**OPTIONS, "proxy": f"{scheme}puser:one@proxy.example.com:3128"}
    other_password = {**OPTIONS, "proxy": f"{scheme}puser:two@proxy.example.com:3128"}
    no_credentials = {**OPTIONS, "proxy": f"{scheme}proxy.example.com:3128"}
    assert _key.session_key("p", proxied) == _key.session_key("p", other_password)
    assert _key.session_key("p", proxied) == _key.session_key("p", no_credentials)
    assert _key.secrets_digest(proxied) != _key.secrets_digest(other_password)
    assert _key.secrets_digest(proxied) != _key.secrets_digest(no_credentials)
    other_proxy = {**OPTIONS, "proxy": f"{scheme}puser:one@other.example.com:3128"}
    assert _key.session_key("p", proxied) != _key.session_key("p", other_proxy)


@pytest.fixture
def short_dir() -> t.Iterator[Path]:
    """A directory with a path short enough to hold sockets (pytest's tmp_path may not be)."""
    path = Path(tempfile.mkdtemp(prefix="k", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_run_directories_are_private_and_checked(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    assert _place.base_dir().startswith(str(short_dir))
    run = _place.run_dir(os.getpid())
    assert run is not None
    for directory in (run, os.path.dirname(run)):
        assert os.stat(directory).st_mode & 0o777 == 0o700
    assert _place.run_dir(os.getpid(), create=False) == run
    os.chmod(os.path.dirname(run), 0o755)
    with pytest.raises(_place.PlaceError, match="open to other users"):
        _place.run_dir(os.getpid())


def test_a_run_directory_removed_while_it_is_made_is_made_again(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The run's last holder ends (after meta: reset_connection) and removes the directory
    # between a task's mkdir and its check: the task failed with "[Errno 2] No such file or
    # directory: '.../run-<pid>-<start>'" in a clean-clone make test.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    run = _place.run_dir(os.getpid())
    assert run is not None
    real_check = _place.check_private
    removed: list[str] = []

    def removed_by_the_last_holder(path: str) -> str:
        if path == run and not removed:
            os.rmdir(path)
            removed.append(path)
        return real_check(path)

    monkeypatch.setattr(_place, "check_private", removed_by_the_last_holder)
    assert _place.run_dir(os.getpid()) == run
    assert removed == [run]
    assert os.stat(run).st_mode & 0o777 == 0o700


def test_a_run_s_first_task_removes_what_ended_runs_left(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that kept no session (every host unreachable) has no holder to remove its
    directory: the next run's first task removes it, and leaves the live runs' alone."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    ended = subprocess.Popen(["sleep", "60"])
    ended_start = _place.start_time(ended.pid)
    ended.kill()
    ended.wait()
    base = Path(_place.base_dir())
    base.mkdir(mode=0o700)
    left = base / f"run-{ended.pid}-{ended_start}"
    left.mkdir(mode=0o700)
    (left / "module-1234.code").write_bytes(b"compiled")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead_holder:
        dead_holder.bind(str(left / "key.sock"))
    live = Path(_place.run_dir(os.getppid()) or "")  # pytest's parent: a run still going
    (live / "module-1234.code").write_bytes(b"compiled")
    not_ours = base / "notes"
    not_ours.mkdir()
    this_run = _place.run_dir(os.getpid())
    assert this_run is not None
    assert sorted(path.name for path in base.iterdir()) == sorted(
        [live.name, Path(this_run).name, "notes"]
    )
    assert (live / "module-1234.code").exists()


def test_a_run_has_ended_when_its_process_is_gone_or_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One test of "has this run ended" for kept sessions' and Kerberos tickets' directories
    and a holder's owner: the pid, and the start time where it is known."""
    own = _place.start_time(os.getpid())
    assert own.isdigit()
    assert not _place.run_ended(os.getpid(), own)
    assert not _place.run_ended(os.getpid(), "")  # not known: the pid alone
    assert _place.run_ended(os.getpid(), str(int(own) + 1))  # a later process with our pid
    ended = subprocess.Popen(["sleep", "60"])
    ended.kill()
    ended.wait()
    assert _place.run_ended(ended.pid, "")
    assert _place.start_time(ended.pid) == ""

    def owned_by_another_user(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "kill", owned_by_another_user)
    assert _place.run_ended(os.getpid(), own)  # runs are this user's: ours has gone


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("run-123-456", (123, "456")),
        ("run-123-x", (123, "")),
        ("run-123-", None),
        ("run-abc-456", None),
        ("run-123-45a", None),
        ("notes", None),
        ("run-1-2-3", None),
    ],
)
def test_a_run_directory_name_holds_its_pid_and_start_time(
    name: str, expected: tuple[int, str] | None
) -> None:
    assert _place.parse_run_name(name) == expected


@pytest.mark.parametrize("start", ["4242", ""])
def test_a_run_name_is_read_back(start: str) -> None:
    assert _place.parse_run_name(_place.run_name(os.getpid(), start)) == (os.getpid(), start)


def test_a_planted_symlink_is_refused(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    elsewhere = short_dir / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    assert _place.base_dir().startswith(str(short_dir))
    os.symlink(elsewhere, _place.base_dir())
    with pytest.raises(_place.PlaceError, match="not a directory"):
        _place.run_dir(os.getpid())


def test_the_base_directory_is_one_where_a_socket_fits(
    short_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XDG_RUNTIME_DIR first, then TMPDIR, then /tmp: the first whose socket paths fit, so a
    long TMPDIR (macOS gives every user one) does not leave every session unkept."""
    long_dir = tmp_path / ("x" * 60)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)

    def chosen_root() -> str:
        tempfile.tempdir = None  # gettempdir() reads TMPDIR again
        return os.path.dirname(_place.base_dir())

    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(short_dir))
    assert chosen_root() == str(short_dir)
    monkeypatch.setenv("TMPDIR", str(long_dir))
    assert chosen_root() == "/tmp"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(long_dir))
    assert chosen_root() == "/tmp"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir / "missing"))
    monkeypatch.setenv("TMPDIR", str(short_dir))
    assert chosen_root() == str(short_dir)
    # The longest socket path the chosen directory can get (kept._key, kept._holder) fits.
    run = f"run-{'9' * 7}-{'9' * 12}"
    longest = _key.socket_path(os.path.join(_place.base_dir(), run), "f" * 32) + ".9999999"
    assert len(_key.session_key("p", OPTIONS)) == 32
    assert len(longest) <= _place.SOCKET_PATH_LIMIT
    assert len(longest) == len(_place.base_dir()) + _place.LONGEST_BELOW_BASE


def test_a_holder_that_cannot_listen_says_why(tmp_path: Path) -> None:
    directory = tmp_path / ("run" + "x" * 120)
    directory.mkdir(mode=0o700)
    record = tmp_path / "record.txt"
    with pytest.raises(_holder.NotKept, match="path too long"):
        _holder.start(
            StandIn(record),
            ("echo",),
            path=str(directory / "key.sock"),
            owner=os.getpid(),
            idle_timeout=30,
            secrets_digest="digest",
        )


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
def test_a_peer_of_another_user_is_refused() -> None:
    # A directory the other user can reach (pytest's tmp_path is private to root).
    shared = tempfile.mkdtemp(prefix="winops-peer-", dir="/tmp")
    os.chmod(shared, 0o777)
    path = os.path.join(shared, "peer.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.settimeout(10)
    listener.bind(path)
    os.chmod(path, 0o777)
    listener.listen(1)
    child = os.fork()
    if child == 0:  # pragma: no cover - the other user
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                time.sleep(1)
        finally:
            os._exit(0)
    connection, _ = listener.accept()
    with connection, pytest.raises(_channel.ChannelError, match="uid 65534"):
        _channel.check_peer(connection)
    os.waitpid(child, 0)
    listener.close()
    shutil.rmtree(shared)


class StandIn:
    """A session that records its life in files, since it lives on in the forked holder."""

    def __init__(self, record: Path, gate: Path | None = None) -> None:
        self.record = record
        self.gate = gate  # settle() waits until this file exists

    def _note(self, line: str) -> None:
        with self.record.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def echo(self, value: t.Any) -> t.Any:
        self._note(f"echo {value}")
        return value

    def fail(self) -> None:
        self._note("fail")
        raise AnsibleConnectionFailure("the host went away")

    def slow(self, seconds: float) -> None:
        self._note("slow started")
        try:
            time.sleep(seconds)
        except BaseException as interruption:
            self._note(f"interrupted by {type(interruption).__name__}")
            raise
        self._note("slow finished")

    def settle(self) -> None:
        deadline = time.monotonic() + 10
        while self.gate is not None and not self.gate.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._note("settled")

    def close(self) -> None:
        self._note("closed")


def _start(
    tmp_path: Path, idle: float = 30.0, gate: Path | None = None
) -> tuple[_holder.Holder, Path]:
    record = tmp_path / "record.txt"
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    holder = _holder.start(
        StandIn(record, gate),
        ("echo", "fail", "slow"),
        path=str(directory / "key.sock"),
        owner=os.getpid(),
        idle_timeout=idle,
        secrets_digest="digest",
    )
    return holder, record


def _lines(record: Path, wanted: str, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lines = record.read_text(encoding="utf-8").splitlines() if record.exists() else []
        if wanted in lines:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"{wanted!r} never appeared; saw {lines}")


def _task_slot(
    record: Path,
    logged: list[str],
    *,
    persist: bool = True,
    max_kept: int = 100,
    **options: t.Any,
) -> SessionSlot:
    """A task's slot whose own session is a StandIn writing to ``record``."""
    return SessionSlot(
        "winops.remoting.winrm",
        {**OPTIONS, **options},
        lambda: StandIn(record),
        ("echo",),
        logged.append,
        persist=persist,
        idle_timeout=30,
        max_kept=max_kept,
    )


def test_calls_reach_the_holder_and_end_closes_the_session(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    kept = KeptSession(holder.path, "digest")
    assert kept.call("echo", b"\x00bytes") == b"\x00bytes"
    assert kept.holder == holder.pid
    with pytest.raises(KeptSessionGone):
        KeptSession(holder.path, "other secrets").call("echo", 1)
    assert kept.end()
    assert _lines(record, "closed") == ["echo b'\\x00bytes'", "settled", "closed"]
    assert not os.path.exists(holder.path)


def test_the_host_bookkeeping_follows_the_answer(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    holder, record = _start(tmp_path, gate=gate)
    kept = KeptSession(holder.path, "digest")
    assert kept.call("echo", 1) == 1  # answered while settle() still waits for the gate
    assert record.read_text(encoding="utf-8").splitlines() == ["echo 1"]
    gate.touch()
    assert kept.call("echo", 2) == 2  # served once the first settle() is done
    kept.end()
    assert _lines(record, "closed") == ["echo 1", "settled", "echo 2", "settled", "closed"]


def test_a_failed_operation_ends_the_holder(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    kept = KeptSession(holder.path, "digest")
    with pytest.raises(AnsibleConnectionFailure, match="the host went away"):
        kept.call("fail")
    # Unlisted before it answered: the task's next call opens a fresh session at once rather
    # than reaching a holder that closes its listener without answering.
    assert not os.path.exists(holder.path)
    assert _lines(record, "closed") == ["fail", "closed"]
    with pytest.raises(KeptSessionGone):
        kept.call("echo", 1)


class _OneTaskListener:
    """What a holder serving one task in this process accepts from: that task's end of a
    socket pair, and a pipe whose read end it watches for other tasks, none of which come."""

    def __init__(self, holder_end: socket.socket) -> None:
        self._holder_end = holder_end
        self._quiet_read, self._quiet_write = os.pipe()

    def accept(self) -> tuple[socket.socket, None]:
        return self._holder_end, None

    def fileno(self) -> int:
        return self._quiet_read

    def __enter__(self) -> _OneTaskListener:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._quiet_read)
        os.close(self._quiet_write)


def test_a_failed_operation_is_unlisted_before_it_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order, seen in one process: the socket path goes first, then the answer. A task
    that calls again on hearing of the failure (its action's clean-up) must find no holder,
    never one that closes its listener without answering."""
    order: list[str] = []
    sent = _channel.send

    def send(connection: socket.socket, message: dict[str, t.Any]) -> None:
        order.append(f"answer {message['status']}")
        sent(connection, message)

    monkeypatch.setattr(_holder._channel, "send", send)
    server = _holder._Server(
        StandIn(tmp_path / "record.txt"),
        ("echo", "fail"),
        _holder.DisplayRecorder(),
        "digest",
        owner_watch=None,
        unlist=lambda: order.append("unlist"),
    )
    task, holder_end = socket.socketpair()
    with task, _OneTaskListener(holder_end) as listener:
        sent(task, {"op": "fail", "args": (), "secrets": "digest"})
        assert server(listener) is False  # type: ignore[arg-type]
        assert _channel.receive(task)["status"] == "error"
    assert order == ["unlist", "answer error"]


def test_a_request_whose_task_hung_up_while_it_waited_is_not_performed(tmp_path: Path) -> None:
    """A task's request waits in the listen queue while the holder settles the last one; a
    task that gives up meanwhile (its time limit) has been reported failed, so its request
    must not start afterwards. The holder goes on serving."""
    record = tmp_path / "record.txt"
    server = _holder._Server(
        StandIn(record),
        ("echo",),
        _holder.DisplayRecorder(),
        "digest",
        owner_watch=None,
        unlist=lambda: None,
    )
    task, holder_end = socket.socketpair()
    with _OneTaskListener(holder_end) as listener:
        _channel.send(task, {"op": "echo", "args": (1,), "secrets": "digest"})
        task.close()
        assert server(listener) is True  # type: ignore[arg-type]
    assert "echo 1" not in record.read_text(encoding="utf-8").splitlines()


def test_an_operation_outside_the_list_is_refused(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    kept = KeptSession(holder.path, "digest")
    with pytest.raises(RuntimeError, match="not an operation: 'close'"):
        kept.call("close")
    assert kept.call("echo", 2) == 2  # still serving
    kept.end()
    assert _lines(record, "closed") == ["settled", "echo 2", "settled", "closed"]
    _lines(record, "closed")


def test_the_idle_timeout_ends_the_holder(tmp_path: Path) -> None:
    holder, record = _start(tmp_path, idle=1.0)
    assert _lines(record, "closed", seconds=10) == ["closed"]
    assert not os.path.exists(holder.path)
    assert not (tmp_path / "run").exists(), "the last holder removes the run directory"


def test_a_task_that_hangs_up_interrupts_its_operation(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(holder.path)
        _channel.send(connection, {"op": "slow", "args": (30,), "secrets": "digest"})
        time.sleep(0.5)
    lines = _lines(record, "closed", seconds=10)
    assert lines == ["slow started", "interrupted by TaskGone", "closed"]


def test_the_end_of_ansible_playbook_interrupts_a_running_operation(tmp_path: Path) -> None:
    owner = subprocess.Popen(["sleep", "60"])
    record = tmp_path / "record.txt"
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    holder = _holder.start(
        StandIn(record),
        ("slow",),
        path=str(directory / "key.sock"),
        owner=owner.pid,
        idle_timeout=30,
        secrets_digest="digest",
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(holder.path)
        _channel.send(connection, {"op": "slow", "args": (60,), "secrets": "digest"})
        time.sleep(0.5)
        owner.kill()
        owner.wait()
        # the task is still connected: only the owner's end can stop the operation
        assert _lines(record, "closed", seconds=10) == [
            "slow started",
            "interrupted by TaskGone",
            "closed",
        ]


def _in_background(call: t.Callable[[], t.Any]) -> tuple[threading.Thread, list[t.Any]]:
    outcome: list[t.Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_task_that_asks_while_another_task_runs_is_told_busy(tmp_path: Path) -> None:
    """delegate_to from many hosts to one: the second task must not queue behind the first."""
    holder, record = _start(tmp_path)
    first, outcome = _in_background(lambda: KeptSession(holder.path, "digest").call("slow", 2))
    _lines(record, "slow started")
    with pytest.raises(KeptSessionBusy, match=f"process {holder.pid} is busy"):
        KeptSession(holder.path, "digest").call("echo", 1)
    assert "slow finished" not in _lines(record, "slow started"), "it waited for the first"
    with pytest.raises(KeptSessionGone):  # other secrets are still refused, busy or not
        KeptSession(holder.path, "other secrets").call("echo", 1)
    first.join()
    assert outcome == [None]
    kept = KeptSession(holder.path, "digest")
    assert kept.call("echo", 2) == 2  # free again: served
    kept.end()
    assert _lines(record, "closed") == [
        "slow started",
        "slow finished",
        "settled",
        "echo 2",
        "settled",
        "closed",
    ]


def test_an_end_asked_while_busy_ends_the_holder_after_the_running_operation(
    tmp_path: Path,
) -> None:
    """reset_connection (or win_reboot) in one task while another task's command runs."""
    holder, record = _start(tmp_path)
    first, outcome = _in_background(lambda: KeptSession(holder.path, "digest").call("slow", 2))
    _lines(record, "slow started")
    assert KeptSession(holder.path, "digest").end()
    assert not os.path.exists(holder.path), "a later task must find no session to reuse"
    assert "slow finished" not in _lines(record, "slow started")
    first.join()
    assert outcome == [None], "the running operation still gets its answer"
    assert _lines(record, "closed") == ["slow started", "slow finished", "closed"]


def test_a_task_queued_when_the_holder_ends_is_told_nothing_ran(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    holder, record = _start(tmp_path, gate=gate)
    assert KeptSession(holder.path, "digest").call("echo", 1) == 1  # settle() now waits
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as queued:
        queued.connect(holder.path)  # in the listen queue: nobody accepts during settle()
        _channel.send(queued, {"op": "echo", "args": (2,), "secrets": "digest"})
        os.kill(holder.pid, signal.SIGTERM)
        assert _channel.receive(queued)["status"] == "gone"
    assert _lines(record, "closed") == ["echo 1", "closed"]


def test_a_busy_kept_session_gives_the_task_a_session_of_its_own(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    first, _outcome = _in_background(lambda: KeptSession(holder.path, "digest").call("slow", 2))
    _lines(record, "slow started")
    own_record = tmp_path / "own.txt"
    logged: list[str] = []
    slot = _task_slot(own_record, logged, persist=False)
    slot._session = KeptSession(holder.path, "digest")
    assert slot.call("echo", 5) == 5
    assert slot.call("echo", 6) == 6  # the rest of the task stays on its own session
    slot.close()
    assert own_record.read_text(encoding="utf-8").splitlines() == ["echo 5", "echo 6", "closed"]
    assert logged == [
        f"NEW SESSION, used by this task only (the kept session is busy: process {holder.pid} "
        "is busy with another task)"
    ]
    first.join()
    KeptSession(holder.path, "digest").end()
    assert "echo 5" not in _lines(record, "closed")


def test_a_told_operation_is_performed_in_turn_and_waited_for_by_no_one(tmp_path: Path) -> None:
    """tell() returns while the holder is still busy with what came before (here, settling
    after the first call), and the holder performs it before the requests that follow it."""
    gate = tmp_path / "gate"
    holder, record = _start(tmp_path, gate=gate)
    kept = KeptSession(holder.path, "digest")
    assert kept.call("echo", 1) == 1
    kept.tell("echo", "hint")  # returns although settle() waits for the gate
    KeptSession(holder.path, "other secrets").tell("echo", "refused")
    assert record.read_text(encoding="utf-8").splitlines() == ["echo 1"]
    gate.touch()
    assert kept.call("echo", 2) == 2
    kept.end()
    assert _lines(record, "closed") == [
        "echo 1",
        "settled",
        "echo hint",
        "settled",
        "echo 2",
        "settled",
        "closed",
    ]
    with pytest.raises(KeptSessionGone):
        kept.tell("echo", "after the end")


def test_a_told_operation_that_fails_ends_the_holder(tmp_path: Path) -> None:
    holder, record = _start(tmp_path)
    kept = KeptSession(holder.path, "digest")
    kept.tell("fail")
    assert _lines(record, "closed") == ["fail", "closed"]
    with pytest.raises(KeptSessionGone):
        kept.call("echo", 1)


def test_telling_the_kept_session_never_opens_one(tmp_path: Path) -> None:
    """tell_kept reaches the holder of a kept session; with a session of the task's own, or a
    holder that is gone, it does nothing (it is a hint for the next task, not work)."""
    holder, record = _start(tmp_path)
    own_record = tmp_path / "own.txt"
    logged: list[str] = []
    slot = _task_slot(own_record, logged, persist=False)
    slot._session = KeptSession(holder.path, "digest")
    slot.tell_kept("echo", "next")
    _lines(record, "echo next")  # fails unless the holder performed it
    KeptSession(holder.path, "digest").end()
    _lines(record, "closed")
    slot.tell_kept("echo", "gone")
    assert not own_record.exists()
    assert logged[-1].startswith("the kept session was not told to echo:")
    own = _task_slot(own_record, logged, persist=False)
    own.call("echo", 1)
    own.tell_kept("echo", 2)
    assert own_record.read_text(encoding="utf-8").splitlines() == ["echo 1"]


@pytest.fixture
def in_a_worker(short_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """As in an Ansible task's worker of a run whose ansible-playbook is this process."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(short_dir))
    monkeypatch.setattr(_place, "in_ansible_worker", lambda: True)
    monkeypatch.setattr(_place, "run_owner", os.getpid)
    return short_dir


def test_a_run_keeps_at_most_session_max_kept_sessions(in_a_worker: Path, tmp_path: Path) -> None:
    """Each holder is a process with memory of its own: a run with many hosts must not keep
    one for every host when told not to."""
    logged: list[str] = []

    def task_slot(host: str) -> SessionSlot:
        return _task_slot(tmp_path / f"{host}.txt", logged, max_kept=2, remote_addr=host)

    slots = [task_slot(host) for host in ("win1", "win2", "win3")]
    for number, slot in enumerate(slots):
        assert slot.call("echo", number) == number
    kept = [slot.session for slot in slots if isinstance(slot.session, KeptSession)]
    assert len(kept) == 2
    assert not isinstance(slots[2].session, KeptSession)
    assert logged[-1] == (
        "NEW SESSION, used by this task only (it could not be kept: this run keeps 2 sessions "
        "already, session_max_kept is 2)"
    )
    for slot in slots:
        slot.close()
    assert (tmp_path / "win3.txt").read_text(encoding="utf-8").splitlines() == [
        "echo 2",
        "closed",
    ]
    assert all(session.end() for session in kept)
    # Once they ended, the task of yet another host keeps its session again.
    again = task_slot("win4")
    assert again.call("echo", 4) == 4
    assert isinstance(again.session, KeptSession)
    assert again.session.end()


def test_a_task_with_new_credentials_ends_the_session_kept_with_the_old_ones(
    in_a_worker: Path, tmp_path: Path
) -> None:
    """A password changed during the run (set_fact after win_user, say): the session kept with
    the old one is of no use to later tasks, so the first task with the new one ends it and
    keeps its own."""
    logged: list[str] = []

    def task_slot(password: str, record: Path) -> SessionSlot:
        return _task_slot(record, logged, remote_password=password)

    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    first = task_slot("old password", old)
    assert first.call("echo", 1) == 1
    assert isinstance(first.session, KeptSession)
    old_holder = first.session.holder
    first.close()
    second = task_slot("new password", new)
    assert second.call("echo", 2) == 2
    assert isinstance(second.session, KeptSession), logged
    assert second.session.holder not in (None, old_holder)
    second.close()
    assert _lines(old, "closed") == ["echo 1", "settled", "closed"]
    assert any(line.startswith("ENDED THE KEPT SESSION") for line in logged), logged
    third = task_slot("new password", tmp_path / "never.txt")
    assert third.call("echo", 3) == 3  # in the session kept by the second task
    assert third.session.end()
    assert _lines(new, "closed") == ["echo 2", "settled", "echo 3", "settled", "closed"]
    assert not (tmp_path / "never.txt").exists()


def test_the_doctor_is_told_when_no_more_sessions_are_kept_or_one_has_old_credentials(
    in_a_worker: Path, tmp_path: Path
) -> None:
    logged: list[str] = []
    first = _task_slot(tmp_path / "first.txt", logged, max_kept=1)
    assert first.describe() == (
        "none kept yet: the next task opens a session and keeps it for this run"
    )
    assert first.call("echo", 1) == 1
    other_host = _task_slot(tmp_path / "other.txt", logged, max_kept=1, remote_addr="win2")
    assert other_host.describe() == (
        "not kept: this run keeps 1 sessions already (session_max_kept is 1), so each task "
        "opens and closes its own session"
    )
    rotated = _task_slot(tmp_path / "rotated.txt", logged, max_kept=1, remote_password="new")
    assert isinstance(first.session, KeptSession)
    assert rotated.describe() == (
        f"kept with other credentials by process {first.session.holder}: the next task ends "
        "that session and keeps its own"
    )
    assert first.session.end()


@pytest.mark.parametrize(
    ("persist", "session_idle_timeout", "asked"),
    [
        (True, 60, 120),  # the default: a minute of margin
        (True, 1, 61),
        (True, 7139, 7199),
        (True, 7140, None),  # not below the hosts' own two hours: nothing to shorten
        (False, 60, None),  # the task's own session ends with the task
    ],
)
def test_a_session_that_may_be_kept_asks_the_host_to_end_it_when_idle(
    in_a_worker: Path, persist: bool, session_idle_timeout: int, asked: int | None
) -> None:
    slot = SessionSlot(
        "winops.remoting.winrm",
        OPTIONS,
        lambda: None,
        (),
        lambda message: None,
        persist=persist,
        idle_timeout=float(session_idle_timeout),
        max_kept=10,
    )
    assert slot.host_idle_timeout == asked


def test_a_session_outside_a_worker_leaves_the_hosts_idle_timeout(tmp_path: Path) -> None:
    assert _task_slot(tmp_path / "record.txt", []).host_idle_timeout is None


@pytest.mark.parametrize("interruption", [SystemExit(0), KeyboardInterrupt()])
def test_an_operation_cut_by_the_holders_own_end_fails_the_task_as_a_connection(
    interruption: BaseException,
) -> None:
    # SIGTERM ends the holder with SystemExit; sent on to the task, it ended the task's worker
    # and with it the whole ansible-playbook run.
    class Session:
        def execute(self) -> None:
            raise interruption

    answer, failed = _holder._perform(Session(), {"execute"}, "execute", ())
    assert failed is True and answer["status"] == "error"
    assert isinstance(answer["value"], AnsibleConnectionFailure)
    assert f"ended during execute ({type(interruption).__name__})" in str(answer["value"])
