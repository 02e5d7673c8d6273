/*
 * Webhook deliveries (docs/api.md "Webhooks"): events are queued in Redis
 * (they survive an nginx restart), every worker of every host claims due
 * ones once a second (a claim leases a delivery for 60 s, so no two
 * workers send it at once), sends each with libcurl in nginx's thread
 * pool (a slow receiver holds one thread, no one else), and records the
 * outcome: 2xx done; else attempts 2 to 4 after the tenant's delays (or
 * the receiver's Retry-After); 410 or 20 failures in a row pause the
 * subscription.
 *
 * Redis: codeb:webhooks:queue (sorted set "<tenant> <deliveryId>" by due
 * time, ms), P whd:<deliveryId> (the delivery, 1 day), P webhooks,
 * P whlog:<webhookId> (the last 200 attempts).
 */

#include "ngx_codeb_api.h"
#include <curl/curl.h>
#include <arpa/inet.h>
#include <dlfcn.h>


#define NGX_CODEB_WH_QUEUE      "codeb:webhooks:queue"
#define NGX_CODEB_WH_PERIOD     1000     /* ms between claims */
#define NGX_CODEB_WH_LEASE      "60000"  /* ms a claimed delivery is ours */
#define NGX_CODEB_WH_BATCH      "8"      /* deliveries per claim */
#define NGX_CODEB_WH_TIMEOUT    10       /* s for a whole attempt */


/*
 * libcurl, opened (dlopen) by the workers that send webhooks only: linked
 * into the module, its thirty-odd libraries were in every worker of every
 * configuration, and LeakSanitizer's exit-time tracer crashed now and then
 * in those workers under ./build.sh memcheck
 */
typedef struct {
    CURLcode                  (*global_init)(long flags);
    CURL                     *(*easy_init)(void);
    CURLcode                  (*easy_setopt)(CURL *curl, CURLoption option,
                                             ...);
    CURLcode                  (*easy_perform)(CURL *curl);
    CURLcode                  (*easy_getinfo)(CURL *curl, CURLINFO info,
                                              ...);
    void                      (*easy_cleanup)(CURL *curl);
    const char               *(*easy_strerror)(CURLcode rc);
    struct curl_slist        *(*slist_append)(struct curl_slist *list,
                                              const char *s);
    void                      (*slist_free_all)(struct curl_slist *list);
} ngx_codeb_curl_t;


typedef struct {
    ngx_str_t                   member;      /* "<tenant> <deliveryId>" */
    char                       *url;
    char                       *body;
    struct curl_slist          *headers;
    ngx_uint_t                  allow_private;
    /* the thread's answer */
    long                        status;      /* 0: no HTTP answer */
    long                        retry_after; /* s, or -1 */
    char                        error[CURL_ERROR_SIZE];
} ngx_codeb_wh_send_t;


