/*
 * The relay: RTP (RFC 3550) from a leg's endpoint goes out of the peer
 * stream to the other endpoint.  A datagram is STUN, DTLS or
 * (S)RTP/(S)RTCP by its first byte (RFC 7983); RTCP goes on to rtcp.c.
 * Without ICE, sources are latched (the first packet's address replaces
 * the SDP's, for NAT) and then enforced; with ICE, only the pair a valid
 * check chose carries media.  Payloads are passed through with the
 * receiver's payload type or transcoded (md_pt_map_t); every packet out
 * gets the direction's SSRC, sequence number and timestamp (rewrite.c).
 * No allocation per packet.
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
#define MD_RTP_ROOM     (MD_MAX_PACKET - 12 - 64)  /* payload bytes out,
                                    room left for the header and an SRTP
                                    tag */


static void md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
static void md_stun_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
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
            if (!md_rtp_source_ok(s, &from, rtcp_pkt)
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
int
md_rtp_source_ok(md_stream_t *s, struct sockaddr_in *from, int rtcp)
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


/* an RTP packet's fixed header fields (RFC 3550 §5.1) and its payload */
typedef struct {
    int                 pt;
    int                 marker;
    uint16_t            seq;
    uint32_t            ts;
    uint32_t            ssrc;
    uint8_t            *payload;
    size_t              len;           /* bytes, padding removed */
} md_rtp_hdr_t;

/* what a relayed payload becomes: at md_rtp_out + 12, len bytes */
typedef struct {
    int                 pt;
    int                 rate;          /* Hz, the clock of the packet in */
    int                 out_rate;      /* Hz, the clock of the packet out */
    int                 len;
} md_relay_t;


/*
 * the header of p[0..n), version 2 checked by the caller: CSRCs, header
 * extension and padding skipped (RFC 3550 §5.1, §5.3.1); 0, or -1 when
 * they do not fit
 */
static int
md_rtp_parse(uint8_t *p, size_t n, md_rtp_hdr_t *h)
{
    size_t  hlen, plen;

    hlen = 12 + 4 * (size_t) (p[0] & 0x0f);

    if ((p[0] & 0x10) && n >= hlen + 4) {
        hlen += 4 + 4 * (size_t) ((p[hlen + 2] << 8) | p[hlen + 3]);
    }

    if (hlen > n) {
        return -1;
    }

    plen = n - hlen;

    if ((p[0] & 0x20) && plen > 0) {
        if (p[n - 1] > plen) {
            return -1;
        }
        plen -= p[n - 1];
    }

    h->pt = p[1] & 0x7f;
    h->marker = p[1] >> 7;
    h->seq = md_get16(p + 2);
    h->ts = md_get32(p + 4);
    h->ssrc = md_get32(p + 8);
    h->payload = p + hlen;
    h->len = plen;

    return 0;
}


/* the codec s's endpoint declared for payload type pt, or NULL */
static md_codec_t *
md_rtp_codec(md_stream_t *s, int pt)
{
    int  i;

    for (i = 0; i < s->ncodecs; i++) {
        if (s->codecs[i].pt == pt) {
            return &s->codecs[i];
        }
    }

    return NULL;
}


/*
 * RFC 4733 events go across with the peer's payload type, in its clock:
 * the timestamp through md_rewrite(), the duration (§2.3.5, in timestamp
 * units) scaled here.  0: not sent (the peer takes no events)
 */
static int
md_relay_dtmf(md_stream_t *s, md_stream_t *peer, md_rtp_hdr_t *h,
    md_relay_t *r)
{
    uint64_t  dur;

    if (peer->dtmf_pt < 0 || h->len < 4 || h->len + 12 > MD_MAX_PACKET) {
        return 0;
    }

    if (s->tc && s->tc_fed && h->ssrc == s->tc_ssrc
        && (int16_t) (uint16_t) (h->seq - s->tc_seq) > 0)
    {
        s->tc_seq = h->seq;     /* events are no loss of audio */
    }

    r->pt = peer->dtmf_pt;
    r->out_rate = peer->dtmf_rate;
    memcpy(md_rtp_out + 12, h->payload, h->len);

    if (r->rate != r->out_rate) {
        dur = (uint64_t) md_get16(md_rtp_out + 14) * r->out_rate / r->rate;
        md_put16(md_rtp_out + 14, dur > 0xffff ? 0xffff : dur);
    }

    return (int) h->len;
}


/*
 * a payload through s's transcoder into the peer's codec: late or
 * repeated packets are left out (the transcoder has moved on), up to
 * MD_RTP_CONCEAL lost Opus packets are filled by the decoder's
 * concealment (RFC 6716 §4.4) first.  The bytes of the first frame out
 * (h->ts moved back to where it begins), 0 when none is ready, -1 on a
 * decoding error
 */
static int
md_relay_transcode(md_stream_t *s, md_stream_t *peer, md_rtp_hdr_t *h,
    md_codec_id_e id, md_relay_t *r)
{
    int     k, next, len;
    size_t  lag;

    /* packets since the last one fed: 1 the next, <= 0 late */

    next = (s->tc_fed && h->ssrc == s->tc_ssrc)
           ? (int16_t) (uint16_t) (h->seq - s->tc_seq) : 1;

    if (next <= 0 && next > -1000) {
        return 0;
    }

    for (k = 1; id == MD_CODEC_OPUS && next <= MD_RTP_CONCEAL + 1
                && k < next; k++)
    {
        md_tc_send(s, peer, md_tc_conceal(s->tc, md_rtp_out + 12,
                                          MD_RTP_ROOM));
    }

    s->tc_fed = 1;
    s->tc_ssrc = h->ssrc;
    s->tc_seq = h->seq;

    lag = md_tc_queued(s->tc);

    len = md_tc_run(s->tc, h->payload, h->len, md_rtp_out + 12,
                    MD_RTP_ROOM);
    if (len <= 0) {
        return len;
    }

    /* the frame began with the audio queued before this packet */
    h->ts -= (uint32_t) ((uint64_t) lag * r->rate / r->out_rate);
    r->pt = peer->send_pt;

    return len;
}


/*
 * the payload of h made into what the peer is sent, as the answer mapped
 * its payload type (md_pt_map_t) into r; its length, 0 when nothing goes
 * out, -1 when the packet is an error
 */
static int
md_relay(md_stream_t *s, md_stream_t *peer, md_rtp_hdr_t *h,
    md_codec_id_e id, md_relay_t *r)
{
    md_pt_map_t  *map;

    map = &s->pt_map[h->pt];
    r->rate = map->rate ? map->rate : r->rate;
    r->out_rate = peer->rate ? peer->rate : r->rate;

    switch (map->action) {

    case MD_PT_DTMF:
        return md_relay_dtmf(s, peer, h, r);

    case MD_PT_PASS:
        /* the same codec: the peer's number for it, in its own clock */
        r->pt = map->pt;
        r->out_rate = r->rate;

        if (h->len + 12 > MD_MAX_PACKET) {
            return 0;
        }

        memcpy(md_rtp_out + 12, h->payload, h->len);
        return (int) h->len;

    case MD_PT_TRANSCODE:
        if (s->tc && peer->send_pt >= 0) {
            return md_relay_transcode(s, peer, h, id, r);
        }
        return -1;

    default:
        return -1;
    }
}


/*
 * RTP from s's endpoint: counted (RFC 3550 A.1, A.8), recorded, and
 * relayed to the peer's endpoint (md_relay()) with the direction's SSRC,
 * sequence number and timestamp (md_rewrite())
 */
static void
md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            len;
    double         now;
    uint16_t       oseq;
    uint32_t       ots;
    md_codec_t    *c;
    md_relay_t     r;
    md_rtp_hdr_t   h;
    md_stream_t   *peer;
    md_codec_id_e  id;

    if (n < 12 || (p[0] >> 6) != 2 || !md_rtp_source_ok(s, from, 0)
        || md_rtp_parse(p, n, &h) != 0)
    {
        s->in.errors++;
        return;
    }

    c = md_rtp_codec(s, h.pt);

    if (c == NULL) {
        /* a payload type this endpoint never declared */
        s->in.errors++;
        return;
    }

    now = md_now();
    r.rate = c->rate ? c->rate : 8000;

    s->in.packets++;
    s->in.bytes += n;
    s->last_in = now;
    md_stats(&s->in, h.seq, h.ts, now, r.rate);

    id = md_codec_id(c);

    if (s->recorder && id != MD_CODEC_TELEPHONE_EVENT) {
        md_record(s, id, h.payload, h.len, h.ts, r.rate);
    }

    peer = s->peer;

    if (peer == NULL || !peer->has_remote || peer->rtp.fd < 0
        || peer->player)
    {
        /* nowhere to send, or media is played to the peer instead */
        return;
    }

    len = md_relay(s, peer, &h, id, &r);

    if (len <= 0) {
        s->in.errors += (len < 0);
        return;
    }

    md_rewrite(&peer->out, h.ssrc, h.seq, h.ts, now, r.rate, r.out_rate,
               s->tc != NULL, &oseq, &ots, &h.marker);
    md_rtp_send(peer, r.pt, (size_t) len, oseq, ots, h.marker);

    /* a packet longer than a frame out: the transcoder has frames left */

    if (s->pt_map[h.pt].action == MD_PT_TRANSCODE) {
        md_tc_send(s, peer, md_tc_next(s->tc, md_rtp_out + 12,
                                       MD_RTP_ROOM));
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
        len = md_tc_next(s->tc, md_rtp_out + 12, MD_RTP_ROOM);
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
