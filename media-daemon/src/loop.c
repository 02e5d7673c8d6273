/*
 * The event loops (loop.h): epoll per thread, the queue of NG requests
 * handed between threads (an eventfd wakes the loop), the one-second
 * tick, and the ordered stop of the media threads.
 */

#include "loop.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>


#define MD_LOOP_WAIT_MS  200
#define MD_LOOP_EVENTS   256


/* a request handed to the thread that owns its call */
typedef struct md_item_s  md_item_t;

struct md_item_s {
    md_item_t          *next;
    size_t              len;
    struct sockaddr_in  from;
    char                data[];
};

typedef struct {
    int                 index;
    pthread_t           tid;
    int                 epoll;
    md_io_t             efd;           /* eventfd: requests queued */
    pthread_mutex_t     lock;
    md_item_t          *head;
    md_item_t         **tail;
} md_thread_t;


static md_thread_t              md_threads[MD_MAX_THREADS];
static int                      md_nthreads;
static md_loop_hooks_t          md_hooks;
static int                      md_quit;       /* atomic: threads end */
static _Thread_local md_thread_t  *md_self;


/* the requests handed to this thread */
static void
md_thread_queue(md_io_t *io)
{
    uint64_t      v;
    md_thread_t  *t;
    md_item_t    *item, *next;

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
        md_hooks.request(item->data, item->len, &item->from);
        free(item);
    }
}


int
md_thread_post(int index, const char *p, size_t len, struct sockaddr_in *from)
{
    uint64_t      one;
    md_item_t    *item;
    md_thread_t  *t;

    t = &md_threads[index];

    item = malloc(sizeof(md_item_t) + len);
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
    return md_nthreads;
}


int
md_thread_index(void)
{
    return md_self->index;
}


int
md_io_add(md_io_t *io)
{
    struct epoll_event  ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.ptr = io;

    return epoll_ctl(md_self->epoll, EPOLL_CTL_ADD, io->fd, &ev);
}


void
md_io_del(md_io_t *io)
{
    if (io->fd >= 0) {
        (void) epoll_ctl(md_self->epoll, EPOLL_CTL_DEL, io->fd, NULL);
    }
}


/* thread t's epoll and queue, then its hooks->init as if it ran there */
static int
md_thread_init(md_thread_t *t)
{
    md_self = t;
    t->epoll = epoll_create1(EPOLL_CLOEXEC);

    if (t->epoll == -1) {
        md_log(MD_LOG_ERR, "epoll_create1: %s", strerror(errno));
        return -1;
    }

    t->efd.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    t->efd.handler = md_thread_queue;
    t->efd.data = t;
    t->tail = &t->head;
    pthread_mutex_init(&t->lock, NULL);

    if (t->efd.fd == -1 || md_io_add(&t->efd) != 0) {
        md_log(MD_LOG_ERR, "thread %d: eventfd: %s", t->index,
               strerror(errno));
        return -1;
    }

    return md_hooks.init(t->index);
}


int
md_loop_init(int threads, const md_loop_hooks_t *hooks)
{
    int  i;

    md_hooks = *hooks;
    md_nthreads = threads;

    for (i = 0; i < threads; i++) {
        md_threads[i].index = i;

        if (md_thread_init(&md_threads[i]) != 0) {
            return -1;
        }
    }

    md_self = &md_threads[0];

    return 0;
}


/* one thread's loop, until md_loop_stop() (media threads) */
static void *
md_loop(void *arg)
{
    int                  i, n;
    double               tick;
    md_io_t             *io;
    struct epoll_event   events[MD_LOOP_EVENTS];

    md_self = arg;
    tick = md_now() + 1;

    for ( ;; ) {
        n = epoll_wait(md_self->epoll, events, MD_LOOP_EVENTS,
                       MD_LOOP_WAIT_MS);

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
            md_hooks.second();
        }

        if (md_self->index == 0) {
            md_hooks.main();

        } else if (__atomic_load_n(&md_quit, __ATOMIC_ACQUIRE)) {
            md_hooks.end();
            return NULL;
        }
    }
}


int
md_loop_start(void)
{
    int  i;

    for (i = 1; i < md_nthreads; i++) {
        if (pthread_create(&md_threads[i].tid, NULL, md_loop, &md_threads[i])
            != 0)
        {
            md_log(MD_LOG_ERR, "pthread_create failed");
            return -1;
        }
    }

    return 0;
}


void
md_loop_run(void)
{
    (void) md_loop(&md_threads[0]);
}


void
md_loop_stop(void)
{
    int       i;
    uint64_t  one;

    __atomic_store_n(&md_quit, 1, __ATOMIC_RELEASE);

    for (i = 1; i < md_nthreads; i++) {
        one = 1;

        if (write(md_threads[i].efd.fd, &one, sizeof(one)) != sizeof(one)) {
            /* its epoll_wait() returns within 200 ms anyway */
        }
    }

    for (i = 1; i < md_nthreads; i++) {
        pthread_join(md_threads[i].tid, NULL);
    }
}
