"""A WinRS shell on one Windows host, driven through pywinrm: the session layer of the winrm plugin.

Internal use only: this module is not part of the collection's public API.

``WinRMSession`` knows nothing about Ansible's plugin machinery. It takes validated
``WinRMSettings``, gets a Kerberos ticket when it manages one, opens the shell, runs commands
with stdin, stops them when a time limit or an interruption (Ansible's task ``timeout``) hits,
and deletes the shell. Only operations that are safe to repeat (creating and deleting the shell,
receiving output, signalling a command) are retried; the WinRS Command that starts a process is
sent at most once per call to ``run``.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import time
import typing as t
import uuid

from ansible.errors import AnsibleConnectionFailure, AnsibleError

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    AnswerLost,
    answer_lost,
    exception_chain,
    http_status,
    never_reached_host,
    raise_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import clean_stderr
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import Record
from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    KinitRequest,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._winrm_options import (
    WinRMSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session import _retry
from ansible_collections.winops.remoting.plugins.plugin_utils.session._ahead import worked_ahead
from ansible_collections.winops.remoting.plugins.plugin_utils.session._pooled import (
    connection_lost,
    probe_idle_connections,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._retry import (
    call_with_retry,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._tickets import (
    KerberosLogon,
    acquire_ticket,
    ticket_environment,
    ticket_for_new_logon,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._winrm_protocol import (
    UTF8_CODEPAGE,
    Protocol,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer._transfer import (
    DEFAULT_FETCH_CHUNK_SIZE,
    ScriptResult,
    powershell_command_line,
    put_chunk_size,
    stdin_chunk_size,
)

try:
    from winrm.exceptions import (
        WinRMError,
        WinRMOperationTimeoutError,
        WinRMTransportError,
        WSManFaultError,
    )
except ImportError:
    pass  # reported by _winrm_protocol.HAS_WINRM when a session is opened

PLUGIN_NAME = "winops.remoting.winrm"

# How many module commands a kept session keeps started ahead of the next tasks. With one, a
# task finds a powershell.exe started at the end of the task before, and waits for most of its
# start-up (about 0.19 s on a warm Windows Server): the controller spends about 40 ms between
# two tasks of one host. With two, a task uses one started a whole task earlier (30 pings under
# winhost's cost model: 0.78 of the builtin plugin's time with one, 0.45 with two, 0.33 with
# three). Each costs an idle powershell.exe and its cmd.exe in the shell, so two, not more.
_COMMANDS_AHEAD = 2
# A kept shell is replaced once it has started this many commands, after an answer (the
# holder's settle), never within a command. Windows counts every command of a cmd shell against
# the user's MaxConcurrentOperationsPerUser (1500 by default) until the shell is deleted: neither
# a terminate signal (MS-WSMV 3.1.4.12, note 118) nor the command's end gives it back
# (docs/winhost-behaviours.md). A shell kept for a whole run would otherwise hold the user's
# quota, and other clients of the same user on that host (another run, the builtin plugins)
# would be refused. 100, as for a psrp pool (_psrp_session), is our margin: a new shell costs
# one Delete and one Create in a hundred commands.
COMMANDS_PER_SHELL = 100

Log = t.Callable[[int, str], None]  # (verbosity level, already redacted message)
Warn = t.Callable[[str], None]
T = t.TypeVar("T")

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        CredentialCache,
    )


class CommandTimeoutError(AnsibleError):
    """A command ran longer than command_timeout and was stopped."""


class OutputLostError(AnsibleError, AnswerLost):
    """Part of a command's output was lost with a broken connection."""


class CommandResult(Record):
    """What a finished command left behind. stdout is empty when a sink consumed it."""

    rc: int
    stdout: bytes
    stderr: bytes


def is_transient(exc: BaseException) -> bool:
    """The shared classifier with pywinrm's rules (see session._retry.TransientRules)."""
    return _retry.is_transient(exc, _retry.WINRM_RULES)


def breaks_connection(exc: BaseException) -> bool:
    """True when the HTTP connection is unusable afterwards (a socket-level failure).

    requests' own exceptions are OSErrors, so this covers refused, reset, cut-off and timed
    out requests, but not an HTTP error status or a WSMan fault, after which the connection
    (and its authentication) is fine. requests' HTTPError for such a status is an OSError too,
    and pywinrm leaves it behind every WSMan fault (the fault is parsed out of the
    WinRMTransportError raised while handling it): an error that reports the host's HTTP
    status (core._chain.http_status) came with a whole answer and does not count.
    """
    return any(
        isinstance(item, OSError) and http_status(item) is None for item in exception_chain(exc)
    )


