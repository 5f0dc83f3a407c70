"""The execution engine: what a WinRS command line or a PSRP pipeline runs on a modelled host.

`create_engine()` is the seam the shells use. Every command runs in a worker thread as the
principal the shell was opened by (become switches principal inside the exec wrapper), against
the host's sandboxed C: drive. See powershell.py / native.py / bootstrap.py for what is
recognised; everything else fails loudly, the way Windows reports an unknown command.
"""

from __future__ import annotations

from winhost import api, latency
from winhost.execution.commandline import join_command
from winhost.execution.context import ExecContext
from winhost.execution.errors import not_modelled
from winhost.execution.native import run_cmd_line
from winhost.execution.powershell import run_script
from winhost.execution.process import CommandLineProcess, PipelineProcess, ProgramIO

# Commands a pipeline may end with that only format what the script wrote; winhost's output is
# already strings, so they pass objects through.
_PASS_THROUGH = {"out-string", "out-default", "out-null"}


class ExecutionEngine:
    """Implements api.ExecutionEngine."""

    def start_command_line(
        self, host: api.HostView, principal: api.Principal, command: str, arguments: list[str]
    ) -> api.Process:
        line = join_command(command, arguments)

        def program(io: ProgramIO) -> None:
            # The process's own start-up, after the Command was answered (latency.py).
            for operation in latency.start_up_operations(line):
                host.pay(operation)
            ctx = ExecContext.for_principal(host, principal)
            run_cmd_line(line, ctx, io)

        return CommandLineProcess(program, name=line[:60], host=host.computer_name)

    def start_pipeline(
        self, host: api.HostView, principal: api.Principal, commands: list[api.PipelineCommand]
    ) -> api.Process:
        def program(io: ProgramIO) -> None:
            io.command_not_found_terminates = True
            ctx = ExecContext.for_principal(host, principal)
            script = _pipeline_script(commands, io)
            run_script(script, ctx, io)

        return PipelineProcess(
            program,
            name=commands[0].text[:60] if commands else "empty",
            host=host.computer_name,
        )


def _pipeline_script(commands: list[api.PipelineCommand], io: ProgramIO) -> str:
    """The script a pipeline runs; formatting cmdlets after it pass output through."""
    if not commands:
        io.error(not_modelled("an empty PSRP pipeline"))
        io.exit(1)
    first, *rest = commands
    for extra in rest:
        if extra.text.lower() not in _PASS_THROUGH:
            io.error(
                not_modelled(
                    f"the PSRP pipeline command {extra.text!r} after {first.text[:40]!r} "
                    f"(only {', '.join(sorted(_PASS_THROUGH))} may follow the script)"
                )
            )
            io.exit(1)
    if first.is_script:
        if first.parameters:
            io.error(
                not_modelled(
                    "script arguments/parameters on a PSRP pipeline "
                    f"({[name for name, _ in first.parameters]}); winhost runs scripts with "
                    "input objects only"
                )
            )
            io.exit(1)
        return first.text
    if first.text.lower() in ("invoke-expression", "iex"):
        for name, value in first.parameters:
            if name is None or name.lower() == "command":
                return str(value)
    io.error(
        not_modelled(
            f"the cmdlet {first.text!r} as a PSRP pipeline command (winhost runs scripts and "
            "Invoke-Expression -Command)"
        )
    )
    io.exit(1)


def create_engine() -> api.ExecutionEngine:
    engine: api.ExecutionEngine = ExecutionEngine()
    return engine


__all__ = ["ExecutionEngine", "create_engine"]
