#!/usr/bin/python3
"""Randomised WebSocket input for /signal.ashx: a bounded, seeded fuzzer.

Each iteration opens 1-3 connections to 127.0.0.1:PORT, joins them to a
room, then sends 1-25 random actions: JSON frames of the signaling protocol
with random members, types and values (some truncated, deeply nested,
doubled, or not JSON at all); signals to peer ids seen so far; frames with
random opcodes, FIN, RSV bits, masking and length encodings; fragmented
messages with control frames between the fragments; close frames with odd
codes and reasons; lengths that lie; oversized messages; raw garbage. Then
it reads what came back and closes (cleanly or by reset).

--mode json keeps most connections alive (mostly well-formed frames with
random JSON), so the deeper protocol states are reached; --mode all mixes
in framing violations, which close the connection.

Exit status 0 when the run ends; a refused connection is counted and
retried later, and more than 10 % of them is exit status 1 (the server
stopped accepting). The server's health is judged by the caller (worker
crashes, sanitizer reports, a normal join afterwards).

Usage: wsfuzz.py --port N [--iterations 500] [--seed 1] [--mode all|json]
"""

import argparse
import base64
import json
import random
import socket
import struct
import sys
import time

HOST = "127.0.0.1"

TYPES = ["join", "signal", "leave", "ping", "ring", "dial", "hangup", "x", "", None]
KEYS = ["type", "room", "name", "to", "data", "token", "resume", "dial", "office",
        "user", "peerId", "seq"]


