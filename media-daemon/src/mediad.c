/*
 * codeb-mediad: configuration, logging, the epoll loop, signals.
 *
 *   codeb-mediad [--interface ADDR[!ADVERTISED]] [--listen-ng ADDR:PORT]
 *                [--port-min N] [--port-max N] [--timeout S]
 *                [--threads N (default: cores)] [--recording-dir DIR]
 *                [--redis unix:/path|host:port] [--id NAME]
 *                [--config FILE]
 *                [--log-level err|warn|info|debug]
 *
 * --config FILE: lines "<option> <value>" ('#' comments) with the
 * options that may change while running: timeout, port-min, port-max,
 * log-level, recording-dir.  The file is read after the command line and
 * again on SIGHUP; an invalid file changes nothing.
 *
 * SIGTERM: stop taking new calls, end when the last call has ended or
 * after 10 s (drain).  SIGINT: end now.  SIGHUP: reload --config.
 */

#include "mediad.h"
#include "dtls.h"
#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>


#define MD_DRAIN_S  10


md_conf_t  md_conf;

static _Thread_local int      md_epoll = -1;
static md_thread_t            md_threads[MD_MAX_THREADS];
_Thread_local md_thread_t    *md_self;
static int                    md_log_level = MD_LOG_INFO;  /* atomic */
static pthread_mutex_t        md_conf_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t  md_stop;
static int                    md_quit;      /* atomic: media threads end */
static volatile sig_atomic_t  md_hup;


void
md_log(int level, const char *fmt, ...)
{
    va_list          ap;
    struct timespec  ts;
    static const char *names[] = { "", "", "", "error", "warn", "", "info",
                                   "debug" };

    if (level > __atomic_load_n(&md_log_level, __ATOMIC_RELAXED)) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "%lld.%03ld [%s] ", (long long) ts.tv_sec,
            ts.tv_nsec / 1000000, names[level]);

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);

    fputc('\n', stderr);
}


double
md_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}


unsigned
md_hash(const char *s, size_t len)
{
    unsigned  h;
    size_t    i;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ (unsigned char) s[i]) * 16777619u;
    }

    return h;
}


int
md_io_add(md_io_t *io)
{
    struct epoll_event  ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = io;

    return epoll_ctl(md_epoll, EPOLL_CTL_ADD, io->fd, &ev);
}


void
md_io_del(md_io_t *io)
{
    if (io->fd >= 0) {
        (void) epoll_ctl(md_epoll, EPOLL_CTL_DEL, io->fd, NULL);
    }
}


static void
md_signal(int signo)
{
    int  saved;

    saved = errno;

    if (signo == SIGHUP) {
        __atomic_store_n(&md_hup, 1, __ATOMIC_RELAXED);

    } else if (signo == SIGINT) {
        __atomic_store_n(&md_stop, 2, __ATOMIC_RELAXED);

    } else {
        __atomic_store_n(&md_stop, 1, __ATOMIC_RELAXED);
    }

    errno = saved;
}


static void
md_usage(void)
{
    fprintf(stderr,
        "usage: codeb-mediad [--interface ADDR[!ADVERTISED]]"
        " [--listen-ng ADDR:PORT]\n"
        "       [--port-min N] [--port-max N] [--timeout S] [--threads N]\n"
        "       [--recording-dir DIR] [--redis ADDR] [--id NAME]\n"
        "       [--config FILE]\n"
        "       [--log-level err|warn|info|debug]\n");
    exit(2);
}


