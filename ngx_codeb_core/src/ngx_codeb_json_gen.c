/*
 * Writing JSON with yajl_gen: one generator per worker, emptied for every
 * text, so answers and frames cost no allocation once it has grown.
 * Strings are escaped by yajl (RFC 8259 §7); invalid UTF-8 is not checked
 * here: every string written comes from validated input or from us.
 */

#include "ngx_codeb_core.h"


static yajl_gen  ngx_codeb_yajl;


yajl_gen
ngx_codeb_gen(void)
{
    if (ngx_codeb_yajl == NULL) {
        ngx_codeb_yajl = yajl_gen_alloc(NULL);
        if (ngx_codeb_yajl == NULL) {
            return NULL;
        }

    } else {
        yajl_gen_reset(ngx_codeb_yajl, NULL);
        yajl_gen_clear(ngx_codeb_yajl);
    }

    yajl_gen_map_open(ngx_codeb_yajl);

    return ngx_codeb_yajl;
}


void
ngx_codeb_gen_free(void)
{
    if (ngx_codeb_yajl) {
        yajl_gen_free(ngx_codeb_yajl);
        ngx_codeb_yajl = NULL;
    }
}


void
ngx_codeb_gen_key(yajl_gen g, char *key)
{
    yajl_gen_string(g, (u_char *) key, ngx_strlen(key));
}


void
ngx_codeb_gen_str(yajl_gen g, char *key, u_char *s, size_t len)
{
    ngx_codeb_gen_key(g, key);
    yajl_gen_string(g, s, len);
}


void
ngx_codeb_gen_cstr(yajl_gen g, char *key, char *s)
{
    ngx_codeb_gen_str(g, key, (u_char *) s, ngx_strlen(s));
}


void
ngx_codeb_gen_int(yajl_gen g, char *key, int64_t n)
{
    ngx_codeb_gen_key(g, key);
    yajl_gen_integer(g, n);
}


void
ngx_codeb_gen_bool(yajl_gen g, char *key, ngx_uint_t b)
{
    ngx_codeb_gen_key(g, key);
    yajl_gen_bool(g, b != 0);
}


void
ngx_codeb_gen_null(yajl_gen g, char *key)
{
    ngx_codeb_gen_key(g, key);
    yajl_gen_null(g);
}


void
ngx_codeb_gen_time(yajl_gen g, char *key, uint64_t ms)
{
    u_char     buf[sizeof("2026-01-01T12:00:00.000Z")], *p;
    ngx_tm_t   tm;

    if (ms == 0) {
        ngx_codeb_gen_null(g, key);
        return;
    }

    ngx_gmtime((time_t) (ms / 1000), &tm);

    p = ngx_sprintf(buf, "%4d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                    tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                    tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec,
                    (int) (ms % 1000));

    ngx_codeb_gen_str(g, key, buf, p - buf);
}


/*
 * the members of a parsed object (ngx_codeb_json_object()) as members of
 * the open object; nested objects and arrays are left out
 */
void
ngx_codeb_gen_members(yajl_gen g, ngx_array_t *members)
{
    ngx_uint_t                i;
    ngx_codeb_json_member_t  *m;

    m = members->elts;

    for (i = 0; i < members->nelts; i++) {
        if (m[i].type == NGX_CODEB_JSON_OBJECT
            || m[i].type == NGX_CODEB_JSON_ARRAY)
        {
            continue;
        }

        yajl_gen_string(g, m[i].key.data, m[i].key.len);

        switch (m[i].type) {

        case NGX_CODEB_JSON_STRING:
            yajl_gen_string(g, m[i].str.data, m[i].str.len);
            break;

        case NGX_CODEB_JSON_NUMBER:
            yajl_gen_number(g, (char *) m[i].raw.data, m[i].raw.len);
            break;

        case NGX_CODEB_JSON_BOOL:
            yajl_gen_bool(g, m[i].boolean != 0);
            break;

        default:
            yajl_gen_null(g);
            break;
        }
    }
}


ngx_str_t
ngx_codeb_gen_text(yajl_gen g)
{
    size_t         len;
    ngx_str_t      text;
    const u_char  *buf;

    buf = NULL;
    len = 0;
    (void) yajl_gen_get_buf(g, &buf, &len);

    text.data = (u_char *) buf;
    text.len = len;

    return text;
}


ngx_str_t
ngx_codeb_gen_done(yajl_gen g)
{
    yajl_gen_map_close(g);

    return ngx_codeb_gen_text(g);
}
