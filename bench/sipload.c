/*
 * sipload: SIP load generator for bench/sipws.sh.  SIP over WebSocket
 * (RFC 7118, subprotocol "sip") or over UDP, against ngx_codeb_sipws or
 * Kamailio.  One thread, epoll, one connection or UDP socket per simulated
 * phone (a WebSocket client or a UDP phone with its own port); with -j K,
 * K processes share the phones (the parent adds up their results).
 * Built by bench/sipws.sh with cc -O2 ... -lcrypto.
 *
 *   sipload -s mem  -t ws  -n N -c C        N WebSockets connect and each
 *           registers its own user (at most C in progress); then idle for
 *           -i ms and the RSS and PSS of the -m process groups again: the
 *           memory per registered WebSocket
 *   sipload -s reg  -t ws|udp -n C -d S     C phones re-register in a
 *           closed loop for S s: REGISTER -> 401 -> REGISTER with digest
 *           (MD5, qop=auth) -> 200 is one registration
 *   sipload -s call -t ws|udp -n P -d S     P callers and P callees register,
 *           then each caller calls its callee in a closed loop for S s:
 *           INVITE -> 407 -> ACK, INVITE with Proxy-Authorization -> (1xx)
 *           -> 200 (the callee answers at once with SDP) -> ACK -> BYE
 *           -> 200, and the callee has had its BYE: one call
 *
 * Users are <prefix><index> with the password pw-<prefix><index>; phone i
 * is user -u FIRST + i * -S STRIDE (callers and callees alternate), so a
 * run can spread its users over a long user list.
 *
 * Output: "key value" lines on stdout.  -m name=pid,pid,...: process groups
 * whose CPU time over the timed window (and, for -s mem, RSS and PSS) is
 * printed; the load generator's own CPU time (all its processes) is group
 * "loadgen".  Every exchange is checked (status codes, the method of the
 * CSeq, the nonce, To tags); anything unexpected is counted in err_* keys
 * and the first few are shown on stderr; over UDP, a request whose top
 * Via does not name the server's address (where the response must go) is
 * counted in err_via.
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


enum { T_WS = 0, T_UDP };
enum { R_REG = 0, R_CALLER, R_CALLEE };

/* phases */
enum {
    P_NONE = 0,
    P_CONNECTING,       /* ws: TCP connect */
    P_HS,               /* ws: waiting for 101 */
    P_READY,            /* connected, nothing outstanding */
    P_REG1,             /* REGISTER sent, waiting for 401 */
    P_REG2,             /* REGISTER with digest sent, waiting for 200 */
    P_REGD,             /* registered */
    P_INV1,             /* INVITE sent, waiting for 407 */
    P_INV2,             /* INVITE with digest sent, waiting for 200 */
    P_BYE,              /* BYE sent, waiting for 200 */
    P_PEER,             /* waiting until the callee has had its BYE */
    P_PAUSE,            /* after an error: wait, then start again */
    P_UNREGD,           /* unregistered at the end */
    P_DEAD
};

typedef struct cl_s cl_t;

struct cl_s {
    int        fd;
    int        phase;
    int        role;
    int        idx;
    int        want_out;
    cl_t      *peer;                /* caller <-> callee */
    char       user[24], pass[32];
    char       host[48];            /* Via sent-by and Contact host */
    int        lport;
    uint32_t   cseq;
    uint32_t   seq;                 /* per-client counter for identifiers */
    char       callid[64], ftag[24];
    char       regcallid[64];       /* the registration's Call-ID */
    uint32_t   reg_cseq;
    char       nonce[80], realm[64], opaque[80];
    uint32_t   nc;
    uint64_t   t_start;             /* registration / call started */
    uint64_t   t_hs;
    uint64_t   deadline;
    /* call */
    char       totag[80];
    char       target[256];         /* remote target (Contact of the 200) */
    char       route[1024];         /* Route header lines for ACK / BYE */
    char       branch1[48];
    uint64_t   calls_started, byes_in;
    /* ws */
    uint8_t   *part;
    uint32_t   partlen, partcap;
    uint8_t   *wb;
    uint32_t   wlen, wpos, wcap;
    uint32_t   mask;
};


/* options */
static const char *o_stage = "reg";
static int         o_transport = T_WS;
static const char *o_host = "127.0.0.1";
static int         o_port;
static const char *o_domain = "localhost";
static const char *o_path = "/";
static const char *o_prefix = "u";
static int         o_n = 100;
static int         o_conc = 100;
static double      o_dur = 10.0;
static int         o_first = 0;
static int         o_stride = 1;
static int         o_idle_ms = 2000;
static int         o_jobs = 1;
static double      o_timeout = 5.0;
static double      o_setup_timeout = 60.0;

#define MAX_GROUPS 8
#define MAX_PIDS   64
static struct { char name[32]; int pids[MAX_PIDS]; int n; } groups[MAX_GROUPS];
static int ngroups;

/* state */
static int                 ep = -1;
static cl_t               *cls;
static int                 ncls;
static int                 job;                 /* 0..o_jobs-1 */
static struct sockaddr_in  srv;
static unsigned            runtag;
static int                 measuring;           /* inside the timed window */
static int                 stopping;            /* no new exchanges */
static uint64_t            t_win0, t_win1;
static uint8_t             G[1 << 17];

typedef struct { uint64_t *v; size_t n, cap; } lat_t;
static lat_t lat_reg, lat_setup, lat_call, lat_hs;

/* counters */
static uint64_t n_reg_done, n_call_done, n_setup_regs, n_in_window;
static uint64_t n_msgs_in, n_msgs_out;
static uint64_t err_connect, err_handshake, err_closed, err_status,
                err_timeout, err_parse, err_auth, err_unexpected, err_via;
static int      shown;
static int      probe, probe_ok;            /* -s probe */
static int      unregistering;              /* after the window */
static uint64_t n_unreg;


static uint64_t
now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + ts.tv_nsec;
}


static void
show(const char *fmt, ...)
{
    va_list ap;

    if (shown++ >= 8) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "sipload[%d]: ", job);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "sipload: out of memory\n");
        exit(1);
    }
    return p;
}


static void
lat_add(lat_t *l, uint64_t v)
{
    if (l->n == l->cap) {
        if (l->cap >= (4u << 20)) {
            return;
        }
        l->cap = l->cap ? l->cap * 2 : 16384;
        l->v = xrealloc(l->v, l->cap * sizeof(uint64_t));
    }
    l->v[l->n++] = v;
}


static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return x < y ? -1 : x > y;
}


static void
lat_print(const char *name, lat_t *l)
{
    double p50 = 0, p90 = 0, p99 = 0, max = 0;

    if (l->n) {
        qsort(l->v, l->n, sizeof(uint64_t), cmp_u64);
        p50 = l->v[(size_t) (l->n * 0.50)] / 1e6;
        p90 = l->v[(size_t) (l->n * 0.90)] / 1e6;
        p99 = l->v[(size_t) (l->n * 0.99)] / 1e6;
        max = l->v[l->n - 1] / 1e6;
    }
    printf("%s_samples %zu\n%s_p50_ms %.3f\n%s_p90_ms %.3f\n%s_p99_ms %.3f\n"
           "%s_max_ms %.3f\n", name, l->n, name, p50, name, p90, name, p99,
           name, max);
}


/* ---- process groups: CPU time, RSS and PSS from /proc ---- */

static double
proc_cpu_s(int pid)
{
    char   path[64], buf[1024], *p;
    FILE  *f;
    unsigned long ut = 0, st = 0;
    int    i;

    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    if (fgets(buf, sizeof(buf), f) == NULL) {
        fclose(f);
        return 0;
    }
    fclose(f);
    p = strrchr(buf, ')');
    if (p == NULL) {
        return 0;
    }
    p += 2;
    for (i = 3; i < 14 && p; i++) {
        p = strchr(p, ' ');
        if (p) {
            p++;
        }
    }
    if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2) {
        return 0;
    }
    return (double) (ut + st) / sysconf(_SC_CLK_TCK);
}


