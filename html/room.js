/* CodeB conference page: mesh WebRTC over the /signal.ashx WebSocket
 * (docs/signal.md). Plain JS, no dependencies, no external resources.
 *
 * URL parameters: room (default "random"), name, dial, token, cam=off,
 * relay=1, ws (signaling URL override).
 *
 * Test hook: window.codebRoom (see the bottom of this file).
 */
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- config
  const params = new URLSearchParams(location.search);

  function randomHex(n) {
    const a = new Uint8Array(Math.ceil(n / 2));
    crypto.getRandomValues(a);
    return Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('').slice(0, n);
  }

  function defaultWsUrl() {
    return (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/signal.ashx';
  }

  function signalingUrl(override) {
    if (!override) return defaultWsUrl();
    try {
      const u = new URL(override, location.href);
      if (u.protocol === 'http:') u.protocol = 'ws:';
      if (u.protocol === 'https:') u.protocol = 'wss:';
      if (u.protocol === 'ws:' || u.protocol === 'wss:') return u.href;
    } catch (e) { /* fall through */ }
    return defaultWsUrl();
  }

  const cfg = {
    room: (params.get('room') || '').trim() || 'random',
    name: Array.from((params.get('name') || '').trim()).slice(0, 64).join('') || 'guest-' + randomHex(4),
    dial: (params.get('dial') || '').trim() || null,
    token: params.get('token') || null,
    camOff: params.get('cam') === 'off',
    relay: params.get('relay') === '1',
    wsOverride: params.get('ws'),
  };
  cfg.wsUrl = signalingUrl(cfg.wsOverride);
  // Never hand the sign-in token to a signaling server on another host
  // (a crafted ?ws= link must not be able to collect tokens).
  cfg.tokenAllowed = (() => {
    try { return new URL(cfg.wsUrl).hostname === location.hostname; } catch (e) { return false; }
  })();

  const RECONNECT_MAX_MS = 10000;
  const LOG_MAX = 200;
  const QUEUE_MAX = 2000;
  // Stay below the server's 50 msg/s (burst 100) so trickled candidates are never dropped.
  const SEND_RATE = 40;
  const SEND_BURST = 80;
  const OFFER_WATCHDOG_MS = 8000;

  // ----------------------------------------------------------------- state
  const S = {
    state: 'connecting',      // 'connecting' | 'joined' | 'left' | 'reconnecting'
    peerId: null,
    room: null,
    resumeToken: null,
    iceServers: [],
    lastSeq: 0,
    ws: null,
    joinPending: null,        // null | 'fresh' | 'resume'
    dialed: false,            // the dial went out with a join that got a welcome
    attempts: 0,
    reconnectTimer: null,
    left: false,              // left / kicked / refused: never reconnect
    localStream: null,
    queue: [],                // outgoing frames waiting for the socket or for rate budget
    tokens: SEND_BURST,
    tokensAt: performance.now(),
    pumpTimer: null,
    gen: 0,
  };
  const peers = new Map();    // peerId -> {peerId, name, verifiedIdentity, pc, ...}
  const departed = new Set(); // peers removed; late signals from them are ignored
  const log = [];

  function logEvent(s) {
    log.push(s);
    if (log.length > LOG_MAX) log.splice(0, log.length - LOG_MAX);
  }

  // ------------------------------------------------------------- ui helpers
  function setState(s) {
    S.state = s;
    document.body.dataset.state = s;
    const text = {
      connecting: 'Connecting…',
      joined: 'Connected',
      reconnecting: 'Connection lost — reconnecting…',
      left: 'Not connected',
    }[s];
    setStatus(text, false);
  }

  function setStatus(text, isError) {
    const el = $('status');
    el.textContent = text;
    el.classList.toggle('error', !!isError);
  }

  // Notices with a key replace each other (e.g. one per ring callId).
  function notice(text, key, action) {
    const box = $('notices');
    if (key) dismiss(key);
    const div = document.createElement('div');
    div.className = 'notice';
    div.setAttribute('role', 'alert');
    if (key) div.dataset.key = key;
    const span = document.createElement('span');
    span.textContent = text;
    div.append(span);
    const buttons = document.createElement('span');
    if (action) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = action.label;
      b.addEventListener('click', () => { action.run(); div.remove(); });
      buttons.append(b);
    }
    const x = document.createElement('button');
    x.type = 'button';
    x.textContent = 'Dismiss';
    x.setAttribute('aria-label', 'Dismiss notice');
    x.addEventListener('click', () => div.remove());
    buttons.append(' ', x);
    div.append(buttons);
    box.append(div);
    return div;
  }

  function dismiss(key) {
    for (const n of $('notices').querySelectorAll('.notice')) {
      if (n.dataset.key === key) n.remove();
    }
  }

  function shareUrl() {
    const u = new URL(location.pathname, location.origin);
    u.searchParams.set('room', S.room || cfg.room);
    if (cfg.wsOverride) u.searchParams.set('ws', cfg.wsOverride);
    return u.href;
  }

  // Keep the address bar shareable: real room id, no token, no dial (a reload
  // must not ring the number again).
  function updateUrl() {
    const u = new URL(location.href);
    if (S.room) u.searchParams.set('room', S.room);
    u.searchParams.delete('token');
    if (S.dialed) u.searchParams.delete('dial');
    if (u.href !== location.href) history.replaceState(history.state, '', u.href);
  }

  function showRoom() {
    const link = $('room-link');
    link.textContent = S.room || cfg.room;
    link.href = shareUrl();
    $('btn-copy').disabled = !S.room;
    document.title = (S.room || cfg.room) + ' · CodeB room';
  }

  async function copyLink() {
    const url = shareUrl();
    try {
      await navigator.clipboard.writeText(url);
      setStatus('Room link copied', false);
    } catch (e) {
      // Clipboard API needs a secure context; fall back to a selection copy.
      const r = document.createRange();
      r.selectNodeContents($('room-link'));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      let ok = false;
      try { ok = document.execCommand('copy'); } catch (e2) { /* ignore */ }
      setStatus(ok ? 'Room link copied' : 'Copy the link: ' + url, !ok);
    }
  }

  function initial(name) {
    return (Array.from(name || '?')[0] || '?').toUpperCase();
  }

  function makeTile(p) {
    const tile = document.createElement('div');
    tile.className = 'tile connecting no-video';
    tile.dataset.peerId = p.peerId;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    const ph = document.createElement('div');
    ph.className = 'placeholder';
    ph.setAttribute('aria-hidden', 'true');
    const label = document.createElement('div');
    label.className = 'label';
    const name = document.createElement('span');
    name.className = 'name';
    label.append(name);
    tile.append(video, ph, label);
    $('grid').append(tile);
    p.tile = tile;
    p.video = video;
    renderPeerInfo(p);
    return tile;
  }

  function renderPeerInfo(p) {
    const tile = p.tile;
    if (!tile) return;
    tile.querySelector('.name').textContent = p.name;
    tile.querySelector('.placeholder').textContent = initial(p.name);
    let badge = tile.querySelector('.badge.verified');
    if (p.verifiedIdentity) {
      if (!badge) {
        badge = document.createElement('span');
        badge.className = 'badge verified';
        tile.querySelector('.label').append(badge);
      }
      badge.textContent = p.verifiedIdentity;
      badge.title = 'Verified identity: ' + p.verifiedIdentity;
      tile.setAttribute('aria-label', p.name + ' (verified as ' + p.verifiedIdentity + ')');
    } else {
      if (badge) badge.remove();
      tile.setAttribute('aria-label', p.name);
    }
  }

  function playVideo(video) {
    const pr = video.play();
    if (pr && pr.catch) {
      pr.catch((e) => {
        if (e && e.name === 'NotAllowedError') {
          notice('The browser blocked audio playback.', 'autoplay', {
            label: 'Enable audio',
            run: () => { for (const v of document.querySelectorAll('.tile video')) v.play().catch(() => {}); },
          });
        }
      });
    }
  }

  function renderSelf() {
    const tile = $('self-tile');
    $('self-name').textContent = cfg.name + ' (you)';
    tile.querySelector('.placeholder').textContent = initial(cfg.name);
    const v = $('self-video');
    const stream = S.localStream;
    const vt = stream && stream.getVideoTracks()[0];
    const at = stream && stream.getAudioTracks()[0];
    v.srcObject = vt ? stream : null;
    if (vt) playVideo(v);
    tile.classList.toggle('no-video', !vt || !vt.enabled);
    const mute = $('btn-mute');
    mute.disabled = !at;
    mute.setAttribute('aria-pressed', String(!!at && !at.enabled));
    mute.textContent = at && !at.enabled ? 'Unmute' : 'Mute';
    const cam = $('btn-cam');
    cam.disabled = !vt;
    cam.setAttribute('aria-pressed', String(!!vt && !vt.enabled));
    cam.textContent = vt && !vt.enabled ? 'Camera on' : 'Camera off';
  }

  function toggleTrack(kind) {
    const s = S.localStream;
    const t = s && (kind === 'audio' ? s.getAudioTracks()[0] : s.getVideoTracks()[0]);
    if (!t) return;
    t.enabled = !t.enabled;
    renderSelf();
  }

  function showLeft(title, reason, offerAnonymous) {
    $('left-title').textContent = title;
    $('left-reason').textContent = reason || '';
    const rejoin = $('rejoin-link');
    const u = new URL(location.href);
    u.searchParams.delete('token');
    rejoin.href = u.href;
    const anon = $('anon-link');
    anon.href = u.href;
    anon.hidden = !offerAnonymous;
    $('left-view').hidden = false;
    rejoin.focus();
  }

  // ----------------------------------------------------------------- media
  async function getMedia() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      notice('Camera and microphone are not available here (a secure https page is needed). You joined receive-only.', 'media');
      return null;
    }
    const wantVideo = !cfg.camOff;
    try {
      return await md.getUserMedia({ audio: true, video: wantVideo ? { width: { ideal: 1280 }, height: { ideal: 720 } } : false });
    } catch (e) {
      if (wantVideo) {
        try {
          const s = await md.getUserMedia({ audio: true });
          notice('Camera unavailable (' + e.name + '). You joined with the microphone only.', 'media');
          return s;
        } catch (e2) { /* fall through */ }
      }
      notice('Could not use ' + (wantVideo ? 'camera/microphone' : 'microphone') + ' (' + e.name + '). You joined receive-only.', 'media');
      return null;
    }
  }

  function stopLocalMedia() {
    if (S.localStream) for (const t of S.localStream.getTracks()) t.stop();
    S.localStream = null;
    $('self-video').srcObject = null;
  }

  // -------------------------------------------------------------- sending
  function wsOpen() {
    return S.ws && S.ws.readyState === WebSocket.OPEN;
  }

  function refill() {
    const now = performance.now();
    S.tokens = Math.min(SEND_BURST, S.tokens + ((now - S.tokensAt) / 1000) * SEND_RATE);
    S.tokensAt = now;
  }

  function sendNow(frame) {
    if (!wsOpen()) return false;
    refill();
    S.tokens -= 1;
    S.ws.send(JSON.stringify(frame));
    return true;
  }

  // Relayed frames wait while the socket is down (they go out after a resume)
  // and are paced to the server's rate limit.
  function enqueue(frame) {
    S.queue.push(frame);
    if (S.queue.length > QUEUE_MAX) {
      S.queue.splice(0, S.queue.length - QUEUE_MAX);
      logEvent('send queue overflow');
    }
    pump();
  }

  function pump() {
    if (S.pumpTimer) { clearTimeout(S.pumpTimer); S.pumpTimer = null; }
    if (!wsOpen() || S.state !== 'joined' || S.joinPending) return;
    refill();
    while (S.queue.length && S.tokens >= 1) {
      const f = S.queue.shift();
      sendNow(f);
    }
    if (S.queue.length) S.pumpTimer = setTimeout(pump, 1000 / SEND_RATE + 5);
  }

  function sendSignal(to, data) {
    const what = data.sdp ? data.sdp.type : 'candidate';
    logEvent('tx signal ' + to + ' ' + what);
    enqueue({ type: 'signal', to, data });
  }

  function sendJoin(kind) {
    const f = { type: 'join', room: S.room || cfg.room, name: cfg.name };
    if (kind === 'resume') f.resume = { peerId: S.peerId, resumeToken: S.resumeToken, lastSeq: S.lastSeq };
    if (cfg.dial && !S.dialed) f.dial = cfg.dial;
    if (cfg.token && cfg.tokenAllowed) f.token = cfg.token;
    S.joinPending = kind;
    logEvent('tx join room=' + f.room + (kind === 'resume' ? ' resume lastSeq=' + S.lastSeq : '') + (f.dial ? ' dial=' + f.dial : ''));
    sendNow(f);
  }

  // ------------------------------------------------------------ websocket
  function connect() {
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    let ws;
    try {
      ws = new WebSocket(cfg.wsUrl);
    } catch (e) {
      setStatus('Bad signaling URL: ' + e.message, true);
      scheduleReconnect();
      return;
    }
    S.ws = ws;
    logEvent('ws connecting');
    ws.onopen = () => {
      if (S.ws !== ws) return;
      logEvent('ws open');
      sendJoin(S.peerId && S.resumeToken ? 'resume' : 'fresh');
    };
    ws.onmessage = (ev) => {
      if (S.ws !== ws || typeof ev.data !== 'string') return;
      onFrame(ev.data);
    };
    ws.onclose = (ev) => {
      if (S.ws !== ws) return;
      onClose(ev);
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  function closeSocket(code) {
    const ws = S.ws;
    S.ws = null;
    if (ws) try { ws.close(code || 1000); } catch (e) { /* ignore */ }
  }

  function scheduleReconnect() {
    if (S.left || S.reconnectTimer) return;
    const delay = Math.min(500 * 2 ** S.attempts, RECONNECT_MAX_MS);
    S.attempts += 1;
    logEvent('reconnect in ' + delay + 'ms');
    S.reconnectTimer = setTimeout(() => { S.reconnectTimer = null; if (!S.left) connect(); }, delay);
  }

  function onClose(ev) {
    S.ws = null;
    S.joinPending = null;
    logEvent('ws closed code=' + ev.code);
    if (S.left) return;
    if (ev.code === 4001) {
      kicked('');
      return;
    }
    setState(S.peerId ? 'reconnecting' : 'connecting');
    scheduleReconnect();
  }

  function onFrame(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { logEvent('rx unparsable frame'); return; }
    if (!m || typeof m !== 'object' || typeof m.type !== 'string') return;
    if (Number.isInteger(m.seq) && m.seq > S.lastSeq) S.lastSeq = m.seq;
    switch (m.type) {
      case 'welcome': onWelcome(m); break;
      case 'peer-joined': onPeerJoined(m); break;
      case 'peer-left': onPeerLeft(m); break;
      case 'signal': onSignal(m); break;
      case 'ring': onRing(m); break;
      case 'ring-cleared': onRingCleared(m); break;
      case 'kicked': kicked(typeof m.reason === 'string' ? m.reason : ''); break;
      case 'error': onError(m); break;
      case 'pong': break;
      default: logEvent('rx unknown ' + m.type.slice(0, 32));
    }
  }

  function validPeerId(id) {
    return typeof id === 'string' && id.length > 0 && id.length <= 64;
  }

  function peerInfo(x) {
    return {
      peerId: x.peerId,
      name: typeof x.name === 'string' && x.name ? x.name : x.peerId,
      verifiedIdentity: typeof x.verifiedIdentity === 'string' && x.verifiedIdentity ? x.verifiedIdentity : null,
    };
  }

  function onWelcome(m) {
    if (!validPeerId(m.peerId)) { logEvent('rx welcome without peerId'); return; }
    const resumed = m.resumed === true && S.joinPending === 'resume' && m.peerId === S.peerId;
    logEvent('rx welcome ' + m.peerId + ' room=' + m.room + ' peers=' + (Array.isArray(m.peers) ? m.peers.length : 0) + (resumed ? ' resumed' : ''));
    const sentDial = !!cfg.dial && !S.dialed;
    S.joinPending = null;
    S.attempts = 0;
    if (!resumed) {
      // Fresh start (first join, or the resume was refused as a fresh join).
      teardownPeers();
      departed.clear();
      S.queue = [];
      S.lastSeq = Number.isInteger(m.seq) ? m.seq : 0;
    }
    S.peerId = m.peerId;
    if (typeof m.resumeToken === 'string') S.resumeToken = m.resumeToken;
    else if (!resumed) S.resumeToken = null;
    if (Array.isArray(m.iceServers)) S.iceServers = m.iceServers;
    if (typeof m.room === 'string' && m.room) S.room = m.room;
    else if (!S.room && cfg.room !== 'random') S.room = cfg.room;
    if (sentDial) S.dialed = true;
    setState('joined');
    showRoom();
    updateUrl();

    const list = (Array.isArray(m.peers) ? m.peers : [])
      .filter((x) => x && validPeerId(x.peerId) && x.peerId !== S.peerId)
      .map(peerInfo);
    if (resumed) {
      // Reconcile with who is there now; kept frames replayed after this
      // welcome are handled idempotently.
      const now = new Set(list.map((x) => x.peerId));
      for (const id of [...peers.keys()]) if (!now.has(id)) removePeer(id, 'left while we were away');
      for (const x of list) {
        if (peers.has(x.peerId)) updatePeer(peers.get(x.peerId), x);
        else addPeer(x, false); // a newcomer: its offer is among the kept frames
      }
      for (const p of peers.values()) {
        if (p.pc && p.pc.connectionState === 'failed') restartIce(p);
        if (p.pc) safeSetConfig(p.pc); // fresh TURN credentials
      }
      pump();
    } else {
      // The newcomer offers to everyone already in the room.
      for (const x of list) addPeer(x, true);
    }
  }

  function safeSetConfig(pc) {
    try {
      const c = pc.getConfiguration();
      c.iceServers = S.iceServers;
      pc.setConfiguration(c);
    } catch (e) { /* keep the old TURN credentials */ }
  }

  function onPeerJoined(m) {
    if (!validPeerId(m.peerId) || m.peerId === S.peerId) return;
    logEvent('rx peer-joined ' + m.peerId);
    const x = peerInfo(m);
    if (peers.has(x.peerId)) { updatePeer(peers.get(x.peerId), x); return; }
    departed.delete(x.peerId);
    addPeer(x, false); // wait for the newcomer's offer
  }

  function onPeerLeft(m) {
    if (!validPeerId(m.peerId)) return;
    logEvent('rx peer-left ' + m.peerId + (m.reason ? ' ' + m.reason : ''));
    removePeer(m.peerId, m.reason);
  }

  function onRing(m) {
    logEvent('rx ring ' + m.callId);
    let text = 'Incoming call';
    if (typeof m.number === 'string' && m.number) text += ' to ' + m.number;
    if (typeof m.fromNumber === 'string' && m.fromNumber) text += ' from ' + m.fromNumber;
    text += ' — answer it in the office client.';
    notice(text, 'ring:' + m.callId);
  }

  function onRingCleared(m) {
    logEvent('rx ring-cleared ' + m.callId + ' ' + m.reason);
    dismiss('ring:' + m.callId);
    setStatus('Call ' + (m.reason === 'answered-elsewhere' ? 'answered elsewhere' : 'ended'), false);
  }

  const JOIN_REFUSALS = new Set(['forbidden', 'room_full', 'bad_frame', 'not_joined']);

  function onError(m) {
    const code = typeof m.code === 'string' ? m.code : 'error';
    const msg = typeof m.message === 'string' ? m.message : '';
    logEvent('rx error ' + code);
    setStatus('Error: ' + code + (msg ? ' — ' + msg : ''), true);
    if (!S.joinPending || !JOIN_REFUSALS.has(code)) return;
    const kind = S.joinPending;
    S.joinPending = null;
    if (kind === 'resume' && code === 'forbidden') {
      // The old session is gone: start over as a fresh join on this socket.
      teardownPeers();
      departed.clear();
      S.queue = [];
      S.peerId = null;
      S.resumeToken = null;
      S.lastSeq = 0;
      setState('connecting');
      if (wsOpen()) sendJoin('fresh'); else scheduleReconnect();
      return;
    }
    const reason = {
      forbidden: cfg.token ? 'The sign-in token was not accepted.' : 'The server refused the join.',
      room_full: 'The room is full.',
      bad_frame: 'The room name or display name was not accepted.',
    }[code] || 'The server refused the join.';
    finish('Could not join', reason + (msg ? ' (' + msg + ')' : ''), code === 'forbidden' && !!cfg.token);
  }

  function kicked(reason) {
    logEvent('rx kicked' + (reason ? ' ' + reason : ''));
    if (S.left && S.state === 'left') return;
    finish('You were removed from the room', reason ? 'Reason: ' + reason : '', false);
  }

  // Terminal: no reconnect until the user rejoins.
  function finish(title, reason, offerAnonymous) {
    S.left = true;
    S.gen += 1;
    clearTimeout(S.reconnectTimer);
    S.reconnectTimer = null;
    closeSocket(1000);
    teardownPeers();
    stopLocalMedia();
    S.queue = [];
    S.resumeToken = null;
    setState('left');
    showLeft(title, reason, offerAnonymous);
  }

  function leave() {
    if (S.left) return;
    logEvent('tx leave');
    const ws = S.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      // Frames are processed in order, so this is right even while a join is pending.
      try { ws.send(JSON.stringify({ type: 'leave' })); } catch (e) { /* ignore */ }
      S.ws = null; // the server closes with 1000; ignore that close
      setTimeout(() => { try { ws.close(1000); } catch (e) { /* ignore */ } }, 2000);
    }
    finish('You left', 'You left room ' + (S.room || cfg.room) + '.', false);
  }

  async function start() {
    const gen = ++S.gen;
    S.left = false;
    S.peerId = null;
    S.resumeToken = null;
    S.lastSeq = 0;
    S.attempts = 0;
    S.queue = [];
    departed.clear();
    $('left-view').hidden = true;
    setState('connecting');
    showRoom();
    renderSelf();
    const stream = await getMedia();
    if (gen !== S.gen || S.left) {
      if (stream) for (const t of stream.getTracks()) t.stop();
      return;
    }
    S.localStream = stream;
    renderSelf();
    connect();
  }

  function rejoin() {
    if (!S.left) return;
    dismiss('media');
    start();
  }

  // ------------------------------------------------------------------ peers
  function addPeer(x, initiator) {
    const p = {
      peerId: x.peerId,
      name: x.name,
      verifiedIdentity: x.verifiedIdentity,
      pc: null,
      polite: S.peerId > x.peerId,
      makingOffer: false,
      ignoreOffer: false,
      tracksAdded: false,
      pendingCandidates: [],
      chain: Promise.resolve(),
      stream: new MediaStream(),
      tile: null,
      video: null,
      watchdog: null,
    };
    peers.set(p.peerId, p);
    makeTile(p);
    createPc(p);
    if (initiator) {
      addLocalTracks(p, true);
    } else {
      // Should the newcomer's offer never arrive, negotiate from this side
      // (perfect negotiation makes a late collision harmless).
      p.watchdog = setTimeout(() => {
        p.watchdog = null;
        if (peers.get(p.peerId) === p && p.pc && !p.tracksAdded && !p.pc.remoteDescription) {
          logEvent('no offer from ' + p.peerId + ', offering');
          addLocalTracks(p, true);
        }
      }, OFFER_WATCHDOG_MS);
    }
    return p;
  }

  function updatePeer(p, x) {
    p.name = x.name;
    p.verifiedIdentity = x.verifiedIdentity;
    renderPeerInfo(p);
  }

  function createPc(p) {
    const conf = { iceServers: S.iceServers, iceTransportPolicy: cfg.relay ? 'relay' : 'all' };
    let pc;
    try {
      pc = new RTCPeerConnection(conf);
    } catch (e) {
      setStatus('Bad ICE server list from the server (' + e.message + ')', true);
      pc = new RTCPeerConnection({ iceServers: [], iceTransportPolicy: conf.iceTransportPolicy });
    }
    p.pc = pc;
    pc.onicecandidate = (ev) => {
      if (p.pc !== pc) return;
      const c = ev.candidate;
      if (c && c.candidate) sendSignal(p.peerId, { candidate: c.toJSON() });
    };
    pc.ontrack = (ev) => {
      if (p.pc !== pc) return;
      const t = ev.track;
      if (!p.stream.getTracks().includes(t)) p.stream.addTrack(t);
      t.addEventListener('ended', () => { p.stream.removeTrack(t); updateVideoFlag(p); });
      t.addEventListener('unmute', () => updateVideoFlag(p));
      t.addEventListener('mute', () => updateVideoFlag(p));
      if (p.video.srcObject !== p.stream) p.video.srcObject = p.stream;
      updateVideoFlag(p);
      playVideo(p.video);
    };
    pc.onnegotiationneeded = async () => {
      if (p.pc !== pc) return;
      try {
        p.makingOffer = true;
        await pc.setLocalDescription();
        if (p.pc === pc && pc.localDescription) sendSignal(p.peerId, { sdp: pc.localDescription.toJSON() });
      } catch (e) {
        logEvent('offer failed ' + p.peerId + ': ' + e.name);
      } finally {
        p.makingOffer = false;
      }
    };
    pc.onconnectionstatechange = () => {
      if (p.pc !== pc) return;
      const st = pc.connectionState;
      logEvent('pc ' + p.peerId + ' ' + st);
      p.tile.classList.toggle('connecting', st === 'new' || st === 'connecting');
      p.tile.classList.toggle('failed', st === 'failed');
      if (st === 'failed') restartIce(p);
    };
    return pc;
  }

  function updateVideoFlag(p) {
    const live = p.stream.getVideoTracks().some((t) => t.readyState === 'live' && !t.muted);
    p.tile.classList.toggle('no-video', !live);
  }

  function restartIce(p) {
    if (S.state !== 'joined' || !p.pc || p.pc.signalingState === 'closed') return;
    logEvent('ice restart ' + p.peerId);
    try { p.pc.restartIce(); } catch (e) { /* ignore */ }
  }

  // Offerer side adds receive-only transceivers for kinds it does not send,
  // so a cam=off or receive-only peer still gets the others' media.
  function addLocalTracks(p, offerer) {
    if (p.tracksAdded || !p.pc) return;
    p.tracksAdded = true;
    const s = S.localStream;
    const kinds = new Set();
    if (s) {
      for (const t of s.getTracks()) {
        p.pc.addTrack(t, s);
        kinds.add(t.kind);
      }
    }
    if (offerer) {
      for (const k of ['audio', 'video']) if (!kinds.has(k)) p.pc.addTransceiver(k, { direction: 'recvonly' });
    }
  }

  function removePeer(id, reason) {
    const p = peers.get(id);
    departed.add(id);
    if (!p) return;
    peers.delete(id);
    closePeer(p);
  }

  function closePeer(p) {
    clearTimeout(p.watchdog);
    const pc = p.pc;
    p.pc = null;
    if (pc) try { pc.close(); } catch (e) { /* ignore */ }
    if (p.video) p.video.srcObject = null;
    if (p.tile) p.tile.remove();
  }

  function teardownPeers() {
    for (const p of peers.values()) closePeer(p);
    peers.clear();
  }

  function onSignal(m) {
    const from = m.from;
    const data = m.data;
    if (!validPeerId(from) || from === S.peerId || !data || typeof data !== 'object') return;
    let p = peers.get(from);
    const sdp = data.sdp && typeof data.sdp === 'object' ? data.sdp : null;
    logEvent('rx signal ' + from + ' ' + (sdp ? sdp.type : 'candidate'));
    if (!p) {
      // An offer from a peer we have not heard of (its peer-joined was lost):
      // accept it. Anything else from unknown or departed peers is stale.
      if (departed.has(from) || !sdp || sdp.type !== 'offer') return;
      p = addPeer({ peerId: from, name: from, verifiedIdentity: null }, false);
    }
    p.chain = p.chain
      .then(() => handleSignal(p, data, sdp))
      .catch((e) => logEvent('signal from ' + from + ' failed: ' + (e && e.name)));
  }

  async function handleSignal(p, data, sdp) {
    const pc = p.pc;
    if (!pc || pc.signalingState === 'closed' || peers.get(p.peerId) !== p) return;
    if (sdp) {
      if ((sdp.type !== 'offer' && sdp.type !== 'answer') || typeof sdp.sdp !== 'string') return;
      const collision = sdp.type === 'offer' && (p.makingOffer || pc.signalingState !== 'stable');
      p.ignoreOffer = !p.polite && collision;
      if (p.ignoreOffer) { logEvent('glare: ignored offer from ' + p.peerId); return; }
      if (sdp.type === 'answer' && pc.signalingState !== 'have-local-offer') {
        logEvent('stray answer from ' + p.peerId);
        return;
      }
      await pc.setRemoteDescription({ type: sdp.type, sdp: sdp.sdp });
      clearTimeout(p.watchdog);
      for (const c of p.pendingCandidates.splice(0)) {
        try { await pc.addIceCandidate(c); } catch (e) { /* stale candidate */ }
      }
      if (sdp.type === 'offer') {
        addLocalTracks(p, false);
        await pc.setLocalDescription();
        sendSignal(p.peerId, { sdp: pc.localDescription.toJSON() });
      }
    } else if ('candidate' in data) {
      const c = data.candidate;
      if (!c || typeof c !== 'object' || !c.candidate) return; // end of candidates
      if (!pc.remoteDescription) {
        if (p.pendingCandidates.length < 200) p.pendingCandidates.push(c);
        return;
      }
      try {
        await pc.addIceCandidate(c);
      } catch (e) {
        if (!p.ignoreOffer) logEvent('bad candidate from ' + p.peerId);
      }
    }
  }

  // ------------------------------------------------------------------ wiring
  $('btn-mute').addEventListener('click', () => toggleTrack('audio'));
  $('btn-cam').addEventListener('click', () => toggleTrack('video'));
  $('btn-leave').addEventListener('click', leave);
  $('btn-copy').addEventListener('click', copyLink);
  $('rejoin-link').addEventListener('click', (ev) => {
    // Rejoin in place so an in-memory sign-in token is kept.
    ev.preventDefault();
    rejoin();
  });
  window.addEventListener('pagehide', () => {
    // Tell the room right away instead of leaving a ghost for the grace period.
    if (!S.left && wsOpen()) {
      try { S.ws.send(JSON.stringify({ type: 'leave' })); } catch (e) { /* ignore */ }
      S.left = true;
    }
  });
  window.addEventListener('online', () => {
    if (!S.left && !S.ws && S.reconnectTimer) { S.attempts = 0; connect(); }
  });

  // The token stays in memory only; keep it out of the address bar.
  updateUrl();

  window.codebRoom = Object.freeze({
    get peerId() { return S.peerId; },
    get room() { return S.room; },
    peers,
    get state() { return S.state; },
    get lastSeq() { return S.lastSeq; },
    log,
    get localStream() { return S.localStream; },
    leave,
    rejoin,
  });

  start();
})();
