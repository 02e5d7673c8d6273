/*
 * Media the daemon makes or keeps itself (media.c): "play media" and
 * "stop media", "start recording" and "stop recording".
 */

#ifndef MD_MEDIA_H
#define MD_MEDIA_H

#include "call.h"


/* the calling thread's 20 ms playback timer; 0 or -1 (logged) */
int md_media_init(void);
/*
 * "play media": the WAV file of req ("file", PCM 16-bit mono 8 kHz;
 * "repeat-times") to s's endpoint instead of the relayed media; NULL or
 * an error reason
 */
const char *md_media_play(md_stream_t *s, be_node_t *req, be_buf_t *reply);
/* s's player stopped and freed (none: nothing); relaying resumes */
void md_player_free(md_stream_t *s);
/*
 * "start recording": one WAV per leg in --recording-dir, the files listed
 * in reply ("files"); NULL or an error reason
 */
const char *md_media_record(md_call_t *c, be_buf_t *reply);
/* s's recording ended: the WAV header completed, the file closed */
void md_recorder_free(md_stream_t *s);
/* an RTP payload s's endpoint sent (codec, ts at rate Hz) to its file */
void md_record(md_stream_t *s, md_codec_id_e codec, const uint8_t *p,
    size_t len, uint32_t ts, int rate);

#endif