static long
proc_kb(int pid, const char *file, const char *key)
{
    char   path[64], line[256];
    long   kb = 0;
    size_t kl = strlen(key);
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl) == 0) {
            kb = strtol(line + kl, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}


static double
self_cpu_s(void)
{
    struct rusage ru, rc;
    getrusage(RUSAGE_SELF, &ru);
    getrusage(RUSAGE_CHILDREN, &rc);    /* the -j children, once reaped */
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6
           + rc.ru_utime.tv_sec + rc.ru_utime.tv_usec / 1e6
           + rc.ru_stime.tv_sec + rc.ru_stime.tv_usec / 1e6;
}


static double
system_busy_s(void)
{
    unsigned long long v[8] = { 0 };
    FILE *f = fopen("/proc/stat", "r");

    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
               &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8)
    {
        fclose(f);
        return 0;
    }
    fclose(f);
    return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
           / sysconf(_SC_CLK_TCK);
}


typedef struct {
    uint64_t  t;
    double    sys;
    double    g[MAX_GROUPS];
} cpu_mark_t;

static void
cpu_mark(cpu_mark_t *m)
{
    int g, i;

    m->t = now_ns();
    m->sys = system_busy_s();
    for (g = 0; g < ngroups; g++) {
        m->g[g] = 0;
        for (i = 0; i < groups[g].n; i++) {
            m->g[g] += proc_cpu_s(groups[g].pids[i]);
        }
    }
}


static void
mem_mark(long *rss, long *pss)
{
    int g, i;

    for (g = 0; g < ngroups; g++) {
        rss[g] = pss[g] = 0;
        for (i = 0; i < groups[g].n; i++) {
            rss[g] += proc_kb(groups[g].pids[i], "status", "VmRSS:");
            pss[g] += proc_kb(groups[g].pids[i], "smaps_rollup", "Pss:");
        }
    }
}


/* ---- MD5 digest (RFC 2617 / 7616, qop=auth) ---- */

static void
md5_hex(char out[33], const char *s, size_t len)
{
    unsigned char d[16];
    unsigned int  dl = 16;
    int           i;
    static const char hx[] = "0123456789abcdef";

    EVP_Digest(s, len, d, &dl, EVP_md5(), NULL);
    for (i = 0; i < 16; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[32] = '\0';
}


/* the Authorization / Proxy-Authorization header line (with CRLF) */
static int
digest_header(cl_t *c, char *out, size_t size, const char *hdr,
              const char *method, const char *uri)
{
    char  buf[512], ha1[33], ha2[33], resp[33], cnonce[24], ncs[12];
    int   n;

    c->nc++;
    snprintf(ncs, sizeof(ncs), "%08x", c->nc);
    snprintf(cnonce, sizeof(cnonce), "%08x%04x", runtag ^ c->seq, c->idx & 0xffff);
    n = snprintf(buf, sizeof(buf), "%s:%s:%s", c->user, c->realm, c->pass);
    md5_hex(ha1, buf, n);
    n = snprintf(buf, sizeof(buf), "%s:%s", method, uri);
    md5_hex(ha2, buf, n);
    n = snprintf(buf, sizeof(buf), "%s:%s:%s:%s:auth:%s", ha1, c->nonce, ncs,
                 cnonce, ha2);
    md5_hex(resp, buf, n);
    return snprintf(out, size,
                    "%s: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", "
                    "uri=\"%s\", response=\"%s\", algorithm=MD5, qop=auth, "
                    "nc=%s, cnonce=\"%s\"%s%s%s\r\n",
                    hdr, c->user, c->realm, c->nonce, uri, resp, ncs, cnonce,
                    c->opaque[0] ? ", opaque=\"" : "", c->opaque,
                    c->opaque[0] ? "\"" : "");
}


/* ---- SIP message reading ---- */

typedef struct {
    const char *m, *end;            /* message */
    const char *body;
    size_t      blen;
    int         is_req;
    int         status;
    char        method[16];         /* request method */
    char        cseq_m[16];         /* method of CSeq */
    uint32_t    cseq;
} sip_t;

/* header names and their compact forms */
static int
hname_is(const char *p, size_t n, const char *name, const char *compact)
{
    return (strlen(name) == n && strncasecmp(p, name, n) == 0)
           || (compact && n == 1 && tolower((unsigned char) p[0]) == compact[0]);
}


/* the value of the nth (0...) header NAME; 1 if found */
static int
sip_hdr(sip_t *s, const char *name, const char *compact, int nth,
        const char **v, size_t *vl)
{
    const char *p, *e, *colon, *hend;
    size_t      n;

    p = memchr(s->m, '\n', s->end - s->m);
    if (p == NULL) {
        return 0;
    }
    p++;
    hend = s->body ? s->body : s->end;
    while (p < hend) {
        e = memchr(p, '\n', hend - p);
        if (e == NULL) {
            e = hend;
        }
        if (e - p <= 1) {
            break;                      /* the empty line */
        }
        colon = memchr(p, ':', e - p);
        if (colon) {
            n = colon - p;
            while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) {
                n--;
            }
            if (hname_is(p, n, name, compact) && nth-- == 0) {
                colon++;
                while (colon < e && (*colon == ' ' || *colon == '\t')) {
                    colon++;
                }
                *v = colon;
                *vl = e - colon;
                if (*vl && colon[*vl - 1] == '\r') {
                    (*vl)--;
                }
                return 1;
            }
        }
        p = e + 1;
    }
    return 0;
}


/* the whole header line (name included, CRLF excluded) */
static int
sip_line(sip_t *s, const char *name, const char *compact, int nth,
         const char **l, size_t *ll)
{
    const char *v, *p;
    size_t      vl;

    if (!sip_hdr(s, name, compact, nth, &v, &vl)) {
        return 0;
    }
    p = v;
    while (p > s->m && p[-1] != '\n') {
        p--;
    }
    *l = p;
    *ll = v + vl - p;
    return 1;
}


static int
sip_parse(sip_t *s, const char *m, size_t len)
{
    const char *p, *v, *e;
    size_t      vl;

    memset(s, 0, sizeof(*s));
    s->m = m;
    s->end = m + len;
    p = memmem(m, len, "\r\n\r\n", 4);
    if (p) {
        s->body = p + 4;
        s->blen = s->end - s->body;
    }
    if (len > 12 && memcmp(m, "SIP/2.0 ", 8) == 0) {
        s->status = atoi(m + 8);
    } else {
        s->is_req = 1;
        e = memchr(m, ' ', len > 15 ? 15 : len);
        if (e == NULL) {
            return -1;
        }
        memcpy(s->method, m, e - m);
    }
    if (!sip_hdr(s, "CSeq", NULL, 0, &v, &vl)) {
        return -1;
    }
    s->cseq = strtoul(v, (char **) &p, 10);
    while (p < v + vl && *p == ' ') {
        p++;
    }
    if (v + vl - p >= (long) sizeof(s->cseq_m)) {
        return -1;
    }
    memcpy(s->cseq_m, p, v + vl - p);
    return 0;
}


/* a param of a header value: tag=..., up to ; , > or space */
static int
param(const char *v, size_t vl, const char *name, char *out, size_t size)
{
    const char *p = v, *e = v + vl, *q;
    size_t      n = strlen(name);

    while ((p = memmem(p, e - p, name, n)) != NULL) {
        if (p > v && (p[-1] == ';' || p[-1] == ' ' || p[-1] == ',')
            && p + n < e && p[n] == '=')
        {
            p += n + 1;
            if (*p == '"') {
                p++;
                q = memchr(p, '"', e - p);
            } else {
                for (q = p; q < e && *q != ';' && *q != ',' && *q != '>'
                     && *q != ' ' && *q != '\r'; q++) { }
            }
            if (q == NULL || (size_t) (q - p) >= size) {
                return 0;
            }
            memcpy(out, p, q - p);
            out[q - p] = '\0';
            return 1;
        }
        p += n;
    }
    return 0;
}


/* the MD5 challenge among the WWW- / Proxy-Authenticate headers */
static int
take_challenge(cl_t *c, sip_t *s, int proxy)
{
    const char *v;
    size_t      vl;
    char        alg[32];
    int         i;

    for (i = 0; sip_hdr(s, proxy ? "Proxy-Authenticate" : "WWW-Authenticate",
                        NULL, i, &v, &vl); i++)
    {
        if (param(v, vl, "algorithm", alg, sizeof(alg))
            && strcasecmp(alg, "MD5") != 0)
        {
            continue;
        }
        if (!param(v, vl, "nonce", c->nonce, sizeof(c->nonce))
            || !param(v, vl, "realm", c->realm, sizeof(c->realm)))
        {
            return 0;
        }
        if (!param(v, vl, "opaque", c->opaque, sizeof(c->opaque))) {
            c->opaque[0] = '\0';
        }
        c->nc = 0;
        return 1;
    }
    return 0;
}


