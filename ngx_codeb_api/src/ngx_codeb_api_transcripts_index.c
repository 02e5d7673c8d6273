/*
 * The index of the transcripts (docs/api.md "Transcripts"): the JSON files
 * of each tenant's codeb_transcripts_dir in Redis.
 *
 * It runs in one worker per host (ngx_worker 0): inotify on each tenant's
 * directory, its descriptor on nginx's event loop, and a full scan
 * whenever the Redis links come up (worker start, reconnect) or the
 * kernel's event queue overflowed, which adds what is missing or changed
 * and drops what vanished.  Reading and parsing a file, and listing the
 * directory, happen in nginx's thread pool.  A tenant's operations (scan,
 * load a file, drop a file) run one at a time, in order.
 *
 * Redis (P = codeb:{tenant}:):
 *   P transcripts        hash  callId -> summary JSON (the list item)
 *   P transcripts:t      zset  callId by startedUtc (epoch ms; else mtime)
 *   P transcripts:body   hash  callId -> the whole transcript JSON
 *   P transcripts:files  hash  file name -> "<mtime ms> <size> <callId>"
 * They change together, in scripts.
 */

#include "ngx_codeb_api.h"
#include <sys/inotify.h>
#include <dirent.h>
#include <yajl/yajl_tree.h>


#define NGX_CODEB_TR_FILE_MAX    (1024 * 1024)  /* bytes of one file */
#define NGX_CODEB_TR_NAME_MAX    200            /* bytes of a file name */
#define NGX_CODEB_TR_FILES_MAX   100000         /* files of one scan */
#define NGX_CODEB_TR_OPS_MAX     10000          /* waiting; then a scan */

#define NGX_CODEB_TR_SCAN        0
#define NGX_CODEB_TR_LOAD        1
#define NGX_CODEB_TR_DROP        2


typedef struct ngx_codeb_tr_dir_s  ngx_codeb_tr_dir_t;

/* one operation of the indexer; its pool is the thread's while it runs */
typedef struct {
    ngx_queue_t                 queue;
    ngx_uint_t                  kind;        /* NGX_CODEB_TR_SCAN, ... */
    ngx_pool_t                 *pool;
    ngx_str_t                   name;        /* the file's, NUL-terminated */
    ngx_str_t                   path;        /* dir/name, NUL-terminated */
    char                       *skip;        /* why a file is not indexed */
    ngx_uint_t                  gone;        /* the file is not there */
    ngx_str_t                   call_id;
    ngx_str_t                   stamp;       /* "<mtime ms> <size>" */
    ngx_str_t                   score;       /* epoch ms */
    ngx_str_t                   summary;
    ngx_str_t                   body;
    ngx_str_t                   listing;     /* scan: "name stamp\n"... */
} ngx_codeb_tr_op_t;

struct ngx_codeb_tr_dir_s {
    ngx_codeb_api_srv_conf_t   *conf;
    ngx_connection_t           *conn;        /* the inotify descriptor */
    ngx_queue_t                 ops;         /* waiting, in order */
    ngx_uint_t                  nops;
    ngx_codeb_tr_op_t          *busy;        /* in a thread or at Redis */
    ngx_thread_task_t          *task;        /* of busy */
    ngx_str_t                   keys[4];     /* the index's Redis keys */
    unsigned                    closed:1;
};


/*
 * drop(f): takes file f out of the index, and its callId when that is
 * still the file's.  KEYS: P transcripts, P transcripts:t,
 * P transcripts:files, P transcripts:body.
 */
#define NGX_CODEB_TR_LUA_DROP                                                \
    "local function drop(f)\n"                                               \
    "  local v = redis.call('HGET', KEYS[3], f)\n"                           \
    "  if not v then return 0 end\n"                                         \
    "  redis.call('HDEL', KEYS[3], f)\n"                                     \
    "  local id = v:match('^%d+ %d+ (.*)$')\n"                               \
    "  local s = id and redis.call('HGET', KEYS[1], id)\n"                   \
    "  if not s or cjson.decode(s).file ~= f then return 0 end\n"            \
    "  redis.call('HDEL', KEYS[1], id)\n"                                    \
    "  redis.call('ZREM', KEYS[2], id)\n"                                    \
    "  redis.call('HDEL', KEYS[4], id)\n"                                    \
    "  return 1\n"                                                           \
    "end\n"

/*
 * ARGV: callId, file, stamp, score, summary, body.  1 when the callId is
 * new to the index (transcript.saved), else 0.
 */
