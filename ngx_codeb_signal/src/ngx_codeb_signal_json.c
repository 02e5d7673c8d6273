/*
 * Server frames are written with yajl_gen.  A frame is built up to its
 * last member and left open: the delivering worker appends
 * ,"seq":N} (PROTOCOL.md §1 "Resume"), so one text serves every receiver.
 */

#include "ngx_codeb_signal.h"


static yajl_gen  ngx_codeb_signal_yajl;


/* the worker's generator, emptied; its text is valid until the next call */
yajl_gen
ngx_codeb_signal_gen(void)
{
    if (ngx_codeb_signal_yajl == NULL) {
        ngx_codeb_signal_yajl = yajl_gen_alloc(NULL);
        if (ngx_codeb_signal_yajl == NULL) {
            return NULL;
        }

    } else {
        yajl_gen_reset(ngx_codeb_signal_yajl, NULL);
        yajl_gen_clear(ngx_codeb_signal_yajl);
    }

    yajl_gen_map_open(ngx_codeb_signal_yajl);

    return ngx_codeb_signal_yajl;
}


void
ngx_codeb_signal_gen_free(void)
{
    if (ngx_codeb_signal_yajl) {
        yajl_gen_free(ngx_codeb_signal_yajl);
        ngx_codeb_signal_yajl = NULL;
    }
}


void
ngx_codeb_signal_gen_str(yajl_gen g, char *key, u_char *s, size_t len)
{
    yajl_gen_string(g, (u_char *) key, ngx_strlen(key));
    yajl_gen_string(g, s, len);
}


void
ngx_codeb_signal_gen_cstr(yajl_gen g, char *key, char *s)
{
    ngx_codeb_signal_gen_str(g, key, (u_char *) s, ngx_strlen(s));
}


ngx_str_t
ngx_codeb_signal_gen_text(yajl_gen g)
{
    size_t          len;
    ngx_str_t       text;
    const u_char   *buf;

    buf = NULL;
    len = 0;
    (void) yajl_gen_get_buf(g, &buf, &len);

    text.data = (u_char *) buf;
    text.len = len;

    return text;
}


/* "codeb:{<tenant>}:<kind><name>" into buf */
ngx_int_t
ngx_codeb_signal_key_prefix(ngx_codeb_tenant_t *t, char *kind, u_char *name,
    size_t len, u_char *buf, size_t size, ngx_str_t *key)
{
    if (sizeof("codeb:{}:") + t->name.len + ngx_strlen(kind) + len > size) {
        return NGX_ERROR;
    }

    key->data = buf;
    key->len = ngx_sprintf(buf, "codeb:{%V}:%s%*s", &t->name, kind, len, name)
               - buf;

    return NGX_OK;
}
