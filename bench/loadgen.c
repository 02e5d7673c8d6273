/*
 * loadgen: WebSocket load generator for /signal.ashx (docs/signal.md) and
 * the reference relay (bench/ref-relay.js).  One thread, epoll, N
 * non-blocking connections; built by bench/signal.sh with cc -O2.
 *
 * Stages, in order (each prints "key value" lines on stdout):
 *
 *   join   (-n C > 0) RSS of the -m process groups, then C connections
 *          (C/2 rooms x 2 peers) connect (WebSocket upgrade) and join, at
 *          most -c rooms in progress at once: A joins, B joins after A's
 *          welcome.  joins/s over the whole stage (connect + upgrade +
 *          join), join -> welcome latency of every peer, and connect ->
 *          101 Switching Protocols ("upgrade").
 *   idle   the C connections stay joined and idle for -s ms, RSS again
 *          (idle_rss_*); then all leave.
 *   rjoin  ROOMS x 2 peers connect and join the same way (the rooms of
 *          the two stages below).
 *   sat    every peer sends signal frames to its partner in a closed loop,
 *          at most -w frames of its own not yet delivered; -d seconds;
 *          relayed frames/s and send -> deliver latency (queueing included).
 *   rate   RATE frames/s in total, spread over all peers round robin, for
 *          -t seconds: send -> deliver latency at a moderate load.
 *   leave  every peer sends leave; the server closes with 1000.
 *
 * Every delivered signal frame is checked: "from" is the partner, "data" is
 * byte for byte what the partner sent, the per-sender counter "n" in data
 * has no gap (order kept, nothing lost), and "seq" of each connection goes
 * up by one.  Violations are counted (err_* keys) and the first few shown.
 *
 * -m name=pid,pid,...  process groups whose CPU time (per stage) and RSS
 * (idle stage) are printed; the load generator's own CPU time is printed
 * as group "loadgen".
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>


enum { ST_IDLE = 0, ST_CONNECTING, ST_HS, ST_OPEN, ST_JOINING, ST_JOINED,
       ST_LEAVING, ST_CLOSED };

typedef struct conn_s conn_t;

struct conn_s {
    int          fd;
    int          state;
    int          role;          /* 0: A (joins first), 1: B */
    int          want_out;
    int          dirty;
    int          close_code;
    conn_t      *partner;
    char         id[24];
    char         other[24];     /* partner's peerId as this peer learnt it */
    int          has_id, has_other, room_done, room_failed;
    uint64_t     t_conn;        /* connect() called */
    uint64_t     t_join;
    uint8_t     *part;          /* incomplete input */
    uint32_t     partlen, partcap;
    uint8_t     *wb;            /* output not yet written */
    uint32_t     wlen, wpos, wcap;
    uint32_t     mask;
    uint64_t     last_seq;
    uint64_t     sent;          /* signal frames sent to the partner */
    uint64_t     recvd;         /* signal frames received from the partner */
    uint64_t     at_end;        /* recvd when the sat run ended */
};


/* options */
static const char *o_host = "127.0.0.1";
static int         o_port = 18480;
static int         o_rooms = 500;
static int         o_idle = 0;
static double      o_dur = 5.0;
static int         o_window = 8;
static int         o_rate = 5000;
static double      o_rate_dur = 3.0;
static int         o_conc = 128;
static int         o_settle = 1500;
static const char *o_prefix = "b";
static unsigned     o_tag;            /* per run, so rooms never collide */

#define MAX_GROUPS 8
#define MAX_PIDS   16
static struct { char name[32]; int pids[MAX_PIDS]; int n; } groups[MAX_GROUPS];
static int ngroups;

/* state */
static int          ep = -1;
static conn_t      *conns;
static int          nconns;
static conn_t     **dirty;
static int          ndirty;
static int          sending;       /* sat: fill windows */
static uint64_t     total_sent, total_recvd;
static int          rooms_done, rooms_active, rooms_failed;
static int          joining;       /* a join stage is running */
static struct sockaddr_in srv;

static uint8_t      G[1 << 20];    /* shared read buffer */

typedef struct { uint64_t *v; size_t n, cap; } lat_t;
static lat_t        lat_join, lat_upg, lat_sat, lat_rate;
static lat_t       *lat_cur;

/* errors */
static uint64_t err_connect, err_handshake, err_closed, err_from, err_data,
                err_order, err_seq, err_frames, err_unknown, err_join;
static int      shown;


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
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}


static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    return p;
}


