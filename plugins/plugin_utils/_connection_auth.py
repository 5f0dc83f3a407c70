# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a live WinRM/PSRP connection needs of the host's WinRM service.

Internal use only: this module is not part of the collection's public API.

The roles that change the service's authentication or encryption must not take away what the
play itself connects with. ``describe_connection`` answers, for the
connection a task runs on, which HTTP authentication scheme it sends, over HTTP or HTTPS,
which ``Service\\Auth`` settings accept that scheme (any one of them keeps the connection),
and whether it needs ``Service\\AllowUnencrypted``.

The scheme comes from what the connection really uses: for our plugins the settings their own
option code resolved (and, for winrm, the transport the open session settled on); for
ansible.builtin.winrm the pywinrm transport of its open protocol; for ansible.builtin.psrp its
``auth`` option. What each client library sends, and which service setting accepts it, is
recorded with its source in docs/winhost-behaviours.md ("Authentication schemes and guards").
"""

from __future__ import annotations

import dataclasses
import typing as t
import urllib.parse

from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import as_boolean
from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
    host_auth_method,
)

# Plugins whose connection does not go through the WinRM service at all.
_NOT_WINRM = frozenset(("ssh", "paramiko_ssh", "local"))
_WINRM_PLUGINS = ("winrm", "psrp")


class ConnectionAuthError(Exception):
    """The connection's authentication cannot be told (unknown plugin or transport)."""


@dataclasses.dataclass(frozen=True)
class ClientAuth:
    """How one client library value authenticates, and what the service must allow for it."""

    http_scheme: str  # Basic, Negotiate, CredSSP, Certificate
    # winrm_auth method names (Service\Auth\<Name>); any one of them accepts the scheme.
    service_auth: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ConnectionAuth:
    """What the connection a task runs on depends on."""

    plugin: str  # as in ansible_connection, e.g. ansible.builtin.winrm
    client_auth: str  # the pywinrm transport or pypsrp auth value in use
    http_scheme: str
    service_auth: tuple[str, ...]
    https: bool
    host: str
    port: int
    message_encryption: str  # auto, always, never (as the plugin spells it)
    # Whether an NTLM or Kerberos logon carries the TLS channel binding token (pywinrm send_cbt,
    # pypsrp negotiate_send_cbt; both on by default).
    sends_channel_binding: bool = True

    @property
    def needs_allow_unencrypted(self) -> bool:
        """Over HTTP, Basic (never encrypted) and a session with encryption switched off send
        clear SOAP bodies, which the service accepts only with AllowUnencrypted."""
        if self.https:
            return False
        return self.http_scheme == "Basic" or self.message_encryption == "never"

    @property
    def https_logons_refused_by_strict_cbt(self) -> bool:
        """Over HTTPS, CbtHardeningLevel=Strict denies every request without a channel binding
        token: a Negotiate logon (NTLM, Kerberos) whose client sends none is refused. Asked
        over HTTP as well, as a play moved to HTTPS (the setup playbook) keeps its settings."""
        return self.http_scheme == "Negotiate" and not self.sends_channel_binding

    def as_result(self) -> dict[str, t.Any]:
        return {
            "plugin": self.plugin,
            "client_auth": self.client_auth,
            "http_scheme": self.http_scheme,
            "service_auth": list(self.service_auth),
            "service_settings": [f"Service\\Auth\\{_SETTING[name]}" for name in self.service_auth],
            "https": self.https,
            # The listener the connection arrives on (by transport and port).
            "listener": {"transport": "HTTPS" if self.https else "HTTP", "port": self.port},
            "host": self.host,
            "port": self.port,
            "needs_allow_unencrypted": self.needs_allow_unencrypted,
            "sends_channel_binding": self.sends_channel_binding,
            "https_logons_refused_by_strict_cbt": self.https_logons_refused_by_strict_cbt,
        }


