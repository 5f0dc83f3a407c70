"""Managed Kerberos tickets for the connection plugins (kinit_mode: managed).

Internal use only: this module is not part of the collection's public API.

How a ticket is obtained (a "backend"):

- ``Krb5Backend``: in-process with the ``krb5`` Python library when it is importable and the
  user did not ask for a particular kinit (kinit_cmd left at ``kinit``, no kinit_args). The
  password never leaves the process.
- ``KinitBackend``: the kinit program as a child process, the password on its stdin only
  (never argv or environment), like the builtin plugins.

Where the ticket lives and how it is reused (``TicketStore``): Ansible runs every task in a
forked worker of the ansible-playbook process, so an in-memory cache would die with the task.
The store keeps one FILE ccache per (principal, forwardable, backend, kinit settings,
KRB5_CONFIG) in a directory of the run:

    <tmp>/winops-krb5-<uid>/                   0700, must be ours and not a symlink
        run-<pid>-<start time>/                0700, one per ansible-playbook process
            <sha256 of the key>.ccache         0600, the ticket (nothing else holds secrets)
            <sha256 of the key>.lock           flock: one worker acquires, the others wait

The run is the worker's parent (the ansible-playbook process) or, outside Ansible workers,
the current process. Before each use the ticket-granting ticket's end time is read from the
ccache file itself; a ticket that ends within the refresh margin is replaced (a new one is
written beside it and renamed over it, so a concurrent reader sees the old or the new, never
half). When the run's directory is created a small watcher process is started that deletes
it as soon as the run's process ends; any acquisition also deletes directories of runs whose
process is gone, in case a watcher was killed. Security: the tickets are as exposed as
kinit's default cache (/tmp/krb5cc_<uid>, 0600) but live only as long as the run, and the
password is never written anywhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _place
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
    krb5_module as _krb5_module,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
    read_ccache,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_errors import (
    KerberosError,
    describe_failure,
    ticket_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import KinitRequest

__all__ = [
    "CredentialCache",
    "KerberosError",
    "KinitBackend",
    "Krb5Backend",
    "TicketStore",
    "acquire_ticket",
    "ccache_environment",
    "describe_failure",
]

REFRESH_MARGIN = 300.0  # replace a ticket that ends within this many seconds


# --- credential caches -------------------------------------------------------------------------
class CredentialCache:
    """A FILE credential cache: a private one (own 0700 directory) or a run-shared one."""

    def __init__(self, path: str | None = None, *, shared: bool = False) -> None:
        if path is None:
            # mkdtemp creates the directory with mode 0700.
            self.directory = tempfile.mkdtemp(prefix="winops-krb5-")
            self.path = os.path.join(self.directory, "ccache")
        else:
            self.directory = os.path.dirname(path)
            self.path = path
        self.shared = shared

    @property
    def name(self) -> str:
        """The cache name as Kerberos libraries expect it in KRB5CCNAME."""
        return f"FILE:{self.path}"

    def environment(self) -> dict[str, str]:
        """Environment entries that make Kerberos libraries and tools use this cache."""
        return {"KRB5CCNAME": self.name}

    def remove(self) -> None:
        """The connection is done with the cache: a private one is deleted with its directory;
        a run-shared one stays for the run's next tasks (the store deletes it when the run
        ends or the ticket expires). Safe to call more than once."""
        if not self.shared:
            shutil.rmtree(self.directory, ignore_errors=True)

    def discard(self) -> None:
        """Delete the ticket now, shared or not (for a ticket the server refused)."""
        if self.shared:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            self.remove()

    def __enter__(self) -> CredentialCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


# --- backends ----------------------------------------------------------------------------------
class TicketBackend(t.Protocol):
    """Something that writes a ticket-granting ticket for a request into a FILE ccache."""

    kind: str

    def obtain(self, request: KinitRequest, ccache_path: str) -> None:
        """Write a ticket-granting ticket for `request` into the FILE ccache at `ccache_path`."""


class KinitBackend:
    """Obtains tickets by running the kinit program with the password on its stdin."""

    kind = "kinit"

    def command_line(self, request: KinitRequest) -> list[str]:
        """kinit's argv: the command, the arguments (given or default) and the principal."""
        if request.kinit_args is not None:
            arguments = list(request.kinit_args)
        else:
            arguments = ["-f"] if request.forwardable else []
        return [request.kinit_cmd, *arguments, request.principal]

    def environment(self, request: KinitRequest, ccache_path: str) -> dict[str, str]:
        """kinit's whole environment: PATH, the target cache and the requested variables."""
        env = dict(request.env_vars)
        env["PATH"] = os.environ.get("PATH", os.defpath)
        env["KRB5CCNAME"] = f"FILE:{ccache_path}"
        return env

    def obtain(self, request: KinitRequest, ccache_path: str) -> None:
        argv = self.command_line(request)
        secrets_ = [request.password]
        try:
            # A new session has no controlling terminal, so kinit reads the password from
            # stdin instead of prompting on the tty (macOS kinit does that otherwise).
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.environment(request, ccache_path),
                start_new_session=True,
            )
        except OSError as err:
            raise ticket_failure(
                "kinit_not_runnable",
                request.principal,
                str(err),
                secrets_,
                kinit_cmd=request.kinit_cmd,
            ) from err
        try:
            stdout, stderr = process.communicate(
                request.password.encode("utf-8") + b"\n", timeout=request.timeout
            )
        except subprocess.TimeoutExpired as err:
            process.kill()
            process.communicate()
            raise ticket_failure(
                "kinit_timed_out",
                request.principal,
                "kinit is still waiting",
                timeout=request.timeout,
            ) from err
        if process.returncode != 0:
            output = (stderr or stdout).decode("utf-8", "replace").strip()
            raise describe_failure(
                request.principal, f"kinit exit code {process.returncode}: {output}", secrets_
            )