/* ---- sending ---- */

static void cl_close(cl_t *c);

static void
ev_set(cl_t *c, int out)
{
    struct epoll_event ev;

    if (c->want_out == out) {
        return;
    }
    c->want_out = out;
    ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}


static void
wb_reserve(cl_t *c, size_t n)
{
    if (c->wpos && c->wpos == c->wlen) {
        c->wpos = c->wlen = 0;
    }
    if (c->wlen + n > c->wcap) {
        if (c->wpos) {
            memmove(c->wb, c->wb + c->wpos, c->wlen - c->wpos);
            c->wlen -= c->wpos;
            c->wpos = 0;
        }
        while (c->wlen + n > c->wcap) {
            c->wcap = c->wcap ? c->wcap * 2 : 4096;
        }
        c->wb = xrealloc(c->wb, c->wcap);
    }
}


static void
flush(cl_t *c)
{
    ssize_t n;

    if (c->fd < 0 || c->phase == P_CONNECTING) {
        return;
    }
    while (c->wpos < c->wlen) {
        n = send(c->fd, c->wb + c->wpos, c->wlen - c->wpos, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ev_set(c, 1);
                return;
            }
            if (errno == EINTR) {
                continue;
            }
            err_closed++;
            show("client %d: send: %s", c->idx, strerror(errno));
            cl_close(c);
            return;
        }
        c->wpos += n;
    }
    c->wpos = c->wlen = 0;
    ev_set(c, 0);
}


static void
ws_frame(cl_t *c, int opcode, const char *data, size_t len)
{
    uint8_t  *p, m[4];
    size_t    i;

    wb_reserve(c, len + 14);
    p = c->wb + c->wlen;
    *p++ = 0x80 | opcode;
    if (len < 126) {
        *p++ = 0x80 | len;
    } else if (len < 65536) {
        *p++ = 0x80 | 126;
        *p++ = len >> 8;
        *p++ = len & 0xff;
    } else {
        *p++ = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            *p++ = (uint64_t) len >> (56 - 8 * i);
        }
    }
    c->mask = c->mask * 1103515245u + 12345u;
    memcpy(m, &c->mask, 4);
    memcpy(p, m, 4);
    p += 4;
    for (i = 0; i < len; i++) {
        p[i] = data[i] ^ m[i & 3];
    }
    c->wlen = (p + len) - c->wb;
}


static void
sip_send(cl_t *c, const char *m, size_t len)
{
    n_msgs_out++;
    if (o_transport == T_WS) {
        ws_frame(c, 1, m, len);
        flush(c);
        return;
    }
    if (sendto(c->fd, m, len, 0, (struct sockaddr *) &srv, sizeof(srv)) < 0
        && errno != EAGAIN)
    {
        err_closed++;
        show("client %d: sendto: %s", c->idx, strerror(errno));
    }
}


static const char *
via_proto(void)
{
    return o_transport == T_WS ? "WS" : "UDP";
}


static const char *
contact_params(void)
{
    return o_transport == T_WS ? ";transport=ws" : "";
}


/* ---- SDP ---- */

static int
sdp(char *out, size_t size, cl_t *c, int answer)
{
    if (o_transport == T_WS) {
        /* a browser's offer / answer (ICE, DTLS-SRTP, rtcp-mux) */
        return snprintf(out, size,
            "v=0\r\no=- %u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
            "a=group:BUNDLE 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n"
            "a=rtcp:9 IN IP4 0.0.0.0\r\n"
            "a=candidate:1 1 udp 2122260223 127.0.0.1 %d typ host generation 0\r\n"
            "a=ice-ufrag:u%05x\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
            "a=fingerprint:sha-256 AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
            "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB\r\n"
            "a=setup:%s\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
            "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
            "a=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n",
            runtag ^ c->seq, 9 + (c->idx & 1023), c->idx & 0xfffff,
            answer ? "active" : "actpass");
    }
    /* a desk phone: plain RTP, G.711 */
    return snprintf(out, size,
        "v=0\r\no=- %u 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        "m=audio %d RTP/AVP 8 0 101\r\nc=IN IP4 127.0.0.1\r\n"
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n",
        runtag ^ c->seq, 9 + 2 * (c->idx & 1023));
}


/* ---- registration ---- */

static void
send_register(cl_t *c, int auth)
{
    char buf[2048], ah[768], uri[128];
    int  n;

    snprintf(uri, sizeof(uri), "sip:%s", o_domain);
    ah[0] = '\0';
    if (auth) {
        digest_header(c, ah, sizeof(ah), "Authorization", "REGISTER", uri);
    }
    c->reg_cseq++;
    c->seq++;
    n = snprintf(buf, sizeof(buf),
        "REGISTER %s SIP/2.0\r\n"
        "Via: SIP/2.0/%s %s;branch=z9hG4bK%x-%d-r%u;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@%s>;tag=%s\r\n"
        "To: <sip:%s@%s>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %u REGISTER\r\n"
        "%s%s%s%s%s"
        "%s"
        "User-Agent: sipload\r\n"
        "Content-Length: 0\r\n\r\n",
        uri, via_proto(), c->host, runtag, c->idx, c->seq,
        c->user, o_domain, c->ftag, c->user, o_domain, c->regcallid,
        c->reg_cseq,
        /* the end: every binding of the user goes (RFC 3261 10.2.2) */
        unregistering ? "Contact: *\r\nExpires: 0\r\n" : "Contact: <sip:",
        unregistering ? "" : c->user, unregistering ? "" : "@",
        unregistering ? "" : c->host,
        unregistering ? ""
                      : (o_transport == T_WS
                         ? ";transport=ws>;expires=600\r\nExpires: 600\r\n"
                         : ">;expires=600\r\nExpires: 600\r\n"),
        ah);
    c->phase = auth ? P_REG2 : P_REG1;
    c->deadline = now_ns() + (uint64_t) (o_timeout * 1e9);
    sip_send(c, buf, n);
}


static void
reg_start(cl_t *c)
{
    c->t_start = now_ns();
    send_register(c, 0);
}


/* ---- calls ---- */

static void
send_invite(cl_t *c, int auth)
{
    char buf[4096], ah[768], uri[128], body[1536];
    int  n, bl;

    snprintf(uri, sizeof(uri), "sip:%s@%s", c->peer->user, o_domain);
    ah[0] = '\0';
    if (auth) {
        digest_header(c, ah, sizeof(ah), "Proxy-Authorization", "INVITE", uri);
    }
    bl = sdp(body, sizeof(body), c, 0);
    c->cseq++;
    c->seq++;
    snprintf(c->branch1, sizeof(c->branch1), "z9hG4bK%x-%d-i%u", runtag,
             c->idx, c->seq);
    n = snprintf(buf, sizeof(buf),
        "INVITE %s SIP/2.0\r\n"
        "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@%s>;tag=%s\r\n"
        "To: <sip:%s@%s>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %u INVITE\r\n"
        "Contact: <sip:%s@%s%s>\r\n"
        "%s"
        "Content-Type: application/sdp\r\n"
        "User-Agent: sipload\r\n"
        "Content-Length: %d\r\n\r\n%s",
        uri, via_proto(), c->host, c->branch1,
        c->user, o_domain, c->ftag, c->peer->user, o_domain, c->callid,
        c->cseq, c->user, c->host, contact_params(), ah, bl, body);
    c->phase = auth ? P_INV2 : P_INV1;
    c->deadline = now_ns() + (uint64_t) (o_timeout * 1e9);
    sip_send(c, buf, n);
}


static void
call_start(cl_t *c)
{
    c->seq++;
    snprintf(c->callid, sizeof(c->callid), "c%x-%d-%u@sipload", runtag,
             c->idx, c->seq);
    snprintf(c->ftag, sizeof(c->ftag), "f%x%u", c->idx, c->seq);
    c->cseq = 0;
    c->totag[0] = c->target[0] = c->route[0] = '\0';
    c->calls_started++;
    c->t_start = now_ns();
    send_invite(c, 0);
}


