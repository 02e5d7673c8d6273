/*
 * One direction of transcoding: the input payload is decoded to PCM at
 * its rate (G.711: 8 kHz; Opus: 48 kHz mono, RFC 7587 §4.1, a stereo
 * "opus/48000/2" stream is downmixed by the decoder), resampled to the
 * output rate, queued, and encoded in 20 ms frames.
 *
 * PCM is float in [-1, 1).  The resampler is one linear-phase low-pass
 * FIR at 48 kHz (Kaiser-windowed sinc, -6 dB at 3.7 kHz): 48 -> 8 kHz
 * filters and keeps every 6th sample, 8 -> 48 kHz inserts 5 zeros after
 * each sample and filters, computed as 6 polyphase branches.  The last
 * input samples are kept across packets, so packet boundaries are not
 * audible.  Each step delays by (MD_TC_TAPS - 1) / 2 samples at 48 kHz
 * (2.5 ms).
 */

#include "transcode.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <opus/opus.h>


#define MD_TC_FACTOR      6         /* 48 kHz / 8 kHz */
#define MD_TC_TAPS        240       /* low-pass FIR at 48 kHz */
#define MD_TC_PTAPS       (MD_TC_TAPS / MD_TC_FACTOR)  /* per phase */
#define MD_TC_CUTOFF      3700.0    /* Hz, -6 dB; -0.4 dB at 3.4 kHz */
#define MD_TC_BETA        8.0       /* Kaiser window: > 70 dB at 4.2 kHz */

#define MD_TC_MAX_IN      5760      /* samples, 120 ms at 48 kHz: the
                                       longest Opus packet, RFC 6716
                                       §3.2.5 */
#define MD_TC_MAX_G711    960       /* bytes, 120 ms at 8 kHz */
#define MD_TC_IN_MS       120       /* the longest input packet */

_Static_assert(MD_TC_TAPS % 8 == 0 && MD_TC_TAPS % MD_TC_FACTOR == 0,
               "the FIR loops take 8 taps at a time, 6 branches");

#define MD_TC_OPUS_RATE   48000
#define MD_TC_OPUS_BPS    32000
#define MD_TC_OPUS_CPLX   5
#define MD_TC_OPUS_LOSS   10        /* %: libopus adds in-band FEC (LBRR)
                                       only for an expected loss > 0 */


struct md_tc_s {
    md_codec_id_e       from;
    md_codec_id_e       to;
    int                 in_rate;
    int                 out_rate;
    size_t              frame;          /* samples per frame at out_rate */
    OpusDecoder        *dec;            /* from Opus */
    OpusEncoder        *enc;            /* to Opus */

    float               h[MD_TC_TAPS];  /* low-pass, DC gain 1 */
    /* interpolator: y[6n + p] = sum g[k][p] x[n - 39 + k], p < 6;
       lanes 6 and 7 stay 0 */
    float               g[MD_TC_PTAPS][8];
    float               hist[MD_TC_TAPS - 1];  /* last input samples */
    size_t              skip;           /* decimator: input samples
                                           before the next output one */

    size_t              nqueue;         /* samples in queue */
    size_t              cap;
    float               queue[];        /* at out_rate, for frames */
};


/*
 * Decoded input; the resampler prepends its history in front of it.
 * Per thread, so no transcoder carries 23 KB of scratch.
 */
static _Thread_local float  md_tc_buf[MD_TC_TAPS - 1 + MD_TC_MAX_IN];

#define MD_TC_IN  (md_tc_buf + MD_TC_TAPS - 1)


/* modified Bessel function of the first kind, order 0 (Kaiser window) */

static double
md_tc_i0(double x)
{
    int     k;
    double  sum, term;

    sum = 1.0;
    term = 1.0;

    for (k = 1; k < 50; k++) {
        term *= x / (2.0 * k);
        sum += term * term;
    }

    return sum;
}


static void
md_tc_design(md_tc_t *tc)
{
    int     i, p, k;
    double  w, m, r, v[MD_TC_TAPS], sum;

    w = 2.0 * M_PI * MD_TC_CUTOFF / MD_TC_OPUS_RATE;
    sum = 0.0;

    for (i = 0; i < MD_TC_TAPS; i++) {
        m = i - (MD_TC_TAPS - 1) / 2.0;
        r = 2.0 * i / (MD_TC_TAPS - 1) - 1.0;
        v[i] = ((m == 0.0) ? w / M_PI : sin(w * m) / (M_PI * m))
               * md_tc_i0(MD_TC_BETA * sqrt(1.0 - r * r))
               / md_tc_i0(MD_TC_BETA);
        sum += v[i];
    }

    for (i = 0; i < MD_TC_TAPS; i++) {
        tc->h[i] = (float) (v[i] / sum);
    }

    /* each branch has DC gain 1/6: times 6 for the inserted zeros */

    for (p = 0; p < MD_TC_FACTOR; p++) {
        for (k = 0; k < MD_TC_PTAPS; k++) {
            tc->g[k][p] = (float) (MD_TC_FACTOR
                * v[MD_TC_FACTOR * (MD_TC_PTAPS - 1 - k) + p] / sum);
        }
    }
}


