"""The seams between winhost's layers, shared by all of them.

The HTTP layer (listeners, TLS, authentication, message encryption) turns a request into a
`WSManRequest` and an authenticated `Principal`; the WS-Management layer answers Identify and
configuration requests itself and hands shell requests to a `ShellHandler` (WinRS cmd shell or
PowerShell/PSRP shell); shells start commands through an `ExecutionEngine`, which decodes what
Ansible sends and runs Python emulations of modules against the host's modelled state, seen
through `HostView`.

Rule for changing this file: add, do not change or remove existing names or signatures.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

# WS-Management fault codes: the Windows error codes WinRM reports in WSManFault. Names in the
# comments are the Windows SDK's (wsmerror.h, as generated into microsoft/windows-rs
# crates/libs/windows/src/Windows/Win32/System/RemoteManagement/mod.rs).
WSMAN_FAULT_ACCESS_DENIED = 5
WSMAN_FAULT_OPERATION_TIMEOUT = 2150858793  # ERROR_WSMAN_OPERATION_TIMEDOUT, with w:TimedOut
# ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED: request larger than MaxEnvelopeSizekb (HTTP 413 is
# what clients report; that the 413 carries this code is assumed)
WSMAN_FAULT_MAX_ENVELOPE_SIZE = 2150858824
# ERROR_WSMAN_UNEXPECTED_SELECTORS: Windows' code for an unknown ShellId or CommandId
WSMAN_FAULT_SHELL_NOT_FOUND = 2150858843
WSMAN_FAULT_QUOTA_LIMIT = 2150859173  # ERROR_WSMAN_QUOTA_MAX_SHELLS
WSMAN_FAULT_BUSY = 170  # ERROR_BUSY
WSMAN_FAULT_INVALID_SELECTORS = 2150858842  # ERROR_WSMAN_INSUFFCIENT_SELECTORS (sic)
WSMAN_FAULT_ACTION_NOT_SUPPORTED = 2150858771  # ERROR_WSMAN_ACTION_NOT_SUPPORTED
WSMAN_FAULT_RESOURCE_NOT_FOUND = 2150858752  # ERROR_WSMAN_RESOURCE_NOT_FOUND


class WSManFault(Exception):
    """A SOAP fault as Windows sends it; the WS-Management layer serialises it.

    code: "s:Sender" or "s:Receiver"; subcode: a qualified WS-Management subcode such as
    "w:TimedOut", "w:AccessDenied", "w:QuotaLimit", "w:EncodingLimit", "w:InvalidSelectors",
    "a:ActionNotSupported", "w:InternalError"; wsman_code: the numeric Code attribute of the
    WSManFault detail; message: the human text Windows puts in the fault.
    detail_extra: the w:FaultDetail URI Windows adds for some faults (it precedes f:WSManFault);
    provider / provider_path: the WinRM plugin that raised the fault, which Windows names in an
    f:ProviderFault element inside f:Message (e.g. "Shell cmd plugin",
    "%systemroot%\\system32\\winrscmd.dll"); reason: the s:Reason text when it is not `message`.
    """

    def __init__(
        self,
        code: str,
        subcode: str,
        wsman_code: int,
        message: str,
        *,
        http_status: int = 500,
        detail_extra: str | None = None,
        provider: str | None = None,
        provider_path: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.subcode = subcode
        self.wsman_code = wsman_code
        self.message = message
        self.http_status = http_status
        self.detail_extra = detail_extra
        self.provider = provider
        self.provider_path = provider_path
        # s:Reason's text where Windows puts a generic one there and `message` in f:Message only.
        self.reason = reason if reason is not None else message


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request runs as, after authentication (and after become, for executions)."""

    username: str  # the account name as Windows shows it, e.g. "ansible" or "SYSTEM"
    domain: str  # computer name for local accounts, "WINOPS" for domain ones, "NT AUTHORITY"
    auth_method: str  # "Basic", "Negotiate", "NTLM", "Kerberos", "CredSSP", "ClientCertificate"
    is_admin: bool
    delegated_credential: bool = False  # CredSSP, or Kerberos with a forwarded ticket
    # Whether the logon token carries Administrators (UAC's remote restrictions, decided once
    # at logon); None for principals no network logon made, decided from the policy when asked.
    elevated: bool | None = None

    @property
    def qualified_name(self) -> str:
        """DOMAIN\\user, as whoami prints it (lower-case, like whoami)."""
        return f"{self.domain}\\{self.username}".lower()


@dataclasses.dataclass
class WSManRequest:
    """One parsed WS-Management request."""

    action: str  # the wsa:Action URI
    resource_uri: str  # wsman:ResourceURI
    message_id: str  # wsa:MessageID (echoed as wsa:RelatesTo)
    selectors: dict[str, str]  # wsman:SelectorSet, e.g. {"ShellId": "..."}
    options: dict[str, str]  # wsman:OptionSet, e.g. {"WINRS_CONSOLEMODE_STDIN": "TRUE"}
    operation_timeout: float | None  # wsman:OperationTimeout in seconds
    max_envelope_size: int | None  # wsman:MaxEnvelopeSize the client declared, in bytes
    locale: str | None
    body: ET.Element  # the s:Body element
    header: ET.Element  # the s:Header element
    raw_size: int  # bytes of the (decrypted) envelope, for MaxEnvelopeSize checks


@dataclasses.dataclass
class WSManResponse:
    """What a handler returns: the response action and the children of s:Body."""

    action: str
    body: list[ET.Element]
    extra_headers: list[ET.Element] = dataclasses.field(default_factory=list)


