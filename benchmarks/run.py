"""Side-by-side timings of our connection plugins and the builtin ones against winhost.

    python benchmarks/run.py [--repeat 3] [--combination http-ntlm-encrypted] [--size-mb 50]
                             [--latency none windows] [--modelled-size-mb 10]

One winhost with ten hosts is started per latency profile; for every repetition each plugin
runs the same three workloads through a real `ansible-playbook`:

- 30 sequential win_ping tasks on one host (per-task connection and execution overhead),
- 5 win_ping tasks on 10 hosts with --forks 10 (concurrency),
- put (win_copy) and fetch of a 50 MB random file (transfer throughput).

Two tables are printed: "zero-cost" (winhost answers at once) and "modelled" (winhost started
with `--latency windows`: it sleeps what a real Windows host's round trips, logons, shells,
processes, runspace pools and pipelines cost, see tests/winhost/winhost/latency.py). The
modelled run transfers a smaller file by default (--modelled-size-mb) to stay affordable.
Each table shows medians and the ratio ours / builtin for the same library (winrm with
pywinrm, psrp with pypsrp). winhost's own cost per request is measured with anonymous
WS-Management Identify round trips on one keep-alive connection, so its share of the totals
is visible. The ping and fan-out playbooks also run through a connection that answers without
any I/O (connection_plugins/answer_ping.py): that floor is what ansible-playbook itself spends,
and the lowest ratio any plugin could show. Nothing here asserts a timing; it prints numbers.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import http.client
import os
import statistics
import sys
import tempfile
import time
import typing as t
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration" / "e2e"))

import kerberos_tickets
import winhost_cli
from ansible_run import run_playbook, write_overlay
from connection_matrix import (
    ALL_PLUGINS,
    COMBINATIONS_BY_NAME,
    Combination,
    Target,
    connection_vars,
    read_targets,
)
from payloads import random_file, sha1_of_file

PING_TASKS = 30
FANOUT_TASKS = 5
FANOUT_HOSTS = 10
IDENTIFY_ROUNDS = 200
IDENTIFY_BODY = (
    b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:wsmid="http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd">'
    b"<s:Header/><s:Body><wsmid:Identify/></s:Body></s:Envelope>"
)
REMOTE_FILE = r"C:\Temp\winops-bench\payload.bin"
# The floor's connection plugin (answers every command with win_ping's result, no I/O).
FLOOR_PLUGINS = Path(__file__).resolve().parent / "connection_plugins"
PING_WORKLOAD = f"{PING_TASKS} x win_ping, 1 host"
FANOUT_WORKLOAD = f"{FANOUT_TASKS} tasks x {FANOUT_HOSTS} hosts, forks {FANOUT_HOSTS}"
LATENCY_TITLES = {
    "none": "zero-cost winhost",
    "windows": "modelled Windows (winhost --latency windows)",
}


def _ping_playbook(path: Path, tasks: int, hosts: str) -> Path:
    lines = [
        f"- name: {tasks} win_ping tasks",
        f"  hosts: {hosts}",
        "  gather_facts: false",
        "  tasks:",
    ]
    for number in range(1, tasks + 1):
        lines += [f"    - name: Ping {number}", "      ansible.windows.win_ping:"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _transfer_playbook(path: Path) -> Path:
    path.write_text(
        f"""- name: Put and fetch one large file
  hosts: "{{{{ bench_target }}}}"
  gather_facts: false
  tasks:
    - name: Create the remote directory
      ansible.windows.win_file:
        path: 'C:\\Temp\\winops-bench'
        state: directory
    - name: Put the file
      ansible.windows.win_copy:
        src: "{{{{ local_payload }}}}"
        dest: '{REMOTE_FILE}'
    - name: Fetch the file
      ansible.builtin.fetch:
        src: '{REMOTE_FILE}'
        dest: "{{{{ fetch_dest }}}}"
        flat: true
    - name: Remove the remote directory
      ansible.windows.win_file:
        path: 'C:\\Temp\\winops-bench'
        state: absent
