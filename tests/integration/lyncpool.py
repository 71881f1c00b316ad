#!/usr/bin/env python3
"""lyncpool.py -- the Lync front end of a pool, for the presbridge pool tests.

A SIP user agent over UDP (Python 3 standard library only) that plays, at once,
many Lync users toward one or more bridges:

  python3 lyncpool.py --port PORT [--addr 127.0.0.1] [--domain sip.test]

It binds ADDR:PORT (the bridges' [peer lync] address), reads commands from stdin,
one per line, and prints one line per event on stdout (line-buffered).

Commands (NAME: a dialog name; PREFIX*: every dialog whose name starts so):
  watch PREFIX N TO_AOR DEST
      N SUBSCRIBE dialogs PREFIX1..PREFIXN (Event: presence, Accept: PIDF,
      Expires 3600) from sip:PREFIXi@DOMAIN to sip:TO_AOR, sent to DEST
      (HOST:PORT, a bridge). Each 2xx makes the dialog (To tag, Contact, route).
  refresh NAME|PREFIX* [EXPIRES]
      an in-dialog SUBSCRIBE (default Expires 3600) in each of those watcher
      dialogs, to the dialog's remote target: the Contact of the last NOTIFY or
      2xx received in it (RFC 3261 section 12.2.1.2; NOTIFY and SUBSCRIBE are
      target refresh requests, RFC 6665 sections 3.1 and 3.2).
  pres USER BASIC NOTE
      presentity sip:USER@DOMAIN is now BASIC (open|closed) with NOTE; every
      notifier dialog of that presentity gets a NOTIFY at its remote target.
      Without an earlier "pres", a presentity is open with note "initial".
  pres-all PREFIX BASIC NOTE   the same for every presentity whose user starts with PREFIX
  invite NAME FROM_USER TO_AOR DEST TEXT
      an IM session as Lync opens it (INVITE with application/sdp;call-type=im,
      "m=message 5060 sip null"), ACK to the 2xx, then a MESSAGE with TEXT.
  message NAME TEXT   a MESSAGE in IM dialog NAME
  bye NAME            BYE in IM dialog NAME
  mark NAME           remember the current event number as NAME (prints MARK)
  count KIND [FIELD=VALUE | FIELD~SUBSTRING]... [since MARK]
      prints "COUNT n dialogs=d first=MS last=MS": the events of KIND (NOTIFY,
      SUBSCRIBE, RESP, BYE, MESSAGE, ...) after MARK that match every filter, the
      number of distinct dlg= among them, the wall-clock ms of the first and last.
  lastis KIND FIELD=VALUE PREFIX
      prints "LASTIS n of m": of the m dialogs named PREFIX... that had an event
      of KIND, n had FIELD=VALUE in their latest one.
  dialogs PREFIX      prints "DIALOGS n" (live dialogs whose name starts so)
  quit
A value with spaces is written with %20 (e.g. a NOTE); event fields are written so too.

Events (stdout), every one "EV seq=N ms=WALLCLOCK_MS KIND field=value...":
  NOTIFY    dlg src contact cseq state basic note   a NOTIFY in a watcher dialog (200 sent)
  SUBSCRIBE dlg src contact cseq expires new=0|1 presentity
            a SUBSCRIBE from a bridge (we are the notifier); 200 sent, then a NOTIFY
  RESP      dlg method code src cseq [expires] [contact]   a final response to our request
  TIMEOUT   dlg method                              no final response within 32 s
  BYE / MESSAGE / INFO   dlg src [body]             requests in an IM dialog (200 sent)
  OUT-OF-ORDER dlg method cseq last                 CSeq below the remote one: 500 sent
                                                    (RFC 3261 section 12.2.2)
  NO-DIALOG method src                              481 sent
  RETRANS   method src                              a request seen before: the same answer again
Other output: "MARK name seq", "COUNT ...", "DIALOGS n", "ERR reason".

Transactions: our requests are retransmitted at 500 ms, doubling up to 4 s, for 32 s
(RFC 3261 section 17.1.2.2 timers); received requests are matched to their
transaction by Via branch and method, and a retransmission gets the same response
and no new event. Local CSeq grows by one per request in a dialog; the remote CSeq
of each dialog is checked as RFC 3261 section 12.2.2 says.
"""

