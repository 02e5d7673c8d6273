/*
 * The NG offer and answer (commands.h, docs/ng.md; RFC 3264).
 *
 * An offer from leg A allocates a stream per m= line on both legs and
 * returns A's SDP rewritten for B: our B-facing port, the codecs B may
 * use (A's, filtered and extended by the codec flags).  The answer from B
 * fixes what each side sends: the same codec when B picked one of A's,
 * else a transcoded pair, and returns B's SDP rewritten for A.  Either
 * side may offer again later (re-INVITE).
 */

#include "commands.h"
#include "negotiate.h"
#include "registry.h"
#include "sdp_out.h"
#include "stream.h"
#include "util.h"

#include <arpa/inet.h>
#include <string.h>


/*
 * the SDP of req, parsed (at most nmedia m= lines: that of the offer, for
 * an answer), and req's flags, checked against it
 */
static const char *
md_request_sdp(be_node_t *req, int nmedia, md_sdp_t **sdp, md_flags_t *f)
{
    be_node_t   *v;
    const char  *err;

    v = be_get_str(req, "sdp");
    if (v == NULL) {
        return "no SDP";
    }

    *sdp = md_sdp_parse(v->s, v->len, &err);
    if (*sdp == NULL) {
        return err;
    }

    md_flags_get(req, f);

    err = ((*sdp)->nmedia > nmedia)
          ? "the answer has more m= lines than the offer"
          : md_flags_check(f, *sdp);
    if (err) {
        md_sdp_free(*sdp);
        *sdp = NULL;
    }

    return err;
}


/* sdp rewritten for the endpoint of leg to, as the reply's "sdp" */
static const char *
md_reply_sdp(be_buf_t *reply, md_sdp_t *sdp, md_leg_t *to, md_flags_t *f,
    int offer)
{
    be_buf_t     out;
    const char  *err;

    memset(&out, 0, sizeof(out));

    err = md_sdp_out(&out, sdp, to, f, offer);
    if (err == NULL) {
        be_kv(reply, "sdp", out.data, out.len);
    }

    be_buf_free(&out);

    return err;
}


/* the index of the leg tag names in c, or -1 */
static int
md_leg_index(md_call_t *c, be_node_t *tag)
{
    return md_leg_is(&c->legs[0], tag) ? 0
           : md_leg_is(&c->legs[1], tag) ? 1 : -1;
}


/*
 * the call an offer is for, made (*created = 1, tag its first leg) when
 * new, and the leg the offer comes from: a re-offer may come from either
 */
static const char *
md_offer_call(be_node_t *id, be_node_t *tag, md_call_t **c, int *from,
    int *created)
{
    *created = 0;
    *c = md_call_find(id);

    if (*c == NULL) {
        *c = md_call_new(id);
        if (*c == NULL) {
            return "out of memory";
        }

        (void) md_leg_name(&(*c)->legs[0], tag);
        *created = 1;
    }

    *from = md_leg_index(*c, tag);

    return *from < 0 ? "from-tag is not a party of this call" : NULL;
}


/*
 * each m= line of an offer from leg from: what its sender said of itself,
 * what the other side will speak, the codecs offered to it
 */
static const char *
md_offer_streams(md_call_t *c, int from, md_sdp_t *sdp, md_flags_t *f)
{
    int           i;
    const char   *err;
    md_stream_t  *a, *b;

    err = md_call_streams(c, sdp->nmedia);

    for (i = 0; err == NULL && i < sdp->nmedia; i++) {
        a = c->legs[from].streams[i];
        b = a->peer;
        md_stream_learn(a, sdp, &sdp->media[i], f);
        a->mux_accept = be_list_has(f->rtcp_mux, "demux")
                        || be_list_has(f->rtcp_mux, "accept");
        md_stream_target(b, a, f);
        err = md_codecs_offer(a, b, f);
    }

    return err;
}


const char *
md_call_offer(be_node_t *req, be_buf_t *reply)
{
    int          from, created;
    be_node_t   *id, *tag;
    md_sdp_t    *sdp;
    md_call_t   *c;
    md_flags_t   f;
    const char  *err;

    id = be_get_str(req, "call-id");
    tag = be_get_str(req, "from-tag");

    if (id == NULL || tag == NULL || id->len == 0 || tag->len == 0
        || id->len >= MD_ID_LEN || tag->len >= MD_ID_LEN)
    {
        return "offer needs call-id and from-tag";
    }

    err = md_request_sdp(req, MD_MAX_MEDIA, &sdp, &f);
    if (err) {
        return err;
    }

    err = md_offer_call(id, tag, &c, &from, &created);

    if (err == NULL) {
        err = md_offer_streams(c, from, sdp, &f);
    }

    if (err == NULL) {
        err = md_reply_sdp(reply, sdp, &c->legs[1 - from], &f, 1);
    }

    if (err == NULL) {
        c->last_signal = md_now();
        md_log(MD_LOG_INFO, "[%s] offer from %s: %d stream(s)", c->id,
               c->legs[from].tag, sdp->nmedia);

    } else if (created) {
        md_call_free(c);
    }

    md_sdp_free(sdp);

    return err;
}


