"""The sessions' door to the Kerberos room, opened only when managed Kerberos is in use.

Internal use only: this module is not part of the collection's public API.

Ansible compiles our Python afresh in every task's worker, and most connections never run
kinit: the ticket machinery (``kerberos/``) is imported on the first ticket request, not when
a session module is loaded.
"""

from __future__ import annotations

import contextlib
import time
import typing as t

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        CredentialCache,
    )
    from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
        KinitRequest,
    )


def acquire_ticket(request: KinitRequest) -> CredentialCache:
    """A ticket for ``request`` in a private (or the run's shared) credential cache."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import _kerberos

    return _kerberos.acquire_ticket(request)


def ticket_for_new_logon(
    request: KinitRequest | None,
    cache: CredentialCache | None,
    acquire: t.Callable[[KinitRequest], CredentialCache] = acquire_ticket,
) -> CredentialCache | None:
    """The cache a session logs on again with: the run's shared cache after the store has
    replaced a ticket that is about to expire (the same file); a private cache, or none
    (no managed kinit, or no ticket yet), as it is.

    A kept session may log on again hours after it opened (its ticket ends soon, or the host
    closed its connection), and a new logon needs a ticket that has not expired. The
    session's ticket came from the store when the session opened, and nothing else renews it
    when no other task needs one.
    """
    if request is None or cache is None or not cache.shared:
        return cache
    return acquire(request)


def ticket_environment(cache: CredentialCache | None) -> t.ContextManager[None]:
    """KRB5CCNAME pointing at ``cache`` for a block; the environment untouched without one."""
    if cache is None:
        return contextlib.nullcontext()
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import _kerberos

    return _kerberos.ccache_environment(cache)


# Log on again when the logon's ticket has less than this left (half its life for a shorter
# ticket): room for the longest request, which seals before it is sent and unseals the answer.
LOGON_MARGIN = 60.0


def read_ticket_times(cache: CredentialCache | None) -> tuple[int, int]:
    """(start, end) of the ticket-granting ticket a Kerberos logon made now would use: the one
    in ``cache``, else in the user's default cache as the Kerberos library resolves it
    (KRB5CCNAME, else krb5.conf's default_ccache_name, else /tmp/krb5cc_<uid>). Raises
    CcacheUnavailable saying why there is none to read."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import (
        _kerberos_ccache,
    )

    name = cache.name if cache is not None else _kerberos_ccache.default_ccache_name()
    summary = _kerberos_ccache.load_ccache(name)
    tgt = summary.tgt()
    if tgt is None:
        raise _kerberos_ccache.CcacheUnavailable(
            f"the ticket cache {name} holds no ticket-granting ticket of {summary.principal}"
        )
    return tgt.starttime, tgt.endtime


def ticket_times(cache: CredentialCache | None) -> tuple[int, int] | None:
    """``read_ticket_times``, or None when there is no ticket to read."""
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
        CcacheUnavailable,
    )

    try:
        return read_ticket_times(cache)
    except CcacheUnavailable:
        return None


class KerberosLogon:
    """Whether a session's Kerberos logon must be made again before its next request.

    An established Kerberos context seals and unseals messages only until its ticket ends
    (MIT's GSSAPI allows the clock skew past that, five minutes by default, then fails with
    "The referenced context has expired"), and a kept session can outlive its ticket. Before
    that happens the session logs on again, with the ticket the run's store renews (managed
    kinit) or a newer one the user's cache holds by then; with neither, logging on again
    would not help, and the session goes on until the host or the library refuses.
    """

    def __init__(self, clock: t.Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._cache: CredentialCache | None = None
        self._renewable = False
        self._times: tuple[int, int] | None = None

    def logging_on(
        self, cache: CredentialCache | None, request: KinitRequest | None, *, kerberos: bool
    ) -> str | None:
        """A logon is about to be made. A Kerberos one uses the ticket of ``cache`` (None: the
        user's cache), which the run's store renews when the session has a managed kinit
        ``request``; any other logon leaves nothing to watch. Returns, for the session's log,
        why a Kerberos logon's ticket cannot be watched (None when it can be, or no need)."""
        self._cache = cache
        self._renewable = request is not None
        self._times = None
        if not kerberos:
            return None
        from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
            CcacheUnavailable,
        )

        try:
            self._times = read_ticket_times(cache)
        except CcacheUnavailable as err:
            # The logon may still succeed (GSSAPI can find credentials elsewhere, a keytab
            # say), but its end is unknown: the session cannot log on again before it.
            return (
                f"the end of this Kerberos logon's ticket is unknown ({err}); the session will "
                "not log on again when the ticket is renewed or before it expires"
            )
        return None

    def due(self) -> bool:
        if self._times is None:
            return False
        start, end = self._times
        margin = min(LOGON_MARGIN, max(end - start, 0) / 2)
        if end - self._clock() > margin:
            return False
        if self._renewable:
            return True
        newer = ticket_times(self._cache)
        return newer is not None and newer[1] > end
