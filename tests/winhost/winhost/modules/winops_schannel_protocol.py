"""winops.remoting.win_schannel_protocol against the host's registry model.

Follows plugins/modules/win_schannel_protocol.ps1: Enabled and DisabledByDefault under
HKLM\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL\\Protocols\\<protocol>\\
<Server|Client>, both written (or both removed for state=default). winhost reads the Server
values of TLS 1.0 to 1.3 at boot (winhost.schannel), so, as on Windows, the change takes effect
after a reboot (win_reboot or the `reboot` fault); SSL 2.0/3.0 and the Client side are stored
only. Enabling TLS 1.3 is refused below build 20348, as the module does.
"""

from __future__ import annotations

import typing as t

from winhost import releases
from winhost.host import SCHANNEL_KEY
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import check_choice, host_model

PROTOCOLS = ("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3")
SIDES = ("server", "client")
STATES = ("enabled", "disabled", "default")
WANTED: dict[str, dict[str, int | None]] = {
    "enabled": {"Enabled": 1, "DisabledByDefault": 0},
    "disabled": {"Enabled": 0, "DisabledByDefault": 1},
    "default": {"Enabled": None, "DisabledByDefault": None},
}
VALUE_NAMES = ("Enabled", "DisabledByDefault")
# The first build whose SCHANNEL supports TLS 1.3 (Windows Server 2022; Windows 11 is 22000):
# the module refuses to enable it below (docs/winhost-behaviours.md, "TLS 1.3 before Windows
# Server 2022").
TLS13_FIRST_BUILD = 20348

OPTIONS = {
    "protocol": Option(
        required=True,
        choices=("SSL 2.0", "SSL 3.0", "TLS 1.0", "TLS 1.1", "TLS 1.2", "TLS 1.3"),
    ),
    "sides": Option(
        type="list", elements="str", choices=("server", "client"), default=["server", "client"]
    ),
    "state": Option(required=True, choices=("enabled", "disabled", "default")),
}


def _find(mapping: dict[str, t.Any], name: str) -> str | None:
    """Registry names are case-insensitive."""
    return next((key for key in mapping if key.lower() == name.lower()), None)


@register("winops.remoting.win_schannel_protocol", OPTIONS)
def win_schannel_protocol(run: ModuleRun) -> dict[str, t.Any]:
    protocol = check_choice("protocol", run.params["protocol"], PROTOCOLS)
    state_wanted = check_choice("state", run.params["state"], STATES)
    assert protocol is not None and state_wanted is not None
    sides = [str(side) for side in run.params["sides"]]
    bad = [side for side in sides if side.lower() not in SIDES]
    if bad:
        raise ModuleFailure(
            f"value of sides must be one or more of: {', '.join(SIDES)}. "
            f"Got no match for: {', '.join(bad)}"
        )
    wanted = WANTED[state_wanted.lower()]
    # The canonical spelling for keys this run creates (winhost reads them by it at boot).
    canonical = next(p for p in PROTOCOLS if p.lower() == protocol.lower())
    before: dict[str, t.Any] = {}
    after: dict[str, t.Any] = {}
    changed = False
    with host_model(run) as state:
        build = releases.build_of(state)
        if canonical == "TLS 1.3" and state_wanted.lower() == "enabled":
            if build < TLS13_FIRST_BUILD:
                raise ModuleFailure(
                    f"protocol 'TLS 1.3' with state 'enabled' is refused on build {build}: "
                    "SCHANNEL supports TLS 1.3 from Windows Server 2022 and Windows 11 (build "
                    f"{TLS13_FIRST_BUILD} and later), and Microsoft calls enabling it on earlier "
                    "versions not a safe configuration. Nothing was changed"
                )
        # Sort-Object -Unique: case-insensitive, sorted.
        unique = sorted({side.lower(): side for side in sides}.values(), key=str.lower)
        for side in unique:
            side_name = side.lower().title()
            path = f"{SCHANNEL_KEY}\\{canonical}\\{side_name}"
            key = _find(state.registry, path)
            values = state.registry.get(key, {}) if key is not None else {}
            current: dict[str, int | None] = {}
            for name in VALUE_NAMES:
                found = _find(values, name)
                current[name] = None if found is None else (1 if int(values[found]) != 0 else 0)
            before[side] = current
            after[side] = dict(wanted)
            for name in VALUE_NAMES:
                if current[name] == wanted[name]:
                    continue
                if not run.check_mode:
                    if key is None:
                        key = path
                        state.registry[key] = {}
                    stored = state.registry[key]
                    found = _find(stored, name)
                    if wanted[name] is None:
                        if found is not None:
                            del stored[found]
                    else:
                        stored[found or name] = wanted[name]
                changed = True
    result: dict[str, t.Any] = {
        "changed": changed,
        "protocol": protocol,
        "sides": after,
        "reboot_required": changed,
        "build": build,
    }
    if run.diff:
        result["diff"] = {"before": before, "after": after}
    return result
