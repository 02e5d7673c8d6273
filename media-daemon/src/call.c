/*
 * The calls (call.h): each thread has its own table of the calls it owns
 * (md_call_owner()).  Only the owner reads or changes its table, except
 * md_call_ids() ("list"), which reads all tables under md_call_dir; table
 * changes take md_call_dir too.
 */

#include "call.h"
#include "conf.h"
#include "registry.h"
#include "stream.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>


static md_call_t       **md_call_tables[MD_MAX_THREADS];
static pthread_mutex_t   md_call_dir = PTHREAD_MUTEX_INITIALIZER;
static size_t            md_ncalls;         /* atomic */

#define md_calls  (md_call_tables[md_thread_index()])


int
md_call_thread_init(int index)
{
    md_call_tables[index] = calloc(MD_CALL_HASH, sizeof(md_call_t *));

    return md_call_tables[index] ? 0 : -1;
}


size_t
md_call_count(void)
{
    return __atomic_load_n(&md_ncalls, __ATOMIC_RELAXED);
}


int
md_call_owner(const char *id, size_t len)
{
    return (int) ((md_hash(id, len) / 7) % (unsigned) md_thread_count());
}


md_call_t *
md_call_bucket(int i)
{
    return md_calls[i];
}


md_call_t *
md_call_find(be_node_t *id)
{
    md_call_t  *c;

    for (c = md_calls[md_hash(id->s, id->len) % MD_CALL_HASH];
         c;
         c = c->next)
    {
        if (strlen(c->id) == id->len && memcmp(c->id, id->s, id->len) == 0) {
            return c;
        }
    }

    return NULL;
}


/* a NUL-terminated copy of a bencoded string, bounded */
static int
md_copy_id(char *dst, be_node_t *v)
{
    if (v == NULL || v->len == 0 || v->len >= MD_ID_LEN
        || memchr(v->s, '\0', v->len))
    {
        return -1;
    }

    memcpy(dst, v->s, v->len);
    dst[v->len] = '\0';

    return 0;
}


int
md_leg_is(md_leg_t *leg, be_node_t *tag)
{
    return tag && leg->tag[0] && strlen(leg->tag) == tag->len
           && memcmp(leg->tag, tag->s, tag->len) == 0;
}


int
md_leg_name(md_leg_t *leg, be_node_t *tag)
{
    return md_copy_id(leg->tag, tag);
}


md_call_t *
md_call_new(be_node_t *id)
{
    unsigned    h;
    md_call_t  *c;

    c = calloc(1, sizeof(md_call_t));
    if (c == NULL || md_copy_id(c->id, id) != 0) {
        free(c);
        return NULL;
    }

    c->created = md_now();
    c->created_wall = time(NULL);

    h = md_hash(id->s, id->len) % MD_CALL_HASH;

    pthread_mutex_lock(&md_call_dir);
    c->next = md_calls[h];
    md_calls[h] = c;
    pthread_mutex_unlock(&md_call_dir);

    __atomic_add_fetch(&md_ncalls, 1, __ATOMIC_RELAXED);

    return c;
}


void
md_call_free(md_call_t *c)
{
    int         l, i;
    md_call_t  **link;

    pthread_mutex_lock(&md_call_dir);

    for (link = &md_calls[md_hash(c->id, strlen(c->id)) % MD_CALL_HASH];
         *link;
         link = &(*link)->next)
    {
        if (*link == c) {
            *link = c->next;
            break;
        }
    }

    pthread_mutex_unlock(&md_call_dir);

    for (l = 0; l < 2; l++) {
        for (i = 0; i < c->legs[l].nstreams; i++) {
            md_stream_free(c->legs[l].streams[i]);
        }
    }

    if (c->answered) {
        md_registry_call(c, 0);
    }

    __atomic_sub_fetch(&md_ncalls, 1, __ATOMIC_RELAXED);
    free(c);
}


const char *
md_call_streams(md_call_t *c, int n)
{
    int          l, i;
    const char  *err;
    md_leg_t    *leg;

    for (l = 0; l < 2; l++) {
        leg = &c->legs[l];

        for (i = leg->nstreams; i < n; i++) {
            leg->streams[i] = md_stream_new(c, leg, i, &err);
            if (leg->streams[i] == NULL) {
                return err;
            }

            leg->nstreams = i + 1;
        }
    }

    for (i = 0; i < n; i++) {
        c->legs[0].streams[i]->peer = c->legs[1].streams[i];
        c->legs[1].streams[i]->peer = c->legs[0].streams[i];
    }

    return NULL;
}


void
md_call_each(md_call_t *c, md_leg_t *leg, void (*fn)(md_stream_t *s))
{
    int  l, i;

    for (l = 0; l < 2; l++) {
        if (leg && leg != &c->legs[l]) {
            continue;
        }

        for (i = 0; i < c->legs[l].nstreams; i++) {
            fn(c->legs[l].streams[i]);
        }
    }
}


void
md_call_ids(be_buf_t *b, int64_t limit)
{
    int         i, t;
    int64_t     n;
    md_call_t  *c;

    n = 0;

    pthread_mutex_lock(&md_call_dir);

    for (t = 0; t < md_thread_count(); t++) {
        for (i = 0; i < MD_CALL_HASH && n < limit; i++) {
            for (c = md_call_tables[t][i]; c && n < limit; c = c->next) {
                be_cstr(b, c->id);
                n++;
            }
        }
    }

    pthread_mutex_unlock(&md_call_dir);
}


void
md_call_timeouts(void)
{
    int          i, l, k, alive;
    double       now, last;
    md_call_t   *c, *next;
    md_live_t    live;
    md_stream_t *s;

    now = md_now();
    md_conf_live(&live);

    for (i = 0; i < MD_CALL_HASH; i++) {
        for (c = md_calls[i]; c; c = next) {
            next = c->next;

            /* the newest of: the last signal, the last packet */
            last = c->last_signal;
            alive = 0;

            for (l = 0; l < 2; l++) {
                for (k = 0; k < c->legs[l].nstreams; k++) {
                    s = c->legs[l].streams[k];

                    if (s->dtls) {
                        md_dtls_timer(s->dtls);
                    }

                    if (s->last_in > last) {
                        last = s->last_in;
                    }
                    alive |= s->has_remote;
                }
            }

            if (now - last >= live.timeout) {
                md_log(MD_LOG_INFO, "[%s] no media for %d s%s: deleted",
                       c->id, live.timeout,
                       alive ? "" : " (never connected)");
                md_call_free(c);
            }
        }
    }
}
