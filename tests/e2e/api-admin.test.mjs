// The admin pages (html/api-keys-admin.html, html/webhooks-admin.html)
// driven in Debian chromium against the real server: nginx with ngx_codeb_api (/api.ashx/v1,
// the platform's own OIDC provider /oidc.ashx) and Redis, in a network
// namespace with only loopback (lib.mjs), like the other files here.
//
//   node --test tests/e2e/          (./build.sh test runs this after t/)
//
//   K  a wrong password is refused on the page; admin / admin-demo-pass
//      signs in through POST /oidc.ashx/token; a key is created and shown
//      once (ak_ + 32 hex), listed without its secret, works as a Bearer
//      from outside the page, is revoked with its button and is 401 from
//      then on; after a reload the page is still signed in (sessionStorage),
//      signing out shows the form again
//   W  webhooks: a subscription to a receiver the test runs on loopback
//      (node:http), its secret shown once; Test delivers a webhook.test
//      POST whose signature checks with that secret; the page's delivery
//      log shows it (200); Delete removes it
//   and at the end: nginx quits gracefully, no worker died, no alert.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Harness, HTML, enterLoopbackNamespace, freePort, waitUp, httpGet, assertBuilt, startRedis, nginxConf, startNginx,
  assertRunning, quitNginx, assertNoAlerts, snapshotPage, waitFor, serverReport,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

if (await enterLoopbackNamespace(SELF, 'chromium and nginx')) defineTests();

