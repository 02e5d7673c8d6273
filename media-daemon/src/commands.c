/*
 * The NG commands other than offer and answer (commands.h): delete,
 * query, list, play media, stop media, start recording, stop recording.
 */

#include "commands.h"
#include "conf.h"
#include "media.h"
#include "negotiate.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>


/* the call req's call-id names; NULL with the reason (missing: no id) */
static md_call_t *
md_request_call(be_node_t *req, const char *missing, const char **err)
{
    be_node_t  *id;
    md_call_t  *c;

    id = be_get_str(req, "call-id");
    if (id == NULL) {
        *err = missing;
        return NULL;
    }

    c = md_call_find(id);
    if (c == NULL) {
        *err = "Unknown call-id";
    }

    return c;
}


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


/* an address as rtpengine's query has it: family, address, port */
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


/* RTP, and ICE, DTLS, transcoding when s has them */
static void
md_query_flags(be_buf_t *b, md_stream_t *s)
{
    be_cstr(b, "flags");
    be_list(b);
    be_cstr(b, "RTP");

    if (s->ice_selected) {
        be_cstr(b, "ICE");
    }

    if (s->dtls && md_dtls_ready(s->dtls)) {
        be_cstr(b, "DTLS");
    }

    if (s->tc) {
        be_cstr(b, "transcoding");
    }

    be_end(b);
}


/*
 * what s received: packets, bytes, errors; lost and jitter (ms, at rate
 * Hz) from RFC 3550 A.3/A.8; what it was sent; rtt (ms, -1 until
 * measured) from its reports on the SRs we forwarded
 */
static void
md_query_stats(be_buf_t *b, md_stream_t *s, double rate)
{
    be_cstr(b, "stats");
    be_dict(b);
    be_kint(b, "packets", (int64_t) s->in.packets);
    be_kint(b, "bytes", (int64_t) s->in.bytes);
    be_kint(b, "errors", (int64_t) s->in.errors);
    be_kint(b, "lost", (int64_t) s->in.lost);
    be_kint(b, "jitter", (int64_t) (s->in.jitter * 1000 / rate));
    be_kint(b, "packets sent", (int64_t) s->packets_out);
    be_kint(b, "RTCP packets", (int64_t) s->rtcp_packets);
    be_kint(b, "rtt", s->rtt ? (int64_t) (s->rtt * 1000 + 0.5) : -1);
    be_end(b);
}


/*
 * one media of a tag: index (from 1), type, protocol, codec, and its one
 * stream: local port and address, endpoint, last packet (s ago), flags,
 * stats
 */
static void
md_query_media(be_buf_t *b, md_stream_t *s, double now)
{
    char         codec[48];
    md_codec_t  *sc;

    sc = md_stream_codec(s);

    be_dict(b);
    be_kint(b, "index", s->index + 1);
    be_kcstr(b, "type", s->media[0] ? s->media : "audio");
    be_kcstr(b, "protocol", s->webrtc ? "UDP/TLS/RTP/SAVPF" : "RTP/AVP");

    if (sc) {
        snprintf(codec, sizeof(codec), "%s/%d", sc->name, sc->rate);
        be_kcstr(b, "codec", codec);
    }

    be_cstr(b, "streams");
    be_list(b);
    be_dict(b);
    be_kint(b, "local port", s->port);
    be_kcstr(b, "local address", md_conf.advertised_str);

    if (s->has_remote) {
        md_query_addr(b, "endpoint", &s->remote);
    }

    be_kint(b, "last packet", s->last_in ? (int64_t) (now - s->last_in) : -1);
    md_query_flags(b, s);
    md_query_stats(b, s, sc && sc->rate > 0 ? sc->rate : 8000);
    be_end(b);
    be_end(b);

    be_end(b);
}


/* the RTP totals of what the call's endpoints sent */
static void
md_query_totals(be_buf_t *b, md_call_t *c)
{
    int           l, i;
    uint64_t      packets, bytes, errors;
    md_stream_t  *s;

    packets = bytes = errors = 0;

    for (l = 0; l < 2; l++) {
        if (c->legs[l].tag[0] == '\0') {
            continue;
        }

        for (i = 0; i < c->legs[l].nstreams; i++) {
            s = c->legs[l].streams[i];
            packets += s->in.packets;
            bytes += s->in.bytes;
            errors += s->in.errors;
        }
    }

    be_cstr(b, "totals");
    be_dict(b);
    be_cstr(b, "RTP");
    be_dict(b);
    be_kint(b, "packets", (int64_t) packets);
    be_kint(b, "bytes", (int64_t) bytes);
    be_kint(b, "errors", (int64_t) errors);
    be_end(b);
    be_end(b);
}


/*
 * call totals and, per tag and m= line, its stream.  The shape of
 * rtpengine's query, with loss, jitter and round-trip time added
 */
const char *
md_call_query(be_node_t *req, be_buf_t *reply)
{
    int          l, i;
    double       now;
    md_call_t   *c;
    const char  *err;

    c = md_request_call(req, "query needs call-id", &err);
    if (c == NULL) {
        return err;
    }

    now = md_now();

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
            md_query_media(reply, c->legs[l].streams[i], now);
        }

        be_end(reply);
        be_end(reply);
    }

    be_end(reply);

    md_query_totals(reply, c);

    return NULL;
}


const char *
md_call_list(be_node_t *req, be_buf_t *reply)
{
    be_node_t  *lim;

    lim = be_get(req, "limit");

    be_cstr(reply, "calls");
    be_list(reply);
    md_call_ids(reply, (lim && lim->type == BE_INT && lim->i > 0) ? lim->i
                                                                 : 32);
    be_end(reply);

    return NULL;
}


/* the call of req and the leg named by from-tag (none: *leg is NULL) */
static const char *
md_request_leg(be_node_t *req, md_call_t **c, md_leg_t **leg)
{
    be_node_t   *tag;
    const char  *err;

    *c = md_request_call(req, "call-id missing", &err);
    if (*c == NULL) {
        return err;
    }

    tag = be_get_str(req, "from-tag");
    *leg = NULL;

    if (tag == NULL) {
        return NULL;
    }

    if (md_leg_is(&(*c)->legs[0], tag)) {
        *leg = &(*c)->legs[0];

    } else if (md_leg_is(&(*c)->legs[1], tag)) {
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

    err = md_request_leg(req, &c, &leg);
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


/*
 * fn on every stream of req's call, or with of_leg on those of from-tag's
 * leg only, when it names one
 */
static const char *
md_request_each(be_node_t *req, int of_leg, void (*fn)(md_stream_t *s))
{
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_request_leg(req, &c, &leg);
    if (err == NULL) {
        md_call_each(c, of_leg ? leg : NULL, fn);
    }

    return err;
}


const char *
md_call_stop_media(be_node_t *req, be_buf_t *reply)
{
    return md_request_each(req, 1, md_player_free);
}


const char *
md_call_start_recording(be_node_t *req, be_buf_t *reply)
{
    md_leg_t    *leg;
    md_call_t   *c;
    const char  *err;

    err = md_request_leg(req, &c, &leg);

    return err ? err : md_media_record(c, reply);
}


const char *
md_call_stop_recording(be_node_t *req, be_buf_t *reply)
{
    return md_request_each(req, 0, md_recorder_free);
}
