"""A PowerShell Remoting session: runspace pool, pipelines, file transfer.

Internal use only: this module is not part of the collection's public API.

PsrpSession knows nothing about Ansible's plugin machinery: it takes validated PsrpSettings and
offers open/run/put_file/fetch_file/close. The rules it keeps:

- Only operations that are safe to repeat are retried (opening the runspace pool, receiving
  output, closing the pool). A pipeline, once its Create has been sent, is never started again.
- A pipeline that does not finish normally (command time limit, task timeout, Ctrl-C, a failure
  while reading output) is stopped on the host with the PSRP stop signal before the error
  propagates, so nothing keeps running behind Ansible's back.
- Wire failures leave through diagnosis._failure.connection_failure, which says which layer
  failed and what to change, and keeps every secret out of the message and the chained errors.
"""

from __future__ import annotations

import collections.abc as c
import functools
import math
import socket
import ssl
import threading
import time
import typing as t

from ansible.errors import AnsibleConnectionFailure, AnsibleError

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    TRANSIENT_HTTP_STATUSES,
    answer_lost,
    exception_chain,
    http_status,
    never_reached_host,
    no_whole_answer,
    raise_failure,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
    PLUGIN_NAME,
    PsrpSettings,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session import _psrp_stream, _retry
from ansible_collections.winops.remoting.plugins.plugin_utils.session._pooled import (
    connection_lost,
    environment_read_once,
    probe_idle_connections,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_ahead import (
    InputRefused,
    create_waiting_for_input,
    send_input,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_output import (
    PipelineResult,
    collect_result,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_strings import (
    skip_needless_escaping,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_unwrap import (
    unwrap_one_part_directly,
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
from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer

if t.TYPE_CHECKING:
    from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
        CredentialCache,
    )


def sends_without_repeats(wsman_class: type) -> bool:
    """Whether this pypsrp's ``WSMan.invoke`` can send a request without pypsrp's own repeats
    (``retries_on_read_timeout``, pypsrp 0.9.0 and later), as every Receive here must be."""
    return "retries_on_read_timeout" in wsman_class.invoke.__code__.co_varnames  # type: ignore[attr-defined]


PYPSRP_IMPORT_ERROR: ImportError | None
try:
    import requests
    from pypsrp.complex_objects import PSInvocationState
    from pypsrp.exceptions import WinRMError, WSManFaultError
    from pypsrp.host import PSHost, PSHostUserInterface
    from pypsrp.powershell import PowerShell, RunspacePool
    from pypsrp.shell import SignalCode
    from pypsrp.wsman import NAMESPACES, SelectorSet, WSMan, WSManAction
    from spnego.exceptions import SpnegoError

    if not sends_without_repeats(WSMan):  # pypsrp 0.8.x: every Receive would be a TypeError
        raise ImportError("pypsrp 0.9.0 or later is needed, and this one is older")
except ImportError as import_error:
    PYPSRP_IMPORT_ERROR = import_error
else:
    PYPSRP_IMPORT_ERROR = None


class _NoCredSSPError(Exception):
    """Stands in when requests-credssp is absent: CredSSP cannot fail then."""


CredSSPAuthenticationError: type[BaseException] = _NoCredSSPError
CredSSPStatusError: type[BaseException] = _NoCredSSPError
try:  # optional: only CredSSP needs requests-credssp
    from requests_credssp.exceptions import AuthenticationException, NTStatusException

    CredSSPAuthenticationError = AuthenticationException
    CredSSPStatusError = NTStatusException
except ImportError:
    pass


# Raw bytes reserved in each envelope for the SOAP headers and the PSRP fragment/message framing.
PSRP_ENVELOPE_OVERHEAD = 4096

HOST_NAME = "winops.remoting.psrp"

# A kept pool is renewed (closed, and a new one opened) between tasks once it has run this many
# pipelines. A pool is one wsmprovhost process, and every Ansible module run compiles its C#
# utils into a new assembly that the process cannot unload, so a pool kept for a whole run
# grows with every task towards the shell's memory quota (MaxMemoryPerShellMB), past which
# Windows ends it in the middle of a task. The sources are in docs/winhost-behaviours.md
# (Kept sessions); 100 is our margin, not a measured figure: a renewal costs one pool open in
# a hundred tasks.
PIPELINES_PER_POOL = 100

# The runspaces of a pool that keeps a module pipeline created ahead: that pipeline waits for
# its input in one, and Windows queues any other pipeline until a runspace is free
# (RunspacePool.SetMaxRunspaces), so a task that runs something else first (raw, a put) needs
# the second. One pipeline of the session runs at a time, so two are never short.
RUNSPACES_WITH_A_PIPELINE_AHEAD = 2


class _PipelineAhead(t.NamedTuple):
    """A module pipeline created ahead of the task that will send its input (start_ahead)."""

    request: tuple[str, tuple[str, ...]]  # its script and arguments
    pipeline: PowerShell  # in the open pool: closing or forgetting a pool drops it


class CommandTimeoutError(AnsibleError):
    """A pipeline ran longer than command_timeout and was stopped on the host."""


def require_pypsrp() -> None:
    """Raise a clear AnsibleError when pypsrp (or what it needs) cannot be imported."""
    if PYPSRP_IMPORT_ERROR is not None:
        raise AnsibleError(
            f"{PLUGIN_NAME} needs the pypsrp Python library, 0.9.0 or later and below 1.0.0 "
            "(pip install 'pypsrp[credssp]>=0.9.0,<1.0.0'): "
            f"{PYPSRP_IMPORT_ERROR}"
        ) from PYPSRP_IMPORT_ERROR


def wire_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean the conversation with the host failed.

    Socket-level errors are named one by one: a local file that cannot be read during a
    transfer is an OSError too, and must not be reported as an unreachable host.
    """
    return (
        WinRMError,
        requests.RequestException,
        SpnegoError,
        ConnectionError,
        TimeoutError,
        socket.gaierror,
        ssl.SSLError,
        # a CredSSP handshake the host refuses or fails (e.g. CredSSP not enabled there)
        CredSSPAuthenticationError,
        # the error status a CredSSP acceptor answers with, such as a refused password
        CredSSPStatusError,
    )


def is_transient(exc: BaseException) -> bool:
    """The shared classifier with pypsrp's rules (see session._retry.TransientRules)."""
    return _retry.is_transient(exc, _retry.PSRP_RULES)


def lookup_host(host: str, port: int) -> None:
    """Resolve ``host`` as the connect will; socket.gaierror when the resolver cannot."""
    socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _receive_without_repeat(wsman: WSMan, *request: t.Any, **options: t.Any) -> t.Any:
    """WSMan.receive (resource URI, resource, option set, selector set, timeout) without
    pypsrp's own repeats after a read timeout."""
    answer = wsman.invoke(WSManAction.RECEIVE, *request, **options, retries_on_read_timeout=0)
    return answer.find("s:Body", namespaces=NAMESPACES)


def _read_timed_out(err: BaseException) -> bool:
    """True when ``err`` is a request the host took but did not answer within the read
    timeout: it may still be carrying it out."""
    return any(
        {"ReadTimeout", "ReadTimeoutError"} & {cls.__name__ for cls in type(error).__mro__}
        for error in exception_chain(err)
    )


class PsrpSession:
    """One runspace pool on one host, used for commands and file transfers."""

    def __init__(
        self,
        settings: PsrpSettings,
        *,
        log: c.Callable[[str], None] | None = None,
        include_stacktrace: bool = False,
        sleep: c.Callable[[float], None] = time.sleep,
        clock: c.Callable[[], float] = time.monotonic,
        warn: c.Callable[[str], None] | None = None,
        pipeline_ahead: bool = False,
        host_idle_timeout: int | None = None,
    ) -> None:
        """``pipeline_ahead``: this session may be kept and create module pipelines ahead
        (start_ahead), so its pools open with RUNSPACES_WITH_A_PIPELINE_AHEAD runspaces; the
        connection decides it from session_start_ahead and whether its session may be kept.
        ``host_idle_timeout``: seconds the host is asked to keep an idle pool (its
        rsp:IdleTimeOut; kept._slot), None for the host's own."""
        self.settings = settings
        self._host_idle_timeout = host_idle_timeout
        self._log = log or (lambda message: None)
        # What the user must hear of (a pool left on the host), at any verbosity.
        self._warn = warn or self._log
        self._include_stacktrace = include_stacktrace
        self._sleep = sleep
        self._clock = clock
        self._pool: RunspacePool | None = None
        self._host: PSHost | None = None
        self._ccache: CredentialCache | None = None
        # The last finished pipeline: released (Signal Terminate) before the next one starts,
        # which saves a round trip per command and keeps the host's command quota free.
        self._finished_pipeline: PowerShell | None = None
        # Set while a pool opens: when its waiting ends (command_timeout), and whether the host
        # took the Create and was waited for to the end (then opening another pool only waits
        # again, so the open is not repeated).
        self._open_deadline: float | None = None
        self._open_waited_out = False
        # Whether the last failed attempt to open a pool left nothing on the host (its pool was
        # deleted, or its Create never reached the host): only then may a cut answer be repeated.
        self._open_left_nothing = False
        # Pipelines started in the open pool, towards PIPELINES_PER_POOL.
        self._pipelines_in_pool = 0
        self._pipeline_ahead_allowed = pipeline_ahead
        # The module pipeline waiting for the next module task's input, and the one asked for.
        self._ahead: _PipelineAhead | None = None
        self._request_to_start_ahead: tuple[str, tuple[str, ...]] | None = None
        self._logon = KerberosLogon()  # when a Kerberos logon must be made again

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    @property
    def max_envelope_size(self) -> int:
        """The envelope size in use; pypsrp raises the default to 500 KiB on PowerShell 3+."""
        if self._pool is not None:
            return int(self._pool.connection.max_envelope_size)
        return self.settings.max_envelope_size

    def transfer_chunk_size(self) -> int:
        """Raw bytes per transfer line so that one line travels in one WSMan envelope."""
        return _transfer.put_chunk_size(self.max_envelope_size, PSRP_ENVELOPE_OVERHEAD)

    # -- lifecycle -------------------------------------------------------------------------

    def open(self) -> None:
        """Open the runspace pool (retried on transient failures); a no-op when already open."""
        if self._pool is not None:
            return
        require_pypsrp()
        if self.settings.kinit is not None and self._ccache is None:
            self._log(f"acquiring a Kerberos ticket for {self.settings.kinit.principal} (kinit)")
            self._ccache = acquire_ticket(self.settings.kinit)
        else:
            # A new pool of a kept session (renewed, or after the host lost the last one).
            self._ccache = ticket_for_new_logon(self.settings.kinit, self._ccache)
        self._note_logon()
        try:
            self._resolve_host()
            self._open_waited_out = False
            self._open_deadline = None
            if self.settings.command_timeout:
                self._open_deadline = self._clock() + self.settings.command_timeout
            with self._credentials():
                self._pool = call_with_retry(
                    "open runspace pool",
                    self._open_pool,
                    self.settings.retry_policy,
                    self._open_is_repeatable,
                    log=self._log,
                    sleep=self._sleep,
                )
            self._pipelines_in_pool = 0
        except BaseException as err:
            # No pool, no use for the ticket: do not leave the cache behind on disk.
            self._remove_ccache()
            if isinstance(err, wire_errors()):
                raise_failure(self._failure(err))
            raise

    def _resolve_host(self) -> None:
        """Resolve the host name once, so that a name that does not resolve fails at once.

        pypsrp's urllib3 retries a failed name lookup like a refused connect, with backoff;
        the resolver has already retried by then (resolv.conf attempts and timeout), and the
        winrm plugin does not retry it either (session._retry). Through a proxy the proxy
        resolves the name, so nothing is looked up here.
        """
        endpoint = self.settings.endpoint
        if not self._through_proxy():
            lookup_host(endpoint.host, endpoint.port)

    def _through_proxy(self) -> bool:
        kwargs = self.settings.wsman_kwargs
        if kwargs.get("proxy"):
            return True
        if kwargs.get("no_proxy"):
            return False
        return bool(requests.utils.get_environ_proxies(self.settings.endpoint.url))

    def _note_logon(self) -> None:
        """A logon is about to be made: watch its ticket when it is a Kerberos one."""
        kerberos = self.settings.auth in ("kerberos", "negotiate")
        unwatched = self._logon.logging_on(self._ccache, self.settings.kinit, kerberos=kerberos)
        if unwatched and self.settings.auth == "negotiate":
            # Negotiate may well pick NTLM, which has no ticket to watch.
            self._log(f"if negotiate picks Kerberos: {unwatched}")
        elif unwatched:
            self._log(unwatched)

    def _open_is_repeatable(self, err: BaseException) -> bool:
        """A failed open is tried again with a new pool only for a transient failure that did
        not come from waiting for the host to open the last pool (that was waited out).

        An answer cut off mid-response is not transient for psrp in general (output may have
        been lost, session._retry), but an open runs nothing: once the failed attempt's pool
        is deleted, opening another one cannot repeat anything.
        """
        if self._open_waited_out:
            return False
        return is_transient(err) or (self._open_left_nothing and no_whole_answer(err))

    def _open_pool(self) -> RunspacePool:
        wsman = WSMan(**self.settings.wsman_kwargs)
        self._prepare_transport(wsman)
        # pypsrp's hints say str for the version, but None is its documented "no version".
        host = PSHost(None, None, False, HOST_NAME, None, PSHostUserInterface(), None)  # type: ignore[arg-type]
        # One runspace (pypsrp's default, what the builtin plugin asks for) unless a pipeline may
        # wait in one for the next module task; the host's idle timeout unless one is asked.
        pool_options: dict[str, t.Any] = {}
        if self._pipeline_ahead_allowed:
            pool_options["max_runspaces"] = RUNSPACES_WITH_A_PIPELINE_AHEAD
        idle_timeout = self._host_idle_timeout
        if idle_timeout is not None:
            pool_options["idle_timeout"] = idle_timeout
        pool = RunspacePool(
            wsman, host=host, configuration_name=self.settings.configuration_name, **pool_options
        )
        # The pool's one Serializer writes pipeline input and reads output (session._psrp_strings).
        skip_needless_escaping(getattr(pool, "_serializer", None))
        # pypsrp's open() gives up on the first OperationTimeout answer to its Receive; that
        # answer only means the host is still starting the runspace, so receive again on the
        # same shell (a reopen would leave the first shell behind on the host).
        setattr(pool.shell, "receive", self._patient_receive(pool.shell.receive))  # noqa: B010
        # pypsrp repeats a Receive whose answer did not come within the read timeout (five
        # times, inside WSMan.receive). Windows hands out output once: a repeated Receive
        # cannot ask for an answer that was sent and lost (MS-WSMV 3.1.4.1.39 caches answers
        # only for clients that send wsmv:OperationID, which pypsrp does not), so, as in the
        # winrm plugin, a read timeout on Receive fails the task instead.
        setattr(wsman, "receive", functools.partial(_receive_without_repeat, wsman))  # noqa: B010
        # From the moment the Create goes out the host may hold the pool, answered or not.
        create_sent = False
        create_refused = False
        send_create = pool.shell.open

        def send_create_and_note(*args: t.Any, **kwargs: t.Any) -> t.Any:
            nonlocal create_sent, create_refused
            create_sent = True
            try:
                return send_create(*args, **kwargs)
            except WSManFaultError:
                create_refused = True
                raise

        setattr(pool.shell, "open", send_create_and_note)  # noqa: B010
        try:
            pool.open()
        except BaseException as err:
            self._open_left_nothing = not create_sent or self._delete_unopened_pool(pool, err)
            # A fresh WSMan (and HTTP session) per attempt: the failed one may hold a dead socket.
            wsman.close()
            if not (create_refused and idle_timeout is not None and self._open_left_nothing):
                raise
            # A host whose session configuration allows a shorter idle timeout than asked
            # refuses the Create (New-PSSessionOption -IdleTimeout: above MaxIdleTimeoutMs "the
            # command to create a session fails"), with a fault no source names: the pool is
            # what matters, so after any fault it is opened once more with the host's own idle
            # timeout, now and for the session's later pools.
            self._log(f"the host refused the pool's Create ({err}); again without IdleTimeOut")
            self._host_idle_timeout = None
        else:
            # The one Send both plugins repeat: a Send refused as busy (session._retry).
            setattr(pool.shell, "send", self._send_repeating_busy(pool.shell.send))  # noqa: B010
            self._host = host
            return pool
        finally:
            del pool.shell.receive
            del pool.shell.open
        return self._open_pool()

    def _delete_unopened_pool(self, pool: RunspacePool, reason: BaseException) -> bool:
        """Delete a pool whose open failed after its Create went out, so that no attempt leaves
        a pool on the host (each would hold a wsmprovhost process until the idle timeout).
        True when the pool is certainly gone; where it may be left, a warning names it.

        pypsrp's Create names the shell with the pool's id (the ShellId attribute, MS-PSRP
        3.1.5.3.1) and Windows keeps that id (pypsrp's recording test_psrp_open_runspace.yml),
        so the pool can be deleted even when the Create's answer was lost.
        """
        if never_reached_host(reason):
            return True
        selectors = getattr(pool.shell, "_selector_set", None)
        if selectors is None and any(
            http_status(error) not in (None, *TRANSIENT_HTTP_STATUSES)
            for error in exception_chain(reason)
        ):
            # The host answered the Create itself with an error status (a fault, a refused plain
            # message): it created no pool, and a Delete would only meet the same refusal. The
            # winrm session deletes a shell only when its Create was cut off, too. A 502, 503 or
            # 504 is no answer of the host's (diagnosis._failure), which may have the Create.
            return True
        if selectors is None:
            selectors = SelectorSet()
            selectors.add_option("ShellId", str(pool.id).upper())
        try:
            with self._credentials():
                pool.connection.delete(pool.shell.resource_uri, selector_set=selectors)
        except WSManFaultError as fault:
            if fault_code(fault) != _wsman_faults.SHELL_NOT_FOUND:
                self._warn_pool_left(pool, fault)
                return False
            if getattr(pool.shell, "_selector_set", None) is None and _read_timed_out(reason):
                # The host has not created it yet, but may still be working on the Create.
                self._warn_pool_left(pool, reason, certain=False)
                return False
            return True
        except wire_errors() as err:
            self._warn_pool_left(pool, err)
            return False
        self._log(f"deleted the runspace pool {pool.id} whose open failed")
        return True

    def _warn_pool_left(self, pool: RunspacePool, err: BaseException, certain: bool = True) -> None:
        what = "could not be closed and is" if certain else "was not answered in time and may be"
        self._warn(
            f"{PLUGIN_NAME}: the runspace pool {str(pool.id).upper()} {what} left on "
            f"{self.settings.endpoint.host} until its idle timeout (winrm/config/winrs "
            f"IdleTimeout, 2 hours by default): {type(err).__name__}"
        )

    def _prepare_transport(self, wsman: WSMan) -> None:
        """Adapt pypsrp's HTTP transport to a session that serves many requests.

        - The proxy environment is read once, when the requests session is built, not again for
          every request (session._pooled).
        - Every request that would go out on a new TCP connection authenticates first. pypsrp
          keeps the message-encryption context of the connection it authenticated on and seals
          every later message with it; requests opens a new connection silently when the last
          one was closed (by the host, or after a failed request), and the host cannot decrypt a
          message sealed with another connection's keys (an empty HTTP 400). Checked before each
          request, so closing the pool, the stop signal, the pipeline release and every retry
          are covered, not only the start of a command.
        - One request at a time, whichever thread sends it (session._psrp_stream).
        - An encrypted answer in one part is unwrapped without pypsrp's regular expressions
          (session._psrp_unwrap).
        """
        transport: t.Any = getattr(wsman, "transport", None)
        if transport is None:  # a test double without an HTTP transport
            return
        transport._build_session = environment_read_once(transport._build_session)
        send = transport.send
        # The session has one connection and one encryption context for all threads.
        one_at_a_time = threading.Lock()
        unwrapping: t.Any = None  # the encryption context given a faster unwrap

        def send_on_an_authenticated_connection(message: bytes, **kwargs: t.Any) -> t.Any:
            with one_at_a_time:
                return send_authenticated(message, **kwargs)

        def send_authenticated(message: bytes, **kwargs: t.Any) -> t.Any:
            nonlocal unwrapping
            http: t.Any = transport.session
            ticket_ends = self._logon.due()
            probe_idle_connections(http)
            if ticket_ends or connection_lost(http):
                if ticket_ends:
                    self._log("the Kerberos ticket of this logon ends soon; logging on again")
                else:
                    self._log("the connection to the host was closed; authenticating again")
                if http is not None:
                    http.close()
                transport.session = None
                transport.encryption = None
                self._ccache = ticket_for_new_logon(self.settings.kinit, self._ccache)
                self._note_logon()
            encryption = transport.encryption  # made by the first send that encrypts
            if encryption is not None and encryption is not unwrapping:
                unwrap_one_part_directly(encryption)
                unwrapping = encryption
            return send(message, **kwargs)

        transport.send = send_on_an_authenticated_connection

    def _send_repeating_busy(self, send: c.Callable[..., t.Any]) -> c.Callable[..., t.Any]:
        """``send`` repeated (with the retry policy) only when the host refused it as busy."""

        def send_until_taken(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return call_with_retry(
                "send input",
                functools.partial(send, *args, **kwargs),
                self.settings.retry_policy,
                _retry.refused_as_busy,
                log=self._log,
                sleep=self._sleep,
            )

        return send_until_taken

    def _patient_receive(self, receive: c.Callable[..., t.Any]) -> c.Callable[..., t.Any]:
        """``receive`` that asks again after an OperationTimeout fault, up to ``retries`` times
        and, with a command_timeout, no longer than it allows."""

        def receive_until_answered(*args: t.Any, **kwargs: t.Any) -> t.Any:
            retries = self.settings.retry_policy.retries
            for attempt in range(retries + 1):
                if self._open_deadline is not None:
                    remaining = self._open_deadline - self._clock()
                    if remaining <= 0:
                        self._open_waited_out = True
                        raise CommandTimeoutError(
                            f"{PLUGIN_NAME}: the host did not open the runspace pool within "
                            f"command_timeout ({self.settings.command_timeout:g}s, "
                            "ansible_psrp_command_timeout)"
                        )
                    kwargs["timeout"] = max(
                        1, min(self.settings.operation_timeout, math.ceil(remaining))
                    )
                try:
                    return receive(*args, **kwargs)
                except WSManFaultError as err:
                    if fault_code(err) != _wsman_faults.OPERATION_TIMEOUT:
                        raise
                    if attempt == retries:
                        self._open_waited_out = True
                        raise
                    self._log(
                        "the host has not answered the runspace pool open within the operation "
                        f"timeout; receiving again ({attempt + 1} of {retries})"
                    )
            raise AssertionError("unreachable")

        return receive_until_answered

    def close(self) -> None:
        """Close the runspace pool and remove any Kerberos cache; safe to call repeatedly."""
        try:
            self._close_pool()
        finally:
            self._remove_ccache()

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        self._finished_pipeline = None
        self._ahead = None  # ends with its pool
        if pool is None:
            return
        try:
            with self._credentials():
                self._retry("close runspace pool", pool.close)
        except wire_errors() as err:
            self._log(f"closing the runspace pool failed: {err}")
            # The host drops an abandoned pool after its idle timeout; say which, unless the
            # host answered that it has none (a reboot or a WinRM restart ended it).
            if fault_code(err) != _wsman_faults.SHELL_NOT_FOUND:
                self._warn_pool_left(pool, err)
        finally:
            pool.connection.close()

    def _remove_ccache(self) -> None:
        cache, self._ccache = self._ccache, None
        if cache is not None:
            cache.remove()

    # -- commands --------------------------------------------------------------------------

    def execute(
        self,
        script: str,
        input_lines: c.Iterable[str] | None = None,
        arguments: c.Sequence[str] = (),
    ) -> tuple[int, bytes, bytes]:
        """``run`` for a task. Plain values come back, so a task reading them from a kept
        session needs neither pypsrp nor this package to unpickle them."""
        return self.run(script, input_lines, arguments).as_bytes()

    def run(
        self,
        script: str,
        input_lines: c.Iterable[str] | None = None,
        arguments: c.Sequence[str] = (),
        on_output: c.Callable[[list[t.Any]], None] | None = None,
    ) -> PipelineResult:
        """Run ``script`` in the runspace with ``input_lines`` as its pipeline input.

        ``input_lines`` may be a list (sent in one go) or an iterator (streamed, one input
        object per item). ``on_output`` receives output objects as they arrive and takes them
        off the result, so large outputs need not be held in memory.
        """
        self._release_finished_pipeline()
        ahead = self._take_ahead(script, arguments, input_lines)
        pipeline = ahead or self._pipeline(script, arguments)

        deadline = None
        if self.settings.command_timeout:
            deadline = self._clock() + self.settings.command_timeout
        pipeline_input: t.Any = None
        if isinstance(input_lines, c.Iterator):
            pipeline_input = self._stream_input(input_lines, deadline)
        elif input_lines is not None:
            pipeline_input = list(input_lines) or None
        began = False
        try:
            with self._credentials():
                if ahead is not None and not self._send_input_to_ahead(ahead, pipeline_input):
                    ahead = None
                    pipeline = self._pipeline(script, arguments)
                if ahead is None:
                    pipeline = self._begin(pipeline, script, arguments, pipeline_input)
                began = True
                if on_output is None:
                    while pipeline.state == PSInvocationState.RUNNING:
                        poll_timeout = self._poll_timeout(deadline)
                        self._retry(
                            "receive pipeline output",
                            functools.partial(pipeline.poll_invoke, timeout=poll_timeout),
                        )
                else:
                    # A long stream of output (a fetch): each Receive goes out while the answer
                    # before it is parsed.
                    _psrp_stream.receive_streamed(
                        pipeline,
                        on_output,
                        poll_timeout=functools.partial(self._poll_timeout, deadline),
                        retry=self._retry,
                    )
        except BaseException as err:
            self._stop(pipeline, err)
            if isinstance(err, wire_errors()):
                # A Receive cut off mid-answer is not repeated (pypsrp cannot ask for its
                # fragments again): the pipeline ran, and its output is incomplete.
                lost = began and no_whole_answer(err)
                raise_failure(self._failure(err, answer_lost=lost, in_command=True))
            raise
        self._finished_pipeline = pipeline
        return self._result(pipeline)

    def _begin(
        self, pipeline: PowerShell, script: str, arguments: c.Sequence[str], pipeline_input: t.Any
    ) -> PowerShell:
        """Create + Send: never repeated, whatever happens, except when the host answered that
        it no longer has the pool (a kept pool ends with a WinRM restart or a reboot): nothing
        was started, and the pipeline that runs is created in a new pool."""
        try:
            pipeline.begin_invoke(pipeline_input)
        except WSManFaultError as fault:
            if fault_code(fault) != _wsman_faults.SHELL_NOT_FOUND:
                raise
            self._log("the host no longer has the runspace pool; opening a new one")
            self._forget_pool()
            self.open()
            pipeline = self._pipeline(script, arguments)
            pipeline.begin_invoke(pipeline_input)
        self._pipelines_in_pool += 1
        return pipeline

    def _take_ahead(
        self, script: str, arguments: c.Sequence[str], input_lines: c.Iterable[str] | None
    ) -> PowerShell | None:
        """The pipeline created ahead for this script and these arguments, taken for this
        run; None when there is none (a pipeline ahead for something else stays)."""
        ahead = self._ahead
        if ahead is None:
            return None
        if input_lines is None or isinstance(input_lines, c.Iterator):
            return None  # only a module's input, a list, goes to a pipeline created ahead
        if ahead.request != (script, tuple(arguments)):
            return None
        self._ahead = None
        return ahead.pipeline

    def _send_input_to_ahead(self, pipeline: PowerShell, pipeline_input: t.Any) -> bool:
        """Send the input to a pipeline created ahead; False when the host took none of it
        (a fault to the first Send other than OperationTimeout, which Windows answers after
        taking the data), and the run's own pipeline is created afresh, for the first time, by
        ``_begin`` (which opens a new pool when the host has lost this one)."""
        try:
            timed_out = send_input(pipeline, pipeline_input or [])
        except InputRefused as refused:
            self._log(f"the pipeline created ahead took no input ({refused}); creating it now")
            if fault_code(refused.fault) == _wsman_faults.SHELL_NOT_FOUND:
                # The pipeline or its whole pool is gone (Windows answers both with this code,
                # pypsrp recording test_winrs_bad_cmd_id.yml): nothing to stop.
                self._require_pool().pipelines.pop(pipeline.id, None)
            else:
                self._stop(pipeline, refused.fault)
            return False
        if timed_out:
            self._warn(
                f"{PLUGIN_NAME}: the host answered {timed_out} input Send(s) with "
                "OperationTimeout; continuing on the assumption that it took the input. If this "
                "recurs, raise operation_timeout"
            )
        self._log(f"using pipeline {pipeline.id}, created ahead after an earlier task")
        return True

    def start_ahead(self, script: str, arguments: c.Sequence[str]) -> None:
        """Between tasks (a module task's end tells the holder, kept._slot): in ``settle``,
        after the answer, create a pipeline for this script and these arguments that waits for
        its input, so that the next module task only sends its input (session._psrp_ahead).

        Only for Ansible's module bootstrap, which runs no module code before it has read the
        module from its input (as the connection plugin tells), so a pipeline that no task uses
        has run no module when the pool's close ends it. Not within a task: one at a time."""
        if self._pipeline_ahead_allowed and self.is_open:
            self._request_to_start_ahead = (script, tuple(arguments))

    def _start_ahead(self) -> None:
        request, self._request_to_start_ahead = self._request_to_start_ahead, None
        if request is None or self._pool is None:
            return
        if self._ahead is not None:
            if self._ahead.request == request:
                return  # one waits already
            stale, self._ahead = self._ahead, None
            self._stop(stale.pipeline, RuntimeError("another module bootstrap"))
        pipeline = self._pipeline(*request)
        try:
            with self._credentials():
                create_waiting_for_input(pipeline)
        except Exception as err:
            self._log(f"creating a pipeline ahead for the next module task failed: {err}")
            if pipeline.state == PSInvocationState.RUNNING:
                self._stop(pipeline, err)
            elif not isinstance(err, WSManFaultError):
                # The host may have created it without our hearing of it: a pipeline waiting
                # for input that nothing stops would hold a runspace. A new pool starts clean
                # (should that fail, the holder ends and the next task opens its own).
                self._close_pool()
                self.open()
            return
        self._pipelines_in_pool += 1
        self._ahead = _PipelineAhead(request, pipeline)
        self._log(f"created pipeline {pipeline.id} ahead for the next module task")

    def _pipeline(self, script: str, arguments: c.Sequence[str]) -> PowerShell:
        pipeline = PowerShell(self._require_pool())
        pipeline.add_script(script, use_local_scope=True)
        for argument in arguments:
            pipeline.add_argument(argument)
        return pipeline

    def _forget_pool(self) -> None:
        """Drop a pool the host no longer has, without asking the host to close it."""
        pool, self._pool = self._pool, None
        self._finished_pipeline = None
        self._ahead = None
        if pool is not None:
            pool.connection.close()

    def _timeout_error(self) -> CommandTimeoutError:
        return CommandTimeoutError(
            f"{PLUGIN_NAME}: the command ran longer than command_timeout "
            f"({self.settings.command_timeout:g}s, ansible_psrp_command_timeout) and was "
            "stopped on the host"
        )

    def _stream_input(self, lines: c.Iterator[str], deadline: float | None) -> c.Iterator[str]:
        # A generator, because pypsrp streams only generators item by item; the deadline is
        # checked between items so that a long upload obeys command_timeout too.
        for line in lines:
            if deadline is not None and self._clock() >= deadline:
                raise self._timeout_error()
            yield line

    def _poll_timeout(self, deadline: float | None) -> int:
        """Seconds the next Receive may wait: the operation timeout, cut to the time left."""
        operation_timeout = self.settings.operation_timeout
        if deadline is None:
            return operation_timeout
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise self._timeout_error()
        return max(1, min(operation_timeout, math.ceil(remaining)))

    def _stop(self, pipeline: PowerShell, reason: BaseException) -> None:
        """Send the PSRP stop signal to a pipeline that is still running on the host."""
        if pipeline.state != PSInvocationState.RUNNING:
            return
        self._log(f"stopping the remote pipeline {pipeline.id} ({type(reason).__name__})")
        try:
            with self._credentials():
                pipeline.stop()
        except Exception as err:
            self._log(f"stopping the remote pipeline {pipeline.id} failed: {err}")

    def settle(self) -> None:
        """Release the last finished pipeline on the host, and renew a pool that has run
        PIPELINES_PER_POOL pipelines, between tasks: a holder calls it after answering
        (kept._holder), so no task waits for it. Otherwise the next pipeline or the pool's
        close releases it, and a pool that is not kept ends with its task anyway."""
        if self._finished_pipeline is not None:
            self._release_finished_pipeline()
        if self._pool is not None and self._pipelines_in_pool >= PIPELINES_PER_POOL:
            self._log(
                f"renewing the runspace pool after {self._pipelines_in_pool} pipelines "
                "(what they loaded into its wsmprovhost process stays until it ends)"
            )
            if self._ahead is not None and self._request_to_start_ahead is None:
                self._request_to_start_ahead = self._ahead.request  # again, in the new pool
            self._close_pool()
            self.open()
        self._start_ahead()

    def _release_finished_pipeline(self) -> None:
        pipeline, self._finished_pipeline = self._finished_pipeline, None
        if pipeline is None or self._pool is None:
            return
        try:
            with self._credentials():
                self._pool.shell.signal(SignalCode.TERMINATE, str(pipeline.id).upper())
        except wire_errors() as err:
            # Only the host's bookkeeping suffers; closing the pool frees it anyway.
            self._log(f"releasing the finished pipeline {pipeline.id} failed: {err}")
        finally:
            self._pool.pipelines.pop(pipeline.id, None)

    def _result(self, pipeline: PowerShell) -> PipelineResult:
        host = t.cast(PSHost, self._host)
        ui = t.cast(PSHostUserInterface, host.ui)
        result = collect_result(
            output=pipeline.output,
            error_records=pipeline.streams.error,
            host_stdout=ui.stdout,
            host_stderr=ui.stderr,
            exit_code=host.rc,
            failed=bool(pipeline.had_errors),  # pypsrp sets it when the pipeline failed
            include_stacktrace=self._include_stacktrace,
        )
        # The host object is shared by every pipeline of the pool: start the next one clean.
        host.rc = None
        ui.stdout = []
        ui.stderr = []
        return result

    # -- file transfer ---------------------------------------------------------------------

    def transfer_chunk_sizes(self) -> tuple[int, int]:
        """PUT and FETCH lines alike: each one input or output object within one envelope."""
        size = self.transfer_chunk_size()
        return size, size

    def run_transfer_script(
        self,
        script: str,
        input_lines: c.Iterable[str],
        on_output: c.Callable[[str], None] | None,
    ) -> _transfer.ScriptResult:
        """Run a transfer script in the runspace; each output string is one line of text."""
        handler = None
        if on_output is not None:
            text_sink = on_output

            def handler(objects: list[t.Any]) -> None:
                for item in objects:
                    if not isinstance(item, str):
                        raise _transfer.TransferError(
                            f"unexpected {type(item).__name__} in a transfer script's output"
                        )
                    text_sink(f"{item}\n")

        result = self.run(script, input_lines, on_output=handler)
        return _transfer.ScriptResult(result.rc, result.stdout, result.stderr)

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
            self.settings.retry_policy,
            answer_lost,
            log=self._log,
            sleep=self._sleep,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _require_pool(self) -> RunspacePool:
        if self._pool is None:
            raise AnsibleConnectionFailure(f"{PLUGIN_NAME}: the runspace pool is not open")
        return self._pool

    def _retry(self, operation: str, func: c.Callable[[], t.Any]) -> t.Any:
        return call_with_retry(
            operation,
            func,
            self.settings.retry_policy,
            is_transient,
            log=self._log,
            sleep=self._sleep,
        )

    def _credentials(self) -> t.ContextManager[None]:
        # KRB5CCNAME points at our private cache while pypsrp may authenticate (any request
        # can open a new connection); without managed Kerberos the environment is untouched.
        return ticket_environment(self._ccache)

    def _failure(
        self, err: BaseException, *, answer_lost: bool = False, in_command: bool = False
    ) -> AnsibleError:
        """The diagnosed failure for ``err``, without any secret (see diagnosis._failure);
        ``in_command``: it ended a pipeline of the open pool."""
        # Imported here, not at the top: the classifier is only needed when something failed, and
        # Ansible compiles a collection's modules afresh in every task's worker process.
        from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._failure import (
            connection_failure,
        )

        return connection_failure(
            err, self.settings, answer_lost=answer_lost, in_command=in_command
        )
