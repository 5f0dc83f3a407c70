#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.winops.remoting.plugins.module_utils._WinRMConnection

# One inbound TCP allow rule for a WinRM port, scoped to remote (and optionally local) addresses.
# Values that are not given are not compared, so the module can also just switch an existing
# rule, such as Windows' own WINRM-HTTP-In-TCP, on or off.
# Other rules admitting the same port defeat the scope whatever they are named (the set-up
# scripts make them with GUID names), so they are found by port in the ActiveStore, Group
# Policy rules included, and switched off, scoped or reported (other_rules). When the named rule
# will admit nothing (state absent, enabled false), other_rules 'disable' closes the port.

$spec = @{
    options = @{
        name = @{ type = 'str'; required = $true }
        display_name = @{ type = 'str' }
        description = @{ type = 'str' }
        port = @{ type = 'int' }
        remote_addresses = @{ type = 'list'; elements = 'str' }
        local_addresses = @{ type = 'list'; elements = 'str' }
        profiles = @{ type = 'list'; elements = 'str'; choices = @('any', 'domain', 'private', 'public') }
        enabled = @{ type = 'bool'; default = $true }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
        other_rules = @{ type = 'str'; default = 'keep'; choices = @('keep', 'disable', 'scope') }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)
$module.Result.other_rules = @()

$name = $module.Params.name
$addressKeywords = @('Any', 'LocalSubnet', 'DNS', 'DHCP', 'WINS', 'DefaultGateway', 'Internet', 'Intranet', 'IntranetRemoteAccess', 'PlayToDevice')

function ConvertTo-RuleNameLiteral {
    <# A rule name as -Name of the NetFirewallRule cmdlets takes it literally: -Name accepts
       wildcards (Get-NetFirewallRule reference), so *, ?, [, ] and the backtick are escaped. #>
    param([string]$Name)

    return [System.Management.Automation.WildcardPattern]::Escape($Name)
}

function ConvertTo-StrictIPAddress {
    <# The address $Text names, or $null; IPv4 only as a dotted quad (TryParse would also take
       shorthand such as '10.1' for 10.0.0.1, which a reader of the rule would not expect). #>
    param([string]$Text)

    $parsed = $null
    if (-not [System.Net.IPAddress]::TryParse($Text, [ref]$parsed)) {
        return $null
    }
    if ($parsed.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetwork -and $Text -notmatch '^\d{1,3}(\.\d{1,3}){3}$') {
        return $null
    }
    if ($parsed.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetworkV6 -and $Text -notmatch ':') {
        return $null
    }
    return $parsed
}

function ConvertTo-RuleAddress {
    <#
    One address entry in the form Windows reports it back, or $null when invalid: IPv4 prefixes
    come back as address/mask and a /32 as the bare address.
    #>
    param([string]$Entry)

    $text = $Entry.Trim()
    $keyword = $addressKeywords | Where-Object { $_ -eq $text } | Select-Object -First 1
    if ($null -ne $keyword) {
        return $keyword
    }
    if ($text -match '^(?<first>[^-/]+)-(?<last>[^-/]+)$') {
        $parsed = ConvertTo-StrictIPAddress -Text $Matches.first
        $last = ConvertTo-StrictIPAddress -Text $Matches.last
        if ($null -ne $parsed -and $null -ne $last -and $parsed.AddressFamily -eq $last.AddressFamily) {
            return "$parsed-$last"
        }
        return $null
    }
    if ($text -match '^(?<ip>[^/]+)/(?<mask>\d{1,3}(\.\d{1,3}){3})$') {
        # An IPv4 prefix by mask, the form Windows reports prefixes in (New-NetFirewallRule
        # -RemoteAddress takes it as well): kept so, a full mask as the bare address.
        $parsed = ConvertTo-StrictIPAddress -Text $Matches.ip
        $mask = ConvertTo-StrictIPAddress -Text $Matches.mask
        if ($null -eq $parsed -or $null -eq $mask -or $parsed.AddressFamily -ne [System.Net.Sockets.AddressFamily]::InterNetwork) {
            return $null
        }
        $maskValue = [uint64]0
        foreach ($byte in $mask.GetAddressBytes()) {
            $maskValue = $maskValue * 256 + $byte
        }
        $hostBits = [uint64]4294967295 - $maskValue
        # A mask is ones, then zeros: its host part plus one is a power of two.
        if ((($hostBits + 1) -band $hostBits) -ne 0) {
            return $null
        }
        if ($hostBits -eq 0) {
            return "$parsed"
        }
        return "$parsed/$mask"
    }
    if ($text -match '^(?<ip>[^/]+)/(?<prefix>\d{1,3})$') {
        $parsed = ConvertTo-StrictIPAddress -Text $Matches.ip
        if ($null -eq $parsed) {
            return $null
        }
        $prefix = [int]$Matches.prefix
        if ($parsed.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetwork) {
            if ($prefix -gt 32) {
                return $null
            }
            if ($prefix -eq 32) {
                return "$parsed"
            }
            # 4294967295 rather than 0xFFFFFFFF, which PowerShell reads as the Int32 -1.
            $allOnes = [uint64]4294967295
            $maskBits = [uint32](($allOnes -shl (32 - $prefix)) -band $allOnes)
            $maskBytes = [System.BitConverter]::GetBytes($maskBits)
            [Array]::Reverse($maskBytes)
            return "$parsed/$([System.Net.IPAddress]::new($maskBytes))"
        }
        if ($prefix -gt 128) {
            return $null
        }
        return "$parsed/$prefix"
    }
    $parsed = ConvertTo-StrictIPAddress -Text $text
    if ($null -ne $parsed) {
        return "$parsed"
    }
    return $null
}

