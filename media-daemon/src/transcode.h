/*
 * Transcoding of one direction of a stream between Opus (RFC 6716,
 * RFC 7587) and G.711 (RFC 3551 PCMA/PCMU) through 16-bit linear PCM,
 * with an 8 kHz <-> 48 kHz resampler (windowed-sinc FIR, polyphase).
 *
 * Output comes in frames of the packet time given to md_tc_new() (the
 * receiver's a=ptime; 20 ms by default), one RTP payload each
 * (md_tc_frame() timestamp units).  Inputs of any duration (10 ms up to
 * 120 ms) are buffered: md_tc_run() returns the first frame that is
 * ready, md_tc_next() the others, so a caller sends
 *
 *     lag = md_tc_queued(tc);
 *     n = md_tc_run(tc, in, len, out, sizeof(out));
 *     first frame: ts of the packet in - lag (in the input clock);
 *     while (n > 0) {
 *         send out[0..n) with ts, then ts += md_tc_frame(tc);
 *         n = md_tc_next(tc, out, sizeof(out));
 *     }
 *
 * All memory is allocated by md_tc_new(); nothing is allocated per packet.
 */

#ifndef MD_TRANSCODE_H
#define MD_TRANSCODE_H

#include "codec.h"

#include <stddef.h>
#include <stdint.h>


/* bytes: no output frame is longer (RFC 6716 §3.4 R2: an Opus frame) */
#define MD_TC_MAX_OUT  1275

/* ms of audio in each output frame, unless md_tc_new() is told otherwise */
#define MD_TC_PTIME    20


typedef struct md_tc_s  md_tc_t;    /* one direction: from -> to */


/*
 * from, to: MD_CODEC_PCMA, MD_CODEC_PCMU or MD_CODEC_OPUS
 * (md_codec_can_transcode()).  ptime: ms per output frame (a=ptime of
 * the receiver, RFC 8866 §6.4): 10-60 in steps of 10, for Opus 10, 20, 40
 * or 60; anything else (0: not given) is MD_TC_PTIME.  NULL for another
 * codec or on failure; allocates (call setup, not per packet).
 */
md_tc_t *md_tc_new(md_codec_id_e from, md_codec_id_e to, int ptime);
/* tc and its codec state freed; NULL: nothing */
void md_tc_free(md_tc_t *tc);

/* timestamp units (samples at md_codec_rate(to)) of each output frame */
size_t md_tc_frame(md_tc_t *tc);

/*
 * Samples at md_codec_rate(to) decoded and not yet sent: the next frame out
 * begins this long before the next packet in.
 */
size_t md_tc_queued(md_tc_t *tc);

/*
 * One RTP payload in (G.711: 1-960 bytes; Opus: a packet of up to
 * 120 ms), buffered; the first frame ready goes to out.  Returns
 * the bytes written to out, 0 when no frame is ready yet (e.g. after the
 * first of two 10 ms packets), -1 on a decoding error (the caller drops
 * the packet; the state is kept) or when size is too small (give at
 * least MD_TC_MAX_OUT; the frame stays queued).
 */
int md_tc_run(md_tc_t *tc, const uint8_t *in, size_t len, uint8_t *out,
    size_t size);

/* the next queued frame: bytes written, 0 when none, -1 as above */
int md_tc_next(md_tc_t *tc, uint8_t *out, size_t size);

/*
 * A lost input packet: 20 ms of concealment (Opus input: the decoder's
 * PLC; G.711 input: silence) are queued, and the next frame is returned
 * as by md_tc_next().
 */
int md_tc_conceal(md_tc_t *tc, uint8_t *out, size_t size);

#endif
