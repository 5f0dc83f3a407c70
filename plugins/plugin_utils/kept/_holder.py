"""The process that keeps one open session for the rest of an ansible-playbook run.

Internal use only: this module is not part of the collection's public API.

The task that opened a session forks this process, which takes the open session over (the
same HTTP connection, shell or runspace pool: a fork copies them, nothing is sent again) and
answers the later tasks' requests on a Unix socket in the run's private directory. It ends,
deleting the shell or closing the pool on the host, when any of these happens:
- ansible-playbook ends, however it ends (its pidfd becomes readable; polled where the
  platform has no pidfd);
- no request came for the idle timeout;
- a request asks for the end (``reset()``: ``meta: reset_connection``, win_reboot);
- an operation failed: the next task opens a fresh session rather than trusting this one.
Secrets never leave memory: the forked process has the session object, not a password.

A task that asks while another task's operation runs (``delegate_to`` from many hosts to one
Windows host) is answered "busy" at once and uses a session of its own, as the builtin
plugins' tasks do, rather than wait its turn. Tasks still queued when the holder ends are
answered "gone", which tells them that nothing ran, so they open a fresh session.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import os
import pickle
import select
import signal
import socket
import stat
import threading
import time
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import (
    _channel,
    _key,
    _place,
    _run_cache,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._client import holder_ended

# How long ending a session (delete shell, close pool) may take before the holder just exits
# and leaves it to the host's idle timeout: the run is over, nothing should wait longer.
END_LIMIT_SECONDS = 15
# How long the opening task waits for the holder to listen before it keeps its session itself.
READY_SECONDS = 10.0
_POLL_SECONDS = 1.0
# How long a task that connected may take to send its request when it is only to be told that
# the holder is busy or gone: a stalled peer must not stall the holder's watcher or its end.
_TURN_AWAY_SECONDS = 5.0


class DisplayRecorder:
    """Stands in for a worker's display queue in the holder: Ansible's Display hands every
    message to ``send_display`` when a queue is set, so the session's -vvv lines are recorded
    here and replayed by the task that asked (kept.client)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, tuple[t.Any, ...], dict[str, t.Any]]] = []

    def send_display(self, method: str, *args: t.Any, **kwargs: t.Any) -> None:
        self.records.append((method, args, kwargs))

    def send_prompt(self, *args: t.Any, **kwargs: t.Any) -> None:
        raise RuntimeError("a kept session cannot prompt")

    def take(self) -> list[tuple[str, tuple[t.Any, ...], dict[str, t.Any]]]:
        records, self.records = self.records, []
        return records

    def __bool__(self) -> bool:
        return True


class Holder(t.NamedTuple):
    """What the opening task learns about the holder it started."""

    pid: int
    path: str


class NotKept(Exception):
    """The holder could not take the session over; the text says why. The caller still owns
    the session."""


def start(
    session: t.Any,
    operations: c.Collection[str],
    *,
    path: str,
    owner: int,
    idle_timeout: float,
    secrets_digest: str,
) -> Holder:
    """Fork a holder for the open ``session``; NotKept when it could not listen (another task
    keeps a session under the same key, say), in which case the caller still owns ``session``.

    When a Holder is returned, the session belongs to the holder: the caller must drop its
    copy without closing it. ``operations`` are the session's methods a task may call. Besides
    them the holder calls ``settle()`` after each answer (the host's bookkeeping of a finished
    command, off the task's path) and ``close()`` at its end (delete the shell, close the pool).
    """
    ready_read, ready_write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        try:
            os.close(ready_read)
            os.setsid()  # out of the worker's process group: Ansible signals that group
            if os.fork() == 0:
                _serve(
                    session,
                    operations=operations,
                    path=path,
                    owner=owner,
                    idle_timeout=idle_timeout,
                    secrets_digest=secrets_digest,
                    ready=ready_write,
                )
        finally:
            os._exit(0)
    os.close(ready_write)
    os.waitpid(child, 0)
    try:
        readable, _w, _x = select.select([ready_read], [], [], READY_SECONDS)
        answer = os.read(ready_read, 512) if readable else b""
    finally:
        os.close(ready_read)
    if answer.startswith(b"ready "):
        return Holder(int(answer.split()[1]), path)
    if answer.startswith(b"not "):
        raise NotKept(answer[4:].decode("utf-8", "replace"))
    raise NotKept(f"its process did not say it was listening within {READY_SECONDS:g} s")


