/*
 * rtpload: RTP load generator for bench/media.sh.  One thread: paced
 * sendmmsg() of every due packet, recvmmsg() of whatever has arrived,
 * clock_nanosleep() until the next packet is due, but at most one wakeup
 * per QUANTUM us (a timer wakeup costs more than a packet; packets due
 * meanwhile go out together).  Built by bench/media.sh with
 * cc -O2 ... -lopus -lm.
 *
 *   rtpload -s a|b|c -f CALLS -n N -A PORT -B PORT -S POOL -p PID
 *           [-w WARMUP_S] [-d DURATION_S] [-t DRAIN_MS] [-r RSS0_KB]
 *           [-q QUANTUM_US] [-T 0|1] [-v [-v]]
 *
 * -T 0: no TX timestamps (the send time is then the clock before the
 * sendmmsg() call, which it overstates by up to a few us); -v: packets not
 * received, -v -v: every packet of the first two calls, on stderr.
 *
 * CALLS is the output of bench/media_setup.py: "<i> <port A sends to>
 * <port B sends to>" per call; the first N calls are used.  Side A of call
 * i sends from and receives on 127.0.0.1:(A + 2 * (i % POOL)), side B on
 * 127.0.0.1:(B + 2 * (i % POOL)) -- the addresses in the SDP that
 * media_setup.py gave the relay.  A packet's call and direction are known
 * from the relay port it comes from (symmetric RTP: a relay sends from the
 * port it advertised to the receiver).
 *
 * Every call sends both ways, one packet every 20 ms per direction:
 *
 *   a  A->B PCMA, B->A PCMA                   (pass-through)
 *   b  A->B PCMA -> PCMU, B->A PCMU -> PCMA   (transcoded by the relay)
 *   c  A->B Opus -> PCMA, B->A PCMA -> Opus
 *   d  A->B SRTP PCMA -> RTP PCMA, B->A RTP PCMA -> SRTP PCMA: side A is a
 *      WebRTC endpoint (webrtc_client.c: ICE check, DTLS client handshake
 *      with use_srtp, libsrtp2), one socket per call (DTLS is per 5-tuple)
 *      at A + i; -C/-K its certificate and key (the SDP's fingerprint).
 *      CALLS lines go on with "<relay ufrag> <relay pwd> <A port> <A ufrag>
 *      <A pwd> <the relay's a=setup>" (active: A is the DTLS server).  The handshakes are done before the first packet (not
 *      measured; dtls_setup_s).  Latency is still the loopback timestamps:
 *      ours protects before the send, unprotects after the arrival.
 *
 * G.711 payloads are 160 bytes of a two-tone signal whose 50 frames of 20 ms
 * all differ (1 s period); Opus payloads are 50 packets encoded once at
 * startup with libopus (48 kHz mono, 32 kbit/s, VOIP) from a 440 Hz sine,
 * looped.  Each stream starts at its own frame of the loop, so a packet
 * delivered to the wrong call fails the payload check.  The 2N streams
 * are spread evenly over the 20 ms period and start over the first 0.5 s.
 *
 * Per received packet: the round it belongs to is its sequence number's
 * offset from the stream's first packet out of the relay, plus the round
 * of that first packet.  G.711 output: the round whose audio it carries
 * (searched over the last second).  Other output (Opus, PCMA made from
 * Opus): settled at the end as the smallest "last round sent before
 * arrival - offset" over the stream's packets, exact once one packet came
 * within 20 ms (the first may have been late).  A relay that keeps a frame
 * back (emits frame k when k+1 arrives) thus shows "held" 1, and its
 * latency is measured from the packet that made it send.  Latency = the relay's packet arriving minus
 * ours leaving, both software timestamps of the loopback device
 * (SO_TIMESTAMPING: RX on the data, TX from the error queue matched by
 * OPT_ID key; CLOCK_REALTIME), for packets sent during the window.  So
 * it is what the relay adds: its wakeup, its work, its send; not ours.
 *
 * Checks: RTP version 2 and payload type, delivery on the right socket,
 * SSRC constant per stream, no duplicates, round in range, the RTP
 * timestamp 20 ms further per sequence number (ts_jumps), payload: G.711
 * out: SNR >= 20 dB against the expected audio (exact bytes counted too);
 * Opus out: a valid 20 ms Opus packet, and for the first 4 calls decoded
 * audio at >= -30 dBFS; PCMA from Opus: level >= -30 dBFS.
 *
 * Window: the first WARMUP s of sending are not measured; then DURATION s
 * of CPU (/proc/PID/task/x/schedstat, and /proc/PID/stat), latency, RSS at
 * the end.  Loss: packets sent in the window, but its last 100 ms (a relay
 * may keep the last frame until the next comes), not received DRAIN ms
 * after the last send; d*_loss_all_pct counts the warmup too.
 * Output: "key value" lines on stdout.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/errqueue.h>
#include <linux/net_tstamp.h>

#include <opus/opus.h>
#include <sys/epoll.h>

#include "webrtc_client.h"


#define PERIOD_NS     20000000LL      /* 20 ms per packet and direction */
#define NFRAMES       50              /* 1 s loop of payloads */
#define G711_LEN      160
#define MAX_POOL      64
#define SEND_BATCH    32              /* packets per sendmmsg() at most */
#define RECV_BATCH    64
#define MAX_CALLS     20000
#define PKT_MAX       1500
#define SNR_MIN_DB    20.0
#define LEVEL_MIN_DB  -30.0
#define OPUS_DECODE_CALLS  4         /* Opus out of these calls is decoded */
#define TAIL_ROUNDS   5               /* the last 100 ms: not in the loss
                                         (a relay may keep the last frame
                                         until the next one comes) */

enum { K_PCMA, K_PCMU, K_OPUS };          /* what goes on the wire */
enum { CHK_G711, CHK_OPUS, CHK_LEVEL };   /* how a received payload is judged */

typedef struct {
    int       call, dir;          /* dir 0: A->B, 1: B->A */
    int       tx_fd, rx_slot;     /* socket index it sends from / arrives on */
    struct sockaddr_in  dest;     /* relay port it sends to */
    uint16_t  relay_out_port;     /* relay port it arrives from */
    uint32_t  ssrc;
    uint16_t  seq0;
    uint32_t  ts0;
    int       phase;              /* first frame of the loop */
    int       start;              /* first round */
    int64_t  *tx;                 /* send time per round (ns, realtime), 0 unsent */
    uint8_t  *got;
    /* receive side */
    int       have_base;
    int       base_round;
    uint16_t  last_seq;
    int64_t   ext;                /* extended seq relative to the first */
    uint32_t  rx_ssrc;
    uint64_t  received, dup, oor, neg, bad_pt, bad_payload, exact, ssrc_changes;
    uint64_t  ts_jumps;
    OpusDecoder *dec;             /* Opus out of the first calls: decoded */
    /* output that carries no round (Opus, PCMA made from Opus): packets
       kept, their round settled at the end */
    int32_t  *pk_ext;
    int64_t  *pk_rx;
    int       npk;
    int64_t   last_ext_ts;        /* ext of the last packet, for ts checks */
    uint32_t  last_ts;
    int       have_ts;
    int       nrx;
} stream_t;

/* options */
static char        o_scen = 'a';
static const char *o_file;
static int         o_calls = 0;
static int         o_abase = 0, o_bbase = 0, o_pool = 4;
static int         o_pid = 0;
static double      o_warm = 1.0, o_dur = 4.0;
static int         o_drain = 300;
static long        o_rss0 = -1;
static int         o_txstamp = 1;
static int         o_quantum = 200;           /* us between wakeups, at least */
static int         o_verbose = 0;
static const char *o_cert, *o_key;            /* d: A's certificate */

static stream_t   *st;
static int         nst;
static int         nrounds;
/* sockets: [0, a_slots): A, [a_slots, nslots): B; a_slots is the pool, for
   d one per call */
