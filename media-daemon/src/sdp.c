/*
 * SDP parsing (RFC 8866, with RFC 3605 a=rtcp, RFC 5761 a=rtcp-mux,
 * RFC 8839 ICE and RFC 8122 fingerprint attributes).  What the relay
 * rewrites is parsed into fields; every other line is kept verbatim so it
 * can be passed on.
 */

#include "sdp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>


static int md_sdp_line(md_sdp_t *sdp, md_sdp_media_t *m, char *line,
    const char **error);


md_sdp_t *
md_sdp_parse(const char *text, size_t len, const char **error)
{
    char            *p, *end, *eol, *line;
    md_sdp_t        *sdp;
    md_sdp_media_t  *m;

    if (len == 0 || len > MD_MAX_SDP) {
        *error = "SDP empty or too large";
        return NULL;
    }

    sdp = calloc(1, sizeof(md_sdp_t));
    if (sdp == NULL) {
        *error = "out of memory";
        return NULL;
    }

    sdp->buf = malloc(len + 1);
    if (sdp->buf == NULL) {
        free(sdp);
        *error = "out of memory";
        return NULL;
    }

    memcpy(sdp->buf, text, len);
    sdp->buf[len] = '\0';

    if (memchr(sdp->buf, '\0', len)) {
        *error = "NUL byte in SDP";
        goto failed;
    }

    p = sdp->buf;
    end = p + len;
    m = NULL;

    while (p < end) {
        eol = memchr(p, '\n', (size_t) (end - p));
        if (eol == NULL) {
            eol = end;
        }

        line = p;
        p = eol + 1;
        *eol = '\0';

        if (eol > line && eol[-1] == '\r') {
            eol[-1] = '\0';
        }

        if (line[0] == '\0') {
            continue;
        }

        if (line[1] != '=') {
            *error = "malformed SDP line";
            goto failed;
        }

        if (line[0] == 'm') {
            if (sdp->nmedia == MD_MAX_MEDIA) {
                *error = "too many m= lines";
                goto failed;
            }

            m = &sdp->media[sdp->nmedia++];
            /* RFC 8866 §6.7: the session's direction, unless overridden */
            strcpy(m->direction, sdp->direction[0] ? sdp->direction
                                                   : "sendrecv");
        }

        if (md_sdp_line(sdp, m, line, error) != 0) {
            goto failed;
        }
    }

    if (sdp->nmedia == 0) {
        *error = "SDP without m= lines";
        goto failed;
    }

    return sdp;

failed:

    md_sdp_free(sdp);
    return NULL;
}


void
md_sdp_free(md_sdp_t *sdp)
{
    if (sdp) {
        free(sdp->buf);
        free(sdp);
    }
}


md_codec_t *
md_sdp_codec(md_sdp_media_t *m, int pt)
{
    int  i;

    for (i = 0; i < m->ncodecs; i++) {
        if (m->codecs[i].pt == pt) {
            return &m->codecs[i];
        }
    }

    return NULL;
}


md_codec_t *
md_sdp_codec_named(md_codec_t *codecs, int n, const char *name)
{
    int  i;

    for (i = 0; i < n; i++) {
        if (strcasecmp(codecs[i].name, name) == 0) {
            return &codecs[i];
        }
    }

    return NULL;
}


/* copies at most size - 1 bytes of s and NUL-terminates */
static void
md_copy(char *dst, size_t size, const char *s)
{
    size_t  n;

    n = strlen(s);
    if (n >= size) {
        n = size - 1;
    }

    memcpy(dst, s, n);
    dst[n] = '\0';
}


static int
md_sdp_addr(const char *v, struct in_addr *addr)
{
    char  a[64], *slash;

    if (strncmp(v, "IN IP4 ", 7) != 0) {
        return -1;   /* IPv6 is not relayed yet */
    }

    md_copy(a, sizeof(a), v + 7);

    slash = strchr(a, '/');
    if (slash) {
        *slash = '\0';
    }

    return inet_pton(AF_INET, a, addr) == 1 ? 0 : -1;
}