static void ngx_codeb_wh_tick(ngx_event_t *ev);
static void ngx_codeb_wh_claimed(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_wh_post(redisReply *member, redisReply *delivery,
    redisReply *hook);
static void ngx_codeb_wh_send(void *data, ngx_log_t *log);
static void ngx_codeb_wh_sent(ngx_event_t *ev);
static void ngx_codeb_wh_free(ngx_codeb_wh_send_t *s);
static curl_socket_t ngx_codeb_wh_socket(void *data, curlsocktype purpose,
    struct curl_sockaddr *address);
static size_t ngx_codeb_wh_header(char *b, size_t size, size_t n,
    void *data);
static size_t ngx_codeb_wh_discard(char *b, size_t size, size_t n,
    void *data);
static char *ngx_codeb_wh_dup(u_char *s, size_t len);


/*
 * KEYS: the queue.  ARGV: now (ms), lease (ms), n.  Due deliveries of
 * active subscriptions, leased: [member, delivery, webhook] triples; the
 * others are dropped.
 */
static ngx_codeb_redis_script_t  ngx_codeb_wh_claim_script = {
    ngx_string(
        "local now = tonumber(ARGV[1])\n"
        "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now,\n"
        "                       'LIMIT', 0, tonumber(ARGV[3]))\n"
        "local out = {}\n"
        "for _, m in ipairs(due) do\n"
        "  local t, id = string.match(m, '^(%S+) (%S+)$')\n"
        "  local p = 'codeb:{' .. (t or '') .. '}:'\n"
        "  local d = t and redis.call('GET', p .. 'whd:' .. id)\n"
        "  local w = d and redis.call('HGET', p .. 'webhooks',\n"
        "                             cjson.decode(d).webhookId)\n"
        "  if w and cjson.decode(w).active then\n"
        "    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), m)\n"
        "    table.insert(out, m)\n"
        "    table.insert(out, d)\n"
        "    table.insert(out, w)\n"
        "  else\n"
        "    redis.call('ZREM', KEYS[1], m)\n"
        "    if d then redis.call('DEL', p .. 'whd:' .. id) end\n"
        "  end\n"
        "end\n"
        "return out\n"),
    ""
};

/*
 * KEYS: the queue.  ARGV: member, status (0: no answer), error, now (ms),
 * Retry-After (s, -1: none).  Records the attempt; schedules the next or
 * drops the delivery; counts the subscription's failures.
 */
static ngx_codeb_redis_script_t  ngx_codeb_wh_result_script = {
    ngx_string(
        "local t, id = string.match(ARGV[1], '^(%S+) (%S+)$')\n"
        "local p = 'codeb:{' .. t .. '}:'\n"
        "local now, status = tonumber(ARGV[4]), tonumber(ARGV[2])\n"
        "local d = redis.call('GET', p .. 'whd:' .. id)\n"
        "if not d then redis.call('ZREM', KEYS[1], ARGV[1]) return 0 end\n"
        "d = cjson.decode(d)\n"
        "d.attempt = d.attempt + 1\n"
        "local ok = status >= 200 and status < 300\n"
        "local log = p .. 'whlog:' .. d.webhookId\n"
        "redis.call('LPUSH', log, cjson.encode({deliveryId = id,\n"
        "  event = d.event, attempt = d.attempt, status = status,\n"
        "  error = ARGV[3], at = now}))\n"
        "redis.call('LTRIM', log, 0, 199)\n"
        "local w = redis.call('HGET', p .. 'webhooks', d.webhookId)\n"
        "if w then\n"
        "  w = cjson.decode(w)\n"
        "  if ok then w.failures = 0 w.lastFired = now\n"
        "  else w.failures = (w.failures or 0) + 1 end\n"
        "  if status == 410 or w.failures >= 20 then w.active = false end\n"
        "  redis.call('HSET', p .. 'webhooks', d.webhookId, cjson.encode(w))\n"
        "end\n"
        "if ok or not w or not w.active or d.attempt >= #d.retry + 1 then\n"
        "  redis.call('ZREM', KEYS[1], ARGV[1])\n"
        "  redis.call('DEL', p .. 'whd:' .. id)\n"
        "  return 1\n"
        "end\n"
        "local wait = d.retry[d.attempt]\n"
        "local ra = tonumber(ARGV[5])\n"
        "if ra and ra >= 0 then\n"
        "  wait = math.max(wait, math.min(ra, 3600) * 1000)\n"
        "end\n"
        "redis.call('SET', p .. 'whd:' .. id, cjson.encode(d), 'EX', 86400)\n"
        "redis.call('ZADD', KEYS[1], now + wait, ARGV[1])\n"
        "return 2\n"),
    ""
};


static ngx_event_t       ngx_codeb_wh_timer;
static ngx_uint_t        ngx_codeb_wh_busy;       /* a claim is out */
static ngx_codeb_curl_t  ngx_codeb_curl;


ngx_int_t
ngx_codeb_api_deliver_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_wh_claim_script)
        != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_wh_result_script)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* in each worker that serves the API: the claims start */
ngx_int_t
ngx_codeb_api_deliver_start(ngx_cycle_t *cycle)
{
    void        *lib;
    ngx_uint_t   i;

    static struct {
        char    *name;
        size_t   off;
    }  fns[] = {
        { "curl_global_init", offsetof(ngx_codeb_curl_t, global_init) },
        { "curl_easy_init", offsetof(ngx_codeb_curl_t, easy_init) },
        { "curl_easy_setopt", offsetof(ngx_codeb_curl_t, easy_setopt) },
        { "curl_easy_perform", offsetof(ngx_codeb_curl_t, easy_perform) },
        { "curl_easy_getinfo", offsetof(ngx_codeb_curl_t, easy_getinfo) },
        { "curl_easy_cleanup", offsetof(ngx_codeb_curl_t, easy_cleanup) },
        { "curl_easy_strerror", offsetof(ngx_codeb_curl_t, easy_strerror) },
        { "curl_slist_append", offsetof(ngx_codeb_curl_t, slist_append) },
        { "curl_slist_free_all", offsetof(ngx_codeb_curl_t, slist_free_all) },
        { NULL, 0 }
    };

    lib = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "codeb webhooks: dlopen(libcurl.so.4) failed: %s",
                      dlerror());
        return NGX_ERROR;
    }

    for (i = 0; fns[i].name; i++) {
        *(void **) ((u_char *) &ngx_codeb_curl + fns[i].off) =
                                                     dlsym(lib, fns[i].name);

        if (*(void **) ((u_char *) &ngx_codeb_curl + fns[i].off) == NULL) {
            ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                          "codeb webhooks: libcurl has no %s", fns[i].name);
            return NGX_ERROR;
        }
    }

    if (ngx_codeb_curl.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "codeb webhooks: curl_global_init() failed");
        return NGX_ERROR;
    }

    ngx_codeb_wh_timer.handler = ngx_codeb_wh_tick;
    ngx_codeb_wh_timer.log = cycle->log;
    ngx_codeb_wh_timer.data = cycle;
    ngx_codeb_wh_timer.cancelable = 1;

    ngx_add_timer(&ngx_codeb_wh_timer, NGX_CODEB_WH_PERIOD);

    return NGX_OK;
}


