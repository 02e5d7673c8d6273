/* CodeB softphone, JsSIP engine (phone-jssip.html): JsSIP's event-driven
 * API (UA, RTCSession) behind the contract of phone-ui.js.  JsSIP comes
 * from vendor/jssip.min.js, bundled by build.sh from npm.
 *
 * Choices: DTMF as RFC 4733 RTP events (transportType RFC2833, through the
 * media server), not SIP INFO; reject answers 486 Busy Here; a blind
 * transfer is a REFER whose answer is shown as it comes (a failure is a
 * failure); the SIP messages go to the page's log through a WebSocket
 * interface that traces what it sends and receives.
 */
'use strict';
(() => {
  const C = JsSIP.C;

  // JsSIP's WebSocket interface, tracing every message it carries.
  class TracingSocket extends JsSIP.WebSocketInterface {
    constructor(url, trace) {
      super(url);
      this.trace = trace;
    }

    send(message) {
      const ok = super.send(message);
      if (ok) this.trace('out', message);
      return ok;
    }

    _onMessage(e) {
      const d = e.data;
      this.trace('in', typeof d === 'string' ? d : new TextDecoder().decode(d));
      super._onMessage(e);
    }
  }

  function party(nameAddr) {
    if (!nameAddr) return { uri: '', user: '', displayName: '' };
    const uri = nameAddr.uri;
    return { uri: uri ? uri.toString() : '', user: uri ? uri.user : '', displayName: nameAddr.display_name || '' };
  }

  function status(msg) {
    return msg && msg.status_code ? { code: msg.status_code, reason: msg.reason_phrase || '' } : {};
  }

  function create(cfg, ev) {
    const socket = new TracingSocket(cfg.server, ev.sip);
    const ua = new JsSIP.UA({
      sockets: [socket],
      uri: 'sip:' + cfg.user + '@' + cfg.domain,
      authorization_user: cfg.user,
      password: cfg.password,
      display_name: cfg.displayName,
      register: true,             // on every connect
      register_expires: 300,
      user_agent: 'CodeB phone (JsSIP ' + JsSIP.version + ')',
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 30,
    });
    let session = null;
    let refer = null;

    ua.on('connecting', () => ev.transport('connecting'));
    ua.on('connected', () => ev.transport('connected'));
    ua.on('disconnected', (e) => ev.transport('disconnected', e && e.code ? { code: e.code } : {}));
    ua.on('registered', () => ev.registration('registered'));
    ua.on('unregistered', (e) => ev.registration('unregistered', status(e && e.response)));
    ua.on('registrationFailed', (e) => ev.registration('failed', { ...status(e.response), reason: (e.response && e.response.reason_phrase) || e.cause }));

    // the session's pc: remote audio to the page's <audio>, and to the hook
    function attachPc(pc) {
      ev.pc(pc);
      pc.addEventListener('track', (e) => {
        if (e.track.kind !== 'audio') return;
        cfg.remoteAudio.srcObject = e.streams[0] || new MediaStream([e.track]);
        cfg.remoteAudio.play().catch(() => {});
      });
    }

    // JsSIP's end of a session -> the page's outcome
    function ended(s, e, failed) {
      if (s !== session) return;
      session = null;
      refer = null;
      cfg.remoteAudio.srcObject = null;
      const by = e.originator === 'local' ? 'local' : 'remote';
      const st = status(e.message && e.message.status_code ? e.message : null);
      let outcome;
      if (!failed) outcome = 'ended';
      else if (e.cause === C.causes.CANCELED) outcome = 'canceled';
      else if (e.cause === C.causes.REJECTED || e.cause === C.causes.BUSY) outcome = 'rejected';
      else outcome = 'failed';
      ev.ended({ outcome, by, code: st.code, reason: st.reason || e.cause });
    }

    function handlers(s) {
      return {
        peerconnection: (e) => attachPc(e.peerconnection),
        progress: (e) => {
          if (e.originator === 'remote') ev.outgoing('ringing', status(e.response));
        },
        confirmed: () => ev.established(),
        ended: (e) => ended(s, e, false),
        failed: (e) => ended(s, e, true),
      };
    }

    ua.on('newRTCSession', (e) => {
      const s = e.session;
      if (e.originator === 'local') return; // call() below attached its handlers
      if (session) {
        // one call at a time
        s.terminate({ status_code: 486, reason_phrase: 'Busy Here' });
        ev.log('second incoming call refused with 486 Busy Here');
        return;
      }
      session = s;
      for (const [name, fn] of Object.entries(handlers(s))) s.on(name, fn);
      ev.incoming(party(s.remote_identity));
    });

    return {
      start() { ua.start(); },
      // un-REGISTER, then close the WebSocket (JsSIP waits for the answer)
      stop() {
        return new Promise((resolve) => {
          ua.once('disconnected', resolve);
          ua.stop();
          if (!ua.isConnected()) resolve();
        });
      },
      call(uri) {
        let s = null;
        const h = {};
        // handlers bound to the session once call() has returned it; the
        // pc is made inside call(), before that
        for (const [name] of Object.entries(handlers(null))) h[name] = (e) => handlers(s)[name](e);
        h.peerconnection = (e) => attachPc(e.peerconnection);
        s = ua.call(uri, {
          eventHandlers: h,
          mediaConstraints: { audio: true, video: false },
          pcConfig: { iceServers: cfg.iceServers },
          rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
        });
        session = s;
      },
      answer() {
        if (!session) throw new Error('no call to answer');
        // rtcOfferConstraints: an INVITE without an offer (a transfer's,
        // RFC 3261 13.2.1) gets ours in the 200; JsSIP asks for no
        // microphone without them
        session.answer({
          mediaConstraints: { audio: true, video: false },
          pcConfig: { iceServers: cfg.iceServers },
          rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
        });
      },
      reject(code) {
        if (!session) throw new Error('no call to reject');
        session.terminate({ status_code: code, reason_phrase: code === 486 ? 'Busy Here' : undefined });
      },
      hangup() {
        if (!session) throw new Error('no call');
        session.terminate();
      },
      setMuted(m) {
        if (!session) throw new Error('no call');
        if (m) session.mute({ audio: true }); else session.unmute({ audio: true });
      },
      dtmf(tone) {
        if (!session) throw new Error('no call');
        session.sendDTMF(tone, { transportType: C.DTMF_TRANSPORT.RFC2833, duration: 120, interToneGap: 70 });
      },
      transfer(uri) {
        if (!session) throw new Error('no call');
        const s = session;
        refer = s.refer(uri, {
          eventHandlers: {
            requestSucceeded: (e) => ev.transfer('accepted', status(e.response)),
            requestFailed: (e) => ev.transfer('failed', { ...status(e.response), reason: (e.response && e.response.reason_phrase) || e.cause }),
            accepted: (e) => {
              ev.transfer('completed', { code: e.status_line.status_code, reason: e.status_line.reason_phrase });
              // the transferee has the call now: leave it
              if (s === session) s.terminate();
            },
            failed: (e) => ev.transfer('failed', { code: e.status_line.status_code, reason: e.status_line.reason_phrase }),
          },
        });
        if (!refer) throw new Error('the call cannot be transferred in its state');
      },
    };
  }

  CodebPhone.start({ key: 'jssip', lib: 'JsSIP ' + JsSIP.version, create });
})();
