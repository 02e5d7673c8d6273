/*
 * JSON object reading with yajl's event parser (RFC 8259).  Top-level
 * members come back with their exact source text, so a value can be
 * relayed byte for byte (docs/signal.md, `signal.data`) or parsed again.
 */

#include "ngx_codeb_core.h"
#include <yajl/yajl_parse.h>


typedef struct {
    yajl_handle                 yajl;
    ngx_pool_t                 *pool;
    u_char                     *text;
    size_t                      len;
    ngx_array_t                *members;
    ngx_codeb_json_member_t    *cur;
    size_t                      key_end;     /* offset after the last key */
    size_t                      value_start;
    ngx_uint_t                  depth;
    ngx_uint_t                  object;      /* the root is an object */
} ngx_codeb_json_ctx_t;


static int ngx_codeb_json_null(void *ctx);
static int ngx_codeb_json_boolean(void *ctx, int value);
static int ngx_codeb_json_number(void *ctx, const char *s, size_t len);
static int ngx_codeb_json_string(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_codeb_json_start_map(void *ctx);
static int ngx_codeb_json_map_key(void *ctx, const unsigned char *s,
    size_t len);
static int ngx_codeb_json_end_map(void *ctx);
static int ngx_codeb_json_start_array(void *ctx);
static int ngx_codeb_json_end_array(void *ctx);


static yajl_callbacks  ngx_codeb_json_callbacks = {
    ngx_codeb_json_null,
    ngx_codeb_json_boolean,
    NULL,
    NULL,
    ngx_codeb_json_number,
    ngx_codeb_json_string,
    ngx_codeb_json_start_map,
    ngx_codeb_json_map_key,
    ngx_codeb_json_end_map,
    ngx_codeb_json_start_array,
    ngx_codeb_json_end_array
};


ngx_int_t
ngx_codeb_json_object(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_array_t **members)
{
    yajl_status           st;
    ngx_codeb_json_ctx_t  ctx;

    ngx_memzero(&ctx, sizeof(ngx_codeb_json_ctx_t));

    ctx.pool = pool;
    ctx.text = text;
    ctx.len = len;

    ctx.members = ngx_array_create(pool, 8, sizeof(ngx_codeb_json_member_t));
    if (ctx.members == NULL) {
        return NGX_ERROR;
    }

    ctx.yajl = yajl_alloc(&ngx_codeb_json_callbacks, NULL, &ctx);
    if (ctx.yajl == NULL) {
        return NGX_ERROR;
    }

    st = yajl_parse(ctx.yajl, text, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(ctx.yajl);
    }

    yajl_free(ctx.yajl);

    if (st != yajl_status_ok || !ctx.object) {
        return NGX_DECLINED;
    }

    *members = ctx.members;

    return NGX_OK;
}


ngx_codeb_json_member_t *
ngx_codeb_json_get(ngx_array_t *members, char *key)
{
    size_t                    n;
    ngx_uint_t                i;
    ngx_codeb_json_member_t  *m, *found;

    n = ngx_strlen(key);
    m = members->elts;
    found = NULL;

    /* the last of duplicate keys wins, as in most JSON parsers */

    for (i = 0; i < members->nelts; i++) {
        if (m[i].key.len == n && ngx_strncmp(m[i].key.data, key, n) == 0) {
            found = &m[i];
        }
    }

    return found;
}


ngx_codeb_json_member_t *
ngx_codeb_json_get_type(ngx_array_t *members, char *key,
    ngx_codeb_json_type_e type)
{
    ngx_codeb_json_member_t  *m;

    m = ngx_codeb_json_get(members, key);

    return (m && m->type == type) ? m : NULL;
}


ngx_int_t
ngx_codeb_json_int(ngx_array_t *members, char *key, int64_t *value)
{
    ngx_codeb_json_member_t  *m;

    m = ngx_codeb_json_get_type(members, key, NGX_CODEB_JSON_NUMBER);

    return m ? ngx_codeb_json_member_int(m, value) : NGX_ERROR;
}


ngx_int_t
ngx_codeb_json_member_int(ngx_codeb_json_member_t *m, int64_t *value)
{
    u_char      *p, *last;
    int64_t      v;
    ngx_uint_t   neg;

    if (m->type != NGX_CODEB_JSON_NUMBER || m->raw.len == 0
        || m->raw.len > 18)
    {
        return NGX_ERROR;
    }

    p = m->raw.data;
    last = p + m->raw.len;
    neg = (*p == '-');

    if (neg) {
        p++;
    }

    if (p == last) {
        return NGX_ERROR;
    }

    for (v = 0; p < last; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        v = v * 10 + (*p - '0');
    }

    *value = neg ? -v : v;

    return NGX_OK;
}


/* a value begins: its text starts after the last key and the colon */
static ngx_codeb_json_member_t *
ngx_codeb_json_value(ngx_codeb_json_ctx_t *ctx, ngx_codeb_json_type_e type)
{
    u_char  *p, *end;

    if (ctx->depth != 1 || ctx->cur == NULL) {
        return NULL;
    }

    p = ctx->text + ctx->key_end;
    end = ctx->text + ctx->len;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'
                       || *p == ':'))
    {
        p++;
    }

    ctx->value_start = p - ctx->text;
    ctx->cur->type = type;

    return ctx->cur;
}