static int         a_slots, nslots;
static int        *fds;
static wc_call   **wc;                        /* d: per call */
static uint64_t    srtp_fail, srtp_protect_fail;
static int32_t     by_port[65536];            /* relay out port -> stream + 1 */

/* payloads per direction */
static int         wire_kind[2], wire_pt[2], out_kind[2], out_pt[2], chk[2], ts_step[2];
static uint8_t     g711_src[2][NFRAMES][G711_LEN];
static uint8_t     g711_exp[2][NFRAMES][G711_LEN];   /* expected bytes out */
static int16_t     lin_exp[2][NFRAMES][G711_LEN];    /* expected audio out */
static uint8_t     opus_pkt[NFRAMES][PKT_MAX];
static int         opus_len[NFRAMES];
static int16_t     alaw_lin[256], ulaw_lin[256];

static int64_t     t0_ns, win_start_ns, win_end_ns, send_end_ns;

/* latency samples, ns */
typedef struct { uint32_t *v; size_t n, cap; } lat_t;
static lat_t       lat_all, lat_dir[2];

static uint64_t    unknown_src, bad_rtp, wrong_sock, rx_total, late_sends;
static lat_t       sched_lag;
static uint32_t   *ovfl_last;
/* TX timestamps: per socket, the packet behind each SOF_TIMESTAMPING_OPT_ID
   key (stream * nrounds + round) */
#define TX_RING       (1 << 16)
static int32_t   **tx_ring;
static uint32_t   *tx_key, *tx_mask;
static uint64_t    tx_precise, tx_unmatched;
static int        *sent_on;
static uint64_t    loadgen_drops;


static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "rtpload: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}


static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}


static int64_t
rt_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}


static void
lat_add(lat_t *l, int64_t v)
{
    if (v < 0) {
        v = 0;
    }
    if (v > 0xffffffffLL) {
        v = 0xffffffffLL;
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 65536;
        l->v = realloc(l->v, l->cap * sizeof(uint32_t));
        if (l->v == NULL) {
            die("out of memory");
        }
    }
    l->v[l->n++] = (uint32_t) v;
}


static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}


static void
lat_print(const char *name, lat_t *l)
{
    double p50 = 0, p99 = 0, p999 = 0, max = 0;

    if (l->n) {
        qsort(l->v, l->n, sizeof(uint32_t), cmp_u32);
        p50 = l->v[(size_t) (l->n * 0.50)] / 1e3;
        p99 = l->v[(size_t) (l->n * 0.99)] / 1e3;
        p999 = l->v[(size_t) (l->n * 0.999)] / 1e3;
        max = l->v[l->n - 1] / 1e3;
    }
    printf("%s_samples %zu\n%s_p50_us %.1f\n%s_p99_us %.1f\n%s_p999_us %.1f\n"
           "%s_max_us %.1f\n", name, l->n, name, p50, name, p99, name, p999,
           name, max);
}


/* ---- G.711 (ITU-T G.711, the classic Sun reference algorithm) ---- */

static uint8_t
alaw_enc(int16_t pcm)
{
    static const int seg_end[8] = { 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF,
                                    0x7FF, 0xFFF };
    int mask, seg, aval, v = pcm >> 3;

    if (v >= 0) {
        mask = 0xD5;
    } else {
        mask = 0x55;
        v = -v - 1;
    }
    for (seg = 0; seg < 8 && v > seg_end[seg]; seg++) { }
    if (seg >= 8) {
        return (uint8_t) (0x7F ^ mask);
    }
    aval = seg << 4;
    aval |= (seg < 2) ? (v >> 1) & 0x0F : (v >> seg) & 0x0F;
    return (uint8_t) (aval ^ mask);
}


static int16_t
alaw_dec(uint8_t a)
{
    int t, seg;

    a ^= 0x55;
    t = (a & 0x0F) << 4;
    seg = (a & 0x70) >> 4;
    if (seg == 0) {
        t += 8;
    } else if (seg == 1) {
        t += 0x108;
    } else {
        t += 0x108;
        t <<= seg - 1;
    }
    return (int16_t) ((a & 0x80) ? t : -t);
}


static uint8_t
ulaw_enc(int16_t pcm)
{
    static const int seg_end[8] = { 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF,
                                    0xFFF, 0x1FFF };
    int mask, seg, uval, v = pcm >> 2;

    if (v < 0) {
        v = -v;
        mask = 0x7F;
    } else {
        mask = 0xFF;
    }
    if (v > 8159) {
        v = 8159;
    }
    v += 0x84 >> 2;
    for (seg = 0; seg < 8 && v > seg_end[seg]; seg++) { }
    if (seg >= 8) {
        return (uint8_t) (0x7F ^ mask);
    }
    uval = (seg << 4) | ((v >> (seg + 1)) & 0x0F);
    return (uint8_t) (uval ^ mask);
}


static int16_t
ulaw_dec(uint8_t u)
{
    int t;

    u = ~u;
    t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (int16_t) ((u & 0x80) ? (0x84 - t) : (t - 0x84));
}


/* ---- payloads ---- */

static void
make_payloads(void)
{
    int            d, f, i, err, n;
    double         t, x;
    int16_t        pcm[NFRAMES * G711_LEN];
    float          opcm[960];
    OpusEncoder   *enc;
    /* per direction two tones, 1 s period (k * 0.02 * f is no integer
       before k = 50), about -12 dBFS together */
    static const double tones[2][2] = { { 441.0, 1003.0 }, { 523.0, 1201.0 } };

    for (i = 0; i < 256; i++) {
        alaw_lin[i] = alaw_dec((uint8_t) i);
        ulaw_lin[i] = ulaw_dec((uint8_t) i);
    }

    for (d = 0; d < 2; d++) {
        for (i = 0; i < NFRAMES * G711_LEN; i++) {
            t = i / 8000.0;
            x = 0.18 * sin(2 * M_PI * tones[d][0] * t)
                + 0.12 * sin(2 * M_PI * tones[d][1] * t);
            pcm[i] = (int16_t) lrint(x * 32767.0);
        }
        for (f = 0; f < NFRAMES; f++) {
            for (i = 0; i < G711_LEN; i++) {
                int16_t  s = pcm[f * G711_LEN + i], lin;
                uint8_t  w, o;

                w = (wire_kind[d] == K_PCMU) ? ulaw_enc(s) : alaw_enc(s);
                lin = (wire_kind[d] == K_PCMU) ? ulaw_lin[w] : alaw_lin[w];
                o = (out_kind[d] == K_PCMU) ? ulaw_enc(lin) : alaw_enc(lin);
                if (out_kind[d] == wire_kind[d]) {
                    o = w;
                }
                g711_src[d][f][i] = w;
                g711_exp[d][f][i] = o;
                lin_exp[d][f][i] = lin;
            }
        }
    }

    if (wire_kind[0] != K_OPUS) {
        return;
    }

    enc = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    if (enc == NULL) {
        die("opus_encoder_create: %s", opus_strerror(err));
    }
    opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
    opus_encoder_ctl(enc, OPUS_SET_INBAND_FEC(1));
    opus_encoder_ctl(enc, OPUS_SET_PACKET_LOSS_PERC(5));

    /* one second to settle the encoder, then the 50 packets kept; 440 Hz
       has a whole number of periods in 1 s, so the loop is seamless */
    for (int pass = 0; pass < 2; pass++) {
        for (f = 0; f < NFRAMES; f++) {
            for (i = 0; i < 960; i++) {
                opcm[i] = (float) (0.316 * sin(2 * M_PI * 440.0
                                               * (f * 960 + i) / 48000.0));
            }
            n = opus_encode_float(enc, opcm, 960, opus_pkt[f], PKT_MAX);
            if (n <= 0) {
                die("opus_encode_float: %s", opus_strerror(n));
            }
            opus_len[f] = n;
        }
    }
    opus_encoder_destroy(enc);
}


