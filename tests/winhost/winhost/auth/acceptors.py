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
import ssl
import tempfile
import threading
import typing as t
from pathlib import Path

import spnego
import spnego.tls
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

    @property
    def tls_versions(self) -> tuple[str, ...]: ...  # what SCHANNEL offers, "TLS 1.0".."TLS 1.3"


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


# CredSSP's own TLS handshake (MS-CSSP 3.1.5) is SCHANNEL's as well: a host whose SCHANNEL
# offers no TLS 1.2 (2008 R2 as installed) ends a client's TLS 1.2 ClientHello there, which is
# why CredSSP fails on such hosts until TLS 1.2 is enabled (Ansible's WinRM guide, "CredSSP and
# TLS 1.2"; requests-credssp#18, #20). Assumed: once SCHANNEL offers TLS 1.2, CredSSP does too,
# i.e. a 2008 R2 host also has the update of KB3080079 (winhost models no updates).
_SSL_VERSIONS = {
    "TLS 1.0": ssl.TLSVersion.TLSv1,
    "TLS 1.1": ssl.TLSVersion.TLSv1_1,
    "TLS 1.2": ssl.TLSVersion.TLSv1_2,
    "TLS 1.3": ssl.TLSVersion.TLSv1_3,
}


@functools.lru_cache(maxsize=1)
def _credssp_certificate() -> tuple[bytes, bytes, bytes]:
    """One self-signed CredSSP certificate per process (PEM, key PEM, public key), as WinRM's
    CredSSP uses one of its own."""
    return spnego.tls.generate_tls_certificate()


def _credssp_tls_context(versions: tuple[str, ...]) -> spnego.tls.CredSSPTLSContext:
    context = spnego.tls.default_tls_context(usage="accept")
    offered = [_SSL_VERSIONS[v] for v in versions if v in _SSL_VERSIONS]
    if offered and max(offered) < ssl.TLSVersion.TLSv1_2:
        # Below pyspnego's TLS 1.2 floor: nothing a client asking for TLS 1.2 can agree on.
        context.context.minimum_version = min(offered)
        context.context.maximum_version = max(offered)
    cert_pem, key_pem, public_key = _credssp_certificate()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "credssp.pem"
        path.write_bytes(cert_pem + key_pem)
        context.context.load_cert_chain(str(path))
    context.public_key = public_key
    return context


class SpnegoAcceptor:
    """Negotiate (SPNEGO, or raw NTLM sent under the Negotiate scheme as requests-ntlm does)
    and CredSSP, through pyspnego's acceptors."""

    def __init__(self, host: AcceptorHost, protocol: str) -> None:
        self._host = host
        self._protocol = protocol
        self.scheme = "CredSSP" if protocol == "credssp" else "Negotiate"
        self.encryption_protocol = CREDSSP_ENCRYPTED if protocol == "credssp" else SPNEGO_ENCRYPTED
        extra: dict[str, t.Any] = {}
        if protocol == "credssp":
            extra["credssp_tls_context"] = _credssp_tls_context(host.tls_versions)
        with _NtlmStoreScope(host):
            self._context = spnego.server(
                hostname=host.fqdn, service="HTTP", protocol=protocol, **extra
            )

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
