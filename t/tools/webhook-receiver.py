#!/usr/bin/env python3
"""A webhook receiver for t/112-webhooks.t on 127.0.0.1, a free port,
which it writes to PORTFILE once it listens (its pid to PORTFILE.pid).

Every POST is appended to LOG as one JSON line {path, headers, body}
(headers lower-cased, body as text).  The answer depends on the path:
  /ok        200
  /fail2     500 to the first two requests, then 200
  /gone      410
  /always500 500
  /retry     503 with Retry-After: 1 once, then 200
Exits by itself after 120 s, so that a failed test leaves nothing behind.
"""
import http.server
import json
import os
import sys
import threading

PORTFILE, LOG = sys.argv[1], sys.argv[2]
seen = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n).decode('utf-8', 'replace')
        with lock:
            seen[self.path] = seen.get(self.path, 0) + 1
            count = seen[self.path]
            with open(LOG, 'a') as f:
                f.write(json.dumps({'path': self.path, 'body': body,
                                    'headers': {k.lower(): v for k, v in self.headers.items()}}) + '\n')
        status, extra = 200, {}
        if self.path == '/fail2' and count <= 2:
            status = 500
        elif self.path == '/gone':
            status = 410
        elif self.path == '/always500':
            status = 500
        elif self.path == '/retry' and count == 1:
            status, extra = 503, {'Retry-After': '1'}
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
with open(PORTFILE + '.tmp', 'w') as f:
    f.write(str(server.server_address[1]))
with open(PORTFILE + '.pid', 'w') as f:
    f.write(str(os.getpid()))
os.rename(PORTFILE + '.tmp', PORTFILE)
threading.Timer(120, server.shutdown).start()
server.serve_forever()
