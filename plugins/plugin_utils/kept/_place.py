"""Where a run's kept sessions listen: one private directory per ansible-playbook run.

Internal use only: this module is not part of the collection's public API.

The directory names the run (the ansible-playbook process, by pid and start time, so a recycled
pid is a new run); kept._key names a session within it. Only the standard library is imported,
and nothing else of ours: this runs in every task's worker before kept._run_cache can serve
our code compiled (docs/sessions.md).
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing
import os
import stat
import sys
import tempfile
import typing as t

PRIVATE_MODE = 0o700


class PlaceError(Exception):
    """The directory for kept sessions cannot be trusted or created (the reason is the text)."""


def in_ansible_worker() -> bool:
    """True in the forked process that runs one task for ansible-playbook (or ansible)."""
    worker = sys.modules.get("ansible.executor.process.worker")
    if worker is None:
        return False
    return isinstance(multiprocessing.current_process(), worker.WorkerProcess)


def run_owner() -> int:
    """The process whose end ends the run's kept sessions: ansible-playbook itself.

    A task's worker is ansible-playbook's child; ansible-playbook's own process (where
    ``meta: reset_connection`` runs) is the owner itself.
    """
    return os.getppid() if in_ansible_worker() else os.getpid()


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), which
    tells a process from a later one with its pid; empty where /proc cannot tell."""
    # Read as bytes: decoding text would load a codec, which costs every task's worker more
    # than the read.
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode("ascii", "replace")
    except (OSError, IndexError):
        return ""


def run_ended(pid: int, start: str) -> bool:
    """Whether the run whose process is ``pid``, started at ``start`` (empty: not known), has
    ended. Runs are this user's: a pid that is now another user's process is ended. Where a
    start time is not known on either side, the pid alone must do. Used for kept sessions'
    and Kerberos tickets' run directories (kerberos._kerberos), and by a holder for its owner."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return True
    if not start:
        return False
    now = start_time(pid)
    return bool(now) and now != start


def run_name(pid: int, start: str) -> str:
    """The directory name of the run of process ``pid`` started at ``start`` (``start_time``):
    run-<pid>-<start time, or x where it is not known>."""
    return f"run-{pid}-{start or 'x'}"


def parse_run_name(name: str) -> tuple[int, str] | None:
    """The pid and start time (empty: not known) a ``run_name`` holds; None for another name."""
    parts = name.split("-")
    if len(parts) != 3 or parts[0] != "run" or not parts[1].isdigit():
        return None
    if parts[2] != "x" and not parts[2].isdigit():
        return None
    return int(parts[1]), "" if parts[2] == "x" else parts[2]


def private_dir(path: str) -> str:
    """Create ``path`` (mode 0700) or check that the existing one is ours and private."""
    try:
        os.mkdir(path, PRIVATE_MODE)
    except FileExistsError:
        pass
    except OSError as err:
        raise PlaceError(f"cannot create {path}: {err.strerror}") from None
    return check_private(path)


def check_private(path: str) -> str:
    """``path`` when it is a directory of ours that no other user can open; else PlaceError
    (or the OSError of a path that cannot be read)."""
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise PlaceError(f"{path} is not a directory")
    if info.st_uid != os.getuid():
        raise PlaceError(f"{path} belongs to another user (uid {info.st_uid})")
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise PlaceError(f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
    return path


# A Unix socket's path must fit sun_path with its terminating NUL: 108 bytes on Linux, 104 on
# macOS and the BSDs. A longer one cannot be bound, and the session would not be kept.
SOCKET_PATH_LIMIT = 103
# The longest path a run's socket has below the base directory: /run-<pid>-<start time>/ (pid
# up to 7 digits, start time in clock ticks up to 12), <key>.sock (kept._key: 32 characters
# and the suffix), and the holder's staging name, which adds .<holder pid> (kept._holder).
LONGEST_BELOW_BASE = len("/run-1234567-123456789012/") + 32 + len(".sock") + len(".1234567")


def base_dir() -> str:
    """The user's private directory for kept sessions: under $XDG_RUNTIME_DIR, else the
    temporary directory ($TMPDIR), else /tmp, the first where a socket's path fits.

    macOS gives every user a TMPDIR of about 50 characters, and test runners and CI jobs set
    long ones, with which no session could be kept. Every process of a run sees the same
    environment, so all of them choose the same directory.
    """
    name = f"winops-remoting-{os.getuid()}"
    first = None
    # Looked at in turn: every task's worker asks, and the first root usually does.
    for root in _roots():
        if not os.path.isdir(root):
            continue
        path = os.path.join(root, name)
        if len(os.fsencode(path)) + LONGEST_BELOW_BASE <= SOCKET_PATH_LIMIT:
            return path
        first = first or path
    # Too long everywhere: the holder cannot bind, and the task says so (kept._holder).
    return first or os.path.join("/tmp", name)


def _roots() -> t.Iterator[str]:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        yield xdg
    yield tempfile.gettempdir()
    yield "/tmp"


# How often a run's directory is made again when it vanished as it was made (run_dir): the
# run's holders end one at a time, and only the last one removes it.
_RECREATE_ATTEMPTS = 3


def run_dir(owner: int, *, create: bool = True) -> str | None:
    """This run's private directory, <base>/<run_name>, created if asked (None when it does
    not exist and was not to be created)."""
    name = run_name(owner, start_time(owner))
    if not create:
        path = os.path.join(base_dir(), name)
        return path if os.path.isdir(path) else None
    base = private_dir(base_dir())
    path = os.path.join(base, name)
    if not os.path.isdir(path):  # the run's first task: clear what ended runs left behind
        _remove_ended_runs(base)
    # The run's last holder removes the directory when it ends (after `meta: reset_connection`,
    # say) while the run goes on, and may do so between the mkdir and the check here: then the
    # directory is made again, as the next holder would make it (kept._holder).
    for _attempt in range(_RECREATE_ATTEMPTS - 1):
        with contextlib.suppress(FileNotFoundError):
            return private_dir(path)
    return private_dir(path)


def _remove_ended_runs(base: str) -> None:
    """Remove the directories of runs whose ansible-playbook has ended.

    A run's last holder removes its directory, but a run that kept no session (every host
    unreachable, say) leaves the one its first task made, with what its tasks kept there
    (kept._run_cache): without this, one directory more in every such run.
    """
    try:
        names = os.listdir(base)
    except OSError:
        return
    for name in names:
        run = parse_run_name(name)
        if run is None or not run_ended(*run):
            continue
        directory = os.path.join(base, name)
        with contextlib.suppress(OSError):
            for entry in os.scandir(directory):
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.path)
            os.rmdir(directory)


@contextlib.contextmanager
def changing_runs() -> t.Iterator[None]:
    """Held while a holder starts listening in its run's directory (creating it again if need
    be) and while the run's last holder empties and removes it, so that neither happens in
    the middle of the other: a task that keeps a new session just as the last one ends (after
    a reset, say) would otherwise bind in a directory being removed. The lock is on the
    user's base directory, which outlives the runs: nothing is left to clean up."""
    descriptor = os.open(private_dir(base_dir()), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
