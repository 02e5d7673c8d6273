/*
 * Codec negotiation (negotiate.h).
 *
 * A stream keeps what its endpoint declared in its own SDP (codecs, in
 * its numbers) apart from what we put in the SDP we give it (given).
 * Packets are mapped by what each side declared: a re-offer changes
 * neither side's map before its answer (RFC 3264 §8.3.2).
 */

#include "negotiate.h"

#include <string.h>
#include <strings.h>


#define MD_PT_DYNAMIC  96            /* RFC 3551 §3: 96-127 */


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


md_codec_t *
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


/* 1 when the list of codec names has c's name, or "all" */
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
        pt = (k < 0) ? want : MD_PT_DYNAMIC + k;
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


/*
 * the audio codecs from declared that the codec flags let through
 * (strip, mask, offer), into out; their count
 */
static int
md_offer_own(md_stream_t *from, be_node_t *codec, md_codec_t *out)
{
    int          i, n;
    md_codec_t  *c;
    be_node_t   *strip, *mask, *offer;

    strip = be_get(codec, "strip");
    mask = be_get(codec, "mask");
    offer = be_get(codec, "offer");

    n = 0;

    for (i = 0; i < from->ncodecs; i++) {
        c = &from->codecs[i];

        if (md_codec_id(c) == MD_CODEC_TELEPHONE_EVENT
            || md_name_in(strip, c) || md_name_in(mask, c)
            || (offer && !md_name_in(offer, c)))
        {
            continue;
        }

        out[n++] = *c;
    }

    return n;
}


/* the codec a codec-transcode entry names (opus as RFC 7587 §7 has it) */
static const char *
md_offer_transcoded(be_node_t *name, md_codec_t *c)
{
    memset(c, 0, sizeof(md_codec_t));

    if (name->type != BE_STR || name->len >= sizeof(c->name)) {
        return "invalid codec-transcode entry";
    }

    memcpy(c->name, name->s, name->len);
    c->rate = 8000;
    c->channels = 1;

    if (strcasecmp(c->name, "opus") == 0) {
        strcpy(c->name, "opus");
        c->rate = 48000;
        c->channels = 2;
        strcpy(c->fmtp, "minptime=10;useinbandfec=1");
    }

    if (md_codec_id(c) == MD_CODEC_UNKNOWN) {
        return "codec-transcode: PCMA, PCMU and opus are supported";
    }

    return NULL;
}


/*
 * codec-transcode's codecs after out[0..*n) when not there yet, on their
 * static payload type or 111 for opus, else a free dynamic one
 */
static const char *
md_offer_transcode(be_node_t *codec, md_codec_t *out, int *n)
{
    int          pt;
    md_codec_t   c;
    be_node_t   *tc, *name;
    const char  *err;

    tc = be_get(codec, "transcode");

    if (tc == NULL || tc->type != BE_LIST) {
        return NULL;
    }

    for (name = tc->child; name; name = name->next) {
        err = md_offer_transcoded(name, &c);
        if (err) {
            return err;
        }

        if (md_sdp_codec_named(out, *n, c.name) || *n == MD_MAX_CODECS) {
            continue;
        }

        pt = md_free_pt(out, *n, md_codec_id(&c) == MD_CODEC_PCMU ? 0
                                 : md_codec_id(&c) == MD_CODEC_PCMA ? 8
                                 : 111);
        if (pt < 0) {
            return "no free payload type";
        }

        c.pt = pt;
        out[(*n)++] = c;
    }

    return NULL;
}


/*
 * after the audio codecs out[0..ntc), of which [own, ntc) were added by
 * codec-transcode: the offerer's telephone-events, and one in the clock
 * of each added codec that has none yet; the new count
 */
static int
md_offer_dtmf(md_stream_t *from, md_codec_t *out, int own, int ntc)
{
    int          i, n;
    md_codec_t   c, *te;

    n = ntc;

    for (i = 0; i < from->ncodecs && n < MD_MAX_CODECS; i++) {
        if (md_codec_id(&from->codecs[i]) == MD_CODEC_TELEPHONE_EVENT) {
            out[n++] = from->codecs[i];
        }
    }

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

    return n;
}


