"""Translating connection failures into which layer failed, what was seen and what fixes it.

Internal use only: this module is not part of the collection's public API.

``diagnose`` reads the exception chain that pywinrm, pypsrp, requests, urllib3, ssl and socket
build (causes, contexts and the errors urllib3 keeps in ``reason`` or ``args``) without
importing any of those libraries' exception classes: it matches by class name, attributes and
the standard library types, so it works whichever of them is installed. ``_failure`` builds
the error users see from the diagnosis, with every secret redacted.

Every summary and fix comes from the table in ``_wording`` (shared with winrm_doctor and the
Kerberos ticket helper); this module only decides which row applies and what was seen.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import errno
import re
import socket
import ssl
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    class_names,
    exception_chain,
    http_status,
    is_partial_answer,
    library_of,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
    Endpoint,
    is_ip_literal,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    ENCRYPTING_TRANSPORTS,
    MAX_KERBEROS_CLOCK_SKEW,
    SERVICE_TICKET_KEYS,
    UNKNOWN_SERVICE,
    Diagnosis,
    auth_not_offered,
    certificate_problem,
    closed_connection,
    describe,
    kerberos_by_address,
    kerberos_clock_skew,
    kerberos_message_key,
    kerberos_unknown_service,
    unencrypted_refused,
)

# The service principal MIT names in "Server HTTP/host@REALM not found in Kerberos database".
REQUESTED_SPN = re.compile(r"Server (\S+?)@\S+ not found")


def _first(
    chain: list[BaseException], test: t.Callable[[BaseException], bool]
) -> BaseException | None:
    return next((error for error in chain if test(error)), None)


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


# NTSTATUS and SSPI codes a CredSSP acceptor puts in TSRequest.errorCode (MS-CSSP 2.2.1) when
# it refuses the user's logon: SEC_E_LOGON_DENIED and STATUS_LOGON_FAILURE (MS-ERREF 2.3.1).
_CREDSSP_LOGON_REFUSED = {
    0x8009030C: "SEC_E_LOGON_DENIED, the logon attempt failed",
    0xC000006D: "STATUS_LOGON_FAILURE, unknown user name or bad password",
}


def _diagnose_credssp_status(
    chain: list[BaseException], transport: str, plugin: str
) -> Diagnosis | None:
    """A CredSSP acceptor's error status (requests-credssp's NTStatusException)."""
    status_error = _first(
        chain,
        lambda e: (
            library_of(e) == "requests_credssp" and isinstance(getattr(e, "status", None), int)
        ),
    )
    if status_error is None:
        return None
    status: int = getattr(status_error, "status", 0)
    meaning = _CREDSSP_LOGON_REFUSED.get(status)
    evidence = f"the host's CredSSP answer carried error status 0x{status:08X}" + (
        f" ({meaning})" if meaning else ""
    )
    if meaning is not None:
        return describe("credentials_rejected", plugin, evidence, transport=transport or "credssp")
    return describe(
        "security_context_failed", plugin, f"{evidence}: {status_error}", transport="credssp"
    )


def _diagnose_kerberos(
    chain: list[BaseException], transport: str, endpoint: Endpoint, plugin: str
) -> Diagnosis | None:
    kerberos_error = _first(chain, lambda e: "KerberosError" in class_names(e))
    if kerberos_error is not None:
        return describe("kerberos_no_ticket", plugin, str(kerberos_error))
    spnego_error = _first(
        chain,
        lambda e: (
            library_of(e) in ("spnego", "gssapi", "krb5", "kerberos")
            or "KerberosExchangeError" in class_names(e)  # pywinrm's vendored requests_kerberos
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
    known = kerberos_message_key(str(spnego_error))
    if known in SERVICE_TICKET_KEYS:
        return describe(known, plugin, str(spnego_error))
    if transport == "kerberos" or "kerberos" in str(spnego_error).lower():
        return describe("kerberos_no_context", plugin, str(spnego_error))
    return describe("security_context_failed", plugin, str(spnego_error), transport=transport)


def controller_context() -> ssl.SSLContext:
    """A client context as requests gets one from this Python: its OpenSSL, with the TLS
    versions that OpenSSL's build and configuration (OPENSSL_CONF) allow."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


