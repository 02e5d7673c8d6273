/*
 * RTCP (RFC 3550 §6) from a stream's endpoint, translated into what the
 * peer's endpoint knows (RFC 3550 §6.4, RFC 4585 §6.1): SSRCs, report
 * blocks, the sender info of an SR; the round trip from the reports on
 * the SRs we forwarded.
 */

#include "rtp.h"
#include "util.h"

#include <string.h>
#include <sys/socket.h>


static _Thread_local uint8_t  md_rtcp_out[MD_MAX_PACKET];


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
 * the peer's endpoint (md_rtcp_translate) into md_rtcp_out and the result
 * goes across, protected when the peer speaks SRTP
 */
void
md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n, struct sockaddr_in *from)
{
    int            fd, rc;
    size_t         len, off, out;
    double         now;
    uint32_t       own;
    md_stream_t   *peer;

    if (n < 8 || (p[0] >> 6) != 2 || n + 64 > sizeof(md_rtcp_out)) {
        s->in.errors++;
        return;
    }

    if (!md_rtp_source_ok(s, from, 1)) {
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

        memcpy(md_rtcp_out + out, p + off, len);

        rc = md_rtcp_translate(s, peer, md_rtcp_out + out, len, own, now);
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
        && md_srtp_protect(peer->dtls, md_rtcp_out, &out, sizeof(md_rtcp_out),
                           1) != 0)
    {
        return;
    }

    if (fd >= 0) {
        (void) sendto(fd, md_rtcp_out, out, 0,
                      (struct sockaddr *) (peer->rtcp_mux ? &peer->remote
                                                          : &peer->remote_rtcp),
                      sizeof(struct sockaddr_in));
    }
}
