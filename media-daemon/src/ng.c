/*
 * The rtpengine NG control protocol (docs/ng.md): one UDP datagram
 * "<cookie> <bencoded dict>" per request, the reply "<cookie> <dict>" with
 * "result" ok / pong / error ("error-reason").  Controllers retransmit
 * with the same cookie, so replies are cached by cookie for 30 s and a
 * retransmission is answered from the cache, never executed twice.
 *
 * Thread 0 reads the socket; a request that names a call-id is executed
 * by the thread that owns the call (md_call_owner()), the others on
 * thread 0.  The reply cache is shared, under md_ng_lock.
 */

#include "call.h"
#include "commands.h"
#include "conf.h"
#include "loop.h"
#include "ng.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


#define MD_NG_MAX         65535      /* bytes of a request datagram */
#define MD_NG_COOKIE_MAX  64
#define MD_NG_CACHE       4096       /* replies kept (buckets) */
#define MD_NG_CACHE_S     30.0


typedef struct md_ng_cached_s  md_ng_cached_t;

struct md_ng_cached_s {
    md_ng_cached_t     *next;
    double              at;
    size_t              cookie_len;
    char                cookie[MD_NG_COOKIE_MAX];
    size_t              len;
    char               *reply;
};


static void md_ng_read(md_io_t *io);


static void md_ng_route(const char *p, size_t len, struct sockaddr_in *from);


static md_io_t          md_ng_io = { -1, md_ng_read, NULL };
static md_ng_cached_t  *md_ng_cache[MD_NG_CACHE];
static pthread_mutex_t  md_ng_lock = PTHREAD_MUTEX_INITIALIZER;
static char             md_ng_buf[MD_NG_MAX + 1];
static int              md_ng_draining;          /* atomic */


int
md_ng_init(void)
{
    int                 fd;
    struct sockaddr_in  sin;

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        md_log(MD_LOG_ERR, "NG socket: %s", strerror(errno));
        return -1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr = md_conf.ng_addr;
    sin.sin_port = htons(md_conf.ng_port);

    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1) {
        md_log(MD_LOG_ERR, "NG bind %s:%u: %s", inet_ntoa(md_conf.ng_addr),
               md_conf.ng_port, strerror(errno));
        close(fd);
        return -1;
    }

    md_ng_io.fd = fd;

    return md_io_add(&md_ng_io);
}


/* a cached reply for cookie; expired entries of the bucket are dropped */
static md_ng_cached_t *
md_ng_cache_find(const char *cookie, size_t len)
{
    double           now;
    md_ng_cached_t  **link, *c;

    now = md_now();
    link = &md_ng_cache[md_hash(cookie, len) % MD_NG_CACHE];

    while ((c = *link) != NULL) {
        if (now - c->at > MD_NG_CACHE_S) {
            *link = c->next;
            free(c->reply);
            free(c);
            continue;
        }

        if (c->cookie_len == len && memcmp(c->cookie, cookie, len) == 0) {
            return c;
        }

        link = &c->next;
    }

    return NULL;
}


static void
md_ng_cache_add(const char *cookie, size_t clen, const char *reply,
    size_t len)
{
    unsigned         h;
    md_ng_cached_t  *c;

    c = malloc(sizeof(md_ng_cached_t));
    if (c == NULL) {
        return;
    }

    c->reply = malloc(len);
    if (c->reply == NULL) {
        free(c);
        return;
    }

    memcpy(c->reply, reply, len);
    memcpy(c->cookie, cookie, clen);
    c->cookie_len = clen;
    c->len = len;
    c->at = md_now();

    h = md_hash(cookie, clen) % MD_NG_CACHE;
    c->next = md_ng_cache[h];
    md_ng_cache[h] = c;
}


static void
md_ng_read(md_io_t *io)
{
    ssize_t             n;
    int                 i;
    socklen_t           slen;
    struct sockaddr_in  from;

    /* a bounded batch per wakeup: media sockets get their turn too */

    for (i = 0; i < 64; i++) {
        slen = sizeof(from);
        n = recvfrom(io->fd, md_ng_buf, MD_NG_MAX, 0,
                     (struct sockaddr *) &from, &slen);

        if (n == -1) {
            if (errno != EAGAIN && errno != EINTR) {
                md_log(MD_LOG_WARN, "NG recvfrom: %s", strerror(errno));
            }
            return;
        }

        md_ng_route(md_ng_buf, (size_t) n, &from);
    }
}


/* to the thread that owns the call the request names */
static void
md_ng_route(const char *p, size_t len, struct sockaddr_in *from)
{
    int               owner;
    const char       *sp;
    be_node_t        *req, *id;
    static be_doc_t   doc;

    owner = 0;
    sp = memchr(p, ' ', len);

    if (sp && md_thread_count() > 1) {
        req = be_parse(&doc, sp + 1, len - (size_t) (sp - p) - 1);
        id = be_get_str(req, "call-id");

        if (id) {
            owner = md_call_owner(id->s, id->len);
        }
    }

    if (owner == md_thread_index()
        || md_thread_post(owner, p, len, from) != 0)
    {
        md_ng_execute(p, len, from);
    }
}


