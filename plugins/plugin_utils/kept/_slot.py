"""The one session a task uses, kept for later tasks or its own: both plugins' lifecycle.

Internal use only: this module is not part of the collection's public API.

In a task's worker, with ``session_persist`` on (the default), the first task for a host, user
and set of connection options opens the session and hands it to a holder process
(kept._holder); later tasks of the same ansible-playbook run call it there. Anywhere else
(ansible-playbook's own process, a test calling the plugin) and with persistence off, the
task opens and closes a session of its own, as the builtin plugins do.
"""

from __future__ import annotations

import collections.abc as c
import os
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _key, _place
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._client import (
    KeptSession,
    KeptSessionBusy,
    KeptSessionGone,
    KeptSessionStale,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    OptionSource,
)

# A kept shell or pool asks the host to delete it after this many seconds without a request
# beyond session_idle_timeout, so one its holder could not close (the holder was killed, say by
# a container's end) does not hold a place in the user's shell quota for the host's default two
# hours. The margin covers a holder that is slow to notice its idle time is over: its own idle
# time always covers the host's, since the holder's last request comes after its idle time
# starts. Windows takes a client's IdleTimeOut below its own (pypsrp's recordings
# test_winrs_extra_opts.yml and test_psrp_is_alive_*.yml: PT60S asked, PT60.000S answered).
HOST_IDLE_MARGIN = 60
# PowerShell refuses an idle timeout under a minute (New-PSSessionOption -IdleTimeout).
HOST_IDLE_MINIMUM = 60
# Above the hosts' own default (Shell IdleTimeout and the PowerShell session configuration's
# IdleTimeoutMs, 7200000 ms) asking could only lengthen it, so nothing is asked.
HOST_IDLE_DEFAULT = 7200


