/*
 * The relay: RTP (RFC 3550) and RTCP from a leg's endpoint go out of the
 * peer stream to the other endpoint.  A datagram is STUN, DTLS or
 * (S)RTP/(S)RTCP by its first byte (RFC 7983).  Without ICE, sources are
 * latched (the first packet's address replaces the SDP's, for NAT) and
 * then enforced; with ICE, only the pair a valid check chose carries
 * media.  Payloads are passed through or transcoded; every packet out
 * gets the direction's SSRC, sequence number and timestamp (see
 * md_rewrite_t).  No allocation per packet.
 */

#include "media.h"
#include "rtp.h"
#include "stun.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>


#define MD_RTP_BATCH    64       /* datagrams per wakeup and socket */
#define MD_RTP_CONCEAL  3        /* packets lost in a row that Opus
                                    concealment fills; more: a gap */


static void md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
static void md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
static void md_stun_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
static int md_source_ok(md_stream_t *s, struct sockaddr_in *from, int rtcp);
static void md_rtp_send(md_stream_t *peer, int pt, size_t len, uint16_t seq,
    uint32_t ts, int marker);
static void md_tc_send(md_stream_t *s, md_stream_t *peer, int len);


static _Thread_local uint8_t  md_rtp_in[MD_MAX_PACKET];
static _Thread_local uint8_t  md_rtp_out[MD_MAX_PACKET];


static int
md_same_addr(struct sockaddr_in *a, struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr
           && a->sin_port == b->sin_port;
}


static void
md_read(md_io_t *io, int rtcp)
{
    int                 i, rtcp_pkt;
    size_t              len;
    ssize_t             n;
    socklen_t           slen;
    md_stream_t        *s;
    struct sockaddr_in  from;

    s = io->data;

    for (i = 0; i < MD_RTP_BATCH; i++) {
        slen = sizeof(from);
        n = recvfrom(io->fd, md_rtp_in, sizeof(md_rtp_in), 0,
                     (struct sockaddr *) &from, &slen);

        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                md_log(MD_LOG_DEBUG, "recvfrom port %u: %s", s->port,
                       strerror(errno));
            }
            return;
        }

        if (from.sin_family != AF_INET || n < 4) {
            s->in.errors++;
            continue;
        }

        /* RFC 7983 §7: 0-3 STUN, 20-63 DTLS, 128-191 RTP and RTCP */

        if (md_rtp_in[0] < 4) {
            md_stun_packet(s, md_rtp_in, (size_t) n, &from);
            continue;
        }

        if (md_rtp_in[0] >= 20 && md_rtp_in[0] <= 63) {
            if (s->dtls && (!s->ice || s->latched)
                && (!s->latched || md_same_addr(&from, &s->remote)))
            {
                if (!s->has_remote) {
                    s->remote = from;
                    s->has_remote = 1;
                }

                md_dtls_input(s->dtls, md_rtp_in, (size_t) n);

            } else {
                s->in.errors++;
            }
            continue;
        }

        /* RFC 5761 §4: RTCP packet types 200-207 on a muxed port */

        rtcp_pkt = rtcp || (n >= 8 && md_rtp_in[1] >= 200
                            && md_rtp_in[1] <= 207);
        len = (size_t) n;

        if (s->dtls) {
            if (!md_source_ok(s, &from, rtcp_pkt)
                || md_srtp_unprotect(s->dtls, md_rtp_in, &len, rtcp_pkt) != 0)
            {
                s->in.errors++;
                continue;
            }
        }

        if (rtcp_pkt) {
            md_rtcp_packet(s, md_rtp_in, len, &from);

        } else {
            md_rtp_packet(s, md_rtp_in, len, &from);
        }
    }
}


/*
 * ICE-Lite (RFC 8445 §7.3): answer checks; the pair of a valid check
 * carries media, the one nominated with USE-CANDIDATE wins.  The DTLS
 * client starts once a pair is known.
 */
