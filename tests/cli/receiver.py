#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-only
# A stand-in for `xl migrate-receive` for test-direct-signals.sh, run as
# `exec:exec python3 receiver.py ...` so that its parent is xmig itself.
#   receiver.py stream MARK   banner; create MARK; read until EOF
#   receiver.py committed     banner; read until the sender is quiet;
#                             ready; read the go-ahead; send SIGINT, SIGTERM
#                             and SIGHUP to xmig; a second later report 0
import os, select, signal, sys, time

BANNER = b"xl migration receiver ready, send binary domain data.\n"
READY = b"domain received, ready to unpause\0"
GO = b"domain is yours, you are cleared to unpause\0"
REPORT = b"my copy unpause results are as follows\0"

os.write(1, BANNER)
if sys.argv[1] == "stream":
    open(sys.argv[2], "w").close()
    while os.read(0, 65536):
        pass
    sys.exit(0)
while select.select([0], [], [], 0.5)[0]:
    if not os.read(0, 65536):
        sys.exit(1)
os.write(1, READY)
buf = b""
while len(buf) < len(GO):
    data = os.read(0, len(GO) - len(buf))
    if not data:
        sys.exit(1)
    buf += data
if buf != GO:
    sys.exit(1)
# xmig's job thread has committed by now (it did before we could read).
time.sleep(0.2)
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    os.kill(os.getppid(), sig)
    time.sleep(0.1)
time.sleep(1)
os.write(1, REPORT + b"\0")
sys.exit(0)
