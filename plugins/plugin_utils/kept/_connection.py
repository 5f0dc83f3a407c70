"""The connection lifecycle both plugins share: their session lives in a SessionSlot.

Internal use only: this module is not part of the collection's public API.
"""

from __future__ import annotations

import abc
import os
import typing as t

from ansible.errors import AnsibleFileNotFound
from ansible.plugins.connection import ConnectionBase

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.kept._slot import (
    SessionSlot,
    session_slot,
)

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
        OptionSource,
    )


class KeptSessionConnection(ConnectionBase):
    """``_connect``, ``reset`` and ``close`` over a SessionSlot (kept._slot): a task calls its
    session's operations with ``_call``, whether the session is its own or kept."""

    # The session methods a task may call, here or in the holder that keeps the session.
    session_operations: tuple[str, ...] = ()
    # What this task's end asks a kept session to start ahead for the next module task (the
    # arguments of the session's start_ahead; session_start_ahead), set when a module ran.
    _next_module_ahead: tuple[t.Any, ...] | None = None

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._slot: SessionSlot | None = None
        # The options as Ansible set them for the task, before an action plugin changed any.
        self._task_options: dict[str, t.Any] | None = None
        super().__init__(*args, **kwargs)

    def set_options(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().set_options(*args, **kwargs)
        self._task_options = dict(self._options)

    def _changed_by_action(self) -> list[str]:
        """The options an action plugin changed for its own task (set_option after Ansible set
        the task's options), such as win_reboot's connection_timeout while it waits."""
        if self._task_options is None:
            return []
        names = set(self._options) | set(self._task_options)
        return sorted(n for n in names if self._options.get(n) != self._task_options.get(n))

    @abc.abstractmethod
    def _option_source(self) -> OptionSource:
        """The plugin's options as the readers see them."""

    @abc.abstractmethod
    def _open_own_session(self) -> t.Any:
        """Open a session in this process (importing the library only now)."""

    @abc.abstractmethod
    def _session_log(self, message: str) -> None:
        """Show a line about the session's lifecycle at -vvv."""

    def _new_slot(self) -> SessionSlot:
        # No later task is given options an action plugin changed (win_reboot does not even
        # change connection_timeout back when the inventory left it unset): a session kept for
        # them would only hold a holder and a shell or pool on the host until the run ends.
        changed = self._changed_by_action()
        return session_slot(
            self.transport,
            self._option_source(),
            self._open_own_session,
            self.session_operations,
            log=self._session_log,
            task_only=f"the task's action changed {', '.join(changed)}" if changed else None,
        )

    def _connect(self) -> t.Self:
        super()._connect()
        if self._slot is None:
            self._slot = self._new_slot()
        self._slot.open()
        self._connected = True
        return self

    def reset(self) -> None:
        # Also where ansible-playbook itself runs `meta: reset_connection`, on a connection
        # that never connected: the session a task kept for these options ends either way.
        slot = self._slot
        if slot is None:
            try:
                slot = self._new_slot()
            except OptionError:
                # No task keeps a session for options that do not validate, so there is none
                # to end; the tasks themselves fail on them. Raised here, in ansible-playbook,
                # it would end the whole run (the builtin plugins' reset does nothing here).
                slot = None
        if slot is not None:
            slot.end()
        self._slot = None
        if self._connected:
            self._connected = False
            self._connect()

    def close(self) -> None:
        slot, self._slot = self._slot, None
        ahead, self._next_module_ahead = self._next_module_ahead, None
        if slot is not None:
            # The task has ended: a kept session starts the next module task's work now, while
            # the controller prepares that task (a bad option value failed the task already).
            if ahead is not None and self.get_option("session_start_ahead") is not False:
                slot.tell_kept("start_ahead", *ahead)
            slot.close()
        self._connected = False

    @staticmethod
    def _check_put_source(in_path: str) -> None:
        """Refuse a put whose local file is missing before any traffic, in the builtin
        plugins' words (they check that the path exists, as this does)."""
        if not os.path.exists(in_path):
            raise AnsibleFileNotFound(f'file or module does not exist: "{in_path}"')

    @property
    def _host_idle_timeout(self) -> int | None:
        """What a session opened now asks the host for as its idle timeout (SessionSlot's
        ``host_idle_timeout``), None outside a slot."""
        return None if self._slot is None else self._slot.host_idle_timeout

    def _call(self, operation: str, *args: t.Any) -> t.Any:
        if self._slot is None:
            self._connect()
        if self._slot is None:
            raise RuntimeError("internal error: self._slot is not set")
        return self._slot.call(operation, *args)
