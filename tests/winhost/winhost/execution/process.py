"""Running programs: a worker thread per command, with streaming input and bounded output.

A *program* is a Python callable `program(io: ProgramIO) -> None` that reads input lines, writes
output and sets `io.exit_code`. WinRS commands and PSRP pipelines wrap it in `CommandLineProcess`
and `PipelineProcess` (both implement `api.Process`), which differ only in how input arrives and
how output and errors are returned.
"""

from __future__ import annotations

import base64
import threading
import time
import typing as t

from winhost import api
from winhost.execution.errors import PSError, render_clixml

# Output waiting to be read before a writer blocks: keeps a 50 MB fetch from being held in
# memory at once while the client is slower than the program.
_OUTPUT_HIGH_WATER = 4 * 1024 * 1024


class HostLine(str):
    """Text from Write-Host, which powershell.exe's console host ends with LF where the
    output stream's lines end with CRLF (pypsrp's recordings test_winrs_send.yml and
    test_winrs_extra_opts.yml, Windows Server 2016)."""


class Terminated(Exception):
    """The client signalled terminate (or deleted the shell) while the program ran."""


class ExitRequested(Exception):
    """`exit N` in a script: unwinds the program with the exit code already set."""


class ProgramIO:
    """What a program sees: input lines, output, errors and its exit code."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._in_buffer = ""
        self._in_lines: list[str] = []
        self._in_ended = False
        self._terminated = False
        self._out: list[t.Any] = []
        self._out_size = 0
        self._errors: list[PSError] = []
        self._raw_stderr: list[str] = []
        self.exit_code: int | None = None
        self.finished = False
        # powershell.exe -EncodedCommand writes errors to stderr as CLIXML (WinRS only).
        self.clixml_errors = False
        # A pipeline run through the PowerShell API (PSRP) stops at an unknown command and
        # fails with it; powershell.exe's console host reports it and goes on.
        self.command_not_found_terminates = False
        self.terminating_error: PSError | None = None
        # Called once, when the program first does anything but wait for its first input
        # (reads a line or the end of input, writes, sleeps, exits or returns).
        self.on_first_act: t.Callable[[], None] | None = None
        self._acted = False

    def acted(self) -> None:
        if self._acted:
            return
        self._acted = True
        if self.on_first_act is not None:
            self.on_first_act()

    # -- input -----------------------------------------------------------------------------

    def feed_text(self, text: str, end: bool) -> None:
        """Console input: split into lines on LF, dropping a CR before it."""
        with self._cond:
            self._in_buffer += text
            *complete, self._in_buffer = self._in_buffer.split("\n")
            self._in_lines.extend(line[:-1] if line.endswith("\r") else line for line in complete)
            if end:
                if self._in_buffer:
                    tail = self._in_buffer
                    self._in_lines.append(tail[:-1] if tail.endswith("\r") else tail)
                    self._in_buffer = ""
                self._in_ended = True
            self._cond.notify_all()

    def feed_objects(self, objects: list[t.Any], end: bool) -> None:
        with self._cond:
            self._in_lines.extend(objects)
            if end:
                self._in_ended = True
            self._cond.notify_all()

    def read_line(self) -> t.Any | None:
        """The next input line/object, waiting for it; None once input has ended."""
        with self._cond:
            while not self._in_lines and not self._in_ended and not self._terminated:
                self._cond.wait(1.0)
            if self._terminated:
                raise Terminated()
            self.acted()
            if self._in_lines:
                return self._in_lines.pop(0)
            return None

    def lines(self) -> t.Iterator[t.Any]:
        while (line := self.read_line()) is not None:
            yield line

    # -- output ----------------------------------------------------------------------------

    def write(self, obj: t.Any) -> None:
        """One output object (PSRP) / one line of stdout (WinRS)."""
        size = len(obj) if isinstance(obj, str) else 64
        self.acted()
        with self._cond:
            while self._out_size > _OUTPUT_HIGH_WATER and not self._terminated:
                self._cond.wait(1.0)
            if self._terminated:
                raise Terminated()
            self._out.append(obj)
            self._out_size += size
            self._cond.notify_all()

    def error(self, err: PSError) -> None:
        """A non-terminating error record."""
        self.acted()
        with self._cond:
            self._errors.append(err)
            self._cond.notify_all()

    def write_host(self, text: str) -> None:
        """One line written by Write-Host (the console host ends it with LF, not CRLF)."""
        self.write(HostLine(text))

    def fail(self, err: PSError) -> t.NoReturn:
        """A terminating error: the script stops and the pipeline fails with `err`."""
        self.acted()
        with self._cond:
            self.terminating_error = err
            self._cond.notify_all()
        raise ExitRequested()

    def stderr_line(self, text: str) -> None:
        """Text a native program writes to stderr ($host.UI.WriteErrorLine / cmd.exe)."""
        self.acted()
        with self._cond:
            self._raw_stderr.append(text)
            self._cond.notify_all()

    def exit(self, code: int) -> t.NoReturn:
        self.acted()
        self.exit_code = code
        raise ExitRequested()

    @property
    def had_errors(self) -> bool:
        with self._cond:
            return bool(self._errors)

    # -- consumer side ---------------------------------------------------------------------

    def take(self, timeout: float) -> tuple[list[t.Any], list[PSError], list[str], bool]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not (self._out or self._errors or self._raw_stderr or self.finished):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            out, self._out, self._out_size = self._out, [], 0
            errors, self._errors = self._errors, []
            raw, self._raw_stderr = self._raw_stderr, []
            self._cond.notify_all()
            return out, errors, raw, self.finished

    def terminate(self) -> None:
        with self._cond:
            self._terminated = True
            self._cond.notify_all()

    def mark_finished(self) -> None:
        with self._cond:
            self.finished = True
            self._cond.notify_all()

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (Start-Sleep), ending at once when the process is terminated."""
        self.acted()
        deadline = time.monotonic() + seconds
        with self._cond:
            while not self._terminated:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)
            raise Terminated()


