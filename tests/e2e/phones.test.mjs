// Browser end-to-end tests of the two softphones (html/phone-jssip.html,
// html/phone-sipjs.html) against the real server: Debian chromium (driven
// by playwright-core) <-> nginx + ngx_codeb_core/ngx_codeb_sipws (SIP over
// WebSocket, the back-to-back user agent) <-> Redis, with the call audio
// through codeb-mediad (NG, ICE-Lite, DTLS-SRTP).
//
//   node --test tests/e2e/          (./build.sh test runs this after t/)
//
// Self-contained like room.test.mjs (the shared setup is in lib.mjs): the
// file re-executes itself inside fresh network and PID namespaces where
// only `lo` exists, so every packet (HTTP, SIP over WebSocket, NG, ICE,
// SRTP) stays on 127.0.0.1 and nothing started here outlives the run.
// Inside, it starts its own redis-server, codeb-mediad and nginx (2 workers,
// reuseport; pages from html/, SIP over plain ws:// on another port with
// the users alice, bob, carol), then chromium with a fake microphone.
// Needs root, the modules and daemon built by `./build.sh build` and the
// bundles it writes to html/vendor/.
//
//   A  JsSIP page (alice) calls SIP.js page (bob): bob's page rings, answers;
//      audio flows both ways through codeb-mediad (inbound-rtp grows on
//      both pages, the remote candidate is 127.0.0.1 on a daemon port, Opus);
//      mute disables the local track; DTMF keys are played by alice's
//      RTCDTMFSender as RFC 4733 events (telephone-event negotiated with the
//      daemon); the transfer button's REFER gets the server's answer shown
//      as it is (501 today: a failure, and the call goes on); bob hangs up,
//      both pages are idle again
//   A2 the other way: SIP.js page (bob) calls JsSIP page (alice), audio
//      both ways, alice hangs up
//   B  cancel while ringing: the caller hangs up before the answer, the
//      callee's page stops ringing within 2 s (both directions)
//   C  reject: the callee rejects (486 Busy Here), the caller's page shows
//      the failure with the status the callee sent (both directions)
//   P  each page is installable: its manifest and icons, the service worker
//      controls it and caches only the page shell, the page opens offline;
//      without stored settings the form holds the page's demo user and
//      ws://<host>:5066
//   In every call the caller's page must show the callee ringing (the
//   server's 180); a subtest each, TODO while the server's 180 has no
//   Contact and the caller's library drops it (SIP.js; see ring()).
//   And at the end: no call left in codeb-mediad, nginx quits gracefully,
//   no worker died, nothing at [alert]/[crit]/[emerg] in error.log.
//   Each call prints which nginx worker holds the caller's and the callee's
//   WebSocket (`ss -p` on the SIP port), and the end how many calls had
//   them on one worker or on two: the spread is up to reuseport, so the
//   calls must work whatever it is.
//
// Not tested: that the DTMF events arrive at the other browser.  WebRTC
// offers no API for received RFC 4733 events (they are not audio and no
// getStats counter names them), so a browser cannot observe them; the
// daemon's side of DTMF is tests/e2e/mediad.test.mjs C.
//
// Environment: CODEB_E2E_CHROMIUM (default /usr/bin/chromium),
// CODEB_MEDIAD (default build/mediad/codeb-mediad), TEST_NGINX_MODULES
// (default build/modules), CODEB_E2E_KEEP=1 keeps the temp dir,
// CODEB_E2E_TRACE=1 prints each scenario's pages (log and SIP messages)
// and server logs also when it passes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ROOT, Harness, enterLoopbackNamespace, sleep, waitFor, freePort, tail, startProc, snapshotPage, redisPing, ngRequest,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------
// 1. Re-exec inside a loopback-only network namespace (lib.mjs).
if (await enterLoopbackNamespace(SELF, 'chromium, nginx and codeb-mediad')) defineTests();

