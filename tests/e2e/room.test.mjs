// Browser end-to-end tests of the conference page (html/room.html) against
// the real server: Debian chromium (driven by playwright-core) x2 <->
// nginx + ngx_codeb_core/ngx_codeb_signal <-> Redis, with coturn for TURN.
//
//   node --test tests/e2e/          (./build.sh test runs this after t/)
//
// Self-contained (the shared setup is in lib.mjs): the file re-executes
// itself inside fresh network and PID namespaces
// (`unshare --net --pid --fork --kill-child`), where only `lo` exists,
// so every packet (HTTP, WebSocket, ICE, TURN, SRTP) stays on 127.0.0.1 and
// nothing started here can outlive the run.  Inside, it starts its own
// redis-server, coturn and nginx (2 workers) in a temp dir, then chromium
// with fake camera/microphone.  Needs root (CI runs as root) and the modules
// built by `./build.sh build`.
//
//   A  direct: two pages meet, media flows over a host pair, Leave removes the tile
//   A2 close:  a closed page leaves at once (its leave / close frame), no grace
//   B  relay:  relay=1 on both pages; the TURN credentials from `welcome`
//              get a relay pair through coturn
//   C  resume: a dropped signaling socket (its TCP killed with `ss -K`, no
//              close frame) resumes with the same peerId; the other page
//              sees no peer-left and the RTCPeerConnection survives
//   and at the end: nginx quits gracefully and no worker died on a signal.
//
// Environment: CODEB_E2E_CHROMIUM (default /usr/bin/chromium),
// TEST_NGINX_MODULES (default build/modules), CODEB_E2E_KEEP=1 keeps the
// temp dir for inspection, CODEB_E2E_TRACE=1 prints each scenario's
// diagnostics also when it passes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HTML, Harness, enterLoopbackNamespace, sleep, waitFor, withTimeout, freePort, tail, startProc, snapshotPage, waitUp,
  httpGet, assertBuilt, startRedis, nginxConf, startNginx, assertRunning, quitNginx, assertNoAlerts, webSocketsPerWorker,
  serverReport,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------
// 1. Re-exec inside a loopback-only network namespace (lib.mjs).
if (await enterLoopbackNamespace(SELF, 'chromium, nginx and coturn')) defineTests();

// ---------------------------------------------------------------------------
// helpers

// STUN Binding request (RFC 5389) to see coturn answering on its UDP port.
function stunPing(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const tid = randomBytes(12);
    const req = Buffer.concat([Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), tid]);
    const done = (v) => { clearTimeout(t); try { s.close(); } catch { /* closed */ } resolve(v); };
    const t = setTimeout(() => done(false), 500);
    s.on('error', () => done(false));
    s.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(tid)));
    s.send(req, port, '127.0.0.1');
  });
}

// ---------------------------------------------------------------------------