/* a value ends at the parser's current offset */
static void
ngx_codeb_json_value_end(ngx_codeb_json_ctx_t *ctx)
{
    size_t  end;

    end = yajl_get_bytes_consumed(ctx->yajl);

    ctx->cur->raw.data = ctx->text + ctx->value_start;
    ctx->cur->raw.len = end - ctx->value_start;
    ctx->cur = NULL;
}


static int
ngx_codeb_json_scalar(ngx_codeb_json_ctx_t *ctx, ngx_codeb_json_type_e type,
    int boolean)
{
    ngx_codeb_json_member_t  *m;

    if (ctx->depth == 0) {
        return 0;   /* a scalar root is not an object */
    }

    m = ngx_codeb_json_value(ctx, type);
    if (m) {
        m->boolean = boolean;
        ngx_codeb_json_value_end(ctx);
    }

    return 1;
}


static int
ngx_codeb_json_null(void *ctx)
{
    return ngx_codeb_json_scalar(ctx, NGX_CODEB_JSON_NULL, 0);
}


static int
ngx_codeb_json_boolean(void *ctx, int value)
{
    return ngx_codeb_json_scalar(ctx, NGX_CODEB_JSON_BOOL, value);
}


static int
ngx_codeb_json_number(void *ctx, const char *s, size_t len)
{
    return ngx_codeb_json_scalar(ctx, NGX_CODEB_JSON_NUMBER, 0);
}


static int
ngx_codeb_json_string(void *data, const unsigned char *s, size_t len)
{
    ngx_codeb_json_ctx_t     *ctx = data;
    ngx_codeb_json_member_t  *m;

    if (ctx->depth == 0) {
        return 0;
    }

    m = ngx_codeb_json_value(ctx, NGX_CODEB_JSON_STRING);
    if (m == NULL) {
        return 1;
    }

    m->str.data = ngx_pnalloc(ctx->pool, len + 1);
    if (m->str.data == NULL) {
        return 0;
    }

    ngx_memcpy(m->str.data, s, len);
    m->str.data[len] = '\0';
    m->str.len = len;

    ngx_codeb_json_value_end(ctx);

    return 1;
}


static int
ngx_codeb_json_start_map(void *data)
{
    ngx_codeb_json_ctx_t  *ctx = data;

    if (ctx->depth == 0) {
        ctx->object = 1;

    } else {
        (void) ngx_codeb_json_value(ctx, NGX_CODEB_JSON_OBJECT);
    }

    ctx->depth++;

    return 1;
}


static int
ngx_codeb_json_map_key(void *data, const unsigned char *s, size_t len)
{
    ngx_codeb_json_ctx_t     *ctx = data;
    ngx_codeb_json_member_t  *m;

    if (ctx->depth != 1) {
        return 1;
    }

    m = ngx_array_push(ctx->members);
    if (m == NULL) {
        return 0;
    }

    ngx_memzero(m, sizeof(ngx_codeb_json_member_t));

    m->key.data = ngx_pnalloc(ctx->pool, len + 1);
    if (m->key.data == NULL) {
        return 0;
    }

    ngx_memcpy(m->key.data, s, len);
    m->key.data[len] = '\0';
    m->key.len = len;

    ctx->cur = m;
    ctx->key_end = yajl_get_bytes_consumed(ctx->yajl);

    return 1;
}


static int
ngx_codeb_json_end_map(void *data)
{
    ngx_codeb_json_ctx_t  *ctx = data;

    ctx->depth--;

    if (ctx->depth == 1 && ctx->cur) {
        ngx_codeb_json_value_end(ctx);
    }

    return 1;
}


static int
ngx_codeb_json_start_array(void *data)
{
    ngx_codeb_json_ctx_t  *ctx = data;

    if (ctx->depth == 0) {
        return 0;
    }

    (void) ngx_codeb_json_value(ctx, NGX_CODEB_JSON_ARRAY);
    ctx->depth++;

    return 1;
}


static int
ngx_codeb_json_end_array(void *data)
{
    ngx_codeb_json_ctx_t  *ctx = data;

    ctx->depth--;

    if (ctx->depth == 1 && ctx->cur) {
        ngx_codeb_json_value_end(ctx);
    }

    return 1;
}


