// Real SIP clients against the registrar of ngx_codeb_sipws (docs/sip.md):
// JsSIP 3.13 and SIP.js 0.21 from npm, in Node with the `ws` package as
// their WebSocket, register over ws:// to nginx + Redis started here on
// 127.0.0.1 (nothing else is contacted).
//
//   node --test tests/sip/          (./build.sh test runs it)
//
//   1 JsSIP registers (it answers the MD5 challenge), the binding is in
//     Redis; it unregisters and the binding is gone
//   2 SIP.js registers; its WebSocket closes without an un-REGISTER and the
//     binding goes with it
//   3 a wrong password is refused (registrationFailed)

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { ROOT, sleep, waitFor, freePort, tail, startProc } from '../e2e/lib.mjs';

globalThis.WebSocket = WebSocket;

const MODULES = process.env.TEST_NGINX_MODULES || path.join(ROOT, 'build', 'modules');
const env = {};

function redis(...args) {
  const r = spawnSync('redis-cli', ['-s', env.sock, '--raw', ...args], { encoding: 'utf8', timeout: 5000 });
  return r.stdout.trim();
}

before(async () => {
  env.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'codeb-sip-'));
  fs.mkdirSync(path.join(env.tmp, 'logs'));
  env.sock = path.join(env.tmp, 'redis.sock');
  env.redis = startProc('redis', 'redis-server', ['--port', '0', '--unixsocket', env.sock,
    '--unixsocketperm', '777', '--save', '', '--appendonly', 'no', '--dir', env.tmp],
  path.join(env.tmp, 'logs', 'redis.log'));
  await waitFor('redis', () => redis('PING') === 'PONG', { timeout: 10000 });

  env.port = await freePort();
  const T = env.tmp;
  fs.writeFileSync(path.join(T, 'nginx.conf'), [
    `load_module ${MODULES}/ngx_codeb_core_module.so;`,
    'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
    `load_module ${MODULES}/ngx_codeb_sipws_module.so;`,
    process.getuid && process.getuid() === 0 ? 'user root;' : '',
    'worker_processes 2;', 'daemon off;', `pid ${T}/nginx.pid;`,
    `error_log ${T}/logs/error.log info;`,
    'events { worker_connections 256; }',
    'http {',
    `  access_log off; client_body_temp_path ${T}/body;`,
    `  codeb_redis unix:${env.sock};`,
    '  server {',
    `    listen 127.0.0.1:${env.port} reuseport;`,
    '    server_name localhost;',
    '    codeb_tenant localhost;',
    '    codeb_sip_user alice password=alice-demo-pass;',
    '    codeb_sip_user bob password=bob-demo-pass;',
    '    location = /sip { codeb_sip_ws; }',
    '  }',
    '}', ''].join('\n'));
  env.nginx = startProc('nginx', 'nginx', ['-p', T, '-c', path.join(T, 'nginx.conf'),
    '-e', path.join(T, 'logs', 'error.log')], path.join(T, 'logs', 'nginx.out'));
  await waitFor('nginx on ' + env.port, async () => {
    if (env.nginx.exited) throw new Error('nginx exited:\n' + tail(path.join(T, 'logs', 'error.log')));
    const r = await fetch(`http://127.0.0.1:${env.port}/sip`).catch(() => null);
    return r && r.status === 426;
  }, { timeout: 10000 });
});

after(async () => {
  const clean = env.nginx ? await env.nginx.stop('SIGQUIT', 5000) : true;
  if (env.redis) await env.redis.stop();
  const log = fs.readFileSync(path.join(env.tmp, 'logs', 'error.log'), 'utf8');
  fs.rmSync(env.tmp, { recursive: true, force: true });
  assert.ok(clean, 'nginx quit gracefully');
  assert.doesNotMatch(log, /exited on signal|\[alert\]|\[crit\]|\[emerg\]/, 'error.log:\n' + log.slice(-3000));
});

async function jssipUA(user, password) {
  const JsSIP = (await import('jssip')).default;
  const socket = new JsSIP.WebSocketInterface(`ws://127.0.0.1:${env.port}/sip`);
  return new JsSIP.UA({ sockets: [socket], uri: `sip:${user}@localhost`, password, register: false,
    register_expires: 300, connection_recovery_min_interval: 60 });
}

function event(ua, ok, bad) {
  return new Promise((resolve, reject) => {
    ua.once(ok, resolve);
    if (bad) ua.once(bad, (e) => reject(new Error(bad + ': ' + (e && e.cause))));
    setTimeout(() => reject(new Error('no ' + ok + ' within 5 s')), 5000).unref();
  });
}

test('1: JsSIP registers and unregisters; the binding follows in Redis', async () => {
  const ua = await jssipUA('alice', 'alice-demo-pass');
  ua.start();
  await event(ua, 'connected');
  const registered = event(ua, 'registered', 'registrationFailed');
  ua.register();
  await registered;
  assert.equal(redis('SMEMBERS', 'codeb:{localhost}:regs'), 'alice');
  const v = JSON.parse(redis('HVALS', 'codeb:{localhost}:reg:alice'));
  assert.equal(v.transport, 'WS');
  assert.match(v.contact, /^sip:[a-z0-9]+@[a-z0-9]+\.invalid;transport=ws$/);
  assert.ok(v.expires > Date.now() / 1000 + 200 && v.expires <= Date.now() / 1000 + 301, JSON.stringify(v));
  const unregistered = event(ua, 'unregistered');
  ua.unregister();
  await unregistered;
  assert.equal(redis('HLEN', 'codeb:{localhost}:reg:alice'), '0');
  ua.stop();
});

test('2: SIP.js registers; its WebSocket closes and the binding goes', async () => {
  const { UserAgent, Registerer, RegistererState } = await import('sip.js');
  const ua = new UserAgent({
    uri: UserAgent.makeURI('sip:bob@localhost'),
    authorizationUsername: 'bob', authorizationPassword: 'bob-demo-pass',
    transportOptions: { server: `ws://127.0.0.1:${env.port}/sip` }, logLevel: 'error',
  });
  await ua.start();
  const reg = new Registerer(ua);
  const done = new Promise((resolve) => reg.stateChange.addListener((s) => {
    if (s === RegistererState.Registered) resolve();
  }));
  await reg.register();
  await done;
  assert.equal(redis('HLEN', 'codeb:{localhost}:reg:bob'), '1');
  // the connection goes without an un-REGISTER
  await ua.transport.disconnect();
  await waitFor('the binding of the closed WebSocket to go', () => redis('HLEN', 'codeb:{localhost}:reg:bob') === '0',
    { timeout: 5000 });
  assert.equal(redis('SISMEMBER', 'codeb:{localhost}:regs', 'bob'), '0');
  await reg.dispose().catch(() => {});
  await ua.stop().catch(() => {});
});

test('3: a wrong password is refused', async () => {
  const ua = await jssipUA('alice', 'not-the-password');
  ua.start();
  await event(ua, 'connected');
  const failed = event(ua, 'registrationFailed');
  ua.register();
  const e = await failed;
  assert.equal(e.cause, 'Authentication Error');
  assert.equal(redis('HLEN', 'codeb:{localhost}:reg:alice'), '0');
  ua.stop();
  await sleep(100);
});
