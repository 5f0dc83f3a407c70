"""winops.remoting.win_psremoting_access against the host's session configurations and RootSDDL.

Follows plugins/modules/win_psremoting_access.ps1: accounts are converted to SIDs as its
ConvertTo-Sid does ('.\\' becomes this computer's name, a local group named with this computer's
name is looked up by its name alone, a bare local user name with this computer's name; then
winhost.access.resolve, which translates as NTAccount.Translate does and so refuses '.\\'),
access=full grants GA and access=read_execute GR and GX (GXGR); mode=exact replaces each
descriptor with the list, mode=add sets the listed accounts' allow entries and mode=remove
drops them, keeping every other entry (winhost.access.set_allow, as the .ps1's
CommonSecurityDescriptor SetAccess/RemoveAccess); descriptors are compared by their DACL in one
canonical form, the task's own identity must keep access unless allow_lockout (exact: it is in
the list; remove: no target that let it in stops doing so), and with restart_winrm a WinRM restart is scheduled ten
seconds later. Live effect (winhost.access): RootSDDL is read on every request,
so a changed RootSDDL applies to the next one; a session configuration's descriptor applies
once WinRM restarts (the scheduled restart, a reboot, or winhost starting again), as on Windows.

Configuration entries may be PowerShell wildcards (`*`, `?`, `[...]`), as
Get-PSSessionConfiguration -Name takes them; every modelled session configuration is a
pwrshplugin.dll plugin, so those not selected are the unrestricted_configurations.

Not modelled: the scheduled task itself as an object on the host (its only effect, the restart,
is modelled; it does not survive winhost stopping).
"""

from __future__ import annotations

import fnmatch
import typing as t

from winhost import access
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import host_model

OPTIONS = {
    "accounts": Option(type="list", elements="str", required=True),
    "configurations": Option(type="list", elements="str", default=["*"]),
    "root_sddl": Option(type="bool", default=True),
    "allow_lockout": Option(type="bool", default=False),
    "connection_sids": Option(type="list", elements="str"),
    "restart_winrm": Option(type="bool", default=False),
    "access": Option(type="str", choices=("full", "read_execute"), default="full"),
    "mode": Option(type="str", choices=("exact", "add", "remove"), default="exact"),
}
# SDDL rights strings of each access level (GENERIC_ALL; GENERIC_READ with GENERIC_EXECUTE).
ACCESS_RIGHTS = {"full": "GA", "read_execute": "GXGR"}
# Windows' default descriptors audit every failure and successful writes/executes.
AUDIT_PART = "S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)"
RESTART_AFTER_SECONDS = 10.0  # the scheduled task's trigger, as the .ps1 registers it
RESTART_DOWN_SECONDS = 2.0  # how long WinRM takes to stop and listen again


def _sid_sort_key(sid: str) -> tuple[str, str]:
    # Sort-Object compares strings culture-aware, where '-' weighs (almost) nothing.
    return sid.replace("-", "").lower(), sid


def _form(sddl: str, what: str) -> str:
    try:
        return access.access_form(sddl)
    except access.SddlError as err:
        raise ModuleFailure(f"cannot read the security descriptor of {what}: {err}") from err


def _ntaccount_name(state: t.Any, entry: str) -> str:
    """ConvertTo-Sid's rewriting of a name before NTAccount.Translate."""
    if "\\" in entry:
        domain, name = entry.split("\\", 1)
        if domain == ".":
            domain = state.computer_name
        local_groups = {
            known.split("\\")[-1].lower()
            for known, _ in access.WELL_KNOWN.values()
            if known.startswith("BUILTIN\\")
        }
        if domain.lower() == state.computer_name.lower() and name.lower() in local_groups:
            return name
        return f"{domain}\\{name}"
    local = any(
        a.name.lower() == entry.lower() and a.domain.upper() == state.computer_name.upper()
        for a in state.accounts
    )
    return f"{state.computer_name}\\{entry}" if local else entry


def _matches(pattern: str, name: str) -> bool:
    """PowerShell's -like on a name: *, ? and [...] wildcards, case-insensitive."""
    return fnmatch.fnmatchcase(name.lower(), pattern.lower())


def _resolved(state: t.Any, entry: str) -> str:
    """ConvertTo-Sid: the SID of an account, group or SID, or NTAccount.Translate's failure."""
    sid = access.resolve(state, _ntaccount_name(state, entry))
    if sid is None:
        raise ModuleFailure(
            f"accounts entry '{entry}' is not an account, group or SID this host knows: "
            "Some or all identity references could not be translated."
        )
    return sid


def _identity_name(run: ModuleRun) -> str:
    principal = run.ctx.principal
    return f"{principal.domain}\\{principal.username}"


