"""winops.remoting.win_winrm_cert_mapping against the host's ClientCertificate mappings.

Follows plugins/modules/win_winrm_cert_mapping.ps1: the mapping is found by issuer thumbprint
(upper-case), subject and URI (PowerShell's case-insensitive -eq); the password is tested
against the local account before anything is written; a marker value per mapping under
HKLM\\SOFTWARE\\winops.remoting\\CertificateMappings records that this module wrote the stored
password. Mappings land in HostState.cert_mappings, which certificate authentication reads on
every request (winhost.auth), so a mapping written or removed here takes effect at once.

The .ps1 detects a changed account password by comparing the account's PasswordLastSet with
the time recorded in the marker. winhost keeps no PasswordLastSet; it compares what that time
stands for: whether the password stored with the mapping is still the account's password. The
marker is written (with the UTC ticks of the write) and removed as the .ps1 does, so
'stored_password_unverified' (a mapping someone else wrote) behaves as on Windows.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import typing as t

from winhost import api
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import (
    INTERMEDIATE_STORE,
    ROOT_STORE,
    check_choice,
    host_model,
    ps_equal,
    store_cert,
)
from winhost.state import CertMapping, HostState

ISSUER_STORES = (ROOT_STORE, INTERMEDIATE_STORE)

MARKER_KEY = "HKLM\\SOFTWARE\\winops.remoting\\CertificateMappings"
# .NET ticks (100 ns since 0001-01-01) of the Unix epoch.
_EPOCH_TICKS = 621355968000000000

OPTIONS = {
    "issuer_thumbprint": Option(required=True),
    "subject": Option(required=True),
    "uri": Option(default="*"),
    "username": Option(),
    "password": Option(no_log=True),
    "enabled": Option(type="bool", default=True),
    "update_password": Option(default="on_change", choices=("always", "on_change")),
    "state": Option(default="present", choices=("present", "absent")),
}


def _marker_name(issuer: str, subject: str, uri: str) -> str:
    return hashlib.sha256(f"{issuer}|{subject}|{uri}".encode()).hexdigest().upper()


def _find(state: HostState, issuer: str, subject: str, uri: str) -> CertMapping | None:
    return next(
        (
            m
            for m in state.cert_mappings
            if m.issuer.upper() == issuer and ps_equal(m.subject, subject) and ps_equal(m.uri, uri)
        ),
        None,
    )


def _as_result(mapping: CertMapping) -> dict[str, t.Any]:
    return {
        "issuer_thumbprint": mapping.issuer.upper(),
        "subject": mapping.subject,
        "uri": mapping.uri,
        "username": mapping.username,
        "enabled": mapping.enabled,
    }


def _account_name(state: HostState, username: str) -> str:
    """Get-LocalAccountName: the name without a '.\\' or '<computer>\\' prefix, as the mapping
    stores it; any other prefix names a domain account, which a mapping cannot use."""
    prefix, sep, local_name = username.partition("\\")
    if not sep:
        return username
    if prefix != "." and prefix.upper() != state.computer_name.upper():
        raise ModuleFailure(
            f"username '{username}' names an account of '{prefix}', but a WinRM certificate "
            f"mapping needs a local account of this host ({state.computer_name}); give it as "
            f"'.\\{local_name}' or without a prefix"
        )
    return local_name


def _local_account(state: HostState, username: str) -> api.Account:
    """Get-LocalUser on the account name (_account_name)."""
    local_name = _account_name(state, username)
    account = next(
        (
            a
            for a in state.accounts
            if a.name.lower() == local_name.lower()
            and a.domain.upper() == state.computer_name.upper()
        ),
        None,
    )
    if account is None:
        raise ModuleFailure(
            f"username '{username}' is not a local account on this host (certificate mapping "
            f"needs one): User {local_name} was not found."
        )
    return account


def _test_password(account: api.Account, username: str, password: str) -> str:
    """Test-AccountPassword: LogonUser's network logon. A wrong password is ERROR_LOGON_FAILURE
    (1326); a restriction found after the password matched comes back as its name (the .ps1
    warns and stores the password); a disabled account (ERROR_ACCOUNT_DISABLED, 1331) is a
    failure the .ps1 reports with LogonUser's message."""
    if account.password != password:
        raise ModuleFailure(
            f"password is not accepted for username '{username}'; the mapping would store a "
            "credential that cannot log on"
        )
    if not account.enabled:
        raise ModuleFailure(
            f"cannot test the password of username '{username}': Failed to logon "
            f".\\{account.name} (This user can't sign in because this account is currently "
            "disabled., Win32ErrorCode 1331 - 0x00000533)"
        )
    return account.logon_restriction


def _check_patterns(subject: str, uri: str) -> None:
    """The .ps1's check of MS-WSMV 2.2.4.3's patterns (Subject: one '*', first or last; URI:
    one '*', last, no white space or '?'), before anything is looked up."""
    stars = subject.count("*")
    if not subject or stars > 1 or (stars == 1 and not (subject[0] == "*" or subject[-1] == "*")):
        raise ModuleFailure(
            f"subject '{subject}' is not a pattern WinRM takes: it needs at least one character "
            "and at most one '*', as its first or last character (for example "
            "'*@example.com'). Nothing was changed."
        )
    stars = uri.count("*")
    if not uri or stars > 1 or (stars == 1 and not uri.endswith("*")) or re.search(r"[\s?]", uri):
        raise ModuleFailure(
            f"uri '{uri}' is not a pattern WinRM takes: it needs at least one character, at most "
            "one '*', as its last character, and no white space or '?' (for example '*', or "
            "'http://schemas.microsoft.com/powershell/*'). Nothing was changed."
        )


