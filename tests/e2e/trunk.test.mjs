// Trunk calls end to end with real peers: Debian's sipp (sip-tester) plays
// the carrier on 127.0.0.1 over UDP, the softphone pages (html/phone-jssip.html,
// html/phone-sipjs.html) in Debian chromium are the users, and nginx with
// ngx_codeb_sipws (the B2BUA, trunks, registrar) puts the calls through
// codeb-mediad.  t/105-sip-trunk.t and t/106-sip-trunk-reg.t test the same
// behaviours at the protocol level; this file with the real libraries, real
// media and a real sipp (docs/sip.md "Trunks", "Trunk registration",
// "Calls", "Call records").
//
//   node --test tests/e2e/          (./build.sh test runs this after t/)
//
// Like the other files here, it re-executes itself inside fresh network
// and PID namespaces where only `lo` exists (lib.mjs; the softphone
// helpers shared with phones.test.mjs are in sip-lib.mjs), and starts its own
// redis-server, codeb-mediad, nginx (2 workers; pages, SIP over ws:// and
// /signal.ashx on http; a codeb_sip UDP listener in stream{}; the tenant
// with three trunks and two inbound routes), sipp processes and chromium.
// The audio of the carrier's side is the test's own RTP socket (the SDP
// sipp sends names it): it sends a 400 Hz PCMA tone every 20 ms to the
// address in the server's SDP and counts what comes back.  sipp waits for
// the test at the points where the test must act first (after the browser
// answered, or while it rings): the go-ahead is an INFO the test sends to
// sipp's socket with the call's Call-ID (never seen by the server).
// Everything sipp sent and received is in its -trace_msg file, which the
// test reads (it is flushed per message) for SDP, timing and "nothing
// more" checks.
//
//   R  trunk registration (runs first: the registrar is up from the
//      start): the trunk `upstream` (register=on, username/password) is
//      registered with sipp playing the registrar (t/tools/
//      sipp-registrar.xml: 401 with an MD5 challenge, the digest checked by
//      sipp's verifyauth, 200 granting 6 s), refreshed after half of that
//      (the second round of the scenario); ?healthsummary shows it
//      registered:true, lastSeenSec small; the REGISTERs are as documented.
//      At the end of the file, with the registrar gone, it is false again.
//   1  inbound DID call: sipp calls +4930222 through the trunk `carrier`
//      with a PCMA/PCMU offer; 100 and 180 at once; alice's JsSIP page
//      rings with the caller's name and number and answers; the 200 to the
//      carrier has a plain RTP answer (RTP/AVP, no ICE/DTLS, G.711, the
//      same To tag as the 180, which has a Contact); audio both ways
//      through codeb-mediad: the page's inbound-rtp grows (the remote
//      candidate a daemon port; Opus, or G.711 passed through when the
//      browser takes it) and PCMA comes back to the carrier's RTP socket
//      from the port in the daemon's SDP (symmetric RTP); sipp hangs up
//      (BYE to the 200's Contact), the page is idle; the call record in
//      ?cdrlog (inbound, trunk, DID, normal, hangup by the caller).
//   2  the SIP.js page (bob) dials +4930999: sipp answering as the carrier
//      gets the INVITE (plain RTP, G.711, no Opus/ICE/DTLS, From bob),
//      rings (the page shows ringing), answers PCMA; audio both ways; bob
//      hangs up, sipp gets the BYE; ?cdrlog and ?diallog show it.
//   3  sibling-fork collapse: sipp calls bob's DID through `carrier`; once
//      the page rings, a second sipp on `carrier2` delivers the same call
//      again (the same Call-ID and From tag, another Via branch) and a B2BUA
//      sibling (another Call-ID, the same caller number and DID, within
//      2 s): each gets 100 and 180 and then nothing, the page rang once
//      (one INVITE); the siblings are cancelled (200, 487) while the page
//      keeps ringing; then the page answers the first delivery, which gets
//      its 200 and later hangs up.
//   4  CANCEL propagation, for each page: sipp calls, the page rings, sipp
//      cancels; the page must stop ringing within 500 ms of the test's
//      go-ahead to sipp (which includes sipp's own reaction); the
//      CANCEL the page got has its INVITE's branch, the page answered 487,
//      sipp got 200 and 487; the call record says cancelled.  The times
//      are printed: go-ahead -> CANCEL sent (sipp's trace) -> CANCEL at
//      the page -> page idle.
//   And at the end: no call left in codeb-mediad, the trunk `carrier` was
//   seen, nginx quits gracefully, no worker died, no [alert]/[crit]/[emerg].
//
// Environment: CODEB_E2E_CHROMIUM (default /usr/bin/chromium), CODEB_MEDIAD
// (default build/mediad/codeb-mediad), TEST_NGINX_MODULES (default
// build/modules), CODEB_SIPP (default /usr/bin/sipp), CODEB_E2E_KEEP=1
// keeps the temp dir (sipp traces in logs/), CODEB_E2E_TRACE=1 prints each
// scenario's diagnostics also when it passes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ROOT, Harness, enterLoopbackNamespace, sleep, waitFor, freePort, tail, startProc, waitUp, httpGet as get,
  nginxConf, startNginx, assertRunning, quitNginx, assertNoAlerts, serverReport, assertNoMediaCalls,
} from './lib.mjs';
import {
  CONNECT_MS, phoneHttpConf, startPhoneServers, phoneSnapshot, phoneState as state, waitPage, waitCall, press, openPhone,
  assertInboundAudio,
} from './sip-lib.mjs';

const SELF = fileURLToPath(import.meta.url);

if (await enterLoopbackNamespace(SELF, 'chromium, nginx, sipp and codeb-mediad')) defineTests();

// lib.mjs httpGet with the request headers `headers`, 3000 ms
function httpGet(port, p, headers = {}) {
  return get(port, p, { headers, timeout: 3000 });
}

// A JWT signed HS256 (what codeb_oidc_hs256_secret verifies)
function jwtHs256(secret, claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = b64({ alg: 'HS256', typ: 'JWT' }) + '.' + b64(claims);
  return data + '.' + crypto.createHmac('sha256', secret).update(data).digest('base64url');
}

