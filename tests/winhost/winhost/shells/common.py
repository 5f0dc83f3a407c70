"""What the WinRS cmd shell and the PowerShell shell share: the per-host shell table with
Windows' quotas and idle expiry, the faults WinRM answers shell requests with, the
Create/Receive plumbing and the small XML helpers both shells build responses with.

A shell lives in a `ShellTable` (one per host, shared by both shell kinds, since WinRM's
per-user quotas count every shell of the user). Requests on one shell are serialised by the
shell's lock except Receive, which waits for output without holding it.
"""

from __future__ import annotations

import threading
import time
import typing as t
import uuid
import xml.etree.ElementTree as ET

from winhost import api, faults
from winhost.wsman.envelope import NS, format_duration, parse_duration

CMD_RESOURCE_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
PS_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/"

_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
ACTION_CREATE = f"{_TRANSFER}Create"
ACTION_DELETE = f"{_TRANSFER}Delete"
ACTION_COMMAND = f"{SHELL_URI}Command"
ACTION_SEND = f"{SHELL_URI}Send"
ACTION_RECEIVE = f"{SHELL_URI}Receive"
ACTION_SIGNAL = f"{SHELL_URI}Signal"
ACTION_DISCONNECT = f"{SHELL_URI}Disconnect"
ACTION_RECONNECT = f"{SHELL_URI}Reconnect"
_ENUMERATION = NS["n"]
ACTION_ENUMERATE = f"{_ENUMERATION}/Enumerate"

STATE_DONE = f"{SHELL_URI}CommandState/Done"
STATE_RUNNING = f"{SHELL_URI}CommandState/Running"

SIGNAL_TERMINATE = f"{SHELL_URI}signal/terminate"
SIGNAL_CTRL_C = f"{SHELL_URI}signal/ctrl_c"
SIGNAL_CTRL_BREAK = f"{SHELL_URI}signal/ctrl_break"
# PowerShell's stop signal: pypsrp writes "ctrl_c", MS-PSRP (and so Windows' own client)
# "crtl_c", with or without the schema prefix.
PS_SIGNALS_CTRL_C = frozenset(
    f"{prefix}powershell/signal/{name}"
    for prefix in ("", "http://schemas.microsoft.com/")
    for name in ("ctrl_c", "crtl_c")
)

# Windows' defaults when the host's configuration does not say (winrm/config/winrs and
# winrm/config/service), and WinRM's OperationTimeout default.
DEFAULT_IDLE_TIMEOUT_MS = 7200000
DEFAULT_MAX_SHELLS_PER_USER = 30
DEFAULT_MAX_OPERATIONS_PER_USER = 1500
DEFAULT_MAX_ENVELOPE_KB = 500
DEFAULT_OPERATION_TIMEOUT = 60.0

WSMAN_FAULT_OPERATIONS_QUOTA = 2150859174  # 0x803381A6, MaxConcurrentOperationsPerUser
WSMAN_FAULT_REMOTESHELLS_NOT_ALLOWED = 2150859180  # 0x803381AC
# What winhost answers for something it does not model (the SDK's name fits: no code of
# Windows' would be more honest).
WSMAN_FAULT_REQUEST_NOT_SUPPORTED_AT_SERVICE = 2150859064
WIN32_ERROR_INVALID_PARAMETER = 87
FAULT_DETAIL_URI = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
# s:Reason of Windows' w:InvalidSelectors faults (pypsrp's recording test_winrs_bad_cmd_id.yml).
INVALID_SELECTORS_REASON = (
    "The WS-Management service cannot process the request because the request contained "
    "invalid selectors for the resource. "
)
# How Windows names the cmd shell's plugin in f:ProviderFault.
CMD_PLUGIN_PROVIDER = "Shell cmd plugin"
CMD_PLUGIN_PATH = "%systemroot%\\system32\\winrscmd.dll"

# Room a Receive response needs besides its payload (envelope, headers, stream elements).
_RESPONSE_OVERHEAD = 4096


def q(prefix: str, local: str) -> str:
    """A qualified ElementTree tag in one of the envelope's well-known namespaces."""
    return f"{{{NS[prefix]}}}{local}"