def _detach_descriptors(keep: set[int]) -> None:
    """Point every inherited descriptor except ``keep`` and TCP sockets at /dev/null.

    The worker's descriptors include ansible-playbook's output pipe and result queue: held
    open here, they would keep a caller waiting for ansible-playbook's output. They are not
    closed but replaced, so that a Python object that still owns one cannot later close a
    descriptor number this process reuses.
    """
    null = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        if fd in keep or fd == null:
            continue
        try:
            info = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISSOCK(info.st_mode) and fd > 2:
            probe = socket.socket(fileno=fd)
            try:
                if probe.family in (socket.AF_INET, socket.AF_INET6):
                    continue  # the session's connection to the host
            finally:
                probe.detach()
        os.dup2(null, fd)
    os.close(null)


def _listen(path: str) -> socket.socket:
    """Bind ``path`` atomically: a socket file that exists and answers is another holder's."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    staging = f"{path}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(staging)
    listener.bind(staging)
    os.chmod(staging, 0o600)
    try:
        try:
            os.link(staging, path)
        except FileExistsError:
            if _answers(path):
                raise
            os.unlink(path)  # left by a holder that died
            os.link(staging, path)
    finally:
        os.unlink(staging)
    listener.listen(16)
    return listener


def _unlist(path: str, inode: int) -> None:
    """Remove ``path`` if it is still ours: after an idle end a later holder may have taken it."""
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == inode:
            os.unlink(path)


def _answers(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _owner_watch(owner: int) -> int | None:
    """A descriptor that becomes readable when ``owner`` ends, where Linux has pidfds."""
    try:
        return os.pidfd_open(owner)
    except (AttributeError, OSError):
        return None


def _serve(  # pragma: no cover - runs in the forked holder; covered by tests/integration
    session: t.Any,
    *,
    operations: c.Collection[str],
    path: str,
    owner: int,
    idle_timeout: float,
    secrets_digest: str,
    ready: int,
) -> t.NoReturn:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for ansible-playbook; we follow it
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _raise_exit)
    listener = None
    reason = "it could not listen"
    try:
        _detach_descriptors({ready})
        recorder = _take_over_display()
        if not _place.run_ended(owner, ""):
            with _place.changing_runs():
                # The run's last holder may have removed the directory since the task made it.
                _place.private_dir(os.path.dirname(path))
                listener = _listen(path)
        else:
            reason = "ansible-playbook has ended"
    except BaseException as err:
        reason = f"{type(err).__name__}: {err} ({path})"
    if listener is None:
        # Not ready: the opening task still owns the session and closes it itself.
        with contextlib.suppress(OSError):
            os.write(ready, f"not {reason}".encode("utf-8", "replace")[:512])
        os._exit(0)
    inode = os.stat(path).st_ino
    try:
        watch = _owner_watch(owner)
        os.write(ready, f"ready {os.getpid()}".encode("ascii"))
        os.close(ready)

        def unlist() -> None:
            _unlist(path, inode)

        server = _Server(
            session, operations, recorder, secrets_digest, owner_watch=watch, unlist=unlist
        )
        _answer_requests(
            listener,
            unlist=unlist,
            watch=watch,
            owner=owner,
            serve=server,
            idle_timeout=idle_timeout,
        )
    except BaseException:
        pass  # whatever ended the serving, the session is ended below
    finally:
        _unlist(path, inode)
        # Tasks that connected before the unlist get "gone" (nothing ran) and open a fresh
        # session, rather than a reset from a listener closed under them.
        with contextlib.suppress(BaseException):
            while select.select([listener], [], [], 0)[0]:
                _turn_away(listener, secrets_digest, lambda request: {"status": "gone"})
        listener.close()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.alarm(END_LIMIT_SECONDS)  # SIGALRM's default action ends the process
    with contextlib.suppress(BaseException):
        session.close()
    # The run's last holder removes the run directory, and what it kept (kept._run_cache).
    directory = os.path.dirname(path)
    with contextlib.suppress(BaseException), _place.changing_runs():
        if not _key.sessions_listening(directory):
            _run_cache.remove_all(directory)
            with contextlib.suppress(OSError):
                os.rmdir(directory)
    os._exit(0)


def _raise_exit(signum: int, frame: t.Any) -> None:
    raise SystemExit(0)


def _take_over_display() -> DisplayRecorder:
    from ansible.utils.display import Display

    recorder = DisplayRecorder()
    Display()._final_q = recorder  # type: ignore[assignment]
    return recorder


def _answer_requests(
    listener: socket.socket,
    *,
    unlist: c.Callable[[], None],
    watch: int | None,
    owner: int,
    serve: c.Callable[[socket.socket], bool],
    idle_timeout: float,
) -> None:
    """Answer requests until the owner ends, the session idles out or ``serve`` says stop."""
    watched: list[t.Any] = [listener] + ([watch] if watch is not None else [])
    idle_since = time.monotonic()
    while True:
        wait = idle_timeout - (time.monotonic() - idle_since)
        if wait <= 0:
            # Unlisted first, so no new task finds it; then answer the tasks that connected
            # before that, which would otherwise see the holder vanish mid-request.
            unlist()
            while select.select([listener], [], [], 0)[0]:
                if not serve(listener):
                    return
            return
        if watch is None:
            wait = min(wait, _POLL_SECONDS)
        readable, _w, _x = select.select(watched, [], [], wait)
        if watch is not None and watch in readable:
            return
        if watch is None and _place.run_ended(owner, ""):
            return
        if listener in readable:
            if not serve(listener):
                return
            idle_since = time.monotonic()


class _Server:
    """Answers one request per connection; ``__call__`` returns False when the holder ends."""

    def __init__(
        self,
        session: t.Any,
        operations: c.Collection[str],
        recorder: DisplayRecorder,
        secrets_digest: str,
        *,
        owner_watch: int | None,
        unlist: c.Callable[[], None],
    ) -> None:
        self.session = session
        self.unlist = unlist  # removes the socket path, so that no later task finds us
        self.operations = operations
        self.recorder = recorder
        self.secrets_digest = secrets_digest
        self.served = 0
        self.owner_watch = owner_watch  # ansible-playbook's pidfd, None without pidfds
        self.end_asked = False  # set while busy by a task's reset(): end after this operation

    def _turn_away_busy(self, listener: socket.socket) -> None:
        """Answer a task that asks while an operation runs (in the watcher thread)."""
        _turn_away(listener, self.secrets_digest, self._answer_while_busy)

    def _answer_while_busy(self, request: dict[str, t.Any]) -> dict[str, t.Any]:
        if request.get("op") == "end":
            # No later task may find this session; the running operation still gets its
            # answer, then the holder ends (reset_connection, win_reboot during another task).
            self.unlist()
            self.end_asked = True
            return {"status": "ended", "holder": os.getpid()}
        return {"status": "busy", "holder": os.getpid()}  # the doctor's hello too

    def __call__(self, listener: socket.socket) -> bool:
        connection, _address = listener.accept()
        with connection:
            request = _admitted(connection, self.secrets_digest)
            if request is None:
                return True
            if request.get("op") == "hello":  # the doctor asks who keeps the session
                _channel.send(
                    connection, {"status": "ok", "holder": os.getpid(), "served": self.served}
                )
                return True
            if request.get("op") == "end":
                # Unlisted before the answer: the asking task may keep a new session under
                # the same name at once (after a reset, or with new credentials).
                self.unlist()
                _channel.send(connection, {"status": "ended", "holder": os.getpid()})
                return False
            operation, args = request.get("op"), request.get("args", ())
            if request.get("answer") is False:
                # Told by a task that has gone on (kept._client.tell): no one waits for an
                # answer, and its hang-up interrupts nothing. Its display waits for the next.
                _result, failed = _perform(self.session, self.operations, operation, args)
                if failed:
                    self.unlist()
                    return False
            else:
                self.served += 1
                if not self._answer(connection, listener, operation, args):
                    return False
        if self.end_asked:
            return False
        # The host's bookkeeping of the finished command or pipeline, off the task's path: the
        # next request waits in the listen queue meanwhile, and sees what it displayed.
        try:
            self.session.settle()
        except BaseException:
            return False
        return True

    def _answer(
        self, connection: socket.socket, listener: socket.socket, operation: t.Any, args: t.Any
    ) -> bool:
        """Perform a task's request and send it the answer; False when the holder ends."""
        if _has_hung_up(connection):
            # The task gave up while its request waited behind the last one's settle (its
            # time limit, a Ctrl+C): Ansible has reported it failed, so it must not start now.
            return True
        with _interrupted_if_gone(connection, self.owner_watch, listener, self._turn_away_busy):
            answer, failed = _perform(self.session, self.operations, operation, args)
        answer.update(holder=os.getpid(), served=self.served, display=self.recorder.take())
        if failed:
            # Gone from the directory before the task hears of the failure: the task's next
            # call (its action's clean-up, say) must open a fresh session, not connect to a
            # holder about to close its listener unanswered (a reset, not the failure).
            self.unlist()
        try:
            _channel.send(connection, answer)
        except OSError:
            return False  # the task is gone with its result: start afresh next time
        return not failed


