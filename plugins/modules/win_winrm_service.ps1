#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.winops.remoting.plugins.module_utils._WinRMConnection

# WinRM service and client settings through the WSMan: drive. A setting that Group Policy sets is
# reported in managed_by_policy and left alone: writing it would fail or be undone at the next
# policy refresh.

$clientOptions = @{
    auth_basic = @{ type = 'bool' }
    auth_digest = @{ type = 'bool' }
    auth_kerberos = @{ type = 'bool' }
    auth_negotiate = @{ type = 'bool' }
    auth_certificate = @{ type = 'bool' }
    auth_credssp = @{ type = 'bool' }
    allow_unencrypted = @{ type = 'bool' }
    trusted_hosts = @{ type = 'list'; elements = 'str' }
}

$spec = @{
    options = @{
        auth_basic = @{ type = 'bool' }
        auth_kerberos = @{ type = 'bool' }
        auth_negotiate = @{ type = 'bool' }
        auth_certificate = @{ type = 'bool' }
        auth_credssp = @{ type = 'bool' }
        allow_unencrypted = @{ type = 'bool' }
        cbt_hardening_level = @{ type = 'str'; choices = @('none', 'relaxed', 'strict') }
        certificate_thumbprint = @{ type = 'str' }
        ipv4_filter = @{ type = 'str' }
        ipv6_filter = @{ type = 'str' }
        max_envelope_size_kb = @{ type = 'int' }
        client = @{ type = 'dict'; options = $clientOptions }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$policyRoot = 'HKLM:\SOFTWARE\Policies\Microsoft\Windows\WinRM'

# option name -> where WinRM keeps it, how to compare it, and the policy value that overrides it.
$serviceSettings = [ordered]@{
    auth_basic = @{ Path = 'Service\Auth\Basic'; Kind = 'bool'; Policy = 'Service\AllowBasic' }
    auth_kerberos = @{ Path = 'Service\Auth\Kerberos'; Kind = 'bool'; Policy = 'Service\AllowKerberos' }
    auth_negotiate = @{ Path = 'Service\Auth\Negotiate'; Kind = 'bool'; Policy = 'Service\AllowNegotiate' }
    auth_certificate = @{ Path = 'Service\Auth\Certificate'; Kind = 'bool'; Policy = $null }
    auth_credssp = @{ Path = 'Service\Auth\CredSSP'; Kind = 'bool'; Policy = 'Service\AllowCredSSP' }
    allow_unencrypted = @{ Path = 'Service\AllowUnencrypted'; Kind = 'bool'; Policy = 'Service\AllowUnencryptedTraffic' }
    # The CBT policy's switch is CBTHardeningLevelStatus: 1 enabled (policy sets the level), 0 disabled
    # (the level is configured locally again), so only 1 counts.
    cbt_hardening_level = @{ Path = 'Service\Auth\CbtHardeningLevel'; Kind = 'cbt'; Policy = 'Service\CBTHardeningLevelStatus'; PolicyEnabledValue = 1 }
    certificate_thumbprint = @{ Path = 'Service\CertificateThumbprint'; Kind = 'thumbprint'; Policy = $null }
    ipv4_filter = @{ Path = 'Service\IPv4Filter'; Kind = 'filter'; Policy = 'Service\IPv4Filter' }
    ipv6_filter = @{ Path = 'Service\IPv6Filter'; Kind = 'filter'; Policy = 'Service\IPv6Filter' }
    max_envelope_size_kb = @{ Path = 'MaxEnvelopeSizekb'; Kind = 'int'; Policy = $null }
}
$clientSettings = [ordered]@{
    auth_basic = @{ Path = 'Client\Auth\Basic'; Kind = 'bool'; Policy = 'Client\AllowBasic' }
    auth_digest = @{ Path = 'Client\Auth\Digest'; Kind = 'bool'; Policy = 'Client\AllowDigest' }
    auth_kerberos = @{ Path = 'Client\Auth\Kerberos'; Kind = 'bool'; Policy = 'Client\AllowKerberos' }
    auth_negotiate = @{ Path = 'Client\Auth\Negotiate'; Kind = 'bool'; Policy = 'Client\AllowNegotiate' }
    auth_certificate = @{ Path = 'Client\Auth\Certificate'; Kind = 'bool'; Policy = $null }
    auth_credssp = @{ Path = 'Client\Auth\CredSSP'; Kind = 'bool'; Policy = 'Client\AllowCredSSP' }
    allow_unencrypted = @{ Path = 'Client\AllowUnencrypted'; Kind = 'bool'; Policy = 'Client\AllowUnencryptedTraffic' }
    # Disabled (0), the "Trusted Hosts" policy leaves the local list in effect (Policy CSP
    # RemoteManagement/TrustedHosts).
    trusted_hosts = @{ Path = 'Client\TrustedHosts'; Kind = 'list'; Policy = 'Client\TrustedHosts'; PolicyEnabledValue = 1 }
}

function Get-IPFilterProblem {
    <# Returns why an IPv4Filter/IPv6Filter value is invalid, or $null. #>
    param([string]$Value, [System.Net.Sockets.AddressFamily]$Family)

    if ($Value.Trim() -eq '' -or $Value.Trim() -eq '*') {
        return $null
    }
    foreach ($range in $Value.Split(',')) {
        foreach ($end in $range.Split('-')) {
            $parsed = $null
            $text = $end.Trim()
            if (-not [System.Net.IPAddress]::TryParse($text, [ref]$parsed) -or $parsed.AddressFamily -ne $Family) {
                return "'$text' is not an address of the $Family family"
            }
            # TryParse also takes shorthand such as '10.1' (10.0.0.1); WinRM wants the dotted quad.
            if ($Family -eq [System.Net.Sockets.AddressFamily]::InterNetwork -and $text -notmatch '^\d{1,3}(\.\d{1,3}){3}$') {
                return "'$text' is not a dotted-quad IPv4 address"
            }
        }
    }
    return $null
}

function ConvertTo-Comparable {
    <# Brings a WSMan string and a module value to one form per kind of setting. #>
    param($Value, [string]$Kind)

    switch ($Kind) {
        'bool' { return ([string]$Value) -eq 'true' -or $Value -eq $true }
        'int' { return [int64]$Value }
        'cbt' { return ([string]$Value).ToLowerInvariant() }
        'thumbprint' { return (([string]$Value) -replace '[\s\u200e]', '').ToUpperInvariant() }
        'filter' { return ((([string]$Value) -split '\s*,\s*') -join ',').Trim().ToLowerInvariant() }
        'list' { return (@(([string]$Value).Split(',') | ForEach-Object { $_.Trim() } | Where-Object { $_ } | Sort-Object -Unique) -join ',') }
    }
}

function ConvertTo-WSManValue {
    <# The string WinRM stores for a module value. #>
    param($Value, [string]$Kind)

    switch ($Kind) {
        'bool' { return ([string][bool]$Value).ToLowerInvariant() }
        'cbt' { return (Get-Culture).TextInfo.ToTitleCase([string]$Value) }
        'list' { return ($Value -join ',') }
        # As compared and checked: a thumbprint copied from the certificate dialog carries
        # spaces and an invisible U+200E, which WinRM would store as given.
        'thumbprint' { return ConvertTo-Comparable -Value $Value -Kind 'thumbprint' }
        default { return [string]$Value }
    }
}

function Get-PolicyValue {
    <# The Group Policy value for a setting, or $null when policy does not set it. #>
    param([string]$Policy)

    if (-not $Policy) {
        return $null
    }
    $key, $name = $Policy.Split('\', 2)
    $item = Get-ItemProperty -LiteralPath "$policyRoot\$key" -Name $name -ErrorAction SilentlyContinue
    if ($null -eq $item) {
        return $null
    }
    return $item.$name
}

function Update-Setting {
    <# Compares one requested setting with the host and applies it unless policy owns it. #>
    param([string]$Scope, [string]$Name, [Hashtable]$Definition, $Requested)

    $path = "WSMan:\localhost\$($Definition.Path)"
    try {
        $leaf = Get-Item -LiteralPath $path -ErrorAction Stop
    }
    catch {
        $module.FailJson("cannot read $path for $Scope option '$Name' (is the WinRM service running?): $($_.Exception.Message)", $_)
    }
    $kind = $Definition.Kind
    $currentValue = ConvertTo-Comparable -Value $leaf.Value -Kind $kind
    $wanted = ConvertTo-Comparable -Value (ConvertTo-WSManValue -Value $Requested -Kind $kind) -Kind $kind
    $label = if ($Scope -eq 'client') { "client.$Name" } else { $Name }

    $before[$label] = $currentValue
    $policyValue = Get-PolicyValue -Policy $Definition.Policy
    $policySets = $null -ne $policyValue
    if ($policySets -and $Definition.ContainsKey('PolicyEnabledValue')) {
        $policySets = [string]$policyValue -eq [string]$Definition.PolicyEnabledValue
    }
    if ($policySets -or $leaf.SourceOfValue -eq 'GPO') {
        $managed.Add(@{ setting = $label; path = $path; value = $currentValue; requested = $wanted; policy = "$policyRoot\$($Definition.Policy)" })
        if ($currentValue -ne $wanted) {
            $module.Warn("$label is set by Group Policy ($policyRoot\$($Definition.Policy)); leaving it at '$currentValue' instead of '$wanted'")
        }
        $after[$label] = $currentValue
        return
    }

    $after[$label] = $wanted
    if ($currentValue -eq $wanted) {
        return
    }
    if (-not $module.CheckMode) {
        try {
            Set-Item -LiteralPath $path -Value (ConvertTo-WSManValue -Value $Requested -Kind $kind) -Force -ErrorAction Stop
        }
        catch {
            $module.FailJson("cannot set $label to '$wanted' at $($path): $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
}

function Test-FilterAdmit {
    <# Whether an IPv4Filter/IPv6Filter value (validated) lets listeners use $Address: '*' all,
       '' none, else comma-separated addresses and 'first-last' ranges. #>
    param([System.Net.IPAddress]$Address, [string]$Filter)

    $text = $Filter.Trim()
    if ($text -eq '*') {
        return $true
    }
    $bytes = $Address.GetAddressBytes()
    foreach ($range in $text.Split(',')) {
        $ends = @($range.Split('-') | ForEach-Object { $_.Trim() } | Where-Object { $_ })
        if ($ends.Count -eq 0) {
            continue
        }
        $low = [System.Net.IPAddress]::Parse($ends[0])
        $high = [System.Net.IPAddress]::Parse($ends[-1])
        if ($low.AddressFamily -ne $Address.AddressFamily) {
            continue
        }
        if ((Compare-AddressByte -Left $low.GetAddressBytes() -Right $bytes) -le 0 -and (Compare-AddressByte -Left $bytes -Right $high.GetAddressBytes()) -le 0) {
            return $true
        }
    }
    return $false
}

function Assert-FiltersKeepConnection {
    <#
    IPv4Filter/IPv6Filter name the host's addresses listeners may use. Refuses, in check mode
    too and before anything changes, filters that leave out every address the WinRM clients
    connected now arrive on (Get-NetTCPConnection's LocalAddress): WinRM would stop listening
    there and the play be cut off. The host's own addresses, not the one the controller
    connects to: behind NAT they differ. Connections from the host to itself do not count.
    #>
    $connections = @(Get-WinRMConnection)
    if ($connections.Count -eq 0) {
        return
    }
    # Each family's filter as the task leaves it: a value Group Policy sets stays.
    $filters = @{}
    foreach ($name in @('ipv4_filter', 'ipv6_filter')) {
        $definition = $serviceSettings[$name]
        $requested = $params[$name]
        if ($null -ne $requested -and $null -eq (Get-PolicyValue -Policy $definition.Policy)) {
            $filters[$name] = [string]$requested
        }
        else {
            $filters[$name] = [string](Get-Item -LiteralPath "WSMan:\localhost\$($definition.Path)").Value
        }
    }
    foreach ($connection in $connections) {
        $local = [System.Net.IPAddress]::Parse($connection.local)
        $family = if ($local.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetwork) { 'ipv4_filter' } else { 'ipv6_filter' }
        if (Test-FilterAdmit -Address $local -Filter $filters[$family]) {
            return
        }
    }
    $arrivals = @($connections | ForEach-Object { $_.local } | Sort-Object -Unique) -join ', '
    $clients = @($connections | ForEach-Object { $_.remote } | Sort-Object -Unique) -join ', '
    $module.FailJson("ipv4_filter '$($filters.ipv4_filter)' and ipv6_filter '$($filters.ipv6_filter)' would cut this play off: the clients connected to WinRM now ($clients) arrive on $arrivals, which the filters leave out, so WinRM would stop listening there. Include one of those addresses (this host's own: behind NAT not the one the controller connects to) or '*'. Nothing was changed.")
}

# Validate every input before touching anything.
$params = $module.Params
foreach ($familyCheck in @(@('ipv4_filter', [System.Net.Sockets.AddressFamily]::InterNetwork), @('ipv6_filter', [System.Net.Sockets.AddressFamily]::InterNetworkV6))) {
    $value = $params[$familyCheck[0]]
    if ($null -ne $value) {
        $problem = Get-IPFilterProblem -Value $value -Family $familyCheck[1]
        if ($null -ne $problem) {
            $module.FailJson("$($familyCheck[0]) '$value' is invalid: $problem; use '*', '' or comma-separated 'first-last' ranges")
        }
    }
}
# Windows takes no MaxEnvelopeSizekb below 32 (WSManDsc's WSManConfig: ValidateRange(32, ...));
# refused here, before any setting is changed.
if ($null -ne $params.max_envelope_size_kb -and $params.max_envelope_size_kb -lt 32) {
    $module.FailJson("max_envelope_size_kb '$($params.max_envelope_size_kb)' must be at least 32 kilobytes, the smallest MaxEnvelopeSizekb Windows takes")
}
if ($params.certificate_thumbprint) {
    $thumbprint = ConvertTo-Comparable -Value $params.certificate_thumbprint -Kind 'thumbprint'
    if ($thumbprint -notmatch '^[0-9A-F]{40}$') {
        $module.FailJson("certificate_thumbprint '$($params.certificate_thumbprint)' is not a SHA-1 thumbprint of 40 hex digits")
    }
    if (-not (Test-Path -LiteralPath "Cert:\LocalMachine\My\$thumbprint")) {
        if ($module.CheckMode) {
            $module.Warn("certificate_thumbprint '$thumbprint' is not in Cert:\LocalMachine\My yet; continuing because this is check mode")
        }
        else {
            $module.FailJson("certificate_thumbprint '$thumbprint' is not in Cert:\LocalMachine\My")
        }
    }
    elseif (-not (Get-Item -LiteralPath "Cert:\LocalMachine\My\$thumbprint").HasPrivateKey) {
        # The service certificate is what the host presents in CredSSP's own TLS handshake: a
        # TLS server cannot use a certificate whose private key it does not hold.
        $module.FailJson("certificate_thumbprint '$thumbprint' has no private key in Cert:\LocalMachine\My, and CredSSP's TLS handshake needs one: import the certificate with its key (a PFX). Nothing was changed.")
    }
}

if ($null -ne $params.ipv4_filter -or $null -ne $params.ipv6_filter) {
    Assert-FiltersKeepConnection
}

$before = [ordered]@{}
$after = [ordered]@{}
$managed = [System.Collections.Generic.List[Hashtable]]::new()

foreach ($name in $serviceSettings.Keys) {
    if ($null -ne $params[$name]) {
        Update-Setting -Scope 'service' -Name $name -Definition $serviceSettings[$name] -Requested $params[$name]
    }
}
if ($null -ne $params.client) {
    foreach ($name in $clientSettings.Keys) {
        if ($null -ne $params.client[$name]) {
            Update-Setting -Scope 'client' -Name $name -Definition $clientSettings[$name] -Requested $params.client[$name]
        }
    }
}

$module.Diff.before = $before
$module.Diff.after = $after
$module.Result.settings = $after
$module.Result.managed_by_policy = @($managed)
$module.ExitJson()
