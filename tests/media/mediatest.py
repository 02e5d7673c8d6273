#!/usr/bin/python3
"""mediatest -- test tooling for an rtpengine-compatible media relay (codeb-mediad).

Stdlib + numpy only.  All traffic is meant for 127.0.0.1 and every loop is bounded
(by a packet count, a deadline or a retry count).

Contents
  * bencode: ``bencode`` / ``bdecode`` (strict)
  * NG control client: ``NG`` (rtpengine NG protocol over UDP, docs/ng.md)
  * SDP: ``make_sdp`` / ``parse_sdp``
  * G.711: ``alaw_encode`` / ``alaw_decode`` / ``ulaw_encode`` / ``ulaw_decode``
  * RTP: ``RtpPeer`` (send tones and RFC 4733 DTMF, receive/capture), ``rtp_header``,
    ``decode_audio``, ``dtmf_events``, ``continuity``
  * tone detection: ``goertzel``, ``tone_ratio``, ``tone_detected``
"""

import collections
import contextlib
import math
import os
import random
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BencodeError", "bencode", "bdecode",
    "NG", "NGError", "NGTimeout", "expect_ok",
    "make_sdp", "parse_sdp", "sdp_audio_dest",
    "alaw_encode", "alaw_decode", "ulaw_encode", "ulaw_decode", "g711_encode", "g711_decode",
    "RtpHeader", "Packet", "RtpPeer", "rtp_header", "is_rtcp", "decode_audio",
    "DtmfEvent", "dtmf_events", "dtmf_ended", "build_rtp", "level_dbfs", "ContinuityReport", "continuity",
    "goertzel", "tone_ratio", "tone_detected", "sine",
    "reply_shape", "run_parallel",
]

LOCALHOST = "127.0.0.1"
MAX_SEND_SECONDS = 120.0  # upper bound for any single paced send / capture


# --------------------------------------------------------------------------- bencode

class BencodeError(ValueError):
    pass


def bencode(obj):
    """Encode ints, str (UTF-8), bytes, lists/tuples and dicts (str/bytes keys, sorted as bytes)."""
    out = []
    _benc(obj, out, 0)
    return b"".join(out)


def _bkey(k):
    if isinstance(k, str):
        return k.encode("utf-8")
    if isinstance(k, (bytes, bytearray)):
        return bytes(k)
    raise TypeError("bencode dict keys must be str or bytes, not %s" % type(k).__name__)


