"""A host clock that differs from the controller's, for Kerberos clock-skew set-ups.

Windows hosts whose clock drifted from the domain refuse Kerberos with KRB_AP_ERR_SKEW, and
their HTTP Date header shows the drift. To model that truthfully, the whole winhost server
process runs on a shifted clock: libfaketime (Debian package libfaketime, listed in
tests/system-packages.txt) is preloaded with a relative offset, so the HTTP layer, the
certificates' notion of "now" and MIT Kerberos' acceptor all see the host's time. One server
process has one clock, so every host of a state directory shares the offset. The monotonic
clock is left alone: timeouts and idle expiry keep working (with it shifted too, libfaketime
0.9.10 leaves Python's timed condition waits hanging). Left alone, though, it makes Python's
time.sleep (clock_nanosleep on CLOCK_MONOTONIC, absolute) fail with EINVAL, so a process on the
shifted clock sleeps through sleep_on_the_shifted_clock() instead.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

LIBFAKETIME_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/faketime/libfaketime.so.1"),
)


class ClockError(RuntimeError):
    """A clock offset was asked for but cannot be served."""


def libfaketime() -> Path:
    for candidate in LIBFAKETIME_CANDIDATES:
        if candidate.exists():
            return candidate
    raise ClockError(
        "a host clock offset needs libfaketime (apt-get install libfaketime; `make deps` "
        f"installs it); looked for {', '.join(str(c) for c in LIBFAKETIME_CANDIDATES)}"
    )


def _faketime_value(offset_seconds: float) -> str:
    """FAKETIME's relative form, "+660" / "-660": an offset from the real clock, which keeps
    running."""
    return f"{round(offset_seconds):+d}"


def require_process_offset(offsets: list[float]) -> None:
    """Refuse to serve hosts whose stored clock offset this process' clock does not have."""
    wanted = {_faketime_value(offset) for offset in offsets}
    running = os.environ.get("FAKETIME", "+0") if os.environ.get("LD_PRELOAD") else "+0"
    if wanted - {running}:
        raise ClockError(
            f"the hosts' clock offsets {sorted(wanted)} s do not match this server's clock "
            f"(FAKETIME={running}); start them with `python -m winhost start --clock-offset S`, "
            "one offset per state directory"
        )


def server_environment(offset_seconds: float) -> dict[str, str]:
    """Environment entries that shift the server process' wall clock by `offset_seconds`."""
    if not offset_seconds:
        return {}
    return {
        "LD_PRELOAD": str(libfaketime()),
        "FAKETIME": _faketime_value(offset_seconds),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


def sleep_on_the_shifted_clock() -> None:
    """In a process that libfaketime shifts (see the module's docstring), make time.sleep wait
    on a timed Event, which works there, instead of clock_nanosleep, which fails; elsewhere do
    nothing. Called by `winhost serve`, and by controllers that tests run on the host's clock."""
    if not (os.environ.get("FAKETIME") and os.environ.get("LD_PRELOAD")):
        return

    def sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        threading.Event().wait(seconds)

    time.sleep = sleep
