// What the softphone tests (phones.test.mjs, trunk.test.mjs) share: the two
// pages (html/phone-jssip.html, html/phone-sipjs.html) and their test hook
// window.codebPhone (html/phone-ui.js), driven through playwright: opening
// and registering a page, its state and waits on it, clicks, its media
// statistics, the check that audio comes in through codeb-mediad, and the
// page snapshot of the diagnostics.  The generic setup is in lib.mjs.
//
// Not a test file.  All durations and timeouts are in milliseconds.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { HTML, sleep, waitFor, snapshotPage, assertBuilt, startRedis, startMediad } from './lib.mjs';

/** INVITE -> the callee's page rings. */
export const RING_MS = 10000;
/** Answer -> the pages established, with media. */
export const CONNECT_MS = 15000;

/** The page of each library, in html/. */
export const PHONE_PAGES = { jssip: 'phone-jssip.html', sipjs: 'phone-sipjs.html' };

/**
 * The lines inside http{} (lib.mjs nginxConf `http`) of the softphone
 * tests' nginx: calls through codeb-mediad at 127.0.0.1:`ngPort`, the pages
 * (html/) on `httpPort`, and on `sipPort` the tenant localhost with the
 * SIP users `users` (name -> password), the lines `tenant` (more of the
 * tenant: trunks, routes, locations) and SIP over WebSocket at /.  With
 * `tls` ({ cert, key }: PEM files) the SIP port speaks TLS (wss://); without
 * `httpPort` no page server.
 */
export function phoneHttpConf({ ngPort, httpPort, sipPort, users, tenant = [], tls = null }) {
  return [
    `    codeb_sip_media 127.0.0.1:${ngPort};`,
    ...(httpPort ? [
      '    server {',
      `        listen 127.0.0.1:${httpPort} reuseport;`,
      `        root ${HTML};`,
      '        location / { try_files $uri $uri/ =404; }',
      '    }',
    ] : []),
    '    server {',
    `        listen 127.0.0.1:${sipPort}${tls ? ' ssl' : ''} reuseport;`,
    '        server_name localhost 127.0.0.1;',
    ...(tls ? [`        ssl_certificate ${tls.cert};`, `        ssl_certificate_key ${tls.key};`] : []),
    '        codeb_tenant localhost;',
    ...Object.entries(users).map(([u, p]) => `        codeb_sip_user ${u} password=${p};`),
    ...tenant,
    '        location = / { codeb_sip_ws; }',
    '    }',
  ];
}

/**
 * A key and a self-signed certificate for localhost (P-256, 2 days) in
 * `dir`: { key, cert } (PEM files, for phoneHttpConf `tls`) and `spki`,
 * the base64 SHA-256 of its SubjectPublicKeyInfo, for chromium's
 * --ignore-certificate-errors-spki-list (trusts that key only).
 */
export function makeCertificate(dir) {
  const key = path.join(dir, 'localhost.key');
  const cert = path.join(dir, 'localhost.crt');
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
    '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0, 'openssl req: ' + r.stderr);
  const spki = new crypto.X509Certificate(fs.readFileSync(cert)).publicKey.export({ type: 'spki', format: 'der' });
  return { key, cert, spki: crypto.createHash('sha256').update(spki).digest('base64') };
}

/** Whether 127.0.0.1:`port` completes a TLS handshake for SNI localhost (openssl s_client, 3000 ms). */
export function tlsUp(port) {
  const r = spawnSync('openssl', ['s_client', '-connect', '127.0.0.1:' + port, '-servername', 'localhost'],
    { input: '', encoding: 'utf8', timeout: 3000 });
  return /BEGIN CERTIFICATE/.test(r.stdout);
}

/**
 * The servers every softphone test starts first: asserts that the CodeB
 * `modules`, codeb-mediad and the library bundles are built, makes the
 * harness's temp dir (named `prefix` + random), starts redis-server and
 * codeb-mediad (lib.mjs) and waits until they answer.  They are set in
 * env.redis and env.mediad as soon as they run, so that the harness stops
 * them even when they do not come up.  Returns the temp dir.
 */
export async function startPhoneServers(h, env, prefix, modules) {
  assertBuilt(modules, { mediad: true });
  assertPhoneBundles();
  const tmp = h.makeTmp(prefix);
  env.redis = startRedis(tmp);
  await env.redis.ready;
  env.mediad = await startMediad(tmp);
  await env.mediad.ready;
  return tmp;
}

/** Asserts that `./build.sh build` bundled JsSIP and SIP.js into html/vendor/. */
export function assertPhoneBundles() {
  for (const f of ['jssip.min.js', 'sip.min.js']) {
    assert.ok(fs.existsSync(path.join(HTML, 'vendor', f)), 'html/vendor/' + f
      + ' missing: ./build.sh build bundles it (esbuild from ./build.sh deps)');
  }
}