function ConvertTo-AddressSet {
    param([string[]]$Entries, [string]$Option)

    $converted = foreach ($entry in $Entries) {
        $value = ConvertTo-RuleAddress -Entry $entry
        if ($null -eq $value) {
            $module.FailJson("$Option entry '$entry' is not an IP address, a prefix (a.b.c.d/n or a.b.c.d/255.255.255.0), a range (first-last) or one of the keywords $($addressKeywords -join ', ')")
        }
        $value
    }
    return @($converted | Sort-Object -Unique)
}

function Test-SameAddressSet {
    <# Windows reports keywords and IPv6 text in its own case; compare without case. #>
    param([string[]]$Left, [string[]]$Right)

    return (($Left -join ',').ToLowerInvariant()) -eq (($Right -join ',').ToLowerInvariant())
}

function ConvertTo-ProfileSet {
    <# 'Domain, Private' or @('domain','private') -> 'domain,private'; 'Any' covers all three. #>
    param($Profiles)

    $set = @($Profiles | ForEach-Object { ([string]$_).Split(',') } | ForEach-Object { $_.Trim().ToLowerInvariant() } | Where-Object { $_ } | Sort-Object -Unique)
    if ($set -contains 'any' -or ($set -join ',') -eq 'domain,private,public') {
        return 'any'
    }
    return $set -join ','
}

$port = $module.Params.port
if ($null -ne $port -and ($port -lt 1 -or $port -gt 65535)) {
    $module.FailJson("port '$port' is out of range: it must be between 1 and 65535")
}
$wanted = @{}
if ($null -ne $port) { $wanted.port = [string]$port }
if ($null -ne $module.Params.remote_addresses) { $wanted.remote_addresses = @(ConvertTo-AddressSet -Entries $module.Params.remote_addresses -Option 'remote_addresses') }
if ($null -ne $module.Params.local_addresses) { $wanted.local_addresses = @(ConvertTo-AddressSet -Entries $module.Params.local_addresses -Option 'local_addresses') }
if ($null -ne $module.Params.profiles) { $wanted.profiles = ConvertTo-ProfileSet -Profiles $module.Params.profiles }
if ($null -ne $module.Params.display_name) { $wanted.display_name = $module.Params.display_name }
if ($null -ne $module.Params.description) { $wanted.description = $module.Params.description }
$wanted.enabled = $module.Params.enabled
foreach ($key in @('remote_addresses', 'local_addresses')) {
    if ($wanted.ContainsKey($key) -and $wanted[$key].Count -eq 0) {
        $module.FailJson("$key is empty; give 'any' to allow every address")
    }
}
$otherRules = $module.Params.other_rules
# The named rule admits nothing afterwards: other_rules 'disable' then closes the port.
$closesPort = $otherRules -eq 'disable' -and ($module.Params.state -eq 'absent' -or -not $wanted.enabled)
if ($otherRules -ne 'keep' -and -not $closesPort) {
    # Scoping or switching other rules off for a scope is only safe while this rule admits the
    # port in their place.
    if ($module.Params.state -ne 'present' -or -not $wanted.enabled -or $null -eq $port -or -not $wanted.ContainsKey('remote_addresses')) {
        $module.FailJson("other_rules '$otherRules' needs port and either state 'present', enabled true and remote_addresses, so that this rule admits the port in place of the rules it changes, or (for 'disable' only) state 'absent' or enabled false, to close the port. Nothing was changed.")
    }
}
if ($closesPort -and $null -eq $port) {
    $module.FailJson("other_rules 'disable' with $(if ($module.Params.state -eq 'absent') { "state 'absent'" } else { 'enabled false' }) closes a port and needs port, the TCP port to close. Nothing was changed.")
}

function Get-PortCoverage {
    <# How LocalPort entries cover $Port: 'any' (LocalPort Any), 'named' (the number alone),
       'shared' (the port and others: a wider range, or more entries) or $null. Keywords such
       as RPC or Teredo are other traffic. #>
    param([string[]]$LocalPort, [int]$Port)

    $covers = $false
    $others = $false
    foreach ($entry in $LocalPort) {
        $text = ([string]$entry).Trim()
        if ($text -eq 'Any') {
            return 'any'
        }
        if ($text -match '^(?<low>\d+)(-(?<high>\d+))?$') {
            $low = [int]$Matches.low
            $high = if ($Matches.high) { [int]$Matches.high } else { $low }
            if ($low -le $Port -and $Port -le $high) {
                $covers = $true
                if ($low -ne $high) {
                    $others = $true
                }
                continue
            }
        }
        $others = $true
    }
    if (-not $covers) {
        return $null
    }
    return $(if ($others) { 'shared' } else { 'named' })
}

