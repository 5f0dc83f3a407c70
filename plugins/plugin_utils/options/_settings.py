"""The settings both connection plugins share, and the readers that build them.

Internal use only: this module is not part of the collection's public API.

``ConnectionSettings`` is the common core: where to connect (endpoint, TLS trust), who
(user, authentication, a managed Kerberos request), how patiently (timeouts, retry policy,
command time limit, envelope size) and which values are secrets. ``WinRMSettings`` and
``PsrpSettings`` extend it with their library's keyword arguments. The readers here are the
parts of option validation that both plugins do the same way.
"""

from __future__ import annotations

import os
import shlex

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
    Endpoint,
    resolve_endpoint,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import Record, field
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    OptionSource,
)

DEFAULT_KINIT_TIMEOUT = 60.0
# Windows takes no MaxEnvelopeSizekb below 32 (WSManDsc's WSManConfig resource: "The minimum
# value is 32"), so no host's envelope is smaller than this; it also leaves a file chunk room.
MIN_MAX_ENVELOPE_SIZE = 32 * 1024
# MaxEnvelopeSizekb 150 of WinRM 2.0 hosts, which every Windows takes, and the default of both
# libraries (pywinrm's Protocol.DEFAULT_MAX_ENV_SIZE, pypsrp's WSMan max_envelope_size; pypsrp
# raises it when the host says it runs PowerShell 3 or later).
DEFAULT_MAX_ENVELOPE_SIZE = 153600


class RetryPolicy(Record):
    """How often and how patiently to retry: ``retries`` extra attempts after the first."""

    retries: int = 3
    backoff: float = 1.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(
                f"backoff and max_backoff must be >= 0, got {self.backoff} and {self.max_backoff}"
            )

    def delay(self, retry_number: int) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based): doubling, capped."""
        return float(min(self.backoff * 2 ** (retry_number - 1), self.max_backoff))


class KinitRequest(Record):
    """What to ask the KDC for, and how to run kinit.

    ``kinit_args`` replaces the default arguments when given (``-f`` is then not added even
    when ``forwardable`` is set, as with the builtin plugins). ``env_vars`` holds the variables
    named by kinit_env_vars, already read from the controller's environment. ``reuse`` keeps
    the ticket in the run's store for the following tasks; without it every call gets a
    private cache that ``remove()`` deletes.
    """

    principal: str
    password: str = field(repr=False)
    kinit_cmd: str = "kinit"
    kinit_args: list[str] | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    forwardable: bool = False
    timeout: float = DEFAULT_KINIT_TIMEOUT
    reuse: bool = True

    def __repr__(self) -> str:
        # The dataclass default would print the password.
        return f"KinitRequest(principal={self.principal!r}, kinit_cmd={self.kinit_cmd!r})"


def kerberos_principal(user: str, realm: str | None = None) -> str:
    """The principal for ``user``: its UPN realm upper-cased, else ``realm``, else as given.

    MIT Kerberos realms are case-sensitive and an Active Directory realm is the upper-case
    DNS domain, so ``ansible@win.example.com`` becomes ``ansible@WIN.EXAMPLE.COM``.
    """
    name, at, domain = user.rpartition("@")
    if at:
        return f"{name}@{domain.upper()}"
    if realm:
        return f"{user}@{realm.upper()}"
    return user


class ConnectionSettings(Record):
    """What every WinRM connection needs, resolved and validated, whichever plugin reads it."""

    plugin: str  # "winrm" or "psrp": whose variables messages name
    endpoint: Endpoint
    auth: str  # the authentication tried first (winrm: first transport, psrp: auth)
    user: str | None
    cert_validation: bool
    ca_path: str | None  # CA bundle file or directory; None: the system's
    message_encryption: str  # auto | always | never
    kerberos_realm: str | None
    kerberos_service: str  # the service part of the SPN (HTTP for pywinrm, WSMAN for pypsrp)
    kerberos_hostname_override: str | None
    kinit: KinitRequest | None  # managed Kerberos; None: the user's own ticket cache
    operation_timeout: int
    read_timeout: int
    retry_policy: RetryPolicy
    command_timeout: float  # seconds, 0 = no limit
    max_envelope_size: int
    # Values never to be shown; not in repr(), like the library arguments that hold them.
    secrets: tuple[str, ...] = field(repr=False)

    def auth_method(self, auth: str) -> str:
        """The authentication the host sees for ``auth`` (a value of the plugin's auth
        option): the name a diagnosis and the doctor's checks work with."""
        return auth