static void
md_stun_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    size_t         len;
    md_stun_req_t  req;

    if (!s->ice || !md_stun_is(p, n)) {
        s->in.errors++;
        return;
    }

    memset(&req, 0, sizeof(req));

    len = md_stun_answer(p, n, from, s->ice_ufrag, s->ice_pwd,
                         s->remote_ufrag, md_rtp_out, sizeof(md_rtp_out),
                         &req);

    if (len) {
        (void) sendto(s->rtp.fd, md_rtp_out, len, 0,
                      (struct sockaddr *) from, sizeof(*from));
    }

    if (!req.valid) {
        return;
    }

    s->last_in = md_now();

    if (!s->ice_selected || (req.use_candidate
                             && !md_same_addr(from, &s->remote)))
    {
        md_log(MD_LOG_INFO, "[%s] stream %d of %s: ICE pair %s:%u%s",
               s->call->id, s->index, s->leg->tag,
               inet_ntoa(from->sin_addr), ntohs(from->sin_port),
               req.use_candidate ? " nominated" : "");

        s->remote = *from;
        s->remote_rtcp = *from;
        s->has_remote = 1;
        s->latched = 1;
        s->ice_selected = 1;
    }

    if (s->dtls && !s->dtls_started) {
        s->dtls_started = 1;
        md_dtls_start(s->dtls);
    }
}


void
md_rtp_read(md_io_t *io)
{
    md_read(io, 0);
}


void
md_rtcp_read(md_io_t *io)
{
    md_read(io, 1);
}


/*
 * 1 when from may send on s: the latched address, or the first source
 * (latching), unless strict-source keeps to the SDP's address
 */
static int
md_source_ok(md_stream_t *s, struct sockaddr_in *from, int rtcp)
{
    struct sockaddr_in  *known;

    known = (rtcp && !s->rtcp_mux) ? &s->remote_rtcp : &s->remote;

    if (s->ice && !s->latched) {
        /* no checked pair yet */
        return 0;
    }

    if (s->latched) {
        if (rtcp && !s->rtcp_mux && !s->ice) {
            return from->sin_addr.s_addr == known->sin_addr.s_addr;
        }
        return md_same_addr(from, known);
    }

    if (s->has_remote && s->leg->strict_source && !md_same_addr(from, known)) {
        return 0;
    }

    if (rtcp && !s->rtcp_mux) {
        s->remote_rtcp = *from;
        return 1;
    }

    if (!s->has_remote || !md_same_addr(from, &s->remote)) {
        md_log(MD_LOG_INFO, "[%s] stream %d of %s latched to %s:%u",
               s->call->id, s->index, s->leg->tag,
               inet_ntoa(from->sin_addr), ntohs(from->sin_port));
    }

    s->remote = *from;
    s->has_remote = 1;
    s->latched = 1;

    if (s->rtcp_mux) {
        s->remote_rtcp = *from;
    }

    return 1;
}


/* RFC 3550 A.1 / A.8: sequence tracking, loss and jitter of what s sends */
static void
md_stats(md_stats_t *st, uint16_t seq, uint32_t ts, double now, int rate)
{
    int16_t   delta;
    uint32_t  arrival, transit;
    int32_t   d;

    if (!st->have_seq) {
        st->have_seq = 1;
        st->max_seq = seq;

    } else {
        delta = (int16_t) (seq - st->max_seq);

        if (delta > 0) {
            if (delta > 1 && delta < 3000) {
                st->lost += (uint64_t) (delta - 1);
            }
            st->max_seq = seq;
        }
    }

    arrival = (uint32_t) (now * rate);
    transit = arrival - ts;

    if (st->last_transit) {
        d = (int32_t) (transit - st->last_transit);
        st->jitter += (fabs((double) d) - st->jitter) / 16.0;
    }

    st->last_transit = transit;
}


/* ts of the source r follows (clock in_rate), in the numbering out */
static uint32_t
md_rewrite_ts(md_rewrite_t *r, uint32_t ts, int in_rate, int out_rate)
{
    return r->last_ts_out
           + (uint32_t) ((int64_t) (int32_t) (ts - r->last_ts_in)
                         * out_rate / in_rate);
}


/*
 * sequence number and timestamp out.  Within a source they follow the
 * input (gaps and reordering kept, timestamps scaled from in_rate to
 * out_rate; renumber: a transcoder's frames, numbered one after the
 * other); a new source (a new SSRC, a timestamp that jumps 2 s away from
 * the wall clock, or a sequence jump) continues after the last packet
 * out, with the marker bit set.
 */
