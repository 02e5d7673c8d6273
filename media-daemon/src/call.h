/*
 * Calls, legs and streams: the state every part of the relay shares, and
 * the per-thread tables of calls (call.c).
 *
 * Vocabulary follows rtpengine: a call (Call-ID) has two legs, each named
 * by its SIP tag (from-tag of the offerer, to-tag of the answerer); a leg
 * has one stream per m= line; a stream owns the local sockets the leg's
 * endpoint sends to and receives from.  Media that arrives on a stream is
 * relayed out of the peer stream (same m= line, other leg).
 */

#ifndef MD_CALL_H
#define MD_CALL_H

#include "bencode.h"
#include "codec.h"
#include "dtls.h"
#include "loop.h"
#include "rewrite.h"
#include "sdp.h"
#include "transcode.h"

#include <netinet/in.h>
#include <stdint.h>
#include <time.h>


#define MD_CALL_HASH  1024
#define MD_ID_LEN     256            /* call-id, tag */


typedef struct md_call_s      md_call_t;
typedef struct md_leg_s       md_leg_t;
typedef struct md_stream_s    md_stream_t;
typedef struct md_player_s    md_player_t;
typedef struct md_recorder_s  md_recorder_t;


typedef struct {
    uint64_t            packets;
    uint64_t            bytes;
    uint64_t            errors;        /* dropped: unknown PT, spoofed */
    uint64_t            lost;          /* RFC 3550 A.3, from seq gaps */
    double              jitter;        /* RFC 3550 A.8, in timestamp units */
    int                 have_seq;
    uint16_t            max_seq;
    uint32_t            last_transit;
} md_stats_t;

/*
 * What a payload type an endpoint sends becomes towards the peer's
 * endpoint (RFC 3264 §6.1: each side numbers dynamic payload types its own
 * way), set when an answer is taken and kept until the next one (RFC 3264
 * §8.3.2: a re-offer changes nothing before its answer).
 */
typedef enum {
    MD_PT_DROP = 0,                    /* not declared, or nothing to do */
    MD_PT_PASS,                        /* the same codec, the peer's pt */
    MD_PT_DTMF,                        /* RFC 4733 events, peer's dtmf_pt */
    MD_PT_TRANSCODE                    /* through the stream's tc */
} md_pt_action_e;

typedef struct {
    md_pt_action_e      action;
    int                 pt;            /* MD_PT_PASS: the peer's number */
    int                 rate;          /* Hz, the clock of the pt in */
} md_pt_map_t;

struct md_stream_s {
    md_call_t          *call;
    md_leg_t           *leg;
    md_stream_t        *peer;          /* same m= line, other leg */
    int                 index;         /* m= line, from 0 */

    md_io_t             rtp;           /* the endpoint sends here */
    md_io_t             rtcp;          /* fd -1 with rtcp-mux */
    uint16_t            port;          /* local RTP port; RTCP is + 1 */

    struct sockaddr_in  remote;        /* endpoint's RTP address */
    struct sockaddr_in  remote_rtcp;
    int                 has_remote;
    int                 latched;       /* remote learned from media */
    int                 rtcp_mux;      /* the endpoint muxes RTCP */
    uint16_t            rtcp_port;     /* its RTCP port when not muxed */
    int                 mux_accept;    /* its mux is accepted back even if
                                          the other side demuxes */

    char                media[16];
    char                proto[32];     /* what this endpoint speaks */
    char                direction[10];
    int                 ncodecs;       /* what this endpoint declared in */
    md_codec_t          codecs[MD_MAX_CODECS];   /* its SDP: its numbers */
    int                 ngiven;        /* what the SDP we give it lists */
    md_codec_t          given[MD_MAX_CODECS];
    md_pt_map_t         pt_map[128];   /* by the payload type it sends */

    int                 send_pt;       /* audio PT we send it, -1: none */
    md_codec_id_e       send_codec;
    int                 dtmf_pt;       /* telephone-event PT we send it
                                          (from the answer), or -1 */
    int                 dtmf_rate;     /* Hz, the clock of those events */

