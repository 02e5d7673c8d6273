/*
 * codeb-mediad: the media relay between WebRTC and SIP, controlled over
 * the rtpengine NG protocol (docs/ng.md).  This file is the top: the
 * options, the signals, and the start and end of the event loops.
 *
 *   codeb-mediad [--interface ADDR[!ADVERTISED]] [--listen-ng ADDR:PORT]
 *                [--port-min N] [--port-max N] [--timeout S]
 *                [--threads N (default: cores)] [--recording-dir DIR]
 *                [--redis unix:/path|host:port] [--id NAME]
 *                [--config FILE]
 *                [--log-level err|warn|info|debug] [--help]
 *
 * --config FILE: lines "<option> <value>" ('#' comments) with the
 * options that may change while running: timeout, port-min, port-max,
 * log-level, recording-dir.  The file is read after the command line and
 * again on SIGHUP; an invalid file changes nothing.
 *
 * SIGTERM: stop taking new calls, end when the last call has ended or
 * after 10 s (drain).  SIGINT: end now.  SIGHUP: reload --config.
 */

#include "call.h"
#include "conf.h"
#include "dtls.h"
#include "loop.h"
#include "media.h"
#include "ng.h"
#include "registry.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>


#define MD_DRAIN_S  10


static volatile sig_atomic_t  md_stop;      /* 1: SIGTERM, 2: SIGINT */
static volatile sig_atomic_t  md_hup;


/* ---- options ---- */

enum {
    MD_OPT_INTERFACE = 256,
    MD_OPT_LISTEN_NG,
    MD_OPT_THREADS,
    MD_OPT_REDIS,
    MD_OPT_ID,
    MD_OPT_CONFIG,
    MD_OPT_RELOADABLE           /* those md_conf_option() takes */
};

static const struct option  md_options[] = {
    { "interface",     required_argument, NULL, MD_OPT_INTERFACE },
    { "listen-ng",     required_argument, NULL, MD_OPT_LISTEN_NG },
    { "port-min",      required_argument, NULL, MD_OPT_RELOADABLE },
    { "port-max",      required_argument, NULL, MD_OPT_RELOADABLE },
    { "timeout",       required_argument, NULL, MD_OPT_RELOADABLE },
    { "threads",       required_argument, NULL, MD_OPT_THREADS },
    { "recording-dir", required_argument, NULL, MD_OPT_RELOADABLE },
    { "redis",         required_argument, NULL, MD_OPT_REDIS },
    { "id",            required_argument, NULL, MD_OPT_ID },
    { "config",        required_argument, NULL, MD_OPT_CONFIG },
    { "log-level",     required_argument, NULL, MD_OPT_RELOADABLE },
    { "help",          no_argument,       NULL, 'h' },
    { NULL, 0, NULL, 0 }
};


/* the options and what they mean; exits with status */
static void
md_usage(int status)
{
    fprintf(status ? stderr : stdout,
        "usage: codeb-mediad [option ...]\n"
        "  --interface LOCAL[!PUBLIC]  media sockets bind LOCAL; SDP and ICE"
        " announce\n"
        "                              PUBLIC (default 127.0.0.1)\n"
        "  --listen-ng ADDR:PORT       NG control, UDP (127.0.0.1:2223)\n"
        "  --port-min N, --port-max N  RTP (even) and RTCP (odd) ports"
        " (30000, 30999)\n"
        "  --timeout S                 a call without signalling or media"
        " for S s\n"
        "                              is deleted (60)\n"
        "  --threads N                 media event loops (one per core)\n"
        "  --recording-dir DIR         where \"start recording\" writes"
        " (none: refused)\n"
        "  --redis unix:/PATH|HOST:PORT  list the calls in Redis\n"
        "  --id NAME                   this daemon in Redis"
        " (<host>:<NG port>)\n"
        "  --config FILE               \"option value\" lines for timeout,"
        " port-min,\n"
        "                              port-max, log-level, recording-dir;"
        " reread on\n"
        "                              SIGHUP\n"
        "  --log-level LEVEL           err, warn, info or debug (info);"
        " to stderr\n"
        "  --help                      this list\n");
    exit(status);
}


/* LOCAL[!PUBLIC] into md_conf; -1 when an address is not IPv4 */
static int
md_opt_interface(char *v)
{
    char  *bang;

    bang = strchr(v, '!');
    if (bang) {
        *bang = '\0';
    }

    if (inet_pton(AF_INET, v, &md_conf.local) != 1) {
        return -1;
    }

    md_conf.advertised = md_conf.local;

    if (bang && inet_pton(AF_INET, bang + 1, &md_conf.advertised) != 1) {
        return -1;
    }

    return 0;
}


/* ADDR:PORT into md_conf's NG address; -1 when invalid */
static int
md_opt_listen_ng(char *v)
{
    char  *colon;

    colon = strrchr(v, ':');
    if (colon == NULL) {
        return -1;
    }

    *colon = '\0';
    if (inet_pton(AF_INET, v, &md_conf.ng_addr) != 1) {
        return -1;
    }

    md_conf.ng_port = (uint16_t) atoi(colon + 1);

    return 0;
}


