"""Enable-WinopsRemoting.ps1 writes what the harden playbook's roles write with their defaults.

docs/hardening.md promises that winops.remoting.setup and harden find nothing to change after
the bootstrap script. The brownfield matrix proves it for the `bootstrap` winhost profile, which
is read from the script by hand; this test keeps the script's own copies of the role's values
(it runs alone on a host, so it cannot share code with the collection) equal to the role's and
the module's, so that a change on one side without the other fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (REPO / "extensions" / "bootstrap" / "Enable-WinopsRemoting.ps1").read_text()
HARDENING = REPO / "roles" / "winrm_hardening"


def script_string(variable: str) -> str:
    """The single-quoted string a script-level `$variable = '...'` assigns."""
    match = re.search(rf"^\${variable} = '(?P<value>[^']*)'$", SCRIPT, re.MULTILINE)
    assert match, f"${variable} is not assigned a string in the bootstrap script"
    return match.group("value")


def hardening_task(name: str) -> dict[str, object]:
    tasks = yaml.safe_load((HARDENING / "tasks" / "main.yml").read_text())
    found = [task for task in tasks if task.get("name") == name]
    assert len(found) == 1, f"winrm_hardening has no single task named {name!r}"
    return found[0]


def test_remoting_descriptor_audit_part_is_the_modules() -> None:
    module = (REPO / "plugins" / "modules" / "win_psremoting_access.ps1").read_text()
    match = re.search(r"^\$auditPart = '(?P<value>[^']*)'$", module, re.MULTILINE)
    assert match, "win_psremoting_access.ps1 no longer assigns $auditPart"
    assert script_string("remotingAuditPart") == match.group("value")


def test_remoting_restriction_matches_the_roles_defaults() -> None:
    """The script writes win_psremoting_access's exact descriptor with generic all (GA) on
    every configuration ('*') and RootSDDL: the role's defaults."""
    defaults = yaml.safe_load((HARDENING / "defaults" / "main.yml").read_text())
    assert defaults["winrm_hardening_remoting_access"] == "full"
    assert defaults["winrm_hardening_remoting_configurations"] == ["*"]
    assert defaults["winrm_hardening_restrict_root_sddl"] is True
    assert '"(A;;GA;;;$_)"' in SCRIPT
    assert "Get-PSSessionConfiguration -Name '*'" in SCRIPT
    assert '"O:NSG:BAD:P$aces$remotingAuditPart"' in SCRIPT


def test_script_block_logging_values_are_the_roles() -> None:
    variables = yaml.safe_load((HARDENING / "vars" / "main.yml").read_text())
    defaults = yaml.safe_load((HARDENING / "defaults" / "main.yml").read_text())
    assert script_string("powerShellPolicy") == variables["__winrm_hardening_powershell_policy"]
    assert defaults["winrm_hardening_script_block_logging"] is True
    assert defaults["winrm_hardening_script_block_invocation_logging"] is False
    assert defaults["winrm_hardening_module_logging"] is False
    written = dict(
        re.findall(r"@\{ Name = '(\w+)'; Value = (\d+) \}", SCRIPT)  # Set-Logging's list
    )
    logging = hardening_task("Turn on PowerShell script block logging")[
        "ansible.windows.win_regedit"
    ]
    invocation = hardening_task("Set PowerShell script block invocation logging")[
        "ansible.windows.win_regedit"
    ]
    assert isinstance(logging, dict) and isinstance(invocation, dict)
    assert logging["path"].endswith("\\ScriptBlockLogging") and logging["type"] == "dword"
    assert written == {
        logging["name"]: str(logging["data"]),
        invocation["name"]: "0",  # the role's default (invocation logging false) writes 0
    }


def test_winrm_operational_log_is_the_roles() -> None:
    task = hardening_task("Make sure the WinRM operational event log is enabled")
    channel = task["winops.remoting.win_event_log_channel"]
    assert isinstance(channel, dict)
    assert script_string("winrmOperationalLog") == channel["name"]


def test_client_settings_are_the_roles() -> None:
    task = hardening_task("Switch Basic and unencrypted traffic off for the WinRM client")
    service = task["winops.remoting.win_winrm_service"]
    assert isinstance(service, dict)
    assert service["client"] == {"auth_basic": False, "allow_unencrypted": False}
    assert "-Section Client -Path 'Auth\\Basic' -Value 'false'" in SCRIPT
    assert "-Section Client -Path 'AllowUnencrypted' -Value 'false'" in SCRIPT


