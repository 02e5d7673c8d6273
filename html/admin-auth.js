/*
 * Sign-in for the admin pages: the platform's token endpoint
 * (POST /oidc.ashx/token, grant_type=password, client codeb-admin; see
 * docs/api.md "Token endpoint"), the access token kept in sessionStorage
 * (this tab only) until it expires, and API calls with it as Bearer.
 * window.codebAdmin = { token(), user(), signIn(user, password),
 * signOut(), api(method, path, body) -> {status, json} }.
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

  window.codebAdmin = {
    token: () => (session() ? session().token : null),
    user: () => (session() ? session().user : null),
    signIn, signOut, api,
  };
})();
