/*
 * Unit test of src/stun.c (ICE-Lite STUN responder).  From media-daemon/:
 *
 *   cc -std=gnu11 -Wall -Wextra -Werror -g -fsanitize=address,undefined \
 *      -fno-sanitize-recover=all -Isrc -o /tmp/test_stun \
 *      tests/test_stun.c src/stun.c src/util.c -lcrypto && /tmp/test_stun
 *
 * Prints "N passed, M failed" last and exits non-zero on a failure.  Every
 * datagram handed to md_stun_answer() sits in a heap block of exactly its
 * size, and every output buffer too, so AddressSanitizer sees any read
 * or write past either.  The references used to check the module are
 * independent of it: OpenSSL's HMAC() and a bitwise CRC-32 here.
 */

#include "stun.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>


static int  passed, failed;

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (cond) {                                                         \
            passed++;                                                       \
        } else {                                                            \
            if (failed++ < 50) {                                            \
                fprintf(stderr, "%s:%d: %s: FAILED: %s\n", __FILE__,       \
                        __LINE__, __func__, #cond);                         \
            }                                                               \
        }                                                                   \
    } while (0)


/* RFC 5769 §2.1 sample request, §2.2 sample IPv4 response */

static const char  *v_user = "evtj:h6vY";
static const char  *v_pwd = "VOkJxbRl1RmTxUk/WvJxBt";

static const uint8_t  v_req[108] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,     /* SOFTWARE */
    0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74,
    0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,     /* PRIORITY */
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,     /* ICE-CONTROLLED */
    0x51, 0x26, 0x3b, 0x36,
    0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a,     /* USERNAME */
    0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20,
    0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,     /* MESSAGE-INTEGRITY */
    0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5,
    0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2,
    0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf      /* FINGERPRINT */
};
#define V_REQ_CONTROLLED  48        /* offset of ICE-CONTROLLED */
#define V_REQ_MI          76        /* offset of MESSAGE-INTEGRITY */

static const uint8_t  v_resp[80] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,     /* SOFTWARE */
    0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47,     /* XOR-MAPPED-ADDR */
    0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,     /* MESSAGE-INTEGRITY */
    0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96      /* FINGERPRINT */
};
#define V_RESP_MI         48


/* ---- independent references ---- */

static uint32_t
ref_crc32(const uint8_t *p, size_t n)
{
    int       k;
    uint32_t  c;

    c = 0xffffffff;

    while (n--) {
        c ^= *p++;
        for (k = 0; k < 8; k++) {
            c = (c >> 1) ^ (0xedb88320 & -(c & 1));
        }
    }

    return ~c;
}


static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t) (p[0] << 8 | p[1]);
}


static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
           | (uint32_t) p[2] << 8 | p[3];
}


static void
put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t) (v >> 8);
    p[1] = (uint8_t) v;
}


static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) (v >> 24);
    p[1] = (uint8_t) (v >> 16);
    p[2] = (uint8_t) (v >> 8);
    p[3] = (uint8_t) v;
}


/* HMAC-SHA1 by OpenSSL's HMAC() */
static void
ref_hmac(const char *key, const uint8_t *p, size_t n, uint8_t mac[20])
{
    unsigned int  len;

    len = 20;
    HMAC(EVP_sha1(), key, (int) strlen(key), p, n, mac, &len);
}


/* ---- building messages ---- */

typedef struct {
    uint8_t             b[2048];
    size_t              len;
} msg_t;


static void
msg_start(msg_t *m, unsigned type, const uint8_t *tid)
{
    static uint32_t  seq;
    int              i;

    memset(m, 0, sizeof(*m));
    put16(m->b, type);
    put32(m->b + 4, 0x2112a442);

    if (tid != NULL) {
        memcpy(m->b + 8, tid, 12);

    } else {
        seq++;
        for (i = 0; i < 12; i++) {
            m->b[8 + i] = (uint8_t) (seq * 37 + (uint32_t) i * 11);
        }
    }

    m->len = 20;
}


static void
msg_fix(msg_t *m)
{
    put16(m->b + 2, (unsigned) (m->len - 20));
}


static void
msg_attr(msg_t *m, unsigned type, const void *v, size_t vlen)
{
    put16(m->b + m->len, type);
    put16(m->b + m->len + 2, (unsigned) vlen);
    if (vlen > 0) {
        memcpy(m->b + m->len + 4, v, vlen);
    }
    m->len += 4 + ((vlen + 3) & ~(size_t) 3);
    msg_fix(m);
}


static void
msg_attr32(msg_t *m, unsigned type, uint32_t v)
{
    uint8_t  b[4];

    put32(b, v);
    msg_attr(m, type, b, 4);
}


static void
msg_attr64(msg_t *m, unsigned type, uint64_t v)
{
    uint8_t  b[8];

    put32(b, (uint32_t) (v >> 32));
    put32(b + 4, (uint32_t) v);
    msg_attr(m, type, b, 8);
}


/* reference signing: MESSAGE-INTEGRITY when key, FINGERPRINT when fp */
static void
msg_sign(msg_t *m, const char *key, int fp)
{
    uint8_t  mac[20];

    if (key != NULL) {
        put16(m->b + 2, (unsigned) (m->len - 20 + 24));
        ref_hmac(key, m->b, m->len, mac);
        msg_attr(m, 0x0008, mac, 20);
    }

    if (fp) {
        put16(m->b + 2, (unsigned) (m->len - 20 + 8));
        msg_attr32(m, 0x8028, ref_crc32(m->b, m->len) ^ 0x5354554e);
    }
}


