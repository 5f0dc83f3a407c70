"""Listeners: real sockets speaking HTTP/1.1 with keep-alive, optionally TLS 1.0 to 1.3.

One `ListenerRuntime` per (address, port, transport, certificate). Each accepted connection
gets a thread and its own `ConnectionAuth`, so connection-bound authentication (NTLM,
Negotiate, CredSSP) and message encryption follow the TCP connection as with HTTP.sys.
The request pipeline: authenticate (or anonymous Identify) -> decrypt multipart/encrypted or
refuse unencrypted HTTP -> parse the envelope -> fault hooks -> route -> render -> encrypt.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import ssl
import threading
import time
import typing as t
import warnings
import weakref
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from spnego.exceptions import SpnegoError

from winhost import api, faults, latency
from winhost.auth import CERTIFICATE_AUTH_HEADER, AuthHost, ConnectionAuth, TlsInfo
from winhost.http.encryption import EncryptionError, is_encrypted, seal, unseal
from winhost.schannel import CipherSuitePolicy
from winhost.shells.common import not_modelled_fault
from winhost.wsman import envelope

log = logging.getLogger(__name__)

SOAP_CONTENT_TYPE = "application/soap+xml;charset=UTF-8"
IDLE_TIMEOUT = 120.0  # HTTP.sys' default idle connection timeout
_MAX_BODY = 64 * 1024 * 1024


class ServedHost(AuthHost, t.Protocol):
    """What a listener needs of its host."""

    name: str

    def route(
        self, request: api.WSManRequest, principal: api.Principal | None
    ) -> api.WSManResponse: ...

    def logon(self, principal: api.Principal) -> api.Principal: ...

    def allows_remote(self, principal: api.Principal) -> bool: ...

    def allows_resource(self, principal: api.Principal, resource_uri: str) -> bool: ...

    def record_request(self, seconds: float) -> None: ...

    def pay(self, operation: str) -> None: ...

    def admits(self, peer: str, port: int) -> bool: ...


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    listener: ListenerRuntime

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the address; loopback needs no DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def get_request(self) -> tuple[socket.socket, t.Any]:
        sock, address = super().get_request()
        # One read of the listener's certificate per connection: a certificate change between
        # accept and handshake must not give the handshake one certificate and the channel
        # binding check another.
        context, cert_der = self.listener.tls_context, self.listener.server_cert_der
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        self.listener.track(sock, True, cert_der)
        return sock, address

    def verify_request(self, request: t.Any, client_address: t.Any) -> bool:
        # Windows Firewall drops the packets (the client times out); winhost can only close
        # the accepted connection at once.
        if self.listener.host.admits(client_address[0], self.listener.port):
            return True
        log.info("winhost %s: firewall blocks %s", self.listener.host.name, client_address[0])
        return False

    def shutdown_request(self, request: t.Any) -> None:
        self.listener.track(request, False)
        super().shutdown_request(request)

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class ListenerRuntime:
    """A listening socket of a host, with its accept thread and open connections."""

    def __init__(
        self,
        host: ServedHost,
        *,
        address: str,
        port: int,
        transport: str,
        url_prefix: str,
        tls_context: ssl.SSLContext | None = None,
        server_cert_der: bytes | None = None,
    ) -> None:
        self.host = host
        self.address = address
        self.port = port
        self.transport = transport
        self.url_prefix = url_prefix
        self.tls_context = tls_context
        self.server_cert_der = server_cert_der
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._connections: dict[socket.socket, bytes | None] = {}
        self._lock = threading.Lock()

    def replace_certificate(self, tls_context: ssl.SSLContext, server_cert_der: bytes) -> None:
        """Serve another certificate from the next handshake on; connections already open keep
        theirs (an HTTPS listener whose CertificateThumbprint changed; see
        docs/winhost-behaviours.md)."""
        with self._lock:
            self.tls_context, self.server_cert_der = tls_context, server_cert_der

    def served_certificate(self, sock: socket.socket) -> bytes | None:
        """The certificate this connection was accepted with."""
        with self._lock:
            return self._connections.get(sock, self.server_cert_der)

    def track(self, sock: socket.socket, open_: bool, server_cert_der: bytes | None = None) -> None:
        with self._lock:
            if open_:
                self._connections[sock] = server_cert_der
            else:
                self._connections.pop(sock, None)

    def connections(self) -> list[tuple[str, int, str]]:
        """(local address, local port, remote address) of each open connection: the host
        address and port it arrived on and the client's address."""
        with self._lock:
            sockets = list(self._connections)
        pairs = []
        for sock in sockets:
            try:
                local = sock.getsockname()
                pairs.append((str(local[0]), int(local[1]), str(sock.getpeername()[0])))
            except OSError:  # closed meanwhile
                continue
        return pairs

    def start(self) -> None:
        server = _Server((self.address, self.port), _Handler, bind_and_activate=True)
        server.listener = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"winhost-{self.host.name}-{self.transport}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Close the listening socket and cut every open connection (as a reboot does)."""
        server = self._server
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._server = None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: without TCP_NODELAY every small reply waits
    # out the client's delayed ACK (~40 ms), which Windows' HTTP.sys does not make clients do.
    disable_nagle_algorithm = True
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = IDLE_TIMEOUT
    server: _Server

    def setup(self) -> None:
        self.listener = self.server.listener
        tls_info = None
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(30)
            self.request.do_handshake()
            tls_info = TlsInfo(
                server_cert_der=self.listener.served_certificate(self.request) or b"",
                peer_cert_der=self.request.getpeercert(binary_form=True),
                version=self.request.version() or "",
            )
        super().setup()
        self.auth = ConnectionAuth(self.listener.host, tls_info)

    def log_message(self, format: str, *args: t.Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    # --- responses -------------------------------------------------------------------------
    def _reply(
        self,
        status: int,
        body: bytes = b"",
        content_type: str | None = None,
        auth_headers: t.Sequence[str] = (),
        drop: bool = False,
    ) -> None:
        closing = self.close_connection and not drop
        if closing and hasattr(socket, "TCP_CORK"):
            # The answer and the connection's end leave together (see below).
            with contextlib.suppress(OSError):
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        self.send_response(status)
        for value in auth_headers:
            self.send_header("WWW-Authenticate", value)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if drop:
            # The fault "drop": half of the body, then the connection is gone.
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)
        if closing:
            # Closed with the answer, not once the handler has returned: the client finds the
            # connection closed as soon as it has read the answer, as after HTTP.sys's idle
            # timer (which fires only between requests), instead of racing to send another
            # request into it. The cork holds the answer's last bytes until the FIN goes too.
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_WR)

    def _unauthorized(self, reason: str, token_header: str | None = None) -> None:
        if token_header:
            self._reply(401, auth_headers=[token_header])
            return
        log.info("winhost %s: 401 (%s)", self.listener.host.name, reason)
        self._reply(401, auth_headers=self.auth.offered_schemes())

    def do_GET(self) -> None:
        self._reply(405)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._reply(411)
            self.close_connection = True
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self._reply(413)
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        host = self.listener.host
        if not host.admits(self.client_address[0], self.listener.port):
            # A firewall change re-authorizes established flows at their next packet and drops
            # the ones no rule admits any more (Windows Filtering Platform, "ALE
            # Re-authorization"): a kept connection is cut off by the rule change too, not only
            # new ones. Windows drops the packets; winhost can only close the connection.
            log.info("winhost %s: firewall now blocks %s", host.name, self.client_address[0])
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.request.shutdown(socket.SHUT_RDWR)
            return
        body = self._read_body()
        if body is None:
            return
        # One network round trip per request and answer (latency profile; nothing by default).
        host.pay(latency.ROUND_TRIP)
        if urlsplit(self.path).path.strip("/").lower() != self.listener.url_prefix.lower():
            self._reply(404)
            return

        authorization = self.headers.get("Authorization")
        anonymous = (
            not authorization and self.headers.get("WSMANIDENTIFY", "").lower() == "unauthenticated"
        )
        principal: api.Principal | None = None
        token_header: str | None = None
        if not anonymous:
            result = self.auth.authenticate(authorization, self._certificate_resource_uri(body))
            if result.status == "not_modelled":
                self._reply(500, self._not_modelled(result.reason), SOAP_CONTENT_TYPE)
                return
            if result.status != "ok":
                self._unauthorized(result.reason, result.token_header)
                return
            principal, token_header = result.principal, result.token_header
            if principal is not None and principal.elevated is None:
                # A new logon: its token is fixed now, for the rest of the connection.
                principal = self.auth.principal = host.logon(principal)
            if principal is not None and not host.allows_remote(principal):
                # Neither RootSDDL nor any session configuration grants the user: Windows
                # answers 401, as for a failed logon (see winhost.access for the sources).
                self.auth.acceptor = None
                self.auth.principal = None
                self._unauthorized(f"{principal.qualified_name} is not granted WinRM access")
                return

        sealer = None
        content_type = self.headers.get("Content-Type", "")
        if is_encrypted(content_type):
            if not self.auth.session_bound:
                self._unauthorized("encrypted body without a security context")
                return
            sealer = self.auth.acceptor
            try:
                message = unseal(body, sealer)  # type: ignore[arg-type]
            except (EncryptionError, SpnegoError, ssl.SSLError, ValueError) as err:
                log.info("winhost %s: cannot decrypt: %s", host.name, err)
                self._reply(400)
                return
        elif not body:
            # The empty POST a client sends to set up a context for encryption.
            self._reply(200, auth_headers=[token_header] if token_header else ())
            return
        elif (
            self.auth.tls is None
            and not anonymous
            and not host.winrm_flag("Service/AllowUnencrypted")
        ):
            self.auth.acceptor = None
            self.auth.principal = None
            if principal is not None and principal.auth_method == "Kerberos":
                # A Kerberos logon's plain message gets 500 where NTLM and Basic get 401
                # (docs/winhost-behaviours.md; the empty body is assumed).
                log.info("winhost %s: unencrypted message on a Kerberos logon", host.name)
                self._reply(500)
                return
            self._unauthorized("unencrypted message over HTTP while AllowUnencrypted=false")
            return
        else:
            message = body

        status, payload, drop = self._process(message, principal, anonymous)
        if status is None:
            return
        if sealer is not None:
            response_type, payload = seal(payload, sealer)
        else:
            response_type = SOAP_CONTENT_TYPE
        self._reply(
            status,
            payload,
            response_type,
            auth_headers=[token_header] if token_header else (),
            drop=drop,
        )

    def _certificate_resource_uri(self, body: bytes) -> str | None:
        """The resource URI a certificate logon's mapping is chosen by (None for a request
        that names none, as Identify, or cannot be read: it fails later in any case). Only a
        certificate logon needs it, and its body is never encrypted (HTTPS, no security
        context)."""
        authorization = (self.headers.get("Authorization") or "").strip().lower()
        if authorization != CERTIFICATE_AUTH_HEADER or not body:
            return None
        try:
            return envelope.parse_request(body).resource_uri or None
        except api.WSManFault:
            return None

    def _not_modelled(self, what: str) -> bytes:
        log.warning("winhost %s: not modelled: %s", self.listener.host.name, what)
        return envelope.render_fault(
            None, not_modelled_fault(what), self.listener.host.computer_name
        )

    def _process(
        self, message: bytes, principal: api.Principal | None, anonymous: bool
    ) -> tuple[int | None, bytes, bool]:
        host = self.listener.host
        request: api.WSManRequest | None = None
        drop = False
        started = time.perf_counter()
        try:
            request = envelope.parse_request(message)
            if anonymous and request.action != envelope.IDENTIFY_ACTION:
                self._unauthorized("anonymous request other than Identify")
                return None, b"", False
            if (
                principal is not None
                and request.action != envelope.IDENTIFY_ACTION
                and not host.allows_resource(principal, request.resource_uri)
            ):
                # Granted the service but not this resource (winhost.access).
                raise api.WSManFault(
                    "s:Sender",
                    "w:AccessDenied",
                    api.WSMAN_FAULT_ACCESS_DENIED,
                    "Access is denied. ",
                )
            delay = faults.take(host.name, "delay", request.action)
            if delay is not None:
                time.sleep(delay.seconds)
            if faults.take(host.name, "http500", request.action) is not None:
                raise faults.internal_error_fault()
            response = host.route(request, principal)
            payload = envelope.render_response(request, response)
            status = 200
            drop = faults.take(host.name, "drop", request.action) is not None
            if faults.take(host.name, "close", request.action) is not None:
                # The fault "close": the whole answer, then the connection is closed, as
                # HTTP.sys closes a connection whose idle timer ran out between requests.
                self.close_connection = True
        except api.WSManFault as fault:
            status = fault.http_status
            payload = envelope.render_fault(request, fault, host.computer_name)
        except Exception as err:
            log.exception("winhost %s: internal error", host.name)
            fault = api.WSManFault(
                "s:Receiver",
                "w:InternalError",
                2150858770,
                f"winhost internal error: {type(err).__name__}: {err}",
            )
            status = 500
            payload = envelope.render_fault(request, fault, host.computer_name)
        # winhost's own cost per request (parse, route, render), for the benchmarks; time a
        # handler spends waiting (Receive up to OperationTimeout, delay faults) is included.
        host.record_request(time.perf_counter() - started)
        return status, payload, drop


