/*
 * outbound-ai-monitor.html: sign in (admin-auth.js); the outbound AI calls
 * of GET /api.ashx/v1/calls, refreshed every 2 s, filtered by status
 * (?status=a,b); a call placed (or scheduled) with POST /v1/calls; Cancel
 * (scheduled, retry pending) or Hang up (dispatching, in flight) with POST
 * /v1/calls/{id}/hangup (docs/api.md "Outbound calls").  Text from the API goes into the page with textContent only;
 * nothing is written to the console.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const A = window.codebAdmin;
  const EVERY_MS = 2000;
  const LIMIT = 200;
  const STATUSES = ['scheduled', 'dispatching', 'in-flight', 'ended-success',
    'ended-failed-retry-pending', 'ended-failed-final', 'cancelled'];
  // the calls POST /v1/calls/{id}/hangup stops (a retry pending is due
  // again later), and what their button says
  const STOP = {
    scheduled: 'Cancel', 'ended-failed-retry-pending': 'Cancel', dispatching: 'Hang up', 'in-flight': 'Hang up',
  };
  // the record's members shown, in the order of the table's columns
  const COLUMNS = ['callId', 'phone', 'displayName', 'status', 'attempt', 'retriesLeft',
    'scheduledForUtc', 'dispatchedAtUtc', 'answeredAtUtc', 'endedAtUtc', 'endedReason',
    'durationSec'];
  const NUMERIC = new Set(['attempt', 'retriesLeft', 'durationSec']);

  let generation = 0; // of the last refresh started: older answers are dropped

  function text(v) {
    return v === null || v === undefined || v === '' ? '—' : String(v);
  }

  function query() {
    const want = [...document.querySelectorAll('#status-filter input:checked')].map((b) => b.value);
    return '/calls?limit=' + LIMIT + (want.length ? '&status=' + want.map(encodeURIComponent).join(',') : '');
  }

  // the Cancel / Hang up cell of a call in status `status`
  function actions(c) {
    const td = document.createElement('td');
    const label = STOP[c.status];
    if (label) {
      const b = P.button(label, 'hangup', async () => {
        b.disabled = true;
        let json;
        try {
          json = await A.call('POST', '/calls/' + encodeURIComponent(c.callId) + '/hangup', undefined, 200);
        } finally {
          b.disabled = false;
        }
        $('created-id').textContent = c.callId;
        $('created-what').textContent = json.wasNoop ? 'had already ended.'
          : 'is now ' + text(json.newStatus) + '.';
        $('created').hidden = false;
        await refresh();
      });
      b.setAttribute('aria-label', label + ' ' + c.callId);
      td.append(b);
    }
    return td;
  }

  // the row of call c: made, or the one already shown brought up to date
  function row(c, old) {
    const tr = old || document.createElement('tr');
    if (!old) {
      tr.dataset.id = c.callId;
      for (const k of COLUMNS) {
        const td = A.cell('');
        if (NUMERIC.has(k)) td.className = 'num';
        td.dataset.col = k;
        tr.append(td);
      }
      tr.append(document.createElement('td'));
    }
    COLUMNS.forEach((k, i) => {
      const v = text(c[k]);
      if (tr.cells[i].textContent !== v) tr.cells[i].textContent = v;
    });
    if (tr.dataset.status !== c.status) {
      tr.dataset.status = c.status;
      tr.cells[COLUMNS.length].replaceWith(actions(c));
    }
    return tr;
  }

  function draw(json) {
    const body = $('calls');
    const shown = new Map([...body.querySelectorAll('tr[data-id]')].map((tr) => [tr.dataset.id, tr]));
    const calls = (json.data || []).filter((c) => c && typeof c.callId === 'string');
    const rows = calls.map((c) => row(c, shown.get(c.callId)));
    // the same calls in the same order: updated in place (focus stays)
    const same = rows.length > 0 && rows.length === body.rows.length && rows.every((tr, i) => body.rows[i] === tr);
    if (!same) A.fill(body, rows, 'No calls', COLUMNS.length + 1);
    const total = Number.isInteger(json.total) ? json.total : calls.length;
    $('count').textContent = (total > calls.length ? calls.length + ' of ' + total : String(total))
      + (total === 1 ? ' call.' : ' calls.');
  }

  // the list, now; its answer drawn unless a newer refresh has started
  async function refresh() {
    const mine = ++generation;
    const json = await A.call('GET', query(), undefined, 200);
    if (mine !== generation) return;
    draw(json);
    const now = new Date();
    $('updated').textContent = 'Last refreshed ' + now.toLocaleTimeString() + '.';
    $('updated').dataset.at = now.toISOString();
    $('refresh-error').textContent = '';
  }

  // every 2 s while signed in; a failure shown beside the time, the
  // errors of the forms and buttons (#error) left alone
  async function tick() {
    if (A.user() && !$('admin').hidden) {
      try {
        await refresh();
      } catch (e) {
        if (A.user()) {
          $('refresh-error').textContent = 'Refresh failed: ' + String(e.message || e);
        } else {
          await P.run(() => Promise.reject(e)); // signed out: the sign-in form
        }
      }
    }
    setTimeout(tick, EVERY_MS);
  }

  for (const s of STATUSES) {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.value = s;
    box.name = 'status';
    label.append(box, ' ' + s + ' ');
    $('status-filter').append(label);
  }

  const P = A.page({ refresh, copy: 'created-id' });

  $('status-filter').addEventListener('change', () => P.run(refresh));

  $('schedule').addEventListener('submit', (e) => {
    e.preventDefault();
    P.run(async () => {
      const body = {
        phone: $('call-phone').value.trim(),
        email: $('call-email').value.trim(),
        systemPrompt: $('call-prompt').value,
        apiKey: $('call-apikey').value,
      };
      const name = $('call-name').value.trim();
      if (name) body.displayName = name;
      if ($('call-max').value !== '') body.maxSeconds = Number($('call-max').value);
      if ($('call-at').value) {
        // datetime-local is the browser's local time: sent as UTC
        const at = new Date($('call-at').value);
        if (Number.isNaN(at.getTime())) throw new Error('the time to call is not valid');
        body.scheduleAtUtc = at.toISOString();
      }
      const json = await A.call('POST', '/calls', body, 200);
      $('created-id').textContent = json.callId;
      $('created-what').textContent = (body.scheduleAtUtc ? 'scheduled for ' + body.scheduleAtUtc : 'placed')
        + (json.whitelistError ? '; whitelist: ' + json.whitelistError : '') + '.';
      $('created').hidden = false;
      for (const id of ['call-phone', 'call-name', 'call-at']) $(id).value = '';
      await refresh();
    });
  });

  setTimeout(tick, EVERY_MS);
})();
