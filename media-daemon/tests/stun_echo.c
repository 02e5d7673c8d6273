/*
 * A lite ICE agent on 127.0.0.1 for tests/stun_interop.py: STUN goes to
 * md_stun_answer() and its answer back; any other datagram is echoed to
 * its sender (media after ICE).  From media-daemon/:
 *
 *   cc -std=gnu11 -Wall -Wextra -Werror -Isrc -o /tmp/stun_echo \
 *      tests/stun_echo.c src/stun.c -lcrypto
 *   /tmp/stun_echo LUFRAG|- LPWD|- RUFRAG|- [IDLE_SECONDS]
 *
 * LUFRAG and LPWD "-": fresh ones from md_ice_credentials(); RUFRAG "-":
 * the remote ufrag is not known.  Prints "port N" once bound (an
 * ephemeral port), "credentials UFRAG PWD", md_ice_candidate()'s host
 * candidate and a server-reflexive one for 203.0.113.1 (as "candidate
 * host|srflx VALUE"), "ready", then a line per STUN request; exits after
 * IDLE_SECONDS (default 10) without a datagram.
 */

#include "stun.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


int
main(int argc, char **argv)
{
    int                 fd, idle;
    char                addr[INET_ADDRSTRLEN], ufrag[9], pwd[25];
    char                cand[256];
    size_t              len;
    ssize_t             n;
    uint8_t             in[2048], out[MD_STUN_MAX_RESPONSE];
    socklen_t           slen;
    const char         *lufrag, *lpwd, *rufrag;
    struct in_addr      pub;
    struct pollfd       pfd;
    md_stun_req_t       req;
    struct sockaddr_in  sin, from;

    if (argc < 4) {
        fprintf(stderr, "usage: %s LUFRAG|- LPWD|- RUFRAG|- "
                "[IDLE_SECONDS]\n", argv[0]);
        return 2;
    }

    md_ice_credentials(ufrag, pwd);
    lufrag = strcmp(argv[1], "-") == 0 ? ufrag : argv[1];
    lpwd = strcmp(argv[2], "-") == 0 ? pwd : argv[2];
    rufrag = strcmp(argv[3], "-") == 0 ? "" : argv[3];
    idle = argc > 4 ? atoi(argv[4]) : 10;

    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd == -1) {
        perror("socket");
        return 1;
    }

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

    slen = sizeof(sin);
    if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) == -1
        || getsockname(fd, (struct sockaddr *) &sin, &slen) == -1)
    {
        perror("bind");
        return 1;
    }

    printf("port %u\ncredentials %s %s\n", ntohs(sin.sin_port), lufrag,
           lpwd);

    if (md_ice_candidate(cand, sizeof(cand), "1", &sin.sin_addr,
                         ntohs(sin.sin_port), 0, NULL, 0) > 0)
    {
        printf("candidate host %s\n", cand);
    }

    inet_pton(AF_INET, "203.0.113.1", &pub);
    if (md_ice_candidate(cand, sizeof(cand), "2", &pub,
                         ntohs(sin.sin_port), 1, &sin.sin_addr,
                         ntohs(sin.sin_port)) > 0)
    {
        printf("candidate srflx %s\n", cand);
    }

    printf("ready\n");
    fflush(stdout);

    pfd.fd = fd;
    pfd.events = POLLIN;

    for ( ;; ) {
        n = poll(&pfd, 1, idle * 1000);

        if (n == 0) {
            printf("idle\n");
            return 0;
        }
        if (n == -1) {
            if (errno == EINTR) {
                continue;
            }
            perror("poll");
            return 1;
        }

        slen = sizeof(from);
        n = recvfrom(fd, in, sizeof(in), 0, (struct sockaddr *) &from,
                     &slen);
        if (n == -1 || from.sin_family != AF_INET) {
            continue;
        }

        if (!md_stun_is(in, (size_t) n)) {
            sendto(fd, in, (size_t) n, 0, (struct sockaddr *) &from,
                   sizeof(from));
            continue;
        }

        len = md_stun_answer(in, (size_t) n, &from, lufrag, lpwd, rufrag,
                             out, sizeof(out), &req);

        inet_ntop(AF_INET, &from.sin_addr, addr, sizeof(addr));
        printf("stun from %s:%u len %zd answer %zu valid %d"
               " use_candidate %d controlling %d priority %u"
               " remote_ufrag %s\n", addr, ntohs(from.sin_port), n, len,
               req.valid, req.use_candidate, req.controlling, req.priority,
               req.remote_ufrag[0] ? req.remote_ufrag : "-");
        fflush(stdout);

        if (len > 0) {
            sendto(fd, out, len, 0, (struct sockaddr *) &from,
                   sizeof(from));
        }
    }
}
