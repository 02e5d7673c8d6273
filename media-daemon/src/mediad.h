/*
 * codeb-mediad: the media relay between WebRTC and SIP, controlled over
 * the rtpengine NG protocol (PROTOCOL.md §3).
 *
 * Vocabulary follows rtpengine: a call (Call-ID) has two legs, each named
 * by its SIP tag (from-tag of the offerer, to-tag of the answerer); a leg
 * has one stream per m= line; a stream owns the local sockets the leg's
 * endpoint sends to and receives from.  Media that arrives on a stream is
 * relayed out of the peer stream (same m= line, other leg).
 */

#ifndef MD_MEDIAD_H
#define MD_MEDIAD_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bencode.h"


#define MD_MAX_MEDIA      4          /* m= lines per call */
#define MD_MAX_CODECS     16         /* payload types per m= line */
#define MD_MAX_ATTRS      64         /* attributes kept per m= line */
#define MD_MAX_SDP        16384      /* bytes of SDP in or out */
#define MD_MAX_PACKET     2048       /* bytes of an RTP/RTCP datagram */
#define MD_ID_LEN         256        /* call-id, tag */


/* ---- network byte order (RTP, RTCP, STUN fields) ---- */

static inline uint16_t
md_get16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}


static inline uint32_t
md_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static inline void
md_put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static inline void
md_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


/* ---- configuration (mediad.c) ---- */

typedef struct {
    struct in_addr      local;          /* sockets bind here */
    struct in_addr      advertised;     /* SDP c= and candidates */
    char                advertised_str[INET_ADDRSTRLEN];
    struct in_addr      ng_addr;
    uint16_t            ng_port;        /* NG control, UDP */
    uint16_t            port_min;       /* RTP range, even ports */
    uint16_t            port_max;
    int                 timeout;        /* s without media: call deleted */
    int                 threads;
    int                 foreground;
    const char         *log_level;
    char                recording_dir[1024];   /* "" when not set */
    const char         *config;         /* --config file, reread on HUP */
    const char         *redis;          /* unix:/path or host:port */
    char                id[128];        /* this daemon in Redis */
} md_conf_t;

extern md_conf_t  md_conf;

/*
 * What SIGHUP may change (--config), as one consistent copy: media threads
 * read these through md_conf_live(), never from md_conf, which thread 0
 * rewrites on reload.
 */
typedef struct {
    uint16_t            port_min;
    uint16_t            port_max;
    int                 timeout;        /* s */
    char                recording_dir[1024];
} md_live_t;

void md_conf_live(md_live_t *live);

void md_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define MD_LOG_ERR    3
#define MD_LOG_WARN   4
#define MD_LOG_INFO   6
#define MD_LOG_DEBUG  7


/* ---- event loop (mediad.c) ---- */

typedef struct md_io_s  md_io_t;
typedef void (*md_io_handler_pt)(md_io_t *io);

/* a file descriptor watched for input (level-triggered) */
struct md_io_s {
    int                 fd;
    md_io_handler_pt    handler;
    void               *data;
};

#define MD_MAX_THREADS  64

/* an NG datagram handed to the thread that owns its call */
typedef struct md_ng_item_s  md_ng_item_t;

struct md_ng_item_s {
    md_ng_item_t       *next;
    size_t              len;
    struct sockaddr_in  from;
    char                data[];
};

/*
 * One event loop per thread (--threads, default one per core).  A call
 * lives in one thread: its sockets are in that thread's epoll, its NG
 * requests are executed there, so media needs no locks.
 */
typedef struct {
    int                 index;
    pthread_t           tid;
    int                 epoll;
    md_io_t             efd;           /* eventfd: requests queued */
    pthread_mutex_t     lock;
    md_ng_item_t       *head;
    md_ng_item_t      **tail;
} md_thread_t;

extern _Thread_local md_thread_t  *md_self;

/* queues an NG request for thread index; 0 or -1 */
int md_thread_post(int index, const char *p, size_t len,
    struct sockaddr_in *from);
