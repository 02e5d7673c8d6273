/*
 * codeb-mediad's configuration: what the command line sets once, and the
 * options --config may change while it runs (reread on SIGHUP).
 */

#ifndef MD_CONF_H
#define MD_CONF_H

#include <netinet/in.h>
#include <stdint.h>


typedef struct {
    struct in_addr      local;          /* sockets bind here */
    struct in_addr      advertised;     /* SDP c= and candidates */
    char                advertised_str[INET_ADDRSTRLEN];
    struct in_addr      ng_addr;
    uint16_t            ng_port;        /* NG control, UDP */
    uint16_t            port_min;       /* RTP range, even ports */
    uint16_t            port_max;
    int                 timeout;        /* s without media: call deleted */
    int                 threads;
    char                recording_dir[1024];   /* "" when not set */
    const char         *config;         /* --config file, reread on HUP */
    const char         *redis;          /* unix:/path or host:port */
    char                id[128];        /* this daemon in Redis */
} md_conf_t;

/*
 * Written by thread 0 only (options at start, md_conf_load() on SIGHUP);
 * media threads read the reloadable fields through md_conf_live()
 */
extern md_conf_t  md_conf;

/* what --config may change, as one consistent copy */
typedef struct {
    uint16_t            port_min;
    uint16_t            port_max;
    int                 timeout;        /* s */
    char                recording_dir[1024];
} md_live_t;

/* the defaults: 127.0.0.1, NG 127.0.0.1:2223, ports 30000-30999, 60 s */
void md_conf_init(void);
/*
 * One option --config may hold (log-level, recording-dir, timeout,
 * port-min, port-max) set in conf (log-level in *level, MD_LOG_*): NULL,
 * or why the value is wrong (conf may then be partly changed)
 */
const char *md_conf_option(md_conf_t *conf, int *level, const char *name,
    const char *value);
/*
 * Reads md_conf.config ("<option> <value>" lines, '#' comments) over a
 * copy of the configuration and takes it, or takes nothing: 0, or -1
 * (the file and line are logged)
 */
int md_conf_load(void);
/* the reloadable part of md_conf, from any thread */
void md_conf_live(md_live_t *live);

#endif
