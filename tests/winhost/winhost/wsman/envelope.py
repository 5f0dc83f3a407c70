"""SOAP 1.2 envelopes of WS-Management: parse what clients send, render what Windows answers.

Requests come from pywinrm (xmltodict, prefixes env/a/w/p/rsp...) and pypsrp (ElementTree,
prefixes ns0...), so parsing goes purely by namespace URI. Responses are rendered the way
WinRM does: every well-known prefix is declared once on s:Envelope (fault subcodes such as
"w:TimedOut" are QNames in text and rely on that), the header carries Action, MessageID, To
(anonymous) and RelatesTo, and faults carry the WSManFault detail with Code and Machine.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

from winhost import api

NS: dict[str, str] = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "e": "http://schemas.xmlsoap.org/ws/2004/08/eventing",
    "n": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "wsen": "http://schemas.xmlsoap.org/ws/2004/09/enumeration",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "wsmid": "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xml": "http://www.w3.org/XML/1998/namespace",
    "pwsh": "http://schemas.microsoft.com/powershell",
}

IDENTIFY_ACTION = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity/Identify"
_IDENTIFY_NAMESPACES = (
    "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd",
    "http://schemas.dmtf.org/wbem/wsman/identify/1/wsmanidentity.xsd",
)
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WSMAN_FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ADDRESSING_FAULT_ACTION = "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault"

# The prefixes declared on every rendered s:Envelope, in WinRM's order. "n" and "wsen" share
# a URI; "n" is what Windows writes. "f" is declared on f:WSManFault itself, as Windows does.
_ENVELOPE_PREFIXES = ("s", "a", "x", "e", "n", "w", "p", "rsp", "cfg")

_WSMAN_INVALID_XML = 2150858817  # ERROR_WSMAN_SCHEMA_VALIDATION_ERROR
# ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER, e.g. an OperationTimeout that is no duration
_WSMAN_INVALID_HEADER = 2150858767
_WSMAN_HEADER_REQUIRED = 2150858769  # ERROR_WSMAN_MESSAGE_INFORMATION_HEADER_REQUIRED
# Windows' s:Reason for an invalid header; the specific text goes in f:Message (pypsrp's
# recording tests/tests_pypsrp/responses/test_psrp_is_alive_other_wsman_error.yml).
_INVALID_HEADERS_REASON = (
    "The WS-Management service cannot process the request. The request contains one or more "
    "invalid SOAP headers. "
)
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


def _q(prefix: str, local: str) -> str:
    return f"{{{NS[prefix]}}}{local}"


def parse_duration(text: str) -> float:
    """Seconds of an xs:duration such as "PT60S", "PT60.000S" or "PT1M30S"."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        raise ValueError(f"not an xs:duration: {text!r}")
    days, hours, minutes, seconds = (float(match.group(g) or 0) for g in "dhms")
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: float) -> str:
    """xs:duration text as WinRM writes it, e.g. "PT60.000S"."""
    return f"PT{seconds:.3f}S"


def _invalid_xml(detail: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:SchemaValidationError",
        _WSMAN_INVALID_XML,
        f"The WS-Management service cannot process the request because the XML is invalid. {detail}",
        http_status=400,
    )


def _header_text(header: ET.Element, prefix: str, local: str) -> str | None:
    node = header.find(_q(prefix, local))
    if node is None or node.text is None:
        return None
    return node.text.strip()


def _named_children(parent: ET.Element | None, local: str) -> dict[str, str]:
    values: dict[str, str] = {}
    if parent is None:
        return values
    for child in parent.findall(_q("w", local)):
        name = child.get("Name")
        if name is not None:
            values[name] = (child.text or "").strip()
    return values