def read_endpoint(source: OptionSource, scheme_option: str) -> Endpoint:
    """The endpoint from remote_addr, port, path and the plugin's scheme option."""
    host, host_var = source.read("remote_addr")
    port, port_var = source.read("port")
    scheme, scheme_var = source.read(scheme_option)
    path, path_var = source.read("path")
    return resolve_endpoint(
        host,
        port,
        scheme,
        path,
        host_var=host_var,
        port_var=port_var,
        scheme_var=scheme_var,
        path_var=path_var,
    )


def read_password(source: OptionSource, option: str = "remote_password") -> str | None:
    """A secret option as a string; a wrong type is refused without echoing the value."""
    value, var = source.read(option)
    if value is not None and not isinstance(value, str):
        raise OptionError(var, "********", "a string")
    return value


def read_retry_policy(source: OptionSource) -> RetryPolicy:
    retries_value, retries_var = source.read("reconnection_retries")
    backoff_value, backoff_var = source.read("reconnection_backoff")
    return RetryPolicy(
        retries=_validation.integer(retries_var, retries_value, minimum=0),
        backoff=_validation.number(backoff_var, backoff_value, minimum=0),
    )


def read_command_timeout(source: OptionSource) -> float:
    """command_timeout in seconds, fractions allowed; 0 (and unset) is no limit."""
    value, var = source.read("command_timeout")
    return _validation.number(var, 0 if value is None else value, minimum=0)


def read_max_envelope_size(source: OptionSource) -> int | None:
    """max_envelope_size in bytes, at least MIN_MAX_ENVELOPE_SIZE; None when unset."""
    value, var = source.read("max_envelope_size")
    if value is None:
        return None
    return _validation.integer(var, value, minimum=MIN_MAX_ENVELOPE_SIZE)


def read_ca_path(source: OptionSource, option: str, used: bool) -> str | None:
    """The CA bundle file or directory ``option`` names, ``~`` expanded; checked to exist
    only when ``used`` (HTTPS with certificate validation), where the library would otherwise
    fail at the first request. Unused, it is passed on as written, as the builtin plugins do."""
    value, var = source.read(option)
    path = _validation.optional_string(var, value, "the path of a CA bundle file or directory")
    if path is None or not used:
        return path
    # What requests accepts for a CA bundle: a file or a c_rehash'ed directory.
    expanded = os.path.expanduser(path)
    _validation.require(
        bool(path.strip()) and os.path.exists(expanded),
        var,
        value,
        "the path of an existing CA bundle file or certificate directory",
    )
    return expanded


def read_kerberos_service(source: OptionSource, option: str, default: str) -> str:
    """The service part of the host's SPN; ``default`` when unset, never blank."""
    value, var = source.read(option)
    if value is None:
        return default
    return _validation.nonblank_string(var, value, f"a Kerberos service name such as {default}")


def read_kinit_cmd(source: OptionSource, option: str) -> str:
    """The kinit program for managed Kerberos; ``kinit`` when unset, never blank."""
    value, var = source.read(option)
    if value is None:
        return "kinit"
    return _validation.nonblank_string(var, value, "the kinit command to run")


def require_read_above_operation(
    source: OptionSource, read_option: str, operation_option: str, operation: int, read: int
) -> None:
    """A Receive waits up to the operation timeout, so the HTTP read must wait longer."""
    read_value, read_var = source.read(read_option)
    _validation.require(
        read > operation,
        read_var,
        read_value,
        f"an integer greater than {source.label(operation_option)} ({operation}): "
        "a Receive waits up to the operation timeout",
    )


def read_kinit_args(source: OptionSource, option: str) -> list[str] | None:
    """kinit_args split like a shell would; None when unset or blank."""
    value, var = source.read(option)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    _validation.require(isinstance(value, str), var, value, "kinit arguments as one string")
    try:
        return shlex.split(value)
    except ValueError as err:
        # Not chained: the reason is in the message already.
        raise OptionError(var, value, f"shell-quoted arguments ({err})") from None


def read_kinit_env(source: OptionSource, option: str) -> dict[str, str]:
    """The controller's values of the variables kinit_env_vars names (KRB5CCNAME excluded)."""
    value, var = source.read(option)
    names_value = value or []
    if isinstance(names_value, str):
        names_value = names_value.split(",")
    _validation.require(
        isinstance(names_value, list) and all(isinstance(name, str) for name in names_value),
        var,
        value,
        "a list of environment variable names",
    )
    names = [name.strip() for name in names_value if name.strip()]
    _validation.require(
        "KRB5CCNAME" not in names,
        var,
        names_value,
        "environment variable names other than KRB5CCNAME (the plugin sets it)",
    )
    return {name: os.environ[name] for name in names if name in os.environ}
