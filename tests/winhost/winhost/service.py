"""The background server process: every host of a state directory, plus a control socket.

`python -m winhost serve --state-dir DIR` (started by `start`, never by hand) loads the hosts,
opens their listeners and answers JSON requests on the unix socket DIR/control.sock
(one request per connection, one JSON object each way):

  {"op": "ping"}                        -> {"ok": true, "hosts": {...}, "errors": [...]}
  {"op": "state", "host": "win1"|null}            -> {"ok": true, "state": {...}}
  {"op": "fault", "host": "win1", "kind": K, "options": {...}} -> {"ok": true, "fault": {...}}
  {"op": "enroll", "host": "win1", "options": {...}} -> {"ok": true, "certificate": {...}}
  {"op": "stop"}                                  -> {"ok": true}, then the process exits
Errors answer {"ok": false, "error": "..."}.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import socketserver
import threading
import typing as t
from pathlib import Path

from winhost import clock, enrolment, faults, pki
from winhost.host import WinHost
from winhost.state import HostState

CONTROL_SOCKET = "control.sock"
PID_FILE = "winhost.pid"
LOG_FILE = "winhost.log"

log = logging.getLogger(__name__)


class ControlError(RuntimeError):
    """The control socket is missing or answered an error."""


def request(state_dir: Path, payload: dict[str, t.Any], timeout: float = 30.0) -> dict[str, t.Any]:
    """Send one control request to the server of `state_dir` and return its answer."""
    path = state_dir / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except OSError as err:
            raise ControlError(f"winhost is not running for {state_dir} ({path}: {err})") from err
        sock.sendall(json.dumps(payload).encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answer = json.loads(data or b"{}")
    if not answer.get("ok"):
        raise ControlError(answer.get("error") or "winhost answered without a result")
    return answer


class Service:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.hosts: dict[str, WinHost] = {}
        for path in sorted(state_dir.glob("win*/state.json"), key=lambda p: int(p.parent.name[3:])):
            host = WinHost(HostState.load(path.parent))
            self.hosts[host.name] = host
        clock.require_process_offset([h.state.clock_offset_seconds for h in self.hosts.values()])
        # Kerberos is served when a test KDC is named (tests/kdc: `python -m kdc start`); the
        # acceptor needs that realm's krb5.conf, keytabs and domain users.
        kdc_state_dir = os.environ.get("WINHOST_KDC_STATE_DIR")
        if kdc_state_dir:
            from winhost.auth import kerberos

            kerberos.enable_realm(Path(kdc_state_dir), [h.state for h in self.hosts.values()])
        self.stopped = threading.Event()

    def host(self, name: str) -> WinHost:
        host = self.hosts.get(name.lower())
        if host is None:
            raise ControlError(f"host {name!r} is unknown; hosts: {', '.join(self.hosts)}")
        return host

    def answer(self, payload: dict[str, t.Any]) -> dict[str, t.Any]:
        op = payload.get("op")
        if op == "ping":
            return {
                "ok": True,
                "hosts": {n: h.listening() for n, h in self.hosts.items()},
                "errors": [e for h in self.hosts.values() for e in h.listener_errors],
            }
        if op == "state":
            name = payload.get("host")
            if name:
                return {"ok": True, "state": self.host(name).state_json()}
            return {"ok": True, "state": {n: h.state_json() for n, h in self.hosts.items()}}
        if op == "fault":
            host = self.host(str(payload.get("host")))
            fault = faults.inject(host.name, str(payload.get("kind")), **payload.get("options", {}))
            return {"ok": True, "fault": fault.to_json()}
        if op == "enroll":
            host = self.host(str(payload.get("host")))
            return {"ok": True, "certificate": self.enroll(host, payload.get("options", {}))}
        if op == "stop":
            self.stopped.set()
            return {"ok": True}
        raise ControlError(f"unknown control op {op!r}; allowed: ping, state, fault, enroll, stop")

    def enroll(self, host: WinHost, options: dict[str, t.Any]) -> dict[str, t.Any]:
        """What auto-enrolment (or Get-Certificate) leaves in LocalMachine\\My: a certificate the
        test CA issues from a template, with its private key (winhost.enrolment)."""
        unknown = sorted(set(options) - set(enrolment.OPTIONS))
        if unknown:
            raise enrolment.EnrolmentError(
                f"enroll: unknown option(s) {', '.join(unknown)}; allowed: "
                f"{', '.join(enrolment.OPTIONS)}"
            )
        ca = pki.CertificateAuthority.load(
            self.state_dir / "ca" / "ca.pem", self.state_dir / "ca" / "ca.key"
        )
        return enrolment.enroll(host, ca, **options)

    def run(self) -> None:
        for host in self.hosts.values():
            host.boot()
        service = self

        class ControlHandler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    answer = service.answer(json.loads(self.rfile.read() or b"{}"))
                except (ControlError, faults.FaultError, ValueError, TypeError) as err:
                    answer = {"ok": False, "error": str(err)}
                self.wfile.write(json.dumps(answer, ensure_ascii=False).encode())

        socket_path = self.state_dir / CONTROL_SOCKET
        socket_path.unlink(missing_ok=True)
        control = socketserver.ThreadingUnixStreamServer(str(socket_path), ControlHandler)
        control.daemon_threads = True
        os.chmod(socket_path, 0o600)
        threading.Thread(target=control.serve_forever, daemon=True).start()
        signal.signal(signal.SIGTERM, lambda *_: self.stopped.set())
        try:
            self.stopped.wait()
        finally:
            control.shutdown()
            control.server_close()
            socket_path.unlink(missing_ok=True)
            for host in self.hosts.values():
                host.shutdown()
            (self.state_dir / PID_FILE).unlink(missing_ok=True)


def serve(state_dir: Path) -> None:
    clock.sleep_on_the_shifted_clock()
    logging.basicConfig(
        filename=state_dir / LOG_FILE,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    Service(state_dir).run()