static void
lat_add(lat_t *l, uint64_t v)
{
    if (l->n == l->cap) {
        if (l->cap >= (8u << 20)) {
            return;                         /* 8M samples are plenty */
        }
        l->cap = l->cap ? l->cap * 2 : 65536;
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
    double p50 = 0, p99 = 0, max = 0;

    if (l->n) {
        qsort(l->v, l->n, sizeof(uint64_t), cmp_u64);
        p50 = l->v[(size_t) (l->n * 0.50)] / 1e6;
        p99 = l->v[(size_t) (l->n * 0.99)] / 1e6;
        max = l->v[l->n - 1] / 1e6;
    }
    printf("%s_samples %zu\n%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_max_ms %.3f\n",
           name, l->n, name, p50, name, p99, name, max);
}


/* ---- process groups: CPU time and RSS from /proc ---- */

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
    p += 2;                         /* field 3 */
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
proc_rss_kb(int pid)
{
    char   path[64], line[256];
    long   kb = 0;
    FILE  *f;

    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}


static double
self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
           + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}


/* busy time of all cores (s), from /proc/stat */
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
    /* user nice system [idle iowait] irq softirq steal */
    return (double) (v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
           / sysconf(_SC_CLK_TCK);
}


typedef struct {
    uint64_t  t;
    double    self, sys;
    double    g[MAX_GROUPS];
} cpu_mark_t;

static void
cpu_mark(cpu_mark_t *m)
{
    int g, i;

    m->t = now_ns();
    m->self = self_cpu_s();
    m->sys = system_busy_s();
    for (g = 0; g < ngroups; g++) {
        m->g[g] = 0;
        for (i = 0; i < groups[g].n; i++) {
            m->g[g] += proc_cpu_s(groups[g].pids[i]);
        }
    }
}


static void
cpu_print(const char *stage, cpu_mark_t *a)
{
    cpu_mark_t b;
    double     wall, ours, other;
    int        g;

    cpu_mark(&b);
    wall = (b.t - a->t) / 1e9;
    printf("%s_wall_s %.3f\n", stage, wall);
    printf("%s_cpu_loadgen_s %.3f\n%s_cpu_loadgen_pct %.1f\n", stage,
           b.self - a->self, stage, 100 * (b.self - a->self) / wall);
    ours = b.self - a->self;
    for (g = 0; g < ngroups; g++) {
        printf("%s_cpu_%s_s %.3f\n%s_cpu_%s_pct %.1f\n",
               stage, groups[g].name, b.g[g] - a->g[g],
               stage, groups[g].name, 100 * (b.g[g] - a->g[g]) / wall);
        ours += b.g[g] - a->g[g];
    }
    /* everything else on the machine, in % of one core */
    other = (b.sys - a->sys) - ours;
    printf("%s_cpu_all_pct %.1f\n%s_cpu_other_pct %.1f\n", stage,
           100 * (b.sys - a->sys) / wall, stage,
           other > 0 ? 100 * other / wall : 0.0);
}


static void
rss_mark(long *kb)
{
    int g, i;

    for (g = 0; g < ngroups; g++) {
        kb[g] = 0;
        for (i = 0; i < groups[g].n; i++) {
            kb[g] += proc_rss_kb(groups[g].pids[i]);
        }
    }
}


/* ---- minimal JSON: members of one object, values skipped ---- */

static const char *
js_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }
    return p;
}


static const char *
js_skip(const char *p, const char *e)
{
    int depth = 0, instr = 0;

    if (p >= e) {
        return NULL;
    }

    if (*p != '"' && *p != '{' && *p != '[') {
        while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ') {
            p++;
        }
        return p;
    }

    for ( /* void */ ; p < e; p++) {
        if (instr) {
            if (*p == '\\') {
                p++;
            } else if (*p == '"') {
                instr = 0;
                if (depth == 0) {
                    return p + 1;
                }
            }
            continue;
        }
        switch (*p) {
        case '"':
            instr = 1;
            break;
        case '{':
        case '[':
            depth++;
            break;
        case '}':
        case ']':
            if (--depth == 0) {
                return p + 1;
            }
            break;
        }
    }
    return NULL;
}


/* the value of member `key` of the object at p; 0 if absent */
static int
js_get(const char *p, const char *e, const char *key, const char **v,
    size_t *vlen)
{
    const char *k, *ke, *ve;
    size_t      klen = strlen(key);

    p = js_ws(p, e);
    if (p >= e || *p != '{') {
        return 0;
    }
    p++;

    for (;;) {
        p = js_ws(p, e);
        if (p >= e || *p != '"') {
            return 0;
        }
        k = p + 1;
        ke = js_skip(p, e);
        if (ke == NULL) {
            return 0;
        }
        p = js_ws(ke, e);
        if (p >= e || *p != ':') {
            return 0;
        }
        p = js_ws(p + 1, e);
        ve = js_skip(p, e);
        if (ve == NULL) {
            return 0;
        }
        if ((size_t) (ke - 1 - k) == klen && memcmp(k, key, klen) == 0) {
            *v = p;
            *vlen = ve - p;
            return 1;
        }
        p = js_ws(ve, e);
        if (p >= e || *p != ',') {
            return 0;
        }
        p++;
    }
}


