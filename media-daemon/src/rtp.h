/*
 * The relay of RTP (RFC 3550) and RTCP between the endpoints of a
 * stream pair (rtp.c).
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

#endif
