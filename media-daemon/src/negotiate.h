/*
 * Codec negotiation between the legs of a stream pair (negotiate.c): what
 * an offer proposes to the answerer, and from the answer what each side
 * is sent, the transcoders, telephone-event, and the payload type map of
 * each direction (RFC 3264 §6.1: each side numbers dynamic payload types
 * its own way).
 */

#ifndef MD_NEGOTIATE_H
#define MD_NEGOTIATE_H

#include "call.h"
#include "flags.h"


/*
 * the codecs offered to to (to->given) from what from declared: its
 * audio codecs less codec-strip and codec-mask, only codec-offer's when
 * given, then codec-transcode's (PCMA, PCMU, opus, on free payload types),
 * then its telephone-events and one in the clock of each transcoded codec
 * (RFC 4733 §2.1).  Until to declares its own, these are its codecs too.
 * NULL, or an error reason
 */
const char *md_codecs_offer(md_stream_t *from, md_stream_t *to,
    md_flags_t *f);
/*
 * what each side is sent, from the answer: the answerer's first audio
 * codec; the offerer gets the same when it offered it, else its own first
 * codec that transcodes to it (then both directions get a transcoder).
 * Telephone-event goes across when both declared it, each side in the
 * clock of its audio.  The offerer is told (given) only what it will get.
 * Sets both payload type maps (md_pt_map_t).  NULL, or an error reason
 */
const char *md_negotiate(md_stream_t *offerer, md_stream_t *answerer);
/*
 * the codec s is sent (after an answer), else the first it declared or,
 * before it declared any, was offered; NULL: none
 */
md_codec_t *md_stream_codec(md_stream_t *s);

#endif
