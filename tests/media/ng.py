#!/usr/bin/python3
"""ng.py -- talk to an rtpengine-compatible NG control port (codeb-mediad or rtpengine).

    /usr/bin/python3 tests/media/ng.py [--addr 127.0.0.1:2223] ping
    /usr/bin/python3 tests/media/ng.py list
    /usr/bin/python3 tests/media/ng.py query CALLID
    /usr/bin/python3 tests/media/ng.py delete CALLID [FROMTAG]
    /usr/bin/python3 tests/media/ng.py raw '{"command": "query", "call-id": "abc"}'

The reply is printed as JSON; an "sdp" value is printed separately as plain text.
Exit status: 0 for result ok/pong, 1 for result error, 2 for no reply / bad usage.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mediatest import NG, NGTimeout, BencodeError  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(prog="ng.py", description="NG protocol client (rtpengine-compatible)")
    ap.add_argument("--addr", default=os.environ.get("NG_ADDR", "127.0.0.1:2223"),
                    help="host:port of the NG UDP listener (default 127.0.0.1:2223 or $NG_ADDR)")
    ap.add_argument("--timeout", type=float, default=2.0)
    ap.add_argument("--retries", type=int, default=2)
    ap.add_argument("--raw-bencode", action="store_true", help="also print the raw bencoded reply")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ping")
    sub.add_parser("list")
    q = sub.add_parser("query")
    q.add_argument("call_id")
    d = sub.add_parser("delete")
    d.add_argument("call_id")
    d.add_argument("from_tag", nargs="?")
    r = sub.add_parser("raw")
    r.add_argument("json", help="a JSON object, e.g. '{\"command\": \"ping\"}'")
    a = ap.parse_args(argv)

    if a.cmd == "raw":
        try:
            msg = json.loads(a.json)
        except ValueError as e:
            ap.error("raw: bad JSON: %s" % e)
        if not isinstance(msg, dict) or "command" not in msg:
            ap.error("raw: need a JSON object with a \"command\" key")
    elif a.cmd == "query":
        msg = {"command": "query", "call-id": a.call_id}
    elif a.cmd == "delete":
        msg = {"command": "delete", "call-id": a.call_id}
        if a.from_tag:
            msg["from-tag"] = a.from_tag
    else:
        msg = {"command": a.cmd}

    try:
        with NG(a.addr, timeout=a.timeout, retries=a.retries) as ng:
            reply = ng.request(msg)
            raw = ng.last_raw_reply
    except (NGTimeout, BencodeError, OSError) as e:
        print("ng.py: %s" % e, file=sys.stderr)
        return 2
    sdp = reply.pop("sdp", None) if isinstance(reply.get("sdp"), str) else None
    print(json.dumps(reply, indent=2, default=lambda b: b.decode("latin-1")))
    if sdp is not None:
        print("--- sdp ---")
        print(sdp.replace("\r\n", "\n"), end="")
    if a.raw_bencode:
        print("--- raw ---")
        print(raw)
    return 0 if reply.get("result") in ("ok", "pong") else 1


if __name__ == "__main__":
    sys.exit(main())
