"""Translating connection failures into which layer failed, what was seen and what fixes it.

Internal use only: this module is not part of the collection's public API.

``diagnose`` reads the exception chain that pywinrm, pypsrp, requests, urllib3, ssl and socket
build (causes, contexts and the errors urllib3 keeps in ``reason`` or ``args``) without
importing any of those libraries' exception classes: it matches by class name, attributes and
the standard library types, so it works whichever of them is installed. Callers redact secrets
from the final message (``_redact.redact``) before it is shown.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import re
import socket
import ssl
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils._endpoint import Endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils._retry import exception_chain

# The WSManFault code Windows sends when Receive waited OperationTimeout without output.
WSMAN_OPERATION_TIMEOUT = 2150858793


class Layer(enum.Enum):
    """The step of a connection that failed, from the network up."""

    NAME_RESOLUTION = "name resolution"
    TCP = "TCP connection"
    TLS = "TLS handshake"
    HTTP_AUTH = "HTTP authentication"
    MESSAGE_ENCRYPTION = "message encryption"
    WSMAN = "WS-Management"
    KERBEROS = "Kerberos"
    TRANSFER = "file transfer"
    COMMAND = "command"


@dataclasses.dataclass
class Diagnosis:
    """What failed (one sentence), what was seen, and the variable or role that fixes it."""

    layer: Layer
    summary: str
    evidence: str
    fix: str


class DiagnosedConnectionFailure(AnsibleConnectionFailure):
    """An AnsibleConnectionFailure that carries the Diagnosis its message was built from."""

    def __init__(self, message: str, diagnosis: Diagnosis) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


@dataclasses.dataclass(frozen=True)
class _PluginVars:
    auth: str
    cert_validation: str
    ca: str
    scheme: str
    encryption: str
    path: str
    read_timeout: str
    operation_timeout: str
    connection_timeout: str
    max_envelope: str
    retries: str
    kinit_cmd: str
    hostname_override: str


_PLUGIN_VARS = {
    "winrm": _PluginVars(
        auth="ansible_winrm_transport",
        cert_validation="ansible_winrm_server_cert_validation",
        ca="ansible_winrm_ca_trust_path",
        scheme="ansible_winrm_scheme",
        encryption="ansible_winrm_message_encryption",
        path="ansible_winrm_path",
        read_timeout="ansible_winrm_read_timeout_sec",
        operation_timeout="ansible_winrm_operation_timeout_sec",
        connection_timeout="ansible_winrm_connection_timeout",
        max_envelope="ansible_winrm_max_envelope_size",
        retries="ansible_winrm_reconnection_retries",
        kinit_cmd="ansible_winrm_kinit_cmd",
        hostname_override="ansible_winrm_kerberos_hostname_override",
    ),
    "psrp": _PluginVars(
        auth="ansible_psrp_auth",
        cert_validation="ansible_psrp_cert_validation",
        ca="ansible_psrp_ca_cert",
        scheme="ansible_psrp_protocol",
        encryption="ansible_psrp_message_encryption",
        path="ansible_psrp_path",
        read_timeout="ansible_psrp_read_timeout",
        operation_timeout="ansible_psrp_operation_timeout",
        connection_timeout="ansible_psrp_connection_timeout",
        max_envelope="ansible_psrp_max_envelope_size",
        retries="ansible_psrp_reconnection_retries",
        kinit_cmd="ansible_psrp_kinit_cmd",
        hostname_override="ansible_psrp_negotiate_hostname_override",
    ),
}

# Which WWW-Authenticate scheme each transport needs from the listener.
_TRANSPORT_SCHEMES = {
    "basic": ("basic",),
    "plaintext": ("basic",),
    "ssl": ("basic",),
    "ntlm": ("negotiate", "ntlm"),
    "negotiate": ("negotiate",),
    "kerberos": ("kerberos", "negotiate"),
    "credssp": ("credssp",),
}
# How MIT, Heimdal and Windows say that the KDC has no principal for the service asked for.
_UNKNOWN_SERVICE = re.compile(r"not found in Kerberos database|S_PRINCIPAL_UNKNOWN", re.I)
# Transports whose security context encrypts WinRM messages over plain HTTP.
_ENCRYPTING_TRANSPORTS = frozenset(("ntlm", "negotiate", "kerberos", "credssp"))
# The role that turns a transport on where the default (winrm_auth) is not the right one.
_ENABLING_ROLES = {"credssp": "winops.remoting.credssp_delegation"}
# And the transports a scheme the listener offers makes possible, for the fix hint.
_SCHEME_TRANSPORTS = {
    "basic": "basic",
    "negotiate": "negotiate or ntlm",
    "kerberos": "kerberos",
    "credssp": "credssp",
}


def _plugin_vars(plugin: str) -> _PluginVars:
    return _PLUGIN_VARS["psrp" if "psrp" in plugin.lower() else "winrm"]


def variable_names(plugin: str) -> _PluginVars:
    """The inventory variables of ``plugin`` (winrm or psrp) that fixes name."""
    return _plugin_vars(plugin)


# The builders below are the one place each problem's summary and fix are worded: the
# classifier (a failed task) and the doctor's checks both call them, so a failed win_ping and
# the doctor say the same thing about the same set-up.


def closed_connection(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """The host accepted the TCP connection and closed it without answering."""
    names = _plugin_vars(plugin)
    return Diagnosis(
        Layer.TCP,
        f"the host closed the connection on port {endpoint.port} without answering",
        evidence,
        "allow the controller's address in the host's firewall rule for port "
        f"{endpoint.port} (winrm_listener_firewall_remote_addresses of the "
        f"winops.remoting.winrm_listener role); check {names.scheme} and ansible_port "
        "against the host's listeners",
    )


def certificate_problem(verify_message: str, endpoint: Endpoint, plugin: str) -> Diagnosis:
    """Why certificate validation failed, from OpenSSL's verify message."""
    names = _plugin_vars(plugin)
    evidence = f"certificate verify failed: {verify_message}"
    lowered = verify_message.lower()
    if "expired" in lowered:
        return Diagnosis(
            Layer.TLS,
            "the listener's certificate has expired",
            evidence,
            "renew the listener certificate with the winops.remoting.winrm_https_cert role "
            "(winrm_https_cert_renew_days_before_expiry) and bind it with the "
            "winops.remoting.winrm_listener role",
        )
    if "not yet valid" in lowered:
        return Diagnosis(
            Layer.TLS,
            "the listener's certificate is not valid yet",
            evidence,
            "correct the clock of the host or the controller, or reissue the certificate with "
            "the winops.remoting.winrm_https_cert role",
        )
    if "mismatch" in lowered or "not valid for" in lowered:
        return Diagnosis(
            Layer.TLS,
            f"the listener's certificate is not issued for {endpoint.host!r}",
            evidence,
            "set ansible_host to a name the certificate lists (its subject alternative names), "
            f"or reissue it for {endpoint.host} with the winops.remoting.winrm_https_cert role "
            "(winrm_https_cert_dns_names, winrm_https_cert_ip_addresses)",
        )
    return Diagnosis(
        Layer.TLS,
        "the listener's certificate is not trusted",
        evidence,
        f"set {names.ca} to the CA bundle that issued the listener certificate (the "
        f"winops.remoting.winrm_https_cert role exports it), or {names.cert_validation}: "
        f"ignore on a lab host",
    )