/**
 * The page's state for the diagnostics (lib.mjs pageReport): codebPhone's
 * registration, call, peer, transfer, DTMF and RTCPeerConnection, the
 * status lines, and as `log` the page's log and its SIP messages; with
 * `logLines` / `sipMessages` only the last so many of them (0: all).
 */
export function phoneSnapshot(page, { logLines = 0, sipMessages = 0 } = {}) {
  return snapshotPage(page, ([nLog, nSip]) => {
    const p = window.codebPhone;
    if (!p) return { codebPhone: null, url: location.href, body: document.body && document.body.innerText.slice(0, 300) };
    const last = (a, n) => (n ? a.slice(-n) : a);
    return {
      lib: p.lib,
      transport: p.transport,
      reg: p.reg,
      regInfo: p.regInfo,
      call: p.call,
      peer: p.peer,
      lastCall: p.lastCall,
      transfer: p.transfer,
      dtmf: [p.dtmfSent, p.dtmfPlayed],
      pc: p.pc && { connectionState: p.pc.connectionState, iceConnectionState: p.pc.iceConnectionState, iceGatheringState: p.pc.iceGatheringState, signalingState: p.pc.signalingState },
      status: [document.getElementById('reg-status').textContent, document.getElementById('call-status').textContent],
      // the page's log with the SIP messages, for the report
      log: [...last(p.log, nLog), '--- SIP messages' + (nSip ? ' (last ' + nSip + ')' : '') + ':',
        ...last(p.sip, nSip).map((m) => (m.dir === 'out' ? '>>> ' : '<<< ') + new Date(m.t).toISOString().slice(11, 23) + '\n' + m.text)],
    };
  }, [logLines, sipMessages]);
}

/** The page's registration and call state: { reg, call }. */
export function phoneState(page) {
  return page.evaluate(() => ({ reg: window.codebPhone.reg, call: window.codebPhone.call }));
}

/**
 * Waits (polling every 50 ms, `timeout` ms) until fn(arg) holds in the
 * page; else fails with "<label>: <what> not within <timeout> ms (now
 * <phoneState>)".
 */
export async function waitPage(page, label, what, fn, arg, timeout) {
  try {
    await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(label + ': ' + what + ' not within ' + timeout + ' ms (now '
      + JSON.stringify(await phoneState(page).catch((x) => x.message)) + ')');
  }
}

/** Waits until the page's call state is `call`. */
export function waitCall(page, label, call, timeout = RING_MS) {
  return waitPage(page, label, 'call state ' + call, (c) => window.codebPhone.call === c, call, timeout);
}

/**
 * Clicks `selector` on `page`, brought to the front first: a background
 * page's animation frames are throttled, and a click waits for them.
 */
export async function press(page, selector) {
  await page.bringToFront();
  await page.click(selector);
}

/**
 * Opens the page of `lib` ('jssip' or 'sipjs') from `url` (the http base,
 * ending in /) in the harness `h`, labelled `label`, and has it registered
 * as `user` (`password`, domain localhost, display name the user's,
 * capitalised) at the SIP WebSocket `server`.  A page that stored exactly
 * these settings (localStorage) registers by itself; otherwise they are
 * entered in its form, which saves them, and the page registers with them.
 * Asserts the library's version, the saved settings, the status line and
 * the transport in the REGISTER's Via (WS or WSS, from `server`).
 * Sets page.lib ('JsSIP' or 'SIP.js') and page.label; returns the page.
 */
