"""winops.remoting.win_psremoting_access against the host's session configurations and RootSDDL.

Follows plugins/modules/win_psremoting_access.ps1: accounts are converted to SIDs as its
ConvertTo-Sid does (an SID string, an account or a well-known name; winhost.access),
descriptors are compared by their DACL in one canonical form, the task's own identity must
keep access unless allow_lockout, and with restart_winrm a WinRM restart is scheduled ten
seconds later. Live effect (winhost.access): RootSDDL is read on every request,
so a changed RootSDDL applies to the next one; a session configuration's descriptor applies
once WinRM restarts (the scheduled restart, a reboot, or winhost starting again), as on Windows.

Not modelled: wildcards in configuration names (Get-PSSessionConfiguration -Name takes them;
winhost fails naming the entry) and the scheduled task itself as an object on the host (its
only effect, the restart, is modelled; it does not survive winhost stopping).
"""

from __future__ import annotations

import typing as t

from winhost import access
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import host_model

OPTIONS = {
    "accounts": Option(type="list", elements="str", required=True),
    "configurations": Option(type="list", elements="str", default=["Microsoft.PowerShell"]),
    "root_sddl": Option(type="bool", default=True),
    "allow_lockout": Option(type="bool", default=False),
    "restart_winrm": Option(type="bool", default=False),
}
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
        sids_given = []
        for entry in params["accounts"]:
            sid = access.resolve(state, str(entry))
            if sid is None:
                # ConvertTo-Sid: NTAccount.Translate's IdentityNotMappedException message.
                raise ModuleFailure(
                    f"accounts entry '{entry}' is not an account, group or SID this host knows: "
                    "Some or all identity references could not be translated."
                )
            sids_given.append(sid)
        sids = sorted(set(sids_given), key=_sid_sort_key)
        if not sids:
            raise ModuleFailure("accounts is empty; at least one account must keep remote access")
        wanted_sddl = "O:NSG:BAD:P" + "".join(f"(A;;GA;;;{sid})" for sid in sids) + AUDIT_PART
        wanted_form = access.access_form(wanted_sddl)

        own = access.principal_sids(state, run.ctx.principal, run.ctx.principal.is_admin)
        if not own.intersection(sids) and not params["allow_lockout"]:
            names = ", ".join(access.name_of(state, sid) for sid in sids)
            raise ModuleFailure(
                f"accounts ({names}) includes neither '{_identity_name(run)}', which runs this "
                "task, nor a group it belongs to; the next connection would be refused. Add it, "
                "or set allow_lockout=true"
            )

        before: dict[str, str] = {}
        after: dict[str, str] = {}
        changed_configurations: list[str] = []
        for entry in params["configurations"]:
            name = str(entry)
            if any(c in name for c in "*?["):
                raise ModuleFailure(
                    f"winhost does not model wildcards in session configuration names "
                    f"(configurations entry '{name}')"
                )
            stored = next(
                (n for n in state.session_configurations if n.lower() == name.lower()), None
            )
            if stored is None:
                raise ModuleFailure(
                    f"configurations entry '{name}' is not a PowerShell session configuration "
                    f'on this host: No session configuration matches criteria "{name}".'
                )
            current = state.session_configurations[stored]
            before[name] = current
            after[name] = current
            if _form(current, f"configurations entry '{name}'") == wanted_form:
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
            if _form(current_root, "RootSDDL") != wanted_form:
                if not run.check_mode:
                    state.set_winrm_setting("Service/RootSDDL", wanted_sddl)
                after["RootSDDL"] = wanted_sddl
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

    result.update(
        sddl=wanted_sddl,
        accounts=accounts,
        changed_configurations=changed_configurations,
        restart_scheduled=restart_scheduled,
        # Session configuration security applies to new sessions after WinRM restarts.
        restart_required=bool(changed_configurations) and not restart_scheduled,
    )
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
