"""Tests for _transfer: chunk sizing from the envelope size, the line protocol and SHA-1 checks."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random

import pytest

from ansible_collections.winops.remoting.plugins.plugin_utils.transfer import _transfer as tr

EMPTY_SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"


def envelope_bytes_for_line(line: str) -> int:
    """Size of the WinRS Send Stream payload that carries one stdin line."""
    return len(base64.b64encode((line + "\r\n").encode("ascii")))


def emulate_put_host(lines: list[str]) -> tuple[bytes, str]:
    """What the PUT script does with its input: header first, then chunks; returns data and JSON."""
    header = json.loads(base64.b64decode(lines[0]).decode("utf-8"))
    assert "path" in header
    data = b"".join(base64.b64decode(line, validate=True) for line in lines[1:])
    result = json.dumps({"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)})
    return data, result


def emulate_fetch_host(data: bytes, chunk_size: int) -> str:
    """What the FETCH script prints for ``data``: chunk lines, then the JSON result line."""
    lines = [
        base64.b64encode(data[i : i + chunk_size]).decode("ascii")
        for i in range(0, len(data), chunk_size)
    ]
    lines.append(json.dumps({"sha1": hashlib.sha1(data).hexdigest(), "size": len(data)}))
    return "".join(line + "\r\n" for line in lines)


# --- chunk size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "max_envelope_size", [16384, 32768, 65536, 153600, 512000, 8 * 1024 * 1024]
)
@pytest.mark.parametrize("overhead", [4096, 8192])
def test_put_chunk_size_fits_the_envelope(max_envelope_size: int, overhead: int) -> None:
    chunk = tr.put_chunk_size(max_envelope_size, overhead)
    assert chunk % 3 == 0
    assert chunk >= tr.MIN_PUT_CHUNK_SIZE
    line = base64.b64encode(b"\xff" * chunk).decode("ascii")
    assert "=" not in line
    assert len(line) <= max_envelope_size - overhead
    assert envelope_bytes_for_line(line) + overhead <= max_envelope_size
    # The next multiple of 3 would no longer fit: the size is as large as allowed.
    bigger = base64.b64encode(b"\xff" * (chunk + 3)).decode("ascii")
    assert envelope_bytes_for_line(bigger) + overhead > max_envelope_size


def test_put_chunk_size_grows_with_the_envelope() -> None:
    sizes = [tr.put_chunk_size(size) for size in (32768, 153600, 512000)]
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == 3


@pytest.mark.parametrize("max_envelope_size", [0, 4096, 5000, 9000])
def test_put_chunk_size_rejects_a_too_small_envelope(max_envelope_size: int) -> None:
    with pytest.raises(tr.TransferError) as exc:
        tr.put_chunk_size(max_envelope_size)
    message = str(exc.value)
    assert f"Invalid value {max_envelope_size} for max_envelope_size" in message
    needed = int(message.split("expected at least ")[1].split(" ", maxsplit=1)[0])
    # The stated minimum really is the smallest envelope that works.
    assert tr.put_chunk_size(needed) >= tr.MIN_PUT_CHUNK_SIZE
    with pytest.raises(tr.TransferError):
        tr.put_chunk_size(needed - 1)


# --- PUT lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("max_envelope_size", [16384, 153600, 512000])
@pytest.mark.parametrize("file_size", [1, 3, 9999, 100_001])
def test_iter_put_lines_chunks_by_envelope_size(
    tmp_path, max_envelope_size: int, file_size: int
) -> None:
    data = random.Random(file_size).randbytes(file_size)
    source = tmp_path / "src.bin"
    source.write_bytes(data)
    chunk_size = tr.put_chunk_size(max_envelope_size)
    lines = list(tr.iter_put_lines(str(source), chunk_size))
    assert len(lines) == -(-file_size // chunk_size)
    for index, line in enumerate(lines):
        decoded = base64.b64decode(line, validate=True)
        assert len(decoded) == min(chunk_size, file_size - index * chunk_size)
        assert envelope_bytes_for_line(line) + tr.DEFAULT_ENVELOPE_OVERHEAD <= max_envelope_size
        if index < len(lines) - 1:
            assert "=" not in line
    received, result = emulate_put_host([tr.encode_header({"path": "C:\\t\\f"}), *lines])
    assert received == data
    sha1, size = tr.parse_result_line(result)
    tr.verify_sha1("put", str(source), tr.sha1_of_file(str(source)), sha1)
    assert size == file_size


def test_empty_file_put_has_no_chunk_lines(tmp_path) -> None:
    source = tmp_path / "empty"
    source.write_bytes(b"")
    assert list(tr.iter_put_lines(str(source), 3072)) == []
    assert tr.sha1_of_file(str(source)) == EMPTY_SHA1
    received, result = emulate_put_host([tr.encode_header({"path": "C:\\empty"})])
    assert received == b""
    assert tr.parse_result_line(result) == (EMPTY_SHA1, 0)


def test_iter_put_lines_rejects_zero_chunk(tmp_path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="chunk_size must be positive, got 0"):
        list(tr.iter_put_lines(str(tmp_path / "f"), 0))


def test_encode_header_is_base64_utf8_json() -> None:
    path = "C:\\Users\\Jöhn Dœ\\[x] $tmp\\fïle.txt"
    line = tr.encode_header({"path": path, "chunk_size": 524288})
    assert line.isascii() and "\n" not in line
    assert json.loads(base64.b64decode(line).decode("utf-8")) == {
        "path": path,
        "chunk_size": 524288,
    }


# --- FETCH decoding ----------------------------------------------------------------------------


def split_randomly(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 40))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]


@pytest.mark.parametrize("seed", range(8))
def test_fetch_decoder_any_split_points(tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    data = rng.randbytes(rng.randint(1, 50_000))
    output = emulate_fetch_host(data, chunk_size=rng.choice([3, 1000, 4096, 65536]))
    out_path = tmp_path / "fetched"
    decoder = tr.FetchDecoder(str(out_path))
    for piece in split_randomly(output, rng):
        decoder.feed(piece)
    sha1, size = decoder.finish()
    assert out_path.read_bytes() == data
    assert (sha1, size) == (hashlib.sha1(data).hexdigest(), len(data))
    assert decoder.local_sha1 == sha1


def test_fetch_decoder_one_character_at_a_time_and_split_crlf(tmp_path) -> None:
    data = b"hello\r\nworld\x00\xff" * 7
    output = emulate_fetch_host(data, chunk_size=10)
    decoder = tr.FetchDecoder(str(tmp_path / "out"))
    for char in output:
        decoder.feed(char)
    assert decoder.finish() == (hashlib.sha1(data).hexdigest(), len(data))
    assert (tmp_path / "out").read_bytes() == data


def test_fetch_decoder_result_line_without_newline(tmp_path) -> None:
    data = b"abc"
    output = emulate_fetch_host(data, 2).rstrip("\r\n")
    decoder = tr.FetchDecoder(str(tmp_path / "out"))
    decoder.feed(output)
    assert decoder.finish() == (hashlib.sha1(data).hexdigest(), 3)


def test_fetch_decoder_empty_file(tmp_path) -> None:
    out_path = tmp_path / "empty"
    out_path.write_bytes(b"stale content")
    decoder = tr.FetchDecoder(str(out_path))
    decoder.feed(emulate_fetch_host(b"", 1024))
    assert decoder.finish() == (EMPTY_SHA1, 0)
    assert out_path.read_bytes() == b""
    assert decoder.local_sha1 == EMPTY_SHA1


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("", "ended without the host's sha1/size result line after 0 bytes"),
        ("YWJj\r\n", "ended without the host's sha1/size result line after 3 bytes"),
        ("not base64!\r\n", "Fetch output line is not base64: 'not base64!'"),
        ('{"sha1": "xyz", "size": 0}\r\n', "has no valid sha1"),
        (f'{{"sha1": "{EMPTY_SHA1}"}}\r\n', "has no valid size"),
        ("{broken\r\n", "is not JSON"),
        (f'{{"sha1": "{EMPTY_SHA1}", "size": 0}}\r\nYWJj\r\n', "Unexpected output after"),
        (
            f'YWJj\r\n{{"sha1": "{EMPTY_SHA1}", "size": 4}}\r\n',
            "sent 3 bytes but reported a size of 4",
        ),
    ],
)
def test_fetch_decoder_malformed_output(tmp_path, output: str, message: str) -> None:
    decoder = tr.FetchDecoder(str(tmp_path / "out"))
    with pytest.raises(tr.TransferError, match=message.replace("(", r"\(").replace("{", r"\{")):
        decoder.feed(output)
        decoder.finish()
    decoder.close()


def test_fetch_decoder_refuses_feed_after_finish(tmp_path) -> None:
    decoder = tr.FetchDecoder(str(tmp_path / "out"))
    decoder.feed(emulate_fetch_host(b"x", 10))
    decoder.finish()
    with pytest.raises(tr.TransferError, match="already finished"):
        decoder.feed("YWJj\n")


class _ScriptedChannel:
    """A session whose transfer script writes ``output`` and ends with ``rc``."""

    def __init__(self, output: str, rc: int, stderr: str = "") -> None:
        self.output, self.rc, self.stderr = output, rc, stderr

    def transfer_chunk_sizes(self) -> tuple[int, int]:
        return 1024, 1024

    def run_transfer_script(self, script, input_lines, on_output) -> tr.ScriptResult:
        if self.output and on_output is not None:
            on_output(self.output)
        return tr.ScriptResult(self.rc, "", self.stderr)


def test_a_fetch_of_a_missing_remote_file_leaves_the_local_file_as_it_was(tmp_path) -> None:
    """As with ansible.builtin.winrm: the local file is not emptied or removed before the
    host sends anything (before, a missing remote file removed a previously fetched copy)."""
    out_path = tmp_path / "previous"
    out_path.write_bytes(b"previous")
    channel = _ScriptedChannel("", 1, "Cannot find path 'C:\\missing' because it does not exist.")
    with pytest.raises(tr.TransferError, match="exit code 1"):
        tr.fetch_file(channel, "C:\\missing", str(out_path))
    assert out_path.read_bytes() == b"previous"


def test_a_fetch_that_fails_partway_leaves_no_partial_file(tmp_path) -> None:
    out_path = tmp_path / "previous"
    out_path.write_bytes(b"previous")
    channel = _ScriptedChannel("YWJj\r\n", 1, "the host stopped")
    with pytest.raises(tr.TransferError):
        tr.fetch_file(channel, "C:\\data.bin", str(out_path))
    assert not out_path.exists()


def test_a_result_that_claims_bytes_never_sent_leaves_the_local_file(tmp_path) -> None:
    out_path = tmp_path / "previous"
    out_path.write_bytes(b"previous")
    channel = _ScriptedChannel(f'{{"sha1": "{EMPTY_SHA1}", "size": 4}}\r\n', 0)
    with pytest.raises(tr.TransferError, match="sent 0 bytes but reported a size of 4"):
        tr.fetch_file(channel, "C:\\data.bin", str(out_path))
    assert out_path.read_bytes() == b"previous"


def test_a_local_file_that_cannot_be_written_is_named_as_such(tmp_path) -> None:
    """A local failure comes while the host's answer is read: it must not be taken for the
    connection's (a TransferError, which both sessions raise as it is)."""
    out_path = tmp_path / "missing-directory" / "file"
    with pytest.raises(tr.TransferError, match="cannot write it"):
        tr.fetch_file(_ScriptedChannel("YWJj\r\n", 0), "C:\\data.bin", str(out_path))


