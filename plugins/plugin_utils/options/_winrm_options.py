"""Reading and validating the options of the winops.remoting.winrm connection plugin.

Internal use only: this module is not part of the collection's public API.

Everything here runs before any network traffic. ``build_settings`` turns the plugin's options
into one ``WinRMSettings``: the common ``ConnectionSettings`` plus the exact keyword arguments
for ``winrm.protocol.Protocol`` and the transports to try. A bad value raises ``OptionError``
naming the setting the user gave (``OptionSource.label``), the value and what is allowed.
"""

from __future__ import annotations

import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import is_upn
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import field
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import proxy_secrets
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    OptionSource,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    DEFAULT_MAX_ENVELOPE_SIZE,
    ConnectionSettings,
    KinitRequest,
    kerberos_principal,
    read_ca_path,
    read_command_timeout,
    read_endpoint,
    read_kerberos_service,
    read_kinit_args,
    read_kinit_cmd,
    read_kinit_env,
    read_max_envelope_size,
    read_password,
    read_retry_policy,
    require_read_above_operation,
)

PLUGIN = "winrm"
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
# pywinrm arguments for which None is not their default: proxy None uses no proxy, not the
# environment's; ca_trust_path None trusts certifi, not REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE.
NULL_MEANS_NONE = ("proxy", "ca_trust_path")
KINIT_MODES = ("managed", "manual")

# pywinrm can only encrypt messages itself with these authentication protocols.
ENCRYPTING_TRANSPORTS = frozenset(("ntlm", "kerberos", "credssp", "negotiate"))
# These authenticate with a client certificate (ssl only when a certificate is given).
CERTIFICATE_TRANSPORTS = frozenset(("certificate", "ssl"))

# DEFAULT_MAX_ENVELOPE_SIZE (options._settings) is the size of the answers we ask for, and of
# the requests a WinRM 2.0 host takes.
# MaxEnvelopeSizekb 500, Windows' default since WinRM 3.0: the requests we send when
# max_envelope_size is not set, falling back to DEFAULT_MAX_ENVELOPE_SIZE when the host refuses
# one as too large (HTTP 413, nothing taken).
WINDOWS_MAX_ENVELOPE_SIZE = 512000

# Protocol arguments that the plugin sets itself; an ansible_winrm_<name> extra never overrides
# them (the same set ansible.builtin.winrm keeps for itself, plus arguments we own as options).
_OWN_PROTOCOL_ARGUMENTS = frozenset(("self", "endpoint", "transport", "username", "password"))


class WinRMSettings(ConnectionSettings):
    """Everything a WinRM session needs: the common core plus pywinrm's arguments."""

    transports: tuple[str, ...]  # tried in order; the first one that opens a shell is kept
    # The largest request sent (stdin and file chunks); max_envelope_size is the largest
    # answer asked for. They differ only when max_envelope_size is not set: then a Send refused
    # as too large is sent again in max_envelope_size pieces.
    send_envelope_size: int
    # For transports[0] (see kwargs_for()); holds the password and the proxy URL.
    protocol_kwargs: dict[str, t.Any] = field(repr=False)
    ignored_extras: tuple[str, ...]  # ansible_winrm_* names pywinrm does not accept
    # A kept session starts the next module's powershell.exe when a module task ends.
    start_ahead: bool = True

    def kwargs_for(self, transport: str) -> dict[str, t.Any]:
        """The Protocol keyword arguments for one of the transports."""
        return {**self.protocol_kwargs, "transport": transport}

    def auth_method(self, auth: str) -> str:
        return host_auth_method(auth, self.protocol_kwargs.get("cert_pem") is not None)


def host_auth_method(transport: str, has_client_certificate: bool) -> str:
    """The authentication the host sees for a pywinrm transport. The legacy names are Basic
    (plaintext, and ssl without a client certificate) or certificate authentication (ssl with
    one): pywinrm 0.5.0 winrm/transport.py, build_session."""
    if transport == "plaintext" or (transport == "ssl" and not has_client_certificate):
        return "basic"
    if transport == "ssl":
        return "certificate"
    return transport


def _optional_str(source: OptionSource, option: str) -> str | None:
    value, var = source.read(option)
    return _validation.optional_string(var, value, "a string")


def _proxy(source: OptionSource) -> str | None:
    value = source.value("proxy")
    return None if value is None else _validation.proxy_url(source.label("proxy"), value)


def _transports(
    source: OptionSource, user: str | None, scheme: str, kerberos_ok: bool
) -> list[str]:
    value = source.value("transport")
    if isinstance(value, str):
        # A comma-separated list that TypedOptions held back unsplit (one item is bad), split
        # as Ansible splits a list.
        value = [item.strip() for item in value.split(",")]
    names = [item for item in (value or []) if item is not None and str(item).strip()]
    if names:
        return [_validation.choice(source.label("transport"), item, TRANSPORTS) for item in names]
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


