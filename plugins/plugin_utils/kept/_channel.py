"""Messages between a task's worker and the process that keeps its session.

Internal use only: this module is not part of the collection's public API.

One request and one answer per connection on a Unix socket. A message is pickled: both ends
are the same code run by the same user, and each end checks the other's user through the
socket's peer credentials before it reads anything, so no other user can send or receive one.
(Unpickling can run code, which a process of the same user can do anyway.)
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
import typing as t

_LENGTH = struct.Struct("!Q")
# A message this large is not one of ours: a command's whole output travels in one answer, so
# the bound is generous, but it stops a confused peer from making us allocate without limit.
MAX_MESSAGE = 4 * 1024 * 1024 * 1024


class ChannelError(Exception):
    """The other end went away, sent garbage, or is not this user."""


def check_peer(sock: socket.socket) -> None:
    """Refuse a peer that runs as another user (Linux SO_PEERCRED).

    Where the platform has no SO_PEERCRED, the 0700 run directory alone keeps others out.
    """
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return
    credentials = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", credentials)
    if uid != os.getuid():
        raise ChannelError(f"the peer runs as uid {uid}, not as this user ({os.getuid()})")


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1024 * 1024))
        if not chunk:
            raise ChannelError("the other end closed the connection mid-message")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def send(sock: socket.socket, message: t.Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(_LENGTH.pack(len(data)) + data)


def receive(sock: socket.socket) -> t.Any:
    header = sock.recv(_LENGTH.size, socket.MSG_WAITALL)
    if not header:
        raise ChannelError("the other end closed the connection without a message")
    if len(header) != _LENGTH.size:
        header += _receive_exactly(sock, _LENGTH.size - len(header))
    (length,) = _LENGTH.unpack(header)
    if length > MAX_MESSAGE:
        raise ChannelError(f"a message of {length} bytes is not one of ours")
    try:
        return pickle.loads(_receive_exactly(sock, length))
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
        raise ChannelError(f"an unreadable message ({type(err).__name__})") from None