def trust_client_certificates(context: ssl.SSLContext, trust_pem: bytes) -> None:
    """Ask clients for a certificate (optional) that chains to one in `trust_pem`; any of
    them is an anchor, so a leaf from TrustedPeople passes TLS and auth judges it."""
    if not trust_pem:
        return
    context.load_verify_locations(cadata=trust_pem.decode("ascii"))
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.verify_mode = ssl.CERT_OPTIONAL


def _offers_tls13(client_hello: bytes) -> bool:
    """Whether a ClientHello (handshake header included) lists TLS 1.3 in its
    supported_versions extension (RFC 8446 4.2.1); False for one that cannot be read."""
    try:
        at = 4 + 2 + 32  # handshake header, legacy_version, random
        at += 1 + client_hello[at]  # legacy_session_id
        at += 2 + int.from_bytes(client_hello[at : at + 2], "big")  # cipher_suites
        at += 1 + client_hello[at]  # legacy_compression_methods
        end = at + 2 + int.from_bytes(client_hello[at : at + 2], "big")
        at += 2
        while at + 4 <= end:
            kind = int.from_bytes(client_hello[at : at + 2], "big")
            length = int.from_bytes(client_hello[at + 2 : at + 4], "big")
            body = client_hello[at + 4 : at + 4 + length]
            if kind == 43:  # supported_versions: a length byte, then two bytes per version
                versions = body[1 : 1 + body[0]]
                return any(versions[i : i + 2] == b"\x03\x04" for i in range(0, len(versions), 2))
            at += 4 + length
    except IndexError:
        return False
    return False