static ngx_codeb_redis_script_t  ngx_codeb_tr_put_script = {
    ngx_string(
        NGX_CODEB_TR_LUA_DROP
        "local v = redis.call('HGET', KEYS[3], ARGV[2])\n"
        "if v and v:match('^%d+ %d+ (.*)$') ~= ARGV[1] then\n"
        "  drop(ARGV[2])\n"
        "end\n"
        "local new = redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0\n"
        "redis.call('HSET', KEYS[3], ARGV[2], ARGV[3] .. ' ' .. ARGV[1])\n"
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[5])\n"
        "redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])\n"
        "redis.call('HSET', KEYS[4], ARGV[1], ARGV[6])\n"
        "if new then return 1 end\n"
        "return 0\n"),
    ""
};

/* ARGV: file.  1 when a transcript left the index */
static ngx_codeb_redis_script_t  ngx_codeb_tr_drop_script = {
    ngx_string(
        NGX_CODEB_TR_LUA_DROP
        "return drop(ARGV[1])\n"),
    ""
};

/*
 * ARGV: the directory's listing, lines "name mtime size".  Drops the
 * files not listed; returns the names whose stamp the index lacks.
 */
static ngx_codeb_redis_script_t  ngx_codeb_tr_scan_script = {
    ngx_string(
        NGX_CODEB_TR_LUA_DROP
        "local seen, need = {}, {}\n"
        "for name, st in string.gmatch(ARGV[1], '([^ \\n]+) ([^\\n]+)\\n')"
        " do\n"
        "  seen[name] = true\n"
        "  local v = redis.call('HGET', KEYS[3], name)\n"
        "  if not v or v:sub(1, #st + 1) ~= st .. ' ' then\n"
        "    need[#need + 1] = name\n"
        "  end\n"
        "end\n"
        "for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do\n"
        "  if not seen[f] then drop(f) end\n"
        "end\n"
        "return need\n"),
    ""
};

/* the members of a file copied into its summary (strings and numbers) */
static char  *ngx_codeb_tr_fields[] = {
    "callId", "callerSource", "startedUtc", "endedUtc", "durationSec",
    "rule", "phone", "displayName", "caller", "number", "outcome", "voice",
    "language", "model", "tokensTotal", "tokensPrompt", NULL
};


static ngx_int_t ngx_codeb_tr_watch(ngx_cycle_t *cycle,
    ngx_codeb_api_srv_conf_t *conf);
static void ngx_codeb_tr_up(void);
static void ngx_codeb_tr_notify(ngx_event_t *rev);
static void ngx_codeb_tr_close(ngx_codeb_tr_dir_t *dir);
static void ngx_codeb_tr_flush(ngx_codeb_tr_dir_t *dir);
static void ngx_codeb_tr_cleanup(void *data);
static void ngx_codeb_tr_add(ngx_codeb_tr_dir_t *dir, ngx_uint_t kind,
    u_char *name, size_t len);
static void ngx_codeb_tr_next(ngx_codeb_tr_dir_t *dir);
static void ngx_codeb_tr_done(ngx_codeb_tr_dir_t *dir);
static void ngx_codeb_tr_load_thread(void *data, ngx_log_t *log);
static void ngx_codeb_tr_scan_thread(void *data, ngx_log_t *log);
static void ngx_codeb_tr_thread_done(ngx_event_t *ev);
static ngx_int_t ngx_codeb_tr_eval(ngx_codeb_tr_dir_t *dir,
    ngx_codeb_redis_script_t *script, ngx_str_t *args, ngx_uint_t n);
static void ngx_codeb_tr_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_tr_saved(ngx_codeb_tr_dir_t *dir,
    ngx_codeb_tr_op_t *op);
static ngx_int_t ngx_codeb_tr_summary(ngx_codeb_tr_op_t *op,
    ngx_array_t *m, struct stat *st);
static ngx_int_t ngx_codeb_tr_copy(ngx_pool_t *pool, yajl_gen g,
    ngx_str_t *out);
static ngx_int_t ngx_codeb_tr_name(u_char *name, size_t len);


/* the directories this worker indexes (ngx_codeb_tr_dir_t *) */
static ngx_array_t  *ngx_codeb_tr_dirs;


