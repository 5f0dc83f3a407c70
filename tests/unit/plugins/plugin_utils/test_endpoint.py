"""Tests for _endpoint: WinRM scheme/port defaults, IPv6 URLs and UPN parsing."""

from __future__ import annotations

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import (
    Endpoint,
    is_upn,
    realm_from_user,
    resolve_endpoint,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import OptionError


@pytest.mark.parametrize(
    ("port", "scheme", "expected_port", "expected_scheme"),
    [
        (None, None, 5986, "https"),
        (5985, None, 5985, "http"),
        ("5985", None, 5985, "http"),
        (5986, None, 5986, "https"),
        (8080, None, 8080, "https"),
        (None, "http", 5985, "http"),
        (None, "HTTPS", 5986, "https"),
        (5985, "https", 5985, "https"),
        (5986, "http", 5986, "http"),
    ],
)
def test_scheme_and_port_defaults(port, scheme, expected_port, expected_scheme) -> None:
    endpoint = resolve_endpoint("win01.example.com", port, scheme, None)
    assert endpoint == Endpoint("win01.example.com", expected_port, expected_scheme, "wsman")


@pytest.mark.parametrize("host", ["::1", "[::1]"])
def test_ipv6_is_bracketed_in_url(host: str) -> None:
    endpoint = resolve_endpoint(host, None, None, None)
    assert endpoint.host == "::1"
    assert endpoint.is_ip_address
    assert endpoint.url == "https://[::1]:5986/wsman"
    assert endpoint.netloc == "[::1]:5986"


def test_ipv4_and_name() -> None:
    assert resolve_endpoint("127.0.10.1", 5985, None, None).url == "http://127.0.10.1:5985/wsman"
    assert resolve_endpoint("127.0.10.1", 5985, None, None).is_ip_address
    named = resolve_endpoint("win01", None, None, "/custom")
    assert not named.is_ip_address
    assert named.path == "custom"
    assert named.url == "https://win01:5986/custom"


def test_bad_scheme_names_variable() -> None:
    with pytest.raises(OptionError) as exc:
        resolve_endpoint("h", None, "ftp", None, scheme_var="ansible_psrp_protocol")
    assert (
        str(exc.value)
        == "Invalid value 'ftp' for ansible_psrp_protocol: expected one of http, https"
    )


@pytest.mark.parametrize("port", ["abc", 70000])
def test_bad_port_names_variable(port: object) -> None:
    with pytest.raises(OptionError) as exc:
        resolve_endpoint("h", port, None, None)
    assert str(exc.value) == (
        f"Invalid value {port!r} for ansible_port: expected a port number between 1 and 65535"
    )


@pytest.mark.parametrize("host", ["", "  ", "[]", "a b"])
def test_bad_host(host: str) -> None:
    with pytest.raises(OptionError, match="for ansible_host: expected a host name or IP address"):
        resolve_endpoint(host, None, None, None)


@pytest.mark.parametrize(
    ("user", "upn", "realm"),
    [
        ("admin@EXAMPLE.COM", True, "EXAMPLE.COM"),
        ("first.last@corp.example.com", True, "corp.example.com"),
        ("jöhn@ÉXAMPLE.COM", True, "ÉXAMPLE.COM"),
        ("EXAMPLE\\admin", False, None),
        ("admin", False, None),
        ("@EXAMPLE.COM", False, None),
        ("admin@", False, None),
        ("", False, None),
        (None, False, None),
    ],
)
def test_upn(user, upn, realm) -> None:
    assert is_upn(user) is upn
    assert realm_from_user(user) == realm
