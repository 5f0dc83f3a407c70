"""How long each stage of a task can take, from the connection options: the upper bounds that
docs/troubleshooting.md ("How long each stage can take") documents, as one pure function.

The figures describe the code as it is (plugins/plugin_utils/session/_retry.py,
_winrm_session.py, _psrp_session.py, kept/_holder.py) and the libraries under it (pywinrm 0.5
winrm/transport.py, pypsrp 0.9 pypsrp/wsman.py and powershell.py, urllib3 2 util/retry.py),
read on these points:

- pywinrm sends every request with requests' ``timeout=read_timeout_sec``: the connect and
  each read may take that long. pypsrp sends with ``(connection_timeout, read_timeout)``, or
  with ``operation timeout + 2`` for both when it sets a request's own OperationTimeout (our
  Receives of pipeline output do), and mounts urllib3's ``Retry(total=R, connect=R, status=R,
  read=0, backoff_factor=B, status_forcelist=(425, 429, 503))``: every HTTP exchange of the
  psrp plugin may be repeated R times after a failed connect or one of those statuses,
  sleeping 0, 2B, 4B... seconds (urllib3 2 sleeps nothing before its first retry; each sleep
  at most 120 s).
- A request on a new connection first authenticates: ``AUTH_ROUND_TRIPS`` exchanges before
  the message itself (an anonymous request answered 401, then the handshake's legs).
- ``call_with_retry`` repeats a safe step (shell or pool open and close, Receive, winrm's
  terminate Signal, a Send refused as busy) R times after a transient failure, sleeping
  B, 2B, 4B... seconds, each sleep at most 30 s (RetryPolicy.delay).
- command_timeout is checked before each Receive (whose OperationTimeout is cut to the time
  left) and between input Sends; the request under way when it passes still runs to its own
  limit, and the stop that follows takes its own time. Without command_timeout nothing limits
  a command that the host keeps answering (each Receive within the operation timeout is the
  command still running), so the receive and transfer stages have no bound then.
- A kept session (docs/sessions.md) is closed by its holder after the run; the holder gives up
  after kept._holder.END_LIMIT_SECONDS (15 s) and leaves the shell or pool to the host.

Each figure is a worst case in which every exchange uses its full timeout; a host that is down
or silent meets the first timeout and fails far sooner. Nothing here bounds a name lookup (the
resolver's own timeouts) or a host that answers a byte at a time (requests' read timeout applies
to each read, not to the whole answer).
"""

from __future__ import annotations

import dataclasses
import math

# kept._holder.END_LIMIT_SECONDS: how long a holder may spend ending its session after the run.
KEPT_SESSION_END_LIMIT = 15.0
# RetryPolicy.max_backoff and urllib3's Retry.DEFAULT_BACKOFF_MAX.
OUR_MAX_BACKOFF = 30.0
URLLIB3_MAX_BACKOFF = 120.0
# Exchanges before the message on a new connection: the anonymous request answered 401 (none for
# certificate authentication, which TLS carries), then the legs of the handshake (NTLM's
# NEGOTIATE/CHALLENGE and AUTHENTICATE; CredSSP's TLS handshake, NTLM and key legs).
AUTH_ROUND_TRIPS = {
    "certificate": 0,
    "basic": 1,
    "kerberos": 2,
    "ntlm": 3,
    "negotiate": 3,
    "credssp": 7,
}
STAGES = ("connect", "auth", "open", "command", "receive", "transfer", "stop", "close")


@dataclasses.dataclass(frozen=True)
class BoundOptions:
    """The options the bounds depend on, in seconds, with each plugin's defaults."""

    family: str  # "winrm" or "psrp"
    operation_timeout: float = 20.0
    read_timeout: float = 30.0
    connection_timeout: float = 30.0  # psrp only: pywinrm connects within read_timeout
    retries: int = 3
    backoff: float = 1.0
    command_timeout: float = 0.0  # 0: no limit
    auth: str = "ntlm"
    # winrm: the transports ansible_winrm_transport expands to, each tried in turn on open
    # (negotiate is kerberos then ntlm where pykerberos is installed).
    transports: int = 1

    def __post_init__(self) -> None:
        if self.family not in ("winrm", "psrp"):
            raise ValueError(f"family must be winrm or psrp, not {self.family!r}")
        if self.auth not in AUTH_ROUND_TRIPS:
            raise ValueError(
                f"auth must be one of {', '.join(AUTH_ROUND_TRIPS)}, not {self.auth!r}"
            )


def our_backoff(options: BoundOptions) -> float:
    """Seconds call_with_retry sleeps over all its retries: B, 2B, 4B..., each at most 30 s."""
    return sum(
        min(options.backoff * 2.0 ** (number - 1), OUR_MAX_BACKOFF)
        for number in range(1, options.retries + 1)
    )


