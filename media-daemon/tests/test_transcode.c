/*
 * Tests for src/transcode.c: a 1 kHz tone through each direction (energy
 * at 1 kHz, level), other input ptimes, anti-aliasing of 48 -> 8 kHz,
 * concealment, bad input, and a seeded fuzz run.  Prints the measured
 * numbers and the CPU time per 20 ms frame.  From media-daemon/:

cc -std=gnu11 -O2 -Wall -Wextra -Werror -fsanitize=address,undefined \
    -Isrc -o /tmp/test_transcode tests/test_transcode.c src/transcode.c \
    src/codec.c src/util.c -lopus -lm && /tmp/test_transcode

 * (for CPU numbers without the sanitizers' cost, drop -fsanitize=...)
 */

#include "transcode.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opus/opus.h>


#define T_LEVEL_DB   -10.0              /* dBFS of the test tones */
#define T_MAX_MS     2100               /* longest signal */
#define T_MAX_SAMP   (48 * T_MAX_MS)


static int  t_passed, t_failed;

static float  t_in[T_MAX_SAMP];         /* input signal, input rate */
static float  t_out[T_MAX_SAMP];        /* decoded output, output rate */
static float  t_ref[T_MAX_SAMP];        /* decoded input (Opus input) */


static void
check(int ok, const char *fmt, ...)
{
    va_list  ap;

    printf("%s - ", ok ? "ok" : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");

    if (ok) {
        t_passed++;

    } else {
        t_failed++;
    }
}


static const char *
name(md_codec_id_e c)
{
    return c == MD_CODEC_PCMA ? "PCMA" : c == MD_CODEC_PCMU ? "PCMU" : "OPUS";
}


static int16_t
s16(float f)
{
    f *= 32768.0f;
    return f >= 32767.0f ? 32767 : f <= -32768.0f ? -32768
                                                   : (int16_t) lrintf(f);
}


/* |X(f)|^2 of x[0..n) (Goertzel) */

static double
goertzel(const float *x, size_t n, double f, double rate)
{
    size_t  i;
    double  c, s0, s1, s2;

    c = 2.0 * cos(2.0 * M_PI * f / rate);
    s1 = 0.0;
    s2 = 0.0;

    for (i = 0; i < n; i++) {
        s0 = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s0;
    }

    return s1 * s1 + s2 * s2 - c * s1 * s2;
}


typedef struct {
    double  ms;         /* mean square */
    double  tone_ms;    /* mean square of the component at f */
} power_t;

/* after the first 100 ms, in 20 ms blocks (f: a multiple of 50 Hz) */

static power_t
measure(const float *x, size_t n, double f, int rate)
{
    size_t   i, b, blk, skip, nb;
    power_t  p;

    blk = (size_t) rate / 50;
    skip = (size_t) rate / 10;
    nb = (n > skip) ? (n - skip) / blk : 0;

    p.ms = 0.0;
    p.tone_ms = 0.0;

    for (b = 0; b < nb; b++) {
        for (i = 0; i < blk; i++) {
            p.ms += (double) x[skip + b * blk + i] * x[skip + b * blk + i];
        }

        p.tone_ms += 2.0 * goertzel(x + skip + b * blk, blk, f, rate)
                     / ((double) blk * blk);
    }

    if (nb) {
        p.ms /= (double) (nb * blk);
        p.tone_ms /= (double) nb;
    }

    return p;
}


static double
db(double ratio)
{
    return 10.0 * log10(ratio > 1e-30 ? ratio : 1e-30);
}


/* an input payload of n samples from pcm */

static int
encode_in(md_codec_id_e c, OpusEncoder *enc, int channels, const float *pcm,
    int n, uint8_t *out)
{
    int    i;
    float  st[2 * 5760];

    if (c == MD_CODEC_OPUS) {
        if (channels == 2) {
            for (i = 0; i < n; i++) {
                st[2 * i] = pcm[i];
                st[2 * i + 1] = pcm[i];
            }
            pcm = st;
        }

        return opus_encode_float(enc, pcm, n, out, MD_TC_MAX_OUT);
    }

    for (i = 0; i < n; i++) {
        out[i] = (c == MD_CODEC_PCMA) ? md_alaw_encode(s16(pcm[i]))
                                   : md_ulaw_encode(s16(pcm[i]));
    }

    return n;
}


/* an output payload to PCM at the codec's rate; samples or -1 */

static int
decode_out(md_codec_id_e c, OpusDecoder *dec, const uint8_t *p, int len,
    float *pcm)
{
    int  i;

    if (c == MD_CODEC_OPUS) {
        return opus_decode_float(dec, p, len, pcm, 5760, 0);
    }

    for (i = 0; i < len; i++) {
        pcm[i] = (c == MD_CODEC_PCMA ? md_alaw_decode(p[i])
                                  : md_ulaw_decode(p[i])) / 32768.0f;
    }

    return len;
}


/* a payload of the right shape for one 20 ms output frame */

static int
frame_ok(md_codec_id_e to, const uint8_t *p, int n)
{
    if (to == MD_CODEC_OPUS) {
        return n > 0 && opus_packet_get_nb_samples(p, n, 48000) == 960;
    }

    return n == 160;
}


typedef struct {
    int       packets;
    int       frames;       /* frames out */
    int       zeros;        /* md_tc_run() calls with no frame */
    int       errors;       /* -1 or a frame of the wrong shape */
    int       expect;       /* frames expected */
    power_t   out;          /* at f */
    power_t   ref;          /* decoded input, Opus input only */
    double    in_ms;        /* mean square of the input tone */
} tone_t;


/*
 * A tone of f Hz at T_LEVEL_DB for 2 s (whole packets of in_ms) through
 * from -> to; Opus input is encoded with app at bps, with channels.
 */

static tone_t
run_tone(md_codec_id_e from, md_codec_id_e to, double f, int in_ms,
    int channels, int app, int bps)
{
    int           i, n, k, rin, rout, spp, err;
    size_t        nout, nref;
    double        a;
    tone_t        r;
    uint8_t       pkt[MD_TC_MAX_OUT], out[MD_TC_MAX_OUT];
    md_tc_t      *tc;
    OpusEncoder  *enc;
    OpusDecoder  *dec, *rdec;

    memset(&r, 0, sizeof(r));

    rin = md_codec_rate(from);
    rout = md_codec_rate(to);
    spp = rin * in_ms / 1000;
    r.packets = (2000 + in_ms - 1) / in_ms;
    r.expect = r.packets * in_ms / 20;

    a = pow(10.0, T_LEVEL_DB / 20.0);
    r.in_ms = a * a / 2.0;

    for (i = 0; i < r.packets * spp; i++) {
        t_in[i] = (float) (a * sin(2.0 * M_PI * f * i / rin));
    }

    tc = md_tc_new(from, to, MD_TC_PTIME);
    enc = NULL;
    dec = NULL;
    rdec = NULL;

    if (from == MD_CODEC_OPUS) {
        enc = opus_encoder_create(48000, channels, app, &err);
        if (enc) {
            opus_encoder_ctl(enc, OPUS_SET_BITRATE(bps));
        }
        rdec = opus_decoder_create(48000, 1, &err);
    }

    if (to == MD_CODEC_OPUS) {
        dec = opus_decoder_create(48000, 1, &err);
    }

    if (tc == NULL || (from == MD_CODEC_OPUS && (enc == NULL || rdec == NULL))
        || (to == MD_CODEC_OPUS && dec == NULL))
    {
        r.errors++;
        goto done;
    }

    nout = 0;
    nref = 0;

    for (k = 0; k < r.packets; k++) {
        n = encode_in(from, enc, channels, t_in + k * spp, spp, pkt);

        if (rdec) {
            nref += (size_t) opus_decode_float(rdec, pkt, n, t_ref + nref,
                                               5760, 0);
        }

        n = md_tc_run(tc, pkt, (size_t) n, out, sizeof(out));

        if (n == 0) {
            r.zeros++;
        }

        while (n > 0) {
            if (!frame_ok(to, out, n)) {
                r.errors++;
            }

            r.frames++;
            nout += (size_t) decode_out(to, dec, out, n, t_out + nout);
            n = md_tc_next(tc, out, sizeof(out));
        }

        if (n < 0) {
            r.errors++;
        }
    }

    r.out = measure(t_out, nout, f, rout);

    if (rdec) {
        r.ref = measure(t_ref, nref, f, rin);
    }

done:

    md_tc_free(tc);

    if (enc) {
        opus_encoder_destroy(enc);
    }

    if (dec) {
        opus_decoder_destroy(dec);
    }

    if (rdec) {
        opus_decoder_destroy(rdec);
    }

    return r;
}


static void
test_tone(md_codec_id_e from, md_codec_id_e to, int in_ms, int channels)
{
    double  ratio, level;
    tone_t  r;

    r = run_tone(from, to, 1000.0, in_ms, channels, OPUS_APPLICATION_VOIP,
                 32000);

    ratio = r.out.ms > 0.0 ? r.out.tone_ms / r.out.ms : 0.0;
    level = db(r.out.ms / r.in_ms);

    printf("# %s -> %s, %d ms packets%s: %d in, %d frames out "
           "(%d calls gave none), 1 kHz energy %.2f %% (SNR %.1f dB), "
           "level %+.2f dB",
           name(from), name(to), in_ms,
           from == MD_CODEC_OPUS ? (channels == 2 ? " (stereo Opus)"
                                               : " (mono Opus)") : "",
           r.packets, r.frames, r.zeros, 100.0 * ratio,
           db(ratio / (1.0 - ratio)), level);

    if (from == MD_CODEC_OPUS) {
        printf("; the Opus input itself: SNR %.1f dB",
               db(r.ref.tone_ms / (r.ref.ms - r.ref.tone_ms)));
    }

    printf("\n");

    check(r.errors == 0 && r.frames == r.expect,
          "%s -> %s %d ms: %d frames of 20 ms (expected %d), %d errors",
          name(from), name(to), in_ms, r.frames, r.expect, r.errors);
    check(ratio >= 0.90, "%s -> %s %d ms: %.2f %% of the energy at 1 kHz",
          name(from), name(to), in_ms, 100.0 * ratio);
    check(fabs(level) <= 2.0, "%s -> %s %d ms: level %+.2f dB (within 2)",
          name(from), name(to), in_ms, level);
}


/*
 * The resampler alone, as far as the API shows it: Opus at 128 kbit/s
 * (near transparent for a tone) -> G.711.  Measured against the decoded
 * Opus input, so the Opus coding loss is left out.
 */

static void
test_resampler(void)
{
    double  att, alias, ratio, loss;
    tone_t  r;

    /* anti-aliasing: 6 kHz would fold to 2 kHz at 8 kHz */

    r = run_tone(MD_CODEC_OPUS, MD_CODEC_PCMA, 6000.0, 20, 1,
                 OPUS_APPLICATION_AUDIO, 128000);

    att = db(r.ref.ms / r.out.ms);
    alias = db(r.ref.ms / measure(t_out, (size_t) r.frames * 160, 2000.0,
                                  8000).tone_ms);

    printf("# 6 kHz at 48 kHz -> 8 kHz: Opus-decoded input %+.2f dB, "
           "output %+.2f dB: attenuated %.1f dB in all, %.1f dB at the "
           "2 kHz alias\n", db(r.ref.ms / r.in_ms), db(r.out.ms / r.in_ms),
           att, alias);

    check(r.errors == 0 && r.ref.ms > 0.5 * r.in_ms,
          "6 kHz test tone survives the Opus test encoder (%+.2f dB)",
          db(r.ref.ms / r.in_ms));
    check(att >= 30.0, "6 kHz -> 8 kHz attenuated %.1f dB (>= 30)", att);

    /* passband edge */

    r = run_tone(MD_CODEC_OPUS, MD_CODEC_PCMU, 3400.0, 20, 1,
                 OPUS_APPLICATION_AUDIO, 128000);
    loss = db(r.out.tone_ms / r.ref.tone_ms);

    printf("# 3.4 kHz at 48 kHz -> 8 kHz: %+.2f dB\n", loss);
    check(loss > -1.0 && loss < 0.5, "3.4 kHz passes (%+.2f dB)", loss);

    /* no clicks at packet boundaries: a clean tone stays clean */

    r = run_tone(MD_CODEC_OPUS, MD_CODEC_PCMA, 1000.0, 10, 2,
                 OPUS_APPLICATION_AUDIO, 128000);
    ratio = r.out.tone_ms / r.out.ms;

    printf("# 1 kHz, 10 ms Opus at 128 kbit/s -> PCMA: SNR %.1f dB "
           "(input after Opus: %.1f dB)\n", db(ratio / (1.0 - ratio)),
           db(r.ref.tone_ms / (r.ref.ms - r.ref.tone_ms)));
    check(ratio >= 0.999, "clean 1 kHz through 48 -> 8 kHz: SNR %.1f dB "
          "(>= 30)", db(ratio / (1.0 - ratio)));
}


static void
test_conceal(md_codec_id_e from, md_codec_id_e to)
{
    int           i, n, ok, spp, err;
    uint8_t       pkt[MD_TC_MAX_OUT], out[MD_TC_MAX_OUT];
    md_tc_t      *tc;
    OpusEncoder  *enc;

    enc = NULL;
    spp = md_codec_rate(from) / 50;
    ok = 1;

    for (i = 0; i < spp * 10; i++) {
        t_in[i] = (float) (0.3 * sin(2.0 * M_PI * 1000.0 * i
                                     / md_codec_rate(from)));
    }

    if (from == MD_CODEC_OPUS) {
        enc = opus_encoder_create(48000, 2, OPUS_APPLICATION_VOIP, &err);
    }

    /* before any packet, then after some, then in a burst */

    tc = md_tc_new(from, to, MD_TC_PTIME);
    ok = tc != NULL;

    if (ok) {
        n = md_tc_conceal(tc, out, sizeof(out));
        ok = frame_ok(to, out, n) && md_tc_next(tc, out, sizeof(out)) == 0;

        for (i = 0; ok && i < 10; i++) {
            n = encode_in(from, enc, 2, t_in + i * spp, spp, pkt);
            ok = frame_ok(to, out, md_tc_run(tc, pkt, (size_t) n, out,
                                             sizeof(out)));
        }

        for (i = 0; ok && i < 5; i++) {
            n = md_tc_conceal(tc, out, sizeof(out));
            ok = frame_ok(to, out, n);
        }

        n = md_tc_conceal(tc, out, 0);
        ok = ok && n == -1 && md_tc_next(tc, out, sizeof(out)) > 0;
    }

    check(ok, "%s -> %s: concealment gives 20 ms frames; too small a "
          "buffer gives -1 and keeps the frame", name(from), name(to));

    md_tc_free(tc);

    if (enc) {
        opus_encoder_destroy(enc);
    }
}


static void
test_bad_input(void)
{
    int       i, ok;
    uint8_t   pkt[1000], out[MD_TC_MAX_OUT];
    md_tc_t  *tc;

    /* RFC 6716 §3.4 requirements the decoder enforces */

    static const struct {
        const char  *what;
        uint8_t      data[4];
        size_t       len;
    } bad[] = {
        { "empty", { 0 }, 0 },
        { "code 1, odd length", { 0x09, 0xaa }, 2 },
        { "code 2, frame past the end", { 0x0a, 0xfc, 0x01 }, 3 },
        { "code 3, no frames", { 0x0b, 0x00 }, 2 },
        { "code 3, 140 ms", { 0x0b, 0x07, 0x00 }, 3 },
        { "code 3, padding past the end", { 0x0b, 0x41, 0xff }, 3 },
    };

    for (i = 0; i < 2; i++) {
        tc = md_tc_new(MD_CODEC_OPUS, i ? MD_CODEC_PCMU : MD_CODEC_OPUS,
                       MD_TC_PTIME);
        ok = tc != NULL;

        for (size_t k = 0; ok && k < sizeof(bad) / sizeof(bad[0]); k++) {
            if (md_tc_run(tc, bad[k].data, bad[k].len, out, sizeof(out))
                != -1)
            {
                printf("# %s accepted\n", bad[k].what);
                ok = 0;
            }
        }

        ok = ok && md_tc_run(tc, NULL, 0, out, sizeof(out)) == -1;

        /* still decodes: a SILK NB 20 ms frame of zeros */

        memset(pkt, 0, sizeof(pkt));
        pkt[0] = 0x08;
        ok = ok && md_tc_run(tc, pkt, 20, out, sizeof(out)) > 0;

        check(ok, "malformed Opus -> %s: -1, then decodes again",
              i ? "PCMU" : "OPUS");
        md_tc_free(tc);
    }

    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_OPUS, MD_TC_PTIME);
    memset(pkt, 0xd5, sizeof(pkt));
    ok = tc != NULL
         && md_tc_run(tc, pkt, 0, out, sizeof(out)) == -1
         && md_tc_run(tc, pkt, 961, out, sizeof(out)) == -1
         && md_tc_run(tc, pkt, 960, out, sizeof(out)) > 0;
    check(ok, "G.711 input of 0 or > 960 bytes: -1; 960 bytes accepted");
    md_tc_free(tc);

    ok = md_tc_new(MD_CODEC_UNKNOWN, MD_CODEC_PCMA, MD_TC_PTIME) == NULL
         && md_tc_new(MD_CODEC_PCMA, MD_CODEC_TELEPHONE_EVENT,
                      MD_TC_PTIME) == NULL
         && md_codec_rate(MD_CODEC_PCMA) == 8000
         && md_codec_rate(MD_CODEC_PCMU) == 8000
         && md_codec_rate(MD_CODEC_OPUS) == 48000
         && md_codec_rate(MD_CODEC_UNKNOWN) == -1
         && md_codec_rate(MD_CODEC_TELEPHONE_EVENT) == -1;
    check(ok, "md_tc_new() refuses unknown codecs; md_codec_rate()");
    md_tc_free(NULL);
}