Program = t.Callable[[ProgramIO], None]


def run_program(program: Program, io: ProgramIO) -> None:
    """Run `program` to its end in this thread: its exit code set, its io marked finished."""
    try:
        program(io)
        io.acted()
    except ExitRequested:
        pass
    except Terminated:
        io.exit_code = io.exit_code if io.exit_code is not None else 1
    except Exception as err:  # a bug in an emulation must surface, not hang the client
        io.error(
            PSError(
                message=f"winhost internal error while emulating this command: {type(err).__name__}: {err}",
                error_id="winhost.InternalError",
            )
        )
        io.exit_code = 1
    finally:
        io.mark_finished()


# Programs still running, per host (what a test reads to see that a stopped command stopped).
_RUNNING: dict[str, int] = {}
# Programs that did anything but wait for their first input, per host (what a test reads to
# see that nothing ran twice: a command started ahead and ended unused has run nothing).
_RAN: dict[str, int] = {}
_RUNNING_LOCK = threading.Lock()


def running_programs(host: str) -> int:
    """How many programs started for `host` have not ended yet."""
    with _RUNNING_LOCK:
        return _RUNNING.get(host.lower(), 0)


def programs_run(host: str) -> int:
    """How many programs started for `host` have done anything but wait for their first
    input: ansible-core's module bootstrap reads all its input before it acts, so one ended
    before its input came has run nothing of the module."""
    with _RUNNING_LOCK:
        return _RAN.get(host.lower(), 0)


def _count_run(key: str) -> None:
    with _RUNNING_LOCK:
        _RAN[key] = _RAN.get(key, 0) + 1


def _run_counted(program: Program, io: ProgramIO, host: str) -> None:
    try:
        run_program(program, io)
    finally:
        with _RUNNING_LOCK:
            _RUNNING[host] -= 1


class _BaseProcess:
    def __init__(self, program: Program, name: str, host: str = "") -> None:
        self.io = ProgramIO()
        key = host.lower()
        self.io.on_first_act = lambda: _count_run(key)
        with _RUNNING_LOCK:
            _RUNNING[key] = _RUNNING.get(key, 0) + 1
        self._thread = threading.Thread(
            target=_run_counted,
            args=(program, self.io, key),
            name=f"winhost-exec {name}",
            daemon=True,
        )
        self._had_errors = False
        self._thread.start()

    def terminate(self) -> None:
        self.io.terminate()


class DetachedProcess(_BaseProcess):
    """A process no client reads and no shell owns: it runs until its program ends, whatever
    happens to the command that started it (async_wrapper.ps1's watchdog, which Windows starts
    outside the command's job). It counts among the host's running programs while it runs."""


