/*
 * The numbering of one direction of a stream (rewrite.c): the far end
 * sees one source, its own SSRC and sequence numbers and timestamps that
 * continue across source changes (RFC 3550 §5.1, §8.2).
 */

#ifndef MD_REWRITE_H
#define MD_REWRITE_H

#include <stdint.h>


/*
 * What the far end sees of one direction: its own SSRC, and sequence
 * numbers and timestamps that continue across source changes (hold,
 * re-INVITE, SSRC change, codec switch), RFC 3550 §5.1.
 */
typedef struct {
    int                 started;
    uint32_t            ssrc_in;
    uint32_t            ssrc_out;
    uint16_t            seq_offset;    /* first sequence number out */
    uint32_t            ts_offset;     /* first timestamp out */
    uint16_t            last_seq_out;
    uint32_t            last_ts_out;
    uint32_t            last_ts_in;
    uint16_t            last_seq_in;
    double              last_at;       /* s, md_now() */
    int                 in_rate;       /* Hz, RTP clock of the last packet in */
    int                 out_rate;      /* Hz, RTP clock out */
    unsigned            new_source:1;  /* injected media went out: the
                                          next relayed packet starts anew */
} md_rewrite_t;


/* ts of the source r follows (clock in_rate, Hz), in the numbering out */
uint32_t md_rewrite_ts(md_rewrite_t *r, uint32_t ts, int in_rate,
    int out_rate);
/*
 * the sequence number and timestamp out (*oseq, *ots) of a packet in
 * (ssrc, seq, ts at in_rate Hz, arriving at now, md_now()).  Within a
 * source they follow the input (gaps and reordering kept, timestamps
 * scaled to out_rate; renumber: a transcoder's frames, numbered one after
 * the other); a new source (a new SSRC, a timestamp that jumps 2 s away
 * from the wall clock, or a sequence jump) continues after the last
 * packet out, with *marker set
 */
void md_rewrite(md_rewrite_t *r, uint32_t ssrc, uint16_t seq, uint32_t ts,
    double now, int in_rate, int out_rate, int renumber, uint16_t *oseq,
    uint32_t *ots, int *marker);
/*
 * the packet after the last one out: sequence + 1, timestamp + step (in
 * the clock out); the input timestamp it stands for moves on with it, so
 * a 40 ms packet in, sent as two 20 ms frames, is followed by the third
 * frame's time
 */
void md_rewrite_next(md_rewrite_t *r, uint32_t step);

#endif