ngx_int_t
ngx_codeb_api_transcripts_index_init(ngx_conf_t *cf)
{
    if (ngx_codeb_redis_add_script(cf, &ngx_codeb_tr_put_script) != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_tr_drop_script)
           != NGX_OK
        || ngx_codeb_redis_add_script(cf, &ngx_codeb_tr_scan_script)
           != NGX_OK
        || ngx_codeb_redis_on_up(cf, ngx_codeb_tr_up) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * worker start: worker 0 watches every tenant's codeb_transcripts_dir; a
 * directory that cannot be watched is logged and left out (the worker
 * runs on).  The first scan comes when Redis is up (ngx_codeb_tr_up).
 */
ngx_int_t
ngx_codeb_api_transcripts_start(ngx_cycle_t *cycle)
{
    ngx_uint_t                  i;
    ngx_array_t                *confs;
    ngx_pool_cleanup_t         *cln;
    ngx_codeb_api_srv_conf_t  **c;

    ngx_codeb_tr_dirs = NULL;

    if (ngx_worker != 0) {
        return NGX_OK;
    }

    confs = ngx_codeb_api_confs();
    if (confs == NULL) {
        return NGX_OK;
    }

    c = confs->elts;

    for (i = 0; i < confs->nelts; i++) {
        if (c[i]->transcripts_dir.len == 0) {
            continue;
        }

        if (ngx_codeb_tr_dirs == NULL) {
            ngx_codeb_tr_dirs = ngx_array_create(cycle->pool, 2,
                                                 sizeof(ngx_codeb_tr_dir_t *));
            cln = ngx_pool_cleanup_add(cycle->pool, 0);
            if (ngx_codeb_tr_dirs == NULL || cln == NULL) {
                return NGX_ERROR;
            }

            cln->handler = ngx_codeb_tr_cleanup;
            cln->data = NULL;
        }

        if (ngx_codeb_tr_watch(cycle, c[i]) == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* inotify on conf's directory; NGX_DECLINED (logged) when it cannot be */
static ngx_int_t
ngx_codeb_tr_watch(ngx_cycle_t *cycle, ngx_codeb_api_srv_conf_t *conf)
{
    int                   fd;
    ngx_uint_t            i;
    ngx_connection_t     *c;
    ngx_codeb_tr_dir_t   *dir, **d;

    static char          *kinds[] = {
        NGX_CODEB_API_TR_SUMMARY, "transcripts:t", "transcripts:files",
        NGX_CODEB_API_TR_BODY
    };

    dir = ngx_pcalloc(cycle->pool, sizeof(ngx_codeb_tr_dir_t));
    if (dir == NULL) {
        return NGX_ERROR;
    }

    dir->conf = conf;
    ngx_queue_init(&dir->ops);

    for (i = 0; i < 4; i++) {
        if (ngx_codeb_key(cycle->pool, &conf->tenant->name, kinds[i], NULL,
                          0, &dir->keys[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "codeb transcripts: inotify_init1() failed");
        return NGX_DECLINED;
    }

    if (inotify_add_watch(fd, (char *) conf->transcripts_dir.data,
                          IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE
                          | IN_MOVED_FROM | IN_ONLYDIR)
        == -1)
    {
        ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                      "codeb transcripts: cannot watch \"%V\" of tenant "
                      "\"%V\"; its transcripts are not indexed",
                      &conf->transcripts_dir, &conf->tenant->name);
        (void) close(fd);
        return NGX_DECLINED;
    }

    c = ngx_get_connection(fd, cycle->log);
    if (c == NULL) {
        (void) close(fd);
        return NGX_ERROR;
    }

    c->data = dir;
    c->read->handler = ngx_codeb_tr_notify;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    /* closed (ngx_close_idle_connections) when the worker shuts down */
    c->idle = 1;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT) != NGX_OK) {
        ngx_free_connection(c);
        (void) close(fd);
        return NGX_ERROR;
    }

    dir->conn = c;

    d = ngx_array_push(ngx_codeb_tr_dirs);
    if (d == NULL) {
        return NGX_ERROR;
    }

    *d = dir;

    return NGX_OK;
}


/* Redis is up (start, reconnect): every directory is scanned again */
static void
ngx_codeb_tr_up(void)
{
    ngx_uint_t            i;
    ngx_codeb_tr_dir_t  **d;

    if (ngx_codeb_tr_dirs == NULL) {
        return;
    }

    d = ngx_codeb_tr_dirs->elts;

    for (i = 0; i < ngx_codeb_tr_dirs->nelts; i++) {
        ngx_codeb_tr_add(d[i], NGX_CODEB_TR_SCAN, NULL, 0);
        ngx_codeb_tr_next(d[i]);
    }
}


/* the inotify descriptor is readable, or the worker shuts down */
static void
ngx_codeb_tr_notify(ngx_event_t *rev)
{
    u_char                       *p, *end;
    size_t                        len;
    ssize_t                       n;
    ngx_err_t                     err;
    ngx_connection_t             *c;
    ngx_codeb_tr_dir_t           *dir;
    const struct inotify_event   *ev;

    char  buf[8192]
          __attribute__ ((aligned(__alignof__(struct inotify_event))));

    c = rev->data;
    dir = c->data;

    if (c->close) {
        ngx_codeb_tr_close(dir);
        return;
    }

    for ( ;; ) {
        n = read(c->fd, buf, sizeof(buf));

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            if (err != NGX_EAGAIN) {
                ngx_log_error(NGX_LOG_ALERT, c->log, err,
                              "codeb transcripts: inotify read() failed");
            }

            break;
        }

        if (n == 0) {
            break;
        }

        end = (u_char *) buf + n;

        for (p = (u_char *) buf; p < end;
             p += sizeof(struct inotify_event) + ev->len)
        {
            ev = (const struct inotify_event *) p;

            if (ev->mask & IN_Q_OVERFLOW) {
                ngx_codeb_tr_add(dir, NGX_CODEB_TR_SCAN, NULL, 0);
                continue;
            }

            if (ev->mask & IN_IGNORED) {
                ngx_log_error(NGX_LOG_ERR, c->log, 0,
                              "codeb transcripts: \"%V\" is no longer "
                              "watched (removed?)",
                              &dir->conf->transcripts_dir);
                continue;
            }

            if (ev->len == 0) {
                continue;
            }

            len = ngx_strnlen((u_char *) ev->name, ev->len);

            if (ngx_codeb_tr_name((u_char *) ev->name, len) != NGX_OK) {
                continue;
            }

            ngx_codeb_tr_add(dir, (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
                                  ? NGX_CODEB_TR_LOAD : NGX_CODEB_TR_DROP,
                             (u_char *) ev->name, len);
        }
    }

    ngx_codeb_tr_next(dir);
}


/* the watch ends: the descriptor closed, waiting operations dropped */
static void
ngx_codeb_tr_close(ngx_codeb_tr_dir_t *dir)
{
    dir->closed = 1;

    if (dir->conn) {
        ngx_close_connection(dir->conn);
        dir->conn = NULL;
    }

    ngx_codeb_tr_flush(dir);
}


/* the waiting operations dropped (a scan is to catch up with them) */
static void
ngx_codeb_tr_flush(ngx_codeb_tr_dir_t *dir)
{
    ngx_queue_t        *q;
    ngx_codeb_tr_op_t  *op;

    while (!ngx_queue_empty(&dir->ops)) {
        q = ngx_queue_head(&dir->ops);
        ngx_queue_remove(q);
        op = ngx_queue_data(q, ngx_codeb_tr_op_t, queue);
        ngx_destroy_pool(op->pool);
    }

    dir->nops = 0;
}


/*
 * the worker's cycle pool goes (exit): the threads are joined and the
 * Redis links freed by now, so nothing runs an operation any more
 */
static void
ngx_codeb_tr_cleanup(void *data)
{
    ngx_uint_t            i;
    ngx_codeb_tr_dir_t  **d;

    if (ngx_codeb_tr_dirs == NULL) {
        return;
    }

    d = ngx_codeb_tr_dirs->elts;

    for (i = 0; i < ngx_codeb_tr_dirs->nelts; i++) {
        ngx_codeb_tr_close(d[i]);

        if (d[i]->busy) {
            ngx_destroy_pool(d[i]->busy->pool);
            d[i]->busy = NULL;
        }
    }

    ngx_codeb_tr_dirs = NULL;
}


/*
 * queues an operation (name: the file's, len <= NGX_CODEB_TR_NAME_MAX);
 * one already waiting for the same file (or a scan) is not repeated; too
 * many waiting become one scan
 */
static void
ngx_codeb_tr_add(ngx_codeb_tr_dir_t *dir, ngx_uint_t kind, u_char *name,
    size_t len)
{
    ngx_str_t          *d;
    ngx_pool_t         *pool;
    ngx_queue_t        *q;
    ngx_codeb_tr_op_t  *op;

    if (dir->closed) {
        return;
    }

    for (q = ngx_queue_head(&dir->ops);
         q != ngx_queue_sentinel(&dir->ops);
         q = ngx_queue_next(q))
    {
        op = ngx_queue_data(q, ngx_codeb_tr_op_t, queue);

        if (op->kind == NGX_CODEB_TR_SCAN && kind == NGX_CODEB_TR_SCAN) {
            return;
        }

        if (op->kind == kind && op->name.len == len
            && ngx_strncmp(op->name.data, name, len) == 0)
        {
            /* a later event of the file comes after the others */
            ngx_queue_remove(q);
            ngx_queue_insert_tail(&dir->ops, q);
            return;
        }
    }

    if (dir->nops >= NGX_CODEB_TR_OPS_MAX && kind != NGX_CODEB_TR_SCAN) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "codeb transcripts: more than %d changes waiting in "
                      "\"%V\"; scanning it instead", NGX_CODEB_TR_OPS_MAX,
                      &dir->conf->transcripts_dir);
        ngx_codeb_tr_flush(dir);
        kind = NGX_CODEB_TR_SCAN;
    }

    pool = ngx_create_pool(1024, ngx_cycle->log);
    if (pool == NULL) {
        return;
    }

    op = ngx_pcalloc(pool, sizeof(ngx_codeb_tr_op_t));
    if (op == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    op->kind = kind;
    op->pool = pool;
    d = &dir->conf->transcripts_dir;

    if (kind != NGX_CODEB_TR_SCAN) {
        /* "dir/name" and the name in it, both NUL-terminated */
        op->path.data = ngx_pnalloc(pool, d->len + len + 2);
        if (op->path.data == NULL) {
            ngx_destroy_pool(pool);
            return;
        }

        op->path.len = ngx_sprintf(op->path.data, "%V/%*s%Z", d, len, name)
                       - op->path.data - 1;
        op->name.data = op->path.data + d->len + 1;
        op->name.len = len;

    } else {
        op->path = *d;
    }

    ngx_queue_insert_tail(&dir->ops, &op->queue);
    dir->nops++;
}


/* starts the next waiting operation unless one runs */
static void
ngx_codeb_tr_next(ngx_codeb_tr_dir_t *dir)
{
    ngx_queue_t        *q;
    ngx_codeb_tr_op_t  *op;
    ngx_thread_task_t  *task;

    while (dir->busy == NULL && !ngx_queue_empty(&dir->ops)) {

        if (!ngx_codeb_redis_ready()) {
            /* the scan when Redis is up again catches up */
            ngx_codeb_tr_flush(dir);
            return;
        }

        q = ngx_queue_head(&dir->ops);
        ngx_queue_remove(q);
        dir->nops--;
        op = ngx_queue_data(q, ngx_codeb_tr_op_t, queue);
        dir->busy = op;

        if (op->kind == NGX_CODEB_TR_DROP) {
            if (ngx_codeb_tr_eval(dir, &ngx_codeb_tr_drop_script, &op->name,
                                  1)
                != NGX_OK)
            {
                ngx_codeb_tr_done(dir);
            }

            continue;
        }

        task = ngx_thread_task_alloc(op->pool, 0);
        if (task == NULL) {
            ngx_codeb_tr_done(dir);
            continue;
        }

        task->ctx = op;
        task->handler = op->kind == NGX_CODEB_TR_SCAN
                        ? ngx_codeb_tr_scan_thread
                        : ngx_codeb_tr_load_thread;
        task->event.handler = ngx_codeb_tr_thread_done;
        task->event.data = dir;
        task->event.log = ngx_cycle->log;

        if (ngx_thread_task_post(ngx_codeb_api_thread_pool(), task)
            != NGX_OK)
        {
            ngx_codeb_tr_done(dir);
            continue;
        }
    }
}


/* the running operation is over */
static void
ngx_codeb_tr_done(ngx_codeb_tr_dir_t *dir)
{
    if (dir->busy) {
        ngx_destroy_pool(dir->busy->pool);
        dir->busy = NULL;
    }
}


/*
 * in a thread: reads and checks op->path (a regular file, not a link, at
 * most NGX_CODEB_TR_FILE_MAX bytes, one JSON object with a string callId
 * of our form) into op->body (minified), op->summary, op->score and
 * op->stamp; else op->skip or op->gone.  Uses only op->pool, which the
 * event loop leaves alone meanwhile.
 */
static void
ngx_codeb_tr_load_thread(void *data, ngx_log_t *log)
{
    ngx_codeb_tr_op_t  *op = data;

    int                       fd;
    u_char                   *buf;
    size_t                    got;
    ssize_t                   n;
    yajl_gen                  g;
    ngx_int_t                 rc;
    ngx_array_t              *m;
    struct stat               st;
    ngx_codeb_json_member_t  *id;

    fd = open((char *) op->path.data,
              O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd == -1) {
        op->gone = (errno == ENOENT);
        op->skip = "cannot be opened (a link?)";
        return;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        (void) close(fd);
        op->skip = "is not a regular file";
        return;
    }

    if (st.st_size > NGX_CODEB_TR_FILE_MAX) {
        (void) close(fd);
        op->skip = "is larger than 1 MiB";
        return;
    }

    buf = ngx_pnalloc(op->pool, (size_t) st.st_size + 1);
    if (buf == NULL) {
        (void) close(fd);
        op->skip = "could not be read (no memory)";
        return;
    }

    for (got = 0; got < (size_t) st.st_size; got += n) {
        n = read(fd, buf + got, (size_t) st.st_size - got);

        if (n == -1 && errno == EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            break;
        }
    }

    (void) close(fd);

    /* validated and minified by a generator of this thread's own */

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        op->skip = "could not be read (no memory)";
        return;
    }

    rc = ngx_codeb_gen_json(g, buf, got);

    if (rc == NGX_OK) {
        rc = ngx_codeb_tr_copy(op->pool, g, &op->body);
    }

    yajl_gen_free(g);

    if (rc != NGX_OK
        || ngx_codeb_json_object(op->pool, op->body.data, op->body.len, &m)
           != NGX_OK)
    {
        op->skip = "is not a JSON object";
        return;
    }

    id = ngx_codeb_json_get_type(m, "callId", NGX_CODEB_JSON_STRING);

    if (id == NULL || ngx_codeb_api_call_id(&id->str) != NGX_OK) {
        op->skip = "has no string callId of 1 to 128 [A-Za-z0-9._:-]";
        return;
    }

    op->call_id = id->str;

    if (ngx_codeb_tr_summary(op, m, &st) != NGX_OK) {
        op->skip = "could not be indexed (no memory)";
    }
}


/* op->summary (the list item), op->score and op->stamp of a parsed file */
static ngx_int_t
ngx_codeb_tr_summary(ngx_codeb_tr_op_t *op, ngx_array_t *m, struct stat *st)
{
    char                     *turns;
    u_char                   *p;
    int64_t                   mtime, started;
    yajl_val                  t;
    yajl_gen                  g;
    ngx_int_t                 rc;
    ngx_uint_t                i;
    ngx_codeb_json_member_t  *j;

    mtime = (int64_t) st->st_mtim.tv_sec * 1000
            + st->st_mtim.tv_nsec / 1000000;

    g = yajl_gen_alloc(NULL);
    if (g == NULL) {
        return NGX_ERROR;
    }

    yajl_gen_map_open(g);

    for (i = 0; ngx_codeb_tr_fields[i]; i++) {
        j = ngx_codeb_json_get(m, ngx_codeb_tr_fields[i]);

        if (j && j->type == NGX_CODEB_JSON_STRING) {
            ngx_codeb_gen_vstr(g, ngx_codeb_tr_fields[i], &j->str);

        } else if (j && j->type == NGX_CODEB_JSON_NUMBER) {
            ngx_codeb_gen_key(g, ngx_codeb_tr_fields[i]);
            yajl_gen_number(g, (char *) j->raw.data, j->raw.len);
        }
    }

    ngx_codeb_gen_time(g, "mtimeUtc", (uint64_t) mtime);

    /* turnCount: the turns, or the file's own count */

    j = ngx_codeb_json_get_type(m, "turns", NGX_CODEB_JSON_ARRAY);
    turns = j ? ngx_pnalloc(op->pool, j->raw.len + 1) : NULL;

    if (turns) {
        /* the body came from the generator: 128 levels at most */
        ngx_memcpy(turns, j->raw.data, j->raw.len);
        turns[j->raw.len] = '\0';
        t = yajl_tree_parse(turns, NULL, 0);

        if (YAJL_IS_ARRAY(t)) {
            ngx_codeb_gen_int(g, "turnCount", (int64_t) t->u.array.len);
        }

        yajl_tree_free(t);

    } else if ((j = ngx_codeb_json_get_type(m, "turnCount",
                                            NGX_CODEB_JSON_NUMBER)))
    {
        ngx_codeb_gen_key(g, "turnCount");
        yajl_gen_number(g, (char *) j->raw.data, j->raw.len);
    }

    ngx_codeb_gen_int(g, "size", (int64_t) st->st_size);
    ngx_codeb_gen_vstr(g, "file", &op->name);
    yajl_gen_map_close(g);

    rc = ngx_codeb_tr_copy(op->pool, g, &op->summary);
    yajl_gen_free(g);

    if (rc != NGX_OK) {
        return NGX_ERROR;
    }

    j = ngx_codeb_json_get_type(m, "startedUtc", NGX_CODEB_JSON_STRING);

    if (j == NULL
        || ngx_codeb_parse_time(j->str.data, j->str.len, &started) != NGX_OK)
    {
        started = mtime;
    }

    p = ngx_pnalloc(op->pool, 3 * NGX_INT64_LEN + 2);
    if (p == NULL) {
        return NGX_ERROR;
    }

    op->score.data = p;
    op->score.len = ngx_sprintf(p, "%L", started) - p;
    op->stamp.data = p + op->score.len;
    op->stamp.len = ngx_sprintf(op->stamp.data, "%L %O", mtime, st->st_size)
                    - op->stamp.data;

    return NGX_OK;
}


/* the text of generator g copied into pool */
static ngx_int_t
ngx_codeb_tr_copy(ngx_pool_t *pool, yajl_gen g, ngx_str_t *out)
{
    size_t          len;
    const u_char   *buf;

    if (yajl_gen_get_buf(g, &buf, &len) != yajl_gen_status_ok) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, buf, len);
    out->len = len;

    return NGX_OK;
}


