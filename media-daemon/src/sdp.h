/*
 * SDP parsing (sdp.c; RFC 8866 with RFC 3605 a=rtcp, RFC 5761 a=rtcp-mux,
 * RFC 8839 ICE and RFC 8122 fingerprint attributes).  What the relay
 * rewrites is parsed into fields; every other line is kept verbatim so it
 * can be passed on.
 */

#ifndef MD_SDP_H
#define MD_SDP_H

#include "codec.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>


#define MD_MAX_MEDIA      4          /* m= lines per call */
#define MD_MAX_ATTRS      64         /* attributes kept per m= line */
#define MD_MAX_SDP        16384      /* bytes of SDP in or out */


typedef struct {
    char                media[16];      /* audio, video, ... */
    uint16_t            port;
    char                proto[32];      /* RTP/AVP, UDP/TLS/RTP/SAVPF */
    int                 ncodecs;
    md_codec_t          codecs[MD_MAX_CODECS];
    struct in_addr      addr;           /* c= (media, else session) */
    int                 has_addr;
    uint16_t            rtcp_port;      /* a=rtcp, 0 when absent */
    int                 rtcp_mux;
    int                 ptime;          /* a=ptime, ms; 0: absent */
    char                direction[10];  /* sendrecv, sendonly, ... */
    char                ice_ufrag[64];
    char                ice_pwd[128];
    char                fingerprint[160];  /* "sha-256 AB:CD..." */
    char                setup[10];
    int                 nattrs;         /* other attributes, kept */
    char               *attrs[MD_MAX_ATTRS];
    int                 has_candidates;
    char                mid[32];        /* a=mid (RFC 9143) */
} md_sdp_media_t;

typedef struct {
    char                origin[256];    /* o= value */
    char                session[128];   /* s= value */
    struct in_addr      addr;           /* session c= */
    int                 has_addr;
    int                 nattrs;         /* session attributes, kept */
    char               *attrs[MD_MAX_ATTRS];
    int                 nmedia;
    md_sdp_media_t      media[MD_MAX_MEDIA];
    char                ice_ufrag[64];  /* session-level ICE */
    char                ice_pwd[128];
    char                fingerprint[160];
    int                 bundle;         /* a=group:BUNDLE */
    char                direction[10];  /* session level, or "" */
    char               *buf;            /* owns the attribute strings */
} md_sdp_t;


/*
 * parses text[0..len) (1..MD_MAX_SDP bytes, IPv4 only, at most
 * MD_MAX_MEDIA m= lines); returns NULL with *error set
 */
md_sdp_t *md_sdp_parse(const char *text, size_t len, const char **error);
void md_sdp_free(md_sdp_t *sdp);
/* the codec of payload type pt in m, or NULL */
md_codec_t *md_sdp_codec(md_sdp_media_t *m, int pt);
/* the codec named name (any case) in codecs[0..n), or NULL */
md_codec_t *md_sdp_codec_named(md_codec_t *codecs, int n, const char *name);

#endif
