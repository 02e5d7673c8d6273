#!/usr/bin/python3
"""Self-tests for mediatest.py (no daemon needed; loopback only).

    /usr/bin/python3 -m unittest tests/media/test_mediatest.py
"""

import os
import random
import select
import socket
import struct
import sys
import threading
import time
import unittest
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mediatest as mt  # noqa: E402
from mediatest import (NG, BencodeError, NGTimeout, RtpPeer, bdecode, bencode,  # noqa: E402
                       build_rtp, continuity, decode_audio, dtmf_events, goertzel, make_sdp,
                       parse_sdp, rtp_header, tone_detected, tone_ratio)

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # removed in Python 3.13; used only as an independent cross-check
except ImportError:  # pragma: no cover
    audioop = None


class TestBencode(unittest.TestCase):
    def test_round_trip(self):
        obj = {"command": "offer", "call-id": "abc", "n": -42, "zero": 0,
               "big": 2 ** 70, "list": [1, "two", [b"\x00\xff"], {}],
               "codec": {"transcode": ["PCMU", "opus"], "strip": []}, "empty": b""}
        enc = bencode(obj)
        dec = bdecode(enc)
        self.assertEqual(dec[b"command"], b"offer")
        self.assertEqual(dec[b"n"], -42)
        self.assertEqual(dec[b"big"], 2 ** 70)
        self.assertEqual(dec[b"list"], [1, b"two", [b"\x00\xff"], {}])
        self.assertEqual(dec[b"codec"], {b"transcode": [b"PCMU", b"opus"], b"strip": []})
        self.assertEqual(bencode(dec), enc)  # bytes keys/values re-encode identically
        self.assertEqual(mt._to_str(dec)["codec"]["transcode"], ["PCMU", "opus"])

    def test_exact_encoding(self):
        self.assertEqual(bencode({"b": 1, "a": "x"}), b"d1:a1:x1:bi1ee")
        self.assertEqual(bencode([]), b"le")
        self.assertEqual(bencode({}), b"de")
        self.assertEqual(bencode(-3), b"i-3e")
        self.assertEqual(bencode("é"), b"2:\xc3\xa9")
        # keys sort as bytes, not as str: "Z" (0x5a) < "a" (0x61) < "é" (0xc3)
        self.assertEqual(bencode({"é": 1, "a": 2, "Z": 3}), b"d1:Zi3e1:ai2e2:\xc3\xa9i1ee")
        self.assertEqual(bencode({"ICE": "force", "DTLS": "off"}), b"d4:DTLS3:off3:ICE5:forcee")

    def test_encode_type_errors(self):
        for bad in (True, 1.5, None, {1: 2}, object()):
            with self.assertRaises(TypeError, msg=repr(bad)):
                bencode(bad)
        with self.assertRaises(BencodeError):
            bencode({"a": 1, b"a": 2})

    def test_strict_decode_errors(self):
        bad = [b"", b"i03e", b"i-0e", b"ie", b"i-e", b"i1", b"i1.5e", b"i+1e", b"i 1e",
               b"03:abc", b"5:abc", b"3abc", b"-1:a", b"i1ei2e", b"1:ab", b"l", b"li1e",
               b"d", b"d1:a", b"d1:ae", b"di1ei2ee", b"dli1eei2ee", b"d1:ai1e1:ai2ee",
               b"x", b"e", b"d1:bi1e1:ai2ee", b"l" * 100 + b"e" * 100]
        for b in bad:
            with self.assertRaises(BencodeError, msg=repr(b)):
                bdecode(b)
        with self.assertRaises(TypeError):
            bdecode("de")

    def test_unsorted_allowed_when_asked(self):
        # rtpengine's replies are NOT key-sorted (e.g. "d3:sdp...6:result2:oke")
        data = b"d3:sdp3:v=06:result2:oke"
        with self.assertRaises(BencodeError):
            bdecode(data)
        self.assertEqual(bdecode(data, require_sorted=False), {b"sdp": b"v=0", b"result": b"ok"})
        with self.assertRaises(BencodeError):
            bdecode(b"d1:ai1e1:ai2ee", require_sorted=False)


