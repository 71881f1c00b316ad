#!/usr/bin/env python3
"""One command to baresip's ctrl_tcp module; print its answer.

    baresip_ctl.py PORT COMMAND [PARAMS]

ctrl_tcp speaks netstrings ("LEN:DATA,") carrying JSON: a command is
{"command": ..., "params": ..., "token": ...}; the answer repeats the token with
"response": true, "ok" and "data". Events that arrive meanwhile are skipped.
Prints data; exit 0 if ok is true, 1 if not, 2 on a connection or timeout error.
"""
import json
import socket
import sys


def read_netstring(sock, buf):
    while True:
        colon = buf.find(b":")
        if colon > 0:
            n = int(buf[:colon])
            end = colon + 1 + n
            if len(buf) > end:
                if buf[end:end + 1] != b",":
                    raise ValueError("netstring without its comma")
                return buf[colon + 1:end], buf[end + 1:]
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("baresip closed the control connection")
        buf += chunk


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    port, command = int(sys.argv[1]), sys.argv[2]
    req = {"command": command, "token": "it"}
    if len(sys.argv) > 3:
        req["params"] = sys.argv[3]
    data = json.dumps(req, ensure_ascii=False).encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"%d:%s," % (len(data), data))
            buf = b""
            while True:
                msg, buf = read_netstring(sock, buf)
                ans = json.loads(msg)
                if ans.get("response") and ans.get("token") == "it":
                    break
    except (OSError, ValueError) as e:
        print("baresip_ctl: %s" % e, file=sys.stderr)
        return 2
    sys.stdout.write(ans.get("data", ""))
    return 0 if ans.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
