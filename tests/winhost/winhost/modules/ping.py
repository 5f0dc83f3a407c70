"""ansible.windows.win_ping."""

from __future__ import annotations

import typing as t

from winhost.modules import ModuleRun, Option, UnhandledException, register


@register("ansible.windows.win_ping", {"data": Option(default="pong")})
def win_ping(run: ModuleRun) -> dict[str, t.Any]:
    data = run.params["data"]
    if data == "crash":
        # The module's documented way to test failure handling: it throws.
        raise UnhandledException("boom")
    return {"changed": False, "ping": data}
