// Browser end-to-end test of the media relay: Debian chromium (driven by
// playwright-core, real ICE + DTLS-SRTP + Opus/G.711) <-> codeb-mediad
// <-> a plain RTP "SIP phone" written here with dgram (PCMA, pt 8).
//
//   node --test tests/e2e/mediad.test.mjs   (needs root: network namespace)
//
// Self-contained, like room.test.mjs (the shared setup is in lib.mjs): the
// file re-executes itself inside fresh network and PID namespaces
// (`unshare --net --pid --fork --kill-child`) where only `lo` exists, so ICE can only pair loopback
// candidates and nothing started here outlives the run.  Inside, it starts
// codeb-mediad on a free NG port, serves a small page from an in-test HTTP
// server on 127.0.0.1 and drives the daemon over NG (docs/ng.md) the
// way a SIP bridge does (tests/media/test_webrtc.py uses the same flags):
//
//   offer  (from the page):   ICE=remove, DTLS=off, transport-protocol=RTP/AVP,
//                             rtcp-mux=[demux] (+ codec.transcode=[PCMA])
//   answer (from the phone):  plain RTP/AVP, PCMA
//
// and the daemon answers the page with ICE-Lite, DTLS-SRTP passive, rtcp-mux.
// The page's sound is a 1 kHz WebAudio oscillator: Chromium's fake
// microphone (--use-fake-device-for-media-stream) beeps on and off, which a
// steady-tone check cannot judge.  getUserMedia({audio: true}) is still
// called, as a real page would (media permission, fake device); the page
// offers a plain 127.0.0.1 host candidate, not an mDNS name, and the test
// checks that.
//
//   A  PCMA pass-through: the page offers PCMA only
//   B  Opus in the page <-> PCMA on the phone: codec.transcode=[PCMA]
//   C  as A, with telephone-event/8000 offered by the page too (the phone
//      always offers it, pt 101); then RTCDTMFSender.insertDTMF("159#",
//      100, 70) must reach the phone as RFC 4733 events with pt 101: the
//      digits in order, each with end packet(s) and ~800 samples of
//      duration, increasing timestamps, one SSRC and sequence numbers +1
//      across the PCMA and event packets
//   and at the end: codeb-mediad exits 0 on SIGINT.
//
// Each case checks: connectionState "connected"; the selected pair is
// host 127.0.0.1 -> the daemon's port; the phone gets ~50 PCMA packets/s
// from the daemon's port carrying the 1 kHz tone (Goertzel, >= 50 % of the
// energy); a 1 kHz A-law tone from the phone shows up as the peak of an
// AnalyserNode on the page's remote track; inbound-rtp grows, loses ~0, and
// its codec is the expected one.
//
// Environment: CODEB_MEDIAD (default build/mediad/codeb-mediad),
// CODEB_E2E_CHROMIUM (default /usr/bin/chromium), CODEB_E2E_KEEP=1 keeps
// the temp dir (daemon log, chromium profile).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ROOT, Harness, enterLoopbackNamespace, sleep, waitFor, withTimeout, freePort, tail, startProc, snapshotPage,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------
// 1. Re-exec inside a loopback-only network namespace (lib.mjs).
if (await enterLoopbackNamespace(SELF, 'chromium and codeb-mediad')) defineTests();

// ---------------------------------------------------------------- bencode

// Strings are encoded as UTF-8; dict keys sorted by their bytes.
function bencode(v) {
  const out = [];
  const enc = (x) => {
    if (typeof x === 'number') {
      if (!Number.isInteger(x)) throw new TypeError('bencode: not an integer: ' + x);
      out.push(Buffer.from('i' + x + 'e'));
    } else if (typeof x === 'string' || Buffer.isBuffer(x)) {
      const b = Buffer.isBuffer(x) ? x : Buffer.from(x, 'utf8');
      out.push(Buffer.from(b.length + ':'), b);
    } else if (Array.isArray(x)) {
      out.push(Buffer.from('l'));
      x.forEach(enc);
      out.push(Buffer.from('e'));
    } else if (x && typeof x === 'object') {
      out.push(Buffer.from('d'));
      const keys = Object.keys(x).filter((k) => x[k] !== undefined)
        .map((k) => [Buffer.from(k, 'utf8'), k]).sort((a, b) => Buffer.compare(a[0], b[0]));
      for (const [kb, k] of keys) { enc(kb); enc(x[k]); }
      out.push(Buffer.from('e'));
    } else {
      throw new TypeError('bencode: cannot encode ' + typeof x);
    }
  };
  enc(v);
  return Buffer.concat(out);
}

// Strict decode of one value that must fill buf; strings come back as
// (UTF-8) JS strings.
function bdecode(buf) {
  let pos = 0;
  const fail = (why) => { throw new Error('bdecode: ' + why + ' at offset ' + pos); };
  const dec = (depth) => {
    if (depth > 64) fail('nesting too deep');
    if (pos >= buf.length) fail('truncated');
    const c = buf[pos];
    if (c === 0x69) { // i<int>e
      const end = buf.indexOf(0x65, pos + 1);
      if (end < 0) fail('unterminated int');
      const s = buf.toString('latin1', pos + 1, end);
      if (!/^(0|-?[1-9][0-9]*)$/.test(s)) fail('bad int ' + JSON.stringify(s));
      pos = end + 1;
      return Number(s);
    }
    if (c === 0x6c) { // l...e
      pos += 1;
      const l = [];
      while (buf[pos] !== 0x65) { if (pos >= buf.length) fail('unterminated list'); l.push(dec(depth + 1)); }
      pos += 1;
      return l;
    }
    if (c === 0x64) { // d...e
      pos += 1;
      const d = {};
      while (buf[pos] !== 0x65) {
        if (pos >= buf.length) fail('unterminated dict');
        if (buf[pos] < 0x30 || buf[pos] > 0x39) fail('dict key is not a string');
        const k = dec(depth + 1);
        if (Object.prototype.hasOwnProperty.call(d, k)) fail('duplicate key ' + k);
        d[k] = dec(depth + 1);
      }
      pos += 1;
      return d;
    }
    if (c >= 0x30 && c <= 0x39) { // <len>:<bytes>
      const colon = buf.indexOf(0x3a, pos);
      if (colon < 0) fail('unterminated string length');
      const s = buf.toString('latin1', pos, colon);
      if (!/^(0|[1-9][0-9]*)$/.test(s)) fail('bad string length');
      const n = Number(s);
      if (colon + 1 + n > buf.length) fail('truncated string');
      pos = colon + 1 + n;
      return buf.toString('utf8', colon + 1, pos);
    }
    return fail('unexpected byte 0x' + c.toString(16));
  };
  const v = dec(0);
  if (pos !== buf.length) fail('trailing data');
  return v;
}

// ------------------------------------------------------------- NG client