/* frames of the receiver's ptime; md_tc_queued() is what waits for one */
static void
test_ptime(void)
{
    int       i, n, ok;
    uint8_t   pkt[160], out[MD_TC_MAX_OUT];
    md_tc_t  *tc;

    memset(pkt, 0xd5, sizeof(pkt));

    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_PCMU, 30);
    ok = tc != NULL && md_tc_frame(tc) == 240 && md_tc_queued(tc) == 0
         && md_tc_run(tc, pkt, 160, out, sizeof(out)) == 0
         && md_tc_queued(tc) == 160
         && md_tc_run(tc, pkt, 160, out, sizeof(out)) == 240
         && md_tc_queued(tc) == 80
         && md_tc_next(tc, out, sizeof(out)) == 0;
    check(ok, "PCMA 20 ms -> PCMU ptime 30: 240-byte frames, 80 queued");
    md_tc_free(tc);

    tc = md_tc_new(MD_CODEC_PCMU, MD_CODEC_PCMA, 60);
    for (i = 0, n = 0; tc && i < 6; i++) {
        n += md_tc_run(tc, pkt, 80, out, sizeof(out)) == 480;
    }
    check(tc && md_tc_frame(tc) == 480 && n == 1 && md_tc_queued(tc) == 0,
          "PCMU 10 ms -> PCMA ptime 60: one 480-byte frame of six packets");
    md_tc_free(tc);

    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_OPUS, 40);
    ok = tc != NULL && md_tc_frame(tc) == 1920;
    md_tc_free(tc);
    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_OPUS, 30);
    ok = ok && tc != NULL && md_tc_frame(tc) == 960;
    md_tc_free(tc);
    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_PCMU, 25);
    ok = ok && tc != NULL && md_tc_frame(tc) == 160;
    md_tc_free(tc);
    tc = md_tc_new(MD_CODEC_PCMA, MD_CODEC_PCMU, 0);
    ok = ok && tc != NULL && md_tc_frame(tc) == 160;
    md_tc_free(tc);
    check(ok, "ptime: Opus 40 kept, Opus 30 / G.711 25 / none -> 20 ms");
}