/* a string member without its quotes, copied into out (NUL-terminated) */
static int
js_str(const char *p, const char *e, const char *key, char *out, size_t size)
{
    const char *v;
    size_t      n;

    if (!js_get(p, e, key, &v, &n) || n < 2 || v[0] != '"' || n - 2 >= size) {
        return 0;
    }
    memcpy(out, v + 1, n - 2);
    out[n - 2] = '\0';
    return 1;
}


static int
js_u64(const char *p, const char *e, const char *key, uint64_t *out)
{
    const char *v;
    size_t      n, i;
    uint64_t    x = 0;

    if (!js_get(p, e, key, &v, &n) || n == 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
        x = x * 10 + (v[i] - '0');
    }
    *out = x;
    return 1;
}


/* ---- the signal payload: an ICE candidate, a timestamp, a counter ---- */

#define DATA_HEAD "{\"candidate\":{\"candidate\":\"candidate:842163049 1 udp " \
    "1677729535 203.0.113.7 61234 typ srflx raddr 192.168.1.20 rport 61234 " \
    "generation 0 ufrag 4ZcD network-cost 999\",\"sdpMid\":\"0\"," \
    "\"sdpMLineIndex\":0,\"usernameFragment\":\"4ZcD\"},\"ts\":"

static char *
put_u64(char *p, uint64_t x)
{
    char  tmp[24];
    int   n = 0;

    do {
        tmp[n++] = '0' + x % 10;
        x /= 10;
    } while (x);
    while (n) {
        *p++ = tmp[--n];
    }
    return p;
}


static size_t
make_data(char *buf, uint64_t ts, uint64_t n)
{
    char *p = buf;

    memcpy(p, DATA_HEAD, sizeof(DATA_HEAD) - 1);
    p += sizeof(DATA_HEAD) - 1;
    p = put_u64(p, ts);
    memcpy(p, ",\"n\":", 5);
    p = put_u64(p + 5, n);
    *p++ = '}';
    return p - buf;
}


/* ---- connections ---- */

static void conn_close(conn_t *c);

static void
ev_set(conn_t *c, int out)
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
wb_reserve(conn_t *c, size_t n)
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
flush(conn_t *c)
{
    ssize_t n;

    if (c->fd < 0 || c->state == ST_CONNECTING) {
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
            if (c->state != ST_LEAVING) {
                err_closed++;
                show("conn %d: send: %s", (int) (c - conns), strerror(errno));
            }
            conn_close(c);
            return;
        }
        c->wpos += n;
    }
    c->wpos = c->wlen = 0;
    ev_set(c, 0);
}


/* a masked client frame */
static void
ws_frame(conn_t *c, int opcode, const char *data, size_t len)
{
    uint8_t  *p, m[4];
    uint64_t  m8, w;
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
    m8 = (uint64_t) c->mask << 32 | c->mask;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, data + i, 8);
        w ^= m8;
        memcpy(p + i, &w, 8);
    }
    for ( /* void */ ; i < len; i++) {
        p[i] = data[i] ^ m[i & 3];
    }
    c->wlen = (p + len) - c->wb;
}


static void
send_text(conn_t *c, const char *s, size_t len)
{
    ws_frame(c, 1, s, len);
}


static void
send_join(conn_t *c)
{
    char buf[256];
    int  n, room = (int) (c - conns) / 2;

    n = snprintf(buf, sizeof(buf),
                 "{\"type\":\"join\",\"room\":\"%s-%x-%d\","
                 "\"name\":\"peer %c%d\"}",
                 o_prefix, o_tag, room, c->role ? 'B' : 'A', room);
    c->state = ST_JOINING;
    c->t_join = now_ns();
    send_text(c, buf, n);
    flush(c);
}


static void
send_signal(conn_t *c)
{
    char    buf[512], *p;
    size_t  n;

    p = buf;
    memcpy(p, "{\"type\":\"signal\",\"to\":\"", 23);
    p += 23;
    n = strlen(c->other);
    memcpy(p, c->other, n);
    p += n;
    memcpy(p, "\",\"data\":", 9);
    p += 9;
    p += make_data(p, now_ns(), ++c->sent);
    *p++ = '}';
    total_sent++;
    send_text(c, buf, p - buf);
}


static void
mark_dirty(conn_t *c)
{
    if (!c->dirty && c->fd >= 0) {
        c->dirty = 1;
        dirty[ndirty++] = c;
    }
}