/* ACK for a non-2xx final answer: the INVITE's branch and Request-URI */
static void
send_ack_non2xx(cl_t *c, sip_t *s)
{
    char        buf[1024], to[256];
    const char *v;
    size_t      vl;
    int         n;

    if (!sip_hdr(s, "To", "t", 0, &v, &vl) || vl >= sizeof(to)) {
        return;
    }
    memcpy(to, v, vl);
    to[vl] = '\0';
    n = snprintf(buf, sizeof(buf),
        "ACK sip:%s@%s SIP/2.0\r\n"
        "Via: SIP/2.0/%s %s;branch=%s;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:%s@%s>;tag=%s\r\n"
        "To: %s\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %u ACK\r\n"
        "Content-Length: 0\r\n\r\n",
        c->peer->user, o_domain, via_proto(), c->host, c->branch1,
        c->user, o_domain, c->ftag, to, c->callid, c->cseq);
    sip_send(c, buf, n);
}


/* ACK for the 200 and BYE: in the dialog, to the remote target */
static void
send_in_dialog(cl_t *c, const char *method, uint32_t cseq)
{
    char buf[2048];
    int  n;

    c->seq++;
    n = snprintf(buf, sizeof(buf),
        "%s %s SIP/2.0\r\n"
        "Via: SIP/2.0/%s %s;branch=z9hG4bK%x-%d-d%u;rport\r\n"
        "Max-Forwards: 70\r\n"
        "%s"
        "From: <sip:%s@%s>;tag=%s\r\n"
        "To: <sip:%s@%s>;tag=%s\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %u %s\r\n"
        "Content-Length: 0\r\n\r\n",
        method, c->target, via_proto(), c->host, runtag, c->idx, c->seq,
        c->route, c->user, o_domain, c->ftag, c->peer->user, o_domain,
        c->totag, c->callid, cseq, method);
    sip_send(c, buf, n);
}


/* the dialog from a 200: To tag, Contact, the route set (RR reversed) */
static int
take_dialog(cl_t *c, sip_t *s)
{
    const char *v, *p, *q;
    size_t      vl;
    char        rr[16][256];
    int         nrr = 0, i, n, off;

    if (!sip_hdr(s, "To", "t", 0, &v, &vl)
        || !param(v, vl, "tag", c->totag, sizeof(c->totag)))
    {
        return 0;
    }
    if (!sip_hdr(s, "Contact", "m", 0, &v, &vl)) {
        return 0;
    }
    p = memchr(v, '<', vl);
    q = p ? memchr(p, '>', v + vl - p) : NULL;
    if (p == NULL || q == NULL || (size_t) (q - p - 1) >= sizeof(c->target)) {
        return 0;
    }
    memcpy(c->target, p + 1, q - p - 1);
    c->target[q - p - 1] = '\0';

    /* every Record-Route value, commas split (no comma inside our URIs) */
    for (i = 0; sip_hdr(s, "Record-Route", NULL, i, &v, &vl); i++) {
        p = v;
        while (p < v + vl && nrr < 16) {
            q = memchr(p, ',', v + vl - p);
            if (q == NULL) {
                q = v + vl;
            }
            while (p < q && *p == ' ') {
                p++;
            }
            if ((size_t) (q - p) < sizeof(rr[0])) {
                memcpy(rr[nrr], p, q - p);
                rr[nrr][q - p] = '\0';
                nrr++;
            }
            p = q + 1;
        }
    }
    off = 0;
    c->route[0] = '\0';
    for (i = nrr - 1; i >= 0; i--) {
        n = snprintf(c->route + off, sizeof(c->route) - off, "Route: %s\r\n",
                     rr[i]);
        if (n < 0 || off + n >= (int) sizeof(c->route)) {
            return 0;
        }
        off += n;
    }
    return 1;
}


/* the callee answers a request: Via, Record-Route, From, To, Call-ID, CSeq
 * copied; a To tag added for an INVITE, with our Contact and SDP */
static void
callee_reply(cl_t *c, sip_t *s, int invite)
{
    char        buf[4096], body[1536];
    const char *l;
    size_t      ll;
    int         n = 0, i, bl = 0;

    n += snprintf(buf, sizeof(buf), "SIP/2.0 200 OK\r\n");
    for (i = 0; sip_line(s, "Via", "v", i, &l, &ll); i++) {
        n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
    }
    if (invite) {
        for (i = 0; sip_line(s, "Record-Route", NULL, i, &l, &ll); i++) {
            n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
        }
    }
    if (sip_line(s, "From", "f", 0, &l, &ll)) {
        n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
    }
    if (sip_line(s, "To", "t", 0, &l, &ll)) {
        if (invite) {
            n += snprintf(buf + n, sizeof(buf) - n, "%.*s;tag=t%x-%u\r\n",
                          (int) ll, l, c->idx, ++c->seq);
        } else {
            n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
        }
    }
    if (sip_line(s, "Call-ID", "i", 0, &l, &ll)) {
        n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
    }
    if (sip_line(s, "CSeq", NULL, 0, &l, &ll)) {
        n += snprintf(buf + n, sizeof(buf) - n, "%.*s\r\n", (int) ll, l);
    }
    if (invite) {
        bl = sdp(body, sizeof(body), c, 1);
        n += snprintf(buf + n, sizeof(buf) - n,
                      "Contact: <sip:%s@%s%s>\r\n"
                      "Content-Type: application/sdp\r\n",
                      c->user, c->host, contact_params());
    }
    n += snprintf(buf + n, sizeof(buf) - n, "Content-Length: %d\r\n\r\n%s",
                  bl, invite ? body : "");
    if (n >= (int) sizeof(buf)) {
        err_parse++;
        return;
    }
    sip_send(c, buf, n);
}


/* ---- the state machines ---- */

static void
fail(cl_t *c, const char *what, sip_t *s)
{
    const char *eol = NULL;

    if (s && !s->is_req) {
        err_status++;
    } else {
        err_unexpected++;
    }
    if (s) {
        eol = memchr(s->m, '\r', s->end - s->m);
    }
    show("client %d (%s, phase %d): %s: %.*s", c->idx, c->user, c->phase, what,
         eol ? (int) (eol - s->m) : 0, s ? s->m : "");
    c->phase = P_PAUSE;
    c->deadline = now_ns() + 200000000ull;
}


static void
next_exchange(cl_t *c)
{
    if (stopping) {
        c->phase = P_REGD;
        return;
    }
    if (c->role == R_CALLER) {
        call_start(c);
    } else {
        reg_start(c);
    }
}


/* a caller's call is over when the callee has had its BYE too */
static void
call_check_done(cl_t *c)
{
    uint64_t t;

    if (c->phase != P_PEER || c->peer->byes_in < c->calls_started) {
        return;
    }
    t = now_ns();
    if (measuring) {
        n_call_done++;
        lat_add(&lat_call, t - c->t_start);
    }
    c->phase = P_READY;
    next_exchange(c);
}