def auth_not_offered(
    transport: str, offered: t.Sequence[str], plugin: str, evidence: str
) -> Diagnosis | None:
    """The diagnosis when the listener offers none of the schemes ``transport`` needs.

    None when it offers one of them, or when nothing is known (no schemes, or a transport
    such as certificate that is not negotiated through WWW-Authenticate).
    """
    names = _plugin_vars(plugin)
    needed = _TRANSPORT_SCHEMES.get(transport, ())
    offered_lower = [scheme.lower() for scheme in offered]
    if not offered or not needed or any(scheme in offered_lower for scheme in needed):
        return None
    usable = [_SCHEME_TRANSPORTS[s] for s in offered_lower if s in _SCHEME_TRANSPORTS]
    choice = f"set {names.auth} to {' or '.join(usable)}, or " if usable else ""
    role = _ENABLING_ROLES.get(transport, "winops.remoting.winrm_auth")
    return Diagnosis(
        Layer.HTTP_AUTH,
        f"the listener does not offer {transport} authentication",
        evidence,
        f"{choice}enable {transport} on the host with the {role} role",
    )


def kerberos_by_address(endpoint: Endpoint, plugin: str, evidence: str) -> Diagnosis:
    """Kerberos asked for a service principal named after an IP address, which no KDC holds."""
    names = _plugin_vars(plugin)
    return Diagnosis(
        Layer.KERBEROS,
        f"Kerberos needs the host's name, but ansible_host is the IP address {endpoint.host}",
        evidence,
        "set ansible_host to the host's fully qualified name (its SPN is HTTP/<fqdn>), or set "
        f"{names.hostname_override} to that name",
    )


