"""Tests for _retry: what is retried, how long it waits, and what surfaces when it gives up."""

from __future__ import annotations

import io
import socket
import ssl

import pypsrp.exceptions
import pytest
import requests
import spnego.exceptions
import urllib3.exceptions
import urllib3.response
import winrm.exceptions

from ansible_collections.winops.remoting.plugins.plugin_utils.core._chain import (
    exception_chain,
    is_partial_answer,
    never_reached_host,
    no_whole_answer,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    RetryPolicy,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._retry import (
    PSRP_RULES,
    WINRM_RULES,
    call_with_retry,
    is_transient,
)


class Transient(Exception):
    pass


class Permanent(Exception):
    pass


class FlakyOperation:
    """Raises the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def only_transient(exc: BaseException) -> bool:
    return isinstance(exc, Transient)


def test_transient_errors_retried_with_doubling_backoff() -> None:
    operation = FlakyOperation(Transient("a"), Transient("b"), Transient("c"))
    sleeps: list[float] = []
    logged: list[str] = []
    result = call_with_retry(
        "create shell",
        operation,
        RetryPolicy(retries=3, backoff=0.5),
        only_transient,
        log=logged.append,
        sleep=sleeps.append,
    )
    assert result == "done"
    assert operation.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert logged == [
        "create shell failed with Transient: a; retry 1 of 3 in 0.5s",
        "create shell failed with Transient: b; retry 2 of 3 in 1s",
        "create shell failed with Transient: c; retry 3 of 3 in 2s",
    ]


def test_backoff_is_capped() -> None:
    operation = FlakyOperation(*(Transient(str(i)) for i in range(5)))
    sleeps: list[float] = []
    call_with_retry(
        "receive",
        operation,
        RetryPolicy(retries=5, backoff=4, max_backoff=10),
        only_transient,
        sleep=sleeps.append,
    )
    assert sleeps == [4, 8, 10, 10, 10]


def test_success_first_time_does_not_sleep() -> None:
    sleeps: list[float] = []
    assert (
        call_with_retry(
            "identify", FlakyOperation(), RetryPolicy(), only_transient, sleep=sleeps.append
        )
        == "done"
    )
    assert sleeps == []


def test_non_transient_error_is_not_retried() -> None:
    error = Permanent("access denied")
    operation = FlakyOperation(error, Transient("never reached"))
    sleeps: list[float] = []
    with pytest.raises(Permanent) as exc:
        call_with_retry(
            "delete shell", operation, RetryPolicy(retries=5), only_transient, sleep=sleeps.append
        )
    assert exc.value is error
    assert operation.calls == 1
    assert sleeps == []


def test_retries_exhausted_reraises_last_error_with_its_cause() -> None:
    errors = []
    for number in range(3):
        try:
            raise OSError(f"socket {number}")
        except OSError as cause:
            try:
                raise Transient(f"attempt {number}") from cause
            except Transient as err:
                errors.append(err)
    operation = FlakyOperation(*errors)
    sleeps: list[float] = []
    with pytest.raises(Transient) as exc:
        call_with_retry(
            "receive",
            operation,
            RetryPolicy(retries=2, backoff=1),
            only_transient,
            sleep=sleeps.append,
        )
    assert exc.value is errors[2]
    assert str(exc.value.__cause__) == "socket 2"
    assert operation.calls == 3
    assert sleeps == [1, 2]


def test_zero_retries_means_one_attempt() -> None:
    operation = FlakyOperation(Transient("x"))
    with pytest.raises(Transient):
        call_with_retry(
            "x", operation, RetryPolicy(retries=0), only_transient, sleep=lambda _: None
        )
    assert operation.calls == 1


def test_keyboard_interrupt_is_never_retried() -> None:
    operation = FlakyOperation(KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        call_with_retry("x", operation, RetryPolicy(), lambda _: True, sleep=lambda _: None)
    assert operation.calls == 1


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"retries": -1}, "retries must be >= 0"), ({"backoff": -1}, "backoff")]
)
def test_policy_rejects_negative_values(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def _wrapped_connection_error(reason: BaseException) -> requests.ConnectionError:
    pool_error = urllib3.exceptions.MaxRetryError(None, "/wsman", reason)
    try:
        raise requests.ConnectionError(pool_error) from pool_error
    except requests.ConnectionError as err:
        return err


def winrm_http_error(code: int) -> BaseException:
    return winrm.exceptions.WinRMTransportError("http", code, "Bad HTTP response")


class CodedError(Exception):
    """An error whose ``code`` is not an HTTP status (as WSManFaultError's is a WSMan code)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"code {code}")
        self.code = code


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(111, "Connection refused"), True),
        (ConnectionResetError(104, "Connection reset by peer"), True),
        (_wrapped_connection_error(urllib3.exceptions.NewConnectionError(None, "refused")), False),
        (_wrapped_connection_error(ConnectionRefusedError(111, "Connection refused")), True),
        (
            _wrapped_connection_error(
                urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))
            ),
            True,
        ),
        (_wrapped_connection_error(socket.gaierror(-2, "Name or service not known")), False),
        (
            _wrapped_connection_error(ssl.SSLCertVerificationError(1, "certificate verify failed")),
            False,
        ),
        (requests.exceptions.SSLError("bad handshake"), False),
        (winrm_http_error(503), True),
        (winrm_http_error(502), True),
        (pypsrp.exceptions.WinRMTransportError("http", 504, "Gateway Timeout"), True),
        (winrm_http_error(401), False),
        (winrm_http_error(500), False),
        (CodedError(503), False),
        (ValueError("bad"), False),
    ],
)
def test_default_transient_classifier(error: BaseException, transient: bool) -> None:
    assert is_transient(error, WINRM_RULES) is transient