static uint64_t  t_rng = 0x2545f4914f6cdd1dULL;

static uint32_t
rnd(void)
{
    t_rng ^= t_rng << 13;
    t_rng ^= t_rng >> 7;
    t_rng ^= t_rng << 17;
    return (uint32_t) (t_rng >> 32);
}


#define T_POOL  24

static void
test_fuzz(void)
{
    int             i, k, d, ret, err, ch, ok, calls;
    size_t          len, size;
    uint8_t        *in, *out, pool[T_POOL][MD_TC_MAX_OUT];
    int             pool_len[T_POOL];
    md_tc_t        *tc;
    OpusEncoder    *enc;

    static const int  sizes[] = { 120, 240, 480, 960, 1920, 2880, 5760 };
    static const md_codec_id_e  dir[][2] = {
        { MD_CODEC_PCMA, MD_CODEC_OPUS }, { MD_CODEC_OPUS, MD_CODEC_PCMA },
        { MD_CODEC_PCMU, MD_CODEC_OPUS }, { MD_CODEC_OPUS, MD_CODEC_PCMU },
        { MD_CODEC_PCMA, MD_CODEC_PCMU }, { MD_CODEC_OPUS, MD_CODEC_OPUS },
    };

    /* valid Opus packets of all durations, mono and stereo, to mutate */

    for (i = 0; i < 5760; i++) {
        t_in[i] = (float) ((int) (rnd() % 20001) - 10000) / 40000.0f;
    }

    for (k = 0; k < T_POOL; k++) {
        ch = 1 + (k & 1);
        enc = opus_encoder_create(48000, ch, (k & 2)
                                  ? OPUS_APPLICATION_AUDIO
                                  : OPUS_APPLICATION_VOIP, &err);
        pool_len[k] = encode_in(MD_CODEC_OPUS, enc, ch, t_in,
                                sizes[k % 7], pool[k]);
        opus_encoder_destroy(enc);
    }

    ok = 1;
    calls = 0;

    for (k = 0; k < T_POOL; k++) {
        if (pool_len[k] <= 0) {
            printf("# fuzz: pool packet %d: %d\n", k, pool_len[k]);
            ok = 0;
            pool_len[k] = 1;
        }
    }

    for (d = 0; d < (int) (sizeof(dir) / sizeof(dir[0])); d++) {
        tc = md_tc_new(dir[d][0], dir[d][1], MD_TC_PTIME);
        if (tc == NULL) {
            ok = 0;
            break;
        }

        for (i = 0; i < 3000; i++) {
            k = rnd() % T_POOL;

            switch (rnd() % 4) {
            case 0:
                len = rnd() % (MD_MAX_PACKET + 64);
                break;
            case 1:
            case 2:
                len = (size_t) pool_len[k];
                break;
            default:
                len = rnd() % 5;
            }

            in = malloc(len ? len : 1);          /* exact: ASan sees */

            for (size_t j = 0; j < len; j++) {
                in[j] = (uint8_t) rnd();
            }

            if (len == (size_t) pool_len[k] && len > 0) {
                memcpy(in, pool[k], len);

                for (int m = rnd() % 4; m > 0; m--) {
                    in[rnd() % len] ^= (uint8_t) (1 + rnd() % 255);
                }

                if (rnd() % 3 == 0) {
                    len = rnd() % len;          /* truncated */
                }
            }

            size = (rnd() % 8) ? MD_TC_MAX_OUT : rnd() % 200;
            out = malloc(size ? size : 1);

            switch (rnd() % 20) {
            case 0:
            case 1:
                ret = md_tc_conceal(tc, out, size);
                break;
            case 2:
                ret = md_tc_next(tc, out, size);
                break;
            default:
                ret = md_tc_run(tc, (rnd() % 50) ? in : NULL, len, out,
                                size);
            }

            calls++;

            if (ret < -1 || ret > (int) size
                || (ret > 0 && !frame_ok(dir[d][1], out, ret)))
            {
                printf("# fuzz %s -> %s call %d: %d (size %zu)\n",
                       name(dir[d][0]), name(dir[d][1]), i, ret, size);
                ok = 0;
            }

            while (ret > 0 && rnd() % 2) {
                ret = md_tc_next(tc, out, size);
            }

            free(in);
            free(out);
        }

        md_tc_free(tc);
    }

    check(ok, "fuzz: %d calls with random and mutated payloads", calls);
}


