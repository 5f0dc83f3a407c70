"""A PSRP pipeline created before its input exists, and that input sent to it later.

Internal use only: this module is not part of the collection's public API.

pypsrp's ``PowerShell.begin_invoke`` sends a pipeline's CREATE_PIPELINE (the WinRS Command) and
its input (Sends) in one call. A kept session creates the next module task's pipeline between
tasks, off the task's path (session._psrp_session ``start_ahead``), and the task then only
sends its input: one request fewer while the task waits (docs/sessions.md).
"""

from __future__ import annotations

import collections.abc as c
import typing as t

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code

if t.TYPE_CHECKING:
    from pypsrp.powershell import PowerShell


class InputRefused(Exception):
    """The host answered a pipeline's first input Send with a WS-Management fault, so it took
    none of the input (the pipeline or its pool is gone): the task may create its pipeline
    afresh, for the first time."""

    def __init__(self, fault: BaseException) -> None:
        super().__init__(str(fault))
        self.fault = fault


class _InputComesLater(Exception):
    """Stops pypsrp's begin_invoke where it asks for the first input."""


def _input_comes_later() -> c.Iterator[t.Any]:
    """A generator (begin_invoke takes input from one item at a time) without a first item."""
    yield from ()
    raise _InputComesLater


def create_waiting_for_input(pipeline: PowerShell) -> None:
    """Create ``pipeline`` on the host as pypsrp creates one that takes input (CREATE_PIPELINE
    with NoInput false), and send no input: on the host its script runs until it reads its
    input, and waits there."""
    from pypsrp.complex_objects import PSInvocationState

    try:
        pipeline.begin_invoke(_input_comes_later())
    except _InputComesLater:
        pass
    if pipeline.state != PSInvocationState.RUNNING:
        raise RuntimeError("internal error: pypsrp asked for input before creating the pipeline")


def send_input(pipeline: PowerShell, lines: c.Sequence[str]) -> int:
    """Send ``lines`` as the pipeline's input objects and end its input, as begin_invoke sends
    a list; return how many Sends the host answered with OperationTimeout.

    A loaded host can answer a Send with OperationTimeout after taking its data (Windows goes
    on processing the input: ansible.builtin.winrm relies on this, and pywinrm raises that
    fault as a timeout of its own for the same reason), so such a Send counts as taken and the
    next one follows: sending it again, or creating the pipeline afresh, would run the module
    twice. InputRefused when the host faulted the first Send otherwise (it took nothing); a
    failure of a later Send is raised as it is (the host has part of the input)."""
    from pypsrp.exceptions import WSManFaultError
    from pypsrp.messages import EndOfPipelineInput, PipelineInput

    pool = pipeline.runspace_pool
    messages: list[t.Any] = [PipelineInput(data=line) for line in lines]
    messages.append(EndOfPipelineInput())
    fragments = pool._fragmenter.fragment_multiple(messages, pool.id, pipeline.id)
    command_id = pipeline._command_id
    timed_out = 0
    for number, fragment in enumerate(fragments):
        try:
            pool.shell.send("stdin", fragment, command_id=command_id)
        except WSManFaultError as fault:
            if fault_code(fault) == _wsman_faults.OPERATION_TIMEOUT:
                timed_out += 1
                continue
            if number == 0:
                raise InputRefused(fault) from None
            raise
    return timed_out
