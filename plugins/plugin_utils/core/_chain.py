"""Walking the chain of errors behind an exception, and what the HTTP libraries' errors say.

Internal use only: this module is not part of the collection's public API.

Errors of libraries this code does not import (requests, urllib3, pywinrm, pypsrp) are
recognised by their class names, so that the retry rules and the diagnosis read them alike.
"""

from __future__ import annotations

import socket
import ssl
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


# How urllib3 and requests say that the TCP connection was never made (refused, not made in
# time, or its name did not resolve), and how pypsrp and pywinrm say that the host refused the
# logon (HTTP 401 after the authentication legs).
_NO_CONNECTION = frozenset(
    ("NewConnectionError", "ConnectTimeoutError", "ConnectTimeout", "NameResolutionError")
)
_LOGON_REFUSED = frozenset(("AuthenticationError", "InvalidCredentialsError", "SpnegoError"))
# OpenSSL's reasons for a handshake the two sides could not agree on (version, cipher, key
# exchange): no request goes out before the handshake ends. A TLS error with another reason
# (a record that failed its check, the connection ending) may come after a request went out.
_TLS_HANDSHAKE_REFUSED = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "NO_SHARED_CIPHER",
        "NO_CIPHERS_AVAILABLE",
        "DH_KEY_TOO_SMALL",
        "TLSV1_ALERT_INSUFFICIENT_SECURITY",
    }
)


def never_reached_host(exc: BaseException) -> bool:
    """True when the host cannot have taken the request that failed with ``exc``, so it created
    nothing and ran nothing: the name did not resolve, the TCP connection was refused or not
    made, TLS failed in its handshake (the certificate failed validation, or the sides agreed on
    no version or cipher: _TLS_HANDSHAKE_REFUSED), or the logon failed (a 401 after
    the authentication legs, or the authentication library could not make or take a token:
    the message that carries the request is sent only once the logon succeeded). pyspnego
    raises the same SpnegoError when an answer cannot be unwrapped, after the host took the
    request; that is rare (a security context out of step with the host's) and counts as a
    failed logon here.

    Both sessions ask it before they treat a broken request as one the host may have acted on
    (a shell or pool to delete, output a Receive may have lost).
    """
    for error in exception_chain(exc):
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
            return True
        if isinstance(error, ssl.SSLCertVerificationError) or (
            isinstance(error, ssl.SSLError)
            and getattr(error, "reason", None) in _TLS_HANDSHAKE_REFUSED
        ):
            return True
        if (_NO_CONNECTION | _LOGON_REFUSED) & class_names(error):
            return True
    return False


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
