#!/usr/bin/python3
"""Randomised SIP input for ngx_codeb_sipws: a bounded, seeded fuzzer.

Each iteration builds a SIP message from well-formed parts of requests and
responses of the kinds the module handles (OPTIONS, REGISTER with and
without credentials, INVITE with an SDP offer, ACK, CANCEL, BYE, responses
with our kind of Via branches and tags) and then damages it a random number
of times: headers dropped, doubled, reordered, truncated or filled with
random bytes; start lines and versions broken; Content-Length made to lie
(short, long, negative, huge, not a number); folded lines, bare LF, NUL and
8-bit bytes; very long headers and values; parameters without values or
with quotes left open; random Digest parameters. It is sent over the
transport of the iteration: a WebSocket (text or binary frames, sometimes
several messages in one frame or one message split over continuation
frames), UDP, or TCP (sometimes several messages in one segment, split
across segments, or cut off). What comes back is read and ignored.

Exit status 0 when the run ends; the server's health is judged by the
caller (worker crashes, sanitizer reports, a normal request afterwards).

Usage: sipfuzz.py --ws-port N --stream-port N [--iterations 500] [--seed 1]
"""

import argparse
import base64
import os
import random
import socket
import struct
import sys
import time

HOST = "127.0.0.1"

METHODS = ["OPTIONS", "REGISTER", "INVITE", "ACK", "CANCEL", "BYE", "INFO",
           "UPDATE", "REFER", "NOTIFY", "PRACK", "MESSAGE", "FOO", ""]

SDP = ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
       "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\n"
       "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
       "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
       "a=setup:actpass\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n")