static void
ngx_codeb_wh_tick(ngx_event_t *ev)
{
    u_char                  now[NGX_INT64_LEN];
    ngx_codeb_redis_args_t  a;

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_add_timer(ev, NGX_CODEB_WH_PERIOD);

    if (ngx_codeb_wh_busy || !ngx_codeb_redis_ready()) {
        return;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_WH_QUEUE);
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%L",
                        (int64_t) ngx_codeb_now_ms()) - now);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_WH_LEASE);
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_WH_BATCH);

    if (ngx_codeb_redis_eval(&ngx_codeb_wh_claim_script, ngx_codeb_wh_claimed,
                             NULL, 1, &a)
        == NGX_OK)
    {
        ngx_codeb_wh_busy = 1;
    }
}


static void
ngx_codeb_wh_claimed(redisAsyncContext *ac, void *reply, void *data)
{
    size_t       i;
    redisReply  *rep = reply;

    ngx_codeb_wh_busy = 0;

    if (rep && rep->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb webhooks: redis: %s", rep->str);
    }

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
        return;
    }

    for (i = 0; i + 2 < rep->elements; i += 3) {
        if (ngx_codeb_wh_post(rep->element[i], rep->element[i + 1],
                              rep->element[i + 2])
            != NGX_OK)
        {
            /* left leased: tried again when the lease runs out */
            ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                          "codeb webhooks: a delivery could not be sent");
        }
    }
}


