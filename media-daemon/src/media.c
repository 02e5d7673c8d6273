/*
 * Media the daemon makes or keeps itself: "play media" / "stop media"
 * (hold music and prompts from WAV files into one leg) and
 * "start recording" / "stop recording" (each leg's audio to a WAV file).
 *
 * WAV in: RIFF, PCM, 16 bit, mono, 8000 Hz, at most MD_PLAY_MAX_S.
 * WAV out: one file per leg, "<dir>/<call-id>-<tag>.wav", PCM 16 bit mono
 * 8000 Hz; gaps in the RTP timestamps (hold) are written as silence.
 */

#include "conf.h"
#include "media.h"
#include "rtp.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>


#define MD_PLAY_MAX_S    600         /* s of audio in one file */
#define MD_GAP_MAX_S     10          /* s of silence written for a gap */


struct md_player_s {
    md_stream_t        *stream;      /* hears the media */
    int16_t            *pcm;         /* 8 kHz */
    size_t              samples;
    size_t              pos;
    int                 repeat;      /* plays left after this one */
    double              next;        /* md_now() of the next frame */
    int                 first;
    md_tc_t            *tc;          /* PCMA -> the stream's codec */
};

struct md_recorder_s {
    FILE               *file;
    uint32_t            samples;     /* written */
    uint32_t            last_ts;     /* RTP timestamp after the last write */
    int                 started;
    md_tc_t            *tc;          /* the leg's codec -> PCMA */
};


/* per thread: the players of its calls */
static md_io_t   md_media_timers[MD_MAX_THREADS];
static int       md_players[MD_MAX_THREADS];

#define md_media_timer  (md_media_timers[md_thread_index()])


static void md_media_tick(md_io_t *io);


int
md_media_init(void)
{
    md_media_timer.fd = timerfd_create(CLOCK_MONOTONIC,
                                       TFD_NONBLOCK | TFD_CLOEXEC);
    if (md_media_timer.fd == -1) {
        md_log(MD_LOG_ERR, "timerfd_create: %s", strerror(errno));
        return -1;
    }

    md_media_timer.handler = md_media_tick;

    return md_io_add(&md_media_timer);
}


/* 20 ms ticks while anything plays */
static void
md_media_arm(int on)
{
    struct itimerspec  its;

    memset(&its, 0, sizeof(its));

    if (on) {
        its.it_interval.tv_nsec = 20 * 1000 * 1000;
        its.it_value.tv_nsec = 20 * 1000 * 1000;
    }

    (void) timerfd_settime(md_media_timer.fd, 0, &its, NULL);
}


static uint32_t
md_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16)
           | ((uint32_t) p[3] << 24);
}


/* the samples of a PCM 16-bit mono 8 kHz WAV file */
static const char *
md_wav_read(const char *path, int16_t **pcm, size_t *samples)
{
    long       size;
    FILE      *f;
    uint8_t   *buf, *p, *end, *fmt, *data;
    uint32_t   clen, dlen;
    size_t     i;

    f = fopen(path, "rb");
    if (f == NULL) {
        return "cannot open the media file";
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 44
        || size > 44 + MD_PLAY_MAX_S * 8000 * 2 || fseek(f, 0, SEEK_SET) != 0)
    {
        fclose(f);
        return "media file empty or too long";
    }

    buf = malloc((size_t) size);
    if (buf == NULL || fread(buf, 1, (size_t) size, f) != (size_t) size) {
        free(buf);
        fclose(f);
        return "cannot read the media file";
    }

    fclose(f);

    fmt = NULL;
    data = NULL;
    dlen = 0;
    end = buf + size;

    if (memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0) {
        free(buf);
        return "not a WAV file";
    }

    for (p = buf + 12; end - p >= 8; p += 8 + clen + (clen & 1)) {
        clen = md_le32(p + 4);

        if (clen > (uint32_t) (end - p - 8)) {
            clen = (uint32_t) (end - p - 8);
        }

        if (memcmp(p, "fmt ", 4) == 0 && clen >= 16) {
            fmt = p + 8;

        } else if (memcmp(p, "data", 4) == 0) {
            data = p + 8;
            dlen = clen;
            break;
        }
    }

    if (fmt == NULL || data == NULL || fmt[0] != 1 || fmt[1] != 0
        || fmt[2] != 1 || fmt[3] != 0 || md_le32(fmt + 4) != 8000
        || fmt[14] != 16 || fmt[15] != 0 || dlen < 320)
    {
        free(buf);
        return "the WAV file must be PCM, 16 bit, mono, 8000 Hz";
    }

    *samples = dlen / 2;
    *pcm = malloc(*samples * sizeof(int16_t));

    if (*pcm == NULL) {
        free(buf);
        return "out of memory";
    }

    for (i = 0; i < *samples; i++) {
        (*pcm)[i] = (int16_t) (data[2 * i] | (data[2 * i + 1] << 8));
    }

    free(buf);

    return NULL;
}