def unencrypted_refused(transport: str, plugin: str, evidence: str) -> Diagnosis:
    """The host refused a plain (unencrypted) message over HTTP: AllowUnencrypted is off."""
    names = _plugin_vars(plugin)
    if transport in _ENCRYPTING_TRANSPORTS:
        change = (
            f"set {names.encryption}: auto ({transport} encrypts messages over http), or use "
            f"https ({names.scheme}: https, ansible_port: 5986)"
        )
    else:
        change = (
            f"use https ({names.scheme}: https, ansible_port: 5986), or set {names.auth} to "
            "ntlm, kerberos or credssp, which encrypt messages over http"
        )
    return Diagnosis(
        Layer.MESSAGE_ENCRYPTION,
        "the host refused an unencrypted message over http (its AllowUnencrypted is false)",
        evidence,
        f"{change}; enabling AllowUnencrypted on the host (winrm_auth_allow_unencrypted of the "
        "winops.remoting.winrm_auth role) exposes every message",
    )


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _module_of(exc: BaseException) -> str:
    return type(exc).__module__.split(".", 1)[0]


def _first(
    chain: list[BaseException], test: t.Callable[[BaseException], bool]
) -> BaseException | None:
    return next((error for error in chain if test(error)), None)


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return status
    if _module_of(exc) in ("winrm", "pypsrp") and "WinRMTransportError" in _class_names(exc):
        code = getattr(exc, "code", None)
        return code if isinstance(code, int) else None
    return None


def offered_auth_schemes(chain: list[BaseException]) -> list[str]:
    """The schemes in every WWW-Authenticate header of the HTTP responses in ``chain``."""
    schemes: list[str] = []
    for error in chain:
        headers = getattr(getattr(error, "response", None), "headers", None)
        if headers is None or not hasattr(headers, "get"):
            continue
        for scheme in auth_schemes(str(headers.get("WWW-Authenticate", "") or "")):
            if scheme not in schemes:
                schemes.append(scheme)
    return schemes


def auth_schemes(www_authenticate: str) -> list[str]:
    """The schemes of a WWW-Authenticate value (several headers arrive joined by commas)."""
    schemes: list[str] = []
    for item in www_authenticate.split(","):
        words = item.strip().split()
        # Items holding only auth-params (realm="x") continue the previous challenge.
        if words and "=" not in words[0] and words[0] not in schemes:
            schemes.append(words[0])
    return schemes


def _diagnose_kerberos(
    chain: list[BaseException], transport: str, endpoint: Endpoint, plugin: str
) -> Diagnosis | None:
    names = _plugin_vars(plugin)
    kerberos_error = _first(chain, lambda e: "KerberosError" in _class_names(e))
    if kerberos_error is not None:
        return Diagnosis(
            Layer.KERBEROS,
            "no Kerberos ticket could be obtained",
            str(kerberos_error),
            "check ansible_user (user@REALM, realm in uppercase) and ansible_password, the "
            f"realm in /etc/krb5.conf, or set {names.kinit_cmd}",
        )
    spnego_error = _first(
        chain,
        lambda e: (
            _module_of(e) in ("spnego", "gssapi", "krb5", "kerberos")
            or "KerberosExchangeError" in _class_names(e)  # pywinrm's vendored requests_kerberos
        ),
    )
    if spnego_error is None:
        return None
    if _UNKNOWN_SERVICE.search(str(spnego_error)) and endpoint.is_ip_address:
        return kerberos_by_address(endpoint, plugin, str(spnego_error))
    if transport == "kerberos" or "kerberos" in str(spnego_error).lower():
        return Diagnosis(
            Layer.KERBEROS,
            "the Kerberos security context could not be created",
            str(spnego_error),
            "check that the host name in ansible_host has an SPN (HTTP/<fqdn>) in the realm "
            f"and that a ticket exists (klist), or set {names.hostname_override}",
        )
    return Diagnosis(
        Layer.HTTP_AUTH,
        f"the {transport} security context could not be created",
        str(spnego_error),
        "check ansible_user and ansible_password",
    )