def _undecryptable(exc: BaseException, protocol: Protocol) -> bool:
    """True for an empty HTTP 400 to a message sealed with message encryption: the host could
    not decrypt it (its security context is not the one that sealed it), so it did not run it.
    A WSMan fault comes with a SOAP body; this answer has none."""
    if getattr(protocol.transport, "encryption", None) is None:
        return False
    return any(
        isinstance(item, WinRMTransportError) and item.code == 400 and not item.response_text
        for item in exception_chain(exc)
    )


def _with_last(items: t.Iterable[bytes]) -> t.Iterator[tuple[bytes, bool]]:
    """Pair every item with whether it is the last one; an empty input gives (b"", True)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        yield b"", True
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


class WinRMSession:
    """One authenticated pywinrm Protocol and one open WinRS shell.

    ``acquire`` obtains a Kerberos ticket into a private cache; it is a parameter so that a
    ticket cache shared between sessions can replace it without touching this class.
    """

    def __init__(
        self,
        settings: WinRMSettings,
        log: Log,
        warn: Warn,
        *,
        acquire: t.Callable[[KinitRequest], CredentialCache] | None = None,
        sleep: t.Callable[[float], None] = time.sleep,
        clock: t.Callable[[], float] = time.monotonic,
        host_idle_timeout: int | None = None,
    ) -> None:
        """``host_idle_timeout``: seconds the host is asked to keep an idle shell (its
        rsp:IdleTimeOut; kept._slot), None for the host's own."""
        self.settings = settings
        self._log = log
        self._warn = warn
        self._host_idle_timeout = host_idle_timeout
        self._acquire = acquire or acquire_ticket
        self._sleep = sleep
        self._clock = clock
        self._policy = settings.retry_policy
        self.protocol: Protocol | None = None
        self.transport: str | None = None
        self.shell_id: str | None = None
        self._ccache: CredentialCache | None = None
        self._reconnect = False  # the last request broke its connection
        self._logon = KerberosLogon()  # when a Kerberos logon must be made again
        # A command that ended but is not yet released on the host (see ``settle``).
        self._finished_command: str | None = None
        # The command line ``settle`` starts ahead for the next tasks, and the commands it
        # started, oldest first: (command line, command id). See ``start_ahead``.
        self._line_to_start_ahead: str | None = None
        self._started_ahead: list[tuple[str, str]] = []
        # Commands started in the current shell, towards COMMANDS_PER_SHELL.
        self._commands_in_shell = 0
        # The largest request to send; lowered once if the host refuses one as too large.
        self._send_envelope_size = settings.send_envelope_size
        # Why a Receive answer may have been lost in the current command, if it was.
        self._lost_receive: BaseException | None = None

    @property
    def is_open(self) -> bool:
        return self.shell_id is not None

    # -- errors and retries ---------------------------------------------------------------

    def _failure(self, exc: BaseException, *, in_command: bool = False) -> AnsibleError:
        """The diagnosed failure for ``exc``, without any secret (see diagnosis._failure);
        ``in_command``: it ended a command of the open session."""
        # Imported here, not at the top: the classifier is only needed when something failed, and
        # Ansible compiles a collection's modules afresh in every task's worker process.
        from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
            connection_failure,
        )

        return connection_failure(exc, self.settings, self.transport, in_command=in_command)

    def _request(self, protocol: Protocol, func: t.Callable[[], T]) -> T:
        """Send one request, on a freshly authenticated connection if the last one is gone.

        Every request of the session goes through here (shell create and delete, Command,
        Send, Receive, Signal, and their retries), so none goes out on a new TCP connection
        sealed with the keys of a connection that no longer exists.
        """
        self._reauthenticate_if_disconnected(protocol)
        try:
            return func()
        except BaseException as exc:
            # An interruption (Ansible's task timeout) leaves the request half done, too.
            if not isinstance(exc, Exception) or breaks_connection(exc):
                self._reconnect = True
            if not (isinstance(exc, Exception) and _undecryptable(exc, protocol)):
                raise
            undecryptable = exc
        # The host could not decrypt the message, so it never read it: sending it once more,
        # sealed by a new logon, cannot run anything twice (Command included).
        self._log(
            5, f"WINRM: the host could not decrypt a request ({undecryptable}); logging on again"
        )
        self._reconnect = True
        self._reauthenticate_if_disconnected(protocol)
        return func()

    def _reauthenticate_if_disconnected(self, protocol: Protocol) -> None:
        """Log on again before the next request if our connection broke or the host closed it.

        pywinrm keeps one requests.Session and its message-encryption context for its whole
        life; when the pooled connection is gone, requests silently opens another one and
        pywinrm seals the message with the old connection's keys. Closing pywinrm's session
        makes it authenticate (and set up encryption) afresh on the next request.
        """
        ticket_ends = self._logon.due()
        http = getattr(protocol.transport, "session", None)
        probe_idle_connections(http)
        if self._reconnect or ticket_ends or connection_lost(http):
            if ticket_ends:
                self._log(5, "WINRM: the Kerberos ticket of this logon ends soon; logging on again")
            elif not self._reconnect:
                self._log(5, "WINRM: the host closed the connection; authenticating again")
            protocol.transport.close_session()
            self._reconnect = False
            self._ccache = ticket_for_new_logon(self.settings.kinit, self._ccache, self._acquire)
            self._note_logon(self.transport == "kerberos")

    def _call_safe(
        self,
        operation: str,
        func: t.Callable[[], T],
        protocol: Protocol | None = None,
        is_retryable: t.Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """Run an operation that may be repeated, retrying transient failures with backoff."""
        target = protocol or self.protocol
        if target is None:
            raise RuntimeError("internal error: target is not set")
        return call_with_retry(
            operation,
            lambda: self._request(target, func),
            self._policy,
            is_retryable,
            log=lambda message: self._log(3, message),
            sleep=self._sleep,
        )

    @contextlib.contextmanager
    def _credentials(self) -> t.Iterator[None]:
        """Point GSSAPI at our private ticket cache (if any) for the duration of a request."""
        with ticket_environment(self._ccache):
            yield

    # -- shell lifecycle ------------------------------------------------------------------

    def _note_logon(self, kerberos: bool) -> None:
        """A logon is about to be made: watch its ticket when it is a Kerberos one."""
        unwatched = self._logon.logging_on(self._ccache, self.settings.kinit, kerberos=kerberos)
        if unwatched:
            self._log(5, f"WINRM: {unwatched}")

    def _kinit(self) -> None:
        request = self.settings.kinit
        if request is None or self._ccache is not None:
            return
        self._log(4, f"WINRM KINIT: getting a ticket for {request.principal}")
        self._ccache = self._acquire(request)

    def _new_protocol(self, transport: str) -> Protocol:
        kwargs = self.settings.kwargs_for(transport)
        try:
            protocol = Protocol(**kwargs)
        except (ValueError, TypeError, WinRMError) as err:
            # Raised before any request: pywinrm refused the combination of settings.
            raise AnsibleError(f"{PLUGIN_NAME}: pywinrm rejected the settings: {err}") from err
        # pywinrm keeps a fixed default; ours is what the host accepts (MaxEnvelopeSizekb).
        protocol.max_env_sz = self.settings.max_envelope_size
        return protocol

    def _open_with(self, transport: str) -> None:
        if transport == "kerberos":
            self._kinit()
        self._note_logon(transport == "kerberos")
        protocol = self._new_protocol(transport)
        self.transport = transport
        endpoint = self.settings.endpoint
        self._log(5, f"WINRM CONNECT: transport={transport} endpoint={endpoint.url}")
        with self._credentials():
            shell_id = self._create_shell(protocol)
        self.protocol = protocol
        self.shell_id = shell_id
        self._log(5, f"WINRM OPEN SHELL: {shell_id}")

    def _create_shell(self, protocol: Protocol) -> str:
        """Create a shell, retrying as the policy allows, and delete any shell an earlier
        attempt created whose answer was lost (each attempt carries the same unique name)."""
        name: str | None = f"winops-remoting-{uuid.uuid4()}"
        maybe_created: list[BaseException] = []

        def create() -> str:
            nonlocal name
            try:
                while True:
                    try:
                        return str(
                            protocol.open_shell(
                                codepage=UTF8_CODEPAGE,
                                name=name,
                                idle_timeout=self._host_idle_timeout,
                            )
                        )
                    except WSManFaultError as fault:
                        # A schema fault refuses the whole Create (nothing was made), so it is
                        # sent again without what this host may not take, the name first, then
                        # the idle timeout; the shell is what matters. (WinRS caps an idle
                        # timeout above the host's own rather than refusing it: idleTimeoutMs
                        # of WSMAN_SHELL_STARTUP_INFO.)
                        if fault_code(fault) != _wsman_faults.SCHEMA_VALIDATION:
                            raise
                        if name is not None:
                            self._log(
                                3, "WINRM: the host refused a named shell; creating it unnamed"
                            )
                            name = None
                        elif self._host_idle_timeout is not None:
                            self._log(3, "WINRM: the host refused the shell's IdleTimeOut; without")
                            self._host_idle_timeout = None  # for the session's later shells too
                        else:
                            raise
            except BaseException as exc:
                # Cut off or interrupted after it was sent: the host may have created it.
                if not isinstance(exc, Exception) or (
                    breaks_connection(exc) and not never_reached_host(exc)
                ):
                    maybe_created.append(exc)
                raise

        try:
            shell_id = self._call_safe("open shell", create, protocol)
        except Exception:
            if maybe_created:
                self._delete_unanswered_shells(protocol, name, None)
            raise
        if maybe_created:
            self._delete_unanswered_shells(protocol, name, shell_id)
        self._commands_in_shell = 0
        return shell_id

    def _delete_unanswered_shells(
        self, protocol: Protocol, name: str | None, keep: str | None
    ) -> None:
        """Delete the shells named ``name`` other than ``keep``: Creates whose answer was lost."""
        if name is None:
            self._warn(
                f"{PLUGIN_NAME}: a shell Create whose answer was lost may have left a WinRS shell "
                "on the host, and the host takes no shell names, so it cannot be found; the host "
                "removes it when its idle timeout expires"
            )
            return
        try:
            listed = self._request(protocol, protocol.list_shells)
        except Exception as err:
            reason = redact(str(err), self.settings.secrets)
            self._warn(
                f"{PLUGIN_NAME}: a shell Create whose answer was lost may have left a WinRS shell "
                f"named {name} on the host, and listing the shells to delete it failed "
                f"({reason}); the host removes it when its idle timeout expires"
            )
            return
        if keep is not None and (keep.upper(), name) not in {
            (shell_id.upper(), shell_name) for shell_id, shell_name in listed
        }:
            # The host does not list our own shell under its name: names are not kept there,
            # so the lost shell cannot be told from other shells of the user.
            self._warn(
                f"{PLUGIN_NAME}: a shell Create whose answer was lost may have left a WinRS shell "
                f"on the host, and the host's list of shells does not show the name "
                f"{name} given on Create, so it cannot be found; the host removes it when its "
                "idle timeout expires"
            )
            return
        for shell_id, shell_name in listed:
            if shell_name != name or (keep is not None and shell_id.upper() == keep.upper()):
                continue
            self._log(3, f"WINRM: deleting shell {shell_id} ({name}): its Create's answer was lost")
            try:
                self._call_safe(
                    "delete shell",
                    functools.partial(protocol.close_shell, shell_id, False),
                    protocol,
                )
            except Exception as err:
                self._warn_undeleted(shell_id, err)

    def open(self) -> None:
        """Authenticate and create the WinRS shell, trying each configured transport in turn."""
        if self.is_open:
            return
        errors: list[tuple[str, AnsibleError]] = []
        for transport in self.settings.transports:
            try:
                self._open_with(transport)
                return
            except Exception as err:
                errors.append((transport, self._failure(err)))
            self._log(5, f"WINRM CONNECTION ERROR ({transport}): {errors[-1][1]}")
        last_error = errors[-1][1]
        if len(errors) == 1:
            raise_failure(last_error)
        tried = "; ".join(f"{name}: {error}" for name, error in errors[:-1])
        combined = AnsibleConnectionFailure(f"{last_error}\n  also tried: {tried}")
        # the message quotes every cause already (see DiagnosedConnectionFailure)
        combined._include_cause_message = False
        raise combined from last_error.__cause__

    def reopen_shell(self) -> None:
        """Replace the shell (same authenticated Protocol), e.g. after a quota fault."""
        protocol = self.protocol
        if protocol is None:
            self.open()
            return
        old_shell = self.shell_id
        if old_shell is not None:
            try:
                self._call_safe("delete shell", lambda: protocol.close_shell(old_shell, False))
            except Exception as err:
                self._log(5, f"WINRM: deleting shell {old_shell} failed: {err}")
        self._started_ahead = []  # they went with the old shell
        self.shell_id = self._create_shell(protocol)

    def close(self) -> None:
        """Delete the shell and forget the ticket cache; the session can be opened again."""
        protocol, shell_id = self.protocol, self.shell_id
        self.protocol = None
        self.shell_id = None
        # Deleting the shell frees its commands (MS-WSMV 3.1.4.4.1): no signal for a finished one,
        # and it ends the commands started ahead.
        self._finished_command = None
        self._started_ahead = []
        try:
            if protocol is not None and shell_id is not None:
                self._delete_shell(protocol, shell_id)
        finally:
            if self._ccache is not None:
                self._ccache.remove()
                self._ccache = None

    def _delete_shell(self, protocol: Protocol, shell_id: str) -> None:
        self._log(5, f"WINRM CLOSE SHELL: {shell_id}")
        try:
            with self._credentials():
                self._call_safe("delete shell", lambda: protocol.close_shell(shell_id), protocol)
        except WSManFaultError as fault:
            if fault_code(fault) != _wsman_faults.SHELL_NOT_FOUND:
                self._warn_undeleted(shell_id, fault)
            else:
                # Already gone (a reboot, a WinRM restart, the idle timeout): nothing to delete.
                self._log(5, f"WINRM: shell {shell_id} no longer exists on the host")
        except Exception as err:
            self._warn_undeleted(shell_id, err)

    def _warn_undeleted(self, shell_id: str, err: BaseException) -> None:
        self._warn(
            f"{PLUGIN_NAME}: could not delete WinRS shell {shell_id} ({err}); the host "
            "removes it when its idle timeout expires"
        )

    # -- file transfer (the shared orchestration in transfer._transfer) --------------------

    def transfer_chunk_sizes(self) -> tuple[int, int]:
        """PUT lines fit one Send envelope; FETCH output is split into Receives by the host."""
        return put_chunk_size(self._send_envelope_size), DEFAULT_FETCH_CHUNK_SIZE

    def run_transfer_script(
        self,
        script: str,
        input_lines: t.Iterable[str],
        on_output: t.Callable[[str], None] | None,
    ) -> ScriptResult:
        """Run a transfer script in powershell.exe; input lines are stdin lines."""
        stdin = (line.encode("ascii") + b"\r\n" for line in input_lines)
        sink = None
        if on_output is not None:
            text_sink = on_output

            def sink(data: bytes) -> None:
                # Base64 lines and a JSON result line: ASCII, so any Receive boundary is a
                # character boundary.
                text_sink(data.decode("utf-8", errors="replace"))

        result = self.run(
            powershell_command_line(script), stdin=stdin, stdout_sink=sink, build_ahead=True
        )
        stderr = clean_stderr(result.stderr.decode("utf-8", errors="replace"))
        return ScriptResult(result.rc, result.stdout.decode("utf-8", errors="replace"), stderr)

    def put_file(self, in_path: str, out_path: str) -> int:
        """Copy a local file to the host (the shared transfer); returns its size."""
        return _transfer.put_file(self, in_path, out_path)

    def fetch_file(self, in_path: str, out_path: str) -> int:
        """Copy a file from the host (the shared transfer); returns its size. The fetch only
        reads, so it starts again from the beginning when the connection broke while the host
        sent it (up to ``retries`` times)."""
        return call_with_retry(
            "fetch",
            functools.partial(_transfer.fetch_file, self, in_path, out_path),
            self._policy,
            answer_lost,
            log=functools.partial(self._log, 3),
            sleep=self._sleep,
        )

    # -- commands -------------------------------------------------------------------------

    def run(
        self,
        command_line: str,
        stdin: t.Iterable[bytes] | None = None,
        stdout_sink: t.Callable[[bytes], None] | None = None,
        *,
        build_ahead: bool = False,
    ) -> CommandResult:
        """Run one command line in the shell and wait for it to end.

        ``stdin`` items are sent as separate WinRS Sends (each must fit an envelope; see
        ``stdin_chunk_size``); with ``build_ahead`` (a stream of many) the next Send is read
        and built in a thread while the host reads the last one (_ahead). With
        ``stdout_sink`` every Receive's stdout goes there as it arrives and is not kept. The
        command is stopped with a WinRS terminate signal when it ends, when command_timeout
        passes, and when anything (Ansible's task timeout included) interrupts the wait.
        """
        if not self.is_open:
            self.open()
        timeout = self.settings.command_timeout
        deadline = self._clock() + timeout if timeout else None
        try:
            with self._credentials():
                self._release_finished_command()
                command_id = None
                if stdin is not None:
                    command_id, stdin = self._use_started_ahead(command_line, stdin)
                if command_id is None:
                    command_id = self._start(command_line, console_mode_stdin=stdin is None)
                return self._finish(command_id, stdin, stdout_sink, deadline, build_ahead)
        except AnsibleError:
            raise
        except Exception as err:
            raise_failure(self._failure(err, in_command=True))

    def settle(self) -> None:
        """Release the last finished command on the host, replace a shell that has started
        COMMANDS_PER_SHELL commands and start the next module's command ahead
        (``_start_ahead``), between tasks: a holder calls it after answering (kept._holder), so
        no task waits for it. Without a holder the next command or the shell's deletion
        releases a finished command, a shell lasts one task, and nothing is started ahead."""
        if not self.is_open:
            return
        with self._credentials():
            self._release_finished_command()
            self._renew_used_shell()
            self._start_ahead()

    def _renew_used_shell(self) -> None:
        """Replace the shell once it has started COMMANDS_PER_SHELL commands, so that a kept
        shell never holds more of the user's operations quota than that. The commands started
        ahead go with the old shell: the same command line is started ahead in the new one."""
        if self._commands_in_shell < COMMANDS_PER_SHELL:
            return
        if self._started_ahead and self._line_to_start_ahead is None:
            self._line_to_start_ahead = self._started_ahead[0][0]
        self._log(
            3,
            f"WINRM: replacing the shell after {self._commands_in_shell} commands (Windows "
            "counts each against the user's MaxConcurrentOperationsPerUser until the shell ends)",
        )
        self.reopen_shell()

    def start_ahead(self, command_line: str) -> None:
        """Between tasks (a task's end tells the holder, kept._slot): in ``settle``, after the
        answer, start ``command_line`` until ``_COMMANDS_AHEAD`` commands wait for the next
        module tasks, so that a module task only sends its input to one whose powershell.exe
        started a task earlier.

        Only for a command line that runs nothing of a module before it has read the module
        from its input (Ansible's module bootstrap, as the connection plugin tells), so one that
        no task uses has run no module when the shell's deletion ends it. Not within a task: a
        command the task sends next (a put after a module, say) would wait for this one's
        start."""
        if self.settings.start_ahead and self.is_open:
            self._line_to_start_ahead = command_line

    def _start_ahead(self) -> None:
        line, self._line_to_start_ahead = self._line_to_start_ahead, None
        if line is None:
            return
        if self._started_ahead and self._started_ahead[0][0] != line:
            self._drop_started_ahead(terminate=True)
        while len(self._started_ahead) < _COMMANDS_AHEAD:
            try:
                command_id = self._start(line, console_mode_stdin=False)
            except Exception as err:
                self._log(5, f"WINRM: starting a command ahead for the next tasks failed: {err}")
                return
            self._started_ahead.append((line, command_id))
            self._log(5, f"WINRM: started command {command_id} ahead for the next tasks")

    def _drop_started_ahead(self, terminate: bool) -> None:
        """Forget the commands started ahead; stop them on the host unless it lost them."""
        dropped, self._started_ahead = self._started_ahead, []
        if terminate:
            for _line, command_id in dropped:
                self._terminate(command_id, interrupted=False)

    def _use_started_ahead(
        self, command_line: str, stdin: t.Iterable[bytes]
    ) -> tuple[str | None, t.Iterable[bytes] | None]:
        """Send the first input to the oldest command started ahead with ``command_line``: its
        id and the input still to send; no id when there is none, or when the host answered
        that Send with a fault: it took nothing (that command or its shell is gone, or its
        process ended on its own), so the task's command is started afresh, for the first
        time, and the other commands started ahead, gone the same way, are dropped too."""
        if not self._started_ahead or self._started_ahead[0][0] != command_line:
            return None, stdin
        _line, command_id = self._started_ahead.pop(0)
        blocks = _with_last(stdin)
        first, end = next(blocks)
        rest = [data for data, _end in blocks]
        protocol, shell_id = self.protocol, self.shell_id
        if protocol is None or shell_id is None:
            raise RuntimeError("internal error: protocol or shell_id is not set")
        try:
            self._send_block(protocol, shell_id, command_id, first, end)
        except WSManFaultError as fault:
            self._log(
                5, f"WINRM: the command started ahead took no input ({fault}); starting it now"
            )
            still_there = fault_code(fault) != _wsman_faults.SHELL_NOT_FOUND
            if still_there:
                self._terminate(command_id, interrupted=False)
            self._drop_started_ahead(terminate=still_there)
            return None, itertools.chain([first], rest)
        except BaseException:
            self._terminate(command_id, interrupted=True)
            raise
        self._log(3, f"WINRM: using command {command_id}, started ahead after an earlier task")
        return command_id, (rest or None)

    def _release_finished_command(self) -> None:
        command_id, self._finished_command = self._finished_command, None
        if command_id is not None:
            self._terminate(command_id, interrupted=False)

    def execute(self, command_line: str, in_data: bytes | None) -> tuple[int, bytes, bytes]:
        """``run`` for a task: ``in_data`` goes to stdin in Sends that fit an envelope, to the
        command started ahead with this command line if there is one (``start_ahead``). Plain
        values come back, so a task reading them from a kept session needs no pywinrm."""
        stdin = None
        if in_data:
            size = stdin_chunk_size(self._send_envelope_size)
            stdin = (in_data[offset : offset + size] for offset in range(0, len(in_data), size))
        result = self.run(command_line, stdin=stdin)
        return result.rc, result.stdout, result.stderr

    def _start(self, command_line: str, console_mode_stdin: bool) -> str:
        """Send the WinRS Command. Never retried: a lost reply must not start it twice."""
        command, _space, arguments = command_line.partition(" ")
        args = [arguments] if arguments else []

        def start() -> str:
            protocol, shell_id = self.protocol, self.shell_id
            if protocol is None or shell_id is None:
                raise RuntimeError("internal error: protocol or shell_id is not set")
            command_id = self._request(
                protocol,
                lambda: protocol.run_command(
                    shell_id, command, args, console_mode_stdin=console_mode_stdin
                ),
            )
            self._commands_in_shell += 1
            return command_id

        try:
            return start()
        except WSManFaultError as fault:
            if _wsman_faults.over_operations_quota(fault):
                reason = "the shell reached its operation quota"
            elif fault_code(fault) == _wsman_faults.SHELL_NOT_FOUND:
                # A kept shell ends with the WinRM service (a restart, a reboot) or its idle
                # timeout; the host answers ERROR_WSMAN_SHELL_NOT_FOUND to a Command in it.
                reason = "the host no longer has the shell"
                self.shell_id = None
            else:
                raise
        # The host refused to start it, so starting it in a fresh shell is the first start, not
        # a repeat.
        self._log(5, f"WINRM: {reason}, replacing the shell")
        self.reopen_shell()
        return start()

    def _finish(
        self,
        command_id: str,
        stdin: t.Iterable[bytes] | None,
        stdout_sink: t.Callable[[bytes], None] | None,
        deadline: float | None,
        build_ahead: bool,
    ) -> CommandResult:
        stdout_parts: list[bytes] = []
        sink = stdout_sink or stdout_parts.append
        completed = False
        try:
            if stdin is not None:
                self._send_stdin(command_id, stdin, deadline, build_ahead=build_ahead)
            rc, stderr = self._receive_all(command_id, sink, deadline)
            completed = True
        finally:
            if completed:
                # Its release (a terminate signal) waits until the answer is on its way.
                self._finished_command = command_id
            else:
                # A command that is still running is stopped now.
                self._terminate(command_id, interrupted=True)
        return CommandResult(rc=rc, stdout=b"".join(stdout_parts), stderr=stderr)

    def _check_deadline(self, deadline: float | None) -> float | None:
        """Seconds left before command_timeout, raising CommandTimeoutError when none are."""
        if deadline is None:
            return None
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise CommandTimeoutError(
                f"{PLUGIN_NAME}: the command did not finish within command_timeout "
                f"({self.settings.command_timeout:g} seconds); a WinRS terminate signal was "
                "sent to stop it on the host"
            )
        return remaining

    def _send_stdin(
        self,
        command_id: str,
        stdin: t.Iterable[bytes],
        deadline: float | None,
        *,
        build_ahead: bool = False,
    ) -> None:
        protocol, shell_id = self.protocol, self.shell_id
        if protocol is None or shell_id is None:
            raise RuntimeError("internal error: protocol or shell_id is not set")

        blocks = (
            (data, end, protocol.stdin_message(shell_id, command_id, data, end))
            for data, end in _with_last(stdin)
        )
        ordered = worked_ahead(blocks) if build_ahead else contextlib.nullcontext(blocks)
        with ordered as sendable:
            for data, end, message in sendable:
                self._check_deadline(deadline)
                self._send_block(protocol, shell_id, command_id, data, end, message=message)

    def _send_block(
        self,
        protocol: Protocol,
        shell_id: str,
        command_id: str,
        data: bytes,
        end: bool,
        *,
        message: str | None = None,
    ) -> None:
        """Send ``data`` (as ``message`` when it was built ahead for the current envelope
        size); a repeat after a busy refusal is built afresh, with a new MessageID."""
        piece = stdin_chunk_size(self._send_envelope_size)
        if len(data) > piece:
            # Cut before the host's smaller limit was learnt (see below).
            for offset in range(0, len(data), piece):
                last = offset + piece >= len(data)
                self._send_block(
                    protocol, shell_id, command_id, data[offset : offset + piece], end and last
                )
            return
        built = [message] if message is not None else []

        def send() -> None:
            text = built.pop() if built else protocol.stdin_message(shell_id, command_id, data, end)
            protocol.send_message(text)

        try:
            # Only a Send refused as busy is repeated: the host did not take its data.
            self._call_safe("send input", send, is_retryable=_retry.refused_as_busy)
        except WinRMOperationTimeoutError:
            # A loaded host can answer a Send with OperationTimeout after taking its data
            # (ansible.builtin.winrm relies on this too); sending it again would duplicate it.
            self._warn(
                f"{PLUGIN_NAME}: the host answered a stdin Send with OperationTimeout; "
                "continuing on the assumption that it took the data. If this recurs, raise "
                "operation_timeout_sec"
            )
        except Exception as err:
            smaller = self.settings.max_envelope_size
            if not _wsman_faults.refused_as_too_large(err) or self._send_envelope_size <= smaller:
                raise
            # An older host (MaxEnvelopeSizekb 150) refused the whole Send and took nothing:
            # from now on requests fit max_envelope_size. With message encryption the refused
            # message may have left the connection's keys out of step: authenticate afresh.
            self._log(
                3,
                f"WINRM: the host refused a {self._send_envelope_size}-byte request as too "
                f"large; sending requests of at most {smaller} bytes (max_envelope_size)",
            )
            self._send_envelope_size = smaller
            self._reconnect = True
            self._send_block(protocol, shell_id, command_id, data, end)

    def _receive_once(self, command_id: str, wait: int) -> tuple[bytes, bytes, int, bool]:
        protocol, shell_id = self.protocol, self.shell_id
        if protocol is None or shell_id is None:
            raise RuntimeError("internal error: protocol or shell_id is not set")
        configured = protocol.operation_timeout_sec
        # The host holds a Receive open for the WSMan OperationTimeout; shortening it lets a
        # command_timeout fire on time. The HTTP read timeout stays above it.
        protocol.operation_timeout_sec = min(configured, wait)
        try:
            return protocol.get_command_output_raw(shell_id, command_id)
        except WinRMOperationTimeoutError:
            # No output within the operation timeout: the normal state of a quiet command.
            return b"", b"", -1, False
        except Exception as exc:
            if (
                breaks_connection(exc)
                and not never_reached_host(exc)
                and self._lost_receive is None
            ):
                # The host may have answered this Receive before the connection broke; WinRS
                # hands out output once (pywinrm has no way to ask for it again).
                self._lost_receive = exc
            raise
        finally:
            protocol.operation_timeout_sec = configured

    def _receive_all(
        self, command_id: str, sink: t.Callable[[bytes], None], deadline: float | None
    ) -> tuple[int, bytes]:
        if self.protocol is None:
            raise RuntimeError("internal error: self.protocol is not set")
        self._lost_receive = None
        rc, stderr = self._receive_until_done(command_id, sink, deadline)
        if self._lost_receive is not None:
            # Finishing the command first gives it a clean end; its result is still incomplete.
            reason = redact(str(self._lost_receive), self.settings.secrets)
            raise OutputLostError(
                f"{PLUGIN_NAME}: the connection broke while the host answered a Receive for "
                f"command {command_id} ({reason}); the command ran once (exit code {rc}), but "
                "the output in that answer is lost, so its result cannot be trusted"
            )
        return rc, stderr

    def _receive_until_done(
        self, command_id: str, sink: t.Callable[[bytes], None], deadline: float | None
    ) -> tuple[int, bytes]:
        if self.protocol is None:
            raise RuntimeError("internal error: self.protocol is not set")
        stderr_parts: list[bytes] = []
        operation_timeout = int(self.protocol.operation_timeout_sec)
        while True:
            remaining = self._check_deadline(deadline)
            wait = operation_timeout if remaining is None else max(1, math.ceil(remaining))
            stdout, stderr, rc, done = self._call_safe(
                "receive output", functools.partial(self._receive_once, command_id, wait)
            )
            if stdout:
                sink(stdout)
            if stderr:
                stderr_parts.append(stderr)
            if done:
                return rc, b"".join(stderr_parts)

    def _terminate(self, command_id: str, interrupted: bool) -> None:
        protocol, shell_id = self.protocol, self.shell_id
        if protocol is None or shell_id is None:
            return
        if interrupted:
            self._log(3, f"WINRM: stopping command {command_id} with a terminate signal")

        def signal() -> None:
            # pywinrm's cleanup_command sends WinRS Signal with the terminate code.
            protocol.cleanup_command(shell_id, command_id)

        try:
            self._call_safe("signal terminate", signal)
            return
        except Exception as err:
            if not interrupted:
                self._log(5, f"WINRM: releasing command {command_id} failed: {err}")
                return
            first_error = err
        try:
            # The host may have rejected the signal because the interrupted request left the
            # connection out of step (message encryption): one more try on a fresh one.
            self._reconnect = True
            self._request(protocol, signal)
        except Exception as err:
            self._warn(
                f"{PLUGIN_NAME}: could not stop command {command_id} on the host "
                f"({first_error}; then {err}); it may still be running"
            )
