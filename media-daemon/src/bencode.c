/*
 * Bencode parser and encoder.  The parser never reads past the input and
 * bounds nodes and nesting, since NG requests come from the network.
 */

#include "bencode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static const char *be_value(be_doc_t *doc, const char *p, const char *end,
    be_node_t **out, int depth);


be_node_t *
be_parse(be_doc_t *doc, const char *p, size_t len)
{
    be_node_t   *root;
    const char  *end, *q;

    doc->n = 0;
    doc->error = NULL;
    end = p + len;

    q = be_value(doc, p, end, &root, 0);
    if (q == NULL) {
        return NULL;
    }

    if (q != end) {
        doc->error = "trailing bytes after the value";
        return NULL;
    }

    return root;
}


static be_node_t *
be_node(be_doc_t *doc, be_type_e type)
{
    be_node_t  *n;

    if (doc->n == BE_MAX_NODES) {
        doc->error = "too many values";
        return NULL;
    }

    n = &doc->nodes[doc->n++];
    memset(n, 0, sizeof(be_node_t));
    n->type = type;

    return n;
}


/* digits up to stop; no leading zeros (but "0"), no "-0" */
static const char *
be_number(be_doc_t *doc, const char *p, const char *end, char stop,
    int allow_sign, int64_t *v)
{
    int       neg, digits;
    uint64_t  u;

    neg = 0;
    u = 0;
    digits = 0;

    if (allow_sign && p < end && *p == '-') {
        neg = 1;
        p++;
    }

    if (p < end && *p == '0' && p + 1 < end && p[1] != stop) {
        doc->error = "leading zero in a number";
        return NULL;
    }

    while (p < end && *p >= '0' && *p <= '9') {
        if (++digits > 18) {
            doc->error = "number too large";
            return NULL;
        }

        u = u * 10 + (uint64_t) (*p - '0');
        p++;
    }

    if (digits == 0 || p == end || *p != stop || (neg && u == 0)) {
        doc->error = "malformed number";
        return NULL;
    }

    *v = neg ? -(int64_t) u : (int64_t) u;

    return p + 1;
}


static const char *
be_value(be_doc_t *doc, const char *p, const char *end, be_node_t **out,
    int depth)
{
    int64_t     len;
    be_node_t  *n, *item, **link;
    be_type_e   type;
    size_t      count;

    if (p >= end) {
        doc->error = "truncated input";
        return NULL;
    }

    if (depth > BE_MAX_DEPTH) {
        doc->error = "nesting too deep";
        return NULL;
    }

    switch (*p) {

    case 'i':
        n = be_node(doc, BE_INT);
        if (n == NULL) {
            return NULL;
        }

        p = be_number(doc, p + 1, end, 'e', 1, &n->i);
        *out = n;
        return p;

    case 'l':
    case 'd':
        type = (*p == 'l') ? BE_LIST : BE_DICT;
        n = be_node(doc, type);
        if (n == NULL) {
            return NULL;
        }

        p++;
        link = &n->child;
        count = 0;

        while (p < end && *p != 'e') {
            p = be_value(doc, p, end, &item, depth + 1);
            if (p == NULL) {
                return NULL;
            }

            if (type == BE_DICT && count % 2 == 0 && item->type != BE_STR) {
                doc->error = "dictionary key is not a string";
                return NULL;
            }

            *link = item;
            link = &item->next;
            count++;
        }

        if (p >= end) {
            doc->error = "unterminated list or dictionary";
            return NULL;
        }

        if (type == BE_DICT && count % 2) {
            doc->error = "dictionary key without a value";
            return NULL;
        }

        *out = n;
        return p + 1;

    default:
        if (*p < '0' || *p > '9') {
            doc->error = "unexpected byte";
            return NULL;
        }

        p = be_number(doc, p, end, ':', 0, &len);
        if (p == NULL) {
            return NULL;
        }

        if (len > end - p) {
            doc->error = "string longer than the input";
            return NULL;
        }

        n = be_node(doc, BE_STR);
        if (n == NULL) {
            return NULL;
        }

        n->s = p;
        n->len = (size_t) len;
        *out = n;

        return p + len;
    }
}


be_node_t *
be_get(be_node_t *dict, const char *key)
{
    size_t      klen;
    be_node_t  *k;

    if (dict == NULL || dict->type != BE_DICT) {
        return NULL;
    }

    klen = strlen(key);

    for (k = dict->child; k && k->next; k = k->next->next) {
        if (k->len == klen && memcmp(k->s, key, klen) == 0) {
            return k->next;
        }
    }

    return NULL;
}


be_node_t *
be_get_str(be_node_t *dict, const char *key)
{
    be_node_t  *v;

    v = be_get(dict, key);

    return (v && v->type == BE_STR) ? v : NULL;
}


int
be_is(be_node_t *n, const char *s)
{
    size_t  len;

    len = strlen(s);

    return n && n->type == BE_STR && n->len == len
           && strncasecmp(n->s, s, len) == 0;
}


int
be_list_has(be_node_t *list, const char *s)
{
    be_node_t  *i;

    if (list == NULL) {
        return 0;
    }

    if (list->type == BE_STR) {
        return be_is(list, s);
    }

    if (list->type != BE_LIST) {
        return 0;
    }

    for (i = list->child; i; i = i->next) {
        if (be_is(i, s)) {
            return 1;
        }
    }

    return 0;
}


/* ---- encoder ---- */

void
be_buf_free(be_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(be_buf_t));
}


void
be_raw(be_buf_t *b, const char *s, size_t len)
{
    char    *p;
    size_t   cap;

    if (b->failed || len == 0) {
        return;
    }

    if (b->len + len > b->cap) {
        cap = b->cap ? b->cap * 2 : 1024;
        while (cap < b->len + len) {
            cap *= 2;
        }

        p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = 1;
            return;
        }

        b->data = p;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
}


void
be_str(be_buf_t *b, const char *s, size_t len)
{
    char  num[24];
    int   n;

    n = snprintf(num, sizeof(num), "%zu:", len);
    be_raw(b, num, (size_t) n);
    be_raw(b, s, len);
}


void
be_cstr(be_buf_t *b, const char *s)
{
    be_str(b, s, strlen(s));
}


void
be_int(be_buf_t *b, int64_t v)
{
    char  num[24];
    int   n;

    n = snprintf(num, sizeof(num), "i%llde", (long long) v);
    be_raw(b, num, (size_t) n);
}


void
be_dict(be_buf_t *b)
{
    be_raw(b, "d", 1);
}


void
be_list(be_buf_t *b)
{
    be_raw(b, "l", 1);
}


void
be_end(be_buf_t *b)
{
    be_raw(b, "e", 1);
}


void
be_kv(be_buf_t *b, const char *key, const char *s, size_t len)
{
    be_cstr(b, key);
    be_str(b, s, len);
}


void
be_kcstr(be_buf_t *b, const char *key, const char *s)
{
    be_cstr(b, key);
    be_cstr(b, s);
}


void
be_kint(be_buf_t *b, const char *key, int64_t v)
{
    be_cstr(b, key);
    be_int(b, v);
}