class Krb5Backend:
    """Obtains tickets in-process with the ``krb5`` Python library (python-gssapi's sibling)."""

    kind = "krb5"

    def __init__(self, module: t.Any) -> None:
        self._krb5 = module

    def obtain(self, request: KinitRequest, ccache_path: str) -> None:
        krb5 = self._krb5
        try:
            context = krb5.init_context()
            principal = krb5.parse_name_flags(context, request.principal.encode("utf-8"))
            options = krb5.get_init_creds_opt_alloc(context)
            krb5.get_init_creds_opt_set_forwardable(options, request.forwardable)
            credentials = krb5.get_init_creds_password(
                context, principal, options, password=request.password.encode("utf-8")
            )
            ccache = krb5.cc_resolve(context, f"FILE:{ccache_path}".encode())
            krb5.cc_initialize(context, ccache, principal)
            krb5.cc_store_cred(context, ccache, credentials)
        except krb5.Krb5Error as err:
            # The message already carries the library's text; chaining would repeat it
            # (ansible-core 2.19 appends the cause's message).
            raise describe_failure(request.principal, str(err), [request.password]) from None


def default_backend(request: KinitRequest) -> TicketBackend:
    """In-process when possible; kinit when the krb5 library is missing or the user configured
    kinit explicitly (a kinit_cmd other than ``kinit`` or kinit_args)."""
    module = _krb5_module()
    if module is not None and request.kinit_cmd == "kinit" and request.kinit_args is None:
        return Krb5Backend(module)
    return KinitBackend()


# --- the run's ticket store --------------------------------------------------------------------
def run_owner() -> int:
    """The process whose lifetime is the run: an Ansible worker's parent, else ourselves.

    Not kept._place.run_owner: a kept session's holder (forked twice from a worker) asks too,
    and its parent process is init, where multiprocessing still knows ansible-playbook."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid else os.getpid()


# kept._place.run_ended, written out: the watcher runs in a bare interpreter, which has no
# collection loader to import it with.
_WATCHER = """
import os, shutil, sys, time
directory, pid, start = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def alive():
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    if not start:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            now = handle.read().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return True
    return now == start
while os.path.isdir(directory) and alive():
    time.sleep(1)
shutil.rmtree(directory, ignore_errors=True)
"""


def _private_directory(path: str) -> None:
    """Create ``path`` 0700 or accept it only when it is ours, a real directory and private."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ticket_failure(
            "ticket_store_unsafe",
            "",
            f"found mode {stat.S_IMODE(info.st_mode):o}, owner {info.st_uid}",
            path=path,
            uid=os.getuid(),
        )