function Get-InboundTcpAllowRule {
    <#
    Every enabled inbound allow rule for TCP of the ActiveStore (local and Group Policy rules,
    as Windows applies them) but $OwnName, with its ports and addresses. Filters are read once
    per store and matched by InstanceID, the rule's Name.
    #>
    param([string]$OwnName)

    $rules = @(Get-NetFirewallRule -PolicyStore ActiveStore -TracePolicyStore -Direction Inbound -Action Allow -Enabled True -ErrorAction Stop)
    $portFilters = @{}
    foreach ($filter in @(Get-NetFirewallPortFilter -All -PolicyStore ActiveStore -ErrorAction Stop)) {
        $portFilters[[string]$filter.InstanceID] = $filter
    }
    $addressFilters = @{}
    foreach ($filter in @(Get-NetFirewallAddressFilter -All -PolicyStore ActiveStore -ErrorAction Stop)) {
        $addressFilters[[string]$filter.InstanceID] = $filter
    }
    foreach ($rule in $rules) {
        # The named rule is the local one this task manages; a Group Policy rule of the same
        # Name is another rule, enforced beside it (and reported, not changed).
        if ([string]$rule.Name -eq $OwnName -and [string]$rule.PolicyStoreSourceType -eq 'Local') {
            continue
        }
        $portFilter = $portFilters[[string]$rule.Name]
        $addressFilter = $addressFilters[[string]$rule.Name]
        if ($null -eq $portFilter -or $null -eq $addressFilter) {
            continue
        }
        if (@('TCP', 'Any', '6') -notcontains [string]$portFilter.Protocol) {
            continue
        }
        @{
            rule = $rule
            local_ports = @(@($portFilter.LocalPort) | ForEach-Object { [string]$_ })
            remote_addresses = @(@($addressFilter.RemoteAddress) | ForEach-Object { [string]$_ } | Sort-Object -Unique)
            local_addresses = @(@($addressFilter.LocalAddress) | ForEach-Object { [string]$_ } | Sort-Object -Unique)
            profiles = ConvertTo-ProfileSet -Profiles ([string]$rule.Profile)
        }
    }
}

function Get-OtherAdmittingRule {
    <#
    Every other enabled inbound allow rule of the ActiveStore that admits TCP $Port from
    addresses other than $Wanted.
    #>
    param([int]$Port, [string]$OwnName, [string[]]$Wanted)

    foreach ($found in @(Get-InboundTcpAllowRule -OwnName $OwnName)) {
        $coverage = Get-PortCoverage -LocalPort $found.local_ports -Port $Port
        if ($null -eq $coverage) {
            continue
        }
        if ($null -ne $Wanted -and (Test-SameAddressSet -Left $found.remote_addresses -Right $Wanted)) {
            continue
        }
        @{
            name = [string]$found.rule.Name
            display_name = [string]$found.rule.DisplayName
            local_ports = $found.local_ports
            remote_addresses = $found.remote_addresses
            local_addresses = $found.local_addresses
            profiles = $found.profiles
            policy_store_source_type = [string]$found.rule.PolicyStoreSourceType
            policy_store_source = [string]$found.rule.PolicyStoreSource
            coverage = $coverage
        }
    }
}

function Invoke-OtherRule {
    <#
    Switches off or scopes the other local rules that admit the port (other_rules), and reports
    what cannot be changed here: Group Policy rules, and rules for every port, which serve other
    traffic too. Runs after this rule is in place, so the port is never left without one, or,
    when the port is being closed, after this rule is removed or switched off.
    #>
    if ($null -eq $port) {
        return
    }
    $found = $otherAdmitting
    $report = [System.Collections.Generic.List[Hashtable]]::new()
    $diffBefore = @{}
    $diffAfter = @{}
    foreach ($other in $found) {
        $label = "firewall rule '$($other.display_name)' (Name '$($other.name)')"
        $from = $other.remote_addresses -join ', '
        if ($other.policy_store_source_type -eq 'GroupPolicy') {
            $other.action = 'reported'
            $source = if ($other.policy_store_source) { " '$($other.policy_store_source)'" } else { '' }
            $module.Warn("$label comes from Group Policy$source and admits TCP port $port from $from; it cannot be changed on this host, so the port stays open to those addresses: have the Group Policy administrator scope that rule to the controllers or remove it from the GPO")
        }
        elseif ($other.policy_store_source_type -ne 'Local') {
            # Service-hardening and generated rules (Dynamic, Generated, Hardcoded) are not in
            # the PersistentStore that Set-NetFirewallRule changes.
            $other.action = 'reported'
            $module.Warn("$label ($($other.policy_store_source_type) policy store) admits TCP port $port from $from; it cannot be changed with Set-NetFirewallRule, so the port stays open to those addresses")
        }
        elseif ($other.coverage -ne 'named') {
            $other.action = 'kept'
            $goal = if ($closesPort) { "to close port $port" } else { "to limit port $port to remote_addresses" }
            $ports = if ($other.coverage -eq 'any') { 'every TCP port (LocalPort Any)' } else { "TCP ports $($other.local_ports -join ', ')" }
            $module.Warn("$label admits $ports from $from, port $port included; it is left as it is because it serves other ports too: scope or disable it yourself $goal")
        }
        elseif ($otherRules -eq 'keep') {
            $other.action = 'kept'
            $module.Warn("$label also admits TCP port $port from $from; other_rules is 'keep', so remote_addresses does not limit who reaches the port")
        }
        else {
            $setParams = @{}
            if ($otherRules -eq 'disable') {
                $other.action = 'disabled'
                $setParams.Enabled = 'False'
                $diffBefore[$other.name] = @{ enabled = $true }
                $diffAfter[$other.name] = @{ enabled = $false }
            }
            else {
                $other.action = 'scoped'
                $setParams.RemoteAddress = $wanted.remote_addresses
                $diffBefore[$other.name] = @{ remote_addresses = $other.remote_addresses }
                $diffAfter[$other.name] = @{ remote_addresses = $wanted.remote_addresses }
            }
            if (-not $module.CheckMode) {
                try {
                    Set-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $other.name) @setParams -ErrorAction Stop
                }
                catch {
                    $module.FailJson("cannot $(if ($otherRules -eq 'disable') { 'switch off' } else { 'scope' }) $label, which admits port ${port}: $($_.Exception.Message)", $_)
                }
            }
            $module.Result.changed = $true
        }
        # What the guards match connections against, not part of the report.
        # Compared by the guards only; the report keeps its documented keys.
        $other.Remove('coverage')
        $other.Remove('profiles')
        $other.Remove('local_addresses')
        $report.Add($other)
    }
    $module.Result.other_rules = @($report)
    if ($diffBefore.Count -gt 0) {
        $module.Diff.before.other_rules = $diffBefore
        $module.Diff.after.other_rules = $diffAfter
    }
}

