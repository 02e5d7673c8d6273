// Shared setup of the browser end-to-end tests (room.test.mjs,
// mediad.test.mjs, phones.test.mjs, trunk.test.mjs): the loopback-only
// network namespace, bounded waits, free ports, child processes with a log
// file, a small HTTP GET, the servers the tests start (redis-server,
// codeb-mediad, nginx with a generated nginx.conf) and the checks at their
// end, small Redis and NG clients, Debian chromium through playwright-core,
// and a Harness that owns the temp dir, the browser and the pages, runs
// scenarios with diagnostics and cleans up on every way out (end of the
// run, SIGINT/SIGTERM/SIGHUP, the outer process or test runner going away,
// process.exit, a global watchdog).  What only the softphone tests share is
// in sip-lib.mjs.
//
// Not a test file: `node --test tests/e2e/` runs only *.test.mjs here.
// All durations and timeouts are in milliseconds.
//
// Environment: CODEB_E2E_CHROMIUM (default /usr/bin/chromium),
// TEST_NGINX_MODULES (default build/modules), CODEB_MEDIAD (default
// build/mediad/codeb-mediad), CODEB_E2E_KEEP=1 keeps the temp dir for
// inspection, CODEB_E2E_TRACE=1 prints each scenario's diagnostics also
// when it passes.  CODEB_NETNS and CODEB_E2E_LIFELINE are set by
// enterLoopbackNamespace for the inner run.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import dgram from 'node:dgram';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (two levels above this file). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The chromium binary: CODEB_E2E_CHROMIUM, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.CODEB_E2E_CHROMIUM || '/usr/bin/chromium';

/** The built nginx modules: TEST_NGINX_MODULES, else build/modules. */
export const MODULES = path.resolve(ROOT, process.env.TEST_NGINX_MODULES || path.join('build', 'modules'));

/** The media daemon: CODEB_MEDIAD, else build/mediad/codeb-mediad. */
export const MEDIAD = path.resolve(ROOT, process.env.CODEB_MEDIAD || path.join('build', 'mediad', 'codeb-mediad'));

/** The pages (html/), the document root of the tests' nginx. */
export const HTML = path.join(ROOT, 'html');

// ---------------------------------------------------------------------------
// The loopback-only namespace

/**
 * Runs the test file `self` (its absolute path) inside fresh network and PID
 * namespaces (`unshare --net --pid --fork --kill-child`) where only `lo`
 * exists and is up, so every packet stays on 127.0.0.1, and the inner node
 * is the init of its PID namespace: when it exits, the kernel kills whatever
 * it started.  The inner process runs with the same node flags, arguments
 * and environment (plus CODEB_NETNS=1 and CODEB_E2E_LIFELINE=3), so under
 * `node --test` its report reaches the runner as if this process had
 * written it.
 *
 * Call it at the top level of a test file, with await:
 *   if (await enterLoopbackNamespace(SELF, 'chromium and X')) defineTests();
 *
 * - In the inner run: resolves true (define the tests now).
 * - In the outer run: waits for the inner one and exits this process with
 *   its exit code (never resolves).  A signal (SIGINT/SIGTERM/SIGHUP) or the
 *   parent process going away (checked every 1000 ms) closes the lifeline
 *   (fd 3 of the inner run, see Harness), which makes the inner run clean up
 *   and exit; if it is still there 30000 ms later, unshare is killed with
 *   SIGKILL, which takes the whole namespace down.
 * - Where the namespace cannot be made (not root): defines one failing test
 *   that says why, naming `who` (what must only see 127.0.0.1), and
 *   resolves false.
 *
 * Also makes EPIPE on stdout/stderr harmless (a test runner that went away
 * leaves our pipes broken: carry on cleaning up instead of dying).
 */
