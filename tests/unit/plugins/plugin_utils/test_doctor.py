"""Tests for the doctor's runner and checks (local sockets and TLS servers, no winhost)."""

from __future__ import annotations

import datetime
import http.client
import http.server
import ipaddress
import socket
import ssl
import threading
import typing as t
from pathlib import Path

import pytest
import requests
import requests_credssp.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import resolve_endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis import _errors
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import (
    diagnose,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
    DiagnosedConnectionFailure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Diagnosis,
    Layer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor import _doctor
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import (
    CheckFailed,
    Context,
    NotApplicable,
    Status,
    Target,
    run_checks,
)


def _target(host: str = "127.0.0.1", port: int = 5986, **changes: t.Any) -> Target:
    values: dict[str, t.Any] = {
        "plugin": "winrm",
        "endpoint": resolve_endpoint(host, port, None, None),
        "transport": "ntlm",
        "user": "ansible",
        "cert_validation": True,
        "ca_path": None,
        "message_encryption": "auto",
        "timeout": 2.0,
        "open_session": lambda: None,
    }
    values.update(changes)
    return Target(**values)


# -- the runner ------------------------------------------------------------------------------


def test_runner_stops_explaining_at_the_first_failure() -> None:
    calls: list[str] = []

    def ok(target: Target, context: Context) -> str:
        calls.append("ok")
        return "fine"

    def not_here(target: Target, context: Context) -> str:
        raise NotApplicable("plain http")

    def broken(target: Target, context: Context) -> str:
        raise CheckFailed(Diagnosis(Layer.TLS, "bad certificate", "seen it", "set the CA"))

    def never(target: Target, context: Context) -> str:
        calls.append("never")
        return "unreachable"

    report = run_checks(
        _target(),
        [
            ("first", Layer.TCP, ok),
            ("second", Layer.TLS, not_here),
            ("third", Layer.TLS, broken),
            ("fourth", Layer.WSMAN, never),
        ],
    )
    statuses = [(check.name, check.status) for check in report.checks]
    assert statuses == [
        ("first", Status.OK),
        ("second", Status.NOT_APPLICABLE),
        ("third", Status.FAILED),
        ("fourth", Status.SKIPPED),
    ]
    assert calls == ["ok"]
    result = report.to_result()
    assert result["failed"] is True
    assert result["failed_layer"] == "TLS handshake"
    assert result["fix"] == "set the CA"
    assert result["msg"] == "TLS handshake failed (third): bad certificate; fix: set the CA"
    assert result["checks"][3] == {
        "name": "fourth",
        "layer": "WS-Management",
        "status": "skipped",
        "summary": "",
        "evidence": "skipped: third failed",
        "fix": "",
    }


def test_runner_all_ok_has_no_failed_key() -> None:
    report = run_checks(_target(), [("only", Layer.TCP, lambda target, context: "fine")])
    result = report.to_result()
    assert "failed" not in result
    assert result["failed_layer"] is None and result["fix"] is None
    assert result["msg"] == "all checks passed for https://127.0.0.1:5986/wsman"


def test_session_failure_keeps_the_plugins_diagnosis() -> None:
    diagnosis = Diagnosis(Layer.WSMAN, "access denied", "fault 5", "give admin rights")

    def open_session() -> None:
        raise DiagnosedConnectionFailure("plugin message", diagnosis)

    report = run_checks(
        _target(open_session=open_session),
        [("authenticated_session", Layer.HTTP_AUTH, _doctor.check_session)],
    )
    failed = report.failed
    assert failed is not None
    assert (failed.layer, failed.fix) == (Layer.WSMAN, "give admin rights")


@pytest.mark.parametrize(
    ("plugin", "fix_starts", "fixes_for"),
    [
        ("winrm", "check the WinRM service on the host; 502/503/504 usually pass, so raise "
         "ansible_winrm_reconnection_retries", "fix:"),
        ("ansible.builtin.winrm", "check the WinRM service on the host; 502/503/504 usually "
         "pass, so rerun the task", "fix for ansible.builtin.winrm:"),
    ],
)  # fmt: skip
def test_a_host_on_the_builtin_plugin_gets_the_builtins_fix(
    plugin: str, fix_starts: str, fixes_for: str
) -> None:
    """A 502 with retries spent: ansible.builtin.winrm has no retry variable to raise."""
    from winrm.exceptions import WinRMTransportError

    def open_session() -> None:
        raise WinRMTransportError("http", 502, "Bad Gateway")

    report = run_checks(
        _target(plugin=plugin, open_session=open_session),
        [("authenticated_session", Layer.HTTP_AUTH, _doctor.check_session)],
    )
    result = report.to_result()
    assert result["fix"].startswith(fix_starts), result["fix"]
    assert f"; {fixes_for} {result['fix']}" in result["msg"]
    if plugin.startswith("ansible.builtin."):
        assert "ansible_winrm_reconnection_retries" not in result["fix"]


@pytest.mark.parametrize(
    ("current", "wanted", "fixes_for"),
    [
        ("winrm", "winrm", "ansible.builtin.winrm"),  # ansible_connection: winrm
        ("ansible.builtin.psrp", "psrp", "ansible.builtin.psrp"),
        ("ansible.legacy.psrp", "psrp", "ansible.builtin.psrp"),
        ("winops.remoting.winrm", "winrm", "winops.remoting.winrm"),
        ("winrm", "psrp", "winops.remoting.psrp"),  # plugin: psrp for a host on winrm
        ("ssh", "winrm", "winops.remoting.winrm"),
    ],
)
def test_the_doctor_words_fixes_for_the_hosts_builtin_plugin(
    current: str, wanted: str, fixes_for: str
) -> None:
    from ansible_collections.winops.remoting.plugins.action import winrm_doctor

    assert winrm_doctor._fixes_for(current, wanted) == fixes_for


def test_the_session_is_opened_once_for_encryption_and_session_checks() -> None:
    opened: list[int] = []
    target = _target(port=5985, message_encryption="never", open_session=lambda: opened.append(1))
    report = run_checks(
        target,
        [
            ("message_encryption", Layer.MESSAGE_ENCRYPTION, _doctor.check_message_encryption),
            ("authenticated_session", Layer.HTTP_AUTH, _doctor.check_session),
        ],
    )
    assert opened == [1]
    assert "accepts unencrypted messages" in report.checks[0].evidence


# -- TCP -------------------------------------------------------------------------------------


def _server(behaviour: t.Callable[[socket.socket], None]) -> tuple[int, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                behaviour(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


def test_tcp_connection_closed_at_once_points_at_the_firewall() -> None:
    port, thread = _server(lambda connection: None)
    target = _target(port=port)
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tcp(target, Context(addresses=["127.0.0.1"]))
    thread.join(2)
    diagnosis = caught.value.diagnosis
    assert diagnosis.layer is Layer.TCP
    assert "winrm_listener_firewall_remote_addresses" in diagnosis.fix
    assert diagnosis == _errors.closed_connection(target.endpoint, "winrm", diagnosis.evidence)


def test_tcp_open_port_that_waits_is_ok() -> None:
    release = threading.Event()
    port, thread = _server(lambda connection: release.wait(3))
    evidence = _doctor.check_tcp(_target(port=port), Context(addresses=["127.0.0.1"]))
    release.set()
    thread.join(3)
    assert f"port {port} on 127.0.0.1 accepts connections" in evidence


def test_tcp_refused_names_ansible_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tcp(_target(port=port), Context(addresses=["127.0.0.1"]))
    assert caught.value.diagnosis.layer is Layer.TCP
    assert "ansible_port" in caught.value.diagnosis.fix


def test_tcp_refused_names_a_stopped_winrm_service() -> None:
    """A stopped (or restarting) WinRM service listens nowhere: the controller sees a refusal,
    where a Windows client reports WSManFault 2150858770 (docs/troubleshooting.md)."""
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tcp(_target(port=port), Context(addresses=["127.0.0.1"]))
    fix = caught.value.diagnosis.fix
    assert "Set-Service WinRM -StartupType Automatic; Start-Service WinRM" in fix
    assert "winops.remoting.winrm_listener" in fix
    # quickconfig would add a listener on every address and a firewall exception.
    assert "quickconfig" not in fix
    assert "2150858770" in fix


def test_name_resolution_failure() -> None:
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_name_resolution(_target(host="no-such-host.invalid"), Context())
    assert caught.value.diagnosis.layer is Layer.NAME_RESOLUTION
    assert "ansible_host" in caught.value.diagnosis.fix


# -- TLS -------------------------------------------------------------------------------------


def _write_pem(path: Path, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> None:
    path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _self_signed(days_valid: tuple[int, int], name: str = "127.0.0.1") -> tuple[t.Any, t.Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_valid[0]))
        .not_valid_after(now + datetime.timedelta(days=days_valid[1]))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(name))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _tls_server(pem: Path, handshakes: int) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pem))
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        with listener:
            for _ in range(handshakes):
                connection, _ = listener.accept()
                try:
                    with context.wrap_socket(connection, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return port


@pytest.mark.parametrize(
    ("validity", "trusted", "summary", "fix_word"),
    [
        ((-1, 30), False, "not trusted", "ansible_winrm_ca_trust_path"),
        ((-30, -1), True, "has expired", "winrm_https_cert_renew_days_before_expiry"),
    ],
)
def test_tls_certificate_problems(
    tmp_path: Path, validity: tuple[int, int], trusted: bool, summary: str, fix_word: str
) -> None:
    key, cert = _self_signed(validity)
    pem = tmp_path / "server.pem"
    _write_pem(pem, key, cert)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    port = _tls_server(pem, handshakes=2)
    other_ca = tmp_path / "other.pem"
    other_ca.write_bytes(_self_signed((-1, 1))[1].public_bytes(serialization.Encoding.PEM))
    target = _target(port=port, ca_path=str(ca if trusted else other_ca))
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tls(target, Context(addresses=["127.0.0.1"]))
    diagnosis = caught.value.diagnosis
    assert diagnosis.layer is Layer.TLS
    assert summary in diagnosis.summary
    assert fix_word in diagnosis.fix
    assert "subject CN=127.0.0.1" in diagnosis.evidence


def test_tls_valid_and_ignored(tmp_path: Path) -> None:
    key, cert = _self_signed((-1, 30))
    pem = tmp_path / "server.pem"
    _write_pem(pem, key, cert)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    port = _tls_server(pem, handshakes=3)
    context = Context(addresses=["127.0.0.1"])
    evidence = _doctor.check_tls(_target(port=port, ca_path=str(ca)), context)
    assert evidence.startswith("TLSv1.")
    assert "chain and name verified" in evidence
    ignored = _doctor.check_tls(_target(port=port, cert_validation=False), context)
    assert "nothing was verified" in ignored


def test_tls_evidence_names_the_controllers_openssl(tmp_path: Path) -> None:
    key, cert = _self_signed((-1, 30))
    pem = tmp_path / "server.pem"
    _write_pem(pem, key, cert)
    port = _tls_server(pem, handshakes=1)
    context = Context(addresses=["127.0.0.1"])
    evidence = _doctor.check_tls(_target(port=port, cert_validation=False), context)
    assert f"the controller's {ssl.OPENSSL_VERSION} offers TLS 1.2 to TLS 1.3" in evidence
    assert context.tls_version == "TLSv1.3"


def _capped_controller(
    monkeypatch: pytest.MonkeyPatch, highest: ssl.TLSVersion, lowest: ssl.TLSVersion | None = None
) -> None:
    """The controller's contexts as an OpenSSL configuration (MaxProtocol) or an old OpenSSL
    leaves them: no version above ``highest``."""

    def capped() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if lowest is not None:
            context.minimum_version = lowest
        context.maximum_version = highest
        return context

    monkeypatch.setattr(_errors, "controller_context", capped)


def _tls13_only_server(pem: Path) -> int:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(str(pem))
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                connection.close()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def test_tls_no_shared_version_names_the_controllers_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, cert = _self_signed((-1, 30))
    pem = tmp_path / "server.pem"
    _write_pem(pem, key, cert)
    port = _tls13_only_server(pem)
    _capped_controller(monkeypatch, ssl.TLSVersion.TLSv1_2)
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tls(_target(port=port), Context(addresses=["127.0.0.1"]))
    diagnosis = caught.value.diagnosis
    assert diagnosis.summary == "the host and the controller share no TLS version"
    assert f"the controller's {ssl.OPENSSL_VERSION} offers TLS 1.2 to TLS 1.2" in (
        diagnosis.evidence
    )
    assert "winops.remoting.tls12" in diagnosis.fix and "OPENSSL_CONF" in diagnosis.fix


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_controller_without_tls12_is_the_controllers_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OpenSSL older than 1.0.1 offers TLS 1.1 at most: no host setting helps."""
    key, cert = _self_signed((-1, 30))
    pem = tmp_path / "server.pem"
    _write_pem(pem, key, cert)
    port = _tls13_only_server(pem)
    _capped_controller(monkeypatch, ssl.TLSVersion.TLSv1_1, lowest=ssl.TLSVersion.TLSv1)
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_tls(_target(port=port), Context(addresses=["127.0.0.1"]))
    diagnosis = caught.value.diagnosis
    assert diagnosis.layer is Layer.TLS
    assert diagnosis.summary.startswith("the controller cannot speak TLS 1.2")
    assert ssl.OPENSSL_VERSION in diagnosis.summary
    assert "OpenSSL 1.0.1 or newer" in diagnosis.fix
    assert "winops.remoting.tls12" not in diagnosis.fix


@pytest.mark.parametrize(
    ("version", "validating", "announces"),
    [
        ("1.25.6", True, False),
        ("1.25.7", False, True),
        ("1.26.18", True, True),
        ("2.0.7", False, True),
        ("2.1.0", True, True),
        ("2.1.0", False, False),
        ("2.2.0", False, True),
        ("2.5.0", False, True),
    ],
)
def test_urllib3_post_handshake_auth(version: str, validating: bool, announces: bool) -> None:
    assert _doctor.urllib3_announces_post_handshake_auth(version, validating) is announces


def test_certificate_auth_over_tls13_with_urllib3_21_unvalidated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib3

    monkeypatch.setattr(urllib3, "__version__", "2.1.0")
    target = _target(transport="certificate", cert_validation=False)
    context = Context(tls_version="TLSv1.3")
    with pytest.raises(CheckFailed) as caught:
        _doctor._check_post_handshake_auth(target, context)
    assert "urllib3 2.1.0" in caught.value.diagnosis.summary
    assert "urllib3>=2.0.7,!=2.1.*" in caught.value.diagnosis.fix
    # Over TLS 1.2 the certificate is asked for in the handshake: nothing to announce.
    _doctor._check_post_handshake_auth(target, Context(tls_version="TLSv1.2"))
    # Validating, urllib3 2.1 announces it.
    _doctor._check_post_handshake_auth(_target(transport="certificate"), context)


def test_tls_not_applicable_over_http() -> None:
    with pytest.raises(NotApplicable):
        _doctor.check_tls(_target(port=5985), Context())


# -- encryption and the shared classifier ----------------------------------------------------


def _plain_401(url: str, content_type: str | None) -> requests.HTTPError:
    request = requests.Request("POST", url, data=b"<s:Envelope/>").prepare()
    if content_type is None:
        request.headers.pop("Content-Type", None)
    else:
        request.headers["Content-Type"] = content_type
    response = requests.Response()
    response.status_code = 401
    response.headers["WWW-Authenticate"] = "Negotiate, CredSSP"
    response.request = request
    return requests.HTTPError("401", response=response)


def test_plain_soap_refused_over_http_is_message_encryption() -> None:
    endpoint = resolve_endpoint("127.0.0.1", 5985, None, None)
    error = _plain_401(endpoint.url, "application/soap+xml;charset=UTF-8")
    diagnosis = diagnose(error, endpoint, "ntlm", "psrp")
    assert diagnosis.layer is Layer.MESSAGE_ENCRYPTION
    assert "ansible_psrp_message_encryption: auto" in diagnosis.fix
    # The empty body pywinrm and pypsrp authenticate with: a plain credentials problem.
    error = _plain_401(endpoint.url, None)
    assert diagnose(error, endpoint, "ntlm", "psrp").summary.startswith("the credentials were")


def test_encryption_check_reports_the_hosts_refusal() -> None:
    endpoint = resolve_endpoint("127.0.0.1", 5985, None, None)

    def open_session() -> None:
        raise _plain_401(endpoint.url, "application/soap+xml;charset=UTF-8")

    target = _target(port=5985, message_encryption="never", open_session=open_session)
    with pytest.raises(CheckFailed) as caught:
        _doctor.check_message_encryption(target, Context())
    assert caught.value.diagnosis.layer is Layer.MESSAGE_ENCRYPTION
    assert "encrypts the messages" in _doctor.check_message_encryption(
        _target(port=5985), Context()
    )
    assert _doctor.check_message_encryption(_target(), Context()) == "TLS encrypts every message"


def test_credssp_refusal_is_scheme_not_offered() -> None:
    error = requests_credssp.exceptions.AuthenticationException(
        "The server did not response CredSSP being an available authentication method - "
        "actual: 'Negotiate'"
    )
    diagnosis = diagnose(error, resolve_endpoint("h", 5986, None, None), "credssp", "winrm")
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary == "the listener does not offer credssp authentication"
    assert "winops.remoting.credssp_delegation" in diagnosis.fix


def test_reset_and_remote_disconnected_are_the_closed_connection() -> None:
    endpoint = resolve_endpoint("h", 5985, None, None)
    error = http.client.RemoteDisconnected("Remote end closed connection without response")
    assert diagnose(error, endpoint, "ntlm", "winrm") == _errors.closed_connection(
        endpoint, "winrm", str(error)
    )


@pytest.mark.parametrize(
    ("message", "summary"),
    [
        ("certificate has expired", "has expired"),
        ("certificate is not yet valid", "not valid yet"),
        ("Hostname mismatch, certificate is not valid for 'win1'.", "not issued for 'h'"),
        ("unable to get local issuer certificate", "not trusted"),
    ],
)
def test_certificate_problem_wording(message: str, summary: str) -> None:
    diagnosis = _errors.certificate_problem(
        message, resolve_endpoint("h", None, None, None), "psrp"
    )
    assert summary in diagnosis.summary
    assert diagnosis.evidence == f"certificate verify failed: {message}"


def test_auth_not_offered_needs_evidence_of_schemes() -> None:
    assert _errors.auth_not_offered("basic", [], "winrm", "") is None
    assert _errors.auth_not_offered("ntlm", ["Negotiate"], "winrm", "") is None
    assert _errors.auth_not_offered("certificate", ["Negotiate", MUTUAL], "winrm", "") is None
    diagnosis = _errors.auth_not_offered("basic", ["Negotiate"], "psrp", "seen")
    assert diagnosis is not None
    assert diagnosis.fix.startswith("set ansible_psrp_auth to negotiate or ntlm")
    assert diagnosis.fix.endswith(
        "enable basic on the host (add basic to winrm_auth_methods of the "
        "winops.remoting.winrm_auth role)"
    )


def test_basic_over_http_is_not_offered_as_a_fix_without_https() -> None:
    # Before, over http the fix said to add basic to winrm_auth_methods, which the role refuses
    # there (Basic over http needs AllowUnencrypted): a fix that leads nowhere.
    diagnosis = _errors.auth_not_offered("basic", ["Negotiate"], "winrm", "seen", over_http=True)
    assert diagnosis is not None
    assert diagnosis.fix == (
        "set ansible_winrm_transport to negotiate or ntlm, or enable basic on the host (over "
        "https only: Basic over http would need AllowUnencrypted, which the winrm_auth role "
        "refuses with it; move to https with the winops.remoting.setup playbook, then add basic "
        "to winrm_auth_methods of the winops.remoting.winrm_auth role)"
    )


def test_tcp_tries_every_resolved_address_in_order() -> None:
    release = threading.Event()
    port, thread = _server(lambda connection: release.wait(3))
    context = Context(addresses=["127.0.0.2", "127.0.0.1"])  # nothing listens on .2
    evidence = _doctor.check_tcp(_target(port=port), context)
    release.set()
    thread.join(3)
    assert "on 127.0.0.1 accepts" in evidence
    assert context.addresses == ["127.0.0.1", "127.0.0.2"]


# Windows' name for certificate authentication in WWW-Authenticate (requests-credssp#29).
MUTUAL = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"


def _listener_offering(*schemes: str) -> tuple[int, http.server.ThreadingHTTPServer]:
    """A listener that answers every POST with 401 and one WWW-Authenticate per scheme."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(401)
            for scheme in schemes:
                self.send_header("WWW-Authenticate", scheme)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: t.Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1], server