/* an ICE check as a full agent sends it (RFC 8445 §7.2.4) */
static void
msg_check(msg_t *m, const char *username, const char *key, int controlling,
    int use_candidate, uint32_t priority, uint64_t tiebreaker)
{
    msg_start(m, 0x0001, NULL);
    msg_attr(m, 0x0006, username, strlen(username));
    msg_attr32(m, 0x0024, priority);
    msg_attr64(m, controlling ? 0x802a : 0x8029, tiebreaker);
    if (use_candidate) {
        msg_attr(m, 0x0025, NULL, 0);
    }
    msg_sign(m, key, 1);
}


/* ---- calling the module on exact-size heap copies ---- */

static struct sockaddr_in  from;


static size_t
answer(const uint8_t *p, size_t n, const char *lufrag, const char *lpwd,
    const char *rufrag, uint8_t *out, size_t size, md_stun_req_t *req)
{
    size_t    r;
    uint8_t  *in, *o;

    in = malloc(n > 0 ? n : 1);
    o = malloc(size > 0 ? size : 1);
    if (in == NULL || o == NULL) {
        abort();
    }
    if (n > 0) {
        memcpy(in, p, n);
    }
    memset(o, 0xa5, size);          /* padding must not be left as is */

    r = md_stun_answer(in, n, &from, lufrag, lpwd, rufrag, o, size, req);

    if (r > size) {
        r = size;
    }
    memcpy(out, o, r);

    free(in);
    free(o);

    return r;
}


/* ---- checking responses independently ---- */

typedef struct {
    int                 ok;         /* well-formed, FINGERPRINT last, right */
    unsigned            type;
    uint8_t             tid[12];
    int                 code;       /* ERROR-CODE, 0 when none */
    int                 has_mi;
    int                 mi_ok;      /* with the key given */
    int                 has_xma;
    struct sockaddr_in  xma;
    size_t              nunknown;
    uint16_t            unknown[64];
    size_t              nattrs;
} resp_t;


static void
parse_resp(const uint8_t *p, size_t n, const char *key, resp_t *r)
{
    size_t    off, len, i;
    unsigned  type;
    uint8_t   mac[20], *copy;

    memset(r, 0, sizeof(*r));

    if (n < 20 || n % 4 != 0 || get16(p + 2) != n - 20
        || get32(p + 4) != 0x2112a442)
    {
        return;
    }

    r->type = get16(p);
    memcpy(r->tid, p + 8, 12);

    for (off = 20; off < n; off += 4 + ((len + 3) & ~(size_t) 3)) {
        if (n - off < 4) {
            return;
        }
        type = get16(p + off);
        len = get16(p + off + 2);
        if (((len + 3) & ~(size_t) 3) > n - off - 4) {
            return;
        }
        for (i = len; i % 4 != 0; i++) {
            if (p[off + 4 + i] != 0) {              /* zero padding */
                return;
            }
        }
        r->nattrs++;

        if (type == 0x0009 && len >= 4) {
            r->code = (p[off + 6] & 7) * 100 + p[off + 7];

        } else if (type == 0x000a) {
            for (i = 0; i + 1 < len && r->nunknown < 64; i += 2) {
                r->unknown[r->nunknown++] = get16(p + off + 4 + i);
            }

        } else if (type == 0x0020 && len == 8 && p[off + 5] == 1) {
            r->has_xma = 1;
            r->xma.sin_family = AF_INET;
            r->xma.sin_port = htons(get16(p + off + 6) ^ 0x2112);
            r->xma.sin_addr.s_addr = htonl(get32(p + off + 8) ^ 0x2112a442);

        } else if (type == 0x0008 && len == 20) {
            r->has_mi = 1;
            if (key != NULL) {
                copy = malloc(off);
                memcpy(copy, p, off);
                put16(copy + 2, (unsigned) (off - 20 + 24));
                ref_hmac(key, copy, off, mac);
                r->mi_ok = memcmp(mac, p + off + 4, 20) == 0;
                free(copy);
            }

        } else if (type == 0x8028) {
            if (len != 4 || off + 8 != n) {
                return;
            }
            r->ok = (ref_crc32(p, off) ^ 0x5354554e) == get32(p + off + 4);
        }
    }
}


static void
set_from(const char *addr, uint16_t port)
{
    memset(&from, 0, sizeof(from));
    from.sin_family = AF_INET;
    from.sin_port = htons(port);
    inet_pton(AF_INET, addr, &from.sin_addr);
}


/* ---- tests ---- */

static void
test_is(void)
{
    uint8_t  b[20];

    CHECK(md_stun_is(v_req, sizeof(v_req)));
    CHECK(md_stun_is(v_resp, sizeof(v_resp)));
    CHECK(md_stun_is(v_req, 20));
    CHECK(!md_stun_is(v_req, 19));
    CHECK(!md_stun_is(v_req, 0));

    memcpy(b, v_req, 20);
    b[0] = 0x80;                                /* RTP version 2 */
    CHECK(!md_stun_is(b, 20));
    b[0] = 0x16;                                /* DTLS handshake */
    CHECK(!md_stun_is(b, 20));
    b[0] = 0x03;
    CHECK(md_stun_is(b, 20));
    b[0] = 0x04;
    CHECK(!md_stun_is(b, 20));
    b[0] = 0x00;
    b[7] ^= 1;                                  /* cookie */
    CHECK(!md_stun_is(b, 20));
}