static void
setup_scenario(void)
{
    switch (o_scen) {
    case 'a':
    case 'd':
        wire_kind[0] = K_PCMA; wire_pt[0] = 8; out_kind[0] = K_PCMA; out_pt[0] = 8;
        wire_kind[1] = K_PCMA; wire_pt[1] = 8; out_kind[1] = K_PCMA; out_pt[1] = 8;
        chk[0] = chk[1] = CHK_G711;
        break;
    case 'b':
        wire_kind[0] = K_PCMA; wire_pt[0] = 8; out_kind[0] = K_PCMU; out_pt[0] = 0;
        wire_kind[1] = K_PCMU; wire_pt[1] = 0; out_kind[1] = K_PCMA; out_pt[1] = 8;
        chk[0] = chk[1] = CHK_G711;
        break;
    case 'c':
        wire_kind[0] = K_OPUS; wire_pt[0] = 96; out_kind[0] = K_PCMA; out_pt[0] = 8;
        wire_kind[1] = K_PCMA; wire_pt[1] = 8; out_kind[1] = K_OPUS; out_pt[1] = 96;
        chk[0] = CHK_LEVEL;
        chk[1] = CHK_OPUS;
        break;
    default:
        die("scenario must be a, b, c or d");
    }
    ts_step[0] = wire_kind[0] == K_OPUS ? 960 : 160;
    ts_step[1] = wire_kind[1] == K_OPUS ? 960 : 160;
}


/* ---- /proc ---- */

/* CPU time of the threads of a process: name and ns of each */
#define MAX_THREADS  64
typedef struct {
    int       n;
    int       tid[MAX_THREADS];
    char      comm[MAX_THREADS][20];
    unsigned long long ns[MAX_THREADS];
} threads_t;


/* CPU time of all threads of pid, s: from schedstat (ns) or -1; each
   thread's into *t when t is not NULL */
static double
proc_cpu_sched_s(int pid, threads_t *t)
{
    char           path[300], buf[128];
    DIR           *d;
    FILE          *f;
    struct dirent *e;
    unsigned long long ns, sum = 0;
    size_t         l;

    if (t) {
        t->n = 0;
    }
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    d = opendir(path);
    if (d == NULL) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", pid, e->d_name);
        f = fopen(path, "r");
        if (f == NULL) {
            continue;
        }
        ns = 0;
        if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu", &ns) == 1) {
            sum += ns;
        }
        fclose(f);
        if (t == NULL || t->n == MAX_THREADS) {
            continue;
        }
        t->tid[t->n] = atoi(e->d_name);
        t->ns[t->n] = ns;
        t->comm[t->n][0] = '\0';
        snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", pid, e->d_name);
        f = fopen(path, "r");
        if (f) {
            if (fgets(t->comm[t->n], sizeof(t->comm[t->n]), f)) {
                l = strlen(t->comm[t->n]);
                while (l && (t->comm[t->n][l - 1] == '\n')) {
                    t->comm[t->n][--l] = '\0';
                }
                for (size_t i = 0; i < l; i++) {
                    if (t->comm[t->n][i] == ' ') {
                        t->comm[t->n][i] = '_';
                    }
                }
            }
            fclose(f);
        }
        t->n++;
    }
    closedir(d);
    return sum / 1e9;
}


/* utime + stime of pid (all threads), s, from /proc/PID/stat */
static double
proc_cpu_stat_s(int pid)
{
    char   path[64], buf[1024], *p;
    FILE  *f;
    unsigned long ut = 0, stt = 0;
    int    i;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return -1;
    }
    fclose(f);
    p = strrchr(buf, ')');
    if (p == NULL) {
        return -1;
    }
    p += 2;
    for (i = 3; i < 14 && p; i++) {
        p = strchr(p, ' ');
        if (p) {
            p++;
        }
    }
    if (p == NULL || sscanf(p, "%lu %lu", &ut, &stt) != 2) {
        return -1;
    }
    return (double) (ut + stt) / sysconf(_SC_CLK_TCK);
}


static long
proc_status_kb(int pid, const char *key)
{
    char   path[64], line[256];
    long   kb = -1;
    size_t kl = strlen(key);
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            kb = strtol(line + kl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}


static double
self_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* busy and softirq time of all cores (s), from /proc/stat */
static void
system_cpu_s(double *busy, double *softirq)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");

    *busy = *softirq = 0;
    if (f == NULL) {
        return;
    }
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
    {
        *busy = (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
                / sysconf(_SC_CLK_TCK);
        *softirq = (double) v[6] / sysconf(_SC_CLK_TCK);
    }
    fclose(f);
}


/* UDP receive-buffer drops of the whole machine, /proc/net/snmp */
static long long
udp_rcvbuf_errors(void)
{
    char       line[1024], names[1024];
    long long  vals[32];
    int        n = 0, col = -1, i;
    char      *tok, *save;
    FILE      *f = fopen("/proc/net/snmp", "r");

    if (f == NULL) {
        return -1;
    }
    names[0] = '\0';
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Udp:", 4) != 0) {
            continue;
        }
        if (names[0] == '\0') {
            snprintf(names, sizeof(names), "%s", line);
            continue;
        }
        for (tok = strtok_r(line + 4, " \n", &save); tok && n < 32;
             tok = strtok_r(NULL, " \n", &save))
        {
            vals[n++] = atoll(tok);
        }
        break;
    }
    fclose(f);
    i = 0;
    for (tok = strtok_r(names + 4, " \n", &save); tok;
         tok = strtok_r(NULL, " \n", &save), i++)
    {
        if (strcmp(tok, "RcvbufErrors") == 0) {
            col = i;
        }
    }
    return (col >= 0 && col < n) ? vals[col] : -1;
}


typedef struct {
    double    daemon, daemon_stat, self, busy, softirq;
    long long rcvbuf;
    threads_t threads;
} mark_t;


static void
mark(mark_t *m)
{
    m->daemon = o_pid ? proc_cpu_sched_s(o_pid, &m->threads) : 0;
    m->daemon_stat = o_pid ? proc_cpu_stat_s(o_pid) : 0;
    m->self = self_cpu_s();
    system_cpu_s(&m->busy, &m->softirq);
    m->rcvbuf = udp_rcvbuf_errors();
}


/* ---- sockets and calls ---- */

static int
udp_socket(int port)
{
    int                 fd, one = 1, ts, size = 16 << 20;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    /* as root the limits of net.core.[rw]mem_max do not apply */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) != 0) {
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    /* software timestamps of the loopback device: when a packet of ours
       leaves (error queue, keyed by OPT_ID) and when one arrives */
    ts = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE;
    if (o_txstamp) {
        ts |= SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_OPT_ID
              | SOF_TIMESTAMPING_OPT_TSONLY;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &ts, sizeof(ts)) != 0) {
        die("SO_TIMESTAMPING: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t) port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
        die("bind 127.0.0.1:%d: %s", port, strerror(errno));
    }
    return fd;
}


static char      **wc_cred;                   /* d: "ru rp lu lp" per call */

