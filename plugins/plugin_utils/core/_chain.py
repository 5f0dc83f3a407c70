"""Walking the chain of errors behind an exception.

Internal use only: this module is not part of the collection's public API.
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
