"""Who may use WinRM: security identifiers, SDDL and the access checks WinRM makes.

Windows authorises a WinRM request in two steps after authentication (sources below):

1. Service level: the user must be granted by the WinRM service's RootSDDL or by the security
   descriptor of at least one plugin (PowerShell session configuration). Otherwise WinRM answers
   HTTP 401, the same answer as for a wrong password. Source: Ansible's Windows setup guide,
   "HTTP 401/Credentials Rejected" (docs/docsite/rst/os_guide/windows_setup.rst in
   ansible/ansible-documentation), which lists "the user is not a member of the local
   Administrators group or has not been explicitly granted access" among the causes of a 401,
   and pywinrm issue #114, where a non-administrator was "rejected by the server" until added
   to Administrators.
2. Resource level: the resource asked for must grant the user: the cmd shell (WinRS) and
   winrm/config by RootSDDL, a PowerShell session configuration by its own descriptor.
   Otherwise the request gets the SOAP fault w:AccessDenied with WSManFault code 5 ("Access is
   denied.", HTTP 500). Source: pywinrm issues #275 and #338, where members of Remote
   Management Users (granted by Microsoft.PowerShell's descriptor, not by RootSDDL) get HTTP
   500 on the cmd shell while PowerShell remoting (pypsrp) works for them.

A descriptor grants a user when an allow ACE for one of the user's SIDs carries generic all
(GA), or both generic read (GR) and generic execute (GX), and no deny ACE for them carries GA
or GX. Source: Ansible's WinRM guide ("Non-Administrator Accounts", ../shared/seeds/000: users
"must have at least the Read and Execute permissions" in the `winrm configSDDL` editor), with
the SDDL rights strings of https://learn.microsoft.com/windows/win32/secauthz/ace-strings (GR
is GENERIC_READ, GX GENERIC_EXECUTE). Read alone, as RootSDDL's INTERACTIVE entry has, is not
enough; Execute alone is below the guide's minimum, so winhost refuses it too (assumed).

Session configuration descriptors take effect when the WinRM service starts, as on Windows
(Set-PSSessionConfiguration asks to restart WinRM unless -NoServiceRestart); RootSDDL is read
per request. Users' SIDs: the account's own (a machine SID derived from the computer name for
local accounts, a domain SID derived from the domain name for domain ones), Everyone,
Authenticated Users, NETWORK, BUILTIN\\Users, and BUILTIN\\Administrators for administrators
whose network token is not filtered by UAC (LocalAccountTokenFilterPolicy). winhost models no
other group membership (nobody is in Remote Management Users).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import typing as t

from winhost import api

# sid -> (name as NTAccount.Translate prints it, SDDL alias)
WELL_KNOWN: dict[str, tuple[str, str | None]] = {
    "S-1-1-0": ("Everyone", "WD"),
    "S-1-5-2": ("NT AUTHORITY\\NETWORK", "NU"),
    "S-1-5-4": ("NT AUTHORITY\\INTERACTIVE", "IU"),
    "S-1-5-11": ("NT AUTHORITY\\Authenticated Users", "AU"),
    "S-1-5-18": ("NT AUTHORITY\\SYSTEM", "SY"),
    "S-1-5-19": ("NT AUTHORITY\\LOCAL SERVICE", "LS"),
    "S-1-5-20": ("NT AUTHORITY\\NETWORK SERVICE", "NS"),
    "S-1-5-32-544": ("BUILTIN\\Administrators", "BA"),
    "S-1-5-32-545": ("BUILTIN\\Users", "BU"),
    "S-1-5-32-580": ("BUILTIN\\Remote Management Users", "RM"),
}
ALIASES = {alias: sid for sid, (_, alias) in WELL_KNOWN.items() if alias}
ADMINISTRATORS = "S-1-5-32-544"
# Resource URIs of PowerShell session configurations: this prefix and the configuration name.
POWERSHELL_RESOURCE_PREFIX = "http://schemas.microsoft.com/powershell/"
EVERYONE_ON_THE_NETWORK = ("S-1-1-0", "S-1-5-11", "S-1-5-2", "S-1-5-32-545")

# The descriptor of the default session configurations on Windows Server 2016 and later
# (Administrators, INTERACTIVE and Remote Management Users); winhost uses it for all four.
DEFAULT_SESSION_SDDL = (
    "O:NSG:BAD:P(A;;GA;;;BA)(A;;GA;;;IU)(A;;GA;;;RM)S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
)

_RIGHTS = {"GA": 0x10000000, "GX": 0x20000000, "GW": 0x40000000, "GR": 0x80000000}
_RUN = _RIGHTS["GA"] | _RIGHTS["GX"]
READ_EXECUTE = _RIGHTS["GR"] | _RIGHTS["GX"]
_SID = re.compile(r"S-1-\d+(-\d+)+", re.IGNORECASE)


class SddlError(ValueError):
    """An SDDL string winhost cannot read; the message quotes it."""


class AccountState(t.Protocol):
    computer_name: str
    accounts: list[api.Account]

    def find_account(self, name: str) -> api.Account | None: ...


def _sub_authorities(name: str) -> str:
    digest = hashlib.sha256(name.upper().encode("utf-8")).digest()
    return "-".join(str(int.from_bytes(digest[i : i + 4], "big")) for i in (0, 4, 8))


def account_sid(state: AccountState, account: api.Account) -> str:
    """S-1-5-21-<machine or domain>-<RID>: an account's fixed RID (500 for the built-in
    Administrator, whatever its name), others 1000 on in order."""
    local = account.domain.upper() == state.computer_name.upper()
    if account.rid is not None:
        rid = account.rid
    else:
        peers = [
            a
            for a in state.accounts
            if a.domain.upper() == account.domain.upper() and a.rid is None
        ]
        rid = (1000 if local else 1100) + peers.index(account)
    return f"S-1-5-21-{_sub_authorities(account.domain)}-{rid}"


def resolve(state: AccountState, name: str) -> str | None:
    """NTAccount.Translate(SecurityIdentifier): a SID string, an account or a well-known name
    (with or without its BUILTIN / NT AUTHORITY prefix), case-insensitively; None if unknown.

    Translate does not understand '.' as "this computer" (LogonUser and the WinRM logon do):
    '.\\user' is not mapped (IdentityNotMappedException). Sources: OctopusDeploy/Calamari#233
    ("The NTAccount class doesn't work with local accounts represented in the format of
    .\\username"), microsoft/azure-pipelines-agent#722, and ansible.windows'
    plugins/module_utils/_SecurityIdentifier.psm1, which rewrites '.' before translating."""
    text = name.strip()
    if _SID.fullmatch(text):
        return text.upper()
    if text.split("\\", 1)[0] == "." and "\\" in text:
        return None
    for sid, (known, _) in WELL_KNOWN.items():
        if text.lower() in (known.lower(), known.split("\\")[-1].lower()):
            return sid
    account = state.find_account(text)
    return account_sid(state, account) if account is not None else None


def name_of(state: AccountState, sid: str) -> str:
    """SecurityIdentifier.Translate(NTAccount): DOMAIN\\name, or the SID when unknown."""
    if sid in WELL_KNOWN:
        return WELL_KNOWN[sid][0]
    for account in state.accounts:
        if account_sid(state, account) == sid:
            return f"{account.domain}\\{account.name}"
    return sid


def principal_sids(state: AccountState, principal: api.Principal, administrators: bool) -> set[str]:
    """The SIDs of a network logon's token that grant access; `administrators` says whether
    the token carries Administrators (the host decides: UAC filters local administrators)."""
    if principal.domain.upper() == "NT AUTHORITY" and principal.username.upper() == "SYSTEM":
        return {"S-1-5-18", ADMINISTRATORS, *EVERYONE_ON_THE_NETWORK}
    sids = set(EVERYONE_ON_THE_NETWORK)
    account = state.find_account(f"{principal.domain}\\{principal.username}")
    if account is not None:
        sids.add(account_sid(state, account))
    if administrators:
        sids.add(ADMINISTRATORS)
    return sids


@dataclasses.dataclass(frozen=True)
class Ace:
    allow: bool
    rights: int
    sid: str


def _rights(text: str, sddl: str) -> int:
    if text.lower().startswith("0x"):
        return int(text, 16)
    tokens = [text[i : i + 2].upper() for i in range(0, len(text), 2)]
    if len(text) % 2 or any(not token.isalpha() for token in tokens):
        raise SddlError(f"access rights {text!r} in SDDL {sddl!r} are not readable")
    # Object-specific rights (CC, RP...) do not matter to WinRM's check; keep them as 0.
    return sum(_RIGHTS.get(token, 0) for token in tokens)


def _ace_sid(text: str, sddl: str) -> str:
    if _SID.fullmatch(text):
        return text.upper()
    sid = ALIASES.get(text.upper())
    if sid is None:
        raise SddlError(f"SID alias {text!r} in SDDL {sddl!r} is not one winhost knows")
    return sid


def dacl(sddl: str) -> tuple[str, list[Ace]]:
    """(DACL flags, ACEs) of an SDDL string."""
    match = re.search(r"D:(?P<flags>[A-Z]*)(?P<aces>(\([^()]*\))*)", sddl)
    if match is None:
        raise SddlError(f"SDDL {sddl!r} has no DACL (D:)")
    aces = []
    for body in re.findall(r"\(([^()]*)\)", match.group("aces")):
        fields = body.split(";")
        if len(fields) != 6 or fields[0].upper() not in ("A", "D"):
            raise SddlError(f"ACE ({body}) in SDDL {sddl!r} is not an allow or deny ACE")
        aces.append(
            Ace(fields[0].upper() == "A", _rights(fields[2], sddl), _ace_sid(fields[5], sddl))
        )
    return match.group("flags"), aces


def access_form(sddl: str) -> str:
    """The DACL in one form (aliases for well-known SIDs, deny entries first, rights as
    generic letters), so that descriptors granting the same compare equal."""
    flags, aces = dacl(sddl)
    merged: dict[tuple[bool, str], int] = {}
    for ace in aces:
        merged[(ace.allow, ace.sid)] = merged.get((ace.allow, ace.sid), 0) | ace.rights
    parts = []
    for (allow, sid), rights in sorted(merged.items(), key=lambda item: (item[0][0], item[0][1])):
        letters = "".join(k for k, bit in _RIGHTS.items() if rights & bit) or f"0x{rights:x}"
        alias = WELL_KNOWN.get(sid, ("", None))[1] or sid
        parts.append(f"({'A' if allow else 'D'};;{letters};;;{alias})")
    return f"D:{flags}{''.join(parts)}"


def grants(sddl: str, sids: set[str]) -> bool:
    """Whether the descriptor lets a token with `sids` use the resource."""
    _, aces = dacl(sddl)
    if any(not ace.allow and ace.sid in sids and ace.rights & _RUN for ace in aces):
        return False
    return any(
        ace.allow
        and ace.sid in sids
        and bool(ace.rights & _RIGHTS["GA"] or ace.rights & READ_EXECUTE == READ_EXECUTE)
        for ace in aces
    )


def _split(sddl: str) -> tuple[str, str, list[str], str]:
    """(text before the DACL, DACL flags, ACE bodies, text after the DACL) of an SDDL string."""
    match = re.search(r"D:(?P<flags>[A-Z]*)(?P<aces>(\([^()]*\))*)", sddl)
    if match is None:
        raise SddlError(f"SDDL {sddl!r} has no DACL (D:)")
    bodies = re.findall(r"\(([^()]*)\)", match.group("aces"))
    return sddl[: match.start()], match.group("flags"), bodies, sddl[match.end() :]


def set_allow(sddl: str, sids: t.Iterable[str], rights: str | None) -> str:
    """The descriptor with the allow entries of `sids` replaced by one with `rights` (SDDL
    letters), or removed when `rights` is None; every other entry, the owner, group and SACL
    kept, as CommonSecurityDescriptor's DiscretionaryAcl.SetAccess and RemoveAccess do."""
    before, flags, bodies, after = _split(sddl)
    targets = [sid.upper() for sid in sids]
    kept = [
        body
        for body in bodies
        if not (
            body.split(";")[0].upper() == "A" and _ace_sid(body.split(";")[-1], sddl) in targets
        )
    ]
    if rights is not None:
        kept.extend(f"A;;{rights};;;{sid}" for sid in targets)
    return f"{before}D:{flags}{''.join(f'({body})' for body in kept)}{after}"
