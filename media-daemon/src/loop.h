/*
 * The event loops of codeb-mediad: one per thread (--threads, default one
 * per core), each an epoll set of md_io_t, level-triggered.  A call lives
 * in one thread (md_call_owner()): its sockets are in that thread's epoll
 * and the NG requests that name it are handed to that thread's queue, so
 * media needs no locks.  Thread 0 is the process's main thread.
 *
 * What the loops run is given as hooks (md_loop_hooks_t), so this file
 * knows nothing of calls, NG or signals.
 */

#ifndef MD_LOOP_H
#define MD_LOOP_H

#include <netinet/in.h>
#include <stddef.h>


#define MD_MAX_THREADS  64


typedef struct md_io_s  md_io_t;
typedef void (*md_io_handler_pt)(md_io_t *io);

/* a file descriptor watched for input (level-triggered) */
struct md_io_s {
    int                 fd;
    md_io_handler_pt    handler;
    void               *data;
};

typedef struct {
    /* per thread, in its context (md_io_add() works), before it runs */
    int   (*init)(int index);
    /* a request handed over with md_thread_post(), in the thread asked */
    void  (*request)(const char *p, size_t len, struct sockaddr_in *from);
    /* once a second in every thread */
    void  (*second)(void);
    /* thread 0 after each wakeup (at least every 200 ms) */
    void  (*main)(void);
    /* a media thread (1..n-1) leaves its loop: its thread-local state */
    void  (*end)(void);
} md_loop_hooks_t;


/*
 * threads loops (1-MD_MAX_THREADS), each with its epoll and queue; runs
 * hooks->init for each.  The caller is thread 0 from then on.  0 or -1
 * (logged)
 */
int md_loop_init(int threads, const md_loop_hooks_t *hooks);
/* threads 1..n-1 start their loops; 0 or -1 (logged) */
int md_loop_start(void);
/*
 * thread 0's loop; does not return: hooks->main ends the process (an
 * epoll failure ends it with status 1, logged)
 */
void md_loop_run(void);
/*
 * From thread 0: the media threads leave their loops (within 200 ms) and
 * are joined; then no other thread touches calls, sockets or DTLS state
 */
void md_loop_stop(void);

/* watches io in the calling thread's loop; 0 or -1 (errno) */
int md_io_add(md_io_t *io);
void md_io_del(md_io_t *io);

/* queues a copy of the request p[0..len) for thread index; 0 or -1 */
int md_thread_post(int index, const char *p, size_t len,
    struct sockaddr_in *from);
int md_thread_count(void);
/* the calling thread's index, 0..md_thread_count() - 1 */
int md_thread_index(void);

#endif
