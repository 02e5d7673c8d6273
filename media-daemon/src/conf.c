/*
 * The configuration (conf.h): defaults, the options --config may hold,
 * and the file itself, read at start and again on SIGHUP.
 */

#include "conf.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


md_conf_t  md_conf;

static pthread_mutex_t  md_conf_lock = PTHREAD_MUTEX_INITIALIZER;


void
md_conf_init(void)
{
    memset(&md_conf, 0, sizeof(md_conf));
    inet_pton(AF_INET, "127.0.0.1", &md_conf.local);
    md_conf.advertised = md_conf.local;
    md_conf.ng_addr = md_conf.local;
    md_conf.ng_port = 2223;
    md_conf.port_min = 30000;
    md_conf.port_max = 30999;
    md_conf.timeout = 60;
    md_conf.threads = (int) sysconf(_SC_NPROCESSORS_ONLN);
}


/* ports: 1024-65534, into port-min or port-max */
static const char *
md_conf_port(md_conf_t *conf, const char *name, long n)
{
    if (n < 1024 || n > 65534) {
        return "ports: 1024-65534";
    }

    if (strcmp(name, "port-min") == 0) {
        conf->port_min = (uint16_t) n;

    } else {
        conf->port_max = (uint16_t) n;
    }

    return NULL;
}


const char *
md_conf_option(md_conf_t *conf, int *level, const char *name,
    const char *v)
{
    char  *end;
    long   n;

    if (strcmp(name, "log-level") == 0) {
        *level = md_log_level_named(v);
        return *level < 0 ? "log-level: err, warn, info or debug" : NULL;
    }

    if (strcmp(name, "recording-dir") == 0) {
        if (strlen(v) >= sizeof(conf->recording_dir)) {
            return "recording-dir: too long";
        }

        strcpy(conf->recording_dir, v);
        return NULL;
    }

    if (strcmp(name, "timeout") != 0 && strcmp(name, "port-min") != 0
        && strcmp(name, "port-max") != 0)
    {
        return "unknown option";
    }

    n = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0') {
        return "expected a number";
    }

    if (strcmp(name, "timeout") == 0) {
        conf->timeout = (int) n;
        return (n < 1 || n > 86400) ? "timeout: 1-86400 s" : NULL;
    }

    return md_conf_port(conf, name, n);
}


/* the options of file f into conf and *level; NULL or the error at *line */
static const char *
md_conf_read(FILE *f, md_conf_t *conf, int *level, int *line)
{
    char        buf[1200], *name, *value, *p;
    const char *err;

    err = NULL;

    while (err == NULL && fgets(buf, sizeof(buf), f)) {
        (*line)++;

        p = strchr(buf, '#');
        if (p) {
            *p = '\0';
        }

        name = strtok_r(buf, " \t\r\n", &p);
        if (name == NULL) {
            continue;
        }

        value = strtok_r(NULL, " \t\r\n", &p);
        err = value ? md_conf_option(conf, level, name, value)
                    : "missing value";
    }

    if (err == NULL && conf->port_max <= conf->port_min) {
        err = "port-max must be above port-min";
    }

    return err;
}


int
md_conf_load(void)
{
    int         level, line;
    FILE       *f;
    md_conf_t   conf;
    const char *err;

    if (md_conf.config == NULL) {
        return 0;
    }

    f = fopen(md_conf.config, "r");
    if (f == NULL) {
        md_log(MD_LOG_ERR, "config %s: %s", md_conf.config, strerror(errno));
        return -1;
    }

    conf = md_conf;
    level = md_log_level();
    line = 0;

    err = md_conf_read(f, &conf, &level, &line);

    fclose(f);

    if (err) {
        md_log(MD_LOG_ERR, "config %s line %d: %s; nothing changed",
               md_conf.config, line, err);
        return -1;
    }

    pthread_mutex_lock(&md_conf_lock);
    md_conf.port_min = conf.port_min;
    md_conf.port_max = conf.port_max;
    md_conf.timeout = conf.timeout;
    memcpy(md_conf.recording_dir, conf.recording_dir,
           sizeof(conf.recording_dir));
    pthread_mutex_unlock(&md_conf_lock);

    md_log_set_level(level);

    return 0;
}


void
md_conf_live(md_live_t *live)
{
    pthread_mutex_lock(&md_conf_lock);
    live->port_min = md_conf.port_min;
    live->port_max = md_conf.port_max;
    live->timeout = md_conf.timeout;
    memcpy(live->recording_dir, md_conf.recording_dir,
           sizeof(live->recording_dir));
    pthread_mutex_unlock(&md_conf_lock);
}