export async function enterLoopbackNamespace(self, who) {
  for (const s of [process.stdout, process.stderr]) s.on('error', () => {});
  if (process.env.CODEB_NETNS === '1') return true;

  const probe = spawnSync('unshare', ['--net', '--pid', '--fork', '--kill-child', 'true'],
    { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : (probe.stderr || '').trim() || 'exit ' + probe.status;
    test('e2e needs a loopback-only network namespace', () => {
      assert.fail('`unshare --net --pid --fork` failed (' + why + '). These tests run as root '
        + '(CAP_SYS_ADMIN) so that ' + who + ' only see 127.0.0.1; '
        + 'run them as root (sudo node --test tests/e2e/), or in CI as the root user.');
    });
    return false;
  }

  // fd 3 is a lifeline: when this process goes away (or closes it on a
  // signal, or when the test runner that started it is gone), the inner
  // run sees EOF, cleans up and exits.
  const inner = spawn('unshare', ['--net', '--pid', '--fork', '--kill-child', 'sh', '-c',
    'ip link set lo up && exec env CODEB_NETNS=1 CODEB_E2E_LIFELINE=3 "$0" "$@"',
    process.execPath, ...process.execArgv, self, ...process.argv.slice(2)],
  { stdio: ['inherit', 'inherit', 'inherit', 'pipe'] });
  let cutting = null;
  const cut = (why) => {
    if (cutting) return;
    console.error('e2e: ' + why + ': stopping the inner run');
    try { inner.stdio[3].destroy(); } catch { /* closed */ }
    // unshare dying takes the whole namespace down with it (--kill-child)
    cutting = setTimeout(() => { try { inner.kill('SIGKILL'); } catch { /* gone */ } }, 30000);
    cutting.unref();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => cut(sig));
  const ppid = process.ppid;
  setInterval(() => { if (process.ppid !== ppid) cut('parent process gone'); }, 1000).unref();
  const code = await new Promise((resolve) => {
    inner.on('error', (e) => { console.error('e2e: cannot run unshare: ' + e.message); resolve(1); });
    inner.on('exit', (c, s) => resolve(c ?? (s ? 128 + (os.constants.signals[s] || 0) : 1)));
  });
  process.exit(code);
  return false; // not reached
}

// ---------------------------------------------------------------------------
// Small helpers

/** Resolves after `ms` milliseconds. */
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

/**
 * Calls `fn` (may be async) every `interval` ms until it returns something
 * truthy, and resolves to that value.  A throw counts as "not yet".  After
 * `timeout` ms rejects with "timed out after <timeout> ms waiting for
 * <what>", plus the last error's message if the last call threw.
 * Defaults: timeout 10000 ms, interval 100 ms.
 */
export async function waitFor(what, fn, { timeout = 10000, interval = 100 } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) {
      throw new Error('timed out after ' + timeout + ' ms waiting for ' + what
        + (last instanceof Error ? ': ' + last.message : ''));
    }
    await sleep(interval);
  }
}

/**
 * The promise `p`, or a rejection "<what>: no answer in <ms> ms" if it has
 * not settled within `ms` milliseconds (p itself is not cancelled).
 */
export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise((_, rej) => { t = setTimeout(() => rej(new Error(what + ': no answer in ' + ms + ' ms')), ms); }),
  ]);
}

/**
 * A port on 127.0.0.1 that was free a moment ago: the kernel picks it for a
 * socket of `type` ('tcp' or 'udp') that is closed again before resolving.
 */
