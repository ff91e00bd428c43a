#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-only
# A stand-in for `xl migrate-receive` on stdin/stdout, for exec:
# destinations in tests/daemon and tests/cli (with the Xen double's tiny
# streams).
#   receiver.py ok [READY_DELAY_S [QUIET_S [REPORT_DELAY_S]]]  banner; read
#                 until the sender is quiet for QUIET_S (0.5); wait
#                 READY_DELAY_S; ready; read up to the go-ahead; wait
#                 REPORT_DELAY_S; report 0
#   receiver.py stall               banner, then never read again
#   receiver.py stream MARK         banner; create MARK; read until EOF
#   receiver.py silent              banner; read until EOF, never ready
#   receiver.py committed           as ok, but with the go-ahead read, send
#                 SIGINT, SIGTERM and SIGHUP to the parent (xmig, when run
#                 as `exec:exec python3 receiver.py committed`); a second
#                 later report 0
import os, select, signal, sys, time

BANNER = b"xl migration receiver ready, send binary domain data.\n"
READY = b"domain received, ready to unpause\0"
GO = b"domain is yours, you are cleared to unpause\0"
REPORT = b"my copy unpause results are as follows\0"


def arg(i, default):
    return float(sys.argv[i]) if len(sys.argv) > i else default


mode = sys.argv[1]
os.write(1, BANNER)
if mode == "stall":
    time.sleep(600)
    sys.exit(0)
if mode == "stream":
    open(sys.argv[2], "w").close()
    while os.read(0, 65536):
        pass
    sys.exit(0)
if mode == "silent":
    while os.read(0, 65536):
        pass
    sys.exit(0)
while select.select([0], [], [], arg(3, 0.5))[0]:
    if not os.read(0, 65536):
        sys.exit(1)
time.sleep(arg(2, 0))
os.write(1, READY)
# On a loaded machine the sender can pause for longer than QUIET_S in the
# middle of its stream, so 'ready' may go early (xmig reads it once the
# stream is out, as from a slow xl).  The go-ahead then follows the rest of
# the stream: read until the data ends with it.
buf = b""
while not buf.endswith(GO):
    data = os.read(0, 65536)
    if not data:
        sys.exit(1)
    buf = (buf + data)[-len(GO):]
if mode == "committed":
    # xmig's job thread has committed by now (it did before we could read).
    time.sleep(0.2)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(os.getppid(), sig)
        time.sleep(0.1)
    time.sleep(1)
time.sleep(arg(4, 0))
os.write(1, REPORT + b"\0")
sys.exit(0)
