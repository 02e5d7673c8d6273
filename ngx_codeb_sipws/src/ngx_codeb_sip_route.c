/*
 * Which worker a message belongs to (docs/sip.md "Every worker"): a call
 * lives in the worker that took its INVITE.  The identifiers that worker
 * makes carry its id "<host>:<pid>" in hex: Via branches
 * "z9hG4bKcb<hex id>-...", tags and Call-IDs "cb<hex id>-...".  A response
 * or an in-dialog request that names another worker is handed to that
 * worker over the bus:
 *   sip-in <origin flow token> <address> <port>\n<message>
 * and the answer goes back to the origin flow ("sip-send").  Nothing is
 * looked up: any worker of any host reads the owner from the message.
 */

#include "ngx_codeb_sip.h"


static void ngx_codeb_sip_bus_in(ngx_str_t *header, ngx_str_t *body);


static ngx_str_t  ngx_codeb_sip_hex_id;       /* this worker's id in hex */

static ngx_str_t  ngx_codeb_sip_bus_in_kind = ngx_string("sip-in");


ngx_int_t
ngx_codeb_sip_route_init(ngx_conf_t *cf)
{
    return ngx_codeb_bus_on(cf, &ngx_codeb_sip_bus_in_kind,
                            ngx_codeb_sip_bus_in);
}


ngx_int_t
ngx_codeb_sip_route_init_process(ngx_cycle_t *cycle)
{
    ngx_str_t  *wid;

    wid = ngx_codeb_worker_id();

    ngx_codeb_sip_hex_id.data = ngx_pnalloc(cycle->pool, 2 * wid->len);
    if (ngx_codeb_sip_hex_id.data == NULL) {
        return NGX_ERROR;
    }

    ngx_codeb_sip_hex_id.len = ngx_hex_dump(ngx_codeb_sip_hex_id.data,
                                            wid->data, wid->len)
                               - ngx_codeb_sip_hex_id.data;

    return NGX_OK;
}


char *
ngx_codeb_sip_make_id(su_home_t *home, char *prefix, size_t n)
{
    u_char  *p, *id;
    size_t   plen;

    plen = ngx_strlen(prefix);

    id = su_alloc(home, plen + 3 + ngx_codeb_sip_hex_id.len + 2 * n + 1);
    if (id == NULL) {
        return NULL;
    }

    p = ngx_cpymem(id, prefix, plen);
    p = ngx_cpymem(p, "cb", 2);
    p = ngx_cpymem(p, ngx_codeb_sip_hex_id.data, ngx_codeb_sip_hex_id.len);
    *p++ = '-';

    if (ngx_codeb_random_hex(p, n) != NGX_OK) {
        return NULL;
    }

    p[2 * n] = '\0';

    return (char *) id;
}


/*
 * The worker id an identifier of ours carries ("cb<hex>-" after prefix),
 * decoded into worker; NGX_DECLINED when it is not one of ours
 */
static ngx_int_t
ngx_codeb_sip_id_worker(char const *id, char *prefix, u_char *worker,
    size_t size, size_t *len)
{
    u_char  *p, *end;
    size_t   plen, i;
    ngx_int_t  hi, lo;

    plen = ngx_strlen(prefix);

    if (id == NULL || ngx_strlen(id) < plen + 3
        || ngx_strncasecmp((u_char *) id, (u_char *) prefix, plen) != 0
        || id[plen] != 'c' || id[plen + 1] != 'b')
    {
        return NGX_DECLINED;
    }

    p = (u_char *) id + plen + 2;
    end = (u_char *) ngx_strchr(p, '-');

    if (end == NULL || (end - p) % 2 || (size_t) (end - p) / 2 > size) {
        return NGX_DECLINED;
    }

    for (i = 0; p < end; p += 2, i++) {
        hi = ngx_hextoi(p, 1);
        lo = ngx_hextoi(p + 1, 1);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_DECLINED;
        }

        worker[i] = (u_char) (hi << 4 | lo);
    }

    *len = i;

    return NGX_OK;
}


ngx_int_t
ngx_codeb_sip_route(ngx_codeb_sip_flow_t *flow, msg_t *msg, u_char *data,
    size_t len)
{
    u_char      wid[256];
    size_t      wlen;
    sip_t      *sip;
    ngx_int_t   rc;
    ngx_str_t   origin, worker, fw, *me;

    sip = sip_object(msg);

    if (sip->sip_status) {
        rc = ngx_codeb_sip_id_worker(sip->sip_via->v_branch, "z9hG4bK", wid,
                                     sizeof(wid), &wlen);

    } else {
        rc = ngx_codeb_sip_id_worker(sip->sip_to->a_tag, "", wid,
                                     sizeof(wid), &wlen);
    }

    me = ngx_codeb_worker_id();

    if (rc != NGX_OK
        || (wlen == me->len && ngx_strncmp(wid, me->data, wlen) == 0))
    {
        return NGX_DECLINED;
    }

    worker.data = wid;
    worker.len = wlen;

    if (ngx_codeb_sip_flow_token(flow, ngx_codeb_scratch(), &origin)
        != NGX_OK)
    {
        return NGX_OK;
    }

    fw.len = sizeof("sip-in    \n") + origin.len + flow->addr_text.len
             + NGX_INT_T_LEN + len;
    fw.data = ngx_pnalloc(ngx_codeb_scratch(), fw.len);
    if (fw.data == NULL) {
        return NGX_OK;
    }

    fw.len = ngx_cpymem(ngx_sprintf(fw.data, "sip-in %V %V %d\n", &origin,
                                    &flow->addr_text, (int) flow->port),
                        data, len)
             - fw.data;

    ngx_log_debug1(NGX_LOG_DEBUG_EVENT, flow->log, 0,
                   "codeb sip: handed to worker %V", &worker);

    (void) ngx_codeb_bus_send(&worker, &fw);

    return NGX_OK;
}


/*
 * sip-in <origin flow token> <address> <port>: a message another worker
 * took in for a call of this one; answers go back to the origin flow
 */
static void
ngx_codeb_sip_bus_in(ngx_str_t *header, ngx_str_t *body)
{
    ngx_str_t              w[4];
    ngx_int_t              port;
    ngx_codeb_sip_flow_t  *flow;

    if (!ngx_codeb_bus_words(header, w, 4)) {
        return;
    }

    port = ngx_atoi(w[3].data, w[3].len);
    if (port == NGX_ERROR) {
        return;
    }

    flow = ngx_codeb_sip_flow_remote(&w[1], &w[2], (in_port_t) port,
                                     ngx_cycle->log);
    if (flow == NULL) {
        return;
    }

    ngx_codeb_sip_receive(flow, body->data, body->len);

    ngx_codeb_sip_flow_close(flow);
}
