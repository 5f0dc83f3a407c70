"""Managed Kerberos tickets for the connection plugins (kinit_mode: managed).

Internal use only: this module is not part of the collection's public API.

A ticket is obtained into a private credential cache (a FILE ccache in a 0700 temporary
directory) that the plugin points KRB5CCNAME at while it authenticates, and removes when the
connection closes. The password only ever travels on kinit's stdin.

Backends obtain tickets; today there is one, ``KinitBackend`` (the kinit program as a child
process, like the builtin plugins). An in-process backend (the krb5 Python library) and a cache
of tickets per principal can be added beside it: both only need to produce a CredentialCache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
import typing as t

from ansible.errors import AnsibleConnectionFailure

from ansible_collections.winops.remoting.plugins.plugin_utils._redact import redact

DEFAULT_KINIT_TIMEOUT = 60.0


class KerberosError(AnsibleConnectionFailure):
    """A Kerberos ticket could not be obtained."""


@dataclasses.dataclass
class KinitRequest:
    """What to ask the KDC for, and how to run kinit.

    ``kinit_args`` replaces the default arguments when given (``-f`` is then not added even
    when ``forwardable`` is set, as with the builtin plugins). ``env_vars`` holds the variables
    named by kinit_env_vars, already read from the controller's environment.
    """

    principal: str
    password: str
    kinit_cmd: str = "kinit"
    kinit_args: list[str] | None = None
    env_vars: dict[str, str] = dataclasses.field(default_factory=dict)
    forwardable: bool = False
    timeout: float = DEFAULT_KINIT_TIMEOUT

    def __repr__(self) -> str:
        # The dataclass default would print the password.
        return f"KinitRequest(principal={self.principal!r}, kinit_cmd={self.kinit_cmd!r})"


class CredentialCache:
    """A FILE credential cache inside a private directory that only this user can enter."""

    def __init__(self) -> None:
        # mkdtemp creates the directory with mode 0700.
        self.directory = tempfile.mkdtemp(prefix="winops-krb5-")
        self.path = os.path.join(self.directory, "ccache")

    @property
    def name(self) -> str:
        """The cache name as Kerberos libraries expect it in KRB5CCNAME."""
        return f"FILE:{self.path}"

    def environment(self) -> dict[str, str]:
        """Environment entries that make Kerberos libraries and tools use this cache."""
        return {"KRB5CCNAME": self.name}

    def remove(self) -> None:
        """Delete the cache and its directory; safe to call more than once."""
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> CredentialCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


class TicketBackend(t.Protocol):
    """Something that turns a KinitRequest into a CredentialCache holding a ticket."""

    def acquire(self, request: KinitRequest) -> CredentialCache: ...


class KinitBackend:
    """Obtains tickets by running the kinit program with the password on its stdin."""

    def command_line(self, request: KinitRequest) -> list[str]:
        """kinit's argv: the command, the arguments (given or default) and the principal."""
        if request.kinit_args is not None:
            arguments = list(request.kinit_args)
        else:
            arguments = ["-f"] if request.forwardable else []
        return [request.kinit_cmd, *arguments, request.principal]

    def environment(self, request: KinitRequest, cache: CredentialCache) -> dict[str, str]:
        """kinit's whole environment: PATH, the private cache and the requested variables."""
        env = dict(request.env_vars)
        env["PATH"] = os.environ.get("PATH", os.defpath)
        env.update(cache.environment())
        return env

    def acquire(self, request: KinitRequest) -> CredentialCache:
        """Run kinit into a new private cache; remove the cache again if kinit fails."""
        cache = CredentialCache()
        try:
            self._run_kinit(request, cache)
        except BaseException:
            cache.remove()
            raise
        return cache

    def _run_kinit(self, request: KinitRequest, cache: CredentialCache) -> None:
        argv = self.command_line(request)
        secrets = [request.password]
        try:
            # A new session has no controlling terminal, so kinit reads the password from
            # stdin instead of prompting on the tty (macOS kinit does that otherwise).
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.environment(request, cache),
                start_new_session=True,
            )
        except OSError as err:
            raise KerberosError(
                f"Kerberos: could not run kinit_cmd {request.kinit_cmd!r} for principal "
                f"{request.principal}: {redact(str(err), secrets)}; install the Kerberos client "
                f"tools (krb5-user / krb5-workstation) or set the kinit_cmd option to its path"
            ) from err
        try:
            stdout, stderr = process.communicate(
                request.password.encode("utf-8") + b"\n", timeout=request.timeout
            )
        except subprocess.TimeoutExpired as err:
            process.kill()
            process.communicate()
            raise KerberosError(
                f"Kerberos: kinit for principal {request.principal} did not finish within "
                f"{request.timeout:g} seconds"
            ) from err
        if process.returncode != 0:
            output = (stderr or stdout).decode("utf-8", "replace").strip()
            raise KerberosError(
                f"Kerberos: kinit failed for principal {request.principal} "
                f"(exit code {process.returncode}): {redact(output, secrets)}"
            )


def acquire_ticket(request: KinitRequest, backend: TicketBackend | None = None) -> CredentialCache:
    """Obtain a ticket for ``request.principal`` into a new private credential cache.

    Raises KerberosError with kinit's own message (password redacted) on failure. The caller
    owns the returned cache and calls ``remove()`` when the connection closes.
    """
    return (backend or KinitBackend()).acquire(request)


@contextlib.contextmanager
def ccache_environment(cache: CredentialCache | None) -> t.Iterator[None]:
    """Point KRB5CCNAME at ``cache`` for the duration of the block, then restore it.

    With ``cache`` None (kinit_mode manual, or no Kerberos) the environment is left alone.
    """
    if cache is None:
        yield
        return
    previous = os.environ.get("KRB5CCNAME")
    os.environ["KRB5CCNAME"] = cache.name
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("KRB5CCNAME", None)
        else:
            os.environ["KRB5CCNAME"] = previous
