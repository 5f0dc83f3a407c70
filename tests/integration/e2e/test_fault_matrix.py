"""The fault matrix of issue 11 ("what it must show" 1): every winhost fault kind on the
requests it matters for x {winrm, psrp} x {HTTP with message encryption, HTTPS}.

For each cell it records whether the operation survived or failed naming the right layer, and
checks what must hold either way:

- wall time: the operation's task ends within the bound the options give
  (stage_bounds.task_bound, documented in docs/troubleshooting.md "How long each stage can
  take"), plus ANSIBLE_OVERHEAD for Ansible's own work around the connection;
- leftovers: once the run has ended and its kept sessions' holders have closed them (at most
  stage_bounds.kept_close_bound after the run), the host holds no more shells or runspace pools
  than before (winhost's counters.open_shells);
- ran twice: winhost ran no more commands than the same operation runs without a fault
  (counters.commands_run, the clean cells of the same run are the reference);
- files: a put leaves the file on the host intact or absent, a fetch the local copy;
- the fault was hit (a counted fault still armed proves nothing);
- a fetch whose output was cut off (drop-receive-fetch) survives: the sessions start the
  read-only fetch again, and the ran-twice check allows that one rerun (Cell.reruns).

It prints (in the "fault matrix" table at the end of the session) `faults: survived S/N,
leftovers L, over-time O, ran twice D, ...` and fails on any leftover, over-time, double run,
damaged file or fault never hit, naming the cells. Wrong layers are printed and counted, not
failed (issue 11 lists the diagnoses as work of their own).

Suite time: one ansible-playbook run per (plugin, transport) over one host per cell (the
fault_matrix and fault_matrix_more blocks of address_blocks.py), short timeouts so that faults
cost seconds; the two plugins' runs of a transport go at once, so the matrix is two phases of
one run's length each (about 130 s in all here).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import re
import shlex
import sys
import time
import typing as t
from pathlib import Path

import pytest
import stage_bounds
from address_blocks import block
from ansible_run import PLAYBOOK_DIR, PlaybookRun, run_playbook, write_overlay
from connection_matrix import COMBINATIONS_BY_NAME, OUR_PLUGINS, connection_vars, read_targets
from payloads import random_file

REPO_ROOT = Path(__file__).resolve().parents[3]
WINHOST_PATH = REPO_ROOT / "tests" / "winhost"
# One host per cell and plugin: the first block, then the second for the cells beyond it.
BLOCKS = (block("fault_matrix"), block("fault_matrix_more"))
TRANSPORTS = ("http-ntlm-encrypted", "https-ntlm-cbt")
PUT_PATH = ("Temp", "winops-matrix-put.bin")
FETCH_PATH = ("Temp", "winops-matrix-fetch.bin")

# Short limits so that every bound is seconds: operation timeout 1 s, read and connect timeouts
# 3 s, two retries half a second apart, command_timeout 10 s (above receive_timeout's 4 s).
OPTIONS = {
    "operation_timeout": 1,
    "read_timeout": 3,
    "connection_timeout": 3,
    "retries": 2,
    "backoff": 0.5,
    "command_timeout": 10,
}
# Hosts that run at once in each plugin's playbook (the two playbooks run side by side). With
# one fork per host, every worker and every fault-arming process started in the same second,
# and on CI's two cores, shared with the other shard, a clean session's first logon then once
# waited out the 3 s read timeout before any fault was armed. A host's time between its notes
# may now include waiting for a free fork (behind other cells' tasks): the bounds, hundreds of
# seconds, absorb that; the over-time check is there to catch hangs.
FORKS = 8
# What Ansible spends around the connection in one task (forking the worker, building the
# module, a fetch's checksum) on two shared cores; not a connection stage.
ANSIBLE_OVERHEAD = 20.0

# Words that name the layer each fault hits, in the failure message.
CONNECTION_BROKE = r"(?i)connection (broke|was (reset|closed|aborted))|could not decrypt"
READ_TIMEOUT = r"(?i)read timeout|timed? ?out"


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: a dict key per host
class Cell:
    name: str
    op: str  # ping | put | fetch
    kind: str | None = None  # None: a clean reference cell
    options: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    layer: str = ""  # regular expression the failure message must match
    warm: bool = False  # open the session with a ping before arming the fault
    # Times the operation may start its transfer script again: a fetch only reads, so the
    # sessions restart it after its output was cut off (core._chain.AnswerLost).
    reruns: int = 0

    @property
    def counted(self) -> bool:
        return self.kind not in (None, "receive_timeout", "reboot")


CELLS: tuple[Cell, ...] = (
    Cell("clean-ping", "ping"),
    Cell("clean-put", "put"),
    Cell("clean-fetch", "fetch"),
    Cell("drop-create", "ping", "drop", {"action": "Create"}, CONNECTION_BROKE),
    Cell("drop-command", "ping", "drop", {"action": "Command"}, CONNECTION_BROKE, warm=True),
    Cell("drop-receive", "ping", "drop", {"action": "Receive"}, CONNECTION_BROKE, warm=True),
    Cell("drop-send-put", "put", "drop", {"action": "Send", "after": 2}, CONNECTION_BROKE, True),
    Cell(
        "drop-receive-fetch",
        "fetch",
        "drop",
        {"action": "Receive", "after": 2},
        CONNECTION_BROKE,
        warm=True,
        reruns=1,
    ),
    # Hit after the run, when the kept session's holder deletes the shell or closes the pool.
    Cell("drop-delete", "ping", "drop", {"action": "Delete"}, CONNECTION_BROKE, warm=True),
    Cell("close-create", "ping", "close", {"action": "Create"}, CONNECTION_BROKE),
    # The host closes the connection after a full answer (HTTP.sys's idle timer): the next
    # request goes out on a new connection, which must authenticate afresh (issue 11, item 2).
    Cell("close-command", "ping", "close", {"action": "Command"}, CONNECTION_BROKE, warm=True),
    Cell("close-receive", "ping", "close", {"action": "Receive"}, CONNECTION_BROKE, warm=True),
    Cell("close-send-put", "put", "close", {"action": "Send", "after": 1}, CONNECTION_BROKE, True),
    # winrm's terminate after each command; psrp's release of the last pipeline.
    Cell("drop-signal", "ping", "drop", {"action": "Signal"}, CONNECTION_BROKE, warm=True),
    Cell("delay-short", "ping", "delay", {"seconds": 1, "count": 3}, READ_TIMEOUT),
    Cell(
        "read-timeout-command",
        "ping",
        "delay",
        {"seconds": 5, "action": "Command"},
        READ_TIMEOUT,
        warm=True,
    ),
    Cell(
        "read-timeout-receive",
        "ping",
        "delay",
        {"seconds": 5, "action": "Receive"},
        READ_TIMEOUT,
        warm=True,
    ),
    Cell("http500-create", "ping", "http500", {"action": "Create"}, r"(?i)500|internal ?error"),
    Cell(
        "http500-command",
        "ping",
        "http500",
        {"action": "Command"},
        r"(?i)500|internal ?error",
        warm=True,
    ),
    Cell(
        "receive-timeout",
        "ping",
        "receive_timeout",
        {"seconds": 4},
        r"(?i)operation ?timeout|timed ?out|did not answer",
    ),
    # The host answers OperationTimeout to every Receive for longer than command_timeout: from
    # the shell's or pool's open on (issue 11, item 1: psrp opened a pool per retry, and left
    # each behind). The window starts when the fault is armed, and the host may wait for a
    # fork before its ping: 60 s leaves more than command_timeout (10 s) after any such wait.
    Cell(
        "receive-timeout-long",
        "ping",
        "receive_timeout",
        {"seconds": 60},
        r"(?i)command_timeout|operation ?timeout|timed ?out|did not answer",
    ),
    Cell("busy-send-put", "put", "busy", {"count": 1}, r"(?i)busy|in use", warm=True),
    Cell("quota-create", "ping", "quota", {"count": 1}, r"(?i)quota|concurrent shells"),
    Cell("reboot", "ping", "reboot", {"seconds": 1}, r"(?i)refused|connect|reach"),
)
assert len(OUR_PLUGINS) * len(CELLS) <= sum(b.size for b in BLOCKS), (
    "grow a block of address_blocks.py"
)


def _option_vars(family: str) -> dict[str, t.Any]:
    if family == "winrm":
        names = {
            "operation_timeout": "ansible_winrm_operation_timeout_sec",
            "read_timeout": "ansible_winrm_read_timeout_sec",
            "retries": "ansible_winrm_reconnection_retries",
            "backoff": "ansible_winrm_reconnection_backoff",
            "command_timeout": "ansible_winrm_command_timeout",
        }
    else:
        names = {
            "operation_timeout": "ansible_psrp_operation_timeout",
            "read_timeout": "ansible_psrp_read_timeout",
            "connection_timeout": "ansible_psrp_connection_timeout",
            "retries": "ansible_psrp_reconnection_retries",
            "backoff": "ansible_psrp_reconnection_backoff",
            "command_timeout": "ansible_psrp_command_timeout",
        }
    return {variable: OPTIONS[option] for option, variable in names.items()}


def bound_options(family: str) -> stage_bounds.BoundOptions:
    return stage_bounds.BoundOptions(family, auth="ntlm", **OPTIONS)


def _file_state(copy: Path, sha1: str) -> str:
    """intact (the source's bytes), absent, or damaged (anything else: truncated, mixed)."""
    if not copy.exists():
        return "absent"
    return "intact" if hashlib.sha1(copy.read_bytes()).hexdigest() == sha1 else "damaged"


@dataclasses.dataclass
class Outcome:
    """What one cell did, and what is wrong with it."""

    plugin: str
    transport: str
    cell: Cell
    survived: bool = False
    message: str = ""
    seconds: float = 0.0
    bound: float = 0.0
    commands: int = 0
    expected_commands: int = 0
    left: int = 0
    file_state: str = "-"
    not_hit: bool = False
    wrong_layer: bool = False
    ran: bool = True  # False: a task before the operation failed (the fault was not reached)

    @property
    def label(self) -> str:
        return f"{self.cell.name} x {self.plugin.rsplit('.', 1)[1]} x {self.transport}"

    @property
    def over_time(self) -> bool:
        return self.seconds > self.bound

    @property
    def ran_twice(self) -> bool:
        return self.commands > self.expected_commands

    @property
    def damaged(self) -> bool:
        return self.file_state == "damaged"


class Matrix:
    def __init__(self, sessions: list[t.Any], work: Path) -> None:
        self.work = work
        self.inventories = [Path(session.inventory) for session in sessions]
        self.session_of: dict[str, t.Any] = {}
        self.targets = {}
        for session in sessions:
            targets = read_targets(Path(session.inventory))
            self.targets |= targets
            self.session_of |= dict.fromkeys(targets, session)
        names = [
            name
            for session in sessions
            for name in sorted(
                read_targets(Path(session.inventory)), key=lambda n: int(n.removeprefix("win"))
            )
        ]
        self.hosts = {
            plugin: dict(zip(CELLS, names[offset * len(CELLS) :], strict=False))
            for offset, plugin in enumerate(OUR_PLUGINS)
        }
        self.small = random_file(work / "small.bin", 200 * 1024)
        self.fetch_source = random_file(work / "fetch-source.bin", 1024 * 1024)

    def host_file(self, host: str, parts: tuple[str, ...]) -> Path:
        return Path(self.session_of[host].state_dir, host, "C", *parts)

    def prepare(self, fetch_dir: Path) -> None:
        fetch_dir.mkdir(parents=True, exist_ok=True)
        for hosts in self.hosts.values():
            for host in hosts.values():
                self.session_of[host].fault(host, "clear")
                self.host_file(host, PUT_PATH).unlink(missing_ok=True)
                source = self.host_file(host, FETCH_PATH)
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_bytes(self.fetch_source.path.read_bytes())

    def arm_command(self, host: str, cell: Cell) -> str:
        if cell.kind is None:
            return ""
        options = [f"{key}={value}" for key, value in cell.options.items()]
        argv = [
            sys.executable,
            "-m",
            "winhost",
            "fault",
            "--state-dir",
            str(self.session_of[host].state_dir),
        ]
        return shlex.join(["env", f"PYTHONPATH={WINHOST_PATH}", *argv, host, cell.kind, *options])

    def run(self, plugin: str, transport: str, fetch_dir: Path) -> PlaybookRun:
        combo = COMBINATIONS_BY_NAME[transport]
        family = plugin.rsplit(".", 1)[1]
        overlay = {}
        for cell, host in self.hosts[plugin].items():
            overlay[host] = (
                connection_vars(plugin, combo, self.targets[host])
                | _option_vars(family)
                | {
                    "matrix_op": cell.op,
                    "matrix_warm": cell.warm,
                    "matrix_arm": self.arm_command(host, cell),
                }
            )
        work_dir = self.work / f"{family}-{transport}"
        extra = {
            "matrix_hosts": ",".join(overlay),
            "small_file": str(self.small.path),
            "fetch_dir": str(fetch_dir),
        }
        return run_playbook(
            PLAYBOOK_DIR / "fault-matrix.yml",
            [*self.inventories, write_overlay(work_dir / "overlay.yml", overlay)],
            work_dir,
            extra_vars=extra,
            forks=min(len(overlay), FORKS),
            timeout=600,
        )

    def counters(self, host: str) -> tuple[int, int]:
        counters = self.session_of[host].state(host)["counters"]
        return int(counters["commands_run"]), int(counters["open_shells"])

    def wait_for_holders(self, before: dict[str, tuple[int, int]], limit: float) -> None:
        """Until every host holds no more shells or pools than before, or `limit` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if all(self.counters(host)[1] <= opened for host, (_, opened) in before.items()):
                return
            time.sleep(0.5)


def _op_task(run: PlaybookRun, host: str, op: str) -> t.Any:
    name = {"ping": "Ping", "put": "Put", "fetch": "Fetch"}[op]
    for result in run.tasks(host):
        if result.task == name and not result.result.get("skipped"):
            return result
    return None


def _fact(run: PlaybookRun, host: str, task: str, fact: str) -> float | None:
    for result in run.tasks(host):
        if result.task == task:
            value = result.result.get("ansible_facts", {}).get(fact)
            return float(value) if value is not None else None
    return None


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Matrix]:
    from winhost.pytest_plugin import start_session, stop_session

    needed = len(OUR_PLUGINS) * len(CELLS)
    sessions = []
    try:
        for address_block in BLOCKS:
            hosts = min(address_block.size, needed - sum(len(s.hosts) for s in sessions))
            if hosts > 0:
                sessions.append(
                    start_session(
                        tmp_path_factory.mktemp(f"winhost-{address_block.name}"),
                        hosts,
                        "default",
                        first=address_block.first,
                    )
                )
        yield Matrix(sessions, tmp_path_factory.mktemp("fault-matrix"))
    finally:
        for session in sessions:
            stop_session(session)


def _judge(
    matrix: Matrix,
    *,
    plugin: str,
    transport: str,
    run: PlaybookRun,
    before: dict[str, tuple[int, int]],
    fetch_dir: Path,
) -> list[Outcome]:
    family = plugin.rsplit(".", 1)[1]
    options = bound_options(family)
    hosts = matrix.hosts[plugin]
    started = {host: matrix.counters(host)[0] - before[host][0] for host in hosts.values()}
    clean = {cell.op: started[host] for cell, host in hosts.items() if cell.kind is None}
    outcomes = []
    for cell, host in hosts.items():
        outcome = Outcome(plugin, transport, cell)
        outcome.commands = started[host]
        outcome.expected_commands = (
            clean[cell.op] + (clean["ping"] if cell.warm else 0) + cell.reruns
        )
        outcome.left = matrix.counters(host)[1] - before[host][1]
        task = _op_task(run, host, cell.op)
        if task is None:
            outcome.ran = False
            outcome.message = "the operation did not run\n" + run.describe(host)
        else:
            outcome.survived = not task.failed
            outcome.message = "" if outcome.survived else task.message
        begun = _fact(run, host, "Note the start", "matrix_started")
        ended = _fact(run, host, "Note the end", "matrix_ended")
        outcome.seconds = (ended - begun) if begun is not None and ended is not None else 0.0
        transfers = 1 + cell.reruns if cell.op in ("put", "fetch") else 0
        commands = max(1, clean[cell.op] - transfers)
        outcome.bound = stage_bounds.task_bound(options, commands, transfers) + ANSIBLE_OVERHEAD
        if cell.op == "put":
            outcome.file_state = _file_state(matrix.host_file(host, PUT_PATH), matrix.small.sha1)
        elif cell.op == "fetch":
            outcome.file_state = _file_state(fetch_dir / f"{host}.bin", matrix.fetch_source.sha1)
        if cell.counted:
            outcome.not_hit = bool(matrix.session_of[host].state(host).get("faults"))
        if outcome.ran and not outcome.survived:
            # Our plugins' failures start with the plugin's name; the layer words follow.
            outcome.wrong_layer = cell.kind is None or not (
                re.search(cell.layer, outcome.message) and plugin in outcome.message
            )
        outcomes.append(outcome)
    return outcomes


def _figures(outcomes: list[Outcome]) -> str:
    faulted = [o for o in outcomes if o.cell.kind is not None]
    return (
        f"faults: survived {sum(o.survived for o in faulted)}/{len(faulted)}, "
        f"leftovers {sum(o.left > 0 for o in outcomes)}, "
        f"over-time {sum(o.over_time for o in outcomes)}, "
        f"ran twice {sum(o.ran_twice for o in outcomes)}, "
        f"files damaged {sum(o.damaged for o in outcomes)}, "
        f"not hit {sum(o.not_hit for o in outcomes)}, "
        f"wrong layer {sum(o.wrong_layer for o in outcomes)}, "
        f"did not run {sum(not o.ran for o in outcomes)}"
    )


def _problems(outcome: Outcome) -> str:
    """What fails the test for this cell (empty when nothing does)."""
    problems = [
        "" if outcome.ran else "DID NOT RUN",
        f"left {outcome.left}" if outcome.left > 0 else "",
        f"OVER TIME (bound {outcome.bound:.0f}s)" if outcome.over_time else "",
        f"RAN TWICE ({outcome.commands}/{outcome.expected_commands})" if outcome.ran_twice else "",
        "file damaged" if outcome.damaged else "",
        "fault NOT HIT" if outcome.not_hit else "",
        "the clean run failed" if outcome.cell.kind is None and not outcome.survived else "",
        # A fetch restarted after its output was cut off must then succeed.
        "NOT RESTARTED" if outcome.cell.reruns and not outcome.survived else "",
    ]
    return ", ".join(problem for problem in problems if problem)


def _row(outcome: Outcome) -> str:
    state = "survived" if outcome.survived else "failed"
    flags = [
        _problems(outcome),
        f"file {outcome.file_state}" if outcome.file_state not in ("-", "damaged") else "",
        "wrong layer" if outcome.wrong_layer else "",
    ]
    first_line = outcome.message.strip().splitlines()[0][:110] if outcome.message.strip() else ""
    return (
        f"  {outcome.label:52} {state:9} {outcome.seconds:5.1f}s/{outcome.bound:6.0f}s "
        f"{' '.join(flag for flag in flags if flag):30} {first_line}"
    )


def test_fault_matrix(matrix: Matrix, run_log: t.Any) -> None:
    outcomes: list[Outcome] = []
    for transport in TRANSPORTS:
        fetch_dir = matrix.work / f"fetched-{transport}"
        matrix.prepare(fetch_dir)
        before = {
            host: matrix.counters(host)
            for hosts in matrix.hosts.values()
            for host in hosts.values()
        }
        with concurrent.futures.ThreadPoolExecutor(len(OUR_PLUGINS)) as pool:
            runs = dict(
                zip(
                    OUR_PLUGINS,
                    pool.map(
                        functools.partial(matrix.run, transport=transport, fetch_dir=fetch_dir),
                        OUR_PLUGINS,
                    ),
                    strict=True,
                )
            )
        # Kept sessions end after the run: their holders close them within the close bound.
        limit = max(stage_bounds.kept_close_bound(bound_options(p.rsplit(".", 1)[1])) for p in runs)
        matrix.wait_for_holders(before, limit + 5)
        for plugin, run in runs.items():
            outcomes += _judge(
                matrix,
                plugin=plugin,
                transport=transport,
                run=run,
                before=before,
                fetch_dir=fetch_dir,
            )

    details = matrix.work / "fault-matrix.txt"
    details.write_text(
        "\n\n".join(f"{_row(outcome)}\n{outcome.message}" for outcome in outcomes),
        encoding="utf-8",
    )
    for outcome in outcomes:
        run_log.record(
            "fault matrix",
            outcome.plugin,
            f"{outcome.cell.name} {outcome.transport}",
            "survived" if outcome.survived else "failed",
            seconds=outcome.seconds,
            note=_problems(outcome) or outcome.message.strip().split("\n")[0],
        )
    run_log.summaries["fault matrix"] = f"{_figures(outcomes)}; every message: {details}"
    bad = [outcome for outcome in outcomes if _problems(outcome)]
    assert not bad, "\n".join(
        [_figures(outcomes), *(f"{_row(outcome)}\n{outcome.message}" for outcome in bad)]
    )