def parse_request(data: bytes) -> api.WSManRequest:
    """Parse one (already decrypted) SOAP envelope; malformed input raises api.WSManFault."""
    # expat expands internal entities; WinRM refuses DTDs outright, and so do we.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise _invalid_xml("A DTD is not allowed.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise _invalid_xml(str(err)) from err
    if root.tag != _q("s", "Envelope"):
        raise _invalid_xml(f"The root element is {root.tag}, not a SOAP 1.2 Envelope.")
    header = root.find(_q("s", "Header"))
    body = root.find(_q("s", "Body"))
    if header is None or body is None:
        raise _invalid_xml("The envelope has no s:Header or no s:Body.")

    action = _header_text(header, "a", "Action")
    message_id = _header_text(header, "a", "MessageID")
    if not action and any(
        body.find(f"{{{ns}}}Identify") is not None for ns in _IDENTIFY_NAMESPACES
    ):
        # Identify carries no addressing headers at all (MS-WSMV 3.1.4.16).
        action, message_id = IDENTIFY_ACTION, message_id or ""
    if not action or (not message_id and action != IDENTIFY_ACTION):
        missing = "Action" if not action else "MessageID"
        raise api.WSManFault(
            "s:Sender",
            "a:MessageInformationHeaderRequired",
            _WSMAN_HEADER_REQUIRED,
            f"The WS-Management service cannot process the request because the header "
            f"a:{missing} is missing.",
            http_status=400,
        )
    resource_uri = _header_text(header, "w", "ResourceURI") or ""

    timeout_text = _header_text(header, "w", "OperationTimeout")
    operation_timeout: float | None = None
    if timeout_text:
        try:
            operation_timeout = parse_duration(timeout_text)
        except ValueError as err:
            raise api.WSManFault(
                "s:Sender",
                "a:InvalidMessageInformationHeader",
                _WSMAN_INVALID_HEADER,
                f"The WS-Management service cannot process the request. The XML contains an "
                f"invalid timeout field in the SOAP header: {timeout_text}. ",
                reason=_INVALID_HEADERS_REASON,
            ) from err

    size_text = _header_text(header, "w", "MaxEnvelopeSize")
    max_envelope_size: int | None = None
    if size_text:
        try:
            max_envelope_size = int(size_text)
        except ValueError as err:
            raise api.WSManFault(
                "s:Sender",
                "a:InvalidMessageInformationHeader",  # as for a bad timeout (assumed)
                _WSMAN_INVALID_HEADER,
                f"The WS-Management service cannot process the request. The MaxEnvelopeSize "
                f"header value is not a number: {size_text}. ",
                reason=_INVALID_HEADERS_REASON,
            ) from err

    locale_node = header.find(_q("w", "Locale"))
    locale = locale_node.get(_q("xml", "lang")) if locale_node is not None else None

    return api.WSManRequest(
        action=action,
        resource_uri=resource_uri,
        message_id=message_id,
        selectors=_named_children(header.find(_q("w", "SelectorSet")), "Selector"),
        options=_named_children(header.find(_q("w", "OptionSet")), "Option"),
        operation_timeout=operation_timeout,
        max_envelope_size=max_envelope_size,
        locale=locale,
        body=body,
        header=header,
        raw_size=len(data),
    )


