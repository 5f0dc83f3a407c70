"""The host's registry as Windows presents it: keys and value names case-insensitive, typed values.

`HostState.registry` maps a key path ("HKLM\\SOFTWARE\\...", spelled as it was created) to its
values (name -> data, the default value under the name ""); `HostState.registry_types` records
each value's kind. Data is plain JSON: an int for DWORD and QWORD (unsigned, as the bits are
stored), a str for String and ExpandString, a list of str for MultiString, a list of byte
values for Binary and None. A value whose kind is not recorded (written directly by a test, a
profile or another emulation) takes the kind its data implies: int DWORD, str String, list
MultiString.

The model is sparse: a key exists when it is in `registry` or is an ancestor of one that is.
The top-level keys of HKLM and HKU that every Windows has always exist and cannot be deleted.
"""

from __future__ import annotations

import dataclasses
import typing as t

from winhost.state import HostState

# The hives the model holds (HKCU, HKCR and HKCC are views onto these on Windows).
HIVES = ("HKLM", "HKU")
# Keys every Windows has; they exist without an entry and refuse deletion.
PERMANENT_KEYS = (
    "HKLM\\HARDWARE",
    "HKLM\\SAM",
    "HKLM\\SECURITY",
    "HKLM\\SOFTWARE",
    "HKLM\\SYSTEM",
    "HKU\\.DEFAULT",
    "HKU\\S-1-5-18",
    "HKU\\S-1-5-19",
    "HKU\\S-1-5-20",
)
# Microsoft.Win32.RegistryValueKind names, by the lower-case names modules use.
KINDS = {
    "none": "None",
    "binary": "Binary",
    "dword": "DWord",
    "expandstring": "ExpandString",
    "multistring": "MultiString",
    "string": "String",
    "qword": "QWord",
}


@dataclasses.dataclass(frozen=True)
class RegistryValue:
    name: str  # as stored ("" is the key's (Default) value)
    kind: str  # a key of KINDS
    data: t.Any


def components(path: str) -> list[str]:
    """Key path components; empty ones (doubled or trailing backslashes) are dropped, as the
    registry API does."""
    return [part for part in path.split("\\") if part]


def _fold(parts: t.Sequence[str]) -> tuple[str, ...]:
    return tuple(part.casefold() for part in parts)


def find_key(state: HostState, path: str) -> str | None:
    """The model's entry for `path` (its stored spelling), None when it has none."""
    wanted = _fold(components(path))
    return next((key for key in state.registry if _fold(components(key)) == wanted), None)


def key_exists(state: HostState, path: str) -> bool:
    wanted = _fold(components(path))
    if len(wanted) <= 1 or any(_fold(components(p)) == wanted for p in PERMANENT_KEYS):
        return len(wanted) > 0
    return any(_fold(components(key))[: len(wanted)] == wanted for key in state.registry)


def is_permanent(path: str) -> bool:
    wanted = _fold(components(path))
    return len(wanted) <= 1 or any(_fold(components(p)) == wanted for p in PERMANENT_KEYS)


def _spelling(state: HostState, parts: list[str]) -> list[str]:
    """`parts` with each component spelled as an existing key spells it (keys keep the case
    they were created with)."""
    known = [components(key) for key in state.registry] + [components(p) for p in PERMANENT_KEYS]
    spelled: list[str] = []
    for index, part in enumerate(parts):
        prefix = _fold([*spelled, part])
        match = next((k for k in known if _fold(k[: index + 1]) == prefix), None)
        spelled.append(match[index] if match is not None else part)
    return spelled


def create_key(state: HostState, path: str) -> str:
    """RegistryKey.CreateSubKey: the key and its missing ancestors; returns the model key."""
    parts = _spelling(state, components(path))
    for depth in range(2, len(parts) + 1):
        ancestor = "\\".join(parts[:depth])
        if not key_exists(state, ancestor):
            state.registry[ancestor] = {}
    key = "\\".join(parts)
    state.registry.setdefault(key, {})
    return key


def delete_key_tree(state: HostState, path: str) -> None:
    """RegistryKey.DeleteSubKeyTree: the key, its values and every key below it."""
    parts = components(path)
    parent = parts[:-1]
    # The parent may exist only as an ancestor of this key: it stays, as on Windows.
    keep_parent = len(parent) > 1 and key_exists(state, "\\".join(parent))
    spelled_parent = _spelling(state, parent)
    wanted = _fold(parts)
    for key in [k for k in state.registry if _fold(components(k))[: len(wanted)] == wanted]:
        del state.registry[key]
        state.registry_types.pop(key, None)
    if keep_parent and not key_exists(state, "\\".join(parent)):
        state.registry["\\".join(spelled_parent)] = {}


def _implied_kind(data: t.Any) -> str | None:
    if isinstance(data, bool):
        return None
    if isinstance(data, int):
        return "dword"
    if isinstance(data, str):
        return "string"
    if isinstance(data, list) and all(isinstance(item, str) for item in data):
        return "multistring"
    return None


def _fits(kind: str, data: t.Any) -> bool:
    if kind in ("dword", "qword"):
        return isinstance(data, int) and not isinstance(data, bool)
    if kind in ("string", "expandstring"):
        return isinstance(data, str)
    if kind == "multistring":
        return isinstance(data, list) and all(isinstance(item, str) for item in data)
    return isinstance(data, list) and all(isinstance(item, int) for item in data)


def read_value(state: HostState, path: str, name: str) -> RegistryValue | None:
    key = find_key(state, path)
    if key is None:
        return None
    values = state.registry[key]
    stored = next((n for n in values if n.casefold() == name.casefold()), None)
    if stored is None:
        return None
    data = values[stored]
    recorded = state.registry_types.get(key, {}).get(stored)
    # A recorded kind the data no longer fits was overwritten by a writer that records none.
    kind = recorded if recorded is not None and _fits(recorded, data) else _implied_kind(data)
    if kind is None:
        raise ValueError(f"registry value {key}\\{stored!r} holds {data!r}, which has no kind")
    return RegistryValue(stored, kind, data)


def write_value(state: HostState, path: str, name: str, kind: str, data: t.Any) -> None:
    """RegistryKey.SetValue on an existing key (an existing name keeps its spelling)."""
    if kind not in KINDS or not _fits(kind, data):
        raise ValueError(f"registry data {data!r} is not a {kind} value")
    key = find_key(state, path) or create_key(state, path)
    values = state.registry[key]
    stored = next((n for n in values if n.casefold() == name.casefold()), name)
    values[stored] = data
    state.registry_types.setdefault(key, {})[stored] = kind


def delete_value(state: HostState, path: str, name: str) -> None:
    key = find_key(state, path)
    if key is None:
        return
    values = state.registry[key]
    stored = next((n for n in values if n.casefold() == name.casefold()), None)
    if stored is None:
        return
    del values[stored]
    kinds = state.registry_types.get(key, {})
    kinds.pop(stored, None)
    if not kinds:
        state.registry_types.pop(key, None)


def dword(state: HostState, path: str, name: str) -> int | None:
    """A DWORD value as Windows components read their settings: None when it is missing or of
    another kind (a REG_SZ "1" is not a DWORD 1 to them)."""
    value = read_value(state, path, name)
    if value is None or value.kind != "dword":
        return None
    return int(value.data)
