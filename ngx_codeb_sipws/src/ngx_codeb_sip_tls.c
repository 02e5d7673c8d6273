/*
 * ngx_codeb_sip_tls_module: per-tenant certificates from a directory
 * (docs/sip.md "TLS and certificates").
 *
 * A tenant is a server{} chosen by SNI with its own ssl_certificate, as
 * in plain nginx.  codeb_sip_certificates adds a directory read at the
 * TLS handshake: for the SNI name NAME, the pair DIR/NAME.crt (PEM: the
 * certificate, then its chain) and DIR/NAME.key (PEM, not encrypted).
 * The module is the certificate callback (SSL_CTX_set_cert_cb) of the
 * server's SSL_CTX.  OpenSSL calls it after nginx's SNI callback has
 * switched the connection to the SSL_CTX of the server{} the name
 * selects (SSL_set_SSL_CTX copies that context's callback), so it sees
 * the handshakes of its own server{} only: those whose name selects it
 * and, for the default server, names no server_name matches.  A name
 * without a .crt file, or whose files do not load, gets the server's own
 * ssl_certificate; with certificates named by variables, nginx's own
 * callback, which this one replaces and then calls.
 *
 * NAME is the SNI name in lower case without a final '.', when it is 1
 * to 253 letters, digits, '-' and '.', starts with a letter or digit and
 * holds no "..": no other name builds a path.
 *
 * Each worker keeps the pairs it read, per server{}, at most "cache=" of
 * them (the least recently used goes).  At each handshake it stat()s
 * NAME.crt, and reads the pair again only when that file's device, inode,
 * size or modification time (ns) changed, or it is gone.  A key that
 * changes alone is read with the next certificate (replace the key
 * first, then the certificate, each by rename); after a failed read a
 * change of either file is tried again.  A failure is logged at "error"
 * once per version of the files, a load at "info".
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#if !(NGX_HTTP_SSL) || !defined SSL_R_CERT_CB_ERROR
#error "ngx_codeb_sip_tls needs nginx's http ssl module, OpenSSL 1.0.2+"
#endif


#define NGX_CODEB_SIP_TLS_NAME_MAX   253      /* characters of a DNS name */
#define NGX_CODEB_SIP_TLS_FILE_MAX   65536    /* bytes of a .crt or .key */
#define NGX_CODEB_SIP_TLS_CACHE      1000     /* default cache= */


/* what tells that a file changed; all zero: no file */
typedef struct {
    dev_t                        dev;
    ino_t                        ino;
    off_t                        size;
    time_t                       sec;
    long                         nsec;
} ngx_codeb_sip_tls_stamp_t;


typedef struct {
    ngx_str_node_t               sn;        /* the name, key of the tree */
    ngx_queue_t                  lru;       /* most recent at the head */
    ngx_codeb_sip_tls_stamp_t    crt;
    ngx_codeb_sip_tls_stamp_t    key;
    X509                        *cert;      /* NULL: the pair did not load */
    STACK_OF(X509)              *chain;
    EVP_PKEY                    *pkey;
} ngx_codeb_sip_tls_entry_t;


typedef struct {
    ngx_str_t                    dir;       /* empty: no directive */
    ngx_uint_t                   max;       /* cache= */
    ngx_uint_t                   count;
    ngx_rbtree_t                 tree;
    ngx_rbtree_node_t            sentinel;
    ngx_queue_t                  lru;
    ngx_http_ssl_srv_conf_t     *sscf;
    u_char                      *file;      /* where the directive is */
    ngx_uint_t                   line;
} ngx_codeb_sip_tls_conf_t;


static int ngx_codeb_sip_tls_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg);
static ngx_int_t ngx_codeb_sip_tls_name(const char *sni, u_char *name,
    size_t *len);
static ngx_codeb_sip_tls_entry_t *ngx_codeb_sip_tls_lookup(
    ngx_codeb_sip_tls_conf_t *tc, u_char *name, size_t len, ngx_log_t *log);
static ngx_codeb_sip_tls_entry_t *ngx_codeb_sip_tls_add(
    ngx_codeb_sip_tls_conf_t *tc, u_char *name, size_t len, uint32_t hash,
    ngx_log_t *log);
static void ngx_codeb_sip_tls_load(ngx_codeb_sip_tls_conf_t *tc,
    ngx_codeb_sip_tls_entry_t *e, ngx_log_t *log);
