/*
 * Sign-in for the admin pages: the platform's token endpoint
 * (POST /oidc.ashx/token, grant_type=password, client codeb-admin; see
 * docs/api.md "Token endpoint"), the access token kept in sessionStorage
 * (this tab only) until it expires, and API calls with it as Bearer.
 * window.codebAdmin = { token(), user(), signIn(user, password),
 * signOut(), api(method, path, body) -> {status, json}, call(...) (api
 * that throws unless the status is the one wanted), cell(text),
 * fill(tbody, rows, empty, columns), page({refresh, copy}) (the pages'
 * shared frame: sign-in, sign-out, errors, copy button) }.
 */
'use strict';
(() => {
  const KEY = 'codeb.admin.session';

  function session() {
    try {
      const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
      return s && s.exp > Date.now() ? s : null;
    } catch {
      return null;
    }
  }

  async function signIn(user, password) {
    const body = new URLSearchParams({
      grant_type: 'password', client_id: 'codeb-admin', username: user, password, scope: 'openid',
    });
    const r = await fetch('/oidc.ashx/token', { method: 'POST', body, cache: 'no-store' });
    const j = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(j.error_description || j.error || ('sign-in failed: ' + r.status));
    sessionStorage.setItem(KEY, JSON.stringify({
      token: j.access_token, user, exp: Date.now() + (j.expires_in - 30) * 1000,
    }));
  }

  function signOut() { sessionStorage.removeItem(KEY); }

  async function api(method, path, body) {
    const s = session();
    const headers = { Authorization: 'Bearer ' + (s ? s.token : '') };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const r = await fetch('/api.ashx/v1' + path, {
      method, headers, cache: 'no-store', body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await r.json().catch(() => ({}));
    if (r.status === 401) signOut();
    return { status: r.status, json };
  }

  const $ = (id) => document.getElementById(id);

  // api() that throws unless the status is `want`: the answer's JSON
  async function call(method, path, body, want) {
    const { status, json } = await api(method, path, body);
    if (status !== want) throw new Error(json.error_description || (method + ' ' + path + ': ' + status));
    return json;
  }

  function cell(text) {
    const td = document.createElement('td');
    td.textContent = text;
    return td;
  }

  // tbody's rows, or one row saying `empty` across `columns`
  function fill(tbody, rows, empty, columns) {
    if (!rows.length) {
      const tr = document.createElement('tr');
      const td = cell(empty);
      td.colSpan = columns;
      td.className = 'empty';
      tr.append(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  /*
   * The frame both admin pages share: #signin (#signin-user,
   * #signin-password), #admin (#who, #btn-signout), #created (hidden on
   * sign-out), #error, #btn-copy (copies #<copy>).  refresh() draws the
   * signed-in page.  Returns { run(fn): fn with its error shown in
   * #error, button(label, class, fn): a button running fn }.
   */
  function page({ refresh, copy }) {
    function view() {
      const user = session() ? session().user : null;
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
      $('error').textContent = '';
      try {
        await fn();
      } catch (e) {
        $('error').textContent = String(e.message || e);
        if (!session()) await view();
      }
    }

    function button(label, cls, fn) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = label;
      b.className = cls;
      b.addEventListener('click', () => run(fn));
      return b;
    }

    $('signin').addEventListener('submit', (e) => {
      e.preventDefault();
      run(async () => {
        await signIn($('signin-user').value, $('signin-password').value);
        $('signin-password').value = '';
        await view();
      });
    });
    $('btn-signout').addEventListener('click', () => { signOut(); view(); });
    $('btn-copy').addEventListener('click', () => {
      navigator.clipboard.writeText($(copy).textContent).catch(() => {});
    });
    run(view);
    return { run, button };
  }

  window.codebAdmin = {
    token: () => (session() ? session().token : null),
    user: () => (session() ? session().user : null),
    signIn, signOut, api, call, cell, fill, page,
  };
})();
