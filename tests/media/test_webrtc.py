#!/usr/bin/python3
"""A real WebRTC peer (aiortc: ICE, DTLS-SRTP, Opus/G.711) <-> codeb-mediad
<-> a plain RTP peer, in a network namespace that has only loopback.

The WebRTC side offers; the daemon is driven over NG the way a SIP
bridge drives it (ICE remove, DTLS off, RTP/AVP towards SIP); the plain
peer answers with G.711.  A 1 kHz tone must arrive both ways.

Run: /usr/bin/python3 -m unittest tests/media/test_webrtc.py  (as root:
it re-runs itself under `unshare -n`)
"""

import asyncio
import fractions
import os
import random
import socket
import subprocess
import sys
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

if os.environ.get("CODEB_NETNS") != "1" and __name__ == "__main__":
    # a namespace with only lo: ICE can only pair loopback candidates
    rc = subprocess.call(["unshare", "-n", "sh", "-c",
                          'ip link set lo up && exec env CODEB_NETNS=1 "$@"', "sh",
                          sys.executable, *sys.argv])
    sys.exit(rc)

import mediatest as mt  # noqa: E402
from test_mediad import mediad  # noqa: E402

import aioice.ice  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription  # noqa: E402

# aioice leaves loopback out of its host candidates; here lo is all there is
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack  # noqa: E402
from av import AudioFrame  # noqa: E402