/* §2.2 and §2.1: md_stun_sign() reproduces both vectors' MI and FP */
static void
test_rfc5769_sign(void)
{
    size_t   size;
    uint8_t  b[128], *h;

    memcpy(b, v_resp, V_RESP_MI);
    put16(b + 2, 0x1234);                       /* rewritten by sign */
    CHECK(md_stun_sign(b, V_RESP_MI, sizeof(b), v_pwd) == sizeof(v_resp));
    CHECK(memcmp(b, v_resp, sizeof(v_resp)) == 0);

    memcpy(b, v_req, V_REQ_MI);
    CHECK(md_stun_sign(b, V_REQ_MI, sizeof(b), v_pwd) == sizeof(v_req));
    CHECK(memcmp(b, v_req, sizeof(v_req)) == 0);

    /* FINGERPRINT alone */
    memcpy(b, v_resp, V_RESP_MI);
    CHECK(md_stun_sign(b, V_RESP_MI, sizeof(b), NULL) == V_RESP_MI + 8);
    CHECK(get16(b + 2) == V_RESP_MI + 8 - 20);
    CHECK(get32(b + V_RESP_MI + 4)
          == (ref_crc32(b, V_RESP_MI) ^ 0x5354554e));

    /* no room: every size short of the result, in exact-size blocks */
    for (size = 0; size < sizeof(v_resp); size++) {
        h = malloc(size > V_RESP_MI ? size : V_RESP_MI);
        memcpy(h, v_resp, V_RESP_MI);
        CHECK(md_stun_sign(h, V_RESP_MI, size, v_pwd) == 0);
        free(h);
    }
    h = malloc(sizeof(v_resp));
    memcpy(h, v_resp, V_RESP_MI);
    CHECK(md_stun_sign(h, V_RESP_MI, sizeof(v_resp), v_pwd)
          == sizeof(v_resp));
    CHECK(memcmp(h, v_resp, sizeof(v_resp)) == 0);
    free(h);

    /* not a header plus whole attributes */
    memcpy(b, v_resp, V_RESP_MI);
    CHECK(md_stun_sign(b, 19, sizeof(b), v_pwd) == 0);
    CHECK(md_stun_sign(b, 22, sizeof(b), v_pwd) == 0);
    CHECK(md_stun_sign(b, 0, sizeof(b), v_pwd) == 0);
}


/* our HMAC against OpenSSL's HMAC() for keys of 0 to 200 bytes */
static void
test_hmac(void)
{
    char      key[201];
    size_t    klen, len, i;
    msg_t     m;
    uint8_t   b[600], mac[20];
    uint32_t  x;

    x = 12345;

    for (klen = 0; klen <= 200; klen += (klen < 70 ? 1 : 13)) {
        for (i = 0; i < klen; i++) {
            x = x * 1103515245 + 12345;
            key[i] = (char) (1 + (x >> 16) % 255);     /* no NUL */
        }
        key[klen] = '\0';

        len = 20 + 4 * ((klen * 7) % 120);
        msg_start(&m, 0x0101, NULL);
        for (i = 20; i < len; i++) {
            x = x * 1103515245 + 12345;
            m.b[i] = (uint8_t) (x >> 16);
        }
        m.len = len;

        memcpy(b, m.b, len);
        CHECK(md_stun_sign(b, len, sizeof(b), key) == len + 32);

        put16(m.b + 2, (unsigned) (len - 20 + 24));
        ref_hmac(key, m.b, len, mac);
        CHECK(memcmp(b + len + 4, mac, 20) == 0);
        CHECK(get16(b + len) == 0x0008 && get16(b + len + 2) == 20);
    }
}


static void
test_rfc5769_request(void)
{
    size_t         n;
    uint8_t        out[256];
    resp_t         r;
    msg_t          m;
    md_stun_req_t  req;

    set_from("192.0.2.1", 32853);
    CHECK(get16(v_req + 60) == 0x0006 && get16(v_req + 62) == 9
          && memcmp(v_req + 64, v_user, 9) == 0);

    /*
     * The sample request carries ICE-CONTROLLED: it authenticates
     * (USERNAME, MESSAGE-INTEGRITY, FINGERPRINT pass), and a lite agent,
     * always controlled, answers 487 signed with the password.
     */
    n = answer(v_req, sizeof(v_req), "evtj", v_pwd, "h6vY", out,
               sizeof(out), &req);
    parse_resp(out, n, v_pwd, &r);
    CHECK(n > 0);
    CHECK(r.ok);
    CHECK(r.type == 0x0111);
    CHECK(r.code == 487);
    CHECK(r.has_mi && r.mi_ok);
    CHECK(memcmp(r.tid, v_req + 8, 12) == 0);
    CHECK(!req.valid);
    CHECK(!req.controlling);
    CHECK(!req.use_candidate);
    CHECK(req.priority == 0x6e0001ff);
    CHECK(req.tiebreaker == 0x932ff9b151263b36ull);
    CHECK(strcmp(req.remote_ufrag, "h6vY") == 0);

    /* early check: remote ufrag not known yet */
    n = answer(v_req, sizeof(v_req), "evtj", v_pwd, "", out, sizeof(out),
               &req);
    parse_resp(out, n, v_pwd, &r);
    CHECK(r.ok && r.code == 487 && r.mi_ok);
    CHECK(strcmp(req.remote_ufrag, "h6vY") == 0);

    n = answer(v_req, sizeof(v_req), "evtj", v_pwd, NULL, out, sizeof(out),
               NULL);
    parse_resp(out, n, v_pwd, &r);
    CHECK(r.ok && r.code == 487 && r.mi_ok);

    /* the same request from a controlling agent: 200 */
    memcpy(m.b, v_req, V_REQ_MI);
    m.len = V_REQ_MI;
    put16(m.b + V_REQ_CONTROLLED, 0x802a);
    msg_fix(&m);
    msg_sign(&m, v_pwd, 1);
    CHECK(m.len == sizeof(v_req));

    n = answer(m.b, m.len, "evtj", v_pwd, "h6vY", out, sizeof(out), &req);
    parse_resp(out, n, v_pwd, &r);
    CHECK(n == 64);
    CHECK(r.ok && r.type == 0x0101 && r.code == 0);
    CHECK(r.has_mi && r.mi_ok);
    CHECK(memcmp(r.tid, v_req + 8, 12) == 0);
    CHECK(r.has_xma && r.xma.sin_port == from.sin_port
          && r.xma.sin_addr.s_addr == from.sin_addr.s_addr);
    /* the vectors' XOR-MAPPED-ADDRESS bytes for 192.0.2.1:32853 */
    CHECK(memcmp(out + 24, v_resp + 40, 8) == 0);
    CHECK(req.valid && req.controlling && !req.use_candidate);
    CHECK(req.tiebreaker == 0x932ff9b151263b36ull);
    CHECK(req.priority == 0x6e0001ff);

    /* wrong password, local ufrag, remote ufrag: 401 without MI */
    n = answer(v_req, sizeof(v_req), "evtj", "VOkJxbRl1RmTxUk/WvJxBu",
               "h6vY", out, sizeof(out), &req);
    parse_resp(out, n, v_pwd, &r);
    CHECK(r.ok && r.type == 0x0111 && r.code == 401 && !r.has_mi);
    CHECK(memcmp(r.tid, v_req + 8, 12) == 0);
    CHECK(!req.valid && req.remote_ufrag[0] == '\0');

    n = answer(m.b, m.len, "evtj", "wrong", "", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !r.has_mi && !req.valid);

    n = answer(m.b, m.len, "evtk", v_pwd, "h6vY", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !r.has_mi && !req.valid);

    n = answer(m.b, m.len, "evt", v_pwd, "h6vY", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);

    n = answer(m.b, m.len, "evtj", v_pwd, "h6vZ", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);

    n = answer(m.b, m.len, "evtj", v_pwd, "h6v", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);

    n = answer(m.b, m.len, "", v_pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, NULL, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);
}


