#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic
#AnsibleRequires -CSharpUtil Ansible.AccessToken
#AnsibleRequires -PowerShell ansible_collections.winops.remoting.plugins.module_utils._WSManConfig

# Maps a client certificate (issuer thumbprint + subject UPN + URI) to a local account for WinRM
# certificate authentication. WinRM stores the account's password with the mapping and logs on
# with it; the password cannot be read back. So this module (1) tests the given password against
# the account, and (2) records when the account's password was last set at the time the mapping
# was written: if the account's password has changed since, the stored one is stale and the
# mapping is rewritten.

$spec = @{
    options = @{
        issuer_thumbprint = @{ type = 'str'; required = $true }
        subject = @{ type = 'str'; required = $true }
        uri = @{ type = 'str'; default = '*' }
        username = @{ type = 'str' }
        password = @{ type = 'str'; no_log = $true }
        enabled = @{ type = 'bool'; default = $true }
        update_password = @{ type = 'str'; default = 'on_change'; choices = @('always', 'on_change') }
        state = @{ type = 'str'; default = 'present'; choices = @('present', 'absent') }
    }
    required_if = @(, @('state', 'present', @('username', 'password')))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$mappingUri = 'winrm/config/service/certmapping'
# Not a secret: only when the account's password was last set, as UTC ticks, per mapping.
$markerKey = 'HKLM:\SOFTWARE\winops.remoting\CertificateMappings'

$issuer = ($module.Params.issuer_thumbprint -replace '[\s\u200e]', '').ToUpperInvariant()
if ($issuer -notmatch '^[0-9A-F]{40}$') {
    $module.FailJson("issuer_thumbprint '$($module.Params.issuer_thumbprint)' is not a SHA-1 thumbprint of 40 hex digits")
}
$subject = $module.Params.subject
$uri = $module.Params.uri
# MS-WSMV 2.2.4.3 CertMappingType: Subject holds at most one '*', as its first or last
# character; URI at most one, as its last, and no white space or '?'. WinRM refuses others;
# refusing them here says which option is wrong before anything is looked up or written.
$subjectStars = ([regex]::Matches($subject, '\*')).Count
if ($subject -eq '' -or $subjectStars -gt 1 -or ($subjectStars -eq 1 -and -not ($subject.StartsWith('*') -or $subject.EndsWith('*')))) {
    $module.FailJson("subject '$subject' is not a pattern WinRM takes: it needs at least one character and at most one '*', as its first or last character (for example '*@example.com'). Nothing was changed.")
}
$uriStars = ([regex]::Matches($uri, '\*')).Count
if ($uri -eq '' -or $uriStars -gt 1 -or ($uriStars -eq 1 -and -not $uri.EndsWith('*')) -or $uri -match '[\s?]') {
    $module.FailJson("uri '$uri' is not a pattern WinRM takes: it needs at least one character, at most one '*', as its last character, and no white space or '?' (for example '*', or 'http://schemas.microsoft.com/powershell/*'). Nothing was changed.")
}
$selector = @{ Issuer = $issuer; Subject = $subject; URI = $uri }
# The mapping's key may hold '*', which -Name of the registry cmdlets reads as a wildcard; a
# SHA-256 of the key gives a plain value name instead.
$keyHash = [System.Security.Cryptography.SHA256]::Create()
$markerName = [System.BitConverter]::ToString($keyHash.ComputeHash([System.Text.Encoding]::UTF8.GetBytes("$issuer|$subject|$uri"))).Replace('-', '')
$keyHash.Dispose()

function ConvertTo-PlainValue {
    param($Value)

    if ($null -eq $Value) {
        return ''
    }
    if ($Value -is [System.Xml.XmlElement]) {
        return $Value.InnerText
    }
    return [string]$Value
}

function Get-Mapping {
    <# The existing mapping for this issuer, subject and URI as a hashtable, or $null. #>
    foreach ($instance in @(Get-WSManInstance -ResourceURI $mappingUri -Enumerate -ErrorAction Stop)) {
        $found = @{
            issuer_thumbprint = (ConvertTo-PlainValue -Value $instance.Issuer).ToUpperInvariant()
            subject = ConvertTo-PlainValue -Value $instance.Subject
            uri = ConvertTo-PlainValue -Value $instance.URI
            username = ConvertTo-PlainValue -Value $instance.UserName
            enabled = (ConvertTo-PlainValue -Value $instance.Enabled) -eq 'true'
        }
        if ($found.issuer_thumbprint -eq $issuer -and $found.subject -eq $subject -and $found.uri -eq $uri) {
            return $found
        }
    }
    return $null
}

function Get-LocalAccountName {
    <# The account name without a '.\' or '<this computer>\' prefix; a mapping can only name a
       local account, so any other prefix (a domain) is refused rather than silently dropped. #>
    param([string]$UserName)

    if ($UserName -match '^(?<prefix>[^\\]+)\\(?<name>.+)$') {
        if ($Matches.prefix -ne '.' -and $Matches.prefix -ne $env:COMPUTERNAME) {
            $module.FailJson("username '$UserName' names an account of '$($Matches.prefix)', but a WinRM certificate mapping needs a local account of this host ($env:COMPUTERNAME); give it as '.\$($Matches.name)' or without a prefix")
        }
        return $Matches.name
    }
    return $UserName
}

function Get-PasswordLastSetTick {
    <# When the local account's password was last set, as UTC ticks in a string ('' if never). #>
    param([string]$UserName)

    $localName = Get-LocalAccountName -UserName $UserName
    try {
        $account = Get-LocalUser -Name $localName -ErrorAction Stop
    }
    catch {
        $module.FailJson("username '$UserName' is not a local account on this host (certificate mapping needs one): $($_.Exception.Message)", $_)
    }
    if ($null -eq $account.PasswordLastSet) {
        return ''
    }
    return [string]$account.PasswordLastSet.ToUniversalTime().Ticks
}

# Win32 errors of a network logon that Windows reports only once the password matched: the
# account may not log on this way (blank password, logon hours, workstations, "Deny access to
# this computer from the network"), but the password is right. ansible.windows' win_user counts
# the same four as a correct password.
$logonRestrictions = @{
    1327 = 'ERROR_ACCOUNT_RESTRICTION'
    1328 = 'ERROR_INVALID_LOGON_HOURS'
    1329 = 'ERROR_INVALID_WORKSTATION'
    1385 = 'ERROR_LOGON_TYPE_NOT_GRANTED'
}

function Test-AccountPassword {
    <# Whether the host's account database accepts the password (a network logon through
       LogonUser; the password never leaves memory): $true, $false for a wrong password
       (ERROR_LOGON_FAILURE), or the name of the restriction that refused an accepted password.
       Any other failure (a disabled or locked-out account...) is thrown. #>
    param([string]$UserName, [string]$Password)

    $localName = Get-LocalAccountName -UserName $UserName
    try {
        $token = [Ansible.AccessToken.TokenUtil]::LogonUser($localName, '.', $Password, 'Network', 'Default')
        $token.Dispose()
        return $true
    }
    catch [Ansible.AccessToken.Win32Exception] {
        $code = $_.Exception.NativeErrorCode
        if ($code -eq 1326) {
            return $false
        }
        if ($logonRestrictions.ContainsKey($code)) {
            return $logonRestrictions[$code]
        }
        throw
    }
}

