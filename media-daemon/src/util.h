/*
 * The ground every file of codeb-mediad stands on: network byte order,
 * logging, the clock, hashing and randomness.  Depends on no other file
 * of the daemon.
 */

#ifndef MD_UTIL_H
#define MD_UTIL_H

#include <stddef.h>
#include <stdint.h>


#define MD_MAX_PACKET     2048       /* bytes of an RTP/RTCP datagram */


/* ---- network byte order (RTP, RTCP, STUN fields) ---- */

static inline uint16_t
md_get16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}


static inline uint32_t
md_get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static inline void
md_put16(uint8_t *p, size_t v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static inline void
md_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


/* ---- logging (stderr) ---- */

#define MD_LOG_ERR    3
#define MD_LOG_WARN   4
#define MD_LOG_INFO   6
#define MD_LOG_DEBUG  7

/* one line "<unix s>.<ms> [level] message" when level is enabled */
void md_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* the most verbose level logged (MD_LOG_*); any thread */
int md_log_level(void);
void md_log_set_level(int level);
/* "err", "warn", "info", "debug" -> MD_LOG_*, else -1 */
int md_log_level_named(const char *name);


/* ---- clock, hashing, randomness ---- */

/* seconds since an arbitrary start, monotonic (CLOCK_MONOTONIC) */
double md_now(void);
/* FNV-1a of s[0..len), for hash tables (call-ids, NG cookies) */
unsigned md_hash(const char *s, size_t len);
/*
 * n bytes from the kernel's pool (getrandom(), else /dev/urandom): the
 * only source of randomness of the daemon (ICE credentials, SSRCs,
 * sequence and timestamp bases).  When neither gives them the process
 * aborts (logged) rather than make guessable secrets.
 */
void md_random(void *buf, size_t n);

#endif