def test_a_fetch_into_a_directory_says_so(tmp_path) -> None:
    with pytest.raises(tr.TransferError, match="it is a directory"):
        tr.fetch_file(_ScriptedChannel("", 0), "C:\\data.bin", str(tmp_path))


def test_fetch_then_verify_detects_mismatch(tmp_path) -> None:
    data = b"payload"
    output = emulate_fetch_host(data, 4).replace(hashlib.sha1(data).hexdigest(), "0" * 40)
    decoder = tr.FetchDecoder(str(tmp_path / "out"))
    decoder.feed(output)
    remote_sha1, _ = decoder.finish()
    with pytest.raises(tr.TransferError) as exc:
        tr.verify_sha1("fetch", "C:\\data.bin", decoder.local_sha1, remote_sha1)
    assert hashlib.sha1(data).hexdigest() in str(exc.value)
    assert "0" * 40 in str(exc.value)


# --- SHA-1 -------------------------------------------------------------------------------------


def test_verify_sha1_mismatch_names_both_hashes() -> None:
    local = hashlib.sha1(b"a").hexdigest()
    remote = hashlib.sha1(b"b").hexdigest()
    with pytest.raises(tr.TransferError) as exc:
        tr.verify_sha1("put", "C:\\Temp\\x.txt", local, remote.upper())
    assert str(exc.value) == (
        f"put of C:\\Temp\\x.txt failed verification: local SHA-1 {local} "
        f"does not match remote SHA-1 {remote}"
    )