import argparse
import base64
import os
import random
import re
import selectors
import socket
import sys
import time
import urllib.parse

T1, T2, TIMEOUT = 0.5, 4.0, 32.0
PIDF = (
    '<?xml version="1.0" encoding="UTF-8"?>\r\n'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:{user}@{dom}">'
    '<tuple id="lync"><status><basic>{basic}</basic></status>'
    "<note>{note}</note></tuple></presence>\r\n"
)
IM_SDP = (
    "v=0\r\no=- 0 0 IN IP4 {ip}\r\ns=session\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
    "m=message 5060 sip null\r\n"
    "a=accept-types:text/plain multipart/alternative image/gif text/rtf text/html "
    "application/x-ms-ink application/ms-imdn+xml text/x-msmsgsinvite\r\n"
)


def q(v):
    return urllib.parse.quote(str(v), safe="/:@;=<>.-_~+,!*'()[]")


def uq(v):
    return urllib.parse.unquote(v)


def rand(n=10):
    return "".join(random.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


class Msg:
    """A parsed SIP message: first line, headers (name lower-case -> list), body."""

    COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
               "l": "content-length", "c": "content-type", "o": "event", "k": "supported"}

    def __init__(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.first = lines[0]
        self.hdrs = {}
        self.order = []
        for ln in lines[1:]:
            if ln[:1] in (" ", "\t") and self.order:
                k = self.order[-1]
                self.hdrs[k][-1] += " " + ln.strip()
                continue
            k, _, v = ln.partition(":")
            k = k.strip().lower()
            k = self.COMPACT.get(k, k)
            self.hdrs.setdefault(k, []).append(v.strip())
            self.order.append(k)
        n = int(self.get("content-length") or len(body))
        self.body = body[:n].decode("utf-8", "replace")
        p = self.first.split(" ", 2)
        self.is_req = not self.first.startswith("SIP/2.0")
        if self.is_req:
            self.method, self.ruri = p[0], p[1]
        else:
            self.code = int(p[1])
        cs = (self.get("cseq") or "0 X").split()
        self.cseq, self.cseq_m = int(cs[0]), cs[1]

    def get(self, k):
        v = self.hdrs.get(k)
        return v[0] if v else None

    def all(self, k):
        # Comma-separated header values (Via, Record-Route) as single values.
        out = []
        for v in self.hdrs.get(k, []):
            out += [x.strip() for x in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)(?![^<]*>)", v)]
        return out


def tag_of(v):
    m = re.search(r";\s*tag=([^;>\s]+)", v or "")
    return m.group(1) if m else None


def uri_of(v):
    m = re.search(r"<([^>]*)>", v or "")
    return m.group(1) if m else (v or "").split(";")[0].strip()


def hostport(uri, default=None):
    """(ip, port) of a SIP URI with a numeric host; default if it has none."""
    m = re.match(r"sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>?]+)(?::(\d+))?", uri or "")
    if not m:
        return default
    host, port = m.group(1).strip("[]"), int(m.group(2) or 5060)
    try:
        socket.inet_aton(host)
    except OSError:
        return default
    return (host, port)


def branch_of(via):
    m = re.search(r";\s*branch=([^;\s]+)", via or "")
    return m.group(1) if m else ""


class Dialog:
    def __init__(self, name, kind):
        self.name, self.kind = name, kind  # kind: watch | notifier | im
        self.call_id = rand(16) + "@lyncpool"
        self.ltag, self.rtag = rand(8), None
        self.local_uri = self.remote_uri = None
        self.target = None  # remote target URI
        self.dest = None  # (ip, port) to use when the target has no numeric host
        self.route = []
        self.lseq, self.rseq = 0, None
        self.expires = 3600
        self.presentity = None
        self.pending_msg = None
        self.alive = True


class UA:
    def __init__(self, addr, port, domain):
        self.addr, self.port, self.domain = addr, port, domain
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((addr, port))
        self.sock.setblocking(False)
        self.dialogs = {}  # name -> Dialog
        self.by_key = {}  # (call-id, local tag) -> Dialog
        self.clients = {}  # branch -> [dlg, method, data, dest, next_at, interval, deadline]
        self.servers = {}  # (branch, method) -> (response bytes, dest)
        self.pres = {}  # user -> (basic, note)
        self.events = []  # (seq, kind, fields)
        self.marks = {}
        self.nseq = 0
        self.n_notifier = 0

    # ---- output
    def emit(self, kind, **f):
        self.nseq += 1
        ms = int(time.time() * 1000)
        self.events.append((self.nseq, kind, f, ms))
        fields = " ".join("%s=%s" % (k, q(v)) for k, v in f.items() if v is not None)
        print("EV seq=%d ms=%d %s %s" % (self.nseq, ms, kind, fields), flush=True)

    # ---- sending
    def via(self, branch):
        return "SIP/2.0/UDP %s:%d;branch=%s;rport" % (self.addr, self.port, branch)

    def contact(self, user="lync"):
        return "<sip:%s@%s:%d;transport=udp>" % (user, self.addr, self.port)

    def dest_of(self, d):
        if d.route and ";lr" in d.route[0]:
            return hostport(uri_of(d.route[0]), d.dest)
        return hostport(d.target, d.dest)

    def request(self, d, method, extra=(), body="", ctype=None, ruri=None, dest=None, cseq=None):
        if cseq is None:
            d.lseq += 1
            cseq = d.lseq
        branch = "z9hG4bK" + rand(12)
        ruri = ruri or d.target
        route = list(d.route)
        if route and ";lr" not in route[0]:
            route = route[1:] + ["<%s>" % ruri]
            ruri = uri_of(d.route[0])
        h = ["%s %s SIP/2.0" % (method, ruri), "Via: " + self.via(branch), "Max-Forwards: 70",
             "From: <%s>;tag=%s" % (d.local_uri, d.ltag),
             "To: <%s>%s" % (d.remote_uri, ";tag=" + d.rtag if d.rtag else ""),
             "Call-ID: " + d.call_id, "CSeq: %d %s" % (cseq, method)]
        h += ["Route: " + r for r in route]
        if method != "ACK":
            h.append("Contact: " + self.contact(d.local_uri.split(":")[1].split("@")[0]))
        h += list(extra)
        if ctype:
            h.append("Content-Type: " + ctype)
        b = body.encode()
        h.append("Content-Length: %d" % len(b))
        data = ("\r\n".join(h) + "\r\n\r\n").encode() + b
        dest = dest or self.dest_of(d)
        if dest is None:
            print("ERR %s: no address for %s" % (d.name, d.target), flush=True)
            return
        self.sock.sendto(data, dest)
        if method != "ACK":
            now = time.monotonic()
            self.clients[branch] = [d, method, data, dest, now + T1, T1, now + TIMEOUT]

    def respond(self, m, src, code, reason, extra=(), body="", ctype=None, totag=None):
        h = ["SIP/2.0 %d %s" % (code, reason)]
        h += ["Via: " + v for v in m.all("via")]
        to = m.get("to") or ""
        if totag and not tag_of(to):
            to += ";tag=" + totag
        h += ["From: " + (m.get("from") or ""), "To: " + to, "Call-ID: " + (m.get("call-id") or ""),
              "CSeq: " + (m.get("cseq") or "")]
        h += list(extra)
        if ctype:
            h.append("Content-Type: " + ctype)
        b = body.encode()
        h.append("Content-Length: %d" % len(b))
        data = ("\r\n".join(h) + "\r\n\r\n").encode() + b
        # Via with rport: the source address (RFC 3581); we take the source always.
        self.sock.sendto(data, src)
        self.servers[(branch_of(m.get("via")), m.method)] = (data, src, time.monotonic())

    # ---- commands
    def cmd(self, line):
        a = line.split()
        if not a or a[0].startswith("#"):
            return True
        c, a = a[0], [uq(x) for x in a[1:]]
        try:
            if c == "watch":
                prefix, n, to, dest = a[0], int(a[1]), a[2], a[3]
                host, port = dest.rsplit(":", 1)
                for i in range(1, n + 1):
                    d = Dialog("%s%d" % (prefix, i), "watch")
                    d.local_uri = "sip:%s%d@%s" % (prefix, i, self.domain)
                    d.remote_uri = d.target = "sip:" + to
                    d.dest = (host, int(port))
                    self.add(d)
                    self.request(d, "SUBSCRIBE", ["Event: presence",
                                 "Accept: application/pidf+xml", "Supported: ms-benotify",
                                 "Expires: 3600"], dest=d.dest)
            elif c == "refresh":
                exp = a[1] if len(a) > 1 else "3600"
                for d in self.select(a[0], "watch"):
                    self.request(d, "SUBSCRIBE", ["Event: presence",
                                 "Accept: application/pidf+xml", "Expires: " + exp])
            elif c in ("pres", "pres-all"):
                users = [a[0]] if c == "pres" else sorted(
                    {d.presentity for d in self.dialogs.values()
                     if d.kind == "notifier" and d.presentity and d.presentity.startswith(a[0])})
                for u in users:
                    self.pres[u] = (a[1], a[2])
                    for d in list(self.dialogs.values()):
                        if d.kind == "notifier" and d.alive and d.presentity == u:
                            self.notify(d)
            elif c == "invite":
                name, frm, to, dest, text = a[0], a[1], a[2], a[3], " ".join(a[4:])
                host, port = dest.rsplit(":", 1)
                d = Dialog(name, "im")
                d.local_uri = "sip:%s@%s" % (frm, self.domain)
                d.remote_uri = d.target = "sip:" + to
                d.dest = (host, int(port))
                d.pending_msg = text
                self.add(d)
                self.request(d, "INVITE", ["Supported: ms-dialog-route-set-update",
                             "Ms-Conversation-ID: " + base64.b64encode(os.urandom(15)).decode()],
                             IM_SDP.format(ip=self.addr), "application/sdp;call-type=im",
                             dest=d.dest)
            elif c == "message":
                d = self.dialogs[a[0]]
                self.request(d, "MESSAGE", [], " ".join(a[1:]), "text/plain;charset=UTF-8")
            elif c == "bye":
                d = self.dialogs[a[0]]
                self.request(d, "BYE")
                d.alive = False
            elif c == "mark":
                self.marks[a[0]] = self.nseq
                print("MARK %s %d" % (a[0], self.nseq), flush=True)
            elif c == "count":
                self.count(a)
            elif c == "lastis":
                self.lastis(a)
            elif c == "dialogs":
                n = sum(1 for d in self.dialogs.values() if d.alive and d.name.startswith(a[0]))
                print("DIALOGS %d" % n, flush=True)
            elif c == "quit":
                return False
            else:
                print("ERR unknown command %s" % c, flush=True)
        except (IndexError, KeyError, ValueError) as e:
            print("ERR %s: %r" % (line.strip(), e), flush=True)
        return True

    def count(self, a):
        since, filters = 0, []
        kind = a[0]
        rest = a[1:]
        if len(rest) >= 2 and rest[-2] == "since":
            since = self.marks.get(rest[-1], 0)
            rest = rest[:-2]
        for f in rest:
            m = re.match(r"([a-z]+)([=~])(.*)", f)
            if m:
                filters.append(m.groups())
        n, dlgs, first, last = 0, set(), 0, 0
        for seq, k, f, ms in self.events:
            if seq <= since or k != kind:
                continue
            ok = True
            for key, op, val in filters:
                v = str(f.get(key, ""))
                if (op == "=" and v != val) or (op == "~" and val not in v):
                    ok = False
                    break
            if ok:
                n += 1
                dlgs.add(f.get("dlg"))
                first, last = first or ms, ms
        print("COUNT %d dialogs=%d first=%d last=%d" % (n, len(dlgs), first, last), flush=True)

    def lastis(self, a):
        kind, (key, val), prefix = a[0], a[1].split("=", 1), a[2]
        last = {}
        for _, k, f, _ in self.events:
            if k == kind and str(f.get("dlg", "")).startswith(prefix):
                last[f["dlg"]] = str(f.get(key, ""))
        n = sum(1 for v in last.values() if v == val)
        print("LASTIS %d of %d" % (n, len(last)), flush=True)

    def select(self, pat, kind):
        if pat.endswith("*"):
            return [d for d in self.dialogs.values()
                    if d.kind == kind and d.alive and d.name.startswith(pat[:-1])]
        return [self.dialogs[pat]]

    def add(self, d):
        self.dialogs[d.name] = d
        self.by_key[(d.call_id, d.ltag)] = d

    def notify(self, d, state=None):
        basic, note = self.pres.get(d.presentity, ("open", "initial"))
        state = state or "active;expires=%d" % d.expires
        self.request(d, "NOTIFY", ["Event: presence", "Subscription-State: " + state],
                     PIDF.format(user=d.presentity, dom=self.domain, basic=basic, note=note),
                     "application/pidf+xml")

    # ---- receiving
    def receive(self, data, src):
        try:
            m = Msg(data)
        except (ValueError, IndexError):
            print("ERR unparsable message from %s:%d" % src, flush=True)
            return
        if m.is_req:
            self.on_request(m, src)
        else:
            self.on_response(m, src)

    def srcs(self, src):
        return "%s:%d" % src

    def on_response(self, m, src):
        br = branch_of(m.get("via"))
        t = self.clients.get(br)
        if not t or m.code < 200:
            return
        del self.clients[br]
        d, method = t[0], t[1]
        contact = uri_of(m.get("contact")) if m.get("contact") else None
        self.emit("RESP", dlg=d.name, method=method, code=m.code, src=self.srcs(src),
                  cseq=m.cseq, expires=m.get("expires"), contact=contact)
        if 200 <= m.code < 300 and method in ("SUBSCRIBE", "INVITE"):
            if d.rtag is None:
                d.rtag = tag_of(m.get("to"))
                # UAC: the route set is the Record-Route of the 2xx, reversed
                # (RFC 3261 section 12.1.2).
                d.route = list(reversed(m.all("record-route")))
            if contact:
                d.target = contact  # 2xx to a target refresh request (12.2.1.2)
            if method == "INVITE":
                self.request(d, "ACK", cseq=d.lseq)
                if d.pending_msg is not None:
                    self.request(d, "MESSAGE", [], d.pending_msg, "text/plain;charset=UTF-8")
                    d.pending_msg = None
        elif m.code >= 300 and method in ("SUBSCRIBE", "INVITE") and d.rtag is None:
            d.alive = False
            if method == "INVITE":
                self.request(d, "ACK", cseq=d.lseq, dest=t[3])
        elif m.code == 481:
            d.alive = False

    def on_request(self, m, src):
        key = (branch_of(m.get("via")), m.method)
        if m.method == "ACK":
            return
        if key in self.servers:
            self.sock.sendto(self.servers[key][0], src)
            self.emit("RETRANS", method=m.method, src=self.srcs(src))
            return
        totag = tag_of(m.get("to"))
        contact = uri_of(m.get("contact")) if m.get("contact") else None
        if m.method == "OPTIONS":
            self.respond(m, src, 200, "OK")
            return
        if m.method == "SUBSCRIBE" and not totag:
            self.new_notifier(m, src, contact)
            return
        if m.method == "MESSAGE" and not totag:
            self.respond(m, src, 200, "OK", totag=rand(8))
            self.emit("MESSAGE", dlg=None, src=self.srcs(src), body=m.body)
            return
        if m.method == "INVITE" and not totag:
            self.respond(m, src, 486, "Busy Here", totag=rand(8))
            self.emit("INVITE", src=self.srcs(src))
            return
        d = self.by_key.get((m.get("call-id"), totag))
        if d is None or not d.alive and m.method != "NOTIFY":
            self.respond(m, src, 481, "Call/Transaction Does Not Exist")
            self.emit("NO-DIALOG", method=m.method, src=self.srcs(src), cseq=m.cseq)
            return
        # RFC 3261 section 12.2.2: a CSeq below the remote one is out of order.
        if d.rseq is not None and m.cseq < d.rseq:
            self.respond(m, src, 500, "Server Internal Error", ["Retry-After: 1"])
            self.emit("OUT-OF-ORDER", dlg=d.name, method=m.method, cseq=m.cseq, last=d.rseq)
            return
        d.rseq = m.cseq
        if m.method in ("NOTIFY", "SUBSCRIBE") and contact:
            d.target = contact  # target refresh (RFC 6665 sections 3.1 and 3.2)
        if m.method == "NOTIFY" and d.kind == "watch":
            if d.rtag is None:  # the NOTIFY came before the 2xx: it makes the dialog
                d.rtag = tag_of(m.get("from"))
            ss = (m.get("subscription-state") or "").split(";")[0].strip()
            basic = re.search(r"<basic>([^<]*)</basic>", m.body)
            note = re.search(r"<note[^>]*>([^<]*)</note>", m.body)
            self.respond(m, src, 200, "OK")
            self.emit("NOTIFY", dlg=d.name, src=self.srcs(src), contact=contact, cseq=m.cseq,
                      state=ss, basic=basic.group(1) if basic else "",
                      note=note.group(1) if note else "")
            if ss == "terminated":
                d.alive = False
        elif m.method == "SUBSCRIBE" and d.kind == "notifier":
            exp = int(m.get("expires") or 3600)
            d.expires = min(exp, 3600)
            self.respond(m, src, 200, "OK", ["Expires: %d" % d.expires,
                         "Contact: " + self.contact(d.presentity)])
            self.emit("SUBSCRIBE", dlg=d.name, src=self.srcs(src), contact=contact, cseq=m.cseq,
                      expires=d.expires, new=0, presentity=d.presentity)
            if d.expires == 0:
                self.notify(d, "terminated;reason=timeout")
                d.alive = False
            else:
                self.notify(d)
        elif m.method in ("BYE", "MESSAGE", "INFO") and d.kind == "im":
            self.respond(m, src, 200, "OK")
            self.emit(m.method, dlg=d.name, src=self.srcs(src), body=m.body or None)
            if m.method == "BYE":
                d.alive = False
        else:
            self.respond(m, src, 405, "Method Not Allowed")
            self.emit("REFUSED", dlg=d.name, method=m.method, src=self.srcs(src))

    def new_notifier(self, m, src, contact):
        ev = (m.get("event") or "").split(";")[0].strip()
        if ev != "presence" or not contact:
            self.respond(m, src, 489, "Bad Event", totag=rand(8))
            return
        self.n_notifier += 1
        d = Dialog("n%d" % self.n_notifier, "notifier")
        d.call_id = m.get("call-id")
        d.rtag = tag_of(m.get("from"))
        d.local_uri = uri_of(m.get("to"))
        d.remote_uri = uri_of(m.get("from"))
        d.presentity = d.local_uri.split(":", 1)[1].split("@")[0]
        d.target = contact
        d.dest = src
        # UAS: the route set is the Record-Route of the request, in order (12.1.1).
        d.route = m.all("record-route")
        d.rseq = m.cseq
        d.expires = min(int(m.get("expires") or 3600), 3600)
        self.add(d)
        self.respond(m, src, 200, "OK", ["Expires: %d" % d.expires,
                     "Contact: " + self.contact(d.presentity)], totag=d.ltag)
        self.emit("SUBSCRIBE", dlg=d.name, src=self.srcs(src), contact=contact, cseq=m.cseq,
                  expires=d.expires, new=1, presentity=d.presentity)
        if d.expires == 0:
            self.notify(d, "terminated;reason=timeout")
            d.alive = False
        else:
            self.notify(d)

    # ---- timers
    def tick(self):
        now = time.monotonic()
        for br, t in list(self.clients.items()):
            if now >= t[6]:
                del self.clients[br]
                self.emit("TIMEOUT", dlg=t[0].name, method=t[1])
            elif now >= t[4]:
                self.sock.sendto(t[2], t[3])
                t[5] = min(t[5] * 2, T2)
                t[4] = now + t[5]
        for k, v in list(self.servers.items()):
            if now - v[2] > TIMEOUT:
                del self.servers[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="sip.test")
    o = ap.parse_args()
    ua = UA(o.addr, o.port, o.domain)
    sel = selectors.DefaultSelector()
    sel.register(ua.sock, selectors.EVENT_READ, "sip")
    sel.register(sys.stdin, selectors.EVENT_READ, "cmd")
    print("READY %s:%d" % (o.addr, o.port), flush=True)
    buf = b""
    running = True
    while running:
        for key, _ in sel.select(0.05):
            if key.data == "sip":
                while True:
                    try:
                        data, src = ua.sock.recvfrom(65535)
                    except BlockingIOError:
                        break
                    ua.receive(data, src)
            else:
                chunk = os.read(sys.stdin.fileno(), 65536)
                if not chunk:
                    running = False
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if not ua.cmd(line.decode("utf-8", "replace")):
                        running = False
                        break
        ua.tick()


if __name__ == "__main__":
    main()
