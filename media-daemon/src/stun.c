/*
 * The ICE-Lite STUN responder (see stun.h): RFC 5389 STUN as RFC 8445
 * §7.3 uses it for connectivity checks, short-term credentials only.
 *
 * MESSAGE-INTEGRITY is HMAC-SHA1 (RFC 2104), built here on OpenSSL's
 * SHA-1 block functions: the EVP layer of OpenSSL 3.0, under HMAC(),
 * allocates on every call (13 allocations per HMAC(), measured), and the
 * packet path must not allocate.  SHA1_Init() and friends are deprecated
 * since OpenSSL 3.0 but remain in the 3.x ABI; the tests compare the
 * result with OpenSSL's HMAC() and the RFC 5769 vectors.  FINGERPRINT's
 * CRC-32 is written here (no zlib).
 */

#define OPENSSL_SUPPRESS_DEPRECATED

#include "stun.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>


#define MD_STUN_HEADER        20             /* RFC 5389 §6 */
#define MD_STUN_COOKIE        0x2112a442u
#define MD_STUN_HMAC          20             /* HMAC-SHA1 output */
#define MD_STUN_FP_XOR        0x5354554eu    /* RFC 5389 §15.5 */
#define MD_STUN_MAX_USERNAME  512            /* §15.3: < 513 bytes */
#define MD_STUN_MAX_UNKNOWN   16             /* listed in a 420 */

/* message type (§6): method Binding; class bits C1 0x0100, C0 0x0010 */
#define MD_STUN_BINDING       0x0001
#define MD_STUN_CLASS         0x0110
#define MD_STUN_REQUEST       0x0000
#define MD_STUN_SUCCESS       0x0100
#define MD_STUN_ERROR         0x0110

/* attribute types: RFC 5389 §18.2, RFC 8445 §16.1 */
#define MD_ATTR_MAPPED_ADDRESS      0x0001
#define MD_ATTR_USERNAME            0x0006
#define MD_ATTR_MESSAGE_INTEGRITY   0x0008
#define MD_ATTR_ERROR_CODE          0x0009
#define MD_ATTR_UNKNOWN_ATTRIBUTES  0x000a
#define MD_ATTR_REALM               0x0014
#define MD_ATTR_NONCE               0x0015
#define MD_ATTR_XOR_MAPPED_ADDRESS  0x0020
#define MD_ATTR_PRIORITY            0x0024
#define MD_ATTR_USE_CANDIDATE       0x0025
#define MD_ATTR_FINGERPRINT         0x8028
#define MD_ATTR_ICE_CONTROLLED      0x8029
#define MD_ATTR_ICE_CONTROLLING     0x802a


/* what the attributes of a request say; pointers into the request */
typedef struct {
    const uint8_t      *username;
    size_t              username_len;
    size_t              integrity;      /* offset of MESSAGE-INTEGRITY,
                                           0 when absent */
    int                 has_fingerprint;
    uint32_t            fingerprint;
    int                 has_priority;
    uint32_t            priority;
    int                 use_candidate;
    int                 controlling;
    int                 controlled;
    uint64_t            tiebreaker;
    size_t              nunknown;
    uint16_t            unknown[MD_STUN_MAX_UNKNOWN];
} md_stun_msg_t;

typedef struct {
    SHA_CTX             inner;
    SHA_CTX             outer;
} md_hmac_t;


static const char  md_ice_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


/* CRC-32 of ITU-T V.42 (RFC 5389 §15.5): reflected 0xedb88320, by nibble */
static uint32_t
md_crc32(const uint8_t *p, size_t n)
{
    static const uint32_t  t[16] = {
        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
        0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
        0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c
    };
    uint32_t               c;

    c = 0xffffffff;

    while (n--) {
        c ^= *p++;
        c = (c >> 4) ^ t[c & 15];
        c = (c >> 4) ^ t[c & 15];
    }

    return c ^ 0xffffffff;
}


/* HMAC (RFC 2104) over SHA-1; a key longer than a block is hashed first */
static void
md_hmac_init(md_hmac_t *h, const char *key)
{
    size_t    i, len;
    uint8_t   k[SHA_CBLOCK], pad[SHA_CBLOCK];
    SHA_CTX   c;

    memset(k, 0, sizeof(k));
    len = strlen(key);

    if (len > SHA_CBLOCK) {
        SHA1_Init(&c);
        SHA1_Update(&c, key, len);
        SHA1_Final(k, &c);

    } else {
        memcpy(k, key, len);
    }

    for (i = 0; i < SHA_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x36;
    }
    SHA1_Init(&h->inner);
    SHA1_Update(&h->inner, pad, SHA_CBLOCK);

    for (i = 0; i < SHA_CBLOCK; i++) {
        pad[i] = k[i] ^ 0x5c;
    }
    SHA1_Init(&h->outer);
    SHA1_Update(&h->outer, pad, SHA_CBLOCK);

    OPENSSL_cleanse(k, sizeof(k));
    OPENSSL_cleanse(pad, sizeof(pad));
}