def test_classifier_reads_requests_response_status() -> None:
    response = requests.Response()
    response.status_code = 503
    assert is_transient(requests.HTTPError("busy", response=response), PSRP_RULES)
    response.status_code = 404
    assert not is_transient(requests.HTTPError("missing", response=response), PSRP_RULES)


def test_classifier_survives_cyclic_chains() -> None:
    first = ValueError("first")
    second = ValueError("second", first)
    first.__context__ = second
    assert is_transient(first, WINRM_RULES) is False


def _half_read_response() -> urllib3.response.HTTPResponse:
    return urllib3.response.HTTPResponse(body=io.BytesIO(b"part"), preload_content=False)


def _cut_answer() -> BaseException:
    return requests.exceptions.ChunkedEncodingError(
        urllib3.exceptions.ProtocolError("Response ended prematurely")
    )


@pytest.mark.parametrize(
    ("error", "winrm", "psrp"),
    [
        pytest.param(ConnectionResetError(104, "reset"), True, True, id="reset"),
        pytest.param(winrm_http_error(503), True, True, id="503"),
        pytest.param(socket.gaierror(-2, "unknown"), False, False, id="dns"),
        # pypsrp's urllib3 retried the connect already; pywinrm's did not.
        pytest.param(ConnectionRefusedError(111, "refused"), True, False, id="refused"),
        # Only the winrm session notices output lost with a cut Receive answer.
        pytest.param(_cut_answer(), True, False, id="cut-answer"),
    ],
)
def test_one_classifier_differs_only_by_the_documented_rules(
    error: BaseException, winrm: bool, psrp: bool
) -> None:
    assert is_transient(error, WINRM_RULES) is winrm
    assert is_transient(error, PSRP_RULES) is psrp


