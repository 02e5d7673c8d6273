/*
 * Calls: offer / answer / delete / query / list of the NG protocol
 * (PROTOCOL.md §3), the local ports of each stream, codec negotiation
 * between the legs, and the SDP each side is given.
 *
 * An offer from leg A allocates a stream per m= line on both legs and
 * returns A's SDP rewritten for B: our B-facing port, the codecs B may
 * use (A's, filtered and extended by the codec flags).  The answer from B
 * fixes what each side sends: the same codec when B picked one of A's,
 * else a transcoded pair, and returns B's SDP rewritten for A.
 */

#include "call.h"
#include "stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>



typedef struct {
    be_node_t          *flags;
    be_node_t          *codec;         /* dict: strip, offer, transcode, mask */
    be_node_t          *replace;
    be_node_t          *ice;
    be_node_t          *dtls;
    be_node_t          *transport;
    be_node_t          *rtcp_mux;
    be_node_t          *received_from;
    int                 trust_address;
    int                 strict_source;
} md_flags_t;


/*
 * Each thread has its own table of the calls it owns (md_call_owner()).
 * Only the owner reads or changes its table, except "list", which reads
 * all tables under md_call_dir; table changes take md_call_dir too.
 */
static md_call_t       **md_call_tables[MD_MAX_THREADS];
static pthread_mutex_t   md_call_dir = PTHREAD_MUTEX_INITIALIZER;
static size_t            md_ncalls;
static uint32_t          md_next_port;

#define md_calls  (md_call_tables[md_self->index])


int
md_call_thread_init(int index)
{
    md_call_tables[index] = calloc(MD_CALL_HASH, sizeof(md_call_t *));

    return md_call_tables[index] ? 0 : -1;
}


size_t
md_call_count(void)
{
    return __atomic_load_n(&md_ncalls, __ATOMIC_RELAXED);
}


int
md_call_owner(const char *id, size_t len)
{
    return (int) ((md_hash(id, len) / 7) % (unsigned) md_thread_count());
}


md_call_t *
md_call_bucket(int i)
{
    return md_calls[i];
}


static md_call_t *
md_call_find(be_node_t *id)
{
    md_call_t  *c;

    for (c = md_calls[md_hash(id->s, id->len) % MD_CALL_HASH];
         c;
         c = c->next)
    {
        if (strlen(c->id) == id->len && memcmp(c->id, id->s, id->len) == 0) {
            return c;
        }
    }

    return NULL;
}


/* a NUL-terminated copy of a bencoded string, bounded */
static int
md_copy_id(char *dst, be_node_t *v)
{
    if (v == NULL || v->len == 0 || v->len >= MD_ID_LEN
        || memchr(v->s, '\0', v->len))
    {
        return -1;
    }

    memcpy(dst, v->s, v->len);
    dst[v->len] = '\0';

    return 0;
}


static int
md_tag_is(md_leg_t *leg, be_node_t *tag)
{
    return tag && leg->tag[0] && strlen(leg->tag) == tag->len
           && memcmp(leg->tag, tag->s, tag->len) == 0;
}


/* ---- sockets ---- */

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


static void
md_stream_close(md_stream_t *s)
{
    md_player_free(s);
    md_recorder_free(s);
    md_dtls_free(s->dtls);
    s->dtls = NULL;
    md_tc_free(s->tc);
    s->tc = NULL;

    if (s->rtp.fd >= 0) {
        md_io_del(&s->rtp);
        close(s->rtp.fd);
        s->rtp.fd = -1;
    }

    if (s->rtcp.fd >= 0) {
        md_io_del(&s->rtcp);
        close(s->rtcp.fd);
        s->rtcp.fd = -1;
    }
}


static void
md_call_free(md_call_t *c)
{
    int         l, i;
    md_call_t  **link;

    pthread_mutex_lock(&md_call_dir);

    for (link = &md_calls[md_hash(c->id, strlen(c->id)) % MD_CALL_HASH];
         *link;
         link = &(*link)->next)
    {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }

    pthread_mutex_unlock(&md_call_dir);

    for (l = 0; l < 2; l++) {
        for (i = 0; i < c->legs[l].nstreams; i++) {
            md_stream_close(c->legs[l].streams[i]);
            free(c->legs[l].streams[i]);
        }
    }

    if (c->answered) {
        md_registry_call(c, 0);
    }

    __atomic_sub_fetch(&md_ncalls, 1, __ATOMIC_RELAXED);
    free(c);
}


static md_call_t *
md_call_new(be_node_t *id)
{
    unsigned    h;
    md_call_t  *c;

    c = calloc(1, sizeof(md_call_t));
    if (c == NULL || md_copy_id(c->id, id) != 0) {
        free(c);
        return NULL;
    }

    c->created = md_now();
    c->created_wall = time(NULL);

    h = md_hash(id->s, id->len) % MD_CALL_HASH;

    pthread_mutex_lock(&md_call_dir);
    c->next = md_calls[h];
    md_calls[h] = c;
    pthread_mutex_unlock(&md_call_dir);

    __atomic_add_fetch(&md_ncalls, 1, __ATOMIC_RELAXED);

    return c;
}