    /* a WebRTC endpoint: ICE-Lite (RFC 8445) and DTLS-SRTP (RFC 5764) */
    int                 webrtc;        /* speaks UDP/TLS/RTP/SAVPF */
    int                 ice;           /* we are its ICE-Lite peer */
    char                ice_ufrag[9];  /* ours */
    char                ice_pwd[25];
    char                remote_ufrag[64];
    int                 ice_selected;  /* a checked pair carries media */
    char                remote_fp[160];
    char                remote_setup[10];
    char                setup[10];     /* ours: actpass, active, passive */
    char                mid[32];
    md_dtls_t          *dtls;
    int                 dtls_started;

    md_tc_t            *tc;            /* transcoder, this -> peer */
    uint32_t            tc_ssrc;       /* the last packet fed to tc */
    uint16_t            tc_seq;
    unsigned            tc_fed:1;
    int                 ptime;         /* ms it wants per packet, 0: any
                                          (a=ptime, RFC 8866 §6.4) */
    md_player_t        *player;        /* media played to this endpoint */
    md_recorder_t      *recorder;      /* what this endpoint sends */
    int                 rate;          /* RTP clock of what it sends */

    md_rewrite_t        out;           /* what we send to this endpoint */
    md_stats_t          in;            /* what it sends us */
    uint64_t            packets_out;   /* RTP sent to this endpoint */
    uint64_t            octets_out;    /* their payload bytes */
    uint64_t            rtcp_packets;

    /* RFC 3550 §6.4.1: round trip to this endpoint from its reports on
     * the sender reports we forwarded to it */
    struct {
        uint32_t        lsr;           /* NTP timestamp, middle 32 bits */
        double          at;            /* md_now() when sent */
    }                   sr_sent[4];
    unsigned            sr_next;
    double              rtt;           /* s; 0: not measured yet */
    double              last_in;       /* s, md_now(); 0: never */
};

struct md_leg_s {
    char                tag[MD_ID_LEN];
    int                 nstreams;
    md_stream_t        *streams[MD_MAX_MEDIA];   /* [0, nstreams) */
    unsigned            strict_source:1;
    unsigned            bundle:1;      /* its SDP had a=group:BUNDLE */
};

struct md_call_s {
    md_call_t          *next;          /* hash chain */
    char                id[MD_ID_LEN];
    md_leg_t            legs[2];       /* [0]: offerer of the first offer */
    int                 answered;
    double              created;       /* s, md_now() */
    double              last_signal;
    time_t              created_wall;
};


/* ---- the calls of each thread (call.c) ---- */

/* the calling thread's call table (thread index); 0 or -1 */
int md_call_thread_init(int index);
/* calls alive in all threads */
size_t md_call_count(void);
/* the thread that owns call-id id[0..len) (md_thread_index()) */
int md_call_owner(const char *id, size_t len);
/* the calls of hash bucket i (0..MD_CALL_HASH) of the calling thread */
md_call_t *md_call_bucket(int i);
/* the calling thread's call named by id, or NULL */
md_call_t *md_call_find(be_node_t *id);
/* a new call named by id (1..MD_ID_LEN - 1 bytes, no NUL); NULL */
md_call_t *md_call_new(be_node_t *id);
/* closes its streams' sockets and frees the call */
void md_call_free(md_call_t *c);
/*
 * streams for m= lines [0, n) on both legs (those missing), paired: NULL,
 * or an error reason
 */
const char *md_call_streams(md_call_t *c, int n);
/* 1 when leg is the party named by tag (a bencoded string) */
int md_leg_is(md_leg_t *leg, be_node_t *tag);
/* tag into leg->tag; 0, or -1 when empty, too long or holding a NUL */
int md_leg_name(md_leg_t *leg, be_node_t *tag);
/* fn on every stream of the call, or of leg only when leg is not NULL */
void md_call_each(md_call_t *c, md_leg_t *leg, void (*fn)(md_stream_t *s));
/* the call-ids of all threads, at most limit, as bencoded strings */
void md_call_ids(be_buf_t *b, int64_t limit);
/*
 * deletes the calling thread's calls without signalling or media for
 * --timeout s, and runs their DTLS timers; every second
 */
void md_call_timeouts(void);

#endif
