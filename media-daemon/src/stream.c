/*
 * A stream's sockets and its endpoint (stream.h).
 */

#include "conf.h"
#include "media.h"
#include "rtp.h"
#include "stream.h"
#include "stun.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>


static uint32_t  md_next_port;      /* atomic: where the search starts */


/* DTLS records towards the stream's endpoint */
static void
md_stream_dtls_send(void *ctx, const uint8_t *p, size_t n)
{
    md_stream_t  *s = ctx;

    if (s->has_remote && s->rtp.fd >= 0) {
        (void) sendto(s->rtp.fd, p, n, 0, (struct sockaddr *) &s->remote,
                      sizeof(s->remote));
    }
}


static int
md_udp_bind(uint16_t port)
{
    int                 fd;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return -1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr = md_conf.local;
    sin.sin_port = htons(port);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        close(fd);
        return -1;
    }

    return fd;
}


/* an even RTP port and the odd RTCP port above it, from the range */
static int
md_stream_open(md_stream_t *s)
{
    int        tries, rtp, rtcp;
    uint16_t   port, span;
    md_live_t  live;

    md_conf_live(&live);

    span = (uint16_t) ((live.port_max - live.port_min) / 2);

    for (tries = 0; tries <= span; tries++) {
        port = (uint16_t) (live.port_min
                           + (__atomic_fetch_add(&md_next_port, 1,
                                                 __ATOMIC_RELAXED) % span)
                             * 2);

        rtp = md_udp_bind(port);
        if (rtp == -1) {
            continue;
        }

        rtcp = md_udp_bind((uint16_t) (port + 1));
        if (rtcp == -1) {
            close(rtp);
            continue;
        }

        s->port = port;
        s->rtp.fd = rtp;
        s->rtp.handler = md_rtp_read;
        s->rtp.data = s;
        s->rtcp.fd = rtcp;
        s->rtcp.handler = md_rtcp_read;
        s->rtcp.data = s;

        if (md_io_add(&s->rtp) != 0 || md_io_add(&s->rtcp) != 0) {
            md_io_del(&s->rtp);
            close(rtp);
            close(rtcp);
            return -1;
        }

        return 0;
    }

    md_log(MD_LOG_ERR, "no free port pair in %u-%u", live.port_min,
           live.port_max);

    return -1;
}


md_stream_t *
md_stream_new(md_call_t *c, md_leg_t *leg, int index, const char **err)
{
    uint32_t      r[2];
    md_stream_t  *s;

    s = calloc(1, sizeof(md_stream_t));
    if (s == NULL) {
        *err = "out of memory";
        return NULL;
    }

    s->call = c;
    s->leg = leg;
    s->index = index;
    s->rtp.fd = -1;
    s->rtcp.fd = -1;
    s->send_pt = -1;
    s->dtmf_pt = -1;

    md_random(r, sizeof(r));

    s->out.ssrc_out = r[0];
    s->out.seq_offset = (uint16_t) r[1];
    s->out.ts_offset = r[1] ^ r[0];

    if (md_stream_open(s) != 0) {
        free(s);
        *err = "no free media port";
        return NULL;
    }

    return s;
}


void
md_stream_free(md_stream_t *s)
{
    md_player_free(s);
    md_recorder_free(s);
    md_dtls_free(s->dtls);
    md_tc_free(s->tc);

    if (s->rtp.fd >= 0) {
        md_io_del(&s->rtp);
        close(s->rtp.fd);
    }

    if (s->rtcp.fd >= 0) {
        md_io_del(&s->rtcp);
        close(s->rtcp.fd);
    }

    free(s);
}


/*
 * another ICE agent or DTLS endpoint behind s's side (a transfer, a new
 * device, an ICE restart): new ICE credentials of ours (RFC 8445 §9), no
 * pair selected, and a new DTLS association (RFC 8842 §5) with our role
 * from its a=setup
 */
static void
md_stream_renew(md_stream_t *s)
{
    md_log(MD_LOG_INFO, "[%s] stream %d of %s: new ICE credentials or "
           "fingerprint: ICE and DTLS start again", s->call->id, s->index,
           s->leg->tag);

    md_ice_credentials(s->ice_ufrag, s->ice_pwd);
    s->ice_selected = 0;
    s->latched = 0;
    s->has_remote = 0;

    md_dtls_free(s->dtls);
    s->dtls = NULL;
    s->dtls_started = 0;
    strcpy(s->setup, "actpass");
}


/*
 * the ICE and DTLS attributes of s's endpoint, media or session level;
 * 1 when it is an ICE agent (its address comes from its checks)
 */
