"""A task's handle on a session that a holder process keeps (see kept._holder).

Internal use only: this module is not part of the collection's public API.

Only the standard library and Ansible's Display are imported: a task that finds its session
kept never loads pywinrm or pypsrp.
"""

from __future__ import annotations

import socket
import typing as t

from ansible.errors import AnsibleConnectionFailure
from ansible.utils.display import Display

from ansible_collections.winops.remoting.plugins.plugin_utils.kept import _channel


def holder_ended(operation: str, reason: object) -> AnsibleConnectionFailure:
    """The task's failure when the holder ended during ``operation``: a failure of this host's
    connection, never anything that ends the task's worker."""
    return AnsibleConnectionFailure(
        f"the process that kept this host's session ended during {operation} ({reason}); "
        "whether the host did it is unknown, so it is not repeated"
    )


class KeptSessionGone(Exception):
    """No holder answered (none yet, it ended, or it keeps a session for other secrets).
    Nothing was sent to the host, so the caller may open a session of its own."""


class KeptSessionStale(KeptSessionGone):
    """The holder keeps a session opened with other credentials than the task's (the password
    was changed during the run, say): no later task can use it."""


class KeptSessionBusy(Exception):
    """The holder is running another task's operation (``delegate_to`` from many hosts to
    one). Nothing was sent to the host: the caller uses a session of its own for this task."""


class KeptSession:
    """Calls a kept session's operations as if the session object were here."""

    def __init__(self, path: str, secrets_digest: str, holder: int | None = None) -> None:
        self.path = path
        self.holder = holder
        self._secrets_digest = secrets_digest

    def _ask(self, connection: socket.socket, request: dict[str, t.Any]) -> None:
        try:
            connection.connect(self.path)
            _channel.check_peer(connection)
            _channel.send(connection, {**request, "secrets": self._secrets_digest})
        except (OSError, _channel.ChannelError) as err:
            raise KeptSessionGone(str(err)) from None

    def tell(self, operation: str, *args: t.Any) -> None:
        """Ask the holder for ``operation`` and go on without waiting for it or its answer,
        for what the task needs nothing back from (at its end, a hint for the next task).
        The holder performs it in turn, after the requests that came before it; what it
        displays comes with the next answer."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with connection:
            self._ask(connection, {"op": operation, "args": args, "answer": False})

    def call(self, operation: str, *args: t.Any) -> t.Any:
        """Run ``operation`` in the holder; raise what it raised, show what it displayed."""
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with connection:
            self._ask(connection, {"op": operation, "args": args})
            try:
                answer = _channel.receive(connection)
            except (OSError, _channel.ChannelError) as err:
                raise holder_ended(operation, err) from None
        _replay(answer.get("display", ()))
        self.holder = answer.get("holder", self.holder)
        status = answer.get("status")
        if status == "refused":
            raise KeptSessionStale("the kept session was opened with other credentials")
        if status == "gone":
            raise KeptSessionGone("the kept session ended before it took this request")
        if status == "busy":
            raise KeptSessionBusy(f"process {self.holder} is busy with another task")
        if status == "error":
            raise answer["value"]
        return answer.get("value")

    def end(self) -> bool:
        """Ask the holder to close the session on the host and exit; False if none answered."""
        try:
            self.call("end")
        except KeptSessionGone:
            return False
        return True


def _replay(records: t.Iterable[tuple[str, tuple[t.Any, ...], dict[str, t.Any]]]) -> None:
    """Show the holder's display messages in this task, through the worker's queue if any."""
    display = Display()
    queue = getattr(display, "_final_q", None)
    for method, args, kwargs in records:
        if queue:
            queue.send_display(method, *args, **kwargs)
        else:
            getattr(display, method)(*args, **kwargs)
