/*
 * The SDP writer (sdp_out.h).
 */

#include "conf.h"
#include "sdp_out.h"
#include "stun.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>


static void md_out(be_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/* one line (at most 1 KB) appended to b; b->failed when longer */
static void
md_out(be_buf_t *b, const char *fmt, ...)
{
    int      n;
    char     line[1024];
    va_list  ap;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (n < 0 || (size_t) n >= sizeof(line)) {
        b->failed = 1;
        return;
    }

    be_raw(b, line, (size_t) n);
}


/* WebRTC attributes of a plain endpoint's SDP: not passed on to one */
static int
md_attr_webrtc_only(const char *a)
{
    static const char  *names[] = { "a=msid-semantic", "a=extmap",
                                    "a=extmap-allow-mixed", "a=msid",
                                    "a=ssrc", "a=ssrc-group", "a=mid",
                                    "a=group", NULL };
    const char        **n;

    for (n = names; *n; n++) {
        if (strncmp(a, *n, strlen(*n)) == 0
            && (a[strlen(*n)] == ':' || a[strlen(*n)] == '\0'))
        {
            return 1;
        }
    }

    return 0;
}


/* the attributes attrs[0..n) kept from the other side, one per line */
static void
md_out_attrs(be_buf_t *b, char **attrs, int n)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (!md_attr_webrtc_only(attrs[i])) {
            md_out(b, "%s\r\n", attrs[i]);
        }
    }
}


/*
 * the session part: v=, o= (with our address for replace origin), s=,
 * c=, t=, a=ice-lite when any stream does ICE, a BUNDLE group of one
 */
static void
md_out_session(be_buf_t *b, md_sdp_t *in, md_leg_t *to, md_flags_t *f,
    int offer)
{
    int    i, ice, bundle;
    char   origin[256], *sp;

    md_out(b, "v=0\r\n");

    memcpy(origin, in->origin, sizeof(origin));

    if (be_list_has(f->replace, "origin")) {
        sp = strrchr(origin, ' ');
        if (sp) {
            *sp = '\0';
        }

        md_out(b, "o=%s %s\r\n", origin, md_conf.advertised_str);

    } else {
        md_out(b, "o=%s\r\n", origin);
    }

    md_out(b, "s=%s\r\n", in->session[0] ? in->session : "-");
    md_out(b, "c=IN IP4 %s\r\n", md_conf.advertised_str);
    md_out(b, "t=0 0\r\n");

    ice = 0;
    bundle = 0;

    for (i = 0; i < in->nmedia; i++) {
        ice |= to->streams[i]->ice;
        bundle |= to->streams[i]->webrtc;
    }

    if (ice) {
        md_out(b, "a=ice-lite\r\n");
    }

    /* one transport per m= line: a BUNDLE group only of one */
    if (bundle && in->nmedia == 1 && (offer || to->bundle)) {
        md_out(b, "a=group:BUNDLE %s\r\n",
               to->streams[0]->mid[0] ? to->streams[0]->mid : "0");
    }

    md_out_attrs(b, in->attrs, in->nattrs);
}


/* a=rtpmap and a=fmtp of the codecs s is given */
static void
md_out_rtpmap(be_buf_t *b, md_stream_t *s)
{
    int          k;
    md_codec_t  *c;

    for (k = 0; k < s->ngiven; k++) {
        c = &s->given[k];

        if (c->name[0] == '\0') {
            continue;
        }

        if (c->channels > 1) {
            md_out(b, "a=rtpmap:%d %s/%d/%d\r\n", c->pt, c->name,
                   c->rate, c->channels);

        } else {
            md_out(b, "a=rtpmap:%d %s/%d\r\n", c->pt, c->name, c->rate);
        }

        if (c->fmtp[0]) {
            md_out(b, "a=fmtp:%d %s\r\n", c->pt, c->fmtp);
        }
    }
}


/*
 * RFC 5761 §5.1.1: an offer of mux keeps the separate RTCP port (unless
 * "require"); an answer that accepts mux names the RTP port.  The
 * offerer's own mux is accepted back (even with "demux", which concerns
 * the other side).  WebRTC endpoints always mux (RFC 8858).
 */
