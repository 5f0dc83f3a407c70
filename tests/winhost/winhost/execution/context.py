"""Who a command runs as and what it sees: profile directories, environment, current directory."""

from __future__ import annotations

import dataclasses
import typing as t

from winhost import api
from winhost.execution.sandbox import Sandbox, WindowsPath, expand_environment

SYSTEM_PROFILE = "C:\\Windows\\System32\\config\\systemprofile"

# The directories of a fresh Windows Server install that Ansible relies on.
BASE_TREE = (
    "C:\\Windows\\Temp",
    "C:\\Windows\\System32\\config\\systemprofile\\AppData\\Local\\Temp",
    "C:\\Program Files",
    "C:\\Program Files (x86)",
    "C:\\ProgramData",
    "C:\\Users\\Public",
    "C:\\Users\\Default",
)


def is_system(principal: api.Principal) -> bool:
    return principal.domain.upper() == "NT AUTHORITY" and principal.username.upper() == "SYSTEM"


def system_principal(auth_method: str) -> api.Principal:
    return api.Principal(
        username="SYSTEM", domain="NT AUTHORITY", auth_method=auth_method, is_admin=True
    )


@dataclasses.dataclass
class ExecContext:
    """The state of one running command: host, effective user, sandbox, environment, cwd."""

    host: api.HostView
    principal: api.Principal
    sandbox: Sandbox
    env: dict[str, str]
    cwd: str

    @classmethod
    def for_principal(cls, host: api.HostView, principal: api.Principal) -> ExecContext:
        """A fresh logon: the profile is created on first use, as Windows does."""
        sandbox = Sandbox(host.fs_root)
        env = _environment(host, principal)
        sandbox.ensure_tree((*BASE_TREE, env["USERPROFILE"], env["TEMP"], env["APPDATA"]))
        # WinRM starts commands in the user's profile directory; SYSTEM processes (become)
        # start in %SystemRoot% (the become wrapper passes it as the working directory).
        cwd = "C:\\Windows" if is_system(principal) else env["USERPROFILE"]
        return cls(host=host, principal=principal, sandbox=sandbox, env=env, cwd=cwd)

    def resolve(self, path: str) -> WindowsPath:
        return self.sandbox.resolve(path, self.cwd)

    def expand(self, text: str) -> str:
        return expand_environment(text, self.env)

    @property
    def user_id(self) -> str:
        """$env:USERNAME: SYSTEM shows as the computer account "WIN1$"."""
        return self.env["USERNAME"]

    @property
    def sid(self) -> str:
        return self.host.account_sid(self.principal)


def _environment(host: api.HostView, principal: api.Principal) -> dict[str, str]:
    if is_system(principal):
        profile = SYSTEM_PROFILE
        username = f"{host.computer_name}$"
        user_domain = "WORKGROUP"
        temp = "C:\\Windows\\TEMP"
    else:
        profile = f"C:\\Users\\{principal.username}"
        username = principal.username
        user_domain = principal.domain
        temp = f"{profile}\\AppData\\Local\\Temp"
    env: dict[str, str] = {
        "ALLUSERSPROFILE": "C:\\ProgramData",
        "APPDATA": f"{profile}\\AppData\\Roaming",
        "CommonProgramFiles": "C:\\Program Files\\Common Files",
        "COMPUTERNAME": host.computer_name,
        "ComSpec": "C:\\Windows\\system32\\cmd.exe",
        "HOMEDRIVE": "C:",
        "HOMEPATH": profile[2:],
        "LOCALAPPDATA": f"{profile}\\AppData\\Local",
        "NUMBER_OF_PROCESSORS": str(host.facts().get("processor_vcpus", 2)),
        "OS": "Windows_NT",
        "Path": "C:\\Windows\\system32;C:\\Windows;C:\\Windows\\System32\\Wbem;"
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\",
        "PATHEXT": ".COM;.EXE;.BAT;.CMD;.VBS;.VBE;.JS;.JSE;.WSF;.WSH;.MSC;.CPL",
        "PROCESSOR_ARCHITECTURE": "AMD64",
        "ProgramData": "C:\\ProgramData",
        "ProgramFiles": "C:\\Program Files",
        "ProgramFiles(x86)": "C:\\Program Files (x86)",
        "PSModulePath": f"{profile}\\Documents\\WindowsPowerShell\\Modules;"
        "C:\\Program Files\\WindowsPowerShell\\Modules;"
        "C:\\Windows\\system32\\WindowsPowerShell\\v1.0\\Modules",
        "PUBLIC": "C:\\Users\\Public",
        "SystemDrive": "C:",
        "SystemRoot": "C:\\Windows",
        "TEMP": temp,
        "TMP": temp,
        "USERDOMAIN": user_domain,
        "USERNAME": username,
        "USERPROFILE": profile,
        "windir": "C:\\Windows",
    }
    return env


def expand_user(ctx: ExecContext, path: str) -> str:
    """~ and ~\\x as Ansible's expand-user script resolves them (the user's profile)."""
    profile = ctx.env["USERPROFILE"]
    if path == "~":
        return profile
    if path.startswith(("~\\", "~/")):
        return profile + "\\" + path[2:]
    return path


def lookup_env(env: t.Mapping[str, str], name: str) -> str | None:
    folded = name.casefold()
    for key, value in env.items():
        if key.casefold() == folded:
            return value
    return None
