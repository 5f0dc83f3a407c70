"""Opt-in latency profiles: what the set-up steps of a real Windows host cost, as sleeps.

winhost answers in well under a millisecond, so a benchmark against it measures the controller
only and hides what users pay on real hosts: a network round trip per message, a logon per
connection, a process per WinRS shell and command, a wsmprovhost.exe per runspace pool. A
profile, chosen per host at start (`python -m winhost start --latency windows`, the fixture's
WINHOST_LATENCY), makes winhost sleep for those costs at the points where Windows pays them.

Every figure names its source; docs/winhost-behaviours.md (## Cost model)
and docs/benchmarks.md list them with their sources. The profile "none" (the default) adds
nothing; under every profile the host's state JSON counts each operation (`latency.paid`), so
tests can see logons, shells and pools per run. No test asserts our plugins' timings against these figures: they make a benchmark's
ratios closer to what users see, nothing more.
"""

from __future__ import annotations

import dataclasses
import re
import typing as t

# The operations a profile prices, in the order a client meets them.
ROUND_TRIP = "round_trip"  # one HTTP request and its answer
LOGON = "logon"  # a new authenticated logon on a connection (token creation)
SHELL_CREATE = "shell_create"  # WinRS Create of a cmd shell (winrshost.exe)
PROCESS_CMD = "process_cmd"  # cmd.exe started for a WinRS Command
PROCESS_POWERSHELL = "process_powershell"  # powershell.exe started by that command line
POOL_OPEN = "pool_open"  # PSRP Create: wsmprovhost.exe and the runspace pool
PIPELINE = "pipeline"  # PSRP Command: a pipeline on an open runspace (a thread)

OPERATIONS = (
    ROUND_TRIP,
    LOGON,
    SHELL_CREATE,
    PROCESS_CMD,
    PROCESS_POWERSHELL,
    POOL_OPEN,
    PIPELINE,
)

# Executables a WinRS command line can name that start Windows PowerShell (or PowerShell 7).
_POWERSHELL_IMAGES = {"powershell", "powershell.exe", "pwsh", "pwsh.exe"}