@register("winops.remoting.win_psremoting_access", OPTIONS)
def win_psremoting_access(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    host = run.ctx.host
    schedule = getattr(host, "schedule_winrm_restart", None)
    result: dict[str, t.Any] = {"changed": False}
    with host_model(run) as state:
        sids_given = [_resolved(state, str(entry)) for entry in params["accounts"]]
        sids = sorted(set(sids_given), key=_sid_sort_key)
        if not sids:
            raise ModuleFailure("accounts is empty; at least one account must keep remote access")
        mode = params["mode"]
        rights = ACCESS_RIGHTS[params["access"]]
        exact_sddl = "O:NSG:BAD:P" + "".join(f"(A;;{rights};;;{sid})" for sid in sids) + AUDIT_PART

        def wanted(current: str, what: str) -> str:
            if mode == "exact":
                return exact_sddl
            _form(current, what)  # an unreadable descriptor fails naming its target
            return access.set_allow(current, sids, rights if mode == "add" else None)

        if params["connection_sids"]:
            # As the module: the token the play connects with, given by the play (become).
            connection = [_resolved(state, str(entry)) for entry in params["connection_sids"]]
            own = set(connection)
            own_name = f"the account this play connects as ({access.name_of(state, connection[0])})"
        else:
            own = access.principal_sids(state, run.ctx.principal, run.ctx.principal.is_admin)
            own_name = f"'{_identity_name(run)}', which runs this task,"
        if mode == "exact" and not own.intersection(sids) and not params["allow_lockout"]:
            names = ", ".join(access.name_of(state, sid) for sid in sids)
            raise ModuleFailure(
                f"accounts ({names}) includes neither {own_name} nor a group it belongs to; the "
                "next connection would be refused. Add it, or set allow_lockout=true"
            )

        before: dict[str, str] = {}
        after: dict[str, str] = {}
        changed_configurations: list[str] = []
        selected: list[str] = []
        for entry in params["configurations"]:
            pattern = str(entry)
            found = [n for n in state.session_configurations if _matches(pattern, n)]
            if not found and not any(c in pattern for c in "*?["):
                raise ModuleFailure(
                    f"configurations entry '{pattern}' is not a PowerShell session "
                    f'configuration on this host: No session configuration matches criteria "{pattern}".'
                )
            selected.extend(n for n in found if n not in selected)

        targets = [(n, f"configurations entry '{n}'") for n in selected]
        if params["root_sddl"]:
            targets.insert(0, ("RootSDDL", "WSMan:\\localhost\\Service\\RootSDDL"))
        if mode == "remove" and not params["allow_lockout"]:
            for name, what in targets:
                current = (
                    state.winrm_setting("Service/RootSDDL")
                    if name == "RootSDDL"
                    else state.session_configurations[name]
                )
                if access.grants(current, own) and not access.grants(wanted(current, what), own):
                    names = ", ".join(access.name_of(state, sid) for sid in sids)
                    raise ModuleFailure(
                        f"removing accounts ({names}) from {what} leaves {own_name} without "
                        "access; the next connection would be refused. Keep it, or set "
                        "allow_lockout=true"
                    )

        for stored in selected:
            name = stored
            current = state.session_configurations[stored]
            before[name] = current
            after[name] = current
            wanted_sddl = wanted(current, f"configurations entry '{name}'")
            if _form(current, f"configurations entry '{name}'") == access.access_form(wanted_sddl):
                continue
            if not run.check_mode:
                # Stored only: the WinRM service applies it when it next starts.
                state.session_configurations[stored] = wanted_sddl
            after[name] = wanted_sddl
            changed_configurations.append(name)
            result["changed"] = True

        if params["root_sddl"]:
            current_root = state.winrm_setting("Service/RootSDDL")
            before["RootSDDL"] = after["RootSDDL"] = current_root
            wanted_root = wanted(current_root, "RootSDDL")
            if _form(current_root, "RootSDDL") != access.access_form(wanted_root):
                if not run.check_mode:
                    state.set_winrm_setting("Service/RootSDDL", wanted_root)
                after["RootSDDL"] = wanted_root
                result["changed"] = True

        restart_scheduled = bool(changed_configurations) and params["restart_winrm"]
        if restart_scheduled and not run.check_mode:
            if schedule is None:
                raise ModuleFailure(
                    "the SDDL changed but restart_winrm could not schedule the WinRM restart: "
                    f"winhost cannot restart WinRM on this host ({type(host).__name__})"
                )
            schedule(RESTART_AFTER_SECONDS, RESTART_DOWN_SECONDS)
        accounts = [{"sid": sid, "name": access.name_of(state, sid)} for sid in sids]
        unrestricted = [n for n in state.session_configurations if n not in selected]
    if unrestricted:
        run.warnings.append(
            "PowerShell remoting endpoints left as they were (not restricted to accounts): "
            + ", ".join(unrestricted)
        )

    result.update(
        # The exact list's descriptor; with add or remove each target keeps its own.
        sddl=exact_sddl if mode == "exact" else None,
        descriptors=after,
        accounts=accounts,
        changed_configurations=changed_configurations,
        restart_scheduled=restart_scheduled,
        unrestricted_configurations=unrestricted,
        # Session configuration security applies to new sessions after WinRM restarts.
        restart_required=bool(changed_configurations) and not restart_scheduled,
    )
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