export function freePort(type = 'tcp') {
  return new Promise((resolve, reject) => {
    if (type === 'udp') {
      const s = dgram.createSocket('udp4');
      s.on('error', reject);
      s.bind(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    } else {
      const s = net.createServer();
      s.on('error', reject);
      s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    }
  });
}

/** The last `lines` lines of a text file, or "(<file>: <error>)" if it cannot be read. */
export function tail(file, lines = 60) {
  try {
    const t = fs.readFileSync(file, 'utf8').split('\n');
    return t.slice(-lines - 1).join('\n');
  } catch (e) {
    return '(' + file + ': ' + e.message + ')';
  }
}

/**
 * Starts `cmd args` (child_process.spawn options `opts`, but for
 * `stopSignal` and `stopGraceMs`) with stdout and stderr appended to
 * `logFile`.  Returns { name, child, logFile, exited, code, signal,
 * spawnError, exit, stop }: `exit` resolves when the process has exited (or
 * could not be started: spawnError); `stop(first = stopSignal ('SIGTERM'),
 * graceMs = stopGraceMs (5000))` sends `first` and waits graceMs ms, then
 * SIGTERM and 2000 ms, then SIGKILL and 2000 ms, and resolves true if the
 * first signal sufficed (or it had already exited), false otherwise.
 */
export function startProc(name, cmd, args, logFile, opts = {}) {
  const { stopSignal = 'SIGTERM', stopGraceMs = 5000, ...spawnOpts } = opts;
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', out, out], ...spawnOpts });
  fs.closeSync(out);
  const proc = { name, child, logFile, exited: false, code: null, signal: null, spawnError: null };
  proc.exit = new Promise((resolve) => {
    child.on('error', (e) => { proc.spawnError = e; proc.exited = true; resolve(); });
    child.on('exit', (code, signal) => { proc.exited = true; proc.code = code; proc.signal = signal; resolve(); });
  });
  // Bounded stop: first signal, then TERM, then KILL. Returns true if the first signal sufficed.
  proc.stop = async (first = stopSignal, graceMs = stopGraceMs) => {
    if (proc.exited) return true;
    const steps = [[first, graceMs], ['SIGTERM', 2000], ['SIGKILL', 2000]];
    for (let i = 0; i < steps.length; i++) {
      try { child.kill(steps[i][0]); } catch { /* gone */ }
      const t = await Promise.race([proc.exit.then(() => true), sleep(steps[i][1]).then(() => false)]);
      if (t) return i === 0;
    }
    return false;
  };
  return proc;
}

/**
 * Waits (waitFor) until `ready()` is truthy, failing at once with the tail
 * of its log if the process `proc` (startProc) has exited meanwhile.
 * options: timeout (10000), interval (100), log (the file to show, default
 * proc.logFile), lines (30).
 */
export function waitUp(proc, what, ready, { timeout = 10000, interval = 100, log = proc.logFile, lines = 30 } = {}) {
  return waitFor(what, async () => {
    if (proc.exited) {
      throw new Error(proc.name + ' exited (code ' + proc.code + ', signal ' + proc.signal + '):\n' + tail(log, lines));
    }
    return ready();
  }, { timeout, interval });
}

/**
 * GET http://127.0.0.1:`port``p` with the request `headers`; resolves to
 * { status, headers, body (text) }, rejects on an error or when no answer
 * came within `timeout` ms (default 2000).
 */
export function httpGet(port, p, { headers = {}, timeout = 2000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, timeout, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/**
 * Runs `fn` in the page (page.evaluate, with `arg`) for a diagnostic
 * snapshot; bounded to 5000 ms; a failure or timeout resolves to
 * { error: message }.
 */
export function snapshotPage(page, fn, arg) {
  return withTimeout(page.evaluate(fn, arg), 5000, 'page snapshot').catch((e) => ({ error: e.message }));
}

// ---------------------------------------------------------------------------
// The servers a test file starts in its temp dir, and the checks at the end

/**
 * Asserts that `./build.sh build` made the CodeB modules `modules` (short
 * names: 'core', 'signal', 'sipws') in MODULES and, with `mediad`, the
 * media daemon MEDIAD.
 */
export function assertBuilt(modules, { mediad = false } = {}) {
  for (const m of modules) {
    const f = path.join(MODULES, 'ngx_codeb_' + m + '_module.so');
    assert.ok(fs.existsSync(f), 'modules not built: run ./build.sh build (looked for ' + f + ')');
  }
  if (mediad) assert.ok(fs.existsSync(MEDIAD), 'codeb-mediad not built: run ./build.sh build (looked for ' + MEDIAD + ')');
}

/**
 * Starts redis-server on the unix socket tmp/redis.sock (no TCP port, no
 * persistence; log tmp/logs/redis.log).  Returns the process (startProc)
 * with `sock` and `ready`, which resolves once it answers PING (10000 ms).
 */
export function startRedis(tmp) {
  const sock = path.join(tmp, 'redis.sock');
  const redis = startProc('redis-server', 'redis-server', ['--port', '0', '--unixsocket', sock,
    '--unixsocketperm', '777', '--save', '', '--appendonly', 'no', '--dir', tmp],
  path.join(tmp, 'logs', 'redis.log'));
  redis.sock = sock;
  redis.ready = waitUp(redis, 'redis-server on ' + sock, () => redisPing(sock), { lines: 20 });
  redis.ready.catch(() => {}); // awaited by the caller; never an unhandled rejection
  return redis;
}

/**
 * Starts codeb-mediad (MEDIAD): NG on a free UDP port of 127.0.0.1
 * (`ngPort`), media ports in a random range of 200 from 41000 (`rtp`:
 * [min, max]), one media thread, calls dropped after 60 s without media;
 * log tmp/logs/mediad.log; stopped with SIGINT.  Resolves to the process
 * (startProc) with `ngPort`, `rtp` and `ready`, which resolves once it
 * answers an NG ping (10000 ms).
 */
export async function startMediad(tmp) {
  const ngPort = await freePort('udp');
  const base = 41000 + 2 * Math.floor(Math.random() * 9000);
  const mediad = startProc('codeb-mediad', MEDIAD, ['--listen-ng', '127.0.0.1:' + ngPort,
    '--port-min', String(base), '--port-max', String(base + 199), '--interface', '127.0.0.1',
    '--threads', '1', '--timeout', '60'], path.join(tmp, 'logs', 'mediad.log'), { stopSignal: 'SIGINT' });
  mediad.ngPort = ngPort;
  mediad.rtp = [base, base + 199];
  mediad.ready = waitUp(mediad, 'codeb-mediad answering NG ping on 127.0.0.1:' + ngPort, async () => {
    const r = await ngRequest(ngPort, { command: 'ping' }, { timeout: 200, retries: 0 }).catch(() => null);
    return r && r.result === 'pong';
  });
  mediad.ready.catch(() => {}); // awaited by the caller
  return mediad;
}

/** Debian's stream module, loaded before ngx_codeb_sipws for SIP over UDP and TCP. */
export const STREAM_MODULE = '/usr/lib/nginx/modules/ngx_stream_module.so';

/**
 * The nginx.conf of a test run in `tmp`, written by the test file `by`:
 * Debian's stream module with `stream`, the CodeB `modules` (short names,
 * from MODULES), 2 workers under a master, not a daemon, `user root` when
 * run as root, pid and logs in tmp (logs/error.log at info, logs/access.log
 * as "<worker pid> <client port> "<request>" <status> <time>"), temp paths
 * in tmp/tmp, `codeb_redis` on the unix socket `redis`.  `http` are the
 * lines inside http{} after codeb_redis (the servers), `after` the lines
 * after http{} (a stream{}).
 */
export function nginxConf(tmp, { by, stream = false, modules, redis, http: httpLines = [], after = [] }) {
  return [
    '# generated by ' + by,
    ...(stream ? [`load_module ${STREAM_MODULE};`] : []),
    ...modules.map((m) => `load_module ${MODULES}/ngx_codeb_${m}_module.so;`),
    process.getuid && process.getuid() === 0 ? 'user root;' : '',
    'worker_processes 2;',
    'master_process on;',
    'daemon off;',
    `pid ${tmp}/nginx.pid;`,
    `error_log ${tmp}/logs/error.log info;`,
    'events { worker_connections 1024; }',
    'http {',
    '    include /etc/nginx/mime.types;',
    '    default_type application/octet-stream;',
    "    log_format e2e '$pid $remote_port \"$request\" $status $request_time';",
    `    access_log ${tmp}/logs/access.log e2e;`,
    `    client_body_temp_path ${tmp}/tmp/body;`,
    `    proxy_temp_path ${tmp}/tmp/proxy;`,
    `    fastcgi_temp_path ${tmp}/tmp/fastcgi;`,
    `    uwsgi_temp_path ${tmp}/tmp/uwsgi;`,
    `    scgi_temp_path ${tmp}/tmp/scgi;`,
    `    codeb_redis unix:${redis};`,
    ...httpLines,
    '}',
    ...after,
    '',
  ].join('\n');
}

/**
 * Writes `conf` to tmp/nginx.conf, asserts that `nginx -t` accepts it and
 * starts nginx (prefix tmp; its stderr in tmp/logs/nginx.stderr.log;
 * stopped with SIGQUIT, a graceful shutdown).  Returns the process
 * (startProc); wait for it with waitUp(nginx, ..., { log: errorLog }).
 */
export function startNginx(tmp, conf) {
  fs.writeFileSync(path.join(tmp, 'nginx.conf'), conf);
  const args = ['-p', tmp, '-c', path.join(tmp, 'nginx.conf'), '-e', path.join(tmp, 'logs', 'error.log')];
  const t = spawnSync('nginx', [...args, '-t'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(t.status, 0, 'nginx -t failed:\n' + t.stderr + '\n' + conf);
  return startProc('nginx', 'nginx', args, path.join(tmp, 'logs', 'nginx.stderr.log'), { stopSignal: 'SIGQUIT' });
}

/** Asserts that `proc` (startProc) is still running, showing the last `lines` of `log` if not. */
export function assertRunning(proc, log, lines = 40) {
  assert.ok(proc && !proc.exited, (proc ? proc.name : 'a server') + ' died during the run (code ' + (proc && proc.code)
    + ', signal ' + (proc && proc.signal) + '):\n' + tail(log, lines));
}

/**
 * The end of every run's nginx: SIGQUIT, then asserts that no worker
 * exited on a signal (a crash) and that it quit within 5000 ms.  Returns
 * the text of its error log `errorLog` (for assertNoAlerts).
 */
export async function quitNginx(nginx, errorLog) {
  const graceful = await nginx.stop('SIGQUIT', 5000);
  const log = fs.readFileSync(errorLog, 'utf8');
  const crashes = log.split('\n').filter((l) => /exited on signal/.test(l));
  assert.deepEqual(crashes, [], 'nginx worker crash (release blocker):\n' + tail(errorLog, 80));
  assert.ok(graceful, 'nginx did not exit within 5 s of SIGQUIT:\n' + tail(errorLog, 40));
  return log;
}

/** Asserts that the nginx error log text `log` has no [alert], [crit] or [emerg] line. */
export function assertNoAlerts(log) {
  const alerts = log.split('\n').filter((l) => /\[(alert|emerg|crit)\]/.test(l));
  assert.deepEqual(alerts, [], 'alert/crit/emerg lines in error.log');
}

/**
 * The WebSockets each nginx worker accepted on `location` (the access log
 * of nginxConf names the worker pid of every request; an upgrade is a 101):
 * { pid: count }.
 */
export function webSocketsPerWorker(tmp, location) {
  const perWorker = {};
  for (const l of fs.readFileSync(path.join(tmp, 'logs', 'access.log'), 'utf8').split('\n')) {
    const [pid, , method, uri, , status] = l.split(' ');
    if (method === '"GET' && uri === location && status === '101') perWorker[pid] = (perWorker[pid] || 0) + 1;
  }
  return perWorker;
}

/**
 * Diagnostic lines about the servers: the tail of nginx's error.log and,
 * with `mediad` (startMediad), the tail of its log and its calls (NG list).
 */
export async function serverReport(tmp, mediad) {
  const out = ['--- nginx error.log (tail):', tail(path.join(tmp, 'logs', 'error.log'), 80)];
  if (mediad) {
    out.push('--- codeb-mediad log (tail):', tail(mediad.logFile, 40));
    const list = await ngRequest(mediad.ngPort, { command: 'list' }, { timeout: 500, retries: 0 }).catch((e) => ({ error: e.message }));
    out.push('--- codeb-mediad calls: ' + JSON.stringify(list));
  }
  return out;
}

/** Waits (5000 ms) until codeb-mediad on `ngPort` has no call left (each one is deleted on BYE, CANCEL, failure). */
export async function assertNoMediaCalls(ngPort, what) {
  await waitFor('codeb-mediad without calls ' + what, async () => {
    const r = await ngRequest(ngPort, { command: 'list' });
    if (r.result !== 'ok') throw new Error(JSON.stringify(r));
    if (r.calls.length) throw new Error('calls: ' + JSON.stringify(r.calls));
    return true;
  }, { timeout: 5000, interval: 200 });
}

// ---------------------------------------------------------------------------
// The harness of one test file's inner run

/**
 * Owns what every e2e run has: the temp dir (`tmp`), the browser context
 * (`context`) and the open pages (`pages`: { label, page, console }), and
 * the cleanup on every way out.  Create it synchronously while the tests
 * are defined, and call close() from after().
 *
 * options:
 *   procs()     the test's startProc processes (null entries allowed):
 *               SIGKILLed by the synchronous process 'exit' hook, the last
 *               resort when the process exits with them still running.
 *   stop()      async; stops the test's own servers, bounded.  cleanup()
 *               runs it after closing the browser and before removing tmp.
 *               Default: stops procs() in their order, each with its own
 *               stop signal and grace (startProc).
 *   diagnose(title)  async; prints what helps on a failure (pages, logs).
 *               The watchdog and scenario() call it.
 *   watchdogMs  the global watchdog: after this many ms the run prints
 *               diagnose() and aborts, whatever it is doing.
 *
 * At creation it installs: SIGINT/SIGTERM/SIGHUP handlers and the lifeline
 * (fd CODEB_E2E_LIFELINE, closed when the outer process goes away), both of
 * which abort: cleanup() bounded to 25000 ms, then exit 1 (this process is
 * the init of its PID namespace, so whatever survives dies with it); the
 * 'exit' hook (SIGKILL procs(), remove tmp; playwright kills its browser on
 * exit by itself); and the watchdog timer.
 */
export class Harness {
  constructor({ procs = () => [], stop, diagnose = async () => {}, watchdogMs }) {
    stop ??= async () => {
      for (const p of procs()) if (p && !p.exited) await p.stop();
    };
    this.tmp = null;
    this.context = null;
    this.pages = [];
    this.stopServers = stop;
    this.diagnose = diagnose;
    this.cleaning = null;
    this.aborting = false;

    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => this.abort(sig));
    if (process.env.CODEB_E2E_LIFELINE) {
      const lifeline = new net.Socket({ fd: Number(process.env.CODEB_E2E_LIFELINE), readable: true, writable: false });
      lifeline.on('end', () => this.abort('outer process gone'));
      lifeline.on('error', () => this.abort('outer process gone'));
      lifeline.resume();
      lifeline.unref();
    }
    // Synchronous last resort (process.exit from anywhere): playwright kills
    // its browser on exit by itself.
    process.on('exit', () => {
      for (const p of procs()) {
        if (p && !p.exited) try { p.child.kill('SIGKILL'); } catch { /* gone */ }
      }
      this.removeTmp();
    });
    // Last line of defence: whatever happens, bounded.
    const s = Math.round(watchdogMs / 1000);
    this.watchdog = setTimeout(async () => {
      await this.diagnose('watchdog (' + s + ' s)').catch(() => {});
      await this.abort('global watchdog (' + s + ' s) fired');
    }, watchdogMs);
    this.watchdog.unref();
  }

  /**
   * Asserts that CHROMIUM exists, then makes the temp dir `tmp` (under
   * os.tmpdir(), named prefix + random) with the subdirectories logs, tmp,
   * chromium-profile and the names in `subdirs`.  Returns tmp.
   */
  makeTmp(prefix, subdirs = []) {
    assert.ok(fs.existsSync(CHROMIUM), CHROMIUM + ' not found (Debian package chromium)');
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    for (const d of ['logs', 'tmp', 'chromium-profile', ...subdirs]) fs.mkdirSync(path.join(this.tmp, d));
    return this.tmp;
  }

  /** Removes tmp (or with CODEB_E2E_KEEP=1 only says where it is); then tmp is null. */
  removeTmp() {
    if (!this.tmp) return;
    if (process.env.CODEB_E2E_KEEP === '1') {
      console.error('e2e: kept ' + this.tmp);
    } else {
      try {
        fs.rmSync(this.tmp, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
      } catch (e) {
        console.error('e2e: could not remove ' + this.tmp + ': ' + e.message);
      }
    }
    this.tmp = null;
  }

  /**
   * Launches CHROMIUM (Debian's; never a downloaded one) headless through
   * playwright-core as a persistent context with its profile in
   * tmp/chromium-profile and TMPDIR=tmp/tmp: fake camera and microphone,
   * media permission granted, autoplay, loopback ICE allowed.  Launch
   * timeout 30000 ms, the whole bounded to 40000 ms.  `args` are more
   * command line switches.  Closes the blank page it opens and sets
   * `context`.
   */
  async launchChromium(args = []) {
    const { chromium } = await import('playwright-core');
    const T = this.tmp;
    this.context = await withTimeout(chromium.launchPersistentContext(path.join(T, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
        '--autoplay-policy=no-user-gesture-required',
        '--allow-loopback-in-peer-connection',
        ...args,
      ],
      env: { ...process.env, TMPDIR: path.join(T, 'tmp') },
      timeout: 30000,
    }), 40000, 'chromium launch');
    // the persistent context opens one blank page; we open our own
    for (const p of this.context.pages()) await p.close().catch(() => {});
    return this.context;
  }

  /**
   * Closes the browser (if open; `context` becomes null at once), bounded to
   * 15000 ms; rejects on timeout.
   */
  async closeBrowser() {
    if (!this.context) return;
    const c = this.context;
    this.context = null;
    await withTimeout(c.close(), 15000, 'browser close');
  }

  /**
   * Opens a new page labelled `label` in `context`, recording its console
   * messages (the first 200) and page errors for diagnostics, and loads
   * `url` (timeout 10000 ms).  Returns the playwright Page.
   */
  async openPage(label, url) {
    const page = await this.context.newPage();
    const rec = { label, page, console: [] };
    page.on('console', (m) => { if (rec.console.length < 200) rec.console.push(m.type() + ': ' + m.text()); });
    page.on('pageerror', (e) => rec.console.push('pageerror: ' + e.message));
    this.pages.push(rec);
    await page.goto(url, { timeout: 10000 });
    return page;
  }

  /** Closes every page opened by openPage, each bounded to 5000 ms, errors ignored. */
  async closePages() {
    const pages = this.pages.splice(0);
    for (const r of pages) await withTimeout(r.page.close(), 5000, 'page close').catch(() => {});
  }

  /**
   * Diagnostic lines for every open page: a heading "--- page <label><what>:",
   * the JSON of snapshot(page) without its `log`, the `log` lines, and the
   * recorded console.  `snapshot(page)` resolves to an object (see
   * snapshotPage).
   */
  async pageReport(snapshot, what = '') {
    const out = [];
    for (const r of this.pages) {
      out.push('--- page ' + r.label + what + ':');
      const s = await snapshot(r.page);
      const { log, ...rest } = s;
      out.push(JSON.stringify(rest));
      if (log) out.push(...log.map((l) => '    ' + l));
      if (r.console.length) out.push('--- page ' + r.label + ' console:', ...r.console.map((l) => '    ' + l));
    }
    return out;
  }

  /**
   * Prints (stderr) the diagnostics of a failure: a heading naming
   * `title`, pageReport(snapshot, what) and, while tmp exists, the lines
   * `more()` resolves to (server logs).
   */
  async printDiagnostics(title, snapshot, what, more = async () => []) {
    const out = ['', '===== e2e diagnostics: ' + title + ' =====', ...await this.pageReport(snapshot, what)];
    if (this.tmp) out.push(...await more());
    console.error(out.join('\n'));
  }

  /**
   * Runs one scenario, `body()`: on a failure prints diagnose(title) and
   * rethrows; with CODEB_E2E_TRACE=1 prints it after a success too.  The
   * pages are closed after it, or with `keepPages` only after a failure
   * (then `failed()` runs: forget them).  `done()` runs last either way.
   */
  async scenario(title, body, { keepPages = false, failed = () => {}, done = async () => {} } = {}) {
    try {
      await body();
      if (process.env.CODEB_E2E_TRACE === '1') await this.diagnose(title + ' (CODEB_E2E_TRACE)');
    } catch (e) {
      await this.diagnose(title);
      if (keepPages) {
        await this.closePages();
        failed();
      }
      throw e;
    } finally {
      if (!keepPages) await this.closePages();
      await done();
    }
  }

  /**
   * Cleans up once (later calls get the same promise): closes the browser
   * (errors printed), runs stop(), removes tmp.
   */
  cleanup() {
    this.cleaning ??= (async () => {
      await this.closeBrowser().catch((e) => console.error('e2e: ' + e.message));
      await this.stopServers();
      this.removeTmp();
    })();
    return this.cleaning;
  }

  /**
   * Interrupted (signal, or the outer process / test runner went away, or
   * the watchdog): prints why, cleanup() bounded to 25000 ms, exit 1.  Once.
   */
  async abort(why) {
    if (this.aborting) return;
    this.aborting = true;
    console.error('e2e: ' + why + ', cleaning up');
    await withTimeout(this.cleanup(), 25000, 'cleanup').catch((e) => console.error('e2e: ' + e.message));
    process.exit(1);
  }

  /** For after(): stops the watchdog and cleans up. */
  async close() {
    clearTimeout(this.watchdog);
    await this.cleanup();
  }
}

// ---------------------------------------------------------------------------
// Small clients of the servers the tests start

/** Resolves true if the Redis on unix socket `sock` answers PING within 1000 ms. */
export function redisPing(sock) {
  return new Promise((resolve) => {
    const c = net.createConnection(sock);
    let buf = '';
    const done = (v) => { c.destroy(); resolve(v); };
    c.setTimeout(1000, () => done(false));
    c.on('error', () => done(false));
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => { buf += d; if (buf.includes('\r\n')) done(buf.startsWith('+PONG')); });
  });
}

// bencode (BEP 3) for the NG protocol (docs/ng.md): strings as UTF-8, dict
// keys sorted by their bytes; decoding returns strings, numbers, arrays and
// objects and is lenient (the tests only read what the daemon wrote).
function bencodeValue(v, out) {
  if (typeof v === 'number') out.push(Buffer.from('i' + Math.trunc(v) + 'e'));
  else if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const b = Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8');
    out.push(Buffer.from(b.length + ':'), b);
  } else if (Array.isArray(v)) {
    out.push(Buffer.from('l'));
    for (const x of v) bencodeValue(x, out);
    out.push(Buffer.from('e'));
  } else {
    out.push(Buffer.from('d'));
    const keys = Object.keys(v).filter((k) => v[k] !== undefined)
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const k of keys) { bencodeValue(k, out); bencodeValue(v[k], out); }
    out.push(Buffer.from('e'));
  }
}

function bdecodeValue(buf, at) {
  const c = buf[at.pos];
  if (c === 0x69) {
    const end = buf.indexOf(0x65, at.pos);
    const n = Number(buf.toString('latin1', at.pos + 1, end));
    at.pos = end + 1;
    return n;
  }
  if (c === 0x6c || c === 0x64) {
    at.pos += 1;
    const list = [];
    while (at.pos < buf.length && buf[at.pos] !== 0x65) list.push(bdecodeValue(buf, at));
    at.pos += 1;
    if (c === 0x6c) return list;
    const d = {};
    for (let i = 0; i + 1 < list.length; i += 2) d[list[i]] = list[i + 1];
    return d;
  }
  const colon = buf.indexOf(0x3a, at.pos);
  if (colon < 0) throw new Error('bdecode: bad input at ' + at.pos);
  const n = Number(buf.toString('latin1', at.pos, colon));
  at.pos = colon + 1 + n;
  return buf.toString('utf8', colon + 1, colon + 1 + n);
}

/**
 * One NG request (docs/ng.md) to a media daemon on 127.0.0.1:`port` from a
 * fresh UDP socket: `msg` is bencoded behind a random cookie; resolves to
 * the decoded reply dictionary.  Each attempt waits `timeout` ms (default
 * 1000), `retries` more attempts (default 2) reuse the cookie (the daemon
 * answers a repeated cookie from its reply cache); rejects after the last.
 */
export async function ngRequest(port, msg, { timeout = 1000, retries = 2 } = {}) {
  const cookie = Math.random().toString(16).slice(2, 14);
  const parts = [Buffer.from(cookie + ' ')];
  bencodeValue(msg, parts);
  const payload = Buffer.concat(parts);
  const sock = dgram.createSocket('udp4');
  sock.on('error', () => {}); // ICMP unreachable while the daemon starts
  try {
    await new Promise((r) => sock.bind(0, '127.0.0.1', r));
    for (let i = 0; i <= retries; i++) {
      const reply = await new Promise((resolve) => {
        const t = setTimeout(() => resolve(null), timeout);
        sock.on('message', (m) => {
          if (m.toString('latin1', 0, cookie.length + 1) !== cookie + ' ') return;
          clearTimeout(t);
          resolve(m.subarray(cookie.length + 1));
        });
        sock.send(payload, port, '127.0.0.1');
      });
      sock.removeAllListeners('message');
      if (reply) return bdecodeValue(reply, { pos: 0 });
    }
  } finally {
    sock.close();
  }
  throw new Error('no NG reply to ' + msg.command + ' from 127.0.0.1:' + port + ' after ' + (retries + 1) + ' attempts');
}
