"""winhost's HTTP and authentication layer over real sockets, with the real pywinrm, pypsrp,
pyspnego and requests-credssp clients."""

from __future__ import annotations

import base64
import ssl
import sys
import typing as t
from pathlib import Path

import pytest
import spnego
from spnego.channel_bindings import GssChannelBindings
from winrm.exceptions import InvalidCredentialsError
from winrm.protocol import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from address_blocks import block
from core_helpers import (
    CONFIG,
    IDENTIFY,
    config_get,
    get_envelope,
    local_values,
    psrp_wsman,
    raw_post,
    set_service_auth,
    tls_context,
)

from winhost import access
from winhost.pytest_plugin import WinhostSession, start_session, stop_session

# This module's `open` profile host has an address of its own (address_blocks.py).
OPEN_INDEX = block("core_auth_open").first


@pytest.fixture(scope="module")
def target(winhost: WinhostSession) -> dict[str, t.Any]:
    """The second session host (left on the `default` profile by every test)."""
    host = winhost.hosts[1 % len(winhost.hosts)]
    return {"info": host, **winhost.host_vars(host.name)}


@pytest.fixture(scope="module")
def open_host(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[WinhostSession]:
    session = start_session(tmp_path_factory.mktemp("winhost-open"), 1, "open", OPEN_INDEX)
    try:
        yield session
    finally:
        stop_session(session)


def protocol(target: dict[str, t.Any], scheme: str, transport: str, **kwargs: t.Any) -> Protocol:
    port = 5986 if scheme == "https" else 5985
    if scheme == "https":
        kwargs.setdefault("ca_trust_path", target["winhost_ca_bundle"])
    return Protocol(
        endpoint=f"{scheme}://{target['ansible_host']}:{port}/wsman",
        transport=transport,
        username=kwargs.pop("username", target["ansible_user"]),
        password=kwargs.pop("password", target["ansible_password"]),
        **kwargs,
    )


def test_identify_is_anonymous_and_hides_the_os_version(target: dict[str, t.Any]) -> None:
    address = target["ansible_host"]
    status, _, body, _ = raw_post(address, 5985, IDENTIFY, {"WSMANIDENTIFY": "unauthenticated"})
    assert status == 200
    assert b"<wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>" in body
    assert b"OS: 0.0.0 SP: 0.0 Stack: 3.0" in body

    status, headers, _, _ = raw_post(address, 5985, IDENTIFY, {})
    assert status == 401, "without WSMANIDENTIFY: unauthenticated, Identify needs credentials"
    assert headers.get_all("WWW-Authenticate") == ["Negotiate", "CredSSP"]

    context = tls_context(
        target["winhost_ca_bundle"],
        ssl.TLSVersion.TLSv1_3,
        target["winhost_client_cert"],
        target["winhost_client_key"],
    )
    mutual = {"Authorization": "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"}
    status, _, body, _ = raw_post(address, 5986, IDENTIFY, mutual, context)
    assert status == 200 and b"OS: 10.0.20348 SP: 0.0 Stack: 3.0" in body


def test_ntlm_over_http_is_message_encrypted(target: dict[str, t.Any]) -> None:
    client = protocol(target, "http", "ntlm")
    auth = local_values(config_get(client))
    assert auth["Negotiate"] == "true" and auth["Basic"] == "false"
    seen: list[str] = []
    client.transport.session.hooks["response"].append(
        lambda response, **_: seen.append(response.headers.get("Content-Type", ""))
    )
    config_get(client)
    assert seen and seen[-1].startswith("multipart/encrypted;")
    assert 'protocol="application/HTTP-SPNEGO-session-encrypted"' in seen[-1]


def test_ntlm_over_https_with_channel_binding(target: dict[str, t.Any]) -> None:
    assert local_values(config_get(protocol(target, "https", "ntlm")))["CredSSP"] == "true"


def _ntlm_handshake(target: dict[str, t.Any], bindings: GssChannelBindings | None) -> int:
    """NTLM over HTTPS by hand, so the channel bindings sent are chosen by the test."""
    import requests

    session = requests.Session()
    verify = target["winhost_ca_bundle"]  # per request: REQUESTS_CA_BUNDLE beats session.verify
    url = f"https://{target['ansible_host']}:5986/wsman"
    client = spnego.client(
        target["ansible_user"],
        target["ansible_password"],
        protocol="ntlm",
        channel_bindings=bindings,
        options=spnego.NegotiateOptions.use_ntlm,
    )
    token = client.step()
    body = get_envelope(protocol(target, "https", "ntlm"), f"{CONFIG}/service").encode()
    headers = {"Content-Type": "application/soap+xml;charset=UTF-8"}
    response = session.post(
        url,
        data=body,
        headers={**headers, "Authorization": f"Negotiate {base64.b64encode(token).decode()}"},
        verify=verify,
    )
    assert response.status_code == 401
    challenge = base64.b64decode(response.headers["WWW-Authenticate"].split(" ", 1)[1])
    token = client.step(challenge)
    response = session.post(
        url,
        data=body,
        headers={**headers, "Authorization": f"Negotiate {base64.b64encode(token).decode()}"},
        verify=verify,
    )
    return response.status_code


def test_channel_binding_hardening_levels(
    winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    wrong = GssChannelBindings(application_data=b"tls-server-end-point:" + b"\x01" * 32)
    assert _ntlm_handshake(target, wrong) == 401, "a wrong binding must fail on Relaxed"
    assert _ntlm_handshake(target, None) == 200, "Relaxed accepts a client without bindings"

    wsman = psrp_wsman(
        target["ansible_host"],
        target["ansible_user"],
        target["ansible_password"],
        target["winhost_ca_bundle"],
    )
    set_service_auth(wsman, CbtHardeningLevel="Strict")
    try:
        assert _ntlm_handshake(target, None) == 401, "Strict requires bindings"
        with pytest.raises(InvalidCredentialsError):
            config_get(protocol(target, "https", "ntlm", send_cbt=False))
        assert (
            local_values(config_get(protocol(target, "https", "ntlm")))["CbtHardeningLevel"]
            == "Strict"
        )
    finally:
        set_service_auth(wsman, CbtHardeningLevel="Relaxed")
        wsman.close()
    assert (
        winhost.state(target["info"].name)["winrm"]["Service"]["Auth"]["CbtHardeningLevel"]
        == "Relaxed"
    )


def test_basic_refused_on_default_with_the_offered_schemes(target: dict[str, t.Any]) -> None:
    with pytest.raises(InvalidCredentialsError):
        config_get(protocol(target, "https", "basic"))
    token = base64.b64encode(
        f"{target['ansible_user']}:{target['ansible_password']}".encode()
    ).decode()
    context = tls_context(target["winhost_ca_bundle"], ssl.TLSVersion.TLSv1_3)
    status, headers, _, _ = raw_post(
        target["ansible_host"], 5986, b"<x/>", {"Authorization": f"Basic {token}"}, context
    )
    assert status == 401
    # Over HTTPS the default profile's certificate authentication is listed too.
    assert headers.get_all("WWW-Authenticate") == [
        "Negotiate",
        "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual",
        "CredSSP",
    ]


def test_basic_on_the_open_profile(open_host: WinhostSession) -> None:
    name = open_host.hosts[0].name
    target = open_host.host_vars(name)
    assert target["ansible_host"] == f"127.0.10.{OPEN_INDEX}"
    assert local_values(config_get(protocol(target, "https", "basic")))["Basic"] == "true"
    # AllowUnencrypted=true on `open`, so Basic over plain HTTP is served too.
    assert local_values(config_get(protocol(target, "http", "basic")))["Basic"] == "true"
    with pytest.raises(InvalidCredentialsError):
        config_get(protocol(target, "https", "basic", password="not-the-password"))


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_credssp(target: dict[str, t.Any], scheme: str) -> None:
    assert local_values(config_get(protocol(target, scheme, "credssp")))["CredSSP"] == "true"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_certificate_auth_over_tls_versions(
    target: dict[str, t.Any], version: ssl.TLSVersion
) -> None:
    context = tls_context(
        target["winhost_ca_bundle"],
        version,
        target["winhost_client_cert"],
        target["winhost_client_key"],
    )
    body = get_envelope(protocol(target, "https", "ntlm"), f"{CONFIG}/service/auth").encode()
    header = {"Authorization": "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"}
    status, _, data, used = raw_post(target["ansible_host"], 5986, body, header, context)
    assert used == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    assert status == 200, data
    assert b"Certificate>true</" in data

    no_cert = tls_context(target["winhost_ca_bundle"], version)
    status, _, _, _ = raw_post(target["ansible_host"], 5986, body, header, no_cert)
    assert status == 401, "the certificate header without a client certificate must fail"


def test_certificate_auth_with_pywinrm(target: dict[str, t.Any]) -> None:
    client = protocol(
        target,
        "https",
        "certificate",
        cert_pem=target["winhost_client_cert"],
        cert_key_pem=target["winhost_client_key"],
    )
    assert local_values(config_get(client))["Certificate"] == "true"


@pytest.mark.parametrize(("scheme", "transport"), [("http", "ntlm"), ("https", "ntlm")])
def test_wrong_password_is_401(target: dict[str, t.Any], scheme: str, transport: str) -> None:
    with pytest.raises(InvalidCredentialsError):
        config_get(protocol(target, scheme, transport, password="Wrong-Pässw0rd"))


def test_wrong_password_with_credssp_is_logon_denied(target: dict[str, t.Any]) -> None:
    # CredSSP reports the failure inside its TSRequest (errorCode), as Windows does.
    from requests_credssp.exceptions import NTStatusException

    with pytest.raises(NTStatusException) as info:
        config_get(protocol(target, "http", "credssp", password="Wrong-Pässw0rd"))
    assert info.value.status == 0x8009030C  # SEC_E_LOGON_DENIED


def test_unencrypted_http_refused_while_allow_unencrypted_false(target: dict[str, t.Any]) -> None:
    with pytest.raises(InvalidCredentialsError):
        config_get(protocol(target, "http", "ntlm", message_encryption="never"))


def test_non_admin_without_winrm_access_is_401(target: dict[str, t.Any]) -> None:
    # Neither RootSDDL nor any session configuration grants the operator account: Windows
    # answers 401 as for a wrong password (winhost.access names the sources).
    client = protocol(
        target,
        "https",
        "ntlm",
        username=target["winhost_local_user"],
        password=target["winhost_local_password"],
    )
    with pytest.raises(InvalidCredentialsError):
        config_get(client)


USER_SID = "S-1-5-21-1-2-3-1001"
NETWORK_USER = {USER_SID, "S-1-1-0", "S-1-5-11", "S-1-5-2", "S-1-5-32-545"}


@pytest.mark.parametrize(
    ("rights", "granted"),
    [("GA", True), ("GXGR", True), ("GRGX", True), ("GR", False), ("GX", False), ("GW", False)],
)
def test_descriptor_grants_full_or_read_and_execute(rights: str, granted: bool) -> None:
    # The guide's minimum is Read and Execute (winhost.access names the sources).
    sddl = f"O:NSG:BAD:P(A;;GA;;;BA)(A;;{rights};;;{USER_SID})S:P(AU;FA;GA;;;WD)"
    assert access.grants(sddl, NETWORK_USER) is granted


def test_deny_execute_overrides_read_and_execute() -> None:
    sddl = f"O:NSG:BAD:P(D;;GX;;;{USER_SID})(A;;GXGR;;;{USER_SID})"
    assert access.grants(sddl, NETWORK_USER) is False


def test_set_allow_keeps_other_entries_owner_and_sacl() -> None:
    sddl = "O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
    added = access.set_allow(sddl, [USER_SID], "GXGR")
    assert added == (
        f"O:NSG:BAD:P(A;;GA;;;BA)(A;;GR;;;IU)(A;;GXGR;;;{USER_SID})S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
    )
    assert access.set_allow(access.set_allow(added, [USER_SID], "GA"), [USER_SID], None) == sddl
