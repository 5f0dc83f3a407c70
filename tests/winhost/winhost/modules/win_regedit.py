"""ansible.windows.win_regedit against the host's registry model (winhost.registry).

Follows the module's documented behaviour: `path` in PowerShell drive form (HKLM:\\...), the
(Default) value when `name` is omitted or empty, data converted per `type` (hex strings and
byte lists for binary/none, decimal or 0x hex for dword/qword, lists for multistring),
`data_changed`/`data_type_changed`, and its diff ({path: {name: {type, value}}}, DWORD/QWORD
as 0x hex, bytes as 0x.. lists). The model holds HKLM and HKU; HKCU, HKCR, HKCC and loading a
hive file (`hive`) fail naming what is not modelled. A value winhost reads (SCHANNEL, the
LocalAccountTokenFilterPolicy) takes effect exactly as if the model had been changed directly.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

from winhost import registry
from winhost.modules import ModuleFailure, ModuleRun, Option, register
from winhost.modules.winops_common import host_model
from winhost.state import HostState

OPTIONS = {
    "path": Option(required=True, aliases=("key",)),
    "name": Option(aliases=("entry", "value")),
    "data": Option(type="raw"),
    "type": Option(default="string", choices=tuple(registry.KINDS), aliases=("datatype",)),
    "state": Option(default="present", choices=("present", "absent")),
    "delete_key": Option(type="bool", default=True),
    "hive": Option(type="path"),
}
_DRIVE_PATH = re.compile(r"^HK(CC|CR|CU|LM|U):\\", re.IGNORECASE)
_UNSIGNED = re.compile(r"^\s*(0x[0-9a-f]+|[0-9]+)\s*$", re.IGNORECASE)
_LIMITS = {"dword": 0xFFFFFFFF, "qword": 0xFFFFFFFFFFFFFFFF}


def _bytes_from_hex(text: str) -> list[int]:
    """A regedit export such as 'hex:be,ef,be,ef' (prefix optional, separators optional)."""
    cleaned = re.sub(r"^hex:", "", text.lower())
    cleaned = re.sub(r"[^a-f0-9\\,x\-:]", "", cleaned).replace(",", ":")
    if not cleaned:
        return []
    if ":" in cleaned:
        tokens = [token for token in re.split(":+", cleaned) if token]
    elif len(cleaned) % 2 == 0:
        tokens = re.findall("..", cleaned)
    else:
        tokens = [cleaned]  # one hex digit is one byte; longer odd runs fail below
    try:
        values = [int(token, 16) for token in tokens]
    except ValueError:
        values = []
    if len(values) != len(tokens) or any(not 0 <= v <= 0xFF for v in values):
        raise ModuleFailure(
            f"data '{text}' is not binary data: give hex bytes such as 'hex:be,ef' or 'beef', "
            "or a list of byte values"
        )
    return values


def _byte(item: t.Any, data: t.Any) -> int:
    value = _number(item) if isinstance(item, str) else item
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise ModuleFailure(
            f"data {data!r} is not binary data: list entry {item!r} is not a byte value (0-255)"
        )
    return value


def _integer(data: t.Any, kind: str) -> int:
    """dword/qword data as the unsigned number the registry stores (negative numbers are
    stored in two's complement, as [Int32]/[Int64] casts do)."""
    if data is None:
        return 0
    value = _number(data) if isinstance(data, str) else data
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, int):
        raise ModuleFailure(
            f"data {data!r} is not a valid {kind}: give a decimal number or a hex value such as "
            "0xff"
        )
    data = value
    limit = _LIMITS[kind]
    if data > limit:
        raise ModuleFailure(f"data cannot be larger than {limit:#x} when type is {kind}")
    bits = 32 if kind == "dword" else 64
    if data < -(1 << (bits - 1)):
        raise ModuleFailure(f"data {data} is below the smallest {kind} ({-(1 << (bits - 1))})")
    return data & limit


def _text(data: t.Any) -> str:
    """[Object].ToString() as PowerShell renders scalars (True/False for booleans)."""
    if isinstance(data, dict | list):
        raise ModuleFailure(
            f"data {data!r} cannot be stored as a string value: give a single value, or use "
            "type=multistring for a list"
        )
    return str(data)


def _convert(data: t.Any, kind: str, name: str | None) -> t.Any:
    """The data the module writes, or None when only the key is ensured."""
    if kind in ("binary", "none"):
        if data is None:
            return []
        if isinstance(data, str):
            return _bytes_from_hex(data)
        if isinstance(data, list):
            return [_byte(item, data) for item in data]
        if isinstance(data, int) and not isinstance(data, bool) and data > 0xFF:
            raise ModuleFailure(
                f"cannot convert binary data '{data}' to byte array, please specify this value "
                "as a yaml byte array or a comma separated hex value string"
            )
        return [_byte(data, data)]
    if kind in ("dword", "qword"):
        return _integer(data, kind)
    if kind == "multistring":
        if data is None:
            return []
        items = data if isinstance(data, list) else [data]
        return [_text(item) for item in items]
    if data is None:
        # A named string value defaults to ""; the (Default) value is left alone.
        return "" if name else None
    return _text(data)


def _number(text: str) -> int | None:
    if not _UNSIGNED.match(text):
        return None
    text = text.strip()
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def _ps_equal(existing: t.Any, new: t.Any, case_sensitive: bool) -> bool:
    """PowerShell's -eq/-ceq on single values: the left operand's type decides (a number
    against "1" or "0x1" compares as a number, a string against 1 as the text "1")."""
    if isinstance(existing, int):
        return existing == (_number(new) if isinstance(new, str) else new)
    left, right = str(existing), str(new)
    return left == right if case_sensitive else left.casefold() == right.casefold()


