#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# CredSSP roles of a host. The server role lets the WinRM service accept CredSSP; the client role
# lets this host pass fresh credentials on to the computers named in the "Allow delegating fresh
# credentials" policies. Unlike Enable-WSManCredSSP, which only ever adds to those lists, the
# lists here are made exactly what was asked.

$spec = @{
    options = @{
        server = @{ type = 'bool' }
        client = @{ type = 'bool' }
        delegate_computers = @{ type = 'list'; elements = 'str' }
        delegate_computers_ntlm_only = @{ type = 'list'; elements = 'str' }
    }
    required_if = @(, @('client', $true, @('delegate_computers')))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$delegationKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\CredentialsDelegation'
$winrmPolicyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM'
# list option -> policy switch value, its "also use the defaults" value and the subkey holding the list
$delegationLists = [ordered]@{
    delegate_computers = @{ Switch = 'AllowFreshCredentials'; Concatenate = 'ConcatenateDefaults_AllowFresh'; Subkey = 'AllowFreshCredentials' }
    delegate_computers_ntlm_only = @{ Switch = 'AllowFreshCredentialsWhenNTLMOnly'; Concatenate = 'ConcatenateDefaults_AllowFreshNTLMOnly'; Subkey = 'AllowFreshCredentialsWhenNTLMOnly' }
}

function ConvertTo-DelegationSpn {
    <# 'server01.example.com' -> 'wsman/server01.example.com'; 'TERMSRV/*' stays as written. #>
    param([string]$Computer, [string]$Option)

    $value = $Computer.Trim()
    if (-not $value) {
        $module.FailJson("$Option contains an empty entry")
    }
    if ($value -notmatch '/') {
        $value = "wsman/$value"
    }
    if ($value -notmatch '^[^/\s]+/[^/\s]+$') {
        $module.FailJson("$Option entry '$Computer' is not a computer name or a 'service/host' SPN")
    }
    return $value
}

function Get-DelegationList {
    <# The SPNs of one list in the order Windows numbers them; $null when the policy is not set. #>
    param([Hashtable]$Definition)

    $switch = Get-ItemProperty -LiteralPath $delegationKey -Name $Definition.Switch -ErrorAction SilentlyContinue
    $listKey = Get-Item -LiteralPath "$delegationKey\$($Definition.Subkey)" -ErrorAction SilentlyContinue
    if ($null -eq $switch -and $null -eq $listKey) {
        return $null
    }
    $entries = @()
    if ($null -ne $listKey) {
        $names = @($listKey.GetValueNames() | Where-Object { $_ -match '^\d+$' } | Sort-Object -Property { [int]$_ })
        $entries = @($names | ForEach-Object { [string]$listKey.GetValue($_) })
    }
    , $entries
}

function Set-DelegationList {
    <# Replaces one list exactly; an empty list returns the policy to "not configured". #>
    param([Hashtable]$Definition, [string[]]$Spns)

    $listPath = "$delegationKey\$($Definition.Subkey)"
    if (Test-Path -LiteralPath $listPath) {
        Remove-Item -LiteralPath $listPath -Recurse -Force -ErrorAction Stop
    }
    if ($Spns.Count -eq 0) {
        foreach ($name in @($Definition.Switch, $Definition.Concatenate)) {
            Remove-ItemProperty -LiteralPath $delegationKey -Name $name -ErrorAction SilentlyContinue
        }
        return
    }
    if (-not (Test-Path -LiteralPath $delegationKey)) {
        New-Item -Path $delegationKey -Force -ErrorAction Stop | Out-Null
    }
    New-ItemProperty -LiteralPath $delegationKey -Name $Definition.Switch -Value 1 -PropertyType DWord -Force -ErrorAction Stop | Out-Null
    New-ItemProperty -LiteralPath $delegationKey -Name $Definition.Concatenate -Value 1 -PropertyType DWord -Force -ErrorAction Stop | Out-Null
    New-Item -Path $listPath -Force -ErrorAction Stop | Out-Null
    for ($index = 0; $index -lt $Spns.Count; $index++) {
        New-ItemProperty -LiteralPath $listPath -Name ([string]($index + 1)) -Value $Spns[$index] -PropertyType String -Force -ErrorAction Stop | Out-Null
    }
}

function Update-RoleSwitch {
    <# One of Service\Auth\CredSSP or Client\Auth\CredSSP, unless Group Policy sets it. #>
    param([string]$Role, [bool]$Wanted)

    $path = "WSMan:\localhost\$Role\Auth\CredSSP"
    try {
        $leaf = Get-Item -LiteralPath $path -ErrorAction Stop
    }
    catch {
        $module.FailJson("cannot read $path for option '$($Role.ToLowerInvariant())' (is the WinRM service running?): $($_.Exception.Message)", $_)
    }
    $current = [string]$leaf.Value -eq 'true'
    $before[$Role.ToLowerInvariant()] = $current
    $after[$Role.ToLowerInvariant()] = $Wanted
    if ($current -eq $Wanted) {
        return
    }
    $policy = Get-ItemProperty -LiteralPath "$winrmPolicyKey\$Role" -Name 'AllowCredSSP' -ErrorAction SilentlyContinue
    if ($null -ne $policy -or $leaf.SourceOfValue -eq 'GPO') {
        $module.Warn("$path is set by Group Policy ($winrmPolicyKey\$Role\AllowCredSSP); leaving it at '$current'")
        $module.Result.managed_by_policy += "$Role\Auth\CredSSP"
        $after[$Role.ToLowerInvariant()] = $current
        return
    }
    if (-not $module.CheckMode) {
        try {
            Set-Item -LiteralPath $path -Value ($Wanted.ToString().ToLowerInvariant()) -Force -ErrorAction Stop
        }
        catch {
            $module.FailJson("cannot set $path to '$Wanted' for option '$($Role.ToLowerInvariant())': $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
}

$before = [ordered]@{}
$after = [ordered]@{}
$module.Result.managed_by_policy = @()

# Validate and convert the lists before anything is changed.
$wantedLists = @{}
foreach ($option in $delegationLists.Keys) {
    if ($null -ne $module.Params[$option]) {
        $wantedLists[$option] = [string[]]@($module.Params[$option] | ForEach-Object { ConvertTo-DelegationSpn -Computer $_ -Option $option })
    }
}

if ($module.Params.client -and $wantedLists.delegate_computers.Count -eq 0) {
    $module.FailJson('delegate_computers is empty while client is true; name at least one computer this host may delegate credentials to')
}

if ($null -ne $module.Params.server) {
    Update-RoleSwitch -Role 'Service' -Wanted $module.Params.server
}
if ($null -ne $module.Params.client) {
    Update-RoleSwitch -Role 'Client' -Wanted $module.Params.client
}

foreach ($option in $delegationLists.Keys) {
    $definition = $delegationLists[$option]
    $current = Get-DelegationList -Definition $definition
    $before[$option] = $current
    if (-not $wantedLists.ContainsKey($option)) {
        $module.Result[$option] = $current
        continue
    }
    $wanted = $wantedLists[$option]
    $after[$option] = $wanted
    $module.Result[$option] = $wanted
    $same = ($null -eq $current -and $wanted.Count -eq 0) -or ($null -ne $current -and (($current -join "`n") -ceq ($wanted -join "`n")))
    if ($same) {
        continue
    }
    if (-not $module.CheckMode) {
        try {
            Set-DelegationList -Definition $definition -Spns $wanted
        }
        catch {
            $module.FailJson("cannot write $option ($delegationKey\$($definition.Subkey)): $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
}

# "server"/"client" in the diff stand for Service\Auth\CredSSP and Client\Auth\CredSSP.
$module.Diff.before = $before
$module.Diff.after = $after
$module.ExitJson()
