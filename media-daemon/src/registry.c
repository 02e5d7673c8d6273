/*
 * The daemon's calls in Redis, for the nginx modules' ?stats and
 * ?healthsummary (--redis).  Keys:
 *   codeb:media:daemons        set   daemon ids
 *   codeb:media:<daemon id>    hash  call-id -> "<created epoch s> <ports>"
 * The hash has a TTL of 3 x --timeout, refreshed every 10 s, so a dead
 * daemon's calls disappear.  Writes happen on signalling (offer, answer,
 * delete), never per packet; each is bounded by a 100 ms socket timeout,
 * and after a failure Redis is left alone for 5 s, so a slow or absent
 * Redis cannot stall the media loop for long.
 */

#include "conf.h"
#include "registry.h"
#include "util.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>


static void md_registry_alive(void);


static _Thread_local redisContext  *md_redis;     /* one per thread */
static char          *md_redis_addr;
static char           md_registry_key[256];
static char           md_daemon_id[128];
static _Thread_local double         md_redis_retry;


int
md_registry_init(const char *addr, const char *id)
{
    if (addr == NULL) {
        return 0;
    }

    md_redis_addr = strdup(addr);
    snprintf(md_daemon_id, sizeof(md_daemon_id), "%s", id);
    snprintf(md_registry_key, sizeof(md_registry_key), "codeb:media:%s", id);

    return md_redis_addr ? 0 : -1;
}


static redisContext *
md_registry_link(void)
{
    char            host[256], *colon;
    struct timeval  tv = { 0, 100000 };

    if (md_redis_addr == NULL) {
        return NULL;
    }

    if (md_redis) {
        return md_redis;
    }

    if (md_now() < md_redis_retry) {
        return NULL;
    }

    if (strncmp(md_redis_addr, "unix:", 5) == 0) {
        md_redis = redisConnectUnixWithTimeout(md_redis_addr + 5, tv);

    } else {
        snprintf(host, sizeof(host), "%s", md_redis_addr);
        colon = strrchr(host, ':');
        if (colon == NULL) {
            md_redis_retry = md_now() + 5;
            return NULL;
        }

        *colon = '\0';
        md_redis = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    }

    if (md_redis == NULL || md_redis->err
        || redisSetTimeout(md_redis, tv) != REDIS_OK)
    {
        md_log(MD_LOG_WARN, "redis %s: %s", md_redis_addr,
               md_redis ? md_redis->errstr : "no memory");
        redisFree(md_redis);
        md_redis = NULL;
        md_redis_retry = md_now() + 5;
        return NULL;
    }

    return md_redis;
}


void
md_registry_thread_stop(void)
{
    redisFree(md_redis);
    md_redis = NULL;
}


/* one command; a failure drops the link for 5 s */
static void
md_registry_run(int argc, const char **argv, const size_t *lens)
{
    redisReply    *rep;
    redisContext  *r;

    r = md_registry_link();
    if (r == NULL) {
        return;
    }

    rep = redisCommandArgv(r, argc, argv, lens);

    if (rep == NULL) {
        md_log(MD_LOG_WARN, "redis %s: %s", md_redis_addr, r->errstr);
        redisFree(md_redis);
        md_redis = NULL;
        md_redis_retry = md_now() + 5;
        return;
    }

    freeReplyObject(rep);
}


/* a command of NUL-terminated strings */
static void
md_registry_cmd(int argc, ...)
{
    int          i;
    size_t       lens[4];
    va_list      ap;
    const char  *argv[4];

    va_start(ap, argc);

    for (i = 0; i < argc && i < 4; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }

    va_end(ap);

    md_registry_run(i, argv, lens);
}


void
md_registry_call(md_call_t *c, int alive)
{
    int          i, l;
    char         value[512];
    size_t       n;

    if (md_redis_addr == NULL) {
        return;
    }

    if (!alive) {
        md_registry_cmd(3, "HDEL", md_registry_key, c->id);
        return;
    }

    n = (size_t) snprintf(value, sizeof(value), "%lld",
                          (long long) c->created_wall);

    for (l = 0; l < 2; l++) {
        for (i = 0; i < c->legs[l].nstreams && n < sizeof(value) - 8; i++) {
            n += (size_t) snprintf(value + n, sizeof(value) - n, " %u",
                                   c->legs[l].streams[i]->port);
        }
    }

    md_registry_cmd(4, "HSET", md_registry_key, c->id, value);
    md_registry_alive();
}


/* the daemon is alive: in the set of daemons, its hash's TTL renewed */
static void
md_registry_alive(void)
{
    char       ttl[32];
    md_live_t  live;

    md_conf_live(&live);

    snprintf(ttl, sizeof(ttl), "%d", live.timeout * 3 > 30
                                     ? live.timeout * 3 : 30);

    md_registry_cmd(3, "SADD", "codeb:media:daemons", md_daemon_id);
    md_registry_cmd(3, "EXPIRE", md_registry_key, ttl);
}


/* every 10 s */
void
md_registry_tick(void)
{
    static _Thread_local double  next;

    if (md_redis_addr == NULL || md_now() < next) {
        return;
    }

    next = md_now() + 10;
    md_registry_alive();
}