static void
on_response(cl_t *c, sip_t *s)
{
    uint64_t t = now_ns();

    if (probe) {
        probe_ok = (s->status == 200 && strcmp(s->cseq_m, "OPTIONS") == 0);
        return;
    }

    if (s->status < 200) {
        if ((c->phase == P_INV1 || c->phase == P_INV2)
            && strcmp(s->cseq_m, "INVITE") == 0)
        {
            return;                 /* 100 Trying, 180 Ringing */
        }
        if (s->status == 100) {
            return;
        }
        fail(c, "unexpected provisional", s);
        return;
    }

    switch (c->phase) {

    case P_REG1:
        if (s->status != 401 || strcmp(s->cseq_m, "REGISTER") != 0
            || s->cseq != c->reg_cseq)
        {
            fail(c, "REGISTER without digest: expected 401", s);
            return;
        }
        if (!take_challenge(c, s, 0)) {
            err_auth++;
            fail(c, "401 without an MD5 challenge", s);
            return;
        }
        send_register(c, 1);
        return;

    case P_REG2:
        if (s->status != 200 || strcmp(s->cseq_m, "REGISTER") != 0
            || s->cseq != c->reg_cseq)
        {
            if (s->status == 401) {
                err_auth++;
            }
            fail(c, "REGISTER with digest: expected 200", s);
            return;
        }
        if (unregistering) {
            c->phase = P_UNREGD;
            n_unreg++;
            return;
        }
        if (!measuring && !stopping && c->role != R_REG) {
            n_setup_regs++;
        }
        if (measuring) {
            n_reg_done++;
            lat_add(&lat_reg, t - c->t_start);
        }
        if (c->role == R_REG && t_win0) {
            next_exchange(c);
        } else {
            c->phase = P_REGD;
            if (c->role == R_REG) {
                n_setup_regs++;
            }
        }
        return;

    case P_INV1:
        if (strcmp(s->cseq_m, "INVITE") != 0 || s->cseq != c->cseq) {
            fail(c, "INVITE: answer to another request", s);
            return;
        }
        send_ack_non2xx(c, s);
        if (s->status != 407) {
            fail(c, "INVITE without digest: expected 407", s);
            return;
        }
        if (!take_challenge(c, s, 1)) {
            err_auth++;
            fail(c, "407 without an MD5 challenge", s);
            return;
        }
        send_invite(c, 1);
        return;

    case P_INV2:
        if (strcmp(s->cseq_m, "INVITE") != 0 || s->cseq != c->cseq) {
            fail(c, "INVITE: answer to another request", s);
            return;
        }
        if (s->status != 200) {
            send_ack_non2xx(c, s);
            if (s->status == 407) {
                err_auth++;
            }
            fail(c, "INVITE with digest: expected 200", s);
            return;
        }
        if (!take_dialog(c, s)) {
            err_parse++;
            fail(c, "200 without To tag or Contact", s);
            return;
        }
        if (measuring) {
            lat_add(&lat_setup, t - c->t_start);
        }
        send_in_dialog(c, "ACK", c->cseq);
        c->cseq++;
        send_in_dialog(c, "BYE", c->cseq);
        c->phase = P_BYE;
        c->deadline = t + (uint64_t) (o_timeout * 1e9);
        return;

    case P_BYE:
        if (strcmp(s->cseq_m, "INVITE") == 0 && s->status == 200) {
            return;                 /* a retransmitted 200 */
        }
        if (s->status != 200 || strcmp(s->cseq_m, "BYE") != 0) {
            fail(c, "BYE: expected 200", s);
            return;
        }
        c->phase = P_PEER;
        call_check_done(c);
        return;

    default:
        if (strcmp(s->cseq_m, "INVITE") == 0 && s->status == 200) {
            return;                 /* a retransmitted 200 */
        }
        err_unexpected++;
        show("client %d (phase %d): stray response %d %s", c->idx, c->phase,
             s->status, s->cseq_m);
    }
}


/*
 * Over UDP a response goes to the top Via's sent-by (RFC 3261 18.2.2; with
 * rport, to the source): a server's request must name an address where it
 * listens, here the one we sent to.  We answer the source either way and
 * count a sent-by that would not reach the server.
 */
static void
check_via(cl_t *c, sip_t *s)
{
    const char *v, *p, *e;
    size_t      vl;
    char        want[64];
    int         n;

    if (o_transport != T_UDP || !sip_hdr(s, "Via", "v", 0, &v, &vl)) {
        return;
    }
    e = v + vl;
    p = memchr(v, ' ', vl);                 /* after SIP/2.0/UDP */
    while (p && p < e && *p == ' ') {
        p++;
    }
    n = snprintf(want, sizeof(want), "%s:%d", o_host, o_port);
    if (p == NULL || e - p < n || memcmp(p, want, n) != 0
        || (p + n < e && p[n] != ';' && p[n] != ' ' && p[n] != ','))
    {
        if (err_via++ == 0) {
            show("client %d: %s with Via \"%.*s\": a response there would "
                 "not reach %s", c->idx, s->method, (int) vl, v, want);
        }
    }
}


static void
on_request(cl_t *c, sip_t *s)
{
    static int shown_invite;

    check_via(c, s);
    if (c->role == R_CALLEE && strcmp(s->method, "INVITE") == 0) {
        if (!shown_invite++ && getenv("SIPLOAD_SHOW_INVITE")) {
            fprintf(stderr, "sipload: the first INVITE a callee got:\n%.*s\n",
                    (int) (s->body ? s->body - s->m : s->end - s->m), s->m);
        }
        callee_reply(c, s, 1);
        return;
    }
    if (strcmp(s->method, "ACK") == 0) {
        return;
    }
    if (c->role == R_CALLEE && strcmp(s->method, "BYE") == 0) {
        callee_reply(c, s, 0);
        c->byes_in++;
        call_check_done(c->peer);
        return;
    }
    if (strcmp(s->method, "OPTIONS") == 0 || strcmp(s->method, "NOTIFY") == 0) {
        callee_reply(c, s, 0);
        return;
    }
    err_unexpected++;
    show("client %d (%s): unexpected request %s", c->idx, c->user, s->method);
}


static void
on_sip(cl_t *c, const char *m, size_t len)
{
    sip_t s;

    n_msgs_in++;
    if (len <= 4 && (len == 0 || m[0] == '\r')) {
        return;                     /* keepalive */
    }
    if (sip_parse(&s, m, len) != 0) {
        err_parse++;
        show("client %d: unparsable: %.*s", c->idx, (int) (len > 120 ? 120 : len),
             m);
        return;
    }
    if (s.is_req) {
        on_request(c, &s);
    } else {
        on_response(c, &s);
    }
}


/* ---- WebSocket input ---- */

static size_t
on_frames(cl_t *c, uint8_t *buf, size_t len)
{
    size_t   pos = 0, h, plen;
    uint8_t *p;
    int      op;

    while (c->fd >= 0 && len - pos >= 2) {
        p = buf + pos;
        op = p[0] & 0x0f;
        plen = p[1] & 0x7f;
        h = 2;
        if (plen == 126) {
            if (len - pos < 4) {
                break;
            }
            plen = (p[2] << 8) | p[3];
            h = 4;
        } else if (plen == 127) {
            if (len - pos < 10) {
                break;
            }
            plen = 0;
            for (h = 2; h < 10; h++) {
                plen = (plen << 8) | p[h];
            }
        }
        if (len - pos - h < plen) {
            break;
        }
        p += h;
        switch (op) {
        case 1:
        case 2:
            on_sip(c, (char *) p, plen);
            break;
        case 8:
            if (!stopping) {
                err_closed++;
                show("client %d: server closed with %d", c->idx,
                     plen >= 2 ? (p[0] << 8) | p[1] : 1005);
            }
            cl_close(c);
            return len;
        case 9:
            ws_frame(c, 10, (char *) p, plen);
            flush(c);
            break;
        case 10:
            break;
        default:
            err_parse++;
            show("client %d: opcode %d", c->idx, op);
        }
        pos += h + plen;
    }
    return pos;
}


static void on_ready(cl_t *c);

static size_t
on_handshake(cl_t *c, uint8_t *buf, size_t len)
{
    uint8_t *end;

    end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len > 8192) {
            err_handshake++;
            cl_close(c);
        }
        return 0;
    }
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0
        || memmem(buf, end - buf, "sip", 3) == NULL)
    {
        err_handshake++;
        show("client %d: handshake answer: %.*s", c->idx, (int) (end - buf), buf);
        cl_close(c);
        return len;
    }
    lat_add(&lat_hs, now_ns() - c->t_hs);
    c->phase = P_READY;
    on_ready(c);
    return end + 4 - buf;
}


static void
on_readable_ws(cl_t *c)
{
    ssize_t  n;
    size_t   have, used;

    for (;;) {
        have = c->partlen;
        if (have) {
            memcpy(G, c->part, have);
        }
        n = recv(c->fd, G + have, sizeof(G) - have, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                if (!stopping) {
                    err_closed++;
                    show("client %d: recv: %s", c->idx, strerror(errno));
                }
                cl_close(c);
            }
            return;
        }
        if (n == 0) {
            if (!stopping) {
                err_closed++;
                show("client %d: EOF in phase %d", c->idx, c->phase);
            }
            cl_close(c);
            return;
        }
        have += n;
        used = 0;
        if (c->phase == P_HS) {
            used = on_handshake(c, G, have);
        }
        if (c->fd >= 0 && c->phase != P_HS) {
            used += on_frames(c, G + used, have - used);
        }
        if (c->fd < 0) {
            return;
        }
        c->partlen = have - used;
        if (c->partlen) {
            if (c->partlen > c->partcap) {
                c->partcap = c->partlen < 2048 ? 2048 : c->partlen;
                c->part = xrealloc(c->part, c->partcap);
            }
            memcpy(c->part, G + used, c->partlen);
        }
        if ((size_t) n < sizeof(G) - have + n) {
            return;
        }
    }
}