function ConvertTo-ProfileParameter {
    <# 'domain,private' -> 'Domain, Private', the text form of the flags enum -Profile takes. #>
    param([string]$Set)

    if ($Set -eq 'any') {
        return 'Any'
    }
    return (@($Set.Split(',') | ForEach-Object { (Get-Culture).TextInfo.ToTitleCase($_) }) -join ', ')
}

function ConvertTo-MaskByte {
    <# The mask of an address filter's prefix part ('255.255.255.0' or a length) as bytes. #>
    param([string]$Mask, [int]$Length)

    if ($Mask -match '\.') {
        return , [System.Net.IPAddress]::Parse($Mask).GetAddressBytes()
    }
    $bits = [int]$Mask
    $bytes = [byte[]]::new($Length)
    for ($i = 0; $i -lt $Length; $i++) {
        $take = [Math]::Max(0, [Math]::Min(8, $bits - 8 * $i))
        $bytes[$i] = [byte]((0xFF -shl (8 - $take)) -band 0xFF)
    }
    return , $bytes
}

function Test-InPrefix {
    param([byte[]]$Address, [byte[]]$Network, [byte[]]$Mask)

    if ($Address.Length -ne $Network.Length -or $Mask.Length -ne $Address.Length) {
        return $false
    }
    for ($i = 0; $i -lt $Address.Length; $i++) {
        if (($Address[$i] -band $Mask[$i]) -ne ($Network[$i] -band $Mask[$i])) {
            return $false
        }
    }
    return $true
}

function Get-AddressByte {
    <# An address's bytes, an IPv4-mapped IPv6 address as IPv4, without an IPv6 zone. #>
    param([string]$Text)

    return , [System.Net.IPAddress]::Parse((ConvertTo-PlainAddress -Text $Text)).GetAddressBytes()
}

function Test-AddressInScope {
    <#
    Whether remote address $Address is admitted by rule addresses $Entries (in the form Windows
    reports them). Keywords whose members this host cannot list (DNS, DHCP, Internet, ...) count
    as admitting it: the guard below only refuses what it knows would cut the play off.
    #>
    param([string]$Address, [string[]]$Entries, [object[]]$LocalSubnets)

    $ip = Get-AddressByte -Text $Address
    foreach ($entry in $Entries) {
        if ($entry -eq 'Any') {
            return $true
        }
        if ($entry -eq 'LocalSubnet') {
            foreach ($subnet in $LocalSubnets) {
                $network = Get-AddressByte -Text $subnet.IPAddress
                if (Test-InPrefix -Address $ip -Network $network -Mask (ConvertTo-MaskByte -Mask ([string]$subnet.PrefixLength) -Length $network.Length)) {
                    return $true
                }
            }
            continue
        }
        if ($addressKeywords -contains $entry) {
            return $true
        }
        if ($entry -match '^(?<first>[^-/]+)-(?<last>[^-/]+)$') {
            $first = Get-AddressByte -Text $Matches.first
            $last = Get-AddressByte -Text $Matches.last
            if ($first.Length -eq $ip.Length -and (Compare-AddressByte -Left $first -Right $ip) -le 0 -and (Compare-AddressByte -Left $ip -Right $last) -le 0) {
                return $true
            }
        }
        elseif ($entry -match '^(?<network>[^/]+)/(?<mask>.+)$') {
            $network = Get-AddressByte -Text $Matches.network
            if (Test-InPrefix -Address $ip -Network $network -Mask (ConvertTo-MaskByte -Mask $Matches.mask -Length $network.Length)) {
                return $true
            }
        }
        elseif ($ip.Length -eq (Get-AddressByte -Text $entry).Length -and (Compare-AddressByte -Left $ip -Right (Get-AddressByte -Text $entry)) -eq 0) {
            return $true
        }
    }
    return $false
}

