#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-only
# A raw xmigd client for tests/daemon: client.py SOCKET [OPTION|LINE]...
# Prints every line the daemon sends, the greeting first.  Each LINE is
# sent with a newline, then lines are read up to its response (a line with
# "ok").  Options, in order with the lines:
#   --events N    read N more lines (events)
#   --until RE    read lines until one matches RE (regex)
#   --send TEXT   send TEXT as is (no newline), read nothing
#   --sleep S     sleep S seconds
#   --close       close the connection now (the rest is ignored)
#   --eof         shut down the sending side, print what remains
# Exit status 0; 3 if the daemon closed the connection early.
import json, re, socket, sys, time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
f = s.makefile("rb")

def line():
    try:
        l = f.readline()
    except ConnectionResetError:  # closed with our data unread: still closed
        l = b""
    if not l:
        print("<closed>")
        sys.stdout.flush()
        sys.exit(3)
    out = l.decode("utf-8", "replace").rstrip("\n")
    print(out)
    sys.stdout.flush()
    return out

if '"ok":false' in line():  # a refusal instead of the greeting
    line()  # -> <closed>
args = sys.argv[2:]
i = 0
while i < len(args):
    a = args[i]
    if a == "--events":
        for _ in range(int(args[i + 1])):
            line()
        i += 2
    elif a == "--until":
        rx = re.compile(args[i + 1])
        while not rx.search(line()):
            pass
        i += 2
    elif a == "--send":
        s.sendall(args[i + 1].encode("utf-8", "surrogateescape"))
        i += 2
    elif a == "--sleep":
        time.sleep(float(args[i + 1]))
        i += 2
    elif a == "--close":
        s.close()
        sys.exit(0)
    elif a == "--eof":
        s.shutdown(socket.SHUT_WR)
        while True:
            l = f.readline()
            if not l:
                break
            print(l.decode("utf-8", "replace").rstrip("\n"))
        sys.exit(0)
    else:
        s.sendall(a.encode("utf-8", "surrogateescape") + b"\n")
        while True:
            out = line()
            try:
                if "ok" in json.loads(out):
                    break
            except ValueError:
                break
        i += 1