class TestG711(unittest.TestCase):
    x = np.arange(-32768, 32768, dtype=np.int16)
    codes = np.arange(256, dtype=np.uint8)

    def test_reference_values(self):
        enc_a = {0: 0xD5, -1: 0x55, 8: 0xD5, 16: 0xD4, 32767: 0xAA, -32768: 0x2A, 1000: 0xFA}
        enc_u = {0: 0xFF, -1: 0x7E, 32767: 0x80, -32768: 0x00, 1000: 0xCE}
        for v, c in enc_a.items():
            self.assertEqual(int(mt.alaw_encode([v])[0]), c, "A-law(%d)" % v)
        for v, c in enc_u.items():
            self.assertEqual(int(mt.ulaw_encode([v])[0]), c, "mu-law(%d)" % v)
        self.assertEqual(mt.alaw_decode([0xD5, 0x55, 0xAA, 0x2A, 0x80]).tolist(),
                         [8, -8, 32256, -32256, 5504])
        self.assertEqual(mt.ulaw_decode([0xFF, 0x7F, 0x80, 0x00, 0xCE]).tolist(),
                         [0, 0, 32124, -32124, 988])

    @unittest.skipIf(audioop is None, "audioop not available")
    def test_matches_audioop_everywhere(self):
        a = mt.alaw_encode(self.x)
        u = mt.ulaw_encode(self.x)
        np.testing.assert_array_equal(a, np.frombuffer(audioop.lin2alaw(self.x.tobytes(), 2), np.uint8))
        np.testing.assert_array_equal(u, np.frombuffer(audioop.lin2ulaw(self.x.tobytes(), 2), np.uint8))
        c = self.codes.tobytes()
        np.testing.assert_array_equal(mt.alaw_decode(self.codes), np.frombuffer(audioop.alaw2lin(c, 2), np.int16))
        np.testing.assert_array_equal(mt.ulaw_decode(self.codes), np.frombuffer(audioop.ulaw2lin(c, 2), np.int16))

    def test_codes_are_fixed_points(self):
        np.testing.assert_array_equal(mt.alaw_encode(mt.alaw_decode(self.codes)), self.codes)
        back = mt.ulaw_encode(mt.ulaw_decode(self.codes))
        diff = np.nonzero(back != self.codes)[0].tolist()
        self.assertEqual(diff, [0x7F])  # mu-law "negative zero" decodes to 0 -> 0xFF
        self.assertEqual(int(back[0x7F]), 0xFF)

    def test_round_trip_error_bounds(self):
        xi = self.x.astype(np.int64)
        for enc, dec in ((mt.alaw_encode, mt.alaw_decode), (mt.ulaw_encode, mt.ulaw_decode)):
            y = dec(enc(self.x)).astype(np.int64)
            err = np.abs(y - xi)
            self.assertTrue(np.all(err <= 8 + np.abs(xi) / 32.0), enc.__name__)
            self.assertTrue(np.all(np.diff(y) >= 0), "monotonic " + enc.__name__)
            self.assertTrue(np.all(np.sign(y) * np.sign(xi) >= 0), "sign " + enc.__name__)

    def test_sine_snr(self):
        s = mt.sine(1000, 1.0)
        self.assertAlmostEqual(mt.level_dbfs(s / 32768.0), -10.0, delta=0.05)
        for enc, dec in ((mt.alaw_encode, mt.alaw_decode), (mt.ulaw_encode, mt.ulaw_decode)):
            y = dec(enc(s)).astype(float)
            snr = 10 * np.log10(np.sum(s.astype(float) ** 2) / np.sum((y - s) ** 2))
            self.assertGreater(snr, 33.0, enc.__name__)  # G.711 is ~38 dB for a loud sine


class FakeNG:
    """Minimal NG server on loopback: echoes a canned reply; can drop / misbehave."""

    def __init__(self, drop_first=0, stale_first=False):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = self.sock.getsockname()
        self.received = []
        self.drop_first = drop_first
        self.stale_first = stale_first
        self.stop = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        deadline = time.monotonic() + 20
        while not self.stop.is_set() and time.monotonic() < deadline:
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            data, peer = self.sock.recvfrom(65535)
            cookie, _, body = data.partition(b" ")
            msg = bdecode(body)
            self.received.append((cookie, msg))
            if len(self.received) <= self.drop_first:
                continue
            if self.stale_first and len(self.received) == 1:
                self.sock.sendto(b"stale d6:result5:errore", peer)
            cmd = msg[b"command"]
            if cmd == b"ping":
                reply = {"result": "pong"}
            elif cmd == b"offer":
                reply = {"sdp": msg[b"sdp"], "result": "ok", "bin": b"\xff\x00"}
            else:
                reply = {"result": "error", "error-reason": "Unknown call-id"}
            # unsorted keys, like rtpengine
            out = b"d" + b"".join(bencode(k) + bencode(v) for k, v in reply.items()) + b"e"
            self.sock.sendto(cookie + b" " + out, peer)

    def close(self):
        self.stop.set()
        self.t.join(2)
        self.sock.close()


