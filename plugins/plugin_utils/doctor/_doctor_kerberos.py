"""The Kerberos checks of winrm_doctor: SPN, reverse lookup, realm configuration, KDC, clock.

Internal use only: this module is not part of the collection's public API.

They apply when the connection authenticates with Kerberos (transport ``kerberos``, or
``negotiate`` for a user@REALM account) and run before the authenticated session, whose
failure would otherwise only say that the security context could not be created. Getting the
ticket itself is left to that session: it runs kinit exactly as the plugin does.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import time
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core._endpoint import realm_from_user
from ansible_collections.winops.remoting.plugins.plugin_utils.core._record import replace
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis import _wording
from ansible_collections.winops.remoting.plugins.plugin_utils.diagnosis._wording import (
    Layer,
    describe,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.doctor._doctor import (
    CheckFailed,
    Context,
    NotApplicable,
    Target,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos import (
    KerberosError,
    acquire_ticket,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.kerberos._kerberos_ccache import (
    CcacheUnavailable,
    default_ccache_name,
    load_ccache,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.options._settings import (
    kerberos_principal,
)

KDC_PORT = 88


def uses_kerberos(target: Target) -> bool:
    if target.transport == "kerberos":
        return True
    return target.transport == "negotiate" and realm_from_user(target.user) is not None


def _require_kerberos(target: Target) -> None:
    if not uses_kerberos(target):
        raise NotApplicable(f"authentication is {target.transport}, not Kerberos")


def _realm(target: Target) -> str | None:
    """The realm kinit will ask for: the plugins' own rule (_kerberos.kerberos_principal)."""
    if not target.user:
        return target.kerberos_realm.upper() if target.kerberos_realm else None
    _name, at, realm = kerberos_principal(target.user, target.kerberos_realm).rpartition("@")
    return realm.upper() if at and realm else None


def check_spn(target: Target, context: Context) -> str:
    """Kerberos names the service by host name: <service>/<fqdn>. An IP address has no SPN."""
    _require_kerberos(target)
    host = target.kerberos_hostname_override or target.endpoint.host
    if target.kerberos_hostname_override is None and target.endpoint.is_ip_address:
        raise CheckFailed(
            _wording.kerberos_by_address(
                target.endpoint,
                target.plugin,
                f"the service principal would be {target.kerberos_service}/{host}, which no KDC holds",
            )
        )
    evidence = f"service principal {target.kerberos_service}/{host}"
    try:
        reverse = socket.gethostbyaddr(context.addresses[0])[0] if context.addresses else None
    except OSError as err:
        return f"{evidence}; reverse lookup of {context.addresses[0]} failed ({err})"
    if reverse and reverse.lower().rstrip(".") != host.lower().rstrip("."):
        # Only a hint: MIT's rdns setting decides whether the reverse name is used.
        return f"{evidence}; reverse lookup gives {reverse} (with rdns = true that name is used)"
    return f"{evidence}; reverse lookup {'agrees' if reverse else 'not available'}"


def _krb5_config_paths() -> list[str]:
    value = os.environ.get("KRB5_CONFIG") or "/etc/krb5.conf"
    return [path for path in value.split(":") if path]


def realm_kdcs(config_text: str, realm: str) -> list[str] | None:
    """The kdc entries of ``realm`` in a krb5.conf text; None when the realm is absent."""
    section = ""
    in_realm = False
    found = False
    kdcs: list[str] = []
    for raw in config_text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            section = header.group(1).lower()
            in_realm = False
            continue
        if section != "realms":
            continue
        opening = re.fullmatch(r"(\S+)\s*=\s*\{", line)
        if opening:
            in_realm = opening.group(1).upper() == realm
            found = found or in_realm
            continue
        if line == "}":
            in_realm = False
            continue
        entry = re.fullmatch(r"kdc\s*=\s*(\S+)", line)
        if in_realm and entry:
            kdcs.append(entry.group(1))
    return kdcs if found else None


def _dns_lookup_kdc(config_text: str) -> bool:
    match = re.search(r"^\s*dns_lookup_kdc\s*=\s*(\S+)", config_text, re.MULTILINE)
    return match is not None and match.group(1).lower() in ("true", "yes", "1", "on")


def _read_config() -> tuple[str, str]:
    texts = []
    paths = _krb5_config_paths()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                texts.append(handle.read())
        except OSError:
            continue
    return "\n".join(texts), ":".join(paths)


def check_realm_config(target: Target, context: Context) -> str:
    _require_kerberos(target)
    realm = _realm(target)
    if realm is None:
        raise CheckFailed(
            describe(
                "kerberos_no_realm",
                target.plugin,
                f"ansible_user is {target.user!r}, without @REALM",
            )
        )
    text, paths = _read_config()
    kdcs = realm_kdcs(text, realm)
    if kdcs:
        return f"{paths} lists realm {realm} with kdc {', '.join(kdcs)}"
    if _dns_lookup_kdc(text):
        return f"{paths} does not list realm {realm}; its KDCs come from DNS (dns_lookup_kdc)"
    raise CheckFailed(
        describe(
            "kerberos_realm_not_configured",
            target.plugin,
            f"{paths}: no [realms] entry for {realm} and dns_lookup_kdc is off",
            realm=realm,
            config=paths,
        )
    )


