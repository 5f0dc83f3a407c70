"""A session built through ``environment_read_once`` sends every request through the proxy
the library's own session would have used, while reading the environment only when built
(session/_pooled.py). Real pywinrm and pypsrp builders, no network."""

from __future__ import annotations

import http.server
import socket
import threading
import typing as t

import pytest
import requests
from pypsrp.wsman import WSMan
from requests.utils import resolve_proxies
from winrm.transport import Transport

from ansible_collections.winops.remoting.plugins.plugin_utils.session._pooled import (
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_PROBES,
    environment_read_once,
    probe_idle_connections,
)

HOST = "win-01.example.com"
PROXY = "http://proxy.example.com:3128"
ENVIRONMENTS = {
    "no proxy set": {},
    "HTTP_PROXY": {"HTTP_PROXY": PROXY},
    "HTTP_PROXY, NO_PROXY naming the host": {"HTTP_PROXY": PROXY, "NO_PROXY": HOST},
    "HTTP_PROXY, NO_PROXY naming another host": {"HTTP_PROXY": PROXY, "NO_PROXY": "other.test"},
}


def _pywinrm_builder(proxy: str | None) -> t.Callable[[], requests.Session]:
    transport = Transport(
        endpoint=f"http://{HOST}:5985/wsman",
        username="admin",
        password="secret",
        auth_method="ntlm",
        # "auto" would authenticate while building (an HTTP request); the proxy is read before.
        message_encryption="never",
        proxy=proxy,
    )
    return transport.build_session  # type: ignore[no-any-return]


def _pypsrp_builder(proxy: str | None) -> t.Callable[[], requests.Session]:
    wsman = WSMan(HOST, username="admin", password="secret", ssl=False, auth="ntlm", proxy=proxy)
    return wsman.transport._build_session  # type: ignore[no-any-return]


BUILDERS = {
    "pywinrm, proxy from the environment": lambda: _pywinrm_builder("legacy_requests"),
    "pywinrm, no proxy": lambda: _pywinrm_builder(None),
    "pypsrp, proxy from the environment": lambda: _pypsrp_builder(None),
}


def _proxy_of_a_request(http: requests.Session) -> dict[str, str]:
    """The proxies requests uses for a request of this session (as Session.send finds them)."""
    prepared = http.prepare_request(requests.Request("POST", f"http://{HOST}:5985/wsman"))
    return {
        scheme: url
        for scheme, url in resolve_proxies(prepared, http.proxies, http.trust_env).items()
        if scheme in {"http", "https"}
    }


@pytest.mark.parametrize("environment", ENVIRONMENTS.values(), ids=list(ENVIRONMENTS))
@pytest.mark.parametrize("builder", BUILDERS.values(), ids=list(BUILDERS))
def test_requests_use_the_proxy_the_library_session_would(
    builder: t.Callable[[], t.Callable[[], requests.Session]],
    environment: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    theirs = builder()()
    ours = environment_read_once(builder())()
    assert theirs.trust_env and not ours.trust_env
    assert _proxy_of_a_request(ours) == _proxy_of_a_request(theirs)


def test_the_environment_is_not_read_for_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", PROXY)
    ours = environment_read_once(_pywinrm_builder("legacy_requests"))()
    monkeypatch.setenv("HTTP_PROXY", "http://changed.example.com:8080")
    assert _proxy_of_a_request(ours) == {"http": PROXY}


class _Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep the connection open, as WinRM does

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: t.Any) -> None:
        pass


@pytest.mark.parametrize("builder", BUILDERS.values(), ids=list(BUILDERS))
def test_a_pooled_connection_sends_keepalive_probes(
    builder: t.Callable[[], t.Callable[[], requests.Session]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a real request, the kept connection's socket gets TCP keepalive with our timing
    (where the platform sets it per socket), so one that died silently is found dead; the
    request after it still goes out on the same connection (its keys stay valid)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        session = builder()()
        session.proxies = {}
        url = f"http://127.0.0.1:{server.server_address[1]}/wsman"
        assert session.post(url, data=b"x", auth=None).status_code == 200
        probe_idle_connections(session)
        manager = session.get_adapter(url).poolmanager
        pools = [manager.pools[key] for key in manager.pools.keys()]
        socks = [c.sock for p in pools for c in p.pool.queue if c is not None and c.sock]
        assert len(socks) == 1
        sock = socks[0]
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == KEEPALIVE_IDLE
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == KEEPALIVE_INTERVAL
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES
        local = sock.getsockname()
        assert session.post(url, data=b"y", auth=None).status_code == 200
        again = [c.sock for p in pools for c in p.pool.queue if c is not None and c.sock]
        assert [s.getsockname() for s in again] == [local], "a new connection was opened"
        session.close()
    finally:
        server.shutdown()
        server.server_close()