class ToneTrack(MediaStreamTrack):
    """48 kHz mono s16 frames of a sine, 20 ms each, paced in real time."""

    kind = "audio"

    def __init__(self, freq=1000.0, seconds=30.0):
        super().__init__()
        self.freq = freq
        self.n = 0
        self.limit = int(seconds * 50)
        self.start = None

    async def recv(self):
        if self.n >= self.limit:
            self.stop()
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n * 0.02 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        t = (np.arange(960) + self.n * 960) / 48000.0
        pcm = (np.sin(2 * np.pi * self.freq * t) * 0.3 * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self.n += 1
        return frame


async def collect(track, seconds):
    """decoded samples of a remote track, and their rate"""
    out, rate = [], 8000
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(track.recv(), timeout=deadline - time.monotonic())
        except Exception:
            break
        rate = frame.sample_rate
        a = frame.to_ndarray().astype(np.float64)
        if a.shape[0] > 1:                      # planar channels
            a = a.mean(axis=0)
        elif len(frame.layout.channels) > 1:    # packed stereo
            a = a.reshape(-1, len(frame.layout.channels)).mean(axis=1)
        out.append(a.reshape(-1) / 32768.0)
    return (np.concatenate(out) if out else np.zeros(0)), rate


async def inbound_packets(pc):
    """the inbound-rtp stats of the (only) receiver"""
    for st in (await pc.getStats()).values():
        if st.type == "inbound-rtp":
            return {"packetsReceived": st.packetsReceived, "packetsLost": st.packetsLost}
    return {"packetsReceived": 0, "packetsLost": 0}


class WebRtcToSip(unittest.TestCase):
    def run_call(self, prefs, offer_flags, sip_pts, sip_codec, hold=False,
                 answer_flags=None):
        asyncio.run(self._call(prefs, offer_flags, sip_pts, sip_codec, hold,
                               answer_flags or {}))

    async def _call(self, prefs, offer_flags, sip_pts, sip_codec, hold, answer_flags):
        with mediad() as ng, mt.RtpPeer() as sip:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            tone = ToneTrack()
            transceiver = pc.addTransceiver(tone, direction="sendrecv")
            if prefs:
                from aiortc.rtcrtpsender import RTCRtpSender
                caps = RTCRtpSender.getCapabilities("audio").codecs
                transceiver.setCodecPreferences(
                    [c for c in caps if c.mimeType.split("/")[1].lower() in prefs])
            remote = asyncio.get_running_loop().create_future()
            pc.on("track", lambda t: remote.done() or remote.set_result(t))
            states = []
            pc.on("connectionstatechange", lambda: states.append(pc.connectionState))

            await pc.setLocalDescription(await pc.createOffer())
            flags = {"ICE": "remove", "DTLS": "off", "transport_protocol": "RTP/AVP",
                     "rtcp_mux": ["demux"]}
            flags.update(offer_flags)
            r = ng.offer("w1", "browser", pc.localDescription.sdp, **flags)
            mt.expect_ok(r)
            to_sip = r["sdp"]
            self.assertNotIn("a=ice-", to_sip)
            self.assertIn("RTP/AVP", to_sip)

            r = ng.answer("w1", "browser", "sip", sip.sdp(payload_types=sip_pts),
                          **answer_flags)
            mt.expect_ok(r)
            answer = r["sdp"]
            setup = "a=setup:%s" % answer_flags.get("DTLS", "passive")
            for want in ("UDP/TLS/RTP/SAVPF", "a=ice-lite", "a=ice-ufrag:",
                         "a=fingerprint:sha-256 ", setup, "a=rtcp-mux",
                         "a=mid:0", "typ host"):
                self.assertIn(want, answer)
            await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

            sip_dest = mt.sdp_audio_dest(to_sip)
            deadline = time.monotonic() + 10
            while pc.connectionState != "connected" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertEqual(pc.connectionState, "connected", states)

            # browser -> SIP: the plain peer hears the tone in its codec
            cap = await asyncio.to_thread(sip.receive, 2.0)
            pkts = [p for p in cap if p.rtp]
            self.assertGreater(len(pkts), 60)
            audio = mt.decode_audio(pkts, sip_codec)
            self.assertTrue(mt.tone_detected(audio, 8000, 1000), "browser->SIP tone")
            mt.continuity(pkts).assert_ok()

            # SIP -> browser: the tone decoded by aiortc
            track = await asyncio.wait_for(remote, 5)
            sender = asyncio.create_task(asyncio.to_thread(
                sip.send_tone, sip_dest, codec=sip_codec, seconds=2.0))
            samples, rate = await collect(track, 2.5)
            await sender
            self.assertGreater(len(samples), rate)
            self.assertTrue(mt.tone_detected(samples[len(samples) // 4:], rate, 1000),
                            "SIP->browser tone")

            if hold:
                # SIP side: a new SSRC with new sequence and timestamp bases,
                # then hold (1 s of nothing, the timestamp jumps), then resume
                before = await inbound_packets(pc)
                await asyncio.to_thread(sip.send_tone, sip_dest, codec=sip_codec,
                                        seconds=0.5, ssrc=0xABC, start_seq=40000,
                                        start_ts=3000000000)
                await asyncio.sleep(1.0)
                sender = asyncio.create_task(asyncio.to_thread(
                    sip.send_tone, sip_dest, codec=sip_codec, seconds=1.0,
                    start_ts=77))
                samples, rate = await collect(track, 1.2)
                await sender
                await asyncio.sleep(0.3)
                after = await inbound_packets(pc)
                # every packet of both bursts arrived and decrypted: no SRTP
                # replay or authentication drops across the source changes
                self.assertGreaterEqual(after["packetsReceived"] - before["packetsReceived"], 74)
                self.assertTrue(mt.tone_detected(samples[len(samples) // 3:], rate, 1000),
                                "tone after hold")

            # bad input at the WebRTC port from a stranger: truncated and
            # garbage STUN, DTLS records, RTP-looking junk; the call lives
            media_port = [m["streams"][0]["local port"] for t, v in
                          ng.query("w1")["tags"].items() if t == "browser"
                          for m in v["medias"]][0]
            junk = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rnd = random.Random(5)
            stun = bytes.fromhex("000100002112a442") + os.urandom(12)
            for i in range(600):
                kind = i % 4
                if kind == 0:
                    data = stun[:rnd.randrange(0, len(stun) + 1)] + os.urandom(rnd.randrange(0, 80))
                elif kind == 1:
                    data = bytes([rnd.randrange(20, 64)]) + os.urandom(rnd.randrange(0, 300))
                elif kind == 2:
                    data = bytes([0x80, rnd.randrange(0, 256)]) + os.urandom(rnd.randrange(0, 200))
                else:
                    data = os.urandom(rnd.randrange(0, 1500))
                junk.sendto(data, ("127.0.0.1", media_port))
            junk.close()
            self.assertEqual(ng.ping()["result"], "pong")
            cap = await asyncio.to_thread(sip.receive, 1.0)
            self.assertGreater(len([p for p in cap if p.rtp]), 30, "media after junk")

            q = ng.query("w1")
            flags = [f for t in q["tags"].values() for m in t["medias"]
                     for s in m["streams"] for f in s["flags"]]
            self.assertIn("ICE", flags)
            self.assertIn("DTLS", flags)
            await pc.close()

    def test_pcma_pass_through(self):
        self.run_call(["pcma"], {}, [(8, "PCMA", 8000)], "PCMA")

    def test_dtls_active_the_daemon_is_the_client(self):
        self.run_call(["pcma"], {}, [(8, "PCMA", 8000)], "PCMA",
                      answer_flags={"DTLS": "active"})

    def test_ssrc_change_and_hold_towards_srtp(self):
        self.run_call(["pcma"], {}, [(8, "PCMA", 8000)], "PCMA", hold=True)

    def test_opus_to_pcma(self):
        self.run_call(["opus"], {"codec": {"transcode": ["PCMA"]}}, [(8, "PCMA", 8000)],
                      "PCMA")

    def test_pcmu_to_pcma(self):
        self.run_call(["pcmu"], {"codec": {"transcode": ["PCMA"]}}, [(8, "PCMA", 8000)],
                      "PCMA")


class SipToWebRtc(unittest.TestCase):
    """an inbound call: the SIP side offers plain RTP, the browser answers;
    its ICE checks and DTLS ClientHello come before its answer reaches the
    daemon (the answer is held back 1 s here)"""

    def test_browser_answers_and_starts_dtls_before_the_answer_arrives(self):
        asyncio.run(self._call({}, "a=setup:actpass", "a=setup:active"))

    async def _call(self, flags, our_setup, their_setup):
        with mediad() as ng, mt.RtpPeer() as sip:
            r = ng.offer("in1", "trunk", sip.sdp(payload_types=[(8, "PCMA", 8000)]),
                         ICE="force", transport_protocol="UDP/TLS/RTP/SAVPF",
                         rtcp_mux=["offer"], **flags)
            mt.expect_ok(r)
            offer = r["sdp"]
            for want in ("UDP/TLS/RTP/SAVPF", "a=ice-lite", our_setup,
                         "a=rtcp-mux", "a=mid:0", "a=group:BUNDLE 0"):
                self.assertIn(want, offer)

            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            remote = asyncio.get_running_loop().create_future()
            pc.on("track", lambda t: remote.done() or remote.set_result(t))
            await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
            tone = ToneTrack()
            for t in pc.getTransceivers():
                t.sender.replaceTrack(tone)
                t.direction = "sendrecv"
            await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
            self.assertIn(their_setup, answer)

            # ICE and DTLS run now, with no answer at the daemon yet
            await asyncio.sleep(1.0)
            r = ng.answer("in1", "trunk", "browser", answer)
            mt.expect_ok(r)
            to_sip = r["sdp"]
            self.assertIn("RTP/AVP", to_sip)
            self.assertNotIn("a=ice-", to_sip)

            deadline = time.monotonic() + 10
            while pc.connectionState != "connected" and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            self.assertEqual(pc.connectionState, "connected")

            cap = await asyncio.to_thread(sip.receive, 2.0)
            pkts = [p for p in cap if p.rtp]
            self.assertGreater(len(pkts), 60)
            self.assertTrue(mt.tone_detected(mt.decode_audio(pkts, "PCMA"), 8000, 1000))

            track = await asyncio.wait_for(remote, 5)
            sender = asyncio.create_task(asyncio.to_thread(
                sip.send_tone, to_sip_dest(ng), codec="PCMA", seconds=2.0))
            samples, rate = await collect(track, 2.5)
            await sender
            self.assertTrue(mt.tone_detected(samples[len(samples) // 4:], rate, 1000))
            await pc.close()


def to_sip_dest(ng):
    """where the SIP side sends: the daemon's stream facing it (query)"""
    q = ng.query("in1")
    media = q["tags"]["trunk"]["medias"][0]["streams"][0]
    return ("127.0.0.1", media["local port"])


if __name__ == "__main__":
    unittest.main()