try {
    $current = Get-Mapping
}
catch {
    $module.FailJson("cannot enumerate the WinRM certificate mappings (is the WinRM service running?): $($_.Exception.Message)", $_)
}
$module.Diff.before = if ($null -ne $current) { $current.Clone() } else { @{} }
$module.Result.password_updated = $false
$module.Result.update_reason = $null

if ($module.Params.state -eq 'absent') {
    if ($null -ne $current) {
        if (-not $module.CheckMode) {
            try {
                Remove-WSManInstance -ResourceURI $mappingUri -SelectorSet $selector -ErrorAction Stop
                Remove-ItemProperty -LiteralPath $markerKey -Name $markerName -ErrorAction SilentlyContinue
            }
            catch {
                $module.FailJson("cannot remove the mapping for subject '$subject' issued by '$issuer': $($_.Exception.Message)", $_)
            }
        }
        $module.Result.changed = $true
    }
    $module.Result.mapping = $null
    $module.Diff.after = @{}
    $module.ExitJson()
}

$username = $module.Params.username
$password = $module.Params.password
# Stored without its '.\' or '<computer>\' prefix, as New-Item WSMan:\localhost\ClientCertificate
# stores it (PowerShell's ConfigProvider.cs writes NetworkCredential.UserName, which has no
# domain), so a mapping made that way is not rewritten for the prefix alone.
$accountName = Get-LocalAccountName -UserName $username

