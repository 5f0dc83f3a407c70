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
import typing as t


def connection_lost(http: t.Any) -> bool:
    """True when ``http`` (a requests.Session, or None) has talked to a host and none of its
    pooled connections is still open: the next request would go out on a new one."""
    if http is None:
        return False
    used = False
    for adapter in list(getattr(http, "adapters", {}).values()):
        pools = getattr(getattr(adapter, "poolmanager", None), "pools", None)
        if pools is None:
            continue
        for key in list(pools.keys()):
            used = True
            pool = pools.get(key)
            for connection in list(getattr(getattr(pool, "pool", None), "queue", ()) or ()):
                if connection is not None and connection.is_connected:
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
