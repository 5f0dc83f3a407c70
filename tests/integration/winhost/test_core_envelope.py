"""winhost's envelope layer against the parsers of the real clients (in process, no sockets):
what pywinrm and pypsrp build parses, and what winhost renders is what they read."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import xmltodict
from pypsrp.wsman import NAMESPACES, OptionSet, SelectorSet, WSMan
from winrm.protocol import Protocol

from winhost import api
from winhost.wsman import envelope

SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"


def pywinrm_envelope(action: str, shell_id: str | None = None, body: dict | None = None) -> bytes:
    protocol = Protocol("http://127.0.10.1:5985/wsman", username="u", password="p")
    message = {"env:Envelope": protocol.build_wsman_header(action, SHELL_URI, shell_id=shell_id)}
    message["env:Envelope"]["env:Body"] = body or {}
    return xmltodict.unparse(message).encode()


def test_parse_what_pywinrm_sends() -> None:
    data = pywinrm_envelope(
        "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive",
        shell_id="11111111-2222-3333-4444-555555555555",
        body={"rsp:Receive": {"rsp:DesiredStream": "stdout stderr"}},
    )
    request = envelope.parse_request(data)
    assert request.action.endswith("/Receive")
    assert request.resource_uri == SHELL_URI
    assert request.selectors == {"ShellId": "11111111-2222-3333-4444-555555555555"}
    assert request.operation_timeout == 20.0
    assert request.max_envelope_size == 153600
    assert request.locale == "en-US"
    assert request.raw_size == len(data)
    assert request.body.find(f"{{{envelope.NS['rsp']}}}Receive") is not None


def test_parse_what_pypsrp_sends() -> None:
    class Transport:
        endpoint = "https://127.0.10.1:5986/wsman"

    wsman = WSMan.__new__(WSMan)
    wsman.transport = Transport()
    wsman.data_locale = wsman.locale = "en-US"
    wsman.max_envelope_size = 512000
    wsman.operation_timeout = 20
    wsman.session_id = "00000000-0000-0000-0000-000000000001"
    options = OptionSet()
    options.add_option("WINRS_CONSOLEMODE_STDIN", "TRUE")
    selectors = SelectorSet()
    selectors.add_option("ShellId", "abc")
    message_id, header = wsman._create_header(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", SHELL_URI, options, selectors, 30
    )
    root = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
    root.append(header)
    ET.SubElement(root, f"{{{NAMESPACES['s']}}}Body")
    request = envelope.parse_request(ET.tostring(root))
    assert request.message_id == f"uuid:{message_id}"
    assert request.options == {"WINRS_CONSOLEMODE_STDIN": "TRUE"}
    assert request.selectors == {"ShellId": "abc"}
    assert request.operation_timeout == 30.0 and request.max_envelope_size == 512000


@pytest.mark.parametrize(
    ("data", "subcode"),
    [
        (b"<not xml", "w:SchemaValidationError"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>', "w:SchemaValidationError"),
        (b"<Envelope/>", "w:SchemaValidationError"),
        (
            b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Header/>'
            b"<s:Body/></s:Envelope>",
            "a:MessageInformationHeaderRequired",
        ),
    ],
)
def test_malformed_requests_are_sender_faults(data: bytes, subcode: str) -> None:
    with pytest.raises(api.WSManFault) as info:
        envelope.parse_request(data)
    assert info.value.code == "s:Sender" and info.value.subcode == subcode


def test_bad_operation_timeout_is_the_invalid_timeout_fault() -> None:
    data = pywinrm_envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get").replace(
        b"PT20S", b"60"
    )
    with pytest.raises(api.WSManFault) as info:
        envelope.parse_request(data)
    assert info.value.wsman_code == 2150858767 and "invalid timeout field" in info.value.message


def test_rendered_response_relates_to_the_request() -> None:
    request = envelope.parse_request(
        pywinrm_envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get")
    )
    item = ET.Element("{urn:example}Item", {"{urn:example}flag": "a<b"})
    item.text = "x & y"
    data = envelope.render_response(
        request,
        api.WSManResponse("http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse", [item]),
    )
    root = ET.fromstring(data)
    assert root.findtext("s:Header/wsa:RelatesTo", namespaces=NAMESPACES) == request.message_id
    assert root.findtext("s:Header/wsa:To", namespaces=NAMESPACES) == envelope.ANONYMOUS
    parsed = root.find("s:Body/{urn:example}Item", NAMESPACES)
    assert (
        parsed is not None and parsed.text == "x & y" and parsed.get("{urn:example}flag") == "a<b"
    )


def test_rendered_fault_reads_back_in_both_clients() -> None:
    from winrm.exceptions import WinRMTransportError, WSManFaultError

    request = envelope.parse_request(
        pywinrm_envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive")
    )
    fault = api.WSManFault(
        "s:Receiver",
        "w:TimedOut",
        api.WSMAN_FAULT_OPERATION_TIMEOUT,
        "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ",
    )
    data = envelope.render_fault(request, fault, "WIN1")
    assert b'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"' in data  # QName in text
    assert (
        b'<f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="WIN1">'
        in data
    )

    psrp_error = WSMan._parse_wsman_fault(data.decode())
    assert psrp_error.code == api.WSMAN_FAULT_OPERATION_TIMEOUT and psrp_error.machine == "WIN1"

    class Transport:
        def send_message(self, message: str) -> bytes:
            raise WinRMTransportError("http", 500, data.decode())

    protocol = Protocol("http://127.0.10.1:5985/wsman", username="u", password="p")
    protocol.transport = Transport()  # type: ignore[assignment]
    from winrm.exceptions import WinRMOperationTimeoutError

    with pytest.raises(WinRMOperationTimeoutError):
        protocol.send_message("<x/>")

    fault.subcode, fault.wsman_code = "w:AccessDenied", 5
    data = envelope.render_fault(None, fault, "WIN1")
    with pytest.raises(WSManFaultError) as info:
        protocol.send_message("<x/>")
    assert info.value.fault_subcode == "w:AccessDenied" and info.value.wsman_fault_code == 5


def test_identify_has_no_addressing_headers() -> None:
    data = (
        b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
        b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
    )
    request = envelope.parse_request(data)
    assert request.action == envelope.IDENTIFY_ACTION
    rendered = envelope.render_response(request, api.WSManResponse("x", []))
    assert b"<s:Header></s:Header>" in rendered