static int
md_stream_learn_webrtc(md_stream_t *s, md_sdp_t *sdp, md_sdp_media_t *m)
{
    const char  *ufrag, *fp;

    ufrag = m->ice_ufrag[0] ? m->ice_ufrag : sdp->ice_ufrag;
    fp = m->fingerprint[0] ? m->fingerprint : sdp->fingerprint;

    if ((s->remote_ufrag[0] && strcmp(s->remote_ufrag, ufrag) != 0)
        || (s->remote_fp[0] && strcasecmp(s->remote_fp, fp) != 0))
    {
        md_stream_renew(s);
    }

    s->webrtc = strncmp(m->proto, "UDP/TLS/", 8) == 0;
    s->leg->bundle = sdp->bundle;
    memcpy(s->mid, m->mid, sizeof(s->mid));
    memcpy(s->remote_setup, m->setup, sizeof(s->remote_setup));
    snprintf(s->remote_ufrag, sizeof(s->remote_ufrag), "%s", ufrag);
    snprintf(s->remote_fp, sizeof(s->remote_fp), "%s", fp);

    if (s->remote_ufrag[0] == '\0') {
        return 0;
    }

    s->ice = 1;

    if (s->ice_ufrag[0] == '\0') {
        md_ice_credentials(s->ice_ufrag, s->ice_pwd);
    }

    return 1;
}


/*
 * the RTP and RTCP addresses of s's endpoint from m (RFC 3605 a=rtcp,
 * RFC 5761 a=rtcp-mux); none for a rejected m= line or a hold with
 * 0.0.0.0, unchanged while latched to the same address
 */
static void
md_stream_learn_remote(md_stream_t *s, md_sdp_t *sdp, md_sdp_media_t *m,
    md_flags_t *f)
{
    struct in_addr  addr;

    if (m->port == 0 || md_flags_remote_addr(f, sdp, m, &addr) != 0
        || addr.s_addr == INADDR_ANY)
    {
        if (!s->latched) {
            s->has_remote = 0;
        }
        return;
    }

    if (s->latched && s->remote.sin_addr.s_addr == addr.s_addr
        && ntohs(s->remote.sin_port) == m->port)
    {
        return;
    }

    memset(&s->remote, 0, sizeof(s->remote));
    s->remote.sin_family = AF_INET;
    s->remote.sin_addr = addr;
    s->remote.sin_port = htons(m->port);

    s->rtcp_port = m->rtcp_port ? m->rtcp_port : (uint16_t) (m->port + 1);
    s->remote_rtcp = s->remote;
    s->remote_rtcp.sin_port = htons(m->rtcp_mux ? m->port : s->rtcp_port);
    s->has_remote = 1;
    s->latched = 0;
}


void
md_stream_learn(md_stream_t *s, md_sdp_t *sdp, md_sdp_media_t *m,
    md_flags_t *f)
{
    memcpy(s->media, m->media, sizeof(s->media));
    memcpy(s->proto, m->proto, sizeof(s->proto));
    memcpy(s->direction, m->direction, sizeof(s->direction));
    s->rtcp_mux = m->rtcp_mux;
    s->ptime = m->ptime;
    s->ncodecs = m->ncodecs;
    memcpy(s->codecs, m->codecs, sizeof(md_codec_t) * (size_t) m->ncodecs);
    s->leg->strict_source = f->strict_source;

    if (!md_stream_learn_webrtc(s, sdp, m)) {
        md_stream_learn_remote(s, sdp, m, f);
    }
}


void
md_stream_target(md_stream_t *b, md_stream_t *a, md_flags_t *f)
{
    b->webrtc = f->transport ? be_is(f->transport, "UDP/TLS/RTP/SAVPF")
                             : a->webrtc;

    if (f->ice && be_is(f->ice, "force")) {
        b->ice = 1;

    } else if (f->ice && be_is(f->ice, "remove")) {
        b->ice = 0;

    } else {
        b->ice = b->webrtc;
    }

    if (b->ice && b->ice_ufrag[0] == '\0') {
        md_ice_credentials(b->ice_ufrag, b->ice_pwd);
    }

    strcpy(b->setup, f->dtls && be_is(f->dtls, "passive") ? "passive"
                     : f->dtls && be_is(f->dtls, "active") ? "active"
                     : "actpass");

    /*
     * a browser answering our offer starts ICE and DTLS before its answer
     * reaches us: a DTLS server is ready for its ClientHello; the
     * fingerprint is checked when the answer comes
     */
    if (b->webrtc && b->dtls == NULL && strcmp(b->setup, "active") != 0) {
        b->dtls = md_dtls_new(0, NULL, md_stream_dtls_send, b);
    }
}


const char *
md_stream_dtls(md_stream_t *s)
{
    int  active;

    if (!s->webrtc) {
        return NULL;
    }

    if (strcmp(s->setup, "active") == 0) {
        active = 1;

    } else if (strcmp(s->setup, "passive") == 0) {
        active = 0;

    } else {
        active = strcmp(s->remote_setup, "passive") == 0;
        strcpy(s->setup, active ? "active" : "passive");
    }

    if (active && strcmp(s->remote_setup, "active") == 0) {
        return "both sides want the DTLS client role";
    }

    if (s->dtls && !active) {
        /* the server made at offer time: now the fingerprint is known */
        md_dtls_set_fingerprint(s->dtls, s->remote_fp);
        return NULL;
    }

    md_dtls_free(s->dtls);
    s->dtls = md_dtls_new(active, s->remote_fp, md_stream_dtls_send, s);
    s->dtls_started = 0;

    if (s->dtls == NULL) {
        return "DTLS setup failed";
    }

    if (!s->ice && s->has_remote) {
        s->dtls_started = 1;
        md_dtls_start(s->dtls);

    } else if (active && s->ice_selected) {
        s->dtls_started = 1;
        md_dtls_start(s->dtls);
    }

    return NULL;
}
