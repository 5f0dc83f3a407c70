"""_errors.diagnose on exceptions produced by real clients against real loopback sockets.

The constructed chains in test_errors.py pin each rule; these check the rules still match what
requests, pywinrm and pypsrp really raise (their chaining can change between releases).
"""

from __future__ import annotations

import contextlib
import datetime
import http.server
import socket
import ssl
import threading
import typing as t

import pypsrp.shell
import pypsrp.wsman
import pytest
import requests
import winrm.protocol
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import resolve_endpoint
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import (
    diagnose,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Layer,
)

HOST = "127.0.0.1"


class Rejecting401(http.server.BaseHTTPRequestHandler):
    """Answers every POST like a listener that only offers Negotiate and Kerberos."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("WWW-Authenticate", "Kerberos")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: t.Any) -> None:
        pass


@contextlib.contextmanager
def serving(
    handler: type[http.server.BaseHTTPRequestHandler], context: ssl.SSLContext | None = None
) -> t.Iterator[int]:
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def self_signed_context(tmp_path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "win01.example.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def caught(func: t.Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as exc:
        func()
    return exc.value


def test_refused_port() -> None:
    port = free_port()
    error = caught(lambda: requests.post(f"http://{HOST}:{port}/wsman", timeout=5))
    diagnosis = diagnose(error, resolve_endpoint(HOST, port, "http", None), "ntlm", "winrm")
    assert diagnosis.layer is Layer.TCP
    assert "ansible_port" in diagnosis.fix


def test_https_to_a_plain_http_listener() -> None:
    with serving(Rejecting401) as port:
        error = caught(
            lambda: requests.post(f"https://{HOST}:{port}/wsman", timeout=5, verify=False)
        )
    diagnosis = diagnose(error, resolve_endpoint(HOST, port, "https", None), "ntlm", "psrp")
    assert diagnosis.layer is Layer.TLS
    assert "ansible_psrp_protocol: http" in diagnosis.fix


def test_untrusted_certificate(tmp_path) -> None:
    with serving(Rejecting401, self_signed_context(tmp_path)) as port:
        error = caught(lambda: requests.post(f"https://{HOST}:{port}/wsman", timeout=5))
    diagnosis = diagnose(error, resolve_endpoint(HOST, port, None, None), "ntlm", "winrm")
    assert diagnosis.layer is Layer.TLS
    assert diagnosis.evidence.startswith("certificate verify failed:")
    assert "ansible_winrm_ca_trust_path" in diagnosis.fix


def test_pywinrm_basic_against_a_negotiate_only_listener() -> None:
    with serving(Rejecting401) as port:
        url = f"http://{HOST}:{port}/wsman"
        protocol = winrm.protocol.Protocol(
            url, transport="basic", username="admin", password="Pässw0rd"
        )
        error = caught(protocol.open_shell)
    diagnosis = diagnose(error, resolve_endpoint(HOST, port, "http", None), "basic", "winrm")
    assert type(error).__name__ == "InvalidCredentialsError"
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.summary == "the listener does not offer basic authentication"
    assert diagnosis.evidence.endswith("server offered: Negotiate, Kerberos")
    assert "ansible_winrm_transport" in diagnosis.fix


def test_pypsrp_basic_against_a_negotiate_only_listener() -> None:
    with serving(Rejecting401) as port:
        wsman = pypsrp.wsman.WSMan(
            HOST,
            port=port,
            ssl=False,
            auth="basic",
            username="admin",
            password="Pässw0rd",
            encryption="never",
        )
        error = caught(lambda: pypsrp.shell.WinRS(wsman).open())
    diagnosis = diagnose(error, resolve_endpoint(HOST, port, "http", None), "basic", "psrp")
    assert type(error).__name__ == "AuthenticationError"
    assert diagnosis.layer is Layer.HTTP_AUTH
    assert diagnosis.evidence.endswith("server offered: Negotiate, Kerberos")
    assert "ansible_psrp_auth" in diagnosis.fix
