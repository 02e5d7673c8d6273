/*
 * The numbering of one direction of a stream (rewrite.h).
 */

#include "rewrite.h"
#include "util.h"


uint32_t
md_rewrite_ts(md_rewrite_t *r, uint32_t ts, int in_rate, int out_rate)
{
    return r->last_ts_out
           + (uint32_t) ((int64_t) (int32_t) (ts - r->last_ts_in)
                         * out_rate / in_rate);
}


void
md_rewrite(md_rewrite_t *r, uint32_t ssrc, uint16_t seq, uint32_t ts,
    double now, int in_rate, int out_rate, int renumber, uint16_t *oseq,
    uint32_t *ots, int *marker)
{
    double    elapsed;
    int16_t   dseq;
    int32_t   dts;
    int64_t   drift;
    uint32_t  step;

    if (!r->started) {
        r->started = 1;
        r->ssrc_in = ssrc;
        *oseq = r->seq_offset;
        *ots = r->ts_offset;
        dseq = 1;

    } else {
        elapsed = now - r->last_at;
        dseq = (int16_t) (uint16_t) (seq - r->last_seq_in);
        dts = (int32_t) (ts - r->last_ts_in);
        drift = (int64_t) dts - (int64_t) (elapsed * in_rate);

        if (ssrc != r->ssrc_in || r->new_source
            || drift > 2 * (int64_t) in_rate || drift < -2 * (int64_t) in_rate
            || dseq > 1000 || dseq < -1000)
        {
            step = (uint32_t) (elapsed * out_rate + 0.5);
            if (step < (uint32_t) out_rate / 50) {
                step = (uint32_t) out_rate / 50;
            }

            *oseq = (uint16_t) (r->last_seq_out + 1);
            *ots = r->last_ts_out + step;
            *marker = 1;
            r->ssrc_in = ssrc;
            r->new_source = 0;
            dseq = 1;

        } else {
            *oseq = (uint16_t) (r->last_seq_out + (renumber ? 1 : dseq));
            *ots = md_rewrite_ts(r, ts, in_rate, out_rate);
        }
    }

    if (dseq > 0 || renumber) {
        r->in_rate = in_rate;
        r->out_rate = out_rate;
        r->last_seq_out = *oseq;
        r->last_ts_out = *ots;
        r->last_seq_in = seq;
        r->last_ts_in = ts;
        r->last_at = now;
    }
}


void
md_rewrite_next(md_rewrite_t *r, uint32_t step)
{
    if (!r->started) {
        r->started = 1;
        r->last_seq_out = (uint16_t) (r->seq_offset - 1);
        r->last_ts_out = r->ts_offset - step;
    }

    if (r->in_rate > 0 && r->out_rate > 0) {
        r->last_ts_in += (uint32_t) ((uint64_t) step * r->in_rate
                                     / r->out_rate);
    }

    r->last_seq_out++;
    r->last_ts_out += step;
    r->last_at = md_now();
}
