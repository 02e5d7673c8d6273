/*
 * The flags of an NG offer or answer (flags.c, docs/ng.md): ICE,
 * DTLS, transport-protocol, rtcp-mux, codec, replace, received-from and
 * the "flags" list.
 */

#ifndef MD_FLAGS_H
#define MD_FLAGS_H

#include "bencode.h"
#include "sdp.h"


typedef struct {
    be_node_t          *flags;
    be_node_t          *codec;         /* dict: strip, offer, transcode, mask */
    be_node_t          *replace;
    be_node_t          *ice;
    be_node_t          *dtls;
    be_node_t          *transport;
    be_node_t          *rtcp_mux;
    be_node_t          *received_from;
    int                 trust_address;
    int                 strict_source;
} md_flags_t;


/* the flags of request req (pointers into it) */
void md_flags_get(be_node_t *req, md_flags_t *f);
/*
 * what the flags or the SDP ask that this relay cannot do (an unknown ICE,
 * DTLS or transport value, SDES-SRTP, DTLS-SRTP without a sha-256
 * fingerprint): the reason, or NULL
 */
const char *md_flags_check(md_flags_t *f, md_sdp_t *sdp);
/*
 * the endpoint address of m= line m: received-from unless trust-address,
 * else the c= of m or of the session; 0, or -1 when there is none
 */
int md_flags_remote_addr(md_flags_t *f, md_sdp_t *sdp, md_sdp_media_t *m,
    struct in_addr *addr);

#endif
