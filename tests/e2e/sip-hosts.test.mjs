// The softphones over wss:// on two nginx hosts that share one Redis: the
// caller's WebSocket on one host, the callee's on the other, so that every
// request and response of the call crosses hosts on the Redis bus
// (docs/sip.md "Routing across workers and hosts").
//
//   node --test tests/e2e/          (./build.sh test runs this after t/)
//
// Like the other files here it re-executes itself inside fresh network and
// PID namespaces where only `lo` exists (lib.mjs) and starts its own
// redis-server and codeb-mediad, then two nginx masters (2 workers each)
// with `codeb_host_id` hostA and hostB, the same Redis, the same tenant
// localhost and users, SIP over WebSocket with TLS: a certificate for
// localhost made for the run (openssl), which chromium is told to trust by
// its public key hash (--ignore-certificate-errors-spki-list: that key
// only).  Host A also serves the pages over http.
//
//   H1 JsSIP alice registered at host A calls SIP.js bob registered at
//      host B (wss://localhost:<port> each, Via SIP/2.0/WSS): bob's page
//      rings, answers, audio both ways through codeb-mediad, alice hangs up
//   H2 bob (host B) calls alice (host A) and cancels while alice's page
//      rings: it stops ringing within 2 s
//   and at the end: no call left in codeb-mediad, both nginx quit
//   gracefully, no worker died, nothing at [alert]/[crit]/[emerg].
//
// Environment as for phones.test.mjs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Harness, enterLoopbackNamespace, freePort, waitUp, httpGet, nginxConf, startNginx, assertRunning, quitNginx,
  assertNoAlerts, serverReport, assertNoMediaCalls,
} from './lib.mjs';
import {
  CONNECT_MS, phoneHttpConf, makeCertificate, tlsUp, startPhoneServers, phoneSnapshot, phoneState as state, waitCall,
  press, openPhone,
  assertInboundAudio,
} from './sip-lib.mjs';

const SELF = fileURLToPath(import.meta.url);

if (await enterLoopbackNamespace(SELF, 'chromium, two nginx hosts and codeb-mediad')) defineTests();

function defineTests() {
  const USERS = { alice: 'alice-demo-pass', bob: 'bob-demo-pass' };
  const env = { redis: null, mediad: null, hosts: [], httpPort: 0 };
  const h = new Harness({
    procs: () => [...env.hosts.map((x) => x.nginx), env.mediad, env.redis],
    diagnose: (title) => h.printDiagnostics(title, (page) => phoneSnapshot(page), ' codebPhone',
      async () => [...(await serverReport(env.hosts[0].dir, env.mediad)),
        '--- host B:', ...(await serverReport(env.hosts[1].dir))]),
    watchdogMs: 300000,
  });

  before(async () => {
    const T = await startPhoneServers(h, env, 'codeb-e2e-siphosts-', ['core', 'sipws']);
    const tls = makeCertificate(T);
    env.httpPort = await freePort();
    for (const name of ['hostA', 'hostB']) {
      const dir = name === 'hostA' ? T : path.join(T, name);
      for (const d of ['logs', 'tmp']) fs.mkdirSync(path.join(dir, d), { recursive: true });
      let sipPort;
      do { sipPort = await freePort(); } while (sipPort === env.httpPort || env.hosts.some((x) => x.sipPort === sipPort));
      const conf = nginxConf(dir, {
        by: 'tests/e2e/sip-hosts.test.mjs',
        stream: true,
        modules: ['core', 'sipws'],
        redis: env.redis.sock,
        http: [`    codeb_host_id ${name};`, ...phoneHttpConf({
          ngPort: env.mediad.ngPort, httpPort: name === 'hostA' ? env.httpPort : 0, sipPort, users: USERS, tls,
        })],
      });
      const host = { name, dir, sipPort, nginx: startNginx(dir, conf), server: `wss://localhost:${sipPort}` };
      env.hosts.push(host);
      await waitUp(host.nginx, 'nginx ' + name, () => tlsUp(sipPort), { log: path.join(dir, 'logs', 'error.log') });
    }
    await waitUp(env.hosts[0].nginx, 'the pages on host A', async () =>
      (await httpGet(env.httpPort, '/phone-jssip.html')).status === 200);
    await h.launchChromium(['--ignore-certificate-errors-spki-list=' + tls.spki]);
  });

  after(() => h.close());

  const [A, B] = [0, 1];
  const scenario = (title, body) => h.scenario(title, body);

  // a phone page of `lib` registered as `user` over wss at host `i`
  async function phone(lib, user, i) {
    const host = env.hosts[i];
    const page = await openPhone(h, {
      url: `http://127.0.0.1:${env.httpPort}/`, server: host.server, lib, user, password: USERS[user],
      label: user + ' (' + lib + ', ' + host.name + ')',
    });
    return page;
  }

  async function assertAudio(page) {
    const { second, r } = await assertInboundAudio(page, page.label, env.mediad.rtp);
    assert.equal(second.codec, 'audio/opus', page.label + ': codec ' + JSON.stringify(r));
  }

  test('H1: JsSIP alice at host A calls SIP.js bob at host B over wss: ring, answer, audio both ways, hang up',
    { timeout: 120000 }, async () => {
      await scenario('H1', async () => {
        const alice = await phone('jssip', 'alice', A);
        const bob = await phone('sipjs', 'bob', B);
        await alice.fill('#dial-target', 'bob');
        await press(alice, '#btn-call');
        await waitCall(bob, bob.label, 'incoming');
        await waitCall(alice, alice.label, 'ringing', 5000);
        await press(bob, '#btn-answer');
        await waitCall(bob, bob.label, 'established', CONNECT_MS);
        await waitCall(alice, alice.label, 'established', CONNECT_MS);
        await assertAudio(alice);
        await assertAudio(bob);
        await press(alice, '#btn-hangup');
        await waitCall(alice, alice.label, 'idle', 5000);
        await waitCall(bob, bob.label, 'idle', 5000);
        assert.equal((await bob.evaluate(() => window.codebPhone.lastCall)).by, 'remote');
        await assertNoMediaCalls(env.mediad.ngPort, 'after H1');
      });
    });

  test('H2: SIP.js bob at host B calls JsSIP alice at host A and cancels while it rings', { timeout: 60000 }, async () => {
    await scenario('H2', async () => {
      const alice = await phone('jssip', 'alice', A);
      const bob = await phone('sipjs', 'bob', B);
      await bob.fill('#dial-target', 'alice');
      await press(bob, '#btn-call');
      await waitCall(alice, alice.label, 'incoming');
      const t0 = Date.now();
      await press(bob, '#btn-hangup');
      await waitCall(alice, alice.label, 'idle', 2000);
      const last = await alice.evaluate(() => window.codebPhone.lastCall);
      assert.equal(last.outcome, 'canceled', JSON.stringify(last));
      console.log('# alice stopped ringing ' + (Date.now() - t0) + ' ms after bob hung up');
      await waitCall(bob, bob.label, 'idle', 5000);
      assert.equal((await state(alice)).reg, 'registered');
      await assertNoMediaCalls(env.mediad.ngPort, 'after H2');
    });
  });

  test('no call left in codeb-mediad, both nginx quit gracefully, no worker died, no alert', { timeout: 60000 }, async () => {
    await h.closePages();
    await assertNoMediaCalls(env.mediad.ngPort, 'at the end');
    for (const host of env.hosts) {
      const log = path.join(host.dir, 'logs', 'error.log');
      assertRunning(host.nginx, log);
      assertNoAlerts(await quitNginx(host.nginx, log));
    }
  });
}
