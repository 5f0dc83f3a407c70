"""Where the shells consult winhost's fault injection (winhost.faults, owned by the core layer):
one small function per point a fault can hit, so the shells read as Windows would behave."""

from __future__ import annotations

import time

from winhost import api, faults
from winhost.shells import common


def receive_fault(host: api.HostView, operation_timeout: float) -> api.WSManFault | None:
    """The w:TimedOut fault while a `receive_timeout` fault is active for the host.

    As on Windows, the Receive first waits its OperationTimeout with nothing to say; the wait
    ends early when the fault's window does (the answer is still TimedOut).
    """
    remaining = faults.receive_timeout_remaining(host.computer_name)
    if remaining <= 0:
        return None
    time.sleep(min(operation_timeout, remaining))
    return faults.receive_timeout_fault()


def send_fault(host: api.HostView) -> api.WSManFault | None:
    """ERROR_BUSY for a Send while a `busy` fault is armed (consumes one)."""
    if faults.should_busy_on_send(host.computer_name):
        return faults.busy_fault()
    return None


def create_fault(host: api.HostView) -> api.WSManFault | None:
    """The shell quota fault for a Create while a `quota` fault is armed (consumes one)."""
    if faults.shell_quota_exceeded(host.computer_name):
        return faults.quota_fault(common.DEFAULT_MAX_SHELLS_PER_USER)
    return None


def operation_timeout_fault() -> api.WSManFault:
    """The w:TimedOut fault a Receive answers when nothing happened within OperationTimeout
    (worded once, in winhost.faults)."""
    return faults.receive_timeout_fault()