/*
 * in a thread: op->listing, a line "name mtime size" for each regular
 * file of the directory whose name we index (the first
 * NGX_CODEB_TR_FILES_MAX); op->skip when the directory cannot be read
 */
static void
ngx_codeb_tr_scan_thread(void *data, ngx_log_t *log)
{
    ngx_codeb_tr_op_t  *op = data;

    DIR            *dp;
    u_char         *p, *last, *nbuf;
    size_t          len, size;
    ngx_uint_t      n;
    struct stat     st;
    struct dirent  *de;

    dp = opendir((char *) op->path.data);
    if (dp == NULL) {
        op->skip = "cannot be read";
        return;
    }

    size = 64 * 1024;
    p = ngx_pnalloc(op->pool, size);
    last = p;
    op->listing.data = p;
    n = 0;

    while (p && (de = readdir(dp)) != NULL && n < NGX_CODEB_TR_FILES_MAX) {
        len = ngx_strlen(de->d_name);

        if (ngx_codeb_tr_name((u_char *) de->d_name, len) != NGX_OK
            || fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1
            || !S_ISREG(st.st_mode))
        {
            continue;
        }

        if ((size_t) (p + size - last) < len + 2 * NGX_INT64_LEN + 3) {
            nbuf = ngx_pnalloc(op->pool, size * 2);
            if (nbuf == NULL) {
                p = NULL;
                break;
            }

            ngx_memcpy(nbuf, p, last - p);
            last = nbuf + (last - p);
            p = nbuf;
            size *= 2;
        }

        last = ngx_sprintf(last, "%*s %L %O\n", len, de->d_name,
                           (int64_t) st.st_mtim.tv_sec * 1000
                           + st.st_mtim.tv_nsec / 1000000,
                           st.st_size);
        n++;
    }

    (void) closedir(dp);

    if (p == NULL) {
        op->skip = "could not be listed (no memory)";
        return;
    }

    op->listing.data = p;
    op->listing.len = last - p;
}


