#!/usr/bin/env node
// The reference relay for bench/signal.sh: what a hand-rolled WebRTC
// signaling server usually is -- one Node process, the `ws` package,
// rooms in a Map, every frame JSON.parse'd and the answer JSON.stringify'd.
//
// It speaks the subset of docs/signal.md the benchmark uses, with the same
// frame shapes as /signal.ashx:
//   join   -> welcome {peerId, room, peers:[{peerId,name}], ...} (no seq)
//             peer-joined {peerId, name, seq} to the others
//   signal -> {type:"signal", from, data, seq} to `to` (same room only)
//   leave  -> peer-left {peerId, reason:"left", seq} to the others, close 1000
//   ping   -> pong {seq}
//   close  -> peer-left {peerId, reason:"closed", seq} to the others
// Errors: not_joined, already_joined, bad_frame, unknown_peer, room_full.
// Keepalive: the usual ws heartbeat (ping every 25 s, terminate if silent).
//
// No resume, no shared state, no rate limit: it is the simple baseline.
//
//   node bench/ref-relay.js [port]     (listens on 127.0.0.1 only)
'use strict';

const crypto = require('crypto');
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const PORT = Number(process.argv[2] || process.env.PORT || 18490);
const ROOM_SIZE = 16;
const PING_INTERVAL = 25;           // s
const PING_TIMEOUT = 60;            // s
const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;

const rooms = new Map();            // room -> Map(peerId -> peer)

const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: PORT,
    path: '/signal.ashx',
    maxPayload: 65536,
    perMessageDeflate: false,
});

function send(peer, obj) {
    obj.seq = ++peer.seq;
    peer.ws.send(JSON.stringify(obj));
}

function error(peer, code, message) {
    const f = { type: 'error', code, message };
    if (peer.id) {
        send(peer, f);
    } else {
        peer.ws.send(JSON.stringify(f));
    }
}

function part(peer, reason) {
    const room = rooms.get(peer.room);
    if (!room) return;
    room.delete(peer.id);
    if (room.size === 0) {
        rooms.delete(peer.room);
        return;
    }
    for (const other of room.values()) {
        send(other, { type: 'peer-left', peerId: peer.id, reason });
    }
}

wss.on('connection', (ws) => {
    const peer = { ws, id: null, room: null, name: null, seq: 0, alive: true };

    ws.on('pong', () => { peer.alive = true; });

    ws.on('message', (buf, isBinary) => {
        peer.alive = true;
        let m;
        try {
            m = JSON.parse(isBinary ? buf : buf.toString());
        } catch (e) {
            return error(peer, 'bad_frame', 'invalid JSON');
        }
        if (m === null || typeof m !== 'object' || Array.isArray(m)) {
            return error(peer, 'bad_frame', 'not an object');
        }

        switch (m.type) {
        case 'join': {
            if (peer.id) return error(peer, 'already_joined', 'already joined');
            if (typeof m.room !== 'string' || !ROOM_RE.test(m.room)
                || typeof m.name !== 'string' || m.name.length < 1 || m.name.length > 64) {
                return error(peer, 'bad_frame', 'bad room or name');
            }
            let room = rooms.get(m.room);
            if (room && room.size >= ROOM_SIZE) return error(peer, 'room_full', 'room is full');
            if (!room) {
                room = new Map();
                rooms.set(m.room, room);
            }
            peer.id = 'p_' + crypto.randomBytes(8).toString('hex');
            peer.room = m.room;
            peer.name = m.name;
            const peers = [];
            for (const other of room.values()) peers.push({ peerId: other.id, name: other.name });
            ws.send(JSON.stringify({
                type: 'welcome', peerId: peer.id, room: m.room, peers, iceServers: [],
                pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT,
            }));
            for (const other of room.values()) {
                send(other, { type: 'peer-joined', peerId: peer.id, name: peer.name });
            }
            room.set(peer.id, peer);
            return;
        }
        case 'signal': {
            if (!peer.id) return error(peer, 'not_joined', 'join first');
            if (typeof m.to !== 'string' || !('data' in m)) {
                return error(peer, 'bad_frame', 'signal needs "to" and "data"');
            }
            const to = rooms.get(peer.room).get(m.to);
            if (!to) return error(peer, 'unknown_peer', 'no such peer');
            send(to, { type: 'signal', from: peer.id, data: m.data });
            return;
        }
        case 'ping':
            if (!peer.id) return error(peer, 'not_joined', 'join first');
            return send(peer, { type: 'pong' });
        case 'leave':
            if (!peer.id) return error(peer, 'not_joined', 'join first');
            part(peer, 'left');
            peer.id = null;
            ws.close(1000);
            return;
        default:
            return error(peer, peer.id ? 'bad_frame' : 'not_joined', 'unknown type');
        }
    });

    ws.on('close', () => {
        if (peer.id) part(peer, 'closed');
        peer.id = null;
    });
    ws.on('error', () => {});
    ws.peer = peer;
});

// the usual ws heartbeat
const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
        if (!ws.peer.alive) {
            ws.terminate();
            continue;
        }
        ws.peer.alive = false;
        ws.ping();
    }
}, PING_INTERVAL * 1000);

wss.on('listening', () => {
    process.stdout.write(`ref-relay listening on 127.0.0.1:${PORT} pid ${process.pid}\n`);
});

function stop() {
    clearInterval(heartbeat);
    for (const ws of wss.clients) ws.terminate();
    wss.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
