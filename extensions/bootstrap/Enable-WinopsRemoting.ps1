<#
.SYNOPSIS
Prepares a Windows host for Ansible over WinRM with HTTPS, secure authentication and a scoped
firewall: the secure successor of ConfigureRemotingForAnsible.ps1.

.DESCRIPTION
For a host that nothing can reach yet. Uses the same defaults as the winops.remoting roles, so a
later run of the winops.remoting.setup or harden playbook finds nothing to change:

- WinRM service running and started automatically; PowerShell remoting registered.
- A self-signed certificate (friendly name 'winops.remoting WinRM HTTPS', RSA 3072, SHA-256,
  renewed when it expires within 30 days), or an existing certificate by thumbprint.
- An HTTPS listener on port 5986 bound to that certificate.
- An inbound firewall rule 'winops-WinRM-HTTPS-In' for that port, limited to -ControllerAddress
  and to the listeners' own addresses (-FirewallLocalAddress), and every other enabled local
  rule that admits that port from other addresses (set-up scripts name theirs with a GUID)
  switched off, as the winrm_listener role does.
- Kerberos and Negotiate on; Basic, Certificate and CredSSP off; unencrypted traffic refused;
  channel binding hardening Strict.
- The winrm_hardening role's defaults: Basic and unencrypted traffic off for the WinRM client too,
  the WinRM operational event log on, PowerShell script block logging on (invocation logging
  off), and, with -RemotingAccount, PowerShell remoting and the WinRM service (RootSDDL)
  restricted to exactly those accounts on every session configuration.
- Plain HTTP listeners removed and TCP 5985 closed to the network (see -HttpListener): every
  enabled local rule that admits it switched off, Windows' own and GUID-named ones such as the
  'Windows Remote Management (HTTP-In)' rule of Ansible's WinRM guide alike, since Ansible
  connects over HTTPS from the start.

Settings that Group Policy controls are reported and left alone. The issuer of the listener
certificate (the certificate itself when self-signed) is written in PEM to -IssuerExportPath;
copy it to the controller and point ansible_winrm_ca_trust_path / ansible_psrp_ca_cert at it.