class TestNGClient(unittest.TestCase):
    def test_ping_offer_and_flags(self):
        srv = FakeNG(stale_first=True)
        try:
            with NG(srv.addr) as ng:
                self.assertEqual(ng.ping(), {"result": "pong"})
                sdp = make_sdp("127.0.0.1", 4000)
                r = ng.offer("cid", "ft", sdp, ICE="remove", DTLS="off",
                             transport_protocol="RTP/AVP", rtcp_mux="demux",
                             codec={"transcode": "PCMU", "strip": ["all"]},
                             replace=["origin"], direction=["internal", "external"],
                             flags=["trust-address"], received_from=["IP4", "127.0.0.1"],
                             via_branch="z9hG4bK1", **{"record call": "no"})
                self.assertEqual(r["result"], "ok")
                self.assertIsInstance(r["sdp"], str)
                self.assertEqual(r["sdp"], sdp)
                self.assertEqual(r["bin"], b"\xff\x00")  # not UTF-8: stays bytes
                r = ng.query("nope")
                self.assertEqual(r, {"result": "error", "error-reason": "Unknown call-id"})
                with self.assertRaises(mt.NGError):
                    mt.expect_ok(r)
        finally:
            srv.close()
        cookies = [c for c, _ in srv.received]
        self.assertEqual(len(set(cookies)), len(cookies), "fresh cookie per request")
        offer = srv.received[1][1]
        self.assertEqual(offer[b"command"], b"offer")
        self.assertEqual(offer[b"call-id"], b"cid")
        self.assertEqual(offer[b"from-tag"], b"ft")
        self.assertEqual(offer[b"ICE"], b"remove")
        self.assertEqual(offer[b"DTLS"], b"off")
        self.assertEqual(offer[b"transport-protocol"], b"RTP/AVP")
        self.assertEqual(offer[b"rtcp-mux"], [b"demux"])
        self.assertEqual(offer[b"codec"], {b"strip": [b"all"], b"transcode": [b"PCMU"]})
        self.assertEqual(offer[b"replace"], [b"origin"])
        self.assertEqual(offer[b"direction"], [b"internal", b"external"])
        self.assertEqual(offer[b"flags"], [b"trust-address"])
        self.assertEqual(offer[b"received-from"], [b"IP4", b"127.0.0.1"])
        self.assertEqual(offer[b"via-branch"], b"z9hG4bK1")
        self.assertEqual(offer[b"record call"], b"no")

    def test_retry_reuses_cookie(self):
        srv = FakeNG(drop_first=1)
        try:
            with NG(srv.addr, timeout=0.3, retries=2) as ng:
                self.assertEqual(ng.ping()["result"], "pong")
        finally:
            srv.close()
        self.assertEqual(len(srv.received), 2)
        self.assertEqual(srv.received[0][0], srv.received[1][0])

    def test_timeout_is_bounded(self):
        silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        silent.bind(("127.0.0.1", 0))
        try:
            with NG(silent.getsockname(), timeout=0.2, retries=1) as ng:
                t0 = time.monotonic()
                with self.assertRaises(NGTimeout):
                    ng.ping()
                self.assertLess(time.monotonic() - t0, 1.5)
        finally:
            silent.close()

    def test_nobody_listening(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        addr = s.getsockname()
        s.close()
        with NG(addr, timeout=0.2, retries=1) as ng:
            with self.assertRaises(NGTimeout):
                ng.ping()
            self.assertFalse(ng.wait_ready(seconds=0.5))


WEBRTC_SDP = """v=0\r
o=- 1374846429 1374846429 IN IP4 127.0.0.1\r
s=-\r
c=IN IP4 127.0.0.1\r
t=0 0\r
a=sendonly\r
m=audio 23404 UDP/TLS/RTP/SAVPF 111 8 101\r
c=IN IP4 10.0.0.5\r
a=rtpmap:111 opus/48000/2\r
a=fmtp:111 minptime=10;useinbandfec=1\r
a=rtpmap:8 PCMA/8000\r
a=rtpmap:101 telephone-event/8000\r
a=fmtp:101 0-16\r
a=rtcp:23405\r
a=rtcp-mux\r
a=setup:actpass\r
a=fingerprint:sha-256 7D:9C:28:1E:50:35:4A:77\r
a=ptime:20\r
a=ice-ufrag:JS4D2CKW\r
a=ice-pwd:0gavqIZr5WHW1aLvx9RIhj9WjK\r
a=candidate:ouFA2xo7QqoLp2j3 1 UDP 2130706431 127.0.0.1 23404 typ host\r
a=candidate:ouFA2xo7QqoLp2j3 2 UDP 2130706430 127.0.0.1 23405 typ host\r
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r
a=inactive\r
"""


class TestSDP(unittest.TestCase):
    def test_make_and_parse(self):
        sdp = make_sdp("127.0.0.1", 40000, payload_types=[(8, "PCMA", 8000), (0, "PCMU", 8000)],
                       telephone_event=101, direction="recvonly")
        self.assertTrue(sdp.endswith("\r\n"))
        self.assertNotIn("\n\n", sdp.replace("\r\n", "\n"))
        p = parse_sdp(sdp)
        self.assertEqual(p["connection"], "127.0.0.1")
        m = p["media"][0]
        self.assertEqual((m["media"], m["port"], m["proto"]), ("audio", 40000, "RTP/AVP"))
        self.assertEqual(m["payloads"], [8, 0, 101])
        self.assertEqual(m["rtpmap"], {8: ("PCMA", 8000), 0: ("PCMU", 8000),
                                       101: ("telephone-event", 8000)})
        self.assertEqual(m["fmtp"], {101: "0-16"})
        self.assertEqual(m["direction"], "recvonly")
        self.assertIsNone(m["connection"])
        self.assertEqual(m["address"], "127.0.0.1")
        self.assertFalse(m["rtcp_mux"])
        self.assertEqual(m["ptime"], 20)
        self.assertIn("ptime:20", m["attributes"])
        self.assertEqual(mt.sdp_audio_dest(sdp), ("127.0.0.1", 40000))
        self.assertNotIn("telephone-event", make_sdp("127.0.0.1", 1, telephone_event=None))

    def test_parse_webrtc(self):
        p = parse_sdp(WEBRTC_SDP)
        self.assertEqual(len(p["media"]), 2)
        m = p["media"][0]
        self.assertEqual(m["proto"], "UDP/TLS/RTP/SAVPF")
        self.assertEqual(m["connection"], "10.0.0.5")
        self.assertEqual(m["address"], "10.0.0.5")
        self.assertEqual(m["rtpmap"][111], ("opus", 48000))
        self.assertEqual(m["rtpmap_channels"], {111: 2})
        self.assertEqual(m["fmtp"][111], "minptime=10;useinbandfec=1")
        self.assertEqual(m["ice_ufrag"], "JS4D2CKW")
        self.assertEqual(m["ice_pwd"], "0gavqIZr5WHW1aLvx9RIhj9WjK")
        self.assertEqual(len(m["candidates"]), 2)
        c = m["candidates"][0]
        self.assertEqual((c["component"], c["transport"], c["address"], c["port"], c["type"]),
                         (1, "UDP", "127.0.0.1", 23404, "host"))
        self.assertEqual(m["fingerprint"], "sha-256 7D:9C:28:1E:50:35:4A:77")
        self.assertEqual(m["setup"], "actpass")
        self.assertTrue(m["rtcp_mux"])
        self.assertEqual(m["rtcp"], "23405")
        self.assertEqual(m["direction"], "sendonly")  # inherited from session level
        dc = p["media"][1]
        self.assertEqual(dc["payloads"], ["webrtc-datachannel"])
        self.assertEqual(dc["direction"], "inactive")
        self.assertEqual(mt.sdp_audio_dest(p), ("10.0.0.5", 23404))

    def test_bad_sdp(self):
        with self.assertRaises(ValueError):
            parse_sdp("v=0\r\nthis is not sdp\r\n")


def _pkts(n, pt=8, seq0=65530, ts0=2 ** 32 - 320, ssrc=0x1234, spp=160, payload=None):
    out = []
    for i in range(n):
        out.append(build_rtp(pt, seq0 + i, ts0 + i * spp, ssrc,
                             payload if payload is not None else bytes(spp), marker=(i == 0)))
    return out


class TestRtpParsing(unittest.TestCase):
    def test_header_with_csrc_ext_padding(self):
        hdr = struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 2, 0x80 | 101, 513, 0xDEADBEEF, 0x01020304)
        csrcs = struct.pack("!II", 11, 22)
        ext = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
        payload = b"\x01\x02\x03"
        pad = b"\x00\x00\x03"
        h = rtp_header(hdr + csrcs + ext + payload + pad)
        self.assertEqual((h.version, h.padding, h.extension, h.cc, h.marker, h.pt, h.seq, h.ts, h.ssrc),
                         (2, True, True, 2, True, 101, 513, 0xDEADBEEF, 0x01020304))
        self.assertEqual(h.csrcs, [11, 22])
        self.assertEqual(h.ext_profile, 0xBEDE)
        self.assertEqual(h.ext_data, b"\x10\xaa\x00\x00")
        self.assertEqual(h.payload, payload)

    def test_header_errors(self):
        good = build_rtp(8, 1, 2, 3, b"x")
        for bad in (good[:11], b"\x40" + good[1:], bytes([0x82]) + good[1:],
                    bytes([0x90]) + good[1:], bytes([0xA0]) + good[1:12] + b"\x00",
                    bytes([0xA0]) + good[1:12] + b"\x05"):
            with self.assertRaises(ValueError, msg=bad.hex()):
                rtp_header(bad)
        self.assertTrue(mt.is_rtcp(bytes([0x80, 200]) + bytes(6)))
        self.assertFalse(mt.is_rtcp(good))
        self.assertIsNone(mt.Packet(bytes([0x80, 201]) + bytes(6), ("x", 1), 0).rtp)

    def test_continuity_ok_with_wraps(self):
        rep = continuity(_pkts(20))
        self.assertTrue(rep.ok, str(rep))
        self.assertEqual(rep.count, 20)
        self.assertEqual(rep.ssrc_changes, [])
        rep.assert_ok()
        self.assertTrue(continuity(_pkts(10, spp=960), samples_per_packet=960).ok)
        self.assertFalse(continuity(_pkts(10, spp=960)).ok)
        self.assertFalse(continuity([]).ok)

    def test_continuity_catches_gap(self):
        p = _pkts(20)
        del p[7]
        rep = continuity(p)
        self.assertFalse(rep.ok)
        self.assertEqual(len(rep.seq_errors), 1)
        self.assertEqual(rep.ts_errors, [])  # the ts jump is explained by the seq gap
        with self.assertRaises(AssertionError):
            rep.assert_ok()

    def test_continuity_catches_reorder_dup_ts_and_ssrc(self):
        p = _pkts(10)
        p[3], p[4] = p[4], p[3]
        self.assertFalse(continuity(p).ok)
        p = _pkts(10)
        p.insert(5, p[4])
        self.assertFalse(continuity(p).ok)
        p = _pkts(5) + [build_rtp(8, 65535, 0, 0x1234, bytes(160))]  # seq ok, ts wrong
        rep = continuity(p)
        self.assertEqual(len(rep.ts_errors), 1)
        self.assertEqual(rep.seq_errors, [])
        p = _pkts(5) + _pkts(5, seq0=100, ts0=5, ssrc=0x9999)
        rep = continuity(p)
        self.assertTrue(rep.ok)
        self.assertEqual(rep.ssrc_changes, [(5, 0x1234, 0x9999)])
        self.assertEqual(rep.ssrcs, [0x1234, 0x9999])
        with self.assertRaises(AssertionError):
            rep.assert_ok()
        rep.assert_ok(allow_ssrc_change=True)

    def test_decode_audio_orders_by_seq_across_wrap(self):
        s = mt.sine(1000, 0.2)  # 10 packets
        codes = mt.alaw_encode(s).tobytes()
        pkts = [build_rtp(8, 65530 + i, i * 160, 7, codes[i * 160:(i + 1) * 160]) for i in range(10)]
        shuffled = pkts[:]
        random.Random(1).shuffle(shuffled)
        shuffled.append(pkts[3])  # duplicate
        shuffled.append(build_rtp(101, 1, 1, 7, b"\x01\x00\x00\xa0"))  # other PT ignored
        out = decode_audio(shuffled, "PCMA")
        ref = mt.alaw_decode(mt.alaw_encode(s)).astype(np.float32) / 32768
        np.testing.assert_array_equal(out, ref)
        # a missing packet becomes silence of the same length
        out = decode_audio(pkts[:4] + pkts[5:], "PCMA")
        self.assertEqual(len(out), 1600)
        self.assertTrue(np.all(out[640:800] == 0))
        self.assertEqual(len(decode_audio(pkts[:4] + pkts[5:], "PCMA", fill_gaps=False)), 1440)