static ngx_int_t ngx_codeb_sip_tls_load_cert(ngx_codeb_sip_tls_entry_t *e,
    u_char *path, ngx_log_t *log);
static ngx_int_t ngx_codeb_sip_tls_load_key(ngx_codeb_sip_tls_entry_t *e,
    u_char *path, ngx_log_t *log);
static u_char *ngx_codeb_sip_tls_read(u_char *path,
    ngx_codeb_sip_tls_stamp_t *st, size_t *len, ngx_log_t *log);
static ngx_int_t ngx_codeb_sip_tls_stat(u_char *path,
    ngx_codeb_sip_tls_stamp_t *st, ngx_log_t *log);
static void ngx_codeb_sip_tls_stamp(ngx_file_info_t *fi,
    ngx_codeb_sip_tls_stamp_t *st);
static void ngx_codeb_sip_tls_path(ngx_codeb_sip_tls_conf_t *tc,
    ngx_str_t *name, char *ext, u_char *path);
static void ngx_codeb_sip_tls_clear(ngx_codeb_sip_tls_entry_t *e);
static void ngx_codeb_sip_tls_free(ngx_codeb_sip_tls_conf_t *tc,
    ngx_codeb_sip_tls_entry_t *e);
static int ngx_codeb_sip_tls_no_password(char *buf, int size, int rwflag,
    void *data);
