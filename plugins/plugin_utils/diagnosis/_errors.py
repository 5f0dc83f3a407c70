"""Translating connection failures into which layer failed, what was seen and what fixes it.

Internal use only: this module is not part of the collection's public API.

``diagnose`` reads the exception chain that pywinrm, pypsrp, requests, urllib3, ssl and socket
build (causes, contexts and the errors urllib3 keeps in ``reason`` or ``args``) without
importing any of those libraries' exception classes: it matches by class name, attributes and
the standard library types, so it works whichever of them is installed. ``_failure`` builds
the error users see from the diagnosis, with every secret redacted.

The summaries and fixes are worded in ``_errors_fixes`` (shared with winrm_doctor); ``Layer``
and ``Diagnosis`` are defined there and imported from here by the plugins.
"""

from __future__ import annotations

import datetime
import email.utils
import errno
import re
import socket
import ssl
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    exception_chain,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
    Endpoint,
    is_ip_literal,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors_fixes import (
    MAX_KERBEROS_CLOCK_SKEW,
    UNKNOWN_SERVICE,
    Diagnosis,
    Layer,
    PluginVars,
    auth_not_offered,
    certificate_problem,
    closed_connection,
    kerberos_by_address,
    kerberos_clock_skew,
    kerberos_unknown_service,
    unencrypted_refused,
    variable_names,
)

# The service principal MIT names in "Server HTTP/host@REALM not found in Kerberos database".
REQUESTED_SPN = re.compile(r"Server (\S+?)@\S+ not found")


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


def _response_headers(chain: list[BaseException]) -> t.Iterator[t.Any]:
    """The headers of the HTTP responses the errors in ``chain`` carry."""
    for error in chain:
        headers = getattr(getattr(error, "response", None), "headers", None)
        if headers is not None and hasattr(headers, "get"):
            yield headers


def offered_auth_schemes(chain: list[BaseException]) -> list[str]:
    """The schemes in every WWW-Authenticate header of the HTTP responses in ``chain``."""
    schemes: list[str] = []
    for headers in _response_headers(chain):
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
    names = variable_names(plugin)
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
    unknown_service = _first(chain, lambda e: bool(UNKNOWN_SERVICE.search(str(e))))
    if unknown_service is not None:
        text = str(unknown_service)
        asked = REQUESTED_SPN.search(text)
        spn = asked.group(1) if asked else f"HTTP/{endpoint.host}"
        if is_ip_literal(spn.partition("/")[2]):
            return kerberos_by_address(endpoint, plugin, text)
        return kerberos_unknown_service(spn, plugin, text)
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
    chain: list[BaseException], endpoint: Endpoint, names: PluginVars, plugin: str
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
    chain: list[BaseException], endpoint: Endpoint, names: PluginVars, plugin: str
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
    # Part of an answer arrived before the connection broke: the host had the request, so
    # this is not a firewall or a wrong port, and what it started may be running.
    broken_answer = _first(
        chain,
        lambda e: bool(
            {"ChunkedEncodingError", "IncompleteRead", "InvalidChunkLength"} & _class_names(e)
        ),
    )
    if broken_answer is not None:
        return Diagnosis(
            Layer.WSMAN,
            "the connection broke while the host was sending its answer",
            str(broken_answer),
            "rerun the task: a request that may have started a command is never repeated "
            f"automatically ({names.retries} covers only the steps that are safe to repeat); "
            "if it recurs, look for a proxy, load balancer or firewall cutting long responses",
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


def _host_clock_skew(chain: list[BaseException]) -> Diagnosis | None:
    """The clock-skew diagnosis when a response in ``chain`` carries a Date too far from ours.

    A host whose clock drifted refuses the Kerberos authenticator (KRB_AP_ERR_SKEW) with a
    plain 401; its HTTP Date header is the evidence the doctor's clock check uses too.
    """
    now = datetime.datetime.now(datetime.timezone.utc)
    for headers in _response_headers(chain):
        try:
            host_date = email.utils.parsedate_to_datetime(str(headers.get("Date", "") or ""))
        except (TypeError, ValueError):
            continue
        if host_date.tzinfo is None:
            continue
        skew = host_date - now
        if abs(skew) > MAX_KERBEROS_CLOCK_SKEW:
            return kerberos_clock_skew(host_date.astimezone(datetime.timezone.utc), skew)
    return None


def _diagnose_auth(
    chain: list[BaseException], transport: str, names: PluginVars, plugin: str
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
    if transport == "kerberos":
        skewed = _host_clock_skew(chain)
        if skewed is not None:
            return skewed
    offered = offered_auth_schemes(chain)
    evidence = f"{auth_error}; server offered: {', '.join(offered) or 'no readable schemes'}"
    not_offered = auth_not_offered(transport, offered, plugin, evidence)
    if not_offered is not None:
        return not_offered
    if any(_http_status(e) == 401 and _plain_http_request(e) for e in chain):
        return unencrypted_refused(transport, plugin, evidence)
    summary = "the credentials were rejected"
    if transport == "certificate":
        summary = "the client certificate was refused (not trusted, not mapped, or stale mapping)"
        fix = (
            "make the host trust and map the client certificate with the winops.remoting.winrm_auth "
            "role: its issuer in LocalMachine\\Root and the certificate in TrustedPeople "
            "(winrm_auth_trusted_certificates), a mapping of its UPN and issuer thumbprint to a "
            "local account with that account's current password (winrm_auth_certificate_mappings)"
        )
    else:
        fix = f"check ansible_user and ansible_password for {transport} authentication"
    return Diagnosis(Layer.HTTP_AUTH, summary, evidence, fix)


def _diagnose_http_status(chain: list[BaseException], names: PluginVars) -> Diagnosis | None:
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


def _diagnose_wsman(chain: list[BaseException], names: PluginVars) -> Diagnosis | None:
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
    code = fault_code(fault)
    reason = str(getattr(fault, "reason", "") or fault)
    evidence = f"WSManFault code {code}: {reason}"
    lowered = reason.lower()
    if code == _wsman_faults.OPERATION_TIMEOUT:
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
    chain: list[BaseException], transport: str, names: PluginVars
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
    names = variable_names(plugin)
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