"""
    )
    return path


class Bench:
    def __init__(
        self,
        state_dir: Path,
        inventory: Path,
        targets: list[Target],
        combo: Combination,
        work: Path,
    ) -> None:
        self.state_dir = state_dir
        self.inventory = inventory
        self.targets = targets
        self.combo = combo
        self.work = work
        self.samples: dict[tuple[str, str], list[float]] = {}
        self.failures: list[str] = []
        # per plugin: [requests, seconds] winhost counted while serving that plugin's runs
        self.server: dict[str, list[float]] = {}
        # per plugin: modelled operations winhost slept for (logons, shells, pools...)
        self.paid: dict[str, collections.Counter[str]] = {}
        # per workload: seconds through the floor's connection (run_floor)
        self.floor: dict[str, list[float]] = {}

    def _server_totals(self) -> tuple[int, float, collections.Counter[str]]:
        requests, seconds = 0, 0.0
        paid: collections.Counter[str] = collections.Counter()
        for target in self.targets:
            state = winhost_cli.state(self.state_dir, target.name)
            counters = state.get("counters", {})
            requests += int(counters.get("requests", 0))
            seconds += float(counters.get("request_seconds", 0.0))
            for operation, entry in state.get("latency", {}).get("paid", {}).items():
                paid[operation] += int(entry["count"])
        return requests, seconds, paid

    def _overlay(self, plugin: str, run_dir: Path) -> Path:
        hosts = {
            target.name: connection_vars(plugin, self.combo, target) for target in self.targets
        }
        return write_overlay(run_dir / "overlay.yml", hosts)

    def _record(self, plugin: str, workload: str, seconds: float) -> None:
        self.samples.setdefault((plugin, workload), []).append(seconds)

    def run_once(self, plugin: str, repetition: int, payload: Path, payload_sha1: str) -> None:
        requests_before, seconds_before, paid_before = self._server_totals()
        self._workloads(plugin, repetition, payload, payload_sha1)
        requests_after, seconds_after, paid_after = self._server_totals()
        totals = self.server.setdefault(plugin, [0, 0.0])
        totals[0] += requests_after - requests_before
        totals[1] += seconds_after - seconds_before
        self.paid.setdefault(plugin, collections.Counter()).update(paid_after - paid_before)

    def run_floor(self, repetition: int) -> None:
        """The ping and fan-out workloads through the floor's connection (FLOOR_PLUGINS)."""
        run_dir = self.work / f"floor-{repetition}"
        run_dir.mkdir(parents=True)
        hosts = {
            target.name: {"ansible_connection": "answer_ping", "ansible_shell_type": "powershell"}
            for target in self.targets
        }
        inventories = [self.inventory, write_overlay(run_dir / "overlay.yml", hosts)]
        environment = {"ANSIBLE_CONNECTION_PLUGINS": str(FLOOR_PLUGINS)}
        for workload, seconds in self._ping_workloads("floor", run_dir, inventories, environment):
            self.floor.setdefault(workload, []).append(seconds)

    def _ping_workloads(
        self,
        plugin: str,
        run_dir: Path,
        inventories: list[Path],
        environment: dict[str, str] | None = None,
    ) -> list[tuple[str, float]]:
        """The sequential pings and the fan-out: (workload, seconds) of each that passed."""
        first = self.targets[0].name
        hosts = ":".join(target.name for target in self.targets[:FANOUT_HOSTS])
        timings = []
        for workload, name, tasks, pattern, forks in (
            (PING_WORKLOAD, "ping", PING_TASKS, first, 5),
            (FANOUT_WORKLOAD, "fan-out", FANOUT_TASKS, hosts, FANOUT_HOSTS),
        ):
            run = run_playbook(
                _ping_playbook(run_dir / f"{name}.yml", tasks, pattern),
                inventories,
                run_dir / name,
                forks=forks,
                environment=environment,
            )
            self._check(plugin, name, run.returncode, run.describe)
            if run.returncode == 0:
                timings.append((workload, run.seconds))
        return timings

    def _workloads(self, plugin: str, repetition: int, payload: Path, payload_sha1: str) -> None:
        run_dir = self.work / f"{plugin}-{repetition}"
        run_dir.mkdir(parents=True)
        inventories = [self.inventory, self._overlay(plugin, run_dir)]
        first = self.targets[0].name
        for workload, seconds in self._ping_workloads(plugin, run_dir, inventories):
            self._record(plugin, workload, seconds)

        fetched = run_dir / "fetched.bin"
        transfer = run_playbook(
            _transfer_playbook(run_dir / "transfer.yml"),
            inventories,
            run_dir / "transfer",
            {"bench_target": first, "local_payload": str(payload), "fetch_dest": str(fetched)},
        )
        self._check(plugin, "transfer", transfer.returncode, transfer.describe)
        if transfer.returncode == 0:
            if sha1_of_file(fetched) != payload_sha1:
                self.failures.append(f"{plugin}: the fetched file differs from the original")
            self._record(plugin, "put file", transfer.task_seconds("Put the file"))
            self._record(plugin, "fetch file", transfer.task_seconds("Fetch the file"))
            fetched.unlink()

    def _check(self, plugin: str, workload: str, rc: int, describe: t.Callable[[], str]) -> None:
        if rc != 0:
            self.failures.append(f"{plugin} {workload} failed:\n{describe()}")


