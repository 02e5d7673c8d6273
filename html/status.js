/* status.html: draws /signal.ashx?healthsummary=1 every 10 s. textContent only. */
'use strict';
(() => {
  const SRC = '/signal.ashx?healthsummary=1';
  const PERIOD_MS = 10000;
  const $ = (id) => document.getElementById(id);
  let busy = false;
  let lastOk = null;

  const str = (v) => (v === null || v === undefined || v === '' ? '—' : String(v));

  function cell(text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function fillTable(tbody, rows, columns, emptyText) {
    const trs = [];
    for (const r of rows) {
      const tr = document.createElement('tr');
      for (const c of columns) tr.append(c(r));
      trs.push(tr);
    }
    if (!trs.length) {
      const tr = document.createElement('tr');
      const td = cell(emptyText, 'empty');
      td.colSpan = columns.length;
      tr.append(td);
      trs.push(tr);
    }
    tbody.replaceChildren(...trs);
  }

  function render(d) {
    $('build').textContent = str(d.build);
    $('tenant').textContent = str(d.tenant);
    $('vnum-calls').textContent = str(d.vnumCallsLast24h);
    const rooms = Array.isArray(d.rooms) ? d.rooms.filter((r) => r && typeof r === 'object') : [];
    fillTable($('rooms'), rooms, [
      (r) => cell(str(r.id)),
      (r) => cell(str(r.peers), 'num'),
    ], 'No active rooms');
    const trunks = Array.isArray(d.trunks) ? d.trunks.filter((t) => t && typeof t === 'object') : [];
    fillTable($('trunks'), trunks, [
      (t) => cell(str(t.id)),
      (t) => cell(t.registered === true ? 'yes' : 'no', t.registered === true ? 'yes' : 'no'),
      (t) => cell(t.lastSeenSec === null || t.lastSeenSec === undefined ? 'never' : String(t.lastSeenSec), 'num'),
    ], 'No trunks configured');
  }

  function setState(ok, text) {
    const el = $('state');
    el.textContent = text;
    el.className = 'state ' + (ok ? 'ok' : 'unavailable');
    $('data').classList.toggle('stale', !ok);
  }

  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(SRC, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const d = await res.json();
      if (!d || typeof d !== 'object' || Array.isArray(d)) throw new Error('unexpected answer');
      render(d);
      lastOk = new Date();
      setState(true, 'available');
      $('updated').textContent = 'Updated ' + lastOk.toLocaleTimeString();
    } catch (e) {
      setState(false, 'unavailable');
      $('updated').textContent = '(' + (e && e.message ? e.message : 'error') + ')' +
        (lastOk ? ' — last good data from ' + lastOk.toLocaleTimeString() : '');
    } finally {
      busy = false;
    }
  }

  refresh();
  setInterval(refresh, PERIOD_MS);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refresh(); });
})();