// ---------------------------------------------------------------------------
// sipp's -trace_msg file: entries "-----...----- YYYY-MM-DD HH:MM:SS.uuuuuu"
// followed by "UDP message sent (N bytes):" or "UDP message received [N]
// bytes :" and the message (sipp flushes the file after every entry).
// Returns [{ t (epoch ms, fractional), dir: 'sent'|'received', text,
// first (the start line), callId, cseq }], unexpected-message dumps left out.
function readSippTrace(file) {
  let raw;
  try { raw = fs.readFileSync(file, 'latin1'); } catch { return []; }
  const out = [];
  const re = /^-{47} (\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d+)\n(UDP message (sent|received)[^\n]*)\n/gm;
  const heads = [];
  let m;
  while ((m = re.exec(raw))) heads.push({ m, start: m.index, body: re.lastIndex });
  for (let i = 0; i < heads.length; i++) {
    const { m: h, body } = heads[i];
    const end = i + 1 < heads.length ? heads[i + 1].start : raw.length;
    // the message ends at the next separator line of any kind
    let text = raw.slice(body, end);
    const sep = text.search(/^-{47}/m);
    if (sep >= 0) text = text.slice(0, sep);
    text = text.replace(/^\n+/, '').replace(/\n+$/, '');
    const [frac] = [h[2].split('.')[1] || '0'];
    const t = new Date(h[1] + 'T' + h[2].split('.')[0]).getTime() + Number('0.' + frac) * 1000;
    const hdr = (name) => {
      const x = new RegExp('^(?:' + name + '):[ \\t]*([^\\r\\n]*)', 'mi').exec(text);
      return x ? x[1].trim() : null;
    };
    out.push({ t, dir: h[4], text, first: text.split(/\r?\n/, 1)[0], callId: hdr('Call-ID|i'), cseq: hdr('CSeq') });
  }
  return out;
}

// The SDP of a SIP message: { addr, port, proto, pts, rtpmap: {pt: 'PCMA/8000'}, text }
function parseSdp(msg) {
  const i = msg.search(/\r?\n\r?\n/);
  const body = i >= 0 ? msg.slice(i).trim() : '';
  const c = /^c=IN IP4 ([0-9.]+)/m.exec(body);
  const mm = /^m=audio (\d+) (\S+) ([0-9 ]+)/m.exec(body);
  const rtpmap = {};
  for (const r of body.matchAll(/^a=rtpmap:(\d+) ([^\r\n]+)/gm)) rtpmap[r[1]] = r[2].trim();
  return {
    addr: c && c[1], port: mm && Number(mm[1]), proto: mm && mm[2],
    pts: mm ? mm[3].trim().split(/\s+/).map(Number) : [], rtpmap, text: body,
  };
}

// ---------------------------------------------------------------------------
// The carrier's audio: an RTP socket (and the RTCP one above it) on
// 127.0.0.1 that sends G.711 A-law (a 400 Hz tone, 20 ms packets) and
// counts the RTP it gets.

function alaw(sample) {
  // ITU-T G.711 A-law of a 16-bit linear sample
  const END = [0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff];
  let v = sample >> 3;
  let mask;
  if (v >= 0) mask = 0xd5; else { mask = 0x55; v = -v - 1; }
  let seg = 0;
  while (seg < 8 && v > END[seg]) seg++;
  if (seg >= 8) return 0x7f ^ mask;
  let a = seg << 4;
  a |= seg < 2 ? (v >> 1) & 0x0f : (v >> seg) & 0x0f;
  return a ^ mask;
}

class RtpPeer {
  static async open() {
    for (let i = 0; i < 50; i++) {
      const port = 20000 + 2 * Math.floor(Math.random() * 9000);
      const rtp = dgram.createSocket('udp4');
      const rtcp = dgram.createSocket('udp4');
      const bind = (s, p) => new Promise((resolve) => {
        s.once('error', () => resolve(false));
        s.bind(p, '127.0.0.1', () => resolve(true));
      });
      if (await bind(rtp, port) && await bind(rtcp, port + 1)) return new RtpPeer(rtp, rtcp, port);
      try { rtp.close(); } catch { /* not bound */ }
      try { rtcp.close(); } catch { /* not bound */ }
    }
    throw new Error('no free RTP port pair on 127.0.0.1');
  }

  constructor(rtp, rtcp, port) {
    this.rtp = rtp;
    this.rtcpSock = rtcp;
    this.port = port;
    this.received = 0;
    this.pts = {};        // payload type -> packets
    this.sources = {};    // "addr:port" -> packets
    this.rtcp = 0;
    this.sent = 0;
    this.timer = null;
    this.tone = Buffer.alloc(160 * 20);
    for (let i = 0; i < this.tone.length; i++) this.tone[i] = alaw(Math.round(8000 * Math.sin(2 * Math.PI * 400 * i / 8000)));
    for (const s of [rtp, rtcp]) s.on('error', () => {}); // ICMP unreachable before the far end is up
    rtp.on('message', (m, r) => {
      if (m.length < 12 || (m[0] >> 6) !== 2) return;
      const pt = m[1] & 0x7f;
      if (pt >= 72 && pt <= 76) return; // RTCP on the RTP port
      this.received++;
      this.pts[pt] = (this.pts[pt] || 0) + 1;
      const k = r.address + ':' + r.port;
      this.sources[k] = (this.sources[k] || 0) + 1;
    });
    rtcp.on('message', () => { this.rtcp++; });
  }