_SETTING = {
    "basic": "Basic",
    "kerberos": "Kerberos",
    "negotiate": "Negotiate",
    "certificate": "Certificate",
    "credssp": "CredSSP",
}
_BASIC = ClientAuth("Basic", ("basic",))
_CERTIFICATE = ClientAuth("Certificate", ("certificate",))
_CREDSSP = ClientAuth("CredSSP", ("credssp",))
_NEGOTIATE = ClientAuth("Negotiate", ("negotiate",))


def pywinrm_client_auth(transport: str, has_client_certificate: bool) -> ClientAuth:
    """What a pywinrm transport sends. Its kerberos transport sends the Negotiate scheme
    (a raw Kerberos token under ``Authorization: Negotiate``) and ntlm answers the Negotiate
    that Windows offers, so both need Service\\Auth\\Negotiate; ssl is Basic unless a client
    certificate is given, which makes it certificate authentication."""
    name = host_auth_method(transport.strip().lower(), has_client_certificate)
    if name == "basic":
        return _BASIC
    if name == "certificate":
        return _CERTIFICATE
    if name in ("ntlm", "kerberos"):
        return _NEGOTIATE
    if name == "credssp":
        return _CREDSSP
    raise ConnectionAuthError(f"pywinrm transport {transport!r} is not one this check knows")


def pypsrp_client_auth(auth: str) -> ClientAuth:
    """What a pypsrp auth value sends. pypsrp answers the first of Kerberos, Negotiate and
    NTLM that the host offers: auth=kerberos works under either scheme, so either setting
    keeps it; negotiate falls back to the Kerberos scheme only with a Kerberos ticket, and
    ntlm never does, so both are counted as needing Negotiate."""
    name = auth.strip().lower()
    if name == "basic":
        return _BASIC
    if name == "certificate":
        return _CERTIFICATE
    if name == "credssp":
        return _CREDSSP
    if name == "kerberos":
        return ClientAuth("Negotiate", ("negotiate", "kerberos"))
    if name in ("negotiate", "ntlm"):
        return _NEGOTIATE
    raise ConnectionAuthError(f"pypsrp auth {auth!r} is not one this check knows")


def plugin_name(connection: t.Any) -> str:
    """The connection's name as users write it (ansible_connection)."""
    load_name = str(getattr(connection, "_load_name", "") or "")
    if load_name.startswith("ansible_collections."):
        parts = load_name.split(".")
        return ".".join(parts[1:3] + parts[-1:])
    name = load_name or str(getattr(connection, "transport", "") or "")
    if "." not in name:
        return f"ansible.builtin.{name}"
    return name.replace("ansible.legacy.", "ansible.builtin.")


def depends_on_winrm(name: str) -> bool | None:
    """True for the WinRM/PSRP plugins this module reads, False for plugins that do not use
    the WinRM service (ssh, local...), None for anything else."""
    short = name.rsplit(".", 1)[-1]
    if name.startswith(("ansible.builtin.", "winops.remoting.")) and short in _WINRM_PLUGINS:
        return True
    if name.startswith("ansible.builtin.") and short in _NOT_WINRM:
        return False
    return None


def describe_connection(connection: t.Any) -> ConnectionAuth:
    """What ``connection`` (connected) depends on; ConnectionAuthError when it cannot be told.

    This is the one place that reads the connection plugins' resolved settings; it relies on
    ``_read_settings()`` / ``_session`` (winops.remoting.winrm), ``_read_settings()`` /
    ``_settings`` (winops.remoting.psrp), ``protocol`` (ansible.builtin.winrm, a pywinrm
    Protocol) and the options of ansible.builtin.psrp.
    """
    name = plugin_name(connection)
    if name == "winops.remoting.winrm":
        return _ours_winrm(connection, name)
    if name == "winops.remoting.psrp":
        return _ours_psrp(connection, name)
    if name == "ansible.builtin.winrm":
        return _builtin_winrm(connection, name)
    if name == "ansible.builtin.psrp":
        return _builtin_psrp(connection, name)
    raise ConnectionAuthError(f"connection plugin {name} is not one this check knows")


