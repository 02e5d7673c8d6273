/*
 * DTLS-SRTP: OpenSSL DTLS over memory BIOs (the relay owns the socket),
 * use_srtp (RFC 5764 §4.1) with SRTP_AES128_CM_SHA1_80 or
 * SRTP_AEAD_AES_128_GCM (RFC 7714), keys from the "EXTRACTOR-dtls_srtp"
 * exporter (RFC 5764 §4.2) into two libsrtp2 sessions.  The peer's
 * certificate is self-signed; it is trusted when its SHA-256 matches the
 * a=fingerprint of its SDP (RFC 8122 §5).
 */

#include "dtls.h"
#include "util.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>


#define MD_DTLS_MTU  1200


struct md_dtls_s {
    SSL                *ssl;
    BIO                *rbio;          /* records from the peer */
    BIO                *wbio;          /* records for the peer */
    md_dtls_send_pt     send;
    void               *ctx;
    char                fingerprint[160];
    int                 active;
    int                 ready;         /* handshake done, keys set */
    int                 verified;      /* fingerprint matched */
    int                 failed;
    char                peer_fp[160];  /* of the certificate it showed */
    srtp_t              in;
    srtp_t              out;
};


static void md_dtls_verify_peer(md_dtls_t *d);


static SSL_CTX  *md_dtls_ctx;
static char      md_dtls_fp[160];


static int
md_dtls_verify(int ok, X509_STORE_CTX *store)
{
    /* self-signed: the fingerprint check after the handshake decides */
    return 1;
}


/* "sha-256 AB:CD:..." of a certificate */
static int
md_cert_fingerprint(X509 *cert, char *out, size_t size)
{
    size_t         i, n;
    unsigned int   len;
    unsigned char  md[EVP_MAX_MD_SIZE];

    if (X509_digest(cert, EVP_sha256(), md, &len) != 1
        || size < sizeof("sha-256 ") + len * 3)
    {
        return -1;
    }

    n = (size_t) snprintf(out, size, "sha-256 ");

    for (i = 0; i < len; i++) {
        n += (size_t) snprintf(out + n, size - n, i ? ":%02X" : "%02X",
                               md[i]);
    }

    return 0;
}


int
md_dtls_init(void)
{
    X509          *cert;
    EVP_PKEY      *key;
    X509_NAME     *name;
    unsigned char  serial[8];

    if (srtp_init() != srtp_err_status_ok) {
        md_log(MD_LOG_ERR, "srtp_init failed");
        return -1;
    }

    key = EVP_EC_gen("P-256");
    cert = X509_new();

    if (key == NULL || cert == NULL) {
        md_log(MD_LOG_ERR, "DTLS: cannot create the ECDSA P-256 key");
        return -1;
    }

    if (getentropy(serial, sizeof(serial)) != 0) {
        return -1;
    }

    serial[0] &= 0x7f;
    ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert),
                            ((uint64_t) serial[0] << 56)
                            | ((uint64_t) serial[1] << 48)
                            | ((uint64_t) serial[2] << 40)
                            | ((uint64_t) serial[3] << 32)
                            | ((uint64_t) serial[4] << 24)
                            | ((uint64_t) serial[5] << 16)
                            | ((uint64_t) serial[6] << 8) | serial[7]);
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400);
    X509_set_pubkey(cert, key);

    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *) "codeb-mediad", -1,
                               -1, 0);
    X509_set_issuer_name(cert, name);

    if (X509_sign(cert, key, EVP_sha256()) == 0) {
        md_log(MD_LOG_ERR, "DTLS: cannot sign the certificate");
        return -1;
    }

    md_dtls_ctx = SSL_CTX_new(DTLS_method());
    if (md_dtls_ctx == NULL) {
        return -1;
    }

    SSL_CTX_set_min_proto_version(md_dtls_ctx, DTLS1_2_VERSION);

    if (SSL_CTX_use_certificate(md_dtls_ctx, cert) != 1
        || SSL_CTX_use_PrivateKey(md_dtls_ctx, key) != 1
        || SSL_CTX_set_tlsext_use_srtp(md_dtls_ctx,
               "SRTP_AEAD_AES_128_GCM:SRTP_AES128_CM_SHA1_80") != 0)
    {
        md_log(MD_LOG_ERR, "DTLS: context setup failed");
        return -1;
    }

    SSL_CTX_set_verify(md_dtls_ctx,
                       SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       md_dtls_verify);
    SSL_CTX_set_read_ahead(md_dtls_ctx, 1);

    if (md_cert_fingerprint(cert, md_dtls_fp, sizeof(md_dtls_fp)) != 0) {
        return -1;
    }

    X509_free(cert);
    EVP_PKEY_free(key);

    return 0;
}