static void
md_hmac_final(md_hmac_t *h, uint8_t mac[MD_STUN_HMAC])
{
    uint8_t  d[SHA_DIGEST_LENGTH];

    SHA1_Final(d, &h->inner);
    SHA1_Update(&h->outer, d, sizeof(d));
    SHA1_Final(mac, &h->outer);
}


/*
 * RFC 5389 §15.4: the HMAC of the message m up to the MESSAGE-INTEGRITY
 * attribute at offset off, with the header's length field pointing to
 * the end of that attribute
 */
static void
md_stun_integrity(const uint8_t *m, size_t off, const char *key,
    uint8_t mac[MD_STUN_HMAC])
{
    uint8_t    hdr[4];
    md_hmac_t  h;

    hdr[0] = m[0];
    hdr[1] = m[1];
    md_put16(hdr + 2, off - MD_STUN_HEADER + 4 + MD_STUN_HMAC);

    md_hmac_init(&h, key);
    SHA1_Update(&h.inner, hdr, sizeof(hdr));
    SHA1_Update(&h.inner, m + 4, off - 4);
    md_hmac_final(&h, mac);
}


int
md_stun_is(const uint8_t *p, size_t n)
{
    return n >= MD_STUN_HEADER && p[0] <= 3
           && md_get32(p + 4) == MD_STUN_COOKIE;
}


/*
 * One attribute of a request (type, len bytes of value at v, at offset
 * off; last: it ends the message) into m; -1 when its length is wrong
 * or a FINGERPRINT is not last
 */
static int
md_stun_attr_take(md_stun_msg_t *m, uint16_t type, const uint8_t *v,
    size_t len, size_t off, int last)
{
    size_t  i;

    switch (type) {

    case MD_ATTR_USERNAME:
        if (len > MD_STUN_MAX_USERNAME) {
            return -1;
        }
        if (m->username == NULL) {
            m->username = v;
            m->username_len = len;
        }
        break;

    case MD_ATTR_MESSAGE_INTEGRITY:
        if (len != MD_STUN_HMAC) {
            return -1;
        }
        m->integrity = off;
        break;

    case MD_ATTR_FINGERPRINT:
        if (len != 4 || !last) {
            return -1;
        }
        m->has_fingerprint = 1;
        m->fingerprint = md_get32(v);
        break;

    case MD_ATTR_PRIORITY:
        if (len != 4) {
            return -1;
        }
        if (!m->has_priority) {
            m->has_priority = 1;
            m->priority = md_get32(v);
        }
        break;

    case MD_ATTR_USE_CANDIDATE:
        if (len != 0) {
            return -1;
        }
        m->use_candidate = 1;
        break;

    case MD_ATTR_ICE_CONTROLLED:
    case MD_ATTR_ICE_CONTROLLING:
        if (len != 8) {
            return -1;
        }
        if (!m->controlled && !m->controlling) {
            m->tiebreaker = (uint64_t) md_get32(v) << 32
                            | md_get32(v + 4);
        }
        if (type == MD_ATTR_ICE_CONTROLLED) {
            m->controlled = 1;
        } else {
            m->controlling = 1;
        }
        break;

    /* RFC 5389 §7.3: known but unexpected in a request, ignored */
    case MD_ATTR_MAPPED_ADDRESS:
    case MD_ATTR_ERROR_CODE:
    case MD_ATTR_UNKNOWN_ATTRIBUTES:
    case MD_ATTR_REALM:
    case MD_ATTR_NONCE:
    case MD_ATTR_XOR_MAPPED_ADDRESS:
        break;

    default:
        /* §15: 0x0000-0x7fff are comprehension-required */
        if (type >= 0x8000) {
            break;
        }
        for (i = 0; i < m->nunknown; i++) {
            if (m->unknown[i] == type) {
                break;
            }
        }
        if (i == m->nunknown && m->nunknown < MD_STUN_MAX_UNKNOWN) {
            m->unknown[m->nunknown++] = type;
        }
        break;
    }

    return 0;
}


