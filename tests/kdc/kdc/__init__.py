"""A real MIT Kerberos KDC for the tests: realm WINOPS.TEST on loopback, in a private directory.

`KDC.start()` creates a database with `kdb5_util create -s`, adds the domain users and the
`HTTP/`, `WSMAN/` and `host/win<N>.winops.test` service principals per host with `kadmin.local` (a keytab per host),
and runs `krb5kdc` in the foreground on 127.0.0.1:<free port>. Every tool runs with
KRB5_CONFIG and KRB5_KDC_PROFILE naming files in the state directory, never /etc: the
machine's own Kerberos set-up is neither read nor changed.

The client krb5.conf turns DNS and reverse DNS off and maps `.winops.test` to the realm, so
`win1.winops.test` reaches the KDC and the SPN without /etc/hosts entries.

`skewed=True` starts the KDC with a negative clock-skew tolerance: MIT's check
|kdc time - client timestamp| > clockskew then always fires, so the client gets the same
KRB5KRB_AP_ERR_SKEW ("Clock skew too great") that a controller with a wrong clock gets.

The KDC log is the honest external count of tickets handed out: `as_req_count(principal)`
counts the AS-REQ lines that issued a ticket for a principal.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import typing as t
from pathlib import Path

REALM = "WINOPS.TEST"
DOMAIN = "WINOPS"  # the NetBIOS domain name winhost's domain accounts carry
DNS_SUFFIX = "winops.test"


@dataclasses.dataclass(frozen=True)
class DomainUser:
    """A user principal of the realm and the winhost domain account it maps to."""

    name: str
    password: str
    is_admin: bool

    @property
    def principal(self) -> str:
        return f"{self.name}@{REALM}"


# The admin's password has non-ASCII characters on purpose: string-to-key must see UTF-8.
DOMAIN_USERS = (
    DomainUser("ansible-dom", "Dömäin-Pässw0rd-ü1!", is_admin=True),
    DomainUser("operator-dom", "Operätor-Pw-2#", is_admin=False),
)

# HTTP/ is what pywinrm asks for, WSMAN/ our psrp plugin, host/ raw pypsrp and ansible.builtin.psrp
# unless negotiate_service is set; a Windows computer account answers all three.
SERVICES = ("HTTP", "WSMAN", "host")
TOOLS = ("krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist")


class KdcError(RuntimeError):
    """The KDC could not be set up or started; the message says which step failed."""


def host_fqdn(number: int) -> str:
    return f"win{number}.{DNS_SUFFIX}"


def service_principal(number: int, service: str = "HTTP") -> str:
    return f"{service}/{host_fqdn(number)}@{REALM}"


def find_tool(name: str) -> str:
    """Full path of an MIT Kerberos tool (the admin tools live in /usr/sbin)."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    path = shutil.which(name, path=search)
    if path is None:
        raise KdcError(
            f"the MIT Kerberos tool {name!r} is not installed; install the Debian packages "
            "krb5-kdc krb5-admin-server krb5-user (tests/system-packages.txt, `make deps`)"
        )
    return path


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (krb5kdc listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise KdcError("no port free for both TCP and UDP on 127.0.0.1")


def client_krb5_conf(
    port: int, *, clockskew: int | None = None, kdc_port: int | None = None
) -> str:
    """A krb5.conf that knows only our realm, with DNS and reverse DNS off."""
    skew = f" clockskew = {clockskew}\n" if clockskew is not None else ""
    return (
        "[libdefaults]\n"
        f" default_realm = {REALM}\n"
        " dns_lookup_kdc = false\n"
        " dns_lookup_realm = false\n"
        " dns_canonicalize_hostname = false\n"
        " rdns = false\n"
        " forwardable = false\n"
        " udp_preference_limit = 1\n"
        f"{skew}"
        "[realms]\n"
        f" {REALM} = {{\n"
        f"  kdc = 127.0.0.1:{kdc_port or port}\n"
        " }\n"
        "[domain_realm]\n"
        f" .{DNS_SUFFIX} = {REALM}\n"
        f" {DNS_SUFFIX} = {REALM}\n"
    )


class KDC:
    """One krb5kdc process and its files under ``state_dir``."""

    def __init__(
        self,
        state_dir: Path | str,
        hosts: int = 3,
        *,
        first: int = 1,
        skewed: bool = False,
        clockskew: int | None = None,
    ) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.hosts = hosts
        self.first = first
        self.skewed = skewed
        # The seconds by which a ticket may be past its end and still be accepted, by the KDC
        # and the acceptors (MIT's default, like Windows', is 300): a test that lets a ticket
        # expire sets a small one so that it need not wait five minutes.
        self.clockskew = clockskew
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    # --- files -----------------------------------------------------------------------------
    @property
    def krb5_conf(self) -> Path:
        """The client configuration: what KRB5_CONFIG names for kinit, gssapi and krb5."""
        return self.state_dir / "krb5.conf"

    @property
    def kdc_conf(self) -> Path:
        return self.state_dir / "kdc.conf"

    @property
    def server_krb5_conf(self) -> Path:
        """The KDC's own profile (differs from the client's only when skewed)."""
        return self.state_dir / "kdc-krb5.conf"

    @property
    def log_path(self) -> Path:
        return self.state_dir / "kdc.log"

    @property
    def info_path(self) -> Path:
        return self.state_dir / "kdc.json"

    @property
    def users_path(self) -> Path:
        """The domain users with their passwords (0600), for winhost's domain accounts."""
        return self.state_dir / "domain-users.json"

    def keytab(self, number: int) -> Path:
        """The keytab holding HTTP/win<number>.winops.test's keys."""
        return self.state_dir / "keytabs" / f"{host_fqdn(number)}.keytab"

    def environment(self) -> dict[str, str]:
        """Variables that point Kerberos clients and acceptors at this realm's files only."""
        return {
            "KRB5_CONFIG": str(self.krb5_conf),
            "KRB5_KDC_PROFILE": str(self.kdc_conf),
            "KRB5RCACHEDIR": str(self.state_dir / "rcache"),
        }

    def _tool_environment(self, krb5_config: Path | None = None) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"}
        env.update(self.environment())
        env["KRB5_CONFIG"] = str(krb5_config or self.krb5_conf)
        return env

    def _write_files(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        for sub in ("keytabs", "rcache"):
            (self.state_dir / sub).mkdir(exist_ok=True, mode=0o700)
        self.port = free_port()
        self.krb5_conf.write_text(
            client_krb5_conf(self.port, clockskew=self.clockskew), encoding="utf-8"
        )
        self.server_krb5_conf.write_text(
            client_krb5_conf(self.port, clockskew=-1 if self.skewed else self.clockskew),
            encoding="utf-8",
        )
        (self.state_dir / "kadm5.acl").write_text("", encoding="utf-8")
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f" kdc_listen = 127.0.0.1:{self.port}\n"
            f" kdc_tcp_listen = 127.0.0.1:{self.port}\n"
            "[realms]\n"
            f" {REALM} = {{\n"
            f"  database_name = {self.state_dir / 'principal'}\n"
            f"  key_stash_file = {self.state_dir / 'stash'}\n"
            f"  acl_file = {self.state_dir / 'kadm5.acl'}\n"
            "  max_life = 10h\n"
            "  max_renewable_life = 1d\n"
            # Pre-authentication makes the KDC itself check the password and the clock.
            "  default_principal_flags = +preauth\n"
            " }\n"
            "[logging]\n"
            f" kdc = FILE:{self.log_path}\n",
            encoding="utf-8",
        )

    # --- database --------------------------------------------------------------------------
    def kadmin(self, *queries: str) -> str:
        """Run kadmin.local queries, given on stdin so that passwords stay out of argv."""
        script = "".join(f"{query}\n" for query in queries).encode("utf-8")
        result = subprocess.run(
            [find_tool("kadmin.local"), "-r", REALM],
            input=script,
            capture_output=True,
            env=self._tool_environment(),
            check=False,
            timeout=60,
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        # kadmin.local exits 0 even when a query fails; MIT's messages end in "while <step>".
        if result.returncode != 0 or re.search(r"^\S+: .* while ", output, re.MULTILINE):
            raise KdcError(f"kadmin.local failed (exit {result.returncode}): {output.strip()}")
        return output

    def _create_database(self) -> None:
        master = secrets.token_urlsafe(24)
        result = subprocess.run(
            [find_tool("kdb5_util"), "-r", REALM, "create", "-s", "-W"],
            input=f"{master}\n{master}\n".encode(),
            capture_output=True,
            env=self._tool_environment(),
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise KdcError(
                "kdb5_util create failed: " + (result.stderr or result.stdout).decode().strip()
            )
        queries = [f"addprinc -pw {user.password} {user.principal}" for user in DOMAIN_USERS]
        self.kadmin(*queries)
        for number in range(self.first, self.first + self.hosts):
            self.add_host(number)

    def _write_users(self) -> None:
        fd = os.open(self.users_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(
                {
                    "realm": REALM,
                    "domain": DOMAIN,
                    "users": [dataclasses.asdict(user) for user in DOMAIN_USERS],
                },
                handle,
                ensure_ascii=False,
            )

    def add_host(self, number: int) -> Path:
        """Service principals and a keytab for win<number> (beyond the first ``hosts``);
        returns the existing keytab when the host was added before."""
        if self.keytab(number).exists():
            return self.keytab(number)
        queries = []
        for service in SERVICES:
            spn = service_principal(number, service)
            queries += [f"addprinc -randkey {spn}", f"ktadd -k {self.keytab(number)} {spn}"]
        self.kadmin(*queries)
        os.chmod(self.keytab(number), 0o600)
        return self.keytab(number)

    def add_user(self, name: str, password: str) -> str:
        """Add another user principal; returns its full name."""
        principal = f"{name}@{REALM}"
        self.kadmin(f"addprinc -pw {password} {principal}")
        return principal

    # --- process ---------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> KDC:
        for tool in TOOLS:
            find_tool(tool)
        self._write_files()
        self._create_database()
        self._write_users()
        with open(self.state_dir / "krb5kdc.out", "ab") as log:
            self._process = subprocess.Popen(
                [find_tool("krb5kdc"), "-n", "-r", REALM, "-P", str(self.state_dir / "kdc.pid")],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self._tool_environment(self.server_krb5_conf),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = (self.state_dir / "krb5kdc.out").read_text(errors="replace")
                raise KdcError(f"krb5kdc exited with {self._process.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            self.stop()
            raise KdcError(f"krb5kdc did not listen on 127.0.0.1:{self.port} in {timeout}s")
        self.info_path.write_text(
            json.dumps({"pid": self._process.pid, "port": self.port, "realm": REALM}),
            encoding="utf-8",
        )
        return self

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def stop(self) -> None:
        """Stop krb5kdc (started by this object); the files stay for inspection."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> KDC:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- observation -----------------------------------------------------------------------
    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []

    def as_req_count(self, principal: str, *, since: int = 0) -> int:
        """AS-REQs that issued a ticket for ``principal`` (log lines from index ``since``)."""
        return count_issued(self.log_lines()[since:], "AS_REQ", principal)

    def tgs_req_count(self, principal: str, *, since: int = 0) -> int:
        """TGS-REQs that issued a service ticket to ``principal``."""
        return count_issued(self.log_lines()[since:], "TGS_REQ", principal)


_ISSUED = re.compile(
    r"\b(AS_REQ|TGS_REQ) \(.*?\) [^:]+: ISSUE: authtime \d+, etypes \{.*?\}, (\S+) for "
)


def issued_by_principal(lines: t.Iterable[str], kind: str) -> dict[str, int]:
    """{principal: tickets issued} for ``kind`` (AS_REQ / TGS_REQ) in MIT krb5kdc log lines."""
    counts: dict[str, int] = {}
    for line in lines:
        match = _ISSUED.search(line)
        if match and match.group(1) == kind:
            counts[match.group(2)] = counts.get(match.group(2), 0) + 1
    return counts


def log_counts(state_dir: Path, since: int = 0) -> dict[str, t.Any]:
    """What `python -m kdc count` prints: log length and issued tickets per principal."""
    try:
        lines = (Path(state_dir) / "kdc.log").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    return {
        "lines": len(lines),
        "as_req": issued_by_principal(lines[since:], "AS_REQ"),
        "tgs_req": issued_by_principal(lines[since:], "TGS_REQ"),
    }


def count_issued(lines: t.Iterable[str], kind: str, principal: str) -> int:
    """Count MIT krb5kdc log lines of ``kind`` (AS_REQ / TGS_REQ) that ISSUEd to ``principal``."""
    wanted = principal.lower()
    count = 0
    for line in lines:
        match = _ISSUED.search(line)
        if match and match.group(1) == kind and match.group(2).lower() == wanted:
            count += 1
    return count


def stop_pid_file(state_dir: Path) -> bool:
    """Stop a KDC started by `python -m kdc start` (found through its kdc.json)."""
    info_path = Path(state_dir) / "kdc.json"
    if not info_path.exists():
        return False
    pid = json.loads(info_path.read_text(encoding="utf-8"))["pid"]
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    info_path.unlink()
    return True
