/* CodeB softphones: the service worker (scope "phone-", registered by
 * phone-ui.js) that makes phone-jssip.html and phone-sipjs.html installable
 * and lets them open without a network.
 *
 * Only the page shell below is cached, network first: online, every load
 * gets the current files (and refreshes the cache); offline, the cached
 * copy.  Anything else passes through untouched and is never stored: SIP
 * over WebSocket, /signal.ashx and every other request.
 */
'use strict';
const CACHE = 'codeb-phone-v1';
const SHELL = [
  'phone-jssip.html', 'phone-sipjs.html', 'phone.css', 'phone-ui.js', 'phone-jssip.js', 'phone-sipjs.js',
  'vendor/jssip.min.js', 'vendor/sip.min.js', 'phone-jssip.manifest.json', 'phone-sipjs.manifest.json',
  'phone-icon.svg', 'phone-icon-192.png', 'phone-icon-512.png',
];
const SHELL_URLS = new Set(SHELL.map((p) => new URL(p, self.registration.scope.replace(/[^/]*$/, '')).href));

self.addEventListener('install', (e) => {
  // one missing file (say, vendor/ not built yet) must not fail the others
  e.waitUntil(caches.open(CACHE).then((c) => Promise.all(SHELL.map((p) => c.add(p).catch(() => {}))))
    .then(() => self.skipWaiting()));
});

self.addEventListener('activate', (e) => {
  e.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('codeb-phone-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (e) => {
  const req = e.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  url.search = '';
  url.hash = '';
  if (!SHELL_URLS.has(url.href)) return; // not ours: the network, uncached
  e.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req, { cache: 'no-cache' });
      if (res.ok) await cache.put(url.href, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(url.href);
      if (hit) return hit;
      throw err;
    }
  })());
});
