#!powershell

# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

#AnsibleRequires -CSharpUtil Ansible.Basic

# The SCHANNEL cipher suite priority list: the REG_SZ value Functions under
# HKLM\SOFTWARE\Policies\Microsoft\Cryptography\Configuration\SSL\00010002, comma separated, which
# is where the local Group Policy setting "SSL Cipher Suite Order" puts it (SChannelDsc's
# DSC_CipherSuites resource writes the same value). Suites not in the list are not used, and
# Windows reads the list at boot, so a change takes effect after a restart.
# Known suites per release: Microsoft's "TLS Cipher Suites in Windows 7" and "TLS Cipher Suites in
# Windows Server 2022" (learn.microsoft.com/windows/win32/secauthn/cipher-suites-in-schannel).

$spec = @{
    options = @{
        cipher_suites = @{ type = 'list'; elements = 'str' }
        state = @{ type = 'str'; choices = @('present', 'absent'); default = 'present' }
    }
    required_if = @(, @('state', 'present', @('cipher_suites')))
    supports_check_mode = $true
}

$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)

$policyKey = 'HKLM:\SOFTWARE\Policies\Microsoft\Cryptography\Configuration\SSL\00010002'
$valueName = 'Functions'
# The Group Policy editor limits the list to 1,023 characters ("Manage Transport Layer Security").
$maximumLength = 1023

# Windows Server 2008 R2 / Windows 7 (build 7601), after update 3042058: ECDHE suites carry the
# curve as a suffix (_P256, _P384, _P521).
$windows7Suites = @(
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P256', 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P384',
    'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P384',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P256', 'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P384',
    'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P256', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P384',
    'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_DHE_RSA_WITH_AES_256_CBC_SHA', 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA',
    'TLS_RSA_WITH_AES_256_GCM_SHA384', 'TLS_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_RSA_WITH_AES_256_CBC_SHA256', 'TLS_RSA_WITH_AES_128_CBC_SHA256',
    'TLS_RSA_WITH_AES_256_CBC_SHA', 'TLS_RSA_WITH_AES_128_CBC_SHA',
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384_P384', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P256',
    'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P384', 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P256', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P384',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P256', 'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P384',
    'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P256', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P384',
    'TLS_DHE_DSS_WITH_AES_256_CBC_SHA256', 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA256',
    'TLS_DHE_DSS_WITH_AES_256_CBC_SHA', 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA',
    'TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA',
    'TLS_RSA_WITH_RC4_128_SHA', 'TLS_RSA_WITH_RC4_128_MD5',
    'TLS_RSA_WITH_NULL_SHA256', 'TLS_RSA_WITH_NULL_SHA',
    'SSL_CK_RC4_128_WITH_MD5', 'SSL_CK_DES_192_EDE3_CBC_WITH_MD5',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P521', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256_P521',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA_P521', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA_P521',
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384_P521', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256_P521',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384_P521', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256_P521',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA_P521', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA_P521',
    'TLS_RSA_WITH_DES_CBC_SHA', 'TLS_RSA_EXPORT1024_WITH_RC4_56_SHA',
    'TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA', 'TLS_RSA_EXPORT_WITH_RC4_40_MD5',
    'TLS_RSA_WITH_NULL_MD5', 'TLS_DHE_DSS_WITH_DES_CBC_SHA',
    'TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA', 'SSL_CK_DES_64_CBC_WITH_MD5',
    'SSL_CK_RC4_128_EXPORT40_WITH_MD5'
)
# Windows Server 2022 (build 20348): enabled by default, then supported but not enabled, then PSK.
$windowsServer2022Suites = @(
    'TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
    'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_DHE_RSA_WITH_AES_256_GCM_SHA384', 'TLS_DHE_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256',
    'TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA', 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA',
    'TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA', 'TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA',
    'TLS_RSA_WITH_AES_256_GCM_SHA384', 'TLS_RSA_WITH_AES_128_GCM_SHA256',
    'TLS_RSA_WITH_AES_256_CBC_SHA256', 'TLS_RSA_WITH_AES_128_CBC_SHA256',
    'TLS_RSA_WITH_AES_256_CBC_SHA', 'TLS_RSA_WITH_AES_128_CBC_SHA',
    'TLS_RSA_WITH_3DES_EDE_CBC_SHA', 'TLS_RSA_WITH_NULL_SHA256', 'TLS_RSA_WITH_NULL_SHA',
    'TLS_CHACHA20_POLY1305_SHA256',
    'TLS_DHE_RSA_WITH_AES_256_CBC_SHA', 'TLS_DHE_RSA_WITH_AES_128_CBC_SHA',
    'TLS_DHE_DSS_WITH_AES_256_CBC_SHA256', 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA256',
    'TLS_DHE_DSS_WITH_AES_256_CBC_SHA', 'TLS_DHE_DSS_WITH_AES_128_CBC_SHA',
    'TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA', 'TLS_RSA_WITH_RC4_128_SHA', 'TLS_RSA_WITH_RC4_128_MD5',
    'TLS_RSA_WITH_DES_CBC_SHA', 'TLS_DHE_DSS_WITH_DES_CBC_SHA',
    'TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA', 'TLS_RSA_WITH_NULL_MD5',
    'TLS_RSA_EXPORT1024_WITH_RC4_56_SHA', 'TLS_RSA_EXPORT_WITH_RC4_40_MD5',
    'TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA',
    'TLS_PSK_WITH_AES_256_GCM_SHA384', 'TLS_PSK_WITH_AES_128_GCM_SHA256',
    'TLS_PSK_WITH_AES_256_CBC_SHA384', 'TLS_PSK_WITH_AES_128_CBC_SHA256',
    'TLS_PSK_WITH_NULL_SHA384', 'TLS_PSK_WITH_NULL_SHA256'
)