int md_thread_count(void);

/* watches io in the calling thread's loop */
int md_io_add(md_io_t *io);
void md_io_del(md_io_t *io);
/* seconds since start, monotonic */
double md_now(void);
/* FNV-1a of s, for hash tables (call-ids, NG cookies) */
unsigned md_hash(const char *s, size_t len);


/* ---- NG control (ng.c) ---- */

int md_ng_init(void);
/* executes one NG request in the calling thread and sends the reply */
void md_ng_execute(const char *p, size_t len, struct sockaddr_in *from);
/* 1 after SIGTERM: offers for new calls are refused */
int md_draining(void);


/* ---- SDP (sdp.c) ---- */

typedef struct {
    int                 pt;             /* payload type, 0-127 */
    char                name[32];       /* encoding name, e.g. "PCMA" */
    int                 rate;           /* clock rate, Hz */
    int                 channels;
    char                fmtp[256];
} md_codec_t;

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

/* parses SDP (RFC 8866); returns NULL with *error set */
md_sdp_t *md_sdp_parse(const char *text, size_t len, const char **error);
void md_sdp_free(md_sdp_t *sdp);
/* the codec of payload type pt in m, or NULL */
md_codec_t *md_sdp_codec(md_sdp_media_t *m, int pt);
/* the codec named name (any case) in codecs[0..n), or NULL */
md_codec_t *md_sdp_codec_named(md_codec_t *codecs, int n, const char *name);


/* ---- codecs (codec.c) ---- */

/* the values match md_tc_codec_e of transcode.h */
typedef enum {
    MD_CODEC_UNKNOWN = 0,
    MD_CODEC_PCMA,
    MD_CODEC_PCMU,
    MD_CODEC_OPUS,
    MD_CODEC_TELEPHONE_EVENT
} md_codec_id_e;

md_codec_id_e md_codec_id(md_codec_t *c);
/*
 * 1 when a and b, payload types of two SDPs, are the same codec (RFC 3264
 * §6.1: the numbers may differ): encoding name (any case), clock rate and
 * channels; a static payload type without a=rtpmap by its number
 */
int md_codec_same(md_codec_t *a, md_codec_t *b);
/* the first of codecs[0..n) that is the same codec as c, or NULL */
md_codec_t *md_codec_find(md_codec_t *codecs, int n, md_codec_t *c);
/* 1 when audio of a can be transcoded to b */
int md_codec_can_transcode(md_codec_id_e a, md_codec_id_e b);
/* G.711 (ITU-T G.711) sample conversion */
int16_t md_alaw_decode(uint8_t a);
int16_t md_ulaw_decode(uint8_t u);
uint8_t md_alaw_encode(int16_t pcm);
uint8_t md_ulaw_encode(int16_t pcm);



/* ---- calls (call.c) ---- */

typedef struct md_call_s  md_call_t;

/*
 * The NG commands.  Each fills reply (a bencoded dict's members, without
 * "result") and returns NULL, or returns an error reason.
 */
const char *md_call_offer(be_node_t *req, be_buf_t *reply);
const char *md_call_answer(be_node_t *req, be_buf_t *reply);
const char *md_call_delete(be_node_t *req, be_buf_t *reply);
const char *md_call_query(be_node_t *req, be_buf_t *reply);
const char *md_call_list(be_node_t *req, be_buf_t *reply);
const char *md_call_play(be_node_t *req, be_buf_t *reply);
const char *md_call_stop_media(be_node_t *req, be_buf_t *reply);
const char *md_call_start_recording(be_node_t *req, be_buf_t *reply);
const char *md_call_stop_recording(be_node_t *req, be_buf_t *reply);
/* deletes calls without media for md_conf.timeout s; run every second */
void md_call_timeouts(void);
/* calls alive in all threads */
size_t md_call_count(void);
/* the calling thread's call table; 0 or -1 */
int md_call_thread_init(int index);
/* the thread that owns call-id id */
int md_call_owner(const char *id, size_t len);

#endif