class NgClient {
  constructor(port) {
    this.port = port;
    this.pending = new Map();
    this.sock = dgram.createSocket('udp4');
    this.sock.on('error', () => {}); // ICMP unreachable while the daemon starts
    this.sock.on('message', (m) => {
      const sp = m.indexOf(0x20);
      if (sp < 0) return;
      const p = this.pending.get(m.toString('latin1', 0, sp));
      if (p) p(m.subarray(sp + 1));
    });
    this.ready = new Promise((r) => this.sock.bind(0, '127.0.0.1', r));
  }

  // one request; the same cookie on retransmission (the daemon's reply cache)
  async request(msg, { timeout = 1000, retries = 2 } = {}) {
    await this.ready;
    const cookie = randomBytes(6).toString('hex');
    const payload = Buffer.concat([Buffer.from(cookie + ' '), bencode(msg)]);
    try {
      for (let i = 0; i <= retries; i++) {
        const got = new Promise((resolve) => {
          const t = setTimeout(() => resolve(null), timeout);
          this.pending.set(cookie, (b) => { clearTimeout(t); resolve(b); });
        });
        this.sock.send(payload, this.port, '127.0.0.1');
        const b = await got;
        if (b) return bdecode(b);
      }
    } finally {
      this.pending.delete(cookie);
    }
    throw new Error('no NG reply to ' + msg.command + ' from 127.0.0.1:' + this.port
      + ' after ' + (retries + 1) + ' attempts');
  }

  close() { try { this.sock.close(); } catch { /* closed */ } }
}

function expectOk(r, what) {
  assert.equal(r.result, 'ok', what + ': NG reply ' + JSON.stringify(r));
  return r;
}

// ----------------------------------------------------------------- SDP

// The audio m= line's address and port (connection line of the media, or
// of the session).
function sdpAudioDest(sdp) {
  const lines = sdp.split(/\r?\n/);
  let addr = null; let port = null; let inAudio = false; let mediaAddr = null;
  for (const l of lines) {
    if (l.startsWith('m=')) {
      if (inAudio) break;
      const f = l.slice(2).split(' ');
      inAudio = f[0] === 'audio';
      if (inAudio) port = Number(f[1]);
    } else if (l.startsWith('c=IN IP4 ')) {
      if (inAudio) mediaAddr = l.slice(9).trim(); else if (port === null) addr = l.slice(9).trim();
    }
  }
  return { address: mediaAddr || addr, port };
}

// payload type -> "NAME/rate" of the audio m= line, in m= order
function sdpCodecs(sdp) {
  const m = /^m=audio \d+ \S+ ([0-9 ]+)\s*$/m.exec(sdp);
  if (!m) return [];
  return m[1].trim().split(/\s+/).map((pt) => {
    const r = new RegExp('^a=rtpmap:' + pt + ' (\\S+)', 'm').exec(sdp);
    return pt + ' ' + (r ? r[1] : (pt === '8' ? 'PCMA/8000' : pt === '0' ? 'PCMU/8000' : '?'));
  });
}