static void
md_rewrite(md_rewrite_t *r, uint32_t ssrc, uint16_t seq, uint32_t ts,
    double now, int in_rate, int out_rate, int renumber, uint16_t *oseq,
    uint32_t *ots, int *marker)
{
    double    elapsed;
    int16_t   dseq;
    int32_t   dts;
    int64_t   drift;
    uint32_t  step;

    if (!r->started) {
        r->started = 1;
        r->ssrc_in = ssrc;
        *oseq = r->seq_offset;
        *ots = r->ts_offset;
        dseq = 1;

    } else {
        elapsed = now - r->last_at;
        dseq = (int16_t) (uint16_t) (seq - r->last_seq_in);
        dts = (int32_t) (ts - r->last_ts_in);
        drift = (int64_t) dts - (int64_t) (elapsed * in_rate);

        if (ssrc != r->ssrc_in || r->new_source
            || drift > 2 * (int64_t) in_rate || drift < -2 * (int64_t) in_rate
            || dseq > 1000 || dseq < -1000)
        {
            step = (uint32_t) (elapsed * out_rate + 0.5);
            if (step < (uint32_t) out_rate / 50) {
                step = (uint32_t) out_rate / 50;
            }

            *oseq = (uint16_t) (r->last_seq_out + 1);
            *ots = r->last_ts_out + step;
            *marker = 1;
            r->ssrc_in = ssrc;
            r->new_source = 0;
            dseq = 1;

        } else {
            *oseq = (uint16_t) (r->last_seq_out + (renumber ? 1 : dseq));
            *ots = md_rewrite_ts(r, ts, in_rate, out_rate);
        }
    }

    if (dseq > 0 || renumber) {
        r->in_rate = in_rate;
        r->out_rate = out_rate;
        r->last_seq_out = *oseq;
        r->last_ts_out = *ots;
        r->last_seq_in = seq;
        r->last_ts_in = ts;
        r->last_at = now;
    }
}


/*
 * The packet after the last one out: sequence + 1, timestamp + step (in
 * the clock out).  The input timestamp it stands for moves on with it, so
 * the next packet in continues from the end of this frame: a 40 ms packet
 * in, sent as two 20 ms frames, is followed by the third frame's time.
 */
static void
md_rewrite_next(md_rewrite_t *r, uint32_t step)
{
    if (!r->started) {
        r->started = 1;
        r->last_seq_out = (uint16_t) (r->seq_offset - 1);
        r->last_ts_out = r->ts_offset - step;
    }

    if (r->in_rate > 0 && r->out_rate > 0) {
        r->last_ts_in += (uint32_t) ((uint64_t) step * r->in_rate
                                     / r->out_rate);
    }

    r->last_seq_out++;
    r->last_ts_out += step;
    r->last_at = md_now();
}