md_tc_t *
md_tc_new(md_codec_id_e from, md_codec_id_e to, int ptime)
{
    int       err, in_rate, out_rate;
    size_t    cap;
    md_tc_t  *tc;

    in_rate = md_codec_rate(from);
    out_rate = md_codec_rate(to);

    if (!md_codec_can_transcode(from, to)) {
        return NULL;
    }

    /* RFC 6716 §2.1.4: Opus frames of 10, 20, 40, 60 ms; G.711 any 10 */

    if (ptime < 10 || ptime > 60 || ptime % 10
        || (to == MD_CODEC_OPUS && (ptime == 30 || ptime == 50)))
    {
        ptime = MD_TC_PTIME;
    }

    /* a whole input packet and a frame not yet complete */
    cap = (size_t) out_rate * (MD_TC_IN_MS + ptime) / 1000;

    tc = calloc(1, sizeof(md_tc_t) + cap * sizeof(float));
    if (tc == NULL) {
        return NULL;
    }

    tc->from = from;
    tc->to = to;
    tc->in_rate = in_rate;
    tc->out_rate = out_rate;
    tc->frame = (size_t) out_rate * ptime / 1000;
    tc->cap = cap;

    if (in_rate != out_rate) {
        md_tc_design(tc);
    }

    if (from == MD_CODEC_OPUS) {
        tc->dec = opus_decoder_create(MD_TC_OPUS_RATE, 1, &err);
        if (tc->dec == NULL) {
            md_log(MD_LOG_ERR, "opus_decoder_create: %s",
                   opus_strerror(err));
            goto failed;
        }
    }

    if (to == MD_CODEC_OPUS) {
        tc->enc = opus_encoder_create(MD_TC_OPUS_RATE, 1,
                                      OPUS_APPLICATION_VOIP, &err);
        if (tc->enc == NULL) {
            md_log(MD_LOG_ERR, "opus_encoder_create: %s",
                   opus_strerror(err));
            goto failed;
        }

        if (opus_encoder_ctl(tc->enc, OPUS_SET_BITRATE(MD_TC_OPUS_BPS))
                != OPUS_OK
            || opus_encoder_ctl(tc->enc,
                   OPUS_SET_COMPLEXITY(MD_TC_OPUS_CPLX)) != OPUS_OK
            || opus_encoder_ctl(tc->enc, OPUS_SET_INBAND_FEC(1)) != OPUS_OK
            || opus_encoder_ctl(tc->enc,
                   OPUS_SET_PACKET_LOSS_PERC(MD_TC_OPUS_LOSS)) != OPUS_OK
            || opus_encoder_ctl(tc->enc, OPUS_SET_DTX(0)) != OPUS_OK)
        {
            md_log(MD_LOG_ERR, "opus_encoder_ctl failed");
            goto failed;
        }
    }

    return tc;

failed:

    md_tc_free(tc);
    return NULL;
}


size_t
md_tc_frame(md_tc_t *tc)
{
    return tc->frame;
}


size_t
md_tc_queued(md_tc_t *tc)
{
    return tc->nqueue;
}


void
md_tc_free(md_tc_t *tc)
{
    if (tc == NULL) {
        return;
    }

    if (tc->dec) {
        opus_decoder_destroy(tc->dec);
    }

    if (tc->enc) {
        opus_encoder_destroy(tc->enc);
    }

    free(tc);
}


/* the input payload to PCM at MD_TC_IN; samples or -1 */

static int
md_tc_decode(md_tc_t *tc, const uint8_t *in, size_t len)
{
    int     n;
    size_t  i;

    if (in == NULL || len == 0) {
        return -1;
    }

    switch (tc->from) {

    case MD_CODEC_PCMA:
    case MD_CODEC_PCMU:
        if (len > MD_TC_MAX_G711) {
            return -1;
        }

        for (i = 0; i < len; i++) {
            MD_TC_IN[i] = (tc->from == MD_CODEC_PCMA ? md_alaw_decode(in[i])
                                                     : md_ulaw_decode(in[i]))
                          / 32768.0f;
        }

        return (int) len;

    case MD_CODEC_OPUS:
        if (len > MD_MAX_PACKET) {
            return -1;
        }

        /* RFC 6716 §3.2: TOC and frame count; at most 120 ms */

        n = opus_decoder_get_nb_samples(tc->dec, in, (opus_int32) len);
        if (n <= 0 || n > MD_TC_MAX_IN) {
            return -1;
        }

        n = opus_decode_float(tc->dec, in, (opus_int32) len, MD_TC_IN,
                              MD_TC_MAX_IN, 0);

        return (n > 0) ? n : -1;

    default:
        return -1;
    }
}


/* n samples at MD_TC_IN, resampled, onto the queue */