def _required_if(params: dict[str, t.Any]) -> None:
    missing = [name for name in ("username", "password") if params[name] is None]
    if str(params["state"]) == "present" and missing:
        raise ModuleFailure(
            f"state is present but all of the following are missing: {', '.join(missing)}"
        )


@register("winops.remoting.win_winrm_cert_mapping", OPTIONS)
def win_winrm_cert_mapping(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    check_choice("update_password", params["update_password"], ("always", "on_change"))
    check_choice("state", params["state"], ("present", "absent"))
    _required_if(params)
    issuer = re.sub(r"[\s\u200e]", "", params["issuer_thumbprint"]).upper()
    if not re.fullmatch(r"[0-9A-F]{40}", issuer):
        raise ModuleFailure(
            f"issuer_thumbprint '{params['issuer_thumbprint']}' is not a SHA-1 thumbprint of "
            "40 hex digits"
        )
    subject, uri = params["subject"], params["uri"]
    _check_patterns(subject, uri)
    marker = _marker_name(issuer, subject, uri)
    result: dict[str, t.Any] = {"changed": False, "password_updated": False, "update_reason": None}
    with host_model(run) as state:
        current = _find(state, issuer, subject, uri)
        before = _as_result(current) if current is not None else {}
        if str(params["state"]).lower() == "absent":
            if current is not None:
                if not run.check_mode:
                    state.cert_mappings.remove(current)
                    state.registry.get(MARKER_KEY, {}).pop(marker, None)
                result["changed"] = True
            result["mapping"] = None
            return _with_diff(run, result, before, {})

        username, password = params["username"], params["password"]
        # The direct issuer: a root CA in Root or an intermediate in CA (MS-WSMV 2.2.4.3).
        if all(store_cert(state, store, issuer) is None for store in ISSUER_STORES):
            if not run.check_mode:
                raise ModuleFailure(
                    f"issuer_thumbprint '{issuer}' is in neither Cert:\\LocalMachine\\Root nor "
                    "Cert:\\LocalMachine\\CA; import the issuing certificate first (a root CA "
                    "into Root, an intermediate CA into CA with its root in Root)"
                )
            run.warnings.append(
                f"issuer_thumbprint '{issuer}' is in neither Cert:\\LocalMachine\\Root nor "
                "Cert:\\LocalMachine\\CA yet; continuing because this is check mode"
            )
        # Stored without its prefix, as New-Item WSMan:\\localhost\\ClientCertificate stores it.
        account_name = _account_name(state, username)
        account = _local_account(state, username)
        restriction = _test_password(account, username, password)
        if restriction:
            run.warnings.append(
                f"username '{username}' is refused a network logon ({restriction}) although its "
                "password is right; the password is stored, but certificate authentication may "
                "be refused until the restriction is lifted"
            )
        recorded = state.registry.get(MARKER_KEY, {}).get(marker)
        reason = _update_reason(current, account_name, params["update_password"], recorded, account)
        desired = CertMapping(
            subject=current.subject if current is not None else subject,
            issuer=issuer,
            username=account_name if reason is not None or current is None else current.username,
            password=password if reason is not None else (current.password if current else ""),
            uri=current.uri if current is not None else uri,
            enabled=params["enabled"],
        )
        enabled_changes = current is None or current.enabled != desired.enabled
        if reason is not None or enabled_changes:
            if not run.check_mode:
                if current is None:
                    state.cert_mappings.append(desired)
                else:
                    state.cert_mappings[state.cert_mappings.index(current)] = desired
                if reason is not None:
                    ticks = _EPOCH_TICKS + int(
                        datetime.datetime.now(datetime.UTC).timestamp() * 10_000_000
                    )
                    state.registry.setdefault(MARKER_KEY, {})[marker] = str(ticks)
            result.update(changed=True, password_updated=reason is not None, update_reason=reason)
    wanted = {
        "issuer_thumbprint": issuer,
        "subject": subject,
        "uri": uri,
        "username": account_name,
        "enabled": params["enabled"],
    }
    result["mapping"] = wanted
    return _with_diff(run, result, before, dict(wanted))


def _update_reason(
    current: CertMapping | None,
    username: str,
    update_password: str,
    recorded: t.Any,
    account: api.Account,
) -> str | None:
    """Why the stored password is (re)written, in the .ps1's order of checks."""
    if current is None:
        return "created"
    if not ps_equal(current.username, username):
        return "username_changed"
    if update_password.lower() == "always":
        return "update_password_always"
    if recorded is None:
        # Written by someone else: the stored password is unknown, so store the tested one once.
        return "stored_password_unverified"
    if current.password != account.password:
        # winhost's stand-in for "PasswordLastSet differs from the time recorded".
        return "account_password_changed"
    return None


def _with_diff(
    run: ModuleRun, result: dict[str, t.Any], before: dict[str, t.Any], after: dict[str, t.Any]
) -> dict[str, t.Any]:
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