/*
 * the leg the offer of an answer came from (from-tag; the answer comes
 * from the other one, named to-tag on the first answer)
 */
static const char *
md_answer_leg(md_call_t *c, be_node_t *ftag, be_node_t *ttag, int *to)
{
    md_leg_t  *answerer;

    *to = md_leg_index(c, ftag);
    if (*to < 0) {
        return "from-tag is not a party of this call";
    }

    answerer = &c->legs[1 - *to];

    if (answerer->tag[0] == '\0') {
        return md_leg_name(answerer, ttag) == 0 ? NULL : "invalid to-tag";
    }

    return md_leg_is(answerer, ttag) ? NULL
                                     : "to-tag does not match this call";
}


/*
 * rtpengine's rtcp-mux rule (RFC 5761 §5.1.1): the offerer a muxes if the
 * answerer b does, or if the offer said demux/accept (we demux for the
 * other side); else an offered mux is declined and RTCP goes to its port
 */
static void
md_answer_mux(md_stream_t *a, md_stream_t *b, md_sdp_media_t *m)
{
    if (!a->rtcp_mux || (m->port && (b->rtcp_mux || a->mux_accept
                                     || a->webrtc)))
    {
        return;
    }

    a->rtcp_mux = 0;

    if (!a->latched && a->has_remote) {
        a->remote_rtcp.sin_port = htons(a->rtcp_port);
    }
}


/*
 * one answered m= line: what the answerer b said, the codecs of both
 * directions, rtcp-mux, and the DTLS associations (the answer's DTLS flag
 * sets our role towards the offerer a when it has none yet)
 */
static const char *
md_answer_stream(md_stream_t *b, md_sdp_t *sdp, md_sdp_media_t *m,
    md_flags_t *f)
{
    const char   *err;
    md_stream_t  *a;

    a = b->peer;

    md_stream_learn(b, sdp, m, f);
    err = md_negotiate(a, b);
    md_answer_mux(a, b, m);

    if (err == NULL) {
        err = md_stream_dtls(b);
    }

    if (err == NULL && f->dtls && a->dtls == NULL
        && (be_is(f->dtls, "active") || be_is(f->dtls, "passive")))
    {
        strcpy(a->setup, be_is(f->dtls, "active") ? "active" : "passive");
    }

    return err ? err : md_stream_dtls(a);
}


/* the codecs each stream of leg to was given, logged */
static void
md_answer_log(md_call_t *c, md_leg_t *to, int n)
{
    int           i;
    md_codec_t   *ac, *bc;
    md_stream_t  *a;

    for (i = 0; i < n; i++) {
        a = to->streams[i];
        ac = md_stream_codec(a);
        bc = md_stream_codec(a->peer);
        md_log(MD_LOG_INFO, "[%s] stream %d: %s pt %d <-> %s pt %d%s",
               c->id, i, ac ? ac->name : "-", a->send_pt,
               bc ? bc->name : "-", a->peer->send_pt,
               a->send_codec != a->peer->send_codec ? " (transcoding)" : "");
    }
}


const char *
md_call_answer(be_node_t *req, be_buf_t *reply)
{
    int          i, to;
    be_node_t   *id, *ftag, *ttag;
    md_sdp_t    *sdp;
    md_call_t   *c;
    md_flags_t   f;
    const char  *err;

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

    err = md_answer_leg(c, ftag, ttag, &to);
    if (err) {
        return err;
    }

    err = md_request_sdp(req, c->legs[to].nstreams, &sdp, &f);
    if (err) {
        return err;
    }

    for (i = 0; err == NULL && i < sdp->nmedia; i++) {
        err = md_answer_stream(c->legs[1 - to].streams[i], sdp,
                               &sdp->media[i], &f);
    }

    if (err == NULL) {
        err = md_reply_sdp(reply, sdp, &c->legs[to], &f, 0);
    }

    if (err == NULL) {
        c->answered = 1;
        c->last_signal = md_now();
        md_registry_call(c, 1);
        md_answer_log(c, &c->legs[to], sdp->nmedia);
    }

    md_sdp_free(sdp);

    return err;
}
