"""The filesystem sandbox: Windows paths of one host mapped under the host's fs_root.

Only drive C: exists; it is the directory `fs_root`. Path rules (what Windows does, and where
winhost must be stricter than Windows to stay inside the sandbox):

- `C:\\x`, `c:/x`, `\\x` and `/x` (root-relative: the current drive, always C:) and paths
  relative to the current directory all resolve inside C:. `..` never climbs above `C:\\`
  (Windows clamps it at the root too), so `/etc/passwd` is `C:\\etc\\passwd`, never the Linux file.
- Other drive letters fail as PowerShell does: "Cannot find drive. A drive with the name 'D'
  does not exist."; UNC paths (`\\\\server\\share`) and device paths (`\\\\.\\`) are refused:
  the modelled host has no network shares. `\\\\?\\C:\\...` long-path syntax is accepted.
- Case: NTFS is case-insensitive but case-preserving. Each component is looked up exactly
  first, then by case-folded comparison with the directory's entries; a component that does not
  exist keeps the case it was given (and is created with it). Two Linux entries that differ only
  by case cannot be created through winhost; if something else created them, the exact match wins.
- Symbolic links are not modelled: a path whose mapped Linux path contains a symlink is refused,
  so nothing can point out of the sandbox.
- Characters Windows forbids in names (`<>"|?*` and controls, `:` outside the drive) fail with
  "Illegal characters in path."; trailing dots and spaces are stripped from names as Win32 does.
"""

from __future__ import annotations

import os
import re
import typing as t
from pathlib import Path

_ILLEGAL_NAME_CHARS = re.compile(r'[<>"|?*\x00-\x1f:]')
_DRIVE = re.compile(r"^([A-Za-z]):(.*)$", re.DOTALL)
_ENV_PERCENT = re.compile(r"%([^%\s]+)%")


class SandboxError(Exception):
    """A path Windows (or the sandbox) refuses; `message` is the text PowerShell would print.

    category/error_id/target feed the PowerShell error record rendering."""

    def __init__(
        self, message: str, category: str, error_id: str, target: str, hresult_name: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.error_id = error_id
        self.target = target
        self.hresult_name = hresult_name


def drive_not_found(drive: str) -> SandboxError:
    return SandboxError(
        f"Cannot find drive. A drive with the name '{drive}' does not exist.",
        "ObjectNotFound",
        "DriveNotFound",
        drive,
        "DriveNotFoundException",
    )


class WindowsPath(t.NamedTuple):
    """A resolved path: its canonical Windows spelling and the Linux path that models it."""

    win: str  # e.g. "C:\\Users\\ansible\\file.txt", case as found on disk
    local: Path


class Sandbox:
    """Maps Windows paths of one host under `root` (the host's fs_root, which is C:\\)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))

    def ensure_tree(self, paths: t.Iterable[str]) -> None:
        """Create the directories a fresh Windows install has (idempotent)."""
        self.root.mkdir(parents=True, exist_ok=True)
        for win_path in paths:
            self.resolve(win_path).local.mkdir(parents=True, exist_ok=True)

    # -- path syntax -------------------------------------------------------------------------

    def split(self, path: str, cwd: str = "C:\\") -> list[str]:
        """The components below C:\\ of a Windows path (absolute or relative to `cwd`)."""
        if "\x00" in path:
            raise SandboxError(
                "Illegal characters in path.", "InvalidArgument", "ArgumentException", path
            )
        text = path.replace("/", "\\")
        if text.startswith("\\\\?\\") and _DRIVE.match(text[4:]):
            text = text[4:]
        if text.startswith("\\\\"):
            raise SandboxError(
                f"winhost: the network path '{path}' cannot be used: the modelled host has no "
                "network shares or device paths (UNC and \\\\.\\ paths are not modelled)",
                "ObjectNotFound",
                "UNCPathNotModelled",
                path,
                "ItemNotFoundException",
            )
        drive_match = _DRIVE.match(text)
        if drive_match:
            drive = drive_match.group(1).upper()
            if drive != "C":
                raise drive_not_found(drive)
            rest = drive_match.group(2)
            if not rest.startswith("\\"):
                # "C:foo" is relative to the current directory of drive C.
                rest = cwd.rstrip("\\") + "\\" + rest if rest else cwd
                return self.split(rest)
            text = rest
        elif not text.startswith("\\"):
            return self.split(cwd.rstrip("\\") + "\\" + text)
        parts: list[str] = []
        for raw in text.split("\\"):
            name = raw.rstrip(" .") if raw not in (".", "..") else raw
            if name in ("", "."):
                continue
            if name == "..":
                if parts:
                    parts.pop()
                continue
            if _ILLEGAL_NAME_CHARS.search(name):
                raise SandboxError(
                    "Illegal characters in path.", "InvalidArgument", "ArgumentException", path
                )
            parts.append(name)
        return parts

    def resolve(self, path: str, cwd: str = "C:\\") -> WindowsPath:
        """Resolve a Windows path to its canonical spelling and Linux location."""
        parts = self.split(path, cwd)
        local = self.root
        win_parts: list[str] = []
        for name in parts:
            actual = self._lookup(local, name)
            local = local / actual
            win_parts.append(actual)
            if local.is_symlink():
                raise SandboxError(
                    f"winhost: '{path}' goes through a symbolic link, which the sandbox does not "
                    "model (links could point outside the modelled C: drive)",
                    "PermissionDenied",
                    "SymbolicLinkNotModelled",
                    path,
                    "UnauthorizedAccessException",
                )
        real = Path(os.path.realpath(local))
        if real != self.root and self.root not in real.parents:
            raise SandboxError(
                f"winhost: '{path}' resolves outside the modelled C: drive",
                "PermissionDenied",
                "SandboxEscape",
                path,
                "UnauthorizedAccessException",
            )
        return WindowsPath("C:\\" + "\\".join(win_parts), local)

    @staticmethod
    def _lookup(directory: Path, name: str) -> str:
        if (directory / name).exists() or (directory / name).is_symlink():
            return name
        folded = name.casefold()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.casefold() == folded:
                        return entry.name
        except (FileNotFoundError, NotADirectoryError):
            pass
        return name


def expand_environment(text: str, env: t.Mapping[str, str]) -> str:
    """[Environment]::ExpandEnvironmentVariables: %NAME% replaced when defined (case-insensitive),
    left as is when not (as Windows does)."""
    folded = {k.casefold(): v for k, v in env.items()}

    def repl(match: re.Match[str]) -> str:
        return folded.get(match.group(1).casefold(), match.group(0))

    return _ENV_PERCENT.sub(repl, text)