# The TLS 1.3 suites Windows Server 2022 enables by default; TLS_CHACHA20_POLY1305_SHA256 is
# supported but not enabled there, so it is not counted on to carry TLS 1.3.
$tls13Suites = @('TLS_AES_256_GCM_SHA384', 'TLS_AES_128_GCM_SHA256')
$tls13ServerKey = 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.3\Server'

$build = [int](Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -Name CurrentBuildNumber).CurrentBuildNumber
$knownSuites = if ($build -eq 7601) {
    $windows7Suites
}
elseif ($build -ge 20348) {
    $windowsServer2022Suites
}
else {
    $null
}

function Get-CurrentOrder {
    <# The list as Windows has it; $null when no list is configured (the release's default order applies). #>
    $item = Get-ItemProperty -LiteralPath $policyKey -Name $valueName -ErrorAction SilentlyContinue
    if ($null -eq $item) {
        return $null
    }
    , [string[]]@(([string]$item.$valueName).Split(',') | ForEach-Object { $_.Trim() } | Where-Object { $_ -ne '' })
}

$state = $module.Params.state
$wanted = $null
if ($state -eq 'present') {
    $wanted = [string[]]@($module.Params.cipher_suites | ForEach-Object { ([string]$_).Trim() })
    if ($wanted.Count -eq 0) {
        $module.FailJson("cipher_suites must name at least one cipher suite when state=present: an empty list would leave SCHANNEL nothing to negotiate")
    }
    if ($null -eq $knownSuites) {
        $module.FailJson("cipher_suites: the module knows the cipher suites of Windows Server 2008 R2 (build 7601) and Windows Server 2022 and later (build 20348+); this host is build $build, so the list cannot be checked. Configure it with Group Policy (SSL Cipher Suite Order) instead")
    }
    $unknown = @($wanted | Where-Object { $knownSuites -cnotcontains $_ })
    if ($unknown.Count -gt 0) {
        $module.FailJson("cipher_suites: $($unknown -join ', ') unknown to SCHANNEL on build $build; allowed values: $($knownSuites -join ', ')")
    }
    $duplicates = @($wanted | Group-Object | Where-Object { $_.Count -gt 1 } | ForEach-Object { $_.Name })
    if ($duplicates.Count -gt 0) {
        $module.FailJson("cipher_suites lists $($duplicates -join ', ') more than once")
    }
    $joined = $wanted -join ','
    if ($joined.Length -gt $maximumLength) {
        $module.FailJson("cipher_suites joined with commas is $($joined.Length) characters; Windows takes at most $maximumLength")
    }
    # With TLS 1.3 on for the server and no TLS 1.3 suite listed, SCHANNEL still chooses TLS 1.3
    # for a client that offers it, finds no suite and fails the handshake (a Server 2022 host
    # with the TLS 1.3 suites turned off: pywinrm issue #363); it does not fall back to TLS 1.2.
    # Server 2022 serves TLS 1.3 unless its Server key turns it off.
    if ($build -ge 20348 -and -not ($wanted | Where-Object { $tls13Suites -ccontains $_ })) {
        # A value not set takes the release's default (on); Enabled may read back as -1 (on).
        $tls13Server = @{ Enabled = 1; DisabledByDefault = 0 }
        $item = Get-ItemProperty -LiteralPath $tls13ServerKey -ErrorAction SilentlyContinue
        foreach ($name in @('Enabled', 'DisabledByDefault')) {
            if ($null -ne $item -and $null -ne $item.PSObject.Properties[$name]) {
                $tls13Server[$name] = [int64]$item.$name
            }
        }
        if ($tls13Server.Enabled -ne 0 -and $tls13Server.DisabledByDefault -eq 0) {
            $module.FailJson("cipher_suites names no TLS 1.3 suite ($($tls13Suites -join ' or ')) while this host serves TLS 1.3 (build $build): SCHANNEL would still choose TLS 1.3 with every client that offers it, the controller among them, find no suite and fail the handshake, so HTTPS would be cut off after the reboot. Add one of them, or disable TLS 1.3 for the server first (winops.remoting.win_schannel_protocol). Nothing was changed")
        }
    }
}

$current = Get-CurrentOrder
$changed = if ($state -eq 'present') {
    ($null -eq $current) -or (($current -join ',') -cne ($wanted -join ','))
}
else {
    $null -ne $current
}

if ($changed) {
    if (-not $module.CheckMode) {
        try {
            if ($state -eq 'present') {
                if (-not (Test-Path -LiteralPath $policyKey)) {
                    New-Item -Path $policyKey -Force -ErrorAction Stop | Out-Null
                }
                New-ItemProperty -LiteralPath $policyKey -Name $valueName -Value ($wanted -join ',') -PropertyType String -Force -ErrorAction Stop | Out-Null
            }
            else {
                Remove-ItemProperty -LiteralPath $policyKey -Name $valueName -Force -ErrorAction Stop
            }
        }
        catch {
            $module.FailJson("cannot write $valueName at $($policyKey) for cipher_suites: $($_.Exception.Message)", $_)
        }
    }
}

$module.Result.changed = $changed
$module.Result.cipher_suites = $wanted
$module.Result.build = $build
# SCHANNEL reads the list at start-up.
$module.Result.reboot_required = $changed
$module.Diff.before = @{ cipher_suites = $current }
$module.Diff.after = @{ cipher_suites = $wanted }
$module.ExitJson()
