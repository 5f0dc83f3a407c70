"""Validation of connection options before any network traffic.

Internal use only: this module is not part of the collection's public API.

Every failure is an OptionError whose message names the variable the user set, the value it
had and what would have been accepted:
``Invalid value 'kerberoz' for ansible_winrm_transport: expected one of basic, ...``.
"""

from __future__ import annotations

import decimal
import math
import os
import re
import ssl
import typing as t
import urllib.parse

from ansible.errors import AnsibleError

_TRUE_WORDS = frozenset(("true", "yes", "on", "1", "y", "t"))
_FALSE_WORDS = frozenset(("false", "no", "off", "0", "n", "f"))
# An integer written with an exponent beyond this ("1e999999999") is refused before int()
# would spend minutes building it; no option of ours comes near it.
_MAX_DIGITS = 30


class OptionError(AnsibleError):
    """A connection option has a value the plugin cannot use."""

    def __init__(self, var: str, value: object, what: str) -> None:
        self.var = var
        self.value = value
        self.what = what
        super().__init__(f"Invalid value {value!r} for {var}: expected {what}")


def require(condition: bool, var: str, value: object, what: str) -> None:
    """Raise OptionError for ``var`` unless ``condition`` holds."""
    if not condition:
        raise OptionError(var, value, what)


def as_choice(value: object, allowed: t.Iterable[str]) -> str | None:
    """The lower-case form of ``value`` if it is one of ``allowed`` (ignoring case and blanks)."""
    if isinstance(value, str) and value.strip().lower() in {item.lower() for item in allowed}:
        return value.strip().lower()
    return None


def choice(var: str, value: object, allowed: t.Sequence[str]) -> str:
    """Return the canonical lower-case form of ``value`` if it is one of ``allowed``.

    The comparison ignores case and surrounding blanks; the error lists ``allowed`` in the
    order given.
    """
    canonical = as_choice(value, allowed)
    if canonical is None:
        raise OptionError(var, value, f"one of {', '.join(item.lower() for item in allowed)}")
    return canonical