def _ours_winrm(connection: t.Any, name: str) -> ConnectionAuth:
    session = getattr(connection, "_session", None)
    settings = session.settings if session is not None else connection._read_settings()
    # The transports are tried in order and the first that opens a shell is kept.
    transport = getattr(session, "transport", None) or settings.transports[0]
    kwargs = settings.protocol_kwargs
    client = pywinrm_client_auth(transport, bool(kwargs.get("cert_pem")))
    endpoint = settings.endpoint
    return ConnectionAuth(
        plugin=name,
        client_auth=transport,
        http_scheme=client.http_scheme,
        service_auth=client.service_auth,
        https=endpoint.scheme == "https",
        host=endpoint.host,
        port=int(endpoint.port),
        message_encryption=str(kwargs.get("message_encryption") or "auto"),
        sends_channel_binding=bool(kwargs.get("send_cbt", True)),
    )


def _ours_psrp(connection: t.Any, name: str) -> ConnectionAuth:
    settings = getattr(connection, "_settings", None) or connection._read_settings()
    client = pypsrp_client_auth(settings.auth)
    endpoint = settings.endpoint
    return ConnectionAuth(
        plugin=name,
        client_auth=settings.auth,
        http_scheme=client.http_scheme,
        service_auth=client.service_auth,
        https=endpoint.scheme == "https",
        host=endpoint.host,
        port=int(endpoint.port),
        message_encryption=str(settings.wsman_kwargs.get("encryption") or "auto"),
        sends_channel_binding=bool(settings.wsman_kwargs.get("negotiate_send_cbt", True)),
    )


def _builtin_winrm(connection: t.Any, name: str) -> ConnectionAuth:
    protocol = getattr(connection, "protocol", None)
    transport = getattr(protocol, "transport", None)
    if transport is None or not getattr(transport, "auth_method", None):
        raise ConnectionAuthError(f"{name} has no open pywinrm protocol to read")
    url = urllib.parse.urlsplit(str(transport.endpoint))
    host = url.hostname or ""
    port = url.port or (443 if url.scheme == "https" else 80)
    client = pywinrm_client_auth(transport.auth_method, bool(getattr(transport, "cert_pem", None)))
    return ConnectionAuth(
        plugin=name,
        client_auth=transport.auth_method,
        http_scheme=client.http_scheme,
        service_auth=client.service_auth,
        https=url.scheme == "https",
        host=host,
        port=port,
        message_encryption=str(getattr(transport, "message_encryption", "auto") or "auto"),
        sends_channel_binding=bool(getattr(transport, "send_cbt", True)),
    )


def _builtin_psrp(connection: t.Any, name: str) -> ConnectionAuth:
    auth = str(connection.get_option("auth") or "negotiate")
    protocol = connection.get_option("protocol")
    port = connection.get_option("port")
    # ansible.builtin.psrp: https on 5986 unless told, http when only port 5985 is given.
    if protocol is None:
        protocol = "https" if port is None or int(port) != 5985 else "http"
    if port is None:
        port = 5986 if protocol == "https" else 5985
    host = str(connection.get_option("remote_addr"))
    client = pypsrp_client_auth(auth)
    return ConnectionAuth(
        plugin=name,
        client_auth=auth,
        http_scheme=client.http_scheme,
        service_auth=client.service_auth,
        https=protocol == "https",
        host=host,
        port=int(port),
        message_encryption=str(connection.get_option("message_encryption") or "auto"),
        sends_channel_binding=_option_true(connection, "negotiate_send_cbt"),
    )


def _option_true(connection: t.Any, option: str) -> bool:
    """A boolean option of ansible.builtin.psrp that defaults to true: false only when set to
    a false value."""
    return as_boolean(connection.get_option(option)) is not False