/* a request built here: USE-CANDIDATE, ICE-CONTROLLING, PRIORITY */
static void
test_roundtrip(void)
{
    char           lufrag[9], lpwd[25], user[64];
    size_t         n;
    uint8_t        out[256], *buf;
    resp_t         r;
    msg_t          m;
    md_stun_req_t  req;

    md_ice_credentials(lufrag, lpwd);
    snprintf(user, sizeof(user), "%s:%s", lufrag, "rmt1");
    set_from("198.51.100.20", 61000);

    msg_check(&m, user, lpwd, 1, 1, 0x6e7f1eff, 0x0102030405060708ull);

    n = answer(m.b, m.len, lufrag, lpwd, "rmt1", out, sizeof(out), &req);
    parse_resp(out, n, lpwd, &r);
    CHECK(n == 64);
    CHECK(r.ok && r.type == 0x0101 && r.mi_ok && r.nattrs == 3);
    CHECK(memcmp(r.tid, m.b + 8, 12) == 0);
    CHECK(r.has_xma && r.xma.sin_port == from.sin_port
          && r.xma.sin_addr.s_addr == from.sin_addr.s_addr);
    /* layout: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT */
    CHECK(get16(out + 20) == 0x0020 && get16(out + 32) == 0x0008
          && get16(out + 56) == 0x8028);
    CHECK(req.valid && req.use_candidate && req.controlling);
    CHECK(req.tiebreaker == 0x0102030405060708ull);
    CHECK(req.priority == 0x6e7f1eff);
    CHECK(strcmp(req.remote_ufrag, "rmt1") == 0);

    /* the module's own signing gives the same request */
    {
        msg_t  m2;

        msg_start(&m2, 0x0001, m.b + 8);
        msg_attr(&m2, 0x0006, user, strlen(user));
        msg_attr32(&m2, 0x0024, 0x6e7f1eff);
        msg_attr64(&m2, 0x802a, 0x0102030405060708ull);
        msg_attr(&m2, 0x0025, NULL, 0);
        CHECK(md_stun_sign(m2.b, m2.len, sizeof(m2.b), lpwd) == m.len);
        CHECK(memcmp(m2.b, m.b, m.len) == 0);
    }

    /* without USE-CANDIDATE (a check before nomination) */
    msg_check(&m, user, lpwd, 1, 0, 1, 7);
    n = answer(m.b, m.len, lufrag, lpwd, "", out, sizeof(out), &req);
    parse_resp(out, n, lpwd, &r);
    CHECK(r.ok && r.type == 0x0101 && r.mi_ok);
    CHECK(req.valid && !req.use_candidate && req.controlling);
    CHECK(req.priority == 1 && req.tiebreaker == 7);

    /* in place: out is the request's buffer */
    msg_check(&m, user, lpwd, 1, 1, 5, 9);
    buf = malloc(MD_STUN_MAX_RESPONSE);
    memcpy(buf, m.b, m.len);
    n = md_stun_answer(buf, m.len, &from, lufrag, lpwd, "rmt1", buf,
                       MD_STUN_MAX_RESPONSE, &req);
    parse_resp(buf, n, lpwd, &r);
    CHECK(n == 64 && r.ok && r.type == 0x0101 && r.mi_ok && req.valid);
    CHECK(memcmp(r.tid, m.b + 8, 12) == 0);
    free(buf);

    /* output too small at every size: nothing, and no write past it */
    msg_check(&m, user, lpwd, 1, 1, 5, 9);
    for (n = 0; n < 64; n++) {
        CHECK(answer(m.b, m.len, lufrag, lpwd, "rmt1", out, n, &req) == 0);
    }
    CHECK(answer(m.b, m.len, lufrag, lpwd, "rmt1", out, 64, &req) == 64);

    /* NULL arguments */
    CHECK(md_stun_answer(m.b, m.len, NULL, lufrag, lpwd, "", out,
                         sizeof(out), &req) == 0);
    CHECK(md_stun_answer(NULL, 0, &from, lufrag, lpwd, "", out,
                         sizeof(out), &req) == 0);
    CHECK(md_stun_answer(m.b, m.len, &from, lufrag, NULL, "", out,
                         sizeof(out), &req) == 0);
}


