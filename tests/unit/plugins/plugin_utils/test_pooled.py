"""A session built through ``environment_read_once`` sends every request through the proxy
the library's own session would have used, while reading the environment only when built
(session/_pooled.py). Real pywinrm and pypsrp builders, no network."""

from __future__ import annotations

import typing as t

import pytest
import requests
from pypsrp.wsman import WSMan
from requests.utils import resolve_proxies
from winrm.transport import Transport

from ansible_collections.winops.remoting.plugins.plugin_utils.session._pooled import (
    environment_read_once,
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