/*
 * CPU time per 20 ms frame, from 10 s of a sweeping tone with noise; and
 * the libopus share: the same Opus input decoded, or for Opus output the
 * decoded output encoded again with the same settings.
 */

static double
elapsed_us(struct timespec *t0)
{
    struct timespec  t1;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);

    return ((t1.tv_sec - t0->tv_sec) * 1e9 + (t1.tv_nsec - t0->tv_nsec))
           / 1e3;
}


static void
test_cpu(md_codec_id_e from, md_codec_id_e to)
{
    int              i, k, n, err, frames, spp, npk, bad;
    float           *pcm;
    double           us, lib;
    uint8_t         *pkts, *opkts, out[MD_TC_MAX_OUT];
    int             *lens, *olens;
    md_tc_t         *tc;
    OpusEncoder     *enc;
    OpusDecoder     *dec;
    struct timespec  t0;

    spp = md_codec_rate(from) / 50;
    npk = 500;
    pkts = malloc((size_t) npk * MD_TC_MAX_OUT);
    opkts = malloc((size_t) npk * MD_TC_MAX_OUT);
    lens = calloc((size_t) npk, sizeof(int));
    olens = calloc((size_t) npk, sizeof(int));
    pcm = malloc((size_t) npk * 960 * sizeof(float));
    enc = (from == MD_CODEC_OPUS)
          ? opus_encoder_create(48000, 2, OPUS_APPLICATION_VOIP, &err)
          : NULL;

    for (k = 0; k < npk; k++) {
        for (i = 0; i < spp; i++) {
            t_in[i] = (float) (0.2 * sin(2.0 * M_PI * (300.0 + k * 6)
                                         * (k * spp + i) / (spp * 50))
                               + (double) ((int) (rnd() % 2001) - 1000)
                                 / 20000.0);
        }

        lens[k] = encode_in(from, enc, 2, t_in, spp,
                            pkts + (size_t) k * MD_TC_MAX_OUT);
    }

    if (enc) {
        opus_encoder_destroy(enc);
    }

    tc = md_tc_new(from, to, MD_TC_PTIME);
    frames = 0;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);

    for (k = 0; k < npk; k++) {
        n = md_tc_run(tc, pkts + (size_t) k * MD_TC_MAX_OUT,
                      (size_t) lens[k], out, sizeof(out));

        while (n > 0) {
            if (frames < npk) {
                memcpy(opkts + (size_t) frames * MD_TC_MAX_OUT, out,
                       (size_t) n);
                olens[frames] = n;
            }

            frames++;
            n = md_tc_next(tc, out, sizeof(out));
        }
    }

    us = elapsed_us(&t0) / (frames ? frames : 1);

    md_tc_free(tc);

    bad = 0;
    lib = 0.0;

    if (from == MD_CODEC_OPUS) {
        dec = opus_decoder_create(48000, 1, &err);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);

        for (k = 0; k < npk; k++) {
            n = opus_decode_float(dec, pkts + (size_t) k * MD_TC_MAX_OUT,
                                  lens[k], pcm, 5760, 0);
            bad += (n != 960);
        }

        lib += elapsed_us(&t0) / npk;
        opus_decoder_destroy(dec);
    }

    if (to == MD_CODEC_OPUS) {
        dec = opus_decoder_create(48000, 1, &err);

        for (k = 0; k < npk && k < frames; k++) {
            n = opus_decode_float(dec, opkts + (size_t) k * MD_TC_MAX_OUT,
                                  olens[k], pcm + (size_t) k * 960, 960, 0);
            bad += (n != 960);
        }

        opus_decoder_destroy(dec);

        enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
        opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
        opus_encoder_ctl(enc, OPUS_SET_COMPLEXITY(5));
        opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
        opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(10));
        opus_encoder_ctl(enc, OPUS_SET_DTX(0));
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);

        for (k = 0; k < npk; k++) {
            n = opus_encode_float(enc, pcm + (size_t) k * 960, 960, out,
                                  sizeof(out));
            bad += (n <= 0);
        }

        lib += elapsed_us(&t0) / npk;
        opus_encoder_destroy(enc);
    }

    printf("# CPU %s -> %s: %.1f us per 20 ms frame (%.2f %% of a core "
           "per direction); libopus alone ~%.1f us\n",
           name(from), name(to), us, us / 200.0, lib);
    check(frames == npk && bad == 0, "%s -> %s: %d frames timed",
          name(from), name(to), frames);

    free(pkts);
    free(opkts);
    free(lens);
    free(olens);
    free(pcm);
}


