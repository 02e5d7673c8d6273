// The outbound AI call monitor (html/outbound-ai-monitor.html) driven in
// Debian chromium against the real server: nginx with ngx_codeb_api
// (/api.ashx/v1/calls, the platform's own OIDC provider /oidc.ashx),
// ngx_codeb_signal (?whitelist) and Redis, in a network namespace with only
// loopback (lib.mjs), like api-admin.test.mjs.
//
//   node --test tests/e2e/outbound-monitor.test.mjs
//
//   M  admin / admin-demo-pass signs in through POST /oidc.ashx/token; a
//      call for one hour ahead is placed with the page's form (the time of
//      the datetime-local field sent as ISO-8601 UTC); its row shows
//      "scheduled" within one refresh; the page asks GET /v1/calls every
//      2 s by itself and says when it last did; the status filter asks
//      ?status=a,b and shows only those calls; the row's Cancel button
//      makes it "cancelled" without a reload of the page; a second call
//      placed through the API from outside the page appears by itself; the
//      called number is in ?whitelist; no phone number in the console
//   and at the end: nginx quits gracefully, no worker died, no alert.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Harness, HTML, enterLoopbackNamespace, freePort, waitUp, httpGet, assertBuilt, startRedis, nginxConf, startNginx,
  assertRunning, quitNginx, assertNoAlerts, snapshotPage, waitFor, serverReport, sleep,
} from './lib.mjs';

const SELF = fileURLToPath(import.meta.url);

if (await enterLoopbackNamespace(SELF, 'chromium and nginx')) defineTests();

