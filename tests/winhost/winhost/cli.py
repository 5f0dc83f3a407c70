"""Command line of winhost (PYTHONPATH=tests/winhost python -m winhost ...).

start --state-dir DIR [--hosts N] [--profile NAME] [--first I] [--clock-offset S]
      [--latency none|windows]
                                                     create state, start the server, wait
                                                     until every listener accepts, write
                                                     DIR/inventory.yml; --clock-offset runs
                                                     the hosts' clocks S seconds ahead
                                                     (negative: behind), see winhost.clock;
                                                     --latency sleeps what Windows' set-up
                                                     steps cost, see winhost.latency
stop  --state-dir DIR                                end the server
state --state-dir DIR [HOST]                         JSON of the modelled state (no secrets)
fault --state-dir DIR HOST KIND [key=value ...]      inject a fault (see winhost.faults)
enroll --state-dir DIR HOST [key=value ...]          a certificate from a template in the
                                                     host's LocalMachine\\My, as auto-enrolment
                                                     leaves it (see winhost.enrolment)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import typing as t
from pathlib import Path

from winhost import clock, faults, latency, profiles, service
from winhost.inventory import write_inventory

START_TIMEOUT = 60.0


class StartError(RuntimeError):
    """The server did not come up; the message says why and where its log is."""


def _running_pid(state_dir: Path) -> int | None:
    try:
        pid = int((state_dir / service.PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


def _port_open(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def start(
    state_dir: Path,
    hosts: int = 1,
    profile: str = "default",
    first: int = 1,
    clock_offset: float = 0.0,
    *,
    latency_profile: str = "none",
) -> Path:
    """Create the state dir, start the server process and return the inventory path.
    `latency_profile` (winhost.latency) makes every host sleep what Windows' set-up costs."""
    state_dir = state_dir.resolve()
    try:
        latency.model(latency_profile)  # an unknown name fails here, before anything starts
    except latency.LatencyError as err:
        raise StartError(str(err)) from err
    try:
        clock_environment = clock.server_environment(clock_offset)
    except clock.ClockError as err:
        raise StartError(str(err)) from err
    if _running_pid(state_dir) is not None:
        raise StartError(f"winhost already runs for {state_dir}; stop it first")
    busy = [
        f"127.0.10.{index}:{port}"
        for index in range(first, first + hosts)
        for port in (5985, 5986)
        if _port_open(f"{profiles.ADDRESS_PREFIX}{index}", port)
    ]
    if busy:
        raise StartError(
            f"{', '.join(busy)} already accept connections (another winhost run?); "
            f"stop it or pick other addresses with --first (WINHOST_FIRST for the fixture)"
        )
    states = profiles.create_state_dir(state_dir, hosts, profile, first)
    for state in states:
        state.clock_offset_seconds = clock_offset
        state.latency_profile = latency_profile
        state.save()
    inventory = write_inventory(state_dir, states)
    log_path = state_dir / service.LOG_FILE
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    env.pop("NTLM_USER_FILE", None)
    env.update(clock_environment)
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "winhost", "serve", "--state-dir", str(state_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            env=env,
            start_new_session=True,
        )
    (state_dir / service.PID_FILE).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StartError(
                f"winhost server exited with {process.returncode} while starting; see {log_path}"
            )
        try:
            answer = service.request(state_dir, {"op": "ping"}, timeout=5)
        except service.ControlError:
            time.sleep(0.1)
            continue
        if answer.get("errors"):
            stop(state_dir)
            raise StartError(f"winhost could not open listeners: {'; '.join(answer['errors'])}")
        expected = [(s.address, li.port) for s in states for li in s.listeners if li.enabled]
        listening = {
            (entry["address"], entry["port"]) for lst in answer["hosts"].values() for entry in lst
        }
        if all(e in listening and _port_open(*e) for e in expected):
            return inventory
        time.sleep(0.1)
    process.terminate()
    raise StartError(f"winhost did not listen within {START_TIMEOUT:.0f}s; see {log_path}")


