"""Keeping secrets out of logs, messages and debug output.

Internal use only: this module is not part of the collection's public API.
"""

from __future__ import annotations

import json
import re
import typing as t
from xml.sax.saxutils import escape as xml_escape

MASK = "********"
# Option names whose values are secrets (passwords, private keys, tokens): a name that contains
# one of these, in any case. Plain substrings, not a regular expression: every task's worker
# imports this module, and compiling a pattern there costs more than all the checks it makes.
_SECRET_OPTION_PARTS = ("pass", "secret", "key_pem", "token")


def _spellings(secret: str) -> set[str]:
    # A secret can reach text as written, JSON-escaped, repr()-escaped or XML-escaped (SOAP).
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        xml_escape(secret, {'"': "&quot;", "'": "&apos;"}),
    }


# A secret at least this long is masked wherever it appears, even inside a word. A shorter one
# is masked only where it stands as a token of its own (no letter, digit or underscore touching
# either end): masking "p" inside "accepted" would mangle the message and reveal nothing, since
# a short string inside a word is not recognisable as the password; where a message shows the
# password itself (after "=", ":", a quote, a space), it stands alone and is masked.
WHOLE_WORD_BELOW = 8


def _pattern(spelling: str) -> str:
    escaped = re.escape(spelling)
    if len(spelling) >= WHOLE_WORD_BELOW:
        return escaped
    return rf"(?<!\w){escaped}(?!\w)"


def redact(text: str, secrets: t.Iterable[str | None]) -> str:
    """Return ``text`` with every non-empty secret (and its escaped forms) replaced by MASK.

    Secrets shorter than WHOLE_WORD_BELOW characters are masked only as whole tokens (see
    there); longer ones wherever they occur.
    """
    spellings: set[str] = set()
    for secret in secrets:
        if secret:
            spellings |= _spellings(secret)
    if not spellings:
        return text
    # Longest first, so a secret that contains another is masked whole; one pass, so a mask
    # is never masked again (a password of "*" would otherwise eat the mask itself).
    ordered = sorted(spellings, key=len, reverse=True)
    return re.sub("|".join(_pattern(spelling) for spelling in ordered), MASK, text)


def is_secret_option(name: str) -> bool:
    """True when an option of this name holds a secret (password, key, token)."""
    lowered = name.lower()
    return any(part in lowered for part in _SECRET_OPTION_PARTS)


# The option (both plugins') whose value, a proxy URL, may carry a user and a password
# (core._validation.proxy_credentials): not a secret as a whole, but never shown or stored whole.
PROXY_OPTION = "proxy"


def holds_secret(name: str) -> bool:
    """True when an option of this name is a secret or may carry one (a proxy URL)."""
    return name == PROXY_OPTION or is_secret_option(name)


def redacted_options(options: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of ``options`` safe to log: secret values replaced by MASK, nested dicts too.

    An unset secret (None) stays None, so the log still tells whether it was given.
    """
    safe: dict[str, t.Any] = {}
    for name, value in options.items():
        if is_secret_option(str(name)) and value is not None:
            safe[name] = MASK
        elif isinstance(value, dict):
            safe[name] = redacted_options(value)
        else:
            safe[name] = value
    return safe
