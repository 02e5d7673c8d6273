/*
 * The NG commands on calls (offer.c: offer and answer; commands.c: the
 * others).  Each fills reply (the members of a bencoded dictionary,
 * without "result") and returns NULL, or returns an error reason, which
 * the reply carries as "error-reason" (docs/ng.md).
 */

#ifndef MD_COMMANDS_H
#define MD_COMMANDS_H

#include "bencode.h"


/* "offer": call-id, from-tag, sdp and flags; the SDP for the answerer */
const char *md_call_offer(be_node_t *req, be_buf_t *reply);
/* "answer": call-id, from-tag, to-tag, sdp; the SDP for the offerer */
const char *md_call_answer(be_node_t *req, be_buf_t *reply);
/* "delete": call-id; an unknown call is ok with a warning */
const char *md_call_delete(be_node_t *req, be_buf_t *reply);
/* "query": call-id; per tag and stream: endpoint, stats, flags */
const char *md_call_query(be_node_t *req, be_buf_t *reply);
/* "list": the call-ids, at most "limit" (32) */
const char *md_call_list(be_node_t *req, be_buf_t *reply);
/* "play media": file to from-tag's endpoint */
const char *md_call_play(be_node_t *req, be_buf_t *reply);
/* "stop media": of from-tag, or of every party */
const char *md_call_stop_media(be_node_t *req, be_buf_t *reply);
/* "start recording", "stop recording": every leg of call-id */
const char *md_call_start_recording(be_node_t *req, be_buf_t *reply);
const char *md_call_stop_recording(be_node_t *req, be_buf_t *reply);

#endif
