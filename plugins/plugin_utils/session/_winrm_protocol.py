"""pywinrm's Protocol as the winrm session uses it: named shells, a shell listing and a Send
built apart from sending it.

Internal use only: this module is not part of the collection's public API.

The WS-Management messages pywinrm does not build (MS-WSMV): a cmd shell Create that names the
shell, the WS-Enumeration of the user's shells, and a WinRS Send whose envelope the session
builds ahead of sending it. Importing this module never fails: without pywinrm, ``HAS_WINRM``
is False and ``WINRM_IMPORT_ERROR`` says why, for the plugin to report when it connects.
"""

from __future__ import annotations

import base64
import inspect
import typing as t
import xml.etree.ElementTree as ET

from ansible_collections.winops.remoting.plugins.plugin_utils.session._pooled import (
    environment_read_once,
)

try:
    import xmltodict
    from winrm.exceptions import WinRMError
    from winrm.protocol import Protocol as _PywinrmProtocol
except ImportError as err:
    HAS_WINRM = False
    WINRM_IMPORT_ERROR: ImportError | None = err
    _PywinrmProtocol = object  # type: ignore[assignment,misc]
else:
    HAS_WINRM = True
    WINRM_IMPORT_ERROR = None

UTF8_CODEPAGE = 65001
CMD_SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
_TRANSFER_CREATE = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
_SHELL_SEND = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send"
# Where a Send's base64 stdin goes into the envelope xmltodict writes (stdin_message). The
# stream's text is the last text of the envelope, so its mark is the last one, whatever the
# header holds.
_STDIN_MARK = "@winops-stdin@"
_ENUMERATION = "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
_XML_NAMESPACES = {
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "n": _ENUMERATION,
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
}
# A bound on Pulls for one listing: at up to 32000 shells per answer, far more than any
# user's MaxShellsPerUser (30 unless raised).
_MAX_PULLS = 100