function Assert-LocalScopeKeepsController {
    <#
    Refuses, before anything changes, a local_addresses scope that none of the host addresses
    the WinRM clients now connect to is in: Windows Firewall matches a rule's LocalAddress
    against the address a connection arrives on, so the play's own connection (to the address
    it reaches this host by, which a controller behind NAT does not know) would no longer be
    admitted by this rule once it is the one that admits the port.
    #>
    $connections = @(Get-WinRMConnection -Port $port)
    if ($connections.Count -eq 0) {
        return
    }
    $subnets = @(Get-NetIPAddress -ErrorAction SilentlyContinue)
    foreach ($connection in $connections) {
        if (Test-AddressInScope -Address $connection.local -Entries $wanted.local_addresses -LocalSubnets $subnets) {
            return
        }
    }
    $arrivals = @($connections | ForEach-Object { $_.local } | Sort-Object -Unique) -join ', '
    $clients = @($connections | ForEach-Object { $_.remote } | Sort-Object -Unique) -join ', '
    $module.FailJson("local_addresses ($($wanted.local_addresses -join ', ')) would cut this play off: the clients connected to WinRM now ($clients) reach this host on $arrivals, and none of those addresses is in local_addresses; add the address the controller connects to (or give 'Any'). Nothing was changed.")
}

function Assert-ControllerKeepsAccess {
    <#
    Refuses, before anything changes, to switch off or scope other rules when no client now
    connected to a WinRM port would be admitted by this rule: by remote_addresses, on a network
    of its profiles. The play's own connection is one of those clients, so this would certainly
    cut it off. (When some client is admitted the play's may still not be; the role then
    checks that the host still answers.)
    #>
    $connections = @(Get-FirewallConnection)
    if ($connections.Count -eq 0) {
        return
    }
    $peers = @($connections | ForEach-Object { $_.remote } | Sort-Object -Unique)
    # The rule's profiles as the task leaves them: given, else as they are, else New-NetFirewallRule's Any.
    $ruleProfiles = 'any'
    if ($wanted.ContainsKey('profiles')) {
        $ruleProfiles = $wanted.profiles
    }
    else {
        $existing = Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) -ErrorAction SilentlyContinue
        if ($null -ne $existing) {
            $ruleProfiles = ConvertTo-ProfileSet -Profiles ([string]$existing.Profile)
        }
    }
    $subnets = @(Get-NetIPAddress -ErrorAction SilentlyContinue)
    $inScope = @($connections | Where-Object { Test-AddressInScope -Address $_.remote -Entries $wanted.remote_addresses -LocalSubnets $subnets })
    if (@($inScope | Where-Object { Test-ProfileApplies -Profiles $ruleProfiles -ArrivalProfile $_.profile }).Count -gt 0) {
        return
    }
    if ($inScope.Count -gt 0) {
        $networks = @($inScope | ForEach-Object { $_.profile } | Sort-Object -Unique) -join ', '
        $module.FailJson("other_rules '$otherRules' would cut this play off: the clients connected to WinRM now ($(@($inScope | ForEach-Object { $_.remote } | Sort-Object -Unique) -join ', ')) arrive on a network of the $networks profile, which profiles ($ruleProfiles) leave out, so this rule would not apply to them, and the other rules that admit port $port are what lets them in; add that profile to profiles (or use other_rules 'keep'). Nothing was changed.")
    }
    $module.FailJson("other_rules '$otherRules' would cut this play off: none of the clients connected to WinRM now ($($peers -join ', ')) is in remote_addresses ($($wanted.remote_addresses -join ', ')), and the other rules that admit port $port are what lets them in; add the controllers' addresses to remote_addresses (or use other_rules 'keep'). Nothing was changed.")
}

function Get-ArrivalProfile {
    <#
    The firewall profile active on the interface that holds host address $Address: a rule
    applies only while one of its profiles is (New-NetFirewallRule -Profile), and the
    interface's NetworkCategory decides which (DomainAuthenticated is the Domain profile).
    $null when Windows names none for it; rules are then not told apart by profile.
    #>
    param([string]$Address)

    $ip = @(Get-NetIPAddress -IPAddress $Address -ErrorAction SilentlyContinue) | Select-Object -First 1
    if ($null -eq $ip) {
        return $null
    }
    $network = @(Get-NetConnectionProfile -InterfaceIndex $ip.InterfaceIndex -ErrorAction SilentlyContinue) | Select-Object -First 1
    if ($null -eq $network) {
        return $null
    }
    switch ([string]$network.NetworkCategory) {
        'DomainAuthenticated' { return 'domain' }
        'Private' { return 'private' }
        'Public' { return 'public' }
    }
    return $null
}

function Get-FirewallConnection {
    <# The WinRM clients connected now (Get-WinRMConnection), each with the firewall profile of
       the interface it arrived on (profile, $null when unknown). #>
    foreach ($connection in @(Get-WinRMConnection -Port $port)) {
        $connection.profile = Get-ArrivalProfile -Address $connection.local
        $connection
    }
}

