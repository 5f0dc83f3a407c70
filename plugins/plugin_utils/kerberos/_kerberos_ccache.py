"""Credential caches: which one is the user's, whose ticket it holds and until when.

Internal use only: this module is not part of the collection's public API.

Managed Kerberos reuses a ticket across the tasks of a run and must know, without Kerberos
libraries (the kinit backend works without any Python binding), whether the cache still holds
a ticket-granting ticket that outlives the next task. The format is documented by MIT
("ccache file format"): a version, an optional header (version 4), the default principal,
then credentials until the end of the file. Only versions 3 and 4 (big-endian) are read;
anything else is reported as unreadable and the caller simply gets a new ticket.

The user's own cache (manual mode, kept sessions without managed kinit) is whichever the
Kerberos library would use for a logon made now, and need not be a file: a KEYRING, KCM or DIR
cache is read through the ``krb5`` Python library when it is importable, and otherwise is
reported as unreadable with the reason, never guessed at.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import struct
import typing as t

CONFIG_REALM = "X-CACHECONF:"  # realm of the cache's configuration entries, not tickets


class CcacheFormatError(ValueError):
    """The file is not a FILE credential cache this module can read."""


class CcacheUnavailable(Exception):
    """A credential cache could not be read; the message names the cache and says why."""


@dataclasses.dataclass(frozen=True)
class Ticket:
    """One credential of the cache: who, for what service, and its validity times (epoch)."""

    client: str
    server: str
    starttime: int
    endtime: int
    renew_till: int
    flags: int


@dataclasses.dataclass(frozen=True)
class CcacheSummary:
    principal: str  # the cache's default principal, "user@REALM"
    tickets: tuple[Ticket, ...]

    def tgt(self) -> Ticket | None:
        """The ticket-granting ticket of the default principal's realm, if present."""
        realm = self.principal.rpartition("@")[2]
        wanted = f"krbtgt/{realm}@{realm}".lower()
        for ticket in self.tickets:
            if ticket.server.lower() == wanted and ticket.client.lower() == self.principal.lower():
                return ticket
        return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._offset = 0

    @property
    def at_end(self) -> bool:
        return self._offset >= len(self._data)

    def take(self, size: int) -> bytes:
        end = self._offset + size
        if size < 0 or end > len(self._data):
            raise CcacheFormatError(f"truncated at byte {self._offset} (wanted {size} more)")
        chunk = self._data[self._offset : end]
        self._offset = end
        return chunk

    def number(self, fmt: str) -> int:
        value: int = struct.unpack(f">{fmt}", self.take(struct.calcsize(fmt)))[0]
        return value

    def counted(self) -> bytes:
        return self.take(self.number("I"))

    def principal(self) -> str:
        self.number("I")  # name type
        count = self.number("I")
        realm = self.counted().decode("utf-8", "replace")
        parts = [self.counted().decode("utf-8", "replace") for _index in range(count)]
        return f"{'/'.join(parts)}@{realm}"


def parse_ccache(data: bytes) -> CcacheSummary:
    """Parse a FILE ccache's bytes; raises CcacheFormatError when they are not one."""
    reader = _Reader(data)
    version = reader.number("H")
    if version not in (0x0503, 0x0504):
        raise CcacheFormatError(f"unsupported ccache version 0x{version:04x}")
    if version == 0x0504:
        reader.take(reader.number("H"))  # header tags (time offset); not needed here
    principal = reader.principal()
    tickets: list[Ticket] = []
    while not reader.at_end:
        client = reader.principal()
        server = reader.principal()
        reader.number("H")  # key enctype
        if version == 0x0503:
            reader.number("H")  # version 3 repeats the enctype
        reader.counted()  # session key
        _authtime, starttime, endtime, renew_till = (reader.number("I") for _field in range(4))
        reader.take(1)  # is_skey
        flags = reader.number("I")
        for _address in range(reader.number("I")):  # addresses
            reader.number("H")
            reader.counted()
        for _entry in range(reader.number("I")):  # authorization data
            reader.number("H")
            reader.counted()
        reader.counted()  # ticket
        reader.counted()  # second ticket
        if not server.endswith(f"@{CONFIG_REALM}"):
            tickets.append(Ticket(client, server, starttime, endtime, renew_till, flags))
    return CcacheSummary(principal, tuple(tickets))