def stop(state_dir: Path, timeout: float = 20.0) -> bool:
    """Stop the server of `state_dir`; False when none was running."""
    state_dir = state_dir.resolve()
    pid = _running_pid(state_dir)
    if pid is None:
        return False
    try:
        service.request(state_dir, {"op": "stop"}, timeout=5)
    except service.ControlError:
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        # The server is our child when started from this process: reap it.
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
    (state_dir / service.PID_FILE).unlink(missing_ok=True)
    return True


def get_state(state_dir: Path, host: str | None = None) -> dict[str, t.Any]:
    return service.request(state_dir.resolve(), {"op": "state", "host": host})["state"]


def _option_value(text: str) -> t.Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def inject_fault(state_dir: Path, host: str, kind: str, **options: t.Any) -> dict[str, t.Any]:
    if kind != "clear":
        faults.parse(kind, options)  # fail here, with the option named, before the round trip
    answer = service.request(
        state_dir.resolve(), {"op": "fault", "host": host, "kind": kind, "options": options}
    )
    return answer["fault"]


def enroll(state_dir: Path, host: str, **options: t.Any) -> dict[str, t.Any]:
    """A certificate from a template in the host's LocalMachine\\My (winhost.enrolment)."""
    answer = service.request(
        state_dir.resolve(), {"op": "enroll", "host": host, "options": options}
    )
    return answer["certificate"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m winhost", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("start", "stop", "state", "fault", "enroll", "serve"):
        command = sub.add_parser(name)
        command.add_argument("--state-dir", required=True, type=Path)
        if name == "start":
            command.add_argument("--hosts", type=int, default=1)
            command.add_argument("--profile", default="default", choices=profiles.PROFILES)
            command.add_argument("--first", type=int, default=1, help="index of the first host")
            command.add_argument(
                "--clock-offset",
                type=float,
                default=0.0,
                metavar="SECONDS",
                help="the hosts' clocks run this far ahead of the real clock (negative: behind)",
            )
            command.add_argument(
                "--latency",
                default="none",
                choices=sorted(latency.PROFILES),
                help="sleep what a real Windows host's set-up steps cost (winhost.latency)",
            )
        if name == "state":
            command.add_argument("host", nargs="?")
        if name == "fault":
            command.add_argument("host")
            command.add_argument("kind", choices=[*faults.KINDS, "clear"])
            command.add_argument("options", nargs="*", metavar="key=value")
        if name == "enroll":
            command.add_argument("host")
            command.add_argument("options", nargs="*", metavar="key=value")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            service.serve(args.state_dir.resolve())
        elif args.command == "start":
            inventory = start(
                args.state_dir,
                args.hosts,
                args.profile,
                args.first,
                args.clock_offset,
                latency_profile=args.latency,
            )
            print(f"winhost: {args.hosts} host(s) listening; inventory: {inventory}")
        elif args.command == "stop":
            print("winhost: stopped" if stop(args.state_dir) else "winhost: was not running")
        elif args.command == "state":
            print(json.dumps(get_state(args.state_dir, args.host), indent=2, ensure_ascii=False))
        elif args.command == "fault":
            options = {}
            for item in args.options:
                key, sep, value = item.partition("=")
                if not sep:
                    raise faults.FaultError(f"fault option {item!r} is not key=value")
                options[key] = _option_value(value)
            print(json.dumps(inject_fault(args.state_dir, args.host, args.kind, **options)))
        elif args.command == "enroll":
            options = {}
            for item in args.options:
                key, sep, value = item.partition("=")
                if not sep:
                    raise service.ControlError(f"enroll option {item!r} is not key=value")
                options[key] = _option_value(value)
            print(json.dumps(enroll(args.state_dir, args.host, **options)))
    except (StartError, service.ControlError, faults.FaultError, profiles.ProfileError) as err:
        print(f"winhost: error: {err}", file=sys.stderr)
        return 1
    return 0