static void
test_errors(void)
{
    int            i;
    char           user[600];
    size_t         n;
    uint8_t        out[256];
    resp_t         r;
    msg_t          m;
    md_stun_req_t  req;
    const char    *pwd = "0123456789abcdefghijkl";

    set_from("203.0.113.9", 5000);

    /* 400: no USERNAME, no MESSAGE-INTEGRITY, neither */
    msg_start(&m, 0x0001, NULL);
    msg_attr32(&m, 0x0024, 1);
    msg_attr64(&m, 0x802a, 1);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0111 && r.code == 400 && !r.has_mi);
    CHECK(memcmp(r.tid, m.b + 8, 12) == 0 && !req.valid);

    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr32(&m, 0x0024, 1);
    msg_sign(&m, NULL, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 400 && !r.has_mi && !req.valid);

    msg_start(&m, 0x0001, NULL);
    msg_sign(&m, NULL, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 400 && !r.has_mi && !req.valid);

    /* 420: comprehension-required attributes we do not know, listed once */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr32(&m, 0x0003, 0);                  /* CHANGE-REQUEST */
    msg_attr(&m, 0x7777, "abc", 3);
    msg_attr(&m, 0x7777, "", 0);
    msg_attr32(&m, 0x0024, 1);
    msg_attr64(&m, 0x802a, 1);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0111 && r.code == 420);
    CHECK(r.has_mi && r.mi_ok);
    CHECK(r.nunknown == 2 && r.unknown[0] == 0x0003
          && r.unknown[1] == 0x7777);
    CHECK(!req.valid && strcmp(req.remote_ufrag, "wxyz") == 0);

    /* 420 with more unknowns than listed still fits */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    for (i = 0; i < 40; i++) {
        msg_attr(&m, 0x4000 + (unsigned) i, "x", 1);
    }
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, MD_STUN_MAX_RESPONSE,
               &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 420 && r.mi_ok && r.nunknown == 16);
    CHECK(n <= MD_STUN_MAX_RESPONSE);

    /* comprehension-optional unknowns, known-but-unexpected: ignored */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0xc057, "\0\1\0\2", 4);        /* GOOG-NETWORK-INFO */
    msg_attr(&m, 0x8022, "tester", 6);          /* SOFTWARE */
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr(&m, 0x0020, "\0\1\0\0\0\0\0\0", 8);
    msg_attr32(&m, 0x0024, 77);
    msg_attr32(&m, 0x0024, 88);                 /* first one counts */
    msg_attr64(&m, 0x802a, 3);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0101 && r.mi_ok && req.valid);
    CHECK(req.priority == 77);

    /* the first USERNAME counts */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr(&m, 0x0006, "abce:wxyz", 9);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0101 && req.valid);

    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abce:wxyz", 9);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);

    /* 487: ICE-CONTROLLED, or both roles */
    msg_check(&m, "abcd:wxyz", pwd, 0, 0, 9, 0xffffffffffffffffull);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0111 && r.code == 487 && r.mi_ok);
    CHECK(!req.valid && !req.controlling);
    CHECK(req.tiebreaker == 0xffffffffffffffffull && req.priority == 9);

    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr64(&m, 0x802a, 1);
    msg_attr64(&m, 0x8029, 2);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 487 && r.mi_ok && !req.valid);

    /* no role attribute and no PRIORITY: accepted (a lite agent needs
     * neither) */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0101 && r.mi_ok && req.valid);
    CHECK(!req.controlling && req.priority == 0);

    /* a remote ufrag that does not fit remote_ufrag: 401 */
    memset(user, 'a', sizeof(user));
    memcpy(user, "abcd:", 5);
    user[5 + 63] = '\0';                        /* 63 after the colon */
    msg_check(&m, user, pwd, 1, 0, 1, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.type == 0x0101 && req.valid
          && strlen(req.remote_ufrag) == 63);

    user[5 + 63] = 'a';
    user[5 + 64] = '\0';
    msg_check(&m, user, pwd, 1, 0, 1, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401 && !req.valid);

    /* "abcd:" (empty remote part), "abcd:x:y", NUL in the remote part */
    msg_check(&m, "abcd:", pwd, 1, 0, 1, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401);

    msg_check(&m, "abcd:x:y", pwd, 1, 0, 1, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401);

    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:w\0yz", 9);
    msg_sign(&m, pwd, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401);

    /* USERNAME of 512 bytes is well-formed (401 here), 513 is not */
    memset(user, 'a', sizeof(user));
    memcpy(user, "abcd:", 5);
    user[512] = '\0';
    msg_check(&m, user, pwd, 1, 0, 1, 1);
    n = answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req);
    parse_resp(out, n, pwd, &r);
    CHECK(r.ok && r.code == 401);

    user[512] = 'a';
    user[513] = '\0';
    msg_check(&m, user, pwd, 1, 0, 1, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* a long password (over one SHA-1 block) */
    memset(user, 'k', 100);
    user[100] = '\0';
    msg_check(&m, "abcd:wxyz", user, 1, 1, 1, 1);
    n = answer(m.b, m.len, "abcd", user, "wxyz", out, sizeof(out), &req);
    parse_resp(out, n, user, &r);
    CHECK(r.ok && r.type == 0x0101 && r.mi_ok && req.valid);
}


