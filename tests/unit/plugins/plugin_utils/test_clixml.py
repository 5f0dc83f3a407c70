"""Tests for _clixml: progress dropped, error records readable, other text untouched.

The samples follow the CLIXML stream serialisation (MS-PSRP 2.2.5): an <Objs> document in the
PowerShell 2004/04 namespace, <S S="stream"> strings with _xHHHH_ escapes, <Obj> records.
"""

from __future__ import annotations

from ansible_collections.winops.remoting.plugins.plugin_utils.core._clixml import (
    clean_stderr,
    decode_escapes,
)

NS = 'Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"'
PROGRESS = (
    '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T>'
    '<T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record">'
    "<AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC>"
    "<T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>"
)
ERROR_LINES = (
    "<S S=\"Error\">Copy-Item : Cannot find path 'C:\\Temp\\missing_x005F_x0020_.txt' "
    "because it does not exist._x000D__x000A_</S>"
    '<S S="Error">At line:1 char:1_x000D__x000A_</S>'
    '<S S="Error">+ Copy-Item C:\\Temp\\missing.txt C:\\dest_x000D__x000A_</S>'
)


def test_progress_dropped_and_errors_rendered() -> None:
    stderr = f"#< CLIXML\r\n<Objs {NS}>{PROGRESS}{ERROR_LINES}</Objs>"
    assert clean_stderr(stderr) == (
        "Copy-Item : Cannot find path 'C:\\Temp\\missing_x0020_.txt' because it does not exist.\n"
        "At line:1 char:1\n"
        "+ Copy-Item C:\\Temp\\missing.txt C:\\dest\n"
    )


def test_only_progress_gives_empty_text() -> None:
    second = PROGRESS.replace('RefId="0"', 'RefId="1"')
    stderr = f"#< CLIXML\r\n<Objs {NS}>{PROGRESS}{second}</Objs>"
    assert clean_stderr(stderr) == ""


def test_plain_text_passes_through() -> None:
    text = "The system cannot find the file specified.\r\n<not xml>"
    assert clean_stderr(text) == text
    assert clean_stderr("") == ""


def test_text_before_marker_is_kept() -> None:
    stderr = f'native tool said hi\r\n#< CLIXML\r\n<Objs {NS}>{PROGRESS}<S S="Error">boom_x000A_</S></Objs>'
    assert clean_stderr(stderr) == "native tool said hi\r\nboom\n"


def test_several_blocks_and_streams() -> None:
    stderr = (
        f'#< CLIXML\r\n<Objs {NS}><S S="warning">disk almost full_x000D__x000A_</S></Objs>\r\n'
        f'#< CLIXML\r\n<Objs {NS}>{PROGRESS}<S S="verbose">step 2_x000A_</S>'
        f'<S S="Error">failed_x000A_</S></Objs>'
    )
    assert clean_stderr(stderr) == "WARNING: disk almost full\nVERBOSE: step 2\nfailed\n"


def test_error_record_object_uses_its_tostring() -> None:
    record = (
        '<Obj S="Error" RefId="1"><TN RefId="1"><T>System.Management.Automation.ErrorRecord</T>'
        "<T>System.Object</T></TN><ToString>Access is denied_x000D__x000A_</ToString>"
        '<MS><S N="FullyQualifiedErrorId">UnauthorizedAccess</S></MS></Obj>'
    )
    assert (
        clean_stderr(f"#< CLIXML\r\n<Objs {NS}>{PROGRESS}{record}</Objs>") == "Access is denied\n"
    )


def test_non_ascii_and_surrogate_pairs() -> None:
    stderr = (
        f'#< CLIXML\r\n<Objs {NS}><S S="Error">Jöhn: _xD83D__xDE00_ &lt;x&gt;_x000A_</S></Objs>'
    )
    assert clean_stderr(stderr) == "Jöhn: \U0001f600 <x>\n"


def test_malformed_clixml_is_kept_not_lost() -> None:
    broken = f'<Objs {NS}><S S="Error">unclosed</Objs>'
    assert clean_stderr(f"#< CLIXML\r\n{broken}") == broken


def test_decode_escapes() -> None:
    assert decode_escapes("a_x000D__x000A_b") == "a\r\nb"
    assert decode_escapes("Order_Details") == "Order_Details"
    assert decode_escapes("_x005F_x0020_") == "_x0020_"
    assert decode_escapes("_x20_") == "_x20_"
