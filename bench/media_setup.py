#!/usr/bin/python3
"""media_setup: create calls through an NG media relay for bench/media.sh.

    media_setup.py --ng 127.0.0.1:PORT --scenario a|b|c|d --first I --count N
                   --a-base PORT --b-base PORT --pool S [--prefix ID]
                   [--fingerprint HEX]        (d)

Call i (I <= i < I+N) is offered from side A and answered by side B with the
NG protocol (docs/ng.md, client: tests/media/mediatest.py):

  a  plain RTP: A offers PCMA, B answers PCMA (pass-through)
  b  A offers PCMA with codec transcode PCMU, B answers PCMU
  c  A offers opus/48000/2 with codec transcode PCMA, B answers PCMA
  d  A is a WebRTC endpoint: UDP/TLS/RTP/SAVPF PCMA with ICE credentials,
     a=fingerprint (--fingerprint, sha-256 of the load generator's
     certificate), a=setup:actpass, a=rtcp-mux; flags ICE=remove, DTLS=off,
     transport-protocol=RTP/AVP, rtcp-mux=[demux]; B answers plain PCMA.
     A's port is a-base + i (one socket per call: DTLS runs per 5-tuple).

Both SDPs carry telephone-event/8000 (pt 101) and a=ptime:20, like a SIP phone.
A's media address is 127.0.0.1:(a-base + 2 * (i % pool)), B's
127.0.0.1:(b-base + 2 * (i % pool)): the load generator (bench/rtpload.c)
binds those pool ports and tells calls apart by the relay's source port.

Prints one line per call: "<i> <port A sends to> <port B sends to>" (the
relay's ports from the answer and the offer SDP), then "setup_s <seconds>";
for d the line goes on with "<relay ice-ufrag> <relay ice-pwd> <A's port>
<A's ice-ufrag> <A's ice-pwd> <the relay's a=setup: passive or active>" (the relay's ICE candidate is the port A
sends to: checked against its a=candidate lines).
Exit status 1 with a message on stderr at the first NG error.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "media"))

import mediatest as mt  # noqa: E402

SCENARIOS = {
    #     A's codecs                  codec flags of the offer       B's codecs
    "a": (((8, "PCMA", 8000),), None, ((8, "PCMA", 8000),)),
    "b": (((8, "PCMA", 8000),), {"transcode": ["PCMU"]}, ((0, "PCMU", 8000),)),
    "c": (((96, "opus", 48000, 2),), {"transcode": ["PCMA"]}, ((8, "PCMA", 8000),)),
    "d": (((8, "PCMA", 8000),), None, ((8, "PCMA", 8000),)),
}

WEBRTC_FLAGS = {"ICE": "remove", "DTLS": "off", "transport_protocol": "RTP/AVP",
                "rtcp_mux": ["demux"]}
ICE_PWD = "rtploadrtploadrtpload0"      # A's ice-pwd, every call (>= 22 chars)


def webrtc_sdp(port, ufrag, fingerprint):
    """A browser-like offer: ICE credentials, no candidates (the relay learns
    A's address from its checks), DTLS-SRTP, rtcp-mux."""
    return ("v=0\r\no=- %d 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\n"
            "m=audio %d UDP/TLS/RTP/SAVPF 8 101\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
            "a=ptime:20\r\na=sendrecv\r\na=mid:0\r\na=rtcp-mux\r\n"
            "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n"
            "a=fingerprint:sha-256 %s\r\na=setup:actpass\r\n"
            % (port, mt.LOCALHOST, mt.LOCALHOST, port, ufrag, ICE_PWD, fingerprint))


def sdp_attr(text, name):
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("a=%s:" % name):
            return line[len(name) + 3:].strip()
    return None


def sdp(port, codecs):
    text = mt.make_sdp(mt.LOCALHOST, port, codecs, telephone_event=101)
    if codecs[0][1] == "opus":
        # what a browser adds for Opus
        text = text.replace("a=rtpmap:96 opus/48000/2\r\n",
                            "a=rtpmap:96 opus/48000/2\r\na=fmtp:96 minptime=10;useinbandfec=1\r\n")
    return text


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ng", required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--a-base", type=int, required=True)
    ap.add_argument("--b-base", type=int, required=True)
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--prefix", default="bench")
    ap.add_argument("--fingerprint", help="d: sha-256 fingerprint of A's certificate")
    ap.add_argument("--ping", action="store_true", help="only wait until the relay answers ping")
    a = ap.parse_args()

    ng = mt.NG(a.ng, timeout=2.0, retries=2)
    if not ng.wait_ready(10):
        sys.exit("no NG reply from %s" % a.ng)
    if a.ping:
        return

    a_codecs, flags, b_codecs = SCENARIOS[a.scenario]
    kw = {"codec": flags} if flags else {}
    if a.scenario == "d":
        if not a.fingerprint:
            sys.exit("scenario d needs --fingerprint")
        kw = dict(WEBRTC_FLAGS)
    t0 = time.monotonic()
    out = []
    for i in range(a.first, a.first + a.count):
        cid = "%s-%s-%d" % (a.prefix, a.scenario, i)
        slot = i % a.pool
        try:
            if a.scenario == "d":
                a_sdp = webrtc_sdp(a.a_base + i, "lg%d" % i, a.fingerprint)
            else:
                a_sdp = sdp(a.a_base + 2 * slot, a_codecs)
            off = mt.expect_ok(ng.offer(cid, "a%d" % i, a_sdp, **kw))
            ans = mt.expect_ok(ng.answer(cid, "a%d" % i, "b%d" % i,
                                         sdp(a.b_base + 2 * slot, b_codecs)))
        except (mt.NGError, mt.NGTimeout) as e:
            sys.stdout.write("".join(out))
            sys.exit("call %d (%s): %s" % (i, cid, e))
        a_to = mt.sdp_audio_dest(ans["sdp"])
        b_to = mt.sdp_audio_dest(off["sdp"])
        if a_to[0] != mt.LOCALHOST or b_to[0] != mt.LOCALHOST:
            sys.exit("call %d: relay address is not 127.0.0.1: %s %s" % (i, a_to, b_to))
        if a.scenario != "d":
            out.append("%d %d %d\n" % (i, a_to[1], b_to[1]))
            continue
        ans_sdp = ans["sdp"]
        ufrag, pwd = sdp_attr(ans_sdp, "ice-ufrag"), sdp_attr(ans_sdp, "ice-pwd")
        setup = sdp_attr(ans_sdp, "setup")
        if not ufrag or not pwd or not sdp_attr(ans_sdp, "fingerprint"):
            sys.exit("call %d: no ICE credentials or fingerprint in the answer to A:\n%s"
                     % (i, ans_sdp))
        if setup not in ("passive", "active"):
            sys.exit("call %d: the relay answers a=setup:%s" % (i, setup))
        cands = [l for l in ans_sdp.replace("\r\n", "\n").split("\n")
                 if l.startswith("a=candidate:")]
        if cands and not any(" %s %d " % (mt.LOCALHOST, a_to[1]) in c for c in cands):
            sys.exit("call %d: relay port %d is none of its candidates: %s"
                     % (i, a_to[1], cands))
        out.append("%d %d %d %s %s %d %s %s %s\n" % (i, a_to[1], b_to[1], ufrag, pwd,
                                                    a.a_base + i, "lg%d" % i, ICE_PWD, setup))
    sys.stdout.write("".join(out))
    print("setup_s %.3f" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
