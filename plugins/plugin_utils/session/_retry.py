"""Retrying WinRM operations that are safe to repeat, with exponential backoff.

Internal use only: this module is not part of the collection's public API.

Use ``call_with_retry`` only for idempotent steps: creating or deleting a shell or runspace,
receiving output, Identify, and a whole fetch after its output was lost (it only reads).
Never wrap the start of a command (WinRS Command, PSRP pipeline invoke): if the request
reached the host before the connection broke, a retry would run the command twice. A Send is
repeated only when ``refused_as_busy``.

Decided once for both plugins (docs/troubleshooting.md, "What is retried"): a read timeout is
never transient (a Receive's lost answer may have held output that Windows hands out once),
nor is a name the resolver could not resolve; the psrp session keeps pypsrp from repeating
either on its own.
"""

from __future__ import annotations

import errno
import socket
import ssl
import time
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    TRANSIENT_HTTP_STATUSES,
    class_names,
    exception_chain,
    http_status,
    is_unanswered,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import Record
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import RetryPolicy

T = t.TypeVar("T")

_TRANSIENT_ERRNOS = frozenset(
    (errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT)
)


def call_with_retry(  # noqa: PLR0917 - the signature both plugins code against
    operation: str,
    func: t.Callable[[], T],
    policy: RetryPolicy,
    is_transient: t.Callable[[BaseException], bool],
    log: t.Callable[[str], None] | None = None,
    sleep: t.Callable[[float], None] = time.sleep,
) -> T:
    """Return ``func()``, retrying it while it raises errors that ``is_transient`` accepts.

    A non-transient error propagates at once. When the retries are used up, the last error
    is re-raised unchanged (with its own ``__cause__``). ``log`` receives one line per retry.
    """
    retry_number = 0
    while True:
        try:
            return func()
        except Exception as err:
            if retry_number >= policy.retries or not is_transient(err):
                raise
            retry_number += 1
            delay = policy.delay(retry_number)
            if log is not None:
                log(
                    f"{operation} failed with {type(err).__name__}: {err}; retry "
                    f"{retry_number} of {policy.retries} in {delay:g}s"
                )
            sleep(delay)


def _is_name_or_tls_error(exc: BaseException) -> bool:
    if isinstance(exc, (socket.gaierror, ssl.SSLError)):
        return True
    # requests and urllib3 have their own SSLError/NameResolutionError classes; match by name
    # so that this module does not need either library.
    return bool({"SSLError", "NameResolutionError"} & class_names(exc))


def _is_connect_failure(exc: BaseException) -> bool:
    """The TCP connection was never made: refused, or the connect timed out."""
    return isinstance(exc, ConnectionRefusedError) or bool(
        {"ConnectTimeoutError", "NewConnectionError", "ConnectTimeout"} & class_names(exc)
    )


def _is_operation_timeout(exc: BaseException) -> bool:
    return (
        "WinRMOperationTimeoutError" in class_names(exc)
        or fault_code(exc) == _wsman_faults.OPERATION_TIMEOUT
    )


class TransientRules(Record):
    """What a plugin's library already does about failures, which decides what we retry."""

    # pypsrp hands reconnection_retries to urllib3, which retries a refused or timed-out
    # connect itself; retrying it again would multiply the wait for a host that is down.
    library_retries_connect: bool
    # The winrm session notices when a cut Receive answer lost output (OutputLostError), so a
    # response cut off by a dropped connection may be retried; the psrp session cannot tell.
    retries_cut_answers: bool


WINRM_RULES = TransientRules(library_retries_connect=False, retries_cut_answers=True)
PSRP_RULES = TransientRules(library_retries_connect=True, retries_cut_answers=False)


def refused_as_busy(exc: BaseException) -> bool:
    """True when the host refused a Send with ERROR_BUSY (170), the one Send both plugins repeat.

    WinRM answers a Send with ERROR_BUSY while an earlier Send of the command is still being
    processed; the refused Send's data was not taken, so sending it again cannot duplicate
    input (ansible.builtin.winrm repeats it too). Any other Send failure is never repeated.
    """
    return any(fault_code(error) == _wsman_faults.BUSY for error in exception_chain(exc))


def is_transient(exc: BaseException, rules: TransientRules) -> bool:
    """True when repeating a safe operation may succeed where this attempt failed.

    Transient: a refused, reset or aborted connection; HTTP 502/503/504 (a proxy, a load
    balancer or the WinRM service restarting); a WSMan OperationTimeout; and, per ``rules``,
    a request that got no whole answer (core._chain.is_unanswered). Never transient: name
    resolution and TLS failures (retrying cannot fix a wrong name or an untrusted
    certificate, it only delays the real message), and per ``rules`` a connect the library
    has already retried.
    """
    chain = list(exception_chain(exc))
    if any(_is_name_or_tls_error(error) for error in chain):
        return False
    if rules.library_retries_connect and any(_is_connect_failure(error) for error in chain):
        return False
    for error in chain:
        if _is_operation_timeout(error):
            return True
        if rules.retries_cut_answers and is_unanswered(error):
            return True
        if http_status(error) in TRANSIENT_HTTP_STATUSES:
            return True
        if isinstance(
            error, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)
        ):
            return True
        if isinstance(error, OSError) and error.errno in _TRANSIENT_ERRNOS:
            return True
    return False
