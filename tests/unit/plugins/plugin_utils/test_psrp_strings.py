"""session._psrp_strings: pypsrp's string escaping skipped only where it changes nothing.

Every check compares against a real pypsrp Serializer without the shortcut: the shortcut may
only change how fast a string is written or read, never what goes on the wire or comes back.
"""

from __future__ import annotations

import base64
import random
import xml.etree.ElementTree as ET

import pytest
from pypsrp.serializer import Serializer

from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_strings import (
    plain_to_read,
    skip_needless_escaping,
    written,
)

STRINGS = [
    "",
    "plain text, with spaces; and punctuation!",
    base64.b64encode(bytes(range(256)) * 4).decode("ascii"),
    "_x0041_",  # reads as an escape unless its _ is escaped
    "_X0041_",  # the escape matcher ignores case
    "snake_case",
    "$_.x_X _x_x __xx _Xx_",  # _x and _X side by side, as PowerShell text may have them
    "tab\there",
    "line\r\nbreak",
    "nul\x00",
    "del\x7f",
    "c1 control\x85",
    "caf\u00e9",
    "astral \U0001f600",
    "lone \udc80 surrogate",
]


def _shortcut() -> Serializer:
    serializer = Serializer()
    skip_needless_escaping(serializer)
    return serializer


def _random_strings(count: int) -> list[str]:
    rng = random.Random(20261206)
    alphabet = "aZ09+/=_xX \t\r\n\x00\x1f\x7f\x9f\u00e9\u2028\U0001f600"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(count)]


@pytest.mark.parametrize("text", STRINGS + _random_strings(300))
def test_written_strings_are_what_pypsrp_writes(text: str) -> None:
    try:
        expected = ET.tostring(Serializer().serialize(text))
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _shortcut().serialize(text)
        return
    assert ET.tostring(_shortcut().serialize(text)) == expected


@pytest.mark.parametrize("text", STRINGS + _random_strings(300))
def test_read_strings_are_what_pypsrp_reads(text: str) -> None:
    try:
        wire = ET.fromstring(ET.tostring(Serializer().serialize(text)))
    except (UnicodeEncodeError, ET.ParseError):
        return  # not valid XML text (a lone surrogate): no host answer carries it
    assert _shortcut().deserialize(wire) == Serializer().deserialize(wire)


def test_only_printable_ascii_is_written_without_pypsrp() -> None:
    assert written("SGVsbG8gd29ybGQ=") == "SGVsbG8gd29ybGQ="
    assert written("$_ _x0041_ _X") == "$_ _x005F_x0041_ _x005F_X"
    assert written("tab\t") is None
    assert written("caf\u00e9") is None
    assert written(b"bytes") is None


def test_only_strings_without_an_escape_are_read_without_pypsrp() -> None:
    assert plain_to_read("caf\u00e9 \U0001f600")  # read back as is: only _xHHHH_ is decoded
    assert plain_to_read("$_.Name _X0041_")  # the escape is lower-case _x only
    assert not plain_to_read("a_x0009_b")
    assert not plain_to_read("caf\u00e9_")  # UTF-16 bytes of other text may hold a match
    assert not plain_to_read(None)


def test_a_module_payload_is_written_as_pypsrp_writes_it() -> None:
    # PowerShell text with $_ and _x as Ansible's module payload carries it, 170 KB.
    line = '{"script": "$_.x | % { $_x = 1 }; _X_x; function a_b { $args }"}' * 2600
    assert ET.tostring(_shortcut().serialize(line)) == ET.tostring(Serializer().serialize(line))


def test_pipeline_input_on_the_wire_is_unchanged() -> None:
    # What a transfer sends: base64 lines as pipeline input objects of a pool's Serializer.
    line = base64.b64encode(random.Random(1).randbytes(3000)).decode("ascii")
    plain, fast = Serializer(), _shortcut()
    assert ET.tostring(fast.serialize(line)) == ET.tostring(plain.serialize(line))
    assert fast.deserialize(fast.serialize(line)) == line


def test_a_serializer_without_the_methods_is_left_alone() -> None:
    class Elsewhere:
        pass

    target = Elsewhere()
    skip_needless_escaping(target)
    skip_needless_escaping(None)
    assert vars(target) == {}