def _diagnose_tls(
    chain: list[BaseException], endpoint: Endpoint, names: _PluginVars, plugin: str
) -> Diagnosis | None:
    verify_error = _first(chain, lambda e: isinstance(e, ssl.SSLCertVerificationError))
    if verify_error is not None:
        detail = getattr(verify_error, "verify_message", None) or str(verify_error)
        return certificate_problem(detail, endpoint, plugin)
    tls_error = _first(
        chain, lambda e: isinstance(e, ssl.SSLError) or "SSLError" in _class_names(e)
    )
    if tls_error is None:
        return None
    text = str(tls_error)
    eof = _first(chain, lambda e: isinstance(e, ssl.SSLEOFError))
    if eof is not None or "UNEXPECTED_EOF" in text or "EOF occurred" in text:
        # Closed during the handshake: the same as a connection closed before any answer.
        return closed_connection(endpoint, plugin, text)
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return Diagnosis(
            Layer.TLS,
            f"port {endpoint.port} did not answer TLS: it is most likely a plain HTTP listener",
            text,
            f"set {names.scheme}: http (or ansible_port: 5986 for the HTTPS listener)",
        )
    if any(word in text for word in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS")):
        return Diagnosis(
            Layer.TLS,
            "the host and the controller share no TLS version",
            text,
            "enable TLS 1.2 on the host with the winops.remoting.tls12 role",
        )
    return Diagnosis(
        Layer.TLS,
        "the TLS handshake failed",
        text,
        f"check {names.scheme} and ansible_port against the host's listeners "
        f"(winops.remoting.winrm_listener role), and {names.cert_validation}",
    )


def _diagnose_network(
    chain: list[BaseException], endpoint: Endpoint, names: _PluginVars, plugin: str
) -> Diagnosis | None:
    name_error = _first(
        chain,
        lambda e: isinstance(e, socket.gaierror) or "NameResolutionError" in _class_names(e),
    )
    if name_error is not None:
        return Diagnosis(
            Layer.NAME_RESOLUTION,
            f"the host name {endpoint.host!r} could not be resolved",
            str(name_error),
            "set ansible_host to a resolvable name or to the host's IP address",
        )
    refused = _first(
        chain,
        lambda e: (
            isinstance(e, ConnectionRefusedError)
            or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED)
        ),
    )
    if refused is not None:
        return Diagnosis(
            Layer.TCP,
            f"nothing accepted the connection on port {endpoint.port}",
            str(refused),
            "check ansible_port (5985 for HTTP, 5986 for HTTPS) and create the listener with "
            "the winops.remoting.winrm_listener role",
        )
    read_timeout = _first(
        chain, lambda e: bool({"ReadTimeout", "ReadTimeoutError"} & _class_names(e))
    )
    if read_timeout is not None:
        return Diagnosis(
            Layer.WSMAN,
            "the host accepted the request but did not answer within the read timeout",
            str(read_timeout),
            f"raise {names.read_timeout} (it must stay above the operation timeout)",
        )
    timed_out = _first(
        chain,
        lambda e: (
            isinstance(e, (TimeoutError, socket.timeout))
            or bool({"ConnectTimeout", "ConnectTimeoutError"} & _class_names(e))
        ),
    )
    if timed_out is not None:
        return Diagnosis(
            Layer.TCP,
            f"port {endpoint.port} did not answer in time",
            str(timed_out),
            "open the port in the host's firewall for the controller (winops.remoting."
            f"winrm_listener role) or raise {names.connection_timeout}",
        )
    reset = _first(chain, lambda e: isinstance(e, (ConnectionResetError, ConnectionAbortedError)))
    if reset is not None:
        return closed_connection(endpoint, plugin, str(reset))
    return None