const char *
md_codecs_offer(md_stream_t *from, md_stream_t *to, md_flags_t *f)
{
    int          i, n, own;
    md_codec_t  *out;
    const char  *err;

    out = to->given;

    /* audio codecs first, telephone-event after the transcoded ones */

    own = md_offer_own(from, f->codec, out);
    n = own;

    err = md_offer_transcode(f->codec, out, &n);
    if (err) {
        return err;
    }

    n = md_offer_dtmf(from, out, own, n);
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


/*
 * s's payload type map (md_pt_map_t) from what s and its peer declared:
 * telephone-event becomes the peer's events, the codec s is sent becomes
 * the transcoder's input when there is one, any other codec the peer's
 * number for it (md_codec_same); the rest is dropped
 */
static void
md_stream_map(md_stream_t *s)
{
    int            i;
    md_codec_t    *c, *same;
    md_pt_map_t   *m;
    md_codec_id_e  id;

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


/* the first audio codec s declared, or NULL */
static md_codec_t *
md_first_audio(md_stream_t *s)
{
    int  i;

    for (i = 0; i < s->ncodecs; i++) {
        if (md_codec_id(&s->codecs[i]) != MD_CODEC_TELEPHONE_EVENT) {
            return &s->codecs[i];
        }
    }

    return NULL;
}


/*
 * what the offerer is sent for the answerer's codec ac: the same codec
 * when it declared it, else its first that transcodes to ac, else NULL
 */
static md_codec_t *
md_offerer_codec(md_stream_t *offerer, md_codec_t *ac)
{
    int          i;
    md_codec_t  *oc;

    oc = md_codec_find(offerer->codecs, offerer->ncodecs, ac);

    for (i = 0; oc == NULL && i < offerer->ncodecs; i++) {
        if (md_codec_can_transcode(md_codec_id(&offerer->codecs[i]),
                                   md_codec_id(ac)))
        {
            oc = &offerer->codecs[i];
        }
    }

    return oc;
}


/*
 * a transcoder for each direction when a and b are sent different
 * codecs, each packetizing for the endpoint it sends to (its a=ptime)
 */
static const char *
md_negotiate_tc(md_stream_t *a, md_stream_t *b)
{
    md_tc_free(a->tc);
    md_tc_free(b->tc);
    a->tc = NULL;
    b->tc = NULL;

    if (a->send_codec == b->send_codec) {
        return NULL;
    }

    a->tc = md_tc_new(a->send_codec, b->send_codec, b->ptime);
    b->tc = md_tc_new(b->send_codec, a->send_codec, a->ptime);

    return (a->tc && b->tc) ? NULL : "transcoder setup failed";
}


const char *
md_negotiate(md_stream_t *offerer, md_stream_t *answerer)
{
    md_codec_t  *ac, *oc, *ate, *ote;
    const char  *err;

    ac = md_first_audio(answerer);

    if (ac == NULL) {
        if (answerer->ncodecs == 0 || answerer->remote.sin_port == 0) {
            return NULL;     /* rejected stream */
        }
        return "the answer has no audio codec";
    }

    answerer->send_pt = ac->pt;
    answerer->send_codec = md_codec_id(ac);

    oc = md_offerer_codec(offerer, ac);
    if (oc == NULL) {
        return "no codec in common and no transcoding path";
    }

    offerer->send_pt = oc->pt;
    offerer->send_codec = md_codec_id(oc);
    offerer->rate = oc->rate;
    answerer->rate = ac->rate;

    /* the offerer is told only what it will get */
    offerer->ngiven = 0;
    offerer->given[offerer->ngiven++] = *oc;

    err = md_negotiate_tc(offerer, answerer);
    if (err) {
        return err;
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
