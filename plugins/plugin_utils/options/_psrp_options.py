"""Reading and validating the options of the winops.remoting.psrp connection plugin.

Internal use only: this module is not part of the collection's public API.

Everything the plugin needs from the user's variables is read here, once, and checked before any
network traffic. The result is a PsrpSettings: the plain dict of keyword arguments handed to
``pypsrp.wsman.WSMan`` plus the settings of the runspace pool and of our own session layer
(command time limit, retry policy, managed Kerberos). Nothing here imports pypsrp at module
level, so a missing library is reported when a connection is made, not when options are read.
"""

from __future__ import annotations

import collections.abc as c
import inspect
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _validation
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import field
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import (
    OptionError,
    proxy_secrets,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._option_source import (
    PSRP_EXTRAS_PREFIX,
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

PLUGIN = "psrp"
PLUGIN_NAME = "winops.remoting.psrp"

AUTH_CHOICES = ("basic", "certificate", "negotiate", "kerberos", "ntlm", "credssp")
# Auth protocols whose security context can encrypt WSMan messages over plain HTTP.
MESSAGE_ENCRYPTION_AUTHS = frozenset(("negotiate", "kerberos", "ntlm", "credssp"))
# Auth protocols that log on with a user name and password (Negotiate and Kerberos can use the
# controller's ticket cache without either).
USER_REQUIRED_AUTHS = frozenset(("basic", "ntlm", "credssp"))

# WSMan keyword arguments that our options produce; a passthrough variable may not replace them.
_OPTION_KWARGS = frozenset(
    (
        "server",
        "port",
        "username",
        "password",
        "ssl",
        "path",
        "auth",
        "cert_validation",
        "connection_timeout",
        "encryption",
        "proxy",
        "no_proxy",
        "max_envelope_size",
        "operation_timeout",
        "read_timeout",
        "reconnection_retries",
        "reconnection_backoff",
        "certificate_key_pem",
        "certificate_pem",
        "certificate_key_password",
        "credssp_auth_mechanism",
        "credssp_disable_tlsv1_2",
        "credssp_minimum_version",
        "negotiate_send_cbt",
        "negotiate_delegate",
        "negotiate_hostname_override",
        "negotiate_service",
    )
)


class PsrpSettings(ConnectionSettings):
    """Everything a PSRP session needs: the common core plus pypsrp's arguments."""

    wsman_kwargs: dict[str, t.Any] = field(repr=False)  # password, proxy
    configuration_name: str
    # A kept session creates the next module task's pipeline when a module task ends.
    start_ahead: bool = True


def passthrough_kwargs() -> frozenset[str]:
    """WSMan keyword arguments an ``ansible_psrp_<name>`` variable may set directly.

    These are the arguments of the installed pypsrp's WSMan (its signature and the per-auth
    keyword lists) that no documented option already produces, e.g. ``locale``.
    """
    from pypsrp.wsman import AUTH_KWARGS, WSMan

    names = {
        name
        for name, parameter in inspect.signature(WSMan.__init__).parameters.items()
        if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY)
    }
    for auth_names in AUTH_KWARGS.values():
        names.update(auth_names)
    names.discard("self")
    return frozenset(names - _OPTION_KWARGS)


def _read_kinit(
    source: OptionSource,
    *,
    auth: str,
    auth_var: str,
    user: str | None,
    user_var: str,
    password: str | None,
    delegate: bool | None,
) -> KinitRequest | None:
    mode_value, mode_var = source.read("kinit_mode")
    mode = (
        None
        if mode_value is None
        else _validation.choice(mode_var, mode_value, ("managed", "manual"))
    )
    # Checked whether or not they are used, as the winrm plugin checks them.
    kinit_cmd = read_kinit_cmd(source, "kinit_cmd")
    kinit_args = read_kinit_args(source, "kinit_args")
    env_vars = read_kinit_env(source, "kinit_env_vars")
    if mode is None:
        mode = "managed" if auth == "kerberos" and password else "manual"
    if mode == "manual":
        return None

    _validation.require(
        auth == "kerberos",
        mode_var,
        mode_value,
        f"manual unless {auth_var} is kerberos (it is {auth})",
    )
    _validation.require(
        bool(password), mode_var, mode_value, "manual when no password is set (ansible_password)"
    )
    _validation.require(bool(user), user_var, user, "a user principal such as user@REALM")

    return KinitRequest(
        # A UPN's realm upper-cased: MIT realms are case-sensitive, AD's are upper case.
        principal=kerberos_principal(t.cast(str, user)),
        password=t.cast(str, password),
        kinit_cmd=kinit_cmd,
        kinit_args=kinit_args,
        env_vars=env_vars,
        forwardable=bool(delegate),
    )


def _read_extras(
    extras: c.Mapping[str, t.Any], warn: c.Callable[[str], None]
) -> tuple[dict[str, t.Any], list[str]]:
    """Sort ``ansible_psrp_*`` variables that are not options into WSMan arguments and unknowns.

    Returns the arguments to pass through and the names of unknown variables (warned about,
    never with their value, which could be a secret).
    """
    if not extras:
        return {}, []
    allowed = passthrough_kwargs()
    passed: dict[str, t.Any] = {}
    unknown: list[str] = []
    for var in sorted(extras):
        name = var[len(PSRP_EXTRAS_PREFIX) :] if var.startswith(PSRP_EXTRAS_PREFIX) else var
        if name in allowed:
            value = extras[var]
            _validation.require(
                value is None or isinstance(value, (str, int, float, bool)),
                var,
                value,
                f"a plain value for pypsrp's WSMan argument {name}",
            )
            passed[name] = value
        else:
            unknown.append(var)
            warn(
                f"{var} is neither an option of {PLUGIN_NAME} nor an argument of the installed "
                "pypsrp's WSMan; it is ignored"
            )
    return passed, unknown


def read_settings(
    source: OptionSource, warn: c.Callable[[str], None] = lambda message: None
) -> PsrpSettings:
    """Read, validate and convert every option; raise OptionError on the first bad value."""
    read = source.read
    endpoint = read_endpoint(source, "protocol")
    protocol_value, protocol_var = read("protocol")
    https = endpoint.scheme == "https"

    user_value, user_var = read("remote_user")
    user = _validation.optional_string(user_var, user_value, "a user name")
    password = read_password(source)
    password_var = source.label("remote_password")

    auth_value, auth_var = read("auth")
    auth = _validation.choice(auth_var, auth_value, AUTH_CHOICES)

    validation_value, validation_var = read("cert_validation")
    cert_validation = _validation.choice(validation_var, validation_value, ("validate", "ignore"))
    ca_cert = read_ca_path(source, "ca_cert", used=https and cert_validation == "validate")
    wsman_cert_validation: bool | str
    if cert_validation == "ignore":
        wsman_cert_validation = False
    elif ca_cert:
        wsman_cert_validation = ca_cert
    else:
        wsman_cert_validation = True

    timeouts: dict[str, int] = {}
    for option in ("connection_timeout", "read_timeout", "operation_timeout"):
        value, var = read(option)
        timeouts[option] = _validation.integer(var, value, minimum=1)
    require_read_above_operation(
        source,
        "read_timeout",
        "operation_timeout",
        timeouts["operation_timeout"],
        timeouts["read_timeout"],
    )
    retry_policy = read_retry_policy(source)

    encryption_value, encryption_var = read("message_encryption")
    encryption = _validation.choice(encryption_var, encryption_value, ("auto", "always", "never"))
    needs_encryption = encryption == "always" or (not https and encryption == "auto")
    if needs_encryption and auth not in MESSAGE_ENCRYPTION_AUTHS:
        allowed = "auto or never" if https else "never (or use https)"
        raise OptionError(
            encryption_var,
            encryption_value,
            f"{allowed} with {auth_var} {auth}, which cannot encrypt messages",
        )

    proxy_value, proxy_var = read("proxy")
    proxy = None if proxy_value is None else _validation.proxy_url(proxy_var, proxy_value)
    ignore_proxy_value, ignore_proxy_var = read("ignore_proxy")
    ignore_proxy = _validation.boolean(ignore_proxy_var, ignore_proxy_value)

    cert_pem_value, cert_pem_var = read("certificate_pem")
    key_pem_value, key_pem_var = read("certificate_key_pem")
    cert_pem = _validation.optional_string(
        cert_pem_var, cert_pem_value, "the path of a PEM certificate"
    )
    key_pem = _validation.optional_string(
        key_pem_var, key_pem_value, "the path of a PEM private key"
    )
    if auth == "certificate":
        _validation.require(
            cert_pem is not None,
            cert_pem_var,
            cert_pem_value,
            f"the path of the client certificate (PEM) when {auth_var} is certificate",
        )
        _validation.require(
            key_pem is not None,
            key_pem_var,
            key_pem_value,
            f"the path of the client certificate's key (PEM) when {auth_var} is certificate",
        )
        _validation.require(
            https,
            protocol_var,
            protocol_value if protocol_value is not None else endpoint.scheme,
            f"https when {auth_var} is certificate",
        )
    if cert_pem is not None:
        cert_pem = _validation.existing_file(cert_pem_var, cert_pem)
    if key_pem is not None:
        key_pem = _validation.existing_file(key_pem_var, key_pem)
    key_password = read_password(source, "certificate_key_password")
    if auth == "certificate":
        _validation.encrypted_client_key(
            key_pem_var,
            t.cast(str, key_pem),
            cert_var=cert_pem_var,
            cert_path=t.cast(str, cert_pem),
            password_var=source.label("certificate_key_password"),
            password=key_password,
        )

    # As the winrm plugin: a password-based logon needs a user name, and an empty one is never
    # a user name (unset, Negotiate and Kerberos may use the controller's ticket cache). The
    # client certificate alone names the account with certificate authentication.
    _validation.require(
        user is None or bool(user.strip()) or auth == "certificate",
        user_var,
        user_value,
        "a user name, or no value at all (the controller's Kerberos ticket cache)",
    )
    if auth in USER_REQUIRED_AUTHS:
        _validation.require(
            user is not None, user_var, user_value, f"a user name when {auth_var} is {auth}"
        )
    if auth in ("basic", "credssp"):
        if password is None:
            raise OptionError(password_var, None, f"a password when {auth_var} is {auth}")

    mechanism_value, mechanism_var = read("credssp_auth_mechanism")
    credssp_mechanism = _validation.choice(
        mechanism_var, mechanism_value, ("auto", "kerberos", "ntlm")
    )
    tls_value, tls_var = read("credssp_disable_tlsv1_2")
    credssp_disable_tlsv1_2 = _validation.boolean(tls_var, tls_value)
    min_version_value, min_version_var = read("credssp_minimum_version")
    credssp_minimum_version = _validation.integer(min_version_var, min_version_value, minimum=1)

    cbt_value, cbt_var = read("negotiate_send_cbt")
    send_cbt = _validation.boolean(cbt_var, cbt_value)
    delegate_value, delegate_var = read("negotiate_delegate")
    delegate = None if delegate_value is None else _validation.boolean(delegate_var, delegate_value)
    override_value, override_var = read("negotiate_hostname_override")
    hostname_override = _validation.optional_string(override_var, override_value, "a host name")
    service = read_kerberos_service(source, "negotiate_service", "WSMAN")

    max_envelope_size = read_max_envelope_size(source) or DEFAULT_MAX_ENVELOPE_SIZE

    configuration_value, configuration_var = read("configuration_name")
    configuration_name = _validation.nonblank_string(
        configuration_var,
        configuration_value,
        "a PowerShell session configuration name such as Microsoft.PowerShell",
    )

    kinit = _read_kinit(
        source,
        auth=auth,
        auth_var=auth_var,
        user=user,
        user_var=user_var,
        password=password,
        delegate=delegate,
    )

    wsman_kwargs: dict[str, t.Any] = {
        "server": endpoint.host,
        "port": endpoint.port,
        "username": user,
        # With managed Kerberos the password goes to kinit only; pypsrp uses the private ccache.
        "password": None if kinit is not None else password,
        "ssl": https,
        "path": endpoint.path,
        "auth": auth,
        "cert_validation": wsman_cert_validation,
        "connection_timeout": timeouts["connection_timeout"],
        "encryption": encryption,
        "proxy": proxy,
        "no_proxy": ignore_proxy,
        "max_envelope_size": max_envelope_size,
        "operation_timeout": timeouts["operation_timeout"],
        "read_timeout": timeouts["read_timeout"],
        "reconnection_retries": retry_policy.retries,
        "reconnection_backoff": retry_policy.backoff,
        "certificate_key_pem": key_pem,
        "certificate_pem": cert_pem,
        "credssp_auth_mechanism": credssp_mechanism,
        "credssp_disable_tlsv1_2": credssp_disable_tlsv1_2,
        "credssp_minimum_version": credssp_minimum_version,
        "negotiate_send_cbt": send_cbt,
        "negotiate_delegate": delegate,
        "negotiate_hostname_override": hostname_override,
        "negotiate_service": service,
    }
    if key_password is not None:
        wsman_kwargs["certificate_key_password"] = key_password
    passed, _unknown = _read_extras(source.extras(), warn)
    wsman_kwargs.update(passed)

    return PsrpSettings(
        plugin=PLUGIN,
        endpoint=endpoint,
        auth=auth,
        user=user,
        cert_validation=wsman_cert_validation is not False,
        ca_path=wsman_cert_validation if isinstance(wsman_cert_validation, str) else None,
        message_encryption=encryption,
        kerberos_realm=None,
        kerberos_service=service,
        kerberos_hostname_override=hostname_override,
        kinit=kinit,
        operation_timeout=timeouts["operation_timeout"],
        read_timeout=timeouts["read_timeout"],
        retry_policy=retry_policy,
        command_timeout=read_command_timeout(source),
        max_envelope_size=max_envelope_size,
        secrets=tuple(secret for secret in (password, key_password) if secret)
        + proxy_secrets(proxy),
        wsman_kwargs=wsman_kwargs,
        configuration_name=configuration_name,
        start_ahead=_validation.boolean(
            source.label("session_start_ahead"), source.value("session_start_ahead")
        ),
    )
