/*
 * Digest authentication of SIP requests (RFC 3261 §22, RFC 7616 with
 * qop=auth, the SHA-256 and MD5 algorithms as RFC 8760 adds them to SIP):
 * REGISTER with 401 / Authorization, other requests with 407 /
 * Proxy-Authorization (§22.3).
 *
 * Nonces are random, kept in Redis (P nonce:<nonce> = the last nonce count
 * seen) for codeb_sip nonce TTL: a nonce from any worker or host is known
 * everywhere, an expired one is answered with stale=true, and a nonce
 * count that does not grow is a replay.  Parameters are parsed by
 * sofia-sip, hashes computed with OpenSSL, responses compared in constant
 * time.  Users come from nginx.conf (codeb_sip_user, codeb_sip_users_file)
 * and else from Redis (P sipuser:<name>: hash with ha1 = hex
 * MD5(name:realm:password) and ha1sha256 = hex SHA-256 of the same; no
 * password is stored), as the platform API writes them.
 *
 * The client side (ngx_codeb_sip_digest_authorize()) answers the
 * challenges of a 401 or 407 to a request of ours: a trunk's REGISTER, an
 * INVITE out through a trunk.
 */

#include "ngx_codeb_sip.h"
#include <sofia-sip/auth_digest.h>
#include <sofia-sip/url.h>
#include <openssl/evp.h>


typedef struct {
    ngx_codeb_sip_flow_t       *flow;
    msg_t                      *req;
    ngx_codeb_sip_user_t       *user;
    ngx_codeb_sip_auth_pt       done;
    auth_response_t             ar;          /* in req's memory */
    ngx_codeb_sip_user_t        stored;      /* a user from Redis */
} ngx_codeb_sip_auth_ctx_t;


static ngx_codeb_sip_user_t *ngx_codeb_sip_digest_user(
    ngx_codeb_sip_srv_conf_t *sip, char const *name);
static ngx_int_t ngx_codeb_sip_digest_verify(ngx_codeb_sip_srv_conf_t *sip,
    sip_t *rq, auth_response_t *ar, ngx_codeb_sip_user_t *user);
static void ngx_codeb_sip_digest_hash(const EVP_MD *md, u_char *out,
    ngx_str_t *parts, ngx_uint_t n);
static void ngx_codeb_sip_nonce_reply(redisAsyncContext *ac, void *reply,
    void *data);
static void ngx_codeb_sip_stored_reply(redisAsyncContext *ac, void *reply,
    void *data);
static ngx_int_t ngx_codeb_sip_digest_nonce(ngx_codeb_sip_auth_ctx_t *ctx);
static ngx_int_t ngx_codeb_sip_digest_pick(auth_challenge_t *ac,
    const EVP_MD **md);
static char *ngx_codeb_sip_digest_answer(su_home_t *home,
    auth_challenge_t *ac, const EVP_MD *md, sip_t *rq, ngx_str_t *username,
    ngx_str_t *password);
static char *ngx_codeb_sip_quote(su_home_t *home, char const *s, size_t len);


