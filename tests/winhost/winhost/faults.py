"""Fault injection for tests: a registry of faults per host, queried by the layers they hit.

Kinds (set with `python -m winhost fault HOST KIND [options]`, the fixture's `.fault()`, or
`inject()` in-process):

  drop      count=1 action=ANY  the HTTP layer runs the request, then sends the status line,
                                headers and half the body and closes the connection
  close     count=1 action=ANY  the request is answered in full, then the connection is closed
                                (as HTTP.sys closes an idle connection); the client's next
                                request goes out on a new connection
  delay     seconds=N count=1 action=ANY  the HTTP layer sleeps N s before handling a request
  http500   count=1 action=ANY  the request is not run; HTTP 500 with a w:InternalError fault
  receive_timeout seconds=N     for N s every Receive waits (its OperationTimeout, at most
                                the rest of the N s) and answers the w:TimedOut fault
  busy      count=1             Send answers the ERROR_BUSY fault (request not run)
  quota     count=1             shell Create answers the w:QuotaLimit fault
  reboot    seconds=N           listeners close (connections are cut, new ones refused) and
                                reopen after N s, with TLS settings re-read as after a reboot
  clear                         remove every fault of the host

`action` matches the last segment of the wsa:Action URI case-insensitively ("Command",
"Receive", "Create", "Get"...); ANY (the default) matches every request. Counted faults also
take `after=N`: the first N matching requests pass untouched (to hit, say, a Receive in the
middle of a transfer rather than the runspace pool open's).

Query API for the shells layer (host = HostView.computer_name or the host name; both work):

  faults.receive_timeout_remaining(host) -> float  seconds a Receive waits, then w:TimedOut
  faults.should_busy_on_send(host) -> bool      Send must fault with ERROR_BUSY (consumes one)
  faults.shell_quota_exceeded(host) -> bool     Create must fault with w:QuotaLimit (consumes one)

The faults the shells answer are built by `receive_timeout_fault()`, `busy_fault()` and
`quota_fault(limit)` (also for the real MaxShellsPerUser quota) so their wording matches Windows
in one place.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import typing as t

from winhost import api

KINDS = ("drop", "close", "delay", "http500", "receive_timeout", "busy", "quota", "reboot")
_COUNTED = ("drop", "close", "delay", "http500", "busy", "quota")
_TIMED = ("receive_timeout", "reboot")


class FaultError(ValueError):
    """A fault request with an unknown kind or a bad option."""


@dataclasses.dataclass
class Fault:
    kind: str
    count: int = 1
    seconds: float = 0.0
    action: str = "ANY"
    after: int = 0  # matching requests that pass before the fault hits (counted faults)
    until: float = 0.0  # monotonic deadline for timed faults

    def to_json(self) -> dict[str, t.Any]:
        data = dataclasses.asdict(self)
        data["remaining_seconds"] = max(0.0, self.until - time.monotonic()) if self.until else 0
        del data["until"]
        return data


_LOCK = threading.Lock()
_FAULTS: dict[str, list[Fault]] = {}
_reboot_handlers: dict[str, t.Callable[[float], None]] = {}


def _key(host: str) -> str:
    return host.strip().lower()


def _number(kind: str, name: str, value: t.Any, minimum: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise FaultError(f"fault {kind}: option {name}={value!r} is not a number") from err
    if number < minimum:
        raise FaultError(f"fault {kind}: option {name}={value!r} must be >= {minimum}")
    return number


def parse(kind: str, options: dict[str, t.Any]) -> Fault:
    """Validate a fault request (options as given on the CLI or to the fixture)."""
    if kind not in KINDS:
        raise FaultError(f"unknown fault kind {kind!r}; allowed: {', '.join(KINDS)}, clear")
    allowed = {"count", "action", "after"} if kind in _COUNTED else set()
    if kind in ("delay", "receive_timeout", "reboot"):
        allowed.add("seconds")
    unknown = set(options) - allowed
    if unknown:
        raise FaultError(
            f"fault {kind}: unknown option(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed)) or 'none'}"
        )
    fault = Fault(kind=kind)
    if "count" in options:
        fault.count = int(_number(kind, "count", options["count"], 1))
    if "action" in options:
        fault.action = str(options["action"])
    if "after" in options:
        fault.after = int(_number(kind, "after", options["after"], 0))
    if kind in ("delay", "receive_timeout", "reboot"):
        if "seconds" not in options:
            raise FaultError(f"fault {kind}: option seconds=N is required")
        fault.seconds = _number(kind, "seconds", options["seconds"], 0)
    return fault


def register_reboot_handler(host: str, handler: t.Callable[[float], None]) -> None:
    """The host registers how to reboot itself (close listeners, reopen after N s)."""
    _reboot_handlers[_key(host)] = handler


def inject(host: str, kind: str, **options: t.Any) -> Fault:
    """Add a fault for `host` (or run it, for reboot); `kind="clear"` removes all."""
    if kind == "clear":
        clear(host)
        return Fault(kind="clear", count=0)
    fault = parse(kind, options)
    if kind == "reboot":
        handler = _reboot_handlers.get(_key(host))
        if handler is None:
            raise FaultError(f"fault reboot: host {host!r} is not served by this process")
        fault.until = time.monotonic() + fault.seconds
        handler(fault.seconds)
        return fault
    if kind in _TIMED:
        fault.until = time.monotonic() + fault.seconds
    with _LOCK:
        _FAULTS.setdefault(_key(host), []).append(fault)
    return fault


def clear(host: str) -> None:
    with _LOCK:
        _FAULTS.pop(_key(host), None)


def active(host: str) -> list[Fault]:
    now = time.monotonic()
    with _LOCK:
        faults = _FAULTS.get(_key(host), [])
        faults[:] = [f for f in faults if (f.until > now if f.kind in _TIMED else f.count > 0)]
        return list(faults)


def _matches(fault: Fault, action: str | None) -> bool:
    if fault.action.upper() == "ANY":
        return True
    return action is not None and action.rsplit("/", 1)[-1].lower() == fault.action.lower()


def take(host: str, kind: str, action: str | None = None) -> Fault | None:
    """Consume one occurrence of a counted fault matching `action`, if one is armed."""
    with _LOCK:
        for fault in _FAULTS.get(_key(host), []):
            if fault.kind == kind and fault.count > 0 and _matches(fault, action):
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                return fault
    return None


# --- the query API for the shells layer ------------------------------------------------------
def receive_timeout_remaining(host: str) -> float:
    """Seconds the host's `receive_timeout` fault still holds (0 when none is active)."""
    now = time.monotonic()
    with _LOCK:
        return max(
            (
                f.until - now
                for f in _FAULTS.get(_key(host), [])
                if f.kind == "receive_timeout" and f.until > now
            ),
            default=0.0,
        )


