"""The benchmark's floor: a connection that answers every command with win_ping's result.

`benchmarks/run.py` runs the ping and fan-out workloads through it as well. It opens nothing
and sends nothing, so its times are what `ansible-playbook` itself spends on those workloads
(start-up, templating, forking workers, building each PowerShell module): no connection plugin
can take less. Divided by a builtin plugin's time, it is the lowest ratio any plugin could
show against that figure. Only for that: any module but win_ping would get a wrong answer.
"""

from __future__ import annotations

import typing as t

from ansible.plugins.connection import ConnectionBase

DOCUMENTATION = """
name: answer_ping
short_description: Answers every command with win_ping's result, without a host
description:
  - The floor of winops.remoting's benchmark (benchmarks/run.py); not for any other use.
author:
  - winops.remoting developers
"""

_PING_RESULT = b'{"changed": false, "ping": "pong"}\r\n'


class Connection(ConnectionBase):
    transport = "answer_ping"
    has_pipelining = True
    # as the winrm and psrp plugins: every module is pipelined, nothing is put first
    always_pipeline_modules = True
    module_implementation_preferences = (".ps1", ".exe", "")
    allow_executable = False

    def _connect(self) -> Connection:
        self._connected = True
        return self

    def exec_command(
        self, cmd: str, in_data: bytes | None = None, sudoable: bool = True
    ) -> tuple[int, bytes, bytes]:
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        return 0, _PING_RESULT, b""

    def put_file(self, in_path: str, out_path: str) -> t.NoReturn:
        raise NotImplementedError("the benchmark's floor connection transfers nothing")

    def fetch_file(self, in_path: str, out_path: str) -> t.NoReturn:
        raise NotImplementedError("the benchmark's floor connection transfers nothing")

    def close(self) -> None:
        self._connected = False