function defineTests() {
  // admin-demo-pass, yescrypt (as in conf/tenants/localhost.conf)
  const HASH = '$y$j9T$mT/upmCB7QbvEoVJWpdoh.$GzOQxo8uL7sNypy4HB0jdQZCDQUSXMds8Mji3524N05';
  const env = { redis: null, nginx: null, port: 0 };
  const h = new Harness({
    procs: () => [env.nginx, env.redis],
    diagnose: (title) => h.printDiagnostics(title, (page) => snapshotPage(page, () => ({
      error: document.getElementById('error').textContent,
      who: document.getElementById('who').textContent,
      keys: document.getElementById('keys').textContent,
    })), ' page', () => serverReport(h.tmp)),
    watchdogMs: 180000,
  });
  const errorLog = () => path.join(h.tmp, 'logs', 'error.log');

  before(async () => {
    assertBuilt(['core', 'api']);
    const T = h.makeTmp('codeb-e2e-api-');
    const key = path.join(T, 'oidc.key');
    const r = spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key],
      { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, 'openssl genpkey: ' + r.stderr);
    env.redis = startRedis(T);
    await env.redis.ready;
    env.port = await freePort();
    env.nginx = startNginx(T, nginxConf(T, {
      by: 'tests/e2e/api-admin.test.mjs',
      modules: ['core', 'api'],
      redis: env.redis.sock,
      http: [
        '    server {',
        `        listen 127.0.0.1:${env.port};`,
        '        codeb_tenant localhost;',
        `        codeb_oidc_signing_key ${key};`,
        `        codeb_admin_user admin '${HASH}';`,
        '        codeb_webhook_private on;',
        `        root ${HTML};`,
        '        location /api.ashx { codeb_api; }',
        '        location /oidc.ashx { codeb_oidc; }',
        '        location / { try_files $uri $uri/ =404; }',
        '    }',
      ],
    }));
    await waitUp(env.nginx, 'nginx serving the page and the API', async () =>
      (await httpGet(env.port, '/api-keys-admin.html')).status === 200
      && (await httpGet(env.port, '/api.ashx/v1')).status === 200, { log: errorLog() });
    await h.launchChromium();
  });

  after(() => h.close());

  // GET /api.ashx/v1/api-keys from outside the page with `bearer`: the status
  function statusWith(bearer) {
    return httpGet(env.port, '/api.ashx/v1/api-keys', { headers: { Authorization: 'Bearer ' + bearer } })
      .then((res) => res.status);
  }

  test('K: sign in, create a key shown once, use it, revoke it, sign out', { timeout: 90000 }, async () => {
    await h.scenario('K', async () => {
      const page = await h.openPage('admin', `http://127.0.0.1:${env.port}/api-keys-admin.html`);
      await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });

      await page.fill('#signin-user', 'admin');
      await page.fill('#signin-password', 'not-the-password');
      await page.click('#btn-signin');
      await page.waitForFunction(() => /wrong username or password/.test(document.getElementById('error').textContent),
        null, { timeout: 10000 });
      assert.equal(await page.isHidden('#admin'), true);

      await page.fill('#signin-password', 'admin-demo-pass');
      await page.click('#btn-signin');
      await page.waitForSelector('#admin:not([hidden])', { timeout: 10000 });
      assert.equal(await page.textContent('#who'), 'admin');
      assert.equal(await page.textContent('#error'), '');
      assert.match(await page.textContent('#keys'), /No API keys/);

      await page.fill('#key-name', 'ci server');
      await page.click('#btn-create');
      await page.waitForSelector('#created:not([hidden])', { timeout: 5000 });
      const key = await page.textContent('#created-key');
      assert.match(key, /^ak_[0-9a-f]{32}$/);
      await page.waitForFunction(() => document.querySelectorAll('#keys tr[data-id]').length === 1, null, { timeout: 5000 });
      const row = await page.textContent('#keys tr[data-id]');
      assert.match(row, /ci server/);
      assert.doesNotMatch(await page.textContent('#keys'), /ak_/, 'the list never shows a key');
      assert.equal(await statusWith(key), 200, 'the new key works as a Bearer');

      // a reload keeps the session (this tab), and the key is not shown again
      await page.reload();
      await page.waitForSelector('#admin:not([hidden])', { timeout: 10000 });
      assert.equal(await page.isHidden('#created'), true);
      await page.waitForFunction(() => document.querySelectorAll('#keys tr[data-id]').length === 1, null, { timeout: 5000 });

      await page.click('#keys tr[data-id] button.revoke');
      await page.waitForFunction(() => /No API keys/.test(document.getElementById('keys').textContent), null, { timeout: 5000 });
      await waitFor('the revoked key refused', async () => (await statusWith(key)) === 401, { timeout: 3000 });

      await page.click('#btn-signout');
      await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
      assert.equal(await page.evaluate(() => window.codebAdmin.token()), null);
    });
  });

  // a webhook receiver on loopback: every POST kept, answered 200
  function receiver() {
    const got = [];
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), url: req.url });
        res.writeHead(200, { 'Content-Length': '0' });
        res.end();
      });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, got, port: server.address().port })));
  }

  test('W: webhooks: create (secret once), test fire with a signature that checks, the delivery log, delete',
    { timeout: 90000 }, async () => {
      const rx = await receiver();
      try {
        await h.scenario('W', async () => {
          const page = await h.openPage('webhooks', `http://127.0.0.1:${env.port}/webhooks-admin.html`);
          await page.waitForSelector('#signin:not([hidden]), #admin:not([hidden])', { timeout: 5000 });
          if (await page.isVisible('#signin')) {
            await page.fill('#signin-user', 'admin');
            await page.fill('#signin-password', 'admin-demo-pass');
            await page.click('#btn-signin');
          }
          await page.waitForSelector('#admin:not([hidden])', { timeout: 10000 });
          assert.match(await page.textContent('#hooks'), /No webhooks/);

          await page.fill('#hook-url', `http://127.0.0.1:${rx.port}/hook`);
          await page.check('#hook-events input[value="*"]');
          await page.click('#btn-create');
          await page.waitForSelector('#created:not([hidden])', { timeout: 5000 });
          const secret = await page.textContent('#created-secret');
          assert.match(secret, /^[0-9a-f]{64}$/);
          await page.waitForFunction(() => document.querySelectorAll('#hooks tr[data-id]').length === 1, null, { timeout: 5000 });
          assert.doesNotMatch(await page.textContent('#hooks'), new RegExp(secret), 'the list never shows the secret');

          await page.click('#hooks tr[data-id] button.test');
          await waitFor('the receiver got the test delivery', () => rx.got.length >= 1, { timeout: 10000 });
          const d = rx.got[0];
          assert.equal(d.headers['x-codeb-event'], 'webhook.test');
          assert.equal(d.headers['x-codeb-attempt'], '1');
          assert.equal(d.headers['x-codeb-signature'],
            'sha256=' + crypto.createHmac('sha256', secret).update(d.body).digest('hex'), 'signature checks with the secret');
          assert.equal(JSON.parse(d.body).event, 'webhook.test');

          await waitFor('the delivery in the page\'s log', async () => {
            await page.click('#hooks tr[data-id] button.deliveries');
            return page.evaluate(() => [...document.querySelectorAll('#log tr')].some((tr) =>
              tr.cells[1].textContent === 'webhook.test' && tr.cells[3].textContent === '1'
              && tr.cells[4].textContent === '200'));
          }, { timeout: 10000, interval: 500 });
          assert.match(await page.textContent('#log'), new RegExp(d.headers['x-codeb-delivery-id']));

          await page.click('#hooks tr[data-id] button.delete');
          await page.waitForFunction(() => /No webhooks/.test(document.getElementById('hooks').textContent), null, { timeout: 5000 });
          assert.equal(await page.textContent('#error'), '');
        });
      } finally {
        rx.server.close();
      }
    });

  test('nginx quits gracefully, no worker died, no alert', { timeout: 30000 }, async () => {
    await h.closePages();
    assertRunning(env.nginx, errorLog());
    const log = await quitNginx(env.nginx, errorLog());
    assertNoAlerts(log);
    assert.doesNotMatch(log, /admin-demo-pass|ak_[0-9a-f]{8}/, 'no password or key in the log');
  });
}