def should_busy_on_send(host: str) -> bool:
    return take(host, "busy") is not None


def shell_quota_exceeded(host: str) -> bool:
    return take(host, "quota") is not None


def receive_timeout_fault() -> api.WSManFault:
    return api.WSManFault(
        "s:Receiver",
        "w:TimedOut",
        api.WSMAN_FAULT_OPERATION_TIMEOUT,
        "The WS-Management service cannot complete the operation within the time specified "
        "in OperationTimeout.  ",
    )


def busy_fault() -> api.WSManFault:
    return api.WSManFault(
        "s:Receiver",
        "w:InternalError",
        api.WSMAN_FAULT_BUSY,
        "The requested resource is in use. ",
    )


def quota_fault(limit: int) -> api.WSManFault:
    """Windows' answer to a shell Create beyond Winrs/MaxShellsPerUser (`limit`), injected or
    real."""
    return api.WSManFault(
        "s:Receiver",
        "w:QuotaLimit",
        api.WSMAN_FAULT_QUOTA_LIMIT,
        "The WS-Management service cannot process the request. This user is allowed a maximum "
        f"number of {limit} concurrent shells, which has been exceeded. Close existing shells or "
        "raise the quota for this user. ",
    )


def internal_error_fault() -> api.WSManFault:
    return api.WSManFault(
        "s:Receiver",
        "w:InternalError",
        2150858770,  # the SDK names it ERROR_WSMAN_DESTINATION_UNREACHABLE; any code would do here
        "The WS-Management service cannot process the request. An internal error occurred "
        "(injected by winhost's http500 fault). ",
    )