static void
md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            pt, out_pt, marker, rate, out_rate, len, next, k;
    size_t         hlen, plen, lag;
    uint64_t       dur;
    double         now;
    uint16_t       seq, oseq;
    uint32_t       ts, ots, ssrc;
    md_codec_t    *c;
    md_tc_t       *tc;
    md_pt_map_t   *map;
    md_stream_t   *peer;
    md_codec_id_e  id;

    if (n < 12 || (p[0] >> 6) != 2) {
        s->in.errors++;
        return;
    }

    if (!md_source_ok(s, from, 0)) {
        s->in.errors++;
        return;
    }

    hlen = 12 + 4 * (size_t) (p[0] & 0x0f);

    if ((p[0] & 0x10) && n >= hlen + 4) {
        hlen += 4 + 4 * (size_t) ((p[hlen + 2] << 8) | p[hlen + 3]);
    }

    if (hlen > n) {
        s->in.errors++;
        return;
    }

    plen = n - hlen;

    if ((p[0] & 0x20) && plen > 0) {
        if (p[n - 1] > plen) {
            s->in.errors++;
            return;
        }
        plen -= p[n - 1];
    }

    pt = p[1] & 0x7f;
    marker = p[1] >> 7;
    seq = md_get16(p + 2);
    ts = md_get32(p + 4);
    ssrc = md_get32(p + 8);

    c = NULL;

    for (len = 0; len < s->ncodecs; len++) {
        if (s->codecs[len].pt == pt) {
            c = &s->codecs[len];
            break;
        }
    }

    if (c == NULL) {
        /* a payload type this endpoint never negotiated */
        s->in.errors++;
        return;
    }

    now = md_now();
    rate = c->rate ? c->rate : 8000;

    s->in.packets++;
    s->in.bytes += n;
    s->last_in = now;
    md_stats(&s->in, seq, ts, now, rate);

    id = md_codec_id(c);

    if (s->recorder && id != MD_CODEC_TELEPHONE_EVENT) {
        md_record(s, id, p + hlen, plen, ts, rate);
    }

    peer = s->peer;

    if (peer == NULL || !peer->has_remote || peer->rtp.fd < 0
        || peer->player)
    {
        /* nowhere to send, or media is played to the peer instead */
        return;
    }

    /* what the answer made of this payload type (RFC 3264 §6.1) */
    map = &s->pt_map[pt];
    rate = map->rate ? map->rate : rate;
    out_rate = peer->rate ? peer->rate : rate;
    tc = (map->action == MD_PT_TRANSCODE) ? s->tc : NULL;

    if (map->action == MD_PT_DTMF) {
        /*
         * RFC 4733 events go across with the peer's payload type, in its
         * clock: the timestamp through md_rewrite(), the duration (§2.3.5,
         * in timestamp units) scaled here
         */
        if (peer->dtmf_pt < 0 || plen < 4 || plen + 12 > sizeof(md_rtp_out)) {
            return;
        }

        if (s->tc && s->tc_fed && ssrc == s->tc_ssrc
            && (int16_t) (uint16_t) (seq - s->tc_seq) > 0)
        {
            s->tc_seq = seq;    /* events are no loss of audio */
        }

        out_pt = peer->dtmf_pt;
        out_rate = peer->dtmf_rate;
        memcpy(md_rtp_out + 12, p + hlen, plen);
        len = (int) plen;

        if (rate != out_rate) {
            dur = (uint64_t) md_get16(md_rtp_out + 14) * out_rate / rate;
            md_put16(md_rtp_out + 14, dur > 0xffff ? 0xffff : dur);
        }

    } else if (map->action == MD_PT_PASS) {
        /* the same codec: the peer's number for it, in its own clock */
        out_pt = map->pt;
        out_rate = rate;

        if (plen + 12 > sizeof(md_rtp_out)) {
            return;
        }

        memcpy(md_rtp_out + 12, p + hlen, plen);
        len = (int) plen;

    } else if (tc && peer->send_pt >= 0) {
        /* packets since the last one fed: 1 the next, <= 0 late */

        next = (s->tc_fed && ssrc == s->tc_ssrc)
               ? (int16_t) (uint16_t) (seq - s->tc_seq) : 1;

        if (next <= 0 && next > -1000) {
            return;     /* late or repeated: the transcoder has moved on */
        }

        /*
         * Opus in, a few packets lost: the decoder's concealment (RFC 6716
         * §4.4) fills their time, better than a G.711 receiver's would
         */

        for (k = 1; id == MD_CODEC_OPUS && next <= MD_RTP_CONCEAL + 1
                    && k < next; k++)
        {
            md_tc_send(s, peer, md_tc_conceal(s->tc, md_rtp_out + 12,
                                              sizeof(md_rtp_out) - 12 - 64));
        }

        s->tc_fed = 1;
        s->tc_ssrc = ssrc;
        s->tc_seq = seq;

        lag = md_tc_queued(s->tc);

        len = md_tc_run(s->tc, p + hlen, plen, md_rtp_out + 12,
                        sizeof(md_rtp_out) - 12 - 64);
        if (len <= 0) {
            if (len < 0) {
                s->in.errors++;
            }
            return;
        }

        /* the frame began with the audio queued before this packet */
        ts -= (uint32_t) ((uint64_t) lag * rate / out_rate);
        out_pt = peer->send_pt;

    } else {
        s->in.errors++;
        return;
    }

    md_rewrite(&peer->out, ssrc, seq, ts, now, rate, out_rate, s->tc != NULL,
               &oseq, &ots, &marker);
    md_rtp_send(peer, out_pt, (size_t) len, oseq, ots, marker);

    /* a packet longer than a frame out: the transcoder has frames left */

    if (tc) {
        md_tc_send(s, peer, md_tc_next(s->tc, md_rtp_out + 12,
                                       sizeof(md_rtp_out) - 12 - 64));
    }
}


/*
 * s's transcoder frames to peer, each after the last one out: the one of
 * len bytes at md_rtp_payload() (none when len <= 0), then those queued
 */
static void
md_tc_send(md_stream_t *s, md_stream_t *peer, int len)
{
    while (len > 0) {
        md_rewrite_next(&peer->out, (uint32_t) md_tc_frame(s->tc));
        md_rtp_send(peer, peer->send_pt, (size_t) len,
                    peer->out.last_seq_out, peer->out.last_ts_out, 0);
        len = md_tc_next(s->tc, md_rtp_out + 12, sizeof(md_rtp_out) - 12 - 64);
    }
}


