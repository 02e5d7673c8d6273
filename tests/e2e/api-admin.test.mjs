// The API keys admin page (html/api-keys-admin.html) driven in Debian
// chromium against the real server: nginx with ngx_codeb_api (/api.ashx/v1,
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
//   and at the end: nginx quits gracefully, no worker died, no alert.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

  test('nginx quits gracefully, no worker died, no alert', { timeout: 30000 }, async () => {
    await h.closePages();
    assertRunning(env.nginx, errorLog());
    const log = await quitNginx(env.nginx, errorLog());
    assertNoAlerts(log);
    assert.doesNotMatch(log, /admin-demo-pass|ak_[0-9a-f]{8}/, 'no password or key in the log');
  });
}