/* m=<media> <port>[/<n>] <proto> <fmt> ... */
static int
md_sdp_m_line(md_sdp_media_t *m, char *v, const char **error)
{
    char      *tok, *save;
    long       port, pt;
    int        n;

    tok = strtok_r(v, " ", &save);
    if (tok == NULL) {
        goto bad;
    }

    md_copy(m->media, sizeof(m->media), tok);

    tok = strtok_r(NULL, " ", &save);
    if (tok == NULL) {
        goto bad;
    }

    port = strtol(tok, NULL, 10);
    if (port < 0 || port > 65535) {
        goto bad;
    }

    m->port = (uint16_t) port;

    tok = strtok_r(NULL, " ", &save);
    if (tok == NULL) {
        goto bad;
    }

    md_copy(m->proto, sizeof(m->proto), tok);

    n = 0;

    while ((tok = strtok_r(NULL, " ", &save)) != NULL) {
        if (n == MD_MAX_CODECS) {
            *error = "too many payload types";
            return -1;
        }

        pt = strtol(tok, NULL, 10);
        if (pt < 0 || pt > 127) {
            goto bad;
        }

        m->codecs[n].pt = (int) pt;
        m->codecs[n].channels = 1;

        /* static payload types (RFC 3551) need no rtpmap */
        if (pt == 0) {
            strcpy(m->codecs[n].name, "PCMU");
            m->codecs[n].rate = 8000;

        } else if (pt == 8) {
            strcpy(m->codecs[n].name, "PCMA");
            m->codecs[n].rate = 8000;
        }

        n++;
    }

    m->ncodecs = n;

    return 0;

bad:

    *error = "malformed m= line";
    return -1;
}


/* rtpmap:<pt> <name>/<rate>[/<channels>] */
static void
md_sdp_rtpmap(md_sdp_media_t *m, const char *v)
{
    int          pt, rate, channels;
    char         name[32];
    md_codec_t  *c;

    channels = 1;

    if (sscanf(v, "%d %31[^/]/%d/%d", &pt, name, &rate, &channels) < 3) {
        return;
    }

    c = md_sdp_codec(m, pt);
    if (c == NULL) {
        return;
    }

    md_copy(c->name, sizeof(c->name), name);
    c->rate = rate;
    c->channels = channels;
}


static void
md_sdp_fmtp(md_sdp_media_t *m, const char *v)
{
    int          pt;
    const char  *sp;
    md_codec_t  *c;

    pt = atoi(v);
    sp = strchr(v, ' ');

    c = md_sdp_codec(m, pt);
    if (c && sp) {
        md_copy(c->fmtp, sizeof(c->fmtp), sp + 1);
    }
}


static int
md_sdp_attr_keep(char **attrs, int *n, char *line, const char **error)
{
    if (*n == MD_MAX_ATTRS) {
        *error = "too many attributes";
        return -1;
    }

    attrs[(*n)++] = line;

    return 0;
}


/* a= at session level: ICE, fingerprint, BUNDLE, direction, or kept */
static int
md_sdp_session_attr(md_sdp_t *sdp, char *line, const char *a,
    const char **error)
{
    if (strncmp(a, "ice-ufrag:", 10) == 0) {
        md_copy(sdp->ice_ufrag, sizeof(sdp->ice_ufrag), a + 10);

    } else if (strncmp(a, "ice-pwd:", 8) == 0) {
        md_copy(sdp->ice_pwd, sizeof(sdp->ice_pwd), a + 8);

    } else if (strncmp(a, "fingerprint:", 12) == 0) {
        md_copy(sdp->fingerprint, sizeof(sdp->fingerprint), a + 12);

    } else if (strncmp(a, "group:BUNDLE", 12) == 0) {
        sdp->bundle = 1;

    } else if (strcmp(a, "sendonly") == 0 || strcmp(a, "recvonly") == 0
               || strcmp(a, "inactive") == 0)
    {
        md_copy(sdp->direction, sizeof(sdp->direction), a);

    } else if (strcmp(a, "ice-lite") != 0
               && strncmp(a, "ice-options:", 12) != 0
               && strcmp(a, "sendrecv") != 0)
    {
        return md_sdp_attr_keep(sdp->attrs, &sdp->nattrs, line, error);
    }

    return 0;
}