uint8_t *
md_rtp_payload(void)
{
    return md_rtp_out + 12;
}


void
md_rtp_inject(md_stream_t *s, size_t len, uint32_t step, int marker)
{
    md_rewrite_t  *r;

    if (!s->has_remote || s->send_pt < 0) {
        return;
    }

    r = &s->out;

    md_rewrite_next(r, step);
    r->new_source = 1;

    md_rtp_send(s, s->send_pt, len, r->last_seq_out, r->last_ts_out, marker);
}


/* the packet whose payload is at md_rtp_out + 12, to peer's endpoint */
static void
md_rtp_send(md_stream_t *peer, int pt, size_t len, uint16_t seq, uint32_t ts,
    int marker)
{
    size_t  out_len;

    md_rtp_out[0] = 0x80;
    md_rtp_out[1] = (uint8_t) ((marker << 7) | pt);
    md_put16(md_rtp_out + 2, seq);
    md_put32(md_rtp_out + 4, ts);
    md_put32(md_rtp_out + 8, peer->out.ssrc_out);

    out_len = len + 12;

    if (peer->dtls
        && md_srtp_protect(peer->dtls, md_rtp_out, &out_len,
                           sizeof(md_rtp_out), 0) != 0)
    {
        return;     /* DTLS not up yet */
    }

    if (sendto(peer->rtp.fd, md_rtp_out, out_len, 0,
               (struct sockaddr *) &peer->remote, sizeof(peer->remote))
        > 0)
    {
        peer->packets_out++;
        peer->octets_out += len;
    }
}


/*
 * RFC 3550 §6.4.1: a report block (24 bytes at b) from s's endpoint whose
 * LSR is an SR we forwarded to it gives the round trip: now - sent - DLSR
 */
static void
md_rtcp_rtt(md_stream_t *s, const uint8_t *b, double now)
{
    double    rtt;
    uint32_t  lsr, dlsr;
    unsigned  i;

    lsr = md_get32(b + 16);
    dlsr = md_get32(b + 20);

    for (i = 0; lsr && i < 4; i++) {
        if (s->sr_sent[i].lsr == lsr) {
            rtt = now - s->sr_sent[i].at - dlsr / 65536.0;
            s->rtt = rtt > 0 ? rtt : 0.0001;
            return;
        }
    }
}


/* an RTP timestamp of the stream rewritten by r, in the clock out */
static uint32_t
md_rtcp_ts(md_rewrite_t *r, uint32_t ts)
{
    if (!r->started || r->in_rate <= 0) {
        return r->ts_offset;
    }

    return md_rewrite_ts(r, ts, r->in_rate, r->out_rate);
}


/*
 * A report block about the stream we send to s's endpoint (s->out) is
 * turned into one about the source of that stream, in its numbering:
 * SSRC, highest sequence number (its low 16 bits) and jitter (clock in).
 */
static void
md_rtcp_block(md_stream_t *s, uint8_t *b)
{
    uint32_t       ext;
    md_rewrite_t  *r;

    r = &s->out;

    if (!r->started || md_get32(b) != r->ssrc_out) {
        return;
    }

    md_put32(b, r->ssrc_in);

    ext = md_get32(b + 8);
    md_put32(b + 8, (ext & 0xffff0000)
                    | (uint16_t) (ext + r->last_seq_in - r->last_seq_out));

    if (r->in_rate > 0 && r->out_rate > 0) {
        md_put32(b + 12, (uint32_t) ((uint64_t) md_get32(b + 12)
                                     * r->in_rate / r->out_rate));
    }
}


/*
 * Translates one RTCP packet (RFC 3550 §6.4-6.6, RFC 4585 §6.1) from s's
 * endpoint, len bytes at p, for the peer's endpoint: own is the SSRC s's
 * endpoint sends with, which becomes the SSRC the peer's endpoint receives
 * from us (peer->out); what it reports on becomes the peer's own SSRC; an
 * SR's RTP timestamp moves into the clock and numbering the peer sees, its
 * packet and octet counts are what we sent the peer.
 * Report blocks also give s's round trip.  Returns 1, 0 to leave the
 * packet out (a BYE: the stream we send goes on until the call ends), or
 * -1 when it is shorter than its count says (RFC 3550 A.2: the compound
 * is invalid).
 */
