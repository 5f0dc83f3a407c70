"""Which kept session a task's connection options name, and where it listens.

Internal use only: this module is not part of the collection's public API.

A kept session is found by its socket path alone, so the path says everything that must match:
the run (kept._place) and the session key, a digest of every connection option except the
secrets. The secrets are compared by the holder on each request instead, so nothing derived
from them is written anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._redact import (
    PROXY_OPTION,
    is_secret_option,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.core._validation import (
    proxy_credentials,
)

SOCKET_SUFFIX = ".sock"


def _public_and_secret(
    options: t.Mapping[str, t.Any],
) -> tuple[dict[str, t.Any], dict[str, t.Any]]:
    """The options split into what may name a session and the secrets: the secret options,
    and the credentials of a proxy URL (its user and password), whose rest is public."""
    public: dict[str, t.Any] = {}
    secret: dict[str, t.Any] = {}
    for name, value in options.items():
        if is_secret_option(name):
            secret[name] = value
        elif name == PROXY_OPTION and isinstance(value, str):
            prefix, credentials, rest = proxy_credentials(value)
            public[name] = prefix + rest
            secret[name] = credentials
        else:
            public[name] = value
    return public, secret


def session_key(plugin: str, options: t.Mapping[str, t.Any]) -> str:
    """A digest of the connection options that are not secrets: equal options, one session."""
    public = _public_and_secret(options)[0]
    text = json.dumps([plugin, public], sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def secrets_digest(options: t.Mapping[str, t.Any]) -> str:
    """A digest of the secrets among the options, compared in memory by the holder, never
    stored."""
    secret = _public_and_secret(options)[1]
    text = json.dumps(secret, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def socket_path(directory: str, key: str) -> str:
    return os.path.join(directory, f"{key}{SOCKET_SUFFIX}")


def sessions_listening(directory: str) -> bool:
    """True while a session of the run still listens in ``directory`` (or it cannot be read).

    A holder binds a staging name that starts with its socket's name, so both count.
    """
    try:
        return any(SOCKET_SUFFIX in name for name in os.listdir(directory))
    except OSError:
        return True


def sessions_kept(directory: str) -> int:
    """How many sessions of the run listen in ``directory`` (staging names not counted)."""
    try:
        return sum(name.endswith(SOCKET_SUFFIX) for name in os.listdir(directory))
    except OSError:
        return 0
