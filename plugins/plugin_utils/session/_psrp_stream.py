"""A PSRP pipeline's long output (a fetch), each Receive sent while the last answer is parsed.

Internal use only: this module is not part of the collection's public API.

pypsrp's ``WinRS.receive`` sends a Receive and parses its answer (XML, base64), and
``PowerShell.poll_invoke`` then parses the PSRP messages in it, all before the next Receive goes
out. ``receive_streamed`` splits that in two: ``send_receive`` sends the Receive pypsrp's
``WinRS.receive`` sends for a pipeline's stdout, through pypsrp's transport (which authenticates
and encrypts), and takes the answer's XML unparsed; ``output_of`` parses it in a thread of its
own (session._ahead ``WorkedBehind``) while the next Receive is out.

It never asks past the end: Windows ends the WinRS command (CommandState Done) in the Receive
answer that carries the pipeline's final state (pypsrp's recordings test_client_execute_ps.yml,
test_client_execute_ps_failure.yml, test_client_fetch_file.yml), which ``send_receive`` tells
without parsing the answer.
"""

from __future__ import annotations

import base64
import collections.abc as c
import functools
import re
import typing as t
import xml.etree.ElementTree as ET

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils.core import _wsman_faults
from ansible_collections.winops.remoting.plugins.plugin_utils.core._wsman_faults import fault_code
from ansible_collections.winops.remoting.plugins.plugin_utils.options._psrp_options import (
    PLUGIN_NAME,
)
from ansible_collections.winops.remoting.plugins.plugin_utils.session._ahead import WorkedBehind

if t.TYPE_CHECKING:
    from pypsrp.powershell import PowerShell


# The CommandState element that ends the command. ReceiveResponse is a sequence of Streams, then
# CommandState (MS-WSMV 2.2.4.27); '<' and quotes never occur in a stream's base64.
_COMMAND_DONE = re.compile(
    rb"<(?:[\w.-]+:)?CommandState\s[^>]*State\s*=\s*([\"'])[^\"'>]*/CommandState/Done\1"
)
# How much of an answer's end is searched for that element: it is a few hundred bytes long.
_DONE_SEARCH_TAIL = 4096


def receive_streamed(
    pipeline: PowerShell,
    on_output: c.Callable[[list[t.Any]], None],
    *,
    poll_timeout: c.Callable[[], int],
    retry: c.Callable[[str, c.Callable[[], t.Any]], t.Any],
) -> None:
    """What ``poll_invoke`` does until the pipeline ends, each Receive sent while the answer
    before it is parsed; ``on_output`` gets the output objects in the parsing thread.

    ``poll_timeout`` gives each Receive's operation timeout (and raises when the command ran
    out of time), ``retry`` repeats a Receive the host did not take. The parse sends nothing for
    the transfer scripts, which call no host method that is answered; should it, the session's
    transport still takes one request at a time (session._psrp_session ``_prepare_transport``).
    """
    from pypsrp.complex_objects import PSInvocationState
    from pypsrp.exceptions import WSManFaultError

    def parse(answer: Answer) -> None:
        objects = output_of(pipeline, answer)
        if objects:
            on_output(objects)

    with WorkedBehind(parse) as parser:
        done = False
        # The pipeline's state, which the parsing thread sets, ends the loop only for a host that
        # does not end the command as Windows does.
        while not done and pipeline.state == PSInvocationState.RUNNING:
            timeout = poll_timeout()
            try:
                done, answer = retry(
                    "receive pipeline output", functools.partial(send_receive, pipeline, timeout)
                )
            except WSManFaultError as err:
                if fault_code(err) != _wsman_faults.OPERATION_TIMEOUT:
                    raise
                continue  # nothing within the operation timeout: ask again
            parser.give(answer)
        parser.finish()
    if pipeline.state == PSInvocationState.RUNNING:
        raise AnsibleConnectionFailure(
            f"{PLUGIN_NAME}: the host ended the command of pipeline {pipeline.id} before the "
            "pipeline's final state arrived"
        )


class Answer(t.NamedTuple):
    """One Receive's answer: the XML as it came, and the MessageID it must relate to."""

    message_id: str
    xml: bytes


def send_receive(pipeline: PowerShell, timeout: int) -> tuple[bool, Answer]:
    """Send one Receive for ``pipeline``'s stdout and return whether its answer ends the
    command, and the answer unparsed. A WS-Management fault is raised as pypsrp raises it."""
    from pypsrp.exceptions import WinRMTransportError
    from pypsrp.wsman import NAMESPACES, OptionSet, WSManAction

    if pipeline._command_id is None:
        raise RuntimeError("internal error: output received from a pipeline never started")
    shell = pipeline.runspace_pool.shell
    wsman = shell.wsman
    receive = ET.Element(f"{{{NAMESPACES['rsp']}}}Receive")
    desired = ET.SubElement(receive, f"{{{NAMESPACES['rsp']}}}DesiredStream")
    desired.text = "stdout"
    desired.attrib["CommandId"] = pipeline._command_id
    options = OptionSet()
    options.add_option("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")
    message_id, header = wsman._create_header(
        WSManAction.RECEIVE, shell.resource_uri, options, shell._selector_set, timeout
    )
    envelope = ET.Element(f"{{{NAMESPACES['s']}}}Envelope")
    envelope.append(header)
    ET.SubElement(envelope, f"{{{NAMESPACES['s']}}}Body").append(receive)
    request = ET.tostring(envelope, encoding="utf-8", method="xml")
    try:
        # The HTTP wait outlasts the operation timeout, after which the host answers anyway.
        xml = wsman.transport.send(request, retries_on_read_timeout=0, timeout=timeout + 2)
    except WinRMTransportError as err:
        try:
            fault = wsman._parse_wsman_fault(err.response_text)
        except ET.ParseError:
            raise err from None
        raise fault from err
    return ends_command(xml), Answer(f"uuid:{message_id}", xml)


def ends_command(answer_xml: bytes) -> bool:
    """Whether a Receive's answer ends its command (CommandState Done), read without parsing."""
    tail = max(0, len(answer_xml) - _DONE_SEARCH_TAIL)
    return _COMMAND_DONE.search(answer_xml, tail) is not None


def output_of(pipeline: PowerShell, answer: Answer) -> list[t.Any]:
    """The output objects in a Receive's answer, its other messages (state, errors, host
    calls) taken by pypsrp as ``poll_invoke`` takes them. The answer is checked as pypsrp checks
    every answer: it must relate to the Receive sent."""
    from pypsrp.exceptions import WinRMError
    from pypsrp.messages import MessageType
    from pypsrp.wsman import NAMESPACES

    root = ET.fromstring(answer.xml)
    relates_to = root.find("s:Header/wsa:RelatesTo", namespaces=NAMESPACES)
    if relates_to is None or relates_to.text != answer.message_id:
        raise WinRMError(
            f"the host answered a Receive ({answer.message_id}) for another message "
            f"({relates_to.text if relates_to is not None else 'no RelatesTo'})"
        )
    streams = root.findall("s:Body/rsp:ReceiveResponse/rsp:Stream", namespaces=NAMESPACES)
    stdout = b"".join(
        base64.b64decode(stream.text)
        for stream in streams
        if stream.text and stream.attrib.get("Name") == "stdout"
    )
    messages = pipeline.runspace_pool._parse_responses(stdout, pipeline)
    return [message.data.data for kind, message in messages if kind == MessageType.PIPELINE_OUTPUT]
