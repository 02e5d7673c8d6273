#!/usr/bin/python3
"""Reference tests: the mediatest tooling against a real rtpengine (Debian rtpengine-daemon
10.5.3.5, userspace only), i.e. the behaviour codeb-mediad must reproduce.

    /usr/bin/python3 -m unittest tests/media/test_rtpengine_ref.py
    MEDIATEST_NG_ADDR=127.0.0.1:2223 /usr/bin/python3 -m unittest tests/media/test_rtpengine_ref.py
        (run the same tests against an already running daemon, e.g. codeb-mediad;
         MEDIATEST_NO_TRANSCODE=1 skips the transcoding test)
    /usr/bin/python3 tests/media/test_rtpengine_ref.py --dump-shapes
        (start rtpengine, print the reply shapes below again)

rtpengine is started by run_rtpengine.rtpengine() as:
    rtpengine --config-file=none --foreground --log-stderr --log-level=6 --table=-1
      --interface=127.0.0.1 --listen-ng=127.0.0.1:<port> --port-min=<a> --port-max=<a+199>
      --pidfile=<tmp>/rtpengine.pid --num-threads=1 --delete-delay=0
(--no-fallback must NOT be given: it means "refuse to start without the kernel module".
 --delete-delay=0 makes delete immediate; with the default of 30 s a deleted call still
 answers query and still appears in list for 30 s.)

=== Observed NG replies of rtpengine 10.5.3.5 (bencoded; keys are NOT sorted -- they come in
=== the insertion order shown; all numbers are bencode ints, everything else byte strings)

ping                 -> {"result": "pong"}                        raw: d6:result4:ponge

offer / answer       -> {"sdp": str, "result": "ok"}              raw: d3:sdp<n>:...6:result2:oke
  offer of make_sdp("127.0.0.1", P) (PCMA + telephone-event 101) returns:
    v=0
    o=- 1939962098 1939962098 IN IP4 127.0.0.1        <- o= line kept from the input
    s=-
    c=IN IP4 127.0.0.1                                <- rtpengine's interface address
    t=0 0
    m=audio 25008 RTP/AVP 8 101                       <- rtpengine's port (from --port-min..max)
    a=rtpmap:8 PCMA/8000
    a=rtpmap:101 telephone-event/8000
    a=fmtp:101 0-16
    a=sendrecv
    a=rtcp:25009                                      <- added: RTP port + 1
    a=ptime:20                                        <- moved after a=rtcp
  (CRLF line ends.)  RTP ports are even, RTCP is port+1; offer and answer side each get
  their own pair.  With codec={"transcode": ["PCMU"]} the offer m= line becomes
  "RTP/AVP 8 0 101" plus "a=rtpmap:0 PCMU/8000"; the answer (peer answered PCMU only) goes
  back to the offerer as "RTP/AVP 8 101" (PCMA) and rtpengine transcodes.
  With ICE=force, DTLS=passive, transport-protocol=UDP/TLS/RTP/SAVPF, rtcp-mux=[offer]:
  m=audio P UDP/TLS/RTP/SAVPF 8 101, a=rtcp:P+1, a=rtcp-mux, a=crypto:1..12 (SDES, all
  suites), a=setup:actpass, a=fingerprint:sha-256 XX:.., a=ptime:20, a=ice-ufrag:8 chars,
  a=ice-pwd:26 chars, a=candidate:<16-char foundation> 1 UDP 2130706431 127.0.0.1 P typ host,
  a=candidate:... 2 UDP 2130706430 127.0.0.1 P+1 typ host.

query (known call)   -> keys in this order:
  {"created": int (unix s), "created_us": int, "last signal": int (unix s),
   "SSRC": {} (dict; empty for these calls),
   "tags": {<tag>: {"tag": str, "created": int,
                    "subscriptions": [{"tag": str, "type": "offer/answer"}],
                    "subscribers":   [{"tag": str, "type": "offer/answer"}],
                    "medias": [{"index": 1, "type": "audio", "protocol": "RTP/AVP",
                                "codec": "PCMA/8000" (absent before answer),
                                "streams": [{"local port": int, "local address": str,
                                             "family": "IPv4",
                                             "endpoint": {"family": str, "address": str, "port": int} or {},
                                             "advertised endpoint": {same} or {},
                                             "crypto suite": str (SRTP only),
                                             "last packet": int (unix s),
                                             "flags": ["RTP", "filled"] / ["RTCP", "filled"],
                                             "SSRC": int (only once RTP was received),
                                             "stats": {"packets": int, "bytes": int, "errors": int}},
                                            {... the RTCP stream, port+1 ...}],
                                "flags": ["initialized", "send", "recv"(, "transcoding")
                                          (, "ICE controlling") ...]}]},
            <other tag>: {...}},
            (a one-sided (offer-only) call has the answer side as "<untagged 1>" with "tag": "")
   "totals": {"RTP": {"packets": int, "bytes": int, "errors": int},
              "RTCP": {"packets": int, "bytes": int, "errors": int}},
   "result": "ok"}
  The stream listed under tag X is the one facing X's endpoint: "local port" is the port
  advertised to X, "endpoint" is X's address; its stats count packets received from X.
query (unknown call) -> {"result": "error", "error-reason": "Unknown call-id"}

list                 -> {"calls": [str, ...] (call-ids, in no particular order), "result": "ok"}
                        {"calls": [], "result": "ok"} when empty   raw: d5:callsle6:result2:oke

delete call-id + from-tag (known call) -> the same dict as query (final stats) incl. "result": "ok"
delete call-id only (no from-tag)      -> {"result": "ok"}
delete (unknown call)  -> {"result": "ok", "warning": "Call-ID not found or tags didn't match"}
                          (raw order: d6:result2:ok7:warning38:Call-ID not found or tags didn't matche)

errors               -> {"result": "error", "error-reason": str}, e.g.
  unknown command       "Unrecognized command"
  offer without sdp     "No SDP body in message"
  answer, unknown call  "Unknown call-id"
  no "command" key      'Dictionary contains no key "command"'
  bencoded list, not a dict: "Invalid NG data format"
  a datagram without "<cookie> " is ignored (no reply)

Lenient points of rtpengine (the lead may choose to be stricter; docs/ng.md says
unknown requests are errors):
  * unknown keys and unknown "flags" entries in offer/answer are silently ignored (result ok)
  * a truncated dict ("d7:command4:ping", missing the final "e") is still answered (pong)
Retransmission: the same cookie sent again gets a byte-identical reply (reply cache).
Plain relay (no transcoding): SSRC, seq, ts, marker and payload are forwarded unchanged,
RFC 4733 packets included; packets come from the port advertised to the receiver (symmetric).
"""

