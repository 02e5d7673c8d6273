/*
 * api-keys-admin.html: sign in (admin-auth.js), list, create and revoke
 * API keys through /api.ashx/v1/api-keys (docs/api.md "API keys").
 * textContent only.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const A = window.codebAdmin;

  function showError(e) { $('error').textContent = e ? String(e.message || e) : ''; }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  async function refresh() {
    const { status, json } = await A.api('GET', '/api-keys?limit=500');
    if (status !== 200) throw new Error(json.error_description || ('listing failed: ' + status));
    const rows = json.data.map((k) => {
      const tr = document.createElement('tr');
      tr.dataset.id = k.id;
      const revoke = document.createElement('button');
      revoke.type = 'button';
      revoke.textContent = 'Revoke';
      revoke.className = 'revoke';
      revoke.setAttribute('aria-label', 'Revoke ' + k.name);
      revoke.addEventListener('click', () => run(async () => {
        const r = await A.api('DELETE', '/api-keys/' + encodeURIComponent(k.id));
        if (r.status !== 200) throw new Error(r.json.error_description || ('revoke failed: ' + r.status));
        await refresh();
      }));
      const td = document.createElement('td');
      td.append(revoke);
      tr.append(cell(k.name), cell(k.id), cell(k.createdAtUtc || ''), td);
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = cell('No API keys');
      td.colSpan = 4;
      td.className = 'empty';
      tr.append(td);
      rows.push(tr);
    }
    $('keys').replaceChildren(...rows);
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
      const { status, json } = await A.api('POST', '/api-keys', { name: $('key-name').value });
      if (status !== 201) throw new Error(json.error_description || ('create failed: ' + status));
      $('created-name').textContent = json.name;
      $('created-key').textContent = json.key;
      $('created').hidden = false;
      $('key-name').value = '';
      await refresh();
    });
  });

  $('btn-copy').addEventListener('click', () => {
    navigator.clipboard.writeText($('created-key').textContent).catch(() => {});
  });

  run(view);
})();