Run from an elevated 64-bit Windows PowerShell 5.1 (powershell.exe; Windows Server 2016 /
Windows 10 or later), not PowerShell 7: PowerShell 7 lists and changes only its own session
configurations (PowerShell's CustomShellCommands.cs filters them by edition), so
Microsoft.PowerShell, the one the psrp connection uses, would be left as it is; and not the
32-bit Windows PowerShell of a 64-bit Windows, which has no local accounts module. Run it at the
console (or over RDP), not over WinRM: it may restart the WinRM service and it removes the plain
HTTP listener, and either ends WinRM sessions, the one that runs it included, so it refuses to
run in one.

    powershell.exe -NoProfile -ExecutionPolicy Bypass -File .\Enable-WinopsRemoting.ps1 -ControllerAddress 192.0.2.10

Use -WhatIf to see what it would change. Where WinRM is stopped (Windows client editions ship
it so), -WhatIf cannot read WinRM's settings and lists what a run would do to them instead.

Plain HTTP is removed only when the HTTPS rule is in force: where Group Policy keeps local
firewall rules out ("Apply local firewall rules: No") or the firewall blocks all incoming
connections, the rule is written but not applied, so HTTP stays and the script says why.

.PARAMETER ControllerAddress
Required. Remote addresses allowed through the firewall to the HTTPS port: your controllers
and execution nodes, as addresses, prefixes (192.0.2.0/24), ranges (192.0.2.10-192.0.2.20) or
keywords such as LocalSubnet. There is no default: plain HTTP, which Windows' own rules admit
from any address on domain and private networks, is removed, so a controller outside the list
is locked out.

.PARAMETER ListenerAddress
Address selectors for HTTPS listeners: '*', 'IP:<IPv4 or IPv6>' or 'MAC:<aa-bb-cc-dd-ee-ff>'.

.PARAMETER FirewallLocalAddress
Addresses of this host the firewall rule admits the HTTPS port on (its LocalAddress: Windows
Firewall matches it against the address a connection arrives on): addresses, prefixes, ranges,
or Any alone. By default, as the winrm_listener role derives it: the addresses of the 'IP:'
listeners of -ListenerAddress (an IPv6 zone such as %12 dropped), or Any as soon as one is '*'
or 'MAC:' (a MAC listener follows whatever addresses its adapter has, now and later). The
address your controllers connect to must be among them, or they are locked out once plain HTTP
is gone.

.PARAMETER HttpsPort
Port of the HTTPS listener (default 5986).

.PARAMETER AnsibleHost
The name or address Ansible connects to (the host's ansible_host, else its inventory name). The
self-signed certificate then gets the names the winops.remoting.setup and harden playbooks give
it, so that their first run finds nothing to change: a DNS name is its only DNS name; an IP
address goes into the subject alternative name next to the computer name and, on a domain
member, its FQDN. Give it, or -DnsName and -IPAddress, whenever a playbook runs after this
script, and wherever the DNS host name is longer than 15 characters: the computer name is the
NetBIOS name, which Windows truncates to 15.

.PARAMETER DnsName
DNS names for a self-signed certificate (default: -AnsibleHost when it is a name, else the
computer name and, on a domain member, its FQDN). The name Ansible connects to must be among
them, or in -IPAddress.

.PARAMETER IPAddress
IP addresses for the self-signed certificate, for controllers that connect by address (default:
-AnsibleHost when it is an address).

.PARAMETER CertificateThumbprint
Use this certificate from Cert:\LocalMachine\My instead of a self-signed one.

.PARAMETER CertificateValidityDays
Lifetime of a new self-signed certificate (default 365).

.PARAMETER AuthMethod
Authentication methods the WinRM service accepts; all others are switched off.
Default Kerberos and Negotiate.

.PARAMETER HttpListener
absent (default): remove plain HTTP listeners; localhost: keep only one on 127.0.0.1 for local
tools such as DSC; keep: leave them alone.

.PARAMETER RemotingAccount
The accounts Ansible connects as (the harden playbook's winrm_hardening_remoting_accounts,
default its ansible_user, such as '.\ansible' or 'EXAMPLE\ansible'; on a domain controller,
which has no local accounts, 'EXAMPLE\ansible' or a SID): every PowerShell session
configuration and the WinRM service's RootSDDL then grant exactly these accounts, as the
winrm_hardening role leaves them. Other administrators lose remote access. Without it they stay
as they are, and the first harden run restricts them.

.PARAMETER EnableLocalAccountTokenFilterPolicy
Give local administrator accounts other than the built-in Administrator a full token over the
network (LocalAccountTokenFilterPolicy=1). Needed only to use such accounts with Ansible.
Without it the value is left as it was; Enable-PSRemoting, which the script runs where remoting
is not registered yet, sets it to 1, and the script puts the previous value back.

.PARAMETER IssuerExportPath
Where to write the issuer PEM (default C:\ProgramData\winops\winrm-https-issuer.pem). A folder
the script makes for it grants only SYSTEM and Administrators; an existing folder must be owned
by SYSTEM, Administrators or you and let no one else create or change files in it (a folder
made under ProgramData by hand inherits that right for every user, who could swap the file), or
the script stops before changing anything. The certificate's SHA-256 fingerprint is printed
too: compare it with the copy on the controller.

.EXAMPLE
.\Enable-WinopsRemoting.ps1 -ControllerAddress 192.0.2.10, 198.51.100.0/24 -AnsibleHost server01.example.com -RemotingAccount .\ansible

.EXAMPLE
.\Enable-WinopsRemoting.ps1 -ControllerAddress 192.0.2.0/24 -CertificateThumbprint E6CDAA82EEAF2ECE8546E05DB7F3E01AA47D76CE -HttpListener localhost
#>
#Requires -PSEdition Desktop
[CmdletBinding(SupportsShouldProcess = $true)]
param (
    # No default: see .PARAMETER ControllerAddress.
    [Parameter(Mandatory = $true)]
    [ValidateNotNullOrEmpty()]
    [string[]]
    $ControllerAddress,

    [string[]]
    $ListenerAddress = @('*'),

    [string[]]
    $FirewallLocalAddress = @(),

    [ValidateRange(1, 65535)]
    [int]
    $HttpsPort = 5986,

    [string]
    $AnsibleHost,

    [string[]]
    $DnsName = @(),

    [string[]]
    $IPAddress = @(),

    [string]
    $CertificateThumbprint,

    [ValidateRange(31, 3650)]
    [int]
    $CertificateValidityDays = 365,

    [ValidateSet('Basic', 'Kerberos', 'Negotiate', 'Certificate', 'CredSSP')]
    [string[]]
    $AuthMethod = @('Kerberos', 'Negotiate'),

    [ValidateSet('absent', 'localhost', 'keep')]
    [string]
    $HttpListener = 'absent',

    [string[]]
    $RemotingAccount = @(),

    [switch]
    $EnableLocalAccountTokenFilterPolicy,

    [string]
    $IssuerExportPath = (Join-Path -Path $env:ProgramData -ChildPath 'winops\winrm-https-issuer.pem')
)

Set-StrictMode -Version 2.0
$ErrorActionPreference = 'Stop'

# The same names and values as the winops.remoting roles and modules.
$certificateFriendlyName = 'winops.remoting WinRM HTTPS'
$systemPolicy = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Policies\System'
$renewDaysBeforeExpiry = 30
$firewallRuleName = 'winops-WinRM-HTTPS-In'
$builtinHttpRules = @('WINRM-HTTP-In-TCP', 'WINRM-HTTP-In-TCP-PUBLIC')
$httpPort = 5985
$listenerUri = 'winrm/config/listener'
$policyRoot = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM'
$powerShellPolicy = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\PowerShell'
$winrmOperationalLog = 'Microsoft-Windows-WinRM/Operational'
$rootSddlPath = 'WSMan:\localhost\Service\RootSDDL'
# The audit part of win_psremoting_access's exact descriptor: every failure and successful
# writes and executes, as Windows' default descriptors audit.
$remotingAuditPart = 'S:P(AU;FA;GA;;;WD)(AU;SA;GXGW;;;WD)'

function ConvertTo-RuleNameLiteral {
    <# A rule name as -Name of the NetFirewallRule cmdlets takes it literally: -Name accepts
       wildcards (Get-NetFirewallRule reference), so *, ?, [, ] and the backtick are escaped. #>
    param([string]$Name)

    return [System.Management.Automation.WildcardPattern]::Escape($Name)
}

function Write-Step {
    param([string]$Message)

    Write-Host "[winops] $Message"
}

function Assert-Administrator {
    $principal = [System.Security.Principal.WindowsPrincipal]::new([System.Security.Principal.WindowsIdentity]::GetCurrent())
    if (-not $principal.IsInRole([System.Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'Run this script from an elevated PowerShell (Run as administrator).'
    }
}

function Assert-ConsoleSession {
    <#
    Over WinRM the script would end its own session half-way: removing plain HTTP and restarting
    WinRM drop the connection that runs it, before the issuer PEM the controller needs is
    safely out. $PSSenderInfo exists only in a PSSession (about_Automatic_Variables: remoting,
    the psrp connection); a WinRS shell (winrs.exe, the winrm connection) runs its commands
    under winrshost.exe instead, so the process's ancestors are checked too.
    #>
    # Get-Variable, not $PSSenderInfo: under strict mode an unset variable throws.
    $remote = $null -ne (Get-Variable -Name PSSenderInfo -ErrorAction SilentlyContinue)
    $processId = $PID
    for ($depth = 0; -not $remote -and $depth -lt 16; $depth++) {
        $process = Get-CimInstance -ClassName Win32_Process -Filter "ProcessId = $processId"
        if ($null -eq $process -or $process.ParentProcessId -eq $processId) {
            break
        }
        $remote = @('wsmprovhost.exe', 'winrshost.exe') -contains ([string]$process.Name).ToLowerInvariant()
        $processId = $process.ParentProcessId
    }
    if ($remote) {
        throw 'This script runs over WinRM here, which it removes and restarts under itself: run it at the console or over RDP. Nothing was changed.'
    }
}

function Assert-64BitProcess {
    <# Get-LocalUser and Get-LocalGroup (Microsoft.PowerShell.LocalAccounts) are missing from
       32-bit PowerShell on a 64-bit Windows: -RemotingAccount would fail with a misleading
       "is not an account" once the script is under way. #>
    if ([Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess) {
        throw 'Run this script from the 64-bit Windows PowerShell (C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe), not the 32-bit one (SysWOW64), which lacks the local accounts module. Nothing was changed.'
    }
}

function Assert-IssuerExportFolder {
    <# The controller trusts the PEM written here: a folder another user made (ProgramData lets
       users create folders, and the creator owns what they create) could let that user
       replace it. An existing folder must be owned by SYSTEM, Administrators or the account
       running the script; Export-IssuerPem creates a missing one for those only. #>
    $folder = Split-Path -Path $IssuerExportPath -Parent
    if (-not (Test-Path -LiteralPath $folder)) {
        return
    }
    $acl = Get-Acl -LiteralPath $folder
    $owner = $acl.GetOwner([System.Security.Principal.SecurityIdentifier]).Value
    $trusted = @('S-1-5-18', 'S-1-5-32-544', [System.Security.Principal.WindowsIdentity]::GetCurrent().User.Value)
    if ($trusted -notcontains $owner) {
        throw "IssuerExportPath folder '$folder' is owned by $owner, not by SYSTEM, Administrators or you, so another user could replace the issuer PEM in it: remove the folder or choose another -IssuerExportPath. Nothing was changed."
    }
    <# Owned by an administrator is not enough: a folder made under ProgramData without
       permissions of its own inherits BUILTIN\Users:(CI)(WD,AD), so any user can create files
       in it, the PEM among them between its removal and its writing. Refused: any other
       account's right to create, delete or re-permission what is in the folder, or to write
       the files it will hold. CREATOR OWNER (S-1-3-0) stands for whoever creates the file:
       here the account running the script. An ACE that only subfolders inherit is harmless. #>
    $changing = [int64][System.Security.AccessControl.FileSystemRights]'CreateFiles, AppendData, DeleteSubdirectoriesAndFiles, Delete, ChangePermissions, TakeOwnership'
    $changing = $changing -bor 0x10000000 -bor 0x40000000  # GENERIC_ALL, GENERIC_WRITE as an ACE may hold them
    $inheritOnly = [int][System.Security.AccessControl.PropagationFlags]::InheritOnly
    $objectInherit = [int][System.Security.AccessControl.InheritanceFlags]::ObjectInherit
    # @(): a loop that yields nothing must count 0 (a $null would count 1).
    $writers = @(foreach ($rule in $acl.GetAccessRules($true, $true, [System.Security.Principal.SecurityIdentifier])) {
        $sid = $rule.IdentityReference.Value
        $subfoldersOnly = (([int]$rule.PropagationFlags -band $inheritOnly) -ne 0) -and (([int]$rule.InheritanceFlags -band $objectInherit) -eq 0)
        if ($rule.AccessControlType -ne 'Allow' -or $trusted -contains $sid -or $sid -eq 'S-1-3-0' -or $subfoldersOnly) {
            continue
        }
        if (([int64]$rule.FileSystemRights -band $changing) -ne 0) {
            $sid
        }
    })
    if ($writers.Count -gt 0) {
        throw "IssuerExportPath folder '$folder' lets $(($writers | Select-Object -Unique) -join ', ') create or change files in it (a folder under ProgramData inherits that for BUILTIN\Users, S-1-5-32-545), so another user could replace the issuer PEM: remove the folder (the script then creates it for SYSTEM and Administrators only) or choose another -IssuerExportPath. Nothing was changed."
    }
}

function Assert-ListenerAddress {
    param([string[]]$Address)

    foreach ($value in $Address) {
        $valid = $false
        if ($value -eq '*' -or $value -match '^MAC:([0-9A-Fa-f]{2}-){5}[0-9A-Fa-f]{2}$') {
            $valid = $true
        }
        elseif ($value -match '^IP:(?<ip>.+)$') {
            $text = $Matches.ip
            $parsed = $null
            $valid = [System.Net.IPAddress]::TryParse($text, [ref]$parsed) -and ($text -match ':' -or $text -match '^\d{1,3}(\.\d{1,3}){3}$')
        }
        if (-not $valid) {
            throw "ListenerAddress '$value' is invalid: use '*', 'IP:<IPv4 or IPv6 address>' or 'MAC:<aa-bb-cc-dd-ee-ff>'."
        }
    }
}

function Test-FirewallAddressText {
    <# Whether $Text is an address as the firewall takes it: IPv4 as a dotted quad (TryParse
       would also take shorthand such as '10.1'), or IPv6. #>
    param([string]$Text)

    $parsed = $null
    return [System.Net.IPAddress]::TryParse($Text, [ref]$parsed) -and ($Text -match ':' -or $Text -match '^\d{1,3}(\.\d{1,3}){3}$')
}

function Assert-FirewallLocalAddress {
    <# -FirewallLocalAddress in the forms New-NetFirewallRule -LocalAddress documents: an
       address, a prefix (by bit count, or by mask for IPv4), a range, or Any alone. #>
    param([string[]]$Address)

    foreach ($value in $Address) {
        $valid = $false
        if ($value -eq 'Any') {
            $valid = @($Address).Count -eq 1
        }
        elseif ($value -match '^(?<first>[^-/]+)-(?<last>[^-/]+)$') {
            $first = $Matches.first
            $last = $Matches.last
            $valid = (Test-FirewallAddressText -Text $first) -and (Test-FirewallAddressText -Text $last)
        }
        elseif ($value -match '^(?<ip>[^/]+)/(?<prefix>[^/]+)$') {
            $ip = $Matches.ip
            $prefix = $Matches.prefix
            $isIPv6 = $ip -match ':'
            $longest = if ($isIPv6) { 128 } else { 32 }
            if ($prefix -match '^\d{1,3}$') {
                $valid = (Test-FirewallAddressText -Text $ip) -and ([int]$prefix -le $longest)
            }
            else {
                $valid = (-not $isIPv6) -and (Test-FirewallAddressText -Text $ip) -and (Test-FirewallAddressText -Text $prefix)
            }
        }
        else {
            $valid = Test-FirewallAddressText -Text $value
        }
        if (-not $valid) {
            throw "FirewallLocalAddress '$value' is invalid: use IPv4 or IPv6 addresses, prefixes (192.0.2.0/24), ranges (192.0.2.10-192.0.2.20), or 'Any' alone; leave it out to derive it from -ListenerAddress."
        }
    }
}

function Get-FirewallLocalAddress {
    <# -FirewallLocalAddress, or what the winrm_listener role derives from its listeners: Any
       when a listener is '*' or 'MAC:', else the addresses of the 'IP:' listeners without an
       IPv6 zone (-LocalAddress takes none). #>
    if (@($FirewallLocalAddress).Count -gt 0) {
        return @($FirewallLocalAddress)
    }
    if (@($ListenerAddress | Where-Object { $_ -notmatch '^IP:' }).Count -gt 0) {
        return @('Any')
    }
    return @($ListenerAddress | ForEach-Object { ($_.Substring(3) -split '%')[0] } | Sort-Object -Unique)
}

function Enable-WinRMService {
    $service = Get-Service -Name WinRM
    if ([string]$service.StartType -ne 'Automatic') {
        if ($PSCmdlet.ShouldProcess('WinRM service', 'Start automatically')) {
            Set-Service -Name WinRM -StartupType Automatic
        }
        Write-Step 'WinRM now starts automatically.'
    }
    $configuration = $null
    if ($service.Status -eq 'Running') {
        try {
            $configuration = Get-PSSessionConfiguration -Name Microsoft.PowerShell -ErrorAction Stop
        }
        catch {
            # Not registered (or WinRM not answering yet): Enable-PSRemoting below registers it.
            $configuration = $null
        }
    }
    if ($service.Status -eq 'Running' -and $null -ne $configuration) {
        Write-Step 'WinRM is running and PowerShell remoting is registered.'
        return
    }
    if ($PSCmdlet.ShouldProcess('WinRM service', 'Start and register PowerShell remoting')) {
        Start-Service -Name WinRM
        # Enable-PSRemoting grants local administrators a full network token
        # (LocalAccountTokenFilterPolicy=1, PowerShell's RemotingErrorIdStrings DcsWarningMessage);
        # without -EnableLocalAccountTokenFilterPolicy the value it found is put back.
        $tokenPolicy = Get-ItemProperty -LiteralPath $systemPolicy -Name LocalAccountTokenFilterPolicy -ErrorAction SilentlyContinue
        # Registers the session configurations; its HTTP listener is dealt with below.
        Enable-PSRemoting -SkipNetworkProfileCheck -Force | Out-Null
        if (-not $EnableLocalAccountTokenFilterPolicy) {
            if ($null -eq $tokenPolicy) {
                Remove-ItemProperty -LiteralPath $systemPolicy -Name LocalAccountTokenFilterPolicy -ErrorAction SilentlyContinue
            }
            else {
                New-ItemProperty -LiteralPath $systemPolicy -Name LocalAccountTokenFilterPolicy -Value $tokenPolicy.LocalAccountTokenFilterPolicy -PropertyType DWord -Force | Out-Null
            }
        }
    }
    Write-Step 'Started WinRM and registered PowerShell remoting.'
}

function Get-DefaultDnsName {
    $names = @($env:COMPUTERNAME)
    $ipProperties = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
    if ($ipProperties.DomainName) {
        $names += "$($ipProperties.HostName).$($ipProperties.DomainName)"
    }
    return $names
}

function Read-DerLength {
    <# Reads a DER length at $Offset and moves $Offset past it. #>
    param([byte[]]$Bytes, [ref]$Offset)

    $first = [int]$Bytes[$Offset.Value]
    $Offset.Value = $Offset.Value + 1
    if ($first -lt 0x80) {
        return $first
    }
    $length = 0
    for ($index = 0; $index -lt ($first -band 0x7F); $index++) {
        $length = ($length * 256) + [int]$Bytes[$Offset.Value]
        $Offset.Value = $Offset.Value + 1
    }
    return $length
}

function Get-SubjectAlternativeName {
    <#
    DNS names and IP addresses of the subject alternative name, decoded from the extension's DER
    (dNSName [2], iPAddress [7]) as win_winrm_https_certificate decodes them, independent of the
    language Windows formats extensions in. This script runs alone, so it keeps its own copy.
    #>
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $names = @{ dns = [System.Collections.Generic.List[string]]::new(); ip = [System.Collections.Generic.List[string]]::new() }
    $extension = $Certificate.Extensions | Where-Object { $_.Oid.Value -eq '2.5.29.17' } | Select-Object -First 1
    if ($null -eq $extension) {
        return $names
    }
    [byte[]]$raw = $extension.RawData
    $offset = 1
    $end = (Read-DerLength -Bytes $raw -Offset ([ref]$offset)) + $offset
    while ($offset -lt $end) {
        $tag = $raw[$offset]
        $offset++
        $length = Read-DerLength -Bytes $raw -Offset ([ref]$offset)
        $value = [byte[]]::new($length)
        [Array]::Copy($raw, $offset, $value, 0, $length)
        $offset += $length
        if ($tag -eq 0x82) {
            $names.dns.Add([System.Text.Encoding]::ASCII.GetString($value))
        }
        elseif ($tag -eq 0x87 -and ($length -eq 4 -or $length -eq 16)) {
            $names.ip.Add([System.Net.IPAddress]::new($value).ToString())
        }
    }
    return $names
}

function Get-NameKey {
    <# DNS names and IP addresses as one comparable string (as the module's Get-NameKey). #>
    param([string[]]$DnsNames, [string[]]$IPAddresses)

    $dnsPart = @($DnsNames | Where-Object { $_ } | ForEach-Object { "dns:$($_.ToLowerInvariant())" })
    $ipPart = @($IPAddresses | Where-Object { $_ } | ForEach-Object { "ip:$(([System.Net.IPAddress]::Parse($_)).ToString().ToLowerInvariant())" })
    return (@($dnsPart + $ipPart | Sort-Object -Unique) -join ',')
}

function Get-ListenerCertificate {
    <# The certificate for the HTTPS listener: given, reused or newly created. #>
    if ($CertificateThumbprint) {
        $thumbprint = ($CertificateThumbprint -replace '\s', '').ToUpperInvariant()
        $given = Get-Item -LiteralPath "Cert:\LocalMachine\My\$thumbprint" -ErrorAction SilentlyContinue
        if ($null -eq $given -or -not $given.HasPrivateKey) {
            throw "CertificateThumbprint '$thumbprint' is not in Cert:\LocalMachine\My with a private key."
        }
        Write-Step "Using the given certificate $thumbprint."
        return $given
    }

    # The names the playbooks give the certificate for -AnsibleHost (winops_setup_target): a
    # name alone, or an address next to the module's default names.
    $addresses = @($IPAddress)
    $hostNames = @($DnsName)
    if ($AnsibleHost) {
        $parsed = $null
        $isAddress = [System.Net.IPAddress]::TryParse($AnsibleHost, [ref]$parsed) -and $AnsibleHost -match '[.:]'
        if ($isAddress -and $addresses.Count -eq 0) {
            $addresses = @($AnsibleHost)
        }
        elseif (-not $isAddress -and $hostNames.Count -eq 0) {
            $hostNames = @($AnsibleHost)
        }
    }
    # @() keeps a single name an array, so $names[0] is a name and not its first letter.
    $names = @(if ($hostNames.Count -gt 0) { $hostNames } else { Get-DefaultDnsName })
    # Compared as the module compares them (win_winrm_https_certificate): the DNS names and
    # addresses of the subject alternative name, and the CN, so that a re-run, and the
    # playbooks after it, keep the certificate.
    $wanted = Get-NameKey -DnsNames $names -IPAddresses $addresses
    $existing = Get-ChildItem -LiteralPath 'Cert:\LocalMachine\My' |
        Where-Object { $_.FriendlyName -eq $certificateFriendlyName -and $_.HasPrivateKey } |
        Sort-Object -Property NotAfter -Descending |
        Select-Object -First 1
    if ($null -ne $existing -and $existing.NotAfter -gt (Get-Date).AddDays($renewDaysBeforeExpiry)) {
        $san = Get-SubjectAlternativeName -Certificate $existing
        $have = Get-NameKey -DnsNames $san.dns -IPAddresses $san.ip
        $commonName = $existing.GetNameInfo([System.Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
        if ($have -eq $wanted -and $commonName -eq $names[0]) {
            Write-Step "Reusing the self-signed certificate $($existing.Thumbprint) (expires $($existing.NotAfter))."
            return $existing
        }
    }

    $certParams = @{
        Type = 'SSLServerAuthentication'
        # As the module makes it: a subject of its own for each certificate, so a controller can
        # trust the replaced and the new one while a listener moves (see the module).
        # In the invariant culture: the current one may count years in another calendar
        # (th-TH: the Thai Buddhist year), and the module writes Gregorian UTC.
        Subject = "CN=$($names[0]), OU=winops.remoting $([DateTime]::UtcNow.ToString('yyyyMMddHHmmss', [System.Globalization.CultureInfo]::InvariantCulture))"
        CertStoreLocation = 'Cert:\LocalMachine\My'
        NotAfter = (Get-Date).AddDays($CertificateValidityDays)
        KeyAlgorithm = 'RSA'
        KeyLength = 3072
        HashAlgorithm = 'SHA256'
        KeyExportPolicy = 'NonExportable'
        FriendlyName = $certificateFriendlyName
    }
    if ($addresses.Count -gt 0) {
        $sanEntries = @($names | ForEach-Object { "DNS=$_" }) + @($addresses | ForEach-Object { "IPAddress=$_" })
        $certParams.TextExtension = @("2.5.29.17={text}$($sanEntries -join '&')")
    }
    else {
        $certParams.DnsName = $names
    }
    if (-not $PSCmdlet.ShouldProcess("Cert:\LocalMachine\My", "Create a self-signed certificate for $($names -join ', ')")) {
        return $null
    }
    $created = New-SelfSignedCertificate @certParams
    Write-Step "Created the self-signed certificate $($created.Thumbprint) for $($names -join ', ')."
    return $created
}

function Get-Listener {
    <#
    The configured listeners. A listener with a Source attribute ('Compatibility' on ports 80 and
    443, 'GPO' from Group Policy) shares its Address and Transport, the selector, with a
    configured one and is not changed here (Write-SourcedListener reports it).
    #>
    return @(Get-WSManInstance -ResourceURI $listenerUri -Enumerate | Where-Object { -not $_.GetAttribute('Source') })
}

function Write-SourcedListener {
    foreach ($listener in @(Get-WSManInstance -ResourceURI $listenerUri -Enumerate | Where-Object { $_.GetAttribute('Source') })) {
        Write-Warning "The $($listener.Transport) listener on $($listener.Address), port $($listener.Port), comes from $($listener.GetAttribute('Source')) (Group Policy, or EnableCompatibilityHttp(s)Listener) and is left as it is; change it there."
    }
}

function Set-HttpsListener {
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $thumbprint = $Certificate.Thumbprint
    # WinRM refuses a listener whose Hostname is not its certificate's CN
    # (ERROR_WSMAN_CONFIG_CERT_CN_DOES_NOT_MATCH_HOSTNAME), so both are written together.
    $hostname = $Certificate.GetNameInfo([System.Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
    $listeners = Get-Listener
    foreach ($address in $ListenerAddress) {
        $selector = @{ Transport = 'HTTPS'; Address = $address }
        $current = $listeners | Where-Object { $_.Transport -eq 'HTTPS' -and $_.Address -eq $address } | Select-Object -First 1
        $values = @{ Port = [string]$HttpsPort; CertificateThumbprint = $thumbprint; Hostname = $hostname; Enabled = 'true' }
        if ($null -eq $current) {
            if ($PSCmdlet.ShouldProcess("HTTPS listener $address", "Create on port $HttpsPort")) {
                # New-WSManInstance pastes values into its XML unescaped (PowerShell's
                # WsManHelper.cs, ProcessInput), where Set-WSManInstance escapes them.
                $createValues = @{}
                foreach ($name in $values.Keys) {
                    $createValues[$name] = [System.Security.SecurityElement]::Escape([string]$values[$name])
                }
                New-WSManInstance -ResourceURI $listenerUri -SelectorSet $selector -ValueSet $createValues | Out-Null
            }
            Write-Step "Created the HTTPS listener on $address, port $HttpsPort."
        }
        elseif ([string]$current.Port -ne [string]$HttpsPort -or ([string]$current.CertificateThumbprint).ToUpperInvariant() -ne $thumbprint -or [string]$current.Hostname -ne $hostname -or [string]$current.Enabled -ne 'true') {
            if ($PSCmdlet.ShouldProcess("HTTPS listener $address", 'Update port, certificate, host name and state')) {
                Set-WSManInstance -ResourceURI $listenerUri -SelectorSet $selector -ValueSet $values | Out-Null
            }
            Write-Step "Updated the HTTPS listener on $address."
        }
    }
}

function Set-HttpsFirewallRule {
    param([string[]]$LocalAddress)

    $rule = Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $firewallRuleName) -ErrorAction SilentlyContinue
    if ($null -eq $rule) {
        if ($PSCmdlet.ShouldProcess($firewallRuleName, "Create firewall rule for TCP $HttpsPort from $($ControllerAddress -join ', ') on $($LocalAddress -join ', ')")) {
            $ruleParams = @{
                Name = $firewallRuleName
                DisplayName = 'Windows Remote Management (HTTPS-In, winops.remoting)'
                Description = 'WinRM over HTTPS, limited to the Ansible controllers.'
                Direction = 'Inbound'
                Action = 'Allow'
                Protocol = 'TCP'
                LocalPort = [string]$HttpsPort
                RemoteAddress = $ControllerAddress
                LocalAddress = $LocalAddress
                Profile = 'Any'
                Enabled = 'True'
            }
            New-NetFirewallRule @ruleParams | Out-Null
        }
        Write-Step "Opened TCP $HttpsPort to $($ControllerAddress -join ', ') on $($LocalAddress -join ', ')."
        return
    }
    # Set-NetFirewallRule changes only what it is given: a rule of this name that blocks, or
    # admits only some profiles or another protocol, would stay so while reported as allowing.
    if ($PSCmdlet.ShouldProcess($firewallRuleName, "Set inbound allow on TCP $HttpsPort for every profile, remote addresses $($ControllerAddress -join ', ') and local addresses $($LocalAddress -join ', ')")) {
        Set-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $firewallRuleName) -Direction Inbound -Action Allow -Profile Any -Protocol TCP -LocalPort ([string]$HttpsPort) -RemoteAddress $ControllerAddress -LocalAddress $LocalAddress -Enabled True
    }
    Write-Step "Firewall rule $firewallRuleName allows TCP $HttpsPort from $($ControllerAddress -join ', ') on $($LocalAddress -join ', ')."
}

function Set-WSManSetting {
    <# One WSMan:\localhost\Service or \Client setting, unless Group Policy sets it (the
       Policies key ...\WinRM\Service or ...\WinRM\Client). #>
    param([ValidateSet('Service', 'Client')][string]$Section, [string]$Path, [string]$Value, [string]$PolicyName)

    $leaf = Get-Item -LiteralPath "WSMan:\localhost\$Section\$Path"
    if ([string]$leaf.Value -eq $Value) {
        return
    }
    $policy = $null
    if ($PolicyName) {
        $policy = Get-ItemProperty -LiteralPath "$policyRoot\$Section" -Name $PolicyName -ErrorAction SilentlyContinue
        # The channel binding policy's switch: 1 while the policy is enabled (as win_winrm_service
        # reads it); its level value alone does not make the setting policy-owned.
        if ($null -ne $policy -and $PolicyName -eq 'CBTHardeningLevelStatus' -and $policy.CBTHardeningLevelStatus -ne 1) {
            $policy = $null
        }
    }
    if ($null -ne $policy -or $leaf.SourceOfValue -eq 'GPO') {
        Write-Warning "$Section\$Path is set by Group Policy; leaving it at '$($leaf.Value)' instead of '$Value'."
        return
    }
    if ($PSCmdlet.ShouldProcess("WSMan:\localhost\$Section\$Path", "Set to '$Value'")) {
        Set-Item -LiteralPath "WSMan:\localhost\$Section\$Path" -Value $Value -Force
    }
    Write-Step "$Section\$Path = $Value"
}

function Set-Authentication {
    $policyNames = @{ Basic = 'AllowBasic'; Kerberos = 'AllowKerberos'; CredSSP = 'AllowCredSSP'; Negotiate = 'AllowNegotiate'; Certificate = $null }
    foreach ($method in @('Basic', 'Kerberos', 'Negotiate', 'Certificate', 'CredSSP')) {
        $wanted = if ($AuthMethod -contains $method) { 'true' } else { 'false' }
        Set-WSManSetting -Section Service -Path "Auth\$method" -Value $wanted -PolicyName $policyNames[$method]
    }
    Set-WSManSetting -Section Service -Path 'AllowUnencrypted' -Value 'false' -PolicyName 'AllowUnencryptedTraffic'
    Set-WSManSetting -Section Service -Path 'Auth\CbtHardeningLevel' -Value 'Strict' -PolicyName 'CBTHardeningLevelStatus'
    # winrm_hardening's client settings: this host, as a WinRM client, neither sends Basic
    # credentials nor accepts unencrypted traffic either.
    Set-WSManSetting -Section Client -Path 'Auth\Basic' -Value 'false' -PolicyName 'AllowBasic'
    Set-WSManSetting -Section Client -Path 'AllowUnencrypted' -Value 'false' -PolicyName 'AllowUnencryptedTraffic'

    if ($EnableLocalAccountTokenFilterPolicy) {
        $current = Get-ItemProperty -LiteralPath $systemPolicy -Name LocalAccountTokenFilterPolicy -ErrorAction SilentlyContinue
        if ($null -eq $current -or $current.LocalAccountTokenFilterPolicy -ne 1) {
            if ($PSCmdlet.ShouldProcess($systemPolicy, 'Set LocalAccountTokenFilterPolicy to 1')) {
                New-ItemProperty -LiteralPath $systemPolicy -Name LocalAccountTokenFilterPolicy -Value 1 -PropertyType DWord -Force | Out-Null
            }
            Write-Step 'LocalAccountTokenFilterPolicy = 1'
        }
    }
}

function Resolve-RemotingAccount {
    <# The SIDs of -RemotingAccount, resolved as win_psremoting_access resolves its accounts
       (this script runs alone, so it keeps its own copy): a SID as it is; '.\name' as this
       computer's account (NTAccount.Translate does not understand '.'); a local group named
       with this computer's name by its name alone; a bare name that is a local user on this
       computer first. Called before anything changes, so a name the host does not know
       stops the script with nothing half-applied. #>
    $sids = foreach ($account in $RemotingAccount) {
        try {
            if ($account -match '^S-\d-') {
                ([System.Security.Principal.SecurityIdentifier]::new($account)).Value
                continue
            }
            $domain = $null
            $name = $account
            if ($account.Contains('\')) {
                $domain, $name = $account.Split([char]'\', 2)
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
            $ntAccount.Translate([System.Security.Principal.SecurityIdentifier]).Value
        }
        catch {
            throw "RemotingAccount '$account' is not an account, group or SID this host knows: $($_.Exception.Message)"
        }
    }
    return @($sids | Sort-Object -Unique)
}

function Get-AccessForm {
    <# The DACL of an SDDL string in one canonical form, so equal access compares equal. #>
    param([string]$Sddl)

    $descriptor = [System.Security.AccessControl.CommonSecurityDescriptor]::new($false, $false, $Sddl)
    return $descriptor.GetSddlForm([System.Security.AccessControl.AccessControlSections]::Access)
}

function Set-RemotingAccess {
    <# What winrm_hardening's win_psremoting_access task leaves with its defaults (accounts,
       configurations '*', access full, mode exact, root_sddl true): every session configuration
       and RootSDDL with exactly the given accounts, generic all each. A changed session
       configuration takes effect when WinRM restarts, done once at the end. #>
    param([string[]]$Sids)

    if (@($Sids).Count -eq 0) {
        Write-Warning 'PowerShell remoting is left open to every account the session configurations allow; give -RemotingAccount to restrict it now (the harden playbook restricts it to ansible_user).'
        return $false
    }
    $aces = ($Sids | ForEach-Object { "(A;;GA;;;$_)" }) -join ''
    $exactSddl = "O:NSG:BAD:P$aces$remotingAuditPart"
    $wantedForm = Get-AccessForm -Sddl $exactSddl
    $restart = $false
    foreach ($configuration in @(Get-PSSessionConfiguration -Name '*')) {
        # Get-PSSessionConfiguration adds SecurityDescriptorSddl only to an endpoint that has one
        # (PowerShell's CustomShellCommands.cs); under strict mode a missing property throws.
        $sddlProperty = $configuration.PSObject.Properties['SecurityDescriptorSddl']
        $currentSddl = if ($null -ne $sddlProperty) { [string]$sddlProperty.Value } else { '' }
        if ($currentSddl -and (Get-AccessForm -Sddl $currentSddl) -eq $wantedForm) {
            continue
        }
        if ($PSCmdlet.ShouldProcess("session configuration $($configuration.Name)", "Restrict to $($RemotingAccount -join ', ')")) {
            Set-PSSessionConfiguration -Name $configuration.Name -SecurityDescriptorSddl $exactSddl -NoServiceRestart -Force | Out-Null
            $restart = $true
        }
        Write-Step "Restricted the session configuration $($configuration.Name) to $($RemotingAccount -join ', ')."
    }
    $currentRoot = [string](Get-Item -LiteralPath $rootSddlPath).Value
    if ((Get-AccessForm -Sddl $currentRoot) -ne $wantedForm) {
        if ($PSCmdlet.ShouldProcess($rootSddlPath, "Restrict to $($RemotingAccount -join ', ')")) {
            $null = Set-Item -LiteralPath $rootSddlPath -Value $exactSddl -Force
        }
        Write-Step "Restricted the WinRM service (RootSDDL) to $($RemotingAccount -join ', ')."
    }
    return $restart
}

function Set-Logging {
    <# winrm_hardening's auditing defaults: the WinRM operational log on, PowerShell script
       block logging on and its invocation logging off (module logging stays off). #>
    $channel = Get-WinEvent -ListLog $winrmOperationalLog
    if (-not $channel.IsEnabled) {
        if ($PSCmdlet.ShouldProcess($winrmOperationalLog, 'Enable the event log')) {
            $channel.IsEnabled = $true
            $channel.SaveChanges()
        }
        Write-Step "Enabled the event log $winrmOperationalLog."
    }
    $key = "$powerShellPolicy\ScriptBlockLogging"
    foreach ($setting in @(@{ Name = 'EnableScriptBlockLogging'; Value = 1 }, @{ Name = 'EnableScriptBlockInvocationLogging'; Value = 0 })) {
        $current = Get-ItemProperty -LiteralPath $key -Name $setting.Name -ErrorAction SilentlyContinue
        $kind = if ($null -ne $current) { (Get-Item -LiteralPath $key).GetValueKind($setting.Name) } else { $null }
        if ($null -ne $current -and $kind -eq [Microsoft.Win32.RegistryValueKind]::DWord -and $current.($setting.Name) -eq $setting.Value) {
            continue
        }
        if ($PSCmdlet.ShouldProcess("$key\$($setting.Name)", "Set to $($setting.Value)")) {
            if (-not (Test-Path -LiteralPath $key)) {
                New-Item -Path $key -Force | Out-Null
            }
            New-ItemProperty -LiteralPath $key -Name $setting.Name -Value $setting.Value -PropertyType DWord -Force | Out-Null
        }
        Write-Step "$key\$($setting.Name) = $($setting.Value)"
    }
}

function Disable-OtherPortRule {
    <# As the winrm_listener role does (win_winrm_firewall other_rules 'disable'): every other
       enabled inbound allow rule that admits TCP $Port, whatever its name (set-up scripts and
       guides make them with a GUID Name and display names such as 'Allow WinRM HTTPS' or
       'Windows Remote Management (HTTP-In)'), from addresses other than $Scope (from any
       address when $Scope is empty: the port is being closed) is switched off. Group Policy and
       other non-local rules cannot be changed here, and rules that also admit other ports
       (LocalPort Any, a wider range, more entries) serve other traffic too: those are named in
       a warning. #>
    param([int]$Port, [string[]]$Scope = @())

    $portFilters = @{}
    foreach ($filter in @(Get-NetFirewallPortFilter -All -PolicyStore ActiveStore)) {
        $portFilters[[string]$filter.InstanceID] = $filter
    }
    $addressFilters = @{}
    foreach ($filter in @(Get-NetFirewallAddressFilter -All -PolicyStore ActiveStore)) {
        $addressFilters[[string]$filter.InstanceID] = $filter
    }
    $wanted = @($Scope | Sort-Object -Unique) -join ','
    foreach ($rule in @(Get-NetFirewallRule -PolicyStore ActiveStore -TracePolicyStore -Direction Inbound -Action Allow -Enabled True)) {
        $name = [string]$rule.Name
        $portFilter = $portFilters[$name]
        $addressFilter = $addressFilters[$name]
        if ($name -eq $firewallRuleName -or $null -eq $portFilter -or $null -eq $addressFilter) {
            continue
        }
        if (@('TCP', 'Any', '6') -notcontains [string]$portFilter.Protocol) {
            continue
        }
        $everyPort = $false
        $namesPort = $false
        $otherPorts = $false
        foreach ($entry in @($portFilter.LocalPort)) {
            $text = ([string]$entry).Trim()
            if ($text -eq 'Any') {
                $everyPort = $true
            }
            elseif ($text -match '^(?<low>\d+)(-(?<high>\d+))?$') {
                $low = [int]$Matches.low
                $high = if ($Matches.high) { [int]$Matches.high } else { $low }
                if ($low -le $Port -and $Port -le $high) {
                    $namesPort = $true
                    $otherPorts = $otherPorts -or $low -ne $high
                }
                else {
                    $otherPorts = $true
                }
            }
            else {
                $otherPorts = $true
            }
        }
        if (-not ($everyPort -or $namesPort)) {
            continue
        }
        $remote = @(@($addressFilter.RemoteAddress) | ForEach-Object { [string]$_ } | Sort-Object -Unique)
        if ($wanted -and ($remote -join ',') -eq $wanted) {
            continue
        }
        $label = "firewall rule '$($rule.DisplayName)' (Name '$name')"
        if ([string]$rule.PolicyStoreSourceType -ne 'Local') {
            $fix = if ($wanted) { 'scope it to the controllers' } else { 'remove it' }
            Write-Warning "$label ($($rule.PolicyStoreSourceType) policy store) admits TCP $Port from $($remote -join ', ') and cannot be changed here; have its owner $fix."
        }
        elseif ($everyPort -or $otherPorts) {
            Write-Warning "$label admits TCP ports $(@($portFilter.LocalPort) -join ', ') from $($remote -join ', '), port $Port included; it is left on because it serves other ports too."
        }
        else {
            if ($PSCmdlet.ShouldProcess($label, 'Disable')) {
                Set-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) -Enabled False
            }
            Write-Step "Switched off the $label, which admitted TCP $Port from $($remote -join ', ')."
        }
    }
}

function Test-HttpsRuleInForce {
    <#
    Whether the firewall applies this script's local rule, so that removing plain HTTP cannot
    lock the controllers out. INetFwPolicy2.LocalPolicyModifyState is not
    NET_FW_MODIFY_STATE_OK (0) when a local rule does not take effect in the current profiles:
    Group Policy keeps local rules out (GP_OVERRIDE, "Apply local firewall rules: No") or all
    unsolicited inbound traffic is blocked (INBOUND_BLOCKED). The rule must also be in the
    active store, where the firewall's effective rules are. Under -WhatIf the rule may not
    exist yet, so only the modify state counts.
    #>
    $modifyState = [int](New-Object -ComObject HNetCfg.FwPolicy2).LocalPolicyModifyState
    if ($modifyState -ne 0) {
        $reason = if ($modifyState -eq 1) { 'Group Policy does not apply local firewall rules' } else { 'the firewall blocks all incoming connections' }
        Write-Warning "Kept plain HTTP: $reason (LocalPolicyModifyState $modifyState), so the rule $firewallRuleName is not in force and HTTPS would not be reachable. Have the policy admit TCP $HttpsPort from the controllers, then run the script again."
        return $false
    }
    if ($WhatIfPreference) {
        return $true
    }
    if ($null -eq (Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $firewallRuleName) -PolicyStore ActiveStore -ErrorAction SilentlyContinue)) {
        Write-Warning "Kept plain HTTP: the rule $firewallRuleName is not among the firewall's active rules, so HTTPS may not be reachable. Run the script again once it is."
        return $false
    }
    return $true
}

function Write-PlannedWSManChange {
    <# -WhatIf with WinRM stopped: every WSMan read would fail ("local operations require the
       service to be started"), so say what a run would do to WinRM's settings. #>
    Write-Step 'WinRM is stopped, so -WhatIf cannot read its settings. A run starts it and then:'
    Write-Step "- creates or updates the HTTPS listener on $($ListenerAddress -join ', '), port $HttpsPort;"
    Write-Step "- opens TCP $HttpsPort to $($ControllerAddress -join ', ') in the rule $firewallRuleName and switches off other local rules that admit it from elsewhere;"
    Write-Step "- leaves $($AuthMethod -join ' and ') as the only authentication, refuses unencrypted traffic, sets channel binding to Strict, and switches Basic and unencrypted traffic off for the WinRM client;"
    Write-Step '- turns on the WinRM operational log and PowerShell script block logging;'
    if (@($RemotingAccount).Count -gt 0) {
        Write-Step "- restricts every session configuration and RootSDDL to $($RemotingAccount -join ', ') and restarts WinRM;"
    }
    if ($HttpListener -ne 'keep') {
        Write-Step "- removes plain HTTP listeners (HttpListener $HttpListener) and Windows' HTTP firewall rules, if the HTTPS rule is in force;"
    }
    Write-Step "- writes the issuer PEM to $IssuerExportPath."
}

function Remove-PlainHttp {
    if ($HttpListener -eq 'keep') {
        return
    }
    if ($HttpListener -eq 'localhost') {
        $loopback = Get-Listener | Where-Object { $_.Transport -eq 'HTTP' -and $_.Address -eq 'IP:127.0.0.1' }
        if ($null -eq $loopback) {
            if ($PSCmdlet.ShouldProcess('HTTP listener IP:127.0.0.1', "Create on port $httpPort")) {
                New-WSManInstance -ResourceURI $listenerUri -SelectorSet @{ Transport = 'HTTP'; Address = 'IP:127.0.0.1' } -ValueSet @{ Port = [string]$httpPort; Enabled = 'true' } | Out-Null
            }
            Write-Step 'Kept plain HTTP on 127.0.0.1 only.'
        }
    }
    foreach ($listener in @(Get-Listener | Where-Object { $_.Transport -eq 'HTTP' })) {
        if ($HttpListener -eq 'localhost' -and $listener.Address -eq 'IP:127.0.0.1') {
            continue
        }
        if ($PSCmdlet.ShouldProcess("HTTP listener $($listener.Address)", 'Remove')) {
            Remove-WSManInstance -ResourceURI $listenerUri -SelectorSet @{ Transport = 'HTTP'; Address = [string]$listener.Address }
        }
        Write-Step "Removed the plain HTTP listener on $($listener.Address)."
    }
    # WinRM's HTTP port is closed to the network by port, whatever its rules are named (Ansible's
    # WinRM guide opens it with a GUID-named rule); loopback traffic is not filtered (KB2771908),
    # so a listener kept on 127.0.0.1 still answers local tools. Never the HTTPS port.
    if ($HttpsPort -ne $httpPort) {
        Disable-OtherPortRule -Port $httpPort
    }
    foreach ($name in $builtinHttpRules) {
        $rule = Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) -ErrorAction SilentlyContinue
        if ($null -ne $rule -and [string]$rule.Enabled -eq 'True') {
            if ($PSCmdlet.ShouldProcess($name, 'Disable firewall rule')) {
                Disable-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name)
            }
            Write-Step "Switched off the firewall rule $name."
        }
    }
}

function Export-IssuerPem {
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
    $chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
    $chain.ChainPolicy.VerificationFlags = [System.Security.Cryptography.X509Certificates.X509VerificationFlags]::AllowUnknownCertificateAuthority
    [void]$chain.Build($Certificate)
    $issuers = @($chain.ChainElements | ForEach-Object { $_.Certificate } | Select-Object -Skip 1)
    $chain.Reset()  # X509Chain has Dispose only from .NET Framework 4.6
    if ($issuers.Count -eq 0) {
        $issuers = @($Certificate)
    }
    $blocks = foreach ($issuer in $issuers) {
        $base64 = [System.Convert]::ToBase64String($issuer.RawData)
        $lines = for ($offset = 0; $offset -lt $base64.Length; $offset += 64) {
            $base64.Substring($offset, [Math]::Min(64, $base64.Length - $offset))
        }
        "-----BEGIN CERTIFICATE-----`n$($lines -join "`n")`n-----END CERTIFICATE-----`n"
    }
    if ($PSCmdlet.ShouldProcess($IssuerExportPath, 'Write the issuer PEM')) {
        $directory = Split-Path -Path $IssuerExportPath -Parent
        if (-not (Test-Path -LiteralPath $directory)) {
            # SYSTEM and Administrators only, not inherited: nobody else may swap the trust anchor.
            $security = [System.Security.AccessControl.DirectorySecurity]::new()
            $security.SetSecurityDescriptorSddlForm('D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)')
            [void][System.IO.Directory]::CreateDirectory($directory, $security)
        }
        # Again: a folder another user made since the first check (CreateDirectory leaves an
        # existing folder's permissions as they are) is refused before anything is written.
        Assert-IssuerExportFolder
        # A new file, so that it takes the folder's permissions and not a file planted before;
        # CreateNew fails rather than write into a file that appeared after the removal.
        if (Test-Path -LiteralPath $IssuerExportPath) {
            Remove-Item -LiteralPath $IssuerExportPath -Force
        }
        $pem = [System.Text.UTF8Encoding]::new($false).GetBytes(($blocks -join ''))
        $file = [System.IO.File]::Open($IssuerExportPath, [System.IO.FileMode]::CreateNew, [System.IO.FileAccess]::Write, [System.IO.FileShare]::None)
        try {
            $file.Write($pem, 0, $pem.Length)
        } finally {
            $file.Dispose()
        }
    }
    Write-Step "Wrote the issuer to $IssuerExportPath; copy it to the controller for certificate validation."
    foreach ($issuer in $issuers) {
        # As `openssl x509 -noout -fingerprint -sha256` prints it on the controller.
        $sha256 = [System.Security.Cryptography.SHA256]::Create()
        $digest = ($sha256.ComputeHash($issuer.RawData) | ForEach-Object { $_.ToString('X2') }) -join ':'
        $sha256.Dispose()
        Write-Step "SHA-256 fingerprint of $($issuer.Subject): $digest; compare it with the copy on the controller."
    }
}

Assert-Administrator
Assert-ConsoleSession
Assert-64BitProcess
Assert-ListenerAddress -Address $ListenerAddress
Assert-FirewallLocalAddress -Address $FirewallLocalAddress
Assert-IssuerExportFolder
# Not $firewallLocalAddress: PowerShell variable names ignore case, so that is the parameter.
$ruleLocalAddress = @(Get-FirewallLocalAddress)
Enable-WinRMService
# Before anything else changes: an account the host does not know stops the script here.
$remotingSids = @(Resolve-RemotingAccount)
$certificate = Get-ListenerCertificate
if ([string](Get-Service -Name WinRM).Status -ne 'Running') {
    # Only under -WhatIf: a run has started WinRM in Enable-WinRMService.
    Write-PlannedWSManChange
    return
}
if ($null -ne $certificate) {
    Set-HttpsListener -Certificate $certificate
}
Set-HttpsFirewallRule -LocalAddress $ruleLocalAddress
Disable-OtherPortRule -Port $HttpsPort -Scope $ControllerAddress
Set-Authentication
Set-Logging
# Write-Step writes to the host, so the function's only output is whether WinRM must restart.
$restartWinRM = Set-RemotingAccess -Sids $remotingSids
# Before plain HTTP goes and WinRM restarts: the controller needs the issuer to connect at all.
if ($null -ne $certificate) {
    Export-IssuerPem -Certificate $certificate
}
# Last, so that a failure above never leaves a host with neither HTTP nor HTTPS; and only where
# the HTTPS rule is in force, or the host would be left reachable by neither.
if ($HttpListener -eq 'keep' -or (Test-HttpsRuleInForce)) {
    Remove-PlainHttp
}
Write-SourcedListener
if ($restartWinRM) {
    # Session configuration descriptors apply to sessions after WinRM restarts
    # (Set-PSSessionConfiguration -NoServiceRestart above, once for all of them).
    if ($PSCmdlet.ShouldProcess('WinRM service', 'Restart')) {
        Restart-Service -Name WinRM -Force
    }
    Write-Step 'Restarted WinRM so that the restricted session configurations apply.'
}
if ($null -ne $certificate) {
    Write-Step "Done. Connect with ansible_port=$HttpsPort, ansible_winrm_scheme=https (or ansible_psrp_protocol=https) and the issuer above as ansible_winrm_ca_trust_path / ansible_psrp_ca_cert."
}