/* streams for m= lines [0, n) on both legs, paired */
static const char *
md_call_streams(md_call_t *c, int n)
{
    int           l, i;
    uint32_t      r[2];
    md_stream_t  *s;

    for (l = 0; l < 2; l++) {
        for (i = c->legs[l].nstreams; i < n; i++) {
            s = calloc(1, sizeof(md_stream_t));
            if (s == NULL) {
                return "out of memory";
            }

            s->call = c;
            s->leg = &c->legs[l];
            s->index = i;
            s->rtp.fd = -1;
            s->rtcp.fd = -1;
            s->send_pt = -1;
            s->dtmf_pt = -1;

            if (getrandom(r, sizeof(r), 0) != sizeof(r)) {
                r[0] = (uint32_t) random();
                r[1] = (uint32_t) random();
            }

            s->out.ssrc_out = r[0];
            s->out.seq_offset = (uint16_t) r[1];
            s->out.ts_offset = r[1] ^ r[0];

            if (md_stream_open(s) != 0) {
                free(s);
                return "no free media port";
            }

            c->legs[l].streams[i] = s;
            c->legs[l].nstreams = i + 1;
        }
    }

    for (i = 0; i < n; i++) {
        c->legs[0].streams[i]->peer = c->legs[1].streams[i];
        c->legs[1].streams[i]->peer = c->legs[0].streams[i];
    }

    return NULL;
}


/* ---- flags ---- */

static void
md_flags_get(be_node_t *req, md_flags_t *f)
{
    memset(f, 0, sizeof(md_flags_t));

    f->flags = be_get(req, "flags");
    f->codec = be_get(req, "codec");
    f->replace = be_get(req, "replace");
    f->ice = be_get_str(req, "ICE");
    f->dtls = be_get_str(req, "DTLS");
    f->transport = be_get_str(req, "transport-protocol");
    f->rtcp_mux = be_get(req, "rtcp-mux");
    f->received_from = be_get(req, "received-from");
    f->trust_address = be_list_has(f->flags, "trust-address");
    f->strict_source = be_list_has(f->flags, "strict-source");
}


/* what the flags or the SDP ask that this relay cannot do: a reason */
static const char *
md_flags_check(md_flags_t *f, md_sdp_t *sdp)
{
    int          i;
    const char  *proto;

    if (f->ice && !be_is(f->ice, "force") && !be_is(f->ice, "remove")
        && !be_is(f->ice, "default"))
    {
        return "ICE must be force, remove or default";
    }

    if (f->transport && !be_is(f->transport, "RTP/AVP")
        && !be_is(f->transport, "UDP/TLS/RTP/SAVPF"))
    {
        return "transport-protocol must be RTP/AVP or UDP/TLS/RTP/SAVPF";
    }

    if (f->dtls && !be_is(f->dtls, "off") && !be_is(f->dtls, "no")
        && !be_is(f->dtls, "passive") && !be_is(f->dtls, "active"))
    {
        return "DTLS must be off, passive or active";
    }

    for (i = 0; i < sdp->nmedia; i++) {
        proto = sdp->media[i].proto;

        if (sdp->media[i].port == 0) {
            continue;
        }

        if (strcmp(proto, "RTP/AVP") != 0 && strcmp(proto, "RTP/AVPF") != 0
            && strcmp(proto, "UDP/TLS/RTP/SAVPF") != 0
            && strcmp(proto, "UDP/TLS/RTP/SAVP") != 0)
        {
            return "unsupported media protocol (SDES-SRTP is not supported)";
        }

        if (strncmp(proto, "UDP/TLS", 7) == 0
            && (sdp->media[i].fingerprint[0] == '\0'
                && sdp->fingerprint[0] == '\0'))
        {
            return "DTLS-SRTP media without a=fingerprint";
        }

        if (strncmp(proto, "UDP/TLS", 7) == 0
            && strncasecmp(sdp->media[i].fingerprint[0]
                           ? sdp->media[i].fingerprint : sdp->fingerprint,
                           "sha-256 ", 8) != 0)
        {
            return "only sha-256 fingerprints are supported";
        }
    }

    return NULL;
}


/* the endpoint address of an m= line; received-from unless trusted */
static int
md_remote_addr(md_sdp_t *sdp, md_sdp_media_t *m, md_flags_t *f,
    struct in_addr *addr)
{
    be_node_t       *fam, *ip;
    char             a[INET_ADDRSTRLEN];

    if (!f->trust_address && f->received_from
        && f->received_from->type == BE_LIST)
    {
        fam = f->received_from->child;
        ip = fam ? fam->next : NULL;

        if (be_is(fam, "IP4") && ip && ip->type == BE_STR
            && ip->len < sizeof(a))
        {
            memcpy(a, ip->s, ip->len);
            a[ip->len] = '\0';

            if (inet_pton(AF_INET, a, addr) == 1) {
                return 0;
            }
        }
    }

    if (m->has_addr) {
        *addr = m->addr;
        return 0;
    }

    if (sdp->has_addr) {
        *addr = sdp->addr;
        return 0;
    }

    return -1;
}


/*
 * RFC 4733 §2.1: events in the clock of the audio they go with.  The
 * telephone-event of codecs[0..n) at rate Hz, else the 8 kHz one, else
 * NULL.
 */
static md_codec_t *
md_dtmf_codec(md_codec_t *codecs, int n, int rate)
{
    int          i;
    md_codec_t  *te8k;

    te8k = NULL;

    for (i = 0; i < n; i++) {
        if (md_codec_id(&codecs[i]) != MD_CODEC_TELEPHONE_EVENT) {
            continue;
        }

        if (codecs[i].rate == rate) {
            return &codecs[i];
        }

        if (codecs[i].rate == 8000 && te8k == NULL) {
            te8k = &codecs[i];
        }
    }

    return te8k;
}


