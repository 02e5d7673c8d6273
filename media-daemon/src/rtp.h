/*
 * The relay of RTP (RFC 3550, rtp.c) and RTCP (rtcp.c) between the
 * endpoints of a stream pair.
 */

#ifndef MD_RTP_H
#define MD_RTP_H

#include "call.h"


/* the socket handlers of a stream (md_io_t data: the md_stream_t) */
void md_rtp_read(md_io_t *io);
void md_rtcp_read(md_io_t *io);
/* where a payload to inject is written (MD_TC_MAX_OUT bytes) */
uint8_t *md_rtp_payload(void);
/*
 * sends len bytes of that payload to s's endpoint with the payload type
 * it is sent (send_pt), continuing its sequence (RFC 3550 §5.1); step is
 * the timestamp increment (samples) since the last packet out
 */
void md_rtp_inject(md_stream_t *s, size_t len, uint32_t step, int marker);

/*
 * 1 when from may send on s (rtcp: to its RTCP port): the latched
 * address, or the first source, which is latched then (unless
 * strict-source keeps to the SDP's address); with ICE only the pair a
 * check chose.  0: the packet is dropped
 */
int md_rtp_source_ok(md_stream_t *s, struct sockaddr_in *from, int rtcp);

/*
 * rtcp.c: an RTCP compound packet p[0..n) (decrypted) from s's endpoint,
 * translated and sent to the peer's endpoint; an invalid compound is
 * dropped whole (RFC 3550 A.2)
 */
void md_rtcp_packet(md_stream_t *s, uint8_t *p, size_t n,
    struct sockaddr_in *from);

#endif