/* messages dropped silently (RFC 5389 §7.3 basic checks) */
static void
test_drops(void)
{
    size_t         i, n;
    uint8_t        out[256];
    msg_t          m, good;
    md_stun_req_t  req;
    const char    *pwd = "0123456789abcdefghijkl";
    static const unsigned  lies[] = { 4, 1, 2, 3, 8, 0xfffc, 0xffff };

    set_from("203.0.113.9", 5000);
    msg_check(&good, "abcd:wxyz", pwd, 1, 1, 1, 1);
    CHECK(answer(good.b, good.len, "abcd", pwd, "wxyz", out, sizeof(out),
                 &req) == 64 && req.valid);

    /* responses and indications */
    CHECK(answer(v_resp, sizeof(v_resp), "evtj", v_pwd, "", out,
                 sizeof(out), &req) == 0);
    m = good;
    put16(m.b, 0x0011);                         /* Binding indication */
    m.len -= 32;
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    put16(m.b, 0x0111);
    m.len -= 32;
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* another method (Allocate), a set bit past the 14-bit type */
    m = good;
    put16(m.b, 0x0003);
    m.len -= 32;
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    m.b[0] = 0x40;
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* the length field lies; the datagram has bytes past the message */
    for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        m = good;
        put16(m.b + 2, (unsigned) (m.len - 20 + lies[i]) & 0xffff);
        CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req)
              == 0);
        put16(m.b + 2, (unsigned) (m.len - 20 - lies[i]) & 0xffff);
        CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req)
              == 0);
    }
    /* ... even when FINGERPRINT was computed over the lie */
    for (i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        m = good;
        m.len -= 8;
        put16(m.b + 2, (unsigned) (m.len - 20 + 8 + lies[i]) & 0xffff);
        put16(m.b + m.len, 0x8028);
        put16(m.b + m.len + 2, 4);
        put32(m.b + m.len + 4, ref_crc32(m.b, m.len) ^ 0x5354554e);
        m.len += 8;
        CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req)
              == 0);
    }
    m = good;
    CHECK(answer(m.b, m.len + 4, "abcd", pwd, "", out, sizeof(out), &req)
          == 0);
    CHECK(answer(m.b, m.len + 1, "abcd", pwd, "", out, sizeof(out), &req)
          == 0);

    /* no FINGERPRINT, a wrong one, one that is not last, two */
    m = good;
    m.len -= 8;
    msg_fix(&m);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    m.b[m.len - 1] ^= 1;
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    msg_attr(&m, 0x8022, "late", 4);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    msg_sign(&m, NULL, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* MESSAGE-INTEGRITY followed by something else (strict), twice, or
     * of the wrong size */
    m = good;
    m.len -= 8;
    msg_attr(&m, 0x8022, "soft", 4);
    msg_sign(&m, NULL, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    m.len -= 8;
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    m = good;
    m.len -= 32;
    msg_attr(&m, 0x0008, "0123456789abcdef", 16);
    msg_sign(&m, NULL, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* known attributes of the wrong size */
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr(&m, 0x0025, "\0\0\0\0", 4);
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr(&m, 0x0024, "\0\0\1", 3);
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x0006, "abcd:wxyz", 9);
    msg_attr32(&m, 0x802a, 1);
    msg_sign(&m, pwd, 1);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* attributes running past the message: the value, the padding */
    for (i = 0; i < 3; i++) {
        static const unsigned  bad[] = { 0x0100, 13, 0xffff };

        m = good;
        put16(m.b + 22, bad[i]);                /* USERNAME's length */
        CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req)
              == 0);
        m = good;
        put16(m.b + m.len - 6, bad[i]);         /* FINGERPRINT's length */
        CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req)
              == 0);
    }
    msg_start(&m, 0x0001, NULL);
    msg_attr(&m, 0x8022, "abcde", 5);           /* 8 bytes with padding */
    m.len -= 4;                                 /* only 4 there */
    msg_fix(&m);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);
    msg_start(&m, 0x0001, NULL);
    put16(m.b + 2, 4);                          /* a lone attr header */
    put16(m.b + 20, 0x8022);
    m.len = 24;
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* a header only */
    msg_start(&m, 0x0001, NULL);
    CHECK(answer(m.b, m.len, "abcd", pwd, "", out, sizeof(out), &req) == 0);

    /* every truncation of a good request, and of the RFC 5769 request,
     * as sent and with the length field made consistent */
    for (n = 0; n < good.len; n++) {
        m = good;
        CHECK(answer(m.b, n, "abcd", pwd, "", out, sizeof(out), &req) == 0);
        CHECK(!req.valid);
        if (n >= 20) {
            resp_t  r;
            size_t  k;

            put16(m.b + 2, (unsigned) (n - 20));
            k = answer(m.b, n, "abcd", pwd, "", out, sizeof(out), &req);
            parse_resp(out, k, NULL, &r);
            CHECK(k == 0 || (r.ok && r.type == 0x0111));
            CHECK(!req.valid);
        }
    }
    for (n = 0; n < sizeof(v_req); n++) {
        CHECK(answer(v_req, n, "evtj", v_pwd, "", out, sizeof(out), &req)
              == 0);
    }
}


/* ---- fuzzing ---- */

#ifndef FUZZ_ITERATIONS
#define FUZZ_ITERATIONS  100000
#endif

static uint64_t  rng = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t) (rng >> 16);
}


