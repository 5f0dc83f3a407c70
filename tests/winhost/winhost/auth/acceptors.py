"""Security-context acceptors for the connection-bound HTTP schemes (Negotiate, CredSSP, and
Kerberos later), built on pyspnego's acceptors.

pyspnego's NTLM acceptor finds accounts through the file named by the process-global
NTLM_USER_FILE variable. One winhost process serves many hosts with different accounts, so
every acceptor step runs under one lock with the variable pointing at the host's own store
(a private smbpasswd-format file of NT hashes, rewritten when the host's accounts change).
Steps take milliseconds, so the lock costs nothing measurable.

The registry `ACCEPTORS` maps an HTTP auth scheme to a factory and the WinRM setting that
enables it; issue 4 registers "Kerberos" here (a gssapi acceptor with a keytab).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
import typing as t
from pathlib import Path

import spnego
from spnego._ntlm_raw.crypto import lmowfv1, ntowfv1
from spnego.channel_bindings import GssChannelBindings

from winhost import api

SPNEGO_ENCRYPTED = "application/HTTP-SPNEGO-session-encrypted"
CREDSSP_ENCRYPTED = "application/HTTP-CredSSP-session-encrypted"

_NTLM_ENV_LOCK = threading.Lock()
_STORE_CACHE: dict[Path, str] = {}


class Acceptor(t.Protocol):
    """One connection's security context for a connection-bound scheme."""

    scheme: str  # the HTTP scheme, "Negotiate", "CredSSP", "Kerberos"
    encryption_protocol: str  # the multipart/encrypted protocol string for this context

    @property
    def complete(self) -> bool: ...

    @property
    def auth_method(self) -> str: ...  # what Principal.auth_method shows: NTLM, Kerberos...

    @property
    def delegated(self) -> bool: ...

    def step(self, token: bytes, bindings: GssChannelBindings | None) -> bytes | None: ...

    def client_principal(self) -> str: ...

    def wrap(self, data: bytes) -> tuple[bytes, bytes]: ...  # (header/signature, data)

    def unwrap(self, header: bytes, data: bytes) -> bytes: ...


class AcceptorHost(t.Protocol):
    """What an acceptor needs of its host."""

    @property
    def computer_name(self) -> str: ...

    @property
    def fqdn(self) -> str: ...

    def accounts(self) -> list[api.Account]: ...

    def private_dir(self) -> Path: ...


@functools.lru_cache(maxsize=256)
def _password_hashes(password: str) -> tuple[str, str]:
    """The LM and NT hashes of a password for the store. Kept: spnego computes the LM hash
    with pure-Python DES (0.8 ms), and every logon builds the store's text afresh, where Windows
    keeps each account's hashes from the day its password was set."""
    return lmowfv1(password).hex().upper(), ntowfv1(password).hex().upper()


def _store_text(host: AcceptorHost) -> str:
    lines = []
    for account in host.accounts():
        if not account.enabled:
            continue
        lm_hash, nt_hash = _password_hashes(account.password)
        names = [account.name]
        if account.domain.upper() == host.computer_name.upper():
            names += [f"{host.computer_name}\\{account.name}", f".\\{account.name}"]
        else:
            names.append(f"{account.domain}\\{account.name}")
        lines += [f"{name}:0:{lm_hash}:{nt_hash}:[U]:LCT-00000000" for name in names]
    return "\n".join(lines) + "\n"


class _NtlmStoreScope:
    """Holds the process-wide lock with NTLM_USER_FILE naming the host's store."""

    def __init__(self, host: AcceptorHost) -> None:
        self._host = host

    def __enter__(self) -> None:
        _NTLM_ENV_LOCK.acquire()
        try:
            path = self._host.private_dir() / "ntlm_users"
            text = _store_text(self._host)
            if _STORE_CACHE.get(path) != text or not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                _STORE_CACHE[path] = text
            os.environ["NTLM_USER_FILE"] = str(path)
        except BaseException:
            _NTLM_ENV_LOCK.release()
            raise

    def __exit__(self, *exc: object) -> None:
        _NTLM_ENV_LOCK.release()


class SpnegoAcceptor:
    """Negotiate (SPNEGO, or raw NTLM sent under the Negotiate scheme as requests-ntlm does)
    and CredSSP, through pyspnego's acceptors."""

    def __init__(self, host: AcceptorHost, protocol: str) -> None:
        self._host = host
        self._protocol = protocol
        self.scheme = "CredSSP" if protocol == "credssp" else "Negotiate"
        self.encryption_protocol = CREDSSP_ENCRYPTED if protocol == "credssp" else SPNEGO_ENCRYPTED
        with _NtlmStoreScope(host):
            self._context = spnego.server(hostname=host.fqdn, service="HTTP", protocol=protocol)

    @property
    def complete(self) -> bool:
        return self._context.complete

    @property
    def auth_method(self) -> str:
        if self._protocol == "credssp":
            return "CredSSP"
        negotiated = (self._context.negotiated_protocol or "ntlm").lower()
        return {"ntlm": "NTLM", "kerberos": "Kerberos"}.get(negotiated, negotiated)

    @property
    def delegated(self) -> bool:
        return self._protocol == "credssp" and self.delegated_credential() is not None

    def step(self, token: bytes, bindings: GssChannelBindings | None) -> bytes | None:
        with _NtlmStoreScope(self._host):
            if self._protocol == "credssp":
                # CredSSP binds to its own inner TLS channel (public key authentication).
                return self._context.step(token)
            return self._context.step(token, channel_bindings=bindings)

    def client_principal(self) -> str:
        return self._context.client_principal or ""

    def delegated_credential(self) -> t.Any:
        """The TSPasswordCreds a CredSSP client delegated, if any."""
        return self._context.get_extra_info("client_credential")

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        result = self._context.wrap_winrm(data)
        return result.header, result.data

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        return self._context.unwrap_winrm(header, data)


@dataclasses.dataclass(frozen=True)
class AcceptorRegistration:
    """An HTTP scheme served by an acceptor: the factory and the Service/Auth flag that
    enables it."""

    scheme: str
    setting: str
    factory: t.Callable[[AcceptorHost], Acceptor]


ACCEPTORS: dict[str, AcceptorRegistration] = {}


def register_acceptor(registration: AcceptorRegistration) -> None:
    """Add or replace the acceptor for a scheme (issue 4 registers Kerberos this way)."""
    ACCEPTORS[registration.scheme.lower()] = registration


register_acceptor(
    AcceptorRegistration(
        "Negotiate", "Service/Auth/Negotiate", lambda h: SpnegoAcceptor(h, "negotiate")
    )
)
register_acceptor(
    AcceptorRegistration("CredSSP", "Service/Auth/CredSSP", lambda h: SpnegoAcceptor(h, "credssp"))
)
