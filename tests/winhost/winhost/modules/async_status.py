"""ansible.windows.async_status: reads (or erases) an async job's results file, as
execution.async_job writes it for async_wrapper.ps1 and async_watchdog.ps1.

ansible-core's async_status action runs it for `async_status:` tasks, for every poll of a task
with `async:` and `poll:` above 0, and once more with mode=cleanup when such a task finished.
"""

from __future__ import annotations

import json
import ntpath
import shutil
import typing as t

from winhost.modules import ModuleFailure, ModuleRun, UnhandledException, register
from winhost.modules.files import legacy_param, resolve


@register("ansible.windows.async_status", None)
def async_status(run: ModuleRun) -> dict[str, t.Any]:
    jid = legacy_param(run, "jid", required=True)
    mode = legacy_param(run, "mode", default="status", validate_set=("status", "cleanup"))
    # The action plugin passes the shell's async_dir, %USERPROFILE%\.ansible_async unless set.
    async_dir = legacy_param(run, "_async_dir", type_="path", required=True)
    # [System.IO.Path]::Combine: a rooted jid stands alone, as with ntpath.join.
    log_path = ntpath.join(async_dir, jid)
    target = resolve(run, log_path)
    if target is None or not target.local.exists():
        raise ModuleFailure(
            f"could not find job at '{async_dir}'", ansible_job_id=jid, started=1, finished=1
        )
    if mode == "cleanup":
        if target.local.is_dir():
            shutil.rmtree(target.local)
        else:
            target.local.unlink()
        return {"ansible_job_id": jid, "erased": log_path}
    # Get-Content's lines, bound to a [string] parameter: joined by spaces.
    raw = " ".join(target.local.read_text(encoding="utf-8-sig").splitlines())
    if not raw:
        # Not written yet: the job is running.
        return {"results_file": log_path, "ansible_job_id": jid, "started": 1, "finished": 0}
    try:
        data = json.loads(raw)
    except ValueError as err:
        # The script quotes $data, which is still $null here.
        raise ModuleFailure(
            "Could not parse job output: ",
            ansible_job_id=jid,
            results_file=log_path,
            started=1,
            finished=1,
        ) from err
    if not isinstance(data, dict):
        # JavaScriptSerializer gives an object[] for an array, a .NET value otherwise.
        kind = "System.Object[]" if isinstance(data, list) else "System.ValueType"
        raise UnhandledException(
            f"Method invocation failed because [{kind}] does not contain a method named "
            "'ContainsKey'."
        )
    if "started" not in data:
        data["finished"] = 1
        data["ansible_job_id"] = jid
    elif "finished" not in data:
        data["finished"] = 0
    return data
