/*
 * JSON (RFC 8259) with yajl: reading objects (ngx_codeb_json.c) and
 * writing every JSON text the modules produce (ngx_codeb_json_gen.c).
 * No JSON is ever built by string concatenation.
 */

#ifndef _NGX_CODEB_JSON_H_INCLUDED_
#define _NGX_CODEB_JSON_H_INCLUDED_


#include <yajl/yajl_gen.h>


typedef enum {
    NGX_CODEB_JSON_NONE = 0,
    NGX_CODEB_JSON_NULL,
    NGX_CODEB_JSON_BOOL,
    NGX_CODEB_JSON_NUMBER,
    NGX_CODEB_JSON_STRING,
    NGX_CODEB_JSON_OBJECT,
    NGX_CODEB_JSON_ARRAY
} ngx_codeb_json_type_e;

/* one member of a parsed object; raw is the exact source text of the value */
typedef struct {
    ngx_str_t                   key;
    ngx_codeb_json_type_e       type;
    ngx_str_t                   raw;
    ngx_str_t                   str;     /* unescaped, for strings */
    ngx_flag_t                  boolean;
} ngx_codeb_json_member_t;

/*
 * Parses text as one JSON object and returns its top-level members in
 * order; nested values are available as raw text.  NGX_DECLINED: not valid
 * JSON or not an object; NGX_ERROR: no memory.
 */
ngx_int_t ngx_codeb_json_object(ngx_pool_t *pool, u_char *text, size_t len,
    ngx_array_t **members);
/* the member named key (the last of duplicates), or NULL */
ngx_codeb_json_member_t *ngx_codeb_json_get(ngx_array_t *members, char *key);
/* the member named key if it has the given type, else NULL */
ngx_codeb_json_member_t *ngx_codeb_json_get_type(ngx_array_t *members,
    char *key, ngx_codeb_json_type_e type);
/*
 * ISO 8601 UTC "2026-01-01T12:00:00Z", optionally with a fraction of a
 * second (".5", ".500", ...) and "Z" or "+00:00", as ms since the epoch;
 * -1 when s is not such a time (years 1970 to 9999)
 */
int64_t ngx_codeb_parse_time(u_char *s, size_t len);
/* number member as an integer; NGX_ERROR if absent or not an integer */
ngx_int_t ngx_codeb_json_int(ngx_array_t *members, char *key, int64_t *value);
/* the same of one member */
ngx_int_t ngx_codeb_json_member_int(ngx_codeb_json_member_t *m,
    int64_t *value);


/*
 * The worker's generator, emptied, with a top-level object opened.  Its
 * text stays valid until the next ngx_codeb_gen() of the worker.  NULL:
 * no memory.
 */
yajl_gen ngx_codeb_gen(void);
/* frees the worker's generator (at process exit) */
void ngx_codeb_gen_free(void);

/* "key": value members of the open object */
void ngx_codeb_gen_str(yajl_gen g, char *key, u_char *s, size_t len);
void ngx_codeb_gen_cstr(yajl_gen g, char *key, char *s);
void ngx_codeb_gen_int(yajl_gen g, char *key, int64_t n);
void ngx_codeb_gen_bool(yajl_gen g, char *key, ngx_uint_t b);
void ngx_codeb_gen_null(yajl_gen g, char *key);
/* ms since the epoch as "2026-01-01T12:00:00.000Z" (ISO 8601 UTC); 0: null */
void ngx_codeb_gen_time(yajl_gen g, char *key, uint64_t ms);
/* the flat members of a parsed object (nested ones left out) */
void ngx_codeb_gen_members(yajl_gen g, ngx_array_t *members);
/* the key of a member whose value the caller writes */
void ngx_codeb_gen_key(yajl_gen g, char *key);
#define ngx_codeb_gen_vstr(g, key, s)                                        \
    ngx_codeb_gen_str(g, key, (s)->data, (s)->len)

/* the text so far, its top-level object still open */
ngx_str_t ngx_codeb_gen_text(yajl_gen g);
/* closes the top-level object and returns the whole text */
ngx_str_t ngx_codeb_gen_done(yajl_gen g);


#endif /* _NGX_CODEB_JSON_H_INCLUDED_ */