/*
 * a= of an m= section: codecs, RTCP, ptime, direction, ICE, DTLS, mid;
 * what the relay rewrites is dropped, anything else kept
 */
static int
md_sdp_media_attr(md_sdp_media_t *m, char *line, const char *a,
    const char **error)
{
    long  ptime;

    if (strncmp(a, "rtpmap:", 7) == 0) {
        md_sdp_rtpmap(m, a + 7);

    } else if (strncmp(a, "fmtp:", 5) == 0) {
        md_sdp_fmtp(m, a + 5);

    } else if (strncmp(a, "rtcp:", 5) == 0) {
        m->rtcp_port = (uint16_t) atoi(a + 5);

    } else if (strcmp(a, "rtcp-mux") == 0) {
        m->rtcp_mux = 1;

    } else if (strncmp(a, "ptime:", 6) == 0) {
        /* kept for the other side too; what a transcoder sends by */
        ptime = strtol(a + 6, NULL, 10);
        m->ptime = (ptime > 0 && ptime <= 1000) ? (int) ptime : 0;
        return md_sdp_attr_keep(m->attrs, &m->nattrs, line, error);

    } else if (strcmp(a, "sendrecv") == 0 || strcmp(a, "sendonly") == 0
               || strcmp(a, "recvonly") == 0 || strcmp(a, "inactive") == 0)
    {
        md_copy(m->direction, sizeof(m->direction), a);

    } else if (strncmp(a, "ice-ufrag:", 10) == 0) {
        md_copy(m->ice_ufrag, sizeof(m->ice_ufrag), a + 10);

    } else if (strncmp(a, "ice-pwd:", 8) == 0) {
        md_copy(m->ice_pwd, sizeof(m->ice_pwd), a + 8);

    } else if (strncmp(a, "fingerprint:", 12) == 0) {
        md_copy(m->fingerprint, sizeof(m->fingerprint), a + 12);

    } else if (strncmp(a, "setup:", 6) == 0) {
        md_copy(m->setup, sizeof(m->setup), a + 6);

    } else if (strncmp(a, "candidate:", 10) == 0) {
        m->has_candidates = 1;

    } else if (strncmp(a, "mid:", 4) == 0) {
        md_copy(m->mid, sizeof(m->mid), a + 4);

    } else if (strcmp(a, "end-of-candidates") == 0
               || strncmp(a, "ice-options:", 12) == 0
               || strncmp(a, "crypto:", 7) == 0
               || strncmp(a, "rtcp-fb:", 8) == 0
               || strcmp(a, "rtcp-rsize") == 0)
    {
        /* rewritten by the relay, never passed on as they are */
        return 0;

    } else {
        return md_sdp_attr_keep(m->attrs, &m->nattrs, line, error);
    }

    return 0;
}


/* one line of the session (m NULL) or of the m= section m */
static int
md_sdp_line(md_sdp_t *sdp, md_sdp_media_t *m, char *line,
    const char **error)
{
    struct in_addr  *addr;

    switch (line[0]) {

    case 'v':
    case 't':
        return 0;

    case 'o':
        md_copy(sdp->origin, sizeof(sdp->origin), line + 2);
        return 0;

    case 's':
        md_copy(sdp->session, sizeof(sdp->session), line + 2);
        return 0;

    case 'c':
        addr = m ? &m->addr : &sdp->addr;

        if (md_sdp_addr(line + 2, addr) != 0) {
            *error = "unsupported c= line (IPv4 only)";
            return -1;
        }

        if (m) {
            m->has_addr = 1;

        } else {
            sdp->has_addr = 1;
        }

        return 0;

    case 'm':
        return md_sdp_m_line(m, line + 2, error);

    case 'a':
        return m ? md_sdp_media_attr(m, line, line + 2, error)
                 : md_sdp_session_attr(sdp, line, line + 2, error);

    default:
        /* b=, i=, k=, ...: kept where they are */
        return m ? md_sdp_attr_keep(m->attrs, &m->nattrs, line, error)
                 : md_sdp_attr_keep(sdp->attrs, &sdp->nattrs, line, error);
    }
}
