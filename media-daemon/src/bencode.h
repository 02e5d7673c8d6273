/*
 * Bencode (BitTorrent BEP 3), as used by the rtpengine NG protocol:
 * strict parsing into a bounded node array, and an encoder into a
 * growable buffer.
 */

#ifndef MD_BENCODE_H
#define MD_BENCODE_H

#include <stddef.h>
#include <stdint.h>


#define BE_MAX_NODES  1024
#define BE_MAX_DEPTH  16


typedef enum {
    BE_STR = 1,
    BE_INT,
    BE_LIST,
    BE_DICT
} be_type_e;

/*
 * A parsed value.  Strings point into the input (not NUL-terminated).
 * Lists and dicts chain their items through child/next; a dict's items
 * alternate key, value.
 */
typedef struct be_node {
    be_type_e        type;
    const char      *s;
    size_t           len;
    int64_t          i;
    struct be_node  *child;
    struct be_node  *next;
} be_node_t;

typedef struct {
    be_node_t        nodes[BE_MAX_NODES];
    size_t           n;
    const char      *error;      /* why parsing failed */
} be_doc_t;


/*
 * Parses exactly one value spanning [p, p + len).  Returns the root or
 * NULL with doc->error set (trailing bytes, bad integer, string longer than
 * the input, depth > BE_MAX_DEPTH, more than BE_MAX_NODES values, a
 * non-string dict key).
 */
be_node_t *be_parse(be_doc_t *doc, const char *p, size_t len);

/* dict lookup by key (NUL-terminated); NULL when absent */
be_node_t *be_get(be_node_t *dict, const char *key);
/* the string value of key, or NULL when absent or not a string */
be_node_t *be_get_str(be_node_t *dict, const char *key);
/* 1 when the node is a string equal to s */
int be_is(be_node_t *n, const char *s);
/* 1 when list contains the string s (case-insensitive) */
int be_list_has(be_node_t *list, const char *s);


/*
 * A bencoded output, grown on the heap (zeroed to start).  After an
 * allocation failure every write is ignored and failed stays set.
 */
typedef struct {
    char            *data;
    size_t           len;
    size_t           cap;
    int              failed;     /* out of memory: the buffer is unusable */
} be_buf_t;

/* its memory freed; b is empty (zeroed) again */
void be_buf_free(be_buf_t *b);
/* s[0..len) as it is (already bencoded, or the NG cookie) */
void be_raw(be_buf_t *b, const char *s, size_t len);
/* a string "<len>:<bytes>"; be_cstr() of a NUL-terminated one */
void be_str(be_buf_t *b, const char *s, size_t len);
void be_cstr(be_buf_t *b, const char *s);
/* an integer "i<v>e" */
void be_int(be_buf_t *b, int64_t v);
/* a dictionary or list opens ("d", "l") until its be_end() ("e") */
void be_dict(be_buf_t *b);
void be_list(be_buf_t *b);
void be_end(be_buf_t *b);
/* key (a literal) followed by a string, a C string or an integer */
void be_kv(be_buf_t *b, const char *key, const char *s, size_t len);
void be_kcstr(be_buf_t *b, const char *key, const char *s);
void be_kint(be_buf_t *b, const char *key, int64_t v);

#endif