class _Writer:
    """A small XML writer that uses the envelope's prefixes and declares any other namespace
    locally (ns0, ns1... like ElementTree) on the element that first needs it."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.prefixes: dict[str, str] = {NS[p]: p for p in _ENVELOPE_PREFIXES}
        self.prefixes[NS["xml"]] = "xml"

    def _qname(self, name: str, scope: dict[str, str], declare: list[tuple[str, str]]) -> str:
        if not name.startswith("{"):
            return name
        uri, local = name[1:].split("}", 1)
        prefix = scope.get(uri)
        if prefix is None:
            known = {v: k for k, v in NS.items() if k not in ("wsen",)}
            prefix = known.get(uri)
            if prefix is None or prefix in scope.values():
                prefix = f"ns{len(scope)}"
            scope[uri] = prefix
            declare.append((prefix, uri))
        return f"{prefix}:{local}"

    def element(self, elem: ET.Element, scope: dict[str, str]) -> None:
        scope = dict(scope)
        declare: list[tuple[str, str]] = []
        tag = self._qname(elem.tag, scope, declare)
        attrs = [(self._qname(k, scope, declare), v) for k, v in elem.attrib.items()]
        self.parts.append(f"<{tag}")
        for prefix, uri in declare:
            self.parts.append(f" xmlns:{prefix}={quoteattr(uri)}")
        for key, value in attrs:
            self.parts.append(f" {key}={quoteattr(value)}")
        if elem.text is None and len(elem) == 0:
            self.parts.append("/>")
        else:
            self.parts.append(">")
            if elem.text:
                self.parts.append(escape(elem.text))
            for child in elem:
                self.element(child, scope)
            self.parts.append(f"</{tag}>")
        if elem.tail:
            self.parts.append(escape(elem.tail))

    def envelope(self, headers: list[ET.Element], body: list[ET.Element]) -> bytes:
        declarations = "".join(f" xmlns:{p}={quoteattr(NS[p])}" for p in _ENVELOPE_PREFIXES)
        self.parts.append(f'<s:Envelope xml:lang="en-US"{declarations}><s:Header>')
        for node in headers:
            self.element(node, self.prefixes)
        self.parts.append("</s:Header><s:Body>")
        for node in body:
            self.element(node, self.prefixes)
        self.parts.append("</s:Body></s:Envelope>")
        return "".join(self.parts).encode("utf-8")


def _text_element(prefix: str, local: str, text: str) -> ET.Element:
    node = ET.Element(_q(prefix, local))
    node.text = text
    return node


def _response_headers(action: str, relates_to: str | None) -> list[ET.Element]:
    headers = [
        _text_element("a", "Action", action),
        _text_element("a", "MessageID", f"uuid:{str(uuid.uuid4()).upper()}"),
        _text_element("a", "To", ANONYMOUS),
    ]
    if relates_to:
        headers.append(_text_element("a", "RelatesTo", relates_to))
    return headers


def render_response(request: api.WSManRequest, response: api.WSManResponse) -> bytes:
    """The SOAP envelope answering `request` with the handler's `response`."""
    if request.action == IDENTIFY_ACTION:
        headers = []  # the Identify response has an empty s:Header, as WinRM sends it
    else:
        headers = _response_headers(response.action, request.message_id)
    headers.extend(response.extra_headers)
    return _Writer().envelope(headers, list(response.body))


def fault_element(fault: api.WSManFault, machine: str) -> ET.Element:
    """The s:Fault element for `fault`, as WinRM writes it."""
    node = ET.Element(_q("s", "Fault"))
    code = ET.SubElement(node, _q("s", "Code"))
    ET.SubElement(code, _q("s", "Value")).text = fault.code
    subcode = ET.SubElement(code, _q("s", "Subcode"))
    ET.SubElement(subcode, _q("s", "Value")).text = fault.subcode
    reason = ET.SubElement(node, _q("s", "Reason"))
    ET.SubElement(reason, _q("s", "Text"), {_q("xml", "lang"): "en-US"}).text = fault.reason
    detail = ET.SubElement(node, _q("s", "Detail"))
    # Windows writes w:FaultDetail first (pypsrp's recordings, e.g. test_winrs_bad_cmd_id.yml).
    if fault.detail_extra:
        ET.SubElement(detail, _q("w", "FaultDetail")).text = fault.detail_extra
    wsman_fault = ET.SubElement(
        detail, _q("f", "WSManFault"), {"Code": str(fault.wsman_code), "Machine": machine}
    )
    message = ET.SubElement(wsman_fault, _q("f", "Message"))
    if fault.provider:
        # A plugin's fault: its text sits in f:ProviderFault naming the plugin and its DLL.
        provider = ET.SubElement(
            message,
            _q("f", "ProviderFault"),
            {"provider": fault.provider, "path": fault.provider_path or ""},
        )
        provider.text = fault.message
    else:
        message.text = fault.message
    return node


def render_fault(request: api.WSManRequest | None, fault: api.WSManFault, machine: str) -> bytes:
    """The SOAP fault envelope for `fault`; RelatesTo is set when the request was parsed."""
    action = ADDRESSING_FAULT_ACTION if fault.subcode.startswith("a:") else WSMAN_FAULT_ACTION
    relates_to = request.message_id if request is not None else None
    return _Writer().envelope(
        _response_headers(action, relates_to), [fault_element(fault, machine)]
    )