static void *ngx_codeb_sip_tls_create_srv_conf(ngx_conf_t *cf);
static char *ngx_codeb_sip_tls_certificates(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_codeb_sip_tls_init(ngx_conf_t *cf);
static void ngx_codeb_sip_tls_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_codeb_sip_tls_commands[] = {

    /*
     * codeb_sip_certificates <dir> [cache=<n>];  server{} only, once.
     * <dir>: relative paths are from nginx's configuration directory; it
     * must be a directory when the configuration is loaded, and the
     * server{} must have its own ssl_certificate (the fallback).
     * cache=<n>: pairs kept per worker for this server{}, 1 or more,
     * default 1000.  Files: <name>.crt and <name>.key, each at most
     * 65536 bytes.  Else "nginx -t" fails and says why.
     */
    { ngx_string("codeb_sip_certificates"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE12,
      ngx_codeb_sip_tls_certificates,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_codeb_sip_tls_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_codeb_sip_tls_init,                /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_codeb_sip_tls_create_srv_conf,     /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_codeb_sip_tls_module = {
    NGX_MODULE_V1,
    &ngx_codeb_sip_tls_module_ctx,         /* module context */
    ngx_codeb_sip_tls_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_codeb_sip_tls_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * OpenSSL's certificate callback of a server{} with the directive: the
 * directory's pair for the SNI name when there is one that loads, else
 * the server's own certificate.  Returns 1, or 0 to fail the handshake
 * (only when OpenSSL refuses a pair that loaded, or nginx's callback
 * fails).
 */

static int
ngx_codeb_sip_tls_cert_cb(ngx_ssl_conn_t *ssl_conn, void *arg)
{
    size_t                      len;
    u_char                      name[NGX_CODEB_SIP_TLS_NAME_MAX];
    const char                 *sni;
    ngx_connection_t           *c;
    ngx_codeb_sip_tls_conf_t   *tc;
    ngx_codeb_sip_tls_entry_t  *e;

    tc = arg;
    c = ngx_ssl_get_connection(ssl_conn);

    sni = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);

    if (sni != NULL && ngx_codeb_sip_tls_name(sni, name, &len) == NGX_OK) {

        e = ngx_codeb_sip_tls_lookup(tc, name, len, c->log);

        if (e != NULL) {
            /* only this pair, whatever key types the server's own have */
            SSL_certs_clear(ssl_conn);

            if (SSL_use_cert_and_key(ssl_conn, e->cert, e->pkey, e->chain,
                                     1)
                != 1)
            {
                ngx_ssl_error(NGX_LOG_ERR, c->log, 0,
                              "codeb_sip_certificates: "
                              "SSL_use_cert_and_key(\"%V\") failed",
                              &e->sn.str);
                return 0;
            }

            return 1;
        }
    }

    if (tc->sscf->certificate_values) {
        return ngx_http_ssl_certificate(ssl_conn, tc->sscf);
    }

    return 1;
}


/*
 * The SNI name as the file name part: lower case, without a final '.';
 * NGX_DECLINED when it is not 1-253 of [a-z0-9.-] starting with a letter
 * or digit, or holds "..".  name has room for 253 bytes.
 */

static ngx_int_t
ngx_codeb_sip_tls_name(const char *sni, u_char *name, size_t *len)
{
    u_char  ch, prev;
    size_t  n;

    prev = '.';

    for (n = 0; sni[n] != '\0'; n++) {

        if (n == NGX_CODEB_SIP_TLS_NAME_MAX) {
            return NGX_DECLINED;
        }

        ch = ngx_tolower((u_char) sni[n]);

        if (ch == '.' || ch == '-') {
            if (prev == '.') {
                return NGX_DECLINED;
            }

        } else if (!(ch >= 'a' && ch <= 'z') && !(ch >= '0' && ch <= '9')) {
            return NGX_DECLINED;
        }

        name[n] = ch;
        prev = ch;
    }

    if (n > 0 && prev == '.') {
        n--;
    }

    if (n == 0) {
        return NGX_DECLINED;
    }

    *len = n;

    return NGX_OK;
}


/*
 * The cached pair of a name, read again when NAME.crt changed (or NAME.key
 * after a failure); NULL when there is no NAME.crt or the pair does not
 * load.  A name whose NAME.crt is gone leaves the cache.
 */

static ngx_codeb_sip_tls_entry_t *
ngx_codeb_sip_tls_lookup(ngx_codeb_sip_tls_conf_t *tc, u_char *name,
    size_t len, ngx_log_t *log)
{
    u_char                      path[NGX_MAX_PATH];
    uint32_t                    hash;
    ngx_str_t                   s;
    ngx_codeb_sip_tls_stamp_t   crt, key;
    ngx_codeb_sip_tls_entry_t  *e;

    s.len = len;
    s.data = name;
    hash = ngx_crc32_long(name, len);

    e = (ngx_codeb_sip_tls_entry_t *) ngx_str_rbtree_lookup(&tc->tree, &s,
                                                             hash);

    ngx_codeb_sip_tls_path(tc, &s, ".crt", path);

    if (ngx_codeb_sip_tls_stat(path, &crt, log) != NGX_OK) {
        if (e != NULL) {
            ngx_codeb_sip_tls_free(tc, e);
        }

        return NULL;
    }

    ngx_codeb_sip_tls_path(tc, &s, ".key", path);

    if (e != NULL) {
        ngx_queue_remove(&e->lru);
        ngx_queue_insert_head(&tc->lru, &e->lru);

        if (ngx_memcmp(&e->crt, &crt, sizeof(crt)) == 0) {

            if (e->cert != NULL) {
                return e;
            }

            (void) ngx_codeb_sip_tls_stat(path, &key, log);

            if (ngx_memcmp(&e->key, &key, sizeof(key)) == 0) {
                return NULL;
            }
        }

        ngx_codeb_sip_tls_clear(e);

    } else {
        e = ngx_codeb_sip_tls_add(tc, name, len, hash, log);
        if (e == NULL) {
            return NULL;
        }
    }

    /* what the files are now; the reads record what they opened */
    e->crt = crt;
    (void) ngx_codeb_sip_tls_stat(path, &e->key, log);

    ngx_codeb_sip_tls_load(tc, e, log);

    return e->cert ? e : NULL;
}


/* a new empty entry at the head of the cache, which drops its oldest */

static ngx_codeb_sip_tls_entry_t *
ngx_codeb_sip_tls_add(ngx_codeb_sip_tls_conf_t *tc, u_char *name,
    size_t len, uint32_t hash, ngx_log_t *log)
{
    ngx_codeb_sip_tls_entry_t  *e;

    if (tc->count >= tc->max) {
        e = ngx_queue_data(ngx_queue_last(&tc->lru),
                           ngx_codeb_sip_tls_entry_t, lru);
        ngx_codeb_sip_tls_free(tc, e);
    }

    e = ngx_alloc(sizeof(ngx_codeb_sip_tls_entry_t) + len, log);
    if (e == NULL) {
        return NULL;
    }

    ngx_memzero(e, sizeof(ngx_codeb_sip_tls_entry_t));

    e->sn.str.len = len;
    e->sn.str.data = (u_char *) (e + 1);
    ngx_memcpy(e->sn.str.data, name, len);
    e->sn.node.key = hash;

    ngx_rbtree_insert(&tc->tree, &e->sn.node);
    ngx_queue_insert_head(&tc->lru, &e->lru);
    tc->count++;

    return e;
}


/*
 * Reads NAME.crt and NAME.key into e and records what they were; on a
 * failure logs it and leaves e without a pair (its stamps kept, so the
 * same files are not tried again).
 */

static void
ngx_codeb_sip_tls_load(ngx_codeb_sip_tls_conf_t *tc,
    ngx_codeb_sip_tls_entry_t *e, ngx_log_t *log)
{
    u_char  path[NGX_MAX_PATH];

    ngx_codeb_sip_tls_path(tc, &e->sn.str, ".crt", path);

    if (ngx_codeb_sip_tls_load_cert(e, path, log) != NGX_OK) {
        goto failed;
    }

    ngx_codeb_sip_tls_path(tc, &e->sn.str, ".key", path);

    if (ngx_codeb_sip_tls_load_key(e, path, log) != NGX_OK) {
        goto failed;
    }

    if (X509_check_private_key(e->cert, e->pkey) != 1) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0, "codeb_sip_certificates: \"%s\" "
                      "does not match the certificate of \"%V\"",
                      path, &e->sn.str);
        goto failed;
    }

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "codeb_sip_certificates: loaded the certificate of \"%V\" "
                  "from \"%V\"", &e->sn.str, &tc->dir);
    return;

failed:

    ngx_codeb_sip_tls_clear(e);
}


/* e->cert, e->chain and e->crt from a PEM file; logs a failure */

static ngx_int_t
ngx_codeb_sip_tls_load_cert(ngx_codeb_sip_tls_entry_t *e, u_char *path,
    ngx_log_t *log)
{
    BIO            *bio;
    X509           *x;
    size_t          len;
    u_char         *buf;
    unsigned long   n;

    buf = ngx_codeb_sip_tls_read(path, &e->crt, &len, log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    bio = BIO_new_mem_buf(buf, len);
    if (bio == NULL) {
        goto failed;
    }

    e->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    e->chain = sk_X509_new_null();

    if (e->cert == NULL || e->chain == NULL) {
        goto failed;
    }

    for ( ;; ) {
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

        if (x == NULL) {
            n = ERR_peek_last_error();

            if (ERR_GET_LIB(n) != ERR_LIB_PEM
                || ERR_GET_REASON(n) != PEM_R_NO_START_LINE)
            {
                goto failed;
            }

            ERR_clear_error();
            break;
        }

        if (sk_X509_push(e->chain, x) == 0) {
            X509_free(x);
            goto failed;
        }
    }

    BIO_free(bio);
    ngx_free(buf);

    return NGX_OK;

failed:

    ngx_ssl_error(NGX_LOG_ERR, log, 0, "codeb_sip_certificates: "
                  "cannot read a certificate from \"%s\"", path);

    if (bio != NULL) {
        BIO_free(bio);
    }

    ngx_free(buf);

    return NGX_ERROR;
}


/* e->pkey and e->key from a PEM file, no password; logs a failure */

static ngx_int_t
ngx_codeb_sip_tls_load_key(ngx_codeb_sip_tls_entry_t *e, u_char *path,
    ngx_log_t *log)
{
    BIO     *bio;
    size_t   len;
    u_char  *buf;

    buf = ngx_codeb_sip_tls_read(path, &e->key, &len, log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    bio = BIO_new_mem_buf(buf, len);

    if (bio != NULL) {
        e->pkey = PEM_read_bio_PrivateKey(bio, NULL,
                                          ngx_codeb_sip_tls_no_password,
                                          NULL);
        BIO_free(bio);
    }

    ngx_explicit_memzero(buf, len);
    ngx_free(buf);

    if (e->pkey == NULL) {
        ngx_ssl_error(NGX_LOG_ERR, log, 0, "codeb_sip_certificates: "
                      "cannot read a private key from \"%s\"", path);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The contents of a regular file of at most NGX_CODEB_SIP_TLS_FILE_MAX
 * bytes, allocated, and in st what the file opened was; NULL (logged)
 * else.
 */

static u_char *
ngx_codeb_sip_tls_read(u_char *path, ngx_codeb_sip_tls_stamp_t *st,
    size_t *len, ngx_log_t *log)
{
    char             *msg;
    u_char           *buf;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_err_t         err;
    ngx_file_info_t   fi;

    /* non-blocking: a FIFO planted in the directory cannot hang us */
    fd = ngx_open_file(path, NGX_FILE_RDONLY|NGX_FILE_NONBLOCK,
                       NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno, "codeb_sip_certificates: "
                      ngx_open_file_n " \"%s\" failed", path);
        return NULL;
    }

    buf = NULL;
    err = 0;
    msg = ngx_fd_info_n " failed";

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;
        goto failed;
    }

    ngx_codeb_sip_tls_stamp(&fi, st);

    msg = "not a regular file of at most 65536 bytes";

    if (!ngx_is_file(&fi) || ngx_file_size(&fi) > NGX_CODEB_SIP_TLS_FILE_MAX)
    {
        goto failed;
    }

    buf = ngx_alloc(NGX_CODEB_SIP_TLS_FILE_MAX, log);
    if (buf == NULL) {
        msg = "no memory";
        goto failed;
    }

    n = ngx_read_fd(fd, buf, NGX_CODEB_SIP_TLS_FILE_MAX);

    if (n == -1) {
        err = ngx_errno;
        msg = ngx_read_fd_n " failed";
        goto failed;
    }

    ngx_close_file(fd);

    *len = n;

    return buf;

failed:

    ngx_log_error(NGX_LOG_ERR, log, err, "codeb_sip_certificates: \"%s\": "
                  "%s", path, msg);

    ngx_close_file(fd);

    if (buf != NULL) {
        ngx_free(buf);
    }

    return NULL;
}


/*
 * What a path is now: NGX_OK, or NGX_DECLINED with st all zero when there
 * is no file (logged unless it is simply absent).
 */

static ngx_int_t
ngx_codeb_sip_tls_stat(u_char *path, ngx_codeb_sip_tls_stamp_t *st,
    ngx_log_t *log)
{
    ngx_err_t        err;
    ngx_file_info_t  fi;

    if (ngx_file_info(path, &fi) != NGX_FILE_ERROR) {
        ngx_codeb_sip_tls_stamp(&fi, st);
        return NGX_OK;
    }

    ngx_memzero(st, sizeof(ngx_codeb_sip_tls_stamp_t));

    err = ngx_errno;

    if (err != NGX_ENOENT && err != NGX_ENOTDIR && err != NGX_ENAMETOOLONG) {
        ngx_log_error(NGX_LOG_ERR, log, err, "codeb_sip_certificates: "
                      ngx_file_info_n " \"%s\" failed", path);
    }

    return NGX_DECLINED;
}


static void
ngx_codeb_sip_tls_stamp(ngx_file_info_t *fi, ngx_codeb_sip_tls_stamp_t *st)
{
    ngx_memzero(st, sizeof(ngx_codeb_sip_tls_stamp_t));

    st->dev = fi->st_dev;
    st->ino = fi->st_ino;
    st->size = fi->st_size;
    st->sec = fi->st_mtim.tv_sec;
    st->nsec = fi->st_mtim.tv_nsec;
}


/* "<dir>/<name><ext>\0"; the directive made sure it fits NGX_MAX_PATH */

static void
ngx_codeb_sip_tls_path(ngx_codeb_sip_tls_conf_t *tc, ngx_str_t *name,
    char *ext, u_char *path)
{
    u_char  *p;

    p = ngx_cpymem(path, tc->dir.data, tc->dir.len);
    *p++ = '/';
    p = ngx_cpymem(p, name->data, name->len);
    ngx_cpystrn(p, (u_char *) ext, ngx_strlen(ext) + 1);
}


/* drops an entry's pair, keeping its name, place and stamps */

static void
ngx_codeb_sip_tls_clear(ngx_codeb_sip_tls_entry_t *e)
{
    if (e->cert != NULL) {
        X509_free(e->cert);
        e->cert = NULL;
    }

    if (e->chain != NULL) {
        sk_X509_pop_free(e->chain, X509_free);
        e->chain = NULL;
    }

    if (e->pkey != NULL) {
        EVP_PKEY_free(e->pkey);
        e->pkey = NULL;
    }
}


static void
ngx_codeb_sip_tls_free(ngx_codeb_sip_tls_conf_t *tc,
    ngx_codeb_sip_tls_entry_t *e)
{
    ngx_rbtree_delete(&tc->tree, &e->sn.node);
    ngx_queue_remove(&e->lru);
    tc->count--;

    ngx_codeb_sip_tls_clear(e);
    ngx_free(e);
}


/* encrypted keys are refused, never asked for on a terminal */

static int
ngx_codeb_sip_tls_no_password(char *buf, int size, int rwflag, void *data)
{
    return -1;
}


static void *
ngx_codeb_sip_tls_create_srv_conf(ngx_conf_t *cf)
{
    ngx_codeb_sip_tls_conf_t  *tc;

    tc = ngx_pcalloc(cf->pool, sizeof(ngx_codeb_sip_tls_conf_t));
    if (tc == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     tc->dir = { 0, NULL };
     *     tc->count = 0;
     *     tc->sscf = NULL;
     */

    tc->max = NGX_CODEB_SIP_TLS_CACHE;

    return tc;
}


/* codeb_sip_certificates <dir> [cache=<n>]; see the command table */

static char *
ngx_codeb_sip_tls_certificates(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_codeb_sip_tls_conf_t *tc = conf;

    ngx_int_t         n;
    ngx_str_t        *value;
    ngx_file_info_t   fi;

    if (tc->dir.data != NULL) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "cache=", 6) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[2].data + 6, value[2].len - 6);
        if (n == NGX_ERROR || n == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a number of 1 or more",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        tc->max = n;
    }

    tc->dir = value[1];

    if (tc->dir.len == 0
        || ngx_conf_full_name(cf->cycle, &tc->dir, 1) != NGX_OK)
    {
        return "has an invalid directory";
    }

    /* "<dir>/<253 characters>.crt" and its NUL must fit */
    if (tc->dir.len + NGX_CODEB_SIP_TLS_NAME_MAX + 6 > NGX_MAX_PATH) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_sip_certificates: \"%V\" is too long",
                           &tc->dir);
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(tc->dir.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "codeb_sip_certificates: " ngx_file_info_n
                           " \"%V\" failed", &tc->dir);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "codeb_sip_certificates: \"%V\" is not a "
                           "directory", &tc->dir);
        return NGX_CONF_ERROR;
    }

    while (tc->dir.len > 1 && tc->dir.data[tc->dir.len - 1] == '/') {
        tc->dir.len--;
    }

    tc->file = cf->conf_file->file.name.data;
    tc->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * After the servers are merged (their SSL_CTX made): the callback on the
 * SSL_CTX of each server{} with the directive.  Fails (nginx -t says
 * where) for a server{} without its own certificate to fall back to.
 */

