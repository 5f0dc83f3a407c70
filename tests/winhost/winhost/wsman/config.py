"""The winrm/config resources: WS-Transfer Get/Put (and Create/Delete of listeners) and
WS-Enumeration, answered from and written to the host's state.

As on Windows, each resource's XML lives in a namespace equal to its resource URI
(cfg:Service xmlns:cfg=".../config/service"), values are strings, and Put changes existing
values only. A listener is addressed by the selectors Address and Transport. Every change is
saved and handed to the host, which reconciles its live listeners.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import typing as t
import xml.etree.ElementTree as ET

from cryptography.x509.oid import NameOID

from winhost import api, compatibility, pki
from winhost.state import HostState, Listener, StateError
from winhost.wsman.envelope import NS

CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
LISTENER_URI = f"{CONFIG_URI}/listener"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
ENUMERATION = NS["n"]
GET, PUT, CREATE, DELETE = (f"{TRANSFER}/{name}" for name in ("Get", "Put", "Create", "Delete"))
ENUMERATE, PULL = f"{ENUMERATION}/Enumerate", f"{ENUMERATION}/Pull"

# Resource URI suffix -> path of the section in the state's winrm dict ("" = the root).
_SECTIONS = {
    "": "",
    "/client": "Client",
    "/client/auth": "Client/Auth",
    "/client/defaultports": "Client/DefaultPorts",
    "/service": "Service",
    "/service/auth": "Service/Auth",
    "/service/defaultports": "Service/DefaultPorts",
    "/winrs": "Winrs",
}


# wsmerror.h ERROR_WSMAN_CONFIG_CERT_CN_DOES_NOT_MATCH_HOSTNAME (0x803380E9).
WSMAN_FAULT_CERT_CN_DOES_NOT_MATCH_HOSTNAME = 2150858985
CERT_CN_DOES_NOT_MATCH_HOSTNAME = (
    "The WinRM client cannot process the request. The certificate CN and the hostname that "
    "were provided do not match."
)


def certificate_hostname_problem(state: HostState, listener: Listener) -> str | None:
    """Windows' check of an HTTPS listener's Hostname against its certificate's CN, made when
    a listener is created or changed (New-/Set-WSManInstance, winrm create/set): the error
    text when they differ, else None. An empty Hostname stands for the computer's own name
    (WSManDsc: without Hostname "the host name in the certificate must match the name of the
    host machine"); which of the computer name and the FQDN counts is assumed: either.
    Compared case-insensitively, as host names are. A thumbprint that names no certificate
    in LocalMachine\\My is not this check's business."""
    if listener.transport.upper() != "HTTPS" or not listener.certificate_thumbprint:
        return None
    stored = next(
        (
            cert
            for cert in state.store_certs("LocalMachine\\My")
            if cert.thumbprint.upper() == listener.certificate_thumbprint.upper()
        ),
        None,
    )
    if stored is None:
        return None
    subject = pki.load_cert(state.directory / stored.cert_path).subject
    common_names = {
        str(attribute.value).lower()
        for attribute in subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    }
    names = [listener.hostname] if listener.hostname else [state.computer_name, state.fqdn]
    if common_names & {name.lower() for name in names}:
        return None
    return CERT_CN_DOES_NOT_MATCH_HOSTNAME


class ConfigHost(t.Protocol):
    state: HostState

    def config_changed(self) -> None: ...


def normalise_uri(uri: str) -> str:
    """Full resource URI, accepting WinRM's "winrm/config/..." alias."""
    if uri.lower().startswith("winrm/config"):
        uri = CONFIG_URI + uri[len("winrm/config") :]
    return uri.rstrip("/")


def is_config_uri(uri: str) -> bool:
    return normalise_uri(uri).lower().startswith(CONFIG_URI.lower())


def _invalid_selectors(message: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender", "w:InvalidSelectors", api.WSMAN_FAULT_INVALID_SELECTORS, message
    )


def _not_found(uri: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:DestinationUnreachable",
        api.WSMAN_FAULT_RESOURCE_NOT_FOUND,
        f"The WS-Management service cannot process the request. The service cannot find the "
        f"resource identified by the resource URI and selectors. ({uri})",
    )


def _action_not_supported(action: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "a:ActionNotSupported",
        api.WSMAN_FAULT_ACTION_NOT_SUPPORTED,
        f"The action is not supported by the service: {action}",
    )


def _section_element(uri: str, name: str, section: dict[str, t.Any]) -> ET.Element:
    node = ET.Element(f"{{{uri}}}{name}")
    for key, value in section.items():
        if isinstance(value, dict):
            node.append(_section_element(uri, key, value))
        else:
            ET.SubElement(node, f"{{{uri}}}{key}").text = value
    return node


def _listener_element(listener: Listener, address: str, source: str = "") -> ET.Element:
    uri = LISTENER_URI
    node = ET.Element(f"{{{uri}}}Listener")
    if source:
        # `winrm enumerate winrm/config/listener` prints it as Listener [Source="..."].
        node.set("Source", source)
    values = {
        "Address": listener.address,
        "Transport": listener.transport,
        "Port": str(listener.port),
        "Hostname": listener.hostname,
        "Enabled": str(listener.enabled).lower(),
        "URLPrefix": listener.url_prefix,
        "CertificateThumbprint": listener.certificate_thumbprint,
    }
    for key, value in values.items():
        ET.SubElement(node, f"{{{uri}}}{key}").text = value
    ET.SubElement(node, f"{{{uri}}}ListeningOn").text = address
    return node


def _check_certificate_hostname(state: HostState, listener: Listener) -> None:
    problem = certificate_hostname_problem(state, listener)
    if problem is not None:
        raise api.WSManFault(
            "s:Sender", "w:InvalidParameter", WSMAN_FAULT_CERT_CN_DOES_NOT_MATCH_HOSTNAME, problem
        )


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


class ConfigProvider:
    """Answers config requests for one host."""

    def __init__(self, host: ConfigHost) -> None:
        self.host = host
        self._contexts: dict[str, list[ET.Element]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def handle(self, request: api.WSManRequest) -> api.WSManResponse:
        uri = normalise_uri(request.resource_uri)
        suffix = uri[len(CONFIG_URI) :].lower()
        action = request.action
        if action == PULL:
            return self._pull(request)
        if suffix == "/listener":
            return self._listener(request, action)
        if suffix not in _SECTIONS:
            raise _not_found(request.resource_uri)
        path = _SECTIONS[suffix]
        if action == GET:
            return api.WSManResponse(f"{GET}Response", [self._section(uri, path)])
        if action == PUT:
            self._put_section(request, path)
            return api.WSManResponse(f"{PUT}Response", [self._section(uri, path)])
        if action == ENUMERATE:
            return self._enumerate(request, [self._section(uri, path)])
        raise _action_not_supported(action)

    # --- sections ------------------------------------------------------------------------
    def _section_dict(self, path: str) -> dict[str, t.Any]:
        node: t.Any = self.host.state.winrm
        for part in filter(None, path.split("/")):
            node = node[part]
        return node

    def _section(self, uri: str, path: str) -> ET.Element:
        name = path.rsplit("/", 1)[-1] if path else "Config"
        with self.host.state.lock:
            return _section_element(uri, name, self._section_dict(path))

    def _put_section(self, request: api.WSManRequest, path: str) -> None:
        body = list(request.body)
        if not body:
            raise _invalid_selectors("Put needs the changed resource in the body.")
        changes: list[tuple[str, str]] = []

        def collect(node: ET.Element, prefix: str) -> None:
            for child in node:
                key = f"{prefix}/{_local_name(child.tag)}" if prefix else _local_name(child.tag)
                if len(child):
                    collect(child, key)
                else:
                    changes.append((key, (child.text or "").strip()))

        collect(body[0], path)
        state = self.host.state
        with state.lock:
            try:
                for key, value in changes:
                    state.set_winrm_setting(key, value)
            except StateError as err:
                raise api.WSManFault(
                    "s:Sender",
                    "w:InvalidParameter",
                    2150858817,
                    f"The WS-Management service cannot process the request: {err}",
                ) from err
            state.save()
        self.host.config_changed()

    # --- listeners -------------------------------------------------------------------------
    def _find_listener(self, selectors: dict[str, str]) -> Listener | None:
        address = selectors.get("Address")
        transport = selectors.get("Transport")
        if address is None or transport is None:
            raise _invalid_selectors(
                "The WS-Management service cannot process the request because the selectors "
                "Address and Transport are required for a listener."
            )
        for listener in self.host.state.listeners:
            if (
                listener.address.lower() == address.lower()
                and listener.transport.lower() == transport.lower()
            ):
                return listener
        return None

    def _listener(self, request: api.WSManRequest, action: str) -> api.WSManResponse:
        state = self.host.state
        if action == ENUMERATE:
            with state.lock:
                items = [_listener_element(li, state.address) for li in state.listeners]
                items += [
                    _listener_element(li, state.address, compatibility.SOURCE)
                    for li in compatibility.compatibility_listeners(state)
                ]
            return self._enumerate(request, items)
        with state.lock:
            listener = self._find_listener(request.selectors)
            if action == CREATE:
                if listener is not None:
                    raise api.WSManFault(
                        "s:Sender",
                        "w:AlreadyExists",
                        2150858803,
                        "The WS-Management service cannot create the resource because it "
                        "already exists.",
                    )
                listener = Listener(
                    address=request.selectors["Address"],
                    transport=request.selectors["Transport"].upper(),
                    port=int(
                        state.winrm_setting(
                            f"Service/DefaultPorts/{request.selectors['Transport'].upper()}"
                        )
                    ),
                )
                self._apply_listener(listener, request)
                _check_certificate_hostname(state, listener)
                state.listeners.append(listener)
            elif listener is None:
                raise _not_found(request.resource_uri)
            elif action == DELETE:
                state.listeners.remove(listener)
            elif action == PUT:
                # Checked on a copy: a refused Put leaves the listener as it was.
                changed = dataclasses.replace(listener)
                self._apply_listener(changed, request)
                _check_certificate_hostname(state, changed)
                state.listeners[state.listeners.index(listener)] = changed
                listener = changed
            elif action != GET:
                raise _action_not_supported(action)
            element = _listener_element(listener, state.address)
            if action != GET:
                state.save()
        if action != GET:
            self.host.config_changed()
        if action == DELETE:
            return api.WSManResponse(f"{DELETE}Response", [])
        if action == CREATE:
            created = ET.Element(f"{{{TRANSFER}}}ResourceCreated")
            ET.SubElement(created, f"{{{NS['a']}}}Address").text = ANONYMOUS_ADDRESS
            return api.WSManResponse(f"{CREATE}Response", [created])
        return api.WSManResponse(f"{action}Response", [element])

    def _apply_listener(self, listener: Listener, request: api.WSManRequest) -> None:
        body = list(request.body)
        if not body:
            return
        for child in body[0]:
            name, value = _local_name(child.tag).lower(), (child.text or "").strip()
            if name == "port":
                listener.port = int(value)
            elif name == "hostname":
                listener.hostname = value
            elif name == "enabled":
                listener.enabled = value.lower() == "true"
            elif name == "certificatethumbprint":
                listener.certificate_thumbprint = value.replace(" ", "").upper()
            elif name == "urlprefix":
                listener.url_prefix = value

    # --- enumeration -------------------------------------------------------------------------
    def _enumerate(self, request: api.WSManRequest, items: list[ET.Element]) -> api.WSManResponse:
        enumerate_node = request.body.find(f"{{{ENUMERATION}}}Enumerate")
        optimized = (
            enumerate_node is not None
            and enumerate_node.find(f"{{{NS['w']}}}OptimizeEnumeration") is not None
        )
        response = ET.Element(f"{{{ENUMERATION}}}EnumerateResponse")
        if optimized:
            ET.SubElement(response, f"{{{ENUMERATION}}}EnumerationContext")
            items_node = ET.SubElement(response, f"{{{NS['w']}}}Items")
            items_node.extend(items)
            ET.SubElement(response, f"{{{NS['w']}}}EndOfSequence")
        else:
            context = f"uuid:{next(self._ids):08d}-0000-0000-0000-000000000000"
            with self._lock:
                self._contexts[context] = items
            ET.SubElement(response, f"{{{ENUMERATION}}}EnumerationContext").text = context
        return api.WSManResponse(f"{ENUMERATE}Response", [response])

    def _pull(self, request: api.WSManRequest) -> api.WSManResponse:
        node = request.body.find(f"{{{ENUMERATION}}}Pull/{{{ENUMERATION}}}EnumerationContext")
        context = (node.text or "").strip() if node is not None else ""
        with self._lock:
            items = self._contexts.pop(context, None)
        if items is None:
            raise api.WSManFault(
                "s:Sender",
                "n:InvalidEnumerationContext",
                2150858767,
                "The WS-Management service cannot process the request because the enumeration "
                "context is not valid.",
            )
        response = ET.Element(f"{{{ENUMERATION}}}PullResponse")
        items_node = ET.SubElement(response, f"{{{ENUMERATION}}}Items")
        items_node.extend(items)
        ET.SubElement(response, f"{{{ENUMERATION}}}EndOfSequence")
        return api.WSManResponse(f"{PULL}Response", [response])


ANONYMOUS_ADDRESS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