/* back from the thread: the operation goes on in Redis */
static void
ngx_codeb_tr_thread_done(ngx_event_t *ev)
{
    ngx_str_t            args[6];
    ngx_int_t            rc;
    ngx_codeb_tr_op_t   *op;
    ngx_codeb_tr_dir_t  *dir = ev->data;

    op = dir->busy;

    if (op == NULL) {
        return;
    }

    if (dir->closed) {
        ngx_codeb_tr_done(dir);
        return;
    }

    if (op->kind == NGX_CODEB_TR_SCAN) {
        if (op->skip) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                          "codeb transcripts: \"%V\" %s",
                          &dir->conf->transcripts_dir, op->skip);
            rc = NGX_ERROR;

        } else {
            rc = ngx_codeb_tr_eval(dir, &ngx_codeb_tr_scan_script,
                                   &op->listing, 1);
        }

    } else if (op->skip) {
        /* whatever the file held before leaves the index */
        if (!op->gone) {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "codeb transcripts: \"%V\" skipped: it %s",
                          &op->name, op->skip);
        }

        op->kind = NGX_CODEB_TR_DROP;
        rc = ngx_codeb_tr_eval(dir, &ngx_codeb_tr_drop_script, &op->name, 1);

    } else {
        args[0] = op->call_id;
        args[1] = op->name;
        args[2] = op->stamp;
        args[3] = op->score;
        args[4] = op->summary;
        args[5] = op->body;

        rc = ngx_codeb_tr_eval(dir, &ngx_codeb_tr_put_script, args, 6);
    }

    if (rc != NGX_OK) {
        ngx_codeb_tr_done(dir);
        ngx_codeb_tr_next(dir);
    }
}