def _differs(existing: t.Any, new: t.Any) -> bool:
    """Compare-RegistryProperty: element by element (Compare-Object, case-insensitive) for
    lists, -cne for single values."""
    if isinstance(existing, list):
        new_items = new if isinstance(new, list) else [new]
        if len(existing) != len(new_items):
            return True
        return not all(_ps_equal(a, b, False) for a, b in zip(existing, new_items, strict=True))
    if isinstance(new, list):
        return True
    return not _ps_equal(existing, new, True)


def _diff_value(kind: str, data: t.Any) -> dict[str, t.Any]:
    if kind in ("binary", "none"):
        value: t.Any = [f"0x{byte:02x}" for byte in data]
    elif kind == "dword":
        value = f"0x{data:08x}"
    elif kind == "qword":
        value = f"0x{data:016x}"
    else:
        value = data
    return {"type": registry.KINDS[kind], "value": value}


def _model_path(path: str) -> str:
    """HKLM:\\SOFTWARE\\x -> HKLM\\SOFTWARE\\x, refusing the hives the model does not hold."""
    drive, _, rest = path.partition(":")
    hive = drive.upper()
    if hive not in registry.HIVES:
        raise ModuleFailure(
            f"path: {path} is in {hive}:, which winhost does not model (its registry holds "
            f"{', '.join(h + ':' for h in registry.HIVES)} only; HKCU, HKCR and HKCC are "
            "per-user or merged views)"
        )
    parts = registry.components(rest)
    if not parts:
        raise ModuleFailure(f"path: {path} is the root of {hive}:; name a key below it")
    return "\\".join([hive, *parts])


@dataclasses.dataclass
class _Change:
    """One run's request and what it reports (result keys and the diff)."""

    print_path: str  # `path` as given: the diff names the key by it
    key_path: str  # the model's spelling, HKLM\\...
    name: str  # "" for (Default)
    kind: str
    data: t.Any
    result: dict[str, t.Any] = dataclasses.field(
        default_factory=lambda: {
            "changed": False,
            "data_changed": False,
            "data_type_changed": False,
        }
    )
    before: t.Any = ""
    after: t.Any = ""


@register("ansible.windows.win_regedit", OPTIONS)
def win_regedit(run: ModuleRun) -> dict[str, t.Any]:
    params = run.params
    path: str = params["path"]
    name: str | None = params["name"]
    kind: str = params["type"]
    if name is None and kind != "string":
        run.warnings.append(
            "the data type when name is not specified can only be 'string', the type has "
            "automatically been converted"
        )
        kind = "string"
    if not _DRIVE_PATH.match(path):
        raise ModuleFailure(
            f"path: {path} is not a valid powershell path, see module documentation for examples."
        )
    data = _convert(params["data"], kind, name or None)
    if params["hive"] is not None:
        raise ModuleFailure(
            f"winhost does not model loading a registry hive file (hive: {params['hive']}); "
            "leave hive unset"
        )
    change = _Change(path, _model_path(path), name or "", kind, data)
    with host_model(run) as state:
        if params["state"] == "present":
            _present(run, state, change)
        else:
            _absent(run, state, change, params["delete_key"])
    result = change.result
    if run.diff:
        result["diff"] = {"before": change.before, "after": change.after}
    return result


def _present(run: ModuleRun, state: HostState, change: _Change) -> None:
    result, where, name = change.result, change.print_path, change.name
    if registry.key_exists(state, change.key_path):
        change.before, change.after = {where: {}}, {where: {}}
    else:
        change.before, change.after = {}, {where: {}}
        result["changed"] = True
        if run.check_mode:
            return  # the key does not exist yet, so there is nothing more to compare
        registry.create_key(state, change.key_path)
    if change.data is None:
        return
    existing = registry.read_value(state, change.key_path, name)
    wanted = _diff_value(change.kind, change.data)
    if existing is None:
        if not run.check_mode:
            registry.write_value(state, change.key_path, name, change.kind, change.data)
        result["changed"] = True
        change.after[where][name] = wanted
        return
    current = _diff_value(existing.kind, existing.data)
    result["data_type_changed"] = existing.kind != change.kind
    result["data_changed"] = _differs(existing.data, change.data)
    if not (result["data_type_changed"] or result["data_changed"]):
        change.before[where][name] = current
        change.after[where][name] = current
        return
    if not run.check_mode:
        registry.write_value(state, change.key_path, name, change.kind, change.data)
    result["changed"] = True
    change.before[where][name] = current
    change.after[where][name] = wanted


def _absent(run: ModuleRun, state: HostState, change: _Change, delete_key: bool) -> None:
    where, name = change.print_path, change.name
    if not registry.key_exists(state, change.key_path):
        return
    if delete_key and not name:
        if registry.is_permanent(change.key_path):
            raise ModuleFailure(
                f"failed to delete registry key at {where}: Access to the registry key "
                f"'{change.key_path}' is denied (winhost keeps the keys every Windows has)"
            )
        if not run.check_mode:
            registry.delete_key_tree(state, change.key_path)
        change.result["changed"] = True
        change.before, change.after = {where: {}}, {}
        return
    existing = registry.read_value(state, change.key_path, name)
    if existing is None:
        return
    if not run.check_mode:
        registry.delete_value(state, change.key_path, name)
    change.result["changed"] = True
    # RegistryKey.GetValue expands an ExpandString, so the diff shows the expanded text.
    shown = run.ctx.expand(existing.data) if existing.kind == "expandstring" else existing.data
    change.before = {where: {name: _diff_value(existing.kind, shown)}}
    change.after = {where: {}}