def _benc(obj, out, depth):
    if depth > 64:
        raise BencodeError("nesting too deep")
    if isinstance(obj, bool):
        raise TypeError("bencode has no booleans; use an int or a string")
    if isinstance(obj, int):
        out.append(b"i%de" % obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        out.append(b"%d:" % len(b))
        out.append(b)
    elif isinstance(obj, (list, tuple)):
        out.append(b"l")
        for item in obj:
            _benc(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(obj, dict):
        items = [(_bkey(k), v) for k, v in obj.items()]
        items.sort(key=lambda kv: kv[0])
        for a, b in zip(items, items[1:]):
            if a[0] == b[0]:
                raise BencodeError("duplicate dict key %r" % a[0])
        out.append(b"d")
        for k, v in items:
            out.append(b"%d:" % len(k))
            out.append(k)
            _benc(v, out, depth + 1)
        out.append(b"e")
    else:
        raise TypeError("cannot bencode %s" % type(obj).__name__)


def bdecode(data, require_sorted=True):
    """Strictly decode one bencoded value; the whole input must be consumed.

    Rejects: leading zeros / "-0" / empty ints, leading zeros in string lengths, truncation,
    trailing data, non-string dict keys, duplicate keys, and (if ``require_sorted``) keys
    not in ascending byte order.  Returns ints, bytes, lists and dicts with bytes keys.
    """
    if isinstance(data, str):
        raise TypeError("bdecode wants bytes")
    data = bytes(data)
    val, pos = _bdec(data, 0, 0, require_sorted)
    if pos != len(data):
        raise BencodeError("trailing data at offset %d" % pos)
    return val


def _bdec(data, pos, depth, require_sorted):
    if depth > 64:
        raise BencodeError("nesting too deep")
    if pos >= len(data):
        raise BencodeError("truncated input")
    c = data[pos:pos + 1]
    if c == b"i":
        end = data.find(b"e", pos + 1)
        if end < 0:
            raise BencodeError("unterminated int at %d" % pos)
        s = data[pos + 1:end]
        body = s[1:] if s.startswith(b"-") else s
        if not body or not body.isdigit() or not body.isascii():
            raise BencodeError("bad int %r at %d" % (s, pos))
        if body != b"0" and body.startswith(b"0"):
            raise BencodeError("leading zero in int %r" % s)
        if s == b"-0":
            raise BencodeError("negative zero")
        return int(s), end + 1
    if c == b"l":
        pos += 1
        out = []
        while True:
            if pos >= len(data):
                raise BencodeError("unterminated list")
            if data[pos:pos + 1] == b"e":
                return out, pos + 1
            v, pos = _bdec(data, pos, depth + 1, require_sorted)
            out.append(v)
    if c == b"d":
        pos += 1
        out = {}
        last = None
        while True:
            if pos >= len(data):
                raise BencodeError("unterminated dict")
            if data[pos:pos + 1] == b"e":
                return out, pos + 1
            if not data[pos:pos + 1].isdigit():
                raise BencodeError("dict key must be a byte string (offset %d)" % pos)
            k, pos = _bdec(data, pos, depth + 1, require_sorted)
            if k in out:
                raise BencodeError("duplicate dict key %r" % k)
            if require_sorted and last is not None and k < last:
                raise BencodeError("dict keys not sorted: %r after %r" % (k, last))
            last = k
            v, pos = _bdec(data, pos, depth + 1, require_sorted)
            out[k] = v
    if c.isdigit():
        colon = data.find(b":", pos)
        if colon < 0:
            raise BencodeError("string length without ':' at %d" % pos)
        ls = data[pos:colon]
        if not ls.isdigit() or (len(ls) > 1 and ls.startswith(b"0")):
            raise BencodeError("bad string length %r" % ls)
        n = int(ls)
        start = colon + 1
        if start + n > len(data):
            raise BencodeError("truncated string (want %d bytes at %d)" % (n, start))
        return data[start:start + n], start + n
    raise BencodeError("unexpected byte %r at %d" % (c, pos))


def _to_str(obj):
    """bytes -> str where valid UTF-8, recursively (dict keys too)."""
    if isinstance(obj, bytes):
        try:
            return obj.decode("utf-8")
        except UnicodeDecodeError:
            return obj
    if isinstance(obj, list):
        return [_to_str(x) for x in obj]
    if isinstance(obj, dict):
        return {_to_str(k): _to_str(v) for k, v in obj.items()}
    return obj


# --------------------------------------------------------------------------- NG client

class NGError(Exception):
    """An NG reply with result=error (or an unexpected result)."""

    def __init__(self, reply):
        self.reply = reply
        super().__init__("NG %s: %s" % (reply.get("result"), reply.get("error-reason", reply)))


class NGTimeout(TimeoutError):
    pass


def expect_ok(reply, result="ok"):
    """Return ``reply`` if its result is ``result`` (default ok), else raise NGError."""
    if reply.get("result") != result:
        raise NGError(reply)
    return reply


def _parse_addr(addr, default_port=2223):
    if isinstance(addr, (tuple, list)):
        return (str(addr[0]), int(addr[1]))
    addr = str(addr)
    if ":" in addr:
        host, port = addr.rsplit(":", 1)
        return (host or LOCALHOST, int(port))
    if addr.isdigit():
        return (LOCALHOST, int(addr))
    return (addr, default_port)


# NG keys whose value is a list; a bare string is wrapped for convenience.
_NG_LIST_KEYS = {"rtcp-mux", "replace", "direction", "flags", "SDES", "OSRTP", "supports"}


def _ng_flags(flags):
    """Python kwargs -> NG keys: '_' becomes '-' (transport_protocol -> transport-protocol).

    Keys that already contain '-' or spaces (pass them with **{...}) are kept as is;
    ICE / DTLS / SDES keep their case."""
    out = {}
    for k, v in flags.items():
        if v is None:
            continue
        key = k.replace("_", "-")
        if key in _NG_LIST_KEYS and isinstance(v, str):
            v = [v]
        if key == "codec" and isinstance(v, dict):
            v = {ck: ([cv] if isinstance(cv, str) else list(cv)) for ck, cv in v.items()}
        out[key] = v
    return out


class NG:
    """rtpengine NG protocol client over UDP.

    ``NG("127.0.0.1:2223").request({"command": "ping"})`` -> ``{"result": "pong"}``.
    Each request uses a fresh random cookie; retransmissions reuse it (the server is
    expected to answer a repeated cookie from its reply cache).  Replies whose cookie
    does not match are discarded.
    """

    def __init__(self, addr=(LOCALHOST, 2223), timeout=2.0, retries=2):
        self.addr = _parse_addr(addr)
        self.timeout = timeout
        self.retries = retries
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOCALHOST, 0))
        self.sock.connect(self.addr)
        self.last_raw_reply = None  # bytes of the last bencoded reply (after the cookie)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @staticmethod
    def new_cookie():
        return "%s_%d" % (os.urandom(6).hex(), random.randrange(1 << 20))

    def request(self, msg, timeout=None, retries=None):
        """Send ``msg`` (a dict with 'command'), return the decoded reply dict (str where UTF-8)."""
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        cookie = self.new_cookie().encode()
        payload = cookie + b" " + bencode(msg)
        with self._lock:
            self._drain()
            for _attempt in range(1 + max(0, retries)):
                try:
                    self.sock.send(payload)
                except ConnectionRefusedError:
                    time.sleep(min(timeout, 0.1))
                    continue
                deadline = time.monotonic() + timeout
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    r, _, _ = select.select([self.sock], [], [], left)
                    if not r:
                        break
                    try:
                        data = self.sock.recv(65535)
                    except ConnectionRefusedError:
                        # ICMP port unreachable: nobody listening (yet)
                        time.sleep(min(left, 0.1))
                        break
                    c, sep, body = data.partition(b" ")
                    if not sep or c != cookie:
                        continue  # stale reply to an earlier request
                    self.last_raw_reply = body
                    return _to_str(bdecode(body, require_sorted=False))
        raise NGTimeout("no NG reply from %s:%d to %r after %d attempts"
                        % (self.addr[0], self.addr[1], msg.get("command"), 1 + max(0, retries)))

    def _drain(self):
        for _ in range(1000):
            r, _, _ = select.select([self.sock], [], [], 0)
            if not r:
                return
            try:
                self.sock.recv(65535)
            except OSError:
                pass

    # --- commands -------------------------------------------------------------
    def ping(self, **kw):
        return self.request({"command": "ping"}, **kw)

    def offer(self, call_id, from_tag, sdp, **flags):
        msg = {"command": "offer", "call-id": call_id, "from-tag": from_tag, "sdp": sdp}
        msg.update(_ng_flags(flags))
        return self.request(msg)

    def answer(self, call_id, from_tag, to_tag, sdp, **flags):
        msg = {"command": "answer", "call-id": call_id, "from-tag": from_tag,
               "to-tag": to_tag, "sdp": sdp}
        msg.update(_ng_flags(flags))
        return self.request(msg)

    def delete(self, call_id, from_tag=None, **flags):
        msg = {"command": "delete", "call-id": call_id}
        if from_tag is not None:
            msg["from-tag"] = from_tag
        msg.update(_ng_flags(flags))
        return self.request(msg)

    def query(self, call_id, **flags):
        msg = {"command": "query", "call-id": call_id}
        msg.update(_ng_flags(flags))
        return self.request(msg)

    def list(self, limit=None):
        msg = {"command": "list"}
        if limit is not None:
            msg["limit"] = int(limit)
        return self.request(msg)

    def wait_ready(self, seconds=10.0, interval=0.1):
        """Ping until 'pong' or the deadline; returns True if the daemon answered."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.ping(timeout=interval * 2, retries=0).get("result") == "pong":
                    return True
            except (NGTimeout, BencodeError):
                pass
            time.sleep(interval)
        return False


# --------------------------------------------------------------------------- SDP

def make_sdp(ip, port, payload_types=((8, "PCMA", 8000),), telephone_event=101,
             direction="sendrecv", session_id=None, ptime=20, te_rate=8000):
    """A plain RTP/AVP audio offer (CRLF line endings).

    ``payload_types``: sequence of (pt, name, rate) or (pt, name, rate, channels).
    ``telephone_event``: dynamic PT for RFC 4733 events at ``te_rate``, or None.
    ``direction``: sendrecv/sendonly/recvonly/inactive, or None to omit.
    """
    sid = session_id if session_id is not None else random.randrange(1, 1 << 31)
    pts = [str(p[0]) for p in payload_types]
    if telephone_event is not None:
        pts.append(str(telephone_event))
    lines = [
        "v=0",
        "o=- %d %d IN IP4 %s" % (sid, sid, ip),
        "s=-",
        "c=IN IP4 %s" % ip,
        "t=0 0",
        "m=audio %d RTP/AVP %s" % (port, " ".join(pts)),
    ]
    for p in payload_types:
        enc = "%s/%d" % (p[1], p[2])
        if len(p) > 3 and p[3] and int(p[3]) != 1:
            enc += "/%d" % p[3]
        lines.append("a=rtpmap:%d %s" % (p[0], enc))
    if telephone_event is not None:
        lines.append("a=rtpmap:%d telephone-event/%d" % (telephone_event, te_rate))
        lines.append("a=fmtp:%d 0-16" % telephone_event)
    if ptime:
        lines.append("a=ptime:%d" % ptime)
    if direction:
        lines.append("a=%s" % direction)
    return "\r\n".join(lines) + "\r\n"


_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def _parse_candidate(value):
    # candidate:<foundation> <component> <transport> <priority> <addr> <port> typ <type> [...]
    f = value.split()
    cand = {"raw": value}
    if len(f) >= 8:
        cand.update(foundation=f[0], component=int(f[1]) if f[1].isdigit() else f[1],
                    transport=f[2], priority=int(f[3]) if f[3].isdigit() else f[3],
                    address=f[4], port=int(f[5]) if f[5].isdigit() else f[5], type=f[7])
        rest = f[8:]
        for i in range(0, len(rest) - 1, 2):
            cand[rest[i]] = rest[i + 1]
    return cand


def parse_sdp(text):
    """Parse an SDP body into a dict.

    Top level: version, origin, session_name, connection (session c= address or None),
    attributes (raw "name[:value]" strings), direction, ice_ufrag, ice_pwd, fingerprint,
    setup, and ``media``: a list of dicts with media, port, port_count, proto, payloads
    (ints for RTP), rtpmap {pt: (name, rate)}, rtpmap_channels {pt: n}, fmtp {pt: str},
    connection (media-level c= or None), address (effective: media c= else session c=),
    attributes (raw), ice_ufrag, ice_pwd, candidates (list of dicts with 'raw'),
    fingerprint ("HASH VALUE" or None), setup, rtcp_mux (bool), rtcp (raw or None),
    ptime, mid, crypto (list), direction (media, else session, else sendrecv).
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    sess = {"version": None, "origin": None, "session_name": None, "connection": None,
            "attributes": [], "direction": None, "ice_ufrag": None, "ice_pwd": None,
            "fingerprint": None, "setup": None, "media": []}
    cur = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise ValueError("bad SDP line %r" % raw)
        t, v = line[0], line[2:]
        if t == "m":
            f = v.split()
            if len(f) < 3:
                raise ValueError("bad m= line %r" % raw)
            port_s, _, count_s = f[1].partition("/")
            fmts = f[3:]
            payloads = [int(x) for x in fmts] if all(x.isdigit() for x in fmts) else fmts
            cur = {"media": f[0], "port": int(port_s), "port_count": int(count_s or 1),
                   "proto": f[2], "payloads": payloads, "rtpmap": {}, "rtpmap_channels": {},
                   "fmtp": {}, "connection": None, "address": None, "attributes": [],
                   "ice_ufrag": None, "ice_pwd": None, "candidates": [], "fingerprint": None,
                   "setup": None, "rtcp_mux": False, "rtcp": None, "ptime": None, "mid": None,
                   "crypto": [], "direction": None}
            sess["media"].append(cur)
            continue
        target = cur if cur is not None else sess
        if t == "v":
            sess["version"] = v
        elif t == "o":
            sess["origin"] = v
        elif t == "s" and cur is None:
            sess["session_name"] = v
        elif t == "c":
            f = v.split()
            addr = f[2].split("/")[0] if len(f) >= 3 else None
            target["connection"] = addr
        elif t == "a":
            target["attributes"].append(v)
            name, _, val = v.partition(":")
            if name in _DIRECTIONS:
                target["direction"] = name
            elif name == "ice-ufrag":
                target["ice_ufrag"] = val
            elif name == "ice-pwd":
                target["ice_pwd"] = val
            elif name == "fingerprint":
                target["fingerprint"] = val
            elif name == "setup":
                target["setup"] = val
            elif cur is not None:
                if name == "rtpmap":
                    pt_s, _, enc = val.partition(" ")
                    parts = enc.strip().split("/")
                    pt = int(pt_s) if pt_s.isdigit() else pt_s
                    rate = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
                    cur["rtpmap"][pt] = (parts[0], rate)
                    if len(parts) > 2 and parts[2].isdigit():
                        cur["rtpmap_channels"][pt] = int(parts[2])
                elif name == "fmtp":
                    pt_s, _, params = val.partition(" ")
                    cur["fmtp"][int(pt_s) if pt_s.isdigit() else pt_s] = params.strip()
                elif name == "candidate":
                    cur["candidates"].append(_parse_candidate(val))
                elif name == "rtcp-mux":
                    cur["rtcp_mux"] = True
                elif name == "rtcp":
                    cur["rtcp"] = val
                elif name == "ptime":
                    cur["ptime"] = int(val) if val.isdigit() else val
                elif name == "mid":
                    cur["mid"] = val
                elif name == "crypto":
                    cur["crypto"].append(val)
    for m in sess["media"]:
        m["address"] = m["connection"] or sess["connection"]
        for k in ("ice_ufrag", "ice_pwd", "fingerprint", "setup"):
            if m[k] is None:
                m[k] = sess[k]
        if m["direction"] is None:
            m["direction"] = sess["direction"] or "sendrecv"
    return sess