static void
md_out_rtcp(be_buf_t *b, md_sdp_media_t *m, md_stream_t *s, md_flags_t *f,
    int offer)
{
    int       mux;
    unsigned  rtcp_port;

    rtcp_port = s->port + 1;

    if (s->webrtc) {
        mux = 1;
        rtcp_port = s->port;

    } else if (offer) {
        mux = (m->rtcp_mux || be_list_has(f->rtcp_mux, "offer")
               || be_list_has(f->rtcp_mux, "require"))
              && !be_list_has(f->rtcp_mux, "demux");

        if (be_list_has(f->rtcp_mux, "require")) {
            rtcp_port = s->port;
        }

    } else {
        mux = s->rtcp_mux;

        if (mux) {
            rtcp_port = s->port;
        }
    }

    /* RFC 3605 §2.1, with the address: some stacks require it */
    md_out(b, "a=rtcp:%u IN IP4 %s\r\n", rtcp_port, md_conf.advertised_str);

    if (mux) {
        md_out(b, "a=rtcp-mux\r\n");
    }
}


/*
 * ICE-Lite (RFC 8839): our credentials and the host candidate; behind
 * NAT (--interface LOCAL!PUBLIC) also the public address as
 * server-reflexive (RFC 8445 §5.1.1.2)
 */
static void
md_out_ice(be_buf_t *b, md_stream_t *s)
{
    char  cand[256];

    md_out(b, "a=ice-ufrag:%s\r\n", s->ice_ufrag);
    md_out(b, "a=ice-pwd:%s\r\n", s->ice_pwd);

    if (md_ice_candidate(cand, sizeof(cand), "1", &md_conf.local, s->port,
                         0, NULL, 0) > 0)
    {
        md_out(b, "a=candidate:%s\r\n", cand);
    }

    if (md_conf.advertised.s_addr != md_conf.local.s_addr
        && md_ice_candidate(cand, sizeof(cand), "2", &md_conf.advertised,
                            s->port, 1, &md_conf.local, s->port) > 0)
    {
        md_out(b, "a=candidate:%s\r\n", cand);
    }

    md_out(b, "a=end-of-candidates\r\n");
}


/* m= line i of in, for s: our port, its codecs and attributes */
static void
md_out_media(be_buf_t *b, md_sdp_media_t *m, md_stream_t *s, int i,
    md_flags_t *f, int offer)
{
    int  k;

    md_out(b, "m=%s %u %s", m->media, m->port ? s->port : 0,
           s->webrtc ? "UDP/TLS/RTP/SAVPF" : "RTP/AVP");

    for (k = 0; k < s->ngiven; k++) {
        md_out(b, " %d", s->given[k].pt);
    }

    md_out(b, "\r\n");
    md_out_attrs(b, m->attrs, m->nattrs);

    if (s->webrtc) {
        if (s->mid[0] == '\0') {
            snprintf(s->mid, sizeof(s->mid), "%d", i);
        }

        md_out(b, "a=mid:%s\r\n", s->mid);
    }

    md_out_rtpmap(b, s);
    md_out(b, "a=%s\r\n", m->direction);
    md_out_rtcp(b, m, s, f, offer);

    if (s->ice) {
        md_out_ice(b, s);
    }

    if (s->webrtc) {
        md_out(b, "a=fingerprint:%s\r\n", md_dtls_fingerprint());
        md_out(b, "a=setup:%s\r\n", s->setup[0] ? s->setup : "actpass");
    }
}


const char *
md_sdp_out(be_buf_t *b, md_sdp_t *in, md_leg_t *to, md_flags_t *f,
    int offer)
{
    int  i;

    md_out_session(b, in, to, f, offer);

    for (i = 0; i < in->nmedia; i++) {
        md_out_media(b, &in->media[i], to->streams[i], i, f, offer);
    }

    return b->failed ? "SDP too large" : NULL;
}
