/* virtual-numbers-overview.html: /signal.ashx?vnum-overview=1 as a directory. textContent only. */
'use strict';
(() => {
  const SRC = '/signal.ashx?vnum-overview=1';
  const $ = (id) => document.getElementById(id);
  const str = (v) => (v === null || v === undefined ? '' : String(v));

  // Only http(s) links: a javascript: or data: dialUrl is never rendered as a link.
  function safeUrl(u) {
    if (typeof u !== 'string' || !u) return null;
    try {
      const url = new URL(u, location.href);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  function render(list) {
    const rows = list.filter((v) => v && typeof v === 'object').map((v) => {
      const tr = document.createElement('tr');
      tr.append(cell(str(v.name)), cell(str(v.number)), cell(str(v.mode)));
      const td = document.createElement('td');
      const href = safeUrl(v.dialUrl);
      if (href) {
        const a = document.createElement('a');
        a.className = 'call';
        a.href = href;
        a.textContent = 'Call';
        a.setAttribute('aria-label', 'Call ' + (str(v.name) || str(v.number)));
        td.append(a);
      }
      tr.append(td);
      return tr;
    });
    $('rows').replaceChildren(...rows);
    $('directory').hidden = rows.length === 0;
    $('state').textContent = rows.length ? '' : 'No virtual numbers are listed right now.';
  }

  async function load() {
    try {
      const res = await fetch(SRC, { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const d = await res.json();
      render(d && Array.isArray(d.virtualNumbers) ? d.virtualNumbers : []);
    } catch (e) {
      $('directory').hidden = true;
      $('state').textContent = 'The directory is unavailable right now (' + (e && e.message ? e.message : 'error') + ').';
    }
  }

  load();
})();