function phoneSdp(port) {
  const id = 1 + Math.floor(Math.random() * 2 ** 30);
  return [
    'v=0',
    `o=- ${id} ${id} IN IP4 127.0.0.1`,
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 8 101`,
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    'a=fmtp:101 0-16',
    'a=ptime:20',
    'a=sendrecv',
    '',
  ].join('\r\n');
}

// ----------------------------------------------------------------- G.711 A-law

const ALAW_SEG_END = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

function alawEncode(pcm) { // int16 -> A-law code (ITU-T G.711, even bits inverted)
  let x = pcm >> 3;
  let mask = 0xD5;
  if (x < 0) { mask = 0x55; x = -x - 1; }
  let seg = 0;
  while (seg < 8 && x > ALAW_SEG_END[seg]) seg++;
  if (seg >= 8) return 0x7F ^ mask;
  return ((seg << 4) | ((x >> (seg < 2 ? 1 : seg)) & 0x0F)) ^ mask;
}

function alawDecode(code) { // A-law code -> int16
  const a = code ^ 0x55;
  let t = (a & 0x0F) << 4;
  const seg = (a & 0x70) >> 4;
  if (seg === 0) t += 8;
  else t = (t + 0x108) << (seg - 1);
  return (a & 0x80) ? t : -t;
}

// The share of the signal's energy at freq: Goertzel over blocks of n
// samples (n * freq / rate whole cycles, so a steady sine lands on the bin);
// a pure sine gives 1, silence 0.
function toneShare(samples, rate, freq, n = 800) {
  const k = Math.round(n * freq / rate);
  const coeff = 2 * Math.cos(2 * Math.PI * k / n);
  let tone = 0; let total = 0;
  for (let off = 0; off + n <= samples.length; off += n) {
    let s1 = 0; let s2 = 0; let e = 0;
    for (let i = 0; i < n; i++) {
      const x = samples[off + i];
      const s0 = x + coeff * s1 - s2;
      s2 = s1; s1 = s0;
      e += x * x;
    }
    const power = s1 * s1 + s2 * s2 - coeff * s1 * s2; // |X(k)|^2
    tone += 2 * power / n;
    total += e;
  }
  return { share: total > 0 ? tone / total : 0, rms: Math.sqrt(total / Math.max(1, samples.length)) };
}

function rtpHeader(b) {
  if (b.length < 12 || (b[0] >> 6) !== 2) return null;
  const cc = b[0] & 0x0f;
  let off = 12 + 4 * cc;
  if (b[0] & 0x10) {
    if (b.length < off + 4) return null;
    off += 4 + 4 * b.readUInt16BE(off + 2);
  }
  let end = b.length;
  if (b[0] & 0x20) end -= b[b.length - 1];
  if (off > end) return null;
  return {
    pt: b[1] & 0x7f, marker: !!(b[1] & 0x80), seq: b.readUInt16BE(2), ts: b.readUInt32BE(4),
    ssrc: b.readUInt32BE(8), payload: b.subarray(off, end),
  };
}

// RFC 4733 telephone-events among received packets ({ h } as rtpHeader
// gives): the packets of one event share its RTP timestamp, so events are
// grouped by timestamp, in order of arrival.  Each: { ts, codes (event
// codes seen), digits, packets, ends (packets with the E bit), duration
// (the largest), endDurations, marker (of its first packet), seqs, sizes }.
const DTMF_DIGITS = '0123456789*#ABCD';

function dtmfEvents(pkts, pt) {
  const events = [];
  const byTs = new Map();
  for (const p of pkts) {
    if (!p.h || p.h.pt !== pt) continue;
    const b = p.h.payload;
    let e = byTs.get(p.h.ts);
    if (!e) {
      e = { ts: p.h.ts, codes: [], digits: '', packets: 0, ends: 0, duration: 0, endDurations: [],
        marker: p.h.marker, seqs: [], sizes: [] };
      byTs.set(p.h.ts, e);
      events.push(e);
    }
    e.packets += 1;
    e.seqs.push(p.h.seq);
    if (!e.sizes.includes(b.length)) e.sizes.push(b.length);
    if (b.length < 4) continue;
    const code = b[0];
    if (!e.codes.includes(code)) {
      e.codes.push(code);
      e.digits += code < DTMF_DIGITS.length ? DTMF_DIGITS[code] : '?';
    }
    const dur = b.readUInt16BE(2);
    e.duration = Math.max(e.duration, dur);
    if (b[1] & 0x80) { e.ends += 1; e.endDurations.push(dur); }
  }
  return events;
}

// One line per telephone-event packet, runs of other packets collapsed.
function packetSummary(pkts, tePt) {
  const out = [];
  let run = null;
  const flush = () => {
    if (run) out.push('    pt ' + run.pt + ' seq ' + run.first + '..' + run.last + ' (' + run.n + ') ts '
      + run.ts0 + '..' + run.ts1 + ' from ' + run.from + (run.gaps ? ' seq gaps ' + run.gaps : ''));
    run = null;
  };
  for (const p of pkts) {
    if (!p.h) { flush(); out.push('    (not RTP, ' + p.len + ' bytes from ' + p.from + ')'); continue; }
    const h = p.h;
    if (h.pt === tePt) {
      flush();
      const b = h.payload;
      out.push('    pt ' + h.pt + ' seq ' + h.seq + ' ts ' + h.ts + (h.marker ? ' M' : '') + ' ssrc ' + h.ssrc
        + (b.length >= 4 ? ' event ' + b[0] + (b[1] & 0x80 ? ' E' : '') + ' vol ' + (b[1] & 0x3f)
          + ' dur ' + b.readUInt16BE(2) : '') + ' len ' + b.length + ' from ' + p.from);
    } else if (run && run.pt === h.pt && run.from === p.from && run.ssrc === h.ssrc) {
      if (((h.seq - run.last) & 0xffff) !== 1) run.gaps += 1;
      run.last = h.seq; run.ts1 = h.ts; run.n += 1;
    } else {
      flush();
      run = { pt: h.pt, from: p.from, ssrc: h.ssrc, first: h.seq, last: h.seq, ts0: h.ts, ts1: h.ts, n: 1, gaps: 0 };
    }
  }
  flush();
  return out;
}

// The plain RTP "SIP phone": RTP on an even port, RTCP on the next one.
async function rtpPhone() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 30000 + 2 * Math.floor(Math.random() * 4000);
    const bind = (p) => new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.once('error', () => { try { s.close(); } catch { /* closed */ } resolve(null); });
      s.bind(p, '127.0.0.1', () => resolve(s));
    });
    const rtp = await bind(port);
    if (!rtp) continue;
    const rtcp = await bind(port + 1);
    if (!rtcp) { rtp.close(); continue; }
    const phone = {
      port, rtp, rtcp, rx: [], rtcpRx: 0, srs: [], rtcpDest: null,
      ssrc: randomBytes(4).readUInt32BE(0), seq: randomBytes(2).readUInt16BE(0), ts: randomBytes(4).readUInt32BE(0),
      sent: 0,
      close() { for (const s of [rtp, rtcp]) try { s.close(); } catch { /* closed */ } },
    };
    rtp.on('error', () => {});
    rtcp.on('error', () => {});
    rtp.on('message', (m, rinfo) => {
      if (phone.rx.length < 20000) phone.rx.push({ t: performance.now(), from: rinfo.address + ':' + rinfo.port, h: rtpHeader(m), len: m.length });
    });
    rtcp.on('message', (m) => {
      phone.rtcpRx += 1;
      onPhoneRtcp(phone, m);
    });
    return phone;
  }
  throw new Error('could not bind an RTP/RTCP port pair');
}

// RTCP at the phone: each SR is kept ({ t, ssrc, ts, lastRtp: the RTP
// header received last before it }) and, once phone.rtcpDest is set,
// answered 20 ms later with an RR on the stream the phone receives
// (RFC 3550 §6.4.2: LSR = the SR's NTP middle 32 bits, DLSR in 1/65536 s).
function onPhoneRtcp(phone, m) {
  for (let off = 0; off + 8 <= m.length;) {
    const len = 4 * (m.readUInt16BE(off + 2) + 1);
    if ((m[off] >> 6) !== 2 || off + len > m.length) return;
    if (m[off + 1] === 200 && len >= 28) {
      const last = phone.rx.length ? phone.rx[phone.rx.length - 1].h : null;
      const sr = { t: performance.now(), ssrc: m.readUInt32BE(off + 4), ts: m.readUInt32BE(off + 16),
        lsr: m.readUInt32BE(off + 10), lastRtp: last };
      if (phone.srs.length < 100) phone.srs.push(sr);
      if (phone.rtcpDest && last) {
        setTimeout(() => {
          const rr = Buffer.alloc(32);
          rr[0] = 0x81;
          rr[1] = 201;
          rr.writeUInt16BE(7, 2);
          rr.writeUInt32BE(phone.ssrc >>> 0, 4);
          rr.writeUInt32BE(sr.ssrc, 8);
          rr.writeUInt32BE(phone.rx[phone.rx.length - 1].h.seq, 16);
          rr.writeUInt32BE(sr.lsr, 24);
          rr.writeUInt32BE(Math.round((performance.now() - sr.t) * 65.536), 28);
          try { phone.rtcp.send(rr, phone.rtcpDest.port, phone.rtcpDest.address); } catch { /* closed */ }
        }, 20);
      }
    }
    off += len;
  }
}

// A 1 kHz sine at -10 dBFS, A-law, one 20 ms packet per 20 ms of real time.
async function sendTone(phone, dest, { seconds = 2, freq = 1000, shouldStop = () => false } = {}) {
  const amp = 32767 * 10 ** (-10 / 20);
  const n = Math.round(seconds * 50);
  const t0 = performance.now();
  for (let i = 0; i < n && !shouldStop(); i++) {
    const wait = t0 + i * 20 - performance.now();
    if (wait > 0) await sleep(wait);
    const pkt = Buffer.alloc(12 + 160);
    pkt[0] = 0x80;
    pkt[1] = 8 | (i === 0 ? 0x80 : 0);
    pkt.writeUInt16BE(phone.seq, 2);
    pkt.writeUInt32BE(phone.ts >>> 0, 4);
    pkt.writeUInt32BE(phone.ssrc >>> 0, 8);
    for (let j = 0; j < 160; j++) {
      const s = (i * 160 + j) / 8000;
      pkt[12 + j] = alawEncode(Math.round(amp * Math.sin(2 * Math.PI * freq * s)));
    }
    phone.rtp.send(pkt, dest.port, dest.address);
    phone.seq = (phone.seq + 1) & 0xffff;
    phone.ts = (phone.ts + 160) >>> 0;
    phone.sent += 1;
  }
  return n;
}

// ----------------------------------------------------------------- the page

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>codeb-mediad e2e</title></head>
<body>
<audio id="remote" muted autoplay playsinline></audio>
<script>
'use strict';
// window.e2e: an RTCPeerConnection sending a 1 kHz oscillator and analysing
// what it receives.  Driven by tests/e2e/mediad.test.mjs.
const e2e = window.e2e = { log: [], states: [] };
const log = (s) => { e2e.log.push(Math.round(performance.now()) + ' ' + s); if (e2e.log.length > 300) e2e.log.shift(); };

e2e.start = async (codec, dtmf = false) => {
  // media permission, as a real page has it (fake device); the track sent is the oscillator's
  e2e.gum = await navigator.mediaDevices.getUserMedia({ audio: true });
  log('getUserMedia: ' + e2e.gum.getAudioTracks().map((t) => t.label).join(','));

  const ctx = e2e.ctx = new AudioContext({ sampleRate: 48000 });
  if (ctx.state !== 'running') await ctx.resume();
  log('AudioContext ' + ctx.state + ' ' + ctx.sampleRate + ' Hz');
  const osc = ctx.createOscillator();
  osc.type = 'sine';
  osc.frequency.value = 1000;
  const gain = ctx.createGain();
  gain.gain.value = 0.3;
  const dest = ctx.createMediaStreamDestination();
  osc.connect(gain).connect(dest);
  osc.start();
  const track = dest.stream.getAudioTracks()[0];

  const pc = e2e.pc = new RTCPeerConnection({ iceServers: [] });
  pc.addEventListener('connectionstatechange', () => { e2e.states.push(pc.connectionState); log('connectionState ' + pc.connectionState); });
  pc.addEventListener('iceconnectionstatechange', () => log('iceConnectionState ' + pc.iceConnectionState));
  pc.addEventListener('icecandidateerror', (ev) => log('icecandidateerror ' + ev.errorCode + ' ' + ev.errorText));
  pc.addEventListener('track', (ev) => {
    log('track ' + ev.track.kind);
    const stream = ev.streams[0] || new MediaStream([ev.track]);
    // Chromium pulls a remote WebRTC stream into WebAudio only while it is
    // also played by a media element (muted is enough)
    const el = document.getElementById('remote');
    el.muted = true;
    el.srcObject = stream;
    el.play().catch((e) => log('audio.play: ' + e.message));
    const src = ctx.createMediaStreamSource(stream);
    const an = e2e.analyser = ctx.createAnalyser();
    an.fftSize = 4096;
    an.smoothingTimeConstant = 0;
    const sink = ctx.createGain();
    sink.gain.value = 0;
    src.connect(an).connect(sink).connect(ctx.destination);
  });
  pc.addTrack(track, dest.stream);
  const tr = pc.getTransceivers()[0];
  const caps = RTCRtpReceiver.getCapabilities('audio').codecs
    .filter((c) => c.mimeType.toLowerCase() === 'audio/' + codec.toLowerCase());
  if (!caps.length) throw new Error('no ' + codec + ' in RTCRtpReceiver.getCapabilities');
  if (dtmf) {
    // without a telephone-event entry here Chromium negotiates no DTMF
    // (RTCDTMFSender.canInsertDTMF false); the one in the audio's clock
    // (RFC 4733 §2.1): 8 kHz with G.711, 48 kHz with Opus
    const rate = caps[0].clockRate;
    const te = RTCRtpReceiver.getCapabilities('audio').codecs
      .filter((c) => c.mimeType.toLowerCase() === 'audio/telephone-event' && c.clockRate === rate);
    if (!te.length) throw new Error('no telephone-event/' + rate + ' in RTCRtpReceiver.getCapabilities');
    caps.push(...te);
  }
  tr.setCodecPreferences(caps);

  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== 'complete') {
    await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('ICE gathering not complete in 10 s')), 10000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }
  log('offer ready');
  return pc.localDescription.sdp;
};

// RTCDTMFSender.insertDTMF(tones, duration, gap) on the audio sender;
// resolves when the sender has played them all (the final tonechange with
// tone '') or after timeout ms, with the tonechange history
e2e.dtmf = (tones, duration, gap, timeout) => new Promise((resolve) => {
  const sender = e2e.pc.getSenders()[0];
  const dtmf = sender && sender.dtmf;
  const changes = [];
  if (!dtmf || !dtmf.canInsertDTMF) {
    resolve({ ok: false, canInsertDTMF: !!(dtmf && dtmf.canInsertDTMF), changes });
    return;
  }
  const t0 = performance.now();
  const t = setTimeout(() => resolve({ ok: false, canInsertDTMF: true, changes, toneBuffer: dtmf.toneBuffer }), timeout);
  dtmf.addEventListener('tonechange', (ev) => {
    changes.push(Math.round(performance.now() - t0) + ':' + (ev.tone || '-'));
    log('tonechange ' + JSON.stringify(ev.tone));
    if (ev.tone === '') { clearTimeout(t); resolve({ ok: true, canInsertDTMF: true, changes }); }
  });
  dtmf.insertDTMF(tones, duration, gap);
  log('insertDTMF ' + tones + ' ' + duration + '/' + gap);
});

e2e.answer = async (sdp) => {
  await e2e.pc.setRemoteDescription({ type: 'answer', sdp });
  log('answer set');
};

// The loudest bin of the remote audio: { hz, db }, or null without a track.
e2e.peak = () => {
  const an = e2e.analyser;
  if (!an) return null;
  const d = new Float32Array(an.frequencyBinCount);
  an.getFloatFrequencyData(d);
  let best = 1;
  for (let i = 2; i < d.length; i++) if (d[i] > d[best]) best = i;
  return { hz: Math.round(best * e2e.ctx.sampleRate / an.fftSize), db: Math.round(d[best]) };
};

// Polls the analyser until the peak sits near hz for 'need' polls in a row
// (or timeout); returns the history.
e2e.waitTone = async (hz, timeout, need = 5) => {
  const hist = [];
  let run = 0;
  const end = performance.now() + timeout;
  while (performance.now() < end) {
    const p = e2e.peak();
    hist.push(p);
    if (p && Math.abs(p.hz - hz) <= 30 && p.db > -70) { run += 1; if (run >= need) return { ok: true, hist }; } else run = 0;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { ok: false, hist };
};

// inbound/outbound audio RTP, their codecs and the selected candidate pair
e2e.stats = async () => {
  const st = await e2e.pc.getStats();
  const out = { inbound: null, outbound: null, pair: null, remoteInbound: null };
  const codec = (id) => { const c = id && st.get(id); return c ? c.mimeType + '/' + c.clockRate + ' pt ' + c.payloadType : null; };
  const cand = (id) => { const c = st.get(id); return c && { candidateType: c.candidateType, address: c.address, port: c.port, protocol: c.protocol }; };
  st.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') {
      out.inbound = { packetsReceived: s.packetsReceived, packetsLost: s.packetsLost, jitter: s.jitter,
        bytesReceived: s.bytesReceived, totalSamplesReceived: s.totalSamplesReceived,
        concealedSamples: s.concealedSamples, codec: codec(s.codecId), audioLevel: s.audioLevel };
    }
    if (s.type === 'remote-inbound-rtp' && s.kind === 'audio') {
      out.remoteInbound = { ssrc: s.ssrc, roundTripTime: s.roundTripTime,
        roundTripTimeMeasurements: s.roundTripTimeMeasurements, packetsLost: s.packetsLost };
    }
    if (s.type === 'outbound-rtp' && s.kind === 'audio') {
      out.outbound = { packetsSent: s.packetsSent, codec: codec(s.codecId) };
    }
    if (s.type === 'transport' && s.selectedCandidatePairId && st.get(s.selectedCandidatePairId)) {
      const p = st.get(s.selectedCandidatePairId);
      out.pair = { state: p.state, nominated: p.nominated, local: cand(p.localCandidateId), remote: cand(p.remoteCandidateId) };
      out.dtlsState = s.dtlsState;
      out.srtpCipher = s.srtpCipher;
    }
  });
  return out;
};

e2e.snapshot = () => ({
  connectionState: e2e.pc && e2e.pc.connectionState,
  iceConnectionState: e2e.pc && e2e.pc.iceConnectionState,
  signalingState: e2e.pc && e2e.pc.signalingState,
  states: e2e.states,
  ctx: e2e.ctx && e2e.ctx.state,
  peak: e2e.peak(),
  log: e2e.log,
});
</script>
</body></html>
`;

// ---------------------------------------------------------------------------

function defineTests() {
  const MEDIAD = path.resolve(ROOT, process.env.CODEB_MEDIAD || path.join('build', 'mediad', 'codeb-mediad'));
  const CONNECT_MS = 15000;

  const env = {
    mediad: null,
    ng: null,
    ngPort: 0,
    http: null,
    httpPort: 0,
    phones: [],
  };
  // temp dir, browser, pages; cleanup on every way out, watchdog (lib.mjs)
  const h = new Harness({
    async stop() {
      for (const p of env.phones.splice(0)) p.close();
      if (env.ng) { env.ng.close(); env.ng = null; }
      if (env.http) {
        const s = env.http;
        env.http = null;
        s.closeAllConnections();
        await withTimeout(new Promise((r) => s.close(r)), 5000, 'http close').catch(() => {});
      }
      if (env.mediad && !env.mediad.exited) await env.mediad.stop('SIGINT');
    },
    procs: () => [env.mediad],
    diagnose: (title) => dumpDiagnostics(title),
    watchdogMs: 180000,
  });
  const mediadLog = () => path.join(h.tmp, 'logs', 'mediad.log');

  before(async () => {
    assert.ok(fs.existsSync(MEDIAD), 'codeb-mediad not built: run ./build.sh build (looked for ' + MEDIAD
      + '; CODEB_MEDIAD overrides)');
    h.makeTmp('codeb-e2e-mediad-');

    // codeb-mediad: NG on a free port, media ports in a 200-port range of
    // its own (the phone binds below 38000)
    env.ngPort = await freePort('udp');
    const base = 41000 + 2 * Math.floor(Math.random() * 9000);
    env.mediad = startProc('codeb-mediad', MEDIAD, ['--listen-ng', '127.0.0.1:' + env.ngPort,
      '--port-min', String(base), '--port-max', String(base + 199), '--interface', '127.0.0.1',
      '--timeout', '60', '--log-level', 'debug'], mediadLog());
    env.portRange = [base, base + 199];
    env.ng = new NgClient(env.ngPort);
    await waitFor('codeb-mediad answering NG ping on 127.0.0.1:' + env.ngPort, async () => {
      if (env.mediad.exited) {
        throw new Error('codeb-mediad exited (code ' + env.mediad.code + ', signal ' + env.mediad.signal + '):\n'
          + tail(mediadLog(), 30));
      }
      const r = await env.ng.request({ command: 'ping' }, { timeout: 200, retries: 0 }).catch(() => null);
      return r && r.result === 'pong';
    }, { timeout: 10000 });

    // the page, from 127.0.0.1 (a secure context for getUserMedia)
    env.http = http.createServer((req, res) => {
      if (req.url === '/' || req.url.startsWith('/?')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
        res.end(PAGE);
      } else if (req.url === '/favicon.ico') {
        res.writeHead(204);
        res.end();
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    });
    await new Promise((resolve, reject) => {
      env.http.once('error', reject);
      env.http.listen(0, '127.0.0.1', resolve);
    });
    env.httpPort = env.http.address().port;

    // chromium (Debian's; never a downloaded one)
    await h.launchChromium();
  });

  after(() => h.close());

  // ------------------------------------------------------------- page helpers

  async function openPage(label) {
    const page = await h.openPage(label, `http://127.0.0.1:${env.httpPort}/`);
    await page.waitForFunction(() => !!window.e2e, null, { timeout: 5000 });
    return page;
  }

  function snapshot(page) {
    return snapshotPage(page, () => window.e2e.snapshot());
  }

  async function dumpDiagnostics(title, extra = []) {
    const out = ['', '===== e2e diagnostics: ' + title + ' =====', ...await h.pageReport(snapshot)];
    out.push(...extra);
    if (h.tmp) out.push('--- codeb-mediad log (tail):', tail(mediadLog(), 80));
    console.error(out.join('\n'));
  }

  // Runs body with a fresh page and phone; on failure prints the page's
  // state and console, what the phone got, the SDPs and the daemon log;
  // always closes the page and the phone and deletes the call.
  async function scenario(title, body) {
    const ctx = { sdp: {}, callId: null };
    try {
      await body(ctx);
    } catch (e) {
      const extra = [];
      for (const [k, v] of Object.entries(ctx.sdp)) extra.push('--- SDP ' + k + ':', v.trimEnd());
      if (ctx.phone) {
        const froms = {};
        for (const p of ctx.phone.rx) froms[p.from + ' pt ' + (p.h ? p.h.pt : '?')] = (froms[p.from + ' pt ' + (p.h ? p.h.pt : '?')] || 0) + 1;
        extra.push('--- phone ' + ctx.phone.port + ': sent ' + ctx.phone.sent + ', received ' + JSON.stringify(froms)
          + ', rtcp ' + ctx.phone.rtcpRx);
      }
      if (ctx.summary) extra.push(...ctx.summary());
      await dumpDiagnostics(title, extra);
      throw e;
    } finally {
      if (ctx.callId && env.ng) {
        await env.ng.request({ command: 'delete', 'call-id': ctx.callId }).catch(() => {});
      }
      if (ctx.phone) {
        ctx.phone.close();
        env.phones = env.phones.filter((p) => p !== ctx.phone);
      }
      await h.closePages();
    }
  }

  // ------------------------------------------------------------- one call

  // dtmf: the page also offers telephone-event/8000 (the phone always does,
  // pt 101), and every leg of the signalling must carry it across
  // rtcp: the phone answers the page's SRs; the page must then measure the
  // round trip (its report names its own SSRC) and the SRs the phone gets
  // must carry the SSRC and RTP clock of the stream it receives
  async function webrtcToSip(ctx, { label, codec, flags, expectCodec, dtmf = false, rtcp = false }) {
    const page = ctx.page = await openPage(label);
    const phone = ctx.phone = await rtpPhone();
    env.phones.push(phone);
    const callId = ctx.callId = 'e2e-' + randomBytes(8).toString('hex');
    const isTe = (c) => /^\d+ telephone-event\//i.test(c);

    // the page offers
    const offer = ctx.sdp['page offer'] = await withTimeout(page.evaluate((a) => window.e2e.start(a.codec, a.dtmf),
      { codec, dtmf }), 20000, label + ' createOffer');
    assert.match(offer, /^a=fingerprint:/m, 'the page offers DTLS-SRTP');
    assert.match(offer, /^a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 \d+ typ host/m,
      'the page offers a plain 127.0.0.1 host candidate (no mDNS name)');
    const pageCodecs = sdpCodecs(offer);
    const pageAudio = pageCodecs.filter((c) => !(dtmf && isTe(c)));
    assert.ok(pageAudio.length > 0 && pageAudio.every((c) => c.toLowerCase().includes(codec.toLowerCase())),
      'setCodecPreferences(' + codec + (dtmf ? ' + telephone-event' : '') + ') left ' + JSON.stringify(pageCodecs));
    const teWant = 'telephone-event/' + (codec.toLowerCase() === 'opus' ? 48000 : 8000);
    if (dtmf) {
      assert.deepEqual(pageCodecs.filter(isTe).map((c) => c.split(' ')[1].toLowerCase()), [teWant],
        'the page offers ' + teWant + ' (only): ' + JSON.stringify(pageCodecs));
    }

    // NG offer, as the SIP bridge sends it
    const r1 = expectOk(await env.ng.request({
      command: 'offer', 'call-id': callId, 'from-tag': 'browser', sdp: offer,
      ICE: 'remove', DTLS: 'off', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['demux'], ...flags,
    }), 'offer');
    const toSip = ctx.sdp['offer to SIP'] = r1.sdp;
    assert.equal(typeof toSip, 'string', 'offer reply has an sdp');
    assert.doesNotMatch(toSip, /^a=(ice-|candidate|fingerprint|setup)/m, 'no ICE/DTLS towards SIP');
    assert.match(toSip, /^m=audio \d+ RTP\/AVP /m);
    assert.ok(sdpCodecs(toSip).some((c) => c.startsWith('8 ')), 'PCMA offered to SIP: ' + JSON.stringify(sdpCodecs(toSip)));
    if (dtmf) {
      assert.ok(sdpCodecs(toSip).some((c) => /^\d+ telephone-event\/8000$/i.test(c)),
        'telephone-event/8000 offered to SIP: ' + JSON.stringify(sdpCodecs(toSip)));
    }
    const sipDest = sdpAudioDest(toSip);
    if (rtcp) phone.rtcpDest = { address: sipDest.address, port: sipDest.port + 1 };
    assert.equal(sipDest.address, '127.0.0.1', 'daemon address towards SIP');
    assert.ok(sipDest.port >= env.portRange[0] && sipDest.port <= env.portRange[1],
      'daemon port towards SIP ' + sipDest.port + ' outside ' + env.portRange.join('-'));

    // the phone answers PCMA
    const r2 = expectOk(await env.ng.request({
      command: 'answer', 'call-id': callId, 'from-tag': 'browser', 'to-tag': 'sip', sdp: phoneSdp(phone.port),
    }), 'answer');
    const answer = ctx.sdp['answer to page'] = r2.sdp;
    for (const want of [/^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, /^a=ice-lite/m, /^a=ice-ufrag:/m, /^a=ice-pwd:/m,
      /^a=fingerprint:sha-256 /m, /^a=setup:passive/m, /^a=rtcp-mux/m, /^a=mid:0/m, / typ host/m]) {
      assert.match(answer, want, 'answer to the page');
    }
    const pageDest = sdpAudioDest(answer);
    assert.ok(pageDest.port >= env.portRange[0] && pageDest.port <= env.portRange[1],
      'daemon port towards the page ' + pageDest.port);
    assert.deepEqual(sdpCodecs(answer).filter((c) => !/telephone-event|CN\//i.test(c)).map((c) => c.split(' ')[1].split('/')[0].toLowerCase()),
      [expectCodec.toLowerCase()], 'codec answered to the page: ' + JSON.stringify(sdpCodecs(answer)));
    if (dtmf) {
      // the page's own payload type for it, as it offered it
      const pageTe = pageCodecs.find(isTe);
      assert.deepEqual(sdpCodecs(answer).filter(isTe), [pageTe],
        'telephone-event answered to the page with the page\'s payload type: ' + JSON.stringify(sdpCodecs(answer)));
    }
    await withTimeout(page.evaluate((s) => window.e2e.answer(s), answer), 10000, label + ' setRemoteDescription');

    // ICE (lite) + DTLS
    await page.waitForFunction(() => window.e2e.pc.connectionState === 'connected', null,
      { timeout: CONNECT_MS, polling: 100 }).catch(() => {
      throw new Error(label + ': no connected RTCPeerConnection within ' + CONNECT_MS + ' ms');
    });
    const tConnected = performance.now();
    const st0 = await page.evaluate(() => window.e2e.stats());
    assert.ok(st0.pair, label + ': no selected candidate pair ' + JSON.stringify(st0));
    assert.equal(st0.pair.local.candidateType, 'host', label + ': ' + JSON.stringify(st0.pair));
    assert.equal(st0.pair.local.address, '127.0.0.1', label + ': ' + JSON.stringify(st0.pair));
    assert.equal(st0.pair.remote.address, '127.0.0.1', label + ': ' + JSON.stringify(st0.pair));
    assert.equal(st0.pair.remote.port, pageDest.port, label + ': remote candidate is not the daemon port of the answer '
      + JSON.stringify(st0.pair));
    assert.equal(st0.dtlsState, 'connected', label + ': DTLS ' + JSON.stringify(st0));

    // page -> phone: 2 s of PCMA from the daemon's port, with the 1 kHz tone
    await sleep(Math.max(0, tConnected + 2300 - performance.now()));
    const win = phone.rx.filter((p) => p.t >= tConnected + 300 && p.t < tConnected + 2300);
    const fromDaemon = win.filter((p) => p.from === '127.0.0.1:' + sipDest.port);
    assert.ok(win.length > 0, label + ': the phone got no RTP in the 2 s after connected');
    assert.equal(fromDaemon.length, win.length, label + ': RTP to the phone from elsewhere than '
      + '127.0.0.1:' + sipDest.port + ': ' + JSON.stringify([...new Set(win.map((p) => p.from))]));
    const pts = [...new Set(fromDaemon.map((p) => p.h && p.h.pt))];
    assert.deepEqual(pts, [8], label + ': payload types to the phone');
    const rate = fromDaemon.length / 2;
    assert.ok(rate >= 45 && rate <= 55, label + ': ' + rate + ' packets/s to the phone (want ~50)');
    assert.equal(new Set(fromDaemon.map((p) => p.h.ssrc)).size, 1, label + ': one SSRC towards the phone');
    const sizes = [...new Set(fromDaemon.map((p) => p.h.payload.length))];
    assert.deepEqual(sizes, [160], label + ': 20 ms A-law payloads');
    // sequence numbers without gaps or reordering in the window
    const seqGaps = fromDaemon.slice(1).filter((p, i) => ((p.h.seq - fromDaemon[i].h.seq) & 0xffff) !== 1).length;
    assert.equal(seqGaps, 0, label + ': sequence discontinuities towards the phone');
    const samples = [];
    for (const p of fromDaemon) for (const b of p.h.payload) samples.push(alawDecode(b) / 32768);
    const tone = toneShare(samples.slice(1600), 8000, 1000);
    assert.ok(tone.rms > 0.01, label + ': the phone hears silence (rms ' + tone.rms.toFixed(4) + ')');
    assert.ok(tone.share >= 0.5, label + ': 1 kHz share of the energy at the phone ' + tone.share.toFixed(3)
      + ' (rms ' + tone.rms.toFixed(4) + ')');

    // nothing at 1 kHz on the page before the phone speaks (no loop-back)
    const quiet = await page.evaluate(() => window.e2e.peak());
    assert.ok(!quiet || quiet.db < -70 || Math.abs(quiet.hz - 1000) > 30,
      label + ': the page hears a tone before the phone sends: ' + JSON.stringify(quiet));

    // phone -> page: 2 s of 1 kHz A-law to the address the phone was offered
    const stA = await page.evaluate(() => window.e2e.stats());
    const sending = sendTone(phone, sipDest, { seconds: 2 });
    const heard = await withTimeout(page.evaluate(() => window.e2e.waitTone(1000, 2500)), 10000, label + ' waitTone');
    const stB = await page.evaluate(() => window.e2e.stats());
    await sending;
    await sleep(300);
    const stC = await page.evaluate(() => window.e2e.stats());
    const peaks = heard.hist.filter(Boolean).map((p) => p.hz + '@' + p.db);
    assert.ok(heard.ok, label + ': the page\'s analyser never peaked at 1 kHz: ' + peaks.join(' '));
    assert.ok(stB.inbound && stC.inbound, label + ': no inbound-rtp ' + JSON.stringify(stC));
    const before = stA.inbound ? stA.inbound.packetsReceived : 0;
    assert.ok(stB.inbound.packetsReceived > before && stC.inbound.packetsReceived > stB.inbound.packetsReceived,
      label + ': inbound packetsReceived not growing: ' + [before, stB.inbound.packetsReceived, stC.inbound.packetsReceived]);
    const got = stC.inbound.packetsReceived - before;
    assert.ok(got >= 90, label + ': the page received ' + got + ' of the phone\'s ' + phone.sent + ' packets');
    assert.ok(stC.inbound.packetsLost <= 2, label + ': packetsLost ' + stC.inbound.packetsLost);
    assert.match(stC.inbound.codec || '', new RegExp('^audio/' + expectCodec + '/', 'i'),
      label + ': inbound codec ' + JSON.stringify(stC.inbound));
    assert.match(stC.outbound && stC.outbound.codec || '', new RegExp('^audio/' + expectCodec + '/', 'i'),
      label + ': outbound codec ' + JSON.stringify(stC.outbound));

    // the daemon's view: ICE and DTLS on the page's stream
    const q = expectOk(await env.ng.request({ command: 'query', 'call-id': callId }), 'query');
    const qflags = Object.values(q.tags || {}).flatMap((t) => (t.medias || []).flatMap((m) => (m.streams || []).flatMap((s) => s.flags || [])));
    assert.ok(qflags.includes('ICE') && qflags.includes('DTLS'), label + ': query flags ' + JSON.stringify(qflags));
    assert.equal(await page.evaluate(() => window.e2e.pc.connectionState), 'connected');

    let rtt = null;
    if (rtcp) rtt = await rtcpAcross(page, phone, label);

    ctx.sipDest = sipDest;
    return {
      ...(rtt === null ? {} : { rttMs: rtt }),
      toPhone: { pps: rate, share: +tone.share.toFixed(3) },
      toPage: { packets: got, lost: stC.inbound.packetsLost, codec: stC.inbound.codec, peak: peaks[peaks.length - 1] },
      pair: st0.pair.local.port + ' -> ' + st0.pair.remote.port,
    };
  }

  // ------------------------------------------------------- RTCP across

  // Chromium sends audio RTCP about every 5 s: wait up to 12 s for the
  // page to have a round trip from the phone's RR; returns it in ms.
  async function rtcpAcross(page, phone, label) {
    let st = null;
    await waitFor(label + ': remote-inbound-rtp with a roundTripTime on the page (phone SRs '
      + phone.srs.length + ')', async () => {
      st = await page.evaluate(() => window.e2e.stats());
      return st.remoteInbound && st.remoteInbound.roundTripTime > 0;
    }, { timeout: 12000, interval: 200 });
    assert.ok(st.remoteInbound.roundTripTime < 0.5, label + ': RTT ' + JSON.stringify(st.remoteInbound));
    const srs = phone.srs.filter((sr) => sr.lastRtp);
    assert.ok(srs.length > 0, label + ': no SR reached the phone after its RTP');
    for (const sr of srs) {
      assert.equal(sr.ssrc, sr.lastRtp.ssrc, label + ': the SR names the SSRC the phone receives');
      // the SR's timestamp is "now" in the stream's clock: within 250 ms
      // (2000 at 8 kHz) of the RTP that arrived just before it
      const d = (sr.ts - sr.lastRtp.ts) | 0;
      assert.ok(Math.abs(d) <= 2000, label + ': SR RTP timestamp ' + sr.ts + ' vs last RTP ' + sr.lastRtp.ts
        + ' (' + d + ' at 8 kHz)');
    }
    return Math.round(st.remoteInbound.roundTripTime * 1000 * 10) / 10;
  }

  // ------------------------------------------------------- DTMF page -> phone

  // After webrtcToSip(..., dtmf: true): the page's RTCDTMFSender plays
  // `tones`; the phone must get them as RFC 4733 events with its own
  // payload type, in one RTP stream with the audio around them.
  async function dtmfToSip(ctx, { label, tones = '159#', duration = 100, gap = 70, phonePt = 101 }) {
    const { page, phone, sipDest } = ctx;
    const daemon = '127.0.0.1:' + sipDest.port;
    // the window judged: from 10 packets (200 ms of audio) before
    // insertDTMF, as Chromium starts the first event at once
    const start = Math.max(0, phone.rx.length - 10);
    ctx.summary = () => ['--- phone: RTP from ' + start + ' of ' + phone.rx.length + ' packets',
      ...packetSummary(phone.rx.slice(start), phonePt)];

    const played = await withTimeout(page.evaluate((a) => window.e2e.dtmf(a.tones, a.duration, a.gap, 5000),
      { tones, duration, gap }), 10000, label + ' insertDTMF');
    assert.ok(played.canInsertDTMF, label + ': RTCDTMFSender.canInsertDTMF is false (telephone-event not negotiated)');
    assert.ok(played.ok, label + ': the DTMF sender did not finish ' + JSON.stringify(played));
    assert.deepEqual(played.changes.map((c) => c.split(':')[1]).join(''), tones + '-',
      label + ': tonechange events ' + JSON.stringify(played.changes));

    // the last event's end packet(s), then a little audio after them
    const ended = () => dtmfEvents(phone.rx.slice(start), phonePt).filter((e) => e.ends > 0).length;
    await waitFor(label + ': the end packets of ' + tones.length + ' telephone-events at the phone',
      () => ended() >= tones.length, { timeout: 3000, interval: 50 }).catch((e) => {
      throw new Error(e.message + ' (' + ended() + ' ended)');
    });
    await sleep(300);

    const pkts = phone.rx.slice(start);
    const events = dtmfEvents(pkts, phonePt);
    const evInfo = JSON.stringify(events.map(({ seqs, ...e }) => e));
    assert.equal(events.map((e) => e.digits).join(''), tones, label + ': digits at the phone; events ' + evInfo);
    for (const e of events) {
      const what = label + ': event ' + JSON.stringify(e.digits) + ' ts ' + e.ts;
      assert.equal(e.codes.length, 1, what + ': one event code per timestamp ' + evInfo);
      assert.deepEqual(e.sizes, [4], what + ': 4-byte payloads (one event, no redundancy) ' + evInfo);
      assert.ok(e.ends >= 1 && e.ends <= 3, what + ': ' + e.ends + ' end packets (want 1..3) ' + evInfo);
      assert.equal(new Set(e.endDurations).size, 1, what + ': end packets with different durations ' + evInfo);
      const want = duration * 8;
      assert.ok(e.endDurations[0] >= want * 0.5 && e.endDurations[0] <= want * 1.5,
        what + ': duration ' + e.endDurations[0] + ' samples (want ~' + want + ') ' + evInfo);
    }
    for (let i = 1; i < events.length; i++) {
      const d = (events[i].ts - events[i - 1].ts) | 0;
      assert.ok(d > 0, label + ': event timestamps do not increase: ' + events.map((e) => e.ts).join(' '));
    }

    // one RTP stream: audio and events from the daemon's port, one SSRC,
    // sequence numbers +1 across both
    assert.deepEqual([...new Set(pkts.map((p) => p.from))], [daemon], label + ': RTP to the phone from');
    assert.ok(pkts.every((p) => p.h), label + ': non-RTP packets to the phone');
    assert.deepEqual([...new Set(pkts.map((p) => p.h.pt))].sort((a, b) => a - b), [8, phonePt],
      label + ': payload types to the phone');
    assert.equal(new Set(pkts.map((p) => p.h.ssrc)).size, 1, label + ': one SSRC for audio and events');
    const firstEv = pkts.findIndex((p) => p.h.pt === phonePt);
    const lastEv = pkts.findLastIndex((p) => p.h.pt === phonePt);
    assert.ok(pkts.slice(0, firstEv).some((p) => p.h.pt === 8) && pkts.slice(lastEv + 1).some((p) => p.h.pt === 8),
      label + ': PCMA before and after the events');
    const breaks = [];
    for (let i = 1; i < pkts.length; i++) {
      if (((pkts[i].h.seq - pkts[i - 1].h.seq) & 0xffff) !== 1) {
        breaks.push('pt ' + pkts[i - 1].h.pt + ' seq ' + pkts[i - 1].h.seq + ' -> pt ' + pkts[i].h.pt + ' seq ' + pkts[i].h.seq);
      }
    }
    assert.deepEqual(breaks, [], label + ': sequence numbers not +1 across audio and event packets');

    return {
      digits: events.map((e) => e.digits).join(''),
      events: events.map((e) => e.digits + ' ts+' + ((e.ts - events[0].ts) >>> 0) + ' dur ' + e.endDurations[0]
        + ' pkts ' + e.packets + ' ends ' + e.ends),
      packets: pkts.length,
    };
  }

  // ------------------------------------------------------------------- tests

  test('A: PCMA pass-through: the page (PCMA) <-> codeb-mediad <-> plain RTP PCMA', { timeout: 60000 }, async (t) => {
    await scenario('A PCMA', async (ctx) => {
      const r = await webrtcToSip(ctx, { label: 'A', codec: 'PCMA', flags: {}, expectCodec: 'PCMA' });
      t.diagnostic(JSON.stringify(r));
    });
  });

  test('B: transcoding: the page (Opus) <-> codeb-mediad <-> plain RTP PCMA; RTCP names each side\'s own SSRC and clock', { timeout: 60000 }, async (t) => {
    await scenario('B Opus<->PCMA', async (ctx) => {
      const r = await webrtcToSip(ctx, { label: 'B', codec: 'opus', flags: { codec: { transcode: ['PCMA'] } },
        expectCodec: 'opus', rtcp: true });
      t.diagnostic(JSON.stringify(r));
    });
  });

  test('C: DTMF: the page\'s RTCDTMFSender (PCMA + telephone-event/8000) reaches the phone as RFC 4733 events', { timeout: 60000 }, async (t) => {
    await scenario('C DTMF', async (ctx) => {
      const r = await webrtcToSip(ctx, { label: 'C', codec: 'PCMA', flags: {}, expectCodec: 'PCMA', dtmf: true });
      t.diagnostic(JSON.stringify(r));
      const d = await dtmfToSip(ctx, { label: 'C' });
      t.diagnostic(JSON.stringify(d));
    });
  });

  test('D: DTMF with Opus: telephone-event/48000 from the page reaches the phone as telephone-event/8000', { timeout: 60000 }, async (t) => {
    await scenario('D DTMF Opus', async (ctx) => {
      const r = await webrtcToSip(ctx, { label: 'D', codec: 'opus', flags: { codec: { transcode: ['PCMA'] } },
        expectCodec: 'opus', dtmf: true });
      t.diagnostic(JSON.stringify(r));
      const d = await dtmfToSip(ctx, { label: 'D' });
      t.diagnostic(JSON.stringify(d));
    });
  });

  test('codeb-mediad is alive and exits 0 on SIGINT', { timeout: 40000 }, async () => {
    await h.closeBrowser();
    assert.ok(env.mediad && !env.mediad.exited, 'codeb-mediad died during the run (code '
      + (env.mediad && env.mediad.code) + ', signal ' + (env.mediad && env.mediad.signal) + '):\n' + tail(mediadLog(), 40));
    const r = await env.ng.request({ command: 'list' });
    assert.equal(r.result, 'ok', 'list: ' + JSON.stringify(r));
    const graceful = await env.mediad.stop('SIGINT', 10000);
    assert.ok(graceful, 'codeb-mediad did not exit within 10 s of SIGINT:\n' + tail(mediadLog(), 40));
    assert.equal(env.mediad.code, 0, 'codeb-mediad exit code ' + env.mediad.code + ' signal ' + env.mediad.signal
      + ':\n' + tail(mediadLog(), 40));
  });
}
