/*
 * The relay: RTP (RFC 3550) and RTCP from a leg's endpoint go out of the
 * peer stream to the other endpoint.  Sources are latched (the first
 * packet's address replaces the SDP's, for NAT) and then enforced;
 * payloads are passed through or transcoded; every packet out gets the
 * direction's SSRC, sequence number and timestamp (see md_rewrite_t).
 * No allocation per packet.
 */

#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>


#define MD_RTP_BATCH  64         /* datagrams per wakeup and socket */


static void md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);
static void md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);


static uint8_t  md_rtp_in[MD_MAX_PACKET];
static uint8_t  md_rtp_out[MD_MAX_PACKET];


static int
md_same_addr(struct sockaddr_in *a, struct sockaddr_in *b)
{
    return a->sin_addr.s_addr == b->sin_addr.s_addr
           && a->sin_port == b->sin_port;
}


static void
md_read(md_io_t *io, int rtcp)
{
    int                 i;
    ssize_t             n;
    socklen_t           len;
    md_stream_t        *s;
    struct sockaddr_in  from;

    s = io->data;

    for (i = 0; i < MD_RTP_BATCH; i++) {
        len = sizeof(from);
        n = recvfrom(io->fd, md_rtp_in, sizeof(md_rtp_in), 0,
                     (struct sockaddr *) &from, &len);

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

        /* RFC 5761 §4: RTCP packet types 200-207 on a muxed port */

        if (rtcp || (n >= 8 && md_rtp_in[1] >= 200 && md_rtp_in[1] <= 207)) {
            md_rtcp_packet(s, md_rtp_in, (size_t) n, &from);

        } else {
            md_rtp_packet(s, md_rtp_in, (size_t) n, &from);
        }
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

    if (s->latched) {
        if (rtcp && !s->rtcp_mux) {
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


/*
 * sequence number and timestamp out, continuing across a new source: a
 * new SSRC, or a timestamp that jumps away from the wall clock (2 s)
 */
static void
md_rewrite(md_rewrite_t *r, uint32_t ssrc, uint16_t seq, uint32_t ts,
    double now, int rate, uint16_t *oseq, uint32_t *ots, int *marker)
{
    double    elapsed;
    int64_t   drift;
    uint32_t  step;

    elapsed = now - r->last_at;

    if (!r->started) {
        r->started = 1;
        r->ssrc_in = ssrc;
        r->last_seq_out = (uint16_t) (seq + r->seq_offset - 1);
        r->last_ts_out = ts + r->ts_offset;

    } else {
        drift = (int64_t) (int32_t) (ts - r->last_ts_in)
                - (int64_t) (elapsed * rate);

        if (ssrc != r->ssrc_in || drift > 2 * rate || drift < -2 * rate
            || abs((int16_t) (uint16_t) (seq + r->seq_offset
                                         - r->last_seq_out)) > 1000)
        {
            step = (uint32_t) (elapsed * rate + 0.5);
            if (step < (uint32_t) rate / 50) {
                step = (uint32_t) rate / 50;
            }

            r->seq_offset = (uint16_t) (r->last_seq_out + 1 - seq);
            r->ts_offset = r->last_ts_out + step - ts;
            r->ssrc_in = ssrc;
            *marker = 1;
        }
    }

    *oseq = (uint16_t) (seq + r->seq_offset);
    *ots = ts + r->ts_offset;

    if ((int16_t) (*oseq - r->last_seq_out) > 0) {
        r->last_seq_out = *oseq;
        r->last_ts_out = *ots;
    }

    r->last_ts_in = ts;
    r->last_at = now;
}


static void
md_rtp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            pt, out_pt, marker, rate, len;
    size_t         hlen, plen;
    double         now;
    uint16_t       seq, oseq;
    uint32_t       ts, ots, ssrc;
    md_codec_t    *c;
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
    seq = (uint16_t) ((p[2] << 8) | p[3]);
    ts = ((uint32_t) p[4] << 24) | ((uint32_t) p[5] << 16)
         | ((uint32_t) p[6] << 8) | p[7];
    ssrc = ((uint32_t) p[8] << 24) | ((uint32_t) p[9] << 16)
           | ((uint32_t) p[10] << 8) | p[11];

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

    peer = s->peer;

    if (peer == NULL || !peer->has_remote || peer->rtp.fd < 0) {
        return;
    }

    id = md_codec_id(c);

    if (pt == s->dtmf_pt) {
        /* RFC 4733 events go across with the peer's payload type */
        if (peer->dtmf_pt < 0 || plen + 12 > sizeof(md_rtp_out)) {
            return;
        }

        out_pt = peer->dtmf_pt;
        memcpy(md_rtp_out + 12, p + hlen, plen);
        len = (int) plen;

    } else if (id == peer->send_codec && peer->send_pt >= 0) {
        out_pt = peer->send_pt;

        if (plen + 12 > sizeof(md_rtp_out)) {
            return;
        }

        memcpy(md_rtp_out + 12, p + hlen, plen);
        len = (int) plen;

    } else {
        len = md_transcode(id, peer->send_codec, p + hlen, plen,
                           md_rtp_out + 12, sizeof(md_rtp_out) - 12);
        if (len < 0) {
            s->in.errors++;
            return;
        }

        out_pt = peer->send_pt;
    }

    md_rewrite(&peer->out, ssrc, seq, ts, now, rate, &oseq, &ots, &marker);

    md_rtp_out[0] = 0x80;
    md_rtp_out[1] = (uint8_t) ((marker << 7) | out_pt);
    md_rtp_out[2] = (uint8_t) (oseq >> 8);
    md_rtp_out[3] = (uint8_t) oseq;
    md_rtp_out[4] = (uint8_t) (ots >> 24);
    md_rtp_out[5] = (uint8_t) (ots >> 16);
    md_rtp_out[6] = (uint8_t) (ots >> 8);
    md_rtp_out[7] = (uint8_t) ots;
    md_rtp_out[8] = (uint8_t) (peer->out.ssrc_out >> 24);
    md_rtp_out[9] = (uint8_t) (peer->out.ssrc_out >> 16);
    md_rtp_out[10] = (uint8_t) (peer->out.ssrc_out >> 8);
    md_rtp_out[11] = (uint8_t) peer->out.ssrc_out;

    if (sendto(peer->rtp.fd, md_rtp_out, (size_t) len + 12, 0,
               (struct sockaddr *) &peer->remote, sizeof(peer->remote))
        > 0)
    {
        peer->packets_out++;
    }
}


/*
 * RTCP goes across with the sender SSRC of SR/RR replaced by the one the
 * other side sees for this direction (RFC 3550 §6.4)
 */
static void
md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            fd;
    uint32_t       ssrc;
    md_stream_t   *peer;

    if (n < 8 || (p[0] >> 6) != 2 || n > sizeof(md_rtp_out)) {
        s->in.errors++;
        return;
    }

    if (!md_source_ok(s, from, 1)) {
        s->in.errors++;
        return;
    }

    s->rtcp_packets++;

    peer = s->peer;

    if (peer == NULL || !peer->has_remote) {
        return;
    }

    memcpy(md_rtp_out, p, n);

    if (md_rtp_out[1] == 200 || md_rtp_out[1] == 201) {
        ssrc = peer->out.ssrc_out;  /* the SSRC the peer receives from us */
        md_rtp_out[4] = (uint8_t) (ssrc >> 24);
        md_rtp_out[5] = (uint8_t) (ssrc >> 16);
        md_rtp_out[6] = (uint8_t) (ssrc >> 8);
        md_rtp_out[7] = (uint8_t) ssrc;
    }

    fd = peer->rtcp_mux ? peer->rtp.fd : peer->rtcp.fd;

    if (fd >= 0) {
        (void) sendto(fd, md_rtp_out, n, 0,
                      (struct sockaddr *) (peer->rtcp_mux ? &peer->remote
                                                          : &peer->remote_rtcp),
                      sizeof(struct sockaddr_in));
    }
}
