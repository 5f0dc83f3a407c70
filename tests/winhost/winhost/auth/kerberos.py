"""Kerberos for winhost: a gssapi acceptor over the host's keytab (issue 4).

Windows offers Kerberos inside the "Negotiate" scheme (and, for some clients, as "Kerberos").
Clients send either a raw Kerberos GSS token (pywinrm's kerberos transport, pypsrp with
auth=kerberos) or SPNEGO carrying Kerberos (pypsrp/pyspnego with auth=negotiate); NTLM also
arrives under "Negotiate". `install()` registers:

- "Kerberos" (Service/Auth/Kerberos): always this acceptor;
- "Negotiate" (Service/Auth/Negotiate): a dispatcher that looks at the first token and hands
  Kerberos (raw or inside SPNEGO) to this acceptor and everything else (NTLM) to the acceptor
  that was registered for Negotiate before (core's pyspnego acceptor).

The acceptor takes its keys from the host's own keytab through the GSSAPI credential store
extension (``store={"keytab": ...}``), never from the process-wide KRB5_KTNAME, so one
winhost process serves several hosts, each accepting only its own HTTP/ and WSMAN/<fqdn>
principals.
Message encryption follows MS-WSMV with Kerberos: gss_wrap_iov with a separate header
(signature) and the sealed data, as pyspnego does for clients. A delegated credential
(a forwarded TGT) is recorded: ``delegated`` is True when one arrived.

Where the keytab is: `install(keytab_for)` takes a function host -> path (None when the host
has no Kerberos key); the default is ``<host private dir>/http.keytab``.

`enable_realm(kdc_state_dir, states)` is what the winhost server calls at start when a test
KDC runs (tests/kdc): it points this process's Kerberos library at the KDC's krb5.conf, copies
each host's keytab into its private directory, adds the realm's domain users as domain
accounts of every host, and installs the acceptors.
"""

from __future__ import annotations

import json
import os
import shutil
import typing as t
from pathlib import Path

import gssapi
import gssapi.raw
from gssapi.raw import IOV, IOVBuffer, IOVBufferType
from spnego.channel_bindings import GssChannelBindings

from winhost import api
from winhost.auth.acceptors import (
    ACCEPTORS,
    SPNEGO_ENCRYPTED,
    Acceptor,
    AcceptorHost,
    AcceptorRegistration,
    register_acceptor,
)

KERBEROS_ENCRYPTED = "application/HTTP-Kerberos-session-encrypted"
KEYTAB_NAME = "http.keytab"

KRB5_OID = bytes.fromhex("06092a864886f712010202")  # 1.2.840.113554.1.2.2
KRB5_LEGACY_OID = bytes.fromhex("06092a864882f712010202")  # 1.2.840.48018.1.2.2 (MS)
SPNEGO_OID = bytes.fromhex("06062b0601050502")  # 1.3.6.1.5.5.2
NTLM_MECH = "1.3.6.1.4.1.311.2.2.10"

KeytabLocator = t.Callable[[AcceptorHost], "Path | None"]


class KerberosAcceptError(ValueError):
    """The token cannot be accepted (ValueError: core's HTTP layer answers 401 with it)."""


def default_keytab(host: AcceptorHost) -> Path | None:
    """``<private dir>/http.keytab`` when present (put there from the KDC's per-host keytab)."""
    path = host.private_dir() / KEYTAB_NAME
    return path if path.exists() else None


def _gss_token_oid(token: bytes) -> bytes | None:
    """The mechanism OID (DER, with tag and length) of a GSS initial context token."""
    if len(token) < 2 or token[0] != 0x60:
        return None
    index = 2
    if token[1] & 0x80:  # long-form length
        index += token[1] & 0x7F
    if index + 2 > len(token) or token[index] != 0x06:
        return None
    return token[index : index + 2 + token[index + 1]]


def is_kerberos_token(token: bytes) -> bool:
    """Whether a first Negotiate token starts Kerberos (raw, or as SPNEGO's preferred mech)."""
    if token.startswith(b"NTLMSSP\x00"):
        return False
    oid = _gss_token_oid(token)
    if oid in (KRB5_OID, KRB5_LEGACY_OID):
        return True
    if oid != SPNEGO_OID:
        return False
    from spnego._spnego import NegTokenInit, unpack_token  # pyspnego's SPNEGO decoder

    try:
        init = unpack_token(token)
    except Exception:
        return False
    if not isinstance(init, NegTokenInit) or not init.mech_types:
        return False
    if init.mech_token and init.mech_token.startswith(b"NTLMSSP\x00"):
        return False
    return init.mech_types[0] != NTLM_MECH


