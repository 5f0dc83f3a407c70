"""Kerberos tickets a play obtains, ours beside ansible.builtin.winrm (issue 4).

A real MIT KDC (tests/kdc) and winhost hosts that serve Kerberos (winhost reads the realm from
WINHOST_KDC_STATE_DIR) run a play of TASKS raw tasks on HOSTS hosts through each plugin over
HTTP with Kerberos message encryption; the count is the KDC's own log of issued AS-REQs for
the play's principal, read with `python -m kdc count`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

from ansible_run import ansible_environment, ansible_playbook_executable, write_overlay

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
TASKS = 10
HOSTS = 3
FIRST = 31  # win31..win33: clear of the main benchmark's hosts
PRINCIPAL = "ansible-dom@WINOPS.TEST"  # tests/kdc's domain administrator
PLUGINS = ("winops.remoting.winrm", "winops.remoting.psrp", "ansible.builtin.winrm")


def _tool(package: str, *args: str, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [PYTHON, "-m", package, *args],
        env={**(env or os.environ), "PYTHONPATH": str(REPO / "tests" / package)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"python -m {package} {args[0]} failed: {completed.stderr.strip()}")
    return completed.stdout


@contextlib.contextmanager
def _realm(work: Path) -> t.Iterator[dict[str, str]]:
    """A KDC and Kerberos-serving winhost hosts; yields the environment plays need."""
    kdc_dir, winhost_dir = work / "kdc", work / "winhost"
    hosts = ("--hosts", str(HOSTS), "--first", str(FIRST))
    lines = _tool("kdc", "start", "--state-dir", str(kdc_dir), *hosts).splitlines()
    env = {**os.environ, **dict(line.split("=", 1) for line in lines if "=" in line)}
    env["WINHOST_KDC_STATE_DIR"] = str(kdc_dir)
    try:
        _tool("winhost", "start", "--state-dir", str(winhost_dir), *hosts, env=env)
        try:
            env["WINOPS_BENCH_INVENTORY"] = str(winhost_dir / "inventory.yml")
            yield env
        finally:
            _tool("winhost", "stop", "--state-dir", str(winhost_dir), env=env)
    finally:
        _tool("kdc", "stop", "--state-dir", str(kdc_dir))


def _as_req_count(kdc_dir: Path, since: int) -> tuple[int, int]:
    counts = json.loads(_tool("kdc", "count", "--state-dir", str(kdc_dir), "--since", str(since)))
    issued = {name.lower(): n for name, n in counts["as_req"].items()}
    return counts["lines"], issued.get(PRINCIPAL.lower(), 0)


def _play_vars(plugin: str, password: str) -> dict[str, t.Any]:
    common = {"ansible_connection": plugin, "ansible_port": 5985, "ansible_user": PRINCIPAL}
    common["ansible_password"] = password
    # a kinit subprocess sees only the variables named here: the realm's krb5.conf is one
    if plugin.endswith("psrp"):
        psrp = {"ansible_psrp_auth": "kerberos", "ansible_psrp_protocol": "http"}
        return {**common, **psrp, "ansible_psrp_kinit_env_vars": ["KRB5_CONFIG"]}
    winrm = {"ansible_winrm_transport": "kerberos", "ansible_winrm_scheme": "http"}
    return {**common, **winrm, "ansible_winrm_kinit_env_vars": ["KRB5_CONFIG"]}


def _run_play(env: dict[str, str], work: Path, plugin: str, password: str) -> bool:
    run_dir = work / plugin.replace(".", "_")
    run_dir.mkdir(mode=0o700)
    host_vars = {}
    for number in range(FIRST, FIRST + HOSTS):
        fqdn = f"win{number}.winops.test"  # the SPN's name; ansible_host stays the address
        # host level: winhost's inventory sets its local account per host
        host_vars[f"win{number}"] = {
            **_play_vars(plugin, password),
            "ansible_winrm_kerberos_hostname_override": fqdn,
            "ansible_psrp_negotiate_hostname_override": fqdn,
        }
    inventory = write_overlay(run_dir / "kerberos.yml", host_vars)
    play = run_dir / "play.yml"
    play.write_text(
        "- hosts: windows\n  gather_facts: false\n  tasks:\n"
        + "".join(f"    - ansible.builtin.raw: echo task{n}\n" for n in range(TASKS))
    )
    play_env = {**ansible_environment(run_dir), "ANSIBLE_FORKS": str(HOSTS)}
    # the realm's krb5.conf (KRB5_CONFIG...) from the KDC, which ansible_environment keeps
    play_env.update({k: v for k, v in env.items() if k.startswith("KRB5")})
    completed = subprocess.run(
        [
            str(ansible_playbook_executable()),
            "-i",
            env["WINOPS_BENCH_INVENTORY"],
            "-i",
            str(inventory),
            str(play),
        ],
        env=play_env,
        cwd=run_dir,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return completed.returncode == 0


def measure(work: Path) -> dict[str, tuple[int, bool]]:
    """AS-REQs per plugin for the play, and whether the play succeeded."""
    sys.path.insert(0, str(REPO / "tests" / "kdc"))
    from kdc import DOMAIN_USERS  # the realm's administrator and its password

    password = DOMAIN_USERS[0].password
    results: dict[str, tuple[int, bool]] = {}
    with _realm(work) as env:
        kdc_dir = Path(env["WINHOST_KDC_STATE_DIR"])
        for plugin in PLUGINS:
            before, _ = _as_req_count(kdc_dir, 0)
            succeeded = _run_play(env, work, plugin, password)
            _, tickets = _as_req_count(kdc_dir, before)
            results[plugin] = (tickets, succeeded)
    return results


def report(results: dict[str, tuple[int, bool]]) -> str:
    lines = [f"Kerberos tickets (AS-REQs at the KDC) for {TASKS} tasks on {HOSTS} hosts:"]
    for plugin, (tickets, succeeded) in results.items():
        status = "" if succeeded else "  (the play FAILED)"
        lines.append(f"  {plugin:24} {tickets:3}{status}")
    return "\n".join(lines)