ngx_int_t
ngx_codeb_sip_digest_check(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_codeb_sip_auth_pt done)
{
    sip_t                     *rq;
    ngx_int_t                  rc;
    ngx_str_t                  key;
    auth_response_t            ar;
    ngx_codeb_redis_args_t     a;
    ngx_codeb_sip_auth_ctx_t  *ctx;
    sip_authorization_t       *au;

    rq = sip_object(req);

    /* REGISTER: Authorization (401); others: Proxy-Authorization (407) */

    au = rq->sip_request->rq_method == sip_method_register
         ? rq->sip_authorization
         : (sip_authorization_t *) rq->sip_proxy_authorization;

    for ( /* void */ ; au; au = au->au_next) {
        if (au->au_scheme && ngx_strcasecmp((u_char *) au->au_scheme,
                                            (u_char *) "Digest") == 0)
        {
            break;
        }
    }

    if (au == NULL) {
        return NGX_DECLINED;
    }

    ngx_memzero(&ar, sizeof(auth_response_t));
    ar.ar_size = sizeof(auth_response_t);

    if (auth_digest_response_get(msg_home(req), &ar, au->au_params) < 0
        || ar.ar_username == NULL || ar.ar_nonce == NULL || ar.ar_nc == NULL
        || ar.ar_cnonce == NULL || !ar.ar_auth || ar.ar_uri == NULL
        || ar.ar_response == NULL)
    {
        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: digest without qop=auth or its fields");
        return NGX_DECLINED;
    }

    ctx = ngx_calloc(sizeof(ngx_codeb_sip_auth_ctx_t), flow->log);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->flow = flow;
    ctx->req = req;
    ctx->done = done;
    ctx->ar = ar;
    ctx->user = ngx_codeb_sip_digest_user(flow->sip, ar.ar_username);

    if (ctx->user) {
        rc = ngx_codeb_sip_digest_nonce(ctx);

    } else {
        /* not in nginx.conf: the user may be in Redis */

        a.argc = 0;
        ngx_codeb_redis_arg_lit(&a, "HMGET");

        if (ngx_codeb_key(ngx_codeb_scratch(), &flow->sip->tenant->name,
                          "sipuser:", (u_char *) ar.ar_username,
                          ngx_strlen(ar.ar_username), &key)
            != NGX_OK)
        {
            ngx_free(ctx);
            return NGX_ERROR;
        }

        ngx_codeb_redis_arg_str(&a, &key);
        ngx_codeb_redis_arg_lit(&a, "ha1");
        ngx_codeb_redis_arg_lit(&a, "ha1sha256");

        rc = ngx_codeb_redis_command(ngx_codeb_sip_stored_reply, ctx, &a)
             == NGX_OK ? NGX_AGAIN : NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        ngx_codeb_sip_flow_hold(flow);

    } else {
        ngx_free(ctx);
    }

    return rc;
}


/*
 * ctx->user known: the response must be right, then the nonce must be ours
 * and its count must grow (a Redis script).  NGX_AGAIN: the script runs;
 * NGX_DECLINED: a challenge is due; NGX_ERROR
 */
static ngx_int_t
ngx_codeb_sip_digest_nonce(ngx_codeb_sip_auth_ctx_t *ctx)
{
    u_char                   nc[NGX_INT64_LEN];
    size_t                   nclen;
    int64_t                  count;
    sip_t                   *rq;
    ngx_str_t                key;
    auth_response_t         *ar;
    ngx_codeb_sip_flow_t    *flow;
    ngx_codeb_redis_args_t   a;

    flow = ctx->flow;
    ar = &ctx->ar;
    rq = sip_object(ctx->req);

    if (ngx_codeb_sip_digest_verify(flow->sip, rq, ar, ctx->user) != NGX_OK)
    {
        ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                      "codeb sip: digest of %V refused", &flow->addr_text);
        return NGX_DECLINED;
    }

    nclen = ngx_strlen(ar->ar_nc);
    count = (nclen == 8) ? ngx_hextoi((u_char *) ar->ar_nc, 8) : NGX_ERROR;

    if (count == NGX_ERROR || count == 0 || ngx_strlen(ar->ar_nonce) != 32) {
        return NGX_DECLINED;
    }

    if (ngx_codeb_key(ngx_codeb_scratch(), &flow->sip->tenant->name,
                      "nonce:", (u_char *) ar->ar_nonce, 32, &key)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    a.argc = 0;
    ngx_codeb_redis_arg_str(&a, &key);
    ngx_codeb_redis_arg(&a, nc, ngx_sprintf(nc, "%L", count) - nc);

    return ngx_codeb_redis_eval(&ngx_codeb_sip_nonce_script,
                                ngx_codeb_sip_nonce_reply, ctx, 1, &a)
           == NGX_OK ? NGX_AGAIN : NGX_ERROR;
}


