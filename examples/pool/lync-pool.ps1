# presbridge as a trusted application pool of two computers (docs/pool.md,
# section 4), in the Lync Server 2013 / Skype for Business Server Management
# Shell, as a member of RTCUniversalServerAdmins (Enable-CsTopology needs setup
# permissions, or a domain administrator).
#
# Names: the pool FQDN presbridge.example.com resolves to both nodes
# (dns.zone); the nodes are pb-a.example.com and pb-b.example.com; the Front End
# pool is lyncpool.example.com; the XMPP domain is xmpp.example.com.
# Cmdlet references: the Skype for Business Server PowerShell documentation
# (learn.microsoft.com/powershell/module/skype/, MicrosoftDocs/office-docs-powershell).

$PoolFqdn     = "presbridge.example.com"
$NodeA        = "pb-a.example.com"
$NodeB        = "pb-b.example.com"
$Registrar    = "lyncpool.example.com"
$XmppDomain   = "xmpp.example.com"
$Port         = 5061          # [sip] listen on every node
$SiteId       = (Get-CsSite | Select-Object -First 1).SiteId   # or the SiteId you want, without "site:"

# The pool, created with its first computer under that computer's own FQDN:
# a pool whose computer carries the pool FQDN can never get a second computer
# (New-CsTrustedApplicationPool, -ComputerFqdn). The bridge is no UCMA
# application and keeps no replica of the Central Management store; its
# requests are treated as authenticated and throttled as a server's (both
# the documented defaults, written out).
New-CsTrustedApplicationPool -Identity $PoolFqdn -ComputerFqdn $NodeA `
    -Registrar $Registrar -Site $SiteId -RequiresReplication $false `
    -ThrottleAsServer $true -TreatAsAuthenticated $true

# The second node (the pool must carry no role but the trusted application's).
New-CsTrustedApplicationComputer -Identity $NodeB -Pool $PoolFqdn

# The application and its port; the cmdlet opens no firewall port.
New-CsTrustedApplication -ApplicationId presbridge -TrustedApplicationPoolFqdn $PoolFqdn -Port $Port

# The TLS static route: everything for the XMPP domain goes to the pool.
# -UseDefaultCertificate $false names the certificate the Front End presents on
# this route by issuer and serial number (New-CsStaticRoute, Example 3); with
# $true it presents its default certificate instead and the two -TLSCert
# parameters go. Either certificate must name lyncpool.example.com ([peer lync]
# host) and chain to the bridge's [sip] ca.
$route = New-CsStaticRoute -TLSRoute -Destination $PoolFqdn -Port $Port -MatchUri $XmppDomain `
    -UseDefaultCertificate $false `
    -TLSCertIssuer "CN=Enterprise CA, DC=example, DC=com" `
    -TLSCertSerialNumber 0x61,0x1f,0x2a,0x00,0x00,0x00,0x00,0x00,0x00,0x2d
Set-CsStaticRoutingConfiguration -Identity global -Route @{Add=$route}

# Nothing of the above takes effect until the topology is enabled.
Enable-CsTopology

# Check:
#   Get-CsTrustedApplicationPool -Identity $PoolFqdn
#   Get-CsTrustedApplicationComputer -Pool $PoolFqdn        # pb-a and pb-b
#   Get-CsTrustedApplication
#   Get-CsStaticRoutingConfiguration | Select-Object -ExpandProperty Route
# Undo the route: Set-CsStaticRoutingConfiguration -Identity global -Route @{Remove=$route}
