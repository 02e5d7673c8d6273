/*
 * The flags of an NG offer or answer (flags.h).
 */

#include "flags.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>


void
md_flags_get(be_node_t *req, md_flags_t *f)
{
    memset(f, 0, sizeof(md_flags_t));

    f->flags = be_get(req, "flags");
    f->codec = be_get(req, "codec");
    f->replace = be_get(req, "replace");
    f->ice = be_get_str(req, "ICE");
    f->dtls = be_get_str(req, "DTLS");
    f->transport = be_get_str(req, "transport-protocol");
    f->rtcp_mux = be_get(req, "rtcp-mux");
    f->received_from = be_get(req, "received-from");
    f->trust_address = be_list_has(f->flags, "trust-address");
    f->strict_source = be_list_has(f->flags, "strict-source");
}


const char *
md_flags_check(md_flags_t *f, md_sdp_t *sdp)
{
    int          i;
    const char  *proto;

    if (f->ice && !be_is(f->ice, "force") && !be_is(f->ice, "remove")
        && !be_is(f->ice, "default"))
    {
        return "ICE must be force, remove or default";
    }

    if (f->transport && !be_is(f->transport, "RTP/AVP")
        && !be_is(f->transport, "UDP/TLS/RTP/SAVPF"))
    {
        return "transport-protocol must be RTP/AVP or UDP/TLS/RTP/SAVPF";
    }

    if (f->dtls && !be_is(f->dtls, "off") && !be_is(f->dtls, "no")
        && !be_is(f->dtls, "passive") && !be_is(f->dtls, "active"))
    {
        return "DTLS must be off, passive or active";
    }

    for (i = 0; i < sdp->nmedia; i++) {
        proto = sdp->media[i].proto;

        if (sdp->media[i].port == 0) {
            continue;
        }

        if (strcmp(proto, "RTP/AVP") != 0 && strcmp(proto, "RTP/AVPF") != 0
            && strcmp(proto, "UDP/TLS/RTP/SAVPF") != 0
            && strcmp(proto, "UDP/TLS/RTP/SAVP") != 0)
        {
            return "unsupported media protocol (SDES-SRTP is not supported)";
        }

        if (strncmp(proto, "UDP/TLS", 7) == 0
            && (sdp->media[i].fingerprint[0] == '\0'
                && sdp->fingerprint[0] == '\0'))
        {
            return "DTLS-SRTP media without a=fingerprint";
        }

        if (strncmp(proto, "UDP/TLS", 7) == 0
            && strncasecmp(sdp->media[i].fingerprint[0]
                           ? sdp->media[i].fingerprint : sdp->fingerprint,
                           "sha-256 ", 8) != 0)
        {
            return "only sha-256 fingerprints are supported";
        }
    }

    return NULL;
}


int
md_flags_remote_addr(md_flags_t *f, md_sdp_t *sdp, md_sdp_media_t *m,
    struct in_addr *addr)
{
    be_node_t       *fam, *ip;
    char             a[INET_ADDRSTRLEN];

    if (!f->trust_address && f->received_from
        && f->received_from->type == BE_LIST)
    {
        fam = f->received_from->child;
        ip = fam ? fam->next : NULL;

        if (be_is(fam, "IP4") && ip && ip->type == BE_STR
            && ip->len < sizeof(a))
        {
            memcpy(a, ip->s, ip->len);
            a[ip->len] = '\0';

            if (inet_pton(AF_INET, a, addr) == 1) {
                return 0;
            }
        }
    }

    if (m->has_addr) {
        *addr = m->addr;
        return 0;
    }

    if (sdp->has_addr) {
        *addr = sdp->addr;
        return 0;
    }

    return -1;
}