def refuse_tls13_clients(context: ssl.SSLContext) -> None:
    """Fail the handshake of every client that offers TLS 1.3, with handshake_failure.

    SCHANNEL with TLS 1.3 enabled and no TLS 1.3 suite in its priority list still chooses
    TLS 1.3 for such a client and then has no suite to use, so the connection fails; it does
    not fall back to TLS 1.2 as OpenSSL would (docs/winhost-behaviours.md, SCHANNEL). The
    ClientHello is read in the message callback, and the server name callback, which OpenSSL
    runs for every ClientHello (with or without SNI), refuses it.
    """
    offering: weakref.WeakSet[t.Any] = weakref.WeakSet()

    def note(
        connection: t.Any, direction: str, _v: t.Any, kind: t.Any, message: t.Any, data: bytes
    ) -> None:
        if (
            direction == "read"
            and kind == ssl._TLSContentType.HANDSHAKE  # private: the ClientHello has no public hook
            and message == ssl._TLSMessageType.CLIENT_HELLO
            and _offers_tls13(data)
        ):
            offering.add(connection)

    def refuse(connection: t.Any, _name: str | None, _context: ssl.SSLContext) -> int | None:
        if connection in offering:
            offering.discard(connection)
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        return None

    context._msg_callback = note  # private: Python's only view of the ClientHello
    context.sni_callback = refuse


