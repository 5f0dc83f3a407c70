"""Tests for _connection_auth: which HTTP scheme and Service\\Auth settings a connection needs,
and the plugin names it knows."""

from __future__ import annotations

import dataclasses

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils._connection_auth import (
    ConnectionAuth,
    ConnectionAuthError,
    depends_on_winrm,
    plugin_name,
    pypsrp_client_auth,
    pywinrm_client_auth,
)


@pytest.mark.parametrize(
    ("transport", "certificate", "scheme", "service_auth"),
    [
        ("plaintext", False, "Basic", ("basic",)),
        ("basic", False, "Basic", ("basic",)),
        ("ssl", False, "Basic", ("basic",)),
        ("ssl", True, "Certificate", ("certificate",)),
        ("certificate", True, "Certificate", ("certificate",)),
        ("ntlm", False, "Negotiate", ("negotiate",)),
        ("kerberos", False, "Negotiate", ("negotiate",)),
        ("credssp", False, "CredSSP", ("credssp",)),
        ("Kerberos ", False, "Negotiate", ("negotiate",)),
    ],
)
def test_pywinrm_transports(
    transport: str, certificate: bool, scheme: str, service_auth: tuple[str, ...]
) -> None:
    client = pywinrm_client_auth(transport, certificate)
    assert (client.http_scheme, client.service_auth) == (scheme, service_auth)


@pytest.mark.parametrize(
    ("auth", "scheme", "service_auth"),
    [
        ("basic", "Basic", ("basic",)),
        ("certificate", "Certificate", ("certificate",)),
        ("credssp", "CredSSP", ("credssp",)),
        ("negotiate", "Negotiate", ("negotiate",)),
        ("ntlm", "Negotiate", ("negotiate",)),
        ("kerberos", "Negotiate", ("negotiate", "kerberos")),
    ],
)
def test_pypsrp_auths(auth: str, scheme: str, service_auth: tuple[str, ...]) -> None:
    client = pypsrp_client_auth(auth)
    assert (client.http_scheme, client.service_auth) == (scheme, service_auth)


def test_unknown_transport_is_an_error() -> None:
    with pytest.raises(ConnectionAuthError, match="'digest'"):
        pywinrm_client_auth("digest", False)
    with pytest.raises(ConnectionAuthError, match="'digest'"):
        pypsrp_client_auth("digest")


class _Named:
    def __init__(self, load_name: str, transport: str = "") -> None:
        self._load_name = load_name
        self.transport = transport


@pytest.mark.parametrize(
    ("load_name", "expected", "winrm"),
    [
        (
            "ansible_collections.winops.remoting.plugins.connection.winrm",
            "winops.remoting.winrm",
            True,
        ),
        (
            "ansible_collections.winops.remoting.plugins.connection.psrp",
            "winops.remoting.psrp",
            True,
        ),
        ("ansible.builtin.winrm", "ansible.builtin.winrm", True),
        ("ansible.legacy.psrp", "ansible.builtin.psrp", True),
        ("winrm", "ansible.builtin.winrm", True),
        ("ssh", "ansible.builtin.ssh", False),
        ("ansible.builtin.local", "ansible.builtin.local", False),
        ("ansible_collections.community.foo.plugins.connection.bar", "community.foo.bar", None),
    ],
)
def test_plugin_names(load_name: str, expected: str, winrm: bool | None) -> None:
    name = plugin_name(_Named(load_name))
    assert name == expected
    assert depends_on_winrm(name) is winrm


def _auth(https: bool, scheme: str, encryption: str = "auto") -> ConnectionAuth:
    return ConnectionAuth(
        plugin="winops.remoting.winrm",
        client_auth="x",
        http_scheme=scheme,
        service_auth=("basic",),
        https=https,
        host="h",
        port=5985,
        message_encryption=encryption,
    )


@pytest.mark.parametrize(
    ("https", "scheme", "encryption", "needs"),
    [
        (False, "Basic", "auto", True),
        (True, "Basic", "auto", False),
        (False, "Negotiate", "auto", False),
        (False, "Negotiate", "never", True),
        (True, "Negotiate", "never", False),
    ],
)
def test_needs_allow_unencrypted(https: bool, scheme: str, encryption: str, needs: bool) -> None:
    assert _auth(https, scheme, encryption).needs_allow_unencrypted is needs


def test_result_names_settings_and_listener() -> None:
    result = _auth(False, "Basic").as_result()
    assert result["service_settings"] == ["Service\\Auth\\Basic"]
    assert result["listener"] == {"transport": "HTTP", "port": 5985}
    assert result["needs_allow_unencrypted"] is True


@pytest.mark.parametrize(
    ("https", "scheme", "sends", "refused"),
    [
        (True, "Negotiate", False, True),
        (True, "Negotiate", True, False),
        # Asked over HTTP too: a play moved to HTTPS keeps its settings. Basic, CredSSP and
        # certificates carry no binding of this kind.
        (False, "Negotiate", False, True),
        (True, "Basic", False, False),
        (True, "Certificate", False, False),
    ],
)
def test_https_logons_refused_by_strict_cbt(
    https: bool, scheme: str, sends: bool, refused: bool
) -> None:
    auth = dataclasses.replace(_auth(https, scheme), sends_channel_binding=sends)
    assert auth.https_logons_refused_by_strict_cbt is refused
    assert auth.as_result()["https_logons_refused_by_strict_cbt"] is refused
