/*
 * ICE-Lite responder (RFC 8445 §2.5): the relay answers the connectivity
 * checks (STUN Binding requests, RFC 5389) that a full ICE agent sends to
 * its host candidates, and never sends checks itself.  A lite agent is
 * always the controlled agent (RFC 8445 §6.1.1), so the remote agent
 * nominates the pair with USE-CANDIDATE (§7.3.2).
 *
 * Stateless and allocation-free: every call works on the caller's buffers
 * and the stack, so it may run in the packet path and in any thread.
 */

#ifndef MD_STUN_H
#define MD_STUN_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>


/* bytes of out that always hold any response of md_stun_answer() */
#define MD_STUN_MAX_RESPONSE  128


/*
 * 1 when the datagram looks like STUN: RFC 7983 §7 (first byte 0-3)
 * and the RFC 5389 §6 magic cookie after a whole header
 */
int md_stun_is(const uint8_t *p, size_t n);


typedef struct {
    int                 valid;          /* answered with 200: a Binding
                                           request that passed USERNAME,
                                           MESSAGE-INTEGRITY, FINGERPRINT
                                           and the role check */
    int                 use_candidate;  /* USE-CANDIDATE: the controlling
                                           agent nominates this pair */
    int                 controlling;    /* ICE-CONTROLLING present */
    uint64_t            tiebreaker;     /* of ICE-CONTROLLING, else of
                                           ICE-CONTROLLED */
    uint32_t            priority;       /* PRIORITY, 0 when absent */
    char                remote_ufrag[64];  /* USERNAME after the colon */
} md_stun_req_t;

/*
 * Handles one STUN message received from `from` on a stream whose local
 * ICE credentials are lufrag/lpwd and whose remote ufrag is rufrag ("" or
 * NULL when the remote SDP is not known yet: then only the local part of
 * USERNAME is checked, as RFC 8445 §7.3 allows early checks).
 *
 * Writes a response into out (size bytes, MD_STUN_MAX_RESPONSE is always
 * enough; out may be the buffer p points to) and returns its length, or 0
 * when nothing must be sent: responses and indications are ignored, and
 * messages that fail RFC 5389 §7.3's basic checks are dropped silently
 * (header, lengths, attribute bounds, a method other than Binding, a
 * FINGERPRINT that is absent, wrong, or not last, MESSAGE-INTEGRITY
 * followed by anything but FINGERPRINT).
 *
 *   no USERNAME or no MESSAGE-INTEGRITY     400, FINGERPRINT
 *   USERNAME or MESSAGE-INTEGRITY wrong      401, FINGERPRINT
 *   unknown comprehension-required attrs    420 + UNKNOWN-ATTRIBUTES,
 *                                            MESSAGE-INTEGRITY, FINGERPRINT
 *   ICE-CONTROLLED (a lite agent cannot     487, MESSAGE-INTEGRITY,
 *   become controlling)                      FINGERPRINT
 *   otherwise                                200 + XOR-MAPPED-ADDRESS,
 *                                            MESSAGE-INTEGRITY, FINGERPRINT
 *
 * req (may be NULL) is cleared, then filled from a request that passed
 * authentication; req->valid is 1 only for the 200 answer.
 */
size_t md_stun_answer(const uint8_t *p, size_t n,
    const struct sockaddr_in *from, const char *lufrag, const char *lpwd,
    const char *rufrag, uint8_t *out, size_t size, md_stun_req_t *req);

/*
 * Internal, exposed for the RFC 5769 tests: appends MESSAGE-INTEGRITY
 * (RFC 5389 §15.4, HMAC-SHA1 keyed with key; skipped when key is NULL)
 * and FINGERPRINT (§15.5) to the message m[0..len), whose header is
 * complete but for the length field, which is rewritten.  Returns the
 * new length, or 0 when len is not a header plus whole attributes
 * (len < 20 or not a multiple of 4) or size is too small.
 */
size_t md_stun_sign(uint8_t *m, size_t len, size_t size, const char *key);

/*
 * Fresh ICE credentials from md_random(): ufrag 8, pwd 24 ice-chars
 * (RFC 8839 §5.4), that is 48 and 144 random bits (RFC 8445 §5.3 wants
 * at least 24 and 128)
 */
void md_ice_credentials(char ufrag[9], char pwd[25]);

/*
 * The a=candidate value (RFC 8839 §5.1, without "candidate:") of a UDP
 * candidate of component 1, priority by RFC 8445 §5.1.2: a host
 * candidate, or with srflx a server-reflexive one, which needs its
 * related address raddr:rport (ignored for host candidates).  Ports in
 * host order.  foundation: 1-32 ice-chars.  Returns the length written,
 * or -1 when an argument is invalid or buf is too small.
 */
int md_ice_candidate(char *buf, size_t size, const char *foundation,
    const struct in_addr *addr, uint16_t port, int srflx,
    const struct in_addr *raddr, uint16_t rport);

#endif