def tls_context(
    cert_path: str,
    key_path: str,
    trust_pem: bytes,
    versions: tuple[str, ...],
    cipher_policy: CipherSuitePolicy | None = None,
) -> ssl.SSLContext:
    """A server context for an HTTPS listener: the given protocol versions, the cipher suites
    SCHANNEL's priority list allows (None: OpenSSL's defaults stand for the release's), and a
    client certificate requested (optional) and checked against the certificates the host
    trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; serving them is the point of an old host's model.
        warnings.simplefilter("ignore", DeprecationWarning)
        order = {
            "TLS 1.0": ssl.TLSVersion.TLSv1,
            "TLS 1.1": ssl.TLSVersion.TLSv1_1,
            "TLS 1.2": ssl.TLSVersion.TLSv1_2,
            "TLS 1.3": ssl.TLSVersion.TLSv1_3,
        }
        enabled = sorted((order[v] for v in versions if v in order), key=lambda v: v.value)
        if not enabled:
            raise ValueError(
                f"no TLS protocol version enabled (SCHANNEL allows {versions or 'none'})"
            )
        context.minimum_version = enabled[0]
        context.maximum_version = enabled[-1]
    ciphers = "DEFAULT"
    if cipher_policy is not None:
        # Only the listed suites. A list naming none OpenSSL serves leaves anonymous suites
        # only, which no client accepts: the handshake fails, as SCHANNEL's would.
        ciphers = cipher_policy.openssl_ciphers or "aNULL"
        if not cipher_policy.tls13 and context.maximum_version > ssl.TLSVersion.TLSv1_2:
            # No TLS 1.3 suite listed while TLS 1.3 is on. Python cannot pick single TLS 1.3
            # suites (no SSL_CTX_set_ciphersuites), so a list naming any of them leaves all of
            # OpenSSL's on.
            refuse_tls13_clients(context)
    if enabled[0] < ssl.TLSVersion.TLSv1_2:
        # OpenSSL 3 refuses TLS 1.0/1.1 at security level 1 and above (their handshake
        # signatures use SHA-1), and their cipher suites are CBC with SHA-1 MACs.
        context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    elif cipher_policy is not None:
        context.set_ciphers(ciphers)
    context.load_cert_chain(cert_path, key_path)
    trust_client_certificates(context, trust_pem)
    return context
