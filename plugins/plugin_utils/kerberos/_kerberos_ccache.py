"""Reading the MIT FILE credential cache format, to learn whose ticket it holds and until when.

Internal use only: this module is not part of the collection's public API.

Managed Kerberos reuses a ticket across the tasks of a run and must know, without Kerberos
libraries (the kinit backend works without any Python binding), whether the cache still holds
a ticket-granting ticket that outlives the next task. The format is documented by MIT
("ccache file format"): a version, an optional header (version 4), the default principal,
then credentials until the end of the file. Only versions 3 and 4 (big-endian) are read;
anything else is reported as unreadable and the caller simply gets a new ticket.
"""

from __future__ import annotations

import dataclasses
import struct

CONFIG_REALM = "X-CACHECONF:"  # realm of the cache's configuration entries, not tickets


class CcacheFormatError(ValueError):
    """The file is not a FILE credential cache this module can read."""


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
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    try:
        return parse_ccache(data)
    except CcacheFormatError:
        return None