/* a reloadable option into conf; NULL or why the value is wrong */
static const char *
md_option(md_conf_t *conf, int *level, const char *name, const char *v)
{
    char  *end;
    long   n;

    if (strcmp(name, "log-level") == 0) {
        *level = strcmp(v, "debug") == 0 ? MD_LOG_DEBUG
                 : strcmp(v, "info") == 0 ? MD_LOG_INFO
                 : strcmp(v, "warn") == 0 ? MD_LOG_WARN
                 : strcmp(v, "err") == 0 ? MD_LOG_ERR : -1;
        return *level < 0 ? "log-level: err, warn, info or debug" : NULL;
    }

    if (strcmp(name, "recording-dir") == 0) {
        if (strlen(v) >= sizeof(conf->recording_dir)) {
            return "recording-dir: too long";
        }

        strcpy(conf->recording_dir, v);
        return NULL;
    }

    n = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0') {
        return "expected a number";
    }

    if (strcmp(name, "timeout") == 0) {
        conf->timeout = (int) n;
        return (n < 1 || n > 86400) ? "timeout: 1-86400 s" : NULL;
    }

    if (strcmp(name, "port-min") == 0 || strcmp(name, "port-max") == 0) {
        if (n < 1024 || n > 65534) {
            return "ports: 1024-65534";
        }

        if (name[5] == 'm' && name[6] == 'i') {
            conf->port_min = (uint16_t) n;

        } else {
            conf->port_max = (uint16_t) n;
        }

        return NULL;
    }

    return "unknown option";
}


/* the --config file over a copy of the configuration; 0, or -1 (logged) */
static int
md_config_load(void)
{
    int         level, line;
    char        buf[1200], *name, *value, *p;
    FILE       *f;
    md_conf_t   conf;
    const char *err;

    if (md_conf.config == NULL) {
        return 0;
    }

    f = fopen(md_conf.config, "r");
    if (f == NULL) {
        md_log(MD_LOG_ERR, "config %s: %s", md_conf.config, strerror(errno));
        return -1;
    }

    conf = md_conf;
    level = md_log_level;
    line = 0;
    err = NULL;

    while (err == NULL && fgets(buf, sizeof(buf), f)) {
        line++;

        p = strchr(buf, '#');
        if (p) {
            *p = '\0';
        }

        name = strtok_r(buf, " \t\r\n", &p);
        if (name == NULL) {
            continue;
        }

        value = strtok_r(NULL, " \t\r\n", &p);
        err = value ? md_option(&conf, &level, name, value)
                    : "missing value";
    }

    fclose(f);

    if (err == NULL && conf.port_max <= conf.port_min) {
        err = "port-max must be above port-min";
    }

    if (err) {
        md_log(MD_LOG_ERR, "config %s line %d: %s; nothing changed",
               md_conf.config, line, err);
        return -1;
    }

    pthread_mutex_lock(&md_conf_lock);
    md_conf.port_min = conf.port_min;
    md_conf.port_max = conf.port_max;
    md_conf.timeout = conf.timeout;
    memcpy(md_conf.recording_dir, conf.recording_dir,
           sizeof(conf.recording_dir));
    pthread_mutex_unlock(&md_conf_lock);

    __atomic_store_n(&md_log_level, level, __ATOMIC_RELAXED);

    return 0;
}


void
md_conf_live(md_live_t *live)
{
    pthread_mutex_lock(&md_conf_lock);
    live->port_min = md_conf.port_min;
    live->port_max = md_conf.port_max;
    live->timeout = md_conf.timeout;
    memcpy(live->recording_dir, md_conf.recording_dir,
           sizeof(live->recording_dir));
    pthread_mutex_unlock(&md_conf_lock);
}


