"""Tests for _errors: real library exceptions, chained as the libraries chain them."""

from __future__ import annotations

import email.utils
import http.client
import re
import socket
import ssl
import time
import typing as t

import pypsrp.exceptions
import pytest
import requests
import requests_credssp.exceptions
import spnego.exceptions
import urllib3.exceptions
import winrm.exceptions
from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import resolve_endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import (
    diagnose,
    offered_auth_schemes,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
    DiagnosedConnectionFailure,
    DiagnosedTaskFailure,
    connection_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Layer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_errors import (
    ticket_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    ConnectionSettings,
    RetryPolicy,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
    TransferError,
)

HTTPS = resolve_endpoint("win01.example.com", None, None, None)
HTTP = resolve_endpoint("127.0.10.1", 5985, None, None)


def raised_chain(*errors: BaseException) -> BaseException:
    """Raise each error while handling the previous one (as libraries do); return the last."""
    caught: BaseException | None = None
    for error in errors:
        try:
            if caught is None:
                raise error
            raise error from caught
        except BaseException as err:
            caught = err
    assert caught is not None
    return caught


def raised_while_handling(context: BaseException, error: BaseException) -> BaseException:
    """Raise ``error`` inside ``except`` for ``context`` without ``from`` (implicit context)."""
    try:
        try:
            raise context
        except BaseException:
            raise error  # noqa: B904 - the implicit context is what the libraries produce
    except BaseException as err:
        return err


def requests_connection_error(reason: BaseException) -> requests.ConnectionError:
    pool = urllib3.exceptions.MaxRetryError(None, "/wsman", reason)
    error = raised_chain(pool, requests.ConnectionError(pool))
    assert isinstance(error, requests.ConnectionError)
    return error


def http_error(status: int, www_authenticate: str | None = None) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    if www_authenticate is not None:
        response.headers["WWW-Authenticate"] = www_authenticate
    return requests.HTTPError(f"{status} Client Error", response=response)


def test_name_resolution() -> None:
    gai = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    new_conn = urllib3.exceptions.NameResolutionError("win01.example.com", None, gai)
    error = requests_connection_error(raised_chain(gai, new_conn))
    diagnosis = diagnose(error, HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.NAME_RESOLUTION
    assert "'win01.example.com'" in diagnosis.summary
    assert "Name or service not known" in diagnosis.evidence
    assert "ansible_host" in diagnosis.fix


def test_connection_refused_in_requests_connection_error() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    new_conn = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")
    error = requests_connection_error(raised_chain(refused, new_conn))
    diagnosis = diagnose(error, HTTP, "ntlm", "psrp")
    assert diagnosis.layer is Layer.TCP
    assert "port 5985" in diagnosis.summary
    assert "Connection refused" in diagnosis.evidence
    assert "ansible_port" in diagnosis.fix
    assert "winrm_listener" in diagnosis.fix


def test_connect_timeout() -> None:
    timeout = urllib3.exceptions.ConnectTimeoutError(None, "timed out")
    error = raised_chain(timeout, requests.exceptions.ConnectTimeout(timeout))
    diagnosis = diagnose(error, HTTP, "ntlm", "winrm")
    assert diagnosis.layer is Layer.TCP
    # Windows Firewall's stealth mode drops a SYN to a closed port: a missing listener times
    # out on a real host instead of being refused (docs/winhost-behaviours.md).
    assert "check that a WinRM listener serves port 5985" in diagnosis.fix
    assert "ansible_winrm_connection_timeout" in diagnosis.fix


def test_read_timeout_names_the_read_timeout_variable() -> None:
    error = raised_chain(
        TimeoutError("timed out"),
        urllib3.exceptions.ReadTimeoutError(None, "/wsman", "Read timed out."),
        requests.exceptions.ReadTimeout("Read timed out."),
    )
    diagnosis = diagnose(error, HTTP, "ntlm", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert "ansible_winrm_read_timeout_sec" in diagnosis.fix


@pytest.mark.parametrize(
    ("plugin", "ca_var", "validation_var"),
    [
        ("winrm", "ansible_winrm_ca_trust_path", "ansible_winrm_server_cert_validation"),
        ("psrp", "ansible_psrp_ca_cert", "ansible_psrp_cert_validation"),
    ],
)
def test_certificate_verification(plugin: str, ca_var: str, validation_var: str) -> None:
    verify = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate"
    )
    verify.verify_message = "self-signed certificate"
    verify.verify_code = 18
    pool_ssl = urllib3.exceptions.SSLError(verify)
    error = requests_connection_error(raised_chain(verify, pool_ssl))
    diagnosis = diagnose(error, HTTPS, "ntlm", plugin)
    assert diagnosis.layer is Layer.TLS
    assert diagnosis.evidence == "certificate verify failed: self-signed certificate"
    assert ca_var in diagnosis.fix
    assert validation_var in diagnosis.fix


def test_requests_ssl_error_wrong_version_means_plain_http() -> None:
    inner = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)")
    pool = urllib3.exceptions.MaxRetryError(None, "/wsman", urllib3.exceptions.SSLError(inner))
    error = raised_chain(inner, pool, requests.exceptions.SSLError(pool))
    diagnosis = diagnose(error, resolve_endpoint("h", 5985, "https", None), "ntlm", "psrp")
    assert diagnosis.layer is Layer.TLS
    assert "port 5985" in diagnosis.summary
    assert "WRONG_VERSION_NUMBER" in diagnosis.evidence
    assert "ansible_psrp_protocol: http" in diagnosis.fix


def test_requests_ssl_error_protocol_version_points_to_tls12_role() -> None:
    error = requests.exceptions.SSLError(
        "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version"
    )
    diagnosis = diagnose(error, HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.TLS
    assert "winops.remoting.tls12" in diagnosis.fix


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_handshake_failure_alert_names_the_cipher_suites(plugin: str) -> None:
    # SCHANNEL's answer to a client none of whose cipher suites it has enabled (docs/tls.md).
    inner = ssl.SSLError(
        1, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure (_ssl.c:1006)"
    )
    pool = urllib3.exceptions.MaxRetryError(None, "/wsman", urllib3.exceptions.SSLError(inner))
    error = raised_chain(inner, pool, requests.exceptions.SSLError(pool))
    diagnosis = diagnose(error, HTTPS, "ntlm", plugin)
    assert diagnosis.layer is Layer.TLS
    assert "cipher suite" in diagnosis.summary
    assert "SSLV3_ALERT_HANDSHAKE_FAILURE" in diagnosis.evidence
    assert "tls12_cipher_suites" in diagnosis.fix
    assert "winops.remoting.controller_cipher_suites" in diagnosis.fix
    # Also when the outermost error does not repeat OpenSSL's reason.
    bare = raised_chain(
        inner, urllib3.exceptions.SSLError(inner), requests.exceptions.SSLError("x")
    )
    assert "cipher suite" in diagnose(bare, HTTPS, "ntlm", plugin).summary


def test_pywinrm_invalid_credentials_with_offered_schemes() -> None:
    error = raised_while_handling(
        http_error(401, 'Negotiate, Basic realm="WSMAN"'),
        winrm.exceptions.InvalidCredentialsError(
            "the specified credentials were rejected by the server"
        ),
    )
    diagnosis = diagnose(error, HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary.startswith("the credentials were rejected, or the account may not")
    assert "server offered: Negotiate, Basic" in diagnosis.evidence
    assert "ansible_user" in diagnosis.fix and "ansible_password" in diagnosis.fix


@pytest.mark.parametrize(
    ("plugin", "refusal", "grant"),
    [
        (
            "winrm",
            winrm.exceptions.InvalidCredentialsError(
                "the specified credentials were rejected by the server"
            ),
            "grant it RootSDDL read and execute",
        ),
        (
            "psrp",
            pypsrp.exceptions.AuthenticationError("Failed to authenticate the user a with ntlm"),
            "add it to Remote Management Users",
        ),
    ],
)
def test_a_401_names_the_accounts_access_as_well_as_its_password(
    plugin: str, refusal: BaseException, grant: str
) -> None:
    # Windows answers the same 401 to a right password of an account that may not use WinRM:
    # a non-administrator (pywinrm#114), a filtered local administrator (pywinrm#188, #347).
    error = raised_while_handling(http_error(401, "Negotiate, Kerberos"), refusal)
    diagnosis = diagnose(error, HTTPS, "ntlm", plugin)
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert "may not use WinRM" in diagnosis.summary
    assert diagnosis.fix.startswith("check ansible_user and ansible_password for ntlm")
    assert grant in diagnosis.fix
    assert "winops.remoting.win_psremoting_access" in diagnosis.fix
    assert "winrm_auth_local_account_token_filter_policy: enabled" in diagnosis.fix
    assert "Restrict NTLM" in diagnosis.fix


# Windows' name for certificate authentication in WWW-Authenticate, listed while
# Service\Auth\Certificate is true (a real header quoted in requests-credssp#29).
MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"


def test_refused_client_certificate_names_trust_and_mapping() -> None:
    # The host offers certificate authentication and still refuses the certificate: a 401.
    error = raised_while_handling(
        http_error(401, f"Negotiate, Kerberos, {MUTUAL}"),
        winrm.exceptions.InvalidCredentialsError(
            "the specified credentials were rejected by the server"
        ),
    )
    diagnosis = diagnose(error, HTTPS, "certificate", "winrm")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary.startswith("the client certificate was refused")
    for needed in ("LocalMachine\\Root", "TrustedPeople", "winrm_auth_certificate_mappings"):
        assert needed in diagnosis.fix
    # A mapping applies only to the resource URIs its uri covers (MS-WSMV 2.2.4.3).
    assert "uri covers this connection's resource URI" in diagnosis.fix
    assert "ansible_password" not in diagnosis.fix


def test_winrm_transport_error_401_when_transport_not_offered() -> None:
    error = raised_while_handling(
        http_error(401, "Negotiate, Kerberos"),
        winrm.exceptions.WinRMTransportError("http", 401, ""),
    )
    diagnosis = diagnose(error, HTTPS, "basic", "winrm")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary == "the listener does not offer basic authentication"
    assert diagnosis.evidence.endswith("server offered: Negotiate, Kerberos")
    assert diagnosis.fix == (
        "set ansible_winrm_transport to negotiate or ntlm or kerberos, or enable basic on the "
        "host (add basic to winrm_auth_methods of the winops.remoting.winrm_auth role)"
    )


def test_pypsrp_authentication_error() -> None:
    error = raised_while_handling(
        http_error(401, "Negotiate"),
        pypsrp.exceptions.AuthenticationError("Failed to authenticate the user admin with ntlm"),
    )
    diagnosis = diagnose(error, HTTPS, "credssp", "psrp")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert "ansible_psrp_auth" in diagnosis.fix
    assert "Failed to authenticate the user admin with ntlm" in diagnosis.evidence


def dated_401(seconds_from_now: float) -> requests.HTTPError:
    error = http_error(401, "Negotiate, Kerberos")
    assert error.response is not None
    error.response.headers["Date"] = email.utils.formatdate(
        time.time() + seconds_from_now, usegmt=True
    )
    return error


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
@pytest.mark.parametrize("offset", [660, -900])
def test_kerberos_refused_by_a_host_with_a_skewed_clock(plugin: str, offset: int) -> None:
    error = raised_while_handling(
        dated_401(offset),
        pypsrp.exceptions.AuthenticationError("Failed to authenticate the user a with kerberos"),
    )
    diagnosis = diagnose(error, HTTP, "kerberos", plugin)
    assert diagnosis.layer is Layer.KERBEROS
    assert "clocks of the host and the controller differ" in diagnosis.summary
    seen = re.search(r"([+-]\d+) s from the controller", diagnosis.evidence)
    assert seen is not None and abs(int(seen.group(1)) - offset) <= 1, diagnosis.evidence
    assert "synchronise both clocks" in diagnosis.fix


def test_kerberos_refusal_with_a_close_clock_is_not_blamed_on_the_clock() -> None:
    error = raised_while_handling(
        dated_401(120),
        pypsrp.exceptions.AuthenticationError("Failed to authenticate the user a with kerberos"),
    )
    assert diagnose(error, HTTP, "kerberos", "psrp").layer is Layer.HTTP_AUTH


def test_ntlm_refusal_ignores_the_clock() -> None:
    # NTLM has no clock check: a host's wrong clock does not explain a refused NTLM logon.
    error = raised_while_handling(
        dated_401(3600), winrm.exceptions.InvalidCredentialsError("rejected")
    )
    assert diagnose(error, HTTPS, "ntlm", "winrm").layer is Layer.HTTP_AUTH


def test_pypsrp_wsman_fault_operation_timeout() -> None:
    fault = pypsrp.exceptions.WSManFaultError(
        2150858793,
        "win01",
        "The WS-Management service cannot complete the operation within the time specified in "
        "OperationTimeout.",
        None,
        None,
        None,
    )
    diagnosis = diagnose(fault, HTTPS, "ntlm", "psrp")
    assert diagnosis.layer is Layer.WSMAN
    assert diagnosis.evidence.startswith("WSManFault code 2150858793: The WS-Management")
    assert "ansible_psrp_read_timeout" in diagnosis.fix


def test_pywinrm_wsman_fault_access_denied_is_not_a_plain_http_500() -> None:
    transport_error = raised_while_handling(
        http_error(500), winrm.exceptions.WinRMTransportError("http", 500, "<s:Envelope/>")
    )
    fault = raised_while_handling(
        transport_error,
        winrm.exceptions.WSManFaultError(
            500, "Bad HTTP response", "<s:Envelope/>", "Access is denied.", wsman_fault_code=5
        ),
    )
    diagnosis = diagnose(fault, HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert diagnosis.evidence == "WSManFault code 5: Access is denied."
    assert "ansible_user" in diagnosis.fix


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_access_denied_names_what_grants_the_resource_each_plugin_opens(plugin: str) -> None:
    # The cmd shell (winrm) is granted by RootSDDL only: Remote Management Users get fault 5
    # there (pywinrm#275, #338); psrp's session configuration admits them.
    if plugin == "winrm":
        fault: BaseException = winrm.exceptions.WSManFaultError(
            500,
            "Bad HTTP response returned from server. Code 500",
            "<s:Envelope/>",
            "Access is denied.",
            "s:Sender",
            "w:AccessDenied",
            wsman_fault_code=5,
        )
    else:
        fault = pypsrp.exceptions.WSManFaultError(5, "win01", "Access is denied.", None, None, None)
    diagnosis = diagnose(fault, HTTPS, "ntlm", plugin)
    assert diagnosis.layer is Layer.WSMAN
    assert "win_psremoting_access" in diagnosis.fix
    assert "winrm_hardening" not in diagnosis.fix
    if plugin == "winrm":
        assert "cmd shell" in diagnosis.summary
        assert "RootSDDL" in diagnosis.fix and "root_sddl: true" in diagnosis.fix
        assert "Remote Management Users is not enough" in diagnosis.fix
        assert "winops.remoting.psrp" in diagnosis.fix
    else:
        assert "session configuration" in diagnosis.summary
        assert "ansible_psrp_configuration_name" in diagnosis.fix
        assert "add it to Remote Management Users" in diagnosis.fix
        assert "RootSDDL" not in diagnosis.fix


@pytest.mark.parametrize(
    ("code", "reason", "setting", "other"),
    [
        (
            2150859174,
            "The WS-Management service cannot process the request. This user is allowed a "
            "maximum number of 1500 concurrent operations, which has been exceeded. Close "
            "existing operations for this user, or raise the quota for this user.",
            "MaxConcurrentOperationsPerUser",
            "MaxShellsPerUser",
        ),
        (
            2150859173,
            "The WS-Management service cannot process the request. This user is allowed a "
            "maximum number of 30 concurrent shells, which has been exceeded. Close existing "
            "shells or raise the quota for this user.",
            "MaxShellsPerUser",
            "MaxConcurrentOperationsPerUser",
        ),
    ],
)
def test_quota_faults_name_the_quota_their_code_names(
    code: int, reason: str, setting: str, other: str
) -> None:
    # ERROR_WSMAN_QUOTA_MAX_OPERATIONS (0x803381A6) and ERROR_WSMAN_QUOTA_MAX_SHELLS
    # (0x803381A5), as pywinrm raises them for a w:QuotaLimit fault.
    fault = winrm.exceptions.WSManFaultError(
        500, "Bad HTTP response", "<s:Envelope/>", reason, wsman_fault_code=code
    )
    diagnosis = diagnose(fault, HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert setting in diagnosis.summary and setting in diagnosis.fix
    assert other not in diagnosis.fix


def test_wsman_fault_max_envelope() -> None:
    fault = pypsrp.exceptions.WSManFaultError(
        2150858761, None, "The request exceeded MaxEnvelopeSize quota.", None, None, None
    )
    assert "ansible_psrp_max_envelope_size" in diagnose(fault, HTTPS, "ntlm", "psrp").fix


def test_http_404_names_the_path_variable() -> None:
    error = pypsrp.exceptions.WinRMTransportError("http", 404, "")
    diagnosis = diagnose(error, HTTPS, "ntlm", "psrp")
    assert diagnosis.layer is Layer.WSMAN
    assert "ansible_psrp_path" in diagnosis.fix


@pytest.mark.parametrize(
    ("transport", "encryption", "endpoint", "key"),
    [
        ("kerberos", "never", HTTP, "unencrypted_refused"),
        ("negotiate", "never", HTTP, "unencrypted_refused"),
        # Sealed messages, or TLS: a 500 there says nothing about encryption.
        ("kerberos", "auto", HTTP, "http_status"),
        ("kerberos", "never", HTTPS, "http_status"),
        # NTLM's plain message gets 401, read by the authentication step.
        ("ntlm", "never", HTTP, "http_status"),
    ],
)
def test_a_500_to_a_plain_kerberos_message_names_message_encryption(
    transport: str, encryption: str, endpoint: t.Any, key: str
) -> None:
    """Windows answers a plain message on a Kerberos logon over http with HTTP 500 (pywinrm#129,
    winrm4j#151). pypsrp's error after its failed fault parse carries no request, so the
    settings tell that the message was plain."""
    error = pypsrp.exceptions.WinRMTransportError("http", 500, "")
    diagnosis = diagnose(error, endpoint, transport, "psrp", message_encryption=encryption)
    assert diagnosis.key == key
    if key == "unencrypted_refused":
        assert diagnosis.layer is Layer.MESSAGE_ENCRYPTION
        assert "ansible_psrp_message_encryption: auto" in diagnosis.fix
        # A 500 with something in it (the host allows plain messages, and failed otherwise) is
        # not read as the refusal.
        answered = pypsrp.exceptions.WinRMTransportError("http", 500, "Internal Server Error")
        other = diagnose(answered, endpoint, transport, "psrp", message_encryption=encryption)
        assert other.key == "http_status"


def test_kerberos_error() -> None:
    error = ticket_failure("kinit_failed", "u@EXAMPLE.COM", "kinit exit code 1: x")
    diagnosis = diagnose(error, HTTPS, "kerberos", "winrm")
    assert diagnosis.layer is Layer.KERBEROS
    assert "ansible_user" in diagnosis.fix


def test_spnego_error_with_kerberos() -> None:
    error = spnego.exceptions.BadNameError(context_msg="Server not found in Kerberos database")
    diagnosis = diagnose(error, HTTPS, "kerberos", "psrp")
    assert diagnosis.layer is Layer.KERBEROS
    assert "ansible_host" in diagnosis.fix


def pywinrm_gss_failure(minor: str, code: int) -> BaseException:
    """What pywinrm's vendored requests_kerberos raises when a service ticket is refused."""
    from winrm.vendor.requests_kerberos.exceptions import KerberosExchangeError

    return KerberosExchangeError(
        "authGSSClientStep() failed: (('Unspecified GSS failure.  Minor code may provide more "
        f"information', 851968), ('{minor}', {code}))"
    )


def pyspnego_gss_failure(minor: str) -> BaseException:
    """pyspnego's error for the same refusal, as pypsrp sees it."""
    return spnego.exceptions.SpnegoError(
        spnego.exceptions.ErrorCode.failure,
        context_msg="Processing security token: Unspecified GSS failure.  Minor code may "
        f"provide more information, {minor}",
    )


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        ("winrm", pywinrm_gss_failure("Clock skew too great", -1765328347)),
        ("psrp", pyspnego_gss_failure("Clock skew too great")),
    ],
)
def test_kerberos_clock_skew_from_the_kdc_is_not_an_spn_problem(
    plugin: str, error: BaseException
) -> None:
    diagnosis = diagnose(error, HTTPS, "kerberos", plugin)
    assert diagnosis.layer is Layer.KERBEROS
    assert "clock" in diagnosis.summary
    assert "synchronise the controller's clock" in diagnosis.fix
    assert "SPN" not in diagnosis.fix


@pytest.mark.parametrize(
    ("plugin", "error"),
    [
        ("winrm", pywinrm_gss_failure("Ticket expired", -1765328352)),
        ("psrp", pyspnego_gss_failure("Ticket expired")),
    ],
)
def test_an_expired_kerberos_ticket_is_renewed_not_an_spn_problem(
    plugin: str, error: BaseException
) -> None:
    diagnosis = diagnose(error, HTTPS, "kerberos", plugin)
    assert diagnosis.layer is Layer.KERBEROS
    assert diagnosis.summary == "the Kerberos ticket in use has expired"
    assert "kinit" in diagnosis.fix and "SPN" not in diagnosis.fix


def test_negotiate_refused_by_a_host_with_a_skewed_clock_names_the_clock() -> None:
    # psrp's default auth is negotiate, which uses Kerberos for a domain account.
    error = raised_while_handling(
        dated_401(900),
        pypsrp.exceptions.AuthenticationError("Failed to authenticate the user a with negotiate"),
    )
    diagnosis = diagnose(error, HTTP, "negotiate", "psrp")
    assert diagnosis.layer is Layer.KERBEROS
    assert "clocks of the host and the controller differ" in diagnosis.summary


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_unknown_service_principal_for_an_address(plugin: str) -> None:
    error = raised_chain(
        spnego.exceptions.BadNameError(
            context_msg="Server HTTP/127.0.10.1@WINOPS.TEST not found in Kerberos database"
        )
    )
    diagnosis = diagnose(error, HTTP, "kerberos", plugin)
    assert diagnosis.layer is Layer.KERBEROS
    assert "ansible_host is the IP address 127.0.10.1" in diagnosis.summary
    override = {
        "winrm": "ansible_winrm_kerberos_hostname_override",
        "psrp": "ansible_psrp_negotiate_hostname_override",
    }[plugin]
    assert override in diagnosis.fix


def test_unknown_service_principal_for_an_alias() -> None:
    error = raised_chain(
        spnego.exceptions.BadNameError(
            context_msg="Server WSMAN/alias.example.com@EXAMPLE.COM not found in Kerberos database"
        )
    )
    diagnosis = diagnose(error, HTTPS, "negotiate", "psrp")
    assert diagnosis.layer is Layer.KERBEROS
    assert diagnosis.summary == "the KDC has no service principal WSMAN/alias.example.com"
    assert "setspn -L" in diagnosis.fix
    assert "ansible_psrp_negotiate_hostname_override" in diagnosis.fix


def test_message_encryption_error() -> None:
    error = winrm.exceptions.WinRMError(
        "message encryption is set to 'always' but the selected auth method basic does not support it"
    )
    diagnosis = diagnose(error, HTTP, "basic", "winrm")
    assert diagnosis.layer is Layer.MESSAGE_ENCRYPTION
    assert "ansible_winrm_message_encryption" in diagnosis.fix


def test_transfer_error() -> None:
    error = TransferError(
        "put of C:\\x failed verification: local SHA-1 a does not match remote SHA-1 b"
    )
    assert diagnose(error, HTTPS, "ntlm", "winrm").layer is Layer.TRANSFER


def test_unknown_error_still_names_variables() -> None:
    diagnosis = diagnose(ValueError("odd"), HTTPS, "ntlm", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert diagnosis.evidence == "odd"
    assert "ansible_winrm_transport" in diagnosis.fix


def test_offered_auth_schemes_parsing() -> None:
    chain = [http_error(401, 'Negotiate, Kerberos, Basic realm="WSMAN", charset="UTF-8", CredSSP')]
    assert offered_auth_schemes(chain) == ["Negotiate", "Kerberos", "Basic", "CredSSP"]
    assert offered_auth_schemes([ValueError()]) == []


def _settings() -> ConnectionSettings:
    return ConnectionSettings(
        plugin="winrm",
        endpoint=resolve_endpoint("::1", None, None, None),
        auth="ntlm",
        user="admin",
        cert_validation=True,
        ca_path=None,
        message_encryption="auto",
        kerberos_realm=None,
        kerberos_service="HTTP",
        kerberos_hostname_override=None,
        kinit=None,
        operation_timeout=20,
        read_timeout=30,
        retry_policy=RetryPolicy(),
        command_timeout=0,
        max_envelope_size=153600,
        secrets=("pässwörd",),
    )


@pytest.mark.parametrize(
    ("error", "task_failed"),
    [
        (winrm.exceptions.WSManFaultError(500, "", "", "x", wsman_fault_code=5), True),
        (winrm.exceptions.WinRMTransportError("http", 500, ""), True),
        # the service behind the listener is not there: as a host that cannot be reached
        (winrm.exceptions.WinRMTransportError("http", 503, ""), False),
        (requests_connection_error(ConnectionResetError(104, "reset")), False),
        (requests_connection_error(ConnectionRefusedError(111, "refused")), False),
        # win_reboot swallows only a connection failure when the host goes down mid-command
        (requests_connection_error(BrokenPipeError(32, "Broken pipe")), False),
        # an error of no known kind may be any of the above: not taken for the host's answer
        (ValueError("odd"), False),
    ],
    ids=["wsman-fault", "http-500", "http-503", "reset", "refused", "broken-pipe", "unknown"],
)
def test_a_command_the_host_answered_with_an_error_fails_the_task(
    error: BaseException, task_failed: bool
) -> None:
    """As ansible.builtin.winrm and psrp let such errors out of exec_command: the task FAILED
    (ignore_errors applies), not the host UNREACHABLE; the rest stays a connection failure."""
    failure = connection_failure(error, _settings(), in_command=True)
    assert isinstance(failure, DiagnosedTaskFailure) is task_failed
    assert isinstance(failure, AnsibleConnectionFailure) is not task_failed
    # The session was working: the message says where it failed, not "connecting".
    assert "failed on https://[::1]:5986/wsman" in failure.message
    # Before a session is open, every failure is one of connecting.
    connecting = connection_failure(error, _settings())
    assert isinstance(connecting, DiagnosedConnectionFailure)
    assert "failed connecting to https://[::1]:5986/wsman" in connecting.message


@pytest.mark.parametrize(
    "error",
    [
        requests_connection_error(ConnectionResetError(104, "reset")),
        requests_connection_error(ConnectionRefusedError(111, "refused")),
    ],
    ids=["reset", "refused"],
)
def test_a_connection_that_broke_during_a_task_gets_no_connect_time_advice(
    error: BaseException,
) -> None:
    # A reboot or WinRM restart during a command read as "nothing accepted the connection ...
    # create the listener" or as a firewall closing it.
    failure = connection_failure(error, _settings(), in_command=True)
    assert isinstance(failure, DiagnosedConnectionFailure)
    assert failure.diagnosis.key == "broke_during_task"
    connecting = connection_failure(error, _settings()).diagnosis
    assert (
        failure.diagnosis.summary
        == f"the connection broke while the task ran: {connecting.summary}"
    )
    assert failure.diagnosis.evidence == connecting.evidence
    assert "listener" not in failure.diagnosis.fix and "firewall" not in failure.diagnosis.fix
    assert "whether the host ran what the task sent is unknown" in failure.diagnosis.fix


def test_an_unknown_error_during_a_task_gets_no_connect_time_advice() -> None:
    failure = connection_failure(ValueError("odd"), _settings(), in_command=True)
    assert failure.diagnosis.key == "unexpected_during_task"
    assert failure.diagnosis.summary == "unexpected ValueError while the task ran"
    assert "ansible_port" not in failure.diagnosis.fix
    assert "whether the host ran what the task sent is unknown" in failure.diagnosis.fix


def test_a_read_timeout_during_a_task_says_the_request_may_still_run() -> None:
    timed_out = requests.exceptions.ReadTimeout("Read timed out. (read timeout=30)")
    failure = connection_failure(timed_out, _settings(), in_command=True)
    assert failure.diagnosis.key == "read_timeout_during_task"
    assert "ansible_winrm_read_timeout_sec" in failure.diagnosis.fix
    assert "whether the host ran what the task sent is unknown" in failure.diagnosis.fix
    assert connection_failure(timed_out, _settings()).diagnosis.key == "read_timeout"


def test_a_shell_the_host_no_longer_has_is_named_as_such() -> None:
    gone = winrm.exceptions.WSManFaultError(
        500,
        "",
        "",
        "The request for the Windows Remote Shell with ShellId x failed because "
        "the shell was not found.",
        wsman_fault_code=2150858843,
    )
    failure = connection_failure(gone, _settings(), in_command=True)
    assert isinstance(failure, DiagnosedTaskFailure)
    assert failure.diagnosis.key == "shell_gone"
    assert failure.diagnosis.summary == "the host no longer has the shell the task ran in"
    assert "WinRM service restarted or the host rebooted" in failure.diagnosis.fix


def test_connection_failure_message() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    error = requests_connection_error(
        raised_chain(refused, urllib3.exceptions.NewConnectionError(None, "x"))
    )
    failure = connection_failure(error, _settings())
    assert isinstance(failure, DiagnosedConnectionFailure)
    assert failure.diagnosis.layer is Layer.TCP
    assert failure.__cause__ is error  # nothing secret behind it: the cause stays for -vvv
    lines = failure.message.splitlines()
    assert lines[0] == (
        "winops.remoting.winrm: TCP connection failed connecting to https://[::1]:5986/wsman: "
        "nothing accepted the connection on port 5986"
    )
    assert lines[1] == "  seen: [Errno 111] Connection refused"
    assert lines[2].startswith("  fix: check ansible_port")


@pytest.mark.parametrize(
    ("plugin", "expected"),
    [
        ("winrm", "ansible_winrm_reconnection_retries"),
        ("winops.remoting.psrp", "ansible_psrp_reconnection_retries"),
    ],
)
def test_http_503_names_the_retries_variable(plugin: str, expected: str) -> None:
    error = raised_while_handling(
        http_error(503), winrm.exceptions.WinRMTransportError("http", 503, "")
    )
    diagnosis = diagnose(error, HTTPS, "ntlm", plugin)
    assert diagnosis.layer is Layer.WSMAN
    assert diagnosis.summary == "the listener answered HTTP 503"
    assert expected in diagnosis.fix


def test_pywinrm_operation_timeout() -> None:
    diagnosis = diagnose(winrm.exceptions.WinRMOperationTimeoutError(), HTTPS, "kerberos", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert "ansible_winrm_operation_timeout_sec" in diagnosis.fix


def test_answer_cut_off_mid_response_is_not_blamed_on_the_firewall() -> None:
    endpoint = resolve_endpoint("win1.example.test", None, None, None)
    try:
        try:
            raise http.client.IncompleteRead(b"partial", 100)
        except http.client.IncompleteRead as read_error:
            raise requests.exceptions.ChunkedEncodingError("Connection broken") from read_error
    except requests.exceptions.ChunkedEncodingError as err:
        diagnosis = diagnose(err, endpoint, "ntlm", "winrm")
    assert diagnosis.layer is Layer.WSMAN
    assert diagnosis.summary == "the connection broke while the host was sending its answer"
    assert "never repeated automatically" in diagnosis.fix
    assert "ansible_winrm_reconnection_retries" in diagnosis.fix
    assert "firewall rule for port" not in diagnosis.fix


def _http_401_to(body: bytes) -> requests.HTTPError:
    """A 401 to a POST labelled as SOAP, as pywinrm sends every request over http."""
    request = requests.Request(
        "POST",
        HTTP.url,
        data=body,
        headers={"Content-Type": "application/soap+xml;charset=UTF-8"},
    ).prepare()
    response = requests.Response()
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Negotiate, CredSSP"
    response.request = request
    return requests.HTTPError("401 Client Error: Unauthorized", response=response)


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_wrong_password_over_http_with_encryption_is_a_credentials_problem(plugin: str) -> None:
    # pywinrm authenticates with an empty body before it encrypts; a 401 to that request is a
    # refused password (issue 11, item 4: it was reported as a message encryption problem).
    error = raised_while_handling(
        _http_401_to(b""),
        winrm.exceptions.InvalidCredentialsError(
            "the specified credentials were rejected by the server"
        ),
    )
    diagnosis = diagnose(error, HTTP, "ntlm", plugin)
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary.startswith("the credentials were rejected")
    assert diagnosis.fix.startswith(
        "check ansible_user and ansible_password for ntlm authentication"
    )


def test_plain_soap_refused_over_http_is_still_message_encryption() -> None:
    error = raised_while_handling(
        _http_401_to(b"<s:Envelope/>"),
        winrm.exceptions.InvalidCredentialsError(
            "the specified credentials were rejected by the server"
        ),
    )
    assert diagnose(error, HTTP, "ntlm", "winrm").layer is Layer.MESSAGE_ENCRYPTION


def credssp_status_error(status: int) -> BaseException:
    """What requests-credssp raises when the acceptor's TSRequest carries an error status."""
    return raised_while_handling(
        spnego.exceptions.InvalidTokenError(
            context_msg="Received NTStatus in TSRequest from acceptor, Context: Public key exchange"
        ),
        requests_credssp.exceptions.NTStatusException(status),
    )


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
@pytest.mark.parametrize("status", [0x8009030C, 0xC000006D])
def test_credssp_logon_refused_is_rejected_credentials(plugin: str, status: int) -> None:
    diagnosis = diagnose(credssp_status_error(status), HTTP, "credssp", plugin)
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary == "the credentials were rejected"
    assert f"0x{status:08X}" in diagnosis.evidence
    assert diagnosis.fix == "check ansible_user and ansible_password for credssp authentication"


@pytest.mark.parametrize(
    ("plugin", "variable"),
    [
        ("winrm", "ansible_winrm_credssp_disable_tlsv1_2"),
        ("psrp", "ansible_psrp_credssp_disable_tlsv1_2"),
    ],
)
def test_credssp_inner_tls_refused_names_tls_1_2_not_the_password(
    plugin: str, variable: str
) -> None:
    """requests-credssp's error when the host answers CredSSP's inner TLS ClientHello without
    a token (Server 2008 R2 without TLS 1.2 for CredSSP: requests-credssp#18, #20). It was
    read as a wrong password."""
    error = requests_credssp.exceptions.AuthenticationException(
        "Server did not response with a CredSSP token after step TLS Handshake - actual "
        "'Negotiate, CredSSP'"
    )
    diagnosis = diagnose(error, HTTP, "credssp", plugin)
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary.startswith("the host ended the TLS handshake inside CredSSP")
    assert "winops.remoting.tls12" in diagnosis.fix and "KB3080079" in diagnosis.fix
    assert f"{variable}: true" in diagnosis.fix
    assert "ansible_password" not in diagnosis.fix


def test_credssp_other_status_is_a_failed_security_context() -> None:
    diagnosis = diagnose(credssp_status_error(0xC000009A), HTTP, "credssp", "psrp")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary == "the credssp security context could not be created"
    assert "0xC000009A" in diagnosis.evidence


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_an_empty_400_to_an_encrypted_message_names_the_lost_connection(plugin: str) -> None:
    # What pypsrp and pywinrm raise when the host cannot decrypt a message that went out on a
    # new connection with the keys of a closed one (issue 11, item 5: "HTTP 400, raise
    # reconnection_retries" before).
    library = pypsrp.exceptions if plugin == "psrp" else winrm.exceptions
    error = library.WinRMTransportError("http", 400, "")
    diagnosis = diagnose(error, HTTP, "negotiate", plugin, message_encryption="auto")
    assert diagnosis.layer is Layer.MESSAGE_ENCRYPTION
    assert diagnosis.summary.startswith("the host could not decrypt a message")
    assert f"ansible_{plugin}_reconnection_retries cannot help" in diagnosis.fix


@pytest.mark.parametrize(
    ("endpoint", "transport", "encryption", "text"),
    [
        (HTTPS, "negotiate", "auto", ""),  # TLS, not message encryption
        (HTTP, "negotiate", "never", ""),  # nothing was encrypted
        (HTTP, "basic", "auto", ""),  # Basic cannot encrypt
        (HTTP, "negotiate", "auto", "<s:Envelope>fault</s:Envelope>"),  # an answer was read
    ],
)
def test_other_400_answers_stay_plain_http_statuses(
    endpoint: t.Any, transport: str, encryption: str, text: str
) -> None:
    error = pypsrp.exceptions.WinRMTransportError("http", 400, text)
    diagnosis = diagnose(error, endpoint, transport, "psrp", message_encryption=encryption)
    assert diagnosis.summary == "the listener answered HTTP 400"
