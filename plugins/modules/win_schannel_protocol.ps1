#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# SCHANNEL protocol switches. Both values are written for each side: Enabled decides whether the
# protocol can be used at all, DisabledByDefault whether applications get it without asking for it.
# SCHANNEL reads them at boot, so a change only takes effect after a restart.

$spec = @{
    options = @{
        protocol = @{ type = 'str'; required = $true; choices = @('SSL 2.0', 'SSL 3.0', 'TLS 1.0', 'TLS 1.1', 'TLS 1.2', 'TLS 1.3') }
        sides = @{ type = 'list'; elements = 'str'; choices = @('server', 'client'); default = @('server', 'client') }
        state = @{ type = 'str'; required = $true; choices = @('enabled', 'disabled', 'default') }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$protocolsKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols'
$protocol = $module.Params.protocol
$state = $module.Params.state

# "TLS 1.3 is supported starting in Windows 11 and Windows Server 2022. Enabling TLS 1.3 on
# earlier versions of Windows is not a safe system configuration." (Microsoft, Protocols in
# TLS/SSL (Schannel SSP)). Earlier Windows 10 builds carry an experimental TLS 1.3 that these
# values switch on, so the request is refused there before anything is written.
$tls13FirstBuild = 20348
$currentVersion = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
$build = [int](Get-ItemProperty -LiteralPath $currentVersion -Name CurrentBuildNumber).CurrentBuildNumber
$module.Result.build = $build
if ($protocol -eq 'TLS 1.3' -and $state -eq 'enabled') {
    if ($build -lt $tls13FirstBuild) {
        $module.FailJson("protocol 'TLS 1.3' with state 'enabled' is refused on build $($build): SCHANNEL supports TLS 1.3 from Windows Server 2022 and Windows 11 (build $tls13FirstBuild and later), and Microsoft calls enabling it on earlier versions not a safe configuration. Nothing was changed")
    }
}
$wantedValues = switch ($state) {
    'enabled' { @{ Enabled = 1; DisabledByDefault = 0 } }
    'disabled' { @{ Enabled = 0; DisabledByDefault = 1 } }
    'default' { @{ Enabled = $null; DisabledByDefault = $null } }
}

function Get-ProtocolSide {
    <# The two values of one side; $null for a value that is not set (the OS default applies). #>
    param([string]$Path)

    $found = @{ Enabled = $null; DisabledByDefault = $null }
    $item = Get-ItemProperty -LiteralPath $Path -ErrorAction SilentlyContinue
    if ($null -ne $item) {
        foreach ($name in @('Enabled', 'DisabledByDefault')) {
            if ($null -ne $item.PSObject.Properties[$name]) {
                # Enabled may be 1 or 0xFFFFFFFF (read back as -1); both mean on.
                $found[$name] = if ([int64]$item.$name -ne 0) { 1 } else { 0 }
            }
        }
    }
    return $found
}

$before = [ordered]@{}
$after = [ordered]@{}
foreach ($side in @($module.Params.sides | Sort-Object -Unique)) {
    $sideName = (Get-Culture).TextInfo.ToTitleCase($side)
    $path = "$protocolsKey\$protocol\$sideName"
    $current = Get-ProtocolSide -Path $path
    $before[$side] = $current
    $after[$side] = $wantedValues.Clone()

    foreach ($name in @('Enabled', 'DisabledByDefault')) {
        $wanted = $wantedValues[$name]
        if ($current[$name] -eq $wanted) {
            continue
        }
        if (-not $module.CheckMode) {
            try {
                if ($null -eq $wanted) {
                    Remove-ItemProperty -LiteralPath $path -Name $name -Force -ErrorAction Stop
                }
                else {
                    if (-not (Test-Path -LiteralPath $path)) {
                        New-Item -Path $path -Force -ErrorAction Stop | Out-Null
                    }
                    New-ItemProperty -LiteralPath $path -Name $name -Value $wanted -PropertyType DWord -Force -ErrorAction Stop | Out-Null
                }
            }
            catch {
                $module.FailJson("cannot set $name for protocol '$protocol' side '$side' at $($path): $($_.Exception.Message)", $_)
            }
        }
        $module.Result.changed = $true
    }
}

$module.Diff.before = $before
$module.Diff.after = $after
$module.Result.protocol = $protocol
$module.Result.sides = $after
# SCHANNEL reads its protocol settings only at start-up.
$module.Result.reboot_required = $module.Result.changed
$module.ExitJson()
