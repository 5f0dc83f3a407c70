"""ansible.windows.win_reg_stat for one named value, against the host's registry model.

A legacy (Parse-Args) module in ansible.windows, so its parameters are read as it reads them
(Get-AnsibleParam: path, alias key, required; name, aliases entry and value). Follows the module's documented return values for a `name`: `exists`, `type` (REG_DWORD and
the other REG_ names), `value` and `raw_value` (the same for the numeric and string kinds
modelled here), never `changed`. A missing key or value is `exists: false`. Reading a whole key
(no `name`: its `properties` and `sub_keys`) is not modelled and fails saying so.
"""

from __future__ import annotations

import typing as t

from winhost import registry
from winhost.modules import ModuleFailure, ModuleRun, register
from winhost.modules.files import legacy_param
from winhost.modules.win_regedit import _model_path
from winhost.modules.winops_common import host_model

_REG_NAMES = {
    "none": "REG_NONE",
    "binary": "REG_BINARY",
    "dword": "REG_DWORD",
    "expandstring": "REG_EXPAND_SZ",
    "multistring": "REG_MULTI_SZ",
    "string": "REG_SZ",
    "qword": "REG_QWORD",
}


@register("ansible.windows.win_reg_stat", None)
def win_reg_stat(run: ModuleRun) -> dict[str, t.Any]:
    path = legacy_param(run, "path", aliases=("key",), required=True)
    name = legacy_param(run, "name", aliases=("entry", "value"))
    if name is None:
        raise ModuleFailure(
            "winhost models win_reg_stat for one value only: give name (a whole key's "
            "properties and sub_keys are not modelled)"
        )
    key_path = _model_path(str(path))
    with host_model(run) as state:
        found = registry.read_value(state, key_path, str(name))
    if found is None:
        return {"changed": False, "exists": False}
    return {
        "changed": False,
        "exists": True,
        "type": _REG_NAMES[found.kind],
        "value": found.data,
        "raw_value": found.data,
    }