class TicketStore:
    """Tickets shared by the tasks of one run, one FILE ccache per request key."""

    def __init__(
        self,
        base_dir: str | None = None,
        *,
        owner: int | None = None,
        margin: float = REFRESH_MARGIN,
        clock: t.Callable[[], float] = time.time,
        watch: bool = True,
    ) -> None:
        self.base_dir = base_dir or os.path.join(
            tempfile.gettempdir(), f"winops-krb5-{os.getuid()}"
        )
        self._owner = owner
        self.margin = margin
        self._clock = clock
        self._watch = watch

    def run_directory(self) -> str:
        """This run's directory (created, with its watcher, on first use)."""
        _private_directory(self.base_dir)
        pid = self._owner or run_owner()
        start = _place.start_time(pid)
        path = os.path.join(self.base_dir, _place.run_name(pid, start))
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            _private_directory(path)
            return path
        self.sweep()
        if self._watch:
            # Without a watcher (no usable interpreter) the next run's sweep removes the
            # directory instead; the ticket is not worth failing the connection for.
            with contextlib.suppress(OSError):
                subprocess.Popen(
                    [sys.executable, "-c", _WATCHER, path, str(pid), start],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    env={"PATH": os.environ.get("PATH", os.defpath)},
                    start_new_session=True,
                    close_fds=True,
                )
        return path

    def sweep(self) -> list[str]:
        """Delete the directories of runs whose process has ended; returns what was removed."""
        removed = []
        for entry in os.listdir(self.base_dir):
            run = _place.parse_run_name(entry)
            if run is not None and _place.run_ended(*run):
                shutil.rmtree(os.path.join(self.base_dir, entry), ignore_errors=True)
                removed.append(entry)
        return removed

    @staticmethod
    def key(request: KinitRequest, backend: TicketBackend) -> str:
        """What makes two requests share a ticket; hashed, so file names reveal nothing."""
        material = [
            request.principal,
            request.forwardable,
            backend.kind,
            request.kinit_cmd,
            request.kinit_args,
            sorted(request.env_vars.items()),
            os.environ.get("KRB5_CONFIG", ""),
        ]
        return hashlib.sha256(json.dumps(material).encode("utf-8")).hexdigest()[:40]

    def usable(self, path: str, principal: str) -> bool:
        """Whether the ccache holds ``principal``'s TGT valid beyond the refresh margin."""
        summary = read_ccache(path)
        tgt = summary.tgt() if summary else None
        if summary is None or tgt is None:
            return False
        if "@" in principal:
            same = summary.principal.lower() == principal.lower()
        else:
            same = summary.principal.rpartition("@")[0].lower() == principal.lower()
        now = self._clock()
        margin = min(self.margin, max(tgt.endtime - tgt.starttime, 0) / 2)
        return same and tgt.starttime <= now + 60 and tgt.endtime - now > margin

    def acquire(self, request: KinitRequest, backend: TicketBackend) -> CredentialCache:
        directory = self.run_directory()
        key = self.key(request, backend)
        path = os.path.join(directory, f"{key}.ccache")
        lock_fd = os.open(os.path.join(directory, f"{key}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Workers of the same run wait here; the first gets the ticket, the others reuse it.
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if not self.usable(path, request.principal):
                fresh = os.path.join(directory, f"{key}.{secrets.token_hex(8)}.new")
                try:
                    backend.obtain(request, fresh)
                    os.chmod(fresh, 0o600)
                    os.replace(fresh, path)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(fresh)
        finally:
            os.close(lock_fd)
        return CredentialCache(path, shared=True)


@functools.cache
def ticket_store() -> TicketStore:
    """The process's store (one per process; forked workers share its base directory)."""
    return TicketStore()


def acquire_ticket(
    request: KinitRequest,
    backend: TicketBackend | None = None,
    store: TicketStore | None = None,
) -> CredentialCache:
    """A cache holding a ticket-granting ticket for ``request.principal``.

    With ``request.reuse`` (the default) the run's store answers: the same valid ticket for
    every task of the run, a new one only when it is missing or about to expire. Otherwise a
    new private cache is filled. Raises KerberosError with the reason and the fix. Callers
    call ``remove()`` when their connection closes.
    """
    chosen = backend or default_backend(request)
    if request.reuse:
        return (store or ticket_store()).acquire(request, chosen)
    cache = CredentialCache()
    try:
        chosen.obtain(request, cache.path)
    except BaseException:
        cache.remove()
        raise
    return cache


@contextlib.contextmanager
def ccache_environment(cache: CredentialCache | None) -> t.Iterator[None]:
    """Point KRB5CCNAME at ``cache`` for the duration of the block, then restore it.

    With ``cache`` None (kinit_mode manual, or no Kerberos) the environment is left alone.
    """
    if cache is None:
        yield
        return
    previous = os.environ.get("KRB5CCNAME")
    os.environ["KRB5CCNAME"] = cache.name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KRB5CCNAME", None)
        else:
            os.environ["KRB5CCNAME"] = previous