def _plain_http_request(error: BaseException) -> bool:
    """Whether the request behind an HTTP error was a plain SOAP message over http.

    pywinrm and pypsrp authenticate with an empty body before they encrypt, so a refused
    request that carried readable SOAP was sent without message encryption.
    """
    request = getattr(getattr(error, "response", None), "request", None)
    url = str(getattr(request, "url", "") or "")
    headers = getattr(request, "headers", None) or {}
    content_type = str(headers.get("Content-Type", "") or "")
    return url.lower().startswith("http://") and content_type.startswith("application/soap+xml")


def _diagnose_auth(
    chain: list[BaseException], transport: str, names: _PluginVars, plugin: str
) -> Diagnosis | None:
    credssp_error = _first(chain, lambda e: _module_of(e) == "requests_credssp")
    if credssp_error is not None:
        # requests-credssp reads the 401 itself and names the header it got in its message.
        text = str(credssp_error)
        header = re.search(r"actual:? '([^']*)'", text)
        offered = auth_schemes(header.group(1)) if header else []
        evidence = f"{text}; server offered: {', '.join(offered) or 'no readable schemes'}"
        not_offered = auth_not_offered(transport, offered, plugin, evidence)
        if not_offered is not None:
            return not_offered
        return Diagnosis(
            Layer.HTTP_AUTH,
            "the credentials were rejected",
            evidence,
            f"check ansible_user and ansible_password for {transport} authentication",
        )
    auth_error = _first(
        chain,
        lambda e: (
            _http_status(e) == 401
            or (_module_of(e) in ("winrm", "pypsrp") and "AuthenticationError" in _class_names(e))
        ),
    )
    if auth_error is None:
        return None
    offered = offered_auth_schemes(chain)
    evidence = f"{auth_error}; server offered: {', '.join(offered) or 'no readable schemes'}"
    not_offered = auth_not_offered(transport, offered, plugin, evidence)
    if not_offered is not None:
        return not_offered
    if any(_http_status(e) == 401 and _plain_http_request(e) for e in chain):
        return unencrypted_refused(transport, plugin, evidence)
    if transport == "certificate":
        fix = "map the client certificate to a user with the winops.remoting.winrm_auth role"
    else:
        fix = f"check ansible_user and ansible_password for {transport} authentication"
    return Diagnosis(Layer.HTTP_AUTH, "the credentials were rejected", evidence, fix)


def _diagnose_http_status(chain: list[BaseException], names: _PluginVars) -> Diagnosis | None:
    status_error = _first(chain, lambda e: _http_status(e) is not None)
    if status_error is None:
        return None
    status = _http_status(status_error)
    if status == 404:
        return Diagnosis(
            Layer.WSMAN,
            "the listener answered 404: no WS-Management service at this path",
            str(status_error),
            f"set {names.path} to the listener's URL prefix (default wsman)",
        )
    return Diagnosis(
        Layer.WSMAN,
        f"the listener answered HTTP {status}",
        str(status_error),
        f"check the WinRM service on the host; 502/503/504 usually pass, so raise {names.retries}",
    )


