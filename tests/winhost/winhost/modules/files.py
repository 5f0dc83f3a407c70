"""ansible.windows.win_stat, win_file and slurp against the sandboxed C: drive."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import stat as stat_module
import typing as t
from pathlib import Path

from winhost.execution.sandbox import SandboxError, WindowsPath
from winhost.modules import ModuleFailure, ModuleRun, Option, register


def legacy_param(
    run: ModuleRun,
    name: str,
    *,
    aliases: tuple[str, ...] = (),
    required: bool = False,
    validate_set: tuple[str, ...] | None = None,
    type_: str = "str",
    default: t.Any = None,
) -> t.Any:
    """Get-AnsibleParam of Ansible.ModuleUtils.Legacy, with its messages."""
    value = None
    for key in (name, *aliases):
        if run.params.get(key) is not None:
            value = run.params[key]
            break
    if value is None or value == "":
        if required:
            raise ModuleFailure(f"Get-AnsibleParam: Missing required argument: {name}")
        return default
    if type_ == "path":
        value = run.path(str(value))
    elif type_ == "bool":
        value = str(value).lower() in ("yes", "on", "1", "true", "y")
    elif type_ == "str":
        value = str(value)
    if validate_set is not None and value not in validate_set:
        raise ModuleFailure(
            f"Get-AnsibleParam: Argument {name} needs to be one of {','.join(validate_set)} "
            f"but was {value}."
        )
    return value


def resolve(run: ModuleRun, path: str) -> WindowsPath | None:
    """The path in the sandbox; None when Test-Path would say False (missing drive, refused)."""
    try:
        return run.ctx.resolve(path)
    except SandboxError:
        return None


def file_checksum(local: Path, algorithm: str = "sha1") -> str:
    digest = hashlib.new(algorithm)
    with open(local, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()


def _attributes(local: Path) -> str:
    # New files on NTFS carry Archive; directories show Directory. Hidden/ReadOnly are not
    # modelled except read-only derived from the Linux write bit.
    mode = local.stat().st_mode
    parts = ["Directory"] if stat_module.S_ISDIR(mode) else ["Archive"]
    if not mode & stat_module.S_IWUSR:
        parts.insert(0, "ReadOnly")
    return ", ".join(parts)


@register(
    "ansible.windows.win_stat",
    {
        "path": Option(type="path", required=True, aliases=("dest", "name")),
        "get_checksum": Option(type="bool", default=True),
        "get_size": Option(type="bool", default=True),
        "checksum_algorithm": Option(
            default="sha1", choices=("md5", "sha1", "sha256", "sha384", "sha512")
        ),
        "follow": Option(type="bool", default=False),
    },
)
def win_stat(run: ModuleRun) -> dict[str, t.Any]:
    path = run.path(run.params["path"])
    target = resolve(run, path)
    if target is None or not target.local.exists():
        return {"changed": False, "stat": {"exists": False}}
    local = target.local
    info = local.stat()
    attributes = _attributes(local)
    name = target.win.rsplit("\\", 1)[-1] if target.win != "C:\\" else "C:\\"
    result: dict[str, t.Any] = {
        "exists": True,
        "attributes": attributes,
        "isarchive": "Archive" in attributes,
        "isdir": False,
        "ishidden": False,
        "isjunction": False,
        "islnk": False,
        "isreadonly": "ReadOnly" in attributes,
        "isreg": False,
        "isshared": False,
        "nlink": 1,
        "hlnk_targets": [],
        "creationtime": round(getattr(info, "st_birthtime", info.st_ctime), 7),
        "lastaccesstime": round(info.st_atime, 7),
        "lastwritetime": round(info.st_mtime, 7),
        "path": target.win,
        "filename": name,
        "owner": "BUILTIN\\Administrators",
    }
    if local.is_dir():
        result["isdir"] = True
        if run.params["get_size"]:
            result["size"] = sum(
                (Path(root) / f).stat().st_size for root, _d, files in os.walk(local) for f in files
            )
    else:
        result["extension"] = os.path.splitext(name)[1]
        result["isreg"] = True
        if run.params["get_checksum"]:
            result["checksum"] = file_checksum(local, run.params["checksum_algorithm"])
        if run.params["get_size"]:
            result["size"] = info.st_size
    return {"changed": False, "stat": result}


@register("ansible.windows.win_file", None)
def win_file(run: ModuleRun) -> dict[str, t.Any]:
    path = legacy_param(run, "path", aliases=("dest", "name"), required=True, type_="path")
    state = legacy_param(run, "state", validate_set=("absent", "directory", "file", "touch"))
    original_basename = legacy_param(run, "_original_basename")
    target = resolve(run, path)
    if target is not None and target.local.is_dir() and original_basename is not None:
        path = path.rstrip("\\/") + "\\" + original_basename
        target = resolve(run, path)
    result: dict[str, t.Any] = {"changed": False}

    if state == "touch":
        if target is None:
            raise ModuleFailure(_sandbox_message(run, path))
        if target.local.exists():
            if not run.check_mode:
                os.utime(target.local)
        else:
            if not target.local.parent.is_dir():
                raise ModuleFailure(f"Could not find a part of the path '{target.win}'.")
            if not run.check_mode:
                target.local.touch()
        result["changed"] = True

    if target is not None and target.local.exists():
        if state == "absent":
            if not run.check_mode:
                if target.local.is_dir():
                    shutil.rmtree(target.local)
                else:
                    target.local.unlink()
            result["changed"] = True
        elif state == "directory" and not target.local.is_dir():
            raise ModuleFailure(f"path {path} is not a directory", **result)
        elif state == "file" and target.local.is_dir():
            raise ModuleFailure(f"path {path} is not a file", **result)
        return result

    if state is None:
        leaf = path.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1]
        state = "file" if leaf and not path.endswith(("\\", "/")) else "directory"
    if state == "directory":
        if target is None:
            raise ModuleFailure(_sandbox_message(run, path), **result)
        if not run.check_mode:
            target.local.mkdir(parents=True, exist_ok=True)
        result["changed"] = True
    elif state == "file":
        raise ModuleFailure(f"path {path} will not be created", **result)
    return result


def _sandbox_message(run: ModuleRun, path: str) -> str:
    try:
        run.ctx.resolve(path)
    except SandboxError as err:
        return err.message
    return f"Could not find a part of the path '{path}'."


@register("ansible.windows.slurp", None)
def slurp(run: ModuleRun) -> dict[str, t.Any]:
    src = legacy_param(run, "src", aliases=("path",), required=True, type_="path")
    target = resolve(run, src)
    if target is not None and target.local.is_file():
        content = base64.b64encode(target.local.read_bytes()).decode("ascii")
        return {"changed": False, "content": content, "encoding": "base64"}
    if target is not None and target.local.is_dir():
        raise ModuleFailure(f"Path {src} is a directory")
    raise ModuleFailure(f"Path {src} is not found")
