# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# What the modules that could cut a play off (win_winrm_firewall, win_winrm_service,
# win_winrm_listener) ask before they change anything: which WinRM clients are connected now,
# and on which of this host's addresses they arrived. Internal to this collection.

Function ConvertTo-PlainAddress {
    <#
    An address as one text per address: an IPv4-mapped IPv6 address as IPv4 and without an IPv6
    zone, so that one connection reads alike whichever stack reported it.
    #>
    param([string]$Text)

    $parsed = [System.Net.IPAddress]::Parse(($Text -split '%')[0])
    if ($parsed.IsIPv4MappedToIPv6) {
        $parsed = $parsed.MapToIPv4()
    }
    return $parsed.ToString()
}

Function Get-WinRMConnection {
    <#
    Writes the established TCP connections to a WinRM port (5985, 5986, every listener's port and
    $Port), each as @{ local; port; remote }: the host address and port it arrived on
    (Get-NetTCPConnection's LocalAddress, LocalPort) and the client's address (RemoteAddress).
    The play's own connection is one of them.
    The host's own connections to itself (remote and local address equal) are left out: rules
    made with the firewall's tools have no effect on loopback traffic (KB2771908), so such a
    client neither loses access nor shows that a remote one keeps it.
    #>
    param([int[]]$Port = @())

    $ports = [System.Collections.Generic.List[int]]::new()
    foreach ($known in @(5985, 5986) + $Port) {
        if ($null -ne $known) { $ports.Add([int]$known) }
    }
    try {
        foreach ($listener in @(Get-WSManInstance -ResourceURI winrm/config/listener -Enumerate -ErrorAction Stop)) {
            $ports.Add([int]([string]$listener.Port))
        }
    }
    catch {
        # The default ports and $Port are still read.
        $null = $_
    }
    foreach ($tcp in @(Get-NetTCPConnection -State Established -LocalPort @($ports | Sort-Object -Unique) -ErrorAction SilentlyContinue)) {
        $local = ConvertTo-PlainAddress -Text ([string]$tcp.LocalAddress)
        $remote = ConvertTo-PlainAddress -Text ([string]$tcp.RemoteAddress)
        if ($local -ne $remote) {
            @{ local = $local; port = [int]$tcp.LocalPort; remote = $remote }
        }
    }
}

Function Compare-AddressByte {
    <# -1, 0 or 1: two addresses of one family compared as unsigned big-endian numbers. #>
    param([byte[]]$Left, [byte[]]$Right)

    for ($i = 0; $i -lt $Left.Length; $i++) {
        if ($Left[$i] -ne $Right[$i]) {
            return [Math]::Sign([int]$Left[$i] - [int]$Right[$i])
        }
    }
    return 0
}

Export-ModuleMember -Function 'ConvertTo-PlainAddress', 'Get-WinRMConnection', 'Compare-AddressByte'