def _describe_range(kind: str, minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} between {minimum} and {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind


def as_integer(value: object) -> int | None:
    """``value`` as an int, or None when it is not a whole number.

    Accepts ints, whole floats and strings of a whole decimal number ("20", " 20 ", "20.0",
    as ansible-core 2.19 reads an ``int`` option). A bool is refused: "port: true" is a
    mistake, not 1.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
        try:
            parsed = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
        if not parsed.is_finite() or parsed.adjusted() > _MAX_DIGITS:
            return None
        return int(parsed) if parsed == parsed.to_integral_value() else None
    return None


def integer(var: str, value: object, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int within the optional inclusive bounds."""
    number_value = as_integer(value)
    in_range = number_value is not None and (
        (minimum is None or number_value >= minimum)
        and (maximum is None or number_value <= maximum)
    )
    if number_value is None or not in_range:
        raise OptionError(var, value, _describe_range("an integer", minimum, maximum))
    return number_value


def port(var: str, value: object) -> int:
    """Return ``value`` as a TCP port number (1..65535)."""
    number_value = as_integer(value)
    if number_value is None or not 1 <= number_value <= 65535:
        raise OptionError(var, value, "a port number between 1 and 65535")
    return number_value


def as_number(value: object) -> float | None:
    """``value`` as a finite float (from an int, a float or a numeric string), else None."""
    parsed: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        parsed = float(value)
    elif isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            parsed = None
    return parsed if parsed is not None and math.isfinite(parsed) else None


def number(var: str, value: object, minimum: float | None = None) -> float:
    """Return ``value`` as a finite float, at least ``minimum`` when given."""
    parsed = as_number(value)
    if parsed is None or (minimum is not None and parsed < minimum):
        raise OptionError(var, value, _describe_range("a number", minimum, None))
    return parsed


def as_boolean(value: object) -> bool | None:
    """``value`` as a bool, or None when it is not one of the boolean values.

    The values are those of ansible's strict ``boolean()``: bools, 1/0 (int or float) and the
    words true/false, yes/no, on/off, y/n, t/f, 1/0 in any case.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    return None


def boolean(var: str, value: object) -> bool:
    """Return ``value`` as a bool; accepts bools, 1/0 and true/false, yes/no, on/off words."""
    parsed = as_boolean(value)
    if parsed is None:
        raise OptionError(var, value, "a boolean (true/false, yes/no, on/off or 1/0)")
    return parsed


def optional_string(var: str, value: object, what: str) -> str | None:
    """``value`` when it is a string, None when it is unset."""
    if value is None:
        return None
    require(isinstance(value, str), var, value, what)
    return t.cast(str, value)


def nonblank_string(var: str, value: object, what: str) -> str:
    """``value`` when it is a string with something besides blanks in it."""
    require(isinstance(value, str) and bool(value.strip()), var, value, what)
    return t.cast(str, value)


def existing_file(var: str, value: object) -> str:
    """Return the ``~``-expanded path in ``value`` if it names a readable regular file."""
    if isinstance(value, str) and value.strip():
        path = os.path.expanduser(value)
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    raise OptionError(var, value, "the path of an existing, readable file")


# The proxy schemes requests can use: its own HTTP(S) proxies and, with PySocks, SOCKS.
PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def proxy_credentials(value: str) -> tuple[str, str, str]:
    """A proxy URL split as (scheme and "://" or "", the credentials, what follows them).
    The credentials are taken to end at the last "@", even one after a "/": a password with
    an unquoted "/" is still a password. Without a scheme requests reads user:pw@proxy:3128
    as http://user:pw@proxy:3128, so the credentials are the same."""
    # A scheme is letters, digits, "+", "-" and "." (RFC 3986 3.1): "://" after anything else
    # belongs to a password written without one (user:p://w@proxy).
    scheme = _URL_SCHEME.match(value)
    prefix, rest = (scheme.group(0), value[scheme.end() :]) if scheme else ("", value)
    credentials, at, host = rest.rpartition("@")
    return (prefix, credentials, host) if at else (prefix, "", rest)


def proxy_secrets(proxy: object) -> tuple[str, ...]:
    """The password inside a proxy URL, as written and decoded: requests and urllib3 may
    quote either in an error, so both are secrets."""
    if not isinstance(proxy, str):
        return ()
    written = proxy_credentials(proxy)[1].partition(":")[2]
    if not written:
        return ()
    return tuple(dict.fromkeys((written, urllib.parse.unquote(written))))


def _shown_proxy(value: str) -> str:
    """The proxy URL as an error may show it: credentials in it are never repeated."""
    prefix, credentials, rest = proxy_credentials(value)
    return f"{prefix}********@{rest}" if credentials else value


def proxy_url(var: str, value: object) -> str:
    """Return ``value`` if requests can use it as a proxy: scheme://host[:port], host[:port]
    (requests puts http:// in front, as it does for the builtin plugins), or empty (handed to
    the library as it is, as the builtin plugins do: pywinrm then connects directly)."""
    what = f"a proxy URL such as http://proxy:3128 (scheme {', '.join(PROXY_SCHEMES)})"
    if not isinstance(value, str):
        # Not repeated: a mapping or list may hold the proxy's credentials.
        raise OptionError(var, "********", what)
    proxy = value.strip()
    if not proxy:
        return proxy
    # requests' own reading of a proxy setting, imported only when one is set.
    from requests.utils import prepend_scheme_if_needed
    from urllib3.util import parse_url

    shown = _shown_proxy(proxy)
    with_scheme = "://" in proxy
    try:
        parts = parse_url(proxy if with_scheme else prepend_scheme_if_needed(proxy, "http"))
    except ValueError:  # urllib3's LocationParseError is one: a bad port or address
        raise OptionError(var, shown, what) from None
    well_formed = (
        (parts.scheme or "").lower() in PROXY_SCHEMES
        and bool(parts.host)
        # without a scheme, what requests could not read as host[:port] ("proxy:3128" is
        # scheme "proxy" to it) ends up elsewhere than in the host
        and (with_scheme or parts.path in (None, "", "/"))
        and not any(c.isspace() for c in proxy)
        and parts.port != 0
    )
    if not well_formed:
        raise OptionError(var, shown, what)
    return proxy


def _is_encrypted_pem_key(path: str) -> bool:
    # PKCS#8 "ENCRYPTED PRIVATE KEY" blocks and traditional "Proc-Type: 4,ENCRYPTED" headers.
    try:
        with open(path, "rb") as key_file:
            head = key_file.read(65536)
    except OSError:
        return False
    return b"ENCRYPTED" in head


def encrypted_client_key(
    key_var: str,
    key_path: str,
    *,
    cert_var: str,
    cert_path: str,
    password_var: str | None,
    password: str | None,
) -> None:
    """Check that an encrypted client key opens, as the TLS handshake will open it.

    A missing or wrong key password is a local mistake: found here, it names its variable and
    never reaches the network (nor a retry). ``password_var`` is None for a plugin whose
    library cannot take a key password. The password itself is never shown. A key that is
    not encrypted is left to the handshake.
    """
    if not _is_encrypted_pem_key(key_path):
        return
    if password_var is None:
        raise OptionError(
            key_var,
            key_path,
            "an unencrypted PEM private key: this plugin's library cannot take the key's "
            "password (decrypt it with `openssl pkey -in KEY -out NEW`, kept mode 0600)",
        )
    if password is None:
        raise OptionError(
            password_var, None, f"the password of the encrypted private key {key_path} ({key_var})"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(cert_path, key_path, password=password)
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            what = f"the private key of the certificate in {cert_var} ({cert_path})"
            raise OptionError(key_var, key_path, what) from None
        # The value is a secret: the message says that it does not open the key, never what it is.
        raise OptionError(
            password_var,
            "(hidden)",
            f"the password that decrypts the private key {key_path} ({key_var}); OpenSSL: {err}",
        ) from None
