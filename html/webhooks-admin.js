/*
 * webhooks-admin.html: sign in (admin-auth.js), list, create (the secret
 * shown once), test fire and delete subscriptions, and the delivery log,
 * through /api.ashx/v1/webhooks (docs/api.md "Webhooks").  textContent
 * only.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const A = window.codebAdmin;
  const EVENTS = ['*', 'call.started', 'call.answered', 'call.transferred', 'call.ended',
    'outbound-ai.finished', 'transcript.saved', 'share.created', 'share.viewed', 'share.revoked'];
  let shown = null; // the webhook whose log is open

  function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function button(label, cls, fn) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.className = cls;
    b.addEventListener('click', () => run(fn));
    return b;
  }

  async function call(method, path, body, want) {
    const { status, json } = await A.api(method, path, body);
    if (status !== want) throw new Error(json.error_description || (method + ' ' + path + ': ' + status));
    return json;
  }

  async function refresh() {
    const json = await call('GET', '/webhooks?limit=500', undefined, 200);
    const rows = json.data.map((w) => {
      const tr = document.createElement('tr');
      tr.dataset.id = w.id;
      const td = document.createElement('td');
      td.append(
        button('Test', 'test', async () => {
          await call('POST', '/webhooks/' + w.id + '/test', undefined, 202);
          await showLog(w.id);
        }),
        button('Deliveries', 'deliveries', () => showLog(w.id)),
        button('Delete', 'delete', async () => {
          await call('DELETE', '/webhooks/' + w.id, undefined, 200);
          if (shown === w.id) { shown = null; $('log-panel').hidden = true; }
          await refresh();
        }),
      );
      tr.append(cell(w.url), cell(w.events.join(', ')), cell(w.active ? 'yes' : 'paused'),
        cell(String(w.failures)), cell(w.lastFiredUtc || '—'), td);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = cell('No webhooks');
      td.colSpan = 6;
      td.className = 'empty';
      tr.append(td);
      rows.push(tr);
    }
    $('hooks').replaceChildren(...rows);
  }

  async function showLog(id) {
    shown = id;
    const json = await call('GET', '/webhooks/' + id + '/deliveries?limit=50', undefined, 200);
    $('log-id').textContent = id;
    $('log').replaceChildren(...json.data.map((d) => {
      const tr = document.createElement('tr');
      tr.append(cell(d.atUtc || ''), cell(d.event || ''), cell(d.deliveryId || ''),
        cell(String(d.attempt)), cell(d.status ? String(d.status) : '—'), cell(d.error || ''));
      return tr;
    }));
    $('log-panel').hidden = false;
  }

  function view() {
    const user = A.user();
    $('signin').hidden = !!user;
    $('admin').hidden = !user;
    if (user) {
      $('who').textContent = user;
      return refresh();
    }
    $('created').hidden = true;
    return Promise.resolve();
  }

  async function run(fn) {
    showError(null);
    try {
      await fn();
    } catch (e) {
      showError(e);
      if (!A.user()) await view();
    }
  }

  for (const e of EVENTS) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = e;
    box.name = 'events';
    label.append(box, ' ' + e + ' ');
    $('hook-events').append(label);
  }

  $('signin').addEventListener('submit', (e) => {
    e.preventDefault();
    run(async () => {
      await A.signIn($('signin-user').value, $('signin-password').value);
      $('signin-password').value = '';
      await view();
    });
  });

  $('btn-signout').addEventListener('click', () => { A.signOut(); view(); });

  $('create').addEventListener('submit', (e) => {
    e.preventDefault();
    run(async () => {
      const events = [...document.querySelectorAll('#hook-events input:checked')].map((b) => b.value);
      if (!events.length) throw new Error('choose at least one event');
      const json = await call('POST', '/webhooks', { url: $('hook-url').value, events }, 201);
      $('created-id').textContent = json.id;
      $('created-secret').textContent = json.secret;
      $('created').hidden = false;
      $('hook-url').value = '';
      await refresh();
    });
  });

  $('btn-copy').addEventListener('click', () => {
    navigator.clipboard.writeText($('created-secret').textContent).catch(() => {});
  });

  run(view);
})();