static void
on_readable_udp(cl_t *c)
{
    ssize_t n;
    int     i;

    for (i = 0; i < 64; i++) {
        n = recv(c->fd, G, sizeof(G), 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK && !stopping) {
                err_closed++;
                show("client %d: recv: %s", c->idx, strerror(errno));
            }
            return;
        }
        on_sip(c, (char *) G, n);
    }
}


static void
on_writable(cl_t *c)
{
    int       err = 0;
    socklen_t sl = sizeof(err);
    char      req[512];
    int       n;

    if (c->phase == P_CONNECTING) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            err_connect++;
            show("client %d: connect: %s", c->idx, strerror(err));
            cl_close(c);
            return;
        }
        n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: c2lwbG9hZC0wMDAwLWtleQ==\r\n"
                     "Sec-WebSocket-Protocol: sip\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     o_path, o_domain, o_port);
        c->phase = P_HS;
        c->t_hs = now_ns();
        wb_reserve(c, n);
        memcpy(c->wb + c->wlen, req, n);
        c->wlen += n;
    }
    flush(c);
}


/* ---- clients ---- */

static void
cl_close(cl_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->phase = P_DEAD;
    free(c->part);
    free(c->wb);
    c->part = NULL;
    c->wb = NULL;
    c->partlen = c->partcap = 0;
    c->wlen = c->wpos = c->wcap = 0;
}


static void
cl_open(cl_t *c)
{
    struct epoll_event  ev;
    struct sockaddr_in  a;
    socklen_t           al = sizeof(a);
    int                 one = 1;

    if (o_transport == T_UDP) {
        c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        memset(&a, 0, sizeof(a));
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (c->fd < 0 || bind(c->fd, (struct sockaddr *) &a, sizeof(a)) < 0
            || getsockname(c->fd, (struct sockaddr *) &a, &al) < 0)
        {
            err_connect++;
            show("udp socket: %s", strerror(errno));
            cl_close(c);
            return;
        }
        c->lport = ntohs(a.sin_port);
        snprintf(c->host, sizeof(c->host), "127.0.0.1:%d", c->lport);
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
        c->phase = P_READY;
        on_ready(c);
        return;
    }

    snprintf(c->host, sizeof(c->host), "w%x-%d.invalid", runtag, c->idx);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        err_connect++;
        show("socket: %s", strerror(errno));
        c->phase = P_DEAD;
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->mask = (uint32_t) (uintptr_t) c ^ (uint32_t) now_ns();
    c->phase = P_CONNECTING;
    c->want_out = 1;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, (struct sockaddr *) &srv, sizeof(srv)) < 0
        && errno != EINPROGRESS)
    {
        err_connect++;
        show("connect: %s", strerror(errno));
        cl_close(c);
    }
}


/* -s probe: OPTIONS, answered 200 */
static void
send_options(cl_t *c)
{
    char buf[1024];
    int  n;

    c->seq++;
    c->cseq++;
    n = snprintf(buf, sizeof(buf),
        "OPTIONS sip:%s SIP/2.0\r\n"
        "Via: SIP/2.0/%s %s;branch=z9hG4bK%x-%d-o%u;rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:probe@%s>;tag=%s\r\n"
        "To: <sip:%s>\r\n"
        "Call-ID: %s\r\n"
        "CSeq: %u OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n",
        o_domain, via_proto(), c->host, runtag, c->idx, c->seq, o_domain,
        c->ftag, o_domain, c->callid, c->cseq);
    sip_send(c, buf, n);
}


/* connected: register (or the probe's OPTIONS) */
static void
on_ready(cl_t *c)
{
    if (probe) {
        send_options(c);
        return;
    }
    reg_start(c);
}


static void
loop_once(int timeout_ms)
{
    static struct epoll_event evs[1024];
    int  n, i;
    cl_t *c;

    n = epoll_wait(ep, evs, 1024, timeout_ms);
    for (i = 0; i < n; i++) {
        c = evs[i].data.ptr;
        if (c->fd < 0) {
            continue;
        }
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            if (o_transport == T_WS && (c->phase == P_CONNECTING || c->wlen)) {
                on_writable(c);
            }
        }
        if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
            if (o_transport == T_WS) {
                on_readable_ws(c);
            } else {
                on_readable_udp(c);
            }
        }
    }
}


/* timeouts and pauses; every 50 ms */
static void
check_timers(void)
{
    static uint64_t last;
    uint64_t t = now_ns();
    int      i;
    cl_t    *c;

    if (t - last < 50000000ull) {
        return;
    }
    last = t;
    for (i = 0; i < ncls; i++) {
        c = &cls[i];
        if (c->fd < 0 || c->deadline == 0 || t < c->deadline) {
            continue;
        }
        switch (c->phase) {
        case P_REG1: case P_REG2: case P_INV1: case P_INV2: case P_BYE:
            err_timeout++;
            show("client %d (%s): no answer in phase %d", c->idx, c->user,
                 c->phase);
            c->deadline = 0;
            if (c->role == R_CALLER && c->phase == P_BYE) {
                /* the callee's BYE may never come: do not wait for it */
                c->peer->byes_in = c->calls_started;
            }
            c->phase = P_REGD;
            if (t_win0) {
                next_exchange(c);
            } else {
                reg_start(c);       /* setup: register again */
            }
            break;
        case P_PAUSE:
            c->deadline = 0;
            if (t_win0) {
                if (c->role == R_CALLER) {
                    c->peer->byes_in = c->calls_started;
                }
                next_exchange(c);
            } else {
                reg_start(c);
            }
            break;
        }
    }
}


static int
count_phase(int phase, int role)
{
    int i, n = 0;
    for (i = 0; i < ncls; i++) {
        if (cls[i].phase == phase && (role < 0 || cls[i].role == role)) {
            n++;
        }
    }
    return n;
}


static int
count_alive(void)
{
    int i, n = 0;
    for (i = 0; i < ncls; i++) {
        if (cls[i].fd >= 0) {
            n++;
        }
    }
    return n;
}


/* ---- stages ---- */

/* phone i is user o_first + (base + i) * o_stride; in calls, even phones
 * call the next one */
static void
clients_init(int n, int calls, int base)
{
    int i, u;

    ncls = n;
    cls = calloc(n, sizeof(cl_t));
    if (cls == NULL) {
        fprintf(stderr, "sipload: out of memory\n");
        exit(1);
    }
    for (i = 0; i < n; i++) {
        cl_t *c = &cls[i];
        c->fd = -1;
        c->idx = i;
        u = o_first + (base + i) * o_stride;
        snprintf(c->user, sizeof(c->user), "%s%d", o_prefix, u);
        snprintf(c->pass, sizeof(c->pass), "pw-%s%d", o_prefix, u);
        snprintf(c->callid, sizeof(c->callid), "r%x-%d@sipload", runtag, u);
        memcpy(c->regcallid, c->callid, sizeof(c->callid));
        snprintf(c->ftag, sizeof(c->ftag), "r%x", u);
        if (calls) {
            c->role = (i & 1) ? R_CALLEE : R_CALLER;
            c->peer = &cls[i ^ 1];
        } else {
            c->role = R_REG;
        }
    }
}


/* open everything and register once, at most o_conc in progress */
static int
setup_all(double timeout_s)
{
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t) (timeout_s * 1e9);
    int      next = 0, inprog, i;

    for (;;) {
        inprog = 0;
        for (i = 0; i < next; i++) {
            int p = cls[i].phase;
            if (p != P_REGD && p != P_DEAD) {
                inprog++;
            }
        }
        while (next < ncls && inprog < o_conc) {
            cl_open(&cls[next++]);
            inprog++;
        }
        if (next == ncls && inprog == 0) {
            break;
        }
        if (now_ns() > deadline) {
            show("setup: %d of %d not registered in %.0f s", inprog, ncls,
                 timeout_s);
            break;
        }
        loop_once(10);
        check_timers();
    }
    return count_phase(P_REGD, -1);
}