static void
md_ng_send(struct sockaddr_in *to, const char *cookie, size_t clen,
    be_buf_t *body)
{
    be_buf_t  out;

    memset(&out, 0, sizeof(out));
    be_raw(&out, cookie, clen);
    be_raw(&out, " ", 1);
    be_raw(&out, body->data, body->len);

    if (out.failed) {
        be_buf_free(&out);
        return;
    }

    if (sendto(md_ng_io.fd, out.data, out.len, 0, (struct sockaddr *) to,
               sizeof(*to)) == -1)
    {
        md_log(MD_LOG_WARN, "NG sendto: %s", strerror(errno));
    }

    pthread_mutex_lock(&md_ng_lock);
    md_ng_cache_add(cookie, clen, out.data, out.len);
    pthread_mutex_unlock(&md_ng_lock);

    be_buf_free(&out);
}


/* the NG commands on calls, by name */
static const struct {
    const char  *name;
    const char  *(*run)(be_node_t *req, be_buf_t *reply);
} md_ng_commands[] = {
    { "offer", md_call_offer },
    { "answer", md_call_answer },
    { "delete", md_call_delete },
    { "query", md_call_query },
    { "list", md_call_list },
    { "play media", md_call_play },
    { "stop media", md_call_stop_media },
    { "start recording", md_call_start_recording },
    { "stop recording", md_call_stop_recording }
};


/*
 * runs request req (parsed into doc) and writes the reply body: its
 * members and "result"; or returns the error reason
 */
static const char *
md_ng_run(be_node_t *req, be_doc_t *doc, be_buf_t *body)
{
    size_t       i;
    be_buf_t     members;
    be_node_t   *cmd;
    const char  *err;

    if (req == NULL) {
        return doc->error;
    }

    if (req->type != BE_DICT) {
        return "request is not a dictionary";
    }

    cmd = be_get_str(req, "command");
    if (cmd == NULL) {
        return "no command";
    }

    if (be_is(cmd, "ping")) {
        be_dict(body);
        be_kcstr(body, "result", "pong");
        be_end(body);
        return NULL;
    }

    if (be_is(cmd, "offer")
        && __atomic_load_n(&md_ng_draining, __ATOMIC_RELAXED))
    {
        return "shutting down";
    }

    for (i = 0; i < sizeof(md_ng_commands) / sizeof(md_ng_commands[0]); i++)
    {
        if (!be_is(cmd, md_ng_commands[i].name)) {
            continue;
        }

        memset(&members, 0, sizeof(members));

        err = md_ng_commands[i].run(req, &members);

        if (err == NULL) {
            be_dict(body);
            be_raw(body, members.data, members.len);
            be_kcstr(body, "result", "ok");
            be_end(body);
        }

        be_buf_free(&members);

        return err;
    }

    return "unknown command";
}


/* body replaced by an error reply with reason err */
static void
md_ng_error(be_buf_t *body, const char *err)
{
    be_buf_free(body);
    be_dict(body);
    be_kcstr(body, "error-reason", err);
    be_kcstr(body, "result", "error");
    be_end(body);
}


void
md_ng_drain(void)
{
    __atomic_store_n(&md_ng_draining, 1, __ATOMIC_RELAXED);
}


void
md_ng_execute(const char *p, size_t len, struct sockaddr_in *from)
{
    const char      *sp, *err;
    size_t           clen;
    be_node_t       *req;
    be_buf_t         body;
    md_ng_cached_t  *cached;
    static _Thread_local be_doc_t  doc;

    sp = memchr(p, ' ', len);
    if (sp == NULL || sp == p || (size_t) (sp - p) > MD_NG_COOKIE_MAX) {
        md_log(MD_LOG_WARN, "NG: datagram without a cookie from %s, dropped",
               inet_ntoa(from->sin_addr));
        return;
    }

    clen = (size_t) (sp - p);

    pthread_mutex_lock(&md_ng_lock);

    cached = md_ng_cache_find(p, clen);
    if (cached) {
        (void) sendto(md_ng_io.fd, cached->reply, cached->len, 0,
                      (struct sockaddr *) from, sizeof(*from));
        pthread_mutex_unlock(&md_ng_lock);
        return;
    }

    pthread_mutex_unlock(&md_ng_lock);

    memset(&body, 0, sizeof(body));

    req = be_parse(&doc, sp + 1, len - clen - 1);

    err = md_ng_run(req, &doc, &body);
    if (err) {
        md_log(MD_LOG_INFO, "NG error: %s", err);
        md_ng_error(&body, err);
    }

    if (body.failed) {
        md_ng_error(&body, "out of memory");
    }

    md_ng_send(from, p, clen, &body);

    be_buf_free(&body);
}