def read_ccache(path: str) -> CcacheSummary | None:
    """The summary of the FILE ccache at ``path``, or None when it is missing or unreadable."""
    try:
        return load_ccache(f"FILE:{path}")
    except CcacheUnavailable:
        return None


def krb5_module() -> t.Any:
    """The ``krb5`` Python library, or None when it is not installed (it is optional)."""
    try:
        return importlib.import_module("krb5")
    except ImportError:
        return None


def default_ccache_name() -> str:
    """The name (``TYPE:residual``) of the credential cache a Kerberos logon made now would
    use when nobody points it elsewhere: the user's own cache, as the library resolves it.

    MIT looks at KRB5CCNAME, then krb5.conf's ``default_ccache_name`` (with its %{uid}-style
    expansions, includes and KRB5_CONFIG), then its compiled-in default; only the library
    itself applies all of that exactly, so it is asked whenever it is installed.
    """
    krb5 = krb5_module()
    if krb5 is not None:
        try:
            # A new context on every call: a context remembers the name it resolved first,
            # and KRB5CCNAME changes within a process (ccache_environment).
            name: bytes = krb5.cc_default_name(krb5.init_context())
            return os.fsdecode(name)
        except krb5.Krb5Error:
            pass  # krb5.conf unparsable: no logon can work; name something to report
    # Without the library, krb5.conf's default_ccache_name is not expanded here (a partial
    # copy of MIT's expansion would name a wrong cache with confidence): KRB5CCNAME, else the
    # compiled-in default of MIT builds. Where krb5.conf names another cache this one is
    # usually missing, which callers report as such ("cannot read ... FILE:/tmp/krb5cc_N").
    return os.environ.get("KRB5CCNAME") or f"FILE:/tmp/krb5cc_{os.getuid()}"


def load_ccache(name: str) -> CcacheSummary:
    """The summary of the credential cache ``name`` (``TYPE:residual``; no type is a file).

    FILE caches are parsed here; any other type only through the krb5 library. Raises
    CcacheUnavailable with the cache's name and the reason when it cannot be read.
    """
    kind, colon, residual = name.partition(":")
    if not colon or kind.upper() == "FILE":
        path = residual if colon else name
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError as err:
            raise CcacheUnavailable(
                f"cannot read the ticket cache {name}: {err.strerror or err}"
            ) from None
        try:
            return parse_ccache(data)
        except CcacheFormatError as err:
            raise CcacheUnavailable(
                f"{name} is not a ticket cache this collection reads: {err}"
            ) from None
    krb5 = krb5_module()
    if krb5 is None:
        raise CcacheUnavailable(
            f"the ticket cache {name} is a {kind} cache, which only the krb5 Python library "
            "reads, and it is not installed (pip install krb5)"
        )
    return _load_with_library(krb5, name)


def _load_with_library(krb5: t.Any, name: str) -> CcacheSummary:
    def text(principal: t.Any) -> str:
        return os.fsdecode(principal.name)

    try:
        cache = krb5.cc_resolve(krb5.init_context(), os.fsencode(name))
        principal = text(cache.principal)
        tickets = tuple(
            Ticket(
                text(creds.client),
                text(creds.server),
                creds.times.starttime,
                creds.times.endtime,
                creds.times.renew_till,
                creds.ticket_flags_raw,
            )
            for creds in cache
        )
    except krb5.Krb5Error as err:
        raise CcacheUnavailable(f"cannot read the ticket cache {name}: {err}") from None
    return CcacheSummary(
        principal,
        tuple(ticket for ticket in tickets if not ticket.server.endswith(f"@{CONFIG_REALM}")),
    )
