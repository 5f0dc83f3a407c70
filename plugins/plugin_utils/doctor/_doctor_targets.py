"""Doctor targets from the validated settings of either connection plugin.

Internal use only: this module is not part of the collection's public API.

The settings come from the plugins' own option readers (``_winrm_options.build_settings``,
``_psrp_options.read_settings``), so the doctor sees a host exactly as the plugin would: the
same endpoint, authentication, CA bundle and encryption. The authenticated check opens the
plugin's own session class once, without retries, and closes it again.
"""

from __future__ import annotations

import dataclasses
import os

from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import Target
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import KinitRequest
from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
    PsrpSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
    WinRMSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._retry import RetryPolicy

# The network checks need no more than this to tell a dead port from a live one.
MAX_CHECK_TIMEOUT = 15.0


def winrm_target(settings: WinRMSettings) -> Target:
    """The target for winops.remoting.winrm; only the first configured transport is checked."""
    transport = settings.transports[0]
    single = dataclasses.replace(settings, transports=(transport,), reconnection_retries=0)
    kwargs = settings.protocol_kwargs

    def open_session() -> None:
        from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_session import (
            WinRMSession,
        )

        session = WinRMSession(single, log=lambda level, message: None, warn=lambda message: None)
        session.open()
        session.close()

    kerberos = settings.kerberos
    kinit = None
    if kerberos.managed:
        kinit = KinitRequest(
            principal=kerberos.principal or "",
            password=kwargs.get("password") or "",
            kinit_cmd=kerberos.kinit_cmd,
            kinit_args=kerberos.kinit_args,
            env_vars={n: os.environ[n] for n in kerberos.env_var_names if n in os.environ},
            forwardable=kerberos.forwardable,
        )
    return Target(
        plugin="winrm",
        endpoint=settings.endpoint,
        transport=transport,
        user=kwargs.get("username"),
        cert_validation=kwargs.get("server_cert_validation", "validate") == "validate",
        ca_path=kwargs.get("ca_trust_path"),
        message_encryption=str(kwargs.get("message_encryption", "auto")),
        timeout=min(float(kwargs.get("read_timeout_sec") or MAX_CHECK_TIMEOUT), MAX_CHECK_TIMEOUT),
        open_session=open_session,
        kerberos_realm=kwargs.get("realm"),
        kerberos_hostname_override=kwargs.get("kerberos_hostname_override"),
        kinit=kinit,
    )


def psrp_target(settings: PsrpSettings) -> Target:
    """The target for winops.remoting.psrp."""
    wsman = settings.wsman_kwargs
    single = dataclasses.replace(
        settings,
        retry_policy=RetryPolicy(retries=0),
        wsman_kwargs={**wsman, "reconnection_retries": 0},
    )

    def open_session() -> None:
        from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_session import (
            PsrpSession,
        )

        session = PsrpSession(single)
        session.open()
        session.close()

    validation = wsman.get("cert_validation", True)
    return Target(
        plugin="psrp",
        endpoint=settings.endpoint,
        transport=settings.auth,
        user=settings.user,
        cert_validation=validation is not False,
        ca_path=validation if isinstance(validation, str) else None,
        message_encryption=str(wsman.get("encryption", "auto")),
        timeout=min(float(wsman.get("connection_timeout") or MAX_CHECK_TIMEOUT), MAX_CHECK_TIMEOUT),
        open_session=open_session,
        kerberos_realm=None,
        kerberos_hostname_override=wsman.get("negotiate_hostname_override"),
        kinit=settings.kinit,
    )