def check_kdc_reachable(target: Target, context: Context) -> str:
    _require_kerberos(target)
    realm = _realm(target) or ""
    text, paths = _read_config()
    kdcs = realm_kdcs(text, realm) or []
    if not kdcs:
        raise NotApplicable(f"the KDCs of {realm} come from DNS; kinit will find them")
    seen = []
    for kdc in kdcs:
        host, _colon, port = kdc.rpartition(":") if kdc.count(":") == 1 else (kdc, "", "")
        try:
            socket.create_connection((host, int(port or KDC_PORT)), timeout=target.timeout).close()
        except (OSError, ValueError) as err:
            seen.append(f"{kdc}: {err}")
            continue
        return f"{kdc} accepts TCP connections"
    raise CheckFailed(
        describe(
            "kerberos_kdc_unreachable", target.plugin, "; ".join(seen), realm=realm, config=paths
        )
    )


def clock_skew(
    server_date: datetime.datetime | None, now: datetime.datetime | None = None
) -> datetime.timedelta | None:
    if server_date is None:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return server_date - now


def check_clock_skew(
    target: Target, context: Context, now: t.Callable[[], datetime.datetime] | None = None
) -> str:
    _require_kerberos(target)
    server_date = context.server_date
    skew = clock_skew(server_date, now() if now else None)
    if server_date is None or skew is None:
        raise NotApplicable("the host sent no HTTP Date header to compare with")
    if abs(skew) > _wording.MAX_KERBEROS_CLOCK_SKEW:
        raise CheckFailed(_wording.kerberos_clock_skew(server_date, skew, target.plugin))
    return _wording.host_clock_evidence(server_date, skew)


# The forwardable flag of a ticket as MIT's ccache stores TicketFlags (RFC 4120 5.3, bit 1 of a
# 32-bit field whose bit 0 is the most significant: krb5.h TKT_FLG_FORWARDABLE).
TKT_FLG_FORWARDABLE = 0x40000000


def _delegation_note(target: Target) -> str:
    """What the controller cannot check about delegation: it is decided in Active Directory."""
    if not target.kerberos_delegation:
        return ""
    return (
        "; delegation is requested: whether the host may forward the ticket "
        "(the user and host in one domain, the host trusted for delegation, the user not "
        "'sensitive and cannot be delegated' nor in Protected Users) is decided in Active "
        "Directory, which the doctor cannot read (docs/troubleshooting.md, Kerberos "
        "delegation)"
    )


def _same_principal(cached: str, wanted: str) -> bool:
    """Whether the cache's principal is the one asked for; without a realm only the names are
    compared, as the plugins' ticket store compares them (AD compares names without case)."""
    if "@" in wanted:
        return cached.lower() == wanted.lower()
    return cached.rpartition("@")[0].lower() == wanted.lower()


def check_ticket(target: Target, context: Context) -> str:
    """Managed mode: run kinit as the plugin would (into a throw-away cache). Manual mode:
    the user's own cache must hold a ticket-granting ticket that has not expired."""
    _require_kerberos(target)
    if target.kinit is not None:
        request = replace(target.kinit, reuse=False)
        try:
            cache = acquire_ticket(request)
        except KerberosError as err:
            raise CheckFailed(err.diagnosis) from err
        cache.remove()
        return f"kinit got a ticket for {request.principal} (managed mode)" + _delegation_note(
            target
        )
    # The user's default cache as the Kerberos library resolves it: the one a manual-mode logon
    # uses, and the one a kept session watches for a renewed ticket (session._tickets).
    name = default_ccache_name()
    try:
        summary = load_ccache(name)
    except CcacheUnavailable as err:
        raise CheckFailed(describe("kerberos_no_manual_ticket", target.plugin, str(err))) from err
    tgt = summary.tgt()
    if tgt is None or tgt.endtime <= time.time():
        seen = (
            f"{summary.principal}: no ticket-granting ticket"
            if tgt is None
            else f"{summary.principal}: the ticket-granting ticket expired"
        )
        raise CheckFailed(describe("kerberos_no_manual_ticket", target.plugin, f"{seen} at {name}"))
    wanted = kerberos_principal(target.user, target.kerberos_realm) if target.user else None
    if wanted is not None and not _same_principal(summary.principal, wanted):
        raise CheckFailed(
            describe(
                "kerberos_cache_other_principal",
                target.plugin,
                f"{name} belongs to {summary.principal}; ansible_user asks for {wanted}",
                cached=summary.principal,
                wanted=wanted,
            )
        )
    if target.kerberos_delegation and not tgt.flags & TKT_FLG_FORWARDABLE:
        raise CheckFailed(
            describe(
                "kerberos_tgt_not_forwardable",
                target.plugin,
                f"the ticket-granting ticket of {summary.principal} in {name} has no "
                "forwardable flag (klist -f shows no F)",
                principal=summary.principal,
            )
        )
    ends = datetime.datetime.fromtimestamp(tgt.endtime, datetime.timezone.utc)
    evidence = f"{summary.principal} has a ticket until {ends:%Y-%m-%d %H:%M} UTC in {name}"
    return evidence + _delegation_note(target)


def checks() -> list[tuple[str, Layer, t.Callable[[Target, Context], str]]]:
    return [
        ("kerberos_spn", Layer.KERBEROS, check_spn),
        ("kerberos_realm", Layer.KERBEROS, check_realm_config),
        ("kerberos_kdc", Layer.KERBEROS, check_kdc_reachable),
        ("kerberos_clock", Layer.KERBEROS, check_clock_skew),
        ("kerberos_ticket", Layer.KERBEROS, check_ticket),
    ]