# The versions this Python's ssl knows, oldest first, and whether its OpenSSL has each.
_TLS_VERSIONS = (
    (ssl.TLSVersion.TLSv1, ssl.HAS_TLSv1),
    (ssl.TLSVersion.TLSv1_1, ssl.HAS_TLSv1_1),
    (ssl.TLSVersion.TLSv1_2, ssl.HAS_TLSv1_2),
    (ssl.TLSVersion.TLSv1_3, ssl.HAS_TLSv1_3),
)


@dataclasses.dataclass(frozen=True)
class ControllerTls:
    """The TLS versions the controller can offer, and the OpenSSL that decides them."""

    openssl: str
    lowest: ssl.TLSVersion | None
    highest: ssl.TLSVersion | None

    @property
    def has_tls12(self) -> bool:
        return self.highest is not None and self.highest >= ssl.TLSVersion.TLSv1_2

    def describe(self) -> str:
        if self.lowest is None or self.highest is None:
            return f"the controller's {self.openssl} offers no TLS version"
        return (
            f"the controller's {self.openssl} offers {_version_name(self.lowest)} to "
            f"{_version_name(self.highest)}"
        )


def _version_name(version: ssl.TLSVersion) -> str:
    return version.name.replace("TLSv", "TLS ").replace("_", ".")


def controller_tls(context: ssl.SSLContext | None = None) -> ControllerTls:
    """What ``context`` (by default a fresh client context) lets the controller offer."""
    context = context or controller_context()
    low, high = context.minimum_version, context.maximum_version
    offered = [
        version
        for version, built in _TLS_VERSIONS
        if built
        and (low == ssl.TLSVersion.MINIMUM_SUPPORTED or version >= low)
        and (high == ssl.TLSVersion.MAXIMUM_SUPPORTED or version <= high)
    ]
    return ControllerTls(
        ssl.OPENSSL_VERSION, offered[0] if offered else None, offered[-1] if offered else None
    )


def _diagnose_tls(chain: list[BaseException], endpoint: Endpoint, plugin: str) -> Diagnosis | None:
    verify_error = _first(chain, lambda e: isinstance(e, ssl.SSLCertVerificationError))
    if verify_error is not None:
        detail = getattr(verify_error, "verify_message", None) or str(verify_error)
        return certificate_problem(detail, endpoint, plugin)
    tls_error = _first(chain, lambda e: isinstance(e, ssl.SSLError) or "SSLError" in class_names(e))
    if tls_error is None:
        return None
    text = str(tls_error)
    eof = _first(chain, lambda e: isinstance(e, ssl.SSLEOFError))
    if eof is not None or "UNEXPECTED_EOF" in text or "EOF occurred" in text:
        # Closed during the handshake: the same as a connection closed before any answer.
        return closed_connection(endpoint, plugin, text)
    if "WRONG_VERSION_NUMBER" in text or "record layer failure" in text:
        return describe("tls_plain_http_port", plugin, text, port=endpoint.port)
    no_shared_version = any(
        word in text for word in ("PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL", "NO_PROTOCOLS")
    )
    controller = controller_tls()
    # OpenSSL 3 refuses TLS 1.0/1.1 ciphers at its default security level: a controller held
    # below TLS 1.2 then fails with NO_CIPHERS_AVAILABLE before it asks the host anything.
    if not controller.has_tls12 and (no_shared_version or "NO_CIPHERS_AVAILABLE" in text):
        return describe(
            "controller_tls_too_old",
            plugin,
            f"{text}; {controller.describe()}",
            controller=controller.describe(),
        )
    if no_shared_version:
        return describe("tls_no_shared_version", plugin, f"{text}; {controller.describe()}")
    # Any error of the chain may carry OpenSSL's reason: requests' own SSLError may not.
    alert = _first(
        chain,
        lambda e: any(word in str(e) for word in ("ALERT_HANDSHAKE_FAILURE", "NO_SHARED_CIPHER")),
    )
    if alert is not None:
        return describe("tls_no_shared_cipher", plugin, str(alert))
    return describe("tls_handshake_failed", plugin, text)