void
md_player_free(md_stream_t *s)
{
    md_player_t  *pl;

    pl = s->player;
    if (pl == NULL) {
        return;
    }

    s->player = NULL;
    md_tc_free(pl->tc);
    free(pl->pcm);
    free(pl);

    if (--md_players[md_thread_index()] == 0) {
        md_media_arm(0);
    }
}


/* "play media": file (path), repeat-times; plays into from-tag's leg */
const char *
md_media_play(md_stream_t *s, be_node_t *req, be_buf_t *reply)
{
    char          path[4096];
    be_node_t    *file, *rep;
    const char   *err;
    md_player_t  *pl;

    file = be_get_str(req, "file");
    if (file == NULL || file->len == 0 || file->len >= sizeof(path)
        || memchr(file->s, '\0', file->len))
    {
        return "play media needs file";
    }

    if (s->send_pt < 0 || (s->send_codec != MD_CODEC_PCMA
                           && s->send_codec != MD_CODEC_PCMU
                           && s->send_codec != MD_CODEC_OPUS))
    {
        return "the leg has no audio codec to play in (not answered yet?)";
    }

    memcpy(path, file->s, file->len);
    path[file->len] = '\0';

    pl = calloc(1, sizeof(md_player_t));
    if (pl == NULL) {
        return "out of memory";
    }

    err = md_wav_read(path, &pl->pcm, &pl->samples);
    if (err) {
        free(pl);
        return err;
    }

    if (s->send_codec != MD_CODEC_PCMA) {
        pl->tc = md_tc_new(MD_CODEC_PCMA, (md_codec_id_e) s->send_codec,
                           MD_TC_PTIME);
        if (pl->tc == NULL) {
            free(pl->pcm);
            free(pl);
            return "encoder setup failed";
        }
    }

    rep = be_get(req, "repeat-times");
    pl->repeat = (rep && rep->type == BE_INT && rep->i > 1 && rep->i < 1000)
                 ? (int) rep->i - 1 : 0;
    pl->stream = s;
    pl->next = md_now();
    pl->first = 1;

    md_player_free(s);
    s->player = pl;

    if (md_players[md_thread_index()]++ == 0) {
        md_media_arm(1);
    }

    be_kint(reply, "duration", (int64_t) (pl->samples / 8));

    return NULL;
}


/* one 20 ms frame of the player into its stream; 0 when it has ended */
static int
md_player_frame(md_player_t *pl)
{
    int           n, rate;
    size_t        i;
    uint8_t       alaw[160];
    md_stream_t  *s;

    s = pl->stream;

    if (pl->pos >= pl->samples) {
        if (pl->repeat == 0) {
            return 0;
        }

        pl->repeat--;
        pl->pos = 0;
    }

    for (i = 0; i < 160; i++) {
        alaw[i] = md_alaw_encode(pl->pos + i < pl->samples
                                 ? pl->pcm[pl->pos + i] : 0);
    }

    pl->pos += 160;

    if (pl->tc) {
        n = md_tc_run(pl->tc, alaw, 160, md_rtp_payload(), MD_TC_MAX_OUT);
        if (n <= 0) {
            return 1;
        }

    } else {
        memcpy(md_rtp_payload(), alaw, 160);
        n = 160;
    }

    rate = s->send_codec == MD_CODEC_OPUS ? 48000 : 8000;

    md_rtp_inject(s, (size_t) n, (uint32_t) rate / 50, pl->first);
    pl->first = 0;

    return 1;
}


static void
md_media_tick(md_io_t *io)
{
    int           i, l, k, frames;
    double        now;
    uint64_t      expirations;
    md_call_t    *c;
    md_stream_t  *s;

    if (read(io->fd, &expirations, sizeof(expirations)) <= 0) {
        return;
    }

    now = md_now();

    for (i = 0; i < MD_CALL_HASH; i++) {
        for (c = md_call_bucket(i); c; c = c->next) {
            for (l = 0; l < 2; l++) {
                for (k = 0; k < c->legs[l].nstreams; k++) {
                    s = c->legs[l].streams[k];

                    /* on time, catching up at most 5 frames */
                    for (frames = 0;
                         s->player && s->player->next <= now && frames < 5;
                         frames++)
                    {
                        s->player->next += 0.02;

                        if (!md_player_frame(s->player)) {
                            md_log(MD_LOG_INFO, "[%s] media to %s ended",
                                   c->id, c->legs[l].tag);
                            md_player_free(s);
                        }
                    }

                    if (s->player && now - s->player->next > 0.2) {
                        s->player->next = now;
                    }
                }
            }
        }
    }
}


/* ---- recording ---- */

