"""Authentication of WinRM HTTP requests, per connection, as Windows does it.

`ConnectionAuth` lives as long as one TCP/TLS connection. Basic and Certificate authenticate
each request; Negotiate (NTLM, SPNEGO), CredSSP and later Kerberos build a security context
over several 401 round trips and then bind it to the connection (and use it for message
encryption). The schemes offered in WWW-Authenticate follow winrm/config/service/auth.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import logging
import typing as t

from cryptography import x509
from spnego.exceptions import SpnegoError

from winhost import api, pki
from winhost.auth import cbt, cert_mapping, client_trust
from winhost.auth.acceptors import ACCEPTORS, Acceptor, AcceptorHost

log = logging.getLogger(__name__)

CERTIFICATE_AUTH_HEADER = "http://schemas.dmtf.org/wbem/wsman/1/wsman/secprofile/https/mutual"
BASIC_REALM = 'Basic realm="WSMAN"'


class AuthHost(AcceptorHost, t.Protocol):
    """What authentication needs of its host."""

    def winrm_flag(self, path: str) -> bool: ...

    def winrm_setting(self, path: str) -> str: ...

    def find_account(self, name: str) -> api.Account | None: ...

    def store_certificates(self, store: str) -> list[x509.Certificate]: ...

    def cert_mappings(self) -> t.Sequence[cert_mapping.Mapping]: ...  # state.CertMapping


@dataclasses.dataclass(frozen=True)
class TlsInfo:
    """The TLS side of a connection, for channel binding and certificate authentication."""

    server_cert_der: bytes
    peer_cert_der: bytes | None
    version: str


@dataclasses.dataclass
class AuthResult:
    """What the HTTP layer does next: serve the request ("ok"), answer 401 with a token
    ("continue"), answer 401 with the offered schemes ("reject"), or answer with a fault that
    says winhost does not model the case ("not_modelled", `reason` names it)."""

    status: t.Literal["ok", "continue", "reject", "not_modelled"]
    principal: api.Principal | None = None
    token_header: str | None = None  # "Negotiate <b64>" for continue, or a final token on ok
    reason: str = ""


def principal_for(
    host: AuthHost, name: str, auth_method: str, delegated: bool = False
) -> api.Principal | None:
    account = host.find_account(name)
    if account is None or not account.enabled or account.logon_restriction:
        return None
    return api.Principal(
        username=account.name,
        domain=account.domain,
        auth_method=auth_method,
        is_admin=account.is_admin,
        delegated_credential=delegated,
    )


def _decode_basic(token: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    # requests encodes Basic credentials as Latin-1, others as UTF-8; Windows accepts both
    # for the characters both can carry, so decode UTF-8 first and fall back.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
    if ":" not in text:
        return None
    user, password = text.split(":", 1)
    return user, password


class ConnectionAuth:
    """The authentication state of one connection."""

    def __init__(self, host: AuthHost, tls: TlsInfo | None) -> None:
        self.host = host
        self.tls = tls
        self.acceptor: Acceptor | None = None
        self.principal: api.Principal | None = None

    # --- what is offered ---------------------------------------------------------------
    def offered_schemes(self) -> list[str]:
        """WWW-Authenticate values, in the order Windows sends them."""
        offered = []
        for registration in ACCEPTORS.values():
            if registration.scheme == "CredSSP":
                continue
            if self.host.winrm_flag(registration.setting):
                offered.append(registration.scheme)
        # Certificate authentication is listed by its security profile, after Kerberos and
        # before Basic (a real Windows header in requests-credssp#29), while
        # Service\Auth\Certificate is true (MS-WSMV 3.1.4.1.29.2). Only over HTTPS, where the
        # profile is defined (assumed: no capture of an HTTP listener's 401 with it on).
        if self.tls is not None and self.host.winrm_flag("Service/Auth/Certificate"):
            offered.append(CERTIFICATE_AUTH_HEADER)
        if self.host.winrm_flag("Service/Auth/Basic"):
            offered.append(BASIC_REALM)
        credssp = ACCEPTORS.get("credssp")
        if credssp is not None and self.host.winrm_flag(credssp.setting):
            offered.append("CredSSP")
        return offered

    @property
    def session_bound(self) -> bool:
        """True when a connection-bound context is established (usable for encryption)."""
        return self.acceptor is not None and self.acceptor.complete and self.principal is not None

    # --- authentication ------------------------------------------------------------------
    def authenticate(
        self, authorization: str | None, resource_uri: str | None = None
    ) -> AuthResult:
        """Authenticate one request. `resource_uri` is the request's (None when it names none,
        as Identify); only certificate authentication uses it, to pick the mapping."""
        if not authorization:
            if self.session_bound:
                return AuthResult("ok", self.principal)
            return AuthResult("reject", reason="no Authorization header")
        value = authorization.strip()
        if value.lower() == CERTIFICATE_AUTH_HEADER:
            return self._certificate(resource_uri)
        scheme, _, token = value.partition(" ")
        scheme_key = scheme.lower()
        if scheme_key == "basic":
            return self._basic(token.strip())
        registration = ACCEPTORS.get(scheme_key)
        if registration is None or not self.host.winrm_flag(registration.setting):
            return AuthResult("reject", reason=f"scheme {scheme!r} is not enabled")
        try:
            in_token = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return AuthResult("reject", reason=f"{scheme} token is not base64")
        return self._context_step(registration.factory, registration.scheme, in_token)

    def _basic(self, token: str) -> AuthResult:
        if not self.host.winrm_flag("Service/Auth/Basic"):
            return AuthResult("reject", reason="Basic is disabled (Service/Auth/Basic=false)")
        if self.tls is None and not self.host.winrm_flag("Service/AllowUnencrypted"):
            return AuthResult(
                "reject", reason="Basic over HTTP needs Service/AllowUnencrypted=true"
            )
        credentials = _decode_basic(token)
        if credentials is None:
            return AuthResult("reject", reason="malformed Basic credentials")
        user, password = credentials
        account = self.host.find_account(user)
        # Basic authenticates local accounts only, as WinRM does without Kerberos.
        if (
            account is None
            or account.domain.upper() != self.host.computer_name.upper()
            or account.password != password
        ):
            return AuthResult("reject", reason=f"Basic logon failure for {user!r}")
        principal = principal_for(self.host, account.name, "Basic")
        if principal is None:
            return AuthResult("reject", reason=f"account {user!r} is disabled")
        self.acceptor = None
        self.principal = principal
        return AuthResult("ok", principal)

    def _certificate(self, resource_uri: str | None) -> AuthResult:
        if self.tls is None:
            return AuthResult("reject", reason="certificate authentication needs HTTPS")
        if not self.host.winrm_flag("Service/Auth/Certificate"):
            return AuthResult("reject", reason="Service/Auth/Certificate is false")
        if self.tls.peer_cert_der is None:
            return AuthResult("reject", reason="the client sent no TLS client certificate")
        client = x509.load_der_x509_certificate(self.tls.peer_cert_der)
        trust = client_trust.evaluate(client, self.host, datetime.datetime.now(datetime.UTC))
        if trust.issuer is None:
            return AuthResult("reject", reason=trust.reason)
        # A mapping applies to the resource URIs its URI covers (MS-WSMV 2.2.4.3), so the
        # mapping, and with it the account, is chosen per request.
        try:
            mapping = cert_mapping.select(
                self.host.cert_mappings(),
                pki.thumbprint(trust.issuer),
                pki.upn_of(client),
                [str(attribute.value) for attribute in client.subject],
                resource_uri,
            )
        except cert_mapping.MappingNotModelled as err:
            return AuthResult("not_modelled", reason=str(err))
        if mapping is None:
            return AuthResult(
                "reject",
                reason=f"no enabled ClientCertificate mapping applies to resource URI "
                f"{resource_uri!r}",
            )
        account = self.host.find_account(mapping.username)
        # WinRM logs on with the mapping's stored password, so a stale one fails.
        if account is None or account.password != mapping.password:
            return AuthResult(
                "reject", reason=f"certificate mapping logon failure for {mapping.username}"
            )
        principal = principal_for(self.host, account.name, "ClientCertificate")
        if principal is None:
            return AuthResult("reject", reason=f"account {account.name} is disabled")
        self.principal = principal
        self.acceptor = None
        return AuthResult("ok", principal)

    def _cbt_level(self) -> str:
        return self.host.winrm_setting("Service/Auth/CbtHardeningLevel").strip().lower()

    def _strict_cbt(self) -> bool:
        return self.tls is not None and self._cbt_level() == "strict"

    def _bindings_for(self, token: bytes) -> t.Any:
        if self.tls is None:
            return None
        level = self._cbt_level()
        if level == "none":
            return None
        sent = cbt.ntlm_authenticate_has_bindings(token)
        if level == "relaxed" and sent is False:
            return None
        return cbt.channel_bindings(self.tls.server_cert_der)

    def _context_step(
        self, factory: t.Callable[[AcceptorHost], Acceptor], scheme: str, token: bytes
    ) -> AuthResult:
        if self.acceptor is None or self.acceptor.complete or self.acceptor.scheme != scheme:
            self.acceptor = factory(self.host)
            self.principal = None
        acceptor = self.acceptor
        try:
            out_token = acceptor.step(token, self._bindings_for(token))
        except (SpnegoError, ValueError, OSError) as err:
            self.acceptor = None
            return AuthResult("reject", reason=f"{scheme} logon failure: {err}")
        header = f"{scheme} {base64.b64encode(out_token).decode()}" if out_token else None
        if not acceptor.complete:
            return AuthResult("continue", token_header=header)
        if getattr(acceptor, "channel_bound", None) is False and self._strict_cbt():
            # MIT's acceptor takes a Kerberos token without bindings even when it was given
            # some (krb5 1.19, ticket 8899); Strict denies it (about_WSMan_Provider).
            self.acceptor = None
            return AuthResult(
                "reject", reason=f"{scheme} logon without a channel binding token under Strict"
            )
        name = acceptor.client_principal()
        principal = principal_for(
            self.host, name, acceptor.auth_method, delegated=getattr(acceptor, "delegated", False)
        )
        if principal is None:
            self.acceptor = None
            return AuthResult("reject", reason=f"no enabled account for {name!r}")
        self.principal = principal
        return AuthResult("ok", principal, token_header=header)