static void
md_parse_args(int argc, char **argv)
{
    int    i;
    char  *v, *bang, *colon;

    inet_pton(AF_INET, "127.0.0.1", &md_conf.local);
    md_conf.advertised = md_conf.local;
    inet_pton(AF_INET, "127.0.0.1", &md_conf.ng_addr);
    md_conf.ng_port = 2223;
    md_conf.port_min = 30000;
    md_conf.port_max = 30999;
    md_conf.timeout = 60;
    md_conf.threads = (int) sysconf(_SC_NPROCESSORS_ONLN);

    for (i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            md_usage();
        }

        v = argv[i + 1];

        if (strcmp(argv[i], "--interface") == 0) {
            bang = strchr(v, '!');
            if (bang) {
                *bang = '\0';
            }

            if (inet_pton(AF_INET, v, &md_conf.local) != 1) {
                md_usage();
            }

            md_conf.advertised = md_conf.local;

            if (bang && inet_pton(AF_INET, bang + 1, &md_conf.advertised)
                        != 1)
            {
                md_usage();
            }

        } else if (strcmp(argv[i], "--listen-ng") == 0) {
            colon = strrchr(v, ':');
            if (colon == NULL) {
                md_usage();
            }

            *colon = '\0';
            if (inet_pton(AF_INET, v, &md_conf.ng_addr) != 1) {
                md_usage();
            }

            md_conf.ng_port = (uint16_t) atoi(colon + 1);

        } else if (strcmp(argv[i], "--port-min") == 0
                   || strcmp(argv[i], "--port-max") == 0
                   || strcmp(argv[i], "--timeout") == 0
                   || strcmp(argv[i], "--log-level") == 0
                   || strcmp(argv[i], "--recording-dir") == 0)
        {
            if (md_option(&md_conf, &md_log_level, argv[i] + 2, v)) {
                md_usage();
            }

        } else if (strcmp(argv[i], "--config") == 0) {
            md_conf.config = v;

        } else if (strcmp(argv[i], "--redis") == 0) {
            md_conf.redis = v;

        } else if (strcmp(argv[i], "--id") == 0) {
            snprintf(md_conf.id, sizeof(md_conf.id), "%s", v);

        } else if (strcmp(argv[i], "--threads") == 0) {
            md_conf.threads = atoi(v);

        } else {
            md_usage();
        }

        i++;
    }

    if (md_config_load() != 0) {
        exit(2);
    }

    if (md_conf.port_max <= md_conf.port_min || md_conf.ng_port == 0) {
        md_usage();
    }

    if (md_conf.threads < 1 || md_conf.threads > MD_MAX_THREADS) {
        md_conf.threads = md_conf.threads < 1 ? 1 : MD_MAX_THREADS;
    }

    inet_ntop(AF_INET, &md_conf.advertised, md_conf.advertised_str,
              sizeof(md_conf.advertised_str));

    if (md_conf.id[0] == '\0') {
        char  host[64];

        if (gethostname(host, sizeof(host)) != 0) {
            strcpy(host, "localhost");
        }

        host[sizeof(host) - 1] = '\0';
        snprintf(md_conf.id, sizeof(md_conf.id), "%s:%u", host,
                 md_conf.ng_port);
    }
}


/* NG requests handed to this thread (eventfd wakes it) */
static void
md_thread_queue(md_io_t *io)
{
    uint64_t       v;
    md_thread_t   *t;
    md_ng_item_t  *item, *next;

    t = io->data;

    if (read(t->efd.fd, &v, sizeof(v)) <= 0) {
        return;
    }

    pthread_mutex_lock(&t->lock);
    item = t->head;
    t->head = NULL;
    t->tail = &t->head;
    pthread_mutex_unlock(&t->lock);

    for ( /* void */ ; item; item = next) {
        next = item->next;
        md_ng_execute(item->data, item->len, &item->from);
        free(item);
    }
}


int
md_thread_post(int index, const char *p, size_t len, struct sockaddr_in *from)
{
    uint64_t       one;
    md_thread_t   *t;
    md_ng_item_t  *item;

    t = &md_threads[index];

    item = malloc(sizeof(md_ng_item_t) + len);
    if (item == NULL) {
        return -1;
    }

    item->next = NULL;
    item->len = len;
    item->from = *from;
    memcpy(item->data, p, len);

    pthread_mutex_lock(&t->lock);
    *t->tail = item;
    t->tail = &item->next;
    pthread_mutex_unlock(&t->lock);

    one = 1;
    return write(t->efd.fd, &one, sizeof(one)) == sizeof(one) ? 0 : -1;
}


int
md_thread_count(void)
{
    return md_conf.threads;
}


/* the per-thread parts: epoll, queue, media timer, calls */
static int
md_thread_init(md_thread_t *t)
{
    md_self = t;
    md_epoll = epoll_create1(EPOLL_CLOEXEC);

    if (md_epoll == -1) {
        md_log(MD_LOG_ERR, "epoll_create1: %s", strerror(errno));
        return -1;
    }

    t->efd.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->efd.handler = md_thread_queue;
    t->efd.data = t;
    t->tail = &t->head;
    pthread_mutex_init(&t->lock, NULL);

    if (t->efd.fd == -1 || md_io_add(&t->efd) != 0
        || md_call_thread_init(t->index) != 0 || md_media_init() != 0)
    {
        return -1;
    }

    return 0;
}


static void md_shutdown(void);


