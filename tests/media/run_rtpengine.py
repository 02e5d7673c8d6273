#!/usr/bin/python3
"""Start a private, userspace-only Debian rtpengine (the NG reference) for tests.

    with rtpengine() as rt:          # rt.ng is a connected mediatest.NG
        rt.ng.ping()

The daemon runs in the foreground as our child, with --config-file=none (so it never reads
/etc/rtpengine/rtpengine.conf), --table=-1 (no kernel forwarding), its pidfile and log in a
temp dir, NG on 127.0.0.1:<free port>, media ports in a random block below the kernel's
ephemeral range.  It is stopped (SIGTERM, then SIGKILL) when the block exits.

Note: do NOT pass --no-fallback: in rtpengine it means "only start when the kernel module
is available", the opposite of what a userspace-only test wants.

Run directly to start one and keep it until Ctrl-C / a time limit:
    /usr/bin/python3 tests/media/run_rtpengine.py [--seconds 600] [--ng-port 2223]
"""

import argparse
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mediatest import NG, LOCALHOST  # noqa: E402

RTPENGINE = os.environ.get("RTPENGINE_BIN", "/usr/bin/rtpengine")


def free_udp_port(host=LOCALHOST):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pick_port_range(size=200):
    """A random even-aligned block of ``size`` ports in 20000..ephemeral_low-1."""
    hi = min(_ephemeral_low(), 32768) - size
    lo = 20000
    start = random.randrange(lo, max(lo + 1, hi)) & ~1
    return start, start + size - 1


class RtpengineProc:
    def __init__(self, proc, ng_addr, port_min, port_max, workdir, log_path, argv):
        self.proc = proc
        self.ng_addr = ng_addr
        self.port_min = port_min
        self.port_max = port_max
        self.workdir = workdir
        self.log_path = log_path
        self.argv = argv
        self.ng = NG(ng_addr)

    def log(self, tail=None):
        try:
            with open(self.log_path, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-tail:] if tail else lines)


def rtpengine_available():
    return shutil.which(RTPENGINE) is not None or os.path.exists(RTPENGINE)


def build_argv(ng_port, port_min, port_max, workdir, log_level=6, extra_args=()):
    return [
        RTPENGINE,
        "--config-file=none",
        "--foreground",
        "--log-stderr",
        "--log-level=%d" % log_level,
        "--table=-1",
        "--interface=%s" % LOCALHOST,
        "--listen-ng=%s:%d" % (LOCALHOST, ng_port),
        "--port-min=%d" % port_min,
        "--port-max=%d" % port_max,
        "--pidfile=%s" % os.path.join(workdir, "rtpengine.pid"),
        # one worker: the reference tests assert packet order, which two
        # rtpengine threads do not keep under load
        "--num-threads=1",
        "--delete-delay=0",
        *extra_args,
    ]


@contextlib.contextmanager
def rtpengine(ng_port=None, port_min=None, port_max=None, log_level=6, extra_args=(),
              ready_seconds=10.0, keep_log=False):
    if not rtpengine_available():
        raise FileNotFoundError("rtpengine binary not found (%s)" % RTPENGINE)
    workdir = tempfile.mkdtemp(prefix="rtpengine-test-")
    ng_port = ng_port or free_udp_port()
    if port_min is None or port_max is None:
        port_min, port_max = pick_port_range()
    argv = build_argv(ng_port, port_min, port_max, workdir, log_level, extra_args)
    log_path = os.path.join(workdir, "rtpengine.log")
    logf = open(log_path, "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            cwd=workdir, start_new_session=True)
    rt = RtpengineProc(proc, (LOCALHOST, ng_port), port_min, port_max, workdir, log_path, argv)
    try:
        deadline = time.monotonic() + ready_seconds
        ready = False
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            if rt.ng.wait_ready(seconds=0.5):
                ready = True
                break
        if not ready:
            raise RuntimeError("rtpengine did not answer ping (rc=%s): %s\n%s"
                               % (proc.poll(), " ".join(argv), rt.log(tail=30)))
        yield rt
    finally:
        rt.ng.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        logf.close()
        if keep_log or os.environ.get("MEDIATEST_KEEP_LOG"):
            sys.stderr.write("rtpengine log kept in %s\n" % log_path)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ng-port", type=int, default=0)
    ap.add_argument("--port-min", type=int)
    ap.add_argument("--port-max", type=int)
    ap.add_argument("--seconds", type=float, default=600.0, help="stop after this long")
    ap.add_argument("--log-level", type=int, default=6)
    a = ap.parse_args()
    with rtpengine(a.ng_port or None, a.port_min, a.port_max, a.log_level, keep_log=True) as rt:
        print("rtpengine pid %d, NG %s:%d, media ports %d-%d, log %s"
              % (rt.proc.pid, rt.ng_addr[0], rt.ng_addr[1], rt.port_min, rt.port_max, rt.log_path))
        print(" ".join(rt.argv), flush=True)
        deadline = time.monotonic() + a.seconds
        try:
            while time.monotonic() < deadline and rt.proc.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