static void
test_fuzz(void)
{
    int            it, k, nbad, nvalid, nerr, nzero;
    size_t         i, n, base_len, mi, cnt;
    uint8_t        out[MD_STUN_MAX_RESPONSE];
    uint32_t       a, b;
    resp_t         r;
    msg_t          seeds[5], m;
    md_stun_req_t  req;
    const char    *pwd = "0123456789abcdefghijkl", *key, *ruf;

    msg_check(&seeds[0], "abcd:wxyz", pwd, 1, 1, 0x6e0001ff, 42);
    msg_check(&seeds[1], "abcd:wxyz", pwd, 0, 0, 1, 43);
    msg_start(&seeds[2], 0x0001, NULL);
    msg_attr(&seeds[2], 0x8022, "fuzz", 4);
    msg_attr(&seeds[2], 0x0006, "abcd:wxyz", 9);
    msg_attr32(&seeds[2], 0x0003, 0);
    msg_attr(&seeds[2], 0x0025, NULL, 0);
    msg_sign(&seeds[2], pwd, 1);
    msg_start(&seeds[3], 0x0001, NULL);
    msg_attr(&seeds[3], 0x0024, "\1\2\3\4", 4);
    msg_sign(&seeds[3], NULL, 1);
    memcpy(seeds[4].b, v_req, sizeof(v_req));
    seeds[4].len = sizeof(v_req);

    set_from("192.0.2.33", 3478);
    nbad = nvalid = nerr = nzero = 0;

    for (it = 0; it < FUZZ_ITERATIONS; it++) {
        k = (int) (rnd() % 5);
        m = seeds[k];
        base_len = m.len;
        key = (k == 4) ? v_pwd : pwd;
        mi = base_len - 32;         /* MESSAGE-INTEGRITY of seeds 0-2, 4 */

        switch (rnd() % 6) {

        case 0:     /* flip bytes */
            cnt = 1 + rnd() % 4;
            for (i = 0; i < cnt; i++) {
                a = rnd() % m.len;
                m.b[a] ^= (uint8_t) (1 + rnd() % 255);
            }
            break;

        case 1:     /* an attribute length field anywhere */
            a = 20 + 4 * (rnd() % ((m.len - 20) / 4)) + 2;
            b = rnd();
            put16(m.b + a, b & ((rnd() & 1) ? 0xffff : 0x3f));
            break;

        case 2:     /* cut or extend, the length field following or not */
            n = rnd() % (m.len + 40);
            for (i = m.len; i < n; i++) {
                m.b[i] = (uint8_t) rnd();
            }
            m.len = n;
            if (rnd() & 1 && n >= 20) {
                put16(m.b + 2, (unsigned) (n - 20));
            }
            break;

        case 3:     /* mutate the part before MESSAGE-INTEGRITY, re-sign */
        case 4:
            if (k == 3) {
                mi = base_len - 8;
            }
            m.len = mi;
            cnt = 1 + rnd() % 3;
            for (i = 0; i < cnt; i++) {
                n = 20 + rnd() % (m.len - 20);
                if (rnd() & 1) {
                    m.b[n] ^= (uint8_t) (1 + rnd() % 255);
                } else {
                    m.b[n & ~(size_t) 3] = (uint8_t) (rnd() & 0x80);
                    m.b[(n & ~(size_t) 3) + 1] = (uint8_t) rnd();
                }
            }
            if (rnd() % 4 == 0) {           /* append an attribute */
                uint8_t  v[12];

                for (i = 0; i < sizeof(v); i++) {
                    v[i] = (uint8_t) rnd();
                }
                a = rnd() & 0xffff;
                msg_attr(&m, a, v, rnd() % 13);
            }
            msg_fix(&m);
            a = rnd() % 8;
            msg_sign(&m, a ? key : NULL, (rnd() % 16) != 0);
            break;

        default:    /* random bytes after a valid-looking header */
            n = 20 + 4 * (rnd() % 24);
            for (i = 20; i < n; i++) {
                m.b[i] = (uint8_t) rnd();
            }
            m.len = n;
            msg_fix(&m);
            if (rnd() & 1) {
                msg_sign(&m, key, 1);
            }
            break;
        }

        ruf = (rnd() & 1) ? "" : (k == 4 ? "h6vY" : "wxyz");

        a = rnd() % 8;
        b = rnd() % 8;
        n = answer(m.b, m.len, k == 4 ? "evtj" : "abcd",
                   a ? key : "wrong", ruf, out,
                   b ? sizeof(out) : rnd() % sizeof(out), &req);

        if (n == 0) {
            nzero++;
            if (req.valid) {
                nbad++;
            }
            continue;
        }

        parse_resp(out, n, key, &r);

        if (!r.ok || n > sizeof(out) || memcmp(r.tid, m.b + 8, 12) != 0) {
            nbad++;
            continue;
        }

        if (r.type == 0x0101) {
            nvalid++;
            if (!req.valid || !r.mi_ok || !r.has_xma || r.code != 0
                || r.xma.sin_port != from.sin_port)
            {
                nbad++;
            }

        } else if (r.type == 0x0111) {
            nerr++;
            if (req.valid
                || (r.code != 400 && r.code != 401 && r.code != 420
                    && r.code != 487)
                || ((r.code == 400 || r.code == 401) && r.has_mi)
                || ((r.code == 420 || r.code == 487) && !r.mi_ok))
            {
                nbad++;
            }

        } else {
            nbad++;
        }
    }

    CHECK(nbad == 0);
    /* the mutations reach every outcome */
    CHECK(nvalid > 1000);
    CHECK(nerr > 1000);
    CHECK(nzero > 1000);
    printf("fuzz: %d mutated requests: %d answered 200, %d errors, "
           "%d dropped, %d bad\n", FUZZ_ITERATIONS, nvalid, nerr, nzero,
           nbad);
}


/* ---- no allocation by OpenSSL in the packet path ---- */

static int  allocs, counting;

static void *
count_malloc(size_t n, const char *file, int line)
{
    (void) file;
    (void) line;
    allocs += counting;
    return malloc(n);
}

static void *
count_realloc(void *p, size_t n, const char *file, int line)
{
    (void) file;
    (void) line;
    allocs += counting;
    return realloc(p, n);
}

static void
count_free(void *p, const char *file, int line)
{
    (void) file;
    (void) line;
    free(p);
}