/*
 * Walks the attributes of the message p[0..n) (header checked) into m.
 * Returns -1 when the message is malformed: an attribute or its padding
 * (§15) runs past the message, a known attribute has a wrong length,
 * USERNAME is too long (§15.3), anything but FINGERPRINT follows
 * MESSAGE-INTEGRITY (§15.4 has receivers ignore them; we are strict), or
 * FINGERPRINT is not last (§15.5).  For other attributes only the first
 * occurrence counts (§15).
 */
static int
md_stun_parse(const uint8_t *p, size_t n, md_stun_msg_t *m)
{
    size_t          off, len, next;
    uint16_t        type;
    const uint8_t  *v;

    memset(m, 0, sizeof(*m));

    for (off = MD_STUN_HEADER; off < n; off = next) {

        if (n - off < 4) {
            return -1;
        }

        type = md_get16(p + off);
        len = md_get16(p + off + 2);
        v = p + off + 4;

        if (((len + 3) & ~(size_t) 3) > n - off - 4) {
            return -1;
        }

        next = off + 4 + ((len + 3) & ~(size_t) 3);

        if (m->has_fingerprint
            || (m->integrity != 0 && type != MD_ATTR_FINGERPRINT)
            || md_stun_attr_take(m, type, v, len, off, next == n) != 0)
        {
            return -1;
        }
    }

    return 0;
}


/*
 * RFC 8445 §7.3: USERNAME is "<local ufrag>:<remote ufrag>"; the remote
 * part is checked against rufrag when it is known.  The remote part is
 * copied to remote (rsize bytes, NUL-terminated); longer ones fail.
 */
static int
md_stun_username(const md_stun_msg_t *m, const char *lufrag,
    const char *rufrag, char *remote, size_t rsize)
{
    size_t          llen, rlen;
    const uint8_t  *r;

    llen = strlen(lufrag);

    if (llen == 0 || m->username_len < llen + 2
        || memcmp(m->username, lufrag, llen) != 0
        || m->username[llen] != ':')
    {
        return 0;
    }

    r = m->username + llen + 1;
    rlen = m->username_len - llen - 1;

    if (rlen >= rsize || memchr(r, '\0', rlen) != NULL
        || memchr(r, ':', rlen) != NULL)
    {
        return 0;
    }

    if (rufrag[0] != '\0'
        && (strlen(rufrag) != rlen || memcmp(r, rufrag, rlen) != 0))
    {
        return 0;
    }

    memcpy(remote, r, rlen);
    remote[rlen] = '\0';

    return 1;
}


/* a response header for transaction tid; returns 20, or 0: no room */
static size_t
md_stun_header(uint8_t *out, size_t size, uint16_t type,
    const uint8_t tid[12])
{
    if (size < MD_STUN_HEADER) {
        return 0;
    }

    md_put16(out, type);
    md_put16(out + 2, 0);
    md_put32(out + 4, MD_STUN_COOKIE);
    memcpy(out + 8, tid, 12);

    return MD_STUN_HEADER;
}


/*
 * appends an attribute, zero-padded (§15), to out[0..len); returns the
 * new length, or 0 when len is 0 (an earlier failure) or there is no room
 */
static size_t
md_stun_attr(uint8_t *out, size_t len, size_t size, uint16_t type,
    const uint8_t *v, size_t vlen)
{
    size_t  padded;

    padded = (vlen + 3) & ~(size_t) 3;

    if (len == 0 || len > size || size - len < 4 + padded) {
        return 0;
    }

    md_put16(out + len, type);
    md_put16(out + len + 2, vlen);
    memcpy(out + len + 4, v, vlen);
    memset(out + len + 4 + vlen, 0, padded - vlen);

    return len + 4 + padded;
}


size_t
md_stun_sign(uint8_t *m, size_t len, size_t size, const char *key)
{
    size_t  need;

    need = (key != NULL ? 4 + MD_STUN_HMAC : 0) + 8;

    if (len < MD_STUN_HEADER || len % 4 != 0 || len > size
        || size - len < need || len - MD_STUN_HEADER + need > 0xffff)
    {
        return 0;
    }

    if (key != NULL) {
        md_put16(m + len, MD_ATTR_MESSAGE_INTEGRITY);
        md_put16(m + len + 2, MD_STUN_HMAC);
        md_stun_integrity(m, len, key, m + len + 4);
        len += 4 + MD_STUN_HMAC;
    }

    /* §15.5: the length field counts FINGERPRINT before the CRC */
    md_put16(m + 2, len - MD_STUN_HEADER + 8);
    md_put16(m + len, MD_ATTR_FINGERPRINT);
    md_put16(m + len + 2, 4);
    md_put32(m + len + 4, md_crc32(m, len) ^ MD_STUN_FP_XOR);

    return len + 8;
}