class LatencyError(ValueError):
    """An unknown profile name."""


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Seconds each operation costs on the modelled host."""

    name: str
    seconds: dict[str, float]

    def cost(self, operation: str) -> float:
        if operation not in OPERATIONS:
            raise LatencyError(
                f"winhost does not model the cost of {operation!r}; "
                f"modelled: {', '.join(OPERATIONS)}"
            )
        return self.seconds.get(operation, 0.0)


NONE = CostModel("none", {})

# Sources (full citations in docs/winhost-behaviours.md, ## Cost model). Where sources give a
# range, the cheap end is used: the model is a lower bound of what a host costs.
WINDOWS = CostModel(
    "windows",
    {
        # "Round trip within same datacenter: 500,000 ns" (Jeff Dean's latency numbers); TCP
        # and TLS handshakes are not charged separately.
        ROUND_TRIP: 0.0005,
        # not charged: no published measurement of a network logon (LsaLogonUser) was found.
        # Its cost is only the handshake's extra HTTP legs, which pay ROUND_TRIP. The operation
        # is still counted, so tests and benchmarks see how often a client logs on.
        LOGON: 0.0,
        # a process start: WinRS starts winrshost.exe for the user (winrm4j#169, SigmaHQ#5604).
        # No measurement of Create itself was found, so it is charged the process start below.
        SHELL_CREATE: 0.020,
        # measured: a process start on Windows 18.9 ms (MajorPrivacy#107), `cmd /c findstr`
        # 22.3 ms (ProcessKit-rs), `cmd /c exit` 42 ms (PowerShell#6443); WinRS starts every
        # command through cmd.exe (pypsrp's recording test_winrs_no_cmd_shell.yml). Paid in the
        # process, after the Command's answer (start_up_operations).
        PROCESS_CMD: 0.020,
        # measured: `Measure-Command { powershell.exe -command "&{12}" }` took 0.187-0.205 s
        # on Windows Server 2019 (build 17763) before a regression (PowerShell/PowerShell#12843);
        # 0.23-0.33 s elsewhere (PowerShell#6443, PowerShell PR#8341), 600 ms on a Windows 10
        # desktop (PowerShell#4239). The server figure is used. Paid in the process, after
        # cmd.exe's start-up (start_up_operations).
        PROCESS_POWERSHELL: 0.19,
        # "a powershell session takes ... over winrm ... on the order of 200ms" once its
        # assemblies are precompiled (GoogleCloudPlatform/compute-image-windows#174); about
        # 1 s for a PSSession into a container (microsoft/navcontainerhelper#2469).
        POOL_OPEN: 0.19,
        # "Subsequent invokes to that PsSession ... around 5 ms" (freddydk,
        # microsoft/navcontainerhelper#2469); a pipeline is a thread in the pool's process,
        # not a process (jborean93, ansible/ansible#47707).
        PIPELINE: 0.005,
    },
)

PROFILES: dict[str, CostModel] = {model.name: model for model in (NONE, WINDOWS)}


def model(name: str) -> CostModel:
    """The profile called `name`; a clear error naming the allowed values otherwise."""
    found = PROFILES.get(name)
    if found is None:
        raise LatencyError(f"--latency {name!r} is unknown; allowed: {', '.join(PROFILES)}")
    return found


def shell_operations(action: str, resource_uri: str) -> list[str]:
    """The priced operations one shell request performs before it is answered, from its
    action and resource URI.

    A WinRS Command is answered once its cmd.exe was created; the processes' start-up is paid
    in them, after the answer (``start_up_operations``). A PSRP Command starts a pipeline in
    the open pool.
    """
    uri = resource_uri.lower()
    psrp = uri.startswith("http://schemas.microsoft.com/powershell/")
    if action.endswith("/transfer/Create"):
        return [POOL_OPEN if psrp else SHELL_CREATE]
    if action.endswith("/Command"):
        return [PIPELINE] if psrp else []
    return []


def start_up_operations(command_line: str) -> list[str]:
    """The priced operations a WinRS command's processes perform themselves, after the
    Command was answered and before the command does anything: cmd.exe's start-up, then
    powershell.exe's when the line names it.

    CreateProcess returns before the new process has initialized itself: loading its DLLs
    and running up to its entry point happen in the new process (Raymond Chen, "CreateProcess
    does not wait for the process to start", devblogs.microsoft.com/oldnewthing/20050119-00).
    So the client's next requests (its input, its Receive) overlap the start-up, and the
    command's first output waits for it.
    """
    operations = [PROCESS_CMD]
    if _first_program(command_line) in _POWERSHELL_IMAGES:
        operations.append(PROCESS_POWERSHELL)
    return operations


_FIRST_WORD = re.compile(r'[ \t]*(?:"([^"]*)|([^ \t]*))')


def _first_program(command_line: str) -> str:
    """The program a command line starts, as CreateProcess reads its first word: up to the
    next quote when it starts with one, else up to the first blank (the rule for argv[0] in
    Microsoft's "Parsing C++ command-line arguments"). The rest of the line is not read: a
    module's line is kilobytes of -EncodedCommand, and splitting all of it cost winhost
    2.5 ms of every command."""
    match = _FIRST_WORD.match(command_line)  # never None: every part of it may be empty
    program = match.group(1) if match.group(1) is not None else match.group(2)
    return program.replace("/", "\\").rsplit("\\", 1)[-1].lower()


def counters(paid: t.Mapping[str, tuple[int, float]]) -> dict[str, dict[str, float]]:
    """The per-operation tallies as state JSON: count and seconds slept."""
    return {
        operation: {"count": count, "seconds": round(seconds, 6)}
        for operation, (count, seconds) in paid.items()
    }