function Test-ProfileApplies {
    <# Whether a rule of profile set $Profiles ('any' or e.g. 'domain,private') applies to a
       connection that arrived on an interface of profile $ArrivalProfile. #>
    param([string]$Profiles, [string]$ArrivalProfile)

    if (-not $ArrivalProfile -or -not $Profiles -or $Profiles -eq 'any') {
        return $true
    }
    return @($Profiles -split ',') -contains $ArrivalProfile
}

function Test-FilterAdmit {
    <# Whether a rule's ports, addresses (in the form Windows reports them) and profiles admit a
       connection. #>
    param([string[]]$LocalPort, [string[]]$RemoteAddress, [string[]]$LocalAddress, [string]$Profiles, [Hashtable]$Connection, [object[]]$LocalSubnets)

    if ($null -eq (Get-PortCoverage -LocalPort $LocalPort -Port $Connection.port)) {
        return $false
    }
    if (-not (Test-ProfileApplies -Profiles $Profiles -ArrivalProfile $Connection.profile)) {
        return $false
    }
    if (-not (Test-AddressInScope -Address $Connection.remote -Entries $RemoteAddress -LocalSubnets $LocalSubnets)) {
        return $false
    }
    return (Test-AddressInScope -Address $Connection.local -Entries $LocalAddress -LocalSubnets $LocalSubnets)
}

function Get-ClientAdmission {
    <#
    For each WinRM client connected now (Get-WinRMConnection), whether the rules that change
    admit it now ($Changing: this rule as it is, and the other rules about to be switched off)
    and whether an enabled allow rule admits it afterwards ($Changed: this rule as the task
    leaves it, $null when it will admit nothing; and every other enabled allow rule of the
    ActiveStore but those named in $Leaving). Each rule as @{ local_ports; remote_addresses;
    local_addresses; profiles }, in the form Windows reports them.
    #>
    param([Hashtable[]]$Changing, [Hashtable]$Changed, [string[]]$Leaving = @())

    $connections = @(Get-FirewallConnection)
    if ($connections.Count -eq 0) {
        return
    }
    $subnets = @(Get-NetIPAddress -ErrorAction SilentlyContinue)
    $letIn = @($connections | Where-Object {
            $connection = $_
            @($Changing | Where-Object { Test-FilterAdmit -LocalPort $_.local_ports -RemoteAddress $_.remote_addresses -LocalAddress $_.local_addresses -Profiles $_.profiles -Connection $connection -LocalSubnets $subnets }).Count -gt 0
        })
    if ($letIn.Count -eq 0) {
        return
    }
    try {
        $staying = @(Get-InboundTcpAllowRule -OwnName $name | Where-Object { $Leaving -notcontains [string]$_.rule.Name })
    }
    catch {
        $module.FailJson("cannot read the firewall rules of the ActiveStore to check that the rules this task changes are not what admits this play: $($_.Exception.Message)", $_)
    }
    if ($null -ne $Changed) {
        $staying += $Changed
    }
    foreach ($connection in $connections) {
        @{
            connection = $connection
            let_in = $letIn -contains $connection
            kept = @($staying | Where-Object { Test-FilterAdmit -LocalPort $_.local_ports -RemoteAddress $_.remote_addresses -LocalAddress $_.local_addresses -Profiles $_.profiles -Connection $connection -LocalSubnets $subnets }).Count -gt 0
        }
    }
}

function Test-FirewallOff {
    <# A host whose firewall is off in every profile admits every connection: nothing to refuse. #>
    return @(Get-NetFirewallProfile -PolicyStore ActiveStore -ErrorAction SilentlyContinue | Where-Object { [string]$_.Enabled -eq 'True' }).Count -eq 0
}

function ConvertTo-RuleFilter {
    <# This rule's compared values as the filters Get-ClientAdmission matches. #>
    param([Hashtable]$Rule)

    return @{ local_ports = @($Rule.port -split ','); remote_addresses = $Rule.remote_addresses; local_addresses = $Rule.local_addresses; profiles = $Rule.profiles }
}

function Format-Client {
    param([object[]]$Admission)

    return @($Admission | ForEach-Object { "$($_.connection.remote) on port $($_.connection.port)" } | Sort-Object -Unique) -join ', '
}

function Assert-RuleChangeKeepsController {
    <#
    Refuses, before anything changes, to remove this rule, switch it off or narrow what it
    admits ($Changed: its ports and addresses afterwards, $null when it will admit nothing)
    when it lets in WinRM clients connected now and afterwards none of those clients would be
    admitted, by this rule or by another enabled allow rule. The play's own connection is one
    of them. A rule admits a client only on a network of its profiles; a host whose firewall
    is off is not refused.
    #>
    param([Hashtable]$Current, [Hashtable]$Changed)

    $changedFilter = if ($null -ne $Changed) { ConvertTo-RuleFilter -Rule $Changed } else { $null }
    $admission = @(Get-ClientAdmission -Changing @(ConvertTo-RuleFilter -Rule $Current) -Changed $changedFilter)
    $letIn = @($admission | Where-Object { $_.let_in })
    if ($letIn.Count -eq 0 -or @($admission | Where-Object { $_.kept }).Count -gt 0 -or (Test-FirewallOff)) {
        return
    }
    $change = if ($module.Params.state -eq 'absent') { 'removing' } elseif (-not $wanted.enabled) { 'switching off' } else { 'narrowing' }
    $module.FailJson("$change firewall rule name '$name' would cut this play off: it admits the clients connected to WinRM now ($(Format-Client -Admission $letIn)), and afterwards no enabled rule would admit any of them; connect through a port another rule admits, or add such a rule first. Nothing was changed.")
}