static void
load_calls(void)
{
    FILE      *f;
    char       line[512], ru[128], rp[128], lu[128], lp[128], role[16];
    int        i, a_to, b_to, n = 0, d, spread, aport;
    uint32_t   rnd;
    stream_t  *s;

    f = fopen(o_file, "r");
    if (f == NULL) {
        die("%s: %s", o_file, strerror(errno));
    }
    st = xcalloc((size_t) o_calls * 2, sizeof(stream_t));
    while (n < o_calls && fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%d %d %d", &i, &a_to, &b_to) != 3) {
            continue;
        }
        if (i != n || a_to <= 0 || a_to > 65535 || b_to <= 0 || b_to > 65535) {
            die("%s: bad line %d: %s", o_file, n + 1, line);
        }
        if (o_scen == 'd') {
            if (sscanf(line, "%*d %*d %*d %127s %127s %d %127s %127s %15s", ru, rp,
                       &aport, lu, lp, role) != 6 || aport != o_abase + n)
            {
                die("%s: line %d is no WebRTC call at port %d: %s", o_file,
                    n + 1, o_abase + n, line);
            }
            wc_cred[n] = malloc(strlen(ru) + strlen(rp) + strlen(lu) + strlen(lp) + 8);
            sprintf(wc_cred[n], "%s %s %s %s %d", ru, rp, lu, lp,
                    strcmp(role, "active") == 0);
        }
        for (d = 0; d < 2; d++) {
            s = &st[2 * n + d];
            s->call = n;
            s->dir = d;
            int aslot = o_scen == 'd' ? n : n % o_pool;
            s->tx_fd = d == 0 ? aslot : a_slots + n % o_pool;
            s->rx_slot = d == 0 ? a_slots + n % o_pool : aslot;
            s->dest.sin_family = AF_INET;
            s->dest.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            s->dest.sin_port = htons((uint16_t) (d == 0 ? a_to : b_to));
            /* the relay sends to B from the port B sends to, and back */
            s->relay_out_port = (uint16_t) (d == 0 ? b_to : a_to);
            if (by_port[s->relay_out_port]) {
                die("%s: relay port %u used twice", o_file, s->relay_out_port);
            }
            by_port[s->relay_out_port] = 2 * n + d + 1;
        }
        n++;
    }
    fclose(f);
    if (n < o_calls) {
        die("%s: %d calls, %d wanted", o_file, n, o_calls);
    }
    nst = 2 * n;

    /* SSRC fixed per stream (runs of the same call look like one source
       that paused); seq and ts continue from the wall clock, as if the
       source had been sending all along */
    int64_t now_ms = rt_ns() / 1000000;
    spread = (int) (o_warm * 25);           /* start over half the warmup */
    if (spread > 25) {
        spread = 25;
    }
    for (i = 0; i < nst; i++) {
        s = &st[i];
        rnd = (uint32_t) (i * 2654435761u) ^ 0x5eed1234u;
        s->ssrc = rnd | 1;
        s->seq0 = (uint16_t) (now_ms / 20 + (rnd >> 7));
        s->ts0 = (uint32_t) (now_ms * (ts_step[s->dir] / 20) + (rnd >> 3));
        s->phase = (int) ((s->call * 7 + s->dir * 13) % NFRAMES);
        s->start = (int) ((int64_t) i * spread / nst);
        s->tx = xcalloc((size_t) nrounds, sizeof(int64_t));
        s->got = xcalloc((size_t) nrounds, 1);
        if (chk[s->dir] != CHK_G711) {
            s->pk_ext = xcalloc((size_t) nrounds * 2, sizeof(int32_t));
            s->pk_rx = xcalloc((size_t) nrounds * 2, sizeof(int64_t));
        }
    }
}


/* ---- receive ---- */

static double
snr_db(const uint8_t *p, int kind, const int16_t *exp)
{
    int      i;
    double   sig = 0, err = 0, x, y;
    const int16_t *tab = kind == K_PCMU ? ulaw_lin : alaw_lin;

    for (i = 0; i < G711_LEN; i++) {
        x = exp[i];
        y = tab[p[i]];
        sig += x * x;
        err += (x - y) * (x - y);
    }
    if (err < 1) {
        return 99;
    }
    return 10 * log10(sig / err);
}


/* the round a stream's first packet out of the relay belongs to */
static int
find_base(stream_t *s, int64_t rx, const uint8_t *pl, int plen)
{
    int     r, k0 = -1, best = -1;
    double  snr, best_snr = -1e9;

    for (r = s->start; r < nrounds && s->tx[r] && s->tx[r] <= rx; r++) {
        k0 = r;
    }
    if (k0 < 0) {
        return -1;
    }
    if (chk[s->dir] != CHK_G711 || plen != G711_LEN) {
        return k0;
    }
    for (r = k0; r >= s->start && r > k0 - NFRAMES; r--) {
        snr = snr_db(pl, out_kind[s->dir],
                     lin_exp[s->dir][(r + s->phase) % NFRAMES]);
        if (snr > best_snr) {
            best_snr = snr;
            best = r;
        }
    }
    return best_snr >= SNR_MIN_DB ? best : k0;
}


/* packet ext of s (sequence offset from its first) arrived at rx */
static void
deliver(stream_t *s, int ext, int64_t rx)
{
    int  r = s->base_round + ext;

    if (r < s->start || r >= nrounds || s->tx[r] == 0) {
        s->oor++;
        return;
    }
    if (s->got[r]) {
        s->dup++;
        return;
    }
    s->got[r] = 1;
    s->received++;

    if (o_verbose > 1 && s->call < 2) {
        fprintf(stderr, "rtpload: call %d dir %d ext %d round %d latency %.1f us\n",
                s->call, s->dir, ext, r, (rx - s->tx[r]) / 1e3);
    }
    if (rx < s->tx[r]) {
        s->neg++;
    } else if (s->tx[r] >= win_start_ns && s->tx[r] < win_end_ns) {
        lat_add(&lat_all, rx - s->tx[r]);
        lat_add(&lat_dir[s->dir], rx - s->tx[r]);
    }
}


static void
on_packet(int slot, uint8_t *p, int n, struct sockaddr_in *from, int64_t rx)
{
    int        id, pt, hlen, plen, r, f;
    uint16_t   seq;
    uint32_t   ssrc;
    stream_t  *s;
    uint8_t   *pl;

    rx_total++;
    id = by_port[ntohs(from->sin_port)] - 1;
    if (id < 0 || from->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
        unknown_src++;
        return;
    }
    s = &st[id];
    if (slot != s->rx_slot) {
        wrong_sock++;
        return;
    }
    if (n < 12 || (p[0] >> 6) != 2) {
        bad_rtp++;
        return;
    }
    if (p[1] >= 200 && p[1] <= 207) {
        return;     /* RTCP on the RTP port: not counted */
    }
    hlen = 12 + 4 * (p[0] & 0x0f);
    if ((p[0] & 0x10) && n >= hlen + 4) {
        hlen += 4 + 4 * ((p[hlen + 2] << 8) | p[hlen + 3]);
    }
    plen = n - hlen;
    if (plen < 0) {
        bad_rtp++;
        return;
    }
    if ((p[0] & 0x20) && plen > 0) {
        plen -= p[n - 1];
        if (plen < 0) {
            bad_rtp++;
            return;
        }
    }
    pl = p + hlen;
    pt = p[1] & 0x7f;
    seq = (uint16_t) ((p[2] << 8) | p[3]);
    ssrc = ((uint32_t) p[8] << 24) | ((uint32_t) p[9] << 16)
           | ((uint32_t) p[10] << 8) | p[11];

    if (pt != out_pt[s->dir]) {
        s->bad_pt++;
        return;
    }

    if (!s->have_base) {
        /* G.711 out: the round from the audio it carries; other output:
           settled at the end (deferred) */
        if (chk[s->dir] == CHK_G711) {
            r = find_base(s, rx, pl, plen);
            if (r < 0) {
                s->neg++;
                return;
            }
            s->base_round = r;
        }
        s->have_base = 1;
        s->last_seq = seq;
        s->ext = 0;
        s->rx_ssrc = ssrc;
    } else {
        s->ext += (int16_t) (uint16_t) (seq - s->last_seq);
        s->last_seq = seq;
        if (ssrc != s->rx_ssrc) {
            s->ssrc_changes++;
            s->rx_ssrc = ssrc;
        }
    }

    /* RTP timestamps out: 20 ms per sequence number (RFC 3550 5.1) */
    {
        uint32_t ts = ((uint32_t) p[4] << 24) | ((uint32_t) p[5] << 16)
                      | ((uint32_t) p[6] << 8) | p[7];
        int64_t  dseq = s->ext - s->last_ext_ts;
        if (s->have_ts && dseq > 0 && dseq < 50) {
            uint32_t want = (uint32_t) (dseq * (out_kind[s->dir] == K_OPUS ? 960 : 160));
            if ((uint32_t) (ts - s->last_ts) != want) {
                s->ts_jumps++;
                if (o_verbose && s->ts_jumps < 3) {
                    fprintf(stderr, "rtpload: call %d dir %d: seq +%lld, ts +%u (want +%u)\n",
                            s->call, s->dir, (long long) dseq,
                            (uint32_t) (ts - s->last_ts), want);
                }
            }
        }
        if (!s->have_ts || dseq > 0) {
            s->have_ts = 1;
            s->last_ts = ts;
            s->last_ext_ts = s->ext;
        }
    }

    s->nrx++;

    if (chk[s->dir] == CHK_G711) {
        deliver(s, (int) s->ext, rx);
        r = s->base_round + (int) s->ext;
        f = ((r % NFRAMES + NFRAMES) + s->phase) % NFRAMES;
        if (plen != G711_LEN) {
            s->bad_payload++;
        } else if (memcmp(pl, g711_exp[s->dir][f], G711_LEN) == 0) {
            s->exact++;
        } else if (snr_db(pl, out_kind[s->dir], lin_exp[s->dir][f]) < SNR_MIN_DB) {
            s->bad_payload++;
        }
        return;
    }

    if (s->npk < 2 * nrounds) {
        s->pk_ext[s->npk] = (int32_t) s->ext;
        s->pk_rx[s->npk] = rx;
        s->npk++;
    } else {
        s->oor++;
    }

    /* payload checks that need no round */
    switch (chk[s->dir]) {
    case CHK_OPUS:
        if (plen < 1 || opus_packet_get_nb_samples(pl, plen, 48000) != 960) {
            s->bad_payload++;
            break;
        }
        /* the first calls' Opus is decoded: audio at the level sent, not
           silence or noise (the rest: structure only, decoding costs) */
        if (s->call < OPUS_DECODE_CALLS) {
            static float pcm[5760];
            int err, ns;
            if (s->dec == NULL) {
                s->dec = opus_decoder_create(48000, 1, &err);
            }
            ns = s->dec ? opus_decode_float(s->dec, pl, plen, pcm, 5760, 0) : -1;
            if (ns != 960) {
                s->bad_payload++;
            } else if (s->nrx > 5) {
                double e = 0;
                for (int i = 0; i < ns; i++) {
                    e += (double) pcm[i] * pcm[i];
                }
                if (10 * log10(e / ns + 1e-12) < LEVEL_MIN_DB) {
                    s->bad_payload++;
                }
            }
        }
        break;
    case CHK_LEVEL:
        if (plen != G711_LEN) {
            s->bad_payload++;
        } else if (s->nrx > 5) {
            double e = 0;
            for (int i = 0; i < G711_LEN; i++) {
                double v = alaw_lin[pl[i]] / 32768.0;
                e += v * v;
            }
            if (10 * log10(e / G711_LEN + 1e-12) < LEVEL_MIN_DB) {
                s->bad_payload++;
            }
        }
        break;
    }
}