def sub(
    parent: ET.Element, prefix: str, local: str, text: str | None = None, **attrib: str
) -> ET.Element:
    node = ET.SubElement(parent, q(prefix, local), attrib)
    if text is not None:
        node.text = text
    return node


def element(prefix: str, local: str, text: str | None = None, **attrib: str) -> ET.Element:
    node = ET.Element(q(prefix, local), attrib)
    if text is not None:
        node.text = text
    return node


# --- faults as WinRM words them ----------------------------------------------------------------


def shell_not_found_fault(shell_id: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        api.WSMAN_FAULT_SHELL_NOT_FOUND,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell was not found on the server. Possible causes are: the specified ShellId is "
        "incorrect or the shell no longer exists on the server. Provide the correct ShellId or "
        "create a new shell and retry the operation. ",
    )


def command_not_found_fault() -> api.WSManFault:
    # Text, code and FaultDetail as recorded from Windows (pypsrp's tests/tests_pypsrp/
    # responses/test_winrs_bad_cmd_id.yml).
    return api.WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        api.WSMAN_FAULT_SHELL_NOT_FOUND,
        "The Windows Remote Shell received a request to perform an operation on a command "
        "identifier that does not exist. Either the command has completed execution or the "
        "client specified an invalid command identifier. ",
        detail_extra=f"{FAULT_DETAIL_URI}UnexpectedSelectors",
        reason=INVALID_SELECTORS_REASON,  # the specific text is in f:Message only
    )


def cmd_plugin_invalid_parameter_fault() -> api.WSManFault:
    """The cmd shell plugin refusing a request it cannot take, such as a Receive naming no
    CommandId: ERROR_INVALID_PARAMETER (87) from winrscmd.dll, as recorded from Windows in
    pypsrp's tests/tests_pypsrp/responses/test_winrs_fail_poll_process.yml."""
    return api.WSManFault(
        "s:Sender",
        "w:InvalidParameter",
        WIN32_ERROR_INVALID_PARAMETER,
        "The parameter is incorrect. ",
        detail_extra=f"{FAULT_DETAIL_URI}InvalidValue",
        provider=CMD_PLUGIN_PROVIDER,
        provider_path=CMD_PLUGIN_PATH,
    )


def missing_selector_fault() -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "w:InvalidSelectors",
        api.WSMAN_FAULT_INVALID_SELECTORS,
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource. ",
    )


def operations_quota_fault(limit: int) -> api.WSManFault:
    return api.WSManFault(
        "s:Receiver",
        "w:QuotaLimit",
        WSMAN_FAULT_OPERATIONS_QUOTA,
        f"The WS-Management service cannot process the request. This user is allowed a maximum "
        f"number of {limit} concurrent operations, which has been exceeded. Close existing "
        "operations for this user, or raise the quota for this user. ",
    )


def remote_shells_disabled_fault() -> api.WSManFault:
    # MS-WSMV 2.2.4.42 (WinrsType, AllowRemoteShellAccess): the server "MUST reply with a
    # wsman:InternalError fault"; the code is the SDK's ERROR_WSMAN_REMOTESHELLS_NOT_ALLOWED.
    return api.WSManFault(
        "s:Receiver",
        "w:InternalError",
        WSMAN_FAULT_REMOTESHELLS_NOT_ALLOWED,
        "The WS-Management service cannot process the request. The service is configured to "
        "not accept any remote shell requests. ",
    )


def action_not_supported_fault(action: str, resource_uri: str) -> api.WSManFault:
    return api.WSManFault(
        "s:Sender",
        "a:ActionNotSupported",
        api.WSMAN_FAULT_ACTION_NOT_SUPPORTED,
        f"The action is not supported by the service. winhost does not model the action "
        f"{action} on {resource_uri}. ",
    )