/* a connection of a room that has not joined yet is gone */
static void
room_fail(conn_t *c)
{
    conn_t *a = c->role == 0 ? c : c->partner;

    if (joining && !a->room_done && !a->room_failed) {
        a->room_failed = 1;
        rooms_failed++;
        rooms_active--;
    }
}


static void
conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        room_fail(c);
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->state = ST_CLOSED;
    free(c->part);
    free(c->wb);
    c->part = NULL;
    c->wb = NULL;
    c->partlen = c->partcap = 0;
    c->wlen = c->wpos = c->wcap = 0;
}


static void
conn_start(conn_t *c)
{
    struct epoll_event ev;
    int                one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        err_connect++;
        show("socket: %s", strerror(errno));
        room_fail(c);
        c->state = ST_CLOSED;
        return;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->mask = (uint32_t) (uintptr_t) c ^ (uint32_t) now_ns();
    c->state = ST_CONNECTING;
    c->t_conn = now_ns();
    c->want_out = 1;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);

    if (connect(c->fd, (struct sockaddr *) &srv, sizeof(srv)) < 0
        && errno != EINPROGRESS)
    {
        err_connect++;
        show("connect: %s", strerror(errno));
        conn_close(c);
    }
}


static void
room_check(conn_t *a)
{
    conn_t *b = a->partner;

    if (a->room_done || a->room_failed || !a->has_id || !a->has_other
        || !b->has_id || !b->has_other)
    {
        return;
    }
    a->room_done = 1;
    if (strcmp(a->other, b->id) != 0 || strcmp(b->other, a->id) != 0) {
        err_join++;
        show("room %d: A learnt %s for B=%s, B learnt %s for A=%s",
             (int) (a - conns) / 2, a->other, b->id, b->other, a->id);
    }
    rooms_done++;
    rooms_active--;
}


static void
on_signal(conn_t *c, const char *m, const char *e, uint64_t t)
{
    char        from[24], expect[512];
    const char *d;
    size_t      dlen, xlen;
    uint64_t    ts, n;

    c->recvd++;
    total_recvd++;
    if (sending) {
        mark_dirty(c->partner);     /* its window has room again */
    }

    if (!js_str(m, e, "from", from, sizeof(from)) || strcmp(from, c->other)) {
        if (err_from++ == 0) {
            show("conn %d: signal from \"%s\", partner is %s",
                 (int) (c - conns), from, c->other);
        }
    }
    if (!js_get(m, e, "data", &d, &dlen)
        || !js_u64(d, d + dlen, "ts", &ts) || !js_u64(d, d + dlen, "n", &n))
    {
        if (err_data++ == 0) {
            show("conn %d: signal without data.ts/n: %.*s",
                 (int) (c - conns), (int) (e - m), m);
        }
        return;
    }
    xlen = make_data(expect, ts, n);
    if (xlen != dlen || memcmp(expect, d, dlen) != 0) {
        if (err_data++ == 0) {
            show("conn %d: data not byte for byte: %.*s",
                 (int) (c - conns), (int) dlen, d);
        }
    }
    if (n != c->recvd) {
        if (err_order++ == 0) {
            show("conn %d: frame n=%llu, expected %llu (lost or reordered)",
                 (int) (c - conns), (unsigned long long) n,
                 (unsigned long long) c->recvd);
        }
        c->recvd = n;
    }
    if (lat_cur && t > ts) {
        lat_add(lat_cur, t - ts);
    }
}