const char *
md_dtls_fingerprint(void)
{
    return md_dtls_fp;
}


md_dtls_t *
md_dtls_new(int active, const char *fingerprint, md_dtls_send_pt send,
    void *ctx)
{
    md_dtls_t  *d;

    d = calloc(1, sizeof(md_dtls_t));
    if (d == NULL) {
        return NULL;
    }

    d->ssl = SSL_new(md_dtls_ctx);
    d->rbio = BIO_new(BIO_s_mem());
    d->wbio = BIO_new(BIO_s_mem());

    if (d->ssl == NULL || d->rbio == NULL || d->wbio == NULL) {
        BIO_free(d->rbio);
        BIO_free(d->wbio);
        SSL_free(d->ssl);
        free(d);
        return NULL;
    }

    BIO_set_mem_eof_return(d->rbio, -1);
    SSL_set_bio(d->ssl, d->rbio, d->wbio);
    SSL_set_options(d->ssl, SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(d->ssl, MD_DTLS_MTU);
    DTLS_set_link_mtu(d->ssl, MD_DTLS_MTU);

    if (active) {
        SSL_set_connect_state(d->ssl);

    } else {
        SSL_set_accept_state(d->ssl);
    }

    snprintf(d->fingerprint, sizeof(d->fingerprint), "%s",
             fingerprint ? fingerprint : "");
    d->active = active;
    d->send = send;
    d->ctx = ctx;

    return d;
}


void
md_dtls_free(md_dtls_t *d)
{
    if (d == NULL) {
        return;
    }

    if (d->in) {
        srtp_dealloc(d->in);
    }

    if (d->out) {
        srtp_dealloc(d->out);
    }

    SSL_free(d->ssl);        /* frees the BIOs */
    free(d);
}


/* records OpenSSL wrote go out, one datagram each */
static void
md_dtls_flush(md_dtls_t *d)
{
    int      n;
    uint8_t  buf[MD_MAX_PACKET * 2];

    while ((n = BIO_read(d->wbio, buf, sizeof(buf))) > 0) {
        d->send(d->ctx, buf, (size_t) n);
    }
}


static int
md_srtp_session(srtp_t *session, srtp_profile_t profile, const uint8_t *key,
    size_t key_len, const uint8_t *salt, size_t salt_len, int inbound)
{
    uint8_t        master[64];
    srtp_policy_t  policy;

    memset(&policy, 0, sizeof(policy));

    if (srtp_crypto_policy_set_from_profile_for_rtp(&policy.rtp, profile)
        != srtp_err_status_ok
        || srtp_crypto_policy_set_from_profile_for_rtcp(&policy.rtcp, profile)
           != srtp_err_status_ok)
    {
        return -1;
    }

    memcpy(master, key, key_len);
    memcpy(master + key_len, salt, salt_len);

    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.key = master;
    policy.window_size = 1024;
    policy.allow_repeat_tx = 1;
    policy.next = NULL;

    return srtp_create(session, &policy) == srtp_err_status_ok ? 0 : -1;
}


/* the handshake is over: check the fingerprint, derive the SRTP keys */
static void
md_dtls_done(md_dtls_t *d)
{
    X509                  *cert;
    size_t                 klen, slen;
    uint8_t                km[2 * (32 + 14)];
    const uint8_t         *ckey, *skey, *csalt, *ssalt;
    srtp_profile_t         profile;
    SRTP_PROTECTION_PROFILE *p;
    char                   fp[160];

    cert = SSL_get1_peer_certificate(d->ssl);

    if (cert == NULL || md_cert_fingerprint(cert, fp, sizeof(fp)) != 0) {
        X509_free(cert);
        d->failed = 1;
        return;
    }

    X509_free(cert);
    memcpy(d->peer_fp, fp, sizeof(d->peer_fp));

    p = SSL_get_selected_srtp_profile(d->ssl);
    if (p == NULL) {
        md_log(MD_LOG_WARN, "DTLS: no SRTP profile negotiated");
        d->failed = 1;
        return;
    }

    if (p->id == SRTP_AEAD_AES_128_GCM) {
        profile = srtp_profile_aead_aes_128_gcm;
        klen = 16;
        slen = 12;

    } else {
        profile = srtp_profile_aes128_cm_sha1_80;
        klen = 16;
        slen = 14;
    }

    if (SSL_export_keying_material(d->ssl, km, 2 * (klen + slen),
                                   "EXTRACTOR-dtls_srtp", 19, NULL, 0, 0)
        != 1)
    {
        d->failed = 1;
        return;
    }

    /* RFC 5764 §4.2: client key, server key, client salt, server salt */
    ckey = km;
    skey = km + klen;
    csalt = km + 2 * klen;
    ssalt = km + 2 * klen + slen;

    if (md_srtp_session(&d->out, profile, d->active ? ckey : skey, klen,
                        d->active ? csalt : ssalt, slen, 0) != 0
        || md_srtp_session(&d->in, profile, d->active ? skey : ckey, klen,
                           d->active ? ssalt : csalt, slen, 1) != 0)
    {
        md_log(MD_LOG_WARN, "DTLS: SRTP session setup failed");
        d->failed = 1;
        return;
    }

    d->ready = 1;
    md_log(MD_LOG_INFO, "DTLS-SRTP up (%s, %s)", p->name,
           d->active ? "client" : "server");

    md_dtls_verify_peer(d);
}


void
md_dtls_set_fingerprint(md_dtls_t *d, const char *fingerprint)
{
    snprintf(d->fingerprint, sizeof(d->fingerprint), "%s", fingerprint);
    md_dtls_verify_peer(d);
}


/* once both are known: the certificate shown against the a=fingerprint */
static void
md_dtls_verify_peer(md_dtls_t *d)
{
    if (!d->ready || d->verified || d->failed || d->fingerprint[0] == '\0') {
        return;
    }

    if (strcasecmp(d->peer_fp, d->fingerprint) != 0) {
        md_log(MD_LOG_WARN, "DTLS: the peer's certificate does not match "
               "its a=fingerprint");
        d->failed = 1;
        return;
    }

    d->verified = 1;
}


static void
md_dtls_step(md_dtls_t *d)
{
    int  rc, err;

    if (d->ready || d->failed) {
        md_dtls_flush(d);
        return;
    }

    rc = SSL_do_handshake(d->ssl);
    md_dtls_flush(d);

    if (rc == 1) {
        md_dtls_done(d);
        return;
    }

    err = SSL_get_error(d->ssl, rc);

    if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) {
        md_log(MD_LOG_WARN, "DTLS handshake failed: %s",
               ERR_reason_error_string(ERR_peek_last_error())
               ? ERR_reason_error_string(ERR_peek_last_error()) : "alert");
        ERR_clear_error();
        d->failed = 1;
    }
}