function Assert-PortCloseKeepsClient {
    <#
    Refuses, before anything changes, to close the port (other_rules 'disable' while this rule
    will admit nothing) when a WinRM client connected now, from elsewhere than this host, is let
    in by this rule or by one of the other rules about to be switched off and afterwards no
    enabled rule would admit it. Which of those clients is the play cannot be told from here,
    and a port being closed is one nobody should need: any one of them stops the task.
    #>
    param([Hashtable]$Current)

    $changing = @($otherAdmitting | Where-Object { $_.policy_store_source_type -eq 'Local' -and $_.coverage -eq 'named' } | ForEach-Object {
            @{ local_ports = $_.local_ports; remote_addresses = $_.remote_addresses; local_addresses = $_.local_addresses; profiles = $_.profiles }
        })
    if ($null -ne $Current -and $Current.enabled) {
        $changing += ConvertTo-RuleFilter -Rule $Current
    }
    if ($changing.Count -eq 0) {
        return
    }
    $leaving = @($otherAdmitting | Where-Object { $_.policy_store_source_type -eq 'Local' -and $_.coverage -eq 'named' } | ForEach-Object { $_.name })
    $cutOff = @(Get-ClientAdmission -Changing $changing -Changed $null -Leaving $leaving | Where-Object { $_.let_in -and -not $_.kept })
    if ($cutOff.Count -eq 0 -or (Test-FirewallOff)) {
        return
    }
    $how = if ($module.Params.state -eq 'absent') { "state 'absent'" } else { 'enabled false' }
    $module.FailJson("other_rules 'disable' with $how would close TCP port $port to WinRM clients connected now ($(Format-Client -Admission $cutOff)): afterwards no enabled rule would admit them; move them (the play included) to a port another rule admits first, or use other_rules 'keep'. Nothing was changed.")
}

# Both guards run before anything changes. 'Any' among local_addresses admits every local
# address; a switched-off rule admits nothing, so its scope cannot cut anyone off.
if ($module.Params.state -eq 'present' -and $wanted.enabled -and $wanted.ContainsKey('local_addresses') -and $wanted.local_addresses -notcontains 'Any') {
    Assert-LocalScopeKeepsController
}

# Other rules are looked up before this rule changes, so that the guard can stop the task while
# nothing has changed yet. When the port is closed, every other rule admitting it counts,
# whatever its addresses.
$otherAdmitting = @()
if ($null -ne $port -and ($module.Params.state -eq 'present' -or $closesPort)) {
    $scope = if ($closesPort) { $null } else { $wanted.remote_addresses }
    try {
        $otherAdmitting = @(Get-OtherAdmittingRule -Port $port -OwnName $name -Wanted $scope)
    }
    catch {
        $module.FailJson("cannot read the firewall rules of the ActiveStore to find other rules admitting port '$port': $($_.Exception.Message)", $_)
    }
    $changing = @($otherAdmitting | Where-Object { $_.policy_store_source_type -eq 'Local' -and $_.coverage -eq 'named' })
    if ($otherRules -ne 'keep' -and -not $closesPort -and $changing.Count -gt 0) {
        Assert-ControllerKeepsAccess
    }
}

$rule = Get-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) -ErrorAction SilentlyContinue
$current = $null
if ($null -ne $rule) {
    $portFilter = Get-NetFirewallPortFilter -AssociatedNetFirewallRule $rule
    $addressFilter = Get-NetFirewallAddressFilter -AssociatedNetFirewallRule $rule
    $current = @{
        display_name = [string]$rule.DisplayName
        description = [string]$rule.Description
        enabled = [string]$rule.Enabled -eq 'True'
        profiles = ConvertTo-ProfileSet -Profiles ([string]$rule.Profile)
        port = (@($portFilter.LocalPort) -join ',')
        protocol = [string]$portFilter.Protocol
        remote_addresses = @(@($addressFilter.RemoteAddress) | ForEach-Object { [string]$_ } | Sort-Object -Unique)
        local_addresses = @(@($addressFilter.LocalAddress) | ForEach-Object { [string]$_ } | Sort-Object -Unique)
    }
}
$module.Diff.before = if ($null -ne $current) { $current.Clone() } else { @{} }
# The rule as the task leaves it: what is not given stays as it is.
$after = $null
if ($null -ne $current) {
    $after = $current.Clone()
    foreach ($key in $wanted.Keys) {
        $after[$key] = $wanted[$key]
    }
}