class KerberosAcceptor:
    """One connection's Kerberos security context, accepted with the host's keytab."""

    auth_method = "Kerberos"

    def __init__(self, host: AcceptorHost, keytab: Path | None, scheme: str = "Negotiate") -> None:
        self._host = host
        self._keytab = keytab
        self.scheme = scheme
        self.encryption_protocol = KERBEROS_ENCRYPTED if scheme == "Kerberos" else SPNEGO_ENCRYPTED
        self._context: gssapi.SecurityContext | None = None

    # The context is created at the first token: channel bindings are known only then.
    def _new_context(self, bindings: GssChannelBindings | None) -> gssapi.SecurityContext:
        if self._keytab is None:
            raise KerberosAcceptError(
                f"host {self._host.fqdn} has no Kerberos keytab (expected "
                f"{self._host.private_dir() / KEYTAB_NAME}); start winhost with the KDC"
            )
        try:
            # No name: any key of this host's keytab (HTTP/ and WSMAN/<fqdn>, as a Windows
            # computer account answers both); the keytab holds nothing of other hosts.
            credentials = gssapi.Credentials(usage="accept", store={"keytab": str(self._keytab)})
        except gssapi.exceptions.GSSError as err:
            raise KerberosAcceptError(
                f"cannot use the keytab {self._keytab} of {self._host.fqdn}: {err.gen_message()}"
            ) from err
        gss_bindings = None
        if bindings is not None:
            gss_bindings = gssapi.raw.ChannelBindings(
                initiator_address_type=bindings.initiator_addrtype,
                initiator_address=bindings.initiator_address,
                acceptor_address_type=bindings.acceptor_addrtype,
                acceptor_address=bindings.acceptor_address,
                application_data=bindings.application_data,
            )
        return gssapi.SecurityContext(
            creds=credentials, usage="accept", channel_bindings=gss_bindings
        )

    @property
    def complete(self) -> bool:
        return self._context is not None and self._context.complete

    @property
    def channel_bound(self) -> bool:
        """True when the client's token carried channel bindings that matched the ones given.
        MIT (1.19 and later) accepts a token without any, so the caller enforces Strict."""
        return self.complete and (
            gssapi.RequirementFlag.channel_bound in self._context.actual_flags  # type: ignore[union-attr]
        )

    @property
    def delegated(self) -> bool:
        """True when the client forwarded its TGT (delegation asked and allowed)."""
        return self.complete and self._context.delegated_creds is not None  # type: ignore[union-attr]

    def step(self, token: bytes, bindings: GssChannelBindings | None) -> bytes | None:
        if self._context is None:
            self._context = self._new_context(bindings)
        try:
            reply = self._context.step(token)
            # python-gssapi keeps a failure that came with an error token (KRB-ERROR) and
            # raises it at the next access; surface it now.
            _ = self._context.complete
        except gssapi.exceptions.GSSError as err:
            raise KerberosAcceptError(f"Kerberos accept failed: {err.gen_message()}") from err
        return reply

    def client_principal(self) -> str:
        if not self.complete:
            return ""
        return str(self._context.initiator_name)  # type: ignore[union-attr]

    def service_principal(self) -> str:
        """The SPN the client asked for (HTTP/<fqdn> or WSMAN/<fqdn>)."""
        if not self.complete:
            return ""
        return str(self._context.target_name)  # type: ignore[union-attr]

    def delegated_principal(self) -> str | None:
        """Whose TGT was delegated, for the record (None without delegation)."""
        if not self.delegated:
            return None
        return str(self._context.delegated_creds.name)  # type: ignore[union-attr]

    def _established(self) -> gssapi.SecurityContext:
        if self._context is None or not self._context.complete:
            raise KerberosAcceptError("no established Kerberos context to seal messages with")
        return self._context

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        iov = IOV(IOVBufferType.header, data, IOVBufferType.padding, std_layout=False)
        gssapi.raw.wrap_iov(self._established(), iov, confidential=True)
        return (iov[0].value or b""), (iov[1].value or b"") + (iov[2].value or b"")

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        # Header, sealed data and an empty data buffer: the layout MIT needs for both AES
        # and RC4 when the padding is not a separate buffer (as pyspnego's client does).
        iov = IOV(
            IOVBuffer(IOVBufferType.header, False, header),
            IOVBuffer(IOVBufferType.data, False, data),
            IOVBuffer(IOVBufferType.data, False, None),
            std_layout=False,
        )
        try:
            gssapi.raw.unwrap_iov(self._established(), iov)
        except gssapi.exceptions.GSSError as err:
            raise KerberosAcceptError(f"Kerberos unwrap failed: {err.gen_message()}") from err
        return iov[1].value or b""