/* n decimal digits at *p (moved past them) as *v; NGX_DECLINED: fewer */
static ngx_int_t
ngx_codeb_time_digits(u_char **p, u_char *end, ngx_uint_t n, int64_t *v)
{
    ngx_uint_t  i;

    for (*v = 0, i = 0; i < n; i++, (*p)++) {
        if (*p == end || **p < '0' || **p > '9') {
            return NGX_DECLINED;
        }

        *v = *v * 10 + (**p - '0');
    }

    return NGX_OK;
}


ngx_int_t
ngx_codeb_parse_time(u_char *s, size_t len, int64_t *ms)
{
    u_char      *p, *end;
    int64_t      y, mo, d, h, mi, sec, frac, days, scale;
    ngx_uint_t   i;

    static u_char  mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30,
                               31 };

    p = s;
    end = s + len;
    h = mi = sec = frac = 0;

    if (ngx_codeb_time_digits(&p, end, 4, &y) != NGX_OK
        || p == end || *p++ != '-'
        || ngx_codeb_time_digits(&p, end, 2, &mo) != NGX_OK
        || p == end || *p++ != '-'
        || ngx_codeb_time_digits(&p, end, 2, &d) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (p < end && (*p == 'T' || *p == 't')) {
        p++;

        if (ngx_codeb_time_digits(&p, end, 2, &h) != NGX_OK
            || p == end || *p++ != ':'
            || ngx_codeb_time_digits(&p, end, 2, &mi) != NGX_OK)
        {
            return NGX_DECLINED;
        }

        if (p < end && *p == ':') {
            p++;

            if (ngx_codeb_time_digits(&p, end, 2, &sec) != NGX_OK) {
                return NGX_DECLINED;
            }

            if (p < end && *p == '.') {
                for (p++, scale = 100, i = 0;
                     p < end && *p >= '0' && *p <= '9';
                     p++, i++, scale /= 10)
                {
                    frac += (*p - '0') * scale;
                }

                if (i == 0 || i > 9) {
                    return NGX_DECLINED;
                }
            }
        }

        if (p < end && (*p == 'Z' || *p == 'z')) {
            p++;
        }
    }

    if (p != end || y < 1970 || mo < 1 || mo > 12 || d < 1
        || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
    {
        return NGX_DECLINED;
    }

    /* days since 1970-01-01 of the civil date (proleptic Gregorian) */
    y -= mo <= 2;
    days = (y / 400) * 146097
           + ((y % 400) * 365 + (y % 400) / 4 - (y % 400) / 100)
           + (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1 - 719468;

    *ms = ((days * 24 + h) * 60 + mi) * 60000 + sec * 1000 + frac;

    return NGX_OK;
}


/* ngx_codeb_gen_json(): every parser event written to the generator */

static int
ngx_codeb_json_copy_null(void *g)
{
    return yajl_gen_null(g) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_bool(void *g, int value)
{
    return yajl_gen_bool(g, value) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_number(void *g, const char *s, size_t len)
{
    return yajl_gen_number(g, s, len) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_string(void *g, const unsigned char *s, size_t len)
{
    return yajl_gen_string(g, s, len) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_map_open(void *g)
{
    return yajl_gen_map_open(g) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_map_close(void *g)
{
    return yajl_gen_map_close(g) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_array_open(void *g)
{
    return yajl_gen_array_open(g) == yajl_gen_status_ok;
}


static int
ngx_codeb_json_copy_array_close(void *g)
{
    return yajl_gen_array_close(g) == yajl_gen_status_ok;
}


static yajl_callbacks  ngx_codeb_json_copy_callbacks = {
    ngx_codeb_json_copy_null,
    ngx_codeb_json_copy_bool,
    NULL,
    NULL,
    ngx_codeb_json_copy_number,
    ngx_codeb_json_copy_string,
    ngx_codeb_json_copy_map_open,
    ngx_codeb_json_copy_string,          /* a key is a string to yajl_gen */
    ngx_codeb_json_copy_map_close,
    ngx_codeb_json_copy_array_open,
    ngx_codeb_json_copy_array_close
};


ngx_int_t
ngx_codeb_gen_json(yajl_gen g, u_char *text, size_t len)
{
    yajl_handle  h;
    yajl_status  st;

    h = yajl_alloc(&ngx_codeb_json_copy_callbacks, NULL, g);
    if (h == NULL) {
        return NGX_DECLINED;
    }

    st = yajl_parse(h, text, len);
    if (st == yajl_status_ok) {
        st = yajl_complete_parse(h);
    }

    yajl_free(h);

    return st == yajl_status_ok ? NGX_OK : NGX_DECLINED;
}
