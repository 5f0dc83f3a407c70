"""ansible.windows.win_copy: the module half of the win_copy action plugin.

The action plugin first runs the module with _copy_mode=query (which files differ on the host),
transfers what is needed into the task's temp dir (put_file), then runs _copy_mode=single (one
file: src is the transferred temp file) or explode (a zip whose entry names are base64 of the
relative paths). _copy_mode=remote copies between two paths on the host.
"""

from __future__ import annotations

import base64
import datetime
import shutil
import typing as t
import zipfile
from pathlib import Path

from winhost.modules import ModuleFailure, ModuleRun, register
from winhost.modules.files import file_checksum, legacy_param, resolve


def _join(base: str, child: str) -> str:
    return base.rstrip("\\/") + "\\" + child.replace("/", "\\").lstrip("\\")


def _local(run: ModuleRun, path: str) -> Path | None:
    target = resolve(run, path)
    return None if target is None else target.local


def _backup(run: ModuleRun, path: str) -> str | None:
    local = _local(run, path)
    if local is None or not local.is_file():
        return None
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = f"{path}.{stamp}.bak"
    if not run.check_mode:
        backup_local = _local(run, backup)
        assert backup_local is not None
        shutil.copy2(local, backup_local)
    return backup


@register("ansible.windows.win_copy", None)
def win_copy(run: ModuleRun) -> dict[str, t.Any]:
    copy_mode = legacy_param(
        run, "_copy_mode", default="single", validate_set=("explode", "query", "remote", "single")
    )
    src = legacy_param(
        run, "src", type_="path", required=copy_mode in ("explode", "process", "single")
    )
    dest = legacy_param(run, "dest", type_="path", required=True)
    backup = legacy_param(run, "backup", type_="bool", default=False)
    original_basename = legacy_param(run, "_original_basename")
    force = legacy_param(run, "force", type_="bool", default=True)
    result: dict[str, t.Any] = {"changed": False}
    if copy_mode == "query":
        return _query(run, dest, force, result)
    if copy_mode == "single":
        return _single(
            run,
            src=src,
            dest=dest,
            original_basename=original_basename,
            backup=backup,
            result=result,
        )
    if copy_mode == "explode":
        return _explode(run, src, dest, result)
    return _remote(run, src, dest, force, result)


def _query(run: ModuleRun, dest: str, force: bool, result: dict[str, t.Any]) -> dict[str, t.Any]:
    changed_files: list[t.Any] = []
    changed_dirs: list[t.Any] = []
    for entry in run.params.get("files") or []:
        filename = str(entry["dest"])
        filepath = _join(dest, filename)
        local = _local(run, filepath)
        if local is not None and local.is_dir():
            filename = _join(filename, str(entry["src"]).replace("\\", "/").rsplit("/", 1)[-1])
            filepath = _join(dest, filename)
            local = _local(run, filepath)
        if local is not None and local.is_file():
            if force and file_checksum(local) != entry.get("checksum"):
                changed_files.append(entry)
        elif local is not None and local.is_dir():
            raise ModuleFailure(
                f"cannot copy file to dest '{filepath}': object at path is already a directory",
                **result,
            )
        else:
            changed_files.append(entry)
    for directory in run.params.get("directories") or []:
        dirpath = _join(dest, str(directory["dest"]))
        local = _local(run, dirpath)
        parent = local.parent if local is not None else None
        if parent is not None and parent.is_file():
            raise ModuleFailure(
                f"cannot copy folder to dest '{dirpath}': object at parent directory path is "
                "already a file",
                **result,
            )
        if local is not None and local.is_file():
            raise ModuleFailure(
                f"cannot copy folder to dest '{dirpath}': object at path is already a file",
                **result,
            )
        if local is None or not local.is_dir():
            changed_dirs.append(directory)
    result.update(files=changed_files, directories=changed_dirs, symlinks=[])
    return result