def _diagnose_wsman(chain: list[BaseException], names: _PluginVars) -> Diagnosis | None:
    if _first(chain, lambda e: "WinRMOperationTimeoutError" in _class_names(e)) is not None:
        return Diagnosis(
            Layer.WSMAN,
            "the host did not finish the operation within the operation timeout",
            "WinRMOperationTimeoutError",
            f"raise {names.operation_timeout} and {names.read_timeout} (read above operation)",
        )
    fault = _first(chain, lambda e: "WSManFaultError" in _class_names(e))
    if fault is None:
        return None
    # pywinrm keeps the HTTP status in .code and the WSMan code in .wsman_fault_code.
    if hasattr(fault, "wsman_fault_code"):
        code = fault.wsman_fault_code
    else:
        code = getattr(fault, "code", None)
    reason = str(getattr(fault, "reason", "") or fault)
    evidence = f"WSManFault code {code}: {reason}"
    lowered = reason.lower()
    if code == WSMAN_OPERATION_TIMEOUT:
        fix = f"raise {names.operation_timeout} and {names.read_timeout} (read above operation)"
        summary = "the host did not finish the operation within the operation timeout"
    elif "maxenvelopesize" in lowered or "envelope size" in lowered:
        fix = f"lower {names.max_envelope} to the host's MaxEnvelopeSizekb * 1024"
        summary = "a request was larger than the host's MaxEnvelopeSize"
    elif "access is denied" in lowered or code == 5:
        fix = (
            "give ansible_user administrator rights or membership in Remote Management Users "
            "(winops.remoting.winrm_hardening role)"
        )
        summary = "the host denied access to the WinRM service"
    elif "resource uri" in lowered or "configuration" in lowered:
        fix = "set ansible_psrp_configuration_name to a session configuration the host has"
        summary = "the requested session configuration or resource does not exist"
    elif "quota" in lowered or "maximum number" in lowered:
        fix = "close other sessions of ansible_user or raise MaxShellsPerUser on the host"
        summary = "the host refused another shell: a quota is exhausted"
    else:
        fix = "read the fault reason; the WinRM service configuration is set by the winops.remoting roles"
        summary = "the host answered with a WS-Management fault"
    return Diagnosis(Layer.WSMAN, summary, evidence, fix)


def _diagnose_other(
    chain: list[BaseException], transport: str, names: _PluginVars
) -> Diagnosis | None:
    transfer_error = _first(chain, lambda e: "TransferError" in _class_names(e))
    if transfer_error is not None:
        return Diagnosis(
            Layer.TRANSFER,
            "a file transfer failed",
            str(transfer_error),
            f"check the remote path and free space; {names.max_envelope} sizes the chunks",
        )
    encryption_error = _first(chain, lambda e: "encrypt" in str(e).lower())
    if encryption_error is not None:
        return Diagnosis(
            Layer.MESSAGE_ENCRYPTION,
            f"message encryption is not possible with {transport} here",
            str(encryption_error),
            f"set {names.encryption}: auto and use ntlm, kerberos or credssp over http, "
            f"or use https ({names.scheme})",
        )
    return None


def diagnose(exc: BaseException, endpoint: Endpoint, transport: str, plugin: str) -> Diagnosis:
    """Work out which layer ``exc`` comes from, what was seen, and what fixes it.

    ``transport`` is the auth in use (``ntlm``, ``kerberos``...); ``plugin`` is ``winrm`` or
    ``psrp`` and decides which variable names the fix mentions.
    """
    names = _plugin_vars(plugin)
    chain = list(exception_chain(exc))
    transport = transport.lower()
    for step in (
        lambda: _diagnose_kerberos(chain, transport, endpoint, plugin),
        lambda: _diagnose_tls(chain, endpoint, names, plugin),
        lambda: _diagnose_network(chain, endpoint, names, plugin),
        lambda: _diagnose_auth(chain, transport, names, plugin),
        lambda: _diagnose_wsman(chain, names),
        lambda: _diagnose_http_status(chain, names),
        lambda: _diagnose_other(chain, transport, names),
    ):
        diagnosis = step()
        if diagnosis is not None:
            return diagnosis
    return Diagnosis(
        Layer.WSMAN,
        f"unexpected {type(exc).__name__}",
        str(exc),
        f"check ansible_host, ansible_port and {names.auth}; rerun with -vvvvv for details",
    )


def connection_failure(
    exc: BaseException, endpoint: Endpoint, transport: str, plugin: str
) -> AnsibleConnectionFailure:
    """An AnsibleConnectionFailure whose message explains ``exc``; raise it ``from exc``.

    Message: ``<plugin>: <layer> failed connecting to <url>: <summary>`` followed by
    ``seen:`` and ``fix:`` lines.
    """
    diagnosis = diagnose(exc, endpoint, transport, plugin)
    message = (
        f"{plugin}: {diagnosis.layer.value} failed connecting to {endpoint.url}: "
        f"{diagnosis.summary}\n  seen: {diagnosis.evidence}\n  fix: {diagnosis.fix}"
    )
    return DiagnosedConnectionFailure(message, diagnosis)
