-- Prosody 0.12 side of examples/prosody/presbridge.conf: xmpp.test knows the
-- bridge as its external component sip.test (XEP-0114, mod_component). Merge
-- these lines into your prosody.cfg.lua; the global ones belong before the
-- first VirtualHost. tests/integration/prosody.sh writes the same settings.

-- Global section.
-- Direct TLS to a component goes through mod_net_multiplex: add it to your
-- modules_enabled (e.g. modules_enabled = { ...; "net_multiplex"; }).
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "net_multiplex"; }

-- The component port speaks plain TCP only. Keep it on loopback (Prosody's
-- default for it) and use it from a bridge on this host: [xmpp] tls = off,
-- server = 127.0.0.1:5347.
component_ports = { 5347 }
component_interfaces = { "127.0.0.1" }

-- mod_net_multiplex's direct-TLS listener: [xmpp] tls = direct,
-- server = <this host>:5348. Without ssl_interfaces it listens on the global
-- "interfaces", i.e. every address by default: it stays on loopback here. Put
-- the address the bridge reaches instead only when the bridge runs on another
-- machine. It presents the certificate of the global ssl settings (or of
-- ssl_ssl = { ... }), which must carry the name of [xmpp] name (xmpp.test).
ssl_ports = { 5348 }
ssl_interfaces = { "127.0.0.1" }
-- ssl = { certificate = "/etc/prosody/certs/xmpp.test.crt"; key = "/etc/prosody/certs/xmpp.test.key"; }

VirtualHost "xmpp.test"

-- The bridge. The secret is [xmpp] secret of presbridge.conf. A second login
-- for the domain is refused with <conflict/> (component_conflict_resolve =
-- "kick_new", the default): `presbridge --probe` while the bridge is linked
-- reports exactly that, as a warning.
Component "sip.test"
	component_secret = "demo-component-secret"