  // sends PCMA (payload type `pt`) to addr:port every 20 ms
  start(addr, port, pt) {
    this.stop();
    const ssrc = crypto.randomBytes(4).readUInt32BE(0);
    let seq = crypto.randomBytes(2).readUInt16BE(0);
    let ts = crypto.randomBytes(4).readUInt32BE(0);
    let n = 0;
    const send = () => {
      const h = Buffer.alloc(12);
      h[0] = 0x80;
      h[1] = (n === 0 ? 0x80 : 0) | pt;
      h.writeUInt16BE(seq, 2);
      h.writeUInt32BE(ts >>> 0, 4);
      h.writeUInt32BE(ssrc, 8);
      const off = (n % 20) * 160;
      this.rtp.send(Buffer.concat([h, this.tone.subarray(off, off + 160)]), port, addr);
      seq = (seq + 1) & 0xffff;
      ts = (ts + 160) >>> 0;
      n++;
      this.sent++;
    };
    send();
    this.timer = setInterval(send, 20);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  summary() {
    return { sent: this.sent, received: this.received, pts: this.pts, sources: this.sources, rtcp: this.rtcp };
  }

  close() {
    this.stop();
    for (const s of [this.rtp, this.rtcpSock]) try { s.close(); } catch { /* closed */ }
  }
}

// ---------------------------------------------------------------------------

function defineTests() {
  const SIPP = process.env.CODEB_SIPP || '/usr/bin/sipp';
  const SCEN = path.join(ROOT, 'tests', 'e2e', 'sipp');
  const REGISTRAR = path.join(ROOT, 't', 'tools', 'sipp-registrar.xml');
  const USERS = { alice: 'alice-demo-pass', bob: 'bob-demo-pass' };
  const DID = { alice: '+4930222', bob: '+4930111' };
  const OUT_NUMBER = '+4930999';
  const REG_GRANT = 6;       // s the registrar grants (the refresh comes after 3 s)
  const CANCEL_MS = 500;     // go-ahead to cancel -> the page stops ringing
  const RUN = crypto.randomBytes(4).toString('hex');
  const SECRET = crypto.randomBytes(16).toString('hex');
  const ADMIN = jwtHs256(SECRET, { exp: Math.floor(Date.now() / 1000) + 3600, sub: 'root', role: 'admin' });

  const env = {
    redis: null,
    mediad: null,     // startMediad: ngPort, rtp (its media ports)
    nginx: null,
    registrar: null,
    sipps: [],        // every sipp started (cleanup)
    caseSipps: [],    // the current scenario's (diagnostics)
    rtps: [],         // the current scenario's RTP peers (diagnostics, closed after it)
    phones: {},       // user -> page, kept from one scenario to the next
    httpPort: 0,
    sipPort: 0,
    udpPort: 0,
    trunk: { carrier: 0, carrier2: 0, upstream: 0 },
  };
  // temp dir, browser, pages; cleanup (stops these, in this order) on
  // every way out, watchdog (lib.mjs)
  const h = new Harness({
    procs: () => [...env.sipps, env.nginx, env.mediad, env.redis],
    diagnose: (title) => dumpDiagnostics(title),
    watchdogMs: 300000,
  });
  const errorLog = () => path.join(h.tmp, 'logs', 'error.log');

  // ------------------------------------------------------------------ sipp

  // Starts sipp (bounded: -timeout ... -timeout_error, and every recv has
  // a timeout) with its messages (-trace_msg), unexpected messages
  // (-trace_err) and screen in tmp/logs/sipp-<name>*.log.
  function sipp(name, args, { timeoutS = 60 } = {}) {
    const base = path.join(h.tmp, 'logs', 'sipp-' + name);
    const p = startProc('sipp ' + name, SIPP, [...args, '-i', '127.0.0.1', '-bind_local', '-nostdin',
      '-timeout', timeoutS + 's', '-timeout_error', '-recv_timeout', String(timeoutS * 1000),
      '-trace_msg', '-message_file', base + '-messages.log', '-trace_err', '-error_file', base + '-errors.log'],
    base + '.log', { cwd: path.join(h.tmp, 'logs'), stopGraceMs: 2000 });
    p.messages = base + '-messages.log';
    p.errors = base + '-errors.log';
    p.label = name;
    p.trace = () => readSippTrace(p.messages);
    env.sipps.push(p);
    env.caseSipps.push(p);
    return p;
  }

  // A sipp UAC towards our UDP listener from a trunk's port
  function carrierCall(name, scenario, trunk, { did, caller, callId, ftag, rtpport, calls = 1, extra = [] }) {
    return sipp(name, [`127.0.0.1:${env.udpPort}`, '-sf', path.join(SCEN, scenario), '-p', String(env.trunk[trunk]),
      '-m', String(calls), '-cid_str', callId, '-key', 'did', did, '-key', 'caller', caller, '-key', 'ftag', ftag,
      '-key', 'rtpport', String(rtpport), ...extra]);
  }

  // Waits (bounded) for sipp to exit; it must have succeeded (exit 0: every
  // call went through its scenario, nothing unexpected)
  async function sippDone(p, ms = 10000) {
    const t = await Promise.race([p.exit.then(() => true), sleep(ms).then(() => false)]);
    assert.ok(t, 'sipp ' + p.label + ' still running ' + ms + ' ms later; its trace:\n' + tail(p.messages, 60));
    assert.equal(p.code, 0, 'sipp ' + p.label + ' failed (exit code ' + p.code + ', signal ' + p.signal + ')\n'
      + '--- errors:\n' + tail(p.errors, 40) + '\n--- screen:\n' + tail(p.logFile, 25));
  }

  // The first entry of sipp's trace for which fn(entry) holds, waited for
  async function traceWait(p, what, fn, timeout = 10000) {
    return waitFor('sipp ' + p.label + ': ' + what, () => {
      if (p.exited && p.code !== 0) throw new Error('sipp exited (code ' + p.code + '): ' + tail(p.errors, 20));
      return p.trace().find(fn);
    }, { timeout, interval: 50 });
  }

  // The test's go-ahead to a sipp waiting at <recv request="INFO">: an
  // INFO with the call's Call-ID sent to sipp's socket from ours
  async function goAhead(port, callId) {
    const s = dgram.createSocket('udp4');
    await new Promise((r) => s.bind(0, '127.0.0.1', r));
    const { port: me } = s.address();
    const msg = [
      'INFO sip:carrier@127.0.0.1:' + port + ' SIP/2.0',
      'Via: SIP/2.0/UDP 127.0.0.1:' + me + ';branch=z9hG4bKgo' + crypto.randomBytes(6).toString('hex'),
      'From: <sip:test@127.0.0.1>;tag=go',
      'To: <sip:carrier@127.0.0.1>',
      'Call-ID: ' + callId,
      'CSeq: 1 INFO',
      'Max-Forwards: 70',
      'Content-Length: 0',
      '', ''].join('\r\n');
    await new Promise((r) => s.send(msg, port, '127.0.0.1', r));
    s.close();
  }

  // sipp is listening on the UDP port
  function udpBound(port) {
    const r = spawnSync('ss', ['-Huln', 'sport', '=', ':' + port], { encoding: 'utf8', timeout: 5000 });
    return (r.stdout || '').includes(':' + port);
  }

  // ----------------------------------------------------------------- setup

  before(async () => {
    assert.ok(fs.existsSync(SIPP), SIPP + ' not found: Debian package sip-tester (./build.sh deps installs it)');
    const T = await startPhoneServers(h, env, 'codeb-e2e-trunk-', ['core', 'signal', 'sipws']);
    const [base, top] = env.mediad.rtp;

    // distinct ports: http pages, SIP over ws (+ /signal.ashx), the
    // codeb_sip UDP listener, and the three trunks' sipp ports
    const used = new Set([env.mediad.ngPort]);
    const pick = async (type) => {
      for (;;) {
        const p = await freePort(type);
        if (!used.has(p) && (p < base || p > top)) { used.add(p); return p; }
      }
    };
    env.httpPort = await pick('tcp');
    env.sipPort = await pick('tcp');
    env.udpPort = await pick('udp');
    for (const k of Object.keys(env.trunk)) env.trunk[k] = await pick('udp');

    // the registrar of the trunk `upstream` runs before nginx does, so
    // that the first REGISTER (about 1 s after the workers start) finds it
    env.registrar = sipp('registrar', ['-sf', REGISTRAR, '-p', String(env.trunk.upstream), '-m', '1',
      '-key', 'realm', 'reg.test', '-key', 'user', 'acme', '-key', 'password', 'acme-secret',
      '-key', 'expires', String(REG_GRANT)], { timeoutS: 40 });
    await waitUp(env.registrar, 'the sipp registrar listening on ' + env.trunk.upstream,
      () => udpBound(env.trunk.upstream), { timeout: 5000, interval: 50, lines: 20 });

    env.nginx = startNginx(T, nginxConf(T, {
      by: 'tests/e2e/trunk.test.mjs',
      stream: true,
      modules: ['core', 'signal', 'sipws'],
      redis: env.redis.sock,
      http: phoneHttpConf({
        ngPort: env.mediad.ngPort, httpPort: env.httpPort, sipPort: env.sipPort, users: USERS, tenant: [
          `        codeb_sip_trunk carrier host=127.0.0.1:${env.trunk.carrier} prefix=+;`,
          `        codeb_sip_trunk carrier2 host=127.0.0.1:${env.trunk.carrier2} prefix=+99;`,
          `        codeb_sip_trunk upstream host=127.0.0.1:${env.trunk.upstream} domain=reg.test username=acme`
            + ' password=acme-secret register=on expires=600 prefix=+98;',
          `        codeb_inbound_route did=${DID.alice} from=* user=alice;`,
          `        codeb_inbound_route did=${DID.bob} from=* user=bob;`,
          `        codeb_oidc_hs256_secret ${SECRET};`,
          '        location = /signal.ashx { codeb_signal; }',
        ],
      }),
      after: [
        'stream {',
        `    server { listen 127.0.0.1:${env.udpPort} udp reuseport; codeb_sip; }`,
        '}',
      ],
    }));
    await waitUp(env.nginx, 'nginx serving the pages, SIP over WebSocket and SIP over UDP', async () => {
      const page = await httpGet(env.httpPort, '/phone-jssip.html');
      const sip = await httpGet(env.sipPort, '/');
      return page.status === 200 && sip.status === 426 && udpBound(env.udpPort);
    }, { log: errorLog() });
    // chromium comes with the first page (R needs none and runs first)
  });

  after(async () => {
    for (const r of env.rtps) r.close();
    await h.close();
  });

  // ----------------------------------------------------------- diagnostics

  // the pages (the last 60 lines of their log, their last 30 SIP
  // messages), the scenario's sipps and RTP sockets, the server logs
  async function dumpDiagnostics(title) {
    await h.printDiagnostics(title, (page) => phoneSnapshot(page, { logLines: 60, sipMessages: 30 }), ' codebPhone', async () => {
      const out = [];
      for (const p of env.caseSipps) {
        out.push('--- sipp ' + p.label + ' (' + (p.exited ? 'exit code ' + p.code + ', signal ' + p.signal : 'running') + '): screen (tail):',
          tail(p.logFile, 30));
        out.push('--- sipp ' + p.label + ' unexpected messages:', tail(p.errors, 40));
        out.push('--- sipp ' + p.label + ' messages (-trace_msg, tail):', tail(p.messages, 150));
      }
      for (const r of env.rtps) out.push('--- carrier RTP socket ' + r.port + ': ' + JSON.stringify(r.summary()));
      return [...out, ...await serverReport(h.tmp, env.mediad)];
    });
  }

  // Runs body; on failure prints pages, sipp traces, server logs, and
  // closes the pages (the next scenario opens fresh ones); the scenario's
  // sipps are stopped (bounded) and its RTP sockets closed either way
  function scenario(title, body) {
    env.caseSipps = [];
    env.rtps = [];
    return h.scenario(title, body, {
      keepPages: true,
      failed: () => { env.phones = {}; },
      done: async () => {
        for (const p of env.caseSipps) if (!p.exited) await p.stop();
        for (const r of env.rtps) r.close();
        env.rtps = [];
      },
    });
  }

  async function rtpPeer() {
    const r = await RtpPeer.open();
    env.rtps.push(r);
    return r;
  }

  // ---------------------------------------------------------- page helpers
  // (sip-lib.mjs: the page's state, waits, clicks, opening and registering)

  // The page of `user` (alice: JsSIP, bob: SIP.js), registered over ws://
  // with the test's settings; kept open for the next scenarios
  async function phone(user) {
    if (env.phones[user]) {
      const page = env.phones[user];
      const s = await state(page);
      assert.deepEqual(s, { reg: 'registered', call: 'idle' }, user + '\'s page before the scenario');
      return page;
    }
    if (!h.context) await h.launchChromium();
    const lib = user === 'alice' ? 'jssip' : 'sipjs';
    env.phones[user] = await openPhone(h, {
      url: `http://127.0.0.1:${env.httpPort}/`, server: `ws://127.0.0.1:${env.sipPort}`, lib, user, password: USERS[user],
      label: user + ' (' + lib + ')',
    });
    return env.phones[user];
  }

  // what the page logged since `t0` (its clock is ours: one machine)
  const pageSip = (page, t0) => page.evaluate((t) => window.codebPhone.sip.filter((m) => m.t >= t), t0);
  const pageEvents = (page, t0) => page.evaluate((t) => window.codebPhone.events.filter((e) => e.t >= t), t0);

  // Audio both ways between the page and the carrier's RTP socket, through
  // codeb-mediad: the page's inbound-rtp grows (the remote candidate a
  // daemon port), and the socket gets RTP of payload
  // type `pt` (the G.711 the SDP agreed) from the daemon's address and
  // port in its SDP (sdpAddr:sdpPort: symmetric RTP).  Returns the
  // numbers measured over 1.5 s.
  async function assertAudioBothWays(page, label, rtp, pt, sdpAddr, sdpPort) {
    let r0;
    const { first, second, r } = await assertInboundAudio(page, label, env.mediad.rtp, {
      what: 'inbound-rtp audio with packets (the carrier\'s tone)',
      meanwhile: async () => {
        await waitFor('RTP from codeb-mediad at the carrier\'s socket ' + rtp.port, () => rtp.received > 0, { timeout: 10000, interval: 100 });
        r0 = rtp.received;
      },
      report: (f, s) => ({ page: { first: f.inbound, second: s.inbound, pair: s.pair, codec: s.codec }, carrier: rtp.summary() }),
    });
    const r1 = rtp.received;
    // the daemon passes G.711 through when the browser takes it, else
    // transcodes to Opus (docs/ng.md): either is right
    assert.ok(['audio/opus', 'audio/PCMA', 'audio/PCMU'].includes(second.codec), label + ': codec ' + JSON.stringify(r));
    assert.ok(r1 - r0 > 25, 'the carrier\'s RTP socket got ' + (r1 - r0) + ' packets in 1.5 s (~75 expected): ' + JSON.stringify(r));
    assert.deepEqual(Object.keys(rtp.pts).map(Number), [pt], 'payload types at the carrier: ' + JSON.stringify(r));
    // symmetric RTP (RFC 4961): the daemon sends from the port its SDP names
    assert.deepEqual(Object.keys(rtp.sources), [sdpAddr + ':' + sdpPort], 'RTP at the carrier from ' + JSON.stringify(r));
    return { ...r, pageGrowth: second.inbound.packetsReceived - first.inbound.packetsReceived, carrierGrowth: r1 - r0 };
  }

  // the daemon has no call left (lib.mjs)
  const noMediaCalls = (what) => assertNoMediaCalls(env.mediad.ngPort, what);

  // the call records (?cdrlog, admin Bearer) whose callId is `callId`,
  // waited for until `n` are there
  async function cdrs(callId, n = 1) {
    return waitFor(n + ' call record(s) of ' + callId + ' in ?cdrlog', async () => {
      const r = await httpGet(env.sipPort, '/signal.ashx?cdrlog&limit=50', { Authorization: 'Bearer ' + ADMIN });
      if (r.status !== 200) throw new Error('?cdrlog: ' + r.status + ' ' + r.body);
      const list = JSON.parse(r.body).cdrs.filter((c) => c.callId === callId);
      return list.length >= n ? list : null;
    }, { timeout: 5000, interval: 100 });
  }

  async function health() {
    const r = await httpGet(env.sipPort, '/signal.ashx?healthsummary');
    assert.equal(r.status, 200, '?healthsummary: ' + r.status + ' ' + r.body);
    return JSON.parse(r.body);
  }

  const trunkState = async (name) => (await health()).trunks.find((x) => x.id === name);

  // a SIP message's header value
  const header = (text, name) => {
    const x = new RegExp('^(?:' + name + '):[ \\t]*([^\\r\\n]*)', 'mi').exec(text);
    return x ? x[1].trim() : null;
  };
  const branchOf = (text) => (/;branch=([^;,\s]+)/.exec(header(text, 'Via|v') || '') || [])[1];

  // ------------------------------------------------------------------ tests

  test('R: trunk registration with digest towards sipp\'s registrar; ?healthsummary shows it registered',
    { timeout: 60000 }, async (t) => {
      await scenario('R registration', async () => {
        const reg = env.registrar;
        env.caseSipps.push(reg);
        // the first round's 200: registered
        const seen = await waitFor('?healthsummary: trunk upstream registered:true', async () => {
          const s = await trunkState('upstream');
          return s && s.registered === true ? s : null;
        }, { timeout: 20000, interval: 100 });
        // the second round is the refresh after half the 6 s granted
        await sippDone(reg, 15000);
        const tr = reg.trace();
        // (a message sent again, by us or by sipp, is in the trace again:
        // the transactions are told apart by their CSeq)
        const cseqOf = (m) => Number(m.cseq.split(/\s+/)[0]);
        const firstPerCseq = (list) => list.filter((m, i) => list.findIndex((x) => cseqOf(x) === cseqOf(m)) === i);
        const regs = tr.filter((m) => m.dir === 'received' && /^REGISTER /.test(m.first));
        const oks = firstPerCseq(tr.filter((m) => m.dir === 'sent' && /^SIP\/2\.0 200 /.test(m.first)));
        const challenges = firstPerCseq(tr.filter((m) => m.dir === 'sent' && /^SIP\/2\.0 401 /.test(m.first)));
        assert.equal(oks.length, 2, 'the registrar accepted the digest twice (register, refresh): '
          + tr.map((m) => m.dir + ' ' + m.first + ' (' + m.cseq + ')').join(' | '));
        assert.equal(challenges.length, 2, 'two challenges');
        assert.equal(tr.filter((m) => m.dir === 'sent' && /^SIP\/2\.0 403 /.test(m.first)).length, 0, 'no 403 (a wrong digest)');
        const withAuth = firstPerCseq(regs.filter((m) => header(m.text, 'Authorization')));
        assert.equal(withAuth.length, 2, 'REGISTERs with Authorization');
        for (const m of regs) {
          assert.match(m.first, /^REGISTER sip:reg\.test SIP\/2\.0$/, m.first);
          assert.match(header(m.text, 'From|f'), /^<sip:acme@reg\.test>;tag=/);
          assert.match(header(m.text, 'To|t'), /^<sip:acme@reg\.test>$/);
          assert.equal(header(m.text, 'Contact|m'), `<sip:acme@127.0.0.1:${env.udpPort};transport=udp>`);
          assert.equal(header(m.text, 'Expires'), '600');
          assert.match(header(m.text, 'Via|v'), new RegExp(`^SIP/2\\.0/UDP 127\\.0\\.0\\.1:${env.udpPort};.*\\brport\\b`));
        }
        for (const m of withAuth) {
          const auth = header(m.text, 'Authorization');
          for (const p of [/username="acme"/, /realm="reg\.test"/, /uri="sip:reg\.test"/, /algorithm=MD5/, /qop=auth\b/, /nc=00000001/, /cnonce="[0-9a-f]+"/]) {
            assert.match(auth, p, 'Authorization: ' + auth);
          }
        }
        // one Call-ID, the CSeq one higher each time
        assert.equal(new Set(regs.map((m) => m.callId)).size, 1, 'one Call-ID');
        const cseqs = firstPerCseq(regs).map(cseqOf);
        assert.ok(cseqs.every((c, i) => i === 0 || c === cseqs[i - 1] + 1), 'CSeq one higher each time: ' + cseqs.join(','));
        const ok1 = oks[0].t;
        const refresh = regs.find((m) => cseqOf(m) > cseqOf(oks[0]));
        assert.ok(refresh, 'a REGISTER after the first 200');
        const after = refresh.t - ok1;
        // right after the refresh's 200 (within the 6 s granted)
        const now = await trunkState('upstream');
        t.diagnostic('first 200 -> refresh after ' + Math.round(after) + ' ms (granted ' + REG_GRANT + ' s); ?healthsummary '
          + JSON.stringify(now) + ' (first seen ' + JSON.stringify(seen) + ')');
        assert.ok(after >= REG_GRANT * 1000 / 2 - 300 && after <= REG_GRANT * 1000, 'the refresh after half the time granted: ' + after + ' ms');
        assert.equal(now.registered, true, JSON.stringify(now));
        assert.ok(typeof now.lastSeenSec === 'number' && now.lastSeenSec <= 5, 'lastSeenSec ' + JSON.stringify(now));
        // the trunks that do not register are there, not registered
        const all = (await health()).trunks;
        for (const name of ['carrier', 'carrier2']) {
          const x = all.find((y) => y.id === name);
          assert.ok(x && x.registered === false, name + ': ' + JSON.stringify(all));
        }
      });
    });

  test('1: inbound DID call: sipp -> alice (JsSIP) rings, answers, audio both ways through codeb-mediad, sipp hangs up; ?cdrlog',
    { timeout: 90000 }, async (t) => {
      await scenario('1 inbound', async () => {
        const alice = await phone('alice');
        const t0 = Date.now();
        const rtp = await rtpPeer();
        const callId = 'in-' + RUN;
        const caller = '+4917010001';
        const s = carrierCall('inbound', 'trunk-call.xml', 'carrier', { did: DID.alice, caller, callId, ftag: 'in', rtpport: rtp.port });
        await waitCall(alice, 'alice', 'incoming');
        assert.match(await alice.textContent('#call-status'), new RegExp('^Incoming call from Caller \\' + caller + ' \\(\\' + caller + '\\)'));
        // 100 and 180 at once, nothing else before the answer
        const inv = await traceWait(s, 'INVITE sent', (m) => m.dir === 'sent' && /^INVITE /.test(m.first));
        const r180 = await traceWait(s, '180 received', (m) => m.dir === 'received' && /^SIP\/2\.0 180 /.test(m.first));
        t.diagnostic('INVITE -> 180 in ' + Math.round(r180.t - inv.t) + ' ms');
        // the 180 makes an early dialog: our To tag and a Contact (RFC 3261 12.1.1)
        const tag180 = (/;tag=([^;\s]+)/.exec(header(r180.text, 'To|t')) || [])[1];
        assert.ok(tag180, '180 with a To tag: ' + r180.text);
        assert.ok(header(r180.text, 'Contact|m'), '180 with a Contact: ' + r180.text);
        await press(alice, '#btn-answer');
        await waitCall(alice, 'alice', 'established', CONNECT_MS);
        const ok = await traceWait(s, '200 OK received', (m) => m.dir === 'received' && /^SIP\/2\.0 200 /.test(m.first), CONNECT_MS);
        const early = s.trace().filter((m) => m.dir === 'received' && m.t < ok.t).map((m) => m.first.slice(8));
        assert.ok(early.every((x) => /^1(00|80) /.test(x)), 'before the 200 the carrier got only 100/180: ' + early.join(' | '));
        // the carrier's SDP: plain RTP from the daemon, G.711 of the offer
        const sdp = parseSdp(ok.text);
        assert.equal(sdp.addr, '127.0.0.1', sdp.text);
        assert.equal(sdp.proto, 'RTP/AVP', sdp.text);
        assert.ok(sdp.port >= env.mediad.rtp[0] && sdp.port <= env.mediad.rtp[1], 'the 200\'s m= port is the daemon\'s: ' + sdp.text);
        assert.doesNotMatch(sdp.text, /a=(ice-|fingerprint|crypto|candidate)|opus/i, 'no WebRTC towards the trunk:\n' + sdp.text);
        assert.ok([8, 0].includes(sdp.pts[0]), 'G.711 of the offer first: ' + sdp.text);
        assert.equal(header(ok.text, 'Contact|m'), `<sip:codeb@127.0.0.1:${env.udpPort};transport=udp>`);
        assert.equal((/;tag=([^;\s]+)/.exec(header(ok.text, 'To|t')) || [])[1], tag180, 'the 200 confirms the 180\'s dialog');
        rtp.start(sdp.addr, sdp.port, sdp.pts[0]);
        const a = await assertAudioBothWays(alice, 'alice', rtp, sdp.pts[0], sdp.addr, sdp.port);
        t.diagnostic('alice inbound-rtp +' + a.pageGrowth + ' packets in 1.5 s (' + JSON.stringify(a.page.second) + ', ' + a.page.codec
          + ', remote ' + JSON.stringify(a.page.pair.remote) + '); carrier RTP socket +' + a.carrierGrowth + ' in 1.5 s, '
          + JSON.stringify(a.carrier));
        // the carrier hangs up
        rtp.stop();
        await goAhead(env.trunk.carrier, callId);
        await sippDone(s);
        const bye = s.trace().find((m) => m.dir === 'sent' && /^BYE /.test(m.first));
        assert.match(bye.first, new RegExp(`^BYE sip:codeb@127\\.0\\.0\\.1:${env.udpPort};transport=udp SIP/2\\.0$`));
        await waitCall(alice, 'alice', 'idle', 5000);
        const lc = await alice.evaluate(() => window.codebPhone.lastCall);
        assert.deepEqual([lc.outcome, lc.by], ['ended', 'remote'], JSON.stringify(lc));
        await noMediaCalls('after the inbound call');
        const [c] = await cdrs(callId);
        t.diagnostic('call record: ' + JSON.stringify(c));
        assert.deepEqual([c.direction, c.trunk, c.from, c.to, c.did, c.status, c.cause, c.hangup],
          ['inbound', 'carrier', caller, 'alice', DID.alice, 200, 'normal', 'caller'], JSON.stringify(c));
        assert.ok(c.start >= t0 - 1000 && c.answer >= c.start && c.end >= c.answer && c.durationSec >= 1, JSON.stringify(c));
      });
    });

  test('2: bob (SIP.js) dials +E.164: out through the trunk to sipp, ringing, PCMA answer, audio both ways, bob hangs up, sipp gets BYE',
    { timeout: 90000 }, async (t) => {
      await scenario('2 outbound', async () => {
        const bob = await phone('bob');
        const rtp = await rtpPeer();
        const s = sipp('outbound', ['-sf', path.join(SCEN, 'trunk-answer.xml'), '-p', String(env.trunk.carrier), '-m', '1',
          '-key', 'rtpport', String(rtp.port)]);
        await waitUp(s, 'sipp listening on the trunk port ' + env.trunk.carrier, () => udpBound(env.trunk.carrier),
          { timeout: 5000, interval: 50, lines: 20 });
        const t0 = await bob.evaluate(() => Date.now());
        await bob.fill('#dial-target', OUT_NUMBER);
        await press(bob, '#btn-call');
        const inv = await traceWait(s, 'INVITE received', (m) => m.dir === 'received' && /^INVITE /.test(m.first));
        // INVITE sip:<number>@<trunk host>, From bob with the display name, plain RTP and G.711
        assert.match(inv.first, new RegExp('^INVITE sip:\\' + OUT_NUMBER + '@127\\.0\\.0\\.1(:\\d+)? SIP/2\\.0$'), inv.first);
        assert.match(header(inv.text, 'From|f'), /^(?:"?Bob"? )?<sip:bob@[^>]+>;tag=/, header(inv.text, 'From|f'));
        const offer = parseSdp(inv.text);
        assert.equal(offer.proto, 'RTP/AVP', offer.text);
        assert.doesNotMatch(offer.text, /a=(ice-|fingerprint|crypto|candidate)|opus/i, 'no WebRTC, no Opus towards the trunk:\n' + offer.text);
        assert.ok(offer.pts.includes(8) && offer.pts.includes(0), 'PCMA and PCMU offered: ' + offer.text);
        assert.ok(offer.port >= env.mediad.rtp[0] && offer.port <= env.mediad.rtp[1], 'the offer\'s m= port is the daemon\'s: ' + offer.text);
        // the page shows the callee ringing (180), then the answer
        await waitCall(bob, 'bob', 'ringing', 5000);
        rtp.start(offer.addr, offer.port, 8);
        await waitCall(bob, 'bob', 'established', CONNECT_MS);
        const ev = await pageEvents(bob, t0);
        const rang = ev.find((e) => e.type === 'outgoing' && e.state === 'ringing');
        const est = ev.find((e) => e.type === 'established');
        assert.ok(rang && est && rang.t < est.t, 'ringing before established: ' + JSON.stringify(ev.map((e) => e.type + (e.state ? ':' + e.state : ''))));
        const b = await assertAudioBothWays(bob, 'bob', rtp, 8, offer.addr, offer.port);
        t.diagnostic('bob inbound-rtp +' + b.pageGrowth + ' packets in 1.5 s (' + JSON.stringify(b.page.second) + ', ' + b.page.codec
          + '); carrier RTP socket +' + b.carrierGrowth + ' in 1.5 s, ' + JSON.stringify(b.carrier));
        rtp.stop();
        const hang = Date.now();
        await press(bob, '#btn-hangup');
        await sippDone(s, 10000);
        const bye = s.trace().find((m) => m.dir === 'received' && /^BYE /.test(m.first));
        assert.ok(bye, 'sipp got BYE');
        assert.match(bye.first, new RegExp(`^BYE sip:carrier@127\\.0\\.0\\.1:${env.trunk.carrier} SIP/2\\.0$`), 'BYE to the 200\'s Contact');
        t.diagnostic('hang-up -> BYE at the carrier in ' + Math.round(bye.t - hang) + ' ms');
        await waitCall(bob, 'bob', 'idle', 5000);
        const lc = await bob.evaluate(() => window.codebPhone.lastCall);
        assert.deepEqual([lc.outcome, lc.by], ['ended', 'local'], JSON.stringify(lc));
        await noMediaCalls('after the outbound call');
        const bobInvite = (await pageSip(bob, t0)).find((m) => m.dir === 'out' && /^INVITE /.test(m.text));
        const callId = header(bobInvite.text, 'Call-ID|i');
        const [c] = await cdrs(callId);
        t.diagnostic('call record: ' + JSON.stringify(c));
        assert.deepEqual([c.direction, c.trunk, c.from, c.to, c.status, c.cause, c.hangup],
          ['outbound', 'carrier', 'bob', OUT_NUMBER, 200, 'normal', 'caller'], JSON.stringify(c));
        const d = await httpGet(env.sipPort, '/signal.ashx?diallog&limit=5', { Authorization: 'Bearer ' + ADMIN });
        const dial = JSON.parse(d.body).dials[0];
        assert.deepEqual([dial.user, dial.number, dial.direction, dial.trunk, dial.status, dial.cause],
          ['bob', OUT_NUMBER, 'outbound', 'carrier', 200, 'normal'], JSON.stringify(dial));
      });
    });

  test('3: sibling-fork collapse: the same call over two trunks rings bob (SIP.js) once; the siblings held at 180 and cancelled alone',
    { timeout: 90000 }, async (t) => {
      await scenario('3 fork', async () => {
        const bob = await phone('bob');
        const t0 = await bob.evaluate(() => Date.now());
        const rtpA = await rtpPeer();
        const rtpB = await rtpPeer();
        const caller = '+4917010003';
        const cid = (n) => n + '-fork-' + RUN;
        // the first delivery, through `carrier`
        const a = carrierCall('fork-first', 'trunk-call.xml', 'carrier',
          { did: DID.bob, caller, callId: '%u-fork-' + RUN, ftag: 'fk', rtpport: rtpA.port });
        await waitCall(bob, 'bob', 'incoming');
        // through `carrier2`: call 1 is the same call forked (Call-ID, From
        // tag, another branch), call 2 a B2BUA's sibling (another Call-ID,
        // the same caller number and DID), 100 ms later
        const b = carrierCall('fork-siblings', 'trunk-cancel.xml', 'carrier2',
          { did: DID.bob, caller, callId: '%u-fork-' + RUN, ftag: 'fk', rtpport: rtpB.port, calls: 2, extra: ['-l', '2', '-r', '10'] });
        for (const n of [1, 2]) {
          await traceWait(b, 'call ' + n + ': 180', (m) => m.dir === 'received' && m.callId === cid(n) && /^SIP\/2\.0 180 /.test(m.first));
        }
        // (the first of each: sipp sends an INVITE again until the 100)
        const aInv = a.trace().find((m) => m.dir === 'sent' && /^INVITE /.test(m.first));
        const bInv = [1, 2].map((n) => b.trace().find((m) => m.dir === 'sent' && /^INVITE /.test(m.first) && m.callId === cid(n)));
        assert.equal(header(bInv[0].text, 'From|f'), header(aInv.text, 'From|f'), 'the forked copy has the first delivery\'s From');
        assert.notEqual(branchOf(bInv[0].text), branchOf(aInv.text), 'another branch');
        const gap = bInv[1].t - aInv.t;
        t.diagnostic('the sibling with another Call-ID came ' + Math.round(gap) + ' ms after the first delivery');
        assert.ok(gap < 1800, 'the test\'s own timing: the second Call-ID must reach the server within the 2 s fork window, it took '
          + Math.round(gap) + ' ms');
        // held: nothing more comes to the siblings, the page rang once
        await sleep(1000);
        for (const n of [1, 2]) {
          const got = b.trace().filter((m) => m.dir === 'received' && m.callId === cid(n)).map((m) => m.first);
          assert.ok(got.every((x) => /^SIP\/2\.0 1(00|80) /.test(x)) && got.some((x) => / 180 /.test(x)),
            'sibling ' + n + ' got only 100/180: ' + got.join(' | '));
        }
        assert.equal((await state(bob)).call, 'incoming');
        const invites = (await pageSip(bob, t0)).filter((m) => m.dir === 'in' && /^INVITE /.test(m.text));
        assert.equal(invites.length, 1, 'bob\'s page got ' + invites.length + ' INVITEs');
        assert.equal((await pageEvents(bob, t0)).filter((e) => e.type === 'incoming').length, 1, 'one incoming call on the page');
        // the upstream cancels the siblings: 200 and 487 each, bob rings on
        await goAhead(env.trunk.carrier2, cid(1));
        await goAhead(env.trunk.carrier2, cid(2));
        await sippDone(b, 10000);
        for (const n of [1, 2]) {
          const got = b.trace().filter((m) => m.dir === 'received' && m.callId === cid(n));
          assert.ok(got.some((m) => /^SIP\/2\.0 200 /.test(m.first) && /CANCEL/.test(m.cseq)), 'sibling ' + n + ': 200 to CANCEL');
          assert.ok(got.some((m) => /^SIP\/2\.0 487 /.test(m.first) && /INVITE/.test(m.cseq)), 'sibling ' + n + ': 487');
        }
        await sleep(300);
        assert.equal((await state(bob)).call, 'incoming', 'bob\'s page rings on after the siblings were cancelled');
        assert.ok(!(await pageSip(bob, t0)).some((m) => m.dir === 'in' && /^CANCEL /.test(m.text)), 'no CANCEL reached bob');
        // the first delivery is answered, and hangs up later
        await press(bob, '#btn-answer');
        await waitCall(bob, 'bob', 'established', CONNECT_MS);
        await traceWait(a, '200 OK received', (m) => m.dir === 'received' && /^SIP\/2\.0 200 /.test(m.first), CONNECT_MS);
        await sleep(500);
        await goAhead(env.trunk.carrier, cid(1));
        await sippDone(a);
        await waitCall(bob, 'bob', 'idle', 5000);
        await noMediaCalls('after the forked call');
        const recs = await cdrs(cid(1), 2);
        const rec2 = await cdrs(cid(2));
        t.diagnostic('call records: ' + JSON.stringify([...recs, ...rec2].map((c) => ({ callId: c.callId, trunk: c.trunk, status: c.status, cause: c.cause }))));
        const first = recs.find((c) => c.trunk === 'carrier');
        assert.ok(first && first.status === 200 && first.cause === 'normal', JSON.stringify(recs));
        const sib = recs.find((c) => c.trunk === 'carrier2');
        assert.ok(sib && sib.status === 487 && !sib.answer, JSON.stringify(recs));
        assert.ok(rec2[0].trunk === 'carrier2' && rec2[0].status === 487 && !rec2[0].answer, JSON.stringify(rec2));
      });
    });

  for (const user of ['alice', 'bob']) {
    test(`4: CANCEL from the trunk while ${user}'s page rings: it stops ringing within ${CANCEL_MS} ms`, { timeout: 60000 }, async (t) => {
      await scenario('4 cancel ' + user, async () => {
        const page = await phone(user);
        const t0 = await page.evaluate(() => Date.now());
        const rtp = await rtpPeer();
        const callId = 'cancel-' + user + '-' + RUN;
        const caller = user === 'alice' ? '+4917010041' : '+4917010042';
        const s = carrierCall('cancel-' + user, 'trunk-cancel.xml', 'carrier', { did: DID[user], caller, callId, ftag: 'cn', rtpport: rtp.port });
        await waitCall(page, user, 'incoming');
        await traceWait(s, '180 received', (m) => m.dir === 'received' && /^SIP\/2\.0 180 /.test(m.first));
        await sleep(300);
        const go = Date.now();
        await goAhead(env.trunk.carrier, callId);
        await waitPage(page, user, 'ringing stops within 2 s', (g) => window.codebPhone.call === 'idle' || Date.now() > g + 2000, go, 3000);
        await sippDone(s, 10000);
        const ended = (await pageEvents(page, t0)).filter((e) => e.type === 'ended').pop();
        const sip = await pageSip(page, t0);
        const cancelIn = sip.filter((m) => m.dir === 'in' && /^CANCEL /.test(m.text)).pop();
        const inviteIn = sip.find((m) => m.dir === 'in' && /^INVITE /.test(m.text));
        const tr = s.trace();
        const cancelSent = tr.find((m) => m.dir === 'sent' && /^CANCEL /.test(m.first));
        const ms = (x) => (x == null ? '?' : Math.round(x) + ' ms');
        t.diagnostic(page.lib + ': go-ahead -> CANCEL sent by sipp ' + ms(cancelSent && cancelSent.t - go)
          + ' -> CANCEL at the page +' + ms(cancelIn && cancelSent && cancelIn.t - cancelSent.t)
          + ' -> page idle +' + ms(ended && cancelIn && ended.t - cancelIn.t)
          + '; CANCEL sent -> page idle ' + ms(ended && cancelSent && ended.t - cancelSent.t)
          + ', go-ahead -> page idle ' + ms(ended && ended.t - go));
        assert.ok(ended, 'the page\'s call did not end: ' + JSON.stringify(await state(page)));
        assert.ok(ended.t - go < CANCEL_MS, user + '\'s page rang on for ' + (ended.t - go) + ' ms after the go-ahead to cancel (bound '
          + CANCEL_MS + ' ms)');
        assert.deepEqual([ended.outcome, ended.by], ['canceled', 'remote'], JSON.stringify(ended));
        assert.match(await page.textContent('#call-status'), /^Missed call/);
        // RFC 3261 9.1: the CANCEL has its INVITE's branch; the page answered 487
        assert.ok(inviteIn && cancelIn, 'INVITE and CANCEL at the page');
        assert.equal(branchOf(cancelIn.text), branchOf(inviteIn.text), 'the CANCEL\'s branch is the INVITE\'s');
        assert.ok(sip.some((m) => m.dir === 'out' && /^SIP\/2\.0 487 /.test(m.text)), 'the page answered its INVITE 487');
        assert.ok(tr.some((m) => m.dir === 'received' && /^SIP\/2\.0 200 /.test(m.first) && /CANCEL/.test(m.cseq)), 'sipp: 200 to the CANCEL');
        assert.ok(tr.some((m) => m.dir === 'received' && /^SIP\/2\.0 487 /.test(m.first)), 'sipp: 487');
        await noMediaCalls('after the cancel');
        const [c] = await cdrs(callId);
        assert.deepEqual([c.direction, c.trunk, c.to, c.status, c.cause, c.answer],
          ['inbound', 'carrier', user, 487, 'cancelled', null], JSON.stringify(c));
      });
    });
  }

  test('no call left in codeb-mediad, registration lapsed without the registrar, nginx quits gracefully, no worker died, no alert',
    { timeout: 60000 }, async (t) => {
      await h.closeBrowser();
      env.phones = {};
      await sleep(300);
      assertRunning(env.mediad, env.mediad.logFile);
      await noMediaCalls('at the end');
      assertRunning(env.nginx, errorLog());
      // the registrar is gone: once the 6 s granted have passed without a
      // new 200, the trunk is not registered (docs/sip.md)
      const lapsed = await waitFor('trunk upstream registered:false', async () => {
        const s = await trunkState('upstream');
        return s && s.registered === false ? s : null;
      }, { timeout: (REG_GRANT + 6) * 1000, interval: 250 });
      const carrier = await trunkState('carrier');
      t.diagnostic('?healthsummary trunks at the end: upstream ' + JSON.stringify(lapsed) + ', carrier ' + JSON.stringify(carrier));
      assert.ok(typeof carrier.lastSeenSec === 'number', 'the trunk carrier was seen (its calls): ' + JSON.stringify(carrier));
      assertNoAlerts(await quitNginx(env.nginx, errorLog()));
    });
}