def _timeouts(source: OptionSource) -> tuple[int, int]:
    connection_timeout = source.value("connection_timeout")
    if connection_timeout is not None:
        # As in ansible.builtin.winrm: it sets both, the read timeout 10 seconds above; 0 sets
        # neither (the builtin plugin tests the value for truth).
        seconds = _validation.integer(source.label("connection_timeout"), connection_timeout, 0)
        if seconds:
            return seconds, seconds + 10
    operation = _validation.integer(
        source.label("operation_timeout_sec"), source.value("operation_timeout_sec"), 1
    )
    read = _validation.integer(
        source.label("read_timeout_sec"), source.value("read_timeout_sec"), 1
    )
    require_read_above_operation(
        source, "read_timeout_sec", "operation_timeout_sec", operation, read
    )
    return operation, read


def _certificate_paths(
    source: OptionSource, transports: list[str]
) -> tuple[str | None, str | None]:
    cert_pem = _optional_str(source, "cert_pem")
    cert_key_pem = _optional_str(source, "cert_key_pem")
    if "certificate" in transports:
        for option, value in (("cert_pem", cert_pem), ("cert_key_pem", cert_key_pem)):
            _validation.require(
                value is not None,
                source.label(option),
                value,
                f"a PEM file path when {source.label('transport')} is certificate",
            )
    if CERTIFICATE_TRANSPORTS.intersection(transports):
        # pywinrm would only find a missing file when the first request is built.
        if cert_pem is not None:
            cert_pem = _validation.existing_file(source.label("cert_pem"), cert_pem)
        if cert_key_pem is not None:
            cert_key_pem = _validation.existing_file(source.label("cert_key_pem"), cert_key_pem)
        if cert_pem is not None and cert_key_pem is not None:
            # pywinrm has no key password option: an encrypted key is refused here.
            _validation.encrypted_client_key(
                source.label("cert_key_pem"),
                cert_key_pem,
                cert_var=source.label("cert_pem"),
                cert_path=cert_pem,
                password_var=None,
                password=None,
            )
    return cert_pem, cert_key_pem


