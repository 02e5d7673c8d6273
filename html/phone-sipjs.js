/* CodeB softphone, SIP.js engine (phone-sipjs.html): SIP.js's simple API
 * behind the contract of phone-ui.js.  SIP.js comes from vendor/sip.min.js,
 * bundled by build.sh from npm.
 *
 * The simple API is SIP.Web.SessionManager, the class SimpleUser is a
 * one-call wrapper of: the same options and delegate, plus what SimpleUser
 * keeps to itself and a phone needs, each call's Session (its remote
 * identity, reject with a status code, RFC 4733 DTMF through the session
 * description handler, REFER for a blind transfer, the RTCPeerConnection).
 *
 * Choices: DTMF as RFC 4733 RTP events (sendDTMFUsingSessionDescriptionHandler),
 * not SIP INFO; reject answers 486 Busy Here; iceServers [] (SIP.js would
 * otherwise ask a public STUN server); the SIP messages reach the page's
 * log through SIP.js's traceSip and log connector.
 */
'use strict';
(() => {
  const { SessionState } = SIP;

  function party(session) {
    const id = session.remoteIdentity;
    return { uri: id.uri.toString(), user: id.uri.user || '', displayName: id.displayName || '' };
  }

  function status(response) {
    const m = response && response.message;
    return m ? { code: m.statusCode, reason: m.reasonPhrase || '' } : {};
  }

  function create(cfg, ev) {
    let session = null;    // the page's one call
    let outcome = null;    // what ended it, when known before Terminated
    let regFailed = false;
    let stopped = false;   // stop() was called
    let retry = null;      // the timer of the next connect attempt

    // SIP.js logs: traceSip's messages to the SIP trace, warnings and errors to the log
    const TRACE = /^(Sending WebSocket message|Received WebSocket (?:text|binary) message):\n\n/;
    function logConnector(level, category, label, content) {
      const m = TRACE.exec(content);
      if (m) {
        ev.sip(m[1].startsWith('Sending') ? 'out' : 'in', content.slice(m[0].length).replace(/\n$/, ''));
      } else if (level === 'error' || level === 'warn') {
        ev.log('SIP.js ' + level + ': ' + content);
      }
    }

    const sm = new SIP.Web.SessionManager(cfg.server, {
      aor: 'sip:' + cfg.user + '@' + cfg.domain,
      maxSimultaneousSessions: 1,
      media: { constraints: { audio: true, video: false }, remote: { audio: cfg.remoteAudio } },
      sendDTMFUsingSessionDescriptionHandler: true,
      reconnectionAttempts: 5,
      reconnectionDelay: 4,
      registererOptions: { expires: 300 },
      registererRegisterOptions: {
        requestDelegate: {
          onReject(response) {
            regFailed = true;
            const st = status(response);
            ev.registration('failed', st);
            // a refused password or user is not fixed by retrying: stop
            // until the settings change; other failures are retried
            if ([401, 403, 404, 407].includes(st.code)) sm.disconnect().catch(() => {});
          },
          onAccept() { regFailed = false; },
        },
      },
      userAgentOptions: {
        authorizationUsername: cfg.user,
        authorizationPassword: cfg.password,
        displayName: cfg.displayName,
        userAgentString: 'CodeB phone (SIP.js ' + SIP.version + ')',
        logBuiltinEnabled: false,
        logLevel: 'log',
        logConnector,
        transportOptions: { server: cfg.server, traceSip: true },
        sessionDescriptionHandlerFactoryOptions: {
          peerConnectionConfiguration: { iceServers: cfg.iceServers },
        },
      },
      delegate: {
        onServerConnect: () => ev.transport('connected'),
        onServerDisconnect: (error) => ev.transport('disconnected', error ? { reason: error.message } : {}),
        onRegistered: () => ev.registration('registered'),
        onUnregistered: () => { if (!regFailed) ev.registration('unregistered'); },
        onCallCreated: (s) => { if (s instanceof SIP.Inviter) track(s); },
        onCallReceived: (invitation) => {
          if (session) {
            invitation.reject({ statusCode: 486 }).catch(() => {});
            ev.log('second incoming call refused with 486 Busy Here');
            return;
          }
          track(invitation);
          ev.incoming(party(invitation));
        },
        onCallAnswered: (s) => { if (s === session) ev.established(); },
        onCallHangup: (s) => {
          if (s !== session) return;
          session = null;
          // an Inviter ends before its request delegate hears the final
          // response (onReject below): judge once that has run
          queueMicrotask(() => {
            const o = outcome || { outcome: 'ended', by: 'remote' };
            outcome = null;
            ev.ended(o);
          });
        },
      },
    });

    // one call's session: its pc (for the page and the test hook), how it ends
    function track(s) {
      session = s;
      outcome = null;
      s.delegate = s.delegate || {};
      s.delegate.onSessionDescriptionHandler = (sdh) => {
        if (sdh.peerConnection) ev.pc(sdh.peerConnection);
      };
      s.delegate.onBye = (bye) => {
        outcome = { outcome: 'ended', by: 'remote' };
        bye.accept().catch(() => {});
      };
      s.delegate.onCancel = () => {
        outcome = { outcome: 'canceled', by: 'remote' };
      };
    }

    return {
      // SessionManager registers once connected, and again after it has
      // reconnected a lost WebSocket; a first connect that fails is tried
      // again here (2, 4, 8 ... 30 s), as JsSIP does by itself
      async start() {
        regFailed = false;
        sm.register().catch((e) => ev.log('register: ' + e.message)); // sent once connected
        for (let delay = 2000; !stopped; delay = Math.min(delay * 2, 30000)) {
          ev.transport('connecting');
          try {
            await sm.connect();
            return;
          } catch (e) {
            if (stopped) return;
            ev.transport('disconnected', { reason: e.message });
            ev.log('connecting again in ' + delay / 1000 + ' s');
            await new Promise((r) => { retry = setTimeout(r, delay); });
          }
        }
      },
      // the UserAgent's stop un-REGISTERs, then closes the WebSocket
      stop() {
        stopped = true;
        clearTimeout(retry);
        return sm.disconnect();
      },
      async call(uri) {
        // the Inviter is tracked by onCallCreated, before its INVITE goes
        await sm.call(uri, undefined, {
          requestDelegate: {
            onProgress: (r) => { if (r.message.statusCode >= 180) ev.outgoing('ringing', status(r)); },
            onReject: (r) => {
              const st = status(r);
              outcome = {
                outcome: st.code === 487 ? 'canceled' : (st.code === 486 || st.code === 600 || st.code === 603) ? 'rejected' : 'failed',
                by: st.code === 487 ? 'local' : 'remote',
                ...st,
              };
            },
          },
        });
      },
      answer() {
        if (!session) throw new Error('no call to answer');
        return sm.answer(session);
      },
      reject(code) {
        if (!session) throw new Error('no call to reject');
        outcome = { outcome: 'rejected', by: 'local', code };
        return session.reject({ statusCode: code });
      },
      hangup() {
        if (!session) throw new Error('no call');
        if (!outcome) outcome = { outcome: session.state === SessionState.Established ? 'ended' : 'canceled', by: 'local' };
        return sm.hangup(session);
      },
      setMuted(m) {
        if (!session) throw new Error('no call');
        if (m) sm.mute(session); else sm.unmute(session);
      },
      dtmf(tone) {
        if (!session) throw new Error('no call');
        return sm.sendDTMF(session, tone);
      },
      transfer(uri) {
        if (!session) throw new Error('no call');
        const s = session;
        return sm.transfer(s, uri, {
          requestDelegate: {
            onAccept: (r) => ev.transfer('accepted', status(r)),
            onReject: (r) => ev.transfer('failed', status(r)),
          },
          onNotify: (notification) => {
            notification.accept().catch(() => {});
            const line = (notification.request.body || '').trim().split('\r\n', 1)[0];
            const m = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(line);
            if (!m) return;
            const code = Number(m[1]);
            if (code >= 200 && code < 300) {
              ev.transfer('completed', { code, reason: m[2] });
              // the transferee has the call now: leave it
              if (s === session) this.hangup();
            } else if (code >= 300) {
              ev.transfer('failed', { code, reason: m[2] });
            }
          },
        });
      },
    };
  }

  CodebPhone.start({ key: 'sipjs', lib: 'SIP.js ' + SIP.version, create });
})();