import os
import random
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mediatest as mt  # noqa: E402
from mediatest import (NG, RtpPeer, continuity, decode_audio, dtmf_events, parse_sdp,  # noqa: E402
                       sdp_audio_dest, tone_detected)
from run_rtpengine import RTPENGINE, rtpengine, rtpengine_available  # noqa: E402

EXTERNAL = os.environ.get("MEDIATEST_NG_ADDR")
TONE_SECONDS = 1.0
NPKT = int(TONE_SECONDS * 50)


def rtpengine_transcodes(a="PCMA", b="PCMU"):
    try:
        out = subprocess.run([RTPENGINE, "--codecs"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    ok = {line.split(":")[0].strip() for line in out.splitlines() if "fully supported" in line}
    return a in ok and b in ok


def exchange(a, a_to, b, b_to, a_kw=None, b_kw=None, seconds=TONE_SECONDS):
    """Both peers send a paced tone at once; returns (packets at a, packets at b)."""
    a_kw = dict(a_kw or {})
    b_kw = dict(b_kw or {})
    with a.capture(seconds + 5) as ca, b.capture(seconds + 5) as cb:
        na, nb = mt.run_parallel(lambda: a.send_tone(a_to, seconds=seconds, **a_kw),
                                 lambda: b.send_tone(b_to, seconds=seconds, **b_kw))
        end = time.monotonic() + 1.5
        while (len(ca.packets) < nb or len(cb.packets) < na) and time.monotonic() < end:
            time.sleep(0.02)
    return ca.packets, cb.packets


class RefTest(unittest.TestCase):
    rt = None
    _ctx = None

    @classmethod
    def setUpClass(cls):
        if EXTERNAL:
            cls.ng = NG(EXTERNAL)
            if not cls.ng.wait_ready(5):
                raise unittest.SkipTest("no NG daemon answering at %s" % EXTERNAL)
            return
        if not rtpengine_available():
            raise unittest.SkipTest("rtpengine not installed (apt-get install rtpengine-daemon)")
        cls._ctx = rtpengine()
        cls.rt = cls._ctx.__enter__()
        cls.ng = cls.rt.ng

    @classmethod
    def tearDownClass(cls):
        if cls._ctx is not None:
            cls._ctx.__exit__(None, None, None)
        elif EXTERNAL:
            cls.ng.close()

    def log(self):
        return ("\n--- rtpengine log tail ---\n" + self.rt.log(tail=25)) if self.rt else ""

    def new_call(self):
        return "ref-%s-%08x" % (self._testMethodName, random.getrandbits(32))

    def peers(self):
        a, b = RtpPeer(), RtpPeer()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def check_relay_sdp(self, sdp, payloads):
        p = parse_sdp(sdp)
        audio = [m for m in p["media"] if m["media"] == "audio"]
        self.assertEqual(len(audio), 1, sdp)
        m = audio[0]
        self.assertEqual(m["address"], "127.0.0.1", sdp)
        self.assertEqual(m["proto"], "RTP/AVP", sdp)
        self.assertEqual(m["payloads"], payloads, sdp)
        self.assertEqual(m["port"] % 2, 0, sdp)
        if self.rt:
            self.assertTrue(self.rt.port_min <= m["port"] <= self.rt.port_max, sdp)
        return m

    def check_audio(self, packets, codec, pt, src, n_expected, freq=1000):
        self.assertGreaterEqual(len(packets), n_expected - 2, "too few packets" + self.log())
        self.assertTrue(all(p.addr == tuple(src) for p in packets),
                        "media must come from the advertised port %s: %s" % (src, {p.addr for p in packets}))
        self.assertEqual({p.rtp.pt for p in packets}, {pt})
        continuity(packets).assert_ok()
        x = decode_audio(packets, codec)
        self.assertTrue(tone_detected(x, 8000, freq), "no %d Hz tone (ratio %.3f)"
                        % (freq, mt.tone_ratio(x, 8000, freq)))
        self.assertFalse(tone_detected(x, 8000, freq * 1.5))
        self.assertAlmostEqual(mt.level_dbfs(x), -10.0, delta=1.5)
        return x

    # ------------------------------------------------------------------ tests
    def test_ping(self):
        self.assertEqual(self.ng.ping(), {"result": "pong"})

    def test_plain_pcma_call(self):
        a, b = self.peers()
        cid = self.new_call()
        off = self.ng.offer(cid, "from-a", a.sdp())
        self.assertEqual(off["result"], "ok", off)
        self.assertIsInstance(off["sdp"], str)
        self.check_relay_sdp(off["sdp"], [8, 101])
        ans = self.ng.answer(cid, "from-a", "to-b", b.sdp())
        self.assertEqual(ans["result"], "ok", ans)
        self.check_relay_sdp(ans["sdp"], [8, 101])
        b_to = sdp_audio_dest(off["sdp"])  # B sends here (offer SDP goes to B)
        a_to = sdp_audio_dest(ans["sdp"])  # A sends here
        self.assertNotEqual(a_to, b_to)

        at_a, at_b = exchange(a, a_to, b, b_to, {"ssrc": 0xA1A1A1A1, "start_seq": 65500},
                              {"ssrc": 0xB2B2B2B2, "freq": 1000})
        self.check_audio(at_b, "PCMA", 8, b_to, NPKT)
        self.check_audio(at_a, "PCMA", 8, a_to, NPKT)
        # plain relay: SSRC / seq / payload untouched
        self.assertEqual({p.rtp.ssrc for p in at_b}, {0xA1A1A1A1})
        self.assertEqual({p.rtp.ssrc for p in at_a}, {0xB2B2B2B2})
        self.assertEqual(at_b[0].rtp.seq, 65500)
        self.assertTrue(at_b[0].rtp.marker)
        ref = mt.alaw_encode(mt.sine(1000, TONE_SECONDS)).tobytes()
        self.assertEqual(b"".join(p.rtp.payload for p in at_b), ref[:160 * len(at_b)])

        q = self.ng.query(cid)
        self.assertEqual(q["result"], "ok", q)
        for k, t in (("created", int), ("created_us", int), ("last signal", int),
                     ("SSRC", dict), ("tags", dict), ("totals", dict)):
            self.assertIsInstance(q.get(k), t, k)
        self.assertEqual(set(q["tags"]), {"from-a", "to-b"})
        ta = q["tags"]["from-a"]
        self.assertEqual(ta["tag"], "from-a")
        self.assertEqual([s["tag"] for s in ta["subscribers"]], ["to-b"])
        med = ta["medias"][0]
        self.assertEqual((med["index"], med["type"], med["protocol"], med["codec"]),
                         (1, "audio", "RTP/AVP", "PCMA/8000"))
        rtp_stream = med["streams"][0]
        self.assertEqual(rtp_stream["local port"], a_to[1])       # faces A
        self.assertEqual(rtp_stream["endpoint"]["port"], a.port)
        self.assertIn("RTP", rtp_stream["flags"])
        self.assertEqual(rtp_stream["SSRC"], 0xA1A1A1A1)
        self.assertGreaterEqual(rtp_stream["stats"]["packets"], NPKT - 2)
        self.assertEqual(rtp_stream["stats"]["bytes"], rtp_stream["stats"]["packets"] * 172)
        self.assertEqual(med["streams"][1]["local port"], a_to[1] + 1)
        self.assertIn("RTCP", med["streams"][1]["flags"])
        self.assertGreaterEqual(q["totals"]["RTP"]["packets"], 2 * NPKT - 4)
        for k in ("packets", "bytes", "errors"):
            self.assertIsInstance(q["totals"]["RTCP"][k], int)

        self.assertIn(cid, self.ng.list()["calls"])
        d = self.ng.delete(cid, "from-a")
        self.assertEqual(d["result"], "ok", d)
        self.assertEqual(set(d["tags"]), {"from-a", "to-b"})   # final stats, query-shaped
        q = self.ng.query(cid)
        self.assertEqual(q, {"result": "error", "error-reason": "Unknown call-id"})
        self.assertNotIn(cid, self.ng.list()["calls"])

    def test_transcode_pcma_pcmu(self):
        if EXTERNAL and os.environ.get("MEDIATEST_NO_TRANSCODE"):
            self.skipTest("MEDIATEST_NO_TRANSCODE set")
        if not EXTERNAL and not rtpengine_transcodes():
            self.skipTest("this rtpengine build cannot transcode PCMA<->PCMU")
        a, b = self.peers()
        cid = self.new_call()
        off = self.ng.offer(cid, "from-a", a.sdp(), codec={"transcode": ["PCMU"]})
        self.assertEqual(off["result"], "ok", off)
        mo = self.check_relay_sdp(off["sdp"], [8, 0, 101])
        self.assertEqual(mo["rtpmap"][0], ("PCMU", 8000))
        ans = self.ng.answer(cid, "from-a", "to-b", b.sdp(payload_types=[(0, "PCMU", 8000)]))
        self.assertEqual(ans["result"], "ok", ans)
        self.check_relay_sdp(ans["sdp"], [8, 101])
        b_to = sdp_audio_dest(off["sdp"])
        a_to = sdp_audio_dest(ans["sdp"])

        at_a, at_b = exchange(a, a_to, b, b_to, {"codec": "PCMA"}, {"codec": "PCMU"})
        self.check_audio(at_b, "PCMU", 0, b_to, NPKT)   # A's PCMA arrives at B as PCMU
        self.check_audio(at_a, "PCMA", 8, a_to, NPKT)   # B's PCMU arrives at A as PCMA

        q = self.ng.query(cid)
        self.assertEqual(q["tags"]["from-a"]["medias"][0]["codec"], "PCMA/8000")
        self.assertEqual(q["tags"]["to-b"]["medias"][0]["codec"], "PCMU/8000")
        self.assertIn("transcoding", q["tags"]["from-a"]["medias"][0]["flags"])
        self.assertEqual(self.ng.delete(cid, "from-a")["result"], "ok")

    def test_dtmf_passthrough(self):
        a, b = self.peers()
        cid = self.new_call()
        self.assertEqual(self.ng.offer(cid, "from-a", a.sdp())["result"], "ok")
        a_to = sdp_audio_dest(self.ng.answer(cid, "from-a", "to-b", b.sdp())["sdp"])
        a.ts = 16000
        with b.capture(5) as cb:
            a.send_tone(a_to, seconds=0.2)
            n = a.send_dtmf(a_to, 101, "5", duration_ms=100)
            a.send_tone(a_to, seconds=0.2, marker_first=False)
            end = time.monotonic() + 1.0
            while len(cb.packets) < 20 + n and time.monotonic() < end:
                time.sleep(0.02)
        self.assertEqual(dtmf_events(cb.packets, 101), [("5", 16000 + 1600, 800)])
        self.assertIn((16000 + 1600, "5"), mt.dtmf_ended(cb.packets, 101))
        continuity(cb.packets, dtmf_pt=101).assert_ok()
        self.assertTrue(tone_detected(decode_audio(cb.packets, "PCMA"), 8000, 1000))
        self.ng.delete(cid, "from-a")

    def test_dtmf_with_payload_types_that_differ(self):
        # The answerer picks its own number for telephone-event (RFC 3264
        # §6.1 allows it: A 101, B 96).  rtpengine 10.5 forwards payload
        # types as they come, so each side gets events on a number it never
        # declared and neither side's events arrive as events.  codeb-mediad
        # sends each side its own numbers (test_mediad.py
        # Relay.test_events_keep_each_sides_payload_type): what this shows
        # is the behaviour it improves on, not one to reproduce.
        if EXTERNAL:
            self.skipTest("documents rtpengine itself")
        a, b = self.peers()
        cid = self.new_call()
        b_to = sdp_audio_dest(self.ng.offer(cid, "from-a", a.sdp(telephone_event=101))["sdp"])
        a_to = sdp_audio_dest(self.ng.answer(cid, "from-a", "to-b",
                                             b.sdp(telephone_event=96))["sdp"])
        for src, dst, to, pt_in, digit in ((a, b, a_to, 101, "5"), (b, a, b_to, 96, "7")):
            with dst.capture(5) as cap:
                src.send_dtmf(to, pt_in, digit, duration_ms=100)
                time.sleep(0.3)
            self.assertEqual({p.rtp.pt for p in cap.packets if p.rtp}, {pt_in},
                             "rtpengine no longer passes payload types through?" + self.log())
        self.ng.delete(cid, "from-a")

    def test_list(self):
        a, b = self.peers()
        c1, c2 = self.new_call() + "-1", self.new_call() + "-2"
        self.ng.offer(c1, "x", a.sdp())
        self.ng.offer(c2, "y", b.sdp())
        r = self.ng.list()
        self.assertEqual(r["result"], "ok")
        self.assertIsInstance(r["calls"], list)
        self.assertTrue({c1, c2} <= set(r["calls"]), r)
        self.assertTrue(all(isinstance(c, str) for c in r["calls"]))
        self.assertEqual(self.ng.delete(c1), {"result": "ok"})  # no from-tag: bare ok
        self.assertEqual(self.ng.delete(c2, "y")["result"], "ok")
        r = self.ng.list()
        self.assertFalse({c1, c2} & set(r["calls"]), r)

    def test_errors(self):
        self.assertEqual(self.ng.query("no-such-call"),
                         {"result": "error", "error-reason": "Unknown call-id"})
        self.assertEqual(self.ng.delete("no-such-call", "x"),
                         {"result": "ok", "warning": "Call-ID not found or tags didn't match"})
        r = self.ng.request({"command": "frobnicate"})
        self.assertEqual(r["result"], "error")
        self.assertIsInstance(r["error-reason"], str)
        r = self.ng.request({"command": "offer", "call-id": "x", "from-tag": "y"})
        self.assertEqual(r["result"], "error")
        self.assertIsInstance(r["error-reason"], str)
        r = self.ng.answer("no-such-call", "f", "t", mt.make_sdp("127.0.0.1", 9000))
        self.assertEqual(r["result"], "error")
        if not EXTERNAL:  # rtpengine's exact wording
            self.assertEqual(self.ng.request({"command": "frobnicate"})["error-reason"],
                             "Unrecognized command")


def dump_shapes():
    import json
    with rtpengine() as rt:
        ng = rt.ng
        a, b = RtpPeer(), RtpPeer()
        show = lambda name, r: print("== %s\n%s" % (name, json.dumps(  # noqa: E731
            dict(r, sdp=r["sdp"]) if "sdp" in r else mt.reply_shape(r), indent=1)))
        print(" ".join(rt.argv))
        show("ping", ng.ping())
        off = ng.offer("shape", "from-a", a.sdp())
        show("offer", off)
        print(off["sdp"])
        ans = ng.answer("shape", "from-a", "to-b", b.sdp())
        print(ans["sdp"])
        exchange(a, sdp_audio_dest(ans["sdp"]), b, sdp_audio_dest(off["sdp"]), seconds=0.2)
        show("query", ng.query("shape"))
        show("list", ng.list())
        print("list raw:", ng.last_raw_reply)
        show("delete", ng.delete("shape", "from-a"))
        print("delete unknown:", ng.delete("nope", "x"), ng.last_raw_reply)
        print("query unknown:", ng.query("nope"), ng.last_raw_reply)


if __name__ == "__main__":
    if "--dump-shapes" in sys.argv:
        dump_shapes()
    else:
        unittest.main()