/* a script of the index (KEYS: the four keys) for dir's running op */
static ngx_int_t
ngx_codeb_tr_eval(ngx_codeb_tr_dir_t *dir, ngx_codeb_redis_script_t *script,
    ngx_str_t *args, ngx_uint_t n)
{
    ngx_uint_t              i;
    ngx_codeb_redis_args_t  a;

    a.argc = 0;

    for (i = 0; i < 4; i++) {
        ngx_codeb_redis_arg_str(&a, &dir->keys[i]);
    }

    for (i = 0; i < n; i++) {
        ngx_codeb_redis_arg_str(&a, &args[i]);
    }

    return ngx_codeb_redis_eval(script, ngx_codeb_tr_reply, dir, 4, &a);
}


/* Redis answered the running operation of dir */
static void
ngx_codeb_tr_reply(redisAsyncContext *ac, void *reply, void *data)
{
    size_t               i;
    redisReply          *rep = reply, *e;
    ngx_codeb_tr_op_t   *op;
    ngx_codeb_tr_dir_t  *dir = data;

    op = dir->busy;

    if (op == NULL || dir->closed) {
        ngx_codeb_tr_done(dir);
        return;
    }

    if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb transcripts: the index of \"%V\" was not "
                      "updated: %s", &dir->conf->transcripts_dir,
                      rep ? rep->str : "redis went away");
        ngx_codeb_tr_done(dir);
        ngx_codeb_tr_next(dir);
        return;
    }

    if (op->kind == NGX_CODEB_TR_SCAN && rep->type == REDIS_REPLY_ARRAY) {
        /* the files to read, after whatever is already waiting */
        for (i = 0; i < rep->elements; i++) {
            e = rep->element[i];

            if (e->type == REDIS_REPLY_STRING
                && ngx_codeb_tr_name((u_char *) e->str, e->len) == NGX_OK)
            {
                ngx_codeb_tr_add(dir, NGX_CODEB_TR_LOAD, (u_char *) e->str,
                                 e->len);
            }
        }

    } else if (op->kind == NGX_CODEB_TR_LOAD
               && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
    {
        ngx_codeb_tr_saved(dir, op);
    }

    ngx_codeb_tr_done(dir);
    ngx_codeb_tr_next(dir);
}


