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


/* n digits at p as a number; -1 when one is not a digit */
static ngx_int_t
ngx_codeb_digits(u_char *p, size_t n)
{
    ngx_int_t  v;

    for (v = 0; n; n--, p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }

        v = v * 10 + (*p - '0');
    }

    return v;
}


int64_t
ngx_codeb_parse_time(u_char *s, size_t len)
{
    u_char     *p, *end;
    int64_t     days, ms, scale;
    ngx_int_t   y, mo, d, h, mi, sec, era, yoe, doy, doe;

    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T'
        && s[10] != 't') || s[13] != ':' || s[16] != ':')
    {
        return -1;
    }

    y = ngx_codeb_digits(s, 4);
    mo = ngx_codeb_digits(s + 5, 2);
    d = ngx_codeb_digits(s + 8, 2);
    h = ngx_codeb_digits(s + 11, 2);
    mi = ngx_codeb_digits(s + 14, 2);
    sec = ngx_codeb_digits(s + 17, 2);

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23
        || mi < 0 || mi > 59 || sec < 0 || sec > 60)
    {
        return -1;
    }

    p = s + 19;
    end = s + len;
    ms = 0;

    if (*p == '.') {
        for (p++, scale = 100; p < end && *p >= '0' && *p <= '9'; p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }

        if (p == s + 20) {
            return -1;
        }
    }

    if (!((end - p == 1 && (*p == 'Z' || *p == 'z'))
          || (end - p == 6 && ngx_strncmp(p, "+00:00", 6) == 0)))
    {
        return -1;
    }

    /* days since 1970-01-01 of a proleptic Gregorian date */
    y -= (mo <= 2);
    era = y / 400;
    yoe = y - era * 400;
    doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    days = (int64_t) era * 146097 + doe - 719468;

    return ((days * 24 + h) * 60 + mi) * 60000 + (int64_t) sec * 1000 + ms;
}