class TaskGone(BaseException):
    """The task that asked hung up (its timeout fired, it was killed): stop what it asked for,
    as an interruption of the task itself would (a WinRS terminate, a PSRP stop)."""


def _raise_task_gone(signum: int, frame: t.Any) -> None:
    # What follows (stopping the command, ending the session) may wait on a host that no
    # longer answers: SIGALRM's default action bounds it.
    signal.alarm(END_LIMIT_SECONDS)
    raise TaskGone()


def _admitted(connection: socket.socket, secrets_digest: str) -> dict[str, t.Any] | None:
    """The request on ``connection`` from a task of this user with these secrets; None when
    it was refused here or could not be read.

    An ``end`` is taken whatever the secrets: a task whose inventory now has other
    credentials (a rotated password) ends the session kept with the old ones, which no later
    task can use, and keeps its own. Only this user reaches the socket, and could end the
    process anyway.
    """
    try:
        _channel.check_peer(connection)
        request = _channel.receive(connection)
    except (_channel.ChannelError, OSError):
        return None
    if not isinstance(request, dict):
        return None
    if request.get("secrets") != secrets_digest and request.get("op") != "end":
        with contextlib.suppress(OSError):
            _channel.send(connection, {"status": "refused", "holder": os.getpid()})
        return None
    return request


