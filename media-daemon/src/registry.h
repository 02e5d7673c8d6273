/*
 * The daemon's calls in Redis for the nginx modules' ?stats and
 * ?healthsummary (--redis, registry.c).
 */

#ifndef MD_REGISTRY_H
#define MD_REGISTRY_H

#include "call.h"


/* addr: "unix:/path" or "host:port", NULL: no Redis; id: --id.  0 or -1 */
int md_registry_init(const char *addr, const char *id);
/* c listed (alive) or removed; bounded to 100 ms, skipped after failure */
void md_registry_call(md_call_t *c, int alive);
/* the daemon's TTL renewed every 10 s; call every second */
void md_registry_tick(void);
/* the calling thread's Redis link closed (before the thread ends) */
void md_registry_thread_stop(void);

#endif