/* the last round of s sent at or before t, or -1 */
static int
sent_before(stream_t *s, int64_t t)
{
    int  r, j = (int) (s - st);

    /* a round leaves at its due time or later */
    r = (int) ((t - t0_ns - (int64_t) j * (PERIOD_NS / nst)) / PERIOD_NS);
    if (r >= nrounds) {
        r = nrounds - 1;
    }
    while (r >= s->start && (s->tx[r] == 0 || s->tx[r] > t)) {
        r--;
    }
    return r >= s->start ? r : -1;
}


/*
 * Deferred streams: the first packet out may have been late, so its round
 * is not "the last one sent before it"; the round offset is the smallest
 * (last round sent before arrival - sequence offset) over all packets, i.e.
 * exact as soon as one packet came within 20 ms.  A relay that keeps a
 * frame back (sends frame k when k + 1 arrives) gets k + 1, the packet that
 * made it send.
 */
static void
settle_deferred(void)
{
    int        i, k, r, base;
    stream_t  *s;

    for (i = 0; i < nst; i++) {
        s = &st[i];
        if (chk[s->dir] == CHK_G711 || s->npk == 0) {
            continue;
        }
        base = INT32_MAX;
        for (k = 0; k < s->npk; k++) {
            r = sent_before(s, s->pk_rx[k]);
            if (r >= 0 && r - s->pk_ext[k] < base) {
                base = r - s->pk_ext[k];
            }
        }
        if (base == INT32_MAX) {
            s->neg += (uint64_t) s->npk;
            s->have_base = 0;
            continue;
        }
        s->base_round = base;
        for (k = 0; k < s->npk; k++) {
            deliver(s, s->pk_ext[k], s->pk_rx[k]);
        }
    }
}


