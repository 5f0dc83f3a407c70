"""winhost's WS-Management layer over real sockets: winrm/config Get/Put/Enumerate, live
listeners, MaxEnvelopeSize, faults for unknown resources and malformed XML."""

from __future__ import annotations

import socket
import ssl
import sys
import time
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from pypsrp.exceptions import WSManFaultError as PsrpFault
from winrm.exceptions import WSManFaultError
from winrm.protocol import Protocol

sys.path.insert(0, str(Path(__file__).resolve().parent))

from core_helpers import (
    CONFIG,
    config_get,
    get_envelope,
    local_values,
    psrp_wsman,
    raw_post,
    tls_context,
)

from winhost.pytest_plugin import WinhostSession

LISTENER = f"{CONFIG}/listener"
ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"


@pytest.fixture(scope="module")
def target(winhost: WinhostSession) -> dict[str, t.Any]:
    host = winhost.hosts[1 % len(winhost.hosts)]
    return {"name": host.name, **winhost.host_vars(host.name)}


@pytest.fixture
def wsman(target: dict[str, t.Any]) -> t.Iterator[t.Any]:
    client = psrp_wsman(
        target["ansible_host"],
        target["ansible_user"],
        target["ansible_password"],
        target["winhost_ca_bundle"],
    )
    yield client
    client.close()


def https_protocol(target: dict[str, t.Any]) -> Protocol:
    return Protocol(
        endpoint=f"https://{target['ansible_host']}:5986/wsman",
        transport="ntlm",
        username=target["ansible_user"],
        password=target["ansible_password"],
        ca_trust_path=target["winhost_ca_bundle"],
    )


