"""PSRP string escaping without scanning text that has nothing to escape.

Internal use only: this module is not part of the collection's public API.

A PSRP string (MS-PSRP 2.2.5.1.1, encoded as 2.2.5.3.2 says) carries a character XML cannot
carry, and every ``_x`` (which would otherwise read as the start of an escape), as ``_xHHHH_``.
pypsrp's Serializer applies two regular expressions to every string it writes and decodes every
string it reads to UTF-16 and back to apply a third. A file transfer's base64 lines (tens of
megabytes) never need it, yet it took about a fifth of a 50 MB put's time (docs/benchmarks.md).

``skip_needless_escaping`` gives one pypsrp Serializer a shortcut for the strings those
expressions would return unchanged, and hands every other string to pypsrp as before:

- written: printable ASCII without ``_`` (no control character, nothing outside ASCII, no
  ``_x``);
- read: text without ``_`` (no ``_xHHHH_`` escape). The XML parser never yields the lone
  surrogates that pypsrp's UTF-16 round trip would refuse.
"""

from __future__ import annotations

import typing as t


def plain_to_write(value: object) -> bool:
    """True when MS-PSRP's escaping leaves ``value`` as it is."""
    return isinstance(value, str) and value.isascii() and value.isprintable() and "_" not in value


def plain_to_read(value: object) -> bool:
    """True when ``value`` holds no ``_xHHHH_`` escape to decode."""
    return isinstance(value, str) and "_" not in value


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
        return value if plain_to_write(value) else escape(value)

    def deserialize_string(value: t.Any) -> t.Any:
        return value if plain_to_read(value) else unescape(value)

    serializer._serialize_string = serialize_string
    serializer._deserialize_string = deserialize_string