function defineTests() {
  // admin-demo-pass, yescrypt (as in conf/tenants/localhost.conf)
  const HASH = '$y$j9T$mT/upmCB7QbvEoVJWpdoh.$GzOQxo8uL7sNypy4HB0jdQZCDQUSXMds8Mji3524N05';
  const PHONE1 = '+15551230001';
  const PHONE2 = '+15551230002';
  const env = { redis: null, nginx: null, port: 0 };
  const h = new Harness({
    procs: () => [env.nginx, env.redis],
    diagnose: (title) => h.printDiagnostics(title, (page) => snapshotPage(page, () => ({
      error: document.getElementById('error').textContent,
      who: document.getElementById('who').textContent,
      updated: document.getElementById('updated').textContent,
      refreshError: document.getElementById('refresh-error').textContent,
      calls: [...document.querySelectorAll('#calls tr')].map((tr) => tr.textContent),
    })), ' page', () => serverReport(h.tmp)),
    watchdogMs: 180000,
  });
  const errorLog = () => path.join(h.tmp, 'logs', 'error.log');
  const base = () => `http://127.0.0.1:${env.port}`;

  before(async () => {
    assertBuilt(['core', 'signal', 'api']);
    const T = h.makeTmp('codeb-e2e-monitor-');
    const key = path.join(T, 'oidc.key');
    const r = spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key],
      { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.status, 0, 'openssl genpkey: ' + r.stderr);
    env.redis = startRedis(T);
    await env.redis.ready;
    env.port = await freePort();
    env.nginx = startNginx(T, nginxConf(T, {
      by: 'tests/e2e/outbound-monitor.test.mjs',
      modules: ['core', 'signal', 'api'],
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
        '        location = /signal.ashx { codeb_signal; }',
        '        location / { try_files $uri $uri/ =404; }',
        '    }',
      ],
    }));
    await waitUp(env.nginx, 'nginx serving the page and the API', async () =>
      (await httpGet(env.port, '/outbound-ai-monitor.html')).status === 200
      && (await httpGet(env.port, '/api.ashx/v1')).status === 200, { log: errorLog() });
    // the browser in a zone off UTC by 5:30, so that the form's local time
    // must really be converted to UTC
    process.env.TZ = 'Asia/Kolkata';
    await h.launchChromium();
  });

  after(() => h.close());

  // the API from outside the page, with the page's token
  async function api(token, method, p, body) {
    const res = await fetch(base() + '/api.ashx/v1' + p, {
      method,
      headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, json: await res.json().catch(() => ({})) };
  }

  // the cells of the call's row as { column: text } (data-col), or null
  function rowOf(page, id) {
    return page.evaluate((callId) => {
      const tr = [...document.querySelectorAll('#calls tr[data-id]')].find((t) => t.dataset.id === callId);
      if (!tr) return null;
      const out = { buttons: [...tr.querySelectorAll('button')].map((b) => b.textContent) };
      for (const td of tr.querySelectorAll('td[data-col]')) out[td.dataset.col] = td.textContent;
      return out;
    }, id);
  }

  const shownIds = (page) => page.evaluate(() => [...document.querySelectorAll('#calls tr[data-id]')]
    .map((tr) => tr.dataset.id));

  test('M: sign in, schedule a call, live list, status filter, cancel, a call from outside appears',
    { timeout: 120000 }, async () => {
      await h.scenario('M', async () => {
        const page = await h.openPage('monitor', base() + '/outbound-ai-monitor.html');
        // every list request the page makes, with when
        const lists = [];
        page.on('request', (req) => {
          const u = new URL(req.url());
          if (req.method() === 'GET' && u.pathname === '/api.ashx/v1/calls') lists.push({ at: Date.now(), url: u });
        });

        await page.waitForSelector('#signin:not([hidden])', { timeout: 5000 });
        await page.fill('#signin-user', 'admin');
        await page.fill('#signin-password', 'admin-demo-pass');
        await page.click('#btn-signin');
        await page.waitForSelector('#admin:not([hidden])', { timeout: 10000 });
        assert.equal(await page.textContent('#who'), 'admin');
        await page.waitForFunction(() => /No calls/.test(document.getElementById('calls').textContent),
          null, { timeout: 5000 });
        assert.equal(await page.textContent('#error'), '');
        // gone if the page were loaded again: everything below happens in this one
        await page.evaluate(() => { window.notReloaded = true; });
        const token = await page.evaluate(() => window.codebAdmin.token());
        assert.ok(token, 'the page holds a token');

        // it refreshes itself every 2 s and says when it last did
        const n0 = lists.length;
        const t0 = await page.getAttribute('#updated', 'data-at');
        await sleep(6500);
        const ticks = lists.length - n0;
        assert.ok(ticks >= 2 && ticks <= 4, 'GET /v1/calls every 2 s: ' + ticks + ' in 6.5 s');
        assert.notEqual(await page.getAttribute('#updated', 'data-at'), t0, 'the time of the last refresh moves');
        assert.match(await page.textContent('#updated'), /Last refreshed/);

        // a call one hour ahead through the form: datetime-local is local time
        assert.equal(await page.evaluate(() => new Date().getTimezoneOffset()), -330, 'the browser is in UTC+5:30');
        const local = await page.evaluate(() => {
          const d = new Date(Date.now() + 3600 * 1000);
          d.setSeconds(0, 0);
          const p2 = (n) => String(n).padStart(2, '0');
          return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}`;
        });
        await page.fill('#call-phone', PHONE1);
        await page.fill('#call-name', 'Monitor test');
        await page.fill('#call-email', 'ops@example.com');
        await page.fill('#call-prompt', 'Say this is a test, goodbye.');
        await page.fill('#call-apikey', 'test-ai-key');
        await page.fill('#call-max', '120');
        await page.fill('#call-at', local);
        const [posted] = await Promise.all([
          page.waitForRequest((req) => req.method() === 'POST' && new URL(req.url()).pathname === '/api.ashx/v1/calls',
            { timeout: 5000 }),
          page.click('#btn-schedule'),
        ]);
        const sent = posted.postDataJSON();
        assert.equal(sent.phone, PHONE1);
        assert.equal(sent.displayName, 'Monitor test');
        assert.equal(sent.email, 'ops@example.com');
        assert.equal(sent.apiKey, 'test-ai-key');
        assert.equal(sent.maxSeconds, 120);
        assert.match(sent.scheduleAtUtc, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO-8601 UTC');
        const ahead = Date.parse(sent.scheduleAtUtc) - Date.now();
        assert.ok(ahead > 3500 * 1000 && ahead <= 3600 * 1000, 'one hour ahead: ' + ahead + ' ms');

        await page.waitForSelector('#created:not([hidden])', { timeout: 5000 });
        const id1 = await page.textContent('#created-id');
        assert.match(id1, /^oac-[0-9a-f]{12}$/);
        assert.equal(await page.textContent('#error'), '');

        // its row within one refresh
        const row1 = await waitFor('the new call listed as scheduled', async () => {
          const r = await rowOf(page, id1);
          return r && r.status === 'scheduled' ? r : null;
        }, { timeout: 2500 });
        assert.equal(row1.phone, PHONE1);
        assert.equal(row1.displayName, 'Monitor test');
        assert.equal(Date.parse(row1.scheduledForUtc), Date.parse(sent.scheduleAtUtc), 'scheduledForUtc shown');
        assert.deepEqual(row1.buttons, ['Cancel']);

        // the filter: only cancelled calls (none), then scheduled and cancelled
        await page.check('#status-filter input[value="cancelled"]');
        await waitFor('the list filtered to cancelled calls', async () =>
          (await shownIds(page)).length === 0
          && /No calls/.test(await page.textContent('#calls')), { timeout: 5000 });
        assert.equal(lists.at(-1).url.searchParams.get('status'), 'cancelled');
        await page.check('#status-filter input[value="scheduled"]');
        await waitFor('the scheduled call back in the list', async () =>
          (await shownIds(page)).includes(id1), { timeout: 5000 });
        assert.deepEqual(lists.at(-1).url.searchParams.get('status').split(',').sort(), ['cancelled', 'scheduled']);
        // and so it stays through the next refreshes
        const n1 = lists.length;
        await waitFor('two more refreshes', () => lists.length >= n1 + 2, { timeout: 6000 });
        assert.deepEqual(lists.at(-1).url.searchParams.get('status').split(',').sort(), ['cancelled', 'scheduled']);
        assert.deepEqual(await shownIds(page), [id1]);

        // Cancel: the row says cancelled, no button, no reload
        await page.click(`#calls tr[data-id="${id1}"] button.hangup`);
        await waitFor('the call shown as cancelled', async () =>
          (await rowOf(page, id1))?.status === 'cancelled', { timeout: 5000 });
        assert.deepEqual((await rowOf(page, id1)).buttons, []);
        assert.equal(await page.textContent('#error'), '');
        assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
        const got = await api(token, 'GET', '/calls/' + id1);
        assert.equal(got.status, 200);
        assert.equal(got.json.status, 'cancelled');
        // a second hangup is a no-op
        const again = await api(token, 'POST', '/calls/' + id1 + '/hangup');
        assert.equal(again.status, 200);
        assert.equal(again.json.wasNoop, true);

        // a call placed from outside the page appears by itself
        const at2 = new Date(Date.now() + 2 * 3600 * 1000).toISOString();
        const made = await api(token, 'POST', '/calls', {
          phone: PHONE2, displayName: 'From the API', email: 'ops@example.com',
          systemPrompt: 'Say this is a test, goodbye.', apiKey: 'test-ai-key', scheduleAtUtc: at2,
        });
        assert.equal(made.status, 200, JSON.stringify(made.json));
        assert.equal(made.json.ok, true);
        const id2 = made.json.callId;
        assert.match(id2, /^oac-[0-9a-f]{12}$/);
        const row2 = await waitFor('the call placed through the API listed', () => rowOf(page, id2),
          { timeout: 5000 });
        assert.equal(row2.status, 'scheduled');
        assert.equal(row2.phone, PHONE2);
        assert.equal(row2.displayName, 'From the API');
        assert.equal((await rowOf(page, id1)).status, 'cancelled');
        await waitFor('the count', async () => /^2 calls/.test(await page.textContent('#count')), { timeout: 3000 });

        // only scheduled: the cancelled call leaves the list
        await page.uncheck('#status-filter input[value="cancelled"]');
        await waitFor('only the scheduled call', async () =>
          JSON.stringify(await shownIds(page)) === JSON.stringify([id2]), { timeout: 5000 });
        assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');

        // the numbers called are on the tenant's outbound whitelist
        const wl = await httpGet(env.port, '/signal.ashx?whitelist', { headers: { Authorization: 'Bearer ' + token } });
        assert.equal(wl.status, 200);
        assert.deepEqual(JSON.parse(wl.body), { data: [PHONE1, PHONE2], total: 2 });

        // phone numbers are on the page, never in its console
        const rec = h.pages.find((r) => r.label === 'monitor');
        assert.deepEqual(rec.console.filter((l) => /\+?1555123000/.test(l)), [], 'no phone number in the console');
      });
    });

  test('nginx quits gracefully, no worker died, no alert', { timeout: 30000 }, async () => {
    await h.closePages();
    assertRunning(env.nginx, errorLog());
    const log = await quitNginx(env.nginx, errorLog());
    assertNoAlerts(log);
    assert.doesNotMatch(log, /admin-demo-pass|test-ai-key/, 'no password or AI key in the log');
  });
}