class SessionSlot:
    """Holds the task's session. ``open_session()`` opens a session object whose methods named
    in ``operations`` a task calls, whose ``settle()`` releases a finished command on the host
    (a holder calls it between tasks) and whose ``close()`` ends it on the host."""

    def __init__(
        self,
        plugin: str,
        options: c.Mapping[str, t.Any],
        open_session: c.Callable[[], t.Any],
        operations: c.Collection[str],
        log: c.Callable[[str], None],
        *,
        persist: bool,
        idle_timeout: float,
        max_kept: int,
        task_only: str | None = None,
    ) -> None:
        """``task_only``: why a session these options open serves this task alone, though
        persistence is on (no later task asks for these options)."""
        self._open_session = open_session
        self._operations = frozenset(operations)
        self._log = log
        self._idle_timeout = idle_timeout
        self._max_kept = max_kept
        self._wanted = persist
        self._task_only = task_only
        self._persist = persist and task_only is None and _place.in_ansible_worker()
        self._key = _key.session_key(plugin, options)
        self._secrets_digest = _key.secrets_digest(options)
        self._owner = _place.run_owner()
        self._session: t.Any = None

    @property
    def may_keep(self) -> bool:
        """Whether a session this slot opens may be kept for later tasks (persistence is on,
        in an Ansible worker), so that its opener can prepare it for what a kept one does."""
        return self._persist

    @property
    def host_idle_timeout(self) -> int | None:
        """Seconds the host is asked to keep a session this slot opens while no request comes
        (the shell's or pool's rsp:IdleTimeOut), or None to leave the host's own: only asked
        for a session that may be kept, and only when shorter than the host's default."""
        if not self._persist:
            return None
        seconds = max(HOST_IDLE_MINIMUM, int(self._idle_timeout) + HOST_IDLE_MARGIN)
        return seconds if seconds < HOST_IDLE_DEFAULT else None

    @property
    def session(self) -> t.Any:
        """The session in use: the task's own, a KeptSession, or None before ``open()``."""
        return self._session

    def _kept_path(self, create: bool) -> str | None:
        """The socket path of this run's kept session for these options (None: not possible)."""
        try:
            directory = _place.run_dir(self._owner, create=create)
        except _place.PlaceError as err:
            self._log(f"sessions are not kept: {err}")
            return None
        return None if directory is None else _key.socket_path(directory, self._key)

    def open(self) -> None:
        """Find this run's kept session, or open one (and keep it when persistence is on)."""
        if self._session is not None:
            return
        path = self._kept_path(create=True) if self._persist else None
        if path is not None and os.path.exists(path):
            self._session = KeptSession(path, self._secrets_digest)
            return
        self._open_new(path)

    def _open_new(self, path: str | None) -> None:
        session = self._open_session()
        if self._task_only is not None:
            self._log(f"NEW SESSION, used by this task only ({self._task_only})")
        if path is None:
            self._session = session
            return
        kept = self._kept_at_limit(path)
        if kept is not None:
            self._log(
                "NEW SESSION, used by this task only (it could not be kept: this run keeps "
                f"{kept} sessions already, session_max_kept is {self._max_kept})"
            )
            self._session = session
            return
        # Imported here: a task that finds its session kept never starts a holder.
        from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _holder

        try:
            holder = _holder.start(
                session,
                self._operations,
                path=path,
                owner=self._owner,
                idle_timeout=self._idle_timeout,
                secrets_digest=self._secrets_digest,
            )
        except _holder.NotKept as reason:
            self._log(f"NEW SESSION, used by this task only (it could not be kept: {reason})")
            self._session = session
            return
        # The holder owns the session now: dropped here without a word to the host.
        self._log(f"NEW SESSION, kept for the rest of the run by process {holder.pid}")
        self._session = KeptSession(holder.path, self._secrets_digest, holder.pid)

    def _kept_at_limit(self, path: str) -> int | None:
        """How many sessions the run keeps, when that is session_max_kept or more (each holder
        is a process with memory of its own, docs/sessions.md); None below the limit."""
        kept = _key.sessions_kept(os.path.dirname(path))
        return kept if kept >= self._max_kept else None

    def call(self, operation: str, *args: t.Any, reopen: bool = True) -> t.Any:
        """Run one of the session's operations, in the holder when the session is kept."""
        self.open()
        session = self._session
        if not isinstance(session, KeptSession):
            return getattr(session, operation)(*args)
        fresh = session.holder is not None
        try:
            result = session.call(operation, *args)
        except KeptSessionBusy as busy:
            # Another task's operation runs there: this task does not wait its turn, it opens
            # a session of its own as the builtin plugins do, and closes it at its end.
            self._log(f"NEW SESSION, used by this task only (the kept session is busy: {busy})")
            self._session = self._open_session()
            return getattr(self._session, operation)(*args)
        except KeptSessionGone as gone:
            if not reopen:
                raise AnsibleConnectionFailure(
                    f"the session kept for this host ended before {operation} ({gone})"
                ) from None
            # Nothing reached the host: open a new session and ask it instead.
            self._log(f"the kept session is gone ({gone}); opening a new one")
            if isinstance(gone, KeptSessionStale) and session.end():
                # Kept with the old credentials: of no use to later tasks, which keep ours.
                self._log(f"ENDED THE KEPT SESSION (process {session.holder}): {gone}")
            self._session = None
            self._open_new(self._kept_path(create=True))
            return self.call(operation, *args, reopen=False)
        if not fresh:
            self._log(f"KEPT SESSION, opened by an earlier task, kept by process {session.holder}")
        return result

    def tell_kept(self, operation: str, *args: t.Any) -> None:
        """Tell the holder to ``operation`` when this task's session is kept, and nothing
        otherwise: never opens a session, and waits for neither the operation nor its answer
        (KeptSession.tell): it is a hint for the next task, not work this task needs done.
        A holder that is busy then drops it; one that is gone is left alone."""
        session = self._session
        if not isinstance(session, KeptSession):
            return
        try:
            session.tell(operation, *args)
        except KeptSessionGone as err:
            self._log(f"the kept session was not told to {operation}: {err}")

    def close(self) -> None:
        """End of the task: close a session of our own; a kept one stays for the next task."""
        session, self._session = self._session, None
        if session is not None and not isinstance(session, KeptSession):
            session.close()

    def describe(self) -> str:
        """Whether tasks with these settings use a kept session, for the doctor's report."""
        if not self._persist:
            reason = "session_persist is off" if not self._wanted else "outside an Ansible task"
            return f"not kept ({self._task_only or reason}): each task opens and closes its own session"
        path = self._kept_path(create=False)
        if path is not None and os.path.exists(path):
            kept = KeptSession(path, self._secrets_digest)
            try:
                kept.call("hello")
            except KeptSessionStale:
                return (
                    f"kept with other credentials by process {kept.holder}: the next task ends "
                    "that session and keeps its own"
                )
            except KeptSessionGone:
                pass
            except KeptSessionBusy:
                return (
                    f"kept: process {kept.holder} keeps a session with these settings for this "
                    "run and is running a task now (a task that comes meanwhile opens its own)"
                )
            else:
                return (
                    f"kept: process {kept.holder} keeps a session with these settings for this "
                    "run, and the next task uses it (the doctor's own checks open a new one)"
                )
        kept_now = None if path is None else self._kept_at_limit(path)
        if kept_now is not None:
            return (
                f"not kept: this run keeps {kept_now} sessions already (session_max_kept is "
                f"{self._max_kept}), so each task opens and closes its own session"
            )
        return "none kept yet: the next task opens a session and keeps it for this run"

    def end(self) -> None:
        """``reset()``: end the kept session too, so that the next task opens a fresh one."""
        session = self._session
        kept = session if isinstance(session, KeptSession) else None
        if kept is None:
            path = self._kept_path(create=False)
            if path is not None and os.path.exists(path):
                kept = KeptSession(path, self._secrets_digest)
        if kept is not None and kept.end():
            self._log(f"ENDED THE KEPT SESSION (process {kept.holder})")
        self._session = None if kept is session else self._session
        self.close()


def session_slot(
    plugin: str,
    source: OptionSource,
    open_session: c.Callable[[], t.Any],
    operations: c.Collection[str],
    log: c.Callable[[str], None],
    *,
    task_only: str | None = None,
) -> SessionSlot:
    """The slot for a plugin's current options, with session_persist, session_idle_timeout and
    session_max_kept read and checked (an error names the variable that set the bad value);
    ``task_only`` as for SessionSlot."""
    value, label = source.read("session_persist")
    persist = _validation.boolean(label, value)
    value, label = source.read("session_idle_timeout")
    idle = _validation.integer(label, value, minimum=1)
    value, label = source.read("session_max_kept")
    max_kept = _validation.integer(label, value, minimum=1)
    return SessionSlot(
        plugin,
        source.values(),
        open_session,
        operations,
        log,
        persist=persist,
        idle_timeout=float(idle),
        max_kept=max_kept,
        task_only=task_only,
    )
