"""`make demo`: start winhost, run the shipped end-to-end playbook through both of our
connection plugins, print what happened, stop winhost. Exits non-zero when anything failed.

Environment: STATE_DIR (winhost's state directory; a temporary one when unset) and
WINOPS_COLLECTIONS_PATH (the installed collection; build/dev when unset), both set by the
Makefile.
"""

from __future__ import annotations

import os
import sys
import tempfile
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration" / "e2e"))

import winhost_cli
from ansible_run import PLAYBOOK_DIR, PlaybookRun, run_playbook, write_overlay
from connection_matrix import COMBINATIONS_BY_NAME, connection_vars, read_targets
from payloads import random_file

# (plugin, combination) pairs the demo shows: the usual HTTPS and HTTP set-ups.
DEMO_RUNS = (
    ("winops.remoting.winrm", "https-ntlm-cbt"),
    ("winops.remoting.psrp", "http-negotiate"),
)
PAYLOAD_SIZE = 1024 * 1024


def _summarise(title: str, run: PlaybookRun, host: str) -> bool:
    print(f"\n== {title}: {run.seconds:.1f}s, ansible-playbook rc={run.returncode}")
    tasks = run.tasks(host)
    for task in tasks:
        result = task.result
        state = "FAILED" if task.failed else "changed" if result.get("changed") else "ok"
        detail = ""
        if task.task == "Gather facts" and not task.failed:
            facts = result.get("ansible_facts", {})
            detail = f"{facts.get('ansible_hostname')} - {facts.get('ansible_distribution')}"
        elif task.task == "Stat the copied file" and not task.failed:
            detail = f"sha1 {result['stat'].get('checksum')}"
        elif task.task == "Report the become user" and not task.failed:
            account = result.get("account", {})
            detail = f"{account.get('domain_name')}\\{account.get('account_name')}"
        elif task.failed:
            detail = task.message.splitlines()[0] if task.message else ""
        print(f"   {state:8} {task.task:45} {detail}")
    if not tasks:
        print(run.describe())
    return run.returncode == 0 and bool(tasks)


def main() -> int:
    state_dir = Path(os.environ.get("STATE_DIR") or tempfile.mkdtemp(prefix="winhost-demo-"))
    if (state_dir / "winhost.pid").exists():
        try:
            winhost_cli.stop(state_dir)
        except winhost_cli.WinhostError as err:
            print(f"(a previous winhost in {state_dir} could not be stopped: {err})")
    print(f"starting winhost in {state_dir}")
    ok = True
    with (
        tempfile.TemporaryDirectory(prefix="winops-demo-") as work,
        winhost_cli.running(state_dir, hosts=1) as inventory,
    ):
        work_dir = Path(work)
        target = next(iter(read_targets(inventory).values()))
        payload = random_file(work_dir / "demo-payload.bin", PAYLOAD_SIZE)
        print(f"winhost is up: {target.name} at {target.address}; inventory {inventory}")
        for plugin, combo_name in DEMO_RUNS:
            combo = COMBINATIONS_BY_NAME[combo_name]
            run_dir = work_dir / plugin
            overlay = write_overlay(
                run_dir / "overlay.yml", {target.name: connection_vars(plugin, combo, target)}
            )
            extra: dict[str, t.Any] = {
                "e2e_target": target.name,
                "local_payload": str(payload.path),
                "local_sha1": payload.sha1,
                "local_size": PAYLOAD_SIZE,
                "fetch_dest": str(run_dir / "fetched.bin"),
            }
            run = run_playbook(PLAYBOOK_DIR / "matrix.yml", [inventory, overlay], run_dir, extra)
            ok = _summarise(f"{plugin} over {combo_name}", run, target.name) and ok
    print("\ndemo " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
