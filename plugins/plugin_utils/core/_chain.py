"""Walking the chain of errors behind an exception, and what the HTTP libraries' errors say.

Internal use only: this module is not part of the collection's public API.

Errors of libraries this code does not import (requests, urllib3, pywinrm, pypsrp) are
recognised by their class names, so that the retry rules and the diagnosis read them alike.
"""

from __future__ import annotations

import typing as t

# Set on an error whose chain was cut because an error behind it quotes a secret.
CONCEALS_CONTEXT = "_winops_conceals_context"


def exception_chain(exc: BaseException) -> t.Iterator[BaseException]:
    """Yield ``exc`` and every error behind it: causes, contexts and wrapped errors."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # urllib3 keeps the underlying error in .reason (MaxRetryError) or in args
        # (ProtocolError("Connection aborted.", err)) without chaining it.
        nested = [getattr(current, "reason", None), *current.args]
        nested += [current.__cause__, current.__context__]
        pending.extend(error for error in nested if isinstance(error, BaseException))


def class_names(exc: BaseException) -> set[str]:
    """The names of ``exc``'s class and of all its bases."""
    return {cls.__name__ for cls in type(exc).__mro__}


def library_of(exc: BaseException) -> str:
    """The top-level package that defines ``exc``'s class ("winrm", "pypsrp", "requests"...)."""
    return type(exc).__module__.split(".", 1)[0]


# HTTP statuses a proxy, load balancer or a busy WinRM service returns for a passing condition.
TRANSIENT_HTTP_STATUSES = frozenset((502, 503, 504))


def http_status(exc: BaseException) -> int | None:
    """The HTTP status this one error reports: its requests response's, or the code of
    pywinrm's and pypsrp's WinRMTransportError (other errors' ``code`` means something else)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int):
        return status
    if library_of(exc) in ("winrm", "pypsrp") and "WinRMTransportError" in class_names(exc):
        code = getattr(exc, "code", None)
        return code if isinstance(code, int) else None
    return None


# How requests and http.client say that an answer broke off: part of it arrived, then the
# connection ended (urllib3's InvalidChunkLength is an IncompleteRead).
_PARTIAL_ANSWER = frozenset(("ChunkedEncodingError", "IncompleteRead"))


def is_partial_answer(error: BaseException) -> bool:
    """True when this one error says the connection broke after part of the answer arrived."""
    return bool(_PARTIAL_ANSWER & class_names(error))


def is_unanswered(error: BaseException) -> bool:
    """True when this one error says no whole answer came back: it broke off, or the connection
    ended before it began (urllib3's ProtocolError, "Connection aborted.")."""
    return is_partial_answer(error) or "ProtocolError" in class_names(error)


def no_whole_answer(exc: BaseException) -> bool:
    """True when a request went out and no whole answer came back (``is_unanswered`` anywhere in
    the chain). Whether the host acted on the request is unknown either way."""
    return any(is_unanswered(error) for error in exception_chain(exc))


class AnswerLost(Exception):
    """Mixed into the error a session raises when the connection broke while the host was
    answering a running command's Receive: the command ran, but part of its output is lost.

    Only a step that reads and changes nothing on the host may be started again after it
    (a fetch, see the sessions' ``fetch_file``); a command is never repeated.
    """


def answer_lost(exc: BaseException) -> bool:
    """True when ``exc`` or an error behind it is an AnswerLost."""
    return any(isinstance(error, AnswerLost) for error in exception_chain(exc))


def raise_failure(failure: BaseException) -> t.NoReturn:
    """Raise ``failure``; one that conceals its cause leaves no implicit ``__context__`` either."""
    try:
        raise failure
    finally:
        if getattr(failure, CONCEALS_CONTEXT, False):
            failure.__context__ = None