export async function openPhone(h, { url, server, lib, user, password, label }) {
  const page = await h.openPage(label, url + PHONE_PAGES[lib]);
  await page.waitForFunction(() => !!window.codebPhone, null, { timeout: 5000 });
  assert.match(await page.evaluate(() => window.codebPhone.lib), lib === 'jssip' ? /^JsSIP 3\.13\./ : /^SIP\.js 0\.21\./);
  const stored = await page.evaluate((k) => JSON.parse(localStorage.getItem('codeb.phone.' + k) || 'null'), lib);
  if (stored && stored.server === server && stored.user === user && stored.autoRegister) {
    await waitPage(page, label, 'registered with its stored settings', () => window.codebPhone.reg === 'registered', null, 10000);
  } else {
    if (!await page.locator('#settings').evaluate((d) => d.open)) await page.click('#settings summary');
    await page.fill('#set-server', server);
    await page.fill('#set-user', user);
    await page.fill('#set-password', password);
    await page.fill('#set-name', user[0].toUpperCase() + user.slice(1));
    await page.fill('#set-domain', 'localhost');
    await page.check('#set-auto');
    // the page may be registering with other stored settings: wait for
    // the registration these settings make
    const mark = await page.evaluate(() => Date.now());
    await page.click('#btn-register');
    await waitPage(page, label, 'registered with the test\'s settings', (t0) => window.codebPhone.reg === 'registered'
      && window.codebPhone.events.some((e) => e.type === 'registration' && e.state === 'registered' && e.t >= t0),
    mark, 10000);
    const saved = await page.evaluate((k) => JSON.parse(localStorage.getItem('codeb.phone.' + k)), lib);
    assert.deepEqual([saved.server, saved.user, saved.password, saved.domain], [server, user, password, 'localhost']);
  }
  assert.match(await page.textContent('#reg-status'), new RegExp('Registered as ' + user));
  const reg = await page.evaluate(() => window.codebPhone.sip.filter((m) => m.dir === 'out'
    && /^REGISTER /.test(m.text)).pop().text);
  assert.match(reg, new RegExp('\\r\\nVia: SIP/2\\.0/' + (server.startsWith('wss:') ? 'WSS' : 'WS') + ' ', 'i'),
    label + ' registers over ' + server.split(':')[0]);
  page.lib = lib === 'jssip' ? 'JsSIP' : 'SIP.js';
  page.label = label;
  return page;
}

/**
 * The page call's getStats: { connectionState, inbound (audio
 * inbound-rtp: packetsReceived, bytesReceived, packetsLost), outbound
 * (packetsSent), pair (the selected candidate pair: state, local, remote),
 * codec (of the inbound audio) }, or null without an RTCPeerConnection.
 */
export function mediaStats(page) {
  return page.evaluate(async () => {
    const pc = window.codebPhone.pc;
    if (!pc) return null;
    const st = await pc.getStats();
    const out = { connectionState: pc.connectionState, inbound: null, outbound: null, pair: null, codec: null };
    st.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.inbound = { packetsReceived: s.packetsReceived, bytesReceived: s.bytesReceived, packetsLost: s.packetsLost };
        const c = s.codecId && st.get(s.codecId);
        out.codec = c && c.mimeType;
      }
      if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outbound = { packetsSent: s.packetsSent };
      if (s.type === 'transport' && s.selectedCandidatePairId) {
        const p = st.get(s.selectedCandidatePairId);
        const c = (id) => { const x = st.get(id); return x && { type: x.candidateType, address: x.address, port: x.port, protocol: x.protocol }; };
        if (p) out.pair = { state: p.state, local: c(p.localCandidateId), remote: c(p.remoteCandidateId) };
      }
    });
    return out;
  });
}

/**
 * Audio comes into `page` through codeb-mediad: its RTCPeerConnection
 * connects (CONNECT_MS) and has inbound-rtp audio packets (10000 ms; `what`
 * names them), then `meanwhile()` runs (the caller's own waits and
 * counters), and 1.5 s later the inbound packets (~50/s) and bytes have
 * grown, from a remote candidate on 127.0.0.1 at a port of the daemon's
 * media range `rtp` ([min, max]).  `report(first, second)` is what the
 * failure messages show.  Returns { first, second, r } (the two mediaStats
 * and the report) for the caller's further checks.
 */
export async function assertInboundAudio(page, label, rtp, {
  what = 'inbound-rtp audio with packets', meanwhile = async () => {}, report = (first, second) => ({ first, second }),
} = {}) {
  await waitPage(page, label, 'RTCPeerConnection connected',
    () => window.codebPhone.pc && window.codebPhone.pc.connectionState === 'connected', null, CONNECT_MS);
  const first = await waitFor(label + ': ' + what, async () => {
    const s = await mediaStats(page);
    return s && s.inbound && s.inbound.packetsReceived > 0 && s.pair ? s : null;
  }, { timeout: 10000, interval: 200 });
  await meanwhile();
  await sleep(1500);
  const second = await mediaStats(page);
  const r = report(first, second);
  assert.equal(second.pair.remote.address, '127.0.0.1', label + ': remote candidate ' + JSON.stringify(r));
  assert.ok(second.pair.remote.port >= rtp[0] && second.pair.remote.port <= rtp[1],
    label + ': remote candidate port outside codeb-mediad\'s range ' + rtp.join('-') + ': ' + JSON.stringify(r));
  assert.ok(second.inbound.packetsReceived > first.inbound.packetsReceived + 25,
    label + ': inbound-rtp packetsReceived not growing (~50/s expected) ' + JSON.stringify(r));
  assert.ok(second.inbound.bytesReceived > first.inbound.bytesReceived,
    label + ': inbound-rtp bytesReceived not growing ' + JSON.stringify(r));
  return { first, second, r };
}