static void
test_no_alloc(int hooked)
{
    int            i;
    uint8_t        out[MD_STUN_MAX_RESPONSE], b[256];
    msg_t          m;
    md_stun_req_t  req;
    const char    *pwd = "0123456789abcdefghijkl";

    CHECK(hooked);

    msg_check(&m, "abcd:wxyz", pwd, 1, 1, 1, 1);
    memcpy(b, m.b, m.len);

    allocs = 0;
    counting = 1;
    for (i = 0; i < 100; i++) {
        CHECK(md_stun_answer(b, m.len, &from, "abcd", pwd, "wxyz", out,
                             sizeof(out), &req) == 64);
        CHECK(md_stun_answer(b, m.len, &from, "abcd", "bad", "wxyz", out,
                             sizeof(out), &req) > 0);
    }
    counting = 0;
    CHECK(allocs == 0);

    /* the counter works: OpenSSL's HMAC() allocates */
    counting = 1;
    ref_hmac(pwd, b, m.len, out);
    counting = 0;
    CHECK(allocs > 0);
}


/* ---- credentials and candidates ---- */

static void
test_credentials(void)
{
    int     i, bad, useen[256], pseen[256];
    char    u[9], p[25], u0[9], p0[25];
    size_t  k, udistinct, pdistinct;

    memset(useen, 0, sizeof(useen));
    memset(pseen, 0, sizeof(pseen));
    bad = 0;
    md_ice_credentials(u0, p0);

    for (i = 0; i < 2000; i++) {
        md_ice_credentials(u, p);
        if (strlen(u) != 8 || strlen(p) != 24) {
            bad++;
        }
        for (k = 0; k < 8; k++) {
            useen[(uint8_t) u[k]]++;
        }
        for (k = 0; k < 24; k++) {
            pseen[(uint8_t) p[k]]++;
        }
        if (strcmp(u, u0) == 0 || strcmp(p, p0) == 0) {
            bad++;
        }
    }

    udistinct = pdistinct = 0;
    for (k = 0; k < 256; k++) {
        if (useen[k] == 0 && pseen[k] == 0) {
            continue;
        }
        udistinct += useen[k] > 0;
        pdistinct += pseen[k] > 0;
        /* RFC 8839 §5.4: ice-char = ALPHA / DIGIT / "+" / "/" */
        if (!((k >= 'A' && k <= 'Z') || (k >= 'a' && k <= 'z')
              || (k >= '0' && k <= '9') || k == '+' || k == '/'))
        {
            bad++;
        }
        /* uniform: 16000 ufrag chars, 48000 pwd chars over 64 (> 6
         * standard deviations off fails) */
        if (useen[k] < 150 || useen[k] > 350 || pseen[k] < 550
            || pseen[k] > 950)
        {
            bad++;
        }
    }

    CHECK(bad == 0);
    CHECK(udistinct == 64 && pdistinct == 64);
}


static void
test_candidate(void)
{
    int             n;
    char            buf[128];
    const char     *host, *srflx;
    struct in_addr  a, ra;

    inet_pton(AF_INET, "203.0.113.5", &a);
    inet_pton(AF_INET, "10.0.0.5", &ra);

    host = "1 1 UDP 2130706431 203.0.113.5 40000 typ host";
    n = md_ice_candidate(buf, sizeof(buf), "1", &a, 40000, 0, NULL, 0);
    CHECK(n == (int) strlen(host) && strcmp(buf, host) == 0);

    /* raddr is ignored for a host candidate */
    n = md_ice_candidate(buf, sizeof(buf), "1", &a, 40000, 0, &ra, 1);
    CHECK(n == (int) strlen(host) && strcmp(buf, host) == 0);

    srflx = "2 1 UDP 1694498815 203.0.113.5 40002 typ srflx raddr 10.0.0.5"
            " rport 40002";
    n = md_ice_candidate(buf, sizeof(buf), "2", &a, 40002, 1, &ra, 40002);
    CHECK(n == (int) strlen(srflx) && strcmp(buf, srflx) == 0);

    /* RFC 8445 §5.1.2.1 with §5.1.2.2's preferences */
    CHECK(2130706431u == (126u << 24) + (65535u << 8) + 255u);
    CHECK(1694498815u == (100u << 24) + (65535u << 8) + 255u);

    /* exact fit, one short */
    n = md_ice_candidate(buf, strlen(host) + 1, "1", &a, 40000, 0, NULL, 0);
    CHECK(n == (int) strlen(host));
    n = md_ice_candidate(buf, strlen(host), "1", &a, 40000, 0, NULL, 0);
    CHECK(n == -1 && buf[0] == '\0');
    CHECK(md_ice_candidate(buf, 0, "1", &a, 40000, 0, NULL, 0) == -1);

    /* bad arguments */
    CHECK(md_ice_candidate(buf, sizeof(buf), "", &a, 1, 0, NULL, 0) == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf), "a b", &a, 1, 0, NULL, 0)
          == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf), "x:y", &a, 1, 0, NULL, 0)
          == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf),
          "abcdefghijklmnopqrstuvwxyz0123456", &a, 1, 0, NULL, 0) == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf),
          "abcdefghijklmnopqrstuvwxyz012345", &a, 1, 0, NULL, 0) > 0);
    CHECK(md_ice_candidate(buf, sizeof(buf), "a+/9", &a, 1, 0, NULL, 0) > 0);
    CHECK(md_ice_candidate(buf, sizeof(buf), "1", &a, 1, 1, NULL, 0) == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf), "1", &a, 0, 0, NULL, 0) == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf), NULL, &a, 1, 0, NULL, 0)
          == -1);
    CHECK(md_ice_candidate(buf, sizeof(buf), "1", NULL, 1, 0, NULL, 0)
          == -1);
}


int
main(void)
{
    int  hooked;

    /* before anything makes OpenSSL allocate */
    hooked = CRYPTO_set_mem_functions(count_malloc, count_realloc,
                                      count_free);

    test_is();
    test_rfc5769_sign();
    test_hmac();
    test_rfc5769_request();
    test_roundtrip();
    test_errors();
    test_drops();
    test_no_alloc(hooked);
    test_credentials();
    test_candidate();
    test_fuzz();

    printf("%d passed, %d failed\n", passed, failed);

    return failed != 0;
}
