"""session._psrp_unwrap: an encrypted answer in one part unwrapped as pypsrp unwraps it, and
every other layout left to pypsrp's own method."""

from __future__ import annotations

import os
import typing as t

import pytest
from pypsrp.encryption import WinRMEncryption
from pypsrp.exceptions import WinRMError

from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_unwrap import (
    one_part,
    unwrap_one_part_directly,
)

BOUNDARY = "Encrypted Boundary"  # what pypsrp reads from the answer's Content-Type


class Context:
    """A security context that seals by reversing: header, data and the calls it was given."""

    def __init__(self) -> None:
        self.unwrapped: list[tuple[bytes, bytes]] = []

    def wrap_winrm(self, message: bytes) -> tuple[bytes, bytes, int]:
        return b"SIGNATURE-" + bytes([len(message) % 251]), message[::-1], 0

    def unwrap_winrm(self, header: bytes, data: bytes) -> bytes:
        self.unwrapped.append((header, data))
        return data[::-1]


def sealed(message: bytes, protocol: str = WinRMEncryption.SPNEGO) -> tuple[WinRMEncryption, bytes]:
    """pypsrp's encryption over ``Context`` and ``message`` as pypsrp seals it."""
    encryption = WinRMEncryption(Context(), protocol)
    _content_type, payload = encryption.wrap_message(message)
    return encryption, payload


@pytest.mark.parametrize("size", [0, 1, 16_384, 500_000])
def test_one_part_gives_what_pypsrp_gives(size: int) -> None:
    message = os.urandom(size)
    encryption, payload = sealed(message)
    expected = encryption.unwrap_message(payload, BOUNDARY)
    unwrap_one_part_directly(encryption)
    assert encryption.unwrap_message(payload, BOUNDARY) == expected == message
    # The same header and data reached the security context both times.
    first, second = encryption.context.unwrapped
    assert first == second


def test_data_holding_the_delimiter_goes_to_pypsrp() -> None:
    message = b"x" * 100 + b"--Encrypted Boundary\r\n"[::-1] + b"y" * 100
    _encryption, payload = sealed(message)
    assert one_part(payload, BOUNDARY.encode()) is None


@pytest.mark.parametrize(
    "layout",
    [
        # CredSSP seals a long answer as several parts in one "multipart/x-multi-encrypted".
        lambda payload: payload[: -len(b"--Encrypted Boundary--\r\n")] + payload,
        # Exchange writes its delimiters with a space after the dashes.
        lambda payload: payload.replace(b"--Encrypted Boundary", b"-- Encrypted Boundary"),
        # No closing delimiter, no OriginalContent length, no octet-stream part.
        lambda payload: payload[: -len(b"--\r\n")],
        lambda payload: payload.replace(b"Length=", b"Size="),
        lambda payload: payload.replace(b"application/octet-stream", b"application/other-type"),
    ],
    ids=["several-parts", "exchange-delimiters", "unclosed", "no-length", "no-octet-stream"],
)
def test_other_layouts_are_left_to_pypsrp(layout: t.Callable[[bytes], bytes]) -> None:
    encryption, payload = sealed(b"<s:Envelope/>" * 50)
    changed = layout(payload)
    assert one_part(changed, BOUNDARY.encode()) is None
    calls: list[bytes] = []
    encryption.unwrap_message = lambda message, boundary: calls.append(message) or b"pypsrp's"
    unwrap_one_part_directly(encryption)
    assert encryption.unwrap_message(changed, BOUNDARY) == b"pypsrp's"
    assert calls == [changed]


def test_a_header_longer_than_the_part_is_left_to_pypsrp() -> None:
    _encryption, payload = sealed(b"answer")
    start = payload.index(b"application/octet-stream\r\n") + len(b"application/octet-stream\r\n")
    broken = payload[:start] + (10_000).to_bytes(4, "little") + payload[start + 4 :]
    assert one_part(broken, BOUNDARY.encode()) is None


def test_an_answer_of_another_length_than_announced_is_an_error() -> None:
    encryption, payload = sealed(b"0123456789")
    lying = payload.replace(b"Length=10", b"Length=11")
    unwrap_one_part_directly(encryption)
    with pytest.raises(WinRMError, match="10 bytes, not 11"):
        encryption.unwrap_message(lying, BOUNDARY)