static void
on_message(conn_t *c, const char *m, size_t len, uint64_t t)
{
    const char *e = m + len;
    char        type[32], peer[24];
    const char *peers;
    size_t      plen;
    uint64_t    seq;

    if (!js_str(m, e, "type", type, sizeof(type))) {
        err_unknown++;
        show("conn %d: not a typed object: %.*s", (int) (c - conns),
             (int) (len > 200 ? 200 : len), m);
        return;
    }

    if (strcmp(type, "welcome") == 0) {
        if (!js_str(m, e, "peerId", c->id, sizeof(c->id))) {
            err_join++;
            show("welcome without peerId: %.*s", (int) len, m);
            return;
        }
        c->has_id = 1;
        c->state = ST_JOINED;
        lat_add(&lat_join, t - c->t_join);
        if (c->role == 1) {
            if (js_get(m, e, "peers", &peers, &plen) && plen > 2
                && js_str(peers + 1, peers + plen, "peerId", c->other,
                          sizeof(c->other)))
            {
                c->has_other = 1;
            } else {
                err_join++;
                show("B's welcome without A in peers: %.*s", (int) len, m);
            }
            room_check(c->partner);
        } else if (c->partner->state == ST_OPEN) {
            send_join(c->partner);
        }
        return;
    }

    /* every frame after welcome carries seq, one more each time */
    if (js_u64(m, e, "seq", &seq)) {
        if (seq != c->last_seq + 1 && err_seq++ == 0) {
            show("conn %d: seq %llu after %llu", (int) (c - conns),
                 (unsigned long long) seq, (unsigned long long) c->last_seq);
        }
        c->last_seq = seq;
    } else if (strcmp(type, "error") != 0 || c->has_id) {
        if (err_seq++ == 0) {
            show("conn %d: frame without seq: %.*s", (int) (c - conns),
                 (int) len, m);
        }
    }

    if (strcmp(type, "signal") == 0) {
        on_signal(c, m, e, t);

    } else if (strcmp(type, "peer-joined") == 0) {
        if (c->role == 0 && js_str(m, e, "peerId", peer, sizeof(peer))) {
            memcpy(c->other, peer, sizeof(peer));
            c->has_other = 1;
            room_check(c);
        }

    } else if (strcmp(type, "pong") == 0 || strcmp(type, "peer-left") == 0) {
        /* fine */

    } else {
        if (strcmp(type, "error") == 0) {
            err_frames++;
        } else {
            err_unknown++;
        }
        show("conn %d (state %d): %.*s", (int) (c - conns), c->state,
             (int) (len > 300 ? 300 : len), m);
    }
}


/* frames in buf; returns bytes consumed */
static size_t
on_frames(conn_t *c, uint8_t *buf, size_t len, uint64_t t)
{
    size_t   pos = 0, h, plen;
    uint8_t *p;
    int      op;

    while (c->fd >= 0 && len - pos >= 2) {
        p = buf + pos;
        op = p[0] & 0x0f;
        plen = p[1] & 0x7f;
        h = 2;
        if (p[1] & 0x80) {
            err_frames++;
            show("conn %d: masked server frame", (int) (c - conns));
        }
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
            if (!(buf[pos] & 0x80)) {
                err_frames++;
                show("conn %d: fragmented server frame", (int) (c - conns));
            }
            on_message(c, (char *) p, plen, t);
            break;
        case 8:
            c->close_code = plen >= 2 ? (p[0] << 8) | p[1] : 1005;
            if (c->state != ST_LEAVING) {
                err_closed++;
                show("conn %d: server closed with %d %.*s", (int) (c - conns),
                     c->close_code, plen > 2 ? (int) plen - 2 : 0, p + 2);
            }
            conn_close(c);
            return len;
        case 9:
            ws_frame(c, 10, (char *) p, plen);
            flush(c);
            break;
        case 10:
            break;
        default:
            err_frames++;
            show("conn %d: opcode %d", (int) (c - conns), op);
        }
        pos += h + plen;
    }
    return pos;
}


static size_t
on_handshake(conn_t *c, uint8_t *buf, size_t len, uint64_t t)
{
    uint8_t *end;

    end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL) {
        if (len > 8192) {
            err_handshake++;
            conn_close(c);
        }
        return 0;
    }
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0) {
        err_handshake++;
        show("conn %d: handshake answer: %.*s", (int) (c - conns),
             (int) (end - buf), buf);
        conn_close(c);
        return len;
    }
    c->state = ST_OPEN;
    lat_add(&lat_upg, t - c->t_conn);
    if (c->role == 0 || c->partner->state == ST_JOINED) {
        send_join(c);
    }
    return end + 4 - buf;
}


static void
on_readable(conn_t *c)
{
    ssize_t  n;
    size_t   have, used;
    uint64_t t;

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
                if (c->state != ST_LEAVING) {
                    err_closed++;
                    show("conn %d: recv: %s", (int) (c - conns),
                         strerror(errno));
                }
                conn_close(c);
            }
            return;
        }
        if (n == 0) {
            if (c->state != ST_LEAVING) {
                err_closed++;
                show("conn %d: EOF in state %d", (int) (c - conns), c->state);
            }
            conn_close(c);
            return;
        }
        t = now_ns();
        have += n;
        used = 0;
        if (c->state == ST_HS) {
            used = on_handshake(c, G, have, t);
        }
        if (c->fd >= 0 && c->state != ST_HS) {
            used += on_frames(c, G + used, have - used, t);
        }
        if (c->fd < 0) {
            return;
        }
        c->partlen = have - used;
        if (c->partlen) {
            if (c->partlen > c->partcap) {
                c->partcap = c->partlen < 1024 ? 1024 : c->partlen;
                c->part = xrealloc(c->part, c->partcap);
            }
            memcpy(c->part, G + used, c->partlen);
        } else if (c->partcap > 65536) {
            free(c->part);
            c->part = NULL;
            c->partcap = 0;
        }
        if ((size_t) n < sizeof(G) - have + n) {
            return;                 /* read less than asked: drained */
        }
    }
}