/* [ha1, ha1sha256] of P sipuser:<name> (nil, nil: no such user) */
static void
ngx_codeb_sip_stored_reply(redisAsyncContext *ac, void *reply, void *data)
{
    ngx_int_t                  rc;
    redisReply                *rep = reply, *md5, *sha;
    ngx_codeb_sip_flow_t      *flow;
    ngx_codeb_sip_auth_ctx_t  *ctx = data;

    flow = ngx_codeb_sip_flow_release(ctx->flow);

    if (flow == NULL) {
        msg_destroy(ctx->req);
        ngx_free(ctx);
        return;
    }

    rc = NGX_ERROR;

    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 2) {
        md5 = rep->element[0];
        sha = rep->element[1];
        rc = NGX_DECLINED;

        if (md5->type == REDIS_REPLY_STRING && md5->len == 32) {
            ctx->stored.name.data = (u_char *) ctx->ar.ar_username;
            ctx->stored.name.len = ngx_strlen(ctx->ar.ar_username);
            ngx_memcpy(ctx->stored.ha1_md5, md5->str, 32);

            if (sha->type == REDIS_REPLY_STRING && sha->len == 64) {
                ngx_memcpy(ctx->stored.ha1_sha256, sha->str, 64);
                ctx->stored.sha256 = 1;
            }

            ctx->user = &ctx->stored;
            rc = ngx_codeb_sip_digest_nonce(ctx);
        }
    }

    if (rc == NGX_AGAIN) {
        ngx_codeb_sip_flow_hold(flow);
        return;
    }

    if (rc == NGX_DECLINED) {
        (void) ngx_codeb_sip_digest_challenge(flow, ctx->req, 0);

    } else {
        (void) ngx_codeb_sip_reply(flow, ctx->req, 500,
                                   "State Store Unavailable");
    }

    msg_destroy(ctx->req);
    ngx_free(ctx);
}


/* 1: a fresh nonce count; 0: a replay; -1: the nonce is unknown (stale) */
static void
ngx_codeb_sip_nonce_reply(redisAsyncContext *ac, void *reply, void *data)
{
    redisReply                *rep = reply;
    ngx_codeb_sip_flow_t      *flow;
    ngx_codeb_sip_auth_ctx_t  *ctx = data;

    flow = ngx_codeb_sip_flow_release(ctx->flow);

    if (flow == NULL) {
        msg_destroy(ctx->req);

    } else if (rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1)
    {
        ctx->done(flow, ctx->req, ctx->user);

    } else if (rep && rep->type == REDIS_REPLY_INTEGER) {
        if (rep->integer == 0) {
            ngx_log_error(NGX_LOG_INFO, flow->log, 0,
                          "codeb sip: nonce count replayed");
        }

        (void) ngx_codeb_sip_digest_challenge(flow, ctx->req,
                                              rep->integer == -1);
        msg_destroy(ctx->req);

    } else {
        (void) ngx_codeb_sip_reply(flow, ctx->req, 500,
                                   "State Store Unavailable");
        msg_destroy(ctx->req);
    }

    ngx_free(ctx);
}


static ngx_codeb_sip_user_t *
ngx_codeb_sip_digest_user(ngx_codeb_sip_srv_conf_t *sip, char const *name)
{
    size_t                 len;
    ngx_uint_t             i;
    ngx_codeb_sip_user_t  *u;

    if (sip->users == NULL) {
        return NULL;
    }

    len = ngx_strlen(name);
    u = sip->users->elts;

    for (i = 0; i < sip->users->nelts; i++) {
        if (u[i].name.len == len
            && ngx_strncmp(u[i].name.data, name, len) == 0)
        {
            return &u[i];
        }
    }

    return NULL;
}


/*
 * RFC 7616 §3.4.1: response = H(H(A1):nonce:nc:cnonce:qop:H(A2)), A1 =
 * user:realm:password, A2 = method:digest-uri; the digest-uri must be the
 * Request-URI
 */
