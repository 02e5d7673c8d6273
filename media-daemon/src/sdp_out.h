/*
 * The SDP each endpoint is given (sdp_out.c): the other side's SDP with
 * our address and ports, the codecs negotiated for it, RTCP (RFC 3605,
 * RFC 5761), direction, and for a WebRTC endpoint ICE-Lite (RFC 8839) and
 * DTLS (RFC 8842) attributes.
 */

#ifndef MD_SDP_OUT_H
#define MD_SDP_OUT_H

#include "bencode.h"
#include "call.h"
#include "flags.h"


/*
 * in (the SDP of the other leg), rewritten for the endpoint of leg to,
 * appended to b; offer: 1 for an offer, 0 for an answer (RFC 5761 §5.1.1
 * rtcp-mux rules).  NULL, or "SDP too large"
 */
const char *md_sdp_out(be_buf_t *b, md_sdp_t *in, md_leg_t *to,
    md_flags_t *f, int offer);

#endif