class TestToneDetection(unittest.TestCase):
    rate = 8000

    def test_goertzel_scale(self):
        s = mt.sine(1000, 1.0).astype(float)
        p = goertzel(s, self.rate, 1000)
        self.assertAlmostEqual(p / np.mean(s ** 2), 1.0, places=3)
        self.assertLess(goertzel(s, self.rate, 1500) / p, 1e-6)
        self.assertEqual(goertzel([], self.rate, 1000), 0.0)

    def test_detects_tone_not_others(self):
        x = mt.sine(1000, 1.0) / 32768.0
        self.assertTrue(tone_detected(x, self.rate, 1000))
        self.assertFalse(tone_detected(x, self.rate, 1500))
        self.assertFalse(tone_detected(x, self.rate, 800))
        noise = np.random.default_rng(1).normal(0, 0.1, 8000)
        self.assertFalse(tone_detected(noise, self.rate, 1000))
        self.assertFalse(tone_detected(np.zeros(8000), self.rate, 1000))
        self.assertFalse(tone_detected(x * 1e-4, self.rate, 1000))  # -90 dBFS: too quiet
        mix = x + mt.sine(2500, 1.0) / 32768.0
        self.assertAlmostEqual(tone_ratio(mix, self.rate, 1000), 0.5, delta=0.02)
        self.assertTrue(tone_detected(x + noise * 0.3, self.rate, 1000))

    def test_robust_to_loss_and_leading_silence(self):
        s = mt.sine(1000, 1.0)
        codes = mt.alaw_encode(s).tobytes()
        silence = mt.alaw_encode(np.zeros(160, np.int16)).tobytes()
        pkts = [build_rtp(8, i, i * 160, 5, silence) for i in range(15)]  # 300 ms silence
        pkts += [build_rtp(8, 15 + i, (15 + i) * 160, 5, codes[i * 160:(i + 1) * 160])
                 for i in range(50)]
        for lost in (20, 33, 34, 50):
            pkts[lost] = None
        x = decode_audio([p for p in pkts if p is not None], "PCMA")
        self.assertEqual(len(x), 65 * 160)
        self.assertGreater(tone_ratio(x, self.rate, 1000), 0.8)
        self.assertTrue(tone_detected(x, self.rate, 1000))
        self.assertFalse(tone_detected(x, self.rate, 2000))