class NegotiateDispatcher:
    """The Negotiate scheme: Kerberos to KerberosAcceptor, anything else to ``fallback``."""

    scheme = "Negotiate"

    def __init__(
        self,
        host: AcceptorHost,
        keytab_for: KeytabLocator,
        fallback: t.Callable[[AcceptorHost], Acceptor] | None,
    ) -> None:
        self._host = host
        self._keytab_for = keytab_for
        self._fallback = fallback
        self._inner: Acceptor | KerberosAcceptor | None = None

    def _chosen(self) -> t.Any:
        if self._inner is None:
            raise KerberosAcceptError("no Negotiate token has been received yet")
        return self._inner

    @property
    def encryption_protocol(self) -> str:
        return self._inner.encryption_protocol if self._inner else SPNEGO_ENCRYPTED

    @property
    def complete(self) -> bool:
        return self._inner is not None and self._inner.complete

    @property
    def auth_method(self) -> str:
        return self._chosen().auth_method

    @property
    def delegated(self) -> bool:
        return bool(self._inner is not None and getattr(self._inner, "delegated", False))

    def step(self, token: bytes, bindings: GssChannelBindings | None) -> bytes | None:
        if self._inner is None:
            if is_kerberos_token(token):
                self._inner = KerberosAcceptor(self._host, self._keytab_for(self._host))
            elif self._fallback is not None:
                self._inner = self._fallback(self._host)
            else:
                raise KerberosAcceptError("Negotiate token is neither Kerberos nor NTLM")
        return self._inner.step(token, bindings)

    def client_principal(self) -> str:
        return self._chosen().client_principal()

    def wrap(self, data: bytes) -> tuple[bytes, bytes]:
        return self._chosen().wrap(data)

    def unwrap(self, header: bytes, data: bytes) -> bytes:
        return self._chosen().unwrap(header, data)

    def __getattr__(self, name: str) -> t.Any:
        # Anything else core asks of its own acceptor (delegated_credential for CredSSP...).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._chosen(), name)


def install(keytab_for: KeytabLocator = default_keytab) -> None:
    """Register Kerberos and Kerberos-aware Negotiate; safe to call more than once."""
    previous = ACCEPTORS.get("negotiate")
    fallback = previous.factory if previous is not None else None
    if isinstance(fallback, _DispatcherFactory):
        fallback = fallback.fallback
    register_acceptor(
        AcceptorRegistration(
            "Kerberos",
            "Service/Auth/Kerberos",
            lambda host: KerberosAcceptor(host, keytab_for(host), scheme="Kerberos"),
        )
    )
    register_acceptor(
        AcceptorRegistration(
            "Negotiate", "Service/Auth/Negotiate", _DispatcherFactory(keytab_for, fallback)
        )
    )


class _DispatcherFactory:
    """Builds a NegotiateDispatcher per connection; remembers the original fallback so that
    installing twice does not nest dispatchers."""

    def __init__(
        self, keytab_for: KeytabLocator, fallback: t.Callable[[AcceptorHost], Acceptor] | None
    ) -> None:
        self.keytab_for = keytab_for
        self.fallback = fallback

    def __call__(self, host: AcceptorHost) -> Acceptor:
        # Structurally an Acceptor (its encryption_protocol is a read-only property).
        return t.cast("Acceptor", NegotiateDispatcher(host, self.keytab_for, self.fallback))


class RealmState(t.Protocol):
    """What enable_realm needs of a host's persisted state (winhost.state.HostState)."""

    fqdn: str
    directory: Path
    accounts: list[api.Account]

    def save(self) -> None: ...


def enable_realm(kdc_state_dir: Path, states: t.Iterable[RealmState]) -> list[str]:
    """Serve Kerberos for the test realm whose KDC keeps its files in ``kdc_state_dir``.

    Returns the fqdns that got a keytab; a host without one (the KDC made no principal for
    it) still starts, and refuses Kerberos tokens with a message naming the missing keytab.
    """
    users_file = kdc_state_dir / "domain-users.json"
    try:
        realm = json.loads(users_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise KerberosAcceptError(
            f"{users_file} is missing or unreadable ({err}); start the KDC first "
            f"(PYTHONPATH=tests/kdc python -m kdc start --state-dir {kdc_state_dir})"
        ) from err
    # This process accepts for every host: one krb5.conf (the realm's), one replay cache dir.
    os.environ["KRB5_CONFIG"] = str(kdc_state_dir / "krb5.conf")
    os.environ.setdefault("KRB5RCACHEDIR", str(kdc_state_dir / "rcache"))
    provisioned = []
    for state in states:
        keytab = kdc_state_dir / "keytabs" / f"{state.fqdn}.keytab"
        if keytab.exists():
            target = state.directory / "private" / KEYTAB_NAME
            shutil.copyfile(keytab, target)
            os.chmod(target, 0o600)
            provisioned.append(state.fqdn)
        known = {(a.name.lower(), a.domain.lower()) for a in state.accounts}
        for user in realm["users"]:
            if (user["name"].lower(), realm["domain"].lower()) not in known:
                state.accounts.append(
                    api.Account(user["name"], user["password"], realm["domain"], user["is_admin"])
                )
        state.save()
    install()
    return provisioned
