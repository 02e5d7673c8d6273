/*
 * The media of a call through the NG daemon (docs/ng.md): "offer" with
 * the caller's SDP rewritten for the callees, "answer" with the callee's
 * rewritten for the caller, "delete" at the end.  The flags say what the
 * receiving side speaks: browsers WebRTC (ICE-Lite, DTLS-SRTP, RTCP mux),
 * trunks and hardphones plain RTP with G.711 offered to them.  The same
 * requests drive codeb-mediad and Debian's rtpengine.
 */

#include "ngx_codeb_sip.h"


static void ngx_codeb_sip_media_flags(ngx_codeb_benc_t *b,
    ngx_uint_t offer, ngx_uint_t plain);


/*
 * an NG request of call: command "offer", "answer" or "delete"; reverse:
 * side 1 (the callee, or who took its place) offers, else side 0 (the
 * caller, or who took its place).  The NG tags name the sides, not the
 * parties: side 0 is the caller's From tag, side 1 our To tag towards
 * the caller.  The from-tag is the offerer's, the to-tag the answerer's
 * (in an offer once the call is answered); the flags are for the side
 * that receives the SDP.  handler NULL: the reply is not awaited
 */
ngx_int_t
ngx_codeb_sip_media(ngx_codeb_sip_call_t *call, char *command, ngx_str_t *sdp,
    ngx_codeb_sip_ng_pt handler, ngx_uint_t reverse)
{
    u_char            buf[NGX_CODEB_SIP_MAX_MESSAGE + 1024];
    ngx_uint_t            offer, to_caller;
    char const           *from_tag, *to_tag;
    ngx_codeb_benc_t      b;
    ngx_codeb_sip_leg_t  *party;

    /* the NG tags: the caller's own, and ours towards it for the callee */
    from_tag = reverse ? call->a.local_tag : call->a.remote_tag;
    to_tag = reverse ? call->a.remote_tag : call->a.local_tag;

    ngx_codeb_benc_init(&b, buf, sizeof(buf));

    ngx_codeb_benc_open(&b, 'd');
    ngx_codeb_benc_cstr(&b, "command");
    ngx_codeb_benc_cstr(&b, command);
    ngx_codeb_benc_cstr(&b, "call-id");
    ngx_codeb_benc_cstr(&b, (char *) call->a.call_id);
    ngx_codeb_benc_cstr(&b, "from-tag");
    ngx_codeb_benc_cstr(&b, (char *) from_tag);

    offer = (ngx_strcmp(command, "offer") == 0);

    if ((offer && call->answered) || ngx_strcmp(command, "answer") == 0) {
        ngx_codeb_benc_cstr(&b, "to-tag");
        ngx_codeb_benc_cstr(&b, (char *) to_tag);
    }

    if (sdp) {
        ngx_codeb_benc_cstr(&b, "sdp");
        ngx_codeb_benc_str(&b, sdp->data, sdp->len);

        /*
         * the receiving side: the answerer of an offer, else the offerer;
         * the callees before one answered: what the call's offer is for
         */
        to_caller = (offer == reverse);
        party = call->party[to_caller ? 0 : 1];

        ngx_codeb_sip_media_flags(&b, offer,
                                  party ? party->flow->transport
                                          < NGX_CODEB_SIP_WS
                                        : call->b_plain);
    }

    ngx_codeb_benc_close(&b);

    call->ng = ngx_codeb_sip_ng_request(&b, handler, call, call->log);

    return (call->ng || handler == NULL) ? NGX_OK : NGX_ERROR;
}


static void
ngx_codeb_sip_media_flags(ngx_codeb_benc_t *b, ngx_uint_t offer,
    ngx_uint_t plain)
{
    /*
     * a browser's c=0.0.0.0 (its default candidate an mDNS name) is not
     * a hold: rtpengine would pass the zero address on and write
     * sendonly without zero-address and original-sendrecv (codeb-mediad
     * does neither, and ignores these flags)
     */
    ngx_codeb_benc_cstr(b, "replace");
    ngx_codeb_benc_open(b, 'l');
    ngx_codeb_benc_cstr(b, "origin");
    ngx_codeb_benc_cstr(b, "zero-address");
    ngx_codeb_benc_close(b);
    ngx_codeb_benc_cstr(b, "flags");
    ngx_codeb_benc_open(b, 'l');
    ngx_codeb_benc_cstr(b, "original-sendrecv");
    ngx_codeb_benc_close(b);

    if (!plain) {
        /* DTLS-SRTP only: no SDES keys for browsers (rtpengine's default) */
        ngx_codeb_benc_cstr(b, "SDES");
        ngx_codeb_benc_open(b, 'l');
        ngx_codeb_benc_cstr(b, "off");
        ngx_codeb_benc_close(b);
    }

    ngx_codeb_benc_cstr(b, "transport-protocol");
    ngx_codeb_benc_cstr(b, plain ? "RTP/AVP" : "UDP/TLS/RTP/SAVPF");
    ngx_codeb_benc_cstr(b, "ICE");
    ngx_codeb_benc_cstr(b, plain ? "remove" : "force");
    ngx_codeb_benc_cstr(b, "rtcp-mux");
    ngx_codeb_benc_open(b, 'l');
    ngx_codeb_benc_cstr(b, plain ? "demux" : "offer");
    ngx_codeb_benc_close(b);

    if (!offer || !plain) {
        return;
    }

    /* telephony gets G.711 (transcoded when the browser offered none) */

    ngx_codeb_benc_cstr(b, "codec");
    ngx_codeb_benc_open(b, 'd');
    ngx_codeb_benc_cstr(b, "mask");
    ngx_codeb_benc_open(b, 'l');
    ngx_codeb_benc_cstr(b, "opus");
    ngx_codeb_benc_close(b);
    ngx_codeb_benc_cstr(b, "transcode");
    ngx_codeb_benc_open(b, 'l');
    ngx_codeb_benc_cstr(b, "PCMU");
    ngx_codeb_benc_cstr(b, "PCMA");
    ngx_codeb_benc_close(b);
    ngx_codeb_benc_close(b);
}
