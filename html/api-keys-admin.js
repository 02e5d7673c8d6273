/*
 * api-keys-admin.html: sign in (admin-auth.js), list, create and revoke
 * API keys through /api.ashx/v1/api-keys (docs/api.md "API keys").
 * textContent only.
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const A = window.codebAdmin;

  async function refresh() {
    const json = await A.call('GET', '/api-keys?limit=500', undefined, 200);
    A.fill($('keys'), json.data.map((k) => {
      const tr = document.createElement('tr');
      tr.dataset.id = k.id;
      const revoke = P.button('Revoke', 'revoke', async () => {
        await A.call('DELETE', '/api-keys/' + encodeURIComponent(k.id), undefined, 200);
        await refresh();
      });
      revoke.setAttribute('aria-label', 'Revoke ' + k.name);
      const td = document.createElement('td');
      td.append(revoke);
      tr.append(A.cell(k.name), A.cell(k.id), A.cell(k.createdAtUtc || ''), td);
      return tr;
    }), 'No API keys', 4);
  }

  const P = A.page({ refresh, copy: 'created-key' });

  $('create').addEventListener('submit', (e) => {
    e.preventDefault();
    P.run(async () => {
      const json = await A.call('POST', '/api-keys', { name: $('key-name').value }, 201);
      $('created-name').textContent = json.name;
      $('created-key').textContent = json.key;
      $('created').hidden = false;
      $('key-name').value = '';
      await refresh();
    });
  });
})();