def identify_round_trips(address: str, rounds: int) -> list[float]:
    """Seconds per anonymous Identify request on one keep-alive HTTP connection."""
    connection = http.client.HTTPConnection(address, 5985, timeout=30)
    headers = {
        "Content-Type": "application/soap+xml;charset=UTF-8",
        "WSMANIDENTIFY": "unauthenticated",
    }
    times = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            connection.request("POST", "/wsman", body=IDENTIFY_BODY, headers=headers)
            response = connection.getresponse()
            body = response.read()
            times.append(time.perf_counter() - started)
            if response.status != 200 or b"IdentifyResponse" not in body:
                raise RuntimeError(f"Identify answered {response.status}: {body[:300]!r}")
    finally:
        connection.close()
    return times


def _table(bench: Bench, plugins: t.Sequence[str]) -> str:
    workloads = list(dict.fromkeys(workload for (_, workload) in bench.samples))
    header = f"{'workload':34}" + "".join(f"{plugin:>24}" for plugin in plugins)
    pairs = [
        (ours, builtin)
        for ours in plugins
        if ours.startswith("winops.")
        for builtin in plugins
        if builtin == f"ansible.builtin.{ours.rsplit('.', 1)[1]}"
    ]
    header += "".join(f"{'ratio ' + ours.rsplit('.', 1)[1]:>14}" for ours, _ in pairs)
    rows = [header, "-" * len(header)]
    for workload in workloads:
        medians = {
            plugin: statistics.median(bench.samples[(plugin, workload)])
            for plugin in plugins
            if bench.samples.get((plugin, workload))
        }
        row = f"{workload:34}" + "".join(
            f"{medians[plugin]:>23.2f}s" if plugin in medians else f"{'-':>24}"
            for plugin in plugins
        )
        for ours, builtin in pairs:
            if ours in medians and builtin in medians and medians[builtin] > 0:
                row += f"{medians[ours] / medians[builtin]:>14.2f}"
            else:
                row += f"{'-':>14}"
        rows.append(row)
    return "\n".join(rows)


@dataclasses.dataclass
class ProfileRun:
    """One table: every plugin's repetitions against winhost with one latency profile."""

    latency: str
    size_mb: int
    bench: Bench
    identify: list[float]
    seconds: float


def _run_profile(
    latency: str, args: argparse.Namespace, combo: Combination, work: Path, size_mb: int
) -> ProfileRun:
    """All repetitions of all plugins against one winhost started with `latency`."""
    work.mkdir(parents=True)
    state_dir = (args.state_dir / latency) if args.state_dir else work / "winhost"
    payload = work / "payload.bin"
    payload_sha1 = random_file(payload, size_mb * 1024 * 1024).sha1
    started = time.monotonic()
    with winhost_cli.running(state_dir, hosts=FANOUT_HOSTS, latency=latency) as inventory:
        targets = list(read_targets(inventory).values())
        bench = Bench(state_dir, inventory, targets, combo, work / "runs")
        for repetition in range(args.repeat):
            for plugin in args.plugins:
                print(f"{latency}: repetition {repetition + 1}/{args.repeat}: {plugin}", flush=True)
                bench.run_once(plugin, repetition, payload, payload_sha1)
            print(f"{latency}: repetition {repetition + 1}/{args.repeat}: floor", flush=True)
            bench.run_floor(repetition)
        identify = identify_round_trips(targets[0].address, IDENTIFY_ROUNDS)
    payload.unlink()
    return ProfileRun(latency, size_mb, bench, identify, time.monotonic() - started)


