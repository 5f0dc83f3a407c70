#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell Ansible.ModuleUtils.AddType

# CredSSP roles of a host. The server role lets the WinRM service accept CredSSP; the client role
# lets this host pass fresh credentials on to the computers named in the "Allow delegating fresh
# credentials" policies. Unlike Enable-WSManCredSSP, which only ever adds to those lists, the
# lists here are made exactly what was asked.
#
# Enable-WSManCredSSP -Role Client keeps its list in the local Group Policy Object (it writes
# through IGroupPolicyObject, so the Machine Registry.pol holds it), and Group Policy writes that
# list back onto the live Policies key at every refresh. Where the local GPO holds a list, this
# module writes the local GPO as well, so the exact list survives the next refresh.

$spec = @{
    options = @{
        server = @{ type = 'bool' }
        client = @{ type = 'bool' }
        delegate_computers = @{ type = 'list'; elements = 'str' }
        delegate_computers_ntlm_only = @{ type = 'list'; elements = 'str' }
    }
    # No required_if on 'client': it has no default, and Ansible.Basic before ansible/ansible#84562
    # (ansible-core 2.17 and 2.18 releases before its backports) fails with a
    # NullReferenceException when a required_if option is omitted. The check is made below.
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

# The local Group Policy Object's machine registry policy, through IGroupPolicyObject (gpedit.h),
# as Enable-WSManCredSSP edits it. The GPO is opened and saved on an STA thread: the
# GroupPolicyObject class is apartment-threaded.
$localPolicySource = @'
using Microsoft.Win32;
using Microsoft.Win32.SafeHandles;
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace WinopsRemoting.CredSSP
{
    [ComImport, Guid("EA502722-A23D-11d1-A7D3-0000F87571E3")]
    internal class GroupPolicyObjectClass
    {
    }

    // The methods of IGroupPolicyObject in vtable order, up to the last one used here.
    [ComImport, Guid("EA502723-A23D-11d1-A7D3-0000F87571E3"), InterfaceType(ComInterfaceType.InterfaceIsIUnknown)]
    internal interface IGroupPolicyObject
    {
        void New([MarshalAs(UnmanagedType.LPWStr)] string domainName, [MarshalAs(UnmanagedType.LPWStr)] string displayName, uint flags);
        void OpenDSGPO([MarshalAs(UnmanagedType.LPWStr)] string path, uint flags);
        void OpenLocalMachineGPO(uint flags);
        void OpenRemoteMachineGPO([MarshalAs(UnmanagedType.LPWStr)] string computerName, uint flags);
        void Save([MarshalAs(UnmanagedType.Bool)] bool machine, [MarshalAs(UnmanagedType.Bool)] bool add, [MarshalAs(UnmanagedType.LPStruct)] Guid extension, [MarshalAs(UnmanagedType.LPStruct)] Guid tool);
        void Delete();
        void GetName([MarshalAs(UnmanagedType.LPWStr)] StringBuilder name, int maxLength);
        void GetDisplayName([MarshalAs(UnmanagedType.LPWStr)] StringBuilder name, int maxLength);
        void SetDisplayName([MarshalAs(UnmanagedType.LPWStr)] string name);
        void GetPath([MarshalAs(UnmanagedType.LPWStr)] StringBuilder path, int maxLength);
        void GetDSPath(uint section, [MarshalAs(UnmanagedType.LPWStr)] StringBuilder path, int maxLength);
        void GetFileSysPath(uint section, [MarshalAs(UnmanagedType.LPWStr)] StringBuilder path, int maxLength);
        IntPtr GetRegistryKey(uint section);
    }

    public static class LocalMachinePolicy
    {
        private const uint OpenLoadRegistry = 0x1;
        private const uint OpenReadOnly = 0x2;
        private const uint SectionMachine = 2;
        private const int ClassNotRegistered = unchecked((int)0x80040154);
        // The Registry client-side extension, and the tool GUID Enable-WSManCredSSP saves with.
        private static readonly Guid RegistryExtension = new Guid("35378EAC-683F-11D2-A89A-00C04FBBCFA2");
        private static readonly Guid CredSspTool = new Guid("7A9206BD-33AF-47af-B832-D4128730E990");

        /// <summary>The numbered SPNs of one delegation list in the local GPO; null when the
        /// GPO sets neither the list's switch value nor its subkey.</summary>
        public static string[] GetList(string keyPath, string switchName, string subkeyName)
        {
            return OnStaThread<string[]>(delegate
            {
                IGroupPolicyObject gpo;
                try
                {
                    gpo = (IGroupPolicyObject)new GroupPolicyObjectClass();
                }
                catch (COMException e)
                {
                    // Without the class (REGDB_E_CLASSNOTREG) Enable-WSManCredSSP cannot have
                    // written a local GPO either: there is no list there.
                    if (e.ErrorCode == ClassNotRegistered)
                        return null;
                    throw;
                }
                try
                {
                    gpo.OpenLocalMachineGPO(OpenLoadRegistry | OpenReadOnly);
                    using (RegistryKey root = MachineRoot(gpo))
                    using (RegistryKey key = root.OpenSubKey(keyPath))
                    {
                        if (key == null)
                            return null;
                        using (RegistryKey list = key.OpenSubKey(subkeyName))
                        {
                            if (key.GetValue(switchName) == null && list == null)
                                return null;
                            return list == null ? new string[0] : Numbered(list);
                        }
                    }
                }
                finally
                {
                    Marshal.ReleaseComObject(gpo);
                }
            });
        }

        /// <summary>Makes one delegation list of the local GPO exactly `spns` (none: the policy
        /// is no longer set there) and saves the GPO.</summary>
        public static void SetList(string keyPath, string switchName, string concatenateName, string subkeyName, string[] spns)
        {
            OnStaThread<object>(delegate
            {
                IGroupPolicyObject gpo = (IGroupPolicyObject)new GroupPolicyObjectClass();
                try
                {
                    gpo.OpenLocalMachineGPO(OpenLoadRegistry);
                    using (RegistryKey root = MachineRoot(gpo))
                    using (RegistryKey key = root.CreateSubKey(keyPath))
                    {
                        key.DeleteSubKeyTree(subkeyName, false);
                        if (spns.Length == 0)
                        {
                            key.DeleteValue(switchName, false);
                            key.DeleteValue(concatenateName, false);
                        }
                        else
                        {
                            key.SetValue(switchName, 1, RegistryValueKind.DWord);
                            key.SetValue(concatenateName, 1, RegistryValueKind.DWord);
                            using (RegistryKey list = key.CreateSubKey(subkeyName))
                            {
                                for (int i = 0; i < spns.Length; i++)
                                    list.SetValue((i + 1).ToString(CultureInfo.InvariantCulture), spns[i], RegistryValueKind.String);
                            }
                        }
                    }
                    gpo.Save(true, true, RegistryExtension, CredSspTool);
                }
                finally
                {
                    Marshal.ReleaseComObject(gpo);
                }
                return null;
            });
        }

        private static RegistryKey MachineRoot(IGroupPolicyObject gpo)
        {
            IntPtr handle = gpo.GetRegistryKey(SectionMachine);
            return RegistryKey.FromHandle(new SafeRegistryHandle(handle, true));
        }

        private static string[] Numbered(RegistryKey list)
        {
            List<KeyValuePair<int, string>> entries = new List<KeyValuePair<int, string>>();
            foreach (string name in list.GetValueNames())
            {
                int index;
                if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out index))
                    entries.Add(new KeyValuePair<int, string>(index, Convert.ToString(list.GetValue(name), CultureInfo.InvariantCulture)));
            }
            entries.Sort((a, b) => a.Key.CompareTo(b.Key));
            return entries.ConvertAll(e => e.Value).ToArray();
        }

        private static T OnStaThread<T>(Func<T> work)
        {
            T result = default(T);
            Exception failure = null;
            Thread thread = new Thread(() =>
            {
                try
                {
                    result = work();
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
            thread.SetApartmentState(ApartmentState.STA);
            thread.Start();
            thread.Join();
            if (failure != null)
                throw new InvalidOperationException(failure.Message, failure);
            return result;
        }
    }
}
'@
Add-CSharpType -AnsibleModule $module -References $localPolicySource

$delegationKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\CredentialsDelegation'
# The same key in the local GPO's machine registry policy (relative to HKLM there).
$delegationPolicyPath = 'SOFTWARE\Policies\Microsoft\Windows\CredentialsDelegation'
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

function Get-LocalPolicyList {
    <# The list in the local GPO (Registry.pol); $null when the GPO does not set it. #>
    param([Hashtable]$Definition, [string]$Option)

    try {
        $list = [WinopsRemoting.CredSSP.LocalMachinePolicy]::GetList($delegationPolicyPath, $Definition.Switch, $Definition.Subkey)
    }
    catch {
        $module.FailJson("cannot read $option from the local Group Policy Object: $($_.Exception.Message)", $_)
    }
    if ($null -eq $list) {
        return $null
    }
    , [string[]]$list
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
    $module.FailJson('client is true but delegate_computers is missing or empty; name at least one computer this host may delegate credentials to')
}

# client: false does what Disable-WSManCredSSP -Role Client does (PowerShell's CredSSP.cs,
# DeleteDelegateSettings): the wsman entries leave the "Allow delegating fresh credentials" list,
# live and in the local GPO, other services' entries (TERMSRV/*) stay, and a list left empty
# takes the policy out. The NTLM-only list is not touched, as the cmdlet does not touch it.
if ($module.Params.client -eq $false -and $null -eq $module.Params.delegate_computers) {
    $definition = $delegationLists.delegate_computers
    $found = Get-DelegationList -Definition $definition
    if ($null -eq $found) {
        $found = Get-LocalPolicyList -Definition $definition -Option 'delegate_computers'
    }
    if ($null -ne $found) {
        $wantedLists.delegate_computers = [string[]]@($found | Where-Object { -not $_.StartsWith('wsman', [System.StringComparison]::OrdinalIgnoreCase) })
    }
}

if ($null -ne $module.Params.server) {
    Update-RoleSwitch -Role 'Service' -Wanted $module.Params.server
}
if ($null -ne $module.Params.client) {
    Update-RoleSwitch -Role 'Client' -Wanted $module.Params.client
}

$module.Result.local_group_policy = @()
foreach ($option in $delegationLists.Keys) {
    $definition = $delegationLists[$option]
    $current = Get-DelegationList -Definition $definition
    $inLocalPolicy = Get-LocalPolicyList -Definition $definition -Option $option
    $before[$option] = $current
    if ($null -ne $inLocalPolicy) {
        $module.Result.local_group_policy += $option
    }
    if (-not $wantedLists.ContainsKey($option)) {
        $after[$option] = $current
        $module.Result[$option] = $current
        continue
    }
    $wanted = $wantedLists[$option]
    $after[$option] = $wanted
    $module.Result[$option] = $wanted
    $same = ($null -eq $current -and $wanted.Count -eq 0) -or ($null -ne $current -and (($current -join "`n") -ceq ($wanted -join "`n")))
    # A local GPO that holds another list would write it back at the next policy refresh.
    # An empty wanted list takes the policy out of the GPO altogether.
    $policySame = $null -eq $inLocalPolicy -or ($wanted.Count -gt 0 -and (($inLocalPolicy -join "`n") -ceq ($wanted -join "`n")))
    if ($same -and $policySame) {
        continue
    }
    if (-not $module.CheckMode) {
        try {
            if (-not $policySame) {
                [WinopsRemoting.CredSSP.LocalMachinePolicy]::SetList($delegationPolicyPath, $definition.Switch, $definition.Concatenate, $definition.Subkey, [string[]]$wanted)
            }
            if (-not $same) {
                Set-DelegationList -Definition $definition -Spns $wanted
            }
        }
        catch {
            $module.FailJson("cannot write $option ($delegationKey\$($definition.Subkey)$(if (-not $policySame) { ' and the local Group Policy Object' })): $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
}

# The diff's keys are the module's options: server and client stand for Service\Auth\CredSSP and
# Client\Auth\CredSSP (present when the option was given), delegate_computers and
# delegate_computers_ntlm_only for the lists (always present; null when the policy is not set).
$module.Diff.before = $before
$module.Diff.after = $after
$module.ExitJson()
