"""PowerShell we ship against what Windows PowerShell 5.1 itself does, read from its sources.

No PowerShell engine runs here, so these read the files. Each rule names the source that makes
it a rule.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_powershell_secure_strings import _commands
from test_powershell_syntax import REPO, powershell_files

FILES = powershell_files()


def _ids(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# X509Chain, X509Store and X509Certificate implement IDisposable only from .NET Framework 4.6
# ("in previous versions ... the Dispose method does not exist": learn.microsoft.com, X509Chain.
# Dispose); Windows PowerShell 5.1 needs only 4.5.2 (WMF 5.1 install notes), so Server 2012 R2
# may run us on 4.5.2, where the call throws.
X509_NEW = re.compile(
    r"(\$\w+)\s*=\s*(?:\[System\.Security\.Cryptography\.X509Certificates\.)?"
    r"\[?(?:X509Chain|X509Store|X509Certificate2?)\]::new\(",
    re.I,
)


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_no_dispose_on_what_dotnet_4_5_cannot_dispose(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    variables = {m.group(1) for m in X509_NEW.finditer(source)}
    called = [v for v in variables if re.search(re.escape(v) + r"\.Dispose\(", source, re.I)]
    assert not called, f"{_ids(path)}: Dispose() on {called}"


def test_the_dispose_rule_finds_the_call() -> None:
    source = (
        "$chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()\n"
        "$chain.Dispose()\n"
    )
    variables = {m.group(1) for m in X509_NEW.finditer(source)}
    assert variables == {"$chain"}


# New-WSManInstance builds its request by pasting each -ValueSet value into the XML as it is
# (PowerShell src/Microsoft.WSMan.Management/WsManHelper.cs, ProcessInput, case "new"; the
# "set" case assigns InnerText, which escapes). A value with & or < breaks the request, and an
# entity in it (a password holding "&amp;") is stored decoded: another value.
NEW_WSMAN = [
    (path, line, arguments)
    for path in FILES
    for line, name, arguments in _commands(path.read_bytes())
    if name.lower() == "new-wsmaninstance"
]


def test_there_are_wsman_creates_to_check() -> None:
    assert {_ids(path) for path, _, _ in NEW_WSMAN} >= {
        "plugins/module_utils/_WSManConfig.psm1",
        "extensions/bootstrap/Enable-WinopsRemoting.ps1",
    }


def test_modules_create_wsman_instances_through_the_one_wrapper() -> None:
    # The escaping lives once, in _WSManConfig's Set-WSManConfigInstance; the bootstrap script
    # runs on its own, without module_utils, and keeps its own escaped create (checked below).
    direct = sorted(
        f"{_ids(path)}:{line}" for path, line, _ in NEW_WSMAN if path.parent.name == "modules"
    )
    assert not direct, f"call Set-WSManConfigInstance -New instead of New-WSManInstance: {direct}"


@pytest.mark.parametrize(
    ("path", "line", "arguments"), NEW_WSMAN, ids=[f"{_ids(p)}:{n}" for p, n, _ in NEW_WSMAN]
)
def test_new_wsman_instance_gets_escaped_values(
    path: Path, line: int, arguments: list[str]
) -> None:
    lowered = [a.lower() for a in arguments]
    value_set = arguments[lowered.index("-valueset") + 1]
    if value_set.startswith("@{"):
        # A literal hashtable: only constants and numbers, nothing a user or a certificate wrote.
        assert re.fullmatch(r"@\{[^$]*(\[string\]\$\w*Port[^$]*)*\}", value_set), value_set
        return
    source = path.read_text(encoding="utf-8")
    escaped = (
        re.escape(value_set) + r"\[\$\w+\]\s*=\s*\[System\.Security\.SecurityElement\]::Escape\("
    )
    assert re.search(escaped, source), (
        f"{_ids(path)}:{line}: New-WSManInstance -ValueSet {value_set} is not built with "
        "[System.Security.SecurityElement]::Escape"
    )


# -Name of the NetFirewallRule cmdlets that find rules accepts wildcards ("Wildcard characters
# are accepted", MicrosoftDocs/windows-powershell-docs docset/winserver2022-ps/NetSecurity/
# Get-, Set-, Remove-, Disable-NetFirewallRule.md); NetworkingDsc's DSC_Firewall escapes [, ]
# and * before each call. A rule named with them would be missed or match others.
FIREWALL_BY_NAME = [
    (path, line, arguments)
    for path in FILES
    for line, name, arguments in _commands(path.read_bytes())
    if re.fullmatch(r"(get|set|remove|disable|enable)-netfirewallrule", name.lower())
    and "-name" in [a.lower() for a in arguments]
]


def test_there_are_firewall_rules_found_by_name() -> None:
    assert {_ids(path) for path, _, _ in FIREWALL_BY_NAME} >= {
        "plugins/modules/win_winrm_firewall.ps1",
        "extensions/bootstrap/Enable-WinopsRemoting.ps1",
    }


@pytest.mark.parametrize(
    ("path", "line", "arguments"),
    FIREWALL_BY_NAME,
    ids=[f"{_ids(p)}:{n}" for p, n, _ in FIREWALL_BY_NAME],
)
def test_a_firewall_rule_name_is_taken_literally(
    path: Path, line: int, arguments: list[str]
) -> None:
    name = arguments[[a.lower() for a in arguments].index("-name") + 1]
    assert name.startswith("(ConvertTo-RuleNameLiteral "), f"{_ids(path)}:{line}: -Name {name}"


# A module gets a module_util's functions only through its #AnsibleRequires line (Ansible's
# PowerShell module wrapper imports the .psm1 files a module names and no others); without it the
# call fails on Windows with "not recognized as the name of a cmdlet", which winhost, emulating
# the modules in Python, cannot see.
MODULE_UTILS = sorted((REPO / "plugins" / "module_utils").glob("*.psm1"))
EXPORTED = re.compile(r"^Export-ModuleMember -Function (.+)$", re.M)


def _exported_functions(util: Path) -> list[str]:
    declared = EXPORTED.search(util.read_text(encoding="utf-8"))
    assert declared, f"{_ids(util)} exports no function"
    return re.findall(r"'([\w-]+)'", declared.group(1))


def test_module_utils_export_their_functions() -> None:
    assert {util.stem for util in MODULE_UTILS} >= {"_WinRMConnection", "_WSManConfig"}
    assert "Set-WSManConfigInstance" in _exported_functions(
        REPO / "plugins" / "module_utils" / "_WSManConfig.psm1"
    )


@pytest.mark.parametrize("util", MODULE_UTILS, ids=_ids)
def test_a_module_calling_a_module_util_requires_it(util: Path) -> None:
    requires = (
        "#AnsibleRequires -PowerShell "
        f"ansible_collections.winops.remoting.plugins.module_utils.{util.stem}"
    )
    functions = {name.lower() for name in _exported_functions(util)}
    missing = []
    for path in FILES:
        if path.parent.name != "modules":
            continue
        called = {name.lower() for _, name, _ in _commands(path.read_bytes())} & functions
        if called and requires not in path.read_text(encoding="utf-8").splitlines():
            missing.append(f"{_ids(path)} calls {sorted(called)}")
    assert not missing, f"without '{requires}': {missing}"
