#!/usr/bin/env python3
"""A stand-in for systemd's notification socket: bind an AF_UNIX datagram socket
at PATH (argv[1]) and append each message received to LOG (argv[2]), one line per
datagram, its assignments joined by '|'. Runs until killed."""
import os
import socket
import sys

path, log = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
with open(log, "a", buffering=1) as out:
    while True:
        data = s.recv(4096)
        out.write(data.decode("utf-8", "replace").strip().replace("\n", "|") + "\n")