def _port_refuses(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_config_get_with_pypsrp(wsman: t.Any) -> None:
    body = wsman.get(CONFIG)
    config = body.find(f"{{{CONFIG}}}Config")
    assert config is not None
    values = local_values(config)
    assert values["MaxEnvelopeSizekb"] == "500"
    assert values["AllowUnencrypted"] == "false"
    assert values["MaxConcurrentOperationsPerUser"] == "1500"
    service = wsman.get(f"{CONFIG}/service").find(f"{{{CONFIG}/service}}Service")
    assert service is not None and local_values(service)["IPv4Filter"] == "*"


def test_listener_get_needs_selectors_and_enumerates(
    wsman: t.Any, target: dict[str, t.Any]
) -> None:
    with pytest.raises(PsrpFault) as info:
        wsman.get(LISTENER)
    assert info.value.code == 2150858842  # InvalidSelectors

    from pypsrp.wsman import SelectorSet

    selectors = SelectorSet()
    selectors.add_option("Address", "*")
    selectors.add_option("Transport", "HTTPS")
    listener = wsman.get(LISTENER, selector_set=selectors).find(f"{{{LISTENER}}}Listener")
    assert listener is not None
    values = local_values(listener)
    assert values["Port"] == "5986" and values["ListeningOn"] == target["ansible_host"]
    assert len(values["CertificateThumbprint"]) == 40

    response = wsman.enumerate(LISTENER).find(f"{{{ENUMERATION}}}EnumerateResponse")
    context = response.find(f"{{{ENUMERATION}}}EnumerationContext").text
    pull = ET.Element(f"{{{ENUMERATION}}}Pull")
    ET.SubElement(pull, f"{{{ENUMERATION}}}EnumerationContext").text = context
    items = wsman.pull(LISTENER, pull).findall(f".//{{{LISTENER}}}Listener")
    transports = sorted(local_values(item)["Transport"] for item in items)
    assert transports == ["HTTP", "HTTPS"]


def test_listener_changes_are_live(
    wsman: t.Any, winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    from pypsrp.wsman import SelectorSet

    selectors = SelectorSet()
    selectors.add_option("Address", "*")
    selectors.add_option("Transport", "HTTP")
    change = ET.Element(f"{{{LISTENER}}}Listener")
    ET.SubElement(change, f"{{{LISTENER}}}Enabled").text = "false"
    address = target["ansible_host"]
    wsman.put(LISTENER, change, selector_set=selectors)
    try:
        assert _port_refuses(address, 5985), "a disabled HTTP listener must stop listening"
        listening = winhost.state(target["name"])["runtime"]["listening"]
        assert [entry["transport"] for entry in listening] == ["HTTPS"]
    finally:
        change.find(f"{{{LISTENER}}}Enabled").text = "true"
        wsman.put(LISTENER, change, selector_set=selectors)
    assert not _port_refuses(address, 5985)


def _enumerate_listeners(wsman: t.Any) -> list[ET.Element]:
    response = wsman.enumerate(LISTENER).find(f"{{{ENUMERATION}}}EnumerateResponse")
    context = response.find(f"{{{ENUMERATION}}}EnumerationContext").text
    pull = ET.Element(f"{{{ENUMERATION}}}Pull")
    ET.SubElement(pull, f"{{{ENUMERATION}}}EnumerationContext").text = context
    return wsman.pull(LISTENER, pull).findall(f".//{{{LISTENER}}}Listener")


def test_compatibility_listener_follows_the_service_setting(
    wsman: t.Any, target: dict[str, t.Any]
) -> None:
    """EnableCompatibilityHttpListener adds a listener on port 80, enumerated with the attribute
    Source="Compatibility", and the socket follows the setting."""
    service_uri = f"{CONFIG}/service"
    address = target["ansible_host"]
    assert _port_refuses(address, 80)
    change = ET.Element(f"{{{service_uri}}}Service")
    setting = ET.SubElement(change, f"{{{service_uri}}}EnableCompatibilityHttpListener")
    setting.text = "true"
    wsman.put(service_uri, change)
    try:
        compat = [li for li in _enumerate_listeners(wsman) if li.get("Source") == "Compatibility"]
        assert [
            (local_values(li)["Transport"], local_values(li)["Address"], local_values(li)["Port"])
            for li in compat
        ] == [("HTTP", "*", "80")]
        assert not _port_refuses(address, 80), "the compatibility listener must listen on 80"
    finally:
        setting.text = "false"
        wsman.put(service_uri, change)
    assert _port_refuses(address, 80)
    assert not any(li.get("Source") for li in _enumerate_listeners(wsman))


def test_oversized_envelope_gets_the_max_envelope_fault(
    wsman: t.Any, target: dict[str, t.Any]
) -> None:
    client = https_protocol(target)
    oversized = get_envelope(client, f"{CONFIG}/service", padding=520 * 1024)
    with pytest.raises(WSManFaultError) as info:
        client.send_message(oversized)
    assert info.value.code == 413
    # ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED (2150858881, used before, is the SDK's
    # ERROR_WSMAN_INVALID_TIMEOUT_HEADER).
    assert info.value.wsman_fault_code == 2150858824
    assert info.value.fault_subcode == "w:EncodingLimit"

    root = ET.Element(f"{{{CONFIG}}}Config")
    ET.SubElement(root, f"{{{CONFIG}}}MaxEnvelopeSizekb").text = "1024"
    wsman.put(CONFIG, root)
    try:
        assert ET.fromstring(client.send_message(oversized)) is not None
    finally:
        root.find(f"{{{CONFIG}}}MaxEnvelopeSizekb").text = "500"
        wsman.put(CONFIG, root)
    assert local_values(config_get(client, CONFIG))["MaxEnvelopeSizekb"] == "500"


def test_put_of_an_unknown_setting_is_refused(wsman: t.Any) -> None:
    root = ET.Element(f"{{{CONFIG}}}Config")
    ET.SubElement(root, f"{{{CONFIG}}}NoSuchSetting").text = "1"
    with pytest.raises(PsrpFault) as info:
        wsman.put(CONFIG, root)
    assert "NoSuchSetting" in str(info.value)


def test_unknown_resource_and_malformed_xml(target: dict[str, t.Any]) -> None:
    client = https_protocol(target)
    with pytest.raises(WSManFaultError) as info:
        config_get(client, "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Nothing")
    assert info.value.wsman_fault_code == 2150858752
    assert info.value.fault_subcode == "w:DestinationUnreachable"

    context = tls_context(
        target["winhost_ca_bundle"],
        ssl.TLSVersion.TLSv1_3,
        target["winhost_client_cert"],
        target["winhost_client_key"],
    )
    header = {"Authorization": "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"}
    status, _, body, _ = raw_post(target["ansible_host"], 5986, b"<s:Envelope", header, context)
    assert status == 400
    assert b"w:SchemaValidationError" in body and b'Code="2150858817"' in body


def test_state_view_hides_passwords(winhost: WinhostSession, target: dict[str, t.Any]) -> None:
    state = winhost.state(target["name"])
    assert state["computer_name"] == target["winhost_computer_name"]
    assert all(account["password"] == "********" for account in state["accounts"])
    assert target["ansible_password"] not in repr(state)
    assert state["counters"]["requests"] > 0 and state["counters"]["request_seconds"] > 0
    assert state["runtime"]["tls_versions"] == ["TLS 1.2", "TLS 1.3"]
    deadline = time.monotonic() + 5
    while not state["runtime"]["listening"] and time.monotonic() < deadline:
        state = winhost.state(target["name"])
    assert {entry["port"] for entry in state["runtime"]["listening"]} == {5985, 5986}


def test_listener_hostname_must_match_the_certificate_cn(
    wsman: t.Any, winhost: WinhostSession, target: dict[str, t.Any]
) -> None:
    """Put (and Create) of an HTTPS listener whose Hostname is not its certificate's CN is
    refused with ERROR_WSMAN_CONFIG_CERT_CN_DOES_NOT_MATCH_HOSTNAME and changes nothing; an
    empty Hostname stands for the computer's own name. The host's certificate is CN=<fqdn>."""
    from pypsrp.wsman import SelectorSet

    selectors = SelectorSet()
    selectors.add_option("Address", "*")
    selectors.add_option("Transport", "HTTPS")
    before = winhost.state(target["name"])["listeners"]
    https = next(li for li in before if li["transport"] == "HTTPS")
    fqdn = https["hostname"]
    assert fqdn.endswith(".winops.test"), https

    def put_hostname(value: str) -> None:
        change = ET.Element(f"{{{LISTENER}}}Listener")
        ET.SubElement(change, f"{{{LISTENER}}}Hostname").text = value
        wsman.put(LISTENER, change, selector_set=selectors)

    with pytest.raises(PsrpFault) as info:
        put_hostname("other.winops.test")
    assert info.value.code == 2150858985, info.value  # 0x803380E9
    assert "certificate CN and the hostname that were provided do not match" in str(info.value)
    assert winhost.state(target["name"])["listeners"] == before

    create = ET.Element(f"{{{LISTENER}}}Listener")
    ET.SubElement(create, f"{{{LISTENER}}}Hostname").text = "other.winops.test"
    ET.SubElement(create, f"{{{LISTENER}}}CertificateThumbprint").text = https[
        "certificate_thumbprint"
    ]
    loopback = SelectorSet()
    loopback.add_option("Address", "IP:127.0.0.1")
    loopback.add_option("Transport", "HTTPS")
    with pytest.raises(PsrpFault) as info:
        wsman.create(LISTENER, create, selector_set=loopback)
    assert info.value.code == 2150858985, info.value
    assert winhost.state(target["name"])["listeners"] == before

    try:
        put_hostname("")
        after = winhost.state(target["name"])["listeners"]
        assert next(li for li in after if li["transport"] == "HTTPS")["hostname"] == ""
    finally:
        put_hostname(fqdn)
    assert winhost.state(target["name"])["listeners"] == before
