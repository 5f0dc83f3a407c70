#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Restricts who may use PowerShell remoting (the session configurations' SDDL, used by psrp) and,
# optionally, the WinRM service itself (RootSDDL, used by the winrm plugin's cmd shell) to the
# given accounts. access=full grants generic all (GA), as Administrators have by default;
# access=read_execute grants generic read and execute (GR, GX): the Read and Execute permissions
# Ansible's WinRM guide names as the least a non-administrator needs to run commands.
# mode=exact replaces each descriptor's allow entries with the list; mode=add sets the listed
# accounts' allow entries and keeps every other entry; mode=remove drops their allow entries.
# By default every session configuration is restricted (Microsoft.PowerShell, .PowerShell32, the
# workflow endpoints...); PowerShell endpoints that are left as they were (not selected, or not
# visible to Windows PowerShell's Get-PSSessionConfiguration, such as PowerShell 7's) are returned
# in unrestricted_configurations, with a warning.

$spec = @{
    options = @{
        accounts = @{ type = 'list'; elements = 'str'; required = $true }
        configurations = @{ type = 'list'; elements = 'str'; default = @('*') }
        root_sddl = @{ type = 'bool'; default = $true }
        allow_lockout = @{ type = 'bool'; default = $false }
        restart_winrm = @{ type = 'bool'; default = $false }
        access = @{ type = 'str'; choices = @('full', 'read_execute'); default = 'full' }
        mode = @{ type = 'str'; choices = @('exact', 'add', 'remove'); default = 'exact' }
        connection_sids = @{ type = 'list'; elements = 'str' }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$rootSddlPath = 'WSMan:\localhost\Service\RootSDDL'
# Audit every failure and successful writes/executes, as Windows' default descriptors do.
$auditPart = 'S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)'

function ConvertTo-Sid {
    <# The SID string of an account or group given as a SID or a name, or a failure naming the
       entry (Ansible.Basic's 'sid' type reports only "Exception has been thrown by the target
       of an invocation" for a name the host cannot translate).
       NTAccount.Translate does not understand '.\user', the usual way to name a local account
       (and what winrm_hardening passes from ansible_user), so '.' becomes this computer's name,
       as Ansible's own SID helpers do. As they do, a local group named with this computer's
       name is looked up by its name alone (NTAccount does not find it with the prefix), and a
       bare name that is a local user is looked up on this computer first (otherwise a domain
       member asks its domain first). #>
    param([string]$Account)

    try {
        if ($Account -match '^S-\d-') {
            return ([System.Security.Principal.SecurityIdentifier]::new($Account)).Value
        }
        $domain = $null
        $name = $Account
        if ($Account.Contains('\')) {
            $domain, $name = $Account.Split([char]'\', 2)
            if ($domain -eq '.') {
                $domain = $env:COMPUTERNAME
            }
            if ($domain -eq $env:COMPUTERNAME -and @(Get-LocalGroup | Where-Object { $_.Name -eq $name }).Count -gt 0) {
                $domain = $null
            }
        }
        elseif (@(Get-LocalUser | Where-Object { $_.Name -eq $name }).Count -gt 0) {
            $domain = $env:COMPUTERNAME
        }
        $ntAccount = if ($domain) {
            [System.Security.Principal.NTAccount]::new($domain, $name)
        }
        else {
            [System.Security.Principal.NTAccount]::new($name)
        }
        return $ntAccount.Translate([System.Security.Principal.SecurityIdentifier]).Value
    }
    catch {
        $module.FailJson("accounts entry '$Account' is not an account, group or SID this host knows: $($_.Exception.Message)", $_)
    }
}

$sids = @($module.Params.accounts | ForEach-Object { ConvertTo-Sid -Account $_ } | Sort-Object -Unique)
if ($sids.Count -eq 0) {
    $module.FailJson('accounts is empty; at least one account must keep remote access')
}
$mode = $module.Params.mode
# SDDL rights strings: GA is GENERIC_ALL; GR and GX are GENERIC_READ and GENERIC_EXECUTE.
$accessRights = @{ full = 'GA'; read_execute = 'GXGR' }[$module.Params.access]
# The same rights as an ACE access mask (GENERIC_ALL 0x10000000; GENERIC_READ 0x80000000 with
# GENERIC_EXECUTE 0x20000000 is 0xA0000000, negative as the Int32 that AccessMask is).
$accessMask = @{ full = [int]0x10000000; read_execute = [int]-1610612736 }[$module.Params.access]
$aces = ($sids | ForEach-Object { "(A;;$accessRights;;;$_)" }) -join ''
$exactSddl = "O:NSG:BAD:P$aces$auditPart"

function Get-WantedSddl {
    <# The descriptor a target should have: the exact list, or the current descriptor with the
       listed accounts' allow entries set (add) or removed (remove), every other entry kept. #>
    param([string]$CurrentSddl)

    if ($mode -eq 'exact') {
        return $exactSddl
    }
    $descriptor = [System.Security.AccessControl.CommonSecurityDescriptor]::new($false, $false, $CurrentSddl)
    foreach ($sid in $sids) {
        $identifier = [System.Security.Principal.SecurityIdentifier]::new($sid)
        if ($mode -eq 'add') {
            $descriptor.DiscretionaryAcl.SetAccess([System.Security.AccessControl.AccessControlType]::Allow, $identifier, $accessMask, 'None', 'None')
        }
        else {
            # A mask of every bit (-1) removes the whole allow entry.
            $null = $descriptor.DiscretionaryAcl.RemoveAccess([System.Security.AccessControl.AccessControlType]::Allow, $identifier, -1, 'None', 'None')
        }
    }
    return $descriptor.GetSddlForm([System.Security.AccessControl.AccessControlSections]::All)
}

function Test-Grant {
    <# Whether a descriptor still lets one of the given SIDs connect: an allow entry with GA, or
       with both GR and GX, and no deny entry with GA or GX. #>
    param([string]$Sddl, [string[]]$Sids)

    $genericAll = 0x10000000
    $genericExecute = 0x20000000
    $genericRead = [int]-2147483648  # 0x80000000 as an Int32
    $descriptor = [System.Security.AccessControl.CommonSecurityDescriptor]::new($false, $false, $Sddl)
    $granted = $false
    foreach ($ace in $descriptor.DiscretionaryAcl) {
        if ($Sids -notcontains $ace.SecurityIdentifier.Value) {
            continue
        }
        $mask = $ace.AccessMask
        if ($ace.AceQualifier -eq [System.Security.AccessControl.AceQualifier]::AccessDenied) {
            if ($mask -band ($genericAll -bor $genericExecute)) {
                return $false
            }
        }
        elseif (($mask -band $genericAll) -or (($mask -band $genericRead) -and ($mask -band $genericExecute))) {
            $granted = $true
        }
    }
    return $granted
}

function Get-AccessForm {
    <# The DACL of an SDDL string in one canonical form, so equal access compares equal. #>
    param([string]$Sddl)

    $descriptor = [System.Security.AccessControl.CommonSecurityDescriptor]::new($false, $false, $Sddl)
    return $descriptor.GetSddlForm([System.Security.AccessControl.AccessControlSections]::Access)
}

function Register-WinRMRestart {
    <#
    Restarts WinRM ten seconds from now through the Task Scheduler. A restart from inside this
    WinRM session would end the session (and the task) before it could report.
    #>
    $taskName = 'winops.remoting restart WinRM'
    $argument = '-NoProfile -NonInteractive -Command "Restart-Service -Name WinRM -Force; Unregister-ScheduledTask -TaskName ''{0}'' -Confirm:$false"' -f $taskName
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $argument
    $trigger = New-ScheduledTaskTrigger -Once -At ([DateTime]::Now.AddSeconds(10))
    $principal = New-ScheduledTaskPrincipal -UserId 'NT AUTHORITY\SYSTEM' -LogonType ServiceAccount -RunLevel Highest
    Register-ScheduledTask -TaskName $taskName -Action $action -Trigger $trigger -Principal $principal -Force -ErrorAction Stop | Out-Null
}

function Get-AccountName {
    param([string]$Sid)

    try {
        return ([System.Security.Principal.SecurityIdentifier]::new($Sid)).Translate([System.Security.Principal.NTAccount]).Value
    }
    catch {
        return $Sid
    }
}

# Refuse to lock out the account the play connects as unless asked to: the SIDs of its token
# when the play gives them (under become the task runs as another account), else the account
# running this task.
if ($module.Params.connection_sids) {
    $ownSids = @($module.Params.connection_sids | ForEach-Object { ConvertTo-Sid -Account $_ })
    $ownName = "the account this play connects as ($(Get-AccountName -Sid $ownSids[0]))"
}
else {
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $ownSids = @($identity.User.Value) + @($identity.Groups | ForEach-Object { $_.Value })
    $ownName = "'$($identity.Name)', which runs this task,"
}
$keepsAccess = @($sids | Where-Object { $ownSids -contains $_ }).Count -gt 0
if ($mode -eq 'exact' -and -not $keepsAccess -and -not $module.Params.allow_lockout) {
    $module.FailJson("accounts ($(@($sids | ForEach-Object { Get-AccountName -Sid $_ }) -join ', ')) includes neither $ownName nor a group it belongs to; the next connection would be refused. Add it, or set allow_lockout=true")
}

function Assert-KeepsAccess {
    <# mode=remove: refuse to turn a descriptor that lets the account running this task in into
       one that does not. Called for every target before anything is written. #>
    param([string]$Target, [string]$CurrentSddl, [string]$Sddl)

    if ($mode -ne 'remove' -or $module.Params.allow_lockout) {
        return
    }
    if ((Test-Grant -Sddl $CurrentSddl -Sids $ownSids) -and -not (Test-Grant -Sddl $Sddl -Sids $ownSids)) {
        $module.FailJson("removing accounts ($(@($sids | ForEach-Object { Get-AccountName -Sid $_ }) -join ', ')) from $Target leaves $ownName without access; the next connection would be refused. Keep it, or set allow_lockout=true")
    }
}

$before = [ordered]@{}
$after = [ordered]@{}
$changedConfigurations = [System.Collections.Generic.List[string]]::new()

# The selected configurations, once each (entries may be wildcards, as -Name takes them).
$selected = [ordered]@{}
foreach ($entry in $module.Params.configurations) {
    try {
        $found = @(Get-PSSessionConfiguration -Name $entry -ErrorAction Stop)
    }
    catch {
        $module.FailJson("configurations entry '$entry' is not a PowerShell session configuration on this host: $($_.Exception.Message)", $_)
    }
    foreach ($configuration in $found) {
        if (-not $selected.Contains($configuration.Name)) {
            $selected[$configuration.Name] = $configuration
        }
    }
}

if ($module.Params.root_sddl) {
    try {
        $currentRoot = [string](Get-Item -LiteralPath $rootSddlPath -ErrorAction Stop).Value
    }
    catch {
        $module.FailJson("cannot read $rootSddlPath for root_sddl (is the WinRM service running?): $($_.Exception.Message)", $_)
    }
    $wantedRoot = Get-WantedSddl -CurrentSddl $currentRoot
    Assert-KeepsAccess -Target $rootSddlPath -CurrentSddl $currentRoot -Sddl $wantedRoot
}
foreach ($name in @($selected.Keys)) {
    $currentSddl = [string]$selected[$name].SecurityDescriptorSddl
    Assert-KeepsAccess -Target "configurations entry '$name'" -CurrentSddl $currentSddl -Sddl (Get-WantedSddl -CurrentSddl $currentSddl)
}

foreach ($name in @($selected.Keys)) {
    $configuration = $selected[$name]
    $currentSddl = [string]$configuration.SecurityDescriptorSddl
    $wantedSddl = Get-WantedSddl -CurrentSddl $currentSddl
    $before[$name] = $currentSddl
    $after[$name] = $wantedSddl
    if ((Get-AccessForm -Sddl $currentSddl) -eq (Get-AccessForm -Sddl $wantedSddl)) {
        $after[$name] = $currentSddl
        continue
    }
    if (-not $module.CheckMode) {
        try {
            # The WinRM restart this needs is left to a handler: restarting here would cut off the task.
            Set-PSSessionConfiguration -Name $name -SecurityDescriptorSddl $wantedSddl -NoServiceRestart -Force -ErrorAction Stop | Out-Null
        }
        catch {
            $module.FailJson("cannot set the SDDL of configurations entry '$name': $($_.Exception.Message)", $_)
        }
    }
    $changedConfigurations.Add($name)
    $module.Result.changed = $true
}

if ($module.Params.root_sddl) {
    $before.RootSDDL = $currentRoot
    $after.RootSDDL = $currentRoot
    if ((Get-AccessForm -Sddl $currentRoot) -ne (Get-AccessForm -Sddl $wantedRoot)) {
        if (-not $module.CheckMode) {
            try {
                Set-Item -LiteralPath $rootSddlPath -Value $wantedRoot -Force -ErrorAction Stop
            }
            catch {
                $module.FailJson("cannot set $rootSddlPath for root_sddl: $($_.Exception.Message)", $_)
            }
        }
        $after.RootSDDL = $wantedRoot
        $module.Result.changed = $true
    }
}

# Every PowerShell endpoint WinRM serves is a plugin whose DLL is pwrshplugin.dll (PowerShell's
# Get-PSSessionConfiguration selects them the same way); name the ones this task left alone.
$unrestricted = [System.Collections.Generic.List[string]]::new()
try {
    foreach ($plugin in @(Get-ChildItem -LiteralPath 'WSMan:\localhost\Plugin' -ErrorAction Stop)) {
        $fileName = Get-Item -LiteralPath "WSMan:\localhost\Plugin\$($plugin.Name)\FileName" -ErrorAction SilentlyContinue
        if ($null -ne $fileName -and [string]$fileName.Value -match 'pwrshplugin\.dll$' -and -not $selected.Contains($plugin.Name)) {
            $unrestricted.Add($plugin.Name)
        }
    }
}
catch {
    $module.FailJson("cannot list the WinRM plugins (WSMan:\localhost\Plugin) to report unrestricted configurations: $($_.Exception.Message)", $_)
}
if ($unrestricted.Count -gt 0) {
    $module.Warn("PowerShell remoting endpoints left as they were (not restricted to accounts): $($unrestricted -join ', ')")
}
$module.Result.unrestricted_configurations = @($unrestricted)

$module.Result.restart_scheduled = $false
if ($changedConfigurations.Count -gt 0 -and $module.Params.restart_winrm) {
    if (-not $module.CheckMode) {
        try {
            Register-WinRMRestart
        }
        catch {
            $module.FailJson("the SDDL changed but restart_winrm could not schedule the WinRM restart: $($_.Exception.Message)", $_)
        }
    }
    $module.Result.restart_scheduled = $true
}

$module.Diff.before = $before
$module.Diff.after = $after
# The exact list's descriptor; with add or remove each target keeps its own (see descriptors).
$module.Result.sddl = if ($mode -eq 'exact') { $exactSddl } else { $null }
$module.Result.descriptors = $after
$module.Result.accounts = @($sids | ForEach-Object { @{ sid = $_; name = Get-AccountName -Sid $_ } })
$module.Result.changed_configurations = @($changedConfigurations)
# Session configuration security applies to new sessions after WinRM restarts.
$module.Result.restart_required = $changedConfigurations.Count -gt 0 -and -not $module.Result.restart_scheduled
$module.ExitJson()