class Fuzzer:
    def __init__(self, ws_port, stream_port, seed):
        self.ws_port = ws_port
        self.stream_port = stream_port
        self.r = random.Random(seed)

    def rbytes(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def token(self):
        return "".join(self.r.choice("abcdef0123456789") for _ in range(self.r.randint(1, 12)))

    def pick(self, *xs):
        return self.r.choice(xs)

    def our_id(self):
        # identifiers of the form the module makes: "cb<hex worker>-<hex>"
        hexid = self.pick("", "686f7374313a31323334", "7a7a", "zz", "0", "6" * 300)
        return "cb%s-%s" % (hexid, self.token())

    def message(self):
        method = self.r.choice(METHODS)
        user = self.pick("alice", "bob", "", "%00", "a" * 300, "+4930123")
        host = self.pick("localhost", "nowhere.test", "127.0.0.1", "", "[::1]")
        branch = self.pick("z9hG4bK" + self.token(), "z9hG4bK" + self.our_id(), "x")
        tag = self.pick("", ";tag=" + self.token(), ";tag=" + self.our_id())
        heads = [
            "Via: SIP/2.0/%s fz.invalid;branch=%s%s" % (
                self.pick("WS", "UDP", "TCP", "WSS", "XX"), branch,
                self.pick("", ";rport", ";received=1.2.3.4", ";rport=")),
            "From: <sip:%s@%s>;tag=%s" % (user, host, self.token()),
            "To: <sip:%s@%s>%s" % (self.pick("bob", "alice", user), host, tag),
            "Call-ID: %s" % self.pick(self.token(), self.our_id(), ""),
            "CSeq: %s %s" % (self.pick("1", "2", "0", "4294967295", "-1", "x"),
                             self.pick(method, "INVITE", "")),
            "Max-Forwards: %s" % self.pick("70", "0", "-1", "x"),
            "Contact: %s" % self.pick(
                "<sip:%s@fz.invalid;transport=ws>" % user, "*",
                "<sip:%s@fz.invalid>;expires=%s" % (user, self.pick("0", "30", "x", "99999999999")),
                "<sip:x@y>;reg-id=1;+sip.instance=\"<urn:uuid:1>\"", "<sip:", ""),
        ]
        if self.r.random() < 0.4:
            heads.append("%s: Digest %s" % (
                self.pick("Authorization", "Proxy-Authorization"),
                ", ".join(self.pick(
                    'username="%s"' % user, 'realm="localhost"', 'nonce="%s"' % self.token(),
                    'uri="sip:localhost"', 'response="%s"' % self.token(), "algorithm=MD5",
                    "algorithm=SHA-256", "qop=auth", "nc=00000001", 'cnonce="c"',
                    'nonce="', "qop", "=", 'username=""') for _ in range(self.r.randint(0, 10)))))
        if self.r.random() < 0.3:
            heads.append("Expires: %s" % self.pick("0", "600", "x", "-5"))
        body = ""
        if method == "INVITE" or self.r.random() < 0.2:
            body = self.pick(SDP, SDP[: self.r.randint(0, len(SDP))], "garbage", "")
            heads.append("Content-Type: application/sdp")
        if self.r.random() < 0.5:
            start = "%s sip:%s@%s SIP/2.0" % (method, user, host)
        else:
            start = "SIP/2.0 %s %s" % (self.pick("100", "180", "200", "487", "999", "x"),
                                       self.pick("OK", "", "Ringing"))
        return start, heads, body

    def damage(self, start, heads, body):
        for _ in range(self.r.randint(0, 4)):
            k = self.r.randint(0, 11)
            if k == 0 and heads:
                heads.pop(self.r.randrange(len(heads)))
            elif k == 1 and heads:
                heads.insert(self.r.randrange(len(heads) + 1), self.r.choice(heads))
            elif k == 2:
                self.r.shuffle(heads)
            elif k == 3 and heads:
                i = self.r.randrange(len(heads))
                heads[i] = heads[i][: self.r.randint(0, len(heads[i]))]
            elif k == 4:
                start = self.pick("", "INVITE", "SIP/2.0", "INVITE sip:x SIP/3.0",
                                  "sip:x INVITE SIP/2.0", start + " extra")
            elif k == 5:
                heads.append("X-Long: " + "a" * self.r.choice([100, 5000, 20000, 70000]))
            elif k == 6:
                heads.append(self.rbytes(self.r.randint(1, 60)).decode("latin-1"))
            elif k == 7:
                heads.append(" folded continuation")
            elif k == 8:
                body = body + self.rbytes(self.r.randint(0, 200)).decode("latin-1")
            elif k == 9 and heads:
                i = self.r.randrange(len(heads))
                heads[i] = heads[i].replace(":", "", 1)
            elif k == 10:
                heads.append("l: %s" % self.pick("0", "5", "x"))
            else:
                body = ""
        clen = len(body.encode("latin-1"))
        cl = self.pick(str(clen), str(clen), str(clen), str(clen + self.r.randint(1, 50)),
                       str(max(clen - self.r.randint(1, 50), 0)), "-1", "x",
                       "99999999999", None)
        if cl is not None:
            heads.append("Content-Length: %s" % cl)
        eol = self.pick("\r\n", "\r\n", "\r\n", "\n")
        text = start + eol + eol.join(heads) + eol + eol + body
        return text.encode("latin-1", "replace")

    # -- transports

    def ws(self, msgs):
        s = socket.create_connection((HOST, self.ws_port), timeout=2)
        key = base64.b64encode(self.rbytes(16)).decode()
        s.sendall(("GET /sip HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: sip\r\nSec-WebSocket-Key: %s\r\n\r\n" % key).encode())
        for m in msgs:
            op = self.pick(1, 2)
            if len(m) > 65535 or self.r.random() < 0.1:
                # split over continuation frames
                cut = self.r.randint(0, len(m))
                s.sendall(self.frame(m[:cut], op, fin=False) + self.frame(m[cut:], 0))
            else:
                s.sendall(self.frame(m, op))
        return s

    def frame(self, payload, opcode, fin=True):
        mask = self.rbytes(4)
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    def udp(self, msgs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.05)
        for m in msgs:
            s.sendto(m[:65507], (HOST, self.stream_port))
        return s

    def tcp(self, msgs):
        s = socket.create_connection((HOST, self.stream_port), timeout=2)
        data = b"".join(msgs)
        if self.r.random() < 0.3:
            data = data[: self.r.randint(0, len(data))]
        while data:
            n = self.r.randint(1, max(1, len(data)))
            s.sendall(data[:n])
            data = data[n:]
        return s

    def drain(self, s):
        s.settimeout(0.02)
        try:
            for _ in range(20):
                if not s.recv(65536):
                    break
        except (socket.timeout, OSError):
            pass

    def iteration(self):
        msgs = [self.damage(*self.message()) for _ in range(self.r.randint(1, 4))]
        transport = self.r.choice([self.ws, self.udp, self.tcp])
        try:
            s = transport(msgs)
            self.drain(s)
            if self.r.random() < 0.5 and s.type == socket.SOCK_STREAM:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            return 0
        except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, socket.timeout):
            return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ws-port", type=int, required=True)
    ap.add_argument("--stream-port", type=int, required=True)
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    f = Fuzzer(a.ws_port, a.stream_port, a.seed)
    t0 = time.monotonic()
    refused = sum(f.iteration() for _ in range(a.iterations))
    print("%d iterations (seed %d) in %.1f s, %d refused or reset"
          % (a.iterations, a.seed, time.monotonic() - t0, refused))
    return 0


if __name__ == "__main__":
    sys.exit(main())