def _diagnose_network(
    chain: list[BaseException], endpoint: Endpoint, plugin: str
) -> Diagnosis | None:
    name_error = _first(
        chain,
        lambda e: isinstance(e, socket.gaierror) or "NameResolutionError" in class_names(e),
    )
    if name_error is not None:
        return describe("name_not_resolved", plugin, str(name_error), host=endpoint.host)
    refused = _first(
        chain,
        lambda e: (
            isinstance(e, ConnectionRefusedError)
            or (isinstance(e, OSError) and e.errno == errno.ECONNREFUSED)
        ),
    )
    if refused is not None:
        return describe("tcp_refused", plugin, str(refused), port=endpoint.port)
    read_timeout = _first(
        chain, lambda e: bool({"ReadTimeout", "ReadTimeoutError"} & class_names(e))
    )
    if read_timeout is not None:
        return describe("read_timeout", plugin, str(read_timeout))
    timed_out = _first(
        chain,
        lambda e: (
            isinstance(e, (TimeoutError, socket.timeout))
            or bool({"ConnectTimeout", "ConnectTimeoutError"} & class_names(e))
        ),
    )
    if timed_out is not None:
        return describe("tcp_timeout", plugin, str(timed_out), port=endpoint.port)
    # Part of an answer arrived before the connection broke: the host had the request, so
    # this is not a firewall or a wrong port, and what it started may be running.
    broken_answer = _first(chain, is_partial_answer)
    if broken_answer is not None:
        return describe("answer_cut", plugin, str(broken_answer))
    reset = _first(
        chain,
        lambda e: isinstance(e, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)),
    )
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
    # pywinrm labels its empty authentication request as SOAP too: a 401 to that request is
    # about the credentials, nothing was encrypted or sent in the clear yet.
    carries_message = bool(getattr(request, "body", None))
    return (
        carries_message
        and url.lower().startswith("http://")
        and content_type.startswith("application/soap+xml")
    )


def _host_clock_skew(chain: list[BaseException], plugin: str) -> Diagnosis | None:
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
            return kerberos_clock_skew(host_date.astimezone(datetime.timezone.utc), skew, plugin)
    return None


def _diagnose_auth(
    chain: list[BaseException], transport: str, plugin: str, *, over_http: bool
) -> Diagnosis | None:
    credssp_error = _first(chain, lambda e: library_of(e) == "requests_credssp")
    if credssp_error is not None:
        # requests-credssp reads the 401 itself and names the header it got in its message.
        text = str(credssp_error)
        header = re.search(r"actual:? '([^']*)'", text)
        offered = auth_schemes(header.group(1)) if header else []
        evidence = f"{text}; server offered: {', '.join(offered) or 'no readable schemes'}"
        not_offered = auth_not_offered(transport, offered, plugin, evidence, over_http=over_http)
        if not_offered is not None:
            return not_offered
        if "after step TLS Handshake" in text:
            return describe("credssp_tls_refused", plugin, evidence, transport=transport)
        return describe("logon_refused", plugin, evidence, transport=transport)
    auth_error = _first(
        chain,
        lambda e: (
            http_status(e) == 401
            or (library_of(e) in ("winrm", "pypsrp") and "AuthenticationError" in class_names(e))
        ),
    )
    if auth_error is None:
        return None
    # Negotiate uses Kerberos whenever it can (a domain account, an SPN), so the host's clock
    # can refuse it as well; NTLM has no such check.
    if transport in ("kerberos", "negotiate"):
        skewed = _host_clock_skew(chain, plugin)
        if skewed is not None:
            return skewed
    offered = offered_auth_schemes(chain)
    evidence = f"{auth_error}; server offered: {', '.join(offered) or 'no readable schemes'}"
    not_offered = auth_not_offered(transport, offered, plugin, evidence, over_http=over_http)
    if not_offered is not None:
        return not_offered
    if any(http_status(e) == 401 and _plain_http_request(e) for e in chain):
        return unencrypted_refused(transport, plugin, evidence)
    if transport == "certificate":
        return describe("client_certificate_refused", plugin, evidence)
    return describe("logon_refused", plugin, evidence, transport=transport)