def bad_request_fault(detail: str) -> api.WSManFault:
    """The request body is not what the action requires (WinRM's schema validation; WinRM
    answers shell faults with HTTP 500 whatever their SOAP code)."""
    return api.WSManFault(
        "s:Sender",
        "w:SchemaValidationError",
        2150858817,  # ERROR_WSMAN_SCHEMA_VALIDATION_ERROR
        f"The WS-Management service cannot process the request because the XML is invalid. "
        f"{detail}",
    )


def not_modelled_fault(what: str) -> api.WSManFault:
    """Something a real Windows host would do that winhost does not model: loud, never a
    made-up success."""
    return api.WSManFault(
        "s:Receiver",
        "w:InternalError",
        WSMAN_FAULT_REQUEST_NOT_SUPPORTED_AT_SERVICE,
        f"The WS-Management service cannot process the request. winhost does not model {what}. ",
    )


# --- host settings -----------------------------------------------------------------------------


def host_setting_int(host: api.HostView, paths: tuple[str, ...], default: int) -> int:
    """The first of `paths` the host's WinRM configuration knows, as an int; `default` (Windows'
    own) when the host models none of them."""
    for path in paths:
        try:
            text = host.winrm_setting(path)
        except (KeyError, LookupError, ValueError):
            continue
        try:
            return int(str(text).strip())
        except ValueError as err:
            raise ValueError(f"WinRM setting {path}={text!r} is not a whole number") from err
    return default


# --- shell table ---------------------------------------------------------------------------------


class Shell:
    """State common to every shell kind. Subclasses add their commands."""

    def __init__(
        self, shell_id: str, resource_uri: str, owner: api.Principal, idle_timeout: float
    ) -> None:
        self.shell_id = shell_id
        self.resource_uri = resource_uri
        self.owner = owner
        self.idle_timeout = idle_timeout
        self.created = time.monotonic()
        self.last_activity = self.created
        self.active_requests = 0
        # rsp:Name of the Create body (MS-WSMV 2.2.4.37), shown again when shells are listed.
        self.name: str | None = None
        self.lock = threading.RLock()
        self.closed = False

    def operation_count(self) -> int:
        """Operations this shell holds against MaxConcurrentOperationsPerUser: itself and its
        commands that were not yet terminated."""
        return 1

    def close(self) -> None:
        """Stop whatever runs in the shell (on Delete or idle expiry)."""
        self.closed = True

    def expired(self, now: float) -> bool:
        return self.active_requests == 0 and now - self.last_activity > self.idle_timeout


class ShellCommand(t.Protocol):
    """What CommandShell needs of a command (a WinRS command or a PSRP pipeline)."""

    done_reported: bool


CommandT = t.TypeVar("CommandT", bound=ShellCommand)


class CommandShell(Shell, t.Generic[CommandT]):
    """A shell whose commands are keyed by their upper-case CommandId."""

    def __init__(
        self, shell_id: str, resource_uri: str, owner: api.Principal, idle_timeout: float
    ) -> None:
        super().__init__(shell_id, resource_uri, owner, idle_timeout)
        self.commands: dict[str, CommandT] = {}

    def operation_count(self) -> int:
        # A command whose final state the client has received no longer runs: its id stays
        # valid (clients may send terminate afterwards; ansible-core's psrp plugin never does for
        # finished pipelines) but it is no concurrent operation.
        with self.lock:
            return 1 + sum(1 for c in self.commands.values() if not c.done_reported)

    def command(self, command_id: str | None) -> CommandT:
        with self.lock:
            found = self.commands.get((command_id or "").upper())
        if found is None:
            raise command_not_found_fault()
        return found


ShellT = t.TypeVar("ShellT", bound=Shell)


