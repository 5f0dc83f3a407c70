"""Whether an HTTP session's kept-alive connection to the host is still open.

Internal use only: this module is not part of the collection's public API.

NTLM, Kerberos and CredSSP authenticate a TCP connection, not a request, and with message
encryption the keys belong to that connection's security context. When the host closes an
idle connection (HTTP.sys does after its idle connection timeout, a WinRM restart or a reboot
closes them all), requests opens a new one on the next request, and pywinrm and pypsrp would
send on it a message sealed with the old keys, which the host cannot decrypt. A session that
has lost its connection therefore starts again from authentication.
"""

from __future__ import annotations

import collections.abc as c
import socket
import typing as t

# TCP keepalive on every connection to the host: the first probe after this many seconds
# without traffic, then one every KEEPALIVE_INTERVAL, and the connection counts as dead after
# KEEPALIVE_PROBES unanswered ones.
KEEPALIVE_IDLE = 30
KEEPALIVE_INTERVAL = 10
KEEPALIVE_PROBES = 3


def _connection_pools(http: t.Any) -> c.Iterator[t.Any]:
    """The urllib3 connection pools of ``http`` (a requests.Session, or None): one per host it
    has talked to."""
    if http is None:
        return
    for adapter in list(getattr(http, "adapters", {}).values()):
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            yield pools.get(key)


def _pooled_connections(pool: t.Any) -> list[t.Any]:
    """The connections waiting in ``pool`` for the next request."""
    queued = list(getattr(getattr(pool, "pool", None), "queue", ()) or ())
    return [connection for connection in queued if connection is not None]


def connection_lost(http: t.Any) -> bool:
    """True when ``http`` (a requests.Session, or None) has talked to a host and none of its
    pooled connections is still open: the next request would go out on a new one."""
    used = False
    for pool in _connection_pools(http):
        used = True
        if any(connection.is_connected for connection in _pooled_connections(pool)):
            return False
    return used


def environment_read_once(build: c.Callable[[], t.Any]) -> c.Callable[[], t.Any]:
    """``build`` (pywinrm's or pypsrp's builder of its requests.Session), with the built
    session told not to read the environment again.

    Both libraries read the proxy and CA bundle variables when they build the session, for
    the one endpoint it talks to. With ``trust_env`` left on, requests reads the proxy
    variables again for every request (all of os.environ, three times) and finds the same
    answer: about a fifth of a kept session's CPU per task. Off, it also never adds
    ``~/.netrc`` credentials to a request that has no authentication of its own (certificate
    authentication), where they would replace the certificate's Authorization header.
    """

    def build_reading_the_environment_once() -> t.Any:
        http = build()
        http.trust_env = False
        return http

    return build_reading_the_environment_once


def keepalive_socket_options() -> list[tuple[int, int, int]]:
    """TCP keepalive switched on, with its timing where the platform lets a socket set it
    (Linux: TCP_KEEPIDLE, macOS: TCP_KEEPALIVE for the idle time; TCP_KEEPINTVL and
    TCP_KEEPCNT on both)."""
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    idle = getattr(socket, "TCP_KEEPIDLE", None) or getattr(socket, "TCP_KEEPALIVE", None)
    for option, value in (
        (idle, KEEPALIVE_IDLE),
        (getattr(socket, "TCP_KEEPINTVL", None), KEEPALIVE_INTERVAL),
        (getattr(socket, "TCP_KEEPCNT", None), KEEPALIVE_PROBES),
    ):
        if option is not None:
            options.append((socket.IPPROTO_TCP, option, value))
    return options


def probe_idle_connections(http: t.Any) -> None:
    """Switch TCP keepalive on for every pooled connection of ``http`` (a requests.Session, or
    None) that does not have it yet.

    A kept connection can die without a packet: the host is reset or fails over, or a NAT or
    firewall between forgets an idle flow. Nothing tells the controller, so the next task's
    first request (a Command, which is never sent twice) would go out on a dead connection and
    fail the task, where a builtin plugin opens a new connection for every task. With probes
    the kernel finds the connection dead within about a minute of idleness; ``connection_lost``
    then sees it closed and the session logs on afresh on a new one. The probes also keep a
    middlebox's state of a live idle flow fresh.

    Set on the live sockets, before each request: urllib3's socket options are part of its pool
    key, so giving them to the pool manager after pywinrm authenticated while building its
    session would send the next request on a new connection with the old one's keys.
    """
    for pool in _connection_pools(http):
        for connection in _pooled_connections(pool):
            sock = getattr(connection, "sock", None)
            if sock is None or getattr(connection, "_winops_probed", None) is sock:
                continue
            for level, option, value in keepalive_socket_options():
                sock.setsockopt(level, option, value)
            connection._winops_probed = sock
