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
    AnswerLost,
    exception_chain,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import redact
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._errors import diagnose
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Diagnosis,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    ConnectionSettings,
)


class DiagnosedConnectionFailure(AnsibleConnectionFailure):
    """An AnsibleConnectionFailure that carries the Diagnosis its message was built from."""

    # The message already quotes what was seen; ansible-core 2.19 would otherwise append the
    # cause's own text after the fix line (older cores ignore the attribute).
    _include_cause_message = False

    def __init__(self, message: str, diagnosis: Diagnosis) -> None:
        super().__init__(message)
        self.diagnosis = diagnosis


class LostAnswerFailure(DiagnosedConnectionFailure, AnswerLost):
    """A DiagnosedConnectionFailure of a command whose output was cut off mid-answer."""


def render(plugin: str, url: str, diagnosis: Diagnosis) -> str:
    """``<plugin>: <layer> failed connecting to <url>: <summary>`` plus seen and fix lines."""
    return (
        f"{plugin}: {diagnosis.layer.value} failed connecting to {url}: "
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
) -> AnsibleError:
    """The error to raise for ``exc`` (with ``raise_failure``): diagnosed, without secrets.

    A library error becomes a DiagnosedConnectionFailure naming the layer, what was seen and
    the fix; an AnsibleError of ours keeps its class and wording. ``auth`` is the
    authentication in use when it differs from the first configured one. ``answer_lost``: the
    session knows that ``exc`` cut off a running command's output (a LostAnswerFailure).
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
        diagnosis.summary = redact(diagnosis.summary, secrets)
        diagnosis.evidence = redact(diagnosis.evidence, secrets)
        diagnosis.fix = redact(diagnosis.fix, secrets)
        name = f"winops.remoting.{settings.plugin}"
        failure_class = LostAnswerFailure if answer_lost else DiagnosedConnectionFailure
        failure = failure_class(render(name, settings.endpoint.url, diagnosis), diagnosis)
    _chain_safely(failure, exc, secrets)
    return failure