class TestRtpPeers(unittest.TestCase):
    def test_peer_binds_rtp_rtcp_pair(self):
        with RtpPeer() as p:
            self.assertEqual(p.port % 2, 0)
            self.assertEqual(p.rtcp_sock.getsockname()[1], p.port + 1)
            self.assertEqual(p.addr, ("127.0.0.1", p.port))
        with RtpPeer(rtcp=False) as p:
            self.assertIsNone(p.rtcp_sock)

    def test_tone_over_loopback(self):
        with RtpPeer() as a, RtpPeer() as b:
            t0 = time.monotonic()
            with b.capture(5) as cap:
                n = a.send_tone(b.addr, codec="PCMA", freq=1000, seconds=1.0, ssrc=0xABCD,
                                start_seq=65500, start_ts=2 ** 32 - 800)
                end = time.monotonic() + 1.0
                while len(cap.packets) < n and time.monotonic() < end:
                    time.sleep(0.01)
            elapsed = time.monotonic() - t0
            self.assertEqual(n, 50)
            self.assertGreater(elapsed, 0.95)  # paced in real time (49 * 20 ms)
            self.assertEqual(len(cap.packets), 50)
            self.assertTrue(all(p.addr == a.addr for p in cap.packets))
            arrivals = [p.time for p in cap.packets]
            self.assertGreater(arrivals[-1] - arrivals[0], 0.9)
            hs = [p.rtp for p in cap.packets]
            self.assertEqual([h.marker for h in hs], [True] + [False] * 49)
            self.assertEqual({h.pt for h in hs}, {8})
            self.assertEqual({h.ssrc for h in hs}, {0xABCD})
            self.assertEqual(hs[0].seq, 65500)
            self.assertEqual(len(hs[0].payload), 160)
            continuity(cap.packets).assert_ok()
            x = decode_audio(cap.packets, "PCMA")
            self.assertEqual(len(x), 8000)
            self.assertTrue(tone_detected(x, 8000, 1000))
            self.assertFalse(tone_detected(x, 8000, 1200))
            self.assertAlmostEqual(mt.level_dbfs(x), -10.0, delta=0.3)
            # stream state continues
            self.assertEqual(a.seq, (65500 + 50) & 0xFFFF)
            self.assertEqual(a.ts, (2 ** 32 - 800 + 50 * 160) & 0xFFFFFFFF)

    def test_pcmu_unpaced_and_receive(self):
        with RtpPeer() as a, RtpPeer() as b:
            a.send_tone(b.addr, codec="PCMU", freq=440, seconds=0.4, pace=False)
            got = b.receive(2.0, max_packets=20)
            self.assertEqual(len(got), 20)
            self.assertEqual({p.rtp.pt for p in got}, {0})
            x = decode_audio(got, "PCMU")
            self.assertTrue(tone_detected(x, 8000, 440))
            t0 = time.monotonic()
            self.assertEqual(b.receive(0.2), [])  # bounded when nothing arrives
            self.assertLess(time.monotonic() - t0, 0.5)

    def test_dtmf_round_trip(self):
        with RtpPeer() as a, RtpPeer() as b:
            a.ts = 1000
            with b.capture(5) as cap:
                n1 = a.send_dtmf(b.addr, 101, "7", duration_ms=100)
                n2 = a.send_dtmf(b.addr, 101, "#", duration_ms=60, volume=20)
                end = time.monotonic() + 1.0
                while len(cap.packets) < n1 + n2 and time.monotonic() < end:
                    time.sleep(0.01)
            self.assertEqual(len(cap.packets), n1 + n2)
            hs = [p.rtp for p in cap.packets]
            first = hs[:n1]
            self.assertEqual(n1, 4 + 3)  # durations 160,320,480,640 then 3 x end(800)
            self.assertTrue(first[0].marker)
            self.assertFalse(any(h.marker for h in first[1:]))
            self.assertEqual({h.ts for h in first}, {1000})
            self.assertEqual({h.pt for h in hs}, {101})
            evs = [struct.unpack("!BBH", h.payload) for h in first]
            self.assertEqual([e[0] for e in evs], [7] * 7)
            self.assertEqual([e[2] for e in evs], [160, 320, 480, 640, 800, 800, 800])
            self.assertEqual([bool(e[1] & 0x80) for e in evs], [False] * 4 + [True] * 3)
            self.assertEqual({e[1] & 0x3F for e in evs}, {10})
            rep = continuity(cap.packets)
            self.assertEqual(rep.seq_errors, [])
            self.assertTrue(rep.ts_errors)  # events repeat their timestamp...
            continuity(cap.packets, dtmf_pt=101).assert_ok()  # ...which dtmf_pt tolerates
            self.assertEqual([h.seq for h in hs], [(hs[0].seq + i) & 0xFFFF for i in range(len(hs))])
            events = dtmf_events(cap.packets, 101)
            self.assertEqual(events, [("7", 1000, 800), ("#", 1800, 480)])
            self.assertEqual(mt.dtmf_ended(cap.packets, 101), {(1000, "7"), (1800, "#")})
            self.assertEqual(a.ts, 1000 + 800 + 480)
        with RtpPeer() as a, self.assertRaises(ValueError):
            a.send_dtmf(("127.0.0.1", 9), digit="X")


class TestMisc(unittest.TestCase):
    def test_reply_shape(self):
        r = {"result": "ok", "calls": ["a", "b"], "n": 1, "d": {"x": []}}
        self.assertEqual(mt.reply_shape(r),
                         {"result": "str", "calls": ["str"], "n": "int", "d": {"x": []}})

    def test_run_parallel(self):
        self.assertEqual(mt.run_parallel(lambda: 1, lambda: 2), [1, 2])
        with self.assertRaises(ZeroDivisionError):
            mt.run_parallel(lambda: 1 / 0)


if __name__ == "__main__":
    unittest.main()