static void
on_writable(conn_t *c)
{
    int       err = 0;
    socklen_t sl = sizeof(err);
    char      req[512];
    int       n;

    if (c->state == ST_CONNECTING) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            err_connect++;
            show("conn %d: connect: %s", (int) (c - conns), strerror(err));
            conn_close(c);
            return;
        }
        n = snprintf(req, sizeof(req),
                     "GET /signal.ashx HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: bG9hZGdlbi0lMDhYLWtleQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     o_host, o_port);
        c->state = ST_HS;
        wb_reserve(c, n);
        memcpy(c->wb + c->wlen, req, n);
        c->wlen += n;
    }
    flush(c);
}


/* one round of the event loop, then the dirty peers send and flush */
static void
loop_once(int timeout_ms)
{
    static struct epoll_event evs[1024];
    int      n, i;
    conn_t  *c;

    n = epoll_wait(ep, evs, 1024, timeout_ms);
    for (i = 0; i < n; i++) {
        c = evs[i].data.ptr;
        if (c->fd < 0) {
            continue;
        }
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) {
            if (c->state == ST_CONNECTING || c->wpos < c->wlen) {
                on_writable(c);
            }
        }
        if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            && c->state != ST_CONNECTING)
        {
            on_readable(c);
        }
    }

    for (i = 0; i < ndirty; i++) {
        c = dirty[i];
        c->dirty = 0;
        if (c->fd < 0 || c->state != ST_JOINED) {
            continue;
        }
        while (sending && c->partner->fd >= 0
               && c->sent - c->partner->recvd < (uint64_t) o_window)
        {
            send_signal(c);
        }
        flush(c);
    }
    ndirty = 0;
}


/* ---- stages ---- */

static void
conns_alloc(int n)
{
    int i;

    conns = calloc(n, sizeof(conn_t));
    dirty = calloc(n, sizeof(conn_t *));
    if (conns == NULL || dirty == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        exit(1);
    }
    nconns = n;
    for (i = 0; i < n; i++) {
        conns[i].fd = -1;
        conns[i].role = i & 1;
        conns[i].partner = &conns[i ^ 1];
    }
    rooms_done = rooms_active = rooms_failed = 0;
    total_sent = total_recvd = 0;
}


static void
conns_free(void)
{
    int i;

    for (i = 0; i < nconns; i++) {
        conn_close(&conns[i]);
    }
    free(conns);
    free(dirty);
    conns = NULL;
    dirty = NULL;
    nconns = ndirty = 0;
}


/* connects and joins nrooms x 2 peers; returns the rooms done */
static int
stage_join(int nrooms, double timeout_s, const char *name)
{
    int      next = 0;
    uint64_t t0, deadline, t1;

    conns_alloc(nrooms * 2);
    joining = 1;
    t0 = now_ns();
    deadline = t0 + (uint64_t) (timeout_s * 1e9);

    while (rooms_done + rooms_failed < nrooms && now_ns() < deadline) {
        while (rooms_active < o_conc && next < nrooms) {
            conn_start(&conns[2 * next]);
            conn_start(&conns[2 * next + 1]);
            rooms_active++;
            next++;
        }
        loop_once(5);
    }
    t1 = now_ns();
    joining = 0;

    printf("%s_rooms %d\n%s_joined_rooms %d\n%s_failed_rooms %d\n", name,
           nrooms, name, rooms_done, name, rooms_failed);
    printf("%s_s %.3f\n%s_joins_per_s %.0f\n", name, (t1 - t0) / 1e9, name,
           2.0 * rooms_done / ((t1 - t0) / 1e9));
    if (rooms_done < nrooms) {
        fprintf(stderr, "loadgen: %s: only %d of %d rooms joined (%d failed)"
                " in %.1f s\n", name, rooms_done, nrooms, rooms_failed,
                (t1 - t0) / 1e9);
    }
    return rooms_done;
}


static void
stage_leave(const char *name)
{
    int      i, open;
    uint64_t deadline;
    int      ok = 0, other = 0;

    for (i = 0; i < nconns; i++) {
        if (conns[i].fd >= 0 && conns[i].state == ST_JOINED) {
            send_text(&conns[i], "{\"type\":\"leave\"}", 16);
            conns[i].state = ST_LEAVING;
            flush(&conns[i]);
        } else if (conns[i].fd >= 0) {
            conns[i].state = ST_LEAVING;
            conn_close(&conns[i]);
        }
    }
    deadline = now_ns() + 5000000000ull;
    do {
        loop_once(10);
        open = 0;
        for (i = 0; i < nconns; i++) {
            open += conns[i].fd >= 0;
        }
    } while (open && now_ns() < deadline);

    for (i = 0; i < nconns; i++) {
        if (conns[i].close_code == 1000) {
            ok++;
        } else if (conns[i].state == ST_LEAVING || conns[i].fd >= 0) {
            other++;
        }
    }
    printf("%s_closed_1000 %d\n%s_not_closed %d\n", name, ok, name, open);
    conns_free();
}


