# Copyright: winops.remoting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Writing one instance of the WinRM configuration (a listener, a certificate mapping), for the
# modules that create or change them. Internal to this collection.

Function Set-WSManConfigInstance {
    <#
    Creates the instance $ResourceURI / $SelectorSet with $ValueSet (-New), or changes the one
    that exists. Every create goes through here because the two cmdlets treat values unalike
    (PowerShell src/Microsoft.WSMan.Management/WsManHelper.cs, ProcessInput): New-WSManInstance
    pastes each value into the request's XML as it is, where Set-WSManInstance assigns it as
    element text, which escapes. A created value holding & or < would make the request malformed,
    and one holding an entity (a password with "&amp;") would be stored decoded, another value;
    so a create escapes its values and a change must not.
    #>
    param(
        [Parameter(Mandatory = $true)][string]$ResourceURI,
        [Parameter(Mandatory = $true)][hashtable]$SelectorSet,
        [Parameter(Mandatory = $true)][hashtable]$ValueSet,
        [switch]$New
    )

    if ($New) {
        $escaped = @{}
        foreach ($name in $ValueSet.Keys) {
            $escaped[$name] = [System.Security.SecurityElement]::Escape([string]$ValueSet[$name])
        }
        New-WSManInstance -ResourceURI $ResourceURI -SelectorSet $SelectorSet -ValueSet $escaped -ErrorAction Stop | Out-Null
    }
    else {
        Set-WSManInstance -ResourceURI $ResourceURI -SelectorSet $SelectorSet -ValueSet $ValueSet -ErrorAction Stop | Out-Null
    }
}

Export-ModuleMember -Function 'Set-WSManConfigInstance'
