"""Random files to transfer, with the SHA-1 the tests compare against."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Payload:
    path: Path
    sha1: str
    size: int


def random_file(path: Path, size: int) -> Payload:
    """Write `size` random bytes to `path`, hashing them on the way."""
    digest = hashlib.sha1()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            block = os.urandom(min(remaining, _BLOCK))
            handle.write(block)
            digest.update(block)
            remaining -= len(block)
    return Payload(path, digest.hexdigest(), size)


def sha1_of_file(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