class Protocol(_PywinrmProtocol):  # type: ignore[misc,valid-type]
    """pywinrm's Protocol, with shells that carry a name and a way to list the user's shells.

    A shell Create whose answer is lost may still have created the shell (the host answers
    a Create once it has made the shell: MS-WSMV 3.1.4.5.2, MS-PSRP 3.1.5.3.2). Naming each
    shell on Create (rsp:Name, the Shell type of MS-WSMV 2.2.4.37) and listing the user's
    shells (WS-Enumeration of the cmd shell resource, MS-WSMV 3.1.4.8.2) lets the session
    find such a shell and delete it; pywinrm's own open_shell takes no name and pywinrm
    cannot enumerate.
    """

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # One read of the proxy environment per session, not per request (session._pooled).
        http_transport: t.Any = self.transport
        http_transport.build_session = environment_read_once(http_transport.build_session)

    def open_shell(  # type: ignore[override]
        self,
        codepage: int = UTF8_CODEPAGE,
        name: str | None = None,
        idle_timeout: int | None = None,
        **kwargs: t.Any,
    ) -> str:
        """Create a cmd shell (with rsp:Name when ``name`` is given, rsp:IdleTimeOut of
        ``idle_timeout`` seconds when that is given); returns its ShellId."""
        # An xs:duration: Windows refuses a bare number with a SchemaValidationError
        # (pywinrm issue 377), the form pywinrm passes through unchanged.
        idle = None if idle_timeout is None else f"PT{int(idle_timeout)}S"
        if name is None:
            return str(super().open_shell(codepage=codepage, idle_timeout=idle, **kwargs))
        envelope = self.build_wsman_header(action=_TRANSFER_CREATE, resource_uri=CMD_SHELL_URI)
        envelope["env:Header"]["w:OptionSet"] = {
            "w:Option": [
                {"@Name": "WINRS_NOPROFILE", "#text": "FALSE"},
                {"@Name": "WINRS_CODEPAGE", "#text": str(codepage)},
            ]
        }
        # In the order of a Create Windows took (pypsrp's recording test_winrs_extra_opts.yml:
        # the streams, IdleTimeOut, Name), which is not the order of the schema (MS-WSMV
        # 2.2.4.37 lists Name and IdleTimeOut before the streams).
        shell: dict[str, str] = {"rsp:InputStreams": "stdin", "rsp:OutputStreams": "stdout stderr"}
        if idle is not None:
            shell["rsp:IdleTimeOut"] = idle
        shell["rsp:Name"] = name
        envelope["env:Body"] = {"rsp:Shell": shell}
        answer = ET.fromstring(self.send_message(xmltodict.unparse({"env:Envelope": envelope})))
        for node in answer.iter():
            # The EPR's selector, as pywinrm reads it (rsp:ShellId carries the same value).
            if node.get("Name") == "ShellId" and node.text:
                return node.text
        raise WinRMError("the host answered the shell Create without a ShellId")

    def stdin_message(self, shell_id: str, command_id: str, data: bytes, end: bool) -> str:
        """The WinRS Send of ``data`` to a command's stdin (MS-WSMV 3.1.4.11), built apart from
        sending it: the session builds the next one while the host reads this one (_ahead)."""
        envelope = self.build_wsman_header(
            action=_SHELL_SEND, resource_uri=CMD_SHELL_URI, shell_id=shell_id
        )
        envelope["env:Body"] = {
            "rsp:Send": {
                "rsp:Stream": {
                    "@xmlns:rsp": _XML_NAMESPACES["rsp"],
                    "@Name": "stdin",
                    "@CommandId": command_id,
                    "@End": "true" if end else "false",
                    "#text": _STDIN_MARK,
                }
            }
        }
        # The stream's text goes in after xmltodict has written the rest: base64 holds no
        # character XML escapes, so the result is the same, without xmltodict scanning up to
        # 500 KB of text three times for '&', '<' and '>' (an eighth of a put's CPU in the
        # holder).
        head, tail = str(xmltodict.unparse({"env:Envelope": envelope})).rsplit(_STDIN_MARK, 1)
        return f"{head}{base64.b64encode(data).decode('ascii')}{tail}"

    def list_shells(self) -> list[tuple[str, str | None]]:
        """(ShellId, Name) of every cmd shell the host lists for this user."""
        body = {
            "n:Enumerate": {
                "w:OptimizeEnumeration": None,
                "w:MaxElements": "32000",
            }
        }
        shells: list[tuple[str, str | None]] = []
        action = f"{_ENUMERATION}/Enumerate"
        for _pull in range(_MAX_PULLS):
            envelope = self.build_wsman_header(action=action, resource_uri=CMD_SHELL_URI)
            envelope["env:Body"] = body
            answer = ET.fromstring(self.send_message(xmltodict.unparse({"env:Envelope": envelope})))
            for shell in answer.iter(f"{{{_XML_NAMESPACES['rsp']}}}Shell"):
                shell_id = shell.findtext("rsp:ShellId", namespaces=_XML_NAMESPACES)
                if shell_id:
                    shells.append(
                        (shell_id, shell.findtext("rsp:Name", namespaces=_XML_NAMESPACES))
                    )
            context = next(answer.iter(f"{{{_ENUMERATION}}}EnumerationContext"), None)
            ended = next(answer.iter(f"{{{_XML_NAMESPACES['w']}}}EndOfSequence"), None)
            ended = ended or next(answer.iter(f"{{{_ENUMERATION}}}EndOfSequence"), None)
            if ended is not None or context is None or not (context.text or "").strip():
                return shells
            action = f"{_ENUMERATION}/Pull"
            body = {"n:Pull": {"n:EnumerationContext": context.text, "n:MaxElements": "32000"}}
        raise WinRMError(f"the host's list of shells did not end after {_MAX_PULLS} Pulls")


def protocol_parameters() -> frozenset[str]:
    """Argument names of pywinrm's winrm.protocol.Protocol, for the ansible_winrm_*
    passthrough: pywinrm's own, as the builtin plugin reads them, not those of the subclass
    above, which takes ``*args, **kwargs``."""
    if not HAS_WINRM:
        return frozenset()
    parameters = inspect.signature(_PywinrmProtocol.__init__).parameters.values()
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(p.name for p in parameters if p.kind in named and p.name != "self")


def kerberos_available() -> bool:
    """Whether pywinrm can authenticate with Kerberos here: its Kerberos transport needs
    pykerberos (the pywinrm[kerberos] extra), whatever else is installed."""
    try:
        from winrm import transport
    except ImportError:
        return False
    return bool(getattr(transport, "HAVE_KERBEROS", False))
