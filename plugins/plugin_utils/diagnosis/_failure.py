"""The one way a connection failure leaves the session layer: diagnosed, redacted, safe to chain.

Internal use only: this module is not part of the collection's public API.

``connection_failure`` turns a library error (or one of our own AnsibleErrors) into the error
Ansible shows. Its message never holds a secret of the connection, and neither does any
exception chained to it: when an error behind it carries a secret, the failure keeps no
``__cause__`` and suppresses its context, and ``core._chain.raise_failure`` also clears the ``__context__``
Python sets when it is raised inside an ``except`` block. Ansible prints causes and tracebacks
verbatim (-vvv), so a chained library error would show the password its text quotes.
"""

from __future__ import annotations

import collections.abc as c

from ansible.errors import AnsibleConnectionFailure, AnsibleError

from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    CONCEALS_CONTEXT,
    TRANSIENT_HTTP_STATUSES,
    AnswerLost,
    exception_chain,
    http_status,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import diagnose
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Diagnosis,
    describe,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    ConnectionSettings,
)


class _Diagnosed(AnsibleError):
    """An error that carries the Diagnosis its message was built from."""

    # The message already quotes what was seen; ansible-core 2.19 would otherwise append the
    # cause's own text after the fix line (older cores ignore the attribute).
    _include_cause_message = False

    def __init__(self, message: str, diagnosis: Diagnosis) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


class DiagnosedConnectionFailure(_Diagnosed, AnsibleConnectionFailure):
    """The host could not be reached or logged on to: Ansible shows it UNREACHABLE."""


class LostAnswerFailure(DiagnosedConnectionFailure, AnswerLost):
    """A DiagnosedConnectionFailure of a command whose output was cut off mid-answer."""


class DiagnosedTaskFailure(_Diagnosed):
    """A command's failure on a host that answered it: the task FAILED (where ignore_errors
    applies), the host is not unreachable."""


# Diagnoses of an answer from the host: a WS-Management fault, an HTTP error status, a transfer
# the host reported failed. During a command the builtin plugins let these out of exec_command
# as they are, and Ansible shows the task FAILED. The rest stays a connection failure (the host
# UNREACHABLE): what stops the host being reached (name, TCP, TLS, a logon refused, message
# encryption, a timeout, a connection cut off) and errors of no known kind, which may be any
# of those (a broken connection requests words differently, say).
HOST_ANSWERED = frozenset(
    {
        "wsman_not_found",
        "http_status",
        "identify_not_wsman",
        "envelope_too_large",
        "access_denied",
        "no_configuration",
        "shells_quota_exhausted",
        "operations_quota_exhausted",
        "quota_exhausted",
        "wsman_fault",
        "transfer_failed",
        "shell_gone",
    }
)
# Diagnoses whose wording is for a connection being made (a listener, a port, a firewall), or
# does not say that what the task sent may have run, and the wording they take instead during a
# task whose session was working.
DURING_TASK = {
    "tcp_refused": "broke_during_task",
    "tcp_timeout": "broke_during_task",
    "closed_connection": "broke_during_task",
    "unexpected": "unexpected_during_task",
    "read_timeout": "read_timeout_during_task",
}


def _host_answered(exc: BaseException, diagnosis: Diagnosis) -> bool:
    """Whether ``diagnosis`` of ``exc`` is an answer of the host (HOST_ANSWERED). A 502, 503
    or 504 is not: the service behind the listener is not there (stopping, starting, or a
    gateway's), as for a host that cannot be reached."""
    if diagnosis.key not in HOST_ANSWERED:
        return False
    statuses = {http_status(error) for error in exception_chain(exc)}
    return not statuses & TRANSIENT_HTTP_STATUSES


def render(plugin: str, url: str, diagnosis: Diagnosis, *, connecting: bool = True) -> str:
    """``<plugin>: <layer> failed connecting to <url>: <summary>`` (``failed on`` for a
    command or transfer of a connected session) plus seen and fix lines."""
    where = "connecting to" if connecting else "on"
    return (
        f"{plugin}: {diagnosis.layer.value} failed {where} {url}: "
        f"{diagnosis.summary}\n  seen: {diagnosis.evidence}\n  fix: {diagnosis.fix}"
    )


def _carries_secret(error: BaseException, secrets: c.Sequence[str]) -> bool:
    shown = (str(error), repr(error))
    return any(redact(text, secrets) != text for text in shown)


def _chain_safely(failure: AnsibleError, cause: BaseException, secrets: c.Sequence[str]) -> None:
    """Chain ``cause`` to ``failure`` unless some error behind it quotes a secret."""
    behind = [error for error in exception_chain(cause) if error is not failure]
    if failure is not cause:
        behind.append(cause)
    if any(_carries_secret(error, secrets) for error in behind):
        failure.__cause__ = None
        failure.__suppress_context__ = True
        setattr(failure, CONCEALS_CONTEXT, True)
    elif failure is not cause:
        failure.__cause__ = cause


def connection_failure(
    exc: BaseException,
    settings: ConnectionSettings,
    auth: str | None = None,
    *,
    answer_lost: bool = False,
    in_command: bool = False,
) -> AnsibleError:
    """The error to raise for ``exc`` (with ``raise_failure``): diagnosed, without secrets.

    A library error becomes a DiagnosedConnectionFailure naming the layer, what was seen and
    the fix; an AnsibleError of ours keeps its class and wording. ``auth`` is the
    authentication in use when it differs from the first configured one. ``answer_lost``: the
    session knows that ``exc`` cut off a running command's output (a LostAnswerFailure).
    ``in_command``: ``exc`` ended a command (or transfer) of an open session; when the host
    answered it (HOST_ANSWERED) the failure is a DiagnosedTaskFailure, not a connection one,
    and a diagnosis with connect-time advice (DURING_TASK) is reworded for a session that
    was working. Either way the message says ``failed on`` the URL.
    """
    secrets = settings.secrets
    failure: AnsibleError
    if isinstance(exc, AnsibleError):
        failure = exc
        failure.message = redact(str(failure.message), secrets)
    else:
        diagnosis = diagnose(
            exc,
            settings.endpoint,
            settings.auth_method(auth or settings.auth),
            settings.plugin,
            message_encryption=settings.message_encryption,
        )
        if in_command and diagnosis.key in DURING_TASK:
            diagnosis = describe(
                DURING_TASK[diagnosis.key],
                settings.plugin,
                diagnosis.evidence,
                cause=diagnosis.summary,
            )
        diagnosis.summary = redact(diagnosis.summary, secrets)
        diagnosis.evidence = redact(diagnosis.evidence, secrets)
        diagnosis.fix = redact(diagnosis.fix, secrets)
        name = f"winops.remoting.{settings.plugin}"
        failure_class: type[DiagnosedConnectionFailure | DiagnosedTaskFailure]
        if answer_lost:
            failure_class = LostAnswerFailure
        elif in_command and _host_answered(exc, diagnosis):
            failure_class = DiagnosedTaskFailure
        else:
            failure_class = DiagnosedConnectionFailure
        message = render(name, settings.endpoint.url, diagnosis, connecting=not in_command)
        failure = failure_class(message, diagnosis)
    _chain_safely(failure, exc, secrets)
    return failure