class ShellTable:
    """The shells of one host, with WinRM's per-user quotas and idle expiry."""

    # How often idle shells are looked for while any exist (Windows frees them on its own,
    # not only when the next request arrives).
    SWEEP_INTERVAL = 1.0

    def __init__(self, host: api.HostView) -> None:
        self.host = host
        self._shells: dict[str, Shell] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None

    def __len__(self) -> int:
        """Shells that exist now (WinRS cmd shells and PSRP runspace pools alike)."""
        with self._lock:
            return len(self._shells)

    def summaries(self) -> list[dict[str, t.Any]]:
        """What `winrm enumerate` would list of each shell that exists now, for tests."""
        with self._lock:
            shells = list(self._shells.values())
        return [
            {
                "shell_id": shell.shell_id,
                "resource_uri": shell.resource_uri,
                "owner": shell.owner.username,
                "idle_timeout": shell.idle_timeout,
            }
            for shell in shells
        ]

    def idle_timeout_seconds(self, requested: float | None) -> float:
        configured = host_setting_int(
            self.host, ("Winrs/IdleTimeout", "Shell/IdleTimeout"), DEFAULT_IDLE_TIMEOUT_MS
        )
        seconds = configured / 1000.0
        if requested is not None and 0 < requested < seconds:
            return requested
        return seconds

    def _sweep(self) -> list[Shell]:
        now = time.monotonic()
        gone = [s for s in self._shells.values() if s.expired(now)]
        for shell in gone:
            del self._shells[shell.shell_id.upper()]
        return gone

    def sweep(self) -> None:
        """Forget shells idle for longer than their idle timeout, ending their commands."""
        with self._lock:
            gone = self._sweep()
        for shell in gone:
            shell.close()

    def _sweep_while_shells_exist(self) -> None:
        while True:
            time.sleep(self.SWEEP_INTERVAL)
            self.sweep()
            with self._lock:
                if not self._shells:
                    self._sweeper = None
                    return

    def _ensure_sweeper(self) -> None:
        """Start the background sweep (caller holds the table's lock)."""
        if self._sweeper is None:
            self._sweeper = threading.Thread(
                target=self._sweep_while_shells_exist, name="winhost-shell-idle", daemon=True
            )
            self._sweeper.start()

    def _user_shells(self, owner: api.Principal) -> list[Shell]:
        return [s for s in self._shells.values() if s.owner.qualified_name == owner.qualified_name]

    def check_operation_quota(self, owner: api.Principal, adding: int = 1) -> None:
        limit = host_setting_int(
            self.host,
            ("Service/MaxConcurrentOperationsPerUser",),
            DEFAULT_MAX_OPERATIONS_PER_USER,
        )
        with self._lock:
            in_use = sum(s.operation_count() for s in self._user_shells(owner))
        if in_use + adding > limit:
            raise operations_quota_fault(limit)

    def add(self, shell: Shell) -> None:
        """Register a new shell, or raise the fault Windows sends (remote shells disabled by
        Winrs/AllowRemoteShellAccess - which stops PowerShell remoting too - or a quota)."""
        self.sweep()
        try:
            allowed = str(self.host.winrm_setting("Winrs/AllowRemoteShellAccess"))
        except (KeyError, LookupError, ValueError):
            allowed = "true"
        if allowed.strip().lower() == "false":
            raise remote_shells_disabled_fault()
        shell_limit = host_setting_int(
            self.host, ("Winrs/MaxShellsPerUser",), DEFAULT_MAX_SHELLS_PER_USER
        )
        operation_limit = host_setting_int(
            self.host,
            ("Service/MaxConcurrentOperationsPerUser",),
            DEFAULT_MAX_OPERATIONS_PER_USER,
        )
        with self._lock:
            mine = self._user_shells(shell.owner)
            if len(mine) >= shell_limit:
                raise faults.quota_fault(shell_limit)
            if sum(s.operation_count() for s in mine) + 1 > operation_limit:
                raise operations_quota_fault(operation_limit)
            if shell.shell_id.upper() in self._shells:
                raise bad_request_fault(f"A shell with ShellId {shell.shell_id} already exists.")
            self._shells[shell.shell_id.upper()] = shell
            self._ensure_sweeper()

    def get(
        self, request: api.WSManRequest, principal: api.Principal, kind: type[ShellT]
    ) -> ShellT:
        """The shell the request's ShellId selector names, owned by `principal`."""
        shell_id = next((v for k, v in request.selectors.items() if k.lower() == "shellid"), None)
        if not shell_id:
            raise missing_selector_fault()
        self.sweep()
        with self._lock:
            shell = self._shells.get(shell_id.upper())
        # Another user's shell is as invisible as a missing one (WinRM answers the same).
        if (
            shell is None
            or not isinstance(shell, kind)
            or shell.owner.qualified_name != principal.qualified_name
            or shell.resource_uri.lower() != request.resource_uri.lower()
        ):
            raise shell_not_found_fault(shell_id)
        return shell

    def remove(self, shell: Shell) -> None:
        with self._lock:
            self._shells.pop(shell.shell_id.upper(), None)
        shell.close()

    def clear(self) -> None:
        with self._lock:
            gone, self._shells = list(self._shells.values()), {}
        for shell in gone:
            shell.close()

    def shells(self) -> list[Shell]:
        with self._lock:
            return list(self._shells.values())


