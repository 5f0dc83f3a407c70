"""Routes a parsed WS-Management request: Identify, winrm/config, or a shell handler.

The shell handlers come from `winhost.shells.shell_handlers(host, winhost.execution.
create_engine())`, imported on first use. When that import fails, shell requests answer a
fault that names what is missing; they never succeed by pretence.
"""

from __future__ import annotations

import importlib
import logging
import threading
import typing as t
import xml.etree.ElementTree as ET

from winhost import api, latency
from winhost.wsman import config
from winhost.wsman.envelope import IDENTIFY_ACTION, NS

log = logging.getLogger(__name__)

WSMID = "http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd"
SHELL_URI_PREFIXES = (
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "http://schemas.microsoft.com/powershell/",
)


def access_denied() -> api.WSManFault:
    return api.WSManFault(
        "s:Sender", "w:AccessDenied", api.WSMAN_FAULT_ACCESS_DENIED, "Access is denied. "
    )


def max_envelope_fault(limit_kb: int) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:EncodingLimit",
        api.WSMAN_FAULT_MAX_ENVELOPE_SIZE,
        f"The WS-Management service cannot process the request because the request size "
        f"exceeded the configured MaxEnvelopeSize quota ({limit_kb} KB).",
        http_status=413,
        detail_extra="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize",
    )


def identify_response(facts: dict[str, t.Any], anonymous: bool) -> api.WSManResponse:
    """IdentifyResponse; an anonymous caller sees no OS version, as on Windows."""
    node = ET.Element(f"{{{WSMID}}}IdentifyResponse")
    ET.SubElement(node, f"{{{WSMID}}}ProtocolVersion").text = NS["w"]
    ET.SubElement(node, f"{{{WSMID}}}ProductVendor").text = "Microsoft Corporation"
    version = (
        "OS: 0.0.0 SP: 0.0 Stack: 3.0"
        if anonymous
        else (f"OS: {'.'.join(str(facts['os_version']).split('.')[:3])} SP: 0.0 Stack: 3.0")
    )
    ET.SubElement(node, f"{{{WSMID}}}ProductVersion").text = version
    profiles = ET.SubElement(node, f"{{{WSMID}}}SecurityProfiles")
    ET.SubElement(
        profiles, f"{{{WSMID}}}SecurityProfileName"
    ).text = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/http/spnego-kerberos"
    return api.WSManResponse(IDENTIFY_ACTION + "Response", [node])


class RouterHost(config.ConfigHost, api.HostView, t.Protocol):
    def count(self, counter: str) -> None: ...

    def pay(self, operation: str) -> None: ...


class Router:
    """One per host."""

    def __init__(self, host: RouterHost) -> None:
        self.host = host
        self.config = config.ConfigProvider(host)
        self._handlers: dict[str, api.ShellHandler] | None = None
        self._shell_error: str | None = None
        self._lock = threading.Lock()

    def _shell_handlers(self) -> dict[str, api.ShellHandler]:
        with self._lock:
            if self._handlers is None and self._shell_error is None:
                try:
                    shells = importlib.import_module("winhost.shells")
                    execution = importlib.import_module("winhost.execution")
                    engine = execution.create_engine()
                    # Kept as returned: its lookup routes every PowerShell configuration name,
                    # unknown ones included, to the PowerShell handler (which faults as Windows).
                    self._handlers = shells.shell_handlers(self.host, engine)
                except Exception as err:  # a missing layer must show, not crash the server
                    self._shell_error = f"{type(err).__name__}: {err}"
                    log.error("winhost shell layer unavailable: %s", self._shell_error)
            return self._handlers or {}

    def _find_shell_handler(self, resource_uri: str) -> api.ShellHandler | None:
        handlers = self._shell_handlers()
        handler = handlers.get(resource_uri)
        if handler is None:  # resource URIs are case-insensitive on Windows
            handler = next(
                (h for uri, h in handlers.items() if uri.lower() == resource_uri.lower()), None
            )
        return handler

    def open_shells(self) -> int:
        """Shells and runspace pools that exist on the host now (what a leftover check reads)."""
        with self._lock:
            handlers = self._handlers
        count = getattr(handlers, "open_shells", None)
        return int(count()) if count is not None else 0

    def shell_summaries(self) -> list[dict[str, t.Any]]:
        """Each shell and runspace pool that exists now, with its idle timeout."""
        with self._lock:
            handlers = self._handlers
        summaries = getattr(handlers, "shell_summaries", None)
        return list(summaries()) if summaries is not None else []

    def reset_shells(self) -> None:
        """Forget every shell, as a reboot or a WinRM restart does."""
        with self._lock:
            handlers = self._handlers
        reset = getattr(handlers, "reset", None)
        if reset is not None:
            reset()

    def handle(
        self, request: api.WSManRequest, principal: api.Principal | None
    ) -> api.WSManResponse:
        if request.action == IDENTIFY_ACTION:
            return identify_response(self.host.facts(), anonymous=principal is None)
        if principal is None:
            raise access_denied()
        limit_kb = int(self.host.winrm_setting("MaxEnvelopeSizekb"))
        if request.raw_size > limit_kb * 1024:
            raise max_envelope_fault(limit_kb)
        if config.is_config_uri(request.resource_uri):
            return self.config.handle(request)
        handler = self._find_shell_handler(request.resource_uri)
        if handler is not None:
            response = handler.handle(request, principal)
            if request.action.endswith("/Command"):
                # A WinRS command or PSRP pipeline really started (tests check "never twice").
                self.host.count("commands_started")
            # What the shell, pool or pipeline that really started costs on Windows (nothing
            # unless a latency profile is chosen); paid before the answer leaves, as Windows
            # answers Create once winrshost/wsmprovhost started. A WinRS command's processes
            # pay their start-up in the command's thread, after the answer
            # (execution.ExecutionEngine, latency.start_up_operations).
            for operation in latency.shell_operations(request.action, request.resource_uri):
                self.host.pay(operation)
            return response
        if request.resource_uri.lower().startswith(SHELL_URI_PREFIXES) and self._shell_error:
            raise api.WSManFault(
                "s:Sender",
                "w:DestinationUnreachable",
                api.WSMAN_FAULT_RESOURCE_NOT_FOUND,
                f"winhost cannot serve shell resource {request.resource_uri}: its shell layer "
                f"failed to load ({self._shell_error}).",
            )
        raise config._not_found(request.resource_uri)
