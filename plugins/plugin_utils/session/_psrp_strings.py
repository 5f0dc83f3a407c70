"""PSRP string escaping without scanning text that has nothing to escape.

Internal use only: this module is not part of the collection's public API.

A PSRP string (MS-PSRP 2.2.5.1.1, encoded as 2.2.5.3.2 says) carries a character XML cannot
carry, and every ``_x`` (which would otherwise read as the start of an escape), as ``_xHHHH_``.
pypsrp's Serializer applies two regular expressions to every string it writes and decodes every
string it reads to UTF-16 and back to apply a third. A file transfer's base64 lines (tens of
megabytes) never need it, yet it took about a fifth of a 50 MB put's time (docs/benchmarks.md).

``skip_needless_escaping`` gives one pypsrp Serializer a shortcut for the strings whose escaping
needs no regular expression, and hands every other string to pypsrp as before:

- written: printable ASCII (no control character, nothing outside ASCII), in which only ``_x``
  and ``_X`` change (to ``_x005F_x`` and ``_x005F_X``, as pypsrp writes them). A module's
  payload is such text, with many ``_`` and rarely an ``_x``: pypsrp's scans of its 170 KB
  cost a psrp task about 1.3 ms;
- read: text without ``_``, or ASCII text without ``_x`` (no ``_xHHHH_`` escape; pypsrp's
  matcher looks for a lower-case ``_x`` in the string's UTF-16 bytes, which in ASCII text can
  only start at a character). The XML parser never yields the lone surrogates that pypsrp's
  UTF-16 round trip would refuse.
"""

from __future__ import annotations

import re
import typing as t

# ASCII's control characters, which MS-PSRP encodes as _xHHHH_. Deleting them from the bytes
# of a string is three times faster than str.isprintable() on a module's payload.
_ASCII_CONTROLS = bytes(range(0x20)) + b"\x7f"
# What pypsrp's case-insensitive "_(x)" finds; searched first, as most strings have none.
_UNDERSCORE_X = re.compile("_[xX]")


def written(value: object) -> str | None:
    """``value`` as MS-PSRP's escaping writes it, when it is printable ASCII; else None (the
    string needs pypsrp's scan for characters to encode)."""
    if not (isinstance(value, str) and value.isascii()):
        return None
    data = value.encode("ascii")
    if len(data.translate(None, _ASCII_CONTROLS)) != len(data):
        return None
    if _UNDERSCORE_X.search(value) is None:
        return value
    # A match of _x or _X cannot overlap another, and neither replacement makes a new one.
    return value.replace("_x", "_x005F_x").replace("_X", "_x005F_X")


def plain_to_read(value: object) -> bool:
    """True when ``value`` holds no ``_xHHHH_`` escape to decode."""
    return isinstance(value, str) and ("_" not in value or (value.isascii() and "_x" not in value))


def skip_needless_escaping(serializer: t.Any) -> None:
    """Let ``serializer`` (a pypsrp Serializer) pass plain strings through untouched.

    Bound on the instance: pypsrp looks both methods up on ``self`` at every call. A pypsrp
    without them is left as it is.
    """
    escape = getattr(serializer, "_serialize_string", None)
    unescape = getattr(serializer, "_deserialize_string", None)
    if escape is None or unescape is None:
        return

    def serialize_string(value: t.Any) -> t.Any:
        text = written(value)
        return escape(value) if text is None else text

    def deserialize_string(value: t.Any) -> t.Any:
        return value if plain_to_read(value) else unescape(value)

    serializer._serialize_string = serialize_string
    serializer._deserialize_string = deserialize_string