static void
md_tc_push(md_tc_t *tc, size_t n)
{
    int           k, l, p;
    float         part[8], *y;
    size_t        i, out, drop;
    const float  *s;

    if (tc->in_rate == tc->out_rate) {
        out = n;

    } else if (tc->in_rate < tc->out_rate) {
        out = n * MD_TC_FACTOR;

    } else {
        out = (n > tc->skip) ? (n - tc->skip + MD_TC_FACTOR - 1)
                               / MD_TC_FACTOR
                             : 0;
    }

    /*
     * out <= 120 ms < cap; a caller that does not drain md_tc_next()
     * loses the oldest audio
     */

    if (tc->nqueue + out > tc->cap) {
        drop = tc->nqueue + out - tc->cap;
        drop = (drop < tc->nqueue) ? drop : tc->nqueue;
        memmove(tc->queue, tc->queue + drop,
                (tc->nqueue - drop) * sizeof(float));
        tc->nqueue -= drop;
    }

    y = tc->queue + tc->nqueue;
    tc->nqueue += out;

    if (tc->in_rate == tc->out_rate) {
        memcpy(y, MD_TC_IN, n * sizeof(float));
        return;
    }

    if (tc->in_rate < tc->out_rate) {

        /* 8 -> 48 kHz: x[i - 39 .. i] through the 6 branches */

        memcpy(MD_TC_IN - (MD_TC_PTAPS - 1), tc->hist,
               (MD_TC_PTAPS - 1) * sizeof(float));

        for (i = 0; i < n; i++) {
            s = MD_TC_IN - (MD_TC_PTAPS - 1) + i;

            /* the 6 branches side by side (8 lanes): vectorized */

            for (l = 0; l < 8; l++) {
                part[l] = 0.0f;
            }

            for (k = 0; k < MD_TC_PTAPS; k++) {
                for (l = 0; l < 8; l++) {
                    part[l] += tc->g[k][l] * s[k];
                }
            }

            for (p = 0; p < MD_TC_FACTOR; p++) {
                *y++ = part[p];
            }
        }

        memcpy(tc->hist, MD_TC_IN - (MD_TC_PTAPS - 1) + n,
               (MD_TC_PTAPS - 1) * sizeof(float));
        return;
    }

    /* 48 -> 8 kHz: x[i - 239 .. i] for every 6th i (h is symmetric) */

    memcpy(md_tc_buf, tc->hist, (MD_TC_TAPS - 1) * sizeof(float));

    for (i = tc->skip; i < n; i += MD_TC_FACTOR) {
        s = md_tc_buf + i;

        /* 8 partial sums: independent, so the compiler vectorizes them */

        for (l = 0; l < 8; l++) {
            part[l] = 0.0f;
        }

        for (k = 0; k < MD_TC_TAPS; k += 8) {
            for (l = 0; l < 8; l++) {
                part[l] += tc->h[k + l] * s[k + l];
            }
        }

        *y++ = ((part[0] + part[1]) + (part[2] + part[3]))
               + ((part[4] + part[5]) + (part[6] + part[7]));
    }

    tc->skip = i - n;

    memcpy(tc->hist, md_tc_buf + n, (MD_TC_TAPS - 1) * sizeof(float));
}


static int16_t
md_tc_s16(float f)
{
    f *= 32768.0f;

    if (!(f < 32767.0f)) {
        return 32767;
    }

    if (f <= -32768.0f) {
        return -32768;
    }

    return (int16_t) lrintf(f);
}


int
md_tc_next(md_tc_t *tc, uint8_t *out, size_t size)
{
    int     n;
    size_t  i;

    if (tc->nqueue < tc->frame) {
        return 0;
    }

    if (tc->to == MD_CODEC_OPUS) {
        if (size > MD_TC_MAX_OUT) {
            size = MD_TC_MAX_OUT;
        }

        n = opus_encode_float(tc->enc, tc->queue, (int) tc->frame, out,
                              (opus_int32) size);
        if (n < 0) {
            return -1;
        }

    } else {
        if (size < tc->frame) {
            return -1;
        }

        for (i = 0; i < tc->frame; i++) {
            out[i] = (tc->to == MD_CODEC_PCMA)
                     ? md_alaw_encode(md_tc_s16(tc->queue[i]))
                     : md_ulaw_encode(md_tc_s16(tc->queue[i]));
        }

        n = (int) tc->frame;
    }

    tc->nqueue -= tc->frame;
    memmove(tc->queue, tc->queue + tc->frame, tc->nqueue * sizeof(float));

    return n;
}


int
md_tc_run(md_tc_t *tc, const uint8_t *in, size_t len, uint8_t *out,
    size_t size)
{
    int  n;

    n = md_tc_decode(tc, in, len);
    if (n < 0) {
        return -1;
    }

    md_tc_push(tc, (size_t) n);

    return md_tc_next(tc, out, size);
}


int
md_tc_conceal(md_tc_t *tc, uint8_t *out, size_t size)
{
    int  n;

    n = tc->in_rate * MD_TC_PTIME / 1000;

    if (tc->from == MD_CODEC_OPUS) {

        /* RFC 6716 §4.4: the decoder extrapolates from its state */

        n = opus_decode_float(tc->dec, NULL, 0, MD_TC_IN, n, 0);
        if (n < 0) {
            return -1;
        }

    } else {
        memset(MD_TC_IN, 0, (size_t) n * sizeof(float));
    }

    md_tc_push(tc, (size_t) n);

    return md_tc_next(tc, out, size);
}