# The issuer is the certificate that signed the client certificate (MS-WSMV 2.2.4.3): a root
# CA in Root, or an intermediate in CA (Intermediate Certification Authorities), from which
# Windows builds the chain to Root.
$issuerStores = @('Root', 'CA') | Where-Object { Test-Path -LiteralPath "Cert:\LocalMachine\$_\$issuer" }
if (-not $issuerStores) {
    if ($module.CheckMode) {
        $module.Warn("issuer_thumbprint '$issuer' is in neither Cert:\LocalMachine\Root nor Cert:\LocalMachine\CA yet; continuing because this is check mode")
    }
    else {
        $module.FailJson("issuer_thumbprint '$issuer' is in neither Cert:\LocalMachine\Root nor Cert:\LocalMachine\CA; import the issuing certificate first (a root CA into Root, an intermediate CA into CA with its root in Root)")
    }
}

$lastSet = Get-PasswordLastSetTick -UserName $username
try {
    $accepted = Test-AccountPassword -UserName $username -Password $password
}
catch {
    $module.FailJson("cannot test the password of username '$username': $($_.Exception.Message)", $_)
}
if ($accepted -is [string]) {
    $module.Warn("username '$username' is refused a network logon ($accepted) although its password is right; the password is stored, but certificate authentication may be refused until the restriction is lifted")
}
elseif (-not $accepted) {
    $module.FailJson("password is not accepted for username '$username'; the mapping would store a credential that cannot log on")
}

$recorded = $null
$marker = Get-ItemProperty -LiteralPath $markerKey -Name $markerName -ErrorAction SilentlyContinue
if ($null -ne $marker) {
    $recorded = [string]$marker.$markerName
}

$desired = @{
    issuer_thumbprint = $issuer
    subject = $subject
    uri = $uri
    username = $accountName
    enabled = $module.Params.enabled
}

$reason = $null
if ($null -eq $current) {
    $reason = 'created'
}
elseif ($current.username -ne $accountName) {
    $reason = 'username_changed'
}
elseif ($module.Params.update_password -eq 'always') {
    $reason = 'update_password_always'
}
elseif ($null -eq $recorded) {
    # Written by someone else: the stored password is unknown, so store the tested one once.
    $reason = 'stored_password_unverified'
}
elseif ($recorded -ne $lastSet) {
    $reason = 'account_password_changed'
}

$valueSet = @{}
if ($null -ne $reason) {
    $valueSet.UserName = $accountName
    $valueSet.Password = $password
}
if ($null -eq $current -or $current.enabled -ne $desired.enabled) {
    $valueSet.Enabled = $desired.enabled.ToString().ToLowerInvariant()
}

if ($valueSet.Count -gt 0) {
    if (-not $module.CheckMode) {
        try {
            Set-WSManConfigInstance -ResourceURI $mappingUri -SelectorSet $selector -ValueSet $valueSet -New:($null -eq $current)
            if ($valueSet.ContainsKey('Password')) {
                if (-not (Test-Path -LiteralPath $markerKey)) {
                    New-Item -Path $markerKey -Force -ErrorAction Stop | Out-Null
                }
                New-ItemProperty -LiteralPath $markerKey -Name $markerName -Value $lastSet -PropertyType String -Force -ErrorAction Stop | Out-Null
            }
        }
        catch {
            # The exception text comes from WinRM and does not echo the password.
            $hint = ''
            if ($null -ne $current -and $_.Exception -is [System.ArgumentException]) {
                # Set-WSManInstance changes only the elements WinRM's Get of the mapping returns
                # (WsManHelper.cs, ProcessInput "set"); whether that Get returns the password
                # is not known.
                $hint = "; if WinRM does not return the mapping's stored password, write it anew by removing the mapping (state: absent) and creating it again"
            }
            $module.FailJson("cannot write the mapping for subject '$subject' issued by '$issuer' to username '$username': $($_.Exception.Message)$hint", $_)
        }
    }
    $module.Result.changed = $true
    $module.Result.password_updated = $valueSet.ContainsKey('Password')
    $module.Result.update_reason = $reason
}

# The password is never part of the diff or the result.
$module.Result.mapping = $desired
$module.Diff.after = $desired.Clone()
$module.ExitJson()
