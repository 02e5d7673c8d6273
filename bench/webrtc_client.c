/*
 * webrtc_client: the WebRTC side of a call for bench/rtpload.c (scenario
 * d): ICE connectivity checks (RFC 8445/5389, controlling, aggressive
 * nomination), a DTLS client handshake with use_srtp (RFC 5764), keys
 * exported into libsrtp2 sessions.  Blocking, one call at a time: done
 * before the measured window.  Also answers the relay's own Binding
 * requests (a full ICE agent such as rtpengine sends them) during the run.
 *
 * Built with rtpload.c: cc ... rtpload.c webrtc_client.c -lssl -lcrypto -lsrtp2
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <srtp2/srtp.h>

#include "webrtc_client.h"

struct wc_call {
    SSL       *ssl;
    BIO       *rbio, *wbio;
    srtp_t     tx, rx;
    int        fd;
    struct sockaddr_in relay;
    char       rufrag[128], rpwd[128], lufrag[128], lpwd[128];
};

static SSL_CTX *ctx;

#define STUN_MAGIC  0x2112A442u

static uint32_t crc_tab[256];

static void
crc_init(void)
{
    uint32_t c;
    int      i, k;

    for (i = 0; i < 256; i++) {
        c = (uint32_t) i;
        for (k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_tab[i] = c;
    }
}

static uint32_t
crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;

    while (n--) {
        c = crc_tab[(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return c ^ 0xFFFFFFFFu;
}

static double
mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
seterr(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int
verify_any(int ok, X509_STORE_CTX *x)
{
    (void) ok;
    (void) x;
    return 1;       /* the fingerprint in the SDP is not checked: a benchmark */
}

int
wc_init(const char *cert, const char *key, char *err, size_t errlen)
{
    crc_init();
    if (srtp_init() != srtp_err_status_ok) {
        seterr(err, errlen, "srtp_init failed");
        return -1;
    }
    ctx = SSL_CTX_new(DTLS_method());     /* client, or server for a=setup:active */
    if (ctx == NULL
        || SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_set_tlsext_use_srtp(ctx, "SRTP_AES128_CM_SHA1_80") != 0)
    {
        seterr(err, errlen, "DTLS context (%s, %s): %s", cert, key,
               ERR_error_string(ERR_get_error(), NULL));
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_any);
    SSL_CTX_set_options(ctx, SSL_OP_NO_QUERY_MTU);
    return 0;
}

/* ---- STUN ---- */

static size_t
put_attr(uint8_t *m, size_t off, uint16_t type, const void *v, size_t len)
{
    m[off] = (uint8_t) (type >> 8);
    m[off + 1] = (uint8_t) type;
    m[off + 2] = (uint8_t) (len >> 8);
    m[off + 3] = (uint8_t) len;
    memcpy(m + off + 4, v, len);
    off += 4 + len;
    while (len % 4) {
        m[off++] = 0;
        len++;
    }
    return off;
}

static void
set_len(uint8_t *m, size_t total)
{
    m[2] = (uint8_t) ((total - 20) >> 8);
    m[3] = (uint8_t) (total - 20);
}

/* MESSAGE-INTEGRITY (key) and FINGERPRINT after the attributes up to off */
static size_t
finish(uint8_t *m, size_t off, const char *key)
{
    unsigned int hlen = 20;
    uint8_t      mac[20];
    uint32_t     crc;
    uint8_t      fp[4];

    set_len(m, off + 24);
    HMAC(EVP_sha1(), key, (int) strlen(key), m, off, mac, &hlen);
    off = put_attr(m, off, 0x0008, mac, 20);
    set_len(m, off + 8);
    crc = crc32(m, off) ^ 0x5354554eu;
    fp[0] = (uint8_t) (crc >> 24);
    fp[1] = (uint8_t) (crc >> 16);
    fp[2] = (uint8_t) (crc >> 8);
    fp[3] = (uint8_t) crc;
    return put_attr(m, off, 0x8028, fp, 4);
}

