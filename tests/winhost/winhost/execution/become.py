"""become (runas) as ansible-core's become_wrapper.ps1 + Ansible.Become.cs do it on Windows.

Rules modelled (from Ansible.Become.cs's GetUserTokens):
- The become user is resolved to an account first; an unknown name fails with .NET's
  IdentityNotMappedException text.
- SYSTEM (and accounts without a password, via S4U) need the connecting user to be able to
  impersonate SYSTEM, i.e. to be an administrator; otherwise the "Failed to get token for
  NT AUTHORITY\\SYSTEM ..." error.
- A password is checked with LogonUser: a wrong one fails with Win32 error 1326, a disabled
  account with 1331.
- The new process is started with CreateProcessWithTokenW, which needs SeImpersonatePrivilege
  in the caller: Administrators have it, a standard user's WinRM logon does not, so a
  non-administrator connection cannot become any account (Ansible's become docs: "On Windows
  you cannot connect with an underprivileged account and use become to elevate your rights").
Every failure surfaces as the exec wrapper reports an exception from CreateProcessAsUser.
"""

from __future__ import annotations

import typing as t

from winhost import api
from winhost.execution.context import ExecContext, is_system, system_principal
from winhost.execution.errors import WrapperFailure

_SYSTEM_NAMES = {"system", "nt authority\\system", "localsystem", ".\\system"}
_SERVICE_NAMES = {
    "localservice": "LocalService",
    "nt authority\\localservice": "LocalService",
    "nt authority\\local service": "LocalService",
    "networkservice": "NetworkService",
    "nt authority\\networkservice": "NetworkService",
    "nt authority\\network service": "NetworkService",
}
_CALL = 'Exception calling "CreateProcessAsUser" with "9" argument(s): '


def _win32(message: str, code: int, text: str) -> WrapperFailure:
    return WrapperFailure(f'{_CALL}"{message} ({text}, Win32ErrorCode {code} - 0x{code:08X})"')


def become(ctx: ExecContext, params: dict[str, t.Any], secure: dict[str, t.Any]) -> ExecContext:
    """The context the rest of the manifest runs in, or WrapperFailure as Windows reports it."""
    user = str(params.get("BecomeUser") or "")
    password = secure.get("BecomePassword")
    password = None if password in (None, "") else str(password)
    logon_type = str(params.get("LogonType") or "Interactive")
    if logon_type.lower() == "newcredentials":
        raise WrapperFailure(
            "winhost does not model become_flags logon_type=new_credentials (the process would "
            "keep the caller's identity locally and use the become credentials on the network)"
        )
    lowered = user.lower()
    connecting = ctx.principal
    if lowered in _SERVICE_NAMES:
        raise WrapperFailure(
            f"winhost does not model becoming the service account {_SERVICE_NAMES[lowered]!r}"
        )
    if lowered in _SYSTEM_NAMES or not user:
        if not _has_admin_rights(connecting):
            raise _no_system_token()
        return ExecContext.for_principal(ctx.host, system_principal(connecting.auth_method))

    name = user[2:] if user.startswith(".\\") else user
    account = ctx.host.find_account(name)
    if account is None:
        raise WrapperFailure(f'{_CALL}"Some or all identity references could not be translated."')
    if password is None:
        # S4U logon without a password needs SYSTEM's token first.
        if not _has_admin_rights(connecting):
            raise _no_system_token()
    else:
        domain, username = _logon_names(user)
        shown = username if domain is None else f"{domain}\\{username}"
        if password != account.password:
            raise _win32(f"Failed to logon {shown}", 1326, "The user name or password is incorrect")
        if not account.enabled:
            raise _win32(
                f"Failed to logon {shown}",
                1331,
                "This user can't sign in because this account is currently disabled",
            )
    if not _has_admin_rights(connecting):
        # Reached with a password LogonUser accepted: only starting the process is left.
        raise _win32(
            "CreateProcessWithTokenW() failed",
            1314,
            "A required privilege is not held by the client",
        )
    principal = api.Principal(
        username=account.name,
        domain=account.domain,
        auth_method=connecting.auth_method,
        is_admin=account.is_admin,
    )
    if is_system(principal):
        return ExecContext.for_principal(ctx.host, system_principal(connecting.auth_method))
    return ExecContext.for_principal(ctx.host, principal)


def _has_admin_rights(principal: api.Principal) -> bool:
    """Whether the connection's token holds what runas needs (SeDebugPrivilege for SYSTEM's
    token, SeImpersonatePrivilege to start the process): an administrator's, unless UAC's
    remote restrictions filtered it."""
    return principal.is_admin and principal.elevated is not False


def _no_system_token() -> WrapperFailure:
    return WrapperFailure(
        f'{_CALL}"Failed to get token for NT AUTHORITY\\SYSTEM required for become as a service '
        'account or an account without a password"'
    )


def _logon_names(user: str) -> tuple[str | None, str]:
    """(domain, username) as Ansible.Become passes them to LogonUser."""
    if user.startswith(".\\"):
        return ".", user[2:]
    if "\\" in user:
        domain, username = user.split("\\", 1)
        return domain, username
    if "@" in user:
        return None, user
    return ".", user