static ngx_int_t
ngx_codeb_sip_digest_verify(ngx_codeb_sip_srv_conf_t *sip, sip_t *rq,
    auth_response_t *ar, ngx_codeb_sip_user_t *user)
{
    u_char         ha1[2 * EVP_MAX_MD_SIZE], ha2[2 * EVP_MAX_MD_SIZE];
    u_char         expect[2 * EVP_MAX_MD_SIZE];
    size_t         hlen;
    url_t         *uri;
    ngx_str_t      p[6];
    su_home_t      home[1] = { SU_HOME_INIT(home) };
    const EVP_MD  *md;
    ngx_int_t      rc;

    if (ar->ar_realm == NULL
        || ngx_strlen(ar->ar_realm) != sip->realm.len
        || ngx_strncmp(ar->ar_realm, sip->realm.data, sip->realm.len) != 0)
    {
        return NGX_DECLINED;
    }

    if (ar->ar_algorithm == NULL || ar->ar_md5) {
        md = EVP_md5();

    } else if (ngx_strcasecmp((u_char *) ar->ar_algorithm,
                              (u_char *) "SHA-256") == 0
               && (user->password.len || user->sha256))
    {
        md = EVP_sha256();

    } else {
        return NGX_DECLINED;
    }

    uri = url_make(home, ar->ar_uri);
    rc = (uri && url_cmp_all(uri, rq->sip_request->rq_url) == 0)
         ? NGX_OK : NGX_DECLINED;
    su_home_deinit(home);

    if (rc != NGX_OK) {
        return NGX_DECLINED;
    }

    hlen = 2 * (size_t) EVP_MD_size(md);

    if (user->password.len) {
        p[0] = user->name;
        p[1] = sip->realm;
        p[2] = user->password;
        ngx_codeb_sip_digest_hash(md, ha1, p, 3);

    } else if (md == EVP_md5()) {
        ngx_memcpy(ha1, user->ha1_md5, 32);

    } else {
        ngx_memcpy(ha1, user->ha1_sha256, 64);
    }

    p[0].data = (u_char *) rq->sip_request->rq_method_name;
    p[0].len = ngx_strlen(p[0].data);
    p[1].data = (u_char *) ar->ar_uri;
    p[1].len = ngx_strlen(p[1].data);
    ngx_codeb_sip_digest_hash(md, ha2, p, 2);

    p[0].data = ha1;
    p[0].len = hlen;
    p[1].data = (u_char *) ar->ar_nonce;
    p[1].len = ngx_strlen(ar->ar_nonce);
    p[2].data = (u_char *) ar->ar_nc;
    p[2].len = ngx_strlen(ar->ar_nc);
    p[3].data = (u_char *) ar->ar_cnonce;
    p[3].len = ngx_strlen(ar->ar_cnonce);
    ngx_str_set(&p[4], "auth");
    p[5].data = ha2;
    p[5].len = hlen;
    ngx_codeb_sip_digest_hash(md, expect, p, 6);

    return ngx_codeb_equal_secret(expect, hlen, (u_char *) ar->ar_response,
                                  ngx_strlen(ar->ar_response))
           ? NGX_OK : NGX_DECLINED;
}


/* lowercase hex of H(parts joined by ':') into out */
static void
ngx_codeb_sip_digest_hash(const EVP_MD *md, u_char *out, ngx_str_t *parts,
    ngx_uint_t n)
{
    u_char        bin[EVP_MAX_MD_SIZE];
    ngx_uint_t    i;
    unsigned int  len;
    EVP_MD_CTX   *ctx;

    ctx = EVP_MD_CTX_new();
    len = 0;

    if (ctx && EVP_DigestInit_ex(ctx, md, NULL) == 1) {
        for (i = 0; i < n; i++) {
            if (i) {
                EVP_DigestUpdate(ctx, ":", 1);
            }

            EVP_DigestUpdate(ctx, parts[i].data, parts[i].len);
        }

        EVP_DigestFinal_ex(ctx, bin, &len);
    }

    EVP_MD_CTX_free(ctx);

    ngx_hex_dump(out, bin, len);
}


