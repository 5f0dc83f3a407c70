"""Reading and validating the options of the winops.remoting.winrm connection plugin.

Internal use only: this module is not part of the collection's public API.

Everything here runs before any network traffic. ``build_settings`` turns the plugin's options
into one ``WinRMSettings``: the exact keyword arguments for ``winrm.protocol.Protocol`` plus the
settings the session layer needs on top (Kerberos ticket management, retries, command time
limit, envelope size). A bad value raises ``OptionError`` naming the variable, the value and
what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
    Endpoint,
    is_upn,
    resolve_endpoint,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    kerberos_principal,
)

TRANSPORTS = (
    "basic",
    "certificate",
    "credssp",
    "kerberos",
    "negotiate",
    "ntlm",
    "plaintext",
    "ssl",
)
MESSAGE_ENCRYPTION = ("auto", "always", "never")
CERT_VALIDATION = ("validate", "ignore")
KINIT_MODES = ("managed", "manual")

# pywinrm can only encrypt messages itself with these authentication protocols.
ENCRYPTING_TRANSPORTS = frozenset(("ntlm", "kerberos", "credssp", "negotiate"))
# These authenticate with a client certificate (ssl only when a certificate is given).
CERTIFICATE_TRANSPORTS = frozenset(("certificate", "ssl"))

DEFAULT_MAX_ENVELOPE_SIZE = 153600  # winrm.protocol.Protocol.DEFAULT_MAX_ENV_SIZE
MIN_MAX_ENVELOPE_SIZE = 16384  # room for the SOAP header and a useful file chunk
ENVIRONMENT_CCACHE = "KRB5CCNAME"

# Protocol arguments that the plugin sets itself; an ansible_winrm_<name> extra never overrides
# them (the same set ansible.builtin.winrm keeps for itself, plus arguments we own as options).
_OWN_PROTOCOL_ARGUMENTS = frozenset(("self", "endpoint", "transport", "username", "password"))


class OptionReader(t.Protocol):
    """What build_settings needs from the connection plugin."""

    def get(self, option: str) -> t.Any:
        """The value of an option declared in DOCUMENTATION (None when unset)."""

    def var(self, option: str) -> str:
        """The variable (or environment variable) to name in an error about ``option``."""

    def extras(self) -> dict[str, t.Any]:
        """ansible_winrm_* variables that match no declared option."""


@dataclasses.dataclass(frozen=True)
class KerberosSettings:
    """How to get a Kerberos ticket when the kerberos transport is used."""

    managed: bool  # True: we run kinit into a private cache; False: the user's own cache
    principal: str | None
    kinit_cmd: str
    kinit_args: list[str] | None  # replaces the default arguments (and -f) when given
    env_var_names: tuple[str, ...]  # copied from the controller environment into kinit's
    forwardable: bool


@dataclasses.dataclass(frozen=True)
class WinRMSettings:
    """Everything a WinRM session needs, resolved and validated."""

    endpoint: Endpoint
    transports: tuple[str, ...]  # tried in order; the first one that opens a shell is kept
    protocol_kwargs: dict[str, t.Any]  # for transports[0]; see kwargs_for()
    kerberos: KerberosSettings
    reconnection_retries: int
    reconnection_backoff: float
    command_timeout: float  # seconds, 0 = no limit
    max_envelope_size: int
    ignored_extras: tuple[str, ...]  # ansible_winrm_* names pywinrm does not accept

    def kwargs_for(self, transport: str) -> dict[str, t.Any]:
        """The Protocol keyword arguments for one of the transports."""
        return {**self.protocol_kwargs, "transport": transport}

    @property
    def secrets(self) -> list[str]:
        """Values that must never be shown."""
        password = self.protocol_kwargs.get("password")
        return [password] if isinstance(password, str) and password else []


def _optional_str(reader: OptionReader, option: str) -> str | None:
    value = reader.get(option)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionError(reader.var(option), value, "a string")
    return value


def _transports(
    reader: OptionReader, user: str | None, scheme: str, kerberos_ok: bool
) -> list[str]:
    value = reader.get("transport")
    if isinstance(value, str):
        value = [value]
    names = [item for item in (value or []) if item is not None and str(item).strip()]
    if names:
        return [_validation.choice(reader.var("transport"), item, TRANSPORTS) for item in names]
    # Same rule as ansible.builtin.winrm: a UPN is a domain account, which Kerberos serves;
    # everything else uses Basic under its legacy name (ssl over https, plaintext over http).
    if is_upn(user) and kerberos_ok:
        return ["kerberos"]
    return ["ssl" if scheme == "https" else "plaintext"]


def _pywinrm_transports(requested: list[str], kerberos_ok: bool) -> list[str]:
    """The pywinrm transports to try, in order, for the transports the user asked for.

    pywinrm has no SPNEGO transport, so ``negotiate`` does what SPNEGO does in two steps:
    Kerberos when it can work (``kerberos_ok``), then NTLM.
    """
    result: list[str] = []
    for name in requested:
        if name == "negotiate":
            expanded = ["kerberos", "ntlm"] if kerberos_ok else ["ntlm"]
        else:
            expanded = [name]
        result.extend(item for item in expanded if item not in result)
    return result


def _timeouts(reader: OptionReader) -> tuple[int, int]:
    connection_timeout = reader.get("connection_timeout")
    if connection_timeout is not None:
        # As in ansible.builtin.winrm: it sets both, the read timeout 10 seconds above.
        seconds = _validation.integer(reader.var("connection_timeout"), connection_timeout, 1)
        return seconds, seconds + 10
    operation = _validation.integer(
        reader.var("operation_timeout_sec"), reader.get("operation_timeout_sec"), 1
    )
    read_var = reader.var("read_timeout_sec")
    read = _validation.integer(read_var, reader.get("read_timeout_sec"), 1)
    _validation.require(
        read > operation,
        read_var,
        reader.get("read_timeout_sec"),
        f"an integer greater than {reader.var('operation_timeout_sec')} ({operation})",
    )
    return operation, read


def _certificate_paths(
    reader: OptionReader, transports: list[str]
) -> tuple[str | None, str | None]:
    cert_pem = _optional_str(reader, "cert_pem")
    cert_key_pem = _optional_str(reader, "cert_key_pem")
    if "certificate" in transports:
        for option, value in (("cert_pem", cert_pem), ("cert_key_pem", cert_key_pem)):
            _validation.require(
                value is not None,
                reader.var(option),
                value,
                f"a PEM file path when {reader.var('transport')} is certificate",
            )
    if CERTIFICATE_TRANSPORTS.intersection(transports):
        # pywinrm would only find a missing file when the first request is built.
        if cert_pem is not None:
            cert_pem = _validation.existing_file(reader.var("cert_pem"), cert_pem)
        if cert_key_pem is not None:
            cert_key_pem = _validation.existing_file(reader.var("cert_key_pem"), cert_key_pem)
    return cert_pem, cert_key_pem


def _credentials_required(
    reader: OptionReader,
    transports: list[str],
    user: str | None,
    password: str | None,
    has_certificate: bool,
) -> None:
    for transport in transports:
        if transport in {"kerberos", "certificate"}:
            continue
        if transport == "ssl" and has_certificate:
            continue
        what = f"a user name when {reader.var('transport')} is {transport}"
        _validation.require(bool(user), reader.var("remote_user"), user, what)
        what = f"a password when {reader.var('transport')} is {transport}"
        # Only ever reached with password None: a set password is never put in a message.
        _validation.require(password is not None, reader.var("remote_password"), None, what)


def _kerberos(
    reader: OptionReader,
    transports: list[str],
    *,
    user: str | None,
    password: str | None,
    realm: str | None,
    delegation: bool,
) -> KerberosSettings:
    mode_value = reader.get("kerberos_mode")
    mode = None
    if mode_value is not None:
        mode = _validation.choice(reader.var("kerberos_mode"), mode_value, KINIT_MODES)
    uses_kerberos = "kerberos" in transports
    if mode is None:
        # ansible.builtin.winrm's rule: managed when Kerberos is used and a password is set.
        managed = uses_kerberos and bool(password)
    else:
        managed = mode == "managed"
    if managed and uses_kerberos:
        _validation.require(
            bool(user),
            reader.var("remote_user"),
            user,
            f"a Kerberos principal when {reader.var('kerberos_mode')} is managed",
        )
        _validation.require(
            password is not None,
            reader.var("remote_password"),
            None,
            f"a password when {reader.var('kerberos_mode')} is managed (or set it to manual)",
        )

    principal = kerberos_principal(user, realm) if user else user

    kinit_cmd = _optional_str(reader, "kerberos_command") or "kinit"
    args_value = _optional_str(reader, "kinit_args")
    kinit_args = None
    if args_value is not None and args_value.strip():
        try:
            kinit_args = shlex.split(args_value)
        except ValueError as err:
            # Not chained: the reason is in the message already.
            raise OptionError(
                reader.var("kinit_args"), args_value, f"shell-quoted arguments ({err})"
            ) from None

    names_value = reader.get("kinit_env_vars") or []
    if isinstance(names_value, str):
        names_value = [name.strip() for name in names_value.split(",")]
    names = tuple(str(name) for name in names_value if str(name))
    _validation.require(
        ENVIRONMENT_CCACHE not in names,
        reader.var("kinit_env_vars"),
        list(names_value),
        f"environment variable names other than {ENVIRONMENT_CCACHE} (the plugin sets it)",
    )
    return KerberosSettings(
        managed=managed and uses_kerberos,
        principal=principal,
        kinit_cmd=kinit_cmd,
        kinit_args=kinit_args,
        env_var_names=names,
        forwardable=delegation,
    )


def _passthrough(
    reader: OptionReader, protocol_parameters: t.Collection[str]
) -> tuple[dict[str, t.Any], tuple[str, ...]]:
    """ansible_winrm_<name> extras that name a Protocol argument, as ansible.builtin.winrm does."""
    passed: dict[str, t.Any] = {}
    ignored: list[str] = []
    for var_name, value in sorted(reader.extras().items()):
        name = var_name.removeprefix("ansible_winrm_")
        if name in _OWN_PROTOCOL_ARGUMENTS:
            continue
        if name in protocol_parameters:
            passed[name] = value
        else:
            ignored.append(var_name)
    return passed, tuple(ignored)


def build_settings(
    reader: OptionReader,
    protocol_parameters: t.Collection[str],
    kerberos_available: bool,
) -> WinRMSettings:
    """Validate the plugin's options and resolve them into WinRMSettings.

    ``protocol_parameters`` are the argument names of ``winrm.protocol.Protocol.__init__``
    (for the ansible_winrm_* passthrough); ``kerberos_available`` says whether pywinrm can do
    Kerberos here, which decides the transport for a UPN user when none is set.
    """
    user = _optional_str(reader, "remote_user")
    password = reader.get("remote_password")
    if password is not None and not isinstance(password, str):
        password = str(password)

    endpoint = resolve_endpoint(
        reader.get("remote_addr"),
        reader.get("port"),
        reader.get("scheme"),
        reader.get("path"),
        host_var=reader.var("remote_addr"),
        port_var=reader.var("port"),
        scheme_var=reader.var("scheme"),
        path_var=reader.var("path"),
    )
    transports = _transports(reader, user, endpoint.scheme, kerberos_available)
    # The client certificate is presented in the TLS handshake: over HTTP it never reaches
    # the host, which would only answer with an unrelated refusal.
    _validation.require(
        "certificate" not in transports or endpoint.scheme == "https",
        reader.var("scheme"),
        reader.get("scheme") if reader.get("scheme") is not None else endpoint.scheme,
        f"https when {reader.var('transport')} is certificate",
    )

    encryption = _validation.choice(
        reader.var("message_encryption"), reader.get("message_encryption"), MESSAGE_ENCRYPTION
    )
    if encryption == "always":
        plain = [name for name in transports if name not in ENCRYPTING_TRANSPORTS]
        _validation.require(
            not plain,
            reader.var("message_encryption"),
            reader.get("message_encryption"),
            f"auto or never with transport {', '.join(plain)}"
            " (only credssp, kerberos and ntlm encrypt messages)",
        )
    cert_validation = _validation.choice(
        reader.var("server_cert_validation"),
        reader.get("server_cert_validation"),
        CERT_VALIDATION,
    )
    operation_timeout, read_timeout = _timeouts(reader)
    cert_pem, cert_key_pem = _certificate_paths(reader, transports)
    _credentials_required(reader, transports, user, password, cert_pem is not None)
    # Validated under the names the user gave; from here on, pywinrm's names. Negotiate
    # tries Kerberos only where a ticket can name a realm: a UPN, a realm, or the user's own
    # ticket cache (kinit_mode manual). A plain local user goes straight to NTLM.
    kerberos_realm_known = (
        is_upn(user)
        or bool(reader.get("realm"))
        or str(reader.get("kerberos_mode") or "").strip().lower() == "manual"
    )
    transports = _pywinrm_transports(transports, kerberos_available and kerberos_realm_known)

    ca_trust_path = _optional_str(reader, "ca_trust_path")
    if ca_trust_path is not None:
        expanded = os.path.expanduser(ca_trust_path)
        _validation.require(
            os.path.exists(expanded),
            reader.var("ca_trust_path"),
            ca_trust_path,
            "the path of an existing CA bundle file or certificate directory",
        )
        ca_trust_path = expanded

    delegation = _validation.boolean(
        reader.var("kerberos_delegation"), reader.get("kerberos_delegation")
    )
    realm = _optional_str(reader, "realm")
    kwargs: dict[str, t.Any] = {
        "endpoint": endpoint.url,
        "transport": transports[0],
        "username": user,
        "password": password,
        "service": _optional_str(reader, "service") or "HTTP",
        "server_cert_validation": cert_validation,
        "kerberos_delegation": delegation,
        "read_timeout_sec": read_timeout,
        "operation_timeout_sec": operation_timeout,
        "message_encryption": encryption,
        "credssp_disable_tlsv1_2": _validation.boolean(
            reader.var("credssp_disable_tlsv1_2"), reader.get("credssp_disable_tlsv1_2")
        ),
        "send_cbt": _validation.boolean(reader.var("send_cbt"), reader.get("send_cbt")),
    }
    optional = {
        "realm": realm,
        "ca_trust_path": ca_trust_path,
        "cert_pem": cert_pem,
        "cert_key_pem": cert_key_pem,
        "kerberos_hostname_override": _optional_str(reader, "kerberos_hostname_override"),
        "proxy": _optional_str(reader, "proxy"),
    }
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    if _validation.boolean(reader.var("no_proxy"), reader.get("no_proxy")):
        # pywinrm's spelling of "ignore proxies, including the environment's".
        kwargs["proxy"] = None

    passthrough, ignored = _passthrough(reader, protocol_parameters)
    kwargs.update(passthrough)

    retries = _validation.integer(
        reader.var("reconnection_retries"), reader.get("reconnection_retries"), 0
    )
    backoff = _validation.number(
        reader.var("reconnection_backoff"), reader.get("reconnection_backoff"), 0
    )
    command_timeout = _validation.number(
        reader.var("command_timeout"), reader.get("command_timeout") or 0, 0
    )
    max_envelope_size = _validation.integer(
        reader.var("max_envelope_size"),
        reader.get("max_envelope_size") or DEFAULT_MAX_ENVELOPE_SIZE,
        MIN_MAX_ENVELOPE_SIZE,
    )
    return WinRMSettings(
        endpoint=endpoint,
        transports=tuple(transports),
        protocol_kwargs=kwargs,
        kerberos=_kerberos(
            reader,
            transports,
            user=user,
            password=password,
            realm=realm,
            delegation=delegation,
        ),
        reconnection_retries=retries,
        reconnection_backoff=backoff,
        command_timeout=command_timeout,
        max_envelope_size=max_envelope_size,
        ignored_extras=ignored,
    )