def test_firewall_local_address_is_derived_as_the_role_derives_it() -> None:
    """The rule gets LocalAddress when it is made and when it is updated, from
    -FirewallLocalAddress or, as the role's __winrm_listener_firewall_local_scope, Any when a
    listener is not 'IP:' ('*' or 'MAC:'), else the IP: addresses without an IPv6 zone."""
    variables = yaml.safe_load(
        (REPO / "roles" / "winrm_listener" / "vars" / "main.yml").read_text()
    )
    role_scope = variables["__winrm_listener_firewall_local_scope"]
    assert "reject('match', '^IP:')" in role_scope and "['Any']" in role_scope
    assert "'^IP:([^%]+)(%.*)?$'" in role_scope
    assert "Where-Object { $_ -notmatch '^IP:' }" in SCRIPT
    assert "return @('Any')" in SCRIPT
    assert "($_.Substring(3) -split '%')[0]" in SCRIPT
    assert "LocalAddress = $LocalAddress" in SCRIPT  # New-NetFirewallRule's parameters
    assert "-RemoteAddress $ControllerAddress -LocalAddress $LocalAddress" in SCRIPT  # Set-
    assert "Set-HttpsFirewallRule -LocalAddress $ruleLocalAddress" in SCRIPT
    # Checked with the listener addresses, before anything changes.
    assert SCRIPT.index("Assert-FirewallLocalAddress -Address") < SCRIPT.index(
        "Enable-WinRMService\n"
    )


def test_script_runs_only_under_windows_powershell() -> None:
    """PowerShell 7 lists and changes only its own session configurations (PowerShell's
    CustomShellCommands.cs filters them by edition): the script would leave Microsoft.PowerShell
    open while saying it restricted it, and run Enable-PSRemoting again on every run."""
    assert re.search(r"^#Requires -PSEdition Desktop$", SCRIPT, re.MULTILINE)


def test_listeners_with_a_source_are_left_out_and_reported() -> None:
    """Compatibility and Group Policy listeners share Address and Transport with configured
    ones (the selector); the script must not update or remove them in their place."""
    listener_function = SCRIPT.split("function Get-Listener {", 1)[1].split("\n}\n", 1)[0]
    assert "Where-Object { -not $_.GetAttribute('Source') }" in listener_function
    assert re.search(r"^Write-SourcedListener$", SCRIPT, re.MULTILINE)


def test_winrm_start_type_and_token_policy_are_kept_as_promised() -> None:
    """The service starts automatically even when it was found running (started by hand), and
    Enable-PSRemoting's LocalAccountTokenFilterPolicy=1 is undone unless asked for."""
    service_function = SCRIPT.split("function Enable-WinRMService {", 1)[1].split("\n}\n", 1)[0]
    start_type = service_function.index("$service.StartType -ne 'Automatic'")
    early_return = service_function.index("return")
    assert start_type < early_return
    enable = service_function.index("Enable-PSRemoting -SkipNetworkProfileCheck")
    assert service_function.index("$tokenPolicy = Get-ItemProperty") < enable
    assert service_function.index("if (-not $EnableLocalAccountTokenFilterPolicy)") > enable


def test_an_endpoint_without_a_descriptor_does_not_stop_the_script() -> None:
    """Get-PSSessionConfiguration adds SecurityDescriptorSddl only where an endpoint has one
    (PowerShell's CustomShellCommands.cs); the script runs under Set-StrictMode 2.0, where
    reading a missing property throws, so it must look the property up."""
    access_function = SCRIPT.split("function Set-RemotingAccess {", 1)[1].split("\n}\n", 1)[0]
    assert "$configuration.SecurityDescriptorSddl" not in access_function
    assert "$configuration.PSObject.Properties['SecurityDescriptorSddl']" in access_function


def function_body(name: str) -> str:
    """The text of the script's `function <name> { ... }`."""
    return SCRIPT.split(f"function {name} {{", 1)[1].split("\n}\n", 1)[0]


# What runs, in order: the script's statements after its last function.
MAIN = SCRIPT[SCRIPT.index("\nAssert-Administrator\n") :]