static int
md_rtcp_translate(md_stream_t *s, md_stream_t *peer, uint8_t *p, size_t len,
    uint32_t own, double now)
{
    size_t     off, i, item;
    unsigned   count, k;
    uint32_t   out;

    count = p[0] & 0x1f;
    out = peer ? peer->out.ssrc_out : own;

    switch (p[1]) {

    case 200:   /* SR */
    case 201:   /* RR */
        off = p[1] == 200 ? 28 : 8;

        if (len < off + 24 * (size_t) count) {
            return -1;
        }

        if (p[1] == 200 && peer) {
            /* sender info: what the peer's endpoint is sent by us */
            md_put32(p + 16, md_rtcp_ts(&peer->out, md_get32(p + 16)));
            md_put32(p + 20, (uint32_t) peer->packets_out);
            md_put32(p + 24, (uint32_t) peer->octets_out);
        }

        for (k = 0; k < count; k++, off += 24) {
            md_rtcp_rtt(s, p + off, now);
            md_rtcp_block(s, p + off);
        }

        break;

    case 202:   /* SDES: chunks of SSRC and items up to a null item */
        off = 4;

        for (k = 0; k < count; k++) {
            if (off + 4 > len) {
                return -1;
            }

            if (md_get32(p + off) == own) {
                md_put32(p + off, out);
            }

            for (i = off + 4; i < len && p[i] != 0; i += 2 + item) {
                if (i + 2 > len) {
                    return -1;
                }

                item = p[i + 1];
            }

            if (i >= len) {
                return -1;  /* no null item */
            }

            off = (i + 4) & ~(size_t) 3;
        }

        return 1;

    case 203:   /* BYE */
        return 0;

    case 205:   /* RTPFB */
    case 206:   /* PSFB */
        if (len < 12) {
            return -1;
        }

        if (s->out.started && md_get32(p + 8) == s->out.ssrc_out) {
            md_put32(p + 8, s->out.ssrc_in);
        }

        break;

    default:
        break;
    }

    if (md_get32(p + 4) == own) {
        md_put32(p + 4, out);
    }

    return 1;
}


/*
 * RTCP from s's endpoint: each packet of the compound is translated for
 * the peer's endpoint (md_rtcp_translate) into md_rtp_out and the result
 * goes across, protected when the peer speaks SRTP
 */
static void
md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            fd, rc;
    size_t         len, off, out;
    double         now;
    uint32_t       own;
    md_stream_t   *peer;

    if (n < 8 || (p[0] >> 6) != 2 || n + 64 > sizeof(md_rtp_out)) {
        s->in.errors++;
        return;
    }

    if (!md_source_ok(s, from, 1)) {
        s->in.errors++;
        return;
    }

    s->rtcp_packets++;

    peer = s->peer;

    if (peer && !peer->has_remote) {
        peer = NULL;
    }

    if (peer && p[1] == 200 && n >= 28) {
        /* remember the SR the peer gets, to match its reports on it */
        peer->sr_sent[peer->sr_next % 4].lsr = md_get32(p + 10);
        peer->sr_sent[peer->sr_next % 4].at = md_now();
        peer->sr_next++;
    }

    now = md_now();
    own = md_get32(p + 4);
    out = 0;

    for (off = 0; off + 4 <= n; off += len) {
        len = 4 * ((size_t) md_get16(p + off + 2) + 1);

        if ((p[off] >> 6) != 2 || len < 8 || len > n - off) {
            s->in.errors++;
            return;
        }

        memcpy(md_rtp_out + out, p + off, len);

        rc = md_rtcp_translate(s, peer, md_rtp_out + out, len, own, now);
        if (rc < 0) {
            s->in.errors++;
            return;
        }

        out += rc ? len : 0;
    }

    if (peer == NULL || out == 0) {
        return;
    }

    fd = peer->rtcp_mux ? peer->rtp.fd : peer->rtcp.fd;

    if (peer->dtls
        && md_srtp_protect(peer->dtls, md_rtp_out, &out, sizeof(md_rtp_out),
                           1) != 0)
    {
        return;
    }

    if (fd >= 0) {
        (void) sendto(fd, md_rtp_out, out, 0,
                      (struct sockaddr *) (peer->rtcp_mux ? &peer->remote
                                                          : &peer->remote_rtcp),
                      sizeof(struct sockaddr_in));
    }
}