# This rule itself may be what lets the play in: removing it, switching it off or narrowing it
# is refused, before anything changes, when it would leave no client now connected admitted.
# Closing the port is refused when it would leave any client connected through it (or through
# this rule) without a rule that admits it.
# Not in check mode: there the play's earlier tasks have not moved its connection (the
# winrm_listener role switches it to HTTPS before it closes the HTTP port). A task that
# leaves its ports and addresses as they are cannot shut anyone out: the connections are not
# read then, as on most runs.
if ($closesPort -and -not $module.CheckMode) {
    Assert-PortCloseKeepsClient -Current $current
}
elseif ($null -ne $current -and $current.enabled -and -not $module.CheckMode) {
    $changed = if ($module.Params.state -eq 'present' -and $wanted.enabled) { $after } else { $null }
    $keepsScope = $null -ne $changed -and $changed.port -eq $current.port -and (Test-SameAddressSet -Left $changed.remote_addresses -Right $current.remote_addresses) -and (Test-SameAddressSet -Left $changed.local_addresses -Right $current.local_addresses) -and $changed.profiles -eq $current.profiles
    if (-not $keepsScope) {
        Assert-RuleChangeKeepsController -Current $current -Changed $changed
    }
}

if ($module.Params.state -eq 'absent') {
    if ($null -ne $rule) {
        if (-not $module.CheckMode) {
            try {
                Remove-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) -ErrorAction Stop
            }
            catch {
                $module.FailJson("cannot remove firewall rule name '$name': $($_.Exception.Message)", $_)
            }
        }
        $module.Result.changed = $true
    }
    $module.Diff.after = @{}
    $module.Result.rule = $null
    Invoke-OtherRule
    $module.ExitJson()
}

if ($null -eq $rule -and -not $wanted.enabled) {
    # Asked to switch off a rule that does not exist (say, a built-in one this edition lacks):
    # it is not created, port or not, since a switched-off rule would admit nothing anyway.
    $module.Diff.after = @{}
    $module.Result.rule = $null
    Invoke-OtherRule
    $module.ExitJson()
}

if ($null -eq $rule) {
    if (-not $wanted.ContainsKey('port')) {
        $module.FailJson("port is required to create firewall rule name '$name'")
    }
    $createParams = @{
        Name = $name
        DisplayName = if ($wanted.display_name) { $wanted.display_name } else { $name }
        Direction = 'Inbound'
        Action = 'Allow'
        Protocol = 'TCP'
        LocalPort = $wanted.port
        Enabled = if ($wanted.enabled) { 'True' } else { 'False' }
        RemoteAddress = if ($wanted.remote_addresses) { $wanted.remote_addresses } else { @('Any') }
        LocalAddress = if ($wanted.local_addresses) { $wanted.local_addresses } else { @('Any') }
        Profile = if ($wanted.profiles) { ConvertTo-ProfileParameter -Set $wanted.profiles } else { 'Any' }
        ErrorAction = 'Stop'
    }
    if ($wanted.description) {
        $createParams.Description = $wanted.description
    }
    if (-not $module.CheckMode) {
        try {
            New-NetFirewallRule @createParams | Out-Null
        }
        catch {
            $module.FailJson("cannot create firewall rule name '$name' for port '$($wanted.port)': $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
    $module.Diff.after = $wanted.Clone()
    $module.Result.rule = $wanted
    Invoke-OtherRule
    $module.ExitJson()
}

if ($current.protocol -and $current.protocol -ne 'TCP') {
    $module.FailJson("firewall rule name '$name' exists for protocol '$($current.protocol)', not TCP; give another name")
}

$setParams = @{}
if ($wanted.ContainsKey('port') -and $current.port -ne $wanted.port) { $setParams.LocalPort = $wanted.port }
if ($wanted.ContainsKey('remote_addresses') -and -not (Test-SameAddressSet -Left $current.remote_addresses -Right $wanted.remote_addresses)) { $setParams.RemoteAddress = $wanted.remote_addresses }
if ($wanted.ContainsKey('local_addresses') -and -not (Test-SameAddressSet -Left $current.local_addresses -Right $wanted.local_addresses)) { $setParams.LocalAddress = $wanted.local_addresses }
if ($wanted.ContainsKey('profiles') -and $current.profiles -ne $wanted.profiles) { $setParams.Profile = ConvertTo-ProfileParameter -Set $wanted.profiles }
if ($wanted.ContainsKey('display_name') -and $current.display_name -ne $wanted.display_name) { $setParams.NewDisplayName = $wanted.display_name }
if ($wanted.ContainsKey('description') -and $current.description -ne $wanted.description) { $setParams.Description = $wanted.description }
if ($current.enabled -ne $wanted.enabled) { $setParams.Enabled = if ($wanted.enabled) { 'True' } else { 'False' } }

if ($setParams.Count -gt 0) {
    if (-not $module.CheckMode) {
        try {
            Set-NetFirewallRule -Name (ConvertTo-RuleNameLiteral -Name $name) @setParams -ErrorAction Stop
        }
        catch {
            $module.FailJson("cannot update firewall rule name '$name' ($($setParams.Keys -join ', ')): $($_.Exception.Message)", $_)
        }
    }
    $module.Result.changed = $true
}
$module.Diff.after = $after.Clone()
$module.Result.rule = $after
Invoke-OtherRule
$module.ExitJson()