/* the telephone-event s is sent with audio at rate Hz, of those it declared */
static md_codec_t *
md_stream_dtmf(md_stream_t *s, int rate)
{
    md_codec_t  *te;

    te = md_dtmf_codec(s->codecs, s->ncodecs, rate);
    s->dtmf_pt = te ? te->pt : -1;
    s->dtmf_rate = te ? te->rate : 8000;

    return te;
}


/*
 * the codec s is sent (after an answer), else the first it declared or,
 * before it declared any, was offered; NULL: none
 */
static md_codec_t *
md_stream_codec(md_stream_t *s)
{
    int  i;

    for (i = 0; s->send_pt >= 0 && i < s->ncodecs; i++) {
        if (s->codecs[i].pt == s->send_pt) {
            return &s->codecs[i];
        }
    }

    return s->ncodecs ? &s->codecs[0] : s->ngiven ? &s->given[0] : NULL;
}


/* takes what the endpoint of stream s said about itself in m */
static void
md_stream_learn(md_stream_t *s, md_sdp_t *sdp, md_sdp_media_t *m,
    md_flags_t *f)
{
    struct in_addr  addr;

    memcpy(s->media, m->media, sizeof(s->media));
    memcpy(s->proto, m->proto, sizeof(s->proto));
    memcpy(s->direction, m->direction, sizeof(s->direction));
    s->rtcp_mux = m->rtcp_mux;
    s->ptime = m->ptime;
    s->ncodecs = m->ncodecs;
    memcpy(s->codecs, m->codecs, sizeof(md_codec_t) * (size_t) m->ncodecs);
    s->leg->strict_source = f->strict_source;

    /* WebRTC: ICE and DTLS attributes, media or session level */

    s->webrtc = strncmp(m->proto, "UDP/TLS/", 8) == 0;
    s->leg->bundle = sdp->bundle;
    memcpy(s->mid, m->mid, sizeof(s->mid));
    memcpy(s->remote_setup, m->setup, sizeof(s->remote_setup));
    memcpy(s->remote_ufrag, m->ice_ufrag[0] ? m->ice_ufrag : sdp->ice_ufrag,
           sizeof(s->remote_ufrag));
    memcpy(s->remote_fp, m->fingerprint[0] ? m->fingerprint
                                            : sdp->fingerprint,
           sizeof(s->remote_fp));

    if (s->remote_ufrag[0]) {
        /* an ICE agent: its address comes from its connectivity checks */
        s->ice = 1;

        if (s->ice_ufrag[0] == '\0') {
            md_ice_credentials(s->ice_ufrag, s->ice_pwd);
        }

        return;
    }

    if (m->port == 0 || md_remote_addr(sdp, m, f, &addr) != 0
        || addr.s_addr == INADDR_ANY)
    {
        /* rejected m= line, or on hold with 0.0.0.0 */
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


static int
md_name_in(be_node_t *list, md_codec_t *c)
{
    be_node_t  *i;

    if (list == NULL || list->type != BE_LIST) {
        return 0;
    }

    for (i = list->child; i; i = i->next) {
        if (be_is(i, "all") || be_is(i, c->name)) {
            return 1;
        }
    }

    return 0;
}


/* want when codecs[0..n) do not use it, else a free one of 96-127; or -1 */
static int
md_free_pt(md_codec_t *codecs, int n, int want)
{
    int  k, pt, i, used;

    for (k = -1; k < 32; k++) {
        pt = (k < 0) ? want : 96 + k;
        used = 0;

        for (i = 0; i < n; i++) {
            if (codecs[i].pt == pt) {
                used = 1;
                break;
            }
        }

        if (!used) {
            return pt;
        }
    }

    return -1;
}


/* what the answerer of an offer will speak, from the offerer and flags */
static void
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


/*
 * the DTLS association with s's endpoint, our role from its a=setup
 * (RFC 5763 §5): it is active or actpass -> we are passive, and so on
 */
static const char *
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


/*
 * the codecs offered to the answerer: the offerer's, with codec-strip and
 * codec-mask removed, codec-offer restricting, codec-transcode appended
 */
static const char *
md_codecs_offer(md_stream_t *from, md_stream_t *to, md_flags_t *f)
{
    int           i, n, pt, own, ntc;
    md_codec_t    c, *out, *te;
    be_node_t    *strip, *mask, *offer, *tc, *name;

    strip = be_get(f->codec, "strip");
    mask = be_get(f->codec, "mask");
    offer = be_get(f->codec, "offer");
    tc = be_get(f->codec, "transcode");

    out = to->given;
    n = 0;

    /* audio codecs first, telephone-event after the transcoded ones */

    for (i = 0; i < from->ncodecs; i++) {
        c = from->codecs[i];

        if (md_codec_id(&c) == MD_CODEC_TELEPHONE_EVENT
            || md_name_in(strip, &c) || md_name_in(mask, &c)
            || (offer && !md_name_in(offer, &c)))
        {
            continue;
        }

        out[n++] = c;
    }

    own = n;

    if (tc && tc->type == BE_LIST) {
        for (name = tc->child; name; name = name->next) {
            memset(&c, 0, sizeof(c));

            if (name->type != BE_STR || name->len >= sizeof(c.name)) {
                return "invalid codec-transcode entry";
            }

            memcpy(c.name, name->s, name->len);
            c.rate = 8000;
            c.channels = 1;

            if (strcasecmp(c.name, "opus") == 0) {
                strcpy(c.name, "opus");
                c.rate = 48000;
                c.channels = 2;
                strcpy(c.fmtp, "minptime=10;useinbandfec=1");
            }

            if (md_codec_id(&c) == MD_CODEC_UNKNOWN) {
                return "codec-transcode: PCMA, PCMU and opus are supported";
            }

            if (md_sdp_codec_named(out, n, c.name) || n == MD_MAX_CODECS) {
                continue;
            }

            pt = md_free_pt(out, n, md_codec_id(&c) == MD_CODEC_PCMU ? 0
                                    : md_codec_id(&c) == MD_CODEC_PCMA ? 8
                                    : 111);
            if (pt < 0) {
                return "no free payload type";
            }

            c.pt = pt;
            out[n++] = c;
        }
    }

    ntc = n;

    for (i = 0; i < from->ncodecs && n < MD_MAX_CODECS; i++) {
        if (md_codec_id(&from->codecs[i]) == MD_CODEC_TELEPHONE_EVENT) {
            out[n++] = from->codecs[i];
        }
    }

    /* a codec we transcode into gets events in its own clock */

    for (i = own; n > ntc && i < ntc && n < MD_MAX_CODECS; i++) {
        te = md_dtmf_codec(out, n, out[i].rate);

        if (te && te->rate == out[i].rate) {
            continue;
        }

        c = out[ntc];       /* the offerer's first telephone-event */
        c.rate = out[i].rate;
        c.pt = md_free_pt(out, n, 101);

        if (c.pt < 0) {
            break;
        }

        out[n++] = c;
    }

    to->ngiven = n;

    if (to->ncodecs == 0) {
        /* until it answers: the numbers it was offered (RFC 3264 §6.1) */
        to->ncodecs = n;
        memcpy(to->codecs, out, sizeof(md_codec_t) * (size_t) n);
    }

    for (i = 0; i < n; i++) {
        if (md_codec_id(&out[i]) != MD_CODEC_TELEPHONE_EVENT) {
            return NULL;
        }
    }

    return "no codec left to offer";
}


/* ---- SDP out ---- */

static void
md_out(be_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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


/*
 * in, rewritten for the endpoint of leg to: our address and ports, the
 * codecs of to's streams, RTCP, direction, and for a WebRTC endpoint
 * ICE-Lite (RFC 8839) and DTLS (RFC 8842) attributes
 */
static const char *
md_sdp_out(be_buf_t *b, md_sdp_t *in, md_leg_t *to, md_flags_t *f,
    int offer)
{
    int              i, k, mux, ice, bundle;
    char             origin[256], *sp, cand[256];
    unsigned         rtcp_port;
    md_codec_t      *c;
    md_stream_t     *s;
    md_sdp_media_t  *m;

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

    for (i = 0; i < in->nattrs; i++) {
        if (!md_attr_webrtc_only(in->attrs[i])) {
            md_out(b, "%s\r\n", in->attrs[i]);
        }
    }

    for (i = 0; i < in->nmedia; i++) {
        m = &in->media[i];
        s = to->streams[i];

        md_out(b, "m=%s %u %s", m->media, m->port ? s->port : 0,
               s->webrtc ? "UDP/TLS/RTP/SAVPF" : "RTP/AVP");

        for (k = 0; k < s->ngiven; k++) {
            md_out(b, " %d", s->given[k].pt);
        }

        md_out(b, "\r\n");

        for (k = 0; k < m->nattrs; k++) {
            if (!md_attr_webrtc_only(m->attrs[k])) {
                md_out(b, "%s\r\n", m->attrs[k]);
            }
        }

        if (s->webrtc) {
            if (s->mid[0] == '\0') {
                snprintf(s->mid, sizeof(s->mid), "%d", i);
            }

            md_out(b, "a=mid:%s\r\n", s->mid);
        }

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

        md_out(b, "a=%s\r\n", m->direction);

        /*
         * RFC 5761 §5.1.1: an offer of mux keeps the separate RTCP port
         * (unless "require"); an answer that accepts mux names the RTP
         * port.  The offerer's own mux is accepted back (even with
         * "demux", which concerns the other side).  WebRTC endpoints
         * always mux (RFC 8858).
         */
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
        md_out(b, "a=rtcp:%u IN IP4 %s\r\n", rtcp_port,
               md_conf.advertised_str);

        if (mux) {
            md_out(b, "a=rtcp-mux\r\n");
        }

        if (s->ice) {
            md_out(b, "a=ice-ufrag:%s\r\n", s->ice_ufrag);
            md_out(b, "a=ice-pwd:%s\r\n", s->ice_pwd);

            /*
             * the host candidate; behind NAT (--interface LOCAL!PUBLIC)
             * also the public address as server-reflexive (RFC 8445 §5.1.1.2)
             */
            if (md_ice_candidate(cand, sizeof(cand), "1", &md_conf.local,
                                 s->port, 0, NULL, 0) > 0)
            {
                md_out(b, "a=candidate:%s\r\n", cand);
            }

            if (md_conf.advertised.s_addr != md_conf.local.s_addr
                && md_ice_candidate(cand, sizeof(cand), "2",
                                    &md_conf.advertised, s->port, 1,
                                    &md_conf.local, s->port) > 0)
            {
                md_out(b, "a=candidate:%s\r\n", cand);
            }

            md_out(b, "a=end-of-candidates\r\n");
        }

        if (s->webrtc) {
            md_out(b, "a=fingerprint:%s\r\n", md_dtls_fingerprint());
            md_out(b, "a=setup:%s\r\n", s->setup[0] ? s->setup : "actpass");
        }
    }

    return b->failed ? "SDP too large" : NULL;
}


/* ---- offer / answer ---- */

static const char *
md_sdp_from(be_node_t *req, md_sdp_t **sdp)
{
    be_node_t   *v;
    const char  *err;

    v = be_get_str(req, "sdp");
    if (v == NULL) {
        return "no SDP";
    }

    *sdp = md_sdp_parse(v->s, v->len, &err);

    return *sdp ? NULL : err;
}


static void
md_reply_sdp(be_buf_t *reply, be_buf_t *sdp)
{
    be_kv(reply, "sdp", sdp->data, sdp->len);
}


const char *
md_call_offer(be_node_t *req, be_buf_t *reply)
{
    int          i, from, created;
    be_node_t   *id, *tag;
    be_buf_t     out;
    md_sdp_t    *sdp;
    md_call_t   *c;
    md_flags_t   f;
    const char  *err;
    md_stream_t *a, *b;

    id = be_get_str(req, "call-id");
    tag = be_get_str(req, "from-tag");

    if (id == NULL || tag == NULL || id->len == 0 || tag->len == 0
        || id->len >= MD_ID_LEN || tag->len >= MD_ID_LEN)
    {
        return "offer needs call-id and from-tag";
    }

    err = md_sdp_from(req, &sdp);
    if (err) {
        return err;
    }

    md_flags_get(req, &f);

    err = md_flags_check(&f, sdp);
    if (err) {
        md_sdp_free(sdp);
        return err;
    }

    created = 0;
    c = md_call_find(id);

    if (c == NULL) {
        c = md_call_new(id);
        if (c == NULL) {
            md_sdp_free(sdp);
            return "out of memory";
        }

        (void) md_copy_id(c->legs[0].tag, tag);
        created = 1;
    }

    /* a re-offer may come from either side */

    if (md_tag_is(&c->legs[0], tag)) {
        from = 0;

    } else if (md_tag_is(&c->legs[1], tag)) {
        from = 1;

    } else {
        md_sdp_free(sdp);
        return "from-tag is not a party of this call";
    }

    err = md_call_streams(c, sdp->nmedia);

    for (i = 0; err == NULL && i < sdp->nmedia; i++) {
        a = c->legs[from].streams[i];
        b = a->peer;
        md_stream_learn(a, sdp, &sdp->media[i], &f);
        a->mux_accept = be_list_has(f.rtcp_mux, "demux")
                        || be_list_has(f.rtcp_mux, "accept");
        md_stream_target(b, a, &f);
        err = md_codecs_offer(a, b, &f);
    }

    memset(&out, 0, sizeof(out));

    if (err == NULL) {
        err = md_sdp_out(&out, sdp, &c->legs[1 - from], &f, 1);
    }

    if (err == NULL) {
        md_reply_sdp(reply, &out);
        c->last_signal = md_now();
        md_log(MD_LOG_INFO, "[%s] offer from %s: %d stream(s)", c->id,
               c->legs[from].tag, sdp->nmedia);

    } else if (created) {
        md_call_free(c);
    }

    be_buf_free(&out);
    md_sdp_free(sdp);

    return err;
}


/*
 * s's payload type map (md_pt_map_t) from what s and its peer declared:
 * telephone-event becomes the peer's events, the codec s is sent becomes
 * the transcoder's input when there is one, any other codec the peer's
 * number for it (md_codec_same); the rest is dropped
 */
static void
md_stream_map(md_stream_t *s)
{
    int           i;
    md_codec_t   *c, *same;
    md_pt_map_t  *m;
    md_codec_id_e id;

    memset(s->pt_map, 0, sizeof(s->pt_map));

    for (i = 0; i < s->ncodecs; i++) {
        c = &s->codecs[i];
        m = &s->pt_map[c->pt];
        id = md_codec_id(c);

        if (m->action != MD_PT_DROP) {
            continue;       /* a number declared twice: the first counts */
        }

        m->rate = c->rate > 0 ? c->rate : 8000;
        same = md_codec_find(s->peer->codecs, s->peer->ncodecs, c);

        if (id == MD_CODEC_TELEPHONE_EVENT) {
            m->action = MD_PT_DTMF;

        } else if (s->tc && id == s->send_codec) {
            m->action = MD_PT_TRANSCODE;

        } else if (same) {
            m->action = MD_PT_PASS;
            m->pt = same->pt;
        }
    }
}


/*
 * what each side is sent, from the answer: the answerer's first audio
 * codec; the offerer gets the same when it offered it, else its own first
 * codec that transcodes to it.  Each side's numbers are those it declared.
 */
static const char *
md_negotiate(md_stream_t *offerer, md_stream_t *answerer)
{
    int          i;
    md_codec_t  *ac, *oc, *ate, *ote;

    ac = NULL;

    for (i = 0; i < answerer->ncodecs; i++) {
        if (md_codec_id(&answerer->codecs[i]) != MD_CODEC_TELEPHONE_EVENT) {
            ac = &answerer->codecs[i];
            break;
        }
    }

    if (ac == NULL) {
        if (answerer->ncodecs == 0 || answerer->remote.sin_port == 0) {
            return NULL;     /* rejected stream */
        }
        return "the answer has no audio codec";
    }

    answerer->send_pt = ac->pt;
    answerer->send_codec = md_codec_id(ac);

    oc = md_codec_find(offerer->codecs, offerer->ncodecs, ac);

    if (oc == NULL) {
        for (i = 0; i < offerer->ncodecs; i++) {
            if (md_codec_can_transcode(md_codec_id(&offerer->codecs[i]),
                                       answerer->send_codec))
            {
                oc = &offerer->codecs[i];
                break;
            }
        }

        if (oc == NULL) {
            return "no codec in common and no transcoding path";
        }
    }

    offerer->send_pt = oc->pt;
    offerer->send_codec = md_codec_id(oc);

    /* the offerer is told only what it will get */
    offerer->ngiven = 0;
    offerer->given[offerer->ngiven++] = *oc;

    offerer->rate = oc->rate;
    answerer->rate = ac->rate;

    md_tc_free(offerer->tc);
    md_tc_free(answerer->tc);
    offerer->tc = NULL;
    answerer->tc = NULL;

    if (offerer->send_codec != answerer->send_codec) {
        /* each transcoder packetizes for the endpoint it sends to */
        offerer->tc = md_tc_new((md_tc_codec_e) offerer->send_codec,
                                (md_tc_codec_e) answerer->send_codec,
                                answerer->ptime);
        answerer->tc = md_tc_new((md_tc_codec_e) answerer->send_codec,
                                 (md_tc_codec_e) offerer->send_codec,
                                 offerer->ptime);

        if (offerer->tc == NULL || answerer->tc == NULL) {
            return "transcoder setup failed";
        }
    }

    /* telephone-event goes across when both sides have it */

    ate = md_stream_dtmf(answerer, ac->rate);
    ote = md_stream_dtmf(offerer, oc->rate);

    if (ote && ate) {
        offerer->given[offerer->ngiven++] = *ote;

    } else {
        offerer->dtmf_pt = -1;
    }

    md_stream_map(offerer);
    md_stream_map(answerer);

    return NULL;
}


const char *
md_call_answer(be_node_t *req, be_buf_t *reply)
{
    int          i, to;
    be_node_t   *id, *ftag, *ttag;
    be_buf_t     out;
    md_sdp_t    *sdp;
    md_call_t   *c;
    md_flags_t   f;
    md_codec_t  *ac, *bc;
    const char  *err;
    md_stream_t *a, *b;

    id = be_get_str(req, "call-id");
    ftag = be_get_str(req, "from-tag");
    ttag = be_get_str(req, "to-tag");

    if (id == NULL || ftag == NULL || ttag == NULL) {
        return "answer needs call-id, from-tag and to-tag";
    }

    c = md_call_find(id);
    if (c == NULL) {
        return "Unknown call-id";
    }

    /* from-tag names the offerer; the answer comes from the other leg */

    if (md_tag_is(&c->legs[0], ftag)) {
        to = 0;

    } else if (md_tag_is(&c->legs[1], ftag)) {
        to = 1;

    } else {
        return "from-tag is not a party of this call";
    }

    if (c->legs[1 - to].tag[0] == '\0') {
        if (md_copy_id(c->legs[1 - to].tag, ttag) != 0) {
            return "invalid to-tag";
        }

    } else if (!md_tag_is(&c->legs[1 - to], ttag)) {
        return "to-tag does not match this call";
    }

    err = md_sdp_from(req, &sdp);
    if (err) {
        return err;
    }

    if (sdp->nmedia > c->legs[to].nstreams) {
        md_sdp_free(sdp);
        return "the answer has more m= lines than the offer";
    }

    md_flags_get(req, &f);

    err = md_flags_check(&f, sdp);

    for (i = 0; err == NULL && i < sdp->nmedia; i++) {
        b = c->legs[1 - to].streams[i];
        a = b->peer;

        md_stream_learn(b, sdp, &sdp->media[i], &f);
        err = md_negotiate(a, b);
        /* rtpengine's rule: the offerer muxes if the answerer does, or
         * if the offer said demux/accept (we demux for the other side) */
        if (a->rtcp_mux && !(sdp->media[i].port
                             && (b->rtcp_mux || a->mux_accept || a->webrtc)))
        {
            /* it offered mux, the answer tells it to demux */
            a->rtcp_mux = 0;

            if (!a->latched && a->has_remote) {
                a->remote_rtcp.sin_port = htons(a->rtcp_port);
            }
        }

        if (err == NULL) {
            err = md_stream_dtls(b);
        }

        if (err == NULL && f.dtls && a->dtls == NULL
            && (be_is(f.dtls, "active") || be_is(f.dtls, "passive")))
        {
            /* the answer's DTLS flag sets our role towards the offerer */
            strcpy(a->setup, be_is(f.dtls, "active") ? "active" : "passive");
        }

        if (err == NULL) {
            err = md_stream_dtls(a);
        }
    }

    memset(&out, 0, sizeof(out));

    if (err == NULL) {
        err = md_sdp_out(&out, sdp, &c->legs[to], &f, 0);
    }

    if (err == NULL) {
        md_reply_sdp(reply, &out);
        c->answered = 1;
        c->last_signal = md_now();
        md_registry_call(c, 1);

        for (i = 0; i < sdp->nmedia; i++) {
            a = c->legs[to].streams[i];
            ac = md_stream_codec(a);
            bc = md_stream_codec(a->peer);
            md_log(MD_LOG_INFO, "[%s] stream %d: %s pt %d <-> %s pt %d%s",
                   c->id, i, ac ? ac->name : "-", a->send_pt,
                   bc ? bc->name : "-", a->peer->send_pt,
                   a->send_codec != a->peer->send_codec ? " (transcoding)"
                                                        : "");
        }
    }

    be_buf_free(&out);
    md_sdp_free(sdp);

    return err;
}


/* ---- delete, query, list, timeouts ---- */

const char *
md_call_delete(be_node_t *req, be_buf_t *reply)
{
    be_node_t  *id;
    md_call_t  *c;

    id = be_get_str(req, "call-id");
    if (id == NULL) {
        return "delete needs call-id";
    }

    c = md_call_find(id);
    if (c == NULL) {
        /* controllers delete twice (BYE, then a timeout): not an error */
        be_kcstr(reply, "warning", "Call-ID not found or tags didn't match");
        return NULL;
    }

    md_log(MD_LOG_INFO, "[%s] deleted", c->id);
    md_call_free(c);

    return NULL;
}


static void
md_query_addr(be_buf_t *b, const char *key, struct sockaddr_in *sin)
{
    char  a[INET_ADDRSTRLEN];

    inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));

    be_cstr(b, key);
    be_dict(b);
    be_kcstr(b, "family", "IPv4");
    be_kcstr(b, "address", a);
    be_kint(b, "port", ntohs(sin->sin_port));
    be_end(b);
}


/*
 * call totals and, per tag and m= line, its stream: local port,
 * endpoint, last packet (s ago), flags, and stats (packets, bytes, errors
 * in; lost and jitter (ms) from RFC 3550 A.3/A.8; rtt (ms, -1 until
 * measured) from its reports on the SRs we forwarded; packets sent).  The
 * shape of rtpengine's query, with loss and jitter added
 */
const char *
md_call_query(be_node_t *req, be_buf_t *reply)
{
    int           l, i;
    double        now, rate;
    be_node_t    *id;
    md_call_t    *c;
    md_codec_t   *sc;
    md_stream_t  *s;
    uint64_t      packets, bytes, errors;

    id = be_get_str(req, "call-id");
    if (id == NULL) {
        return "query needs call-id";
    }

    c = md_call_find(id);
    if (c == NULL) {
        return "Unknown call-id";
    }

    now = md_now();
    packets = bytes = errors = 0;

    be_kint(reply, "created", (int64_t) c->created_wall);
    be_kint(reply, "last signal",
            (int64_t) (c->created_wall + (c->last_signal - c->created)));

    be_cstr(reply, "tags");
    be_dict(reply);

    for (l = 0; l < 2; l++) {
        if (c->legs[l].tag[0] == '\0') {
            continue;
        }

        be_cstr(reply, c->legs[l].tag);
        be_dict(reply);
        be_kcstr(reply, "tag", c->legs[l].tag);
        be_cstr(reply, "medias");
        be_list(reply);

        for (i = 0; i < c->legs[l].nstreams; i++) {
            s = c->legs[l].streams[i];
            sc = md_stream_codec(s);
            rate = sc && sc->rate > 0 ? sc->rate : 8000;

            be_dict(reply);
            be_kint(reply, "index", i + 1);
            be_kcstr(reply, "type", s->media[0] ? s->media : "audio");
            be_kcstr(reply, "protocol", s->webrtc ? "UDP/TLS/RTP/SAVPF"
                                                  : "RTP/AVP");

            if (sc) {
                char  codec[48];

                snprintf(codec, sizeof(codec), "%s/%d", sc->name, sc->rate);
                be_kcstr(reply, "codec", codec);
            }

            be_cstr(reply, "streams");
            be_list(reply);
            be_dict(reply);
            be_kint(reply, "local port", s->port);
            be_kcstr(reply, "local address", md_conf.advertised_str);

            if (s->has_remote) {
                md_query_addr(reply, "endpoint", &s->remote);
            }

            be_kint(reply, "last packet",
                    s->last_in ? (int64_t) (now - s->last_in) : -1);
            be_cstr(reply, "flags");
            be_list(reply);
            be_cstr(reply, "RTP");
            if (s->ice_selected) {
                be_cstr(reply, "ICE");
            }
            if (s->dtls && md_dtls_ready(s->dtls)) {
                be_cstr(reply, "DTLS");
            }
            if (s->tc) {
                be_cstr(reply, "transcoding");
            }
            be_end(reply);

            be_cstr(reply, "stats");
            be_dict(reply);
            be_kint(reply, "packets", (int64_t) s->in.packets);
            be_kint(reply, "bytes", (int64_t) s->in.bytes);
            be_kint(reply, "errors", (int64_t) s->in.errors);
            be_kint(reply, "lost", (int64_t) s->in.lost);
            be_kint(reply, "jitter", (int64_t) (s->in.jitter * 1000 / rate));
            be_kint(reply, "packets sent", (int64_t) s->packets_out);
            be_kint(reply, "RTCP packets", (int64_t) s->rtcp_packets);
            be_kint(reply, "rtt", s->rtt ? (int64_t) (s->rtt * 1000 + 0.5)
                                         : -1);
            be_end(reply);
            be_end(reply);
            be_end(reply);

            be_end(reply);

            packets += s->in.packets;
            bytes += s->in.bytes;
            errors += s->in.errors;
        }

        be_end(reply);
        be_end(reply);
    }

    be_end(reply);

    be_cstr(reply, "totals");
    be_dict(reply);
    be_cstr(reply, "RTP");
    be_dict(reply);
    be_kint(reply, "packets", (int64_t) packets);
    be_kint(reply, "bytes", (int64_t) bytes);
    be_kint(reply, "errors", (int64_t) errors);
    be_end(reply);
    be_end(reply);

    return NULL;
}


const char *
md_call_list(be_node_t *req, be_buf_t *reply)
{
    int         i, t;
    int64_t     limit, n;
    be_node_t  *lim;
    md_call_t  *c;

    lim = be_get(req, "limit");
    limit = (lim && lim->type == BE_INT && lim->i > 0) ? lim->i : 32;
    n = 0;

    be_cstr(reply, "calls");
    be_list(reply);

    pthread_mutex_lock(&md_call_dir);

    for (t = 0; t < md_thread_count(); t++) {
        for (i = 0; i < MD_CALL_HASH && n < limit; i++) {
            for (c = md_call_tables[t][i]; c && n < limit; c = c->next) {
                be_cstr(reply, c->id);
                n++;
            }
        }
    }

    pthread_mutex_unlock(&md_call_dir);

    be_end(reply);

    return NULL;
}


void
md_call_timeouts(void)
{
    int          i, l, k, alive;
    double       now, last;
    md_call_t   *c, *next;
    md_live_t    live;
    md_stream_t *s;

    now = md_now();
    md_conf_live(&live);

    for (i = 0; i < MD_CALL_HASH; i++) {
        for (c = md_calls[i]; c; c = next) {
            next = c->next;

            /* the newest of: the last signal, the last packet */
            last = c->last_signal;
            alive = 0;

            for (l = 0; l < 2; l++) {
                for (k = 0; k < c->legs[l].nstreams; k++) {
                    s = c->legs[l].streams[k];

                    if (s->dtls) {
                        md_dtls_timer(s->dtls);
                    }

                    if (s->last_in > last) {
                        last = s->last_in;
                    }
                    alive |= s->has_remote;
                }
            }

            if (now - last >= live.timeout) {
                md_log(MD_LOG_INFO, "[%s] no media for %d s%s: deleted",
                       c->id, live.timeout,
                       alive ? "" : " (never connected)");
                md_call_free(c);
            }
        }
    }
}


/* ---- play media, stop media, start recording, stop recording ---- */

/* the call and the leg named by from-tag (NULL tag: any) */
static const char *
md_call_leg(be_node_t *req, md_call_t **c, md_leg_t **leg)
{
    be_node_t  *id, *tag;

    id = be_get_str(req, "call-id");
    if (id == NULL) {
        return "call-id missing";
    }

    *c = md_call_find(id);
    if (*c == NULL) {
        return "Unknown call-id";
    }

    tag = be_get_str(req, "from-tag");
    *leg = NULL;

    if (tag == NULL) {
        return NULL;
    }

    if (md_tag_is(&(*c)->legs[0], tag)) {
        *leg = &(*c)->legs[0];

    } else if (md_tag_is(&(*c)->legs[1], tag)) {
        *leg = &(*c)->legs[1];

    } else {
        return "from-tag is not a party of this call";
    }

    return NULL;
}


/* "play media": the WAV file to from-tag's endpoint, first audio stream */
const char *
md_call_play(be_node_t *req, be_buf_t *reply)
{
    int          i;
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_call_leg(req, &c, &leg);
    if (err) {
        return err;
    }

    if (leg == NULL) {
        return "play media needs from-tag (the party that hears it)";
    }

    for (i = 0; i < leg->nstreams; i++) {
        if (strcmp(leg->streams[i]->media, "audio") == 0) {
            return md_media_play(leg->streams[i], req, reply);
        }
    }

    return "no audio stream to play into";
}


/* fn on every stream of the call, or of leg only when leg is not NULL */
static void
md_call_each(md_call_t *c, md_leg_t *leg, void (*fn)(md_stream_t *s))
{
    int  l, i;

    for (l = 0; l < 2; l++) {
        if (leg && leg != &c->legs[l]) {
            continue;
        }

        for (i = 0; i < c->legs[l].nstreams; i++) {
            fn(c->legs[l].streams[i]);
        }
    }
}


const char *
md_call_stop_media(be_node_t *req, be_buf_t *reply)
{
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_call_leg(req, &c, &leg);
    if (err == NULL) {
        md_call_each(c, leg, md_player_free);
    }

    return err;
}


const char *
md_call_start_recording(be_node_t *req, be_buf_t *reply)
{
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_call_leg(req, &c, &leg);

    return err ? err : md_media_record(c, reply);
}


const char *
md_call_stop_recording(be_node_t *req, be_buf_t *reply)
{
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_call_leg(req, &c, &leg);
    if (err == NULL) {
        md_call_each(c, NULL, md_recorder_free);
    }

    return err;
}