static ngx_int_t
ngx_codeb_sip_tls_init(ngx_conf_t *cf)
{
    ngx_uint_t                   i;
    ngx_http_ssl_srv_conf_t     *sscf;
    ngx_codeb_sip_tls_conf_t    *tc;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    for (i = 0; i < cmcf->servers.nelts; i++) {

        tc = cscfp[i]->ctx->srv_conf[ngx_codeb_sip_tls_module.ctx_index];

        if (tc->dir.len == 0) {
            continue;
        }

        sscf = cscfp[i]->ctx->srv_conf[ngx_http_ssl_module.ctx_index];

        if (sscf->ssl.ctx == NULL || sscf->certificates == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"codeb_sip_certificates\" in %s:%ui needs "
                          "\"ssl_certificate\" in its server{} (the "
                          "certificate of names without a file)",
                          tc->file, tc->line);
            return NGX_ERROR;
        }

        tc->sscf = sscf;

        ngx_rbtree_init(&tc->tree, &tc->sentinel,
                        ngx_str_rbtree_insert_value);
        ngx_queue_init(&tc->lru);

        SSL_CTX_set_cert_cb(sscf->ssl.ctx, ngx_codeb_sip_tls_cert_cb, tc);
    }

    return NGX_OK;
}


/* frees every cached pair: nothing of ours is left for a leak check */

static void
ngx_codeb_sip_tls_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_codeb_sip_tls_conf_t    *tc;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_core_module);
    if (cmcf == NULL) {
        return;
    }

    cscfp = cmcf->servers.elts;

    for (i = 0; i < cmcf->servers.nelts; i++) {

        tc = cscfp[i]->ctx->srv_conf[ngx_codeb_sip_tls_module.ctx_index];

        if (tc->dir.len == 0 || tc->sscf == NULL) {
            continue;
        }

        while (!ngx_queue_empty(&tc->lru)) {
            ngx_codeb_sip_tls_free(tc, ngx_queue_data(ngx_queue_head(&tc->lru),
                                                     ngx_codeb_sip_tls_entry_t,
                                                     lru));
        }
    }
}