class Activity:
    """Marks a shell busy for the length of a request (an idle shell is one no request
    touches), and refreshes its idle clock at both ends."""

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def __enter__(self) -> Shell:
        with self.shell.lock:
            self.shell.active_requests += 1
            self.shell.last_activity = time.monotonic()
        return self.shell

    def __exit__(self, *exc: object) -> None:
        with self.shell.lock:
            self.shell.active_requests -= 1
            self.shell.last_activity = time.monotonic()


# --- request helpers -----------------------------------------------------------------------------


def body_child(request: api.WSManRequest, local: str) -> ET.Element:
    node = request.body.find(q("rsp", local))
    if node is None:
        raise bad_request_fault(f"The s:Body has no rsp:{local} element.")
    return node


def operation_timeout(request: api.WSManRequest) -> float:
    if request.operation_timeout is None:
        return DEFAULT_OPERATION_TIMEOUT
    return max(0.0, request.operation_timeout)


def response_payload_budget(request: api.WSManRequest, host: api.HostView) -> int:
    """Raw bytes of stream data a Receive response may carry so that, base64-encoded inside
    its envelope, it fits both the client's MaxEnvelopeSize and the host's."""
    server_limit = 1024 * host_setting_int(host, ("MaxEnvelopeSizekb",), DEFAULT_MAX_ENVELOPE_KB)
    limit = min(server_limit, request.max_envelope_size or server_limit)
    return max(1024, (limit - _RESPONSE_OVERHEAD) * 3 // 4)


def new_shell_id() -> str:
    return str(uuid.uuid4()).upper()


def requested_idle_timeout(shell_node: ET.Element) -> float | None:
    node = shell_node.find(q("rsp", "IdleTimeOut"))
    if node is None or not (node.text or "").strip():
        return None
    try:
        return parse_duration(node.text or "")
    except ValueError as err:
        raise bad_request_fault(f"rsp:IdleTimeOut {node.text!r} is not an xs:duration.") from err


def endpoint_address(request: api.WSManRequest, host: api.HostView) -> str:
    """The address the client sent the request to (wsa:To), which WinRM echoes in the EPR of
    a created resource."""
    to = request.header.find(q("a", "To"))
    if to is not None and (to.text or "").strip():
        return (to.text or "").strip()
    return f"http://{host.fqdn}:5985/wsman"


def create_response(
    request: api.WSManRequest,
    host: api.HostView,
    shell: Shell,
    input_streams: str,
    output_streams: str,
) -> api.WSManResponse:
    """WS-Transfer CreateResponse as WinRM sends it for a shell: the EPR of the new shell
    (x:ResourceCreated) and the rsp:Shell resource itself."""
    created = element("x", "ResourceCreated")
    sub(created, "a", "Address", endpoint_address(request, host))
    params = sub(created, "a", "ReferenceParameters")
    sub(params, "w", "ResourceURI", shell.resource_uri)
    selectors = sub(params, "w", "SelectorSet")
    sub(selectors, "w", "Selector", shell.shell_id, Name="ShellId")

    resource = shell_resource(shell, input_streams, output_streams, created=True)
    return api.WSManResponse(action=f"{_TRANSFER}CreateResponse", body=[created, resource])


def shell_resource(
    shell: Shell, input_streams: str, output_streams: str, *, created: bool = False
) -> ET.Element:
    """The rsp:Shell element describing `shell` (MS-WSMV 2.2.4.37), as Create answers it
    (``created``) and as an enumeration lists it; the elements in the schema's order. The
    Create answer leaves the shell's name out (pypsrp's recording test_winrs_extra_opts.yml: a
    cmd shell created with rsp:Name, answered without it)."""
    now = time.monotonic()
    resource = element("rsp", "Shell")
    sub(resource, "rsp", "ShellId", shell.shell_id)
    if shell.name and not created:
        sub(resource, "rsp", "Name", shell.name)
    sub(resource, "rsp", "ResourceUri", shell.resource_uri)
    sub(resource, "rsp", "Owner", f"{shell.owner.domain}\\{shell.owner.username}")
    sub(resource, "rsp", "IdleTimeOut", format_duration(shell.idle_timeout))
    sub(resource, "rsp", "InputStreams", input_streams)
    sub(resource, "rsp", "OutputStreams", output_streams)
    sub(resource, "rsp", "ShellRunTime", _day_duration(now - shell.created))
    sub(resource, "rsp", "ShellInactivity", _day_duration(now - shell.last_activity))
    return resource


def _day_duration(seconds: float) -> str:
    whole = int(max(0.0, seconds))
    return f"P0DT{whole // 3600}H{whole % 3600 // 60}M{whole % 60}S"


def enumerate_response(
    request: api.WSManRequest, principal: api.Principal, table: ShellTable, resource_uri: str
) -> api.WSManResponse:
    """WS-Enumeration of the shells of `resource_uri` (MS-WSMV 3.1.4.8.2): a user sees the
    shells the user created, an administrator every user's ("Remote Shell Infrastructure
    Improvements", learn.microsoft.com/windows/win32/winrm). Only the optimized form
    (wsman:OptimizeEnumeration: the items in the EnumerateResponse) is modelled."""
    enumerate_node = request.body.find(f"{{{_ENUMERATION}}}Enumerate")
    if enumerate_node is None:
        raise bad_request_fault("The s:Body has no n:Enumerate element.")
    if enumerate_node.find(q("w", "Filter")) is not None:
        raise not_modelled_fault("a wsman:Filter on a shell enumeration")
    if enumerate_node.find(q("w", "OptimizeEnumeration")) is None:
        raise not_modelled_fault("a shell enumeration without wsman:OptimizeEnumeration (Pull)")
    table.sweep()
    shells = [
        shell
        for shell in table.shells()
        if shell.resource_uri.lower() == resource_uri.lower()
        and (principal.is_admin or shell.owner.qualified_name == principal.qualified_name)
    ]
    response = ET.Element(f"{{{_ENUMERATION}}}EnumerateResponse")
    ET.SubElement(response, f"{{{_ENUMERATION}}}EnumerationContext")
    items = sub(response, "w", "Items")
    for shell in shells:
        items.append(
            shell_resource(
                shell,
                " ".join(getattr(shell, "input_streams", ["stdin"])),
                " ".join(getattr(shell, "output_streams", ["stdout", "stderr"])),
            )
        )
    sub(response, "w", "EndOfSequence")
    return api.WSManResponse(action=f"{ACTION_ENUMERATE}Response", body=[response])


def delete_response() -> api.WSManResponse:
    return api.WSManResponse(action=f"{_TRANSFER}DeleteResponse", body=[])


def command_response(command_id: str) -> api.WSManResponse:
    node = element("rsp", "CommandResponse")
    sub(node, "rsp", "CommandId", command_id)
    return api.WSManResponse(action=f"{SHELL_URI}CommandResponse", body=[node])


def send_response() -> api.WSManResponse:
    return api.WSManResponse(
        action=f"{SHELL_URI}SendResponse", body=[element("rsp", "SendResponse")]
    )


def signal_response() -> api.WSManResponse:
    return api.WSManResponse(
        action=f"{SHELL_URI}SignalResponse", body=[element("rsp", "SignalResponse")]
    )


def receive_response(body: ET.Element) -> api.WSManResponse:
    return api.WSManResponse(action=f"{SHELL_URI}ReceiveResponse", body=[body])


def is_true(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")
