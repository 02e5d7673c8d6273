/* webrtc_client.c: ICE + DTLS-SRTP client side of a call, for rtpload */
#ifndef WEBRTC_CLIENT_H
#define WEBRTC_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

typedef struct wc_call wc_call;

int      wc_init(const char *cert, const char *key, char *err, size_t errlen);
/* ICE check until success, then the DTLS handshake, on fd (bound, not
   connected) towards 127.0.0.1:relay_port; server: the DTLS server (the
   relay answered a=setup:active); NULL and err on failure */
wc_call *wc_connect(int fd, uint16_t relay_port, const char *rufrag,
                    const char *rpwd, const char *lufrag, const char *lpwd,
                    int server, double timeout_s, char *err, size_t errlen);
/* a packet that is not RTP on A's socket: STUN answered, DTLS consumed; 1
   if it was one of those */
int      wc_other(wc_call *c, const uint8_t *p, int n, const struct sockaddr_in *from);
int      wc_protect(wc_call *c, uint8_t *p, int *len);       /* in place */
int      wc_unprotect(wc_call *c, uint8_t *p, int *len);

#endif
