#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -PowerShell ansible_collections.winops.remoting.plugins.module_utils._WinRMConnection
#AnsibleRequires -PowerShell ansible_collections.winops.remoting.plugins.module_utils._WSManConfig

# One WinRM listener, keyed like WinRM keys it: by Transport and Address. Several listeners per
# transport (one per address) are allowed; each call manages exactly one of them.

$spec = @{
    options = @{
        transport = @{ type = 'str'; required = $true; choices = @('http', 'https') }
        address = @{ type = 'str'; default = '*' }
        port = @{ type = 'int' }
        hostname = @{ type = 'str' }
        certificate_thumbprint = @{ type = 'str' }
        url_prefix = @{ type = 'str'; default = 'wsman' }
        enabled = @{ type = 'bool'; default = $true }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
    }
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$transport = $module.Params.transport.ToUpperInvariant()
$address = $module.Params.address
$state = $module.Params.state
$listenerUri = 'winrm/config/listener'
$certificateName = $null
$serverAuthOid = '1.3.6.1.5.5.7.3.1'

function Get-ListenerAddressProblem {
    <# Returns why an Address selector is invalid, or $null when WinRM would accept it. #>
    param([string]$Value)

    if ($Value -eq '*') {
        return $null
    }
    if ($Value -match '^IP:(?<ip>.+)$') {
        $text = $Matches.ip
        $parsed = $null
        if (-not [System.Net.IPAddress]::TryParse($text, [ref]$parsed)) {
            return "'$text' is not an IPv4 or IPv6 address"
        }
        # TryParse also takes shorthand such as '10.1' for IPv4; WinRM wants the dotted quad.
        if ($parsed.AddressFamily -eq [System.Net.Sockets.AddressFamily]::InterNetwork -and $text -notmatch '^\d{1,3}(\.\d{1,3}){3}$') {
            return "'$text' is not a dotted-quad IPv4 address"
        }
        return $null
    }
    # MS-WSMV 2.2.4.19: a MAC address of 6 or 8 hex pairs (EUI-48 or EUI-64).
    if ($Value -match '^MAC:([0-9A-Fa-f]{2}-){5}([0-9A-Fa-f]{2}-){2}?[0-9A-Fa-f]{2}$') {
        return $null
    }
    return "it must be '*', 'IP:<IPv4 or IPv6 address>' or 'MAC:<6 or 8 hyphen-separated hex pairs>'"
}

function ConvertTo-PlainValue {
    <# WS-Management values arrive as strings, or as XmlElements when empty or nil. #>
    param($Value)

    if ($null -eq $Value) {
        return ''
    }
    if ($Value -is [System.Xml.XmlElement]) {
        return $Value.InnerText
    }
    return [string]$Value
}

function Assert-NoClientConnectedThrough {
    <#
    Refuses, in check mode too and before anything changes, to move a listener's port while
    clients from elsewhere are connected through it (its old port, and its address unless it is
    '*'): after the move nothing listens there, so their next connection fails. This play's own
    connection is one of them when it uses this listener; no earlier task of a play moves it.
    Connections from the host to itself are not counted.
    #>
    param([Hashtable]$Listener, [int]$Port)

    # '*' and a MAC: listener (the addresses of one adapter, not told apart here) count every
    # connection on the port.
    $wantedLocal = $null
    if ($Listener.address -like 'IP:*') {
        $wantedLocal = ConvertTo-PlainAddress -Text $Listener.address.Substring(3)
    }
    $through = @(Get-WinRMConnection -Port $Listener.port | Where-Object {
            $_.port -eq $Listener.port -and ($null -eq $wantedLocal -or $_.local -eq $wantedLocal)
        } | ForEach-Object { $_.remote } | Sort-Object -Unique)
    if ($through.Count -gt 0) {
        $module.FailJson("port '$Port' would cut off the clients connected through the $($Listener.transport.ToUpperInvariant()) listener on address '$($Listener.address)' now ($($through -join ', ')), this play's own connection if it is one of them: after the move nothing listens on port $($Listener.port) there, so their next connection fails. Connect through another listener (HTTP, or another address) for the run that moves it. Nothing was changed.")
    }
}

function Get-Listener {
    <#
    Every listener as a plain hashtable. source is the Listener element's Source attribute:
    empty for configured listeners; 'Compatibility' for the ones the service adds on ports 80/443
    (EnableCompatibilityHttp(s)Listener) and 'GPO' for policy-made ones, which this module does
    not manage.
    #>
    $found = [System.Collections.Generic.List[Hashtable]]::new()
    foreach ($instance in @(Get-WSManInstance -ResourceURI $listenerUri -Enumerate -ErrorAction Stop)) {
        $found.Add(@{
                transport = (ConvertTo-PlainValue -Value $instance.Transport).ToLowerInvariant()
                address = ConvertTo-PlainValue -Value $instance.Address
                port = [int](ConvertTo-PlainValue -Value $instance.Port)
                hostname = ConvertTo-PlainValue -Value $instance.Hostname
                enabled = (ConvertTo-PlainValue -Value $instance.Enabled) -eq 'true'
                url_prefix = ConvertTo-PlainValue -Value $instance.URLPrefix
                certificate_thumbprint = (ConvertTo-PlainValue -Value $instance.CertificateThumbprint).ToUpperInvariant()
                source = ConvertTo-PlainValue -Value $instance.Source
            })
    }
    , $found
}

function Assert-ListenerCertificate {
    <# A listener certificate must be in LocalMachine\My, have its key and allow server auth. #>
    param([string]$Thumbprint)

    $cert = Get-Item -LiteralPath "Cert:\LocalMachine\My\$Thumbprint" -ErrorAction SilentlyContinue
    if ($null -eq $cert) {
        if ($module.CheckMode) {
            # In check mode an earlier task may only have reported that it would create it.
            $module.Warn("certificate_thumbprint '$Thumbprint' is not in Cert:\LocalMachine\My yet; continuing because this is check mode")
            return
        }
        $module.FailJson("certificate_thumbprint '$Thumbprint' is not in Cert:\LocalMachine\My; import or create the certificate first")
    }
    if (-not $cert.HasPrivateKey) {
        $module.FailJson("certificate_thumbprint '$Thumbprint' names a certificate without a private key in Cert:\LocalMachine\My")
    }
    $usage = $cert.Extensions | Where-Object { $_ -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension] }
    if ($null -ne $usage) {
        $oids = @($usage.EnhancedKeyUsages | ForEach-Object { $_.Value })
        if ($oids -notcontains $serverAuthOid) {
            $module.FailJson("certificate_thumbprint '$Thumbprint' names a certificate without the Server Authentication usage ($serverAuthOid)")
        }
    }
    if ($cert.NotAfter -lt [DateTime]::Now) {
        $module.Warn("certificate_thumbprint '$Thumbprint' expired on $($cert.NotAfter.ToString('o')); clients will refuse it")
    }
    # WinRM refuses a listener whose Hostname differs from its certificate's CN
    # (ERROR_WSMAN_CONFIG_CERT_CN_DOES_NOT_MATCH_HOSTNAME), so the Hostname follows the certificate.
    return $cert.GetNameInfo([System.Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false)
}

$addressProblem = Get-ListenerAddressProblem -Value $address
if ($null -ne $addressProblem) {
    $module.FailJson("address '$address' is not a valid WinRM listener address: $addressProblem")
}

$port = $module.Params.port
if ($null -eq $port) {
    $port = if ($transport -eq 'HTTPS') { 5986 } else { 5985 }
}
if ($port -lt 1 -or $port -gt 65535) {
    $module.FailJson("port '$port' is out of range: it must be between 1 and 65535")
}

$thumbprint = $module.Params.certificate_thumbprint
if ($null -ne $thumbprint) {
    $thumbprint = ($thumbprint -replace '[\s\u200e]', '').ToUpperInvariant()
    if ($thumbprint -notmatch '^[0-9A-F]{40}$') {
        $module.FailJson("certificate_thumbprint '$($module.Params.certificate_thumbprint)' is not a SHA-1 thumbprint of 40 hex digits")
    }
    if ($transport -eq 'HTTP') {
        $module.FailJson("certificate_thumbprint is only valid with transport 'https', not 'http'")
    }
}

try {
    $listeners = Get-Listener
}
catch {
    $module.FailJson("cannot enumerate the WinRM listeners (is the WinRM service running?): $($_.Exception.Message)", $_)
}

$selector = @{ Transport = $transport; Address = $address }
# A compatibility (or GPO) listener has the same Address and Transport as a configured one but is
# not what the selector addresses: it is never this module's listener.
$current = $listeners | Where-Object { $_.transport -eq $transport.ToLowerInvariant() -and $_.address -eq $address -and -not $_.source } | Select-Object -First 1
foreach ($other in @($listeners | Where-Object { $_.source })) {
    $setting = if ($other.transport -eq 'https') { 'EnableCompatibilityHttpsListener' } else { 'EnableCompatibilityHttpListener' }
    $origin = if ($other.source -eq 'Compatibility') { "winrm/config/service $setting switches it" } else { 'Group Policy makes it' }
    $module.Warn("the $($other.transport.ToUpperInvariant()) listener on port $($other.port) (Source '$($other.source)') is not managed by this module: $origin")
}
$module.Diff.before = if ($null -ne $current) { $current.Clone() } else { @{} }
$module.Result.previous_thumbprint = $null

if ($state -eq 'absent') {
    if ($null -ne $current) {
        if (-not $module.CheckMode) {
            try {
                Remove-WSManInstance -ResourceURI $listenerUri -SelectorSet $selector -ErrorAction Stop
            }
            catch {
                $module.FailJson("cannot remove the $transport listener on address '$address': $($_.Exception.Message)", $_)
            }
        }
        $module.Result.changed = $true
    }
    $module.Result.listener = $null
    $module.Diff.after = @{}
}
else {
    if ($transport -eq 'HTTPS') {
        if ($null -eq $thumbprint) {
            if ($null -ne $current -and $current.certificate_thumbprint) {
                $thumbprint = $current.certificate_thumbprint
            }
            elseif ($module.CheckMode) {
                $module.Warn('certificate_thumbprint is not known yet; continuing because this is check mode')
            }
            else {
                $module.FailJson("certificate_thumbprint is required to create the https listener on address '$address'")
            }
        }
        if ($null -ne $thumbprint) {
            $certificateName = Assert-ListenerCertificate -Thumbprint $thumbprint
        }
    }
    if ($null -ne $module.Params.hostname -and $certificateName -and $module.Params.hostname -ne $certificateName) {
        $module.FailJson("hostname '$($module.Params.hostname)' differs from the CN '$certificateName' of certificate_thumbprint '$thumbprint': WinRM refuses a listener whose Hostname and certificate CN do not match; omit hostname to use the CN")
    }

    $desired = @{
        transport = $transport.ToLowerInvariant()
        address = $address
        port = $port
        hostname = if ($null -ne $module.Params.hostname) { $module.Params.hostname } elseif ($certificateName) { $certificateName } elseif ($null -ne $current) { $current.hostname } else { '' }
        enabled = $module.Params.enabled
        url_prefix = $module.Params.url_prefix
        certificate_thumbprint = if ($null -ne $thumbprint) { $thumbprint } else { '' }
    }

    # Only the values that differ are sent, so an unchanged listener is never rewritten.
    $valueSet = @{}
    if ($null -eq $current -or $current.port -ne $desired.port) { $valueSet.Port = [string]$desired.port }
    if ($null -eq $current -or $current.enabled -ne $desired.enabled) { $valueSet.Enabled = $desired.enabled.ToString().ToLowerInvariant() }
    if ($null -eq $current -or $current.url_prefix -ne $desired.url_prefix) { $valueSet.URLPrefix = $desired.url_prefix }
    if (($null -eq $current -and $desired.hostname) -or ($null -ne $current -and $current.hostname -ne $desired.hostname)) { $valueSet.Hostname = $desired.hostname }
    if ($transport -eq 'HTTPS' -and $desired.certificate_thumbprint -and ($null -eq $current -or $current.certificate_thumbprint -ne $desired.certificate_thumbprint)) {
        # Written together, as WSManDsc does: WinRM checks the pair in one request.
        $valueSet.CertificateThumbprint = $desired.certificate_thumbprint
        $valueSet.Hostname = $desired.hostname
        if ($null -ne $current -and $current.certificate_thumbprint) {
            $module.Result.previous_thumbprint = $current.certificate_thumbprint
        }
    }

    if ($null -ne $current -and $valueSet.ContainsKey('Port')) {
        Assert-NoClientConnectedThrough -Listener $current -Port $port
    }

    if ($null -eq $current -or $valueSet.Count -gt 0) {
        if (-not $module.CheckMode) {
            try {
                Set-WSManConfigInstance -ResourceURI $listenerUri -SelectorSet $selector -ValueSet $valueSet -New:($null -eq $current)
            }
            catch {
                $module.FailJson("cannot configure the $transport listener on address '$address' (changing $($valueSet.Keys -join ', ')): $($_.Exception.Message)", $_)
            }
        }
        $module.Result.changed = $true
    }
    $module.Result.listener = $desired
    $module.Diff.after = $desired.Clone()
}

if ($module.Result.changed -and -not $module.CheckMode) {
    $listeners = Get-Listener
}
$module.Result.listeners = @($listeners)
$module.ExitJson()
