#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-only
# A stand-in for `xl migrate-receive` on stdin/stdout, for exec:
# destinations in tests/daemon (with the Xen double's tiny streams).
#   receiver.py ok [READY_DELAY_S [QUIET_S [REPORT_DELAY_S]]]  banner; read
#                 until the sender is quiet for QUIET_S (0.5); wait
#                 READY_DELAY_S; ready; read the go-ahead; wait
#                 REPORT_DELAY_S; report 0
#   receiver.py stall               banner, then never read again
#   receiver.py silent              banner; read until EOF, never ready
import os, select, sys, time

BANNER = b"xl migration receiver ready, send binary domain data.\n"
READY = b"domain received, ready to unpause\0"
GO = b"domain is yours, you are cleared to unpause\0"
REPORT = b"my copy unpause results are as follows\0"

mode = sys.argv[1]
os.write(1, BANNER)
if mode == "stall":
    time.sleep(600)
    sys.exit(0)
if mode == "silent":
    while os.read(0, 65536):
        pass
    sys.exit(0)
got = 0
quiet = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
while True:
    r, _, _ = select.select([0], [], [], quiet)
    if not r:
        break
    data = os.read(0, 65536)
    if not data:
        sys.exit(1)
    got += len(data)
if len(sys.argv) > 2:
    time.sleep(float(sys.argv[2]))
os.write(1, READY)
buf = b""
while len(buf) < len(GO):
    data = os.read(0, len(GO) - len(buf))
    if not data:
        sys.exit(1)
    buf += data
if buf != GO:
    sys.exit(1)
if len(sys.argv) > 4:
    time.sleep(float(sys.argv[4]))
os.write(1, REPORT + b"\0")
sys.exit(0)
