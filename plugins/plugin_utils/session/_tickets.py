"""The sessions' door to the Kerberos room, opened only when managed Kerberos is in use.

Internal use only: this module is not part of the collection's public API.

Ansible compiles our Python afresh in every task's worker, and most connections never run
kinit: the ticket machinery (``kerberos/``) is imported on the first ticket request, not when
a session module is loaded.
"""

from __future__ import annotations

import contextlib
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


def ticket_environment(cache: CredentialCache | None) -> t.ContextManager[None]:
    """KRB5CCNAME pointing at ``cache`` for a block; the environment untouched without one."""
    if cache is None:
        return contextlib.nullcontext()
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos import _kerberos

    return _kerberos.ccache_environment(cache)