class CommandLineProcess(_BaseProcess):
    """A WinRS command: stdin bytes in, stdout/stderr bytes and an exit code out."""

    def __init__(self, program: Program, name: str, host: str = "") -> None:
        self._decoder_pending = b""
        super().__init__(program, name, host)

    def send_input(self, data: bytes | list[t.Any], end: bool) -> None:
        if isinstance(data, list):
            raise TypeError("a WinRS command takes stdin bytes, not objects")
        raw = self._decoder_pending + data
        # Keep an incomplete UTF-8 sequence for the next chunk (stdin arrives in pieces).
        cut = len(raw)
        for back in range(1, min(4, len(raw)) + 1):
            byte = raw[-back]
            if byte & 0xC0 == 0x80:
                continue
            if byte & 0x80:
                need = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
                if back < need:
                    cut = len(raw) - back
            break
        if end:
            cut = len(raw)
        self._decoder_pending = raw[cut:]
        self.io.feed_text(raw[:cut].decode("utf-8", errors="replace"), end)

    def read_output(self, timeout: float) -> api.OutputBatch:
        out, errors, raw, finished = self.io.take(timeout)
        stdout = "".join(_console_line(line) for line in out).encode("utf-8")
        if finished and self.io.terminating_error is not None:
            errors.append(self.io.terminating_error)
        stderr = b""
        if errors:
            rendered = [e.render() for e in errors]
            stderr += (
                render_clixml(rendered)
                if self.io.clixml_errors
                else "".join(f"{r}\r\n" for r in rendered).encode()
            )
        if raw:
            stderr += "".join(f"{line}\r\n" for line in raw).encode("utf-8")
        batch = api.OutputBatch(stdout=stdout, stderr=stderr, finished=finished)
        self._had_errors = self._had_errors or bool(errors)
        if finished:
            code = self.io.exit_code
            if code is None:
                code = 1 if self._had_errors else 0
            batch.exit_code = code
        return batch


class PipelineProcess(_BaseProcess):
    """A PSRP pipeline: input objects in, output objects and error records out.

    `exit_code` is set on the final batch only when the script called `exit N` (or the exec
    wrapper's `$host.SetShouldExit(N)`) with N != 0: the shell should report it to the client as
    the host call SetShouldExit (the builtin psrp plugin reads its rc from there)."""

    def send_input(self, data: bytes | list[t.Any], end: bool) -> None:
        if isinstance(data, bytes):
            self.io.feed_text(data.decode("utf-8"), end)
        else:
            self.io.feed_objects([_as_pipeline_string(obj) for obj in data], end)

    def read_output(self, timeout: float) -> api.OutputBatch:
        out, errors, raw, finished = self.io.take(timeout)
        messages = [e.message for e in errors] + raw
        records = [e.record() for e in errors] + [_stderr_record(text) for text in raw]
        terminating = self.io.terminating_error if finished else None
        self._had_errors = self._had_errors or bool(messages) or terminating is not None
        batch = api.OutputBatch(
            objects=[str(o) if isinstance(o, HostLine) else o for o in out],
            errors=messages,
            error_records=records,
            terminating_error=terminating.record() if terminating is not None else None,
            finished=finished,
            had_errors=self._had_errors,
        )
        if finished and self.io.exit_code:
            batch.exit_code = self.io.exit_code
        return batch


def _console_line(line: t.Any) -> str:
    return f"{line}\n" if isinstance(line, HostLine) else f"{line}\r\n"


def _stderr_record(text: str) -> api.ErrorRecordData:
    # Raw stderr text (winhost's transfer and restart emulations) as a Write-Error record.
    return PSError(
        message=text,
        error_id="Microsoft.PowerShell.Commands.WriteErrorException",
        reason="WriteErrorException",
    ).record()


def _as_pipeline_string(obj: t.Any) -> t.Any:
    """Input bound to a [string] parameter: arrays become their items joined by spaces ($OFS),
    bytes become base64 (how pypsrp would have had to send them as text)."""
    if isinstance(obj, list | tuple):
        return " ".join(str(_as_pipeline_string(o)) for o in obj)
    if isinstance(obj, bytes):
        return base64.b64encode(obj).decode()
    return obj