def _turn_away(
    listener: socket.socket,
    secrets_digest: str,
    answer: c.Callable[[dict[str, t.Any]], dict[str, t.Any]],
) -> None:
    """Accept one waiting task and answer its request with ``answer(request)`` without
    performing it. The request is read first: closing a socket with unread data resets it,
    and the task would not learn that nothing ran."""
    try:
        connection, _address = listener.accept()
    except OSError:
        return
    with connection:
        connection.settimeout(_TURN_AWAY_SECONDS)
        request = _admitted(connection, secrets_digest)
        if request is not None:
            with contextlib.suppress(OSError):
                _channel.send(connection, answer(request))


def _has_hung_up(connection: socket.socket) -> bool:
    """Whether the task has closed its end of ``connection`` (without waiting)."""
    readable, _w, _x = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


@contextlib.contextmanager
def _interrupted_if_gone(
    connection: socket.socket,
    owner_watch: int | None,
    listener: socket.socket,
    arrived: c.Callable[[socket.socket], None],
) -> t.Iterator[None]:
    """Interrupt the operation in this (main) thread with TaskGone when the task hangs up or
    ansible-playbook ends (a command without a time limit must not outlive the run).
    Meanwhile each task that connects to ``listener`` goes to ``arrived``, which answers it
    without waiting for the operation."""
    finished_read, finished_write = os.pipe()

    def watch() -> None:
        watched: list[t.Any] = [connection, finished_read, listener]
        if owner_watch is not None:
            watched.append(owner_watch)
        while True:
            readable, _w, _x = select.select(watched, [], [])
            if finished_read in readable:
                return
            if owner_watch in readable:
                os.kill(os.getpid(), signal.SIGUSR1)
                return
            if connection in readable:
                if _has_hung_up(connection):
                    os.kill(os.getpid(), signal.SIGUSR1)
                    return
                watched.remove(connection)  # more from the task than its request: ignored
            if listener in readable:
                arrived(listener)

    signal.signal(signal.SIGUSR1, _raise_task_gone)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        os.write(finished_write, b"x")
        watcher.join()
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        os.close(finished_read)
        os.close(finished_write)


def _perform(
    session: t.Any, operations: c.Collection[str], operation: t.Any, args: t.Any
) -> tuple[dict[str, t.Any], bool]:
    if operation not in operations:
        return {"status": "error", "value": RuntimeError(f"not an operation: {operation!r}")}, False
    try:
        value = getattr(session, operation)(*args)
    except Exception as err:
        return {"status": "error", "value": _portable(err)}, True
    except BaseException as err:
        # The holder itself is ending (SIGTERM's SystemExit) or its task hung up: raised in
        # the task, a SystemExit would end the worker and with it the whole run.
        return {"status": "error", "value": holder_ended(operation, type(err).__name__)}, True
    return {"status": "ok", "value": value}, False


def _portable(err: BaseException) -> BaseException:
    """``err`` as the task should raise it: without its chain (the failure path already put
    every cause in the message), and as a plain Exception when it cannot be pickled."""
    err.__cause__ = None
    err.__context__ = None
    err.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:
        from ansible.errors import AnsibleConnectionFailure

        return AnsibleConnectionFailure(f"{type(err).__name__}: {err}")
    return err