/*
 * transcript.saved {callId, phone?, displayName?, number?, file, outcome,
 * source: "outbound-ai" | "vnum"} for a transcript new to the index
 */
static void
ngx_codeb_tr_saved(ngx_codeb_tr_dir_t *dir, ngx_codeb_tr_op_t *op)
{
    yajl_gen                  g;
    ngx_uint_t                i;
    ngx_array_t              *m;
    ngx_codeb_json_member_t  *j;

    static char              *keys[] = {
        "callId", "phone", "displayName", "number", "file", "outcome", NULL
    };

    if (ngx_codeb_json_object(op->pool, op->summary.data, op->summary.len,
                              &m)
        != NGX_OK)
    {
        return;
    }

    g = ngx_codeb_api_envelope(dir->conf->tenant, "transcript.saved");
    if (g == NULL) {
        return;
    }

    for (i = 0; keys[i]; i++) {
        j = ngx_codeb_json_get_type(m, keys[i], NGX_CODEB_JSON_STRING);
        if (j) {
            ngx_codeb_gen_vstr(g, keys[i], &j->str);
        }
    }

    j = ngx_codeb_json_get_type(m, "callerSource", NGX_CODEB_JSON_STRING);
    ngx_codeb_gen_cstr(g, "source",
                       (j && ngx_strcmp(j->str.data, "outbound-ai") == 0)
                       ? "outbound-ai" : "vnum");

    if (ngx_codeb_api_fire(dir->conf, "transcript.saved", g, NULL, NULL,
                           NULL)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "codeb transcripts: transcript.saved of \"%V\" not "
                      "queued", &op->name);
    }
}


/* NGX_OK for a file name we index: 1 to 200 of [A-Za-z0-9._-], no "." */
static ngx_int_t
ngx_codeb_tr_name(u_char *name, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_CODEB_TR_NAME_MAX || name[0] == '.') {
        return NGX_DECLINED;
    }

    for (i = 0; i < len; i++) {
        if (!(ngx_codeb_api_alnum(name[i]) || name[i] == '.' || name[i] == '_'
              || name[i] == '-'))
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}