function defineTests() {
  const CONNECT_MS = 20000;

  const env = {
    redis: null,
    turn: null,
    nginx: null,
    port: 0,        // tenant e2e: no TURN configured (direct)
    relayPort: 0,   // tenant e2e-relay: TURN URI + secret
    turnPort: 0,
    turnSecret: randomBytes(24).toString('hex'),
  };
  // temp dir, browser, pages; cleanup (stops these, in this order) on
  // every way out, watchdog (lib.mjs)
  const h = new Harness({
    procs: () => [env.nginx, env.turn, env.redis],
    diagnose: (title) => dumpDiagnostics(title),
    watchdogMs: 300000,
  });
  const errorLog = () => path.join(h.tmp, 'logs', 'error.log');

  before(async () => {
    assertBuilt(['core', 'signal']);
    h.makeTmp('codeb-e2e-', ['turn']);

    env.redis = startRedis(h.tmp);
    await env.redis.ready;

    // coturn, loopback only
    env.turnPort = await freePort('udp');
    const turnArgs = [
      '-n',
      '--listening-ip=127.0.0.1', '--relay-ip=127.0.0.1',
      '--listening-port=' + env.turnPort,
      '--use-auth-secret', '--static-auth-secret=' + env.turnSecret,
      '--realm=codeb.test',
      '--no-tls', '--no-dtls', '--no-cli',
      '--log-file=stdout', '--simple-log',
      '--min-port=50000', '--max-port=50100',
      '--allow-loopback-peers',
      '--pidfile=' + path.join(h.tmp, 'turn', 'turnserver.pid'),
      '--userdb=' + path.join(h.tmp, 'turn', 'turndb'),
    ];
    env.turnArgs = turnArgs;
    env.turn = startProc('turnserver', 'turnserver', turnArgs, path.join(h.tmp, 'logs', 'turnserver.log'));
    await waitUp(env.turn, 'turnserver answering STUN on 127.0.0.1:' + env.turnPort, () => stunPing(env.turnPort),
      { interval: 200 });

    // nginx: 2 workers, two tenants (with and without TURN).  `reuseport`
    // spreads connections over both workers by the client's port, so peers
    // of one room (and a resumed socket) land on different workers in most
    // runs; without it an idle nginx hands nearly every connection to one.
    // The last test prints the spread.
    env.port = await freePort();
    do { env.relayPort = await freePort(); } while (env.relayPort === env.port);
    // a second port of the same tenant: test C drops every connection of
    // one page by killing the sockets to it
    do { env.port2 = await freePort(); } while (env.port2 === env.port || env.port2 === env.relayPort);
    const T = h.tmp;
    env.nginx = startNginx(T, nginxConf(T, {
      by: 'tests/e2e/room.test.mjs',
      modules: ['core', 'signal'],
      redis: env.redis.sock,
      http: [
        '    server {',
        `        listen 127.0.0.1:${env.port} reuseport;`,
        `        listen 127.0.0.1:${env.port2} reuseport;`,
        '        codeb_tenant e2e;',
        `        root ${HTML};`,
        '        location = /signal.ashx { codeb_signal; }',
        '        location / { try_files $uri $uri/ =404; }',
        '    }',
        '    server {',
        `        listen 127.0.0.1:${env.relayPort} reuseport;`,
        '        codeb_tenant e2e-relay;',
        `        codeb_turn_uri turn:127.0.0.1:${env.turnPort}?transport=udp;`,
        `        codeb_turn_secret ${env.turnSecret};`,
        `        root ${HTML};`,
        '        location = /signal.ashx { codeb_signal; }',
        '        location / { try_files $uri $uri/ =404; }',
        '    }',
      ],
    }));
    for (const port of [env.port, env.port2, env.relayPort]) {
      await waitUp(env.nginx, 'nginx on 127.0.0.1:' + port, async () => {
        const r = await httpGet(port, '/signal.ashx');
        return r.status === 200 && (await httpGet(port, '/room.html')).status === 200;
      }, { log: errorLog() });
    }

    // chromium (Debian's; never a downloaded one)
    await h.launchChromium();
  });

  after(() => h.close());

  // ------------------------------------------------------------- page helpers

  async function openPage(label, url) {
    const page = await h.openPage(label, url);
    await page.waitForFunction(() => window.codebRoom && window.codebRoom.state === 'joined',
      null, { timeout: 10000, polling: 100 }).catch(async (e) => {
      throw new Error(label + ' did not join: ' + e.message.split('\n')[0]
        + '\n' + JSON.stringify(await snapshot(page)));
    });
    return page;
  }

  function snapshot(page) {
    return snapshotPage(page, () => {
      const r = window.codebRoom;
      if (!r) return { codebRoom: null, url: location.href, body: document.body && document.body.innerText.slice(0, 300) };
      return {
        peerId: r.peerId,
        room: r.room,
        state: r.state,
        lastSeq: r.lastSeq,
        peers: [...r.peers.values()].map((p) => ({
          peerId: p.peerId, name: p.name,
          pc: p.pc && { connectionState: p.pc.connectionState, iceConnectionState: p.pc.iceConnectionState, signalingState: p.pc.signalingState },
        })),
        tiles: [...document.querySelectorAll('.tile[data-peer-id]')].map((t) => t.dataset.peerId + ' ' + t.className),
        log: [...r.log],
      };
    });
  }

  // the pages, nginx's and coturn's logs
  function dumpDiagnostics(title) {
    return h.printDiagnostics(title, snapshot, ' codebRoom', async () => [
      ...await serverReport(h.tmp),
      '--- turnserver log (tail):', tail(path.join(h.tmp, 'logs', 'turnserver.log'), 30),
    ]);
  }

  // Runs body with fresh pages; on failure prints the pages' logs and the
  // server logs, and always closes the pages.
  const scenario = (title, body) => h.scenario(title, body);

  function roomUrl(port, room, name, extra = '') {
    return `http://127.0.0.1:${port}/room.html?room=${room}&name=${encodeURIComponent(name)}${extra}`;
  }

  function newRoom() { return 'e2e-' + randomBytes(6).toString('hex'); }

  async function waitConnected(page, label) {
    try {
      await page.waitForFunction(() => {
        const r = window.codebRoom;
        if (!r || r.peers.size !== 1) return false;
        const p = [...r.peers.values()][0];
        return !!p.pc && p.pc.connectionState === 'connected';
      }, null, { timeout: CONNECT_MS, polling: 100 });
    } catch (e) {
      throw new Error(label + ': no connected RTCPeerConnection within ' + CONNECT_MS + ' ms');
    }
  }

  async function remoteTiles(page) {
    return page.$$eval('.tile[data-peer-id]', (ts) => ts.map((t) => ({
      peerId: t.dataset.peerId,
      name: (t.querySelector('.name') || {}).textContent,
    })));
  }

  // The remote video shows decoded frames: videoWidth > 0, frames presented
  // (requestVideoFrameCallback) and inbound-rtp framesDecoded growing.
  async function assertVideoPlays(page, label) {
    const r = await withTimeout(page.evaluate(async () => {
      const v = document.querySelector('.tile[data-peer-id] video');
      if (!v) return { error: 'no remote video element' };
      const t0 = performance.now();
      while (v.videoWidth === 0 && performance.now() - t0 < 10000) await new Promise((res) => setTimeout(res, 100));
      const frames = await new Promise((res) => {
        let n = 0;
        const timer = setTimeout(() => res(n), 10000);
        const cb = () => { n += 1; if (n >= 5) { clearTimeout(timer); res(n); } else v.requestVideoFrameCallback(cb); };
        v.requestVideoFrameCallback(cb);
      });
      const decoded = async () => {
        const pc = [...window.codebRoom.peers.values()][0].pc;
        let d = 0;
        (await pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') d += s.framesDecoded || 0; });
        return d;
      };
      const d1 = await decoded();
      await new Promise((res) => setTimeout(res, 1000));
      const d2 = await decoded();
      return { width: v.videoWidth, height: v.videoHeight, paused: v.paused, frames, decoded: [d1, d2] };
    }), 30000, label + ' video check');
    assert.ok(!r.error, label + ': ' + r.error);
    assert.ok(r.width > 0 && r.height > 0, label + ': remote video has no size ' + JSON.stringify(r));
    assert.ok(r.frames >= 5, label + ': remote video presented ' + r.frames + ' frames in 10 s ' + JSON.stringify(r));
    assert.ok(r.decoded[1] > r.decoded[0], label + ': framesDecoded not growing ' + JSON.stringify(r));
    return r;
  }

  // The selected ICE candidate pair, as seen by this page.
  function selectedPair(page) {
    return page.evaluate(async () => {
      const p = [...window.codebRoom.peers.values()][0];
      const st = await p.pc.getStats();
      let pair = null;
      st.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId && st.get(s.selectedCandidatePairId)) {
          pair = st.get(s.selectedCandidatePairId);
        }
      });
      if (!pair) st.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.state === 'succeeded' && s.nominated) pair = s; });
      if (!pair) return null;
      const c = (id) => {
        const x = st.get(id);
        return x && { candidateType: x.candidateType, address: x.address, port: x.port, protocol: x.protocol, relayProtocol: x.relayProtocol, url: x.url };
      };
      return { state: pair.state, nominated: pair.nominated, local: c(pair.localCandidateId), remote: c(pair.remoteCandidateId) };
    });
  }

  async function twoConnectedPages(port, extra = '', bobPort = port) {
    const room = newRoom();
    const alice = await openPage('Alice', roomUrl(port, room, 'Alice', extra));
    const bob = await openPage('Bob', roomUrl(bobPort, room, 'Bob', extra));
    await Promise.all([waitConnected(alice, 'Alice'), waitConnected(bob, 'Bob')]);
    const ids = {
      alice: await alice.evaluate(() => window.codebRoom.peerId),
      bob: await bob.evaluate(() => window.codebRoom.peerId),
    };
    assert.match(ids.alice, /^p_[0-9a-f]{16}$/);
    assert.match(ids.bob, /^p_[0-9a-f]{16}$/);
    assert.notEqual(ids.alice, ids.bob);
    // one remote tile each, labelled with the other's name
    assert.deepEqual(await remoteTiles(alice), [{ peerId: ids.bob, name: 'Bob' }]);
    assert.deepEqual(await remoteTiles(bob), [{ peerId: ids.alice, name: 'Alice' }]);
    return { room, alice, bob, ids };
  }

  // ------------------------------------------------------------------- tests

  test('A: two pages meet directly, see each other, and Leave removes the tile', { timeout: 90000 }, async () => {
    await scenario('A direct', async () => {
      const { alice, bob, ids } = await twoConnectedPages(env.port);

      // no TURN configured for this tenant: the pair is host <-> host on loopback
      for (const [label, page] of [['Alice', alice], ['Bob', bob]]) {
        const ice = await page.evaluate(() => [...window.codebRoom.peers.values()][0].pc.getConfiguration().iceServers);
        assert.deepEqual(ice, [], label + ': welcome.iceServers should be empty without codeb_turn_uri');
        const pair = await selectedPair(page);
        assert.ok(pair, label + ': no selected candidate pair');
        assert.equal(pair.local.candidateType, 'host', label + ': ' + JSON.stringify(pair));
        assert.equal(pair.local.address, '127.0.0.1', label + ': ' + JSON.stringify(pair));
      }

      await assertVideoPlays(alice, 'Alice sees Bob');
      await assertVideoPlays(bob, 'Bob sees Alice');

      await bob.click('#btn-leave');
      await waitFor('Bob\'s page in state left', () => bob.evaluate(() => window.codebRoom.state === 'left'), { timeout: 5000 });
      await waitFor('Alice\'s tile of Bob to disappear', async () =>
        (await remoteTiles(alice)).length === 0, { timeout: 10000 });
      assert.equal(await alice.evaluate(() => window.codebRoom.peers.size), 0);
      const log = await alice.evaluate(() => [...window.codebRoom.log]);
      assert.ok(log.some((l) => l.startsWith('rx peer-left ' + ids.bob)), 'Alice got peer-left for Bob');
      assert.equal(await alice.evaluate(() => window.codebRoom.state), 'joined');
    });
  });

  test('A2: closing a page tells the room at once, not after the resume grace', { timeout: 90000 }, async () => {
    await scenario('A2 close', async () => {
      const { alice, bob, ids } = await twoConnectedPages(env.port);
      const t0 = Date.now();
      await bob.close();
      // the grace is 20 s: a held peer would stay that long
      await waitFor('Alice\'s tile of Bob to disappear', async () =>
        (await remoteTiles(alice)).length === 0, { timeout: 5000 });
      const log = await alice.evaluate(() => [...window.codebRoom.log]);
      assert.ok(log.some((l) => l.startsWith('rx peer-left ' + ids.bob)), 'Alice got peer-left for Bob');
      assert.ok(Date.now() - t0 < 5000, 'peer-left came ' + (Date.now() - t0) + ' ms after the close');
    });
  });

  test('B: relay=1 connects through coturn with the TURN credentials from welcome', { timeout: 90000 }, async () => {
    await scenario('B relay', async () => {
      const { alice, bob, ids } = await twoConnectedPages(env.relayPort, '&relay=1');

      for (const [label, page, id] of [['Alice', alice, ids.alice], ['Bob', bob, ids.bob]]) {
        const conf = await page.evaluate(() => {
          const c = [...window.codebRoom.peers.values()][0].pc.getConfiguration();
          return { policy: c.iceTransportPolicy, iceServers: c.iceServers };
        });
        assert.equal(conf.policy, 'relay', label);
        const turn = conf.iceServers.find((s) => [].concat(s.urls).some((u) => u.startsWith('turn:')));
        assert.ok(turn, label + ': no TURN server in welcome.iceServers ' + JSON.stringify(conf.iceServers));
        assert.ok([].concat(turn.urls).includes(`turn:127.0.0.1:${env.turnPort}?transport=udp`), JSON.stringify(turn));
        // coturn use-auth-secret: "<expiry>:<peerId>", base64(HMAC-SHA1(secret, username))
        const m = /^(\d+):(.+)$/.exec(turn.username || '');
        assert.ok(m, label + ': TURN username ' + turn.username);
        assert.equal(m[2], id, label + ': TURN username names the peer');
        const ttl = Number(m[1]) - Date.now() / 1000;
        assert.ok(ttl > 3600 && ttl <= 86400 + 60, label + ': TURN expiry ' + ttl + ' s from now');
        assert.equal(turn.credential, createHmac('sha1', env.turnSecret).update(turn.username).digest('base64'),
          label + ': TURN credential');

        const pair = await selectedPair(page);
        assert.ok(pair, label + ': no selected candidate pair');
        assert.equal(pair.local.candidateType, 'relay', label + ': selected pair ' + JSON.stringify(pair));
        assert.equal(pair.local.address, '127.0.0.1', label + ': ' + JSON.stringify(pair));
        assert.ok(pair.local.port >= 50000 && pair.local.port <= 50100,
          label + ': relayed port outside coturn\'s range: ' + JSON.stringify(pair));
      }

      await assertVideoPlays(alice, 'Alice sees Bob (relayed)');
      await assertVideoPlays(bob, 'Bob sees Alice (relayed)');
    });
  });

  test('C: a dropped signaling socket resumes: same peerId, no peer-left, media keeps flowing', { timeout: 90000 }, async () => {
    await scenario('C resume', async () => {
      // Bob's page talks to the second port only
      const { alice, bob, ids } = await twoConnectedPages(env.port, '', env.port2);

      // Alice watches Bob's tile and pc from now on.
      await alice.evaluate((bobId) => {
        const w = window;
        w.__e2e = { removed: 0, pc: window.codebRoom.peers.get(bobId).pc, states: [], log: [] };
        // everything Alice's page logs from now on (codebRoom.log is capped)
        const log = window.codebRoom.log;
        const push = log.push;
        log.push = function (...a) { w.__e2e.log.push(...a); return push.apply(this, a); };
        const tile = document.querySelector(`.tile[data-peer-id="${bobId}"]`);
        new MutationObserver((recs) => {
          for (const r of recs) for (const n of r.removedNodes) if (n === tile) w.__e2e.removed += 1;
        }).observe(tile.parentNode, { childList: true });
        w.__e2e.pc.addEventListener('connectionstatechange', () => w.__e2e.states.push(w.__e2e.pc.connectionState));
      }, ids.bob);
      const bobBefore = await bob.evaluate(() => {
        const pc = [...window.codebRoom.peers.values()][0].pc;
        window.__e2e = { pc, states: [], log: [] };
        pc.addEventListener('connectionstatechange', () => window.__e2e.states.push(pc.connectionState));
        const log = window.codebRoom.log;
        const push = log.push;
        log.push = function (...a) { window.__e2e.log.push(...a); return push.apply(this, a); };
        return { lastSeq: window.codebRoom.lastSeq };
      });

      // the network drops Bob's connections: no close frame either way
      // (a close frame from the client would be a deliberate leave)
      const kill = spawnSync('ss', ['-K', 'dst', '127.0.0.1', 'dport', '=', ':' + env.port2],
        { encoding: 'utf8', timeout: 5000 });
      assert.equal(kill.status, 0, 'ss -K: ' + kill.stderr);
      await waitFor('Bob\'s page to notice the drop', () => bob.evaluate(() =>
        window.__e2e.log.some((l) => l.startsWith('ws closed code=1006'))), { timeout: 5000, interval: 50 });
      await waitFor('Bob\'s page to be joined again (resumed)', () => bob.evaluate(() =>
        window.codebRoom.state === 'joined' && window.__e2e.log.some((l) => / resumed$/.test(l))),
      { timeout: 15000, interval: 100 });

      const bobAfter = await bob.evaluate(() => ({
        peerId: window.codebRoom.peerId,
        log: window.__e2e.log,
        peers: [...window.codebRoom.peers.keys()],
        samePc: [...window.codebRoom.peers.values()][0].pc === window.__e2e.pc,
      }));
      assert.equal(bobAfter.peerId, ids.bob, 'Bob resumed with the same peerId');
      const welcomes = bobAfter.log.filter((l) => l.startsWith('rx welcome'));
      assert.deepEqual(welcomes, [`rx welcome ${ids.bob} room=${await bob.evaluate(() => window.codebRoom.room)} peers=1 resumed`]);
      assert.deepEqual(bobAfter.peers, [ids.alice]);
      assert.ok(bobAfter.samePc, 'Bob kept his RTCPeerConnection');

      // Signaling over the resumed socket works both ways: an ICE restart
      // from Bob is an offer/answer round trip through the server.
      await bob.evaluate(() => { [...window.codebRoom.peers.values()][0].pc.restartIce(); });
      await waitFor('ICE restart answer from Alice over the resumed socket', () => bob.evaluate((aliceId) => {
        const r = window.codebRoom;
        const pc = [...r.peers.values()][0].pc;
        return window.__e2e.log.some((l) => l === 'rx signal ' + aliceId + ' answer') && pc.signalingState === 'stable'
          && pc.connectionState === 'connected';
      }, ids.alice), { timeout: 15000 });

      // let any late peer-left / re-join show up before judging Alice
      await sleep(1500);
      const a = await alice.evaluate((bobId) => ({
        log: window.__e2e.log,
        peers: [...window.codebRoom.peers.keys()],
        samePc: window.codebRoom.peers.get(bobId) && window.codebRoom.peers.get(bobId).pc === window.__e2e.pc,
        state: window.__e2e.pc.connectionState,
        states: window.__e2e.states,
        removed: window.__e2e.removed,
      }), ids.bob);
      assert.deepEqual(a.log.filter((l) => l.startsWith('rx peer-left') || l.startsWith('rx peer-joined')), [],
        'Alice saw no peer-left / peer-joined');
      assert.equal(a.removed, 0, 'Bob\'s tile never left Alice\'s grid');
      assert.deepEqual(a.peers, [ids.bob]);
      assert.ok(a.samePc, 'Alice kept her RTCPeerConnection to Bob');
      assert.equal(a.state, 'connected');
      assert.ok(!a.states.some((s) => s === 'failed' || s === 'closed'), 'Alice\'s pc states: ' + a.states.join(','));
      assert.equal(await bob.evaluate(() => window.__e2e.pc.connectionState), 'connected');
      assert.ok(await bob.evaluate(() => window.codebRoom.lastSeq) >= bobBefore.lastSeq);

      await assertVideoPlays(alice, 'Alice sees Bob after the resume');
      await assertVideoPlays(bob, 'Bob sees Alice after the resume');
    });
  });

  test('nginx quits gracefully and no worker died on a signal', { timeout: 60000 }, async (t) => {
    // close the browser first: open WebSockets would hold a graceful shutdown
    await h.closeBrowser();
    await sleep(500);
    assertRunning(env.nginx, errorLog());
    const log = await quitNginx(env.nginx, errorLog());
    // which workers carried the WebSockets (both should over a few runs)
    t.diagnostic('WebSockets per nginx worker pid: ' + JSON.stringify(webSocketsPerWorker(h.tmp, '/signal.ashx')));
    assertNoAlerts(log);
  });
}