/* data on socket slot, up to 64 x RECV_BATCH datagrams */
static void
receive_data(int slot)
{
    static uint8_t        bufs[RECV_BATCH][PKT_MAX];
    static struct mmsghdr msgs[RECV_BATCH];
    static struct iovec   iov[RECV_BATCH];
    static struct sockaddr_in from[RECV_BATCH];
    static char           ctl[RECV_BATCH][128];
    int                   n, i, rounds;
    struct cmsghdr       *c;
    int64_t               rx;

    {
        for (rounds = 0; rounds < 64; rounds++) {
            for (i = 0; i < RECV_BATCH; i++) {
                iov[i].iov_base = bufs[i];
                iov[i].iov_len = PKT_MAX;
                memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
                msgs[i].msg_hdr.msg_name = &from[i];
                msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
                msgs[i].msg_hdr.msg_iov = &iov[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
                msgs[i].msg_hdr.msg_control = ctl[i];
                msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
            }
            n = recvmmsg(fds[slot], msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
            if (n <= 0) {
                if (n < 0 && errno != EAGAIN && errno != EINTR
                    && errno != ECONNREFUSED)
                {
                    die("recvmmsg: %s", strerror(errno));
                }
                break;
            }
            for (i = 0; i < n; i++) {
                rx = 0;
                for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
                     c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
                {
                    if (c->cmsg_level != SOL_SOCKET) {
                        continue;
                    }
                    if (c->cmsg_type == SCM_TIMESTAMPING) {
                        struct scm_timestamping ts;
                        memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                        rx = (int64_t) ts.ts[0].tv_sec * 1000000000LL
                             + ts.ts[0].tv_nsec;
                    } else if (c->cmsg_type == SO_RXQ_OVFL) {
                        uint32_t ov;
                        memcpy(&ov, CMSG_DATA(c), sizeof(ov));
                        if (ov != ovfl_last[slot]) {
                            loadgen_drops += (uint32_t) (ov - ovfl_last[slot]);
                            ovfl_last[slot] = ov;
                        }
                    }
                }
                if (rx == 0) {
                    rx = rt_ns();
                }
                if (o_scen == 'd' && slot < a_slots) {
                    uint8_t *b = bufs[i];
                    int      len = (int) msgs[i].msg_len;
                    if (len > 0 && (b[0] < 128 || b[0] > 191)) {
                        wc_other(wc[slot], b, len, &from[i]);
                        continue;
                    }
                    if (len >= 2 && b[1] >= 192 && b[1] <= 223) {
                        continue;           /* SRTCP (rtcp-mux): not counted */
                    }
                    if (wc_unprotect(wc[slot], b, &len) != 0) {
                        srtp_fail++;
                        continue;
                    }
                    msgs[i].msg_len = (unsigned) len;
                }
                on_packet(slot, bufs[i], (int) msgs[i].msg_len, &from[i], rx);
            }
            if (n < RECV_BATCH) {
                break;
            }
        }
    }
}



/* TX timestamps of socket slot from its error queue */
static void
receive_errqueue(int slot)
{
    static struct mmsghdr msgs[RECV_BATCH];
    static char           ctl[RECV_BATCH][256];
    int                   n, i, rounds;
    struct cmsghdr       *c;
    int64_t               t;
    int32_t               ref;
    uint32_t              key;
    stream_t             *s;

    for (rounds = 0; rounds < 64; rounds++) {
        for (i = 0; i < RECV_BATCH; i++) {
            memset(&msgs[i].msg_hdr, 0, sizeof(msgs[i].msg_hdr));
            msgs[i].msg_hdr.msg_control = ctl[i];
            msgs[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
        }
        n = recvmmsg(fds[slot], msgs, RECV_BATCH, MSG_ERRQUEUE | MSG_DONTWAIT,
                     NULL);
        if (n <= 0) {
            return;
        }
        for (i = 0; i < n; i++) {
            t = -1;
            key = 0;
            int have_key = 0;
            for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c;
                 c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
            {
                if (c->cmsg_level == SOL_SOCKET
                    && c->cmsg_type == SCM_TIMESTAMPING)
                {
                    struct scm_timestamping ts;
                    memcpy(&ts, CMSG_DATA(c), sizeof(ts));
                    t = (int64_t) ts.ts[0].tv_sec * 1000000000LL
                        + ts.ts[0].tv_nsec;
                } else if (c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) {
                    struct sock_extended_err ee;
                    memcpy(&ee, CMSG_DATA(c), sizeof(ee));
                    if (ee.ee_origin == SO_EE_ORIGIN_TIMESTAMPING
                        && ee.ee_info == SCM_TSTAMP_SND)
                    {
                        key = ee.ee_data;
                        have_key = 1;
                    }
                }
            }
            if (t <= 0 || !have_key) {
                continue;
            }
            /* a key not sent yet, or overwritten in the ring */
            if ((uint32_t) (tx_key[slot] - key) - 1 > tx_mask[slot]) {
                tx_unmatched++;
                continue;
            }
            ref = tx_ring[slot][key & tx_mask[slot]];
            if (ref < 0) {
                tx_unmatched++;
                continue;
            }
            tx_ring[slot][key & tx_mask[slot]] = -1;
            s = &st[ref / nrounds];
            s->tx[ref % nrounds] = t;
            tx_precise++;
        }
        if (n < RECV_BATCH) {
            return;
        }
    }
}


/* ---- send ---- */

typedef struct { int stream, round; } due_t;

static void
send_batch(due_t *due, int ndue)
{
    static uint8_t        pkts[SEND_BATCH][PKT_MAX];
    static struct mmsghdr msgs[SEND_BATCH];
    static struct iovec   iov[SEND_BATCH];
    int                   order[SEND_BATCH], cnt, sent, i, j, slot, f, len, r;
    int                   slots[SEND_BATCH], nsl = 0, si;
    int64_t               tb, ta;
    stream_t             *s;
    uint8_t              *p;
    uint16_t              seq;
    uint32_t              ts;

    /* by socket: one sendmmsg() per socket (in the order they first come) */
    for (i = 0; i < ndue; i++) {
        slot = st[due[i].stream].tx_fd;
        for (si = 0; si < nsl && slots[si] != slot; si++) {
        }
        if (si == nsl) {
            slots[nsl++] = slot;
        }
    }
    for (si = 0; si < nsl; si++) {
        slot = slots[si];
        cnt = 0;
        for (i = 0; i < ndue; i++) {
            if (st[due[i].stream].tx_fd == slot) {
                order[cnt++] = i;
            }
        }
        if (cnt == 0) {
            continue;
        }
        for (j = 0; j < cnt; j++) {
            s = &st[due[order[j]].stream];
            r = due[order[j]].round;
            p = pkts[j];
            f = (r + s->phase) % NFRAMES;
            seq = (uint16_t) (s->seq0 + r);
            ts = s->ts0 + (uint32_t) r * (uint32_t) ts_step[s->dir];
            p[0] = 0x80;
            p[1] = (uint8_t) (wire_pt[s->dir] | (r == s->start ? 0x80 : 0));
            p[2] = (uint8_t) (seq >> 8);
            p[3] = (uint8_t) seq;
            p[4] = (uint8_t) (ts >> 24);
            p[5] = (uint8_t) (ts >> 16);
            p[6] = (uint8_t) (ts >> 8);
            p[7] = (uint8_t) ts;
            p[8] = (uint8_t) (s->ssrc >> 24);
            p[9] = (uint8_t) (s->ssrc >> 16);
            p[10] = (uint8_t) (s->ssrc >> 8);
            p[11] = (uint8_t) s->ssrc;
            if (wire_kind[s->dir] == K_OPUS) {
                len = opus_len[f];
                memcpy(p + 12, opus_pkt[f], (size_t) len);
            } else {
                len = G711_LEN;
                memcpy(p + 12, g711_src[s->dir][f], G711_LEN);
            }
            if (o_scen == 'd' && s->dir == 0) {
                int plen = len + 12;
                if (wc_protect(wc[s->call], p, &plen) != 0) {
                    srtp_protect_fail++;
                }
                len = plen - 12;
            }
            iov[j].iov_base = p;
            iov[j].iov_len = (size_t) len + 12;
            memset(&msgs[j].msg_hdr, 0, sizeof(msgs[j].msg_hdr));
            msgs[j].msg_hdr.msg_name = &s->dest;
            msgs[j].msg_hdr.msg_namelen = sizeof(s->dest);
            msgs[j].msg_hdr.msg_iov = &iov[j];
            msgs[j].msg_hdr.msg_iovlen = 1;
        }
        sent = 0;
        for (int tries = 0; sent < cnt && tries < 100; tries++) {
            tb = rt_ns();
            int k = sendmmsg(fds[slot], msgs + sent, (unsigned) (cnt - sent), 0);
            ta = rt_ns();
            if (k <= 0) {
                if (k < 0 && errno != EAGAIN && errno != EINTR
                    && errno != ECONNREFUSED && errno != ENOBUFS)
                {
                    die("sendmmsg: %s", strerror(errno));
                }
                /* ICMP from a closed port: that one is lost (no key) */
                if (k < 0 && errno == ECONNREFUSED) {
                    sent++;
                }
                continue;
            }
            for (j = 0; j < k; j++) {
                s = &st[due[order[sent + j]].stream];
                r = due[order[sent + j]].round;
                /* until its TX timestamp is read: about when it left */
                s->tx[r] = tb + (int64_t) ((ta - tb) * j / k);
                tx_ring[slot][tx_key[slot] & tx_mask[slot]]
                    = due[order[sent + j]].stream * nrounds + r;
                tx_key[slot]++;
            }
            sent += k;
            sent_on[slot] = 1;
        }
    }
}


/* ---- main ---- */

static void
usage(void)
{
    fprintf(stderr, "usage: rtpload -s a|b|c|d [-C CERT -K KEY] -f CALLS -n N -A PORT -B PORT"
            " [-S POOL] [-p PID] [-w WARMUP_S] [-d DURATION_S] [-t DRAIN_MS]"
            " [-r RSS0_KB] [-q QUANTUM_US] [-T 0|1] [-v]\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int       c, i, d, j, r, ndue;
    int64_t   wake_ns = 0;
    uint64_t  wakeups = 0;
    int64_t   now, due_t0, next, slot_ns, end_ns, lag;
    mark_t    m0, m1;
    long long rcvbuf0;
    long      rss_kb = -1, threads = -1;
    struct pollfd *pfd;
    int       epfd = -1;
    double    dtls_s = 0;
    struct timespec zero = { 0, 0 };
    due_t     due[SEND_BATCH];
    double    win_s;

    while ((c = getopt(argc, argv, "s:f:n:A:B:S:p:w:d:t:r:T:q:vC:K:")) != -1) {
        switch (c) {
        case 's': o_scen = optarg[0]; break;
        case 'f': o_file = optarg; break;
        case 'n': o_calls = atoi(optarg); break;
        case 'A': o_abase = atoi(optarg); break;
        case 'B': o_bbase = atoi(optarg); break;
        case 'S': o_pool = atoi(optarg); break;
        case 'p': o_pid = atoi(optarg); break;
        case 'w': o_warm = atof(optarg); break;
        case 'd': o_dur = atof(optarg); break;
        case 't': o_drain = atoi(optarg); break;
        case 'r': o_rss0 = atol(optarg); break;
        case 'T': o_txstamp = atoi(optarg); break;
        case 'q': o_quantum = atoi(optarg); break;
        case 'v': o_verbose++; break;
        case 'C': o_cert = optarg; break;
        case 'K': o_key = optarg; break;
        default: usage();
        }
    }
    if (o_file == NULL || o_calls < 1 || o_calls > MAX_CALLS || o_abase < 1024
        || o_bbase < 1024 || o_pool < 1 || o_pool > MAX_POOL
        || o_warm < 0.5 || o_warm > 30 || o_dur < 0.5 || o_dur > 60
        || o_drain < 0 || o_drain > 5000 || o_quantum < 0 || o_quantum > 5000)
    {
        usage();
    }
    if (o_scen == 'd' && (o_cert == NULL || o_key == NULL || o_abase + o_calls > 65535)) {
        usage();
    }

    prctl(PR_SET_TIMERSLACK, 1UL);
    setup_scenario();
    make_payloads();
    nrounds = (int) ((o_warm + o_dur) * 50 + 0.5);
    a_slots = o_scen == 'd' ? o_calls : o_pool;
    nslots = a_slots + o_pool;
    if (o_scen == 'd') {
        wc_cred = xcalloc((size_t) o_calls, sizeof(char *));
        wc = xcalloc((size_t) o_calls, sizeof(wc_call *));
    }
    load_calls();

    fds = xcalloc((size_t) nslots, sizeof(int));
    pfd = xcalloc((size_t) nslots, sizeof(struct pollfd));
    tx_ring = xcalloc((size_t) nslots, sizeof(int32_t *));
    tx_key = xcalloc((size_t) nslots, sizeof(uint32_t));
    tx_mask = xcalloc((size_t) nslots, sizeof(uint32_t));
    sent_on = xcalloc((size_t) nslots, sizeof(int));
    ovfl_last = xcalloc((size_t) nslots, sizeof(uint32_t));
    for (i = 0; i < nslots; i++) {
        /* a socket of one call (d) sends one stream: a small ring */
        size_t ring = (o_scen == 'd' && i < a_slots) ? 4096 : TX_RING;
        tx_mask[i] = (uint32_t) ring - 1;
        tx_ring[i] = xcalloc(ring, sizeof(int32_t));
        memset(tx_ring[i], 0xff, ring * sizeof(int32_t));
    }
    for (i = 0; i < a_slots; i++) {
        fds[i] = udp_socket(o_scen == 'd' ? o_abase + i : o_abase + 2 * i);
    }
    for (i = 0; i < o_pool; i++) {
        fds[a_slots + i] = udp_socket(o_bbase + 2 * i);
    }
    for (i = 0; i < nslots; i++) {
        pfd[i].fd = fds[i];
        pfd[i].events = POLLIN;
    }
    if (o_scen == 'd') {
        char err[512], ru[128], rp[128], lu[128], lp[128];
        struct epoll_event ev;
        double t = 0;
        struct timespec a, b;

        if (wc_init(o_cert, o_key, err, sizeof(err)) != 0) {
            die("%s", err);
        }
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (i = 0; i < o_calls; i++) {
            int srv = 0;
            sscanf(wc_cred[i], "%127s %127s %127s %127s %d", ru, rp, lu, lp, &srv);
            wc[i] = wc_connect(fds[i], ntohs(st[2 * i].dest.sin_port), ru, rp,
                               lu, lp, srv, 5.0, err, sizeof(err));
            if (wc[i] == NULL) {
                die("call %d: %s", i, err);
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        t = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
        dtls_s = t;
        /* many sockets: epoll instead of a ppoll() over all of them */
        epfd = epoll_create1(EPOLL_CLOEXEC);
        for (i = 0; i < nslots; i++) {
            ev.events = EPOLLIN;
            ev.data.u32 = (uint32_t) i;
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &ev) != 0) {
                die("epoll_ctl: %s", strerror(errno));
            }
        }
    }

    rcvbuf0 = udp_rcvbuf_errors();
    slot_ns = PERIOD_NS / nst;
    due_t0 = rt_ns() + 20000000LL;
    t0_ns = due_t0;
    win_start_ns = t0_ns + (int64_t) (o_warm * 1e9);
    win_end_ns = win_start_ns + (int64_t) (o_dur * 1e9);
    send_end_ns = t0_ns + (int64_t) nrounds * PERIOD_NS;
    end_ns = send_end_ns + (int64_t) o_drain * 1000000LL;

    int win_started = 0, win_ended = 0;
    r = 0;
    j = 0;

    for (;;) {
        now = rt_ns();
        wake_ns = now;

        /* every due packet, SEND_BATCH at a time, at most 16 batches
           before the receive side has its turn */
        for (int nb = 0; nb < 16 && r < nrounds; nb++) {
            ndue = 0;
            while (r < nrounds && ndue < SEND_BATCH
                   && due_t0 + (int64_t) r * PERIOD_NS + j * slot_ns <= now)
            {
                if (r >= st[j].start) {
                    lag = now - (due_t0 + (int64_t) r * PERIOD_NS + j * slot_ns);
                    if (due_t0 + (int64_t) r * PERIOD_NS >= win_start_ns
                        && due_t0 + (int64_t) r * PERIOD_NS < win_end_ns)
                    {
                        lat_add(&sched_lag, lag);
                        if (lag > 5000000LL) {
                            late_sends++;
                        }
                    }
                    due[ndue].stream = j;
                    due[ndue].round = r;
                    ndue++;
                }
                if (++j == nst) {
                    j = 0;
                    r++;
                }
            }
            if (ndue == 0) {
                break;
            }
            send_batch(due, ndue);
            now = rt_ns();
        }

        now = rt_ns();
        if (!win_started && now >= win_start_ns) {
            win_started = 1;
            mark(&m0);
        }
        if (!win_ended && now >= win_end_ns) {
            win_ended = 1;
            mark(&m1);
            if (o_pid) {
                rss_kb = proc_status_kb(o_pid, "VmRSS");
                threads = proc_status_kb(o_pid, "Threads");
            }
        }
        if (r >= nrounds && now >= end_ns) {
            break;
        }

        next = r < nrounds ? due_t0 + (int64_t) r * PERIOD_NS + j * slot_ns
                           : end_ns;
        if (!win_started && next > win_start_ns) {
            next = win_start_ns;
        }
        if (!win_ended && next > win_end_ns) {
            next = win_end_ns;
        }
        /* TX timestamps first (a reply is matched to its send time),
           then whatever has arrived; no sleeping on the sockets: the
           kernel timestamps arrivals, so reading them late costs nothing
           and one wakeup per packet would cost the most */
        for (i = 0; i < nslots; i++) {
            if (sent_on[i] && o_txstamp) {
                sent_on[i] = 0;
                receive_errqueue(i);
            }
        }
        if (epfd >= 0) {
            /* one look, every socket (a socket whose error queue holds TX
               timestamps stays ready with EPOLLERR: no looping on it) */
            static struct epoll_event *evs;
            int ne;
            if (evs == NULL) {
                evs = xcalloc((size_t) nslots, sizeof(*evs));
            }
            ne = epoll_wait(epfd, evs, nslots, 0);
            for (i = 0; i < ne; i++) {
                if (evs[i].events & EPOLLIN) {
                    receive_data((int) evs[i].data.u32);
                }
            }
        } else if (ppoll(pfd, (nfds_t) nslots, &zero, NULL) > 0) {
            for (i = 0; i < nslots; i++) {
                if (pfd[i].revents & POLLIN) {
                    receive_data(i);
                }
            }
        }
        now = rt_ns();
        if (next <= now) {
            continue;       /* behind: no sleep */
        }
        /* a wakeup costs more than a packet (a timer in a VM): at most one
           per quantum, sending what fell due meanwhile */
        if (next < wake_ns + (int64_t) o_quantum * 1000) {
            next = wake_ns + (int64_t) o_quantum * 1000;
        }
        if (next > now) {
            struct timespec to;
            to.tv_sec = next / 1000000000LL;
            to.tv_nsec = next % 1000000000LL;
            clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &to, NULL);
            wakeups++;
        }
    }
    if (!win_ended) {
        die("the measurement window did not end");
    }

    /* ---- results ---- */

    settle_deferred();

    win_s = (win_end_ns - win_start_ns) / 1e9;
    printf("scenario %c\ncalls %d\nstreams %d\nrounds %d\nwarmup_s %.2f\n"
           "window_s %.3f\npool %d\ntail_rounds %d\ndrain_ms %d\n", o_scen,
           o_calls, nst, nrounds, o_warm, win_s, o_pool, TAIL_ROUNDS, o_drain);

    uint64_t tot_exp = 0, tot_rx = 0;
    int shown_lost = 0;
    for (d = 0; d < 2; d++) {
        uint64_t exp_all = 0, rx_all = 0, tsj = 0, held_sum = 0;
        uint64_t sent = 0, exp = 0, rx = 0, dup = 0, oor = 0, neg = 0, bpt = 0,
                 bpl = 0, exact = 0, ssrcch = 0, nobase = 0, held[3] = { 0 };
        for (i = d; i < nst; i += 2) {
            stream_t *s = &st[i];
            int k, lo, hi = nrounds - TAIL_ROUNDS, skip = 0;

            for (k = s->start; k < nrounds; k++) {
                sent += s->tx[k] != 0;
            }
            /* rounds before the first delivered one: held back by the
               relay (or lost); counted apart from the loss */
            lo = s->have_base ? s->base_round : s->start;
            for (k = s->start; k < lo; k++) {
                skip += s->tx[k] != 0;
            }
            if (s->have_base) {
                held[skip > 1 ? 2 : skip]++;
                held_sum += (uint64_t) skip;
            } else {
                nobase++;
            }
            for (k = lo; k < hi; k++) {
                if (s->tx[k]) {
                    exp_all++;
                    rx_all += s->got[k];
                }
                /* the loss: packets sent in the window only (the start,
                   when every call begins at once, is warmup) */
                if (s->tx[k] && s->tx[k] >= win_start_ns) {
                    exp++;
                    if (s->got[k]) {
                        rx++;
                    } else if (o_verbose && shown_lost++ < 20) {
                        fprintf(stderr, "rtpload: call %d dir %d: round %d"
                                " (%d..%d sent) not received\n", s->call,
                                s->dir, k, s->start, nrounds - 1);
                    }
                }
            }
            dup += s->dup;
            oor += s->oor;
            neg += s->neg;
            bpt += s->bad_pt;
            bpl += s->bad_payload;
            exact += s->exact;
            ssrcch += s->ssrc_changes;
            tsj += s->ts_jumps;
        }
        tot_exp += exp;
        tot_rx += rx;
        printf("d%d_ts_jumps %llu\n", d, (unsigned long long) tsj);
        /* frames before the first one delivered, per stream: a relay that
           keeps frames back (or whose every packet is late by whole 20 ms
           periods: for output that carries no round this cannot be told
           apart, and it is not in the latency) */
        printf("d%d_held_avg %.2f\n", d, (held[0] + held[1] + held[2])
               ? (double) held_sum / (double) (held[0] + held[1] + held[2]) : 0);
        printf("d%d_loss_all_pct %.4f\n", d, exp_all ? 100.0 * (double)
               (exp_all - (rx_all < exp_all ? rx_all : exp_all)) / exp_all : 0);
        printf("d%d_sent %llu\nd%d_expected %llu\nd%d_received %llu\n"
               "d%d_loss_pct %.4f\nd%d_dup %llu\nd%d_out_of_range %llu\n"
               "d%d_negative %llu\nd%d_bad_pt %llu\nd%d_bad_payload %llu\n"
               "d%d_exact_payload %llu\nd%d_ssrc_changes %llu\n"
               "d%d_streams_silent %llu\nd%d_held0 %llu\nd%d_held1 %llu\n"
               "d%d_held_more %llu\n",
               d, (unsigned long long) sent, d, (unsigned long long) exp,
               d, (unsigned long long) rx,
               d, exp ? 100.0 * (double) (exp - (rx < exp ? rx : exp)) / exp : 0,
               d, (unsigned long long) dup, d, (unsigned long long) oor,
               d, (unsigned long long) neg, d, (unsigned long long) bpt,
               d, (unsigned long long) bpl, d, (unsigned long long) exact,
               d, (unsigned long long) ssrcch, d, (unsigned long long) nobase,
               d, (unsigned long long) held[0], d, (unsigned long long) held[1],
               d, (unsigned long long) held[2]);
    }
    printf("loss_pct %.4f\n", tot_exp ? 100.0 * (double) (tot_exp
           - (tot_rx < tot_exp ? tot_rx : tot_exp)) / tot_exp : 0);
    printf("rx_total %llu\nunknown_source %llu\nbad_rtp %llu\nwrong_socket %llu\n",
           (unsigned long long) rx_total, (unsigned long long) unknown_src,
           (unsigned long long) bad_rtp, (unsigned long long) wrong_sock);

    lat_print("lat", &lat_all);
    lat_print("lat_d0", &lat_dir[0]);
    lat_print("lat_d1", &lat_dir[1]);
    lat_print("sched_lag", &sched_lag);
    printf("wakeups %llu\nquantum_us %d\n", (unsigned long long) wakeups, o_quantum);
    printf("late_sends %llu\ntx_stamps %llu\ntx_stamps_unmatched %llu\n",
           (unsigned long long) late_sends, (unsigned long long) tx_precise,
           (unsigned long long) tx_unmatched);

    double dcpu = m1.daemon - m0.daemon, dstat = m1.daemon_stat - m0.daemon_stat,
           self = m1.self - m0.self, busy = m1.busy - m0.busy;
    printf("cpu_daemon_s %.4f\ncpu_daemon_stat_s %.4f\ncpu_daemon_pct %.2f\n"
           "cpu_per_call_pct %.5f\ncpu_loadgen_pct %.2f\ncpu_other_pct %.2f\n"
           "cpu_softirq_pct %.2f\n",
           dcpu, dstat, 100 * dcpu / win_s, 100 * dcpu / win_s / o_calls,
           100 * self / win_s,
           100 * (busy - dcpu - self) / win_s < 0 ? 0 : 100 * (busy - dcpu - self) / win_s,
           100 * (m1.softirq - m0.softirq) / win_s);
    printf("daemon_threads %ld\nrss_kb %ld\n", threads, rss_kb);
    /* the busy threads of the relay (>= 0.5 % of a core) */
    for (i = 0; i < m1.threads.n; i++) {
        unsigned long long before = 0;
        for (j = 0; j < m0.threads.n; j++) {
            if (m0.threads.tid[j] == m1.threads.tid[i]) {
                before = m0.threads.ns[j];
            }
        }
        double pct = 100.0 * (double) (m1.threads.ns[i] - before) / 1e9 / win_s;
        if (pct >= 0.5) {
            printf("thread_pct %s/%d %.1f\n", m1.threads.comm[i], m1.threads.tid[i], pct);
        }
    }
    if (o_rss0 >= 0 && rss_kb >= 0) {
        printf("rss_per_call_kb %.2f\n", (double) (rss_kb - o_rss0) / o_calls);
    }
    if (m0.rcvbuf >= 0 && m1.rcvbuf >= 0) {
        printf("udp_rcvbuf_errors_window %lld\n", m1.rcvbuf - m0.rcvbuf);
    }
    printf("loadgen_socket_drops %llu\n", (unsigned long long) loadgen_drops);
    if (o_scen == 'd') {
        printf("dtls_setup_s %.3f\nsrtp_unprotect_fail %llu\nsrtp_protect_fail %llu\n",
               dtls_s, (unsigned long long) srtp_fail,
               (unsigned long long) srtp_protect_fail);
    }
    if (rcvbuf0 >= 0) {
        /* the whole run, every UDP socket of the machine */
        printf("udp_rcvbuf_errors_run %lld\n", udp_rcvbuf_errors() - rcvbuf0);
    }
    return 0;
}