static void
run_for(double seconds)
{
    uint64_t end = now_ns() + (uint64_t) (seconds * 1e9);

    while (now_ns() < end) {
        loop_once(10);
    }
}


static void
drain(double max_s)
{
    uint64_t end = now_ns() + (uint64_t) (max_s * 1e9);

    while (total_recvd < total_sent && now_ns() < end) {
        loop_once(5);
    }
}


/* joins C connections (C/2 rooms) on the fresh server, then RSS idle */
static void
stage_idle(void)
{
    long       base[MAX_GROUPS], loaded[MAX_GROUPS];
    int        g, done;
    cpu_mark_t cm;

    rss_mark(base);
    cpu_mark(&cm);
    o_prefix = "idle";
    lat_join.n = 0;
    lat_upg.n = 0;
    done = stage_join(o_idle / 2, 30, "join");
    cpu_print("join", &cm);
    lat_print("join", &lat_join);
    lat_print("upgrade", &lat_upg);
    fflush(stdout);

    run_for(o_settle / 1000.0);
    rss_mark(loaded);
    printf("idle_conns %d\n", done * 2);
    for (g = 0; g < ngroups; g++) {
        printf("idle_rss_%s_base_kb %ld\nidle_rss_%s_loaded_kb %ld\n"
               "idle_rss_%s_per_conn_kb %.2f\n",
               groups[g].name, base[g], groups[g].name, loaded[g],
               groups[g].name,
               done ? (double) (loaded[g] - base[g]) / (done * 2) : 0.0);
    }
    stage_leave("idle_leave");
}


/* frames/s of each room (both directions) during the sat run: equal
 * shares, or some rooms starved? */
static void
pairs_print(const char *name, double secs)
{
    uint64_t *v;
    int       i, n = nconns / 2;

    if (n == 0) {
        return;
    }
    v = xrealloc(NULL, n * sizeof(uint64_t));
    for (i = 0; i < n; i++) {
        v[i] = conns[2 * i].at_end + conns[2 * i + 1].at_end;
    }
    qsort(v, n, sizeof(uint64_t), cmp_u64);
    printf("%s_room_fps_min %.0f\n%s_room_fps_p10 %.0f\n"
           "%s_room_fps_p50 %.0f\n%s_room_fps_p90 %.0f\n"
           "%s_room_fps_max %.0f\n",
           name, v[0] / secs, name, v[n / 10] / secs, name, v[n / 2] / secs,
           name, v[n * 9 / 10] / secs, name, v[n - 1] / secs);
    free(v);
}


static void
stage_bench(void)
{
    cpu_mark_t cm;
    uint64_t   t0, t1, r0, r1, end, due, s0;
    int        rr = 0, i, skipped = 0;
    conn_t    *c;
    double     el;

    /* the rooms of the relay stages */
    o_prefix = "room";
    lat_join.n = 0;
    cpu_mark(&cm);
    if (stage_join(o_rooms, 30, "rjoin") < o_rooms) {
        fprintf(stderr, "loadgen: not every room joined; sending anyway\n");
    }
    cpu_print("rjoin", &cm);
    lat_print("rjoin", &lat_join);

    /* sat: closed loop, window o_window per peer */
    cpu_mark(&cm);
    lat_cur = &lat_sat;
    sending = 1;
    t0 = now_ns();
    r0 = total_recvd;
    for (i = 0; i < nconns; i++) {
        if (conns[i].room_done || conns[i].partner->room_done) {
            mark_dirty(&conns[i]);
        }
    }
    end = t0 + (uint64_t) (o_dur * 1e9);
    while (now_ns() < end) {
        loop_once(5);
    }
    t1 = now_ns();
    r1 = total_recvd;
    for (i = 0; i < nconns; i++) {
        conns[i].at_end = conns[i].recvd;
    }
    sending = 0;
    cpu_print("sat", &cm);
    drain(5);
    lat_cur = NULL;
    printf("sat_window %d\nsat_frames %llu\nsat_frames_per_s %.0f\n"
           "sat_sent %llu\nsat_delivered %llu\n",
           o_window, (unsigned long long) (r1 - r0),
           (r1 - r0) / ((t1 - t0) / 1e9),
           (unsigned long long) total_sent, (unsigned long long) total_recvd);
    lat_print("sat", &lat_sat);
    pairs_print("sat", (t1 - t0) / 1e9);

    /* rate: o_rate frames/s in total, round robin over the peers */
    cpu_mark(&cm);
    lat_cur = &lat_rate;
    s0 = total_sent;
    r0 = total_recvd;
    t0 = now_ns();
    end = t0 + (uint64_t) (o_rate_dur * 1e9);
    for (;;) {
        t1 = now_ns();
        if (t1 >= end) {
            break;
        }
        el = (t1 - t0) / 1e9;
        due = (uint64_t) (el * o_rate);
        for (i = 0; i < 4 * nconns && total_sent - s0 < due; i++) {
            c = &conns[rr];
            rr = (rr + 1) % nconns;
            if (c->fd < 0 || c->state != ST_JOINED || !c->has_other
                || c->partner->fd < 0)
            {
                continue;
            }
            if (c->sent - c->partner->recvd > 1000) {
                skipped++;          /* the server is not keeping up */
                continue;
            }
            send_signal(c);
            flush(c);
        }
        loop_once(1);
    }
    t1 = now_ns();
    drain(5);
    cpu_print("rate", &cm);
    lat_cur = NULL;
    printf("rate_target_per_s %d\nrate_sent_per_s %.0f\nrate_skipped %d\n"
           "rate_delivered %llu\n",
           o_rate, (total_sent - s0) / ((t1 - t0) / 1e9), skipped,
           (unsigned long long) (total_recvd - r0));
    lat_print("rate", &lat_rate);
    printf("lost_frames %llu\n",
           (unsigned long long) (total_sent - total_recvd));

    stage_leave("leave");
}