function httpGet(port, p, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout: 2000, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------------------

function defineTests() {
  const MODULES = path.resolve(ROOT, process.env.TEST_NGINX_MODULES || path.join('build', 'modules'));
  const MEDIAD = path.resolve(ROOT, process.env.CODEB_MEDIAD || path.join('build', 'mediad', 'codeb-mediad'));
  const HTML = path.join(ROOT, 'html');
  const USERS = { alice: 'alice-demo-pass', bob: 'bob-demo-pass', carol: 'carol-demo-pass' };
  const RING_MS = 10000;     // INVITE -> the callee's page rings
  const CONNECT_MS = 15000;  // answer -> both pages established with media

  const env = {
    redis: null,
    mediad: null,
    nginx: null,
    httpPort: 0,
    sipPort: 0,
    ngPort: 0,
    rtp: [0, 0],
    spread: { same: 0, different: 0 }, // calls by where their two WebSockets were
  };
  // temp dir, browser, pages; cleanup on every way out, watchdog (lib.mjs)
  const h = new Harness({
    async stop() {
      if (env.nginx && !env.nginx.exited) await env.nginx.stop('SIGQUIT');
      if (env.mediad && !env.mediad.exited) await env.mediad.stop('SIGINT');
      if (env.redis && !env.redis.exited) await env.redis.stop();
    },
    procs: () => [env.nginx, env.mediad, env.redis],
    diagnose: (title) => dumpDiagnostics(title),
    watchdogMs: 420000,
  });
  const errorLog = () => path.join(h.tmp, 'logs', 'error.log');
  const mediadLog = () => path.join(h.tmp, 'logs', 'mediad.log');

  before(async () => {
    for (const m of ['ngx_codeb_core_module.so', 'ngx_codeb_sipws_module.so']) {
      assert.ok(fs.existsSync(path.join(MODULES, m)), 'modules not built: run ./build.sh build (looked for '
        + path.join(MODULES, m) + ')');
    }
    assert.ok(fs.existsSync(MEDIAD), 'codeb-mediad not built: run ./build.sh build (looked for ' + MEDIAD + ')');
    for (const f of ['jssip.min.js', 'sip.min.js']) {
      assert.ok(fs.existsSync(path.join(HTML, 'vendor', f)), 'html/vendor/' + f
        + ' missing: ./build.sh build bundles it (esbuild from ./build.sh deps)');
    }
    h.makeTmp('codeb-e2e-phones-');
    const T = h.tmp;

    // Redis on a unix socket
    const sock = path.join(T, 'redis.sock');
    env.redis = startProc('redis', 'redis-server', ['--port', '0', '--unixsocket', sock,
      '--unixsocketperm', '777', '--save', '', '--appendonly', 'no', '--dir', T],
    path.join(T, 'logs', 'redis.log'));
    await waitFor('redis-server on ' + sock, async () => {
      if (env.redis.exited) throw new Error('redis-server exited: ' + tail(env.redis.logFile, 20));
      return redisPing(sock);
    }, { timeout: 10000 });

    // codeb-mediad: NG on a free port, media ports in a 200-port range
    env.ngPort = await freePort('udp');
    const base = 41000 + 2 * Math.floor(Math.random() * 9000);
    env.rtp = [base, base + 199];
    env.mediad = startProc('codeb-mediad', MEDIAD, ['--listen-ng', '127.0.0.1:' + env.ngPort,
      '--port-min', String(base), '--port-max', String(base + 199), '--interface', '127.0.0.1',
      '--threads', '1', '--timeout', '60'], mediadLog());
    await waitFor('codeb-mediad answering NG ping on 127.0.0.1:' + env.ngPort, async () => {
      if (env.mediad.exited) {
        throw new Error('codeb-mediad exited (code ' + env.mediad.code + ', signal ' + env.mediad.signal + '):\n'
          + tail(mediadLog(), 30));
      }
      const r = await ngRequest(env.ngPort, { command: 'ping' }, { timeout: 200, retries: 0 }).catch(() => null);
      return r && r.result === 'pong';
    }, { timeout: 10000 });

    // nginx: 2 workers; `reuseport` spreads the WebSockets over both by
    // the client's port, so caller and callee are on different workers in
    // some runs and on the same one in others (the last test prints it)
    env.httpPort = await freePort();
    do { env.sipPort = await freePort(); } while (env.sipPort === env.httpPort);
    const conf = [
      '# generated by tests/e2e/phones.test.mjs',
      'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
      `load_module ${MODULES}/ngx_codeb_core_module.so;`,
      `load_module ${MODULES}/ngx_codeb_sipws_module.so;`,
      process.getuid && process.getuid() === 0 ? 'user root;' : '',
      'worker_processes 2;',
      'master_process on;',
      'daemon off;',
      `pid ${T}/nginx.pid;`,
      `error_log ${T}/logs/error.log info;`,
      'events { worker_connections 1024; }',
      'http {',
      '    include /etc/nginx/mime.types;',
      '    default_type application/octet-stream;',
      "    log_format e2e '$pid $remote_port \"$request\" $status $request_time';",
      `    access_log ${T}/logs/access.log e2e;`,
      `    client_body_temp_path ${T}/tmp/body;`,
      `    proxy_temp_path ${T}/tmp/proxy;`,
      `    fastcgi_temp_path ${T}/tmp/fastcgi;`,
      `    uwsgi_temp_path ${T}/tmp/uwsgi;`,
      `    scgi_temp_path ${T}/tmp/scgi;`,
      `    codeb_redis unix:${sock};`,
      `    codeb_sip_media 127.0.0.1:${env.ngPort};`,
      '    server {',
      `        listen 127.0.0.1:${env.httpPort} reuseport;`,
      `        root ${HTML};`,
      '        location / { try_files $uri $uri/ =404; }',
      '    }',
      '    server {',
      `        listen 127.0.0.1:${env.sipPort} reuseport;`,
      '        server_name localhost 127.0.0.1;',
      '        codeb_tenant localhost;',
      ...Object.entries(USERS).map(([u, p]) => `        codeb_sip_user ${u} password=${p};`),
      '        location = / { codeb_sip_ws; }',
      '    }',
      '}',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(T, 'nginx.conf'), conf);
    const ngArgs = ['-p', T, '-c', path.join(T, 'nginx.conf'), '-e', path.join(T, 'logs', 'error.log')];
    const t = spawnSync('nginx', [...ngArgs, '-t'], { encoding: 'utf8', timeout: 10000 });
    assert.equal(t.status, 0, 'nginx -t failed:\n' + t.stderr + '\n' + conf);
    env.nginx = startProc('nginx', 'nginx', ngArgs, path.join(T, 'logs', 'nginx.stderr.log'));
    await waitFor('nginx serving the pages and SIP over WebSocket', async () => {
      if (env.nginx.exited) throw new Error('nginx exited:\n' + tail(errorLog(), 30));
      const page = await httpGet(env.httpPort, '/phone-jssip.html');
      // a plain GET of the SIP location asks for an upgrade
      const sip = await httpGet(env.sipPort, '/');
      return page.status === 200 && sip.status === 426;
    }, { timeout: 10000 });

    // chromium (Debian's; never a downloaded one)
    await h.launchChromium();
  });

  after(() => h.close());

  // ------------------------------------------------------------- page helpers

  const PAGES = { jssip: 'phone-jssip.html', sipjs: 'phone-sipjs.html' };

  function snapshot(page) {
    return snapshotPage(page, () => {
      const p = window.codebPhone;
      if (!p) return { codebPhone: null, url: location.href, body: document.body && document.body.innerText.slice(0, 300) };
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
        pc: p.pc && { connectionState: p.pc.connectionState, iceConnectionState: p.pc.iceConnectionState, signalingState: p.pc.signalingState },
        status: [document.getElementById('reg-status').textContent, document.getElementById('call-status').textContent],
        // the page's log with the full SIP messages, for the report
        log: [...p.log, '--- SIP messages:', ...p.sip.map((m) => (m.dir === 'out' ? '>>> ' : '<<< ') + new Date(m.t).toISOString().slice(11, 23) + '\n' + m.text)],
      };
    });
  }

  async function dumpDiagnostics(title) {
    const out = ['', '===== e2e diagnostics: ' + title + ' =====', ...await h.pageReport(snapshot, ' codebPhone')];
    if (h.tmp) {
      out.push('--- nginx error.log (tail):', tail(errorLog(), 80));
      out.push('--- codeb-mediad log (tail):', tail(mediadLog(), 40));
      const list = await ngRequest(env.ngPort, { command: 'list' }, { timeout: 500, retries: 0 }).catch((e) => ({ error: e.message }));
      out.push('--- codeb-mediad calls: ' + JSON.stringify(list));
    }
    console.error(out.join('\n'));
  }

  // Runs body with fresh pages; on failure prints the pages' logs (with
  // their SIP messages) and the server logs; always closes the pages.
  async function scenario(title, body) {
    try {
      await body();
      // CODEB_E2E_TRACE=1: the same report after a success (the SIP messages)
      if (process.env.CODEB_E2E_TRACE === '1') await dumpDiagnostics(title + ' (CODEB_E2E_TRACE)');
    } catch (e) {
      await dumpDiagnostics(title);
      throw e;
    } finally {
      await h.closePages();
    }
  }

  const state = (page) => page.evaluate(() => ({ reg: window.codebPhone.reg, call: window.codebPhone.call }));

  async function waitPage(page, label, what, fn, arg, timeout) {
    try {
      await page.waitForFunction(fn, arg, { timeout, polling: 50 });
    } catch (e) {
      throw new Error(label + ': ' + what + ' not within ' + timeout + ' ms (now '
        + JSON.stringify(await state(page).catch((x) => x.message)) + ')');
    }
  }

  const waitCall = (page, label, call, timeout = RING_MS) => waitPage(page, label, 'call state ' + call,
    (c) => window.codebPhone.call === c, call, timeout);

  // Opens a phone page registered as `user`.  The first time a page is
  // opened for a user, the settings are entered in its form (and saved in
  // localStorage); later, the page registers by itself with what it saved.
  async function openPhone(lib, user, label = user + ' (' + lib + ')') {
    const before = new Set(sipWorkers().keys());
    const page = await h.openPage(label, `http://127.0.0.1:${env.httpPort}/${PAGES[lib]}`);
    await page.waitForFunction(() => !!window.codebPhone, null, { timeout: 5000 });
    assert.match(await page.evaluate(() => window.codebPhone.lib), lib === 'jssip' ? /^JsSIP 3\.13\./ : /^SIP\.js 0\.21\./);
    const server = `ws://127.0.0.1:${env.sipPort}`;
    const stored = await page.evaluate((k) => JSON.parse(localStorage.getItem('codeb.phone.' + k) || 'null'), lib);
    if (stored && stored.server === server && stored.user === user && stored.autoRegister) {
      await waitPage(page, label, 'registered with its stored settings', () => window.codebPhone.reg === 'registered', null, 10000);
    } else {
      const settings = page.locator('#settings');
      if (!await settings.evaluate((d) => d.open)) await page.click('#settings summary');
      await page.fill('#set-server', server);
      await page.fill('#set-user', user);
      await page.fill('#set-password', USERS[user]);
      await page.fill('#set-name', user[0].toUpperCase() + user.slice(1));
      await page.fill('#set-domain', 'localhost');
      await page.check('#set-auto');
      // the page may be registering with other stored settings: wait for
      // the registration these settings make
      const mark = await page.evaluate(() => Date.now());
      await page.click('#btn-register');
      await waitPage(page, label, 'registered with the new settings', (t0) => window.codebPhone.reg === 'registered'
        && window.codebPhone.events.some((e) => e.type === 'registration' && e.state === 'registered' && e.t >= t0),
      mark, 10000);
      const saved = await page.evaluate((k) => JSON.parse(localStorage.getItem('codeb.phone.' + k)), lib);
      assert.deepEqual([saved.server, saved.user, saved.password, saved.domain], [server, user, USERS[user], 'localhost']);
    }
    assert.match(await page.textContent('#reg-status'), new RegExp('Registered as ' + user));
    page.worker = sipWorkers().get(await wsPort(page, label, before));
    page.lib = lib === 'jssip' ? 'JsSIP' : 'SIP.js';
    return page;
  }

  // The SIP WebSockets to nginx now: client port -> pid of the nginx
  // worker holding the accepted socket (ss -p, inside our namespace)
  function sipWorkers() {
    const r = spawnSync('ss', ['-Htnp', 'state', 'established', 'sport', '=', ':' + env.sipPort],
      { encoding: 'utf8', timeout: 5000 });
    const m = new Map();
    for (const l of (r.stdout || '').split('\n')) {
      const x = /127\.0\.0\.1:\d+\s+127\.0\.0\.1:(\d+)\s.*pid=(\d+)/.exec(l);
      if (x) m.set(Number(x[1]), nsPid(Number(x[2])));
    }
    return m;
  }

  // ss names the pid as /proc does, in the outer PID namespace; nginx's
  // access log ($pid) names it in ours: the last NSpid of its status
  function nsPid(pid) {
    try {
      const l = /^NSpid:\s*(.*)$/m.exec(fs.readFileSync('/proc/' + pid + '/status', 'utf8'));
      return l ? Number(l[1].trim().split(/\s+/).pop()) : pid;
    } catch {
      return pid;
    }
  }

  // The client port of the page's WebSocket: the one established client
  // port to the SIP port that was not there before the page opened
  // (`before`) and that no other open page has
  async function wsPort(page, label, before) {
    const others = new Set(h.pages.map((r) => r.page.wsPort).filter(Boolean));
    const mine = [...sipWorkers().keys()].filter((p) => !others.has(p) && !before.has(p));
    assert.equal(mine.length, 1, label + ': WebSocket client ports not known to other pages: ' + JSON.stringify(mine));
    page.wsPort = mine[0];
    return mine[0];
  }

  // which workers carry the call's two WebSockets (up to reuseport)
  function spread(t, caller, callee) {
    const same = caller.worker === callee.worker;
    env.spread[same ? 'same' : 'different'] += 1;
    t.diagnostic('caller on nginx worker ' + caller.worker + ', callee on ' + callee.worker
      + (same ? ' (same worker)' : ' (different workers)'));
  }

  // the time (ms since the epoch) of the page's last SIP message in
  // direction `dir` whose text matches `re`, or null
  function lastSip(page, dir, re) {
    return page.evaluate(([d, r]) => {
      const m = window.codebPhone.sip.filter((x) => x.dir === d && new RegExp(r).test(x.text)).pop();
      return m ? m.t : null;
    }, [dir, re]);
  }

  // clicks `selector` on `page`, brought to the front first: a background
  // page's animation frames are throttled, and a click waits for them
  async function press(page, selector) {
    await page.bringToFront();
    await page.click(selector);
  }

  // dials `target` on `page` with the call field and the Call button
  async function dial(page, target) {
    await page.fill('#dial-target', target);
    await press(page, '#btn-call');
  }

  // inbound-rtp audio and the selected candidate pair of the page's call
  function mediaStats(page) {
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

  // audio flows into `page` through codeb-mediad: connected, the remote
  // candidate is the daemon (127.0.0.1, a port of its range), inbound-rtp
  // packets and bytes grow
  async function assertAudioFlows(page, label) {
    await waitPage(page, label, 'RTCPeerConnection connected',
      () => window.codebPhone.pc && window.codebPhone.pc.connectionState === 'connected', null, CONNECT_MS);
    const first = await waitFor(label + ': inbound-rtp audio with packets', async () => {
      const s = await mediaStats(page);
      return s && s.inbound && s.inbound.packetsReceived > 0 && s.pair ? s : null;
    }, { timeout: 10000, interval: 200 });
    await sleep(1500);
    const second = await mediaStats(page);
    const r = { first, second };
    assert.equal(second.pair.remote.address, '127.0.0.1', label + ': remote candidate ' + JSON.stringify(r));
    assert.ok(second.pair.remote.port >= env.rtp[0] && second.pair.remote.port <= env.rtp[1],
      label + ': remote candidate port outside codeb-mediad\'s range ' + env.rtp.join('-') + ': ' + JSON.stringify(r));
    assert.equal(second.pair.local.address, '127.0.0.1', label + ': local candidate ' + JSON.stringify(r));
    assert.ok(second.inbound.packetsReceived > first.inbound.packetsReceived + 25,
      label + ': inbound-rtp packetsReceived not growing (~50/s expected) ' + JSON.stringify(r));
    assert.ok(second.inbound.bytesReceived > first.inbound.bytesReceived,
      label + ': inbound-rtp bytesReceived not growing ' + JSON.stringify(r));
    assert.equal(second.codec, 'audio/opus', label + ': codec ' + JSON.stringify(r));
    return r;
  }

  // A call from `caller` to the user `calleeUser` on `callee`: the callee's
  // page rings, the caller's shows the 180 Ringing (its ringback plays).
  // The latter is a subtest that is a TODO while the server's 180 carries
  // a To tag and no Contact: RFC 3261 12.1.1 requires a Contact in a
  // response that makes an early dialog, and SIP.js drops such a 180
  // ("Non-100 1xx INVITE response received without a Contact header
  // field"); JsSIP takes it.  Once the server sends the Contact, the TODO
  // goes away by itself and the check must pass.
  async function ring(t, caller, callerLabel, callee, calleeLabel, calleeUser) {
    await dial(caller, calleeUser);
    await waitCall(callee, calleeLabel, 'incoming');
    const ringing = await caller.waitForFunction(() => window.codebPhone.call === 'ringing', null,
      { timeout: 3000, polling: 50 }).then(() => true, () => false);
    const noContact = await caller.evaluate(() => window.codebPhone.sip.some((m) => m.dir === 'in'
      && /^SIP\/2\.0 18\d /.test(m.text) && /\r\nTo:[^\r\n]*;tag=/i.test(m.text) && !/\r\n(Contact|m) *:/i.test(m.text)));
    await t.test(callerLabel + '\'s page shows the callee ringing (180)', {
      todo: !ringing && noContact ? 'the server\'s 180 Ringing has a To tag and no Contact; '
        + caller.lib + ' drops it (RFC 3261 12.1.1): ngx_codeb_sipws must add a Contact' : false,
    }, async () => {
      assert.ok(ringing, callerLabel + ': no ringing state within 3 s of the callee\'s ring; now '
        + JSON.stringify(await state(caller)));
      assert.match(await caller.textContent('#call-status'), /^Ringing /);
    });
  }

  async function answer(caller, callerLabel, callee, calleeLabel) {
    await press(callee, '#btn-answer');
    await waitCall(callee, calleeLabel, 'established', CONNECT_MS);
    await waitCall(caller, callerLabel, 'established', CONNECT_MS);
  }

  // the daemon has no call left (each one is deleted on BYE, CANCEL, failure)
  async function assertNoMediaCalls(what) {
    await waitFor('codeb-mediad without calls ' + what, async () => {
      const r = await ngRequest(env.ngPort, { command: 'list' });
      if (r.result !== 'ok') throw new Error(JSON.stringify(r));
      if (r.calls.length) throw new Error('calls: ' + JSON.stringify(r.calls));
      return true;
    }, { timeout: 5000, interval: 200 });
  }

  // ------------------------------------------------------------------- tests

  test('A: JsSIP alice calls SIP.js bob: ringing, answer, audio both ways, mute, DTMF, transfer 501, bob hangs up',
    { timeout: 120000 }, async (t) => {
      await scenario('A jssip -> sipjs', async () => {
        const alice = await openPhone('jssip', 'alice');
        const bob = await openPhone('sipjs', 'bob');
        spread(t, alice, bob);

        await ring(t, alice, 'alice', bob, 'bob', 'bob');
        // (the server's INVITE to bob drops the caller's display name today)
        assert.match(await bob.textContent('#call-status'), /^Incoming call from (Alice \()?alice/);
        assert.ok(await bob.isVisible('#btn-answer'), 'bob\'s Answer button is shown');
        await answer(alice, 'alice', bob, 'bob');

        const a = await assertAudioFlows(alice, 'alice hears bob');
        const b = await assertAudioFlows(bob, 'bob hears alice');
        t.diagnostic('alice: ' + JSON.stringify(a.second.pair) + ' ' + JSON.stringify(a.second.inbound));
        t.diagnostic('bob: ' + JSON.stringify(b.second.pair) + ' ' + JSON.stringify(b.second.inbound));
        assert.notEqual(a.second.pair.remote.port, b.second.pair.remote.port, 'each page has its own daemon port');
        // the remote <audio> plays the call
        for (const [label, page] of [['alice', alice], ['bob', bob]]) {
          const au = await page.evaluate(() => {
            const el = document.getElementById('remote-audio');
            return { hasStream: !!el.srcObject, tracks: el.srcObject ? el.srcObject.getAudioTracks().length : 0 };
          });
          assert.ok(au.hasStream && au.tracks === 1, label + ': remote audio element ' + JSON.stringify(au));
        }

        // mute: the local track is disabled, and enabled again
        const track = (page) => page.evaluate(() => window.codebPhone.pc.getSenders()
          .filter((s) => s.track && s.track.kind === 'audio').map((s) => s.track.enabled));
        assert.deepEqual(await track(alice), [true]);
        await press(alice, '#btn-mute');
        await waitPage(alice, 'alice', 'muted', () => window.codebPhone.muted === true, null, 2000);
        assert.deepEqual(await track(alice), [false], 'alice\'s microphone track disabled');
        assert.equal(await alice.getAttribute('#btn-mute', 'aria-pressed'), 'true');
        await press(alice, '#btn-mute');
        await waitPage(alice, 'alice', 'unmuted', () => window.codebPhone.muted === false, null, 2000);
        assert.deepEqual(await track(alice), [true]);

        // DTMF keys: telephone-event was negotiated with the daemon, and the
        // browser played each digit as RFC 4733 events (RTCDTMFSender)
        const te = await alice.evaluate(() => /a=rtpmap:\d+ telephone-event\/48000/i.test(window.codebPhone.pc.remoteDescription.sdp));
        assert.ok(te, 'the daemon\'s answer to alice offers telephone-event/48000');
        for (const [i, k] of ['1', '5', '#'].entries()) {
          await press(alice, `#dialpad button[data-key="${k}"]`);
          await waitPage(alice, 'alice', 'DTMF ' + k + ' played', (n) => window.codebPhone.dtmfPlayed.length >= n, i + 1, 3000);
        }
        assert.equal(await alice.evaluate(() => window.codebPhone.dtmfPlayed), '15#');
        assert.equal(await alice.evaluate(() => window.codebPhone.dtmfSent), '15#');

        // transfer: REFER goes out and whatever the server answers is shown;
        // today it is 501 Not Implemented, a failure, and the call goes on
        await alice.fill('#transfer-target', 'carol');
        await press(alice, '#btn-transfer');
        await waitPage(alice, 'alice', 'the answer to REFER', () => {
          const tr = window.codebPhone.transfer;
          return tr && tr.state !== 'sent';
        }, null, 5000);
        const tr = await alice.evaluate(() => window.codebPhone.transfer);
        const referSent = await alice.evaluate(() => window.codebPhone.sip.some((m) => m.dir === 'out' && /^REFER sip:/.test(m.text)
          && /\r\nRefer-To: *<sip:carol@localhost>/i.test(m.text)));
        assert.ok(referSent, 'alice sent REFER with Refer-To: <sip:carol@localhost>');
        t.diagnostic('transfer: ' + JSON.stringify(tr));
        if (tr.state === 'failed') {
          assert.equal(tr.code, 501, 'REFER answered ' + JSON.stringify(tr));
          assert.match(await alice.textContent('#transfer-status'), /^Transfer failed: 501/);
          // the failed transfer leaves the call up, with media
          await sleep(500);
          assert.equal((await state(alice)).call, 'established');
          assert.equal((await state(bob)).call, 'established');
          await assertAudioFlows(bob, 'bob hears alice after the failed transfer');
        } else {
          // the server implements REFER now: this test must learn what it does
          assert.fail('REFER was not refused (the server answered ' + JSON.stringify(tr) + '): extend test A');
        }

        // bob hangs up: both pages return to idle
        await press(bob, '#btn-hangup');
        await waitCall(bob, 'bob', 'idle', 5000);
        await waitCall(alice, 'alice', 'idle', 5000);
        const [la, lb] = [await alice.evaluate(() => window.codebPhone.lastCall), await bob.evaluate(() => window.codebPhone.lastCall)];
        assert.equal(la.outcome, 'ended', JSON.stringify(la));
        assert.equal(la.by, 'remote', JSON.stringify(la));
        assert.equal(lb.outcome, 'ended', JSON.stringify(lb));
        assert.equal(lb.by, 'local', JSON.stringify(lb));
        assert.match(await alice.textContent('#call-status'), /^Call ended by the other side/);
        assert.equal(await alice.isDisabled('#btn-call'), false, 'alice can call again');
        assert.equal(await alice.evaluate(() => window.codebPhone.reg), 'registered');
        await assertNoMediaCalls('after A');
      });
    });

  test('A2: SIP.js bob calls JsSIP alice: answer, audio both ways, alice hangs up', { timeout: 90000 }, async (t) => {
    await scenario('A2 sipjs -> jssip', async () => {
      const alice = await openPhone('jssip', 'alice');
      const bob = await openPhone('sipjs', 'bob');
      spread(t, bob, alice);
      await ring(t, bob, 'bob', alice, 'alice', 'alice');
      assert.match(await alice.textContent('#call-status'), /^Incoming call from/);
      await answer(bob, 'bob', alice, 'alice');
      await assertAudioFlows(alice, 'alice hears bob');
      await assertAudioFlows(bob, 'bob hears alice');
      await press(alice, '#btn-hangup');
      await waitCall(alice, 'alice', 'idle', 5000);
      await waitCall(bob, 'bob', 'idle', 5000);
      const lb = await bob.evaluate(() => window.codebPhone.lastCall);
      assert.deepEqual([lb.outcome, lb.by], ['ended', 'remote'], JSON.stringify(lb));
      await assertNoMediaCalls('after A2');
    });
  });

  for (const [name, callerLib, callerUser, calleeLib, calleeUser] of [
    ['JsSIP alice -> SIP.js bob', 'jssip', 'alice', 'sipjs', 'bob'],
    ['SIP.js bob -> JsSIP alice', 'sipjs', 'bob', 'jssip', 'alice'],
  ]) {
    test('B: cancel while ringing, ' + name + ': the callee stops ringing within 2 s', { timeout: 60000 }, async (t) => {
      await scenario('B cancel ' + name, async () => {
        const caller = await openPhone(callerLib, callerUser);
        const callee = await openPhone(calleeLib, calleeUser);
        spread(t, caller, callee);
        await ring(t, caller, callerUser, callee, calleeUser, calleeUser);
        await sleep(300);
        await press(caller, '#btn-hangup');
        // timed in the browser (one clock for both pages): from the hang-up
        // in the caller's page to the callee's page leaving 'incoming'
        const click = await caller.evaluate(() => window.codebPhone.events.filter((e) => e.type === 'hangup').pop().t);
        await waitPage(callee, calleeUser, 'ringing stops within 2 s of the caller\'s hang-up',
          (t0) => window.codebPhone.call === 'idle' || Date.now() > t0 + 2000, click, 3000);
        const ended = await callee.evaluate(() => (window.codebPhone.events.filter((e) => e.type === 'ended').pop() || {}).t);
        const sent = await lastSip(caller, 'out', '^CANCEL ');
        const got = await lastSip(callee, 'in', '^CANCEL ');
        t.diagnostic('the callee stopped ringing ' + (ended - click) + ' ms after the caller\'s hang-up: CANCEL sent +'
          + (sent ? sent - click : '?') + ' ms, the callee\'s CANCEL received +' + (got ? got - click : '?') + ' ms');
        assert.ok(ended && ended - click <= 2000, 'the callee rang on ' + (ended ? ended - click + ' ms' : 'until now')
          + ' after the caller hung up: ' + JSON.stringify(await state(callee)));
        await waitCall(caller, callerUser, 'idle', 5000);
        const lc = await callee.evaluate(() => window.codebPhone.lastCall);
        assert.deepEqual([lc.outcome, lc.by], ['canceled', 'remote'], 'callee: ' + JSON.stringify(lc));
        assert.match(await callee.textContent('#call-status'), /^Missed call/);
        const lr = await caller.evaluate(() => window.codebPhone.lastCall);
        assert.deepEqual([lr.outcome, lr.by], ['canceled', 'local'], 'caller: ' + JSON.stringify(lr));
        // the callee's INVITE was answered 487 after the CANCEL
        const c487 = await callee.evaluate(() => window.codebPhone.sip.some((m) => m.dir === 'out' && /^SIP\/2\.0 487 /.test(m.text)));
        assert.ok(c487, 'the callee answered its INVITE 487 Request Terminated');
        await assertNoMediaCalls('after the cancel');
      });
    });

    test('C: reject, ' + name + ': the caller sees 486 Busy Here', { timeout: 60000 }, async (t) => {
      await scenario('C reject ' + name, async () => {
        const caller = await openPhone(callerLib, callerUser);
        const callee = await openPhone(calleeLib, calleeUser);
        spread(t, caller, callee);
        await ring(t, caller, callerUser, callee, calleeUser, calleeUser);
        await press(callee, '#btn-reject');
        await waitCall(callee, calleeUser, 'idle', 5000);
        await waitCall(caller, callerUser, 'idle', 5000);
        const lr = await caller.evaluate(() => window.codebPhone.lastCall);
        assert.equal(lr.code, 486, 'caller: ' + JSON.stringify(lr));
        assert.equal(lr.outcome, 'rejected', 'caller: ' + JSON.stringify(lr));
        assert.match(await caller.textContent('#call-status'), /^Call failed: 486 Busy Here/);
        const lc = await callee.evaluate(() => window.codebPhone.lastCall);
        assert.deepEqual([lc.outcome, lc.by], ['rejected', 'local'], 'callee: ' + JSON.stringify(lc));
        await assertNoMediaCalls('after the reject');
      });
    });
  }

  test('P: each page is an installable app: manifest, icons, service worker caching only the page shell; default settings',
    { timeout: 60000 }, async () => {
      await scenario('P pwa', async () => {
        const shell = new Set(['phone-jssip.html', 'phone-sipjs.html', 'phone.css', 'phone-ui.js', 'phone-jssip.js',
          'phone-sipjs.js', 'vendor/jssip.min.js', 'vendor/sip.min.js', 'phone-jssip.manifest.json',
          'phone-sipjs.manifest.json', 'phone-icon.svg', 'phone-icon-192.png', 'phone-icon-512.png']);
        for (const [lib, user] of [['jssip', 'alice'], ['sipjs', 'bob']]) {
          const page = await openPhone(lib, user);
          const base = `http://127.0.0.1:${env.httpPort}/`;
          // the manifest: a standalone app starting at this page, icons that exist
          const href = await page.getAttribute('link[rel="manifest"]', 'href');
          const m = JSON.parse((await httpGet(env.httpPort, '/' + href)).body);
          assert.equal(m.start_url, './' + PAGES[lib]);
          assert.equal(m.display, 'standalone');
          assert.ok(m.name && m.short_name, JSON.stringify(m));
          for (const size of ['192x192', '512x512']) {
            const icon = m.icons.find((i) => i.sizes === size && i.type === 'image/png');
            assert.ok(icon, lib + ': no ' + size + ' PNG icon');
            const r = await httpGet(env.httpPort, '/' + icon.src);
            assert.equal(r.status, 200, icon.src);
          }
          // the service worker controls the page once reloaded, and its
          // cache holds only page shell files (no WebSocket, no /signal.ashx)
          await page.evaluate(() => navigator.serviceWorker.ready);
          await page.reload();
          await page.waitForFunction(() => !!navigator.serviceWorker.controller && !!window.codebPhone, null, { timeout: 10000 });
          const cached = await page.evaluate(async () => {
            const out = [];
            for (const k of await caches.keys()) for (const r of await (await caches.open(k)).keys()) out.push(r.url);
            return out;
          });
          const paths = cached.map((u) => u.slice(base.length));
          assert.ok(paths.includes(PAGES[lib]) && paths.includes('vendor/' + (lib === 'jssip' ? 'jssip' : 'sip') + '.min.js'),
            lib + ': cached ' + JSON.stringify(paths));
          assert.deepEqual(paths.filter((p) => !shell.has(p)), [], lib + ': cached beyond the page shell');
          // the reloaded page registered again from its stored settings
          await waitPage(page, lib, 'registered after the reload', () => window.codebPhone.reg === 'registered', null, 10000);
          // offline, the page still opens (from the cache)
          await h.context.setOffline(true);
          try {
            const res = await page.reload();
            await page.waitForFunction(() => !!window.codebPhone, null, { timeout: 10000 });
            assert.ok(res && res.fromServiceWorker(), lib + ': the offline page did not come from the service worker');
            assert.match(await page.title(), /^CodeB phone/);
          } finally {
            await h.context.setOffline(false);
          }
          // without stored settings: the demo user of the page and, on an
          // http page, ws://<host>:5066
          await page.evaluate((k) => localStorage.removeItem('codeb.phone.' + k), lib);
          await page.reload();
          await page.waitForFunction(() => !!window.codebPhone, null, { timeout: 10000 });
          assert.equal(await page.inputValue('#set-server'), 'ws://127.0.0.1:5066');
          assert.equal(await page.inputValue('#set-user'), user);
          assert.equal(await page.inputValue('#set-password'), user + '-demo-pass');
        }
      });
    });

  test('no call left in codeb-mediad, nginx quits gracefully, no worker died, no alert', { timeout: 60000 }, async (t) => {
    // close the browser first: open WebSockets would hold a graceful shutdown
    await h.closeBrowser();
    await sleep(500);
    assert.ok(env.mediad && !env.mediad.exited, 'codeb-mediad died during the run:\n' + tail(mediadLog(), 40));
    await assertNoMediaCalls('at the end');
    assert.ok(env.nginx && !env.nginx.exited, 'nginx died during the run (code ' + (env.nginx && env.nginx.code)
      + ', signal ' + (env.nginx && env.nginx.signal) + '):\n' + tail(errorLog(), 40));
    const graceful = await env.nginx.stop('SIGQUIT', 5000);
    const log = fs.readFileSync(errorLog(), 'utf8');
    const crashes = log.split('\n').filter((l) => /exited on signal/.test(l));
    assert.deepEqual(crashes, [], 'nginx worker crash (release blocker):\n' + tail(errorLog(), 80));
    assert.ok(graceful, 'nginx did not exit within 5 s of SIGQUIT:\n' + tail(errorLog(), 40));
    // the WebSockets per worker (the access log names the worker pid of
    // each upgraded request), and the calls by their workers
    const perWorker = {};
    for (const l of fs.readFileSync(path.join(h.tmp, 'logs', 'access.log'), 'utf8').split('\n')) {
      const m = /^(\d+) \d+ "GET \/ HTTP\/1\.1" 101 /.exec(l);
      if (m) perWorker[m[1]] = (perWorker[m[1]] || 0) + 1;
    }
    t.diagnostic('SIP WebSockets per nginx worker: ' + JSON.stringify(perWorker)
      + '; calls with caller and callee on the same worker: ' + env.spread.same + ', on different workers: ' + env.spread.different);
    const alerts = log.split('\n').filter((l) => /\[(alert|emerg|crit)\]/.test(l));
    assert.deepEqual(alerts, [], 'alert/crit/emerg lines in error.log');
  });
}
