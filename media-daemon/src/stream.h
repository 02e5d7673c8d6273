/*
 * A stream's local sockets and what is known of its endpoint (stream.c):
 * the RTP/RTCP port pair, the endpoint's address, ICE-Lite credentials
 * and the DTLS role, from its SDP and the flags of the NG request.
 */

#ifndef MD_STREAM_H
#define MD_STREAM_H

#include "call.h"
#include "flags.h"


/*
 * a stream of leg for m= line index, its sockets open in the calling
 * thread's loop (an even RTP port of --port-min/--port-max and the odd
 * RTCP one above it) and its outgoing SSRC, sequence and timestamp bases
 * random (RFC 3550 §5.1); NULL with *err set
 */
md_stream_t *md_stream_new(md_call_t *c, md_leg_t *leg, int index,
    const char **err);
/* its sockets closed, player, recorder, DTLS and transcoder freed, and s */
void md_stream_free(md_stream_t *s);
/*
 * takes what the endpoint of s said about itself in m of sdp: media,
 * transport, direction, ptime, rtcp-mux, its codecs, its ICE and DTLS
 * attributes (RFC 8839, RFC 8842), and its address (md_flags_remote_addr;
 * kept while latched to the same one)
 */
void md_stream_learn(md_stream_t *s, md_sdp_t *sdp, md_sdp_media_t *m,
    md_flags_t *f);
/*
 * what b, the answerer's side of an offer from a, will speak: WebRTC or
 * plain RTP (transport-protocol), ICE (ICE force/remove), our a=setup
 * (DTLS passive/active, else actpass) and, for a WebRTC answerer, a DTLS
 * server ready before the answer (a browser starts first)
 */
void md_stream_target(md_stream_t *b, md_stream_t *a, md_flags_t *f);
/*
 * the DTLS association with s's endpoint once its a=setup and fingerprint
 * are known (RFC 5763 §5): our role from its a=setup, started when its
 * address is known; NULL or an error reason
 */
const char *md_stream_dtls(md_stream_t *s);

#endif