/*
 * RFC 5389 §7.3.1.1: a Binding error response with ERROR-CODE (§15.6),
 * and for 420 UNKNOWN-ATTRIBUTES (§15.9); signed with key when the
 * request was authenticated (§10.1.2), else FINGERPRINT only
 */
static size_t
md_stun_error(uint8_t *out, size_t size, const uint8_t tid[12], int code,
    const char *reason, const uint16_t *unknown, size_t nunknown,
    const char *key)
{
    size_t   i, len, rlen;
    uint8_t  v[4 + 32];

    rlen = strlen(reason);          /* our own phrases, < 32 bytes */

    v[0] = 0;
    v[1] = 0;
    v[2] = (uint8_t) (code / 100);
    v[3] = (uint8_t) (code % 100);
    memcpy(v + 4, reason, rlen);

    len = md_stun_header(out, size, MD_STUN_BINDING | MD_STUN_ERROR, tid);
    len = md_stun_attr(out, len, size, MD_ATTR_ERROR_CODE, v, 4 + rlen);

    if (nunknown > 0) {
        uint8_t  u[2 * MD_STUN_MAX_UNKNOWN];

        for (i = 0; i < nunknown; i++) {
            md_put16(u + 2 * i, unknown[i]);
        }
        len = md_stun_attr(out, len, size, MD_ATTR_UNKNOWN_ATTRIBUTES, u,
                           2 * nunknown);
    }

    return md_stun_sign(out, len, size, key);
}


/*
 * RFC 5389 §7.3: 1 when p[0..n) is a request to answer, parsed into m:
 * the header (§6), a length that covers the datagram in whole
 * attributes, a Binding request (responses and indications need nothing
 * from a lite agent; other methods are unsupported), well-formed
 * attributes, and the FINGERPRINT that RFC 8445 §7.3 requires; anything
 * else is discarded silently
 */
static int
md_stun_request(const uint8_t *p, size_t n, md_stun_msg_t *m)
{
    if (!md_stun_is(p, n) || n % 4 != 0
        || md_get16(p + 2) != n - MD_STUN_HEADER)
    {
        return 0;
    }

    if (md_get16(p) != (MD_STUN_BINDING | MD_STUN_REQUEST)) {
        return 0;
    }

    return md_stun_parse(p, n, m) == 0 && m->has_fingerprint
           && (md_crc32(p, n - 8) ^ MD_STUN_FP_XOR) == m->fingerprint;
}


/*
 * RFC 5389 §7.3.1.1: the success response to transaction tid, with the
 * XOR-MAPPED-ADDRESS (§15.2) of the source from, signed with lpwd; its
 * length, 0 when size is too small
 */
static size_t
md_stun_success(uint8_t *out, size_t size, const uint8_t *tid,
    const struct sockaddr_in *from, const char *lpwd)
{
    size_t    len;
    uint8_t   v[8];
    uint32_t  addr;

    addr = ntohl(from->sin_addr.s_addr) ^ MD_STUN_COOKIE;

    v[0] = 0;
    v[1] = 0x01;                    /* IPv4 */
    md_put16(v + 2, ntohs(from->sin_port) ^ (MD_STUN_COOKIE >> 16));
    md_put32(v + 4, addr);

    len = md_stun_header(out, size, MD_STUN_BINDING | MD_STUN_SUCCESS, tid);
    len = md_stun_attr(out, len, size, MD_ATTR_XOR_MAPPED_ADDRESS, v, 8);

    return md_stun_sign(out, len, size, lpwd);
}


