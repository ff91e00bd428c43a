#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-only
# hold.py SOCKET N: opens N connections to xmigd one after the other,
# prints the first line each gets (the greeting or a refusal), then
# "holding" and keeps them open until killed.
import socket, sys, time

conns = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sys.argv[1])
    print(s.makefile("rb").readline().decode("utf-8", "replace").rstrip("\n"))
    conns.append(s)
print("holding")
sys.stdout.flush()
time.sleep(600)
