"""Helpers of the winhost core tests: WS-Management envelopes through the real pywinrm and
pypsrp clients, and small raw-HTTP probes (for what the libraries hide: headers, TLS version)."""

from __future__ import annotations

import http.client
import ssl
import typing as t
import xml.etree.ElementTree as ET

import xmltodict
from pypsrp.wsman import WSMan
from winrm.protocol import Protocol

CONFIG = "http://schemas.microsoft.com/wbem/wsman/1/config"
GET = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
SOAP = "application/soap+xml;charset=UTF-8"
IDENTIFY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)


def get_envelope(protocol: Protocol, resource_uri: str, padding: int = 0) -> str:
    message = {"env:Envelope": protocol.build_wsman_header(GET, resource_uri)}
    body: dict[str, t.Any] = {}
    if padding:
        body["p:Padding"] = "x" * padding
    message["env:Envelope"]["env:Body"] = body
    return xmltodict.unparse(message)


def config_get(protocol: Protocol, resource_uri: str = f"{CONFIG}/service/auth") -> ET.Element:
    """WS-Transfer Get through pywinrm's real transport (auth, CBT, encryption included)."""
    return ET.fromstring(protocol.send_message(get_envelope(protocol, resource_uri)))


def local_values(element: ET.Element) -> dict[str, str]:
    return {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in element.iter()}


def psrp_wsman(address: str, user: str, password: str, ca_bundle: str, **kwargs: t.Any) -> WSMan:
    return WSMan(
        address,
        port=5986,
        ssl=True,
        auth="ntlm",
        username=user,
        password=password,
        cert_validation=ca_bundle,
        **kwargs,
    )


def set_service_auth(wsman: WSMan, **values: str) -> None:
    """What `winrm set winrm/config/service/auth @{...}` does."""
    namespace = f"{CONFIG}/service/auth"
    auth = ET.Element(f"{{{namespace}}}Auth")
    for name, value in values.items():
        ET.SubElement(auth, f"{{{namespace}}}{name}").text = value
    wsman.put(namespace, auth)


def tls_context(
    ca_bundle: str, version: ssl.TLSVersion, cert: str | None = None, key: str | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = version
    context.maximum_version = version
    if cert and key:
        context.load_cert_chain(cert, key)
    return context


def raw_post(
    address: str,
    port: int,
    body: bytes,
    headers: dict[str, str],
    context: ssl.SSLContext | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes, str | None]:
    """One POST /wsman; returns status, headers, body and the TLS version used."""
    if context is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            address, port, timeout=30
        )
    else:
        connection = http.client.HTTPSConnection(address, port, context=context, timeout=30)
    try:
        connection.request("POST", "/wsman", body=body, headers={"Content-Type": SOAP, **headers})
        response = connection.getresponse()
        data = response.read()
        version = connection.sock.version() if isinstance(connection.sock, ssl.SSLSocket) else None
        return response.status, response.headers, data, version
    finally:
        connection.close()