def _credentials_required(
    source: OptionSource,
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
        what = f"a user name when {source.label('transport')} is {transport}"
        _validation.require(bool(user and user.strip()), source.label("remote_user"), user, what)
        what = f"a password when {source.label('transport')} is {transport}"
        # Only ever reached with password None: a set password is never put in a message.
        _validation.require(password is not None, source.label("remote_password"), None, what)


def _kinit(
    source: OptionSource,
    transports: list[str],
    *,
    user: str | None,
    password: str | None,
    realm: str | None,
    delegation: bool,
) -> KinitRequest | None:
    """The managed Kerberos request, or None when the user's own ticket cache is used."""
    mode_value = source.value("kerberos_mode")
    mode = None
    if mode_value is not None:
        mode = _validation.choice(source.label("kerberos_mode"), mode_value, KINIT_MODES)
    uses_kerberos = "kerberos" in transports
    if mode is None:
        # ansible.builtin.winrm's rule: managed when Kerberos is used and a password is set.
        managed = uses_kerberos and bool(password)
    else:
        managed = mode == "managed"
    if managed and uses_kerberos:
        _validation.require(
            bool(user),
            source.label("remote_user"),
            user,
            f"a Kerberos principal when {source.label('kerberos_mode')} is managed",
        )
        _validation.require(
            password is not None,
            source.label("remote_password"),
            None,
            f"a password when {source.label('kerberos_mode')} is managed (or set it to manual)",
        )
    kinit_cmd = read_kinit_cmd(source, "kerberos_command")
    kinit_args = read_kinit_args(source, "kinit_args")
    env_vars = read_kinit_env(source, "kinit_env_vars")
    if not (managed and uses_kerberos):
        return None
    return KinitRequest(
        principal=kerberos_principal(t.cast(str, user), realm),
        password=t.cast(str, password),
        kinit_cmd=kinit_cmd,
        kinit_args=kinit_args,
        env_vars=env_vars,
        forwardable=delegation,
    )


def _passthrough(
    source: OptionSource, protocol_parameters: t.Collection[str]
) -> tuple[dict[str, t.Any], tuple[str, ...]]:
    """ansible_winrm_<name> extras that name a Protocol argument, as ansible.builtin.winrm does."""
    passed: dict[str, t.Any] = {}
    ignored: list[str] = []
    for var_name, value in sorted(source.extras().items()):
        name = var_name.removeprefix("ansible_winrm_")
        if name in _OWN_PROTOCOL_ARGUMENTS:
            continue
        if name in protocol_parameters:
            passed[name] = value
        else:
            ignored.append(var_name)
    return passed, tuple(ignored)


def build_settings(
    source: OptionSource,
    protocol_parameters: t.Collection[str],
    kerberos_available: bool,
) -> WinRMSettings:
    """Validate the plugin's options and resolve them into WinRMSettings.

    ``protocol_parameters`` are the argument names of ``winrm.protocol.Protocol.__init__``
    (for the ansible_winrm_* passthrough); ``kerberos_available`` says whether pywinrm can do
    Kerberos here, which decides the transport for a UPN user when none is set.
    """
    user = _optional_str(source, "remote_user")
    password = read_password(source)

    endpoint = read_endpoint(source, "scheme")
    transports = _transports(source, user, endpoint.scheme, kerberos_available)
    # The client certificate is presented in the TLS handshake: over HTTP it never reaches
    # the host, which would only answer with an unrelated refusal.
    _validation.require(
        "certificate" not in transports or endpoint.scheme == "https",
        source.label("scheme"),
        source.value("scheme") if source.value("scheme") is not None else endpoint.scheme,
        f"https when {source.label('transport')} is certificate",
    )

    encryption = _validation.choice(
        source.label("message_encryption"), source.value("message_encryption"), MESSAGE_ENCRYPTION
    )
    if encryption == "always":
        plain = [name for name in transports if name not in ENCRYPTING_TRANSPORTS]
        _validation.require(
            not plain,
            source.label("message_encryption"),
            source.value("message_encryption"),
            f"auto or never with transport {', '.join(plain)}"
            " (only credssp, kerberos and ntlm encrypt messages)",
        )
    cert_validation = _validation.choice(
        source.label("server_cert_validation"),
        source.value("server_cert_validation"),
        CERT_VALIDATION,
    )
    operation_timeout, read_timeout = _timeouts(source)
    cert_pem, cert_key_pem = _certificate_paths(source, transports)
    _credentials_required(source, transports, user, password, cert_pem is not None)
    # Validated under the names the user gave; from here on, pywinrm's names. Negotiate
    # tries Kerberos only where a ticket can name a realm: a UPN, a realm, or the user's own
    # ticket cache (kinit_mode manual). A plain local user goes straight to NTLM.
    kerberos_realm_known = (
        is_upn(user)
        or bool(source.value("realm"))
        or str(source.value("kerberos_mode") or "").strip().lower() == "manual"
    )
    transports = _pywinrm_transports(transports, kerberos_available and kerberos_realm_known)

    ca_trust_path = read_ca_path(
        source, "ca_trust_path", used=endpoint.scheme == "https" and cert_validation == "validate"
    )

    delegation = _validation.boolean(
        source.label("kerberos_delegation"), source.value("kerberos_delegation")
    )
    realm = _optional_str(source, "realm")
    kwargs: dict[str, t.Any] = {
        "endpoint": endpoint.url,
        "transport": transports[0],
        "username": user,
        "password": password,
        "service": read_kerberos_service(source, "service", "HTTP"),
        "server_cert_validation": cert_validation,
        "kerberos_delegation": delegation,
        "read_timeout_sec": read_timeout,
        "operation_timeout_sec": operation_timeout,
        "message_encryption": encryption,
        "credssp_disable_tlsv1_2": _validation.boolean(
            source.label("credssp_disable_tlsv1_2"), source.value("credssp_disable_tlsv1_2")
        ),
        "send_cbt": _validation.boolean(source.label("send_cbt"), source.value("send_cbt")),
    }
    optional = {
        "realm": realm,
        "ca_trust_path": ca_trust_path,
        "cert_pem": cert_pem,
        "cert_key_pem": cert_key_pem,
        "kerberos_hostname_override": _optional_str(source, "kerberos_hostname_override"),
        "proxy": _proxy(source),
    }
    kwargs.update({name: value for name, value in optional.items() if value is not None})
    for name in NULL_MEANS_NONE:
        if source.given_as_null(name):
            kwargs[name] = None  # as ansible.builtin.winrm hands over ansible_winrm_<name>: null
    if _validation.boolean(source.label("no_proxy"), source.value("no_proxy")):
        # pywinrm's spelling of "ignore proxies, including the environment's".
        kwargs["proxy"] = None

    passthrough, ignored = _passthrough(source, protocol_parameters)
    kwargs.update(passthrough)

    envelope_size = read_max_envelope_size(source)
    if envelope_size is None:
        max_envelope_size, send_envelope_size = DEFAULT_MAX_ENVELOPE_SIZE, WINDOWS_MAX_ENVELOPE_SIZE
    else:
        max_envelope_size = send_envelope_size = envelope_size
    return WinRMSettings(
        plugin=PLUGIN,
        endpoint=endpoint,
        auth=transports[0],
        user=user,
        cert_validation=cert_validation == "validate",
        ca_path=ca_trust_path,
        message_encryption=encryption,
        kerberos_realm=realm,
        kerberos_service=kwargs["service"],
        kerberos_hostname_override=kwargs.get("kerberos_hostname_override"),
        kinit=_kinit(
            source,
            transports,
            user=user,
            password=password,
            realm=realm,
            delegation=delegation,
        ),
        operation_timeout=operation_timeout,
        read_timeout=read_timeout,
        retry_policy=read_retry_policy(source),
        command_timeout=read_command_timeout(source),
        max_envelope_size=max_envelope_size,
        send_envelope_size=send_envelope_size,
        secrets=((password,) if password else ()) + proxy_secrets(kwargs.get("proxy")),
        transports=tuple(transports),
        protocol_kwargs=kwargs,
        ignored_extras=ignored,
        start_ahead=_validation.boolean(
            source.label("session_start_ahead"), source.value("session_start_ahead")
        ),
    )
