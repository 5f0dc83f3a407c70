"""Readable stderr from PowerShell's CLIXML stream serialisation.

Internal use only: this module is not part of the collection's public API.

powershell.exe with redirected output writes its non-output streams to stderr as
``#< CLIXML`` followed by ``<Objs>`` documents: ``<S S="Error">`` strings for error lines,
``<S S="warning">`` etc. for other streams and ``<Obj S="progress">`` records for progress bars.
Characters XML cannot carry (CR, LF, ...) are escaped as ``_xHHHH_``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

CLIXML_MARKER = "#< CLIXML"
_OBJS_DOCUMENT = re.compile(r"<Objs\b.*?</Objs>", re.DOTALL)
# MS-PSRP 2.2.5.3.2: control and surrogate characters as _xHHHH_ (UTF-16 code unit, 4 digits).
_ESCAPED_CHAR = re.compile(r"_x([0-9A-Fa-f]{4})_")
# How each non-error text stream reads when PowerShell shows it on a console.
_STREAM_PREFIX = {"warning": "WARNING: ", "verbose": "VERBOSE: ", "debug": "DEBUG: "}


def decode_escapes(text: str) -> str:
    """Decode ``_xHHHH_`` escapes, joining escaped UTF-16 surrogate pairs into one character."""
    decoded = _ESCAPED_CHAR.sub(lambda m: chr(int(m.group(1), 16)), text)
    return decoded.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _render_objs(document: str) -> str:
    root = ET.fromstring(document)
    parts: list[str] = []
    for element in root:
        stream = (element.get("S") or "").lower()
        if stream == "progress":
            continue
        kind = _local_name(element.tag)
        if kind == "S":
            text = decode_escapes(element.text or "")
            parts.append(_STREAM_PREFIX.get(stream, "") + text)
        elif kind == "Obj":
            # A whole record object: its ToString is what a console would have shown.
            summary = next((e for e in element.iter() if _local_name(e.tag) == "ToString"), None)
            if summary is not None and summary.text:
                parts.append(decode_escapes(summary.text).rstrip("\r\n") + "\n")
    return "".join(parts).replace("\r\n", "\n")


def clean_stderr(data: str) -> str:
    """Return ``data`` with CLIXML progress records dropped and other records as plain text.

    Text that is not CLIXML passes through unchanged, and so does a CLIXML document that does
    not parse: a garbled message is better than a lost one.
    """
    marker_at = data.find(CLIXML_MARKER)
    if marker_at < 0:
        return data
    before = data[:marker_at]
    rest = data[marker_at + len(CLIXML_MARKER) :].lstrip("\r\n")
    pieces: list[str] = []
    position = 0
    for match in _OBJS_DOCUMENT.finditer(rest):
        # Each write may start its own "#< CLIXML" block; the markers themselves are noise.
        pieces.append(rest[position : match.start()].replace(CLIXML_MARKER, "").strip("\r\n"))
        try:
            pieces.append(_render_objs(match.group(0)))
        except ET.ParseError:
            pieces.append(match.group(0))
        position = match.end()
    pieces.append(rest[position:].replace(CLIXML_MARKER, "").strip("\r\n"))
    return before + "".join(pieces)
