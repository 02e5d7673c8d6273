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
  const { cell } = A;
  const EVENTS = ['*', 'call.started', 'call.answered', 'call.transferred', 'call.ended',
    'outbound-ai.finished', 'transcript.saved', 'share.created', 'share.viewed', 'share.revoked'];
  let shown = null; // the webhook whose log is open

  async function refresh() {
    const json = await A.call('GET', '/webhooks?limit=500', undefined, 200);
    A.fill($('hooks'), json.data.map((w) => {
      const tr = document.createElement('tr');
      tr.dataset.id = w.id;
      const td = document.createElement('td');
      td.append(
        P.button('Test', 'test', async () => {
          await A.call('POST', '/webhooks/' + w.id + '/test', undefined, 202);
          await showLog(w.id);
        }),
        P.button('Deliveries', 'deliveries', () => showLog(w.id)),
        P.button('Delete', 'delete', async () => {
          await A.call('DELETE', '/webhooks/' + w.id, undefined, 200);
          if (shown === w.id) { shown = null; $('log-panel').hidden = true; }
          await refresh();
        }),
      );
      tr.append(cell(w.url), cell(w.events.join(', ')), cell(w.active ? 'yes' : 'paused'),
        cell(String(w.failures)), cell(w.lastFiredUtc || '—'), td);
      return tr;
    }), 'No webhooks', 6);
  }

  async function showLog(id) {
    shown = id;
    const json = await A.call('GET', '/webhooks/' + id + '/deliveries?limit=50', undefined, 200);
    $('log-id').textContent = id;
    $('log').replaceChildren(...json.data.map((d) => {
      const tr = document.createElement('tr');
      tr.append(cell(d.atUtc || ''), cell(d.event || ''), cell(d.deliveryId || ''),
        cell(String(d.attempt)), cell(d.status ? String(d.status) : '—'), cell(d.error || ''));
      return tr;
    }));
    $('log-panel').hidden = false;
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

  const P = A.page({ refresh, copy: 'created-secret' });

  $('create').addEventListener('submit', (e) => {
    e.preventDefault();
    P.run(async () => {
      const events = [...document.querySelectorAll('#hook-events input:checked')].map((b) => b.value);
      if (!events.length) throw new Error('choose at least one event');
      const json = await A.call('POST', '/webhooks', { url: $('hook-url').value, events }, 201);
      $('created-id').textContent = json.id;
      $('created-secret').textContent = json.secret;
      $('created').hidden = false;
      $('hook-url').value = '';
      await refresh();
    });
  });
})();
