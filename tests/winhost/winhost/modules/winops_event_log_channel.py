"""winops.remoting.win_event_log_channel against the host's event log channels.

Follows plugins/modules/win_event_log_channel.ps1: the channel is found by name as
Get-WinEvent -ListLog finds it (case-insensitive), max_size_kb must be at least 1024 and a
multiple of 64, and enabled / max_size_kb are compared and written together
(EventLogConfiguration.SaveChanges).
Channels live in HostState.event_log_channels (Windows' defaults for the channels listed in
winhost.state.DEFAULT_EVENT_LOG_CHANNELS); winhost records no events in them.

A name with a wildcard fails, as the .ps1 does (Get-WinEvent -ListLog would list several
channels). Not modelled (fails loudly): switching off a classic log (Application, System...).
"""

from __future__ import annotations

import typing as t

from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import host_model

# wevtutil: "The minimum log size is 1048576 bytes (1024KB)" (docs/winhost-behaviours.md).
MIN_SIZE_KB = 1024
# Limit-EventLog: "The value must be divisible by 64 KB" (docs/winhost-behaviours.md).
SIZE_STEP_KB = 64

OPTIONS = {
    "name": Option(required=True),
    "enabled": Option(type="bool", default=True),
    "max_size_kb": Option(type="int"),
}


def _kilobytes(size_bytes: int) -> int:
    # [int64]($bytes / 1024): PowerShell rounds the quotient half to even.
    return round(size_bytes / 1024)


@register("winops.remoting.win_event_log_channel", OPTIONS)
def win_event_log_channel(run: ModuleRun) -> dict[str, t.Any]:
    name = run.params["name"]
    if any(c in name for c in "*?["):
        raise ModuleFailure(
            f"name '{name}' contains a wildcard; give the exact name of one event log channel"
        )
    result: dict[str, t.Any] = {"changed": False}
    with host_model(run) as state:
        stored = next((n for n in state.event_log_channels if n.lower() == name.lower()), None)
        if stored is None:
            raise ModuleFailure(
                f"name '{name}' is not an event log channel on this host: There is not an event "
                f'log on the localhost computer that matches "{name}".'
            )
        max_size_kb = run.params["max_size_kb"]
        if max_size_kb is not None and max_size_kb < MIN_SIZE_KB:
            raise ModuleFailure(
                f"max_size_kb '{max_size_kb}' is too small: Windows keeps no event log smaller "
                "than 1024 KB (1048576 bytes)"
            )
        if max_size_kb is not None and max_size_kb % SIZE_STEP_KB:
            lower = max_size_kb - max_size_kb % SIZE_STEP_KB
            raise ModuleFailure(
                f"max_size_kb '{max_size_kb}' is not a multiple of 64: Windows sizes event logs "
                f"in 64 KB steps; use {lower} or {lower + SIZE_STEP_KB}"
            )
        channel = state.event_log_channels[stored]
        before = {
            "enabled": bool(channel["enabled"]),
            "max_size_kb": _kilobytes(int(channel["max_size_bytes"])),
        }
        after = {**before, "enabled": run.params["enabled"]}
        if max_size_kb is not None:
            after["max_size_kb"] = max_size_kb
        if after != before:
            if channel.get("classic") and not after["enabled"]:
                raise ModuleFailure(
                    f"winhost does not model switching off the classic event log '{stored}'"
                )
            if not run.check_mode:
                channel["enabled"] = after["enabled"]
                channel["max_size_bytes"] = after["max_size_kb"] * 1024
            result["changed"] = True
    result["channel"] = after
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