@pytest.mark.parametrize(
    ("error", "unanswered", "partial"),
    [
        pytest.param(_cut_answer(), True, True, id="chunked"),
        pytest.param(
            requests.exceptions.ChunkedEncodingError(
                urllib3.exceptions.ProtocolError(
                    "Connection broken",
                    urllib3.exceptions.InvalidChunkLength(_half_read_response(), b"zz"),
                )
            ),
            True,
            True,
            id="invalid-chunk-length",
        ),
        pytest.param(
            _wrapped_connection_error(
                urllib3.exceptions.ProtocolError("aborted", ConnectionResetError(104, "reset"))
            ),
            True,
            False,
            id="aborted",
        ),
        pytest.param(
            requests.exceptions.ReadTimeout("read timed out"), False, False, id="read-timeout"
        ),
        pytest.param(ConnectionRefusedError(111, "refused"), False, False, id="refused"),
    ],
)
def test_a_missing_answer_is_told_apart_from_one_that_broke_off(
    error: BaseException, unanswered: bool, partial: bool
) -> None:
    # No whole answer (the psrp pool open is repeated once its pool is deleted, a fetch is
    # restarted); part of one (the diagnosis says the host had the request). A read timeout
    # (the host may still act) is neither.
    assert no_whole_answer(error) is unanswered
    assert any(is_partial_answer(e) for e in exception_chain(error)) is partial


def _with_reason(error: ssl.SSLError, reason: str) -> ssl.SSLError:
    """An ssl error as OpenSSL raises it, with its reason code (as _ssl sets it)."""
    error.reason = reason  # type: ignore[misc]
    return error


def _tls_error(reason: ssl.SSLError) -> requests.exceptions.SSLError:
    """A TLS failure as requests raises it: requests' SSLError, urllib3's MaxRetryError and
    SSLError, and the ssl module's error."""
    tls = urllib3.exceptions.SSLError(reason)
    pool_error = urllib3.exceptions.MaxRetryError(None, "/wsman", tls)
    try:
        raise requests.exceptions.SSLError(pool_error) from pool_error
    except requests.exceptions.SSLError as err:
        return err


@pytest.mark.parametrize(
    ("error", "never_reached"),
    [
        pytest.param(
            _wrapped_connection_error(ConnectionRefusedError(111, "x")), True, id="refused"
        ),
        pytest.param(
            _wrapped_connection_error(urllib3.exceptions.NewConnectionError(None, "x")),
            True,
            id="no-connection",
        ),
        pytest.param(requests.exceptions.ConnectTimeout("connect timed out"), True, id="connect"),
        pytest.param(_wrapped_connection_error(socket.gaierror(-2, "unknown")), True, id="dns"),
        pytest.param(
            _tls_error(ssl.SSLCertVerificationError(1, "certificate verify failed")),
            True,
            id="certificate",
        ),
        pytest.param(
            _tls_error(
                _with_reason(ssl.SSLError(1, "wrong version number"), "WRONG_VERSION_NUMBER")
            ),
            True,
            id="tls-version",
        ),
        pytest.param(
            _tls_error(_with_reason(ssl.SSLError(1, "no shared cipher"), "NO_SHARED_CIPHER")),
            True,
            id="tls-cipher",
        ),
        # A record that failed its check may come after a request went out.
        pytest.param(
            _tls_error(_with_reason(ssl.SSLError(1, "bad record mac"), "BAD_RECORD_MAC")),
            False,
            id="tls-record",
        ),
        pytest.param(pypsrp.exceptions.AuthenticationError("401"), True, id="psrp-401"),
        pytest.param(winrm.exceptions.InvalidCredentialsError("401"), True, id="winrm-401"),
        pytest.param(
            spnego.exceptions.NoCredentialError(context_msg="no ticket"), True, id="spnego"
        ),
        # A connection that ended: a request may have gone out on it before.
        pytest.param(_tls_error(ssl.SSLEOFError(8, "EOF")), False, id="tls-eof"),
        pytest.param(_tls_error(ssl.SSLZeroReturnError(6, "closed")), False, id="tls-closed"),
        pytest.param(ConnectionResetError(104, "reset"), False, id="reset"),
        pytest.param(_cut_answer(), False, id="cut-answer"),
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), False, id="read-timeout"),
        pytest.param(winrm_http_error(500), False, id="500"),
    ],
)
def test_what_never_reached_the_host(error: BaseException, never_reached: bool) -> None:
    # Both sessions ask this before they delete a shell or pool whose Create broke off, and the
    # winrm session before it counts a broken Receive's output as possibly lost.
    assert never_reached_host(error) is never_reached