def sdp_audio_dest(sdp, index=0):
    """(address, port) of the index-th audio m= line of an SDP (str or parsed dict)."""
    p = parse_sdp(sdp) if isinstance(sdp, (str, bytes)) else sdp
    audio = [m for m in p["media"] if m["media"] == "audio"]
    m = audio[index]
    return (m["address"], m["port"])


# --------------------------------------------------------------------------- G.711

_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)
_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ULAW_BIAS = 0x84
_ULAW_CLIP = 8159


def alaw_encode(pcm):
    """ITU-T G.711 A-law: int16 linear PCM (array-like) -> uint8 codes (even bits inverted)."""
    x = np.asarray(pcm, dtype=np.int32) >> 3  # 13-bit magnitude domain
    neg = x < 0
    mask = np.where(neg, 0x55, 0xD5)
    x = np.where(neg, -x - 1, x)
    seg = np.searchsorted(_SEG_AEND, x, side="left")
    shift = np.where(seg < 2, 1, seg)
    aval = (seg << 4) | ((x >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return (aval ^ mask).astype(np.uint8)


def alaw_decode(codes):
    """ITU-T G.711 A-law codes (uint8) -> int16 linear PCM."""
    a = np.asarray(codes, dtype=np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, (t + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def ulaw_encode(pcm):
    """ITU-T G.711 mu-law: int16 linear PCM (array-like) -> uint8 codes."""
    x = np.asarray(pcm, dtype=np.int32) >> 2  # 14-bit domain
    neg = x < 0
    mask = np.where(neg, 0x7F, 0xFF)
    x = np.where(neg, -x, x)
    x = np.minimum(x, _ULAW_CLIP) + (_ULAW_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, x, side="left")
    uval = (seg << 4) | ((x >> (seg + 1)) & 0x0F)
    uval = np.where(seg >= 8, 0x7F, uval)
    return (uval ^ mask).astype(np.uint8)


def ulaw_decode(codes):
    """ITU-T G.711 mu-law codes (uint8) -> int16 linear PCM."""
    u = ~np.asarray(codes, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _ULAW_BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _ULAW_BIAS - t, t - _ULAW_BIAS).astype(np.int16)


_CODECS = {"PCMA": (alaw_encode, alaw_decode, 8), "PCMU": (ulaw_encode, ulaw_decode, 0)}


def _codec(codec):
    try:
        return _CODECS[codec.upper()]
    except KeyError:
        raise ValueError("unsupported codec %r (PCMA or PCMU)" % codec) from None


def g711_encode(pcm, codec="PCMA"):
    return _codec(codec)[0](pcm)


def g711_decode(codes, codec="PCMA"):
    return _codec(codec)[1](codes)


def sine(freq, seconds, rate=8000, level_dbfs=-10.0, phase=0.0):
    """int16 sine; level in dBFS relative to a full-scale sine (peak 32767)."""
    n = int(round(seconds * rate))
    amp = 32767.0 * 10 ** (level_dbfs / 20.0)
    t = np.arange(n, dtype=np.float64) / rate
    return np.round(amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


# --------------------------------------------------------------------------- RTP

@dataclass
class RtpHeader:
    version: int
    padding: bool
    extension: bool
    cc: int
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    csrcs: list = field(default_factory=list)
    ext_profile: int = None
    ext_data: bytes = None
    payload: bytes = b""


def rtp_header(pkt):
    """Parse an RTP packet (bytes or Packet): fixed header, CSRCs, header extension, padding.

    Raises ValueError on anything that is not a well-formed RTP v2 packet."""
    data = pkt.data if isinstance(pkt, Packet) else bytes(pkt)
    if len(data) < 12:
        raise ValueError("short RTP packet (%d bytes)" % len(data))
    b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data, 0)
    version = b0 >> 6
    if version != 2:
        raise ValueError("RTP version %d" % version)
    padding, ext, cc = bool(b0 & 0x20), bool(b0 & 0x10), b0 & 0x0F
    pos = 12
    if len(data) < pos + 4 * cc:
        raise ValueError("truncated CSRC list")
    csrcs = list(struct.unpack_from("!%dI" % cc, data, pos)) if cc else []
    pos += 4 * cc
    ext_profile = ext_data = None
    if ext:
        if len(data) < pos + 4:
            raise ValueError("truncated header extension")
        ext_profile, ext_words = struct.unpack_from("!HH", data, pos)
        pos += 4
        if len(data) < pos + 4 * ext_words:
            raise ValueError("truncated header extension data")
        ext_data = data[pos:pos + 4 * ext_words]
        pos += 4 * ext_words
    end = len(data)
    if padding:
        if end == pos:
            raise ValueError("padding bit set without payload")
        npad = data[-1]
        if npad == 0 or npad > end - pos:
            raise ValueError("bad padding count %d" % npad)
        end -= npad
    return RtpHeader(version, padding, ext, cc, bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc,
                     csrcs, ext_profile, ext_data, data[pos:end])


def is_rtcp(data):
    """RFC 5761 demultiplexing rule: RTCP packet types 192..223 in the second byte."""
    data = data.data if isinstance(data, Packet) else data
    return len(data) >= 8 and (data[0] >> 6) == 2 and 192 <= data[1] <= 223


@dataclass
class Packet:
    data: bytes
    addr: tuple          # source (ip, port)
    time: float          # time.monotonic() at arrival
    _hdr: object = field(default=None, repr=False, compare=False)

    @property
    def rtp(self):
        """Parsed RtpHeader, or None for RTCP / non-RTP data."""
        if self._hdr is None:
            if is_rtcp(self.data):
                self._hdr = False
            else:
                try:
                    self._hdr = rtp_header(self.data)
                except ValueError:
                    self._hdr = False
        return self._hdr or None


def build_rtp(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | (pt & 0x7F),
                       seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + bytes(payload)


DTMF_DIGITS = "0123456789*#ABCD"


def _dtmf_code(digit):
    if isinstance(digit, int):
        if not 0 <= digit <= 255:
            raise ValueError("event code out of range")
        return digit
    d = str(digit).upper()
    if len(d) != 1 or d not in DTMF_DIGITS:
        raise ValueError("bad DTMF digit %r" % digit)
    return DTMF_DIGITS.index(d)


class _Pacer:
    """Yields at t0, t0+p, t0+2p, ... on the monotonic clock (never drifts)."""

    def __init__(self, period, enabled=True):
        self.period = period
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.i = 0

    def wait(self):
        if self.enabled:
            delay = self.t0 + self.i * self.period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.i += 1


class Capture:
    """Background receiver started by RtpPeer.capture(); packets in arrival order."""

    def __init__(self, peer, max_seconds):
        self.peer = peer
        self.max_seconds = min(float(max_seconds), MAX_SEND_SECONDS)
        self.packets = []
        self.rtcp = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        socks = [s for s in (self.peer.sock, self.peer.rtcp_sock) if s is not None]
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            r, _, _ = select.select(socks, [], [], min(left, 0.05))
            for s in r:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                p = Packet(data, addr, time.monotonic())
                if s is self.peer.sock and not is_rtcp(data):
                    self.packets.append(p)
                else:
                    self.rtcp.append(p)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=self.max_seconds + 1)
        return self.packets


class RtpPeer:
    """A UDP RTP endpoint on 127.0.0.1 (plus an RTCP socket on port+1 when rtcp=True).

    Keeps one outgoing stream state (ssrc, seq, ts) so successive send_tone / send_dtmf
    calls continue the same stream; each call may override ssrc/start_seq/start_ts.
    """

    def __init__(self, bind_port=0, host=LOCALHOST, rtcp=True, ssrc=None):
        self.host = host
        self.sock, self.rtcp_sock = self._bind(host, bind_port, rtcp)
        self.port = self.sock.getsockname()[1]
        self.ssrc = ssrc if ssrc is not None else random.randrange(1, 1 << 32)
        self.seq = random.randrange(1 << 16)
        self.ts = random.randrange(1 << 32)
        self.sent = 0

    @staticmethod
    def _bind(host, port, rtcp):
        if port:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, port))
            r = None
            if rtcp:
                r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                r.bind((host, port + 1))
            return s, r
        if not rtcp:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            return s, None
        for _ in range(100):  # even RTP port with a free port+1
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((host, 0))
            p = s.getsockname()[1]
            if p % 2 == 0 and p < 65535:
                r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    r.bind((host, p + 1))
                    return s, r
                except OSError:
                    r.close()
            s.close()
        raise OSError("could not bind an RTP/RTCP port pair")

    @property
    def addr(self):
        return (self.host, self.port)

    def close(self):
        self.sock.close()
        if self.rtcp_sock is not None:
            self.rtcp_sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def sdp(self, **kw):
        """make_sdp() for this peer's address."""
        return make_sdp(self.host, self.port, **kw)

    # --- sending -----------------------------------------------------------------
    def send_rtp(self, dest, pt, payload, marker=False, ssrc=None, seq=None, ts=None):
        pkt = build_rtp(pt, self.seq if seq is None else seq, self.ts if ts is None else ts,
                        self.ssrc if ssrc is None else ssrc, payload, marker)
        self.sock.sendto(pkt, _parse_addr(dest))
        self.sent += 1
        return pkt

    def send_tone(self, dest, pt=None, codec="PCMA", freq=1000, seconds=1.0, ssrc=None,
                  start_seq=None, start_ts=None, ptime=20, marker_first=True, rate=8000,
                  level_dbfs=-10.0, pace=True):
        """Send a sine (``freq`` Hz at ``level_dbfs``) G.711-encoded, one packet per ptime
        of real time.  Returns the number of packets sent."""
        if not 0 < seconds <= MAX_SEND_SECONDS:
            raise ValueError("seconds out of range")
        enc, _dec, static_pt = _codec(codec)
        pt = static_pt if pt is None else pt
        if ssrc is not None:
            self.ssrc = ssrc
        if start_seq is not None:
            self.seq = start_seq & 0xFFFF
        if start_ts is not None:
            self.ts = start_ts & 0xFFFFFFFF
        spp = rate * ptime // 1000
        npk = max(1, int(round(seconds * 1000 / ptime)))
        codes = enc(sine(freq, npk * spp / rate, rate, level_dbfs)).tobytes()
        dest = _parse_addr(dest)
        pacer = _Pacer(ptime / 1000.0, pace)
        for i in range(npk):
            pacer.wait()
            self.send_rtp(dest, pt, codes[i * spp:(i + 1) * spp], marker=(marker_first and i == 0))
            self.seq = (self.seq + 1) & 0xFFFF
            self.ts = (self.ts + spp) & 0xFFFFFFFF
        return npk

    def send_dtmf(self, dest, pt_event=101, digit="1", duration_ms=100, volume=10, ssrc=None,
                  start_seq=None, ts=None, ptime=20, rate=8000, end_packets=3, pace=True):
        """RFC 4733 event: first packet with M=1, then one packet per ptime with growing
        duration, then ``end_packets`` packets with E=1 and the final duration; all share
        one timestamp (the event start).  Returns the number of packets sent."""
        code = _dtmf_code(digit)
        if not 0 < duration_ms <= 10000 or not 0 <= volume <= 63:
            raise ValueError("bad duration or volume")
        if ssrc is not None:
            self.ssrc = ssrc
        if start_seq is not None:
            self.seq = start_seq & 0xFFFF
        ev_ts = self.ts if ts is None else ts & 0xFFFFFFFF
        spp = rate * ptime // 1000
        total = min(0xFFFF, int(round(duration_ms * rate / 1000)))
        durations = list(range(spp, total, spp)) or [min(spp, total)]
        dest = _parse_addr(dest)
        pacer = _Pacer(ptime / 1000.0, pace)
        n = 0
        for i, d in enumerate(durations):
            pacer.wait()
            payload = struct.pack("!BBH", code, volume & 0x3F, d)
            self.send_rtp(dest, pt_event, payload, marker=(i == 0), ts=ev_ts)
            self.seq = (self.seq + 1) & 0xFFFF
            n += 1
        for _ in range(end_packets):
            pacer.wait()
            payload = struct.pack("!BBH", code, 0x80 | (volume & 0x3F), total)
            self.send_rtp(dest, pt_event, payload, ts=ev_ts)
            self.seq = (self.seq + 1) & 0xFFFF
            n += 1
        self.ts = (ev_ts + total) & 0xFFFFFFFF
        return n

    # --- receiving ---------------------------------------------------------------
    def receive(self, seconds, max_packets=None, idle=None):
        """Collect RTP-socket datagrams for up to ``seconds`` (or ``max_packets``, or until
        ``idle`` seconds pass without a packet once something arrived)."""
        seconds = min(float(seconds), MAX_SEND_SECONDS)
        out = []
        deadline = time.monotonic() + seconds
        limit = max_packets if max_packets is not None else 1000000
        while len(out) < limit:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                break
            wait = left if (idle is None or not out) else min(left, idle)
            r, _, _ = select.select([self.sock], [], [], wait)
            if not r:
                if idle is not None and out:
                    break
                continue
            try:
                data, addr = self.sock.recvfrom(65535)
            except OSError:
                continue
            out.append(Packet(data, addr, time.monotonic()))
        return out

    @contextlib.contextmanager
    def capture(self, max_seconds=30.0):
        """``with peer.capture() as cap: ...`` -- receive in a background thread;
        ``cap.packets`` (RTP socket, RTCP filtered out) and ``cap.rtcp`` afterwards."""
        cap = Capture(self, max_seconds)
        cap._thread.start()
        try:
            yield cap
        finally:
            cap.stop()

    def drain(self):
        """Discard anything queued on the sockets."""
        for s in (self.sock, self.rtcp_sock):
            for _ in range(10000):
                if s is None or not select.select([s], [], [], 0)[0]:
                    break
                s.recv(65535)


# --------------------------------------------------------------------------- analysis

def _rtp_list(packets, pt=None):
    """[(Packet-or-None, RtpHeader)] for parseable RTP packets (optionally of one PT)."""
    out = []
    for p in packets:
        if isinstance(p, Packet):
            h = p.rtp
        else:
            try:
                h = None if is_rtcp(p) else rtp_header(p)
            except ValueError:
                h = None
        if h is not None and (pt is None or h.pt == pt):
            out.append(h)
    return out


def decode_audio(packets, codec="PCMA", pt=None, fill_gaps=True):
    """Decode G.711 packets to float32 PCM in [-1, 1), ordered by sequence number.

    Only packets with ``pt`` (default: the codec's static PT) are used.  Each SSRC is one
    segment (in order of first appearance); duplicates are dropped and, with
    ``fill_gaps``, missing sequence numbers become silence of one packet's length."""
    _enc, dec, static_pt = _codec(codec)
    pt = static_pt if pt is None else pt
    streams = collections.OrderedDict()
    for h in _rtp_list(packets, pt):
        streams.setdefault(h.ssrc, []).append(h)
    chunks = []
    for hs in streams.values():
        ext = {}
        ref = None
        for h in hs:  # unwrap seq relative to the running reference
            if ref is None:
                e = h.seq
            else:
                d = (h.seq - (ref & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
                e = ref + d
            ref = e if ref is None else max(ref, e)
            ext.setdefault(e, h)
        prev = None
        for e in sorted(ext):
            h = ext[e]
            if prev is not None and fill_gaps and e - prev > 1:
                chunks.append(np.zeros((e - prev - 1) * len(h.payload), dtype=np.int16))
            chunks.append(dec(np.frombuffer(h.payload, dtype=np.uint8)))
            prev = e
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return (np.concatenate(chunks).astype(np.float32) / 32768.0)


DtmfEvent = collections.namedtuple("DtmfEvent", "digit ts duration")


def dtmf_events(packets, pt=101):
    """RFC 4733 events as [(digit, ts, duration)] in order of first arrival.

    One entry per (ssrc, timestamp, event); duration is the largest seen.  ``digit`` is
    '0'-'9', '*', '#', 'A'-'D' (or the int code for other events)."""
    events = collections.OrderedDict()
    for h in _rtp_list(packets, pt):
        if len(h.payload) < 4:
            continue
        code, _flags, dur = struct.unpack_from("!BBH", h.payload, 0)
        key = (h.ssrc, h.ts, code)
        events[key] = max(events.get(key, 0), dur)
    return [DtmfEvent(DTMF_DIGITS[c] if c < 16 else c, ts, d)
            for (_s, ts, c), d in events.items()]


def dtmf_ended(packets, pt=101):
    """Set of (ts, digit) for events that were seen with the E bit."""
    out = set()
    for h in _rtp_list(packets, pt):
        if len(h.payload) >= 4 and h.payload[1] & 0x80:
            c = h.payload[0]
            out.add((h.ts, DTMF_DIGITS[c] if c < 16 else c))
    return out


@dataclass
class ContinuityReport:
    count: int = 0
    ssrcs: list = field(default_factory=list)          # in order of appearance
    ssrc_changes: list = field(default_factory=list)   # (index, old_ssrc, new_ssrc)
    seq_errors: list = field(default_factory=list)     # (index, expected_seq, got_seq)
    ts_errors: list = field(default_factory=list)      # (index, expected_delta, got_delta)

    @property
    def ok(self):
        return self.count > 0 and not self.seq_errors and not self.ts_errors

    def __str__(self):
        return ("continuity: %d packets, ssrcs=%s, ssrc_changes=%s, seq_errors=%s, ts_errors=%s"
                % (self.count, ["%08x" % s for s in self.ssrcs], self.ssrc_changes[:5],
                   self.seq_errors[:5], self.ts_errors[:5]))

    def assert_ok(self, allow_ssrc_change=False):
        if not self.ok or (self.ssrc_changes and not allow_ssrc_change):
            raise AssertionError(str(self))
        return self


def continuity(packets, samples_per_packet=160, pt=None, allow_ts_jump_on_marker=False,
               dtmf_pt=None):
    """Check packets (in arrival order) for seq += 1 (mod 2^16) and
    ts += samples_per_packet (mod 2^32) within each SSRC run; report SSRC changes.

    160 = 8 kHz / 20 ms, 960 = 48 kHz Opus / 20 ms.  ``pt`` restricts the check to one
    payload type (note: filtering out interleaved DTMF creates seq gaps).  With
    ``dtmf_pt``, RFC 4733 packets of that PT stay in the seq check but the ts check is
    skipped next to them (events repeat one ts; audio resumes at event ts + duration)."""
    rep = ContinuityReport()
    prev = None
    for i, h in enumerate(_rtp_list(packets, pt)):
        rep.count += 1
        if h.ssrc not in rep.ssrcs:
            rep.ssrcs.append(h.ssrc)
        if prev is not None and h.ssrc != prev.ssrc:
            rep.ssrc_changes.append((i, prev.ssrc, h.ssrc))
            prev = None
        if prev is not None:
            want_seq = (prev.seq + 1) & 0xFFFF
            if h.seq != want_seq:
                rep.seq_errors.append((i, want_seq, h.seq))
            dts = (h.ts - prev.ts) & 0xFFFFFFFF
            nseq = (h.seq - prev.seq) & 0xFFFF
            skip = dtmf_pt is not None and dtmf_pt in (h.pt, prev.pt)
            if not skip and dts != samples_per_packet and not (allow_ts_jump_on_marker and h.marker):
                # a seq gap of n packets is already reported; only flag ts if it is not
                # explained by that gap
                if not (h.seq != want_seq and dts == (nseq * samples_per_packet) & 0xFFFFFFFF):
                    rep.ts_errors.append((i, samples_per_packet, dts))
        prev = h
    return rep


# --------------------------------------------------------------------------- tone detection

def goertzel(samples, rate, freq):
    """Power of the ``freq`` component (Goertzel / single-bin DFT at the exact frequency).

    Normalised so that a sine of amplitude A gives ~A**2/2, i.e. the same scale as
    mean(samples**2)."""
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    if n == 0:
        return 0.0
    w = 2 * np.pi * freq / rate
    # The Goertzel recurrence s[k] = x[k] + 2cos(w)s[k-1] - s[k-2] evaluates exactly this sum;
    # numpy's dot product is the vectorised equivalent.
    k = np.arange(n)
    re = np.dot(x, np.cos(w * k))
    im = np.dot(x, np.sin(w * k))
    return float(2.0 * (re * re + im * im) / (n * n))


def _trim_silence(x, rate, frame_ms=20, threshold_dbfs=-50.0):
    f = max(1, int(rate * frame_ms / 1000))
    nf = len(x) // f
    if nf == 0:
        return x
    frames = x[:nf * f].reshape(nf, f)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    loud = np.nonzero(rms > 10 ** (threshold_dbfs / 20.0))[0]
    if len(loud) == 0:
        return x[:0]
    return x[loud[0] * f:(loud[-1] + 1) * f]


def tone_ratio(samples, rate, freq, bandwidth=None, trim=True):
    """Fraction of the signal energy within ``freq`` +/- ``bandwidth`` Hz (Hann-windowed FFT).

    Samples are floats in [-1, 1) (as from decode_audio).  Leading/trailing silence
    (frames below -50 dBFS) is trimmed first; default bandwidth is max(40 Hz, 3 bins)."""
    x = np.asarray(samples, dtype=np.float64)
    if trim:
        x = _trim_silence(x, rate)
    n = len(x)
    if n < 16:
        return 0.0
    spec = np.abs(np.fft.rfft(x * np.hanning(n))) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    total = spec.sum()
    if total <= 0:
        return 0.0
    bw = max(40.0, 3.0 * rate / n) if bandwidth is None else bandwidth
    return float(spec[np.abs(freqs - freq) <= bw].sum() / total)


def tone_detected(samples, rate, freq, min_ratio=0.5, min_level_dbfs=-40.0, bandwidth=None):
    """True when more than ``min_ratio`` of the (non-silent) energy is at ``freq`` and the
    signal is louder than ``min_level_dbfs``."""
    x = np.asarray(samples, dtype=np.float64)
    xt = _trim_silence(x, rate)
    if len(xt) == 0:
        return False
    level = 10 * np.log10(max(np.mean(xt ** 2) * 2, 1e-20))  # dBFS relative to a full-scale sine
    if level < min_level_dbfs:
        return False
    return tone_ratio(xt, rate, freq, bandwidth, trim=False) > min_ratio


def level_dbfs(samples):
    """RMS level in dBFS (full-scale sine = 0 dBFS)."""
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return -math.inf
    return float(10 * np.log10(max(np.mean(x ** 2) * 2, 1e-20)))


# --------------------------------------------------------------------------- misc

def reply_shape(obj, max_list=1):
    """Type skeleton of a decoded reply: {"created": "int", "tags": {...}, "calls": ["str"]}.

    Lists show the shapes of their first ``max_list`` elements ("[]" when empty)."""
    if isinstance(obj, dict):
        return {k: reply_shape(v, max_list) for k, v in obj.items()}
    if isinstance(obj, list):
        return [reply_shape(v, max_list) for v in obj[:max_list]]
    if isinstance(obj, bool):
        return "bool"
    if isinstance(obj, int):
        return "int"
    if isinstance(obj, str):
        return "str"
    if isinstance(obj, bytes):
        return "bytes"
    return type(obj).__name__


def run_parallel(*calls, timeout=MAX_SEND_SECONDS):
    """Run zero-argument callables in threads; return their results in order.
    Re-raises the first exception; raises TimeoutError if a thread outlives ``timeout``."""
    results = [None] * len(calls)
    errors = [None] * len(calls)

    def wrap(i, fn):
        try:
            results[i] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller
            errors[i] = e

    threads = [threading.Thread(target=wrap, args=(i, fn), daemon=True) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
        if t.is_alive():
            raise TimeoutError("run_parallel: a call did not finish within %.1fs" % timeout)
    for e in errors:
        if e is not None:
            raise e
    return results
