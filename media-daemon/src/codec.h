/*
 * Codecs: a payload type as an SDP declares it, the codecs the relay
 * knows by name (one enum for negotiation, the relay and the
 * transcoder), and G.711 sample conversion.
 */

#ifndef MD_CODEC_H
#define MD_CODEC_H

#include <stdint.h>


#define MD_MAX_CODECS     16         /* payload types per m= line */


/* one payload type of an m= line (RFC 8866 §6.6 a=rtpmap, a=fmtp) */
typedef struct {
    int                 pt;             /* payload type, 0-127 */
    char                name[32];       /* encoding name, e.g. "PCMA" */
    int                 rate;           /* clock rate, Hz */
    int                 channels;
    char                fmtp[256];
} md_codec_t;

typedef enum {
    MD_CODEC_UNKNOWN = 0,
    MD_CODEC_PCMA,                      /* RFC 3551 §4.5.14, 8 kHz */
    MD_CODEC_PCMU,
    MD_CODEC_OPUS,                      /* RFC 7587, 48 kHz */
    MD_CODEC_TELEPHONE_EVENT            /* RFC 4733, any clock */
} md_codec_id_e;


/* which of the known codecs c is, by name and clock rate */
md_codec_id_e md_codec_id(md_codec_t *c);
/*
 * 1 when a and b, payload types of two SDPs, are the same codec (RFC 3264
 * §6.1: the numbers may differ): encoding name (any case), clock rate and
 * channels; a static payload type without a=rtpmap by its number
 */
int md_codec_same(md_codec_t *a, md_codec_t *b);
/* the first of codecs[0..n) that is the same codec as c, or NULL */
md_codec_t *md_codec_find(md_codec_t *codecs, int n, md_codec_t *c);
/* 1 when audio of a can be transcoded to b (PCMA, PCMU, Opus) */
int md_codec_can_transcode(md_codec_id_e a, md_codec_id_e b);
/* RTP clock rate of an audio codec: 8000 or 48000 (RFC 7587 §4.1); -1 */
int md_codec_rate(md_codec_id_e id);

/* G.711 (ITU-T G.711) sample conversion, one byte per 16-bit sample */
int16_t md_alaw_decode(uint8_t a);
int16_t md_ulaw_decode(uint8_t u);
uint8_t md_alaw_encode(int16_t pcm);
uint8_t md_ulaw_encode(int16_t pcm);

#endif
