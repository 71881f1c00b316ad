-- Prosody (0.12) settings for presbridge, in /etc/prosody/prosody.cfg.lua.
-- The same settings run in tests/integration/t_bridge_prosody.sh (loopback,
-- free ports; examples/prosody/ is that test's example): check the bridge's log
-- for "component link up" after the first start.

-- Global section. XEP-0114 components connect to component_ports, plain TCP
-- (Prosody has no TLS on that port). With the bridge on another machine, give
-- it direct TLS through mod_net_multiplex, which accepts TLS on ssl_ports and
-- hands a "jabber:component:accept" stream to the component listener:
modules_enabled = {
	-- ... the modules you already have ...
	"net_multiplex";
}
ssl_ports = { 5275 }                 -- [xmpp] server = xmpp.example.com:5275, tls = direct
-- Loopback unless you add an address: list the one address the bridge reaches
-- (e.g. the server's LAN address). Without ssl_interfaces Prosody binds the
-- global "interfaces", i.e. every address, public ones included.
ssl_interfaces = { "127.0.0.1" }
ssl_ssl = {                          -- the certificate on that port: names xmpp.example.com
	certificate = "/etc/prosody/certs/xmpp.example.com.crt";
	key = "/etc/prosody/certs/xmpp.example.com.key";
}
-- Or, with the bridge on the XMPP server's own host: the plain component port
-- on loopback and, in presbridge.conf, [xmpp] server = 127.0.0.1:5347, tls = off.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- The component: the other-side name of the sip row of domains.map.
Component "sip.example.com"
	component_secret = "change-me-long-random-secret"   -- [xmpp] secret
