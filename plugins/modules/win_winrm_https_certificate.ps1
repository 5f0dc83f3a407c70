#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# The certificate for the WinRM HTTPS listener, in Cert:\LocalMachine\My: a self-signed one that is
# replaced before it expires, an existing one named by thumbprint, one imported from a PFX file, or
# the newest one an enterprise CA (AD CS) enrolled the host for, picked by template and issuer.
# It returns the thumbprint for the listener and the issuer in PEM for the controller's trust store.

$spec = @{
    options = @{
        source = @{ type = 'str'; default = 'self_signed'; choices = @('self_signed', 'thumbprint', 'pfx', 'enrolled') }
        dns_names = @{ type = 'list'; elements = 'str' }
        ip_addresses = @{ type = 'list'; elements = 'str'; default = @() }
        subject = @{ type = 'str' }
        validity_days = @{ type = 'int'; default = 365 }
        renew_days_before_expiry = @{ type = 'int'; default = 30 }
        key_length = @{ type = 'int'; default = 3072; choices = @(2048, 3072, 4096) }
        friendly_name = @{ type = 'str'; default = 'winops.remoting WinRM HTTPS' }
        thumbprint = @{ type = 'str' }
        pfx_path = @{ type = 'path' }
        pfx_password = @{ type = 'str'; no_log = $true }
        template = @{ type = 'str' }
        issuer = @{ type = 'str' }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
    }
    required_if = @(
        @('state', 'absent', @('thumbprint')),
        @('source', 'thumbprint', @('thumbprint')),
        @('source', 'pfx', @('pfx_path')),
        @('source', 'enrolled', @('template', 'issuer'), $true)
    )
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$storePath = 'Cert:\LocalMachine\My'
$source = $module.Params.source
$renewDays = $module.Params.renew_days_before_expiry

function ConvertTo-Pem {
    <# DER bytes -> one PEM CERTIFICATE block with 64-character lines. #>
    param([byte[]]$Der)

    $base64 = [System.Convert]::ToBase64String($Der)
    $lines = [System.Collections.Generic.List[string]]::new()
    $lines.Add('-----BEGIN CERTIFICATE-----')
    for ($offset = 0; $offset -lt $base64.Length; $offset += 64) {
        $lines.Add($base64.Substring($offset, [Math]::Min(64, $base64.Length - $offset)))
    }
    $lines.Add('-----END CERTIFICATE-----')
    return ($lines -join "`n") + "`n"
}

function Get-IssuerPem {
    <# The certificates above the leaf in its chain; the certificate itself when self-signed; null when its issuer is not on the host. #>
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $chain = [System.Security.Cryptography.X509Certificates.X509Chain]::new()
    try {
        $chain.ChainPolicy.RevocationMode = [System.Security.Cryptography.X509Certificates.X509RevocationMode]::NoCheck
        $chain.ChainPolicy.VerificationFlags = [System.Security.Cryptography.X509Certificates.X509VerificationFlags]::AllowUnknownCertificateAuthority
        [void]$chain.Build($Certificate)
        $elements = @($chain.ChainElements | ForEach-Object { $_.Certificate })
    }
    finally {
        # Reset, not Dispose: X509Chain is IDisposable only from .NET Framework 4.6, and
        # Windows PowerShell 5.1 runs on 4.5.2.
        $chain.Reset()
    }
    if ($elements.Count -le 1) {
        if ($Certificate.SubjectName.RawData.Length -eq $Certificate.IssuerName.RawData.Length -and
            [System.Linq.Enumerable]::SequenceEqual($Certificate.SubjectName.RawData, $Certificate.IssuerName.RawData)) {
            return ConvertTo-Pem -Der $Certificate.RawData
        }
        # The issuer is in none of the host's stores: the leaf is no trust anchor for a client.
        $module.Warn("the issuer '$($Certificate.Issuer)' of certificate '$($Certificate.Thumbprint)' is not in the host's certificate stores, so issuer_pem is null; give the controller that CA's certificate yourself")
        return $null
    }
    return (@($elements | Select-Object -Skip 1 | ForEach-Object { ConvertTo-Pem -Der $_.RawData }) -join '')
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
    (SEQUENCE of GeneralName: dNSName is [2], iPAddress is [7]) so that the result does not depend
    on the language Windows formats extensions in.
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

function Get-CertificateDnsName {
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    return @((Get-SubjectAlternativeName -Certificate $Certificate).dns)
}

function Get-CertificateIPAddress {
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    return @((Get-SubjectAlternativeName -Certificate $Certificate).ip)
}

function Get-NameKey {
    <# DNS names and IP addresses as one comparable string. #>
    param([string[]]$DnsNames, [string[]]$IPAddresses)

    $dnsPart = @($DnsNames | Where-Object { $_ } | ForEach-Object { "dns:$($_.ToLowerInvariant())" })
    $ipPart = @($IPAddresses | Where-Object { $_ } | ForEach-Object { "ip:$(([System.Net.IPAddress]::Parse($_)).ToString().ToLowerInvariant())" })
    return (@($dnsPart + $ipPart | Sort-Object -Unique) -join ',')
}

function Set-CertificateResult {
    <# Fills the result from the certificate the listener should use. #>
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $module.Result.thumbprint = $Certificate.Thumbprint
    $module.Result.subject = $Certificate.Subject
    $module.Result.dns_names = @(Get-CertificateDnsName -Certificate $Certificate)
    $module.Result.ip_addresses = @(Get-CertificateIPAddress -Certificate $Certificate)
    $module.Result.not_after = $Certificate.NotAfter.ToUniversalTime().ToString('o')
    $module.Result.certificate_pem = ConvertTo-Pem -Der $Certificate.RawData
    $module.Result.issuer_pem = Get-IssuerPem -Certificate $Certificate
}

function Get-StoreCertificate {
    param([string]$Thumbprint)

    return Get-Item -LiteralPath "$storePath\$Thumbprint" -ErrorAction SilentlyContinue
}

function Get-ListenerUsingCertificate {
    <# Every WinRM listener (any transport, address or port) that names the certificate, as 'Transport Address:Port', and the service setting. #>
    param([string]$Thumbprint)

    $using = [System.Collections.Generic.List[string]]::new()
    foreach ($listener in @(Get-WSManInstance -ResourceURI 'winrm/config/listener' -Enumerate -ErrorAction Stop)) {
        $listenerThumbprint = $listener.CertificateThumbprint
        if ($listenerThumbprint -is [System.Xml.XmlElement]) {
            $listenerThumbprint = $listenerThumbprint.InnerText
        }
        if ($listenerThumbprint -and ([string]$listenerThumbprint).Trim() -eq $Thumbprint) {
            $using.Add("$($listener.Transport) $($listener.Address):$($listener.Port)")
        }
    }
    # WinRM falls back to the service's CertificateThumbprint for a listener that names none.
    $serviceThumbprint = (Get-WSManInstance -ResourceURI 'winrm/config/service' -ErrorAction Stop).CertificateThumbprint
    if ($serviceThumbprint -is [System.Xml.XmlElement]) {
        $serviceThumbprint = $serviceThumbprint.InnerText
    }
    if ($serviceThumbprint -and ([string]$serviceThumbprint).Trim() -eq $Thumbprint) {
        $using.Add('winrm/config/service CertificateThumbprint')
    }
    , $using
}

$module.Result.renewed = $false
$module.Result.previous_thumbprint = $null
$module.Result.thumbprint = $null
$module.Result.issuer_pem = $null
$module.Result.certificate_pem = $null

$thumbprint = $null
if ($null -ne $module.Params.thumbprint) {
    $thumbprint = ($module.Params.thumbprint -replace '[\s\u200e]', '').ToUpperInvariant()
    if ($thumbprint -notmatch '^[0-9A-F]{40}$') {
        $module.FailJson("thumbprint '$($module.Params.thumbprint)' is not a SHA-1 thumbprint of 40 hex digits")
    }
}

if ($module.Params.state -eq 'absent') {
    # Removing the certificate a listener serves cuts HTTPS off: WinRM keeps the listener but
    # can no longer complete a TLS handshake on it. So a certificate goes only when no listener
    # names it, whichever port or address that listener has.
    $module.Result.listeners_using = @()
    $cert = Get-StoreCertificate -Thumbprint $thumbprint
    $module.Diff.before = if ($null -ne $cert) { @{ thumbprint = $thumbprint } } else { @{} }
    $module.Diff.after = $module.Diff.before
    if ($null -eq $cert) {
        $module.ExitJson()
    }
    try {
        $listenersUsing = Get-ListenerUsingCertificate -Thumbprint $thumbprint
    }
    catch {
        $module.FailJson("cannot enumerate the WinRM listeners to check that none serves thumbprint '$thumbprint' (is the WinRM service running?): $($_.Exception.Message)", $_)
    }
    $module.Result.listeners_using = @($listenersUsing)
    if ($listenersUsing.Count -gt 0) {
        $module.Warn("thumbprint '$thumbprint' stays in $($storePath): the WinRM listener(s) $($listenersUsing -join ', ') still serve it")
        $module.ExitJson()
    }
    $module.Diff.after = @{}
    $module.Result.changed = $true
    if (-not $module.CheckMode) {
        try {
            Remove-Item -LiteralPath "$storePath\$thumbprint" -DeleteKey -ErrorAction Stop
        }
        catch {
            $module.FailJson("cannot remove thumbprint '$thumbprint' from $($storePath): $($_.Exception.Message)", $_)
        }
    }
    $module.ExitJson()
}

if ($source -eq 'thumbprint') {
    $cert = Get-StoreCertificate -Thumbprint $thumbprint
    if ($null -eq $cert) {
        $module.FailJson("thumbprint '$thumbprint' is not in $storePath")
    }
    if (-not $cert.HasPrivateKey) {
        $module.FailJson("thumbprint '$thumbprint' names a certificate without a private key in $storePath")
    }
    if ($cert.NotAfter -lt [DateTime]::Now.AddDays($renewDays)) {
        $module.Warn("the certificate '$thumbprint' expires on $($cert.NotAfter.ToString('o')); renew it and pass the new thumbprint")
    }
    Set-CertificateResult -Certificate $cert
    $module.Diff.before = @{ thumbprint = $thumbprint }
    $module.Diff.after = @{ thumbprint = $thumbprint }
    $module.ExitJson()
}

if ($source -eq 'pfx') {
    $pfxPath = $module.Params.pfx_path
    if (-not (Test-Path -LiteralPath $pfxPath -PathType Leaf)) {
        $module.FailJson("pfx_path '$pfxPath' does not exist on the host")
    }
    # ConvertTo-SecureString refuses an empty -String (a mandatory parameter without
    # AllowEmptyString), and the role's default password is empty: build the SecureString
    # directly, so an empty password is an empty SecureString, as Get-PfxData takes it.
    $securePassword = $null
    if ($null -ne $module.Params.pfx_password) {
        $securePassword = [System.Security.SecureString]::new()
        foreach ($character in $module.Params.pfx_password.ToCharArray()) {
            $securePassword.AppendChar($character)
        }
        $securePassword.MakeReadOnly()
    }
    # PFXImportCertStore takes the password "exactly the same as the value used to encrypt the
    # packet", an empty string and NULL being two different values: a PFX exported without a
    # password opens with one of the two forms only. An empty password (the role's default) or
    # none is tried in the other form too, and the form that opened it is the one imported with.
    $passwordForms = @(, $securePassword)
    if ($null -eq $securePassword) {
        $emptyPassword = [System.Security.SecureString]::new()
        $emptyPassword.MakeReadOnly()
        $passwordForms += $emptyPassword
    }
    elseif ($securePassword.Length -eq 0) {
        $passwordForms += $null
    }
    $pfxData = $null
    $openFailure = $null
    foreach ($form in $passwordForms) {
        try {
            $pfxData = if ($null -ne $form) { Get-PfxData -FilePath $pfxPath -Password $form -ErrorAction Stop } else { Get-PfxData -FilePath $pfxPath -ErrorAction Stop }
            $securePassword = $form
            break
        }
        catch {
            if ($null -eq $openFailure) {
                $openFailure = $_
            }
        }
    }
    if ($null -eq $pfxData) {
        $module.FailJson("cannot open pfx_path '$pfxPath' (wrong pfx_password, not a PFX file, or a PFX encrypted with AES-256, OpenSSL 3's default, which Windows Server 2016 and older cannot read and report as a wrong password: export it with 3DES, for example openssl pkcs12 -export -legacy): $($openFailure.Exception.Message)", $openFailure)
    }
    $leaf = @($pfxData.EndEntityCertificates) | Select-Object -First 1
    if ($null -eq $leaf) {
        $module.FailJson("pfx_path '$pfxPath' holds no end-entity certificate")
    }
    $existing = Get-StoreCertificate -Thumbprint $leaf.Thumbprint
    $module.Diff.before = @{ thumbprint = if ($null -ne $existing -and $existing.HasPrivateKey) { $leaf.Thumbprint } else { $null } }
    $module.Diff.after = @{ thumbprint = $leaf.Thumbprint }
    if ($null -ne $existing -and $existing.HasPrivateKey) {
        Set-CertificateResult -Certificate $existing
        $module.ExitJson()
    }
    $module.Result.changed = $true
    if ($module.CheckMode) {
        $module.Result.thumbprint = $leaf.Thumbprint
        $module.ExitJson()
    }
    try {
        $importParams = @{ FilePath = $pfxPath; CertStoreLocation = $storePath; ErrorAction = 'Stop' }
        if ($null -ne $securePassword) {
            $importParams.Password = $securePassword
        }
        Import-PfxCertificate @importParams | Out-Null
    }
    catch {
        $module.FailJson("cannot import pfx_path '$pfxPath' into $($storePath): $($_.Exception.Message)", $_)
    }
    Set-CertificateResult -Certificate (Get-StoreCertificate -Thumbprint $leaf.Thumbprint)
    $module.ExitJson()
}

function Get-CertificateTemplate {
    <#
    The template an enterprise CA wrote into the certificate, decoded from the extensions' DER so
    that it does not depend on the display language or on a lookup in Active Directory: the
    version 2+ Certificate Template Information (1.3.6.1.4.1.311.21.7, a SEQUENCE whose first
    element is the template's OID) and the version 1 template name (1.3.6.1.4.1.311.20.2, a
    BMPString). MS-WCCE 2.2.2.7.7.1 and 2.2.2.7.7.2.
    #>
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    $template = @{ oid = $null; name = $null }
    foreach ($extension in $Certificate.Extensions) {
        [byte[]]$raw = $extension.RawData
        if ($extension.Oid.Value -eq '1.3.6.1.4.1.311.21.7' -and $raw.Length -gt 2 -and $raw[0] -eq 0x30) {
            $offset = 1
            [void](Read-DerLength -Bytes $raw -Offset ([ref]$offset))
            if ($raw[$offset] -eq 0x06) {
                $offset++
                $length = Read-DerLength -Bytes $raw -Offset ([ref]$offset)
                $value = [byte[]]::new($length)
                [Array]::Copy($raw, $offset, $value, 0, $length)
                $template.oid = (ConvertFrom-DerOid -Body $value)
            }
        }
        elseif ($extension.Oid.Value -eq '1.3.6.1.4.1.311.20.2' -and $raw.Length -ge 2) {
            # Windows CAs write a bare BMPString; MS-WCCE 2.2.2.7.7.1 describes a SEQUENCE around a
            # UTF8String: read either.
            $offset = 0
            if ($raw[0] -eq 0x30) {
                $offset = 1
                [void](Read-DerLength -Bytes $raw -Offset ([ref]$offset))
            }
            $tag = $raw[$offset]
            $offset++
            $length = Read-DerLength -Bytes $raw -Offset ([ref]$offset)
            if ($tag -eq 0x1E) {
                $template.name = [System.Text.Encoding]::BigEndianUnicode.GetString($raw, $offset, $length)
            }
            elseif ($tag -eq 0x0C) {
                $template.name = [System.Text.Encoding]::UTF8.GetString($raw, $offset, $length)
            }
        }
    }
    return $template
}

function ConvertFrom-DerOid {
    <# The dotted text of an OBJECT IDENTIFIER's contents octets (X.690 8.19). #>
    param([byte[]]$Body)

    $arcs = [System.Collections.Generic.List[string]]::new()
    $arcs.Add([string][Math]::Min(2, [Math]::Floor($Body[0] / 40)))
    $arcs.Add([string]($Body[0] - (40 * [Math]::Min(2, [Math]::Floor($Body[0] / 40)))))
    [uint64]$value = 0
    for ($index = 1; $index -lt $Body.Length; $index++) {
        $value = ($value * 128) + ($Body[$index] -band 0x7F)
        if (($Body[$index] -band 0x80) -eq 0) {
            $arcs.Add($value.ToString())
            $value = 0
        }
    }
    return ($arcs -join '.')
}

function Test-ServerAuthentication {
    <# Whether the certificate's EKU extension names Server Authentication (1.3.6.1.5.5.7.3.1), by OID, not by the localised friendly name. #>
    param([System.Security.Cryptography.X509Certificates.X509Certificate2]$Certificate)

    foreach ($extension in $Certificate.Extensions) {
        if ($extension -is [System.Security.Cryptography.X509Certificates.X509EnhancedKeyUsageExtension]) {
            return [bool]($extension.EnhancedKeyUsages | Where-Object { $_.Value -eq '1.3.6.1.5.5.7.3.1' })
        }
    }
    return $false
}

if ($source -eq 'enrolled') {
    $template = $module.Params.template
    $templateIsOid = $null -ne $template -and $template -match '^[0-2](\.\d+)+$'
    $wantedIssuer = $null
    if ($module.Params.issuer) {
        try {
            $wantedIssuer = [System.Security.Cryptography.X509Certificates.X500DistinguishedName]::new($module.Params.issuer).Name
        }
        catch {
            $module.FailJson("issuer '$($module.Params.issuer)' is not a distinguished name such as 'CN=Example Issuing CA, DC=example, DC=com': $($_.Exception.Message)", $_)
        }
    }
    $wantedSubject = $null
    if ($module.Params.subject) {
        try {
            $wantedSubject = [System.Security.Cryptography.X509Certificates.X500DistinguishedName]::new($module.Params.subject).Name
        }
        catch {
            $module.FailJson("subject '$($module.Params.subject)' is not a distinguished name such as 'CN=host.example.com': $($_.Exception.Message)", $_)
        }
    }
    $wantedNames = @($module.Params.dns_names | Where-Object { $_ } | ForEach-Object { $_.ToLowerInvariant() })
    $wantedIPs = [System.Collections.Generic.List[string]]::new()
    foreach ($ip in @($module.Params.ip_addresses | Where-Object { $_ })) {
        $parsedIP = $null
        if (-not [System.Net.IPAddress]::TryParse($ip, [ref]$parsedIP) -or $ip -notmatch '[.:]') {
            $module.FailJson("ip_addresses entry '$ip' is not an IPv4 or IPv6 address")
        }
        $wantedIPs.Add($parsedIP.ToString().ToLowerInvariant())
    }
    $now = [DateTime]::Now
    $matching = [System.Collections.Generic.List[object]]::new()
    foreach ($cert in (Get-ChildItem -LiteralPath $storePath)) {
        if (-not $cert.HasPrivateKey -or $cert.NotBefore -gt $now -or $cert.NotAfter -le $now) {
            continue
        }
        if (-not (Test-ServerAuthentication -Certificate $cert)) {
            continue
        }
        if ($null -ne $template) {
            $found = Get-CertificateTemplate -Certificate $cert
            $templateMatches = if ($templateIsOid) { $found.oid -eq $template } else { $null -ne $found.name -and $found.name -ceq $template }
            if (-not $templateMatches) {
                continue
            }
        }
        if ($null -ne $wantedIssuer -and $cert.IssuerName.Name -ne $wantedIssuer) {
            continue
        }
        if ($null -ne $wantedSubject -and $cert.SubjectName.Name -ne $wantedSubject) {
            continue
        }
        $names = Get-SubjectAlternativeName -Certificate $cert
        $haveNames = @($names.dns | ForEach-Object { $_.ToLowerInvariant() })
        $haveIPs = @($names.ip | ForEach-Object { $_.ToLowerInvariant() })
        $missing = @($wantedNames | Where-Object { $haveNames -notcontains $_ }) + @($wantedIPs | Where-Object { $haveIPs -notcontains $_ })
        if ($missing.Count -gt 0) {
            continue
        }
        $matching.Add($cert)
    }
    $matching = @($matching | Sort-Object -Property @('NotBefore', 'NotAfter', 'Thumbprint') -Descending)
    $criteria = @(
        if ($null -ne $template) { "template '$template'" }
        if ($null -ne $wantedIssuer) { "issuer '$wantedIssuer'" }
        if ($null -ne $wantedSubject) { "subject '$wantedSubject'" }
        if ($wantedNames.Count -gt 0) { "dns_names '$($wantedNames -join ', ')'" }
        if ($wantedIPs.Count -gt 0) { "ip_addresses '$($wantedIPs -join ', ')'" }
    ) -join ', '
    if ($matching.Count -eq 0) {
        $module.FailJson("no certificate in $storePath matches $criteria with a private key, the Server Authentication EKU and a validity that includes now: enrol the host for the template (auto-enrolment or Get-Certificate) or correct the criteria")
    }
    $chosen = $matching[0]
    if ($chosen.NotAfter -lt $now.AddDays($renewDays)) {
        $module.Warn("the newest certificate that matches $criteria ('$($chosen.Thumbprint)') expires on $($chosen.NotAfter.ToString('o')): auto-enrolment has not renewed it")
    }
    $module.Result.matched_thumbprints = @($matching | ForEach-Object { $_.Thumbprint })
    $module.Result.template = Get-CertificateTemplate -Certificate $chosen
    Set-CertificateResult -Certificate $chosen
    $module.Diff.before = @{ thumbprint = $chosen.Thumbprint }
    $module.Diff.after = @{ thumbprint = $chosen.Thumbprint }
    $module.ExitJson()
}

# self_signed
if ($module.Params.validity_days -le $renewDays) {
    $module.FailJson("validity_days '$($module.Params.validity_days)' must be greater than renew_days_before_expiry '$renewDays', or every run would renew")
}
$dnsNames = $module.Params.dns_names
if ($null -eq $dnsNames -or $dnsNames.Count -eq 0) {
    $dnsNames = @($env:COMPUTERNAME)
    # The computer's own view of its FQDN, without a DNS lookup that might return another name.
    $ipProperties = [System.Net.NetworkInformation.IPGlobalProperties]::GetIPGlobalProperties()
    if ($ipProperties.DomainName) {
        $dnsNames += "$($ipProperties.HostName).$($ipProperties.DomainName)"
    }
}
$dnsNames = [string[]]@($dnsNames)
$ipAddresses = [string[]]@($module.Params.ip_addresses)
foreach ($ip in $ipAddresses) {
    $parsedIP = $null
    if (-not [System.Net.IPAddress]::TryParse($ip, [ref]$parsedIP) -or $ip -notmatch '[.:]') {
        $module.FailJson("ip_addresses entry '$ip' is not an IPv4 or IPv6 address")
    }
}
# The default subject tells each certificate apart from the one it replaces: while the listener
# moves to a renewed certificate the controller trusts both, and OpenSSL looks trust anchors up
# by subject; of two self-signed certificates with one subject and no authority key identifier
# it tries only the first, so the other would fail validation. Windows checks only the CN
# against the listener's Hostname. The time in the invariant culture: the current one may count
# years in another calendar (th-TH: the Thai Buddhist year).
$defaultSubject = -not $module.Params.subject
$subject = if ($defaultSubject) { "CN=$($dnsNames[0]), OU=winops.remoting $([DateTime]::UtcNow.ToString('yyyyMMddHHmmss', [System.Globalization.CultureInfo]::InvariantCulture))" } else { $module.Params.subject }
# Compared in the form .NET prints names ("CN=a, O=b"), so that "CN=a,O=b" matches the
# certificate made from it instead of renewing it on every run.
try {
    $wantedSubject = [System.Security.Cryptography.X509Certificates.X500DistinguishedName]::new($subject).Name
}
catch {
    $module.FailJson("subject '$subject' is not a distinguished name such as 'CN=host.example.com, O=Example': $($_.Exception.Message)", $_)
}
$wantedNames = Get-NameKey -DnsNames $dnsNames -IPAddresses $ipAddresses

$candidates = @(Get-ChildItem -LiteralPath $storePath | Where-Object { $_.FriendlyName -eq $module.Params.friendly_name -and $_.HasPrivateKey } | Sort-Object -Property NotAfter -Descending)
$newest = $candidates | Select-Object -First 1
$reason = $null
if ($null -eq $newest) {
    $reason = 'missing'
}
elseif ($newest.NotAfter -lt [DateTime]::Now.AddDays($renewDays)) {
    $reason = 'expiring'
}
elseif ((Get-NameKey -DnsNames (Get-CertificateDnsName -Certificate $newest) -IPAddresses (Get-CertificateIPAddress -Certificate $newest)) -ne $wantedNames) {
    $reason = 'names_changed'
}
elseif ($defaultSubject -and $newest.GetNameInfo([System.Security.Cryptography.X509Certificates.X509NameType]::SimpleName, $false) -ne $dnsNames[0]) {
    $reason = 'names_changed'
}
elseif (-not $defaultSubject -and $newest.SubjectName.Name -ne $wantedSubject) {
    $reason = 'names_changed'
}

$module.Diff.before = if ($null -ne $newest) { @{ thumbprint = $newest.Thumbprint; subject = $newest.Subject; dns_names = @(Get-CertificateDnsName -Certificate $newest); not_after = $newest.NotAfter.ToUniversalTime().ToString('o') } } else { @{} }
if ($null -eq $reason) {
    Set-CertificateResult -Certificate $newest
    $module.Diff.after = $module.Diff.before
    $module.ExitJson()
}

$module.Result.changed = $true
$module.Result.renewal_reason = $reason
if ($null -ne $newest) {
    $module.Result.renewed = $true
    $module.Result.previous_thumbprint = $newest.Thumbprint
}
$notAfter = [DateTime]::Now.AddDays($module.Params.validity_days)
$module.Diff.after = @{ thumbprint = '(new)'; subject = $subject; dns_names = $dnsNames; ip_addresses = $ipAddresses; not_after = $notAfter.ToUniversalTime().ToString('o') }
if ($module.CheckMode) {
    $module.ExitJson()
}

$certParams = @{
    Type = 'SSLServerAuthentication'
    Subject = $subject
    CertStoreLocation = $storePath
    NotAfter = $notAfter
    KeyAlgorithm = 'RSA'
    KeyLength = $module.Params.key_length
    HashAlgorithm = 'SHA256'
    KeyExportPolicy = 'NonExportable'
    FriendlyName = $module.Params.friendly_name
    ErrorAction = 'Stop'
}
if ($ipAddresses.Count -gt 0) {
    # -DnsName cannot carry IP addresses: write the whole subject alternative name instead.
    $sanEntries = @($dnsNames | ForEach-Object { "DNS=$_" }) + @($ipAddresses | ForEach-Object { "IPAddress=$_" })
    $certParams.TextExtension = @("2.5.29.17={text}$($sanEntries -join '&')")
}
else {
    $certParams.DnsName = $dnsNames
}
try {
    $created = New-SelfSignedCertificate @certParams
}
catch {
    $module.FailJson("cannot create a self-signed certificate for dns_names '$($dnsNames -join ', ')': $($_.Exception.Message)", $_)
}
Set-CertificateResult -Certificate $created
$module.Diff.after.thumbprint = $created.Thumbprint
$module.ExitJson()