/* one thread's loop; thread 0 (main) also handles signals and exit */
static void *
md_loop(void *arg)
{
    int                  i, n;
    double               tick, drain;
    md_io_t             *io;
    md_thread_t         *t = arg;
    struct epoll_event   events[256];

    md_self = t;
    md_epoll = t->epoll;

    tick = md_now() + 1;
    drain = 0;

    for ( ;; ) {
        n = epoll_wait(md_epoll, events, 256, 200);

        if (n == -1 && errno != EINTR) {
            md_log(MD_LOG_ERR, "epoll_wait: %s", strerror(errno));
            exit(1);
        }

        for (i = 0; i < n; i++) {
            io = events[i].data.ptr;
            io->handler(io);
        }

        if (md_now() >= tick) {
            tick = md_now() + 1;
            md_call_timeouts();
            md_registry_tick();
        }

        if (t->index != 0) {
            if (__atomic_load_n(&md_quit, __ATOMIC_ACQUIRE)) {
                break;
            }

            continue;
        }

        if (md_hup) {
            md_hup = 0;

            if (md_config_load() == 0) {
                md_log(MD_LOG_INFO, "SIGHUP: configuration %s reloaded "
                       "(timeout %d s, ports %u-%u), %zu calls",
                       md_conf.config ? md_conf.config : "(none)",
                       md_conf.timeout, md_conf.port_min, md_conf.port_max,
                       md_call_count());
            }
        }

        if (md_stop) {
            if (drain == 0) {
                drain = md_now() + MD_DRAIN_S;
                md_log(MD_LOG_INFO, "draining %zu calls", md_call_count());
            }

            if (md_call_count() == 0 || md_now() >= drain || md_stop == 2) {
                md_shutdown();
            }
        }
    }

    /* a media thread ends: its thread-local state goes with it */

    md_registry_thread_stop();
    OPENSSL_thread_stop();

    return NULL;
}


/*
 * Thread 0 ends the process: the media threads leave their loops and are
 * joined first, so exit() and its handlers (OpenSSL's cleanup among them)
 * run with no other thread touching calls, sockets or DTLS state.
 */
static void
md_shutdown(void)
{
    int       i;
    uint64_t  one;

    __atomic_store_n(&md_quit, 1, __ATOMIC_RELEASE);

    for (i = 1; i < md_conf.threads; i++) {
        one = 1;

        if (write(md_threads[i].efd.fd, &one, sizeof(one)) != sizeof(one)) {
            /* its epoll_wait() returns within 200 ms anyway */
        }
    }

    for (i = 1; i < md_conf.threads; i++) {
        pthread_join(md_threads[i].tid, NULL);
    }

    md_log(MD_LOG_INFO, "stopped");
    exit(0);
}


int
main(int argc, char **argv)
{
    int                  i;
    sigset_t             block, old;
    struct sigaction     sa;

    md_parse_args(argc, argv);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = md_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (md_dtls_init() != 0
        || md_registry_init(md_conf.redis, md_conf.id) != 0)
    {
        return 1;
    }

    for (i = 0; i < md_conf.threads; i++) {
        md_threads[i].index = i;

        if (md_thread_init(&md_threads[i]) != 0) {
            return 1;
        }

        md_threads[i].epoll = md_epoll;
    }

    /* thread 0 owns the NG socket; signals are its alone */

    md_self = &md_threads[0];
    md_epoll = md_threads[0].epoll;

    if (md_ng_init() != 0) {
        return 1;
    }

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    for (i = 1; i < md_conf.threads; i++) {
        if (pthread_create(&md_threads[i].tid, NULL, md_loop, &md_threads[i])
            != 0)
        {
            md_log(MD_LOG_ERR, "pthread_create failed");
            return 1;
        }
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    md_log(MD_LOG_INFO, "codeb-mediad ready: NG on %s:%u, media on %s"
           " ports %u-%u, %d thread(s)", inet_ntoa(md_conf.ng_addr),
           md_conf.ng_port, md_conf.advertised_str, md_conf.port_min,
           md_conf.port_max, md_conf.threads);

    md_loop(&md_threads[0]);

    return 0;
}


int
md_draining(void)
{
    return __atomic_load_n(&md_stop, __ATOMIC_RELAXED) != 0;
}