def _single(
    run: ModuleRun,
    *,
    src: str,
    dest: str,
    original_basename: str | None,
    backup: bool,
    result: dict[str, t.Any],
) -> dict[str, t.Any]:
    src_local = _local(run, src)
    if src_local is None or not src_local.is_file():
        raise ModuleFailure(f"Cannot copy src file: '{src}' as it does not exist", **result)
    remote_dest = dest
    dest_local = _local(run, dest)
    if dest.endswith(("/", "\\")) or (dest_local is not None and dest_local.is_dir()):
        remote_dest = _join(dest, original_basename or "")
    parent_dir = remote_dest.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[0]
    parent_local = _local(run, parent_dir)
    if parent_local is None:
        raise ModuleFailure(f"Destination directory '{parent_dir}' does not exist", **result)
    if parent_local.is_file():
        raise ModuleFailure(
            f"object at destination parent dir '{parent_dir}' is currently a file", **result
        )
    if not parent_local.is_dir():
        if dest == remote_dest:
            raise ModuleFailure(f"Destination directory '{parent_dir}' does not exist", **result)
        parent_local.mkdir(parents=True)
    if backup:
        result["backup_file"] = _backup(run, remote_dest)
    target = _local(run, remote_dest)
    assert target is not None
    shutil.copyfile(src_local, target)
    result["changed"] = True
    return result


def _explode(run: ModuleRun, src: str, dest: str, result: dict[str, t.Any]) -> dict[str, t.Any]:
    src_local = _local(run, src)
    if src_local is None or not src_local.is_file():
        raise ModuleFailure(f"Cannot expand src zip file: '{src}' as it does not exist", **result)
    with zipfile.ZipFile(src_local) as archive:
        for entry in archive.infolist():
            name = entry.filename
            is_dir = len(name) % 4 == 1
            encoded = name[:-1] if is_dir else name
            relative = base64.b64decode(encoded).decode("utf-8")
            target = _local(run, _join(dest, relative))
            if target is None:
                raise ModuleFailure(f"Cannot find drive for '{dest}'", **result)
            if is_dir:
                if not run.check_mode:
                    target.mkdir(parents=True, exist_ok=True)
                continue
            if not run.check_mode:
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(entry) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
    result["changed"] = True
    return result


def _remote(
    run: ModuleRun, src: str, dest: str, force: bool, result: dict[str, t.Any]
) -> dict[str, t.Any]:
    result.update(src=src, dest=dest)
    src_local = _local(run, src)
    if src_local is None or not src_local.exists():
        raise ModuleFailure(f"Cannot copy src file: '{src}' as it does not exist", **result)
    if src_local.is_dir():
        raise ModuleFailure(
            "winhost does not emulate win_copy remote_src=true for a directory source "
            f"('{src}'); only single files",
            **result,
        )
    result["operation"] = "file_copy"
    basename = src_local.name
    result["original_basename"] = basename
    remote_dest = dest
    dest_local = _local(run, dest)
    if dest.endswith(("/", "\\")) or (dest_local is not None and dest_local.is_dir()):
        remote_dest = _join(dest, basename)
    result["dest"] = remote_dest
    parent_dir = remote_dest.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[0]
    parent_local = _local(run, parent_dir)
    if parent_local is not None and parent_local.is_file():
        raise ModuleFailure(
            f"object at destination parent dir '{parent_dir}' is currently a file", **result
        )
    if parent_local is None or not parent_local.is_dir():
        if dest == remote_dest:
            raise ModuleFailure(f"Destination directory '{parent_dir}' does not exist", **result)
        assert parent_local is not None
        parent_local.mkdir(parents=True)
    target = _local(run, remote_dest)
    assert target is not None
    checksum = file_checksum(src_local) if force else None
    if target.is_dir():
        raise ModuleFailure(
            f"cannot copy file from '{src}' to '{remote_dest}': dest is already a folder", **result
        )
    if not target.exists() or (force and file_checksum(target) != checksum):
        if not run.check_mode:
            shutil.copyfile(src_local, target)
        result["changed"] = True
    result["checksum"] = checksum
    result["size"] = target.stat().st_size if target.exists() else None
    return result