static void
md_wav_header(FILE *f, uint32_t samples)
{
    uint8_t   h[44];
    uint32_t  data, v;

    data = samples * 2;
    memcpy(h, "RIFF", 4);
    v = 36 + data;
    h[4] = (uint8_t) v; h[5] = (uint8_t) (v >> 8);
    h[6] = (uint8_t) (v >> 16); h[7] = (uint8_t) (v >> 24);
    memcpy(h + 8, "WAVEfmt ", 8);
    h[16] = 16; h[17] = 0; h[18] = 0; h[19] = 0;
    h[20] = 1; h[21] = 0;                       /* PCM */
    h[22] = 1; h[23] = 0;                       /* mono */
    h[24] = 0x40; h[25] = 0x1f; h[26] = 0; h[27] = 0;      /* 8000 */
    h[28] = 0x80; h[29] = 0x3e; h[30] = 0; h[31] = 0;      /* 16000 */
    h[32] = 2; h[33] = 0;
    h[34] = 16; h[35] = 0;
    memcpy(h + 36, "data", 4);
    h[40] = (uint8_t) data; h[41] = (uint8_t) (data >> 8);
    h[42] = (uint8_t) (data >> 16); h[43] = (uint8_t) (data >> 24);

    (void) fseek(f, 0, SEEK_SET);
    (void) fwrite(h, 1, sizeof(h), f);
    (void) fseek(f, 0, SEEK_END);
}


void
md_recorder_free(md_stream_t *s)
{
    md_recorder_t  *rec;

    rec = s->recorder;
    if (rec == NULL) {
        return;
    }

    s->recorder = NULL;
    md_wav_header(rec->file, rec->samples);
    fclose(rec->file);
    md_tc_free(rec->tc);
    free(rec);
}


/* "start recording": every stream of every leg to its own WAV file */
const char *
md_media_record(md_call_t *c, be_buf_t *reply)
{
    int             l, k;
    char            path[4096], id[128];
    size_t          i;
    md_live_t       live;
    md_stream_t    *s;
    md_recorder_t  *rec;

    md_conf_live(&live);

    if (live.recording_dir[0] == '\0') {
        return "recording is not configured (--recording-dir)";
    }

    /* the call-id in a file name: only [A-Za-z0-9._-] */
    for (i = 0; c->id[i] && i < sizeof(id) - 1; i++) {
        id[i] = (isalnum((unsigned char) c->id[i]) || c->id[i] == '.'
                 || c->id[i] == '-') ? c->id[i] : '_';
    }

    id[i] = '\0';

    be_cstr(reply, "files");
    be_list(reply);

    for (l = 0; l < 2; l++) {
        for (k = 0; k < c->legs[l].nstreams; k++) {
            s = c->legs[l].streams[k];

            if (s->recorder || s->ncodecs == 0) {
                continue;
            }

            snprintf(path, sizeof(path), "%s/%s-%s-%d.wav",
                     live.recording_dir,
                     id, l == 0 ? "offerer" : "answerer", k);

            rec = calloc(1, sizeof(md_recorder_t));
            if (rec == NULL) {
                return "out of memory";
            }

            rec->file = fopen(path, "w+b");
            if (rec->file == NULL) {
                free(rec);
                return "cannot create the recording file";
            }

            md_wav_header(rec->file, 0);
            s->recorder = rec;
            be_cstr(reply, path);
        }
    }

    be_end(reply);

    return NULL;
}


/*
 * one payload the endpoint of s sent, in its codec, at RTP timestamp ts
 * (clock rate rate): decoded into the stream's recording
 */
void
md_record(md_stream_t *s, md_codec_id_e codec, const uint8_t *p, size_t len,
    uint32_t ts, int rate)
{
    int             n;
    size_t          i, gap;
    int16_t         pcm[960];
    uint8_t         alaw[MD_TC_MAX_OUT];
    const uint8_t  *g711;
    md_recorder_t  *rec;

    rec = s->recorder;

    if (codec == MD_CODEC_OPUS) {
        if (rec->tc == NULL) {
            rec->tc = md_tc_new(MD_CODEC_OPUS, MD_CODEC_PCMA, MD_TC_PTIME);
            if (rec->tc == NULL) {
                return;
            }
        }

        n = md_tc_run(rec->tc, p, len, alaw, sizeof(alaw));
        if (n <= 0) {
            return;
        }

        g711 = alaw;
        len = (size_t) n;
        codec = MD_CODEC_PCMA;

    } else if (codec == MD_CODEC_PCMA || codec == MD_CODEC_PCMU) {
        g711 = p;

    } else {
        return;
    }

    if (len > 960) {
        return;
    }

    /* silence for what the timestamps skipped (hold, lost packets) */

    if (rec->started) {
        gap = (size_t) (int32_t) (ts - rec->last_ts) * 8000 / (size_t) rate;

        if ((int32_t) (ts - rec->last_ts) > 0 && gap < MD_GAP_MAX_S * 8000) {
            memset(pcm, 0, sizeof(pcm));

            while (gap) {
                n = gap > 960 ? 960 : (int) gap;
                (void) fwrite(pcm, 2, (size_t) n, rec->file);
                rec->samples += (uint32_t) n;
                gap -= (size_t) n;
            }
        }
    }

    for (i = 0; i < len; i++) {
        pcm[i] = codec == MD_CODEC_PCMA ? md_alaw_decode(g711[i])
                                        : md_ulaw_decode(g711[i]);
    }

    (void) fwrite(pcm, 2, len, rec->file);
    rec->samples += (uint32_t) len;
    rec->last_ts = ts + (uint32_t) (len * (size_t) rate / 8000);
    rec->started = 1;
}
