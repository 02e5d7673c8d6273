/*
 * DTLS-SRTP (RFC 5763, RFC 5764) with OpenSSL and libsrtp2: one DTLS
 * association per WebRTC stream, the SRTP keys exported from it.
 */

#ifndef MD_DTLS_H
#define MD_DTLS_H

#include <stddef.h>
#include <stdint.h>


typedef struct md_dtls_s  md_dtls_t;

/* sends one datagram of the handshake towards the peer */
typedef void (*md_dtls_send_pt)(void *ctx, const uint8_t *p, size_t n);


/* the daemon's certificate (ECDSA P-256, self-signed), libsrtp2 */
int md_dtls_init(void);
/* "sha-256 AB:CD:..." of the certificate, for a=fingerprint */
const char *md_dtls_fingerprint(void);

/*
 * active: we are the DTLS client (a=setup:active), else the server.
 * fingerprint: the peer's a=fingerprint value ("sha-256 AB:..."), checked
 * against its certificate when the handshake ends.
 */
md_dtls_t *md_dtls_new(int active, const char *fingerprint,
    md_dtls_send_pt send, void *ctx);
void md_dtls_free(md_dtls_t *d);
/*
 * the peer's a=fingerprint, when it was not known at md_dtls_new() (a
 * server created at offer time, before the answer): checked now if the
 * handshake is already done, else when it ends
 */
void md_dtls_set_fingerprint(md_dtls_t *d, const char *fingerprint);
/* the client sends its ClientHello; the server waits */
void md_dtls_start(md_dtls_t *d);
/* one DTLS datagram from the peer (RFC 7983: first byte 20-63) */
void md_dtls_input(md_dtls_t *d, const uint8_t *p, size_t n);
/* retransmissions; call about every 100 ms - 1 s */
void md_dtls_timer(md_dtls_t *d);
/* 1 once the handshake is done, the fingerprint matched, keys are set */
int md_dtls_ready(md_dtls_t *d);
/* 1 when the handshake failed (bad fingerprint, alert) */
int md_dtls_failed(md_dtls_t *d);

/*
 * SRTP/SRTCP in place; *len is updated.  size is the buffer size (the
 * auth tag grows the packet).  Returns 0, or -1 (drop the packet).
 */
int md_srtp_protect(md_dtls_t *d, uint8_t *p, size_t *len, size_t size,
    int rtcp);
int md_srtp_unprotect(md_dtls_t *d, uint8_t *p, size_t *len, int rtcp);

#endif