def _report(run: ProfileRun, args: argparse.Namespace, combo: Combination) -> None:
    latency, bench, identify, size_mb = run.latency, run.bench, run.identify, run.size_mb
    print()
    print(
        f"{LATENCY_TITLES[latency]}: {combo.name} ({combo.scheme}, {combo.auth}), "
        f"median of {args.repeat}, {size_mb} MB file, {run.seconds:.0f}s"
    )
    print(_table(bench, args.plugins).replace("put file", f"put {size_mb} MB file"))
    print()
    print(_floor_report(bench, args.plugins))
    print()
    print(
        f"winhost cost per request: median {statistics.median(identify) * 1000:.2f} ms, "
        f"p90 {statistics.quantiles(identify, n=10)[-1] * 1000:.2f} ms "
        f"({IDENTIFY_ROUNDS} anonymous Identify round trips on one keep-alive HTTP connection, "
        "measured at the client: parse, route, render and socket I/O; no auth or encryption"
        + ("" if latency == "none" else "; includes the modelled round trip")
        + ")"
    )
    for plugin, (requests, server_seconds) in bench.server.items():
        if requests:
            print(
                f"winhost time per request serving {plugin}: "
                f"{server_seconds / requests * 1000:.2f} ms over {int(requests)} requests "
                "(winhost's counters: parse, auth'd routing, module emulation and render; "
                "includes Receive waiting for output)"
            )
    for plugin, paid in bench.paid.items():
        if paid:
            runs = args.repeat
            print(
                f"modelled operations per repetition for {plugin}: "
                + ", ".join(
                    f"{operation} {count / runs:g}" for operation, count in sorted(paid.items())
                )
            )


def _floor_report(bench: Bench, plugins: t.Sequence[str]) -> str:
    """The floor's medians, and the lowest ratio they leave any plugin against each builtin."""
    lines = [
        "floor: the same playbooks through a connection that answers every command with "
        "win_ping's result, without I/O (benchmarks/connection_plugins/answer_ping.py): what "
        "ansible-playbook itself spends"
    ]
    for workload, samples in bench.floor.items():
        floor = statistics.median(samples)
        lowest = [
            f"{plugin.rsplit('.', 1)[1]} {floor / statistics.median(builtin):.2f}"
            for plugin in plugins
            if plugin.startswith("ansible.builtin.")
            and (builtin := bench.samples.get((plugin, workload)))
        ]
        lines.append(
            f"  {workload:34}{floor:.2f}s; lowest possible ratio against the builtin "
            f"{', '.join(lowest) or '-'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions (median reported)")
    parser.add_argument(
        "--combination",
        default="http-ntlm-encrypted",
        choices=sorted(COMBINATIONS_BY_NAME),
        help="transport/auth used by every plugin",
    )
    parser.add_argument("--size-mb", type=int, default=50, help="size of the transfer file")
    parser.add_argument(
        "--latency",
        nargs="+",
        default=list(LATENCY_TITLES),
        choices=list(LATENCY_TITLES),
        help="winhost latency profiles to run, one table each (default: both)",
    )
    parser.add_argument(
        "--modelled-size-mb",
        type=int,
        default=10,
        help="size of the transfer file in the modelled run (smaller: it costs round trips)",
    )
    parser.add_argument("--plugins", nargs="+", default=list(ALL_PLUGINS), choices=ALL_PLUGINS)
    parser.add_argument("--state-dir", type=Path, help="winhost state dir (default: temporary)")
    parser.add_argument(
        "--no-kerberos",
        dest="kerberos",
        action="store_false",
        help="skip the Kerberos ticket count (needs the test KDC: krb5-kdc, see tests/kdc)",
    )
    args = parser.parse_args(argv)
    # Every plugin loads as it does on a user's controller: Python keeps the bytecode of a
    # plugin file it imports from a writable directory (__pycache__), and pip installed the
    # builtin plugins' compiled. The Makefile's PYTHONDONTWRITEBYTECODE (which keeps the source
    # tree clean) would compile only our plugin files from source, in every task's worker.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    combo = COMBINATIONS_BY_NAME[args.combination]
    results = []
    with tempfile.TemporaryDirectory(prefix="winops-bench-") as scratch:
        work = Path(scratch)
        for latency in args.latency:
            size_mb = args.size_mb if latency == "none" else args.modelled_size_mb
            results.append(_run_profile(latency, args, combo, work / latency, size_mb))
        tickets = kerberos_tickets.measure(work / "kerberos") if args.kerberos else {}

    print()
    print(
        f"winops.remoting benchmarks; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        f" ({os.cpu_count()} CPUs) at the end"
    )
    for run in results:
        _report(run, args, combo)
    if tickets:
        print()
        print(kerberos_tickets.report(tickets))
    failures = [failure for run in results for failure in run.bench.failures]
    failures += [f"Kerberos play through {name}" for name, (_, ok) in tickets.items() if not ok]
    for failure in failures:
        print(f"\nFAILED: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