def urllib3_backoff(options: BoundOptions) -> float:
    """Seconds pypsrp's urllib3 Retry sleeps over its retries of one exchange: 0, 2B, 4B..."""
    if options.family != "psrp":
        return 0.0
    return sum(
        min(options.backoff * 2.0 ** (number - 1), URLLIB3_MAX_BACKOFF)
        for number in range(2, options.retries + 1)
    )


def exchange(options: BoundOptions, operation_timeout: float | None = None) -> float:
    """One HTTP exchange: connect and read, with urllib3's repeats for psrp. With
    ``operation_timeout`` the psrp exchange is a Receive whose OperationTimeout pypsrp set, and
    whose connect and read then each wait that plus 2 s."""
    if options.family == "winrm":
        return 2 * options.read_timeout
    if operation_timeout is None:
        once = options.connection_timeout + options.read_timeout
    else:
        once = 2 * (operation_timeout + 2)
    return (options.retries + 1) * once + urllib3_backoff(options)


def request(options: BoundOptions, operation_timeout: float | None = None) -> float:
    """One WS-Management request on a new connection, authentication included."""
    return (AUTH_ROUND_TRIPS[options.auth] + 1) * exchange(options, operation_timeout)


def retried(options: BoundOptions, one_attempt: float) -> float:
    """A safe step repeated by call_with_retry: every attempt plus every sleep."""
    return (options.retries + 1) * one_attempt + our_backoff(options)


def stage_bounds(options: BoundOptions) -> dict[str, float]:
    """Upper bound in seconds of each stage (STAGES); math.inf where the options set none.

    connect, auth: parts of every request below (shown apart because the docs name them).
    open: the WinRS shell Create, or the runspace pool's Create and the Receives of its open.
    command: starting one command (never repeated), including a replacement shell or pool when
      the host refused the start because it no longer had the old one or hit its quota.
    receive: a command's output until it ends (command_timeout's doing).
    transfer: one put or fetch script with its input Sends (only a Send refused as busy is
      repeated) and output; command_timeout covers it as one command.
    stop: after a failure or command_timeout, the terminate (winrm) or stop (psrp) signal.
    close: deleting the shell or closing the pool (a kept session: at most 15 s after the run).
    """
    q = request(options)
    retries = options.retries
    if options.family == "winrm":
        connect = options.read_timeout
        receive_request = q
        open_ = options.transports * retried(options, q)
        # Command, refused: delete the old shell, create another, Command again.
        command = q + retried(options, q) + retried(options, q) + q
        stop = retried(options, q) + q  # then one more try on a fresh connection
        close = retried(options, q)
    else:
        connect = (retries + 1) * options.connection_timeout + urllib3_backoff(options)
        receive_request = request(options, options.operation_timeout)
        # pool.open(): Create, then Receives that wait out OperationTimeout answers R + 1 times.
        open_ = retried(options, q + (retries + 1) * q)
        # Create of the pipeline; refused because the pool is gone: a new pool, Create again.
        command = q + open_ + q
        stop = q  # pypsrp's stop() sends one Signal, not repeated
        close = q + retried(options, q)  # release the last pipeline, then Delete
    auth = AUTH_ROUND_TRIPS[options.auth] * exchange(options)
    if options.command_timeout:
        # The Receive (or, in a transfer, the Send) under way when the time runs out still
        # runs to its own limit.
        receive = options.command_timeout + retried(options, receive_request)
        last_step = max(retried(options, receive_request), retried(options, q))
        transfer = command + options.command_timeout + last_step
    else:
        receive = transfer = math.inf
    return {
        "connect": connect,
        "auth": auth,
        "open": open_,
        "command": command,
        "receive": receive,
        "transfer": transfer,
        "stop": stop,
        "close": close,
    }


def task_bound(options: BoundOptions, commands: int, transfers: int = 0) -> float:
    """Upper bound of one task that opens the session, runs ``commands`` commands and
    ``transfers`` puts or fetches (each counted once, not also as a command), each stopped
    after a failure. The close of a kept session happens after the run, so it is not counted."""
    bounds = stage_bounds(options)
    per_command = bounds["command"] + bounds["receive"] + bounds["stop"]
    per_transfer = bounds["transfer"] + bounds["stop"]
    return bounds["open"] + commands * per_command + transfers * per_transfer


def kept_close_bound(options: BoundOptions) -> float:
    """How long after the run a kept session's shell or pool may still exist on the host."""
    return min(stage_bounds(options)["close"], KEPT_SESSION_END_LIMIT)
