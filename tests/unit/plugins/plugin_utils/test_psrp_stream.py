"""session._psrp_stream: whether a Receive's answer ends its command, told without parsing it,
and the output objects of an answer, checked as pypsrp checks every answer."""

from __future__ import annotations

import base64
import types
import typing as t

import pytest
from pypsrp.exceptions import WinRMError
from pypsrp.messages import MessageType

from ansible_collections.winops.remoting.plugins.plugin_utils.session._psrp_stream import (
    Answer,
    ends_command,
    output_of,
)

COMMAND = "13E829FC-384D-41C8-88BF-933C03FC2C53"
STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState"


def answer_xml(
    streams: list[tuple[str, bytes]],
    state: str | None,
    relates_to: str = "uuid:ABC",
    quote: str = '"',
) -> bytes:
    """A ReceiveResponse laid out as Windows writes one (pypsrp's recording
    test_client_fetch_file.yml): the streams, then the command's state."""
    body = "".join(
        f'<rsp:Stream Name="{name}" CommandId="{COMMAND}">{base64.b64encode(data).decode()}'
        "</rsp:Stream>"
        for name, data in streams
    )
    if state is not None:
        body += (
            f"<rsp:CommandState CommandId={quote}{COMMAND}{quote} "
            f"State={quote}{STATE}/{state}{quote}>"
            + ("<rsp:ExitCode>0</rsp:ExitCode>" if state == "Done" else "")
            + "</rsp:CommandState>"
        )
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">'
        f"<s:Header><a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
        f"<s:Body><rsp:ReceiveResponse>{body}</rsp:ReceiveResponse></s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize(
    ("xml", "done"),
    [
        (answer_xml([("stdout", b"last")], "Done"), True),
        (answer_xml([("stdout", b"last")], "Done", quote="'"), True),
        (answer_xml([("stdout", b"x" * 2_000_000)], "Done"), True),
        (answer_xml([("stdout", b"more")], "Running"), False),
        (answer_xml([("stdout", b"more")], None), False),
        # Output that reads like the element, as base64 text: not the element.
        (answer_xml([("stdout", base64.b64decode("CommandState/Done" + "A" * 3))], None), False),
        (
            answer_xml([("stdout", b"x")], None).replace(
                b"</rsp:Stream>", b"CommandState/Done</rsp:Stream>"
            ),
            False,
        ),
    ],
    ids=[
        "done",
        "done-single-quotes",
        "done-after-2-mb",
        "running",
        "no-state",
        "lookalike-data",
        "lookalike-text",
    ],
)
def test_the_answer_that_ends_the_command_is_told(xml: bytes, done: bool) -> None:
    assert ends_command(xml) is done


class Pool:
    """pypsrp's RunspacePool as output_of uses it: the bytes it parses, one output per call."""

    def __init__(self) -> None:
        self.parsed: list[bytes] = []

    def _parse_responses(self, data: bytes, pipeline: t.Any) -> list[tuple[int, t.Any]]:
        self.parsed.append(data)
        output = types.SimpleNamespace(data=types.SimpleNamespace(data=data.decode()))
        return [(MessageType.PIPELINE_STATE, None), (MessageType.PIPELINE_OUTPUT, output)]


def test_output_of_parses_the_stdout_streams_in_order() -> None:
    pool = Pool()
    pipeline = types.SimpleNamespace(runspace_pool=pool)
    xml = answer_xml([("stdout", b"one "), ("stderr", b"ignored"), ("stdout", b"two")], "Done")
    assert output_of(t.cast(t.Any, pipeline), Answer("uuid:ABC", xml)) == ["one two"]
    assert pool.parsed == [b"one two"]


def test_an_answer_to_another_request_is_refused() -> None:
    pool = Pool()
    pipeline = types.SimpleNamespace(runspace_pool=pool)
    xml = answer_xml([("stdout", b"data")], None, relates_to="uuid:OTHER")
    with pytest.raises(WinRMError, match=r"uuid:ABC.*uuid:OTHER"):
        output_of(t.cast(t.Any, pipeline), Answer("uuid:ABC", xml))
    assert pool.parsed == []