static void
run_for(double seconds)
{
    uint64_t end = now_ns() + (uint64_t) (seconds * 1e9);

    while (now_ns() < end) {
        loop_once(5);
        check_timers();
    }
}


/* after the window: let outstanding exchanges finish (bounded) */
static void
drain(double max_s)
{
    uint64_t end = now_ns() + (uint64_t) (max_s * 1e9);
    int      i, busy;

    stopping = 1;
    while (now_ns() < end) {
        busy = 0;
        for (i = 0; i < ncls; i++) {
            int p = cls[i].phase;
            if (p == P_REG1 || p == P_REG2 || p == P_INV1 || p == P_INV2
                || p == P_BYE || p == P_PEER)
            {
                busy++;
            }
        }
        if (busy == 0) {
            break;
        }
        loop_once(5);
    }
}


/* the end: every phone removes its bindings (bounded), so that the next
 * stage on the same users finds none of ours */
static void
unregister_all(double max_s)
{
    uint64_t end = now_ns() + (uint64_t) (max_s * 1e9);
    int      i, busy;

    unregistering = 1;
    for (i = 0; i < ncls; i++) {
        int p = cls[i].phase;
        if (cls[i].fd >= 0 && (p == P_REGD || p == P_READY || p == P_PAUSE
                               || p == P_PEER))
        {
            reg_start(&cls[i]);
        }
    }
    while (now_ns() < end) {
        busy = 0;
        for (i = 0; i < ncls; i++) {
            if (cls[i].phase == P_REG1 || cls[i].phase == P_REG2) {
                busy++;
            }
        }
        if (busy == 0) {
            break;
        }
        loop_once(5);
        check_timers();
    }
}


static void
print_cpu(const char *stage, cpu_mark_t *a, cpu_mark_t *b, double lg_s)
{
    double wall, srv = 0, other;
    int    g;

    wall = (b->t - a->t) / 1e9;
    printf("%s_wall_s %.3f\n", stage, wall);
    printf("%s_cpu_loadgen_s %.3f\n%s_cpu_loadgen_pct %.1f\n", stage, lg_s,
           stage, 100 * lg_s / wall);
    for (g = 0; g < ngroups; g++) {
        printf("%s_cpu_%s_s %.3f\n%s_cpu_%s_pct %.1f\n",
               stage, groups[g].name, b->g[g] - a->g[g],
               stage, groups[g].name, 100 * (b->g[g] - a->g[g]) / wall);
        srv += b->g[g] - a->g[g];
    }
    other = (b->sys - a->sys) - srv - lg_s;
    printf("%s_cpu_all_pct %.1f\n%s_cpu_other_pct %.1f\n", stage,
           100 * (b->sys - a->sys) / wall, stage,
           other > 0 ? 100 * other / wall : 0.0);
}


/* ---- -j: children run their share, the parent adds up ---- */

typedef struct {
    uint64_t reg_done, call_done, setup_ok, alive, msgs_in, msgs_out, unreg;
    uint64_t err[9];
    double   cpu_s;
    size_t   nlat[4];
} share_t;

static lat_t *lats[4] = { &lat_reg, &lat_setup, &lat_call, &lat_hs };

static void
write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    ssize_t     w;

    while (n) {
        w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        b += w;
        n -= w;
    }
}