class Fuzzer:
    def __init__(self, port, seed, mode, path):
        self.port = port
        self.r = random.Random(seed)
        self.mode = mode
        self.path = path
        self.peers = []

    def bytes(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def connect(self):
        s = socket.create_connection((HOST, self.port), timeout=2)
        key = base64.b64encode(self.bytes(16)).decode()
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: %s\r\n\r\n" % (self.path, key)).encode())
        return s

    def frame(self, payload, opcode=1, fin=True, mask=True, rsv=0, lenmode=None, length=None):
        """RFC 6455 §5.2 frame; length: the length field when it should lie."""
        n = len(payload) if length is None else length
        if lenmode is None:
            lenmode = 0 if n < 126 else (1 if n < 65536 else 2)
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        m = 0x80 if mask else 0
        if lenmode == 0:
            head = bytes([b0, m | (n & 0x7F)])
        elif lenmode == 1:
            head = bytes([b0, m | 126]) + struct.pack("!H", n & 0xFFFF)
        else:
            head = bytes([b0, m | 127]) + struct.pack("!Q", n & 0xFFFFFFFFFFFFFFFF)
        if mask:
            k = self.bytes(4)
            payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
            head += k
        return head + payload

    def string(self):
        r = self.r
        c = r.random()
        if c < 0.3:
            return "".join(r.choice("abcxyz-_0123") for _ in range(r.randint(0, 20)))
        if c < 0.5:
            return "x" * r.choice([0, 1, 63, 64, 65, 127, 128, 255, 256, 1024, 5000])
        if c < 0.6:
            return "\u00e9\u4e2d\U0001f600"
        if c < 0.7:
            return "random"
        return "p_%016x" % r.getrandbits(64)

    def value(self, depth=0):
        r = self.r
        c = r.random()
        if depth > 3 or c < 0.35:
            return self.string()
        if c < 0.5:
            return r.choice([0, -1, 1e308, 2 ** 63, True, False, None, 3.5])
        if c < 0.7:
            return [self.value(depth + 1) for _ in range(r.randint(0, 4))]
        return {self.string(): self.value(depth + 1) for _ in range(r.randint(0, 4))}

    def json_message(self):
        r = self.r
        o = {}
        t = r.choice(TYPES)
        if t is not None:
            o["type"] = t
        for k in r.sample(KEYS, r.randint(0, 6)):
            o[k] = self.value()
        text = json.dumps(o)
        c = r.random()
        if c < 0.1:
            text = text[:r.randint(0, len(text))]
        elif c < 0.15:
            text = "[" * r.randint(1, 5000)
        elif c < 0.2:
            text = text.replace('"', "", 1)
        elif c < 0.23:
            return self.bytes(r.randint(0, 300))         # not UTF-8 either
        elif c < 0.3:
            text = text + text
        return text.encode()

    def action(self):
        r = self.r
        c = r.random()
        if self.mode == "json" and c < 0.97:
            c = c * 0.55 / 0.97 if c < 0.8 else 0.91
        if c < 0.45:
            return self.frame(self.json_message())
        if c < 0.55 and self.peers:
            return self.frame(json.dumps({"type": "signal", "to": r.choice(self.peers),
                                          "data": self.value()}).encode())
        if c < 0.65:
            return self.frame(self.bytes(r.randint(0, 200)), opcode=r.randint(0, 15),
                              fin=r.random() < 0.7, mask=r.random() < 0.9,
                              rsv=r.choice([0, 0, 0, 1, 4, 7]), lenmode=r.choice([None, 0, 1, 2]))
        if c < 0.72:
            parts = [self.json_message() for _ in range(r.randint(1, 4))]
            out = self.frame(parts[0], opcode=1, fin=False)
            for i, p in enumerate(parts[1:]):
                if r.random() < 0.3:
                    out += self.frame(b"hi", opcode=9)
                out += self.frame(p, opcode=0, fin=(i == len(parts) - 2))
            return out
        if c < 0.77:
            code = r.choice([1000, 1001, 1002, 1005, 1006, 999, 4000, 5000, 65535])
            return self.frame(struct.pack("!H", code) + self.bytes(r.randint(0, 130)), opcode=8)
        if c < 0.8:
            return self.frame(self.bytes(r.randint(0, 200)), opcode=r.choice([9, 10]))
        if c < 0.84:
            return self.frame(b"abc", length=r.choice([10, 70000, 2 ** 40, 2 ** 63 + 5]),
                              lenmode=r.choice([0, 1, 2]))
        if c < 0.88:
            return self.bytes(r.randint(1, 100))
        if c < 0.9:
            return self.frame(b"x" * r.choice([65536, 70000, 300000]))
        return self.frame(json.dumps({"type": "join", "room": r.choice(["fz", "fz2", "random"]),
                                      "name": self.string()}).encode())

    def drain(self, s):
        s.setblocking(False)
        got = b""
        try:
            while len(got) < 1 << 20:
                d = s.recv(65536)
                if not d:
                    break
                got += d
        except OSError:
            pass
        return got

    def iteration(self, i):
        r = self.r
        conns = []
        try:
            for _ in range(r.randint(1, 3)):
                conns.append(self.connect())
            for s in conns:
                s.sendall(self.frame(json.dumps({"type": "join", "room": "fz",
                                                 "name": "f%d" % i}).encode()))
            time.sleep(0.005)
            for s in conns:
                for m in self.drain(s).split(b'"peerId":"')[1:]:
                    pid = m[:18].decode(errors="replace")
                    if pid.startswith("p_") and pid not in self.peers:
                        self.peers.append(pid)
            del self.peers[:-50]
            for _ in range(r.randint(1, 25)):
                s = r.choice(conns)
                try:
                    s.setblocking(True)
                    s.settimeout(2)
                    s.sendall(self.action())
                except OSError:
                    pass                                  # closed by the server
                if r.random() < 0.2:
                    self.drain(s)
            for s in conns:
                self.drain(s)
                if r.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return True
        except ConnectionRefusedError:
            return False
        finally:
            for s in conns:
                s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mode", choices=["all", "json"], default="all")
    ap.add_argument("--path", default="/signal.ashx")
    a = ap.parse_args()
    if not 0 < a.iterations <= 100000:
        ap.error("--iterations: 1-100000")
    f = Fuzzer(a.port, a.seed, a.mode, a.path)
    t0 = time.monotonic()
    refused = 0
    for i in range(a.iterations):
        if not f.iteration(i):
            refused += 1
            time.sleep(0.05)
    print("%d iterations (seed %d, %s) in %.1f s, %d refused"
          % (a.iterations, a.seed, a.mode, time.monotonic() - t0, refused))
    return 1 if refused * 10 > a.iterations else 0


if __name__ == "__main__":
    sys.exit(main())