def test_verify_sha1_match_ignores_case() -> None:
    digest = hashlib.sha1(b"a").hexdigest()
    tr.verify_sha1("fetch", "p", digest, digest.upper())


def test_sha1_of_file_matches_hashlib(tmp_path) -> None:
    data = random.Random(1).randbytes(3 * 1024 * 1024 + 17)
    (tmp_path / "f").write_bytes(data)
    assert tr.sha1_of_file(str(tmp_path / "f")) == hashlib.sha1(data).hexdigest()


@pytest.mark.slow
def test_file_over_100_mb_round_trips_through_the_line_protocol(tmp_path) -> None:
    size = 100 * 1024 * 1024 + 12345
    source = tmp_path / "big.bin"
    with open(source, "wb") as handle:
        handle.truncate(size)
        handle.seek(size // 2)
        handle.write(b"middle")
    local_sha1 = tr.sha1_of_file(str(source))
    chunk_size = tr.put_chunk_size(512000)
    # Stream put lines straight into a fetch decoder, as a host would echo them back.
    decoder = tr.FetchDecoder(str(tmp_path / "copy.bin"))
    lines = 0
    for line in tr.iter_put_lines(str(source), chunk_size):
        decoder.feed(line + "\r\n")
        lines += 1
    decoder.feed(json.dumps({"sha1": local_sha1, "size": size}) + "\r\n")
    remote_sha1, remote_size = decoder.finish()
    assert lines == -(-size // chunk_size)
    assert remote_size == size == os.path.getsize(tmp_path / "copy.bin")
    tr.verify_sha1("fetch", str(source), decoder.local_sha1, remote_sha1)


# --- scripts -----------------------------------------------------------------------------------


def test_script_markers() -> None:
    assert tr.PUT_SCRIPT.splitlines()[0] == "# winops.remoting transfer: put v1"
    assert tr.FETCH_SCRIPT.splitlines()[0] == "# winops.remoting transfer: fetch v1"


@pytest.mark.parametrize("script", [tr.PUT_SCRIPT, tr.FETCH_SCRIPT])
def test_powershell_command_line_round_trips(script: str) -> None:
    command = tr.powershell_command_line(script)
    prefix = (
        "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand "
    )
    assert command.startswith(prefix)
    assert base64.b64decode(command[len(prefix) :]).decode("utf-16-le") == script
    # CreateProcess limits a command line to 32767 characters.
    assert len(command) < 32767


@pytest.mark.parametrize("script", [tr.PUT_SCRIPT, tr.FETCH_SCRIPT])
def test_scripts_parse_as_powershell(script: str) -> None:
    tree_sitter = pytest.importorskip("tree_sitter", reason="tree-sitter is in the main venv only")
    grammar = pytest.importorskip("tree_sitter_powershell")
    parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    root = parser.parse(script.encode("utf-8")).root_node
    assert not root.has_error, str(root)


@pytest.mark.parametrize("script", [tr.PUT_SCRIPT, tr.FETCH_SCRIPT])
def test_scripts_stream_and_fail_with_exit_1(script: str) -> None:
    # Facts the protocol relies on, checked in the text since no PowerShell engine is here.
    assert "foreach ($line in $input)" in script
    assert "[System.IO.FileStream]::new(" in script
    assert "TransformBlock(" in script and "TransformFinalBlock(" in script
    assert "ReadAllBytes" not in script and "Get-Content" not in script
    assert "exit 1" in script
    assert 'Write-Output "{""sha1"":""$hash"",""size"":$size}"' in script