size_t
md_stun_answer(const uint8_t *p, size_t n, const struct sockaddr_in *from,
    const char *lufrag, const char *lpwd, const char *rufrag,
    uint8_t *out, size_t size, md_stun_req_t *req)
{
    size_t         len;
    uint8_t        tid[12], mac[MD_STUN_HMAC];
    md_stun_msg_t  m;
    md_stun_req_t  r;

    memset(&r, 0, sizeof(r));

    if (req != NULL) {
        *req = r;
    }

    if (p == NULL || from == NULL || lufrag == NULL || lpwd == NULL
        || out == NULL)
    {
        return 0;
    }

    if (rufrag == NULL) {
        rufrag = "";
    }

    if (!md_stun_request(p, n, &m)) {
        return 0;
    }

    memcpy(tid, p + 8, sizeof(tid));

    /* RFC 5389 §10.1.2: short-term credentials, no MESSAGE-INTEGRITY in
     * the 400 and 401 responses */

    if (m.username == NULL || m.integrity == 0) {
        return md_stun_error(out, size, tid, 400, "Bad Request", NULL, 0,
                             NULL);
    }

    if (!md_stun_username(&m, lufrag, rufrag, r.remote_ufrag,
                          sizeof(r.remote_ufrag)))
    {
        return md_stun_error(out, size, tid, 401, "Unauthorized", NULL, 0,
                             NULL);
    }

    md_stun_integrity(p, m.integrity, lpwd, mac);

    if (CRYPTO_memcmp(mac, p + m.integrity + 4, MD_STUN_HMAC) != 0) {
        return md_stun_error(out, size, tid, 401, "Unauthorized", NULL, 0,
                             NULL);
    }

    /* authenticated: every response carries MESSAGE-INTEGRITY (§10.1.2) */

    r.use_candidate = m.use_candidate;
    r.controlling = m.controlling;
    r.tiebreaker = m.tiebreaker;
    r.priority = m.priority;

    if (req != NULL) {
        *req = r;
    }

    /* RFC 5389 §7.3.1 */

    if (m.nunknown > 0) {
        return md_stun_error(out, size, tid, 420, "Unknown Attribute",
                             m.unknown, m.nunknown, lpwd);
    }

    /*
     * RFC 8445 §7.3.1.1: a controlled agent that gets ICE-CONTROLLED
     * either switches to controlling or answers 487; a lite agent stays
     * controlled (§6.1.1), so the full agent must switch (§7.2.5.1)
     */

    if (m.controlled) {
        return md_stun_error(out, size, tid, 487, "Role Conflict", NULL, 0,
                             lpwd);
    }

    len = md_stun_success(out, size, tid, from, lpwd);

    if (len > 0 && req != NULL) {
        req->valid = 1;
    }

    return len;
}


void
md_ice_credentials(char ufrag[9], char pwd[25])
{
    size_t   i;
    uint8_t  b[8 + 24];

    md_random(b, sizeof(b));

    /* 64 ice-chars: 6 uniform bits of each byte pick one */

    for (i = 0; i < 8; i++) {
        ufrag[i] = md_ice_chars[b[i] & 63];
    }
    ufrag[8] = '\0';

    for (i = 0; i < 24; i++) {
        pwd[i] = md_ice_chars[b[8 + i] & 63];
    }
    pwd[24] = '\0';

    OPENSSL_cleanse(b, sizeof(b));
}


int
md_ice_candidate(char *buf, size_t size, const char *foundation,
    const struct in_addr *addr, uint16_t port, int srflx,
    const struct in_addr *raddr, uint16_t rport)
{
    int       r;
    char      a[INET_ADDRSTRLEN], ra[INET_ADDRSTRLEN];
    size_t    i, len;
    uint32_t  priority;

    if (buf == NULL || size == 0) {
        return -1;
    }

    buf[0] = '\0';

    if (foundation == NULL || addr == NULL || port == 0
        || (srflx && raddr == NULL))
    {
        return -1;
    }

    /* RFC 8839 §5.1: foundation = 1*32ice-char */

    len = strlen(foundation);

    if (len == 0 || len > 32) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (strchr(md_ice_chars, foundation[i]) == NULL) {
            return -1;
        }
    }

    if (inet_ntop(AF_INET, addr, a, sizeof(a)) == NULL
        || (srflx && inet_ntop(AF_INET, raddr, ra, sizeof(ra)) == NULL))
    {
        return -1;
    }

    /*
     * RFC 8445 §5.1.2.1: 2^24 type preference (§5.1.2.2: host 126,
     * server-reflexive 100) + 2^8 local preference (65535: one address)
     * + 256 - component ID (1)
     */

    priority = ((uint32_t) (srflx ? 100 : 126) << 24) | 65535u << 8
               | (256 - 1);

    if (srflx) {
        r = snprintf(buf, size, "%s 1 UDP %u %s %u typ srflx raddr %s"
                     " rport %u", foundation, priority, a, port, ra, rport);

    } else {
        r = snprintf(buf, size, "%s 1 UDP %u %s %u typ host", foundation,
                     priority, a, port);
    }

    if (r < 0 || (size_t) r >= size) {
        buf[0] = '\0';
        return -1;
    }

    return r;
}