def test_plain_http_goes_only_where_the_https_rule_is_in_force() -> None:
    """A local rule that the firewall does not apply (Group Policy "Apply local firewall rules:
    No", or all incoming connections blocked: INetFwPolicy2.LocalPolicyModifyState is not
    NET_FW_MODIFY_STATE_OK) admits nothing; removing HTTP then leaves the host unreachable."""
    check = function_body("Test-HttpsRuleInForce")
    assert "(New-Object -ComObject HNetCfg.FwPolicy2).LocalPolicyModifyState" in check
    assert "if ($modifyState -ne 0) {" in check
    assert (
        "Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $firewallRuleName) "
        "-PolicyStore ActiveStore" in check
    )
    assert re.search(
        r"^if \(\$HttpListener -eq 'keep' -or \(Test-HttpsRuleInForce\)\) \{\n    Remove-PlainHttp\n\}$",
        MAIN,
        re.MULTILINE,
    )
    assert MAIN.count("Remove-PlainHttp") == 1


def test_script_refuses_to_run_over_winrm() -> None:
    """Over WinRM the HTTP removal and the WinRM restart end the session that runs the script.
    $PSSenderInfo exists only in a PSSession; under Set-StrictMode 2.0 reading it where it is
    unset throws, so it is looked up with Get-Variable. WinRS shells run under winrshost.exe."""
    check = function_body("Assert-ConsoleSession")
    assert "Get-Variable -Name PSSenderInfo -ErrorAction SilentlyContinue" in check
    assert "if ($PSSenderInfo)" not in SCRIPT
    assert "'wsmprovhost.exe', 'winrshost.exe'" in check
    assert "Nothing was changed." in check
    assert MAIN.index("\nAssert-ConsoleSession\n") < MAIN.index("\nEnable-WinRMService\n")


def test_issuer_is_written_before_http_goes_and_winrm_restarts() -> None:
    """The controller needs the issuer PEM to connect over HTTPS at all: it is written before
    anything that can end the session (the HTTP removal, the WinRM restart)."""
    export = MAIN.index("    Export-IssuerPem -Certificate $certificate")
    assert export < MAIN.index("Remove-PlainHttp")
    assert export < MAIN.index("Restart-Service -Name WinRM")


def test_controller_address_is_required() -> None:
    """Windows' own HTTP rules admit domain and private networks from any address, so a default
    scope (it was LocalSubnet) cut routed controllers off once HTTP was removed."""
    param_block = SCRIPT.split("\nparam (\n", 1)[1].split("\n)\n", 1)[0]
    declaration = param_block.split("$ControllerAddress", 1)[0].rsplit("\n\n", 1)[-1]
    assert "[Parameter(Mandatory = $true)]" in declaration
    assert "[ValidateNotNullOrEmpty()]" in declaration
    assert re.search(r"^    \$ControllerAddress,$", param_block, re.MULTILINE)


# A command that runs the script: `.\Enable-WinopsRemoting.ps1 -...` at the start of a line
# (its help's examples) or after powershell.exe's -File.
INVOCATION = re.compile(r"(?:-File\s+|^\s*)\.\\Enable-WinopsRemoting\.ps1\s+-")