static size_t
binding_request(wc_call *c, uint8_t *m, uint8_t tid[12])
{
    char      user[300];
    uint8_t   v[8];
    uint32_t  prio = (110u << 24) | (65535u << 8) | 255u;
    size_t    off;

    m[0] = 0x00;
    m[1] = 0x01;
    m[4] = 0x21; m[5] = 0x12; m[6] = 0xA4; m[7] = 0x42;
    memcpy(m + 8, tid, 12);
    off = 20;
    snprintf(user, sizeof(user), "%s:%s", c->rufrag, c->lufrag);
    off = put_attr(m, off, 0x0006, user, strlen(user));
    v[0] = (uint8_t) (prio >> 24); v[1] = (uint8_t) (prio >> 16);
    v[2] = (uint8_t) (prio >> 8); v[3] = (uint8_t) prio;
    off = put_attr(m, off, 0x0024, v, 4);                  /* PRIORITY */
    RAND_bytes(v, 8);
    off = put_attr(m, off, 0x802A, v, 8);                  /* ICE-CONTROLLING */
    off = put_attr(m, off, 0x0025, v, 0);                  /* USE-CANDIDATE */
    return finish(m, off, c->rpwd);
}

/* a Binding request of the relay's: the success response */
static void
answer_binding(wc_call *c, const uint8_t *req, const struct sockaddr_in *from)
{
    uint8_t  m[128], xa[8];
    uint16_t port = ntohs(from->sin_port) ^ (uint16_t) (STUN_MAGIC >> 16);
    uint32_t addr = ntohl(from->sin_addr.s_addr) ^ STUN_MAGIC;
    size_t   off;

    memcpy(m, req, 20);
    m[0] = 0x01;
    m[1] = 0x01;
    xa[0] = 0; xa[1] = 1;
    xa[2] = (uint8_t) (port >> 8); xa[3] = (uint8_t) port;
    xa[4] = (uint8_t) (addr >> 24); xa[5] = (uint8_t) (addr >> 16);
    xa[6] = (uint8_t) (addr >> 8); xa[7] = (uint8_t) addr;
    off = put_attr(m, 20, 0x0020, xa, 8);                  /* XOR-MAPPED-ADDRESS */
    off = finish(m, off, c->lpwd);
    sendto(c->fd, m, off, 0, (const struct sockaddr *) from, sizeof(*from));
}

/* a packet on A's socket that is not SRTP: 1 if it was STUN or DTLS */
int
wc_other(wc_call *c, const uint8_t *p, int n, const struct sockaddr_in *from)
{
    uint8_t buf[1500];

    if (n >= 20 && p[0] < 4) {
        if (p[0] == 0 && p[1] == 1) {
            answer_binding(c, p, from);
        }
        return 1;
    }
    if (n > 0 && p[0] >= 20 && p[0] <= 63) {
        BIO_write(c->rbio, p, n);
        SSL_read(c->ssl, buf, sizeof(buf));     /* alerts, retransmissions */
        ERR_clear_error();
        return 1;
    }
    return 0;
}

/* ---- DTLS ---- */

static void
flush_out(wc_call *c)
{
    uint8_t buf[4096];
    int     n;

    while ((n = BIO_read(c->wbio, buf, sizeof(buf))) > 0) {
        sendto(c->fd, buf, (size_t) n, 0, (struct sockaddr *) &c->relay,
               sizeof(c->relay));
    }
}

/* wait up to ms for a datagram; STUN handled, else returned */
static int
recv_one(wc_call *c, uint8_t *buf, int size, int ms, struct sockaddr_in *from)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
    socklen_t     fl = sizeof(*from);
    int           n;

    if (poll(&pfd, 1, ms) <= 0) {
        return -1;
    }
    n = (int) recvfrom(c->fd, buf, (size_t) size, 0, (struct sockaddr *) from, &fl);
    return n;
}

static int
make_srtp(srtp_t *s, const uint8_t *key, const uint8_t *salt, int inbound)
{
    srtp_policy_t pol;
    uint8_t       km[30];

    memcpy(km, key, 16);
    memcpy(km + 16, salt, 14);
    memset(&pol, 0, sizeof(pol));
    srtp_crypto_policy_set_rtp_default(&pol.rtp);
    srtp_crypto_policy_set_rtcp_default(&pol.rtcp);
    pol.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    pol.key = km;
    pol.window_size = 1024;
    pol.next = NULL;
    return srtp_create(s, &pol) == srtp_err_status_ok ? 0 : -1;
}