def _answer_text(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if response is not None:
        return str(getattr(response, "text", "") or "")
    return str(getattr(error, "response_text", "") or "")


def _diagnose_http_status(
    chain: list[BaseException],
    transport: str,
    plugin: str,
    *,
    over_http: bool,
    encrypted_http: bool,
) -> Diagnosis | None:
    status_error = _first(chain, lambda e: http_status(e) is not None)
    if status_error is None:
        return None
    status = http_status(status_error)
    if (
        status == 500
        and over_http
        and not encrypted_http
        and transport in ("kerberos", "negotiate")
        and not _answer_text(status_error).strip()
    ):
        # Windows answers a plain message on a Kerberos logon with 500 and an event-log entry
        # (pywinrm#129, winrm4j#151, ansible#33385) where an NTLM one gets 401: an empty 500 (a
        # 500 carrying a WSManFault was read as the fault before this step). Known from the
        # settings: pypsrp re-raises its error after a failed fault parse, which drops the
        # request from the chain.
        return unencrypted_refused(transport, plugin, str(status_error))
    if status == 404:
        return describe("wsman_not_found", plugin, str(status_error))
    if status == 413:
        # HTTP.sys's answer to a request above MaxEnvelopeSizekb (ansible.windows#391).
        return describe("envelope_too_large", plugin, str(status_error))
    if status == 400 and encrypted_http and not _answer_text(status_error).strip():
        # An empty 400 to an encrypted message: the host could not decrypt it, which happens
        # when it goes out on a new connection with the keys of one that was closed.
        return describe("undecryptable_message", plugin, str(status_error))
    return describe("http_status", plugin, str(status_error), status=status)


def _diagnose_wsman(chain: list[BaseException], plugin: str) -> Diagnosis | None:
    if _first(chain, lambda e: "WinRMOperationTimeoutError" in class_names(e)) is not None:
        return describe("operation_timeout", plugin, "WinRMOperationTimeoutError")
    fault = _first(chain, lambda e: "WSManFaultError" in class_names(e))
    if fault is None:
        return None
    code = fault_code(fault)
    reason = str(getattr(fault, "reason", "") or fault)
    evidence = f"WSManFault code {code}: {reason}"
    lowered = reason.lower()
    # The codes decide first; the reason's words only where no code we know says more.
    if code == _wsman_faults.OPERATION_TIMEOUT:
        key = "operation_timeout"
    elif code == _wsman_faults.SHELL_NOT_FOUND:
        key = "shell_gone"
    elif _wsman_faults.over_operations_quota(fault):
        key = "operations_quota_exhausted"
    elif code == _wsman_faults.QUOTA_MAX_SHELLS:
        key = "shells_quota_exhausted"
    elif "maxenvelopesize" in lowered or "envelope size" in lowered:
        key = "envelope_too_large"
    elif "access is denied" in lowered or code == 5:
        key = "access_denied"
    elif "resource uri" in lowered or "configuration" in lowered:
        key = "no_configuration"
    elif "quota" in lowered or "maximum number" in lowered:
        key = "quota_exhausted"
    else:
        key = "wsman_fault"
    return describe(key, plugin, evidence)


def _diagnose_other(chain: list[BaseException], transport: str, plugin: str) -> Diagnosis | None:
    transfer_error = _first(chain, lambda e: "TransferError" in class_names(e))
    if transfer_error is not None:
        return describe("transfer_failed", plugin, str(transfer_error))
    encryption_error = _first(chain, lambda e: "encrypt" in str(e).lower())
    if encryption_error is not None:
        return describe("encryption_impossible", plugin, str(encryption_error), transport=transport)
    return None


def diagnose(
    exc: BaseException,
    endpoint: Endpoint,
    transport: str,
    plugin: str,
    *,
    message_encryption: str = "auto",
) -> Diagnosis:
    """Work out which layer ``exc`` comes from, what was seen, and what fixes it.

    ``transport`` is the auth in use (``ntlm``, ``kerberos``...); ``plugin`` is ``winrm`` or
    ``psrp`` and decides which variable names the fix mentions; ``message_encryption`` is the
    plugin's setting (auto, always, never).
    """
    chain = list(exception_chain(exc))
    transport = transport.lower()
    encrypted_http = (
        endpoint.scheme == "http"
        and transport in ENCRYPTING_TRANSPORTS
        and message_encryption.lower() != "never"
    )
    for step in (
        lambda: _diagnose_credssp_status(chain, transport, plugin),
        lambda: _diagnose_kerberos(chain, transport, endpoint, plugin),
        lambda: _diagnose_tls(chain, endpoint, plugin),
        lambda: _diagnose_network(chain, endpoint, plugin),
        lambda: _diagnose_auth(chain, transport, plugin, over_http=endpoint.scheme == "http"),
        lambda: _diagnose_wsman(chain, plugin),
        lambda: _diagnose_http_status(
            chain,
            transport,
            plugin,
            over_http=endpoint.scheme == "http",
            encrypted_http=encrypted_http,
        ),
        lambda: _diagnose_other(chain, transport, plugin),
    ):
        diagnosis = step()
        if diagnosis is not None:
            return diagnosis
    return describe("unexpected", plugin, str(exc), error_type=type(exc).__name__)
