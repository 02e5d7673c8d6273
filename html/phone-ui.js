/* CodeB softphone: the page logic shared by phone-jssip.html and
 * phone-sipjs.html.  Plain JS, no external resources.  The SIP library
 * sits behind a small engine (phone-jssip.js, phone-sipjs.js), which calls
 * back into this file with what happened; this file owns the settings
 * (localStorage), the state shown on the page, the log, the local ring
 * tones and the test hook window.codebPhone.
 *
 * Engine contract: CodebPhone.start(engine), engine = {
 *   lib: 'JsSIP 3.13.8',
 *   create(cfg, ev) -> agent    cfg: {server, user, password, displayName,
 *                               domain, iceServers, remoteAudio}
 * }, agent = { start() (connect, then register, and again after a
 *   reconnect), stop() (unregister, disconnect), call(uri), answer(),
 *   reject(code), hangup(), setMuted(bool), dtmf(tone), transfer(uri) };
 *   each may return a promise, a rejection is shown.
 * ev (below, `events`) is how the agent reports: transport(state),
 * registration(state, info), outgoing(state, info), incoming(info),
 * established(), ended(info), pc(RTCPeerConnection), transfer(state, info),
 * sip(dir, text), log(text).
 */
'use strict';
window.CodebPhone = (() => {
  const $ = (id) => document.getElementById(id);
  const LOG_MAX = 300;
  const SIP_MAX = 200;
  const EVENTS_MAX = 200;

  // ---------------------------------------------------------------- state
  const S = {
    lib: '',
    transport: 'disconnected', // connecting | connected | disconnected
    reg: 'unregistered',       // unregistered | registering | registered | unregistering | failed
    regInfo: null,             // {code, reason} of the last failure
    call: 'idle',              // idle | calling | ringing | incoming | answering | established | ending
    direction: null,           // outgoing | incoming
    peer: null,                // the other party: {uri, user, displayName}
    muted: false,
    pc: null,
    lastCall: null,            // {direction, peer, outcome, code, reason, by, durationMs}
    transfer: null,            // {state: sent | accepted | failed, target, code, reason}
    dtmfSent: '',              // the digits the page asked the library to send
    dtmfPlayed: '',            // the digits the browser's RTCDTMFSender played
    events: [],                // {t, type, ...}
    log: [],
    sip: [],                   // {t, dir: 'out' | 'in', text}
    agent: null,
    engine: null,
    settings: null,
    gen: 0,
    answeredAt: 0,
  };

  function now() { return Date.now(); }
  function time() { return new Date().toISOString().slice(11, 23); }

  function event(type, detail) {
    S.events.push({ t: now(), type, ...detail });
    if (S.events.length > EVENTS_MAX) S.events.splice(0, S.events.length - EVENTS_MAX);
  }

  function log(text, cls) {
    const line = time() + ' ' + text;
    S.log.push(line);
    if (S.log.length > LOG_MAX) S.log.splice(0, S.log.length - LOG_MAX);
    const ol = $('log');
    if (!ol) return;
    const li = document.createElement('li');
    if (cls) li.className = cls;
    li.textContent = line;
    ol.append(li);
    while (ol.childElementCount > LOG_MAX) ol.firstElementChild.remove();
    // follow the newest line inside the log box (never move the page)
    ol.scrollTop = ol.scrollHeight;
  }

  // A SIP message for the log: its first line always, all of it when the
  // "Full SIP messages" box is ticked.
  function sipTrace(dir, text) {
    if (typeof text !== 'string') text = String(text);
    S.sip.push({ t: now(), dir, text });
    if (S.sip.length > SIP_MAX) S.sip.splice(0, S.sip.length - SIP_MAX);
    const first = text.split('\r\n', 1)[0].trim();
    if (!first) return; // keepalive CRLFs
    const arrow = dir === 'out' ? '\u2192 ' : '\u2190 ';
    if ($('log-sip') && $('log-sip').checked) log(arrow + text.trimEnd(), 'sip full');
    else log(arrow + first, 'sip');
  }

  // ------------------------------------------------------------- settings
  function defaultServer() {
    const host = location.hostname.includes(':') ? '[' + location.hostname + ']' : location.hostname;
    return location.protocol === 'https:' ? 'wss://' + host + ':5443' : 'ws://' + host + ':5066';
  }

  function storageKey() { return 'codeb.phone.' + S.engine.key; }

  function loadSettings(defaults) {
    let stored = {};
    try { stored = JSON.parse(localStorage.getItem(storageKey()) || '{}') || {}; } catch (e) { stored = {}; }
    const s = { server: '', user: '', password: '', displayName: '', domain: '', autoRegister: true, ...defaults, ...stored };
    if (!s.server) s.server = defaultServer();
    return s;
  }

  function saveSettings(s) {
    try { localStorage.setItem(storageKey(), JSON.stringify(s)); } catch (e) { log('settings not saved: ' + e.message, 'error'); }
  }

  function fillForm(s) {
    $('set-server').value = s.server;
    $('set-user').value = s.user;
    $('set-password').value = s.password;
    $('set-name').value = s.displayName;
    $('set-domain').value = s.domain;
    $('set-auto').checked = !!s.autoRegister;
  }

  function readForm() {
    return {
      server: $('set-server').value.trim(),
      user: $('set-user').value.trim(),
      password: $('set-password').value,
      displayName: $('set-name').value.trim(),
      domain: $('set-domain').value.trim(),
      autoRegister: $('set-auto').checked,
    };
  }

  // the SIP domain: the settings', else the server's host name
  function sipDomain(s) {
    if (s.domain) return s.domain;
    try { return new URL(s.server).hostname || location.hostname; } catch (e) { return location.hostname; }
  }

  // "bob", "+4930123", "bob@example.com" or "sip:bob@example.com"
  function targetUri(text) {
    let t = text.trim().replace(/\s+/g, '');
    if (!t) return null;
    if (/^sips?:/i.test(t)) return t;
    if (!t.includes('@')) {
      // a number typed with separators: keep the digits (and a leading +)
      if (/^\+?[0-9().\-/]+$/.test(t) && /[0-9]/.test(t)) t = t.replace(/[().\-/]/g, '');
      t += '@' + sipDomain(S.settings);
    }
    return 'sip:' + t;
  }

  function checkServer(url) {
    let u;
    try { u = new URL(url); } catch (e) { return 'not a URL'; }
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return 'must start with wss:// (or ws:// for local use)';
    return null;
  }

  // ----------------------------------------------------------- ring tones
  // Local ringback while the other side rings (the server sends 180 at once
  // and the 200 only when the callee answers) and a ring tone for incoming
  // calls, made with WebAudio: no sound files to fetch.
  const tone = {
    ctx: null,
    timer: null,
    nodes: [],
    play(kind) {
      this.stop();
      try {
        this.ctx = this.ctx || new AudioContext();
        if (this.ctx.state === 'suspended') this.ctx.resume().catch(() => {});
      } catch (e) { return; }
      // ringback: 440+480 Hz, 2 s on 4 s off; ring: 2 x 0.4 s bursts every 3 s
      const pattern = kind === 'ringback'
        ? { freqs: [440, 480], on: [[0, 2]], period: 6 }
        : { freqs: [770, 1020], on: [[0, 0.4], [0.6, 1.0]], period: 3 };
      const burst = () => {
        const t0 = this.ctx.currentTime + 0.05;
        const gain = this.ctx.createGain();
        gain.gain.value = 0;
        gain.connect(this.ctx.destination);
        for (const [a, b] of pattern.on) {
          gain.gain.setValueAtTime(0.08, t0 + a);
          gain.gain.setValueAtTime(0, t0 + b);
        }
        const oscs = pattern.freqs.map((f) => {
          const o = this.ctx.createOscillator();
          o.frequency.value = f;
          o.connect(gain);
          o.start(t0);
          o.stop(t0 + pattern.period);
          return o;
        });
        this.nodes.push({ gain, oscs });
        if (this.nodes.length > 2) this.nodes.shift();
      };
      burst();
      this.timer = setInterval(burst, pattern.period * 1000);
    },
    stop() {
      clearInterval(this.timer);
      this.timer = null;
      for (const n of this.nodes.splice(0)) {
        for (const o of n.oscs) try { o.stop(); } catch (e) { /* stopped */ }
        n.gain.disconnect();
      }
    },
  };

  // ----------------------------------------------------------- rendering
  const REG_TEXT = {
    unregistered: 'Not registered',
    connecting: 'Connecting…',
    registering: 'Registering…',
    registered: 'Registered',
    unregistering: 'Unregistering…',
    failed: 'Registration failed',
  };

  function peerName(p) {
    if (!p) return '';
    return p.displayName && p.displayName !== p.user ? p.displayName + ' (' + p.user + ')' : (p.user || p.uri || '');
  }

  function endText(c) {
    if (!c) return 'Idle';
    const why = c.code ? c.code + ' ' + (c.reason || '') : (c.reason || '');
    switch (c.outcome) {
      case 'ended': return 'Call ended' + (c.by === 'remote' ? ' by the other side' : '');
      case 'canceled': return c.by === 'local' ? 'Call canceled' : 'Missed call (caller hung up)';
      case 'rejected': return c.direction === 'incoming' ? 'Call rejected' : 'Call failed: ' + why.trim();
      default: return 'Call failed' + (why.trim() ? ': ' + why.trim() : '');
    }
  }

  function render() {
    const b = document.body;
    b.dataset.reg = S.reg;
    b.dataset.call = S.call;
    b.dataset.transport = S.transport;
    let reg = REG_TEXT[S.reg] || S.reg;
    if (S.reg === 'failed' && S.regInfo) reg += ': ' + [S.regInfo.code, S.regInfo.reason].filter(Boolean).join(' ');
    if (S.reg === 'registered' && S.settings) reg += ' as ' + S.settings.user;
    if (S.reg === 'unregistered' && S.transport === 'connecting') reg = REG_TEXT.connecting;
    if (S.reg === 'unregistered' && S.transport === 'disconnected' && S.agent) reg = 'Not connected';
    $('reg-status').textContent = reg;

    const who = peerName(S.peer);
    const CALL_TEXT = {
      idle: endText(S.lastCall),
      calling: 'Calling ' + who + '…',
      ringing: 'Ringing ' + who + '…',
      incoming: 'Incoming call from ' + who,
      answering: 'Answering…',
      established: 'In call with ' + who + (S.muted ? ' (muted)' : ''),
      ending: 'Hanging up…',
    };
    $('call-status').textContent = CALL_TEXT[S.call] || S.call;

    const idle = S.call === 'idle';
    const inCall = S.call === 'established';
    $('btn-call').disabled = !idle || S.transport !== 'connected';
    $('incoming-actions').hidden = S.call !== 'incoming';
    $('btn-hangup').disabled = !['calling', 'ringing', 'answering', 'established'].includes(S.call);
    $('btn-mute').disabled = !inCall;
    $('btn-mute').setAttribute('aria-pressed', String(S.muted));
    $('btn-mute').textContent = S.muted ? 'Unmute' : 'Mute';
    $('transfer-target').disabled = !inCall;
    $('btn-transfer').disabled = !inCall || (S.transfer && S.transfer.state === 'sent');
    $('dialpad').setAttribute('aria-label', inCall ? 'Dial pad: send DTMF' : 'Dial pad');
    $('btn-unregister').disabled = S.reg === 'unregistered' && S.transport === 'disconnected';
    const tr = $('transfer-status');
    if (!S.transfer) tr.textContent = '';
    else if (S.transfer.state === 'sent') tr.textContent = 'Transfer to ' + S.transfer.target + ' requested…';
    else if (S.transfer.state === 'accepted') tr.textContent = 'Transfer accepted (' + S.transfer.code + ' ' + (S.transfer.reason || '') + '), waiting for the result…';
    else if (S.transfer.state === 'completed') tr.textContent = 'Transferred to ' + S.transfer.target;
    else tr.textContent = 'Transfer failed: ' + [S.transfer.code, S.transfer.reason].filter(Boolean).join(' ');
    tr.className = S.transfer && S.transfer.state === 'failed' ? 'error' : '';
  }

  // ------------------------------------------------------ engine callbacks
  function events(gen) {
    // callbacks of an agent that was replaced (new settings) are dropped
    const live = (fn) => (...a) => { if (gen === S.gen) fn(...a); };
    return {
      transport: live((state, info) => {
        S.transport = state;
        // the REGISTER follows the connect; the server drops the bindings
        // of a closed WebSocket
        if (state === 'connected' && S.reg !== 'registered') S.reg = 'registering';
        if (state === 'disconnected' && S.reg !== 'failed') S.reg = 'unregistered';
        event('transport', { state, ...(info || {}) });
        log('transport ' + state + (info && (info.code || info.reason) ? ' (' + (info.code || info.reason) + ')' : ''));
        render();
      }),
      registration: live((state, info) => {
        S.reg = state;
        S.regInfo = state === 'failed' ? (info || {}) : null;
        event('registration', { state, ...(info || {}) });
        log('registration ' + state + (info ? ' ' + [info.code, info.reason].filter(Boolean).join(' ') : ''),
          state === 'failed' ? 'error' : '');
        // a refused user or password: the settings are where to fix it
        if (state === 'failed' && info && [401, 403, 404, 407].includes(info.code)) $('settings').open = true;
        render();
      }),
      outgoing: live((state, info) => {
        // calling (INVITE sent) -> ringing (180/183)
        if (S.call !== 'calling' && S.call !== 'ringing') return;
        S.call = state;
        event('outgoing', { state, ...(info || {}) });
        if (state === 'ringing') tone.play('ringback');
        render();
      }),
      incoming: live((info) => {
        S.call = 'incoming';
        S.direction = 'incoming';
        S.peer = info;
        S.muted = false;
        S.transfer = null;
        S.dtmfSent = '';
        S.dtmfPlayed = '';
        event('incoming', { peer: info });
        log('incoming call from ' + peerName(info));
        tone.play('ring');
        if (document.hidden && navigator.vibrate) navigator.vibrate([400, 200, 400]);
        render();
        $('btn-answer').focus();
      }),
      established: live(() => {
        S.call = 'established';
        S.answeredAt = now();
        event('established', {});
        log('call established with ' + peerName(S.peer));
        tone.stop();
        watchDtmfSender();
        render();
      }),
      ended: live((info) => {
        tone.stop();
        const c = {
          direction: S.direction, peer: S.peer, outcome: info.outcome || 'failed',
          code: info.code || null, reason: info.reason || '', by: info.by || 'remote',
          durationMs: S.answeredAt ? now() - S.answeredAt : 0,
        };
        S.lastCall = c;
        S.call = 'idle';
        S.direction = null;
        S.muted = false;
        S.answeredAt = 0;
        event('ended', c);
        log(endText(c), c.outcome === 'ended' || c.outcome === 'canceled' ? '' : 'error');
        render();
      }),
      pc: live((pc) => {
        S.pc = pc;
        event('pc', {});
      }),
      transfer: live((state, info) => {
        S.transfer = { ...(S.transfer || {}), state, ...(info || {}) };
        event('transfer', { state, ...(info || {}) });
        log('transfer ' + state + (info && info.code ? ' ' + info.code + ' ' + (info.reason || '') : ''),
          state === 'failed' ? 'error' : '');
        render();
      }),
      sip: live(sipTrace),
      log: live((text) => log(text)),
    };
  }

  // The digits the browser really played: RTCDTMFSender's tonechange.
  function watchDtmfSender() {
    const pc = S.pc;
    if (!pc) return;
    const sender = pc.getSenders().find((x) => x.track && x.track.kind === 'audio');
    if (!sender || !sender.dtmf || sender.dtmf.__codeb) return;
    sender.dtmf.__codeb = true;
    sender.dtmf.addEventListener('tonechange', (e) => {
      if (e.tone) { S.dtmfPlayed += e.tone; event('dtmf-played', { tone: e.tone }); }
    });
  }

  // Runs an agent action; a rejection or throw is logged and shown.  With
  // `ms`, a promise that has not settled by then counts as failed.
  async function act(what, fn, ms) {
    try {
      const p = Promise.resolve(fn());
      await (ms ? Promise.race([p, new Promise((_, no) => setTimeout(() => no(new Error('no answer in ' + ms + ' ms')), ms))]) : p);
    } catch (e) {
      const msg = (e && e.message) || String(e);
      event('error', { what, message: msg });
      log(what + ': ' + msg, 'error');
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------- actions
  // Ends the agent's call, un-REGISTERs and disconnects; what it reports
  // meanwhile is still shown (and traced), nothing after.
  async function stopAgent() {
    const a = S.agent;
    S.agent = null;
    tone.stop();
    if (!a) return;
    if (S.reg === 'registered') S.reg = 'unregistering';
    render();
    if (S.call !== 'idle') await act('hang up', () => a.hangup(), 2000);
    await act('disconnect', () => a.stop(), 3000);
    S.gen += 1;
    S.transport = 'disconnected';
    S.reg = 'unregistered';
    S.call = 'idle';
    S.pc = null;
    render();
  }

  async function connect() {
    await stopAgent();
    const s = S.settings;
    const bad = checkServer(s.server);
    if (bad || !s.user) {
      S.reg = 'failed';
      S.regInfo = { reason: bad ? 'server ' + bad : 'no user name' };
      log('settings: ' + S.regInfo.reason, 'error');
      render();
      return;
    }
    const gen = S.gen;
    const cfg = {
      server: s.server,
      user: s.user,
      password: s.password,
      displayName: s.displayName || s.user,
      domain: sipDomain(s),
      iceServers: [],
      remoteAudio: $('remote-audio'),
    };
    log('connecting to ' + cfg.server + ' as sip:' + cfg.user + '@' + cfg.domain + ' (' + S.lib + ')');
    let agent;
    try {
      agent = S.engine.create(cfg, events(gen));
    } catch (e) {
      S.reg = 'failed';
      S.regInfo = { reason: e.message };
      log('cannot start: ' + e.message, 'error');
      render();
      return;
    }
    S.agent = agent;
    S.transport = 'connecting';
    render();
    await act('connect', () => agent.start());
  }

  async function call(text) {
    const uri = targetUri(text);
    if (!uri || !S.agent) return;
    S.call = 'calling';
    S.direction = 'outgoing';
    const user = uri.replace(/^sips?:/i, '').split('@')[0];
    S.peer = { uri, user, displayName: '' };
    S.muted = false;
    S.transfer = null;
    S.dtmfSent = '';
    S.dtmfPlayed = '';
    S.lastCall = null;
    event('call', { uri });
    log('calling ' + uri);
    render();
    const gen = S.gen;
    if (!await act('call', () => S.agent.call(uri)) && gen === S.gen && S.call === 'calling') {
      S.call = 'idle';
      render();
    }
  }

  function key(k) {
    if (S.call === 'established' && S.agent) {
      S.dtmfSent += k;
      event('dtmf', { tone: k });
      log('DTMF ' + k);
      act('DTMF', () => S.agent.dtmf(k));
    } else if (S.call === 'idle') {
      const input = $('dial-target');
      input.value += k;
    }
  }

  // ------------------------------------------------------------- wiring
  function wire() {
    $('settings-form').addEventListener('submit', (e) => {
      e.preventDefault();
      S.settings = readForm();
      if (!S.settings.server) S.settings.server = defaultServer();
      saveSettings(S.settings);
      log('settings saved');
      connect();
    });
    $('btn-unregister').addEventListener('click', async () => {
      log('unregistering');
      await stopAgent();
      render();
    });
    $('dial-form').addEventListener('submit', (e) => {
      e.preventDefault();
      if (S.call === 'idle') call($('dial-target').value);
    });
    for (const btn of document.querySelectorAll('#dialpad button')) {
      btn.addEventListener('click', () => key(btn.dataset.key));
    }
    // keyboard digits during a call (outside text fields) send DTMF too
    document.addEventListener('keydown', (e) => {
      if (S.call !== 'established' || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.target instanceof HTMLInputElement) return;
      if (/^[0-9*#]$/.test(e.key)) { e.preventDefault(); key(e.key); }
    });
    $('btn-answer').addEventListener('click', () => {
      if (S.call !== 'incoming') return;
      S.call = 'answering';
      tone.stop();
      render();
      act('answer', () => S.agent.answer());
    });
    $('btn-reject').addEventListener('click', () => {
      if (S.call !== 'incoming') return;
      tone.stop();
      log('rejecting with 486 Busy Here');
      act('reject', () => S.agent.reject(486));
    });
    $('btn-hangup').addEventListener('click', () => {
      if (S.call === 'idle' || S.call === 'incoming') return;
      const was = S.call;
      S.call = 'ending';
      tone.stop();
      render();
      event('hangup', { was });
      log(was === 'established' ? 'hanging up' : 'canceling');
      act('hang up', () => S.agent.hangup());
    });
    $('btn-mute').addEventListener('click', () => {
      if (S.call !== 'established') return;
      const m = !S.muted;
      act(m ? 'mute' : 'unmute', async () => {
        await S.agent.setMuted(m);
        S.muted = m;
        event('mute', { muted: m });
        log(m ? 'microphone muted' : 'microphone on');
        render();
      });
    });
    $('transfer-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const uri = targetUri($('transfer-target').value);
      if (!uri || S.call !== 'established') return;
      S.transfer = { state: 'sent', target: uri };
      event('transfer', { state: 'sent', target: uri });
      log('transfer (REFER) to ' + uri);
      render();
      act('transfer', () => S.agent.transfer(uri)).then((ok) => {
        if (!ok && S.transfer && S.transfer.state === 'sent') {
          S.transfer.state = 'failed';
          S.transfer.reason = S.events.filter((x) => x.type === 'error').pop().message;
          render();
        }
      });
    });
    $('btn-clear-log').addEventListener('click', () => { $('log').replaceChildren(); });
    // leaving the page: say goodbye to the registrar
    window.addEventListener('pagehide', () => {
      const a = S.agent;
      if (a && S.call !== 'idle') try { a.hangup(); } catch (e) { /* closing */ }
    });
  }

  function registerServiceWorker() {
    if (!('serviceWorker' in navigator) || !window.isSecureContext) return;
    navigator.serviceWorker.register('phone-sw.js', { scope: './phone-' }).then(
      () => event('sw', { state: 'registered' }),
      (e) => log('service worker: ' + e.message));
  }

  // --------------------------------------------------------- the test hook
  function hook() {
    const copy = (a) => a.map((x) => ({ ...x }));
    window.codebPhone = Object.freeze({
      get lib() { return S.lib; },
      get transport() { return S.transport; },
      get reg() { return S.reg; },
      get regInfo() { return S.regInfo && { ...S.regInfo }; },
      get call() { return S.call; },
      get direction() { return S.direction; },
      get peer() { return S.peer && { ...S.peer }; },
      get muted() { return S.muted; },
      get pc() { return S.pc; },
      get lastCall() { return S.lastCall && { ...S.lastCall }; },
      get transfer() { return S.transfer && { ...S.transfer }; },
      get dtmfSent() { return S.dtmfSent; },
      get dtmfPlayed() { return S.dtmfPlayed; },
      get events() { return copy(S.events); },
      get log() { return [...S.log]; },
      get sip() { return copy(S.sip); },
      get settings() { return S.settings && { ...S.settings, password: S.settings.password ? '***' : '' }; },
    });
  }

  // ----------------------------------------------------------------- start
  // defaults: the page's demo credentials (data-demo-user, data-demo-password
  // on <body>), so that the demo signs in by itself
  function start(engine) {
    const d = document.body.dataset;
    const defaults = { user: d.demoUser || '', password: d.demoPassword || '' };
    S.engine = engine;
    S.lib = engine.lib;
    hook();
    for (const el of document.querySelectorAll('.lib-name')) el.textContent = engine.lib;
    S.settings = loadSettings(defaults);
    fillForm(S.settings);
    wire();
    render();
    registerServiceWorker();
    log(engine.lib + ' ready');
    if (S.settings.autoRegister) connect();
    else $('settings').open = true;
  }

  return { start, targetUri };
})();
