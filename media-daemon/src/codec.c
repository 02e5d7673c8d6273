/*
 * Codecs the relay knows by name, and G.711 A-law and µ-law sample
 * conversion (ITU-T G.711; RFC 3551 PCMA/PCMU, 8 kHz, one byte per
 * sample).  Transcoding itself is transcode.c.
 */

#include "codec.h"

#include <string.h>
#include <strings.h>


md_codec_id_e
md_codec_id(md_codec_t *c)
{
    if (strcasecmp(c->name, "PCMU") == 0 && c->rate == 8000) {
        return MD_CODEC_PCMU;
    }

    if (strcasecmp(c->name, "PCMA") == 0 && c->rate == 8000) {
        return MD_CODEC_PCMA;
    }

    if (strcasecmp(c->name, "opus") == 0 && c->rate == 48000) {
        return MD_CODEC_OPUS;
    }

    if (strcasecmp(c->name, "telephone-event") == 0) {
        return MD_CODEC_TELEPHONE_EVENT;
    }

    return MD_CODEC_UNKNOWN;
}


int
md_codec_same(md_codec_t *a, md_codec_t *b)
{
    if (a->name[0] == '\0' || b->name[0] == '\0') {
        /* a static payload type without a=rtpmap (RFC 3551 §6) */
        return a->pt == b->pt && a->pt < 96;
    }

    /* RFC 7587 §7: Opus is always "opus/48000/2", whatever is sent */
    return strcasecmp(a->name, b->name) == 0 && a->rate == b->rate
           && (a->channels == b->channels
               || md_codec_id(a) == MD_CODEC_OPUS);
}


md_codec_t *
md_codec_find(md_codec_t *codecs, int n, md_codec_t *c)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (md_codec_same(&codecs[i], c)) {
            return &codecs[i];
        }
    }

    return NULL;
}


int
md_codec_can_transcode(md_codec_id_e a, md_codec_id_e b)
{
    return md_codec_rate(a) > 0 && md_codec_rate(b) > 0;
}


int
md_codec_rate(md_codec_id_e id)
{
    switch (id) {

    case MD_CODEC_PCMA:
    case MD_CODEC_PCMU:
        return 8000;

    case MD_CODEC_OPUS:
        return 48000;

    default:
        return -1;
    }
}


/* A-law: 13-bit magnitude, segment + 4-bit mantissa, even bits inverted */

uint8_t
md_alaw_encode(int16_t pcm)
{
    int      mask, seg;
    int32_t  v;
    uint8_t  aval;

    v = pcm >> 3;                       /* 13 bits */

    if (v >= 0) {
        mask = 0xd5;                    /* sign bit set, even bits flipped */

    } else {
        mask = 0x55;
        v = -v - 1;
    }

    for (seg = 0; seg < 8; seg++) {
        if (v <= (0x20 << seg) - 1) {
            break;
        }
    }

    if (seg >= 8) {
        return (uint8_t) (0x7f ^ mask);
    }

    aval = (uint8_t) (seg << 4);

    if (seg < 2) {
        aval |= (v >> 1) & 0xf;

    } else {
        aval |= (v >> seg) & 0xf;
    }

    return aval ^ mask;
}


int16_t
md_alaw_decode(uint8_t a)
{
    int  t, seg;

    a ^= 0x55;
    t = (a & 0xf) << 4;
    seg = (a & 0x70) >> 4;

    switch (seg) {
    case 0:
        t += 8;
        break;
    case 1:
        t += 0x108;
        break;
    default:
        t += 0x108;
        t <<= seg - 1;
    }

    return (int16_t) ((a & 0x80) ? t : -t);
}


/* µ-law: bias 0x84, segment + 4-bit mantissa, all bits inverted */

#define MD_ULAW_BIAS  0x84
#define MD_ULAW_CLIP  32635

uint8_t
md_ulaw_encode(int16_t pcm)
{
    int      sign, exponent, mantissa;
    int32_t  v;

    v = pcm;
    sign = (v < 0) ? 0x80 : 0;

    if (sign) {
        v = -v;
    }

    if (v > MD_ULAW_CLIP) {
        v = MD_ULAW_CLIP;
    }

    v += MD_ULAW_BIAS;

    for (exponent = 7; exponent > 0; exponent--) {
        if (v & (0x4000 >> (7 - exponent))) {
            break;
        }
    }

    mantissa = (v >> (exponent + 3)) & 0xf;

    return (uint8_t) ~(sign | (exponent << 4) | mantissa);
}


int16_t
md_ulaw_decode(uint8_t u)
{
    int  t;

    u = ~u;
    t = ((u & 0xf) << 3) + MD_ULAW_BIAS;
    t <<= (u & 0x70) >> 4;

    return (int16_t) ((u & 0x80) ? MD_ULAW_BIAS - t : t - MD_ULAW_BIAS);
}