wc_call *
wc_connect(int fd, uint16_t relay_port, const char *rufrag, const char *rpwd,
           const char *lufrag, const char *lpwd, int server, double timeout_s,
           char *err, size_t errlen)
{
    wc_call            *c = calloc(1, sizeof(*c));
    uint8_t             m[1500], tid[12], km[60];
    struct sockaddr_in  from;
    double              end = mono_s() + timeout_s, next = 0;
    int                 n, ok = 0, r, tries = 0;
    size_t              len;
    SRTP_PROTECTION_PROFILE *prof;

    if (c == NULL) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    c->fd = fd;
    c->relay.sin_family = AF_INET;
    c->relay.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->relay.sin_port = htons(relay_port);
    snprintf(c->rufrag, sizeof(c->rufrag), "%s", rufrag);
    snprintf(c->rpwd, sizeof(c->rpwd), "%s", rpwd);
    snprintf(c->lufrag, sizeof(c->lufrag), "%s", lufrag);
    snprintf(c->lpwd, sizeof(c->lpwd), "%s", lpwd);

    /* ICE: our check, every 50 ms until its success response */
    RAND_bytes(tid, 12);
    while (!ok) {
        if (mono_s() > end) {
            seterr(err, errlen, "no STUN success response from port %u (%d checks)",
                   relay_port, tries);
            goto fail;
        }
        if (mono_s() >= next) {
            len = binding_request(c, m, tid);
            sendto(fd, m, len, 0, (struct sockaddr *) &c->relay, sizeof(c->relay));
            next = mono_s() + 0.05;
            tries++;
        }
        n = recv_one(c, m, sizeof(m), 10, &from);
        if (n < 20 || m[0] >= 4) {
            continue;
        }
        if (m[0] == 0 && m[1] == 1) {
            answer_binding(c, m, &from);
        } else if (m[0] == 1 && m[1] == 1 && memcmp(m + 8, tid, 12) == 0) {
            ok = 1;
        } else if (m[0] == 1 && m[1] == 0x11 && memcmp(m + 8, tid, 12) == 0) {
            seterr(err, errlen, "STUN error response from port %u", relay_port);
            goto fail;
        }
    }

    /* DTLS client over memory BIOs */
    c->ssl = SSL_new(ctx);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_mtu(c->ssl, 1200);
    if (server) {
        SSL_set_accept_state(c->ssl);
    } else {
        SSL_set_connect_state(c->ssl);
    }
    for (;;) {
        r = SSL_do_handshake(c->ssl);
        flush_out(c);
        if (r == 1) {
            break;
        }
        if (SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ) {
            seterr(err, errlen, "DTLS handshake with port %u: %s", relay_port,
                   ERR_error_string(ERR_get_error(), NULL));
            goto fail;
        }
        if (mono_s() > end) {
            seterr(err, errlen, "DTLS handshake with port %u timed out", relay_port);
            goto fail;
        }
        n = recv_one(c, m, sizeof(m), 20, &from);
        if (n <= 0) {
            DTLSv1_handle_timeout(c->ssl);
            flush_out(c);
            continue;
        }
        if (m[0] < 4) {
            if (m[0] == 0 && m[1] == 1 && n >= 20) {
                answer_binding(c, m, &from);
            }
            continue;
        }
        if (m[0] >= 20 && m[0] <= 63) {
            BIO_write(c->rbio, m, n);
        }
    }
    prof = SSL_get_selected_srtp_profile(c->ssl);
    if (prof == NULL || strcmp(prof->name, "SRTP_AES128_CM_SHA1_80") != 0) {
        seterr(err, errlen, "port %u: no SRTP_AES128_CM_SHA1_80 negotiated", relay_port);
        goto fail;
    }
    if (SSL_export_keying_material(c->ssl, km, sizeof(km), "EXTRACTOR-dtls_srtp",
                                   19, NULL, 0, 0) != 1)
    {
        seterr(err, errlen, "keying material export failed");
        goto fail;
    }
    /* client key, server key, client salt, server salt */
    if (make_srtp(&c->tx, km + (server ? 16 : 0), km + (server ? 46 : 32), 0) != 0
        || make_srtp(&c->rx, km + (server ? 0 : 16), km + (server ? 32 : 46), 1) != 0)
    {
        seterr(err, errlen, "srtp_create failed");
        goto fail;
    }
    return c;

fail:
    if (c->ssl) {
        SSL_free(c->ssl);
    }
    free(c);
    return NULL;
}

int
wc_protect(wc_call *c, uint8_t *p, int *len)
{
    return srtp_protect(c->tx, p, len) == srtp_err_status_ok ? 0 : -1;
}

int
wc_unprotect(wc_call *c, uint8_t *p, int *len)
{
    return srtp_unprotect(c->rx, p, len) == srtp_err_status_ok ? 0 : -1;
}
