"""The WS-Management fault codes the collection acts on, read from either library's error.

Internal use only: this module is not part of the collection's public API.

Codes as Windows sends them in the Code attribute of a WSManFault: the ERROR_WSMAN_* numbers
of the Windows SDK (wsmerror.h; e.g. ERROR_WSMAN_OPERATION_TIMEDOUT = 2150858793, listed in
https://docs.rs/windows-sys/latest/windows_sys/Win32/System/RemoteManagement/), and ERROR_BUSY.
The values were already in use in the sessions and the diagnosis; this module only names them.
"""

from __future__ import annotations

# Receive waited OperationTimeout without output (ERROR_WSMAN_OPERATION_TIMEDOUT, 0x80338029).
OPERATION_TIMEOUT = 2150858793
# The shell id is unknown to the host (ERROR_WSMAN_SHELL_NOT_FOUND, 0x8033805B).
SHELL_NOT_FOUND = 2150858843
# A Send was refused because the previous one is still processed (ERROR_BUSY).
BUSY = 170
# The user has MaxShellsPerUser shells open (ERROR_WSMAN_QUOTA_MAX_SHELLS, 0x803381A5).
QUOTA_MAX_SHELLS = 2150859173
# The user's operations are at MaxConcurrentOperationsPerUser: the shell has run too many
# commands (ERROR_WSMAN_QUOTA_MAX_OPERATIONS, 0x803381A6).
QUOTA_MAX_OPERATIONS = 2150859174
# The request's XML does not fit the schema (ERROR_WSMAN_SCHEMA_VALIDATION_ERROR, 0x80338041).
SCHEMA_VALIDATION = 2150858817
# A request larger than the host's MaxEnvelopeSizekb, answered with HTTP 413
# (ERROR_WSMAN_MAX_ENVELOPE_SIZE_EXCEEDED, 0x80338048).
MAX_ENVELOPE_SIZE_EXCEEDED = 2150858824


def refused_as_too_large(error: BaseException) -> bool:
    """The host refused a request for its size (HTTP 413): it took nothing from it."""
    if fault_code(error) == MAX_ENVELOPE_SIZE_EXCEEDED:
        return True
    # pywinrm's WinRMTransportError when the 413 came without a readable fault.
    return getattr(error, "code", None) == 413 and "Transport" in type(error).__name__


def over_operations_quota(error: BaseException) -> bool:
    """The host refused a request for the user's MaxConcurrentOperationsPerUser. Windows hosts
    have been seen to send the code as the WSManFault's Code (WinRb and Vagrant users quote
    ``<f:WSManFault Code='2150859174'``) and in an MSFT_WmiError's error_Code, which
    ansible-core's builtin winrm plugin reads (ansible/ansible#83656): either will do."""
    if getattr(error, "wmierror_code", None) == QUOTA_MAX_OPERATIONS:
        return True
    return fault_code(error) == QUOTA_MAX_OPERATIONS


def fault_code(error: BaseException) -> int | None:
    """The WSManFault code of a pywinrm or pypsrp WSManFaultError, None for anything else."""
    if "WSManFaultError" not in {cls.__name__ for cls in type(error).__mro__}:
        return None
    # pywinrm keeps the HTTP status in .code and the WSMan code in .wsman_fault_code.
    code = getattr(error, "wsman_fault_code", None)
    if code is None and not hasattr(error, "wsman_fault_code"):
        code = getattr(error, "code", None)
    return code if isinstance(code, int) else None
