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
