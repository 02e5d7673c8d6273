/*
 * Logging, the clock, hashing and randomness (util.h).
 */

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>


static int  md_level = MD_LOG_INFO;      /* atomic */

/* by level: as logged, and as --log-level names it */
static const char  *md_level_names[][2] = {
    { "", "" }, { "", "" }, { "", "" }, { "error", "err" },
    { "warn", "warn" }, { "", "" }, { "info", "info" }, { "debug", "debug" }
};


void
md_log(int level, const char *fmt, ...)
{
    va_list          ap;
    struct timespec  ts;

    if (level > __atomic_load_n(&md_level, __ATOMIC_RELAXED)) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(stderr, "%lld.%03ld [%s] ", (long long) ts.tv_sec,
            ts.tv_nsec / 1000000, md_level_names[level][0]);

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);

    fputc('\n', stderr);
}


int
md_log_level(void)
{
    return __atomic_load_n(&md_level, __ATOMIC_RELAXED);
}


void
md_log_set_level(int level)
{
    __atomic_store_n(&md_level, level, __ATOMIC_RELAXED);
}


int
md_log_level_named(const char *name)
{
    int  i;

    for (i = MD_LOG_ERR; i <= MD_LOG_DEBUG; i++) {
        if (md_level_names[i][1][0]
            && strcmp(name, md_level_names[i][1]) == 0)
        {
            return i;
        }
    }

    return -1;
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


/* bytes read from /dev/urandom into buf[got..n); the new count */
static size_t
md_urandom(uint8_t *buf, size_t got, size_t n)
{
    int      fd;
    ssize_t  r;

    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    while (fd != -1 && got < n) {
        r = read(fd, buf + got, n - got);

        if (r > 0) {
            got += (size_t) r;

        } else if (r == 0 || errno != EINTR) {
            break;
        }
    }

    if (fd != -1) {
        close(fd);
    }

    return got;
}


void
md_random(void *buf, size_t n)
{
    size_t   got;
    ssize_t  r;

    got = 0;

    while (got < n) {
        r = getrandom((uint8_t *) buf + got, n - got, 0);

        if (r > 0) {
            got += (size_t) r;

        } else if (r == -1 && errno != EINTR) {
            break;
        }
    }

    if (got < n) {
        /* getrandom() refused (ENOSYS, or a seccomp filter): same pool */
        got = md_urandom(buf, got, n);
    }

    if (got < n) {
        md_log(MD_LOG_ERR, "no randomness from getrandom() or /dev/urandom");
        abort();
    }
}
