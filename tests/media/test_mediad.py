#!/usr/bin/python3
"""codeb-mediad through its real wire: NG over UDP, RTP between two plain
RTP peers on loopback (tests/media/mediatest.py).

Run: /usr/bin/python3 -m unittest tests/media/test_mediad.py
(CODEB_MEDIAD: the binary; default build/mediad/codeb-mediad)
"""

import contextlib
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import mediatest as mt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("CODEB_MEDIAD", os.path.join(ROOT, "build/mediad/codeb-mediad"))


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# an offer as Chromium makes it (audio, BUNDLE, ICE, DTLS, RTCP feedback)
CHROMIUM_SDP = (
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\n"
    "a=candidate:2 1 udp 1686052607 203.0.113.4 50000 typ srflx raddr 127.0.0.1 rport 50000\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=ice-options:trickle\r\n"
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\n"
    "a=setup:actpass\r\na=mid:0\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=sendrecv\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n"
    "a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n"
    "a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
    "a=rtpmap:126 telephone-event/8000\r\na=ssrc:1234 cname:abc\r\n")


def recv_rtcp(peer, seconds=2.0):
    """The next datagram on peer's RTCP socket, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            peer.rtcp_sock.settimeout(0.5)
            return peer.rtcp_sock.recv(2048)
        except OSError:
            pass
    return None


def rtcp_packets(data):
    """(packet type, count, body) of each packet of a compound RTCP packet."""
    out = []
    while len(data) >= 4:
        n = 4 * (struct.unpack("!H", data[2:4])[0] + 1)
        out.append((data[1], data[0] & 0x1F, data[:n]))
        data = data[n:]
    return out


@contextlib.contextmanager
def mediad(timeout=60, extra=(), exits=False):
    """codeb-mediad on a free NG port and its own 200-port range.  At the
    end it must still run and exit 0 on SIGINT; exits: the test ends it,
    and it must have exited 0."""
    ng_port = free_udp_port()
    base = random.randrange(41000, 59000, 2)
    log = tempfile.NamedTemporaryFile(prefix="mediad-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [BINARY, "--listen-ng", "127.0.0.1:%d" % ng_port, "--port-min", str(base),
         "--port-max", str(base + 199), "--timeout", str(timeout), "--log-level", "debug",
         *extra],
        stdout=log, stderr=subprocess.STDOUT)
    ng = mt.NG(("127.0.0.1", ng_port), timeout=1.0, retries=1)
    try:
        ng.wait_ready(10)
        ng.proc = proc
        ng.log_path = log.name
        yield ng
    finally:
        ng.close()
        alive = proc.poll() is None or exits
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with open(log.name, "rb") as f:
            text = f.read().decode(errors="replace")
        os.unlink(log.name)
        if not alive or proc.returncode != 0:
            raise AssertionError("codeb-mediad died (rc %s):\n%s" % (proc.returncode, text[-3000:]))


class NGControl(unittest.TestCase):
    def test_ping_list_unknown(self):
        with mediad() as ng:
            self.assertEqual(ng.ping()["result"], "pong")
            r = ng.request({"command": "list"})
            self.assertEqual(r["result"], "ok")
            self.assertEqual(r["calls"], [])
            r = ng.request({"command": "frobnicate"})
            self.assertEqual(r["result"], "error")
            self.assertIn("unknown command", r["error-reason"])
            r = ng.request({"command": "delete", "call-id": "nope", "from-tag": "x"})
            self.assertEqual(r["result"], "ok")
            self.assertIn("warning", r)
            r = ng.request({"command": "query", "call-id": "nope"})
            self.assertEqual(r["result"], "error")
            r = ng.request({"command": "offer", "call-id": "c", "from-tag": "t"})
            self.assertEqual(r["result"], "error")
            self.assertIn("SDP", r["error-reason"])

    def test_malformed_datagrams_get_errors_and_the_daemon_lives(self):
        with mediad() as ng:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1)
            dest = ng.addr
            cases = [b"c1 d7:command4:ping", b"c2 i01e", b"c3 d3:foo", b"c4 l4:pinge",
                     b"c5 d999999999:xe", b"c6 " + b"l" * 100 + b"e" * 100,
                     b"c7 d7:command4:pingi1ei2ee", b"c8 " + os.urandom(500)]
            for c in cases:
                sock.sendto(c, dest)
                reply = sock.recv(65535)
                cookie, _, body = reply.partition(b" ")
                self.assertEqual(cookie, c.split(b" ")[0])
                d = mt.bdecode(body, require_sorted=False)
                self.assertEqual(d[b"result"], b"error", c)
                self.assertTrue(d[b"error-reason"])
            sock.sendto(b"no-cookie-at-all", dest)
            for _ in range(200):
                sock.sendto(os.urandom(random.randrange(1, 1400)), dest)
            sock.close()
            self.assertEqual(ng.ping()["result"], "pong")

    def test_mutated_sdp_gets_answers_and_the_daemon_lives(self):
        # 3000 offers (and answers to those accepted) of a Chromium and a
        # plain SDP with bytes changed, cut, repeated lines, odd tokens and
        # floods of rtpmaps; under ASan+UBSan any bad access ends the daemon
        rnd = random.Random(11)
        tokens = [b"\r\n", b"\n", b":", b" ", b"/", b"0", b"65535", b"99999999999", b"-1",
                  b"a=", b"m=audio ", b"c=IN IP4 ", b"a=rtpmap:", b"a=fmtp:", b"a=candidate:",
                  b"a=ptime:", b"a=rtcp:", b"\x00", b"\xff", b"m=video 0 RTP/AVP 96\r\n",
                  b"a=mid:", b"a=group:BUNDLE 0 1 2 3 4 5", b"x" * 300]

        def mutate(sdp):
            b = bytearray(sdp.encode())
            for _ in range(rnd.randint(1, 6)):
                i = rnd.randrange(max(1, len(b)))
                c = rnd.random()
                if c < 0.3 and b:
                    b[i] = rnd.randrange(256)
                elif c < 0.5:
                    del b[i:i + rnd.randint(1, 40)]
                elif c < 0.8:
                    b[i:i] = rnd.choice(tokens)
                elif c < 0.9:
                    lines = bytes(b).split(b"\r\n")
                    lines.insert(rnd.randrange(len(lines)), rnd.choice(lines))
                    b = bytearray(b"\r\n".join(lines))
                else:
                    b += b"".join(b"a=rtpmap:%d x%d/%d\r\n"
                                  % (rnd.randrange(200), k, rnd.choice([8000, 0, 48000, 2 ** 32]))
                                  for k in range(rnd.randint(1, 40)))
            return bytes(b).decode("latin-1")

        plain = mt.make_sdp("127.0.0.1", 40000, payload_types=[(8, "PCMA", 8000),
                                                              (0, "PCMU", 8000)])
        flags = [{}, {"ICE": "remove", "DTLS": "off", "transport-protocol": "RTP/AVP",
                      "rtcp-mux": ["demux"], "codec": {"transcode": ["PCMA"]}},
                 {"ICE": "force", "transport-protocol": "UDP/TLS/RTP/SAVPF",
                  "rtcp-mux": ["offer"], "codec": {"transcode": ["opus"]}}]
        with mediad() as ng:
            answered = 0
            for i in range(3000):
                cid = "m%d" % (i % 50)
                r = ng.offer(cid, "a", mutate(rnd.choice([CHROMIUM_SDP, plain])),
                             **rnd.choice(flags))
                self.assertIn(r["result"], ("ok", "error"))
                if r["result"] == "ok":
                    answered += 1
                    r = ng.answer(cid, "a", "b", mutate(rnd.choice([CHROMIUM_SDP, plain])))
                    self.assertIn(r["result"], ("ok", "error"))
                if i % 7 == 0:
                    ng.request({"command": "delete", "call-id": cid})
            self.assertGreater(answered, 1000)
            self.assertEqual(ng.ping()["result"], "pong")

    def test_retransmission_is_answered_from_the_cache(self):
        with mediad() as ng, mt.RtpPeer() as a:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.settimeout(1)
            msg = b"same-cookie " + mt.bencode({"command": "offer", "call-id": "rt",
                                                "from-tag": "t1", "sdp": a.sdp()})
            sock.sendto(msg, ng.addr)
            first = sock.recv(65535)
            sock.sendto(msg, ng.addr)
            second = sock.recv(65535)
            sock.close()
            self.assertEqual(first, second)
            self.assertEqual(ng.list()["calls"], ["rt"])


class Relay(unittest.TestCase):
    def setUp(self):
        self.stack = contextlib.ExitStack()
        self.ng = self.stack.enter_context(mediad())
        self.a = self.stack.enter_context(mt.RtpPeer())
        self.b = self.stack.enter_context(mt.RtpPeer())

    def tearDown(self):
        self.stack.close()

    def offer_answer(self, call_id, offer_pts, answer_pts, offer_flags=None, dtmf=101,
                     offer_ptime=20, answer_ptime=20):
        r = self.ng.offer(call_id, "tag-a",
                          self.a.sdp(payload_types=offer_pts, telephone_event=dtmf,
                                     ptime=offer_ptime),
                          **(offer_flags or {}))
        mt.expect_ok(r)
        to_b = r["sdp"]
        r = self.ng.answer(call_id, "tag-a", "tag-b",
                           self.b.sdp(payload_types=answer_pts, telephone_event=dtmf,
                                      ptime=answer_ptime))
        mt.expect_ok(r)
        to_a = r["sdp"]
        # a sends where the answer (given to a) says; b where the offer says
        return mt.sdp_audio_dest(to_a), mt.sdp_audio_dest(to_b), to_a, to_b

    def tone_both_ways(self, a_codec, b_codec, dest_a, dest_b, seconds=1.0):
        with self.b.capture() as cap_b:
            self.a.send_tone(dest_a, codec=a_codec, seconds=seconds)
            time.sleep(0.2)
        with self.a.capture() as cap_a:
            self.b.send_tone(dest_b, codec=b_codec, freq=1000, seconds=seconds)
            time.sleep(0.2)
        for cap, codec in ((cap_b, b_codec), (cap_a, a_codec)):
            pkts = [p for p in cap.packets if p.rtp and p.rtp.pt in (0, 8)]
            self.assertGreater(len(pkts), seconds * 50 * 0.9)
            audio = mt.decode_audio(pkts, codec)
            self.assertTrue(mt.tone_detected(audio, 8000, 1000), codec)
            mt.continuity(pkts).assert_ok()
            self.assertEqual(len({p.rtp.ssrc for p in pkts}), 1)
            self.assertTrue(all(p.rtp.pt == (8 if codec == "PCMA" else 0) for p in pkts))
        return cap_a, cap_b

    def test_pcma_pass_through(self):
        dest_a, dest_b, to_a, to_b = self.offer_answer("pt", [(8, "PCMA", 8000)],
                                                       [(8, "PCMA", 8000)])
        sdp_b = mt.parse_sdp(to_b)
        self.assertEqual(sdp_b["media"][0]["payloads"], [8, 101])
        self.assertEqual(sdp_b["media"][0]["proto"], "RTP/AVP")
        self.tone_both_ways("PCMA", "PCMA", dest_a, dest_b)
        q = self.ng.query("pt")
        self.assertEqual(q["result"], "ok")
        stats = [m["streams"][0]["stats"] for t in q["tags"].values() for m in t["medias"]]
        self.assertTrue(all(s["packets"] >= 45 for s in stats), stats)
        self.assertTrue(all(s["lost"] == 0 for s in stats), stats)

    def test_pcma_to_pcmu_transcoding(self):
        dest_a, dest_b, to_a, to_b = self.offer_answer(
            "tc", [(8, "PCMA", 8000)], [(0, "PCMU", 8000)],
            offer_flags={"codec": {"transcode": ["PCMU"]}})
        self.assertEqual(mt.parse_sdp(to_b)["media"][0]["payloads"], [8, 0, 101])
        self.assertEqual(mt.parse_sdp(to_a)["media"][0]["payloads"], [8, 101])
        self.tone_both_ways("PCMA", "PCMU", dest_a, dest_b)

    def test_transcoded_frames_follow_the_receivers_ptime(self):
        # PCMA packets of in_ms become PCMU frames of B's a=ptime (none: 20
        # ms): numbered one after the other, timestamps one frame apart
        for in_ms, b_ptime, frame in ((10, None, 160), (30, None, 160), (40, 20, 160),
                                      (20, 30, 240), (10, 60, 480)):
            with self.subTest(packets_in=in_ms, b_ptime=b_ptime):
                dest_a, _, _, _ = self.offer_answer(
                    "p%d-%s" % (in_ms, b_ptime), [(8, "PCMA", 8000)], [(0, "PCMU", 8000)],
                    offer_flags={"codec": {"transcode": ["PCMU"]}}, answer_ptime=b_ptime)
                with self.b.capture() as cap:
                    self.a.send_tone(dest_a, codec="PCMA", seconds=1.2, ptime=in_ms)
                    time.sleep(0.2)
                pkts = [p for p in cap.packets if p.rtp and p.rtp.pt == 0]
                self.assertEqual(len(pkts), 9600 // frame)
                self.assertTrue(all(len(p.rtp.payload) == frame for p in pkts))
                mt.continuity(pkts, samples_per_packet=frame).assert_ok()
                self.assertTrue(mt.tone_detected(mt.decode_audio(pkts, "PCMU"), 8000, 1000))

    def test_lost_opus_packets_are_concealed_towards_g711(self):
        # Opus (aiortc's encoder: libopus) from A loses packets 20-21 and
        # 35; B (PCMA) gets every 20 ms frame: the decoder's concealment
        # (RFC 6716 §4.4) in their place, the tone going on through them
        import fractions
        import av
        import numpy as np
        from aiortc.codecs.opus import OpusEncoder

        r = self.ng.offer("plc", "tag-a",
                          self.a.sdp(payload_types=[(111, "opus", 48000, 2)]),
                          codec={"transcode": ["PCMA"]})
        mt.expect_ok(r)
        r = self.ng.answer("plc", "tag-a", "tag-b", self.b.sdp(payload_types=[(8, "PCMA", 8000)]))
        mt.expect_ok(r)
        dest_a = mt.sdp_audio_dest(r["sdp"])

        enc = OpusEncoder()
        t = np.arange(50 * 960) / 48000.0
        pcm = (np.sin(2 * np.pi * 1000 * t) * 0.3 * 32767).astype(np.int16)
        lost = {20, 21, 35}
        with self.b.capture() as cap:
            for i in range(50):
                frame = av.AudioFrame.from_ndarray(
                    np.repeat(pcm[i * 960:(i + 1) * 960], 2).reshape(1, -1),
                    format="s16", layout="stereo")
                frame.sample_rate = 48000
                frame.pts = i * 960
                frame.time_base = fractions.Fraction(1, 48000)
                payloads, _ = enc.encode(frame)
                if i not in lost:
                    self.a.send_rtp(dest_a, 111, payloads[0], seq=7000 + i, ts=96000 + i * 960,
                                    marker=(i == 0))
                time.sleep(0.02)
            time.sleep(0.2)
        pkts = [p for p in cap.packets if p.rtp and p.rtp.pt == 8]
        self.assertEqual(len(pkts), 50)
        mt.continuity(pkts).assert_ok()
        audio = mt.decode_audio(pkts, "PCMA")
        # the three concealed frames (not a real sample in them but the
        # resampler's 1 ms of history): the tone, not silence
        for first, n in ((20, 2), (35, 1)):
            part = audio[first * 160 + 8:(first + n) * 160]
            rms = float(np.sqrt(np.mean(np.square(part))))
            ratio = mt.tone_ratio(part, 8000, 1000, None, trim=False)
            self.assertTrue(rms > 0.05 and ratio > 0.5, (first, n, rms, ratio))

    def test_late_and_repeated_packets_do_not_reach_the_transcoder(self):
        dest_a, _, _, _ = self.offer_answer(
            "late", [(8, "PCMA", 8000)], [(0, "PCMU", 8000)],
            offer_flags={"codec": {"transcode": ["PCMU"]}})
        with self.b.capture() as cap:
            self.a.send_tone(dest_a, codec="PCMA", seconds=0.2, start_seq=500, start_ts=0)
            self.a.send_tone(dest_a, codec="PCMA", seconds=0.06, start_seq=505, start_ts=800)
            self.a.send_tone(dest_a, codec="PCMA", seconds=0.2, start_seq=510, start_ts=1600)
            time.sleep(0.2)
        pkts = [p for p in cap.packets if p.rtp and p.rtp.pt == 0]
        self.assertEqual(len(pkts), 20)
        mt.continuity(pkts).assert_ok()

    def test_codec_strip_and_mask(self):
        r = self.ng.offer("st", "tag-a", self.a.sdp(payload_types=[(8, "PCMA", 8000),
                                                                    (0, "PCMU", 8000)]),
                          codec={"strip": ["PCMU"]})
        self.assertEqual(mt.parse_sdp(r["sdp"])["media"][0]["payloads"], [8, 101])
        r = self.ng.offer("mk", "tag-a", self.a.sdp(payload_types=[(8, "PCMA", 8000)]),
                          codec={"mask": ["PCMA"], "transcode": ["PCMU"]})
        self.assertEqual(mt.parse_sdp(r["sdp"])["media"][0]["payloads"], [0, 101])

    def test_dtmf_crosses_with_mapped_payload_type(self):
        r = self.ng.offer("dt", "tag-a", self.a.sdp(telephone_event=101))
        dest_b = mt.sdp_audio_dest(r["sdp"])
        r = self.ng.answer("dt", "tag-a", "tag-b", self.b.sdp(telephone_event=96))
        dest_a = mt.sdp_audio_dest(r["sdp"])
        self.assertIn(101, mt.parse_sdp(r["sdp"])["media"][0]["payloads"])
        with self.b.capture() as cap:
            self.a.send_tone(dest_a, seconds=0.2)
            for d in "1#9":
                self.a.send_dtmf(dest_a, pt_event=101, digit=d)
            time.sleep(0.2)
        ev = mt.dtmf_events(cap.packets, pt=96)
        self.assertEqual([e[0] for e in ev], list("1#9"))

    def test_dtmf_crosses_clocks_with_opus(self):
        # RFC 4733 §2.1: events run in the clock of their audio.  A (Opus
        # + telephone-event/48000) <-> B (PCMA + telephone-event/8000): the
        # payload type, timestamps and duration move to the other clock
        opus = [(111, "opus", 48000, 2)]
        r = self.ng.offer("dc", "tag-a", self.a.sdp(payload_types=opus, telephone_event=110,
                                                     te_rate=48000),
                          codec={"transcode": ["PCMA"]})
        mt.expect_ok(r)
        offer = mt.parse_sdp(r["sdp"])["media"][0]
        te = {pt: rate for pt, (name, rate) in offer["rtpmap"].items()
              if name == "telephone-event"}
        self.assertEqual(sorted(te.values()), [8000, 48000], r["sdp"])
        dest_b = mt.sdp_audio_dest(r["sdp"])
        te8k = [pt for pt, rate in te.items() if rate == 8000][0]
        r = self.ng.answer("dc", "tag-a", "tag-b",
                           self.b.sdp(payload_types=[(8, "PCMA", 8000)], telephone_event=te8k))
        mt.expect_ok(r)
        answer = mt.parse_sdp(r["sdp"])["media"][0]
        self.assertEqual([(pt,) + answer["rtpmap"][pt] for pt in answer["payloads"]],
                         [(111, "opus", 48000), (110, "telephone-event", 48000)], r["sdp"])
        dest_a = mt.sdp_audio_dest(r["sdp"])

        with self.b.capture() as cap:
            for d in "1#":
                self.a.send_dtmf(dest_a, pt_event=110, digit=d, duration_ms=100, rate=48000)
            time.sleep(0.2)
        ev = mt.dtmf_events(cap.packets, pt=te8k)
        self.assertEqual([(e[0], e[2]) for e in ev], [("1", 800), ("#", 800)])
        self.assertEqual((ev[1][1] - ev[0][1]) & 0xFFFFFFFF, 800, "4800 at 48 kHz apart")

        with self.a.capture() as cap:
            self.b.send_dtmf(dest_b, pt_event=te8k, digit="9", duration_ms=100)
            time.sleep(0.2)
        ev = mt.dtmf_events(cap.packets, pt=110)
        self.assertEqual([(e[0], e[2]) for e in ev], [("9", 4800)])

    # --- payload types per direction ------------------------------------------
    #
    # RFC 3264 §6.1 lets an answerer pick its own dynamic payload type
    # numbers (a trunk answers telephone-event 101 with 96), and either side
    # may re-offer with its own.  Each endpoint is sent the numbers it
    # declared, for the same codec (name, clock, channels; telephone-event by
    # its clock), whichever way the packet goes: after the answer, while a
    # re-offer waits for its answer (RFC 3264 §8.3.2: the old formats stay
    # valid until then; a re-INVITE that fails never gets one) and after the
    # new answer.  rtpengine 10.5 forwards payload types as they come, so
    # there neither side's events arrive (test_rtpengine_ref.py
    # RefTest.test_dtmf_with_payload_types_that_differ).

    @staticmethod
    def settle(cap, n, seconds=5.0):
        """Waits (bounded) until cap holds n RTP packets, so that nothing
        of one step arrives in the capture of the next on a busy machine."""
        deadline = time.monotonic() + seconds
        while len([p for p in cap.packets if p.rtp]) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)

    def events_both_ways(self, dest_a, dest_b, a_te, b_te, a_rate=8000, b_rate=8000,
                         what=""):
        """A's events reach B with B's number, B's reach A with A's."""
        for src, dst, dest, pt_in, pt_out, rate, digits in (
                (self.a, self.b, dest_a, a_te, b_te, a_rate, "1#"),
                (self.b, self.a, dest_b, b_te, a_te, b_rate, "9*")):
            dst.drain()
            with dst.capture() as cap:
                n = sum(src.send_dtmf(dest, pt_event=pt_in, digit=d, rate=rate)
                        for d in digits)
                self.settle(cap, n)
            pts = {p.rtp.pt for p in cap.packets if p.rtp}
            ev = mt.dtmf_events(cap.packets, pt=pt_out)
            self.assertEqual(([e.digit for e in ev], pts), (list(digits), {pt_out}),
                             "%s: events %d -> %d" % (what, pt_in, pt_out))

    def frames_both_ways(self, dest_a, dest_b, pairs, what=""):
        """Audio of each (A's pt, B's pt, clock) goes across renumbered,
        its payload untouched."""
        for a_pt, b_pt, rate in pairs:
            for src, dst, dest, pt_in, pt_out in ((self.a, self.b, dest_a, a_pt, b_pt),
                                                  (self.b, self.a, dest_b, b_pt, a_pt)):
                payload = bytes([pt_in]) * 40
                dst.drain()
                with dst.capture() as cap:
                    for i in range(5):
                        src.send_rtp(dest, pt_in, payload, marker=(i == 0))
                        src.seq = (src.seq + 1) & 0xFFFF
                        src.ts = (src.ts + rate // 50) & 0xFFFFFFFF
                        time.sleep(0.02)
                    self.settle(cap, 5)
                got = [(p.rtp.pt, p.rtp.payload) for p in cap.packets if p.rtp]
                self.assertEqual(got, [(pt_out, payload)] * 5,
                                 "%s: audio %d -> %d" % (what, pt_in, pt_out))

    def reoffer_both_sides(self, call_id, sdp_a, sdp_b, check, flags=None):
        """check() after the answer, then while a re-offer from A and one
        from B each wait for their answer, and after those answers."""
        check("answered")
        for offerer, answerer, o_sdp, a_sdp in (("tag-a", "tag-b", sdp_a, sdp_b),
                                                ("tag-b", "tag-a", sdp_b, sdp_a)):
            mt.expect_ok(self.ng.offer(call_id, offerer, o_sdp, **(flags or {})))
            check("re-offer from %s, answer pending" % offerer)
            mt.expect_ok(self.ng.answer(call_id, offerer, answerer, a_sdp))
            check("re-offer from %s answered" % offerer)

    def test_events_keep_each_sides_payload_type(self):
        sdp_a = self.a.sdp(telephone_event=101)
        sdp_b = self.b.sdp(telephone_event=96)
        r = self.ng.offer("pe", "tag-a", sdp_a)
        dest_b = mt.sdp_audio_dest(r["sdp"])
        r = self.ng.answer("pe", "tag-a", "tag-b", sdp_b)
        dest_a = mt.sdp_audio_dest(r["sdp"])
        self.reoffer_both_sides(
            "pe", sdp_a, sdp_b,
            lambda what: self.events_both_ways(dest_a, dest_b, 101, 96, what=what))

    def test_events_keep_each_sides_payload_type_when_transcoding(self):
        flags = {"codec": {"transcode": ["PCMU"]}}
        sdp_a = self.a.sdp(telephone_event=101)
        sdp_b = self.b.sdp(payload_types=[(0, "PCMU", 8000)], telephone_event=96)
        r = self.ng.offer("pt", "tag-a", sdp_a, **flags)
        dest_b = mt.sdp_audio_dest(r["sdp"])
        r = self.ng.answer("pt", "tag-a", "tag-b", sdp_b)
        dest_a = mt.sdp_audio_dest(r["sdp"])
        media = self.ng.query("pt")["tags"]["tag-a"]["medias"][0]
        self.assertIn("transcoding", media["streams"][0]["flags"])

        def check(what):
            self.events_both_ways(dest_a, dest_b, 101, 96, what=what)
            self.a.drain()
            with self.a.capture() as cap:
                self.settle(cap, self.b.send_tone(dest_b, codec="PCMU", seconds=0.2))
            self.assertEqual({p.rtp.pt for p in cap.packets if p.rtp}, {8}, what)

        self.reoffer_both_sides("pt", sdp_a, sdp_b, check)

    def test_events_keep_each_sides_payload_type_across_clocks(self):
        # Opus with telephone-event/48000 on 110 <-> PCMA with
        # telephone-event/8000 on 96 (not the number offered to it)
        flags = {"codec": {"transcode": ["PCMA"]}}
        sdp_a = self.a.sdp(payload_types=[(111, "opus", 48000, 2)], telephone_event=110,
                           te_rate=48000)
        sdp_b = self.b.sdp(telephone_event=96)
        r = self.ng.offer("pc", "tag-a", sdp_a, **flags)
        offered = mt.parse_sdp(r["sdp"])["media"][0]["rtpmap"]
        self.assertNotEqual(offered.get(96), ("telephone-event", 8000))
        dest_b = mt.sdp_audio_dest(r["sdp"])
        r = self.ng.answer("pc", "tag-a", "tag-b", sdp_b)
        dest_a = mt.sdp_audio_dest(r["sdp"])
        self.reoffer_both_sides(
            "pc", sdp_a, sdp_b,
            lambda what: self.events_both_ways(dest_a, dest_b, 110, 96, a_rate=48000,
                                               what=what),
            flags=flags)

    def test_dynamic_codecs_keep_each_sides_payload_type(self):
        for name, a_pts, a_te, b_pts, b_te, pairs in (
                # Opus 111 on one side, 96 on the other
                ("opus", [(111, "opus", 48000, 2)], 101, [(96, "opus", 48000, 2)], 100,
                 [(111, 96, 48000)]),
                # A's 96 is Opus, B's 96 is telephone-event
                ("crossed", [(96, "opus", 48000, 2)], 101, [(111, "opus", 48000, 2)], 96,
                 [(96, 111, 48000)]),
                # codecs the relay does not know are told apart by name and
                # clock, not taken for the one the answerer listed first
                ("unknown", [(9, "G722", 8000), (96, "AMR-WB", 16000)], 101,
                 [(97, "AMR-WB", 16000), (9, "G722", 8000)], 100,
                 [(96, 97, 16000), (9, 9, 8000)])):
            with self.subTest(codecs=name):
                sdp_a = self.a.sdp(payload_types=a_pts, telephone_event=a_te)
                sdp_b = self.b.sdp(payload_types=b_pts, telephone_event=b_te)
                r = self.ng.offer("dy-" + name, "tag-a", sdp_a)
                dest_b = mt.sdp_audio_dest(r["sdp"])
                r = self.ng.answer("dy-" + name, "tag-a", "tag-b", sdp_b)
                dest_a = mt.sdp_audio_dest(r["sdp"])

                def check(what):
                    self.frames_both_ways(dest_a, dest_b, pairs, what=what)
                    self.events_both_ways(dest_a, dest_b, a_te, b_te, what=what)

                self.reoffer_both_sides("dy-" + name, sdp_a, sdp_b, check)

    def test_ssrc_change_and_hold_keep_the_stream_continuous(self):
        dest_a, dest_b, _, _ = self.offer_answer("ss", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        with self.b.capture() as cap:
            self.a.send_tone(dest_a, seconds=0.4, ssrc=0x1111, start_seq=100, start_ts=1000)
            # a new source: another SSRC, sequence and timestamp base
            self.a.send_tone(dest_a, seconds=0.4, ssrc=0x2222, start_seq=60000,
                             start_ts=4000000000)
            # hold: one second of nothing, then the timestamp jumps far
            time.sleep(1.0)
            self.a.send_tone(dest_a, seconds=0.4, ssrc=0x2222, start_ts=123)
            time.sleep(0.2)
        pkts = [p for p in cap.packets if p.rtp]
        self.assertGreater(len(pkts), 55)
        self.assertEqual(len({p.rtp.ssrc for p in pkts}), 1, "one SSRC out")
        seqs = [p.rtp.seq for p in pkts]
        for x, y in zip(seqs, seqs[1:]):
            self.assertEqual((x + 1) & 0xFFFF, y)
        ts = [p.rtp.ts for p in pkts]
        steps = [(y - x) & 0xFFFFFFFF for x, y in zip(ts, ts[1:])]
        # 160 per packet, and across the hold about the time that passed
        self.assertTrue(all(s == 160 for s in steps[:19] + steps[20:39]), steps[:45])
        big = max(steps)
        self.assertTrue(8000 * 0.9 <= big <= 8000 * 1.6, big)
        self.assertTrue(all(s < 0x7FFFFFFF for s in steps))
        markers = [i for i, p in enumerate(pkts) if p.rtp.marker]
        self.assertIn(20, markers)

    def test_latching_then_spoofed_source_is_dropped(self):
        dest_a, dest_b, _, _ = self.offer_answer("sp", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        with mt.RtpPeer() as mallory, self.b.capture() as cap:
            self.a.send_tone(dest_a, seconds=0.2)
            mallory.send_tone(dest_a, seconds=0.2, ssrc=0xBAD)
            self.a.send_tone(dest_a, seconds=0.2)
            time.sleep(0.2)
        self.assertEqual(len([p for p in cap.packets if p.rtp]), 20)
        q = self.ng.query("sp")
        errors = sum(m["streams"][0]["stats"]["errors"] for t in q["tags"].values()
                     for m in t["medias"])
        self.assertGreaterEqual(errors, 10)

    def test_rtt_from_receiver_reports(self):
        dest_a, dest_b, _, _ = self.offer_answer("rt", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        self.a.send_tone(dest_a, seconds=0.1)
        self.b.send_tone(dest_b, seconds=0.1)
        # A's SR goes through the daemon to B; B answers 150 ms later with
        # an RR on it (LSR = the SR's NTP middle bits, DLSR = 0)
        ntp_hi, ntp_lo = 0x12345678, 0x9ABC0000
        sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, 0xA, ntp_hi, ntp_lo, 0, 0, 0)
        self.a.rtcp_sock.sendto(sr, (dest_a[0], dest_a[1] + 1))
        got = recv_rtcp(self.b)
        self.assertIsNotNone(got, "the SR reached B")
        self.assertEqual(got[1], 200)
        lsr = ((ntp_hi & 0xFFFF) << 16) | (ntp_lo >> 16)
        time.sleep(0.15)
        rr = struct.pack("!BBHI", 0x81, 201, 7, 0xB) + struct.pack(
            "!IIIIII", struct.unpack("!I", got[4:8])[0], 0, 0, 0, lsr, 0)
        self.b.rtcp_sock.sendto(rr, (dest_b[0], dest_b[1] + 1))
        time.sleep(0.1)
        q = self.ng.query("rt")
        rtt = q["tags"]["tag-b"]["medias"][0]["streams"][0]["stats"]["rtt"]
        self.assertTrue(140 <= rtt <= 400, rtt)
        self.assertEqual(q["tags"]["tag-a"]["medias"][0]["streams"][0]["stats"]["rtt"], -1)

    def test_rtcp_names_what_each_side_knows(self):
        # RFC 3550 §6.4: each side must see its own SSRC in the reports on
        # its stream, and the SSRC, numbering and clock it receives in the
        # other side's SR; a BYE does not cross (our stream goes on)
        dest_a, dest_b, _, _ = self.offer_answer("rc", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        with self.b.capture() as cap_b:
            self.a.send_tone(dest_a, seconds=0.2, ssrc=0x1111, start_seq=100, start_ts=1000)
            time.sleep(0.1)
        with self.a.capture() as cap_a:
            self.b.send_tone(dest_b, seconds=0.2, ssrc=0x2222, start_seq=5000,
                             start_ts=700000)
            time.sleep(0.1)
        at_b = [p.rtp for p in cap_b.packets if p.rtp]
        at_a = [p.rtp for p in cap_a.packets if p.rtp]
        self.assertEqual((len(at_b), len(at_a)), (10, 10))
        b_rx, a_rx = at_b[-1], at_a[-1]

        # A: SR (its next timestamp, 2600; a report on what it got) + SDES + BYE
        sr = struct.pack("!BBHIIIIII", 0x81, 200, 12, 0x1111, 0x12345678, 0x9ABC0000,
                         2600, 999, 12345)
        sr += struct.pack("!IIIIII", a_rx.ssrc, 0, (1 << 16) | a_rx.seq, 40, 0, 0)
        sdes = struct.pack("!BBHIBB", 0x81, 202, 3, 0x1111, 1, 3) + b"a@x" + b"\0" * 3
        bye = struct.pack("!BBHI", 0x81, 203, 1, 0x1111)
        self.a.rtcp_sock.sendto(sr + sdes + bye, (dest_a[0], dest_a[1] + 1))
        got = recv_rtcp(self.b)
        self.assertIsNotNone(got, "A's RTCP reached B")
        pk = rtcp_packets(got)
        self.assertEqual([(t, c) for t, c, _ in pk], [(200, 1), (202, 1)])
        sender, ts, count, octets = struct.unpack("!I8xIII", pk[0][2][4:28])
        self.assertEqual(sender, b_rx.ssrc)
        self.assertEqual(ts, (b_rx.ts + 160) & 0xFFFFFFFF)
        self.assertEqual((count, octets), (10, 1600), "what B was sent, not what A says")
        rb_ssrc, _, ext, jitter = struct.unpack("!IIII", pk[0][2][28:44])
        self.assertEqual(rb_ssrc, 0x2222, "the report on B's stream names B's SSRC")
        self.assertEqual(ext, (1 << 16) | 5009, "in B's own sequence numbers")
        self.assertEqual(jitter, 40)
        self.assertEqual(pk[1][2][4:8], struct.pack("!I", b_rx.ssrc))
        self.assertEqual(pk[1][2][8:13], b"\x01\x03a@x")

        # B: RR on A's stream + a generic NACK (RTPFB) naming it
        rr = struct.pack("!BBHI", 0x81, 201, 7, 0x2222) + struct.pack(
            "!IIIIII", b_rx.ssrc, 0, b_rx.seq, 0, 0, 0)
        fb = struct.pack("!BBHIIHH", 0x81, 205, 3, 0x2222, b_rx.ssrc, b_rx.seq, 0)
        self.b.rtcp_sock.sendto(rr + fb, (dest_b[0], dest_b[1] + 1))
        got = recv_rtcp(self.a)
        self.assertIsNotNone(got, "B's RTCP reached A")
        pk = rtcp_packets(got)
        self.assertEqual([(t, c) for t, c, _ in pk], [(201, 1), (205, 1)])
        sender, rb_ssrc, _, ext = struct.unpack("!IIII", pk[0][2][4:20])
        self.assertEqual((sender, rb_ssrc, ext), (a_rx.ssrc, 0x1111, 109))
        self.assertEqual(struct.unpack("!II", pk[1][2][4:12]), (a_rx.ssrc, 0x1111))

    def test_malformed_rtcp_is_dropped(self):
        dest_a, dest_b, _, _ = self.offer_answer("rm", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        self.a.send_tone(dest_a, seconds=0.1)
        self.b.send_tone(dest_b, seconds=0.1)
        bad = [
            struct.pack("!BBHI", 0x81, 201, 1, 0xA),            # RR: 1 block, no room
            struct.pack("!BBHI", 0x80, 201, 9, 0xA),            # length past the end
            struct.pack("!BBHIBB", 0x81, 202, 2, 0xA, 1, 200) + b"xx",  # SDES item past it
            struct.pack("!BBHI", 0x80, 201, 1, 0xA) + b"\x40" * 8,     # version 1 after
        ]
        for d in bad:
            self.a.rtcp_sock.sendto(d, (dest_a[0], dest_a[1] + 1))
        self.assertIsNone(recv_rtcp(self.b, 0.5))
        # 3000 mutations of a valid SR + SDES + BYE compound: whatever
        # crosses must be whole RTCP packets (the daemon runs under ASan)
        good = (struct.pack("!BBHIIIIIIIIIIII", 0x81, 200, 12, 0xA, 1, 2, 3, 4, 5,
                            0xB, 0, 7, 0, 0, 0)
                + struct.pack("!BBHIBB", 0x81, 202, 3, 0xA, 1, 3) + b"a@x\0\0\0"
                + struct.pack("!BBHI", 0x81, 203, 1, 0xA))
        rnd = random.Random(7)
        self.b.rtcp_sock.setblocking(False)
        crossed = 0
        for i in range(3000):
            d = bytearray(good)
            for _ in range(rnd.randint(1, 4)):
                d[rnd.randrange(len(d))] = rnd.randrange(256)
            d = bytes(d[:rnd.randint(4, len(d))]) if rnd.random() < 0.3 else bytes(d)
            self.a.rtcp_sock.sendto(d, (dest_a[0], dest_a[1] + 1))
            if i % 50 == 0:
                time.sleep(0.002)
            try:
                while True:
                    got = self.b.rtcp_sock.recv(2048)
                    crossed += 1
                    self.assertEqual(sum(4 * (n + 1) for n in
                                         [struct.unpack("!H", p[2][2:4])[0]
                                          for p in rtcp_packets(got)]), len(got), got.hex())
            except BlockingIOError:
                pass
        self.assertGreater(crossed, 0)
        while recv_rtcp(self.b, 0.2) is not None:
            pass
        self.a.rtcp_sock.sendto(struct.pack("!BBHI", 0x80, 201, 1, 0xA),
                                (dest_a[0], dest_a[1] + 1))
        self.assertIsNotNone(recv_rtcp(self.b), "a good RR still crosses")

    def test_garbage_on_media_ports(self):
        dest_a, dest_b, _, _ = self.offer_answer("gb", [(8, "PCMA", 8000)],
                                                 [(8, "PCMA", 8000)])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rnd = random.Random(7)
        for i in range(2000):
            n = rnd.randrange(0, 1500)
            data = bytes(rnd.getrandbits(8) for _ in range(n))
            s.sendto(data, dest_a if i % 2 else dest_b)
            s.sendto(data, (dest_a[0], dest_a[1] + 1))
        s.close()
        self.assertEqual(self.ng.ping()["result"], "pong")
        self.assertEqual(self.ng.query("gb")["result"], "ok")

    def test_delete_and_timeout(self):
        self.offer_answer("de", [(8, "PCMA", 8000)], [(8, "PCMA", 8000)])
        self.assertEqual(self.ng.delete("de", "tag-a")["result"], "ok")
        self.assertEqual(self.ng.list()["calls"], [])


def write_wav(path, freq, seconds, rate=8000):
    import wave
    import numpy as np
    pcm = mt.sine(freq, seconds, rate, -10.0).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def read_wav(path):
    import wave
    import numpy as np
    with wave.open(path, "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(float) / 32768


class PlayAndRecord(unittest.TestCase):
    def test_play_media_replaces_the_relay_and_the_stream_stays_continuous(self):
        with tempfile.TemporaryDirectory() as d, mediad() as ng, mt.RtpPeer() as a, \
                mt.RtpPeer() as b:
            wav = os.path.join(d, "prompt.wav")
            write_wav(wav, 600, 1.0)
            r = ng.offer("pm", "tag-a", a.sdp(), codec={"transcode": ["PCMU"]})
            dest_b = mt.sdp_audio_dest(r["sdp"])
            r = ng.answer("pm", "tag-a", "tag-b", b.sdp(payload_types=[(0, "PCMU", 8000)]))
            dest_a = mt.sdp_audio_dest(r["sdp"])
            r = ng.request({"command": "play media", "call-id": "pm", "from-tag": "nope",
                            "file": wav})
            self.assertEqual(r["result"], "error")
            r = ng.request({"command": "play media", "call-id": "pm", "from-tag": "tag-b",
                            "file": os.path.join(d, "missing.wav")})
            self.assertEqual(r["result"], "error")
            with b.capture() as cap:
                a.send_tone(dest_a, seconds=0.4)
                r = ng.request({"command": "play media", "call-id": "pm",
                                "from-tag": "tag-b", "file": wav})
                self.assertEqual(r["result"], "ok", r)
                self.assertEqual(r["duration"], 1000)
                a.send_tone(dest_a, seconds=1.2)       # not relayed while playing
                a.send_tone(dest_a, seconds=0.4)
                time.sleep(0.2)
            pkts = [p for p in cap.packets if p.rtp]
            self.assertTrue(all(p.rtp.pt == 0 for p in pkts))
            self.assertEqual(len({p.rtp.ssrc for p in pkts}), 1)
            seqs = [p.rtp.seq for p in pkts]
            self.assertTrue(all((x + 1) & 0xFFFF == y for x, y in zip(seqs, seqs[1:])))
            audio = mt.decode_audio(pkts, "PCMU")
            # the prompt (600 Hz) in the middle, the relayed 1 kHz around it
            self.assertTrue(mt.tone_detected(audio[8000 * 6 // 10: 8000 * 12 // 10], 8000, 600))
            self.assertTrue(mt.tone_detected(audio[-2400:], 8000, 1000))
            self.assertGreater(len(pkts), 95)

    def test_recording_writes_both_legs(self):
        with tempfile.TemporaryDirectory() as d, \
                mediad(extra=("--recording-dir", d)) as ng, mt.RtpPeer() as a, \
                mt.RtpPeer() as b:
            r = ng.offer("rec", "tag-a", a.sdp())
            dest_b = mt.sdp_audio_dest(r["sdp"])
            r = ng.answer("rec", "tag-a", "tag-b", b.sdp())
            dest_a = mt.sdp_audio_dest(r["sdp"])
            r = ng.request({"command": "start recording", "call-id": "rec"})
            self.assertEqual(r["result"], "ok", r)
            files = r["files"]
            self.assertEqual(len(files), 2)
            a.send_tone(dest_a, freq=1000, seconds=1.0)
            b.send_tone(dest_b, freq=500, seconds=1.0)
            time.sleep(0.1)
            self.assertEqual(ng.request({"command": "stop recording",
                                         "call-id": "rec"})["result"], "ok")
            offerer, answerer = sorted(files)[1], sorted(files)[0]
            pcm_a = read_wav([f for f in files if "offerer" in f][0])
            pcm_b = read_wav([f for f in files if "answerer" in f][0])
            self.assertGreater(len(pcm_a), 7000)
            self.assertTrue(mt.tone_detected(pcm_a, 8000, 1000))
            self.assertTrue(mt.tone_detected(pcm_b, 8000, 500))

    def test_recording_without_a_directory_is_an_error(self):
        with mediad() as ng, mt.RtpPeer() as a:
            ng.offer("nr", "t", a.sdp())
            r = ng.request({"command": "start recording", "call-id": "nr"})
            self.assertEqual(r["result"], "error")
            self.assertIn("recording-dir", r["error-reason"])


class Registry(unittest.TestCase):
    def test_calls_are_listed_in_redis_for_nginx(self):
        with tempfile.TemporaryDirectory() as d:
            sock = os.path.join(d, "redis.sock")
            redis = subprocess.Popen(["redis-server", "--port", "0", "--unixsocket", sock,
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def cli(*args):
                return subprocess.run(["redis-cli", "-s", sock, *args], capture_output=True,
                                      text=True, timeout=5).stdout.strip()
            try:
                for _ in range(50):
                    if cli("ping") == "PONG":
                        break
                    time.sleep(0.1)
                with mediad(extra=("--redis", "unix:" + sock, "--id", "md-test")) as ng, \
                        mt.RtpPeer() as a, mt.RtpPeer() as b:
                    ng.offer("rg", "tag-a", a.sdp())
                    self.assertEqual(cli("hlen", "codeb:media:md-test"), "0")
                    ng.answer("rg", "tag-a", "tag-b", b.sdp())
                    value = cli("hget", "codeb:media:md-test", "rg").split()
                    self.assertEqual(len(value), 3)          # created, 2 ports
                    self.assertIn("md-test", cli("smembers", "codeb:media:daemons"))
                    ttl = int(cli("ttl", "codeb:media:md-test"))
                    self.assertTrue(0 < ttl <= 180, ttl)
                    ng.delete("rg", "tag-a")
                    self.assertEqual(cli("hlen", "codeb:media:md-test"), "0")
                    # Redis going away: calls still work, nothing blocks
                    cli("shutdown", "nosave")
                    t0 = time.monotonic()
                    mt.expect_ok(ng.offer("rg2", "tag-a", a.sdp()))
                    mt.expect_ok(ng.answer("rg2", "tag-a", "tag-b", b.sdp()))
                    self.assertLess(time.monotonic() - t0, 1.0)
            finally:
                redis.terminate()
                redis.wait(5)


class Reload(unittest.TestCase):
    def test_sighup_rereads_the_config_and_a_bad_file_changes_nothing(self):
        with tempfile.TemporaryDirectory() as d, mt.RtpPeer() as a:
            conf = os.path.join(d, "mediad.conf")
            with open(conf, "w") as f:
                f.write("# codeb-mediad\ntimeout 60\n")
            with mediad(extra=("--config", conf)) as ng:
                with open(conf, "w") as f:
                    f.write("timeout 1\nport-min 77\n")        # invalid: nothing changes
                ng.proc.send_signal(signal.SIGHUP)
                time.sleep(0.3)
                mt.expect_ok(ng.offer("h1", "t", a.sdp()))
                time.sleep(2.5)
                self.assertEqual(ng.list()["calls"], ["h1"])
                with open(conf, "w") as f:
                    f.write("timeout 1   # seconds\nlog-level debug\n")
                ng.proc.send_signal(signal.SIGHUP)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline and ng.list()["calls"]:
                    time.sleep(0.2)
                self.assertEqual(ng.list()["calls"], [])
                with open(ng.log_path) as f:
                    log = f.read()
                self.assertIn("line 2: ports: 1024-65534; nothing changed", log)
                self.assertIn("reloaded (timeout 1 s", log)


class Shutdown(unittest.TestCase):
    def test_sigterm_drains_then_exits_0(self):
        # four media threads: the live call keeps relaying and new calls are
        # refused until it is deleted; then the threads are joined, exit 0
        with mediad(extra=("--threads", "4"), exits=True) as ng, \
                mt.RtpPeer() as a, mt.RtpPeer() as b:
            for k in range(8):                    # calls on every thread
                mt.expect_ok(ng.offer("d%d" % k, "a", a.sdp()))
            r = ng.answer("d0", "a", "b", b.sdp())
            mt.expect_ok(r)
            dest_a = mt.sdp_audio_dest(r["sdp"])
            for k in range(1, 8):
                mt.expect_ok(ng.delete("d%d" % k))
            ng.proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            r = ng.offer("late", "a", a.sdp())
            self.assertEqual(r["result"], "error", r)
            with b.capture() as cap:
                a.send_tone(dest_a, seconds=0.2)
                time.sleep(0.1)
            self.assertEqual(len([p for p in cap.packets if p.rtp]), 10)
            self.assertIsNone(ng.proc.poll(), "it waits for the call")
            mt.expect_ok(ng.delete("d0"))
            ng.proc.wait(5)
            self.assertEqual(ng.proc.returncode, 0)
            with open(ng.log_path) as f:
                log = f.read()
            self.assertIn("draining 1 calls", log)
            self.assertIn("stopped", log)

    def test_sigint_with_live_calls_exits_0_at_once(self):
        with mediad(extra=("--threads", "4"), exits=True) as ng, mt.RtpPeer() as a:
            for k in range(8):
                mt.expect_ok(ng.offer("i%d" % k, "a", a.sdp()))
            t0 = time.monotonic()
            ng.proc.send_signal(signal.SIGINT)
            ng.proc.wait(5)
            self.assertEqual(ng.proc.returncode, 0)
            self.assertLess(time.monotonic() - t0, 3.0)    # a drain waits 10 s


class Timeout(unittest.TestCase):
    def test_a_call_without_media_is_deleted(self):
        with mediad(timeout=2) as ng, mt.RtpPeer() as a:
            mt.expect_ok(ng.offer("to", "t", a.sdp()))
            self.assertEqual(ng.list()["calls"], ["to"])
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline and ng.list()["calls"]:
                time.sleep(0.2)
            self.assertEqual(ng.list()["calls"], [])


if __name__ == "__main__":
    unittest.main()