def documented_command_lines() -> list[tuple[str, str]]:
    """Every command line that runs the script in the docs, the README and its own help."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        found.extend(
            (path.name, line) for line in path.read_text().splitlines() if INVOCATION.search(line)
        )
    found.extend(
        ("Enable-WinopsRemoting.ps1", line)
        for line in SCRIPT.splitlines()
        if INVOCATION.search(line)
    )
    return found


def test_every_documented_command_line_names_the_controllers() -> None:
    lines = documented_command_lines()
    assert len(lines) >= 4, lines  # the script's examples and docs/hardening.md's
    missing = [f"{name}: {line}" for name, line in lines if "-ControllerAddress " not in line]
    assert missing == []


def test_whatif_with_winrm_stopped_stops_before_reading_wsman() -> None:
    """Windows client editions ship WinRM stopped; -WhatIf does not start it, and every WSMan
    read (Get-WSManInstance, WSMan:, Get-PSSessionConfiguration) would then throw."""
    stop = MAIN.index("if ([string](Get-Service -Name WinRM).Status -ne 'Running') {")
    branch = MAIN[stop:].split("\n}\n", 1)[0]
    assert "Write-PlannedWSManChange" in branch and "return" in branch
    assert stop < MAIN.index("Set-HttpsListener")
    planned = function_body("Write-PlannedWSManChange")
    for reader in ("Get-WSManInstance", "WSMan:", "Get-PSSessionConfiguration", "Get-Listener"):
        assert reader not in planned, reader


def test_issuer_folder_is_the_administrators_own() -> None:
    """The controller trusts what is written to -IssuerExportPath: a folder another user made,
    or one where others may create or change files, is refused before anything changes, a new one grants SYSTEM and Administrators only
    (protected, nothing inherited), a file already there is replaced, and the fingerprint is
    printed for comparison on the controller."""
    check = function_body("Assert-IssuerExportFolder")
    assert ".GetOwner([System.Security.Principal.SecurityIdentifier])" in check
    assert "@('S-1-5-18', 'S-1-5-32-544'," in check
    # An administrator's folder that inherited ProgramData's BUILTIN\Users:(CI)(WD,AD) is refused
    # too: the check reads every allow ACE's rights, not only the owner.
    assert ".GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])" in check
    assert "'CreateFiles, AppendData, DeleteSubdirectoriesAndFiles, Delete," in check
    assert "$writers = @(foreach" in check and "if ($writers.Count -gt 0)" in check
    assert MAIN.index("\nAssert-IssuerExportFolder\n") < MAIN.index("\nEnable-WinRMService\n")
    export = function_body("Export-IssuerPem")
    assert "New-Item -Path $directory -ItemType Directory" not in export
    assert "SetSecurityDescriptorSddlForm('D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')" in export
    assert "[System.IO.Directory]::CreateDirectory($directory, $security)" in export
    # Checked again once the folder exists, before the PEM is removed and written: a folder
    # made by another user after the first check is refused too.
    assert export.index("[System.IO.Directory]::CreateDirectory") < export.index(
        "Assert-IssuerExportFolder"
    )
    assert export.index("Assert-IssuerExportFolder") < export.index(
        "Remove-Item -LiteralPath $IssuerExportPath"
    )
    # Removed, then created anew: a file that appears in between is not written into.
    assert "WriteAllText" not in export
    assert export.index("Remove-Item -LiteralPath $IssuerExportPath") < export.index(
        "[System.IO.File]::Open($IssuerExportPath, [System.IO.FileMode]::CreateNew,"
    )
    assert "[System.Security.Cryptography.SHA256]::Create()" in export


def test_32_bit_powershell_on_64_bit_windows_is_refused() -> None:
    """Microsoft.PowerShell.LocalAccounts (Get-LocalUser, Get-LocalGroup) is not available in
    32-bit PowerShell on a 64-bit system; -RemotingAccount needs it."""
    check = function_body("Assert-64BitProcess")
    assert "[Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess" in check
    assert MAIN.index("\nAssert-64BitProcess\n") < MAIN.index("Resolve-RemotingAccount")


def test_an_existing_rule_is_reset_to_what_a_new_one_gets() -> None:
    """Set-NetFirewallRule changes only what it is given: a same-named rule that blocks, admits
    one profile only or another protocol would survive, reported as allowing."""
    rule_function = function_body("Set-HttpsFirewallRule")
    created = dict(re.findall(r"^ {16}(\w+) = '([^']*)'$", rule_function, re.MULTILINE))
    update = next(
        line for line in rule_function.splitlines() if "Set-NetFirewallRule -Name" in line
    )
    for name in ("Direction", "Action", "Profile", "Protocol"):
        assert f"-{name} {created[name]} " in update, name


def test_subject_time_is_written_in_the_invariant_culture() -> None:
    """A custom format string formats with the current culture's calendar (DateTime.ToString
    (String)); th-TH counts Thai Buddhist years. The module writes the same subject."""
    module = (REPO / "plugins" / "modules" / "win_winrm_https_certificate.ps1").read_text()
    for text in (SCRIPT, module):
        calls = re.findall(r"\.ToString\('yyyyMMddHHmmss'[^)]*\)", text)
        assert calls, "the subject's time is no longer formatted here"
        assert all("InvariantCulture" in call for call in calls), calls