int
main(void)
{
    printf("# opus %s\n", opus_get_version_string());

    test_tone(MD_CODEC_PCMA, MD_CODEC_OPUS, 20, 0);
    test_tone(MD_CODEC_OPUS, MD_CODEC_PCMA, 20, 2);
    test_tone(MD_CODEC_PCMU, MD_CODEC_OPUS, 20, 0);
    test_tone(MD_CODEC_OPUS, MD_CODEC_PCMU, 20, 1);
    test_tone(MD_CODEC_PCMA, MD_CODEC_PCMU, 20, 0);

    /* other ptimes: buffered into 20 ms frames */

    test_tone(MD_CODEC_PCMU, MD_CODEC_OPUS, 10, 0);
    test_tone(MD_CODEC_PCMA, MD_CODEC_OPUS, 60, 0);
    test_tone(MD_CODEC_OPUS, MD_CODEC_PCMA, 10, 2);
    test_tone(MD_CODEC_OPUS, MD_CODEC_PCMU, 40, 2);
    test_tone(MD_CODEC_OPUS, MD_CODEC_PCMA, 60, 2);
    test_tone(MD_CODEC_PCMA, MD_CODEC_PCMU, 40, 0);

    test_resampler();

    test_conceal(MD_CODEC_PCMA, MD_CODEC_OPUS);
    test_conceal(MD_CODEC_OPUS, MD_CODEC_PCMA);
    test_conceal(MD_CODEC_PCMU, MD_CODEC_OPUS);
    test_conceal(MD_CODEC_OPUS, MD_CODEC_PCMU);
    test_conceal(MD_CODEC_PCMA, MD_CODEC_PCMU);

    test_bad_input();
    test_ptime();
    test_fuzz();

    test_cpu(MD_CODEC_OPUS, MD_CODEC_PCMA);
    test_cpu(MD_CODEC_PCMA, MD_CODEC_OPUS);
    test_cpu(MD_CODEC_PCMA, MD_CODEC_PCMU);

    printf("%d passed, %d failed\n", t_passed, t_failed);

    return t_failed ? 1 : 0;
}