void
md_dtls_start(md_dtls_t *d)
{
    if (d->active) {
        md_dtls_step(d);
    }
}


void
md_dtls_input(md_dtls_t *d, const uint8_t *p, size_t n)
{
    uint8_t  buf[64];

    if (n == 0 || n > MD_MAX_PACKET * 2) {
        return;
    }

    BIO_write(d->rbio, p, (int) n);

    if (!d->ready) {
        md_dtls_step(d);
        return;
    }

    /* after the handshake: alerts, or a retransmitted Finished */
    (void) SSL_read(d->ssl, buf, sizeof(buf));
    ERR_clear_error();
    md_dtls_flush(d);
}


void
md_dtls_timer(md_dtls_t *d)
{
    if (!d->ready && !d->failed && DTLSv1_handle_timeout(d->ssl) > 0) {
        md_dtls_flush(d);
    }
}


int
md_dtls_ready(md_dtls_t *d)
{
    return d->ready && d->verified && !d->failed;
}


int
md_dtls_failed(md_dtls_t *d)
{
    return d->failed;
}


int
md_srtp_protect(md_dtls_t *d, uint8_t *p, size_t *len, size_t size,
    int rtcp)
{
    int  n;

    if (!md_dtls_ready(d) || *len + SRTP_MAX_TRAILER_LEN > size) {
        return -1;
    }

    n = (int) *len;

    if ((rtcp ? srtp_protect_rtcp(d->out, p, &n)
              : srtp_protect(d->out, p, &n)) != srtp_err_status_ok)
    {
        return -1;
    }

    *len = (size_t) n;

    return 0;
}


int
md_srtp_unprotect(md_dtls_t *d, uint8_t *p, size_t *len, int rtcp)
{
    int  n;

    if (!md_dtls_ready(d)) {
        return -1;
    }

    n = (int) *len;

    if ((rtcp ? srtp_unprotect_rtcp(d->in, p, &n)
              : srtp_unprotect(d->in, p, &n)) != srtp_err_status_ok)
    {
        return -1;
    }

    *len = (size_t) n;

    return 0;
}
