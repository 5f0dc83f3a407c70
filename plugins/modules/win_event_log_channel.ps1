#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# Enables or disables one event log channel, such as Microsoft-Windows-WinRM/Operational, through
# the event log service's own configuration API (what wevtutil set-log does).

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        enabled = @{ type = 'bool'; default = $true }
        max_size_kb = @{ type = 'int' }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$name = $module.Params.name
# Get-WinEvent -ListLog expands wildcards, which would select several channels at once.
if ($name -match '[\*\?\[]') {
    $module.FailJson("name '$name' contains a wildcard; give the exact name of one event log channel")
}
try {
    $channel = Get-WinEvent -ListLog $name -ErrorAction Stop
}
catch {
    $module.FailJson("name '$name' is not an event log channel on this host: $($_.Exception.Message)", $_)
}

# wevtutil's reference: "The minimum log size is 1048576 bytes (1024KB)". A smaller value is
# refused here rather than rounded or refused by the event log service after the compare.
$maxSizeKb = $module.Params.max_size_kb
if ($null -ne $maxSizeKb -and $maxSizeKb -lt 1024) {
    $module.FailJson("max_size_kb '$maxSizeKb' is too small: Windows keeps no event log smaller than 1024 KB (1048576 bytes)")
}
# Limit-EventLog: "The value must be divisible by 64 KB"; wevtutil rounds other sizes. A size
# Windows may store rounded would read back different and be changed again on every run.
if ($null -ne $maxSizeKb -and $maxSizeKb % 64 -ne 0) {
    $lower = $maxSizeKb - $maxSizeKb % 64
    $module.FailJson("max_size_kb '$maxSizeKb' is not a multiple of 64: Windows sizes event logs in 64 KB steps; use $lower or $($lower + 64)")
}

$before = @{ enabled = $channel.IsEnabled; max_size_kb = [int64]($channel.MaximumSizeInBytes / 1024) }
$after = $before.Clone()
$after.enabled = $module.Params.enabled
if ($null -ne $maxSizeKb) {
    $after.max_size_kb = [int64]$maxSizeKb
}

if ($after.enabled -ne $before.enabled -or $after.max_size_kb -ne $before.max_size_kb) {
    if (-not $module.CheckMode) {
        $resizing = $after.max_size_kb -ne $before.max_size_kb
        # An enabled Analytic or Debug (direct) channel refuses every change but being switched
        # off ("The requested operation cannot be performed over an enabled direct channel. The
        # channel must first be disabled ..."), so it is switched off first and on again after.
        $direct = @('Analytical', 'Debug') -contains [string]$channel.LogType
        $switchedOff = $false
        try {
            if ($direct -and $resizing) {
                # Off (saved), resized while off (saved), then on again if wanted: no save of a
                # direct channel carries a change with IsEnabled true.
                if ($before.enabled) {
                    $channel.IsEnabled = $false
                    $channel.SaveChanges()
                    $switchedOff = $true
                }
                $channel.MaximumSizeInBytes = $after.max_size_kb * 1024
                $channel.SaveChanges()
                if ($after.enabled) {
                    $channel.IsEnabled = $true
                    $channel.SaveChanges()
                }
            }
            else {
                if ($resizing) {
                    $channel.MaximumSizeInBytes = $after.max_size_kb * 1024
                }
                $channel.IsEnabled = $after.enabled
                $channel.SaveChanges()
            }
        }
        catch {
            $failure = $_
            if ($switchedOff) {
                # Not left off because the resize failed: it was on before the task.
                try {
                    $channel = Get-WinEvent -ListLog $name -ErrorAction Stop
                    $channel.IsEnabled = $true
                    $channel.SaveChanges()
                }
                catch {
                    $module.Warn("the event log channel name '$name' was switched off to be resized and could not be switched on again: $($_.Exception.Message)")
                }
            }
            $module.FailJson("cannot configure the event log channel name '$name': $($failure.Exception.Message)", $failure)
        }
    }
    $module.Result.changed = $true
}

$module.Diff.before = $before
$module.Diff.after = $after
$module.Result.channel = $after
$module.ExitJson()
