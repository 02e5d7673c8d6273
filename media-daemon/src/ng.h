/*
 * The rtpengine NG control protocol (ng.c, docs/ng.md): the NG socket,
 * the reply cache, and the hand-over of each request to the thread that
 * owns its call.
 */

#ifndef MD_NG_H
#define MD_NG_H

#include <netinet/in.h>
#include <stddef.h>


/* the NG socket (--listen-ng) in the calling thread's loop; 0 or -1 */
int md_ng_init(void);
/*
 * executes one request p[0..len) ("<cookie> <bencoded dict>") in the
 * calling thread and sends the reply to from (or the cached one)
 */
void md_ng_execute(const char *p, size_t len, struct sockaddr_in *from);
/* from now on offers for new calls are refused (SIGTERM: drain) */
void md_ng_drain(void);

#endif
