"""The WS-Management endpoint a connection talks to, and facts read from the user name.

Internal use only: this module is not part of the collection's public API.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import Record
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError

HTTP_PORT = 5985
HTTPS_PORT = 5986
DEFAULT_PATH = "wsman"


def is_ip_literal(name: str) -> bool:
    """True when ``name`` is an IPv4 or IPv6 literal (brackets allowed) rather than a name."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _is_ipv6_literal(name: str) -> bool:
    try:
        ipaddress.IPv6Address(name)
    except ValueError:
        return False
    return True


class Endpoint(Record):
    """Where the WinRM listener is: host (IPv6 without brackets), port, scheme and path."""

    host: str
    port: int
    scheme: str
    path: str

    @property
    def is_ip_address(self) -> bool:
        """True when ``host`` is an IPv4 or IPv6 literal rather than a name."""
        return is_ip_literal(self.host)

    @property
    def is_ipv6(self) -> bool:
        """True when ``host`` is an IPv6 literal (it needs brackets in a URL)."""
        return ":" in self.host

    @property
    def netloc(self) -> str:
        """``host:port`` with the host bracketed when it is IPv6."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The listener URL, e.g. ``https://[fe80::1]:5986/wsman``."""
        return f"{self.scheme}://{self.netloc}/{self.path}"


def resolve_endpoint(
    host: str,
    port: int | None,
    scheme: str | None,
    path: str | None,
    *,
    host_var: str = "ansible_host",
    port_var: str = "ansible_port",
    scheme_var: str = "scheme",
    path_var: str = "path",
) -> Endpoint:
    """Build the Endpoint from the user's options, filling in the WinRM defaults.

    Without a scheme, port 5985 means http and anything else https; without a port, http uses
    5985 and https 5986. An explicit scheme always wins. ``host`` may be given as ``[::1]``.
    The ``*_var`` arguments name the variables in error messages.
    """
    if not isinstance(host, str) or not host.strip():
        raise OptionError(host_var, host, "a host name or IP address")
    bare_host = host.strip()
    if bare_host.startswith("[") and bare_host.endswith("]"):
        bare_host = bare_host[1:-1]
    if not bare_host or any(c in bare_host for c in "[]/ "):
        raise OptionError(host_var, host, "a host name or IP address")
    # A colon only belongs in an IPv6 literal: "10.0.0.1:5985" carries a port, which
    # ansible_port sets, and a URL built from it would be unusable.
    if ":" in bare_host and not _is_ipv6_literal(bare_host):
        raise OptionError(
            host_var,
            host,
            f"a host name or IP address without a port (set the port with {port_var}), "
            "or a complete IPv6 address",
        )

    port_number = None if port is None else _validation.port(port_var, port)
    if scheme is None:
        resolved_scheme = "http" if port_number == HTTP_PORT else "https"
    else:
        resolved_scheme = _validation.choice(scheme_var, scheme, ("http", "https"))
    if port_number is None:
        port_number = HTTP_PORT if resolved_scheme == "http" else HTTPS_PORT

    if path is None:
        resolved_path = DEFAULT_PATH
    elif isinstance(path, str):
        resolved_path = path.strip().lstrip("/")
    else:
        raise OptionError(path_var, path, "a URL path such as wsman")
    return Endpoint(host=bare_host, port=port_number, scheme=resolved_scheme, path=resolved_path)


def is_upn(user: str | None) -> bool:
    """True for a user principal name such as ``user@REALM`` (name and realm both present)."""
    if not user or "@" not in user:
        return False
    name, _at, realm = user.rpartition("@")
    return bool(name) and bool(realm)


def realm_from_user(user: str | None) -> str | None:
    """The realm part of a UPN (``user@REALM`` -> ``REALM``), None for any other user."""
    if user is None or not is_upn(user):
        return None
    return user.rpartition("@")[2]