static int
read_all(int fd, void *p, size_t n)
{
    char   *b = p;
    ssize_t r;

    while (n) {
        r = read(fd, b, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        b += r;
        n -= r;
    }
    return 0;
}


static void
share_fill(share_t *sh, int setup_ok, double cpu0)
{
    int k;

    memset(sh, 0, sizeof(*sh));
    sh->reg_done = n_reg_done;
    sh->call_done = n_call_done;
    sh->setup_ok = setup_ok;
    sh->alive = count_alive();
    sh->msgs_in = n_msgs_in;
    sh->msgs_out = n_msgs_out;
    sh->unreg = n_unreg;
    sh->err[0] = err_connect; sh->err[1] = err_handshake;
    sh->err[2] = err_closed; sh->err[3] = err_status;
    sh->err[4] = err_timeout; sh->err[5] = err_parse;
    sh->err[6] = err_auth; sh->err[7] = err_unexpected; sh->err[8] = err_via;
    sh->cpu_s = self_cpu_s() - cpu0;
    for (k = 0; k < 4; k++) {
        sh->nlat[k] = lats[k]->n;
    }
}


static void
share_add(share_t *sh, int fd)
{
    int    k;
    size_t i;

    n_reg_done += sh->reg_done;
    n_call_done += sh->call_done;
    n_msgs_in += sh->msgs_in;
    n_msgs_out += sh->msgs_out;
    n_unreg += sh->unreg;
    err_connect += sh->err[0]; err_handshake += sh->err[1];
    err_closed += sh->err[2]; err_status += sh->err[3];
    err_timeout += sh->err[4]; err_parse += sh->err[5];
    err_auth += sh->err[6]; err_unexpected += sh->err[7]; err_via += sh->err[8];
    for (k = 0; k < 4; k++) {
        for (i = 0; i < sh->nlat[k]; i++) {
            uint64_t v;
            if (read_all(fd, &v, sizeof(v)) == 0) {
                lat_add(lats[k], v);
            }
        }
    }
}


/*
 * The timed stages with -j: every process sets its share up; a pipe tells
 * the parent when its child is set up, the parent then writes one byte to
 * every child ("go"), all run the window, each child sends its counts and
 * samples, and the parent (which runs a share too) adds them up.
 */
static int   pfd_ready[64][2], pfd_go[64][2], pfd_res[64][2];
static pid_t kids[64];


int
main(int argc, char **argv)
{
    int        opt, i, k, setup_ok, total_setup, calls, per, kid_failed = 0;
    long       rss0[MAX_GROUPS], pss0[MAX_GROUPS], rss1[MAX_GROUPS],
               pss1[MAX_GROUPS];
    char      *s, *eq, *tok;
    cpu_mark_t a, b;
    double     cpu0, lg_s, wall;
    share_t    sh;
    uint64_t   t_setup0;
    char       c1;

    while ((opt = getopt(argc, argv, "s:t:H:p:D:P:x:n:c:d:u:S:i:j:m:T:")) != -1) {
        switch (opt) {
        case 's': o_stage = optarg; break;
        case 't': o_transport = strcmp(optarg, "udp") == 0 ? T_UDP : T_WS; break;
        case 'H': o_host = optarg; break;
        case 'p': o_port = atoi(optarg); break;
        case 'D': o_domain = optarg; break;
        case 'P': o_path = optarg; break;
        case 'x': o_prefix = optarg; break;
        case 'n': o_n = atoi(optarg); break;
        case 'c': o_conc = atoi(optarg); break;
        case 'd': o_dur = atof(optarg); break;
        case 'u': o_first = atoi(optarg); break;
        case 'S': o_stride = atoi(optarg); break;
        case 'i': o_idle_ms = atoi(optarg); break;
        case 'j': o_jobs = atoi(optarg); break;
        case 'T': o_timeout = atof(optarg); break;
        case 'm':
            if (ngroups == MAX_GROUPS) {
                break;
            }
            s = strdup(optarg);
            eq = strchr(s, '=');
            if (eq == NULL) {
                break;
            }
            *eq = '\0';
            snprintf(groups[ngroups].name, sizeof(groups[0].name), "%s", s);
            for (tok = strtok(eq + 1, ","); tok && groups[ngroups].n < MAX_PIDS;
                 tok = strtok(NULL, ","))
            {
                groups[ngroups].pids[groups[ngroups].n++] = atoi(tok);
            }
            ngroups++;
            break;
        default:
            fprintf(stderr,
                "usage: sipload -s mem|reg|call -t ws|udp -p PORT [-H 127.0.0.1]\n"
                "  [-D domain] [-P /path] [-x user-prefix] [-n N] [-c conc] [-d s]\n"
                "  [-u first-user] [-S stride] [-i idle-ms] [-j procs] [-T timeout-s]\n"
                "  [-m name=pid,pid...]\n");
            return 2;
        }
    }
    if (o_port <= 0 || o_n < 1 || o_jobs < 1 || o_jobs > 64 || o_conc < 1) {
        fprintf(stderr, "sipload: bad options\n");
        return 2;
    }
    calls = strcmp(o_stage, "call") == 0;
    if (strcmp(o_stage, "mem") == 0) {
        o_jobs = 1;
        if (o_transport != T_WS) {
            fprintf(stderr, "sipload: -s mem is for WebSockets\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&srv, 0, sizeof(srv));
    srv.sin_family = AF_INET;
    srv.sin_port = htons(o_port);
    if (inet_pton(AF_INET, o_host, &srv.sin_addr) != 1
        || (ntohl(srv.sin_addr.s_addr) >> 24) != 127)
    {
        fprintf(stderr, "sipload: the server must be on 127.0.0.0/8\n");
        return 2;
    }
    runtag = (unsigned) (now_ns() ^ (getpid() << 16)) & 0xfffffff;
    cpu0 = self_cpu_s();

    /* ---- probe: OPTIONS answered 200 within -d s ---- */

    if (strcmp(o_stage, "probe") == 0) {
        uint64_t end = now_ns() + (uint64_t) (o_dur * 1e9);

        probe = 1;
        ep = epoll_create1(EPOLL_CLOEXEC);
        clients_init(1, 0, 0);
        cl_open(&cls[0]);
        while (!probe_ok && cls[0].fd >= 0 && now_ns() < end) {
            loop_once(10);
        }
        return probe_ok ? 0 : 1;
    }

    /* ---- mem: N WebSockets, each registered, then idle ---- */

    if (strcmp(o_stage, "mem") == 0) {
        ep = epoll_create1(EPOLL_CLOEXEC);
        clients_init(o_n, 0, 0);
        mem_mark(rss0, pss0);
        cpu_mark(&a);
        t_setup0 = now_ns();
        measuring = 1;              /* registration latencies */
        setup_ok = setup_all(o_setup_timeout);
        measuring = 0;
        wall = (now_ns() - t_setup0) / 1e9;
        cpu_mark(&b);
        printf("mem_conns %d\nmem_registered %d\nmem_setup_s %.3f\n"
               "mem_regs_per_s %.0f\n", o_n, setup_ok, wall, setup_ok / wall);
        print_cpu("mem", &a, &b, self_cpu_s() - cpu0);
        run_for(o_idle_ms / 1000.0);
        mem_mark(rss1, pss1);
        for (i = 0; i < ngroups; i++) {
            printf("mem_rss_%s_before_kb %ld\nmem_rss_%s_after_kb %ld\n"
                   "mem_pss_%s_before_kb %ld\nmem_pss_%s_after_kb %ld\n",
                   groups[i].name, rss0[i], groups[i].name, rss1[i],
                   groups[i].name, pss0[i], groups[i].name, pss1[i]);
            if (setup_ok) {
                printf("mem_rss_%s_per_conn_kb %.2f\nmem_pss_%s_per_conn_kb %.2f\n",
                       groups[i].name, (double) (rss1[i] - rss0[i]) / setup_ok,
                       groups[i].name, (double) (pss1[i] - pss0[i]) / setup_ok);
            }
        }
        printf("mem_alive %d\n", count_alive());
        lat_print("mem_reg", &lat_reg);
        lat_print("mem_handshake", &lat_hs);
        goto errors;
    }

    if (strcmp(o_stage, "reg") != 0 && !calls) {
        fprintf(stderr, "sipload: unknown stage %s\n", o_stage);
        return 2;
    }

    /* ---- reg / call: -j processes, each with its share ---- */

    per = o_n / o_jobs;
    if (per < 1) {
        per = 1;
        o_jobs = o_n;
    }
    for (k = 1; k < o_jobs; k++) {
        if (pipe(pfd_ready[k]) < 0 || pipe(pfd_go[k]) < 0 || pipe(pfd_res[k]) < 0) {
            perror("pipe");
            return 1;
        }
        kids[k] = fork();
        if (kids[k] < 0) {
            perror("fork");
            return 1;
        }
        if (kids[k] == 0) {
            job = k;
            break;
        }
    }
    if (job == 0) {
        for (k = 1; k < o_jobs; k++) {
            close(pfd_ready[k][1]);
            close(pfd_go[k][0]);
            close(pfd_res[k][1]);
        }
    }

    ep = epoll_create1(EPOLL_CLOEXEC);
    /* the phones of this process: its own block of users */
    i = calls ? 2 * per : per;
    clients_init(i, calls, job * i);
    /* cseq and tags unique per run and process */
    runtag ^= job << 20;

    t_setup0 = now_ns();
    setup_ok = setup_all(o_setup_timeout);
    if (job == 0) {
        printf("setup_phones %d\nsetup_registered_local %d\nsetup_s %.3f\n",
               ncls * o_jobs, setup_ok, (now_ns() - t_setup0) / 1e9);
    }

    if (job != 0) {
        c1 = 1;
        write_all(pfd_ready[job][1], &c1, 1);
        if (read_all(pfd_go[job][0], &c1, 1) != 0) {
            _exit(1);
        }
    } else {
        for (k = 1; k < o_jobs; k++) {
            if (read_all(pfd_ready[k][0], &c1, 1) != 0) {
                kid_failed++;
            }
        }
        cpu_mark(&a);
        for (k = 1; k < o_jobs; k++) {
            write_all(pfd_go[k][1], &c1, 1);
        }
    }

    /* the window */
    cpu0 = self_cpu_s();
    t_win0 = now_ns();
    measuring = 1;
    for (i = 0; i < ncls; i++) {
        if (cls[i].phase == P_REGD
            && (!calls || (cls[i].role == R_CALLER && cls[i].peer->phase == P_REGD)))
        {
            next_exchange(&cls[i]);
        }
    }
    run_for(o_dur);
    measuring = 0;
    t_win1 = now_ns();
    if (job == 0) {
        cpu_mark(&b);
    }
    lg_s = self_cpu_s() - cpu0;
    drain(2.0);
    unregister_all(3.0);

    if (job != 0) {
        share_fill(&sh, setup_ok, cpu0);
        sh.cpu_s = lg_s;
        write_all(pfd_res[job][1], &sh, sizeof(sh));
        for (k = 0; k < 4; k++) {
            write_all(pfd_res[job][1], lats[k]->v, lats[k]->n * sizeof(uint64_t));
        }
        close(pfd_res[job][1]);
        _exit(0);
    }

    total_setup = setup_ok;
    for (k = 1; k < o_jobs; k++) {
        if (read_all(pfd_res[k][0], &sh, sizeof(sh)) != 0) {
            kid_failed++;
            continue;
        }
        total_setup += sh.setup_ok;
        lg_s += sh.cpu_s;
        share_add(&sh, pfd_res[k][0]);
        close(pfd_res[k][0]);
    }
    for (k = 1; k < o_jobs; k++) {
        waitpid(kids[k], NULL, 0);
    }
    wall = (t_win1 - t_win0) / 1e9;
    printf("jobs %d\nsetup_registered %d\n", o_jobs, total_setup);
    if (kid_failed) {
        printf("jobs_failed %d\n", kid_failed);
    }
    if (calls) {
        printf("call_pairs %d\ncall_done %llu\ncall_per_s %.1f\n", ncls / 2 * o_jobs,
               (unsigned long long) n_call_done, n_call_done / wall);
        lat_print("call_setup", &lat_setup);
        lat_print("call_total", &lat_call);
    } else {
        printf("reg_phones %d\nreg_done %llu\nreg_per_s %.1f\n", ncls * o_jobs,
               (unsigned long long) n_reg_done, n_reg_done / wall);
        lat_print("reg", &lat_reg);
    }
    print_cpu(o_stage, &a, &b, lg_s);
    printf("msgs_in %llu\nmsgs_out %llu\nunregistered %llu\n",
           (unsigned long long) n_msgs_in, (unsigned long long) n_msgs_out,
           (unsigned long long) n_unreg);

errors:
    printf("err_connect %llu\nerr_handshake %llu\nerr_closed %llu\n"
           "err_status %llu\nerr_timeout %llu\nerr_parse %llu\nerr_auth %llu\n"
           "err_unexpected %llu\nerr_via %llu\n",
           (unsigned long long) err_connect, (unsigned long long) err_handshake,
           (unsigned long long) err_closed, (unsigned long long) err_status,
           (unsigned long long) err_timeout, (unsigned long long) err_parse,
           (unsigned long long) err_auth, (unsigned long long) err_unexpected,
           (unsigned long long) err_via);
    (void) n_in_window;
    (void) n_setup_regs;
    return 0;
}