/* one option of the command line into md_conf; -1 when invalid */
static int
md_opt(int opt, const char *name, char *v)
{
    int  level;

    switch (opt) {

    case MD_OPT_INTERFACE:
        return md_opt_interface(v);

    case MD_OPT_LISTEN_NG:
        return md_opt_listen_ng(v);

    case MD_OPT_THREADS:
        md_conf.threads = atoi(v);
        return 0;

    case MD_OPT_REDIS:
        md_conf.redis = v;
        return 0;

    case MD_OPT_ID:
        snprintf(md_conf.id, sizeof(md_conf.id), "%s", v);
        return 0;

    case MD_OPT_CONFIG:
        md_conf.config = v;
        return 0;

    case MD_OPT_RELOADABLE:
        level = md_log_level();

        if (md_conf_option(&md_conf, &level, name, v) != NULL) {
            return -1;
        }

        md_log_set_level(level);
        return 0;

    default:
        return -1;
    }
}


/* what the options leave open: thread count, the address as text, --id */
static void
md_opt_finish(void)
{
    char  host[64];

    if (md_conf.threads < 1 || md_conf.threads > MD_MAX_THREADS) {
        md_conf.threads = md_conf.threads < 1 ? 1 : MD_MAX_THREADS;
    }

    inet_ntop(AF_INET, &md_conf.advertised, md_conf.advertised_str,
              sizeof(md_conf.advertised_str));

    if (md_conf.id[0] == '\0') {
        if (gethostname(host, sizeof(host)) != 0) {
            strcpy(host, "localhost");
        }

        host[sizeof(host) - 1] = '\0';
        snprintf(md_conf.id, sizeof(md_conf.id), "%s:%u", host,
                 md_conf.ng_port);
    }
}


/*
 * The command line (getopt_long: "--name value" or "--name=value"), then
 * --config over it; an invalid one exits with status 2 and the usage
 */
static void
md_options_parse(int argc, char **argv)
{
    int  opt, index;

    md_conf_init();

    for ( ;; ) {
        index = -1;
        opt = getopt_long(argc, argv, "h", md_options, &index);

        if (opt == -1) {
            break;
        }

        if (opt == 'h') {
            md_usage(0);
        }

        if (index < 0 || md_opt(opt, md_options[index].name, optarg) != 0) {
            md_usage(2);
        }
    }

    if (optind < argc) {
        md_usage(2);
    }

    if (md_conf_load() != 0) {
        exit(2);
    }

    if (md_conf.port_max <= md_conf.port_min || md_conf.ng_port == 0) {
        md_usage(2);
    }

    md_opt_finish();
}


/* ---- signals ---- */

static void
md_signal(int signo)
{
    int  saved;

    saved = errno;

    if (signo == SIGHUP) {
        md_hup = 1;

    } else if (signo == SIGINT) {
        md_stop = 2;

    } else {
        md_stop = 1;
    }

    errno = saved;
}


/* SIGTERM, SIGINT, SIGHUP to md_signal(); SIGPIPE ignored */
static void
md_signals(void)
{
    struct sigaction  sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = md_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}


/*
 * Thread 0 ends the process: the media threads leave their loops and are
 * joined first, so exit() and its handlers (OpenSSL's cleanup among them)
 * run with no other thread touching calls, sockets or DTLS state.
 */
static void
md_shutdown(void)
{
    md_loop_stop();
    md_log(MD_LOG_INFO, "stopped");
    exit(0);
}


/* thread 0 after each wakeup: SIGHUP reloads, SIGTERM drains, SIGINT */
static void
md_main_hook(void)
{
    static double  drain;

    if (md_hup) {
        md_hup = 0;

        if (md_conf_load() == 0) {
            md_log(MD_LOG_INFO, "SIGHUP: configuration %s reloaded "
                   "(timeout %d s, ports %u-%u), %zu calls",
                   md_conf.config ? md_conf.config : "(none)",
                   md_conf.timeout, md_conf.port_min, md_conf.port_max,
                   md_call_count());
        }
    }

    if (md_stop == 0) {
        return;
    }

    if (drain == 0) {
        drain = md_now() + MD_DRAIN_S;
        md_ng_drain();
        md_log(MD_LOG_INFO, "draining %zu calls", md_call_count());
    }

    if (md_call_count() == 0 || md_now() >= drain || md_stop == 2) {
        md_shutdown();
    }
}


/* ---- the loops' hooks ---- */

static int
md_thread_hook(int index)
{
    return (md_call_thread_init(index) == 0 && md_media_init() == 0)
           ? 0 : -1;
}


static void
md_second_hook(void)
{
    md_call_timeouts();
    md_registry_tick();
}


/* a media thread ends: its thread-local state goes with it */
static void
md_end_hook(void)
{
    md_registry_thread_stop();
    OPENSSL_thread_stop();
}


static const md_loop_hooks_t  md_hooks = {
    md_thread_hook, md_ng_execute, md_second_hook, md_main_hook, md_end_hook
};


int
main(int argc, char **argv)
{
    sigset_t  block, old;

    md_options_parse(argc, argv);
    md_signals();

    if (md_dtls_init() != 0
        || md_registry_init(md_conf.redis, md_conf.id) != 0
        || md_loop_init(md_conf.threads, &md_hooks) != 0
        || md_ng_init() != 0)
    {
        return 1;
    }

    /* thread 0 owns the NG socket; signals are its alone */

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, &old);

    if (md_loop_start() != 0) {
        return 1;
    }

    pthread_sigmask(SIG_SETMASK, &old, NULL);

    md_log(MD_LOG_INFO, "codeb-mediad ready: NG on %s:%u, media on %s"
           " ports %u-%u, %d thread(s)", inet_ntoa(md_conf.ng_addr),
           md_conf.ng_port, md_conf.advertised_str, md_conf.port_min,
           md_conf.port_max, md_conf.threads);

    md_loop_run();

    return 0;
}