ngx_int_t
ngx_codeb_sip_digest_challenge(ngx_codeb_sip_flow_t *flow, msg_t *req,
    ngx_uint_t stale)
{
    u_char                   hex[32], *p, buf[512];
    msg_t                   *rsp;
    sip_t                   *rs;
    ngx_str_t                key;
    ngx_uint_t               i, proxy;
    ngx_codeb_redis_args_t   a;
    static char             *algorithms[] = { "SHA-256", "MD5" };

    if (ngx_codeb_random_hex(hex, 16) != NGX_OK
        || ngx_codeb_key(ngx_codeb_scratch(), &flow->sip->tenant->name,
                         "nonce:", hex, 32, &key) != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the nonce exists for nonce_ttl, with no nonce count used yet */

    a.argc = 0;
    ngx_codeb_redis_arg_lit(&a, "SET");
    ngx_codeb_redis_arg_str(&a, &key);
    ngx_codeb_redis_arg_lit(&a, "0");
    ngx_codeb_redis_arg_lit(&a, "EX");
    ngx_codeb_redis_arg(&a, buf,
                        ngx_sprintf(buf, "%T", flow->sip->nonce_ttl) - buf);

    if (ngx_codeb_redis_command(NULL, NULL, &a) != NGX_OK) {
        return ngx_codeb_sip_reply(flow, req, 500, "State Store Unavailable");
    }

    proxy = (sip_object(req)->sip_request->rq_method != sip_method_register);

    rsp = ngx_codeb_sip_response(req, proxy ? 407 : 401,
                                 proxy ? "Proxy Authentication Required"
                                       : "Unauthorized",
                                 ngx_codeb_sip_local_tag(req));
    if (rsp == NULL) {
        return NGX_ERROR;
    }

    rs = sip_object(rsp);

    /* RFC 8760 §2.4: the preferred algorithm first */

    for (i = 0; i < 2; i++) {
        p = ngx_snprintf(buf, sizeof(buf) - 1,
                         "Digest realm=\"%V\", nonce=\"%*s\", "
                         "algorithm=%s, qop=\"auth\"%s",
                         &flow->sip->realm, (size_t) 32, hex, algorithms[i],
                         stale ? ", stale=true" : "");
        *p = '\0';

        if (sip_add_make(rsp, rs, proxy ? sip_proxy_authenticate_class
                                        : sip_www_authenticate_class,
                         (char *) buf)
            < 0)
        {
            msg_destroy(rsp);
            return NGX_ERROR;
        }
    }

    return ngx_codeb_sip_send(flow, rsp);
}


#define NGX_CODEB_SIP_DIGEST_REALMS  8       /* realms answered at most */


/*
 * The client side: challenge is a 401 (WWW-Authenticate) or a 407
 * (Proxy-Authenticate) to req, a request of ours (RFC 3261 §22.2, §22.3).
 * For each realm challenged, req gets one Authorization (401) or
 * Proxy-Authorization (407), after the ones of that kind it had are
 * removed:
 *
 *   Digest username="<u>", realm="<r>", nonce="<n>", uri="<Request-URI>",
 *       response="<hex>", algorithm=<SHA-256|MD5>[, opaque="<o>"]
 *       [, qop=auth, nc=00000001, cnonce="<32 random hex>"]
 *
 * Of the challenges of one realm, SHA-256 is taken before MD5 (RFC 8760
 * §2.4; no algorithm means MD5); -sess variants, other algorithms and
 * challenges that offer qop without "auth" (auth-int only) are passed
 * over.  With qop=auth the response is RFC 7616 §3.4.1's; a challenge
 * without qop is answered in RFC 2069's form, H(H(A1):nonce:H(A2)).  The
 * nonce is used once (nc 1): the caller sends req as a new request (a new
 * CSeq, RFC 3261 §22.2).  username, realm, nonce and opaque are sent as
 * quoted-strings ('"' and '\\' escaped); the password is never logged.
 *
 * NGX_OK: the headers are in req; NGX_DECLINED: not a 401 or 407, or no
 * challenge this client can answer; NGX_ERROR: no memory or no entropy.
 */
ngx_int_t
ngx_codeb_sip_digest_authorize(msg_t *req, msg_t *challenge,
    ngx_str_t *username, ngx_str_t *password)
{
    int                   status;
    char                 *value;
    sip_t                *rq, *rs;
    su_home_t            *home;
    ngx_uint_t            i, n, proxy;
    msg_auth_t           *au;
    msg_hclass_t         *hc;
    const EVP_MD         *md, *mds[NGX_CODEB_SIP_DIGEST_REALMS];
    auth_challenge_t      ac, acs[NGX_CODEB_SIP_DIGEST_REALMS];

    rq = sip_object(req);
    rs = sip_object(challenge);
    home = msg_home(req);

    if (rq == NULL || rq->sip_request == NULL || rs == NULL
        || rs->sip_status == NULL)
    {
        return NGX_DECLINED;
    }

    status = rs->sip_status->st_status;

    if (status != 401 && status != 407) {
        return NGX_DECLINED;
    }

    proxy = (status == 407);
    au = proxy ? (msg_auth_t *) rs->sip_proxy_authenticate
               : (msg_auth_t *) rs->sip_www_authenticate;
    n = 0;

    for ( /* void */ ; au; au = au->au_next) {
        if (au->au_scheme == NULL || au->au_params == NULL
            || ngx_strcasecmp((u_char *) au->au_scheme, (u_char *) "Digest")
               != 0)
        {
            continue;
        }

        ngx_memzero(&ac, sizeof(auth_challenge_t));
        ac.ac_size = sizeof(auth_challenge_t);

        if (auth_digest_challenge_get(home, &ac, au->au_params) < 0
            || ngx_codeb_sip_digest_pick(&ac, &md) != NGX_OK)
        {
            continue;
        }

        /* one answer per realm: SHA-256 over MD5, else the first */

        for (i = 0; i < n; i++) {
            if (ngx_strcmp(acs[i].ac_realm, ac.ac_realm) == 0) {
                break;
            }
        }

        if (i < n) {
            if (md == EVP_sha256() && mds[i] != EVP_sha256()) {
                acs[i] = ac;
                mds[i] = md;
            }

            continue;
        }

        if (n < NGX_CODEB_SIP_DIGEST_REALMS) {
            acs[n] = ac;
            mds[n++] = md;
        }
    }

    if (n == 0) {
        return NGX_DECLINED;
    }

    hc = proxy ? sip_proxy_authorization_class : sip_authorization_class;

    if (proxy && rq->sip_proxy_authorization) {
        msg_header_remove_all(req, (msg_pub_t *) rq,
                              (msg_header_t *) rq->sip_proxy_authorization);

    } else if (!proxy && rq->sip_authorization) {
        msg_header_remove_all(req, (msg_pub_t *) rq,
                              (msg_header_t *) rq->sip_authorization);
    }

    for (i = 0; i < n; i++) {
        value = ngx_codeb_sip_digest_answer(home, &acs[i], mds[i], rq,
                                            username, password);
        if (value == NULL || sip_add_make(req, rq, hc, value) < 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * The hash of a challenge this client answers (RFC 8760 §2.4: "SHA-256",
 * "MD5" or none); NGX_DECLINED: another algorithm, no realm or nonce, or
 * qop without "auth"
 */
static ngx_int_t
ngx_codeb_sip_digest_pick(auth_challenge_t *ac, const EVP_MD **md)
{
    if (ac->ac_realm == NULL || ac->ac_nonce == NULL
        || (ac->ac_qop && !ac->ac_auth))
    {
        return NGX_DECLINED;
    }

    if (ac->ac_algorithm == NULL
        || ngx_strcasecmp((u_char *) ac->ac_algorithm, (u_char *) "MD5") == 0)
    {
        *md = EVP_md5();
        return NGX_OK;
    }

    if (ngx_strcasecmp((u_char *) ac->ac_algorithm, (u_char *) "SHA-256")
        == 0)
    {
        *md = EVP_sha256();
        return NGX_OK;
    }

    return NGX_DECLINED;
}


/* the value of one Authorization header for challenge ac; NULL: failed */
static char *
ngx_codeb_sip_digest_answer(su_home_t *home, auth_challenge_t *ac,
    const EVP_MD *md, sip_t *rq, ngx_str_t *username, ngx_str_t *password)
{
    char        *uri, *user, *realm, *nonce, *opaque;
    u_char       ha1[2 * EVP_MAX_MD_SIZE], ha2[2 * EVP_MAX_MD_SIZE];
    u_char       rsp[2 * EVP_MAX_MD_SIZE + 1], cnonce[33];
    size_t       hlen;
    ngx_str_t    p[6];
    ngx_uint_t   qop;

    uri = url_as_string(home, rq->sip_request->rq_url);
    user = ngx_codeb_sip_quote(home, (char *) username->data, username->len);
    realm = ngx_codeb_sip_quote(home, ac->ac_realm,
                                ngx_strlen(ac->ac_realm));
    nonce = ngx_codeb_sip_quote(home, ac->ac_nonce,
                                ngx_strlen(ac->ac_nonce));
    opaque = ac->ac_opaque
             ? ngx_codeb_sip_quote(home, ac->ac_opaque,
                                   ngx_strlen(ac->ac_opaque))
             : NULL;

    if (uri == NULL || user == NULL || realm == NULL || nonce == NULL
        || (ac->ac_opaque && opaque == NULL)
        || ngx_codeb_random_hex(cnonce, 16) != NGX_OK)
    {
        return NULL;
    }

    cnonce[32] = '\0';
    hlen = 2 * (size_t) EVP_MD_size(md);
    qop = (ac->ac_qop != NULL);

    /* A1 = username:realm:password, A2 = method:digest-uri (§3.4.2, 3) */

    p[0] = *username;
    p[1].data = (u_char *) ac->ac_realm;
    p[1].len = ngx_strlen(ac->ac_realm);
    p[2] = *password;
    ngx_codeb_sip_digest_hash(md, ha1, p, 3);

    p[0].data = (u_char *) rq->sip_request->rq_method_name;
    p[0].len = ngx_strlen(p[0].data);
    p[1].data = (u_char *) uri;
    p[1].len = ngx_strlen(uri);
    ngx_codeb_sip_digest_hash(md, ha2, p, 2);

    /* qop=auth: H(HA1:nonce:nc:cnonce:auth:HA2); RFC 2069: H(HA1:nonce:HA2) */

    p[0].data = ha1;
    p[0].len = hlen;
    p[1].data = (u_char *) ac->ac_nonce;
    p[1].len = ngx_strlen(ac->ac_nonce);

    if (qop) {
        ngx_str_set(&p[2], "00000001");
        p[3].data = cnonce;
        p[3].len = 32;
        ngx_str_set(&p[4], "auth");
        p[5].data = ha2;
        p[5].len = hlen;
        ngx_codeb_sip_digest_hash(md, rsp, p, 6);

    } else {
        p[2].data = ha2;
        p[2].len = hlen;
        ngx_codeb_sip_digest_hash(md, rsp, p, 3);
    }

    rsp[hlen] = '\0';

    return su_sprintf(home, "Digest username=%s, realm=%s, nonce=%s, "
                      "uri=\"%s\", response=\"%s\", algorithm=%s%s%s%s%s%s",
                      user, realm, nonce, uri, rsp,
                      md == EVP_sha256() ? "SHA-256" : "MD5",
                      opaque ? ", opaque=" : "", opaque ? opaque : "",
                      qop ? ", qop=auth, nc=00000001, cnonce=\"" : "",
                      qop ? (char *) cnonce : "", qop ? "\"" : "");
}


/* s as a quoted-string (RFC 3261 §25.1: '"' and '\\' escaped), from home */
static char *
ngx_codeb_sip_quote(su_home_t *home, char const *s, size_t len)
{
    char    *q, *p;
    size_t   i;

    q = su_alloc(home, 2 * len + 3);
    if (q == NULL) {
        return NULL;
    }

    p = q;
    *p++ = '"';

    for (i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            *p++ = '\\';
        }

        *p++ = s[i];
    }

    *p++ = '"';
    *p = '\0';

    return q;
}