/* one claimed delivery: its request built here, sent in a thread */
static ngx_int_t
ngx_codeb_wh_post(redisReply *member, redisReply *delivery, redisReply *hook)
{
    u_char                   *p, line[128 + NGX_INT64_LEN], hex[65];
    int64_t                   attempt;
    ngx_str_t                 secret, body;
    ngx_pool_t               *pool;
    ngx_array_t              *d, *w;
    ngx_thread_task_t        *task;
    ngx_codeb_wh_send_t      *s;
    ngx_codeb_json_member_t  *url, *sec, *b, *ev, *id, *priv;

    pool = ngx_codeb_scratch();

    if (member->type != REDIS_REPLY_STRING
        || delivery->type != REDIS_REPLY_STRING
        || hook->type != REDIS_REPLY_STRING
        || ngx_codeb_json_object(pool, (u_char *) delivery->str,
                                 delivery->len, &d) != NGX_OK
        || ngx_codeb_json_object(pool, (u_char *) hook->str, hook->len, &w)
           != NGX_OK
        || ngx_codeb_json_int(d, "attempt", &attempt) != NGX_OK)
    {
        return NGX_ERROR;
    }

    url = ngx_codeb_json_get_type(w, "url", NGX_CODEB_JSON_STRING);
    sec = ngx_codeb_json_get_type(w, "secret", NGX_CODEB_JSON_STRING);
    b = ngx_codeb_json_get_type(d, "body", NGX_CODEB_JSON_STRING);
    ev = ngx_codeb_json_get_type(d, "event", NGX_CODEB_JSON_STRING);
    id = ngx_codeb_json_get_type(d, "deliveryId", NGX_CODEB_JSON_STRING);
    priv = ngx_codeb_json_get_type(d, "private", NGX_CODEB_JSON_BOOL);

    if (url == NULL || sec == NULL || b == NULL || ev == NULL || id == NULL
        || ev->str.len > 64 || id->str.len > 64)
    {
        return NGX_ERROR;
    }

    /* the task is freed by its own completion handler (ngx_codeb_wh_sent) */
    task = ngx_calloc(sizeof(ngx_thread_task_t), ngx_cycle->log);
    s = ngx_calloc(sizeof(ngx_codeb_wh_send_t), ngx_cycle->log);
    if (task == NULL || s == NULL) {
        ngx_free(task);
        ngx_free(s);
        return NGX_ERROR;
    }

    secret = sec->str;
    body = b->str;
    ngx_codeb_hmac_sha256_hex(&secret, &body, hex);

    s->url = ngx_codeb_wh_dup(url->str.data, url->str.len);
    s->body = ngx_codeb_wh_dup(body.data, body.len);
    s->member.data = (u_char *) ngx_codeb_wh_dup((u_char *) member->str,
                                                 member->len);
    s->member.len = member->len;
    s->allow_private = priv && priv->boolean;
    s->retry_after = -1;

    s->headers = ngx_codeb_curl.slist_append(NULL,
                                             "Content-Type: application/json");
    p = ngx_sprintf(line, "X-CodeB-Event: %V%Z", &ev->str);
    s->headers = ngx_codeb_curl.slist_append(s->headers, (char *) line);
    p = ngx_sprintf(line, "X-CodeB-Signature: sha256=%*s%Z", (size_t) 64,
                    hex);
    s->headers = ngx_codeb_curl.slist_append(s->headers, (char *) line);
    p = ngx_sprintf(line, "X-CodeB-Delivery-Id: %V%Z", &id->str);
    s->headers = ngx_codeb_curl.slist_append(s->headers, (char *) line);
    p = ngx_sprintf(line, "X-CodeB-Attempt: %L%Z", attempt + 1);
    s->headers = ngx_codeb_curl.slist_append(s->headers, (char *) line);
    p = ngx_sprintf(line, "X-CodeB-Timestamp: %T%Z", ngx_time());
    s->headers = ngx_codeb_curl.slist_append(s->headers, (char *) line);
    s->headers = ngx_codeb_curl.slist_append(s->headers, "Expect:");
    (void) p;

    if (s->url == NULL || s->body == NULL || s->member.data == NULL
        || s->headers == NULL)
    {
        ngx_codeb_wh_free(s);
        ngx_free(task);
        return NGX_ERROR;
    }

    task->ctx = s;
    task->handler = ngx_codeb_wh_send;
    task->event.handler = ngx_codeb_wh_sent;
    task->event.data = task;
    task->event.log = ngx_cycle->log;

    if (ngx_thread_task_post(ngx_codeb_api_thread_pool(), task) != NGX_OK) {
        ngx_codeb_wh_free(s);
        ngx_free(task);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* in a thread of the pool: one POST, nothing of nginx's memory touched */
static void
ngx_codeb_wh_send(void *data, ngx_log_t *log)
{
    CURL                 *curl;
    CURLcode              rc;
    CURLcode            (*set)(CURL *curl, CURLoption option, ...);
    ngx_codeb_wh_send_t  *s = data;

    curl = ngx_codeb_curl.easy_init();
    if (curl == NULL) {
        (void) ngx_cpystrn((u_char *) s->error, (u_char *) "no memory",
                           sizeof(s->error));
        return;
    }

    set = ngx_codeb_curl.easy_setopt;

    set(curl, CURLOPT_URL, s->url);
    set(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    set(curl, CURLOPT_POSTFIELDS, s->body);
    set(curl, CURLOPT_HTTPHEADER, s->headers);
    set(curl, CURLOPT_NOSIGNAL, 1L);
    set(curl, CURLOPT_TIMEOUT, (long) NGX_CODEB_WH_TIMEOUT);
    set(curl, CURLOPT_CONNECTTIMEOUT, 5L);
    set(curl, CURLOPT_FOLLOWLOCATION, 0L);
    set(curl, CURLOPT_USERAGENT, "CodeB-Webhooks/1");
    set(curl, CURLOPT_ERRORBUFFER, s->error);
    set(curl, CURLOPT_WRITEFUNCTION, ngx_codeb_wh_discard);
    set(curl, CURLOPT_HEADERFUNCTION, ngx_codeb_wh_header);
    set(curl, CURLOPT_HEADERDATA, s);
    set(curl, CURLOPT_OPENSOCKETFUNCTION, ngx_codeb_wh_socket);
    set(curl, CURLOPT_OPENSOCKETDATA, s);

    rc = ngx_codeb_curl.easy_perform(curl);

    if (rc == CURLE_OK) {
        ngx_codeb_curl.easy_getinfo(curl, CURLINFO_RESPONSE_CODE,
                                    &s->status);
        s->error[0] = '\0';

    } else if (s->error[0] == '\0') {
        (void) ngx_cpystrn((u_char *) s->error,
                           (u_char *) ngx_codeb_curl.easy_strerror(rc),
                           sizeof(s->error));
    }

    ngx_codeb_curl.easy_cleanup(curl);
}


/* back on the event loop: the attempt recorded */
static void
ngx_codeb_wh_sent(ngx_event_t *ev)
{
    u_char                  now[NGX_INT64_LEN], st[NGX_INT64_LEN],
                            ra[NGX_INT64_LEN];
    ngx_thread_task_t      *task = ev->data;
    ngx_codeb_wh_send_t    *s = task->ctx;
    ngx_codeb_redis_args_t  a;

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, NGX_CODEB_WH_QUEUE);
    ngx_codeb_redis_arg_str(&a, &s->member);
    ngx_codeb_redis_arg(&a, st, ngx_sprintf(st, "%l", s->status) - st);
    ngx_codeb_redis_arg(&a, s->error, ngx_strlen(s->error));
    ngx_codeb_redis_arg(&a, now, ngx_sprintf(now, "%L",
                        (int64_t) ngx_codeb_now_ms()) - now);
    ngx_codeb_redis_arg(&a, ra, ngx_sprintf(ra, "%l", s->retry_after) - ra);

    /* Redis down: the lease runs out and the attempt is made again */
    (void) ngx_codeb_redis_eval(&ngx_codeb_wh_result_script, NULL, NULL, 1,
                                &a);

    ngx_codeb_wh_free(s);
    ngx_free(task);
}


static void
ngx_codeb_wh_free(ngx_codeb_wh_send_t *s)
{
    if (s->headers) {
        ngx_codeb_curl.slist_free_all(s->headers);
    }
    ngx_free(s->url);
    ngx_free(s->body);
    ngx_free(s->member.data);
    ngx_free(s);
}


/*
 * the socket of a connection: refused for loopback, private, link-local
 * and unspecified addresses unless the tenant allows them (no requests
 * to the inside through a webhook URL, whatever its name resolves to)
 */
static curl_socket_t
ngx_codeb_wh_socket(void *data, curlsocktype purpose,
    struct curl_sockaddr *address)
{
    uint32_t              ip;
    u_char               *a6;
    ngx_codeb_wh_send_t  *s = data;

    if (!s->allow_private) {
        if (address->family == AF_INET) {
            ip = ntohl(((struct sockaddr_in *) &address->addr)
                       ->sin_addr.s_addr);

            if ((ip >> 24) == 127 || (ip >> 24) == 10 || (ip >> 24) == 0
                || (ip >> 20) == 0xac1 || (ip >> 16) == 0xc0a8
                || (ip >> 16) == 0xa9fe || (ip >> 22) == 0x191)
            {
                (void) ngx_cpystrn((u_char *) s->error, (u_char *)
                                   "private or loopback address refused",
                                   sizeof(s->error));
                return CURL_SOCKET_BAD;
            }

        } else if (address->family == AF_INET6) {
            a6 = ((struct sockaddr_in6 *) &address->addr)->sin6_addr.s6_addr;

            if (IN6_IS_ADDR_LOOPBACK((struct in6_addr *) a6)
                || IN6_IS_ADDR_UNSPECIFIED((struct in6_addr *) a6)
                || IN6_IS_ADDR_LINKLOCAL((struct in6_addr *) a6)
                || IN6_IS_ADDR_V4MAPPED((struct in6_addr *) a6)
                || (a6[0] & 0xfe) == 0xfc)
            {
                (void) ngx_cpystrn((u_char *) s->error, (u_char *)
                                   "private or loopback address refused",
                                   sizeof(s->error));
                return CURL_SOCKET_BAD;
            }
        }
    }

    return socket(address->family, address->socktype, address->protocol);
}


/* Retry-After: <seconds> of the answer */
static size_t
ngx_codeb_wh_header(char *b, size_t size, size_t n, void *data)
{
    size_t                len;
    ngx_codeb_wh_send_t  *s = data;

    len = size * n;

    if (len > 12 && ngx_strncasecmp((u_char *) b, (u_char *) "Retry-After:",
                                    12) == 0)
    {
        s->retry_after = strtol(b + 12, NULL, 10);
    }

    return len;
}


static size_t
ngx_codeb_wh_discard(char *b, size_t size, size_t n, void *data)
{
    return size * n;
}


static char *
ngx_codeb_wh_dup(u_char *s, size_t len)
{
    char  *p;

    p = ngx_alloc(len + 1, ngx_cycle->log);
    if (p) {
        ngx_memcpy(p, s, len);
        p[len] = '\0';
    }

    return p;
}