@pytest.mark.parametrize("plugin", ["winrm", "psrp"])
def test_certificate_auth_switched_off_on_the_host_fails_auth_methods(plugin: str) -> None:
    # Certificate=false: Windows leaves the https/mutual profile out of its 401.
    port, server = _listener_offering("Negotiate", "Kerberos", 'Basic realm="WSMAN"', "CredSSP")
    endpoint = resolve_endpoint("127.0.0.1", port, "http", None)
    target = _target(plugin=plugin, transport="certificate", endpoint=endpoint)
    try:
        with pytest.raises(CheckFailed) as caught:
            _doctor.check_auth_methods(target, Context())
    finally:
        server.shutdown()
    diagnosis = caught.value.diagnosis
    assert diagnosis.summary == "the listener does not offer certificate authentication"
    assert "add certificate to winrm_auth_methods of the winops.remoting.winrm_auth role" in (
        diagnosis.fix
    )


def test_certificate_auth_listed_by_the_host_passes_auth_methods() -> None:
    port, server = _listener_offering("Negotiate", "Kerberos", MUTUAL, 'Basic realm="WSMAN"')
    endpoint = resolve_endpoint("127.0.0.1", port, "http", None)
    target = _target(transport="certificate", endpoint=endpoint)
    try:
        evidence = _doctor.check_auth_methods(target, Context())
    finally:
        server.shutdown()
    assert MUTUAL in evidence
