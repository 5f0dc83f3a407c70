# Enables one event log channel. Run by ansible.windows.win_powershell, which passes -Name and
# supplies $Ansible; with -WhatIf (check mode) it only reports whether it would change.
[CmdletBinding(SupportsShouldProcess = $true)]
param (
    [Parameter(Mandatory = $true)]
    [string]
    $Name
)

$channel = Get-WinEvent -ListLog $Name -ErrorAction Stop
$Ansible.Changed = $false
if (-not $channel.IsEnabled) {
    if ($PSCmdlet.ShouldProcess($Name, 'Enable event log channel')) {
        $channel.IsEnabled = $true
        $channel.SaveChanges()
    }
    $Ansible.Changed = $true
}
