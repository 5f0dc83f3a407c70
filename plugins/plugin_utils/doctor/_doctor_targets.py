"""Doctor targets from the validated settings of either connection plugin.

Internal use only: this module is not part of the collection's public API.

The settings come from the plugins' own option readers (``_winrm_options.build_settings``,
``_psrp_options.read_settings``), so the doctor sees a host exactly as the plugin would: the
same endpoint, authentication, CA bundle and encryption. The authenticated check opens the
plugin's own session class once, without retries, and closes it again.
"""

from __future__ import annotations

import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import replace
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import Target
from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
    PsrpSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    ConnectionSettings,
    RetryPolicy,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
    WinRMSettings,
)

# The network checks need no more than this to tell a dead port from a live one.
MAX_CHECK_TIMEOUT = 15.0


def _target(
    settings: ConnectionSettings,
    timeout: float,
    open_session: t.Callable[[], None],
    delegation: bool,
) -> Target:
    return Target(
        plugin=settings.plugin,
        endpoint=settings.endpoint,
        transport=settings.auth_method(settings.auth),
        user=settings.user,
        cert_validation=settings.cert_validation,
        ca_path=settings.ca_path,
        message_encryption=settings.message_encryption,
        timeout=min(float(timeout or MAX_CHECK_TIMEOUT), MAX_CHECK_TIMEOUT),
        open_session=open_session,
        kerberos_realm=settings.kerberos_realm,
        kerberos_service=settings.kerberos_service,
        kerberos_hostname_override=settings.kerberos_hostname_override,
        kinit=settings.kinit,
        kerberos_delegation=delegation,
    )


def winrm_target(settings: WinRMSettings) -> Target:
    """The target for winops.remoting.winrm; only the first configured transport is checked."""
    single = replace(settings, transports=(settings.auth,), retry_policy=RetryPolicy(retries=0))

    def open_session() -> None:
        from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
            WinRMSession,
        )

        session = WinRMSession(single, log=lambda level, message: None, warn=lambda message: None)
        session.open()
        session.close()

    delegation = bool(settings.protocol_kwargs.get("kerberos_delegation"))
    return _target(settings, settings.read_timeout, open_session, delegation)


def psrp_target(settings: PsrpSettings) -> Target:
    """The target for winops.remoting.psrp."""
    single = replace(
        settings,
        retry_policy=RetryPolicy(retries=0),
        wsman_kwargs={**settings.wsman_kwargs, "reconnection_retries": 0},
    )

    def open_session() -> None:
        from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
            PsrpSession,
        )

        session = PsrpSession(single)
        session.open()
        session.close()

    delegation = bool(settings.wsman_kwargs.get("negotiate_delegate"))
    return _target(settings, settings.wsman_kwargs["connection_timeout"], open_session, delegation)