class ShellHandler(t.Protocol):
    """Handles WS-Transfer Create/Delete and WinRS Command/Send/Receive/Signal for one shell
    resource URI. May block (Receive waits up to the request's OperationTimeout)."""

    def handle(self, request: WSManRequest, principal: Principal) -> WSManResponse: ...


@dataclasses.dataclass(frozen=True)
class Account:
    """A local or domain account of the modelled host."""

    name: str
    password: str
    domain: str
    is_admin: bool
    enabled: bool = True
    # A restriction LogonUser reports after the password matched ("" for none), by its Win32
    # error name: ERROR_ACCOUNT_RESTRICTION, ERROR_INVALID_LOGON_HOURS, ERROR_INVALID_WORKSTATION
    # or ERROR_LOGON_TYPE_NOT_GRANTED ("Deny access to this computer from the network"). The
    # account's network logons (every WinRM authentication) are refused.
    logon_restriction: str = ""
    # The relative ID when it is fixed: BUILTIN_ADMINISTRATOR_RID for the built-in
    # Administrator, whatever it is named (it can be renamed); None for an account that gets
    # the next free one (1000 on).
    rid: int | None = None


# The built-in Administrator's RID (S-1-5-21-<machine>-500): Windows knows the account by it,
# not by its name ("Accounts: Rename administrator account").
BUILTIN_ADMINISTRATOR_RID = 500


class HostView(t.Protocol):
    """What shells and the execution engine may see of and do to a host."""

    @property
    def computer_name(self) -> str: ...  # NetBIOS name, upper-case, e.g. "WIN1"

    @property
    def fqdn(self) -> str: ...  # e.g. "win1.winops.test"

    @property
    def fs_root(self) -> Path: ...  # directory that models C:\ (the sandbox root)

    def find_account(self, name: str) -> Account | None:
        """An account by "user", "DOMAIN\\user" or "user@realm" (case-insensitive)."""
        ...

    def account_sid(self, principal: Principal) -> str:
        """The SID of the principal's account, the one the host's access checks (RootSDDL,
        session configurations) use."""
        ...

    def pay(self, operation: str) -> None:
        """Sleep what `operation` (winhost.latency) costs under the host's latency profile, in
        the calling thread, and count it."""
        ...

    def winrm_setting(self, path: str) -> str:
        """A WinRM configuration value by path, e.g. "Service/MaxConcurrentOperationsPerUser",
        "Shell/IdleTimeout" (milliseconds), "MaxEnvelopeSizekb"."""
        ...

    def facts(self) -> dict[str, t.Any]:
        """Facts about the modelled machine (OS name/version, addresses, time zone...)."""
        ...

    def configure(self) -> t.ContextManager[t.Any]:
        """The persisted model (a `winhost.state.HostState`) to read and change, under the
        host's lock. On normal exit the state is saved and its live effects applied
        (listeners reconciled); if the block raises, the changes are rolled back."""
        ...

    @property
    def last_boot_time(self) -> datetime.datetime: ...  # UTC, when the host last started

    def schedule_restart(self, delay: float) -> bool:
        """Restart the host `delay` seconds from now (as `shutdown.exe /r /t <delay>`): it goes
        down, refuses connections for a few seconds and boots again. False, and nothing
        scheduled, when a shutdown is already pending."""
        ...

    def abort_restart(self) -> bool:
        """Cancel a pending restart (`shutdown.exe /a`); False when none is pending."""
        ...


@dataclasses.dataclass
class PipelineCommand:
    """One command of a PSRP pipeline: a script block or a cmdlet with parameters."""

    text: str  # script text or command name
    is_script: bool
    parameters: list[tuple[str | None, t.Any]]  # (name or None for positional, value)


@dataclasses.dataclass(frozen=True)
class ErrorRecordData:
    """A PowerShell ErrorRecord as a PSRP shell serialises it (MS-PSRP 2.2.3.15)."""

    message: str
    category: str  # ErrorCategory member name, e.g. "ObjectNotFound"
    fully_qualified_error_id: str
    reason: str  # CategoryInfo.Reason: the exception's short type name
    exception_types: tuple[str, ...]  # the exception's .NET type and its bases, most derived first
    target: str = ""  # CategoryInfo.TargetName (and the record's TargetObject)


@dataclasses.dataclass
class OutputBatch:
    """Output produced since the last read.

    stdout/stderr are bytes for WinRS command lines; for PSRP pipelines `objects` holds output
    objects (str, int, dict...) and `errors` error-record messages.
    """

    stdout: bytes = b""
    stderr: bytes = b""
    objects: list[t.Any] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)
    finished: bool = False
    exit_code: int | None = None  # set when finished (WinRS); PSRP uses had_errors
    had_errors: bool = False
    # PSRP: the same errors as `errors` with their category and id, in the same order.
    error_records: list[ErrorRecordData] = dataclasses.field(default_factory=list)
    # PSRP: the error that ended the pipeline (state Failed with it as ExceptionAsErrorRecord).
    terminating_error: ErrorRecordData | None = None


class Process(t.Protocol):
    """A running command (WinRS) or pipeline (PSRP)."""

    def send_input(self, data: bytes | list[t.Any], end: bool) -> None: ...

    def read_output(self, timeout: float) -> OutputBatch:
        """Wait up to `timeout` seconds for output or completion; return what there is."""
        ...

    def terminate(self) -> None: ...


class ExecutionEngine(t.Protocol):
    """Decodes and runs what a client asks a shell to run."""

    def start_command_line(
        self, host: HostView, principal: Principal, command: str, arguments: list[str]
    ) -> Process: ...

    def start_pipeline(
        self, host: HostView, principal: Principal, commands: list[PipelineCommand]
    ) -> Process: ...
