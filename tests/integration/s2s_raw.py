#!/usr/bin/python3
"""A raw XMPP server-to-server initiator for t_s2s_faults.sh (no real server sends
what it is told to send here).

    s2s_raw.py HOST PORT FROM TO CERT KEY CA STANZA

Opens a jabber:server stream FROM -> TO on HOST:PORT, STARTTLS (presenting
CERT/KEY, checking the receiver's certificate against CA for the name TO), a new
stream header, SASL EXTERNAL (authzid "="), the restart, then sends STANZA (raw
XML) and reads until the peer closes. Everything received is printed, each read
as "RECV <bytes>", each step as "STEP <what>". Exit 0 if the peer ended the
stream after the stanza, 1 if a step failed (see the output), 2 on bad usage.
"""
import socket
import ssl
import sys
import time


def main():
    if len(sys.argv) != 9:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, frm, to, cert, key, ca, stanza = sys.argv[1:]
    sock = socket.create_connection((host, int(port)), timeout=10)

    def send(data):
        print("SEND " + data, flush=True)
        conn.sendall(data.encode())

    def read_until(*needles, secs=10):
        buf = ""
        end = time.time() + secs
        while time.time() < end:
            try:
                data = conn.recv(65536)
            except socket.timeout:
                break
            except (ssl.SSLError, OSError) as e:
                print("STEP read error: %s" % e, flush=True)
                return buf, True
            if not data:
                return buf, True
            text = data.decode(errors="replace")
            print("RECV " + text, flush=True)
            buf += text
            if any(n in buf for n in needles):
                return buf, False
        return buf, False

    def header():
        send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
             "xmlns:stream='http://etherx.jabber.org/streams' "
             "xmlns:db='jabber:server:dialback' version='1.0' "
             "from='%s' to='%s'>" % (frm, to))

    conn = sock
    header()
    got, _ = read_until("</stream:features>")
    if "urn:ietf:params:xml:ns:xmpp-tls" not in got:
        print("STEP no STARTTLS offered", flush=True)
        return 1
    send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    got, _ = read_until("<proceed")
    if "<proceed" not in got:
        print("STEP STARTTLS refused", flush=True)
        return 1
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    conn = ctx.wrap_socket(sock, server_hostname=to)
    print("STEP TLS %s" % conn.version(), flush=True)
    header()
    got, _ = read_until("</stream:features>")
    if "EXTERNAL" not in got:
        print("STEP SASL EXTERNAL not offered", flush=True)
        return 1
    send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
    got, _ = read_until("<success", "<failure")
    if "<success" not in got:
        print("STEP SASL EXTERNAL failed", flush=True)
        return 1
    print("STEP authenticated as %s" % frm, flush=True)
    header()
    read_until("</stream:features>")
    send(stanza)
    got, closed = read_until("</stream:stream>", secs=10)
    if not closed and "</stream:stream>" not in got:
        print("STEP the stream is still open", flush=True)
        return 1
    print("STEP stream closed by the peer", flush=True)
    return 0


sys.exit(main())