static void
usage(void)
{
    fprintf(stderr,
        "usage: loadgen [-p port] [-r rooms] [-n idle_conns] [-d sat_s]\n"
        "               [-w window] [-R rate] [-t rate_s] [-c rooms_at_once]\n"
        "               [-s settle_ms] [-m name=pid,pid...]...\n");
    exit(2);
}


int
main(int argc, char **argv)
{
    int            opt;
    char          *p, *s;
    struct rlimit  rl;

    while ((opt = getopt(argc, argv, "p:r:n:d:w:R:t:c:s:m:")) != -1) {
        switch (opt) {
        case 'p': o_port = atoi(optarg); break;
        case 'r': o_rooms = atoi(optarg); break;
        case 'n': o_idle = atoi(optarg) & ~1; break;
        case 'd': o_dur = atof(optarg); break;
        case 'w': o_window = atoi(optarg); break;
        case 'R': o_rate = atoi(optarg); break;
        case 't': o_rate_dur = atof(optarg); break;
        case 'c': o_conc = atoi(optarg); break;
        case 's': o_settle = atoi(optarg); break;
        case 'm':
            if (ngroups == MAX_GROUPS || (p = strchr(optarg, '=')) == NULL) {
                usage();
            }
            snprintf(groups[ngroups].name, sizeof(groups[0].name), "%.*s",
                     (int) (p - optarg), optarg);
            for (s = strtok(p + 1, ","); s && groups[ngroups].n < MAX_PIDS;
                 s = strtok(NULL, ","))
            {
                groups[ngroups].pids[groups[ngroups].n++] = atoi(s);
            }
            ngroups++;
            break;
        default:
            usage();
        }
    }
    if (o_rooms < 1 || o_window < 1 || o_conc < 1) {
        usage();
    }

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    memset(&srv, 0, sizeof(srv));
    srv.sin_family = AF_INET;
    srv.sin_port = htons(o_port);
    inet_pton(AF_INET, o_host, &srv.sin_addr);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_create1");
        return 1;
    }

    o_tag = (unsigned) (getpid() ^ now_ns());
    printf("loadgen_pid %d\n", (int) getpid());
    fflush(stdout);

    if (o_idle > 0) {
        stage_idle();
        fflush(stdout);
    }
    stage_bench();

    printf("err_connect %llu\nerr_handshake %llu\nerr_closed %llu\n"
           "err_join %llu\nerr_from %llu\nerr_data %llu\nerr_order %llu\n"
           "err_seq %llu\nerr_error_frames %llu\nerr_unknown %llu\n",
           (unsigned long long) err_connect,
           (unsigned long long) err_handshake,
           (unsigned long long) err_closed, (unsigned long long) err_join,
           (unsigned long long) err_from, (unsigned long long) err_data,
           (unsigned long long) err_order, (unsigned long long) err_seq,
           (unsigned long long) err_frames,
           (unsigned long long) err_unknown);
    printf("loadgen_cpu_total_s %.3f\n", self_cpu_s());
    return 0;
}
