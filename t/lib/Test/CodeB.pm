package Test::CodeB;

# Why this file exists: the project's tests are written in the Test::Nginx
# block format, but Test::Nginx cannot be installed from the package
# registries this project reaches (no CPAN, and Debian does not package it).
# This is a small, self-contained replacement built on Debian's Test::Base
# (libtest-base-perl) that understands the subset of the format we use, plus a
# WebSocket client script language (--- ws) for the /signal.ashx endpoint.

use strict;
use warnings;

# "-base" (lower case) makes Test::CodeB a Test::Base subclass without
# Spiffy's source filter, so this file is plain Perl.
use Test::Base -base;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1);
use Errno qw(EAGAIN EWOULDBLOCK EINTR EPERM);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempfile);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM inet_aton sockaddr_in unpack_sockaddr_in inet_ntoa);
use Time::HiRes qw(time sleep);
require Test::Base::Filter;

our @EXPORT = qw(run_tests redis_cmd done_testing make_cert);

{ no warnings 'once'; *done_testing = \&Test::More::done_testing; }

=head1 NAME

Test::CodeB - Test::Nginx-style block tests (HTTP, WebSocket, TLS, UDP/TCP) for the CodeB nginx modules

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::CodeB;

    run_tests();
    done_testing();

    __DATA__

    === TEST 1: hello
    --- config
    location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello

Run with C<prove -v t/> from the repository root. Files must run one at a time
(no C<prove -j>): every file uses the same server root and ports (PORT,
PORT+1, and by default PORT+10, +11 for TLS and PORT+20, +21 for stream). A second
test process on the same server root stops at once (BAIL_OUT, a lock on
F<SERVROOT/.harness.lock>); two runs side by side need different
C<TEST_NGINX_SERVROOT> and C<TEST_NGINX_PORT>. nginx and redis-server left
running by a killed run are stopped by the next run.

Always end a file with C<run_tests(); done_testing();>: the number of
assertions depends on the blocks (one per C<--- ws> line, one per log pattern,
one per nginx shutdown), so a fixed C<plan> is not supported.

=head1 DESCRIPTION

Each block (C<=== TEST N: name>) is run against the real nginx binary
(C</usr/sbin/nginx>, Debian's 1.22) with C<master_process on; daemon on;>,
in the prefix C<t/servroot>. nginx is restarted only when the generated
configuration differs from the running one; otherwise it keeps running and
only the block's own part of the error log is examined. Every file stops nginx
(QUIT) at its end.

When the environment variable C<TEST_NGINX_MODULES> names a directory, a
C<load_module> line is emitted for every C<ngx_codeb_*_module.so> in it:
C<ngx_codeb_core_module.so> first, then the others sorted by name. Before
them comes nginx's own stream module (Debian's libnginx-mod-stream,
F</usr/lib/nginx/modules/ngx_stream_module.so>, or C<TEST_NGINX_STREAM_MODULE>;
nothing when the binary has stream built in) whenever the block has a
C<--- stream_config> section or one of the CodeB modules needs it (its name
contains C<stream>, or it refers to C<ngx_stream_*> symbols, as seen by
C<nm -D>). With the modules, a private C<redis-server> is started on a unix
socket for the whole file, C<codeb_redis unix:SOCK;> is added at http level
(when the core module is there), and Redis is flushed (C<FLUSHALL>) before
every block.

Test certificates (self-signed, EC P-256, CN and DNS subjectAltName of the
name; F<t/tools/mkcert.sh>) for C<localhost> (plus IP:127.0.0.1), C<a.test>
and C<b.test> are made once and kept in C<$TEST_NGINX_CERT_DIR> (default
F<SERVROOT/certs>, remade when older than 30 days) as F<NAME.crt> and
F<NAME.key>. More can be made while nginx runs: C<make_cert> (ws command
and exported function) or C<shell $TEST_NGINX_ROOT/t/tools/mkcert.sh NAME DIR>.

Section values go through Test::Base's default filters C<norm> and C<trim>
(so a multi-line section keeps exactly one trailing newline), then through the
filters named after the section name (C<eval>, C<chomp>, ...), then the
variables below are substituted.

=head2 Generated configuration

    worker_processes N;                 # --- workers, default 2
    daemon on; master_process on;
    user root;                          # only when the tests run as root
    pid SERVROOT/logs/nginx.pid;
    lock_file SERVROOT/logs/nginx.lock;
    error_log SERVROOT/logs/error.log info;
    load_module .../ngx_stream_module.so;  # with --- stream_config or a stream CodeB module
    load_module .../ngx_codeb_core_module.so;  # then the other ngx_codeb_*, sorted
    <--- main_config>
    events { worker_connections 1024; }
    http {
        access_log SERVROOT/logs/access.log;
        client_body_temp_path SERVROOT/client_body_temp;   # and proxy, fastcgi,
        ...                                                 # uwsgi, scgi
        codeb_redis unix:REDIS_SOCK;    # only when the core module is loaded
        codeb_host_id hostN;            # only with --- hosts 2 and the core module
        <--- http_config>
        server {
            listen 127.0.0.1:PORT reuseport;
            server_name localhost;
            <--- config>
        }
    }
    stream {                            # only with --- stream_config
        <--- stream_config>
    }

nginx is started as
C<nginx -p SERVROOT/ -c SERVROOT/conf/nginx.conf -e SERVROOT/logs/error.log>,
so nothing under F</etc/nginx> or F</var/log/nginx> is used.

=head2 Environment

=over

=item TEST_NGINX_BINARY

nginx to run, default F</usr/sbin/nginx>.

=item TEST_NGINX_MODULES

Directory holding the built C<.so> modules; unset or empty: plain nginx.

=item TEST_NGINX_PORT

Port of the first instance, default 1984; the second instance
(C<--- hosts 2>) listens on C<TEST_NGINX_PORT2>, default PORT+1.

=item TEST_NGINX_TLS_PORT, TEST_NGINX_TLS_PORT2

Ports for the tests' own C<listen ... ssl> lines (instance 1 and 2),
default PORT+10 and TLS_PORT+1. The harness listens on nothing there itself;
C<--- tls>, C<open ... tls> and C<open ... tls host2> connect to them.

=item TEST_NGINX_STREAM_PORT, TEST_NGINX_STREAM_PORT2

Ports for the tests' own C<stream> listeners (TCP and UDP), default PORT+20
and STREAM_PORT+1.

=item TEST_NGINX_CERT_DIR

Where the test certificates are kept, default F<SERVROOT/certs>.

=item TEST_NGINX_STREAM_MODULE

nginx's stream module, default F</usr/lib/nginx/modules/ngx_stream_module.so>.

=item TEST_NGINX_SERVROOT

Prefix of the first instance, default F<t/servroot> (absolute); the second
instance uses the same path with C<2> appended.

=item TEST_NGINX_REDIS_SOCK

Redis unix socket, default F<SERVROOT/redis.sock>.

=item TEST_NGINX_REDIS_SERVER

redis-server binary, default F</usr/bin/redis-server>.

=back

=head2 Variables substituted in every section

C<$TEST_NGINX_PORT> (or C<${TEST_NGINX_PORT}>), C<$TEST_NGINX_PORT2>,
C<$TEST_NGINX_TLS_PORT>, C<$TEST_NGINX_TLS_PORT2>, C<$TEST_NGINX_STREAM_PORT>,
C<$TEST_NGINX_STREAM_PORT2>, C<$TEST_NGINX_CERT_DIR>, C<$TEST_NGINX_REDIS_SOCK>,
C<$TEST_NGINX_SERVROOT>, C<$TEST_NGINX_HTML_DIR> (SERVROOT/html, created
empty for each file), C<$TEST_NGINX_ROOT> (the repository root),
the C<$TEST_NGINX_THIS_*> variables below, plus any
other C<$TEST_NGINX_*> environment variable (a test file may set its own in
C<%ENV> before C<run_tests()>). An unknown C<$TEST_NGINX_*> name
fails the block. All of these are also exported to C<%ENV>, so C<shell>
commands and Perl code can use them. The substitution runs after the section
filters: inside C<eval> sections write C<\$TEST_NGINX_PORT> or use single
quotes (an C<eval> section that does not compile fails the block).

With C<--- hosts 2> the user's sections are substituted identically for both
instances (C<$TEST_NGINX_SERVROOT> and C<$TEST_NGINX_HTML_DIR> point at the
first instance's directories in both), except for the "this instance"
variables: in C<--- main_config>, C<--- http_config>, C<--- config> and
C<--- stream_config>, C<$TEST_NGINX_THIS_HOST> is 1 or 2,
C<$TEST_NGINX_THIS_PORT>, C<$TEST_NGINX_THIS_TLS_PORT> and
C<$TEST_NGINX_THIS_STREAM_PORT> are that instance's ports; so write
C<listen 127.0.0.1:$TEST_NGINX_THIS_TLS_PORT ssl;> when both instances need a
TLS or stream listener. In all other sections they are instance 1's values.

=head2 Sections

=over

=item --- config

Text placed inside the C<server { }> block.

=item --- http_config

Text placed at C<http { }> level, before the server.

=item --- main_config

Text placed at the top level (main context), before C<events>.

=item --- stream_config

Text placed in a C<stream { }> block at the top level, after C<http>; nginx's
stream module is loaded for the block (see L</DESCRIPTION>). The listeners
are the test's own, e.g.
C<server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp; return "pong\n"; }>.
Give UDP C<proxy_pass> servers a C<proxy_responses> / C<proxy_timeout>:
nginx waits for open UDP sessions before it exits on QUIT.

=item --- workers N

C<worker_processes> (default 2).

=item --- hosts N

1 (default) or 2. With 2, a second nginx instance runs with the same
configuration in SERVROOT2 on C<$TEST_NGINX_PORT2>; when the modules are
loaded, C<codeb_host_id host1;> / C<codeb_host_id host2;> is added at http
level. Both instances share the Redis. The crash check covers both logs;
C<--- error_log> / C<--- no_error_log> search the lines of both.
C<--- request> / C<--- raw_request> always go to the first instance; in
C<--- ws> use C<open A host2>.

=item --- redis

Start the harness's redis-server for this file even without
C<TEST_NGINX_MODULES> (it is then flushed before every block, like with the
modules).

=item --- request

First line: C<METHOD URI [HTTP/1.x]>. Any following text is the request body,
sent as is (after C<trim> it ends in one newline; use C<--- request chomp> or
C<--- request eval> for exact bytes). The request is sent as HTTP/1.1 with
C<Host: localhost> (with C<--- tls NAME>: C<Host: NAME>) and
C<Connection: close> (unless C<--- more_headers> sets
them) and a C<Content-Length> when there is a body or the method is POST, PUT
or PATCH.

=item --- raw_request

Exact bytes sent (after variable substitution); nothing is added. Plain text
keeps its LF line endings (nginx accepts them, but a trailing empty line is
removed by C<trim>), so normally write C<--- raw_request eval> with a Perl
string such as C<"GET /t HTTP/1.1\r\nHost: localhost\r\n\r\n">. When the
C<eval> yields an array reference, its elements are written one by one with a
50 ms pause in between.

=item --- tls [NAME]

Send C<--- request> / C<--- raw_request> over TLS (no certificate
verification) with SNI NAME (no SNI when the value is empty: C<--- tls>
alone), to C<--- tls_port> or else C<$TEST_NGINX_TLS_PORT>. The port is
the test's own C<listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;> in a
C<server> of C<--- http_config>.

=item --- tls_port PORT

Port for C<--- tls> (variables allowed).

=item --- tls_cert REGEX

One assertion ("TLS certificate"): the certificate the server presented for
C<--- tls>, summarised as C<CN=E<lt>subject CNE<gt> SAN=DNS:a,DNS:b,IP:...>,
must match C<qr/REGEX/> (unanchored), e.g. C<^CN=a\.test SAN=DNS:a\.test$>.

=item --- more_headers

Lines C<Name: value> added to the request (C<eval> allowed).

=item --- error_code

Expected status. When a request is sent and this section is absent, 200 is
expected (as in Test::Nginx).

=item --- response_body

Exact expected body (C<eval> and C<chomp> allowed). Chunked bodies are
decoded before comparing.

=item --- response_body_like

The body must match C<qr/VALUE/s>, unanchored, VALUE being the section after
C<trim> (so it usually ends in C<\n>; write C<--- response_body_like: re>
for a one-line pattern without it).

=item --- response_headers

Lines C<Name: value>: the header must be present with exactly that value
(several headers of one name are joined with C<", ">). C<!Name>: the header
must be absent.

=item --- response_headers_like

Lines C<Name: regex>: the header value (C<""> when absent) must match
C<qr/^regex$/>.

=item --- error_log

Each non-empty line must occur as a substring in this block's error log lines
(one assertion each). With C<eval> the value may be an array reference whose
elements are strings (substrings) or C<qr//> patterns.

=item --- no_error_log

Each non-empty line (or array element, as above) must not occur.

=item --- timeout

Seconds (default 5): bound for the HTTP exchange and for each C<--- ws>
command that waits (and for C<shell> commands).

=item --- wait

Seconds to sleep after the request / ws script and before the error log is
read.

=item --- ws

A WebSocket (and raw UDP / TCP) client script, see L</WS COMMANDS>. Runs
after C<--- request> / C<--- raw_request> when both are given. With
C<--- ws eval> the Perl code may return the script as a string, or an array
reference with one command per element; an element may then hold real CR
and LF characters in its text (no here-documents in that form).

=item --- ONLY, --- SKIP, --- LAST

As in Test::Base / Test::Nginx: run only this block, skip this block, stop
after this block.

=back

The error log "window" of a block starts before nginx is (re)started for it,
so start-up messages count, and ends after the checks. After every block the
window is searched for worker crashes (C<exited on signal N>, or a worker that
C<exited with code N> / C<with fatal code N> for N != 0); a crash fails the
block ("no worker crash"). This check cannot be turned off. Likewise any
line logged at C<[alert]>, C<[crit]> or C<[emerg]> fails the block ("nothing
logged at alert, crit or emerg") unless one of the block's C<--- error_log>
patterns matches it.

B<JSON bodies.> Every HTTP response the harness reads for C<--- request> /
C<--- raw_request> whose C<Content-Type> is C<application/json> (any
parameters) and that may have a body (not HEAD, 1xx, 204, 304) gets one more
assertion, "JSON body": the body must parse with JSON::PP (UTF-8, any
top-level value), and when the status is E<gt>= 400 it must be an object
whose members C<error> and C<error_description> are strings (JSON strings,
not numbers, booleans or null; more members are fine). C<open_fail> applies
the same check to the refused handshake's response (failing its line). There
is no section or variable to switch this off; a test that needs another
shape has to change the server, not the harness. See C<json_body_error>.

Whenever an nginx instance is stopped (configuration change, end of file) one
more assertion checks that it shut down gracefully on QUIT within 5 s and
that no worker crashed since the last block: a worker that does not exit on
QUIT (for example because of a pending non-cancelable timer) fails it; the
harness then uses TERM and KILL.

A section name the harness does not know fails the block, which catches
typos such as C<--- response_header>.

=head1 WS COMMANDS

One command per line; blank lines and lines starting with C<#> are ignored.
Every command is exactly one TAP assertion named
C<TEST N: name - ws line L: COMMAND>; after the first failing line the rest
of the script is reported as skipped. All waits are bounded by
C<--- timeout> (default 5 s). All clients are dropped at the end of the
block.

Clients are named by a word (C<A>, C<B>, C<c1>, ...) and are of one kind:
WebSocket (C<open>), UDP (C<udp>), TCP (C<tcp>, C<tcp_accept>) or a TCP
listener (C<tcp_listen>); a command for another kind fails. Opening a name
again replaces the old client.

B<Variables.> C<${var}> anywhere in a command (and in a here-document) is
replaced, when the command runs, by a value stored with C<capture>, C<set>
or C<set_sip>; every client also sets C<${NAME_lport}> to its local port
(e.g. C<${U_lport}> for C<udp U ...>). An unknown name fails the line.
Substitution happens once, before escapes are applied.

B<Escapes.> C<send_esc>, C<send_binary>, C<udp_send>, C<udp_reply>,
C<tcp_send>, C<set> and C<set_sip> turn C<\r> C<\n> C<\t> C<\\> and
C<\xHH> into CR, LF, TAB, backslash and byte HH; any other backslash sequence
fails the line. C<send> and the other commands take their text literally.
Regexes (C<recv>, C<udp_recv>, ...) are Perl regexes, where C<\r>, C<\n>,
C<\xHH> already mean those bytes; they match the message bytes (undecoded).

B<Here-documents.> C<set VAR E<lt>E<lt>END> and C<set_sip VAR E<lt>E<lt>END>
take the following lines up to a line C<END> (any word) as the value, each
line ending in CRLF (so an empty line before C<END> makes the empty line
that ends SIP headers). Those lines are kept as they are (no comment or
blank-line skipping, leading spaces kept); escapes and C<${var}> apply. For
example:

    set_sip INV <<EOF
    INVITE sip:bob@a.test SIP/2.0
    Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK${branch}
    From: <sip:alice@a.test>;tag=1
    To: <sip:bob@a.test>
    Call-ID: c1
    CSeq: 1 INVITE
    Content-Type: application/sdp

    v=0
    o=- 1 1 IN IP4 127.0.0.1
    EOF
    send A ${INV}

B<WebSocket messages.> Every server frame is validated: unmasked, RSV bits
0, known opcode, control frames unfragmented and at most 125 bytes, minimal
length encoding, text messages valid UTF-8; a violation fails the command
that read it. Server fragmentation is reassembled.

=over

=item open A [PATH] [other B | same B] [host2] [tls] [sni=NAME] [port=N] [host=HOST] [proto=P1,P2,...]

Connect to 127.0.0.1:PORT (PORT2 with C<host2>), send a client handshake for
PATH (default C</signal.ashx>) and require C<101>, C<Upgrade: websocket>,
C<Connection: Upgrade> and the right C<Sec-WebSocket-Accept>.
C<tls> (implied by C<sni=>) makes it WebSocket over TLS (IO::Socket::SSL, no
certificate verification) to TLS_PORT (TLS_PORT2 with C<host2>), with SNI
NAME when C<sni=NAME> is given (none with C<tls> alone); C<port=N> connects
to N instead. The C<Host> header is HOST, else the SNI name, else
C<localhost>. C<proto=> offers those subprotocols (C<Sec-WebSocket-Protocol:
P1, P2>); the answer must then be exactly one of them. Without C<proto=> the
answer must have no C<Sec-WebSocket-Protocol>. The pid of the
worker that owns the connection is found with C<ss -tnpH state established>.
With C<other B> / C<same B> the connection must be served by a different /
the same worker as B's; unsuitable connections are closed (close frame 1000)
and the connect is retried, up to 40 times.

=item open_fail A PATH STATUS [host2] [tls] [sni=NAME] [port=N] [host=HOST] [proto=P1,...] [body=REGEX]

The same handshake as C<open> (same options), but it must be refused with
HTTP status STATUS (3 digits, not 101); the whole response is read. The
body must match C<qr/REGEX/> when C<body=> is given (REGEX is one word: write
C<\s> or C<\x20> for spaces) and passes the JSON body check (see
L</DESCRIPTION>). The body becomes A's last message (for C<capture>); A
accepts no other command. Example: C<open_fail A /sip 400> (no subprotocol
offered).

=item send A TEXT

The rest of the line as one masked text frame (FIN=1), taken literally.

=item send_esc A TEXT

Like C<send>, with the escapes applied.

=item send_binary A TEXT

One masked binary frame (opcode 2) whose payload is TEXT with the escapes
applied, e.g. C<send_binary A \x00\x01\xff>.

=item send_frames A OPCODE FIN TEXT

One masked frame with the given opcode (hex, C<0> = continuation) and FIN bit
(C<0>/C<1>); TEXT is the rest of the line (may be empty).

=item send_unmasked A TEXT

One unmasked text frame (a protocol violation).

=item send_raw A HEX

Raw bytes written as is, e.g. C<send_raw A 81 85 00 00 00 00 68 65 6c 6c 6f>.

=item send_big A N [OPCODE]

One masked frame (text unless OPCODE, hex) whose payload is exactly N bytes:
C<{"type":"ping","pad":"xxx..."}> padded to N (only C<x>s when N < 24).
16- and 64-bit length encodings are used as RFC 6455 requires.

=item send_close A CODE [REASON]

A masked close frame with that status code and optional reason.

=item ping A [PAYLOAD]

A masked ping frame.

=item expect_pong A [PAYLOAD]

The next control frame from the server (server pings are answered and
skipped) must be a pong with exactly PAYLOAD. Text messages that arrive first
are kept for the next C<recv>.

=item recv A REGEX

Read until a text message arrives (pings answered when autopong is on, pings
and pongs skipped) and require it to match C<qr/REGEX/> (unanchored). A close
frame, EOF, binary message or timeout fails. The message becomes A's "last
message".

=item skip_recv A REGEX

Drop text messages while they match C<qr/REGEX/>; the first one that does
not is kept for the next C<recv>. Fails like C<recv> when no such message
arrives. Example: C<skip_recv A ^SIP/2\.0 1\d\d > before the final response.

=item recv_binary A REGEX

Like C<recv> for a binary message (opcode 2): a text message fails.

=item recv_json A EXPR

Like C<recv>, but the message is decoded with JSON::PP and the Perl
expression EXPR, evaluated in package C<main> with C<$j> (and C<$_>) set to
the decoded value, must be true. Example:
C<recv_json A $j-E<gt>{type} eq 'welcome' && @{$j-E<gt>{peers}} == 0>.

=item skip_json A EXPR

Drop text messages while EXPR (as in C<recv_json>) holds for them; the first
message for which it does not is kept for the next C<recv>. Fails like
C<recv> when no such message arrives.

=item capture A NAME REGEX

Match A's last message against REGEX (one capture group) and store group 1
as C<${NAME}>. A may be any client: the last message is the last WebSocket
message, UDP datagram, or the bytes consumed by C<tcp_recv> /
C<tcp_recv_sip>, or the body of an C<open_fail> response. Use C<(?s)> for
C<.> to cross line ends.

=item no_recv A MS

No text or binary message may arrive within MS milliseconds (pings are
answered and ignored). A close frame or EOF also fails the line (and is kept
for a following C<expect_close> / C<expect_eof>).

=item expect_close A [CODE]

Read until a close frame (text messages on the way are allowed and shown in
the diagnostics), require its status code to be CODE (1005 stands for a close
frame without a code; no CODE: any), answer with a close frame, and require
the server to close the TCP connection within the timeout.

=item expect_eof A

The server must close the TCP connection within the timeout; frames (for a
WebSocket client) or bytes (for a TCP client) are ignored.

=item expect_ping A

The next frame must be a server ping (answered when autopong is on).

=item autopong A on|off

Answer server pings automatically (default on).

=item close A

Send close 1000 and wait for the server's close frame or EOF; then close the
socket. The client is gone afterwards. For a UDP, TCP or listener client:
close its socket (TLS: with close_notify).

=item drop A

Close the socket abruptly, without a close frame (TLS: without
close_notify). Any client kind.

=item tls_cert A REGEX

A (a WebSocket or TCP client over TLS) got a server certificate whose
summary C<CN=E<lt>subject CNE<gt> SAN=DNS:a,DNS:b,IP:...> matches
C<qr/REGEX/>, e.g. C<tls_cert A ^CN=b\.test SAN=DNS:b\.test$>.

=item set VAR TEXT

=item set VAR E<lt>E<lt>END

Store TEXT (escapes applied) or the here-document as C<${VAR}>.

=item set_sip VAR TEXT

=item set_sip VAR E<lt>E<lt>END

Like C<set>, then the value is made a SIP message with the right
C<Content-Length> (see C<sip_message>): the header lines up to the first
empty line get C<Content-Length> (or compact C<l>) set to the body's byte
length, or one added.

=item set_eval VAR PERL

Evaluate the Perl expression (in package C<main>, after C<${var}>
substitution) and store its value as C<${VAR}>; an error or undef fails the
line. For values a test computes from what it received, e.g. a digest
response from a captured nonce.

=item make_cert NAME [DIR]

Make (or replace) the self-signed certificate F<DIR/NAME.crt> /
F<DIR/NAME.key>, DIR defaulting to C<$TEST_NGINX_CERT_DIR>. nginx reads
certificates named with variables (C<ssl_certificate
$TEST_NGINX_SERVROOT/c/$ssl_server_name.crt;>) at each handshake, so this
works while it runs.

=item udp U PORT [bind=LPORT]

A UDP socket bound to 127.0.0.1 (port LPORT, default any) whose datagrams go
to 127.0.0.1:PORT. C<udp U 0 bind=LPORT> makes a peer that only receives
and replies (for nginx to send to).

=item udp_send U TEXT

One datagram, TEXT with the escapes applied, to PORT.

=item udp_reply U TEXT

One datagram to the sender of the last datagram U received.

=item udp_recv U REGEX

The next datagram, within the timeout, must match C<qr/REGEX/>; it becomes
U's last message.

=item udp_wait U REGEX

The next datagram that matches C<qr/REGEX/> within the timeout; the ones
before it are skipped (and shown in the log). For peers that retransmit
over UDP (RFC 3261 §17), where a retransmission may come first.

=item udp_no_recv U MS

No datagram may arrive within MS milliseconds.

=item tcp T PORT [tls] [sni=NAME]

A TCP connection to 127.0.0.1:PORT; with C<tls> (implied by C<sni=>) over
TLS, as for C<open>.

=item tcp_listen L PORT

Listen on 127.0.0.1:PORT (0: any; C<${L_lport}> tells which).

=item tcp_accept L T

Accept a connection on listener L within the timeout, as TCP client T.

=item tcp_send T TEXT

Write TEXT with the escapes applied.

=item tcp_recv T REGEX

Read until the bytes received and not yet consumed match C<qr/REGEX/>,
then consume them through the end of the match (they become T's last
message; what follows stays for the next read). EOF or timeout before a
match fails. Write REGEX so that it cannot match a partial message too
early (end it with what ends the message, e.g. C<\r\n\r\n>).

=item tcp_recv_sip T REGEX

Read one complete SIP message (header up to the empty line, then
C<Content-Length> body bytes; CRLF keep-alives before it are skipped),
consume it and require it to match C<qr/REGEX/>. A message without a
C<Content-Length> (or C<l>) header fails: it is required on TCP.

=item tcp_no_recv T MS

Nothing may arrive within MS milliseconds, and nothing received earlier
may be left unconsumed. EOF fails too.

=item sleep MS

Sleep MS milliseconds.

=item redis_restart

Stop the harness's redis-server (C<SHUTDOWN NOSAVE>) and start it again on
the same socket, waiting until it answers PING.

=item redis_stop

Stop the harness's redis-server (C<SHUTDOWN NOSAVE>); its socket is gone
until C<redis_start>. A block that stops it must start it again.

=item redis_start

Start the harness's redis-server again on the same socket, waiting until
it answers PING.

=item redis REGEX COMMAND ARGS...

Run a Redis command through C<redis_cmd>; the reply stringified (nil as the
empty string, arrays joined with C<,>) must match C<qr/REGEX/>. REGEX and the
arguments are single words.

=item shell COMMAND

Run COMMAND with C</bin/sh -c>; it must exit 0 within the timeout. The
C<TEST_NGINX_*> variables are in its environment.

=item reload

Send HUP to the first instance's master and wait until it has
C<--- workers> new worker processes.

=item worker_alive A

The worker process recorded for A by C<open> is still running.

=back

=head1 FUNCTIONS

=over

=item run_tests()

Runs all blocks of C<__DATA__>.

=item redis_cmd(@args)

Sends one command to the harness's Redis and returns the reply: a string
(C<+>, C<$>), a number (C<:>), C<undef> (nil) or an array reference (C<*>,
recursively). An error reply dies with C<redis error: ...>.

=item done_testing()

Test::More's C<done_testing>, re-exported.

=item make_cert($name [, $dir])

Makes a self-signed certificate for C<$name> (CN and DNS subjectAltName;
EC P-256; F<t/tools/mkcert.sh>) as F<DIR/NAME.crt> and F<DIR/NAME.key>, DIR
defaulting to C<$TEST_NGINX_CERT_DIR>, and returns the two paths. Existing
files are replaced (by rename, so a running nginx never reads half a file).
Dies on failure. Exported.

=back

Not exported (call them with the package name; C<use Test::CodeB> takes no
import list): C<Test::CodeB::sip_message($text)> (the C<set_sip>
conversion, for C<--- ws eval>), C<Test::CodeB::unescape($text)> (the
escapes), C<json_body_error> and C<is_json_content_type> (the JSON body
check), C<module_list>, and for the harness's own self-test (F<t/000-harness.t>)
C<ws_encode_frame>, C<ws_decode_frame>, C<ws_server_frame_error>,
C<ws_client_from_socket>, C<ws_run_script>, C<ws_context> and C<ws_try>.

=cut

my $WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

my %KNOWN_SECTIONS = map { $_ => 1 } qw(
    config http_config main_config stream_config workers hosts redis
    request raw_request more_headers tls tls_port tls_cert
    error_code response_body response_body_like
    response_headers response_headers_like
    error_log no_error_log timeout wait ws
    ONLY SKIP LAST
);

$SIG{PIPE} = 'IGNORE';    # a peer that closed first must not kill the test

# certificates made for every run, and the script that makes them
our @DEFAULT_CERTS = qw(localhost a.test b.test);
my $MKCERT = dirname(dirname(dirname(abs_path(__FILE__)))) . '/tools/mkcert.sh';

my %S;            # settings, filled by _init
my @Inst;         # [1] and [2]: nginx instances
my %Redis;        # the harness's redis-server
my $MainPid = $$;
my $Initialized = 0;

# ---------------------------------------------------------------------------
# Test::Base filter class: like Test::Base::Filter, but "eval" runs in
# package main and dies (failing the block) instead of silently returning $@.

package Test::CodeB::Filter;
our @ISA = ('Test::Base::Filter');

sub eval {    ## no critic (ProhibitBuiltinHomonyms)
    my $self = shift;
    $self->assert_scalar(@_);
    my $code = shift;
    my @r = CORE::eval("package main;\n#line 1 \"eval section\"\n$code");
    die "eval section does not run: $@" if $@;
    return @r;
}

package Test::CodeB;

# ---------------------------------------------------------------------------
# Set-up

sub _init {
    return if $Initialized;
    $Initialized = 1;
    $SIG{PIPE} = 'IGNORE';
    # Ctrl-C / kill: exit through END so nginx and redis-server are stopped.
    for my $sig (qw(INT TERM)) {
        $SIG{$sig} ||= sub { print STDERR "Test::CodeB: got SIG$sig, stopping servers\n"; exit 1 };
    }

    my $root = $ENV{TEST_NGINX_ROOT}
        // abs_path(dirname(abs_path(__FILE__)) . '/../../..');
    my $sr = $ENV{TEST_NGINX_SERVROOT} // "$root/t/servroot";
    $sr = abs_path($sr) // $sr if -e $sr;
    $sr =~ s{/+$}{};
    my $port = $ENV{TEST_NGINX_PORT} || 1984;
    my $tls_port = $ENV{TEST_NGINX_TLS_PORT} || $port + 10;
    my $stream_port = $ENV{TEST_NGINX_STREAM_PORT} || $port + 20;

    %S = (
        root         => $root,
        servroot     => $sr,
        servroot2    => "${sr}2",
        port         => $port,
        port2        => $ENV{TEST_NGINX_PORT2} || $port + 1,
        tls_port     => $tls_port,
        tls_port2    => $ENV{TEST_NGINX_TLS_PORT2} || $tls_port + 1,
        stream_port  => $stream_port,
        stream_port2 => $ENV{TEST_NGINX_STREAM_PORT2} || $stream_port + 1,
        html_dir     => "$sr/html",
        cert_dir     => $ENV{TEST_NGINX_CERT_DIR} || "$sr/certs",
        redis_sock   => $ENV{TEST_NGINX_REDIS_SOCK} || "$sr/redis.sock",
        nginx        => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
        redis_bin    => $ENV{TEST_NGINX_REDIS_SERVER} || '/usr/bin/redis-server',
        modules      => [],
    );
    $S{cert_dir} =~ s{/+$}{};

    if (defined $ENV{TEST_NGINX_MODULES} && length $ENV{TEST_NGINX_MODULES}) {
        my $dir = $ENV{TEST_NGINX_MODULES};
        $dir =~ s{/+$}{};
        ($S{modules}, $S{stream_always}) = module_list($dir);
        Test::More::diag("TEST_NGINX_MODULES=$dir holds no ngx_codeb_*_module.so")
            unless @{$S{modules}};
        $S{want_redis} = 1;
    }
    $S{core_loaded} = grep { $_->[0] eq 'ngx_codeb_core_module' } @{$S{modules}};

    $ENV{TEST_NGINX_ROOT}         = $S{root};
    $ENV{TEST_NGINX_SERVROOT}     = $S{servroot};
    $ENV{TEST_NGINX_PORT}         = $S{port};
    $ENV{TEST_NGINX_PORT2}        = $S{port2};
    $ENV{TEST_NGINX_TLS_PORT}     = $S{tls_port};
    $ENV{TEST_NGINX_TLS_PORT2}    = $S{tls_port2};
    $ENV{TEST_NGINX_STREAM_PORT}  = $S{stream_port};
    $ENV{TEST_NGINX_STREAM_PORT2} = $S{stream_port2};
    $ENV{TEST_NGINX_HTML_DIR}     = $S{html_dir};
    $ENV{TEST_NGINX_CERT_DIR}     = $S{cert_dir};
    $ENV{TEST_NGINX_REDIS_SOCK}   = $S{redis_sock};
    # "this instance" values; in the configuration sections they are
    # replaced per instance (see _gen_conf), elsewhere they are instance 1's
    $ENV{TEST_NGINX_THIS_HOST}        = 1;
    $ENV{TEST_NGINX_THIS_PORT}        = $S{port};
    $ENV{TEST_NGINX_THIS_TLS_PORT}    = $S{tls_port};
    $ENV{TEST_NGINX_THIS_STREAM_PORT} = $S{stream_port};

    @Inst = (undef,
        { n => 1, servroot => $S{servroot},  port => $S{port},
          tls_port => $S{tls_port},  stream_port => $S{stream_port} },
        { n => 2, servroot => $S{servroot2}, port => $S{port2},
          tls_port => $S{tls_port2}, stream_port => $S{stream_port2} });
    %Redis = (running => 0, pidfile => "$S{servroot}/redis.pid",
              logfile => "$S{servroot}/redis.log");

    Test::More::BAIL_OUT("nginx binary $S{nginx} is not executable")
        unless -x $S{nginx};

    # One test process per server root: a second one would take the first
    # one's nginx for a leftover and stop it. The lock dies with its owner.
    make_path($S{servroot});
    open $S{lock_fh}, '>>', "$S{servroot}/.harness.lock"
        or Test::More::BAIL_OUT("cannot open $S{servroot}/.harness.lock: $!");
    unless (flock $S{lock_fh}, LOCK_EX | LOCK_NB) {
        Test::More::BAIL_OUT("another test process is using $S{servroot}; run the files "
            . 'one at a time, or give each run its own TEST_NGINX_SERVROOT and TEST_NGINX_PORT');
    }

    _setup_servroot($Inst[1]);

    # the test certificates (kept between runs in the certificate directory)
    for my $name (@DEFAULT_CERTS) {
        my $err = _ensure_cert($name);
        Test::More::BAIL_OUT("cannot make the test certificate for $name: $err") if $err;
    }
}

# Make NAME.crt / NAME.key in the certificate directory unless they are
# there and younger than 30 days. Returns undef or an error.
sub _ensure_cert {
    my ($name) = @_;
    my $dir = $S{cert_dir};
    make_path($dir);
    open my $lk, '>>', "$dir/.lock" or return "cannot open $dir/.lock: $!";
    flock $lk, LOCK_EX;
    my $fresh = grep { -f $_ && -M $_ < 30 } "$dir/$name.crt", "$dir/$name.key";
    return undef if $fresh == 2;
    return eval { make_cert($name, $dir); 1 } ? undef : $@ =~ s/\n\z//r;
}

# make_cert($name [, $dir]): documented under FUNCTIONS.
sub make_cert {
    my ($name, $dir) = @_;
    croak 'make_cert needs a name' unless defined $name && length $name;
    unless (defined $dir) { _init(); $dir = $S{cert_dir} }
    my ($rc, $out) = _run_cmd(['/bin/sh', $MKCERT, $name, $dir], 30);
    die "make_cert $name: " . ($rc == -1 ? 'timed out' : 'exit status ' . ($rc >> 8))
      . "\n$out" if $rc != 0;
    return ("$dir/$name.crt", "$dir/$name.key");
}

=head2 module_list($dir)

The CodeB modules of C<$dir> in C<load_module> order (an array reference of
C<[name, path]>: C<ngx_codeb_core_module> first, then the other
C<ngx_codeb_*_module.so> by name) and whether one of them needs nginx's
stream module loaded before it.

=cut

sub module_list {
    my ($dir) = @_;
    my @so = sort map { m{([^/]+)\.so$} ? $1 : () } glob("$dir/ngx_codeb_*_module.so");
    my (@list, $stream);
    for my $m ((grep { $_ eq 'ngx_codeb_core_module' } @so),
               (grep { $_ ne 'ngx_codeb_core_module' } @so)) {
        push @list, [$m, "$dir/$m.so"];
        $stream = 1 if _module_needs_stream($m, "$dir/$m.so");
    }
    return (\@list, $stream ? 1 : 0);
}

# Does this module .so need nginx's stream module loaded before it? Its name
# says so, or it refers to ngx_stream_* symbols (a module that has an http
# and a stream part in one .so).
sub _module_needs_stream {
    my ($m, $f) = @_;
    return 1 if $m =~ /stream/;
    my ($rc, $out) = _run_cmd(['nm', '-D', '--undefined-only', $f], 10);
    return $rc == 0 && $out =~ /\bngx_stream_/ ? 1 : 0;
}

# The load_module line for nginx's stream module, or '' when the binary has
# it built in (nginx -V says --with-stream without =dynamic).
sub _stream_load_line {
    return $S{stream_line} if defined $S{stream_line};
    my ($rc, $out) = _run_cmd([$S{nginx}, '-V'], 10);
    if ($out =~ /--with-stream(?!=dynamic)(?:\s|$)/m) {
        $S{stream_line} = '';
    }
    else {
        my $so = $ENV{TEST_NGINX_STREAM_MODULE} || '/usr/lib/nginx/modules/ngx_stream_module.so';
        die "nginx's stream module $so does not exist (Debian: libnginx-mod-stream; "
          . "or set TEST_NGINX_STREAM_MODULE)\n" unless -f $so;
        $S{stream_line} = "load_module $so;";
    }
    return $S{stream_line};
}

# Stop what a previous, interrupted run may have left, then recreate the
# directories the harness owns. Only known sub-paths are removed.
sub _setup_servroot {
    my ($inst) = @_;
    my $sr = $inst->{servroot};
    _stop_stale("$sr/logs/nginx.pid", 'nginx');
    _stop_stale("$sr/redis.pid", 'redis') if $inst->{n} == 1;
    remove_tree(grep { -e } "$sr/conf", "$sr/logs", "$sr/html", glob("$sr/*_temp"));
    unlink grep { -e } map { "$sr/$_" } qw(redis.sock redis.pid redis.log);
    unlink $S{redis_sock} if $inst->{n} == 1 && -S $S{redis_sock};
    make_path(map { "$sr/$_" } qw(conf logs html client_body_temp proxy_temp
                                  fastcgi_temp uwsgi_temp scgi_temp));
    $inst->{setup} = 1;
}

sub _stop_stale {
    my ($pidfile, $what) = @_;
    my $pid = _read_pidfile($pidfile) or return;
    return unless _alive($pid);
    my $cmd = _slurp("/proc/$pid/cmdline") // '';
    return unless $cmd =~ /\Q$what\E/;
    Test::More::diag("stopping $what (pid $pid) left by an earlier run ($pidfile)");
    kill 'QUIT', $pid if $what eq 'nginx';
    kill 'TERM', $pid if $what eq 'redis';
    _wait_exit($pid, 5) or do { _kill_group($pid); _wait_exit($pid, 2) };
}

# ---------------------------------------------------------------------------
# Small process and file helpers

sub _slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    my $d = <$fh>;
    return $d // '';
}

sub _read_pidfile {
    my ($f) = @_;
    my $d = _slurp($f) // return undef;
    return $d =~ /(\d+)/ ? $1 : undef;
}

# kill 0 is not enough: an orphan may be a zombie nobody reaps.
sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && (kill(0, $pid) || $!{EPERM});
    my $st = _slurp("/proc/$pid/stat") // return 0;
    return $st =~ /^\d+ \(.*\)\s+Z\s/s ? 0 : 1;
}

sub _wait_exit {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (_alive($pid)) {
        return 0 if time > $deadline;
        sleep 0.02;
    }
    return 1;
}

sub _kill_group {
    my ($pid) = @_;
    my $st = _slurp("/proc/$pid/stat") // '';
    my ($pgid) = $st =~ /^\d+ \(.*\)\s+\S+\s+\d+\s+(\d+)/s;
    if ($pgid && $pgid == $pid) { kill 'KILL', -$pid } else { kill 'KILL', $pid }
}

# pids whose parent is $ppid
sub _children {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = _slurp("/proc/$p/stat") // next;
        my ($state, $pp) = $st =~ /^\d+ \(.*\)\s+(\S+)\s+(\d+)/s or next;
        push @kids, $p if $pp == $ppid && $state ne 'Z';
    }
    return sort { $a <=> $b } @kids;
}

# Run a command (array ref) with stdout+stderr to a temporary file, bounded by
# $timeout seconds. Returns (wait status or -1 on timeout, output).
sub _run_cmd {
    my ($argv, $timeout) = @_;
    my ($fh, $file) = tempfile('codeb-cmd-XXXXXX', TMPDIR => 1, UNLINK => 1);
    my $pid = fork;
    return (-1, "fork failed: $!") unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $fh;
        open STDERR, '>&', $fh;
        setpgrp(0, 0);
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        print STDERR "exec $argv->[0] failed: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $rc;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $?; last }
        if (time > $deadline) {
            kill 'TERM', -$pid, $pid;
            sleep 0.2;
            kill 'KILL', -$pid, $pid;
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.01;
    }
    my $out = _slurp($file) // '';
    close $fh;
    unlink $file;
    return ($rc, $out);
}

# Is something listening on 127.0.0.1:$port (or 0.0.0.0)? Read from
# /proc/net/tcp so that no connection is made (a probe connection would log
# "client closed connection" lines at info level).
sub _listening {
    my ($port) = @_;
    my $hex = sprintf '%04X', $port;
    my $tab = _slurp('/proc/net/tcp') // return 0;
    for my $l (split /\n/, $tab) {
        my (undef, $local, undef, $st) = split ' ', $l;
        next unless defined $st && $st eq '0A';
        return 1 if $local eq "0100007F:$hex" || $local eq "00000000:$hex";
    }
    return 0;
}

# ---------------------------------------------------------------------------
# Variable substitution

# $over: optional hash of values that take precedence over %ENV.
sub _subst {
    my ($text, $over) = @_;
    return $text unless defined $text && !ref $text;
    $over //= {};
    $text =~ s{\$(?:(TEST_NGINX_[A-Z0-9_]+)|\{(TEST_NGINX_[A-Z0-9_]+)\})}{
        my $v = $1 // $2;
        defined $over->{$v} ? $over->{$v} : defined $ENV{$v} ? $ENV{$v}
                            : die "undefined variable \$$v\n"
    }ge;
    return $text;
}

# The per-instance values of the "THIS" variables.
sub _inst_vars {
    my ($inst) = @_;
    return { TEST_NGINX_THIS_HOST => $inst->{n}, TEST_NGINX_THIS_PORT => $inst->{port},
             TEST_NGINX_THIS_TLS_PORT => $inst->{tls_port},
             TEST_NGINX_THIS_STREAM_PORT => $inst->{stream_port} };
}

# ---------------------------------------------------------------------------
# nginx instances

sub _gen_conf {
    my ($inst, $b) = @_;
    my $sr = $inst->{servroot};
    my @c;
    push @c, "worker_processes $b->{workers};";
    push @c, 'daemon on;', 'master_process on;';
    push @c, 'user root;' if $> == 0;
    push @c, "pid $sr/logs/nginx.pid;";
    push @c, "lock_file $sr/logs/nginx.lock;";
    push @c, "error_log $sr/logs/error.log info;";
    my $stream = $b->{has_stream};
    if ($stream || $S{stream_always}) {
        my $l = _stream_load_line();
        push @c, $l if length $l;
    }
    push @c, "load_module $_->[1];" for @{$S{modules}};
    my %sect = map { my $t = _subst($b->{$_}, _inst_vars($inst)); $t =~ s/\n+\z//; ($_ => $t) }
               qw(main_config http_config config stream_config);
    push @c, $sect{main_config} if length $sect{main_config};
    push @c, 'events { worker_connections 1024; }';
    push @c, 'http {';
    push @c, "    access_log $sr/logs/access.log;";
    push @c, "    ${_}_temp_path $sr/${_}_temp;"
        for qw(client_body proxy fastcgi uwsgi scgi);
    if ($S{core_loaded}) {
        push @c, "    codeb_redis unix:$S{redis_sock};";
        push @c, "    codeb_host_id host$inst->{n};" if $b->{hosts} == 2;
    }
    push @c, $sect{http_config} if length $sect{http_config};
    push @c, '    server {';
    push @c, "        listen 127.0.0.1:$inst->{port} reuseport;";
    push @c, '        server_name localhost;';
    push @c, $sect{config} if length $sect{config};
    push @c, '    }';
    push @c, '}';
    push @c, 'stream {', $sect{stream_config}, '}' if $stream;
    return join("\n", @c) . "\n";
}

sub _log_file { "$_[0]{servroot}/logs/error.log" }

sub _log_size { -s _log_file($_[0]) // 0 }

# Lines of the error log from byte offset $from to the current end.
sub _log_lines {
    my ($inst, $from) = @_;
    open my $fh, '<:raw', _log_file($inst) or return ([], $from);
    seek $fh, $from, 0;
    local $/;
    my $d = <$fh> // '';
    my $end = $from + length $d;
    # keep an unterminated last line for the next reader
    if (length $d && $d !~ /\n\z/) {
        my $cut = rindex($d, "\n") + 1;
        $end = $from + $cut;
        $d = substr($d, 0, $cut);
    }
    return ([split /\n/, $d], $end);
}

sub _crash_lines {
    my ($lines) = @_;
    return grep {
        /exited on signal \d+/
            || /worker process \d+ exited with (?:fatal )?code (\d+)/ && $1 != 0
    } @$lines;
}

sub _tail {
    my ($inst, $n) = @_;
    my ($lines) = _log_lines($inst, 0);
    my @l = @$lines;
    splice @l, 0, @l - $n if @l > $n;
    return join "\n", @l;
}

sub _start_instance {
    my ($inst, $conf) = @_;
    my $sr = $inst->{servroot};
    if (_listening($inst->{port})) {
        return "port 127.0.0.1:$inst->{port} is already in use before starting nginx "
             . "(another test run or server?)";
    }
    open my $fh, '>', "$sr/conf/nginx.conf" or return "cannot write $sr/conf/nginx.conf: $!";
    print $fh $conf;
    close $fh;
    unlink "$sr/logs/nginx.pid";
    my ($rc, $out) = _run_cmd([$S{nginx}, '-p', "$sr/", '-c', "$sr/conf/nginx.conf",
                               '-e', "$sr/logs/error.log"], 10);
    if ($rc != 0) {
        return "nginx failed to start (status $rc):\n$out\n--- error.log tail:\n"
             . _tail($inst, 15);
    }
    my $deadline = time + 5;
    my $pid;
    while (time < $deadline) {
        $pid = _read_pidfile("$sr/logs/nginx.pid");
        last if $pid && _alive($pid) && _listening($inst->{port});
        sleep 0.02;
    }
    unless ($pid && _alive($pid) && _listening($inst->{port})) {
        my $msg = "nginx did not come up within 5 s (pid file "
                . ($pid ? "says $pid" : 'missing') . ', port '
                . (_listening($inst->{port}) ? 'listening' : 'not listening') . ")\n"
                . "--- error.log tail:\n" . _tail($inst, 15);
        if ($pid && _alive($pid)) {    # do not leave a half-started nginx behind
            kill 'QUIT', $pid;
            _wait_exit($pid, 3) or do { _kill_group($pid); _wait_exit($pid, 2) };
        }
        return $msg;
    }
    $inst->{pid} = $pid;
    $inst->{conf} = $conf;
    return undef;
}

sub _running { $_[0]{pid} && _alive($_[0]{pid}) }

# Stop with QUIT (graceful); TERM after 5 s, KILL of the group after 3 more.
# One assertion: graceful exit and no worker crash since the last block.
sub _stop_instance {
    my ($inst, $why) = @_;
    my $pid = delete $inst->{pid};
    delete $inst->{conf};
    return unless $pid;
    my @problems;
    if (_alive($pid)) {
        kill 'QUIT', $pid;
        unless (_wait_exit($pid, 5)) {
            push @problems, "nginx did not exit within 5 s of QUIT (workers: "
                . join(' ', _children($pid)) . "); sent TERM";
            kill 'TERM', $pid;
            unless (_wait_exit($pid, 3)) {
                _kill_group($pid);
                _wait_exit($pid, 2);
                push @problems, 'still running 3 s after TERM; sent KILL to the process group';
            }
        }
    }
    my ($lines, $end) = _log_lines($inst, $inst->{chk_pos} // 0);
    $inst->{chk_pos} = $end;
    push @problems, map { "worker crash: $_" } _crash_lines($lines);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(!@problems, "nginx instance $inst->{n} stopped cleanly ($why)")
        or diag(join "\n", @problems);
}

# ---------------------------------------------------------------------------
# Redis

sub _redis_connect {
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $S{redis_sock})
        or die "redis: cannot connect to $S{redis_sock}: $!\n";
    $s->blocking(0);
    return $s;
}

sub _resp_encode {
    my @a = map { my $x = "$_"; utf8::encode($x) if utf8::is_utf8($x); $x } @_;
    return '*' . @a . "\r\n" . join('', map { '$' . length($_) . "\r\n$_\r\n" } @a);
}

# Read one RESP value from $r = {sock, buf, deadline}.
sub _resp_read {
    my ($r) = @_;
    my $line = _resp_line($r);
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    die "redis error: $v\n" if $t eq '-';
    return 0 + $v if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        _resp_fill($r, $v + 2);
        my $d = substr($r->{buf}, 0, $v);
        substr($r->{buf}, 0, $v + 2, '');
        return $d;
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { _resp_read($r) } 1 .. $v];
    }
    die "redis: unexpected reply line '$line'\n";
}

sub _resp_line {
    my ($r) = @_;
    my $i;
    while (($i = index($r->{buf}, "\r\n")) < 0) { _resp_more($r) }
    my $l = substr($r->{buf}, 0, $i);
    substr($r->{buf}, 0, $i + 2, '');
    return $l;
}

sub _resp_fill {
    my ($r, $n) = @_;
    _resp_more($r) while length($r->{buf}) < $n;
}

sub _resp_more {
    my ($r) = @_;
    my $n = _read_into($r->{sock}, \$r->{buf}, $r->{deadline});
    die "redis: timeout waiting for a reply\n" unless defined $n;
    die "redis: connection closed\n" if $n == 0;
}

sub redis_cmd {
    my @args = @_;
    _init();
    croak 'redis_cmd needs a command' unless @args;
    my $s = _redis_connect();
    my $r = { sock => $s, buf => '', deadline => time + 5 };
    my $err = _write_all($s, _resp_encode(@args), $r->{deadline});
    die "redis: write failed: $err\n" if $err;
    my $v = _resp_read($r);
    close $s;
    return $v;
}

sub _redis_stringify {
    my ($v) = @_;
    return '' unless defined $v;
    return join ',', map { _redis_stringify($_) } @$v if ref $v eq 'ARRAY';
    return "$v";
}

sub _redis_start {
    return undef if $Redis{running};
    unlink $S{redis_sock} if -S $S{redis_sock};
    my ($rc, $out) = _run_cmd([$S{redis_bin}, '--port', '0',
        '--unixsocket', $S{redis_sock}, '--unixsocketperm', '777',
        '--save', '', '--appendonly', 'no', '--daemonize', 'yes',
        '--pidfile', $Redis{pidfile}, '--logfile', $Redis{logfile},
        '--dir', $S{servroot}], 10);
    return "redis-server failed to start (status $rc): $out" if $rc != 0;
    my $deadline = time + 5;
    my $last = '';
    while (time < $deadline) {
        my $pong = eval { redis_cmd('PING') };
        if (defined $pong && $pong eq 'PONG') {
            $Redis{running} = 1;
            $Redis{pid} = _read_pidfile($Redis{pidfile});
            return undef;
        }
        $last = $@;
        sleep 0.05;
    }
    return "redis-server did not answer PING within 5 s: $last\n"
         . (_slurp($Redis{logfile}) // '');
}

sub _redis_stop {
    return unless $Redis{running};
    $Redis{running} = 0;
    my $pid = $Redis{pid} // _read_pidfile($Redis{pidfile});
    eval {
        my $s = _redis_connect();
        _write_all($s, _resp_encode('SHUTDOWN', 'NOSAVE'), time + 2);
        my $buf = '';
        my $dl = time + 5;
        while (1) { my $n = _read_into($s, \$buf, $dl); last if !defined $n || $n == 0 }
        close $s;
    };
    if ($pid && !_wait_exit($pid, 5)) {
        kill 'TERM', $pid;
        _wait_exit($pid, 2) or kill 'KILL', $pid;
    }
    unlink $S{redis_sock} if -S $S{redis_sock};
}

# ---------------------------------------------------------------------------
# Socket I/O helpers (non-blocking sockets, absolute deadlines)

# Returns undef on success or an error string.
sub _write_all {
    my ($sock, $data, $deadline) = @_;
    my $off = 0;
    my $sel = IO::Select->new($sock);
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (defined $n) { $off += $n; next }
        return "write failed: $!" unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my $left = $deadline - time;
        return 'write timed out' if $left <= 0;
        $sel->can_write($left);
    }
    return undef;
}

# Read what is available into $$bufref. Returns the byte count, 0 on EOF
# (or a reset connection), undef on timeout.
sub _read_into {
    my ($sock, $bufref, $deadline) = @_;
    my $sel = IO::Select->new($sock);
    while (1) {
        my $n = sysread($sock, my $chunk, 65536);
        if (defined $n) {
            $$bufref .= $chunk if $n;
            return $n;
        }
        return 0 unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my $left = $deadline - time;
        return undef if $left <= 0;
        $sel->can_read($left);
    }
}

# Connect to 127.0.0.1:$port; with tls => 1 also a TLS handshake (no
# certificate verification; SNI when sni => NAME is given). Returns a
# non-blocking socket (an IO::Socket::SSL for TLS).
sub _tcp_connect {
    my ($port, $timeout, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout)
        or die "connect to 127.0.0.1:$port failed: " . ($@ || $!) . "\n";
    if ($o{tls}) {
        require IO::Socket::SSL;
        IO::Socket::SSL->start_SSL($s,
            SSL_verify_mode => 0,    # SSL_VERIFY_NONE: self-signed test certificates
            (defined $o{sni} && length $o{sni} ? (SSL_hostname => $o{sni}) : (SSL_hostname => '')),
            Timeout => $timeout,
        ) or die "TLS handshake with 127.0.0.1:$port"
               . (defined $o{sni} ? " (SNI $o{sni})" : ' (no SNI)') . ' failed: '
               . (IO::Socket::SSL::errstr() || $!) . "\n";
    }
    $s->blocking(0);
    binmode $s;
    return $s;
}

# "CN=<subject CN> SAN=DNS:a,DNS:b,IP:..." of the certificate the server
# presented on a TLS socket.
sub _tls_cert_summary {
    my ($s) = @_;
    return undef unless ref $s && $s->isa('IO::Socket::SSL');
    my $cn = $s->peer_certificate('cn') // '';
    my @san = $s->peer_certificate('subjectAltNames');
    my %type = (1 => 'email', 2 => 'DNS', 6 => 'URI', 7 => 'IP');
    my @l;
    while (my ($t, $v) = splice @san, 0, 2) {
        $v = join('.', unpack 'C4', $v) if $t == 7 && length $v == 4;
        push @l, ($type{$t} // "type$t") . ":$v";
    }
    return "CN=$cn SAN=" . join(',', @l);
}

# Close a socket; abrupt => no TLS close_notify either.
sub _close_sock {
    my ($s, $abrupt) = @_;
    return unless $s;
    if (ref $s && $s->isa('IO::Socket::SSL')) {
        $s->close(SSL_no_shutdown => $abrupt ? 1 : 0, SSL_fast_shutdown => 1);
    }
    else { close $s }
}

# ---------------------------------------------------------------------------
# HTTP

sub _dechunk {
    my ($data) = @_;
    my ($out, $pos) = ('', 0);
    while (1) {
        my $e = index($data, "\r\n", $pos);
        return ($out, 0) if $e < 0;
        my $line = substr($data, $pos, $e - $pos);
        return ($out, 0, "bad chunk size line '$line'") unless $line =~ /^\s*([0-9a-fA-F]+)/;
        my $n = hex $1;
        $pos = $e + 2;
        if ($n == 0) {
            while (1) {    # trailer section up to an empty line
                my $t = index($data, "\r\n", $pos);
                return ($out, 0) if $t < 0;
                return ($out, 1) if $t == $pos;
                $pos = $t + 2;
            }
        }
        return ($out, 0) if length($data) < $pos + $n + 2;
        $out .= substr($data, $pos, $n);
        $pos += $n + 2;
    }
}

# Parse a (possibly partial) raw response. complete => 1 when no more bytes
# are needed; $eof says the server closed the connection.
sub _parse_response {
    my ($raw, $no_body, $eof) = @_;
    my %r = (raw => $raw, status => undef, headers => {}, raw_headers => '',
             body => '', complete => 0);
    my $i = index($raw, "\r\n\r\n");
    if ($i < 0) {
        $r{error} = 'connection closed before the end of the response header' if $eof;
        return \%r;
    }
    my $head = substr($raw, 0, $i);
    my $rest = substr($raw, $i + 4);
    $r{raw_headers} = $head;
    my ($sl, @hl) = split /\r\n/, $head;
    ($r{status}) = $sl =~ m{^HTTP/\d\.\d\s+(\d{3})};
    for (@hl) {
        next unless /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        push @{$r{headers}{lc $1}}, $2;
    }
    my $st = $r{status} // 0;
    if ($no_body || $st == 101 || $st == 204 || $st == 304 || ($st >= 100 && $st < 200)) {
        $r{complete} = 1;
        return \%r;
    }
    my $te = join ',', @{$r{headers}{'transfer-encoding'} || []};
    my $cl = $r{headers}{'content-length'};
    if ($te =~ /chunked/i) {
        my ($body, $done, $err) = _dechunk($rest);
        $r{body} = $body;
        $r{complete} = $done;
        $r{error} = $err if $err;
        $r{error} //= 'connection closed in the middle of a chunked body' if $eof && !$done;
        $r{complete} = 1 if $err;
    }
    elsif ($cl) {
        my $len = $cl->[0];
        $r{body} = substr($rest, 0, $len);
        $r{complete} = length($rest) >= $len;
        $r{error} = "connection closed after " . length($rest) . " of $len body bytes"
            if $eof && !$r{complete};
    }
    else {
        $r{body} = $rest;
        $r{complete} = $eof ? 1 : 0;
    }
    $r{complete} = 1 if $eof;
    return \%r;
}

# %tls: tls => 1, sni => NAME (see _tcp_connect). The result's tls_cert is
# the certificate summary.
sub _http_exchange {
    my ($port, $pieces, $timeout, $no_body, %tls) = @_;
    my $deadline = time + $timeout;
    my $sock = eval { _tcp_connect($port, $timeout, %tls) };
    return { error => $@ =~ s/\n\z//r, headers => {}, body => '', raw => '' } unless $sock;
    my $cert = _tls_cert_summary($sock);
    for my $i (0 .. $#$pieces) {
        sleep 0.05 if $i;
        my $err = _write_all($sock, $pieces->[$i], $deadline);
        if ($err) { _close_sock($sock); return { error => $err, headers => {}, body => '', raw => '' } }
    }
    my $raw = '';
    my $res;
    while (1) {
        $res = _parse_response($raw, $no_body, 0);
        last if $res->{complete};
        my $n = _read_into($sock, \$raw, $deadline);
        if (!defined $n) {
            $res = _parse_response($raw, $no_body, 0);
            $res->{error} = "timeout after $timeout s waiting for the response ("
                          . length($raw) . ' bytes received)';
            last;
        }
        if ($n == 0) { $res = _parse_response($raw, $no_body, 1); last }
    }
    _close_sock($sock);
    $res->{tls_cert} = $cert;
    return $res;
}

sub _header_value {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

sub _build_request {
    my ($name, $req, $more, $host) = @_;
    my ($first, $body) = split /\n/, $req, 2;
    $body //= '';
    $first =~ s/\r$//;
    die "$name - --- request: first line must be 'METHOD URI [HTTP/1.x]', got '$first'\n"
        unless $first =~ /^\s*(\S+)\s+(\S+)(?:\s+(\S+))?\s*$/;
    my ($meth, $uri, $ver) = ($1, $2, $3 // 'HTTP/1.1');
    my @h;
    for my $l (split /\n/, $more // '') {
        $l =~ s/\r$//;
        next unless $l =~ /\S/;
        push @h, $l;
    }
    my $has = sub { my $n = shift; grep { /^\s*\Q$n\E\s*:/i } @h };
    unshift @h, 'Connection: close' unless $has->('Connection');
    unshift @h, 'Host: ' . ($host // 'localhost') unless $has->('Host');
    if ((length $body || $meth =~ /^(?:POST|PUT|PATCH)$/)
        && !$has->('Content-Length') && !$has->('Transfer-Encoding')) {
        push @h, 'Content-Length: ' . length $body;
    }
    return ("$meth $uri $ver\r\n" . join('', map { "$_\r\n" } @h) . "\r\n" . $body, $meth);
}

# ---------------------------------------------------------------------------
# WebSocket frames (pure functions)

sub _bytes {
    my ($s) = @_;
    $s //= '';
    if (utf8::is_utf8($s)) { utf8::encode($s) unless utf8::downgrade($s, 1) }
    return $s;
}

sub _xor_mask {
    my ($data, $key) = @_;
    return '' unless length $data;
    my $m = $key x (int(length($data) / 4) + 1);
    return $data ^ substr($m, 0, length $data);
}

=head2 ws_encode_frame(%args)

Returns the bytes of one frame. Arguments: C<opcode> (required), C<payload>
(bytes, default empty), C<fin> (default 1), C<rsv> (0-7, default 0),
C<mask> (default 1), C<mask_key> (4 bytes, default random).

=cut

sub ws_encode_frame {
    my (%a) = @_;
    my $payload = _bytes($a{payload});
    my $b0 = (($a{fin} // 1) ? 0x80 : 0) | ((($a{rsv} // 0) & 7) << 4) | ($a{opcode} & 0x0f);
    my $mbit = ($a{mask} // 1) ? 0x80 : 0;
    my $len = length $payload;
    my $hdr = chr($b0);
    if    ($len < 126)   { $hdr .= chr($mbit | $len) }
    elsif ($len < 65536) { $hdr .= chr($mbit | 126) . pack('n', $len) }
    else                 { $hdr .= chr($mbit | 127) . pack('Q>', $len) }
    if ($mbit) {
        my $key = $a{mask_key} // pack('N', int rand 4294967296);
        $hdr .= $key;
        $payload = _xor_mask($payload, $key);
    }
    return $hdr . $payload;
}

=head2 ws_decode_frame(\$buffer)

Removes one complete frame from the start of C<$buffer> and returns
C<{fin, rsv, opcode, masked, mask_key, len_code, length, payload}> (payload
unmasked), or undef when the buffer does not hold a complete frame yet.

=cut

sub ws_decode_frame {
    my ($bufref) = @_;
    my $have = length $$bufref;
    return undef if $have < 2;
    my ($b0, $b1) = unpack 'CC', $$bufref;
    my $code = $b1 & 0x7f;
    my ($len, $off) = ($code, 2);
    if ($code == 126) {
        return undef if $have < 4;
        ($len, $off) = (unpack('n', substr($$bufref, 2, 2)), 4);
    }
    elsif ($code == 127) {
        return undef if $have < 10;
        ($len, $off) = (unpack('Q>', substr($$bufref, 2, 8)), 10);
    }
    my $masked = ($b1 & 0x80) ? 1 : 0;
    my $key;
    if ($masked) {
        return undef if $have < $off + 4;
        $key = substr($$bufref, $off, 4);
        $off += 4;
    }
    return undef if $have < $off + $len;
    my $payload = substr($$bufref, $off, $len);
    $payload = _xor_mask($payload, $key) if $masked;
    substr($$bufref, 0, $off + $len, '');
    return { fin => ($b0 >> 7) & 1, rsv => ($b0 >> 4) & 7, opcode => $b0 & 0x0f,
             masked => $masked, mask_key => $key, len_code => $code,
             length => $len, payload => $payload };
}

=head2 ws_server_frame_error($frame)

Returns undef for a frame a server may send, else the reason (masked, RSV
bits, reserved opcode, bad control frame, non-minimal length, 1-byte close
payload).

=cut

sub ws_server_frame_error {
    my ($f) = @_;
    return 'server frame is masked' if $f->{masked};
    return "RSV bits set ($f->{rsv})" if $f->{rsv};
    my $op = $f->{opcode};
    return sprintf('reserved opcode 0x%x', $op) unless $op <= 2 || ($op >= 8 && $op <= 10);
    if ($op >= 8) {
        return 'fragmented control frame' unless $f->{fin};
        return "control frame payload of $f->{length} bytes (> 125)" if $f->{length} > 125;
        return 'close frame with a 1-byte payload' if $op == 8 && $f->{length} == 1;
    }
    return "non-minimal length encoding ($f->{length} bytes in the 16-bit form)"
        if $f->{len_code} == 126 && $f->{length} < 126;
    return "non-minimal length encoding ($f->{length} bytes in the 64-bit form)"
        if $f->{len_code} == 127 && $f->{length} < 65536;
    return undef;
}

# ---------------------------------------------------------------------------
# WebSocket client

sub _ws_new_client {
    my ($name, $sock, %o) = @_;
    return { kind => 'ws', name => $name, sock => $sock, buf => $o{buf} // '', pending => [],
             autopong => 1, eof => 0, last => undef, frag => undef,
             port => $o{port}, lport => $o{lport}, pid => $o{pid}, seen => [] };
}

=head2 ws_client_from_socket($name, $socket)

Wraps an already connected socket (no handshake) as a ws client, for
C<ws_run_script>'s C<clients> option.

=cut

sub ws_client_from_socket {
    my ($name, $sock) = @_;
    $sock->blocking(0);
    binmode $sock;
    return _ws_new_client($name, $sock);
}

sub _ws_write {
    my ($c, $bytes, $deadline) = @_;
    my $err = _write_all($c->{sock}, $bytes, $deadline);
    die "client $c->{name}: $err\n" if $err;
}

sub _show {
    my ($s, $max) = @_;
    $max //= 400;
    return '(undef)' unless defined $s;
    my $t = length($s) > $max ? substr($s, 0, $max) . '...(' . length($s) . ' bytes)' : $s;
    $t =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $t;
}

sub _ev_str {
    my ($ev) = @_;
    my $t = $ev->{type};
    return "$t frame: " . _show($ev->{payload}) if $t =~ /^(?:text|binary|ping|pong)$/;
    return 'close frame, code ' . ($ev->{code} // 'none (1005)')
         . (length($ev->{reason} // '') ? ", reason '$ev->{reason}'" : '') if $t eq 'close';
    return "protocol error: $ev->{error}" if $t eq 'error';
    return 'EOF (server closed the TCP connection)'
         . ($ev->{partial} ? " with $ev->{partial} bytes of an incomplete frame" : '') if $t eq 'eof';
    return 'timeout' if $t eq 'timeout';
    return $t;
}

# The next event from the server: text / binary (a complete message), ping,
# pong, close, eof, timeout, or error (protocol violation by the server).
sub _ws_next_event {
    my ($c, $deadline) = @_;
    return shift @{$c->{pending}} if @{$c->{pending}};
    while (1) {
        if (my $f = ws_decode_frame(\$c->{buf})) {
            if (my $err = ws_server_frame_error($f)) {
                return { type => 'error', error => $err };
            }
            my $op = $f->{opcode};
            if ($op == 9) {
                # a failed pong write (server already gone) shows up as EOF later
                eval { _ws_write($c, ws_encode_frame(opcode => 10, payload => $f->{payload}),
                                 $deadline) } if $c->{autopong} && !$c->{eof};
                return { type => 'ping', payload => $f->{payload} };
            }
            return { type => 'pong', payload => $f->{payload} } if $op == 10;
            if ($op == 8) {
                my ($code, $reason) = (undef, '');
                ($code, $reason) = (unpack('n', $f->{payload}), substr($f->{payload}, 2))
                    if $f->{length} >= 2;
                $c->{got_close} = 1;
                return { type => 'close', code => $code, reason => $reason };
            }
            my $msg;
            if ($op == 0) {
                return { type => 'error', error => 'continuation frame without a started message' }
                    unless $c->{frag};
                $c->{frag}{payload} .= $f->{payload};
                $c->{frag}{n}++;
                next unless $f->{fin};
                $msg = delete $c->{frag};
            }
            else {
                return { type => 'error', error => 'new data frame inside a fragmented message' }
                    if $c->{frag};
                $msg = { opcode => $op, payload => $f->{payload}, n => 1 };
                unless ($f->{fin}) { $c->{frag} = $msg; next }
            }
            my $type = $msg->{opcode} == 1 ? 'text' : 'binary';
            if ($type eq 'text') {
                my $copy = $msg->{payload};
                return { type => 'error', error => 'text message is not valid UTF-8: '
                                                   . _show($msg->{payload}) }
                    unless utf8::decode($copy);
            }
            return { type => $type, payload => $msg->{payload}, fragments => $msg->{n} };
        }
        return { type => 'eof', partial => length $c->{buf} } if $c->{eof};
        my $n = _read_into($c->{sock}, \$c->{buf}, $deadline);
        return { type => 'timeout' } unless defined $n;
        $c->{eof} = 1 if $n == 0;
    }
}

# Client handshake on 127.0.0.1:$port. %o: tls, sni (see _tcp_connect),
# host (Host header; default the SNI name, else localhost), protos (array
# ref of subprotocols to offer), refused (open_fail: return (client, full
# response) whatever the status, socket closed).
sub _ws_handshake {
    my ($name, $port, $path, $timeout, %o) = @_;
    my $deadline = time + $timeout;
    my $sock = _tcp_connect($port, $timeout, tls => $o{tls}, sni => $o{sni});
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $c = _ws_new_client($name, $sock, port => $port, lport => $sock->sockport);
    $c->{tls_cert} = _tls_cert_summary($sock);
    my @protos = @{$o{protos} || []};
    my $host = $o{host} // $o{sni} // 'localhost';
    _ws_write($c, "GET $path HTTP/1.1\r\nHost: $host\r\nUpgrade: websocket\r\n"
                . "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\n"
                . (@protos ? 'Sec-WebSocket-Protocol: ' . join(', ', @protos) . "\r\n" : '')
                . "Sec-WebSocket-Version: 13\r\n\r\n", $deadline);
    my $raw = '';
    my $i;
    while (($i = index($raw, "\r\n\r\n")) < 0) {
        my $n = _read_into($sock, \$raw, $deadline);
        die "handshake: timeout waiting for the response header; got: " . _show($raw) . "\n"
            unless defined $n;
        die "handshake: connection closed; got: " . _show($raw) . "\n" if $n == 0;
    }
    my $res = _parse_response(substr($raw, 0, $i + 4), 1, 0);
    $c->{buf} = substr($raw, $i + 4);
    my $st = $res->{status} // '(none)';
    if ($st ne '101' || $o{refused}) {    # read the body too: it usually says why
        my $dl = $o{refused} ? $deadline : time + 1;
        my $full;
        while (1) {
            $full = _parse_response($raw, 0, 0);
            last if $full->{complete};
            my $n = _read_into($sock, \$raw, $dl);
            if (!defined $n) {
                $full->{error} = "timeout after $timeout s waiting for the response";
                last;
            }
            if ($n == 0) { $full = _parse_response($raw, 0, 1); last }
        }
        _close_sock($sock);
        $c->{eof} = 1;
        return ($c, $full) if $o{refused};
        die "handshake: expected status 101, got $st\n$res->{raw_headers}\n\n"
          . _show($full->{body}, 1000) . "\n";
    }
    my @bad;
    my $accept = encode_base64(sha1($key . $WS_GUID), '');
    my $got = _header_value($res, 'Sec-WebSocket-Accept') // '(absent)';
    push @bad, "Sec-WebSocket-Accept is '$got', expected '$accept'" if $got ne $accept;
    push @bad, 'no "Upgrade: websocket"'
        unless (_header_value($res, 'Upgrade') // '') =~ /^\s*websocket\s*$/i;
    push @bad, 'no "Connection: Upgrade"'
        unless (_header_value($res, 'Connection') // '') =~ /\bupgrade\b/i;
    my $sp = _header_value($res, 'Sec-WebSocket-Protocol');
    $sp =~ s/^\s+|\s+$//g if defined $sp;
    if (@protos) {
        if (!defined $sp) {
            push @bad, 'no Sec-WebSocket-Protocol in the answer (offered: ' . join(', ', @protos) . ')';
        }
        elsif (!grep { $_ eq $sp } @protos) {
            push @bad, "Sec-WebSocket-Protocol '$sp' is not one of the offered "
                     . join(', ', @protos);
        }
    }
    elsif (defined $sp) {
        push @bad, "Sec-WebSocket-Protocol '$sp' in the answer, but none was offered";
    }
    if (@bad) {
        _close_sock($sock);
        die 'handshake: ' . join('; ', @bad) . "\n$res->{raw_headers}\n";
    }
    $c->{proto} = $sp;
    return $c;
}

# pid of the nginx worker owning the server side of the client's connection
sub _owner_pid {
    my ($c, $timeout) = @_;
    my $deadline = time + $timeout;
    my $out = '';
    while (1) {
        my $rc;
        ($rc, $out) = _run_cmd(['ss', '-tnpH', 'state', 'established'], 5);
        for my $l (split /\n/, $out) {
            my @f = split ' ', $l;
            next unless @f >= 5;
            next unless $f[2] eq "127.0.0.1:$c->{port}" && $f[3] eq "127.0.0.1:$c->{lport}";
            return $1 if $l =~ /pid=(\d+)/;
        }
        last if time > $deadline;
        sleep 0.05;
    }
    die "cannot find the worker owning 127.0.0.1:$c->{port} <- 127.0.0.1:$c->{lport} in ss output\n";
}

# Close politely: close frame 1000, wait (bounded) for the server's close/EOF.
sub _ws_close_quietly {
    my ($c, $secs) = @_;
    eval {
        my $dl = time + $secs;
        _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', 1000)), $dl)
            unless $c->{eof};
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            last if $ev->{type} =~ /^(?:close|eof|timeout|error)$/;
        }
    };
    _close_sock($c->{sock});
}

# The client NAME; it must be of one of the kinds given (default: ws).
sub _client {
    my ($ctx, $name, @kinds) = @_;
    die "missing client name\n" unless defined $name && length $name;
    my $c = $ctx->{clients}{$name};
    die "no open client '$name'\n" unless $c;
    @kinds = ('ws') unless @kinds;
    die "client '$name' is a $c->{kind} client; this command is for "
      . join(' / ', @kinds) . " clients\n" unless grep { $_ eq 'any' || $_ eq $c->{kind} } @kinds;
    die "client '$name' was refused (open_fail); only capture works on it\n"
        if $c->{refused} && !grep { $_ eq 'any' } @kinds;
    return $c;
}

# Replace the client NAME (closing an older one of that name); sets
# ${NAME_lport} to the local port.
sub _set_client {
    my ($ctx, $name, $c) = @_;
    if (my $old = delete $ctx->{clients}{$name}) { _close_sock($old->{sock}, 1) }
    $ctx->{clients}{$name} = $c;
    $ctx->{vars}{"${name}_lport"} = $c->{lport} if defined $c->{lport} && $name =~ /^\w+$/;
    return $c;
}

# C-style escapes of send_esc, send_binary, udp_send, tcp_send and set:
# \r \n \t \\ \xHH; anything else after a backslash is an error.
sub unescape {
    my ($s) = @_;
    $s =~ s{\\(?:([rnt\\])|x([0-9a-fA-F]{2})|(.|\z))}{
        defined $1 ? ($1 eq 'r' ? "\r" : $1 eq 'n' ? "\n" : $1 eq 't' ? "\t" : "\\")
      : defined $2 ? chr hex $2
      : die 'unknown escape ' . _show("\\" . ($3 // '')) . ' (known: \\r \\n \\t \\\\ \\xHH)' . "\n"
    }gse;
    return $s;
}

sub _deadline { time + $_[0]{timeout} }

# Wait for a text message; pings / pongs are skipped.
sub _ws_recv_text { _ws_recv_msg($_[0], $_[1], 'text') }

# Wait for a message of $type (text or binary); pings / pongs are skipped,
# anything else fails.
sub _ws_recv_msg {
    my ($ctx, $c, $type) = @_;
    my $dl = _deadline($ctx);
    my @skipped;
    while (1) {
        my $ev = _ws_next_event($c, $dl);
        if ($ev->{type} eq 'ping' || $ev->{type} eq 'pong') { push @skipped, _ev_str($ev); next }
        if ($ev->{type} eq $type) {
            $c->{last} = $ev->{payload};
            return $ev->{payload};
        }
        my $why = $ev->{type} eq 'timeout'
            ? "no $type message within $ctx->{timeout} s" : "expected a $type message, got " . _ev_str($ev);
        $why .= "\n(skipped: " . join('; ', @skipped) . ')' if @skipped;
        die "$why\n";
    }
}

# "NAME EXPR" of recv_json / skip_json: the client, EXPR compiled, EXPR.
sub _json_args {
    my ($ctx, $args, $cmd) = @_;
    my ($n, $expr) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: $cmd NAME EXPR\n";
    my $c = _client($ctx, $n);
    my $code = eval "package main; no warnings 'uninitialized'; "
                  . "sub { my \$j = shift; local \$_ = \$j; $expr }"
        or die "$cmd: expression does not compile: $@";
    return ($c, $code, $expr);
}

# Whether the text message MSG is JSON and CODE holds for it; dies otherwise.
sub _json_holds {
    my ($code, $msg) = @_;
    my $j = eval { JSON::PP->new->utf8->allow_nonref->decode($msg) };
    die 'received ' . _show($msg, 2000) . "\nwhich is not JSON: $@" unless defined $j || !$@;
    my $ok = eval { $code->($j) };
    die 'received ' . _show($msg, 2000) . "\nexpression died: $@" if $@;
    return $ok;
}

# Arguments of open / open_fail: NAME [PATH] [STATUS (open_fail)] [options].
sub _open_args {
    my ($ctx, $args, $cmd) = @_;
    my @t = split ' ', $args;
    my $name = shift @t;
    my $usage = $cmd eq 'open'
        ? "usage: open NAME [PATH] [other B|same B] [host2] [tls] [sni=NAME] [port=N] "
          . "[host=HOST] [proto=P1,P2]\n"
        : "usage: open_fail NAME PATH STATUS [host2] [tls] [sni=NAME] [port=N] [host=HOST] "
          . "[proto=P1,P2] [body=REGEX]\n";
    die $usage unless defined $name;
    my %o = (path => '/signal.ashx', hs => {});
    while (@t) {
        my $x = shift @t;
        if ($x eq 'other' || $x eq 'same') {
            $o{rel} = $x;
            $o{relname} = shift @t // die "$cmd: '$x' needs a client name\n";
        }
        elsif ($x eq 'host2')             { $o{host2} = 1 }
        elsif ($x eq 'tls')               { $o{hs}{tls} = 1 }
        elsif ($x =~ m{^/})               { $o{path} = $x }
        elsif ($x =~ /^sni=(\S*)$/)       { $o{hs}{tls} = 1; $o{hs}{sni} = $1 if length $1 }
        elsif ($x =~ /^port=(\d+)$/)      { $o{port} = $1 }
        elsif ($x =~ /^host=(\S+)$/)      { $o{hs}{host} = $1 }
        elsif ($x =~ /^proto=(\S+)$/)     {
            my @p = split /,/, $1;
            die "$cmd: empty subprotocol in '$x'\n" if grep { !length } @p or !@p;
            $o{hs}{protos} = \@p;
        }
        elsif ($cmd eq 'open_fail' && $x =~ /^(\d{3})$/ && !defined $o{status}) { $o{status} = $1 }
        elsif ($cmd eq 'open_fail' && $x =~ /^body=(.+)$/) { $o{body_re} = $1 }
        else { die "$cmd: unexpected argument '$x'\n$usage" }
    }
    die "open_fail: a STATUS (3 digits) is required\n$usage"
        if $cmd eq 'open_fail' && !defined $o{status};
    die "open_fail: STATUS 101 is an accepted handshake; use open\n"
        if $cmd eq 'open_fail' && $o{status} eq '101';
    unless (defined $o{port}) {
        my $inst = $Inst[$o{host2} ? 2 : 1];
        die "$cmd: instance " . ($o{host2} ? 2 : 1) . " is not running (--- hosts 2?)\n"
            unless $inst && _running($inst);
        $o{port} = $o{hs}{tls} ? $inst->{tls_port} : $inst->{port};
    }
    return ($name, \%o);
}

my %WS_CMD;

%WS_CMD = (
    open => sub {
        my ($ctx, $args) = @_;
        my ($name, $o) = _open_args($ctx, $args, 'open');
        my $other_pid;
        if ($o->{rel}) {
            $other_pid = _client($ctx, $o->{relname})->{pid}
                // die "open: client $o->{relname} has no known worker pid\n";
        }
        if (my $old = delete $ctx->{clients}{$name}) { _close_sock($old->{sock}, 1) }
        my @seen;
        my $rel = $o->{rel};
        for my $try (1 .. ($rel ? 40 : 1)) {
            my $c = _ws_handshake($name, $o->{port}, $o->{path}, $ctx->{timeout}, %{$o->{hs}});
            $c->{pid} = _owner_pid($c, $ctx->{timeout});
            if (!$rel || ($rel eq 'other' ? $c->{pid} != $other_pid : $c->{pid} == $other_pid)) {
                _set_client($ctx, $name, $c);
                return "worker pid $c->{pid}, local port $c->{lport}"
                     . (defined $c->{proto} ? ", subprotocol $c->{proto}" : '')
                     . (defined $c->{tls_cert} ? ", certificate $c->{tls_cert}" : '');
            }
            push @seen, $c->{pid};
            _ws_close_quietly($c, 1);
        }
        die "open: no connection on a worker $rel than/as $o->{relname}'s (pid $other_pid) "
          . "in 40 tries (got pids @seen)\n";
        return;
    },
    open_fail => sub {
        my ($ctx, $args) = @_;
        my ($name, $o) = _open_args($ctx, $args, 'open_fail');
        die "open_fail: other / same make no sense here\n" if $o->{rel};
        my ($c, $res) = _ws_handshake($name, $o->{port}, $o->{path}, $ctx->{timeout},
                                      %{$o->{hs}}, refused => 1);
        $c->{refused} = 1;
        $c->{last} = $res->{body};
        _set_client($ctx, $name, $c);
        my $st = $res->{status} // '(none)';
        my $head = $res->{raw_headers} // '';
        die "open_fail: $res->{error}\n$head\n" if $res->{error};
        die "the handshake was accepted (101), expected status $o->{status}\n$head\n"
            if $st eq '101';
        die "expected status $o->{status}, got $st\n$head\n\n" . _show($res->{body}, 1000) . "\n"
            if $st ne $o->{status};
        my $ct = _header_value($res, 'Content-Type');
        if (is_json_content_type($ct) && !_bodiless($res)) {    # as for every HTTP response
            my $err = json_body_error($res->{status}, $res->{body});
            die "JSON body: $err\n$head\n\n" . _show($res->{body}, 1000) . "\n" if defined $err;
        }
        if (defined $o->{body_re}) {
            my $qr = eval { qr/$o->{body_re}/ } or die "bad regex: $@";
            die 'body ' . _show($res->{body}, 1000) . " does not match qr/$o->{body_re}/\n"
                unless $res->{body} =~ $qr;
        }
        return "status $st, body " . _show($res->{body});
    },
    send => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send NAME TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => 1, payload => $text // ''), _deadline($ctx));
        return;
    },
    send_frames => sub {
        my ($ctx, $args) = @_;
        my ($n, $op, $fin, $text) = $args =~ /^(\S+)\s+(?:0x)?([0-9a-fA-F]+)\s+([01])(?: (.*))?$/s
            or die "usage: send_frames NAME OPCODE-HEX FIN TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => hex $op, fin => $fin, payload => $text // ''),
                  _deadline($ctx));
        return;
    },
    send_unmasked => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send_unmasked NAME TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => 1, mask => 0, payload => $text // ''),
                  _deadline($ctx));
        return;
    },
    send_raw => sub {
        my ($ctx, $args) = @_;
        my ($n, $hex) = $args =~ /^(\S+)\s+(.*)$/s or die "usage: send_raw NAME HEX\n";
        $hex =~ s/\s+//g;
        die "send_raw: not an even-length hex string\n" unless $hex =~ /^(?:[0-9a-fA-F]{2})+$/;
        _ws_write(_client($ctx, $n), pack('H*', $hex), _deadline($ctx));
        return;
    },
    send_big => sub {
        my ($ctx, $args) = @_;
        my ($n, $size, $op) = $args =~ /^(\S+)\s+(\d+)(?:\s+(?:0x)?([0-9a-fA-F]+))?\s*$/
            or die "usage: send_big NAME BYTES [OPCODE-HEX]\n";
        my $c = _client($ctx, $n);
        my ($pre, $post) = ('{"type":"ping","pad":"', '"}');
        my $p = $size >= length($pre) + length($post)
            ? $pre . ('x' x ($size - length($pre) - length($post))) . $post
            : 'x' x $size;
        _ws_write($c, ws_encode_frame(opcode => defined $op ? hex $op : 1, payload => $p),
                  _deadline($ctx));
        return "sent $size bytes";
        return;
    },
    send_close => sub {
        my ($ctx, $args) = @_;
        my ($n, $code, $reason) = $args =~ /^(\S+)\s+(\d+)(?: (.*))?$/s
            or die "usage: send_close NAME CODE [REASON]\n";
        _ws_write(_client($ctx, $n),
                  ws_encode_frame(opcode => 8, payload => pack('n', $code) . ($reason // '')),
                  _deadline($ctx));
        return;
    },
    ping => sub {
        my ($ctx, $args) = @_;
        my ($n, $p) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: ping NAME [PAYLOAD]\n";
        _ws_write(_client($ctx, $n), ws_encode_frame(opcode => 9, payload => $p // ''),
                  _deadline($ctx));
        return;
    },
    expect_pong => sub {
        my ($ctx, $args) = @_;
        my ($n, $p) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: expect_pong NAME [PAYLOAD]\n";
        $p //= '';
        my $c = _client($ctx, $n);
        my $dl = _deadline($ctx);
        my @keep;
        my $res = eval {
            while (1) {
                my $ev = _ws_next_event($c, $dl);
                if ($ev->{type} eq 'text' || $ev->{type} eq 'binary') { push @keep, $ev; next }
                next if $ev->{type} eq 'ping';
                die 'expected a pong, got ' . _ev_str($ev) . "\n" unless $ev->{type} eq 'pong';
                die 'pong payload is ' . _show($ev->{payload}) . ', expected ' . _show($p) . "\n"
                    unless $ev->{payload} eq $p;
                last;
            }
            1;
        };
        unshift @{$c->{pending}}, @keep;
        die $@ unless $res;
        return;
    },
    recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: recv NAME REGEX\n";
        my $c = _client($ctx, $n);
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $msg = _ws_recv_text($ctx, $c);
        die 'received ' . _show($msg, 2000) . "\ndoes not match qr/$re/\n" unless $msg =~ $qr;
        return 'received ' . _show($msg);
        return;
    },
    recv_json => sub {
        my ($ctx, $args) = @_;
        my ($c, $code, $expr) = _json_args($ctx, $args, 'recv_json');
        my $msg = _ws_recv_text($ctx, $c);
        die 'received ' . _show($msg, 2000) . "\nexpression is false: $expr\n"
            unless _json_holds($code, $msg);
        return 'received ' . _show($msg);
    },
    skip_json => sub {
        my ($ctx, $args) = @_;
        my ($c, $code, $expr) = _json_args($ctx, $args, 'skip_json');
        my $n = 0;
        while (1) {
            my $msg = _ws_recv_text($ctx, $c);
            if (!_json_holds($code, $msg)) {
                unshift @{$c->{pending}}, { type => 'text', payload => $msg };
                return "skipped $n";
            }
            $n++;
        }
    },
    capture => sub {
        my ($ctx, $args) = @_;
        my ($n, $var, $re) = $args =~ /^(\S+)\s+(\w+)\s+(.*?)\s*$/s
            or die "usage: capture NAME VAR REGEX\n";
        my $c = _client($ctx, $n, 'any');
        die "capture: client $n has received no message yet\n" unless defined $c->{last};
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        die 'last message ' . _show($c->{last}, 2000) . " does not match qr/$re/\n"
            unless $c->{last} =~ $qr;
        die "capture: qr/$re/ matched but group 1 is undefined\n" unless defined $1;
        $ctx->{vars}{$var} = $1;
        return "$var = $1";
        return;
    },
    no_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $ms) = $args =~ /^(\S+)\s+(\d+)\s*$/ or die "usage: no_recv NAME MS\n";
        my $c = _client($ctx, $n);
        my $dl = time + $ms / 1000;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            return if $ev->{type} eq 'timeout';
            next if $ev->{type} eq 'ping' || $ev->{type} eq 'pong';
            unshift @{$c->{pending}}, $ev if $ev->{type} =~ /^(?:close|eof)$/;
            die 'received ' . _ev_str($ev) . "\n";
        }
        return;
    },
    expect_close => sub {
        my ($ctx, $args) = @_;
        my ($n, $want) = $args =~ /^(\S+)(?:\s+(\d+))?\s*$/ or die "usage: expect_close NAME [CODE]\n";
        my $c = _client($ctx, $n);
        my $dl = _deadline($ctx);
        my @seen;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            if ($ev->{type} =~ /^(?:text|binary|ping|pong)$/) { push @seen, _ev_str($ev); next }
            my $before = @seen ? "\n(before it: " . join('; ', @seen) . ')' : '';
            die 'expected a close frame, got ' . _ev_str($ev) . "$before\n" unless $ev->{type} eq 'close';
            my $code = $ev->{code} // 1005;
            die 'got ' . _ev_str($ev) . ", expected code $want$before\n"
                if defined $want && $code != $want;
            eval { _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', $code == 1005 ? 1000 : $code)), $dl) };
            while (1) {
                my $e2 = _ws_next_event($c, $dl);
                last if $e2->{type} eq 'eof';
                die "close frame $code received, but the server did not close the TCP connection "
                  . "within $ctx->{timeout} s\n" if $e2->{type} eq 'timeout';
                die 'frame after the close frame: ' . _ev_str($e2) . "\n";
            }
            return "close code $code" . (length $ev->{reason} ? " '$ev->{reason}'" : '');
        }
        return;
    },
    expect_eof => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: expect_eof NAME\n";
        my $c = _client($ctx, $n, 'ws', 'tcp');
        return _tcp_expect_eof($ctx, $c) if $c->{kind} eq 'tcp';
        my $dl = _deadline($ctx);
        my @seen;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            return @seen ? 'ignored: ' . join('; ', @seen) : undef if $ev->{type} eq 'eof';
            die "the server did not close the TCP connection within $ctx->{timeout} s"
              . (@seen ? ' (got: ' . join('; ', @seen) . ')' : '') . "\n" if $ev->{type} eq 'timeout';
            push @seen, _ev_str($ev);
        }
        return;
    },
    expect_ping => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: expect_ping NAME\n";
        my $ev = _ws_next_event(_client($ctx, $n), _deadline($ctx));
        die 'expected a ping, got ' . _ev_str($ev) . "\n" unless $ev->{type} eq 'ping';
        return _ev_str($ev);
        return;
    },
    autopong => sub {
        my ($ctx, $args) = @_;
        my ($n, $v) = $args =~ /^(\S+)\s+(on|off)\s*$/ or die "usage: autopong NAME on|off\n";
        _client($ctx, $n)->{autopong} = $v eq 'on' ? 1 : 0;
        return;
    },
    close => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: close NAME\n";
        my $c = _client($ctx, $n, 'any');
        delete $ctx->{clients}{$n};
        if ($c->{kind} ne 'ws' || $c->{refused}) { _close_sock($c->{sock}); return }
        my $dl = _deadline($ctx);
        my $res = eval {
            _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', 1000)), $dl)
                unless $c->{eof};
            while (1) {
                my $ev = _ws_next_event($c, $dl);
                next if $ev->{type} =~ /^(?:text|binary|ping|pong)$/;
                die "no close frame or EOF from the server within $ctx->{timeout} s\n"
                    if $ev->{type} eq 'timeout';
                die _ev_str($ev) . "\n" if $ev->{type} eq 'error';
                last;
            }
            1;
        };
        _close_sock($c->{sock});
        die $@ unless $res;
        return;
    },
    drop => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: drop NAME\n";
        my $c = _client($ctx, $n, 'any');
        delete $ctx->{clients}{$n};
        _close_sock($c->{sock}, 1);
        return;
    },
    sleep => sub {
        my ($ctx, $args) = @_;
        my ($ms) = $args =~ /^(\d+)\s*$/ or die "usage: sleep MS\n";
        sleep $ms / 1000;
        return;
    },
    redis_restart => sub {
        die "redis_restart: the harness's redis-server is not running\n" unless $Redis{running};
        _redis_stop();
        my $err = _redis_start();
        die "$err\n" if $err;
        return;
    },
    redis_stop => sub {
        die "redis_stop: the harness's redis-server is not running\n" unless $Redis{running};
        _redis_stop();
        return;
    },
    redis_start => sub {
        die "redis_start: the harness's redis-server is running\n" if $Redis{running};
        my $err = _redis_start();
        die "$err\n" if $err;
        return;
    },
    redis => sub {
        my ($ctx, $args) = @_;
        my ($re, @cmd) = split ' ', $args;
        die "usage: redis REGEX COMMAND [ARGS...]\n" unless @cmd;
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $v = _redis_stringify(redis_cmd(@cmd));
        die 'reply ' . _show($v, 2000) . " does not match qr/$re/\n" unless $v =~ $qr;
        return 'reply ' . _show($v);
        return;
    },
    shell => sub {
        my ($ctx, $args) = @_;
        die "usage: shell COMMAND\n" unless $args =~ /\S/;
        my ($rc, $out) = _run_cmd(['/bin/sh', '-c', $args], $ctx->{timeout});
        die "timed out after $ctx->{timeout} s\n$out" if $rc == -1;
        die 'exit status ' . ($rc >> 8) . ($rc & 127 ? ' (signal ' . ($rc & 127) . ')' : '')
          . "\n$out" if $rc != 0;
        return length $out ? 'output: ' . _show($out) : undef;
        return;
    },
    reload => sub {
        my ($ctx) = @_;
        my $inst = $Inst[1];
        die "reload: nginx is not running\n" unless _running($inst);
        my $pid = $inst->{pid};
        my %old = map { $_ => 1 } _children($pid);
        kill 'HUP', $pid or die "reload: kill HUP $pid failed: $!\n";
        my $dl = time + ($ctx->{timeout} > 5 ? $ctx->{timeout} : 5);
        my @new;
        while (time < $dl) {
            @new = grep { !$old{$_} } _children($pid);
            return "new workers @new" if @new >= $ctx->{workers};
            sleep 0.05;
        }
        die "reload: only " . @new . " new worker(s) (@new) after the HUP, want $ctx->{workers}\n";
        return;
    },
    worker_alive => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: worker_alive NAME\n";
        my $c = _client($ctx, $n);
        die "client $n has no recorded worker pid\n" unless $c->{pid};
        die "worker $c->{pid} of client $n is gone\n" unless _alive($c->{pid});
        return "worker $c->{pid} alive";
        return;
    },

    # --- escapes, binary messages, TLS, variables
    send_esc => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send_esc NAME TEXT\n";
        my $c = _client($ctx, $n);
        my $p = unescape($text // '');
        _ws_write($c, ws_encode_frame(opcode => 1, payload => $p), _deadline($ctx));
        return 'sent ' . _show($p);
    },
    send_binary => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send_binary NAME TEXT\n";
        my $c = _client($ctx, $n);
        my $p = unescape($text // '');
        _ws_write($c, ws_encode_frame(opcode => 2, payload => $p), _deadline($ctx));
        return 'sent ' . _show($p);
    },
    skip_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: skip_recv NAME REGEX\n";
        my $c = _client($ctx, $n);
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $k = 0;
        while (1) {
            my $msg = _ws_recv_text($ctx, $c);
            if ($msg !~ $qr) {
                unshift @{$c->{pending}}, { type => 'text', payload => $msg };
                return "skipped $k";
            }
            $k++;
        }
    },
    recv_binary => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: recv_binary NAME REGEX\n";
        my $c = _client($ctx, $n);
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $msg = _ws_recv_msg($ctx, $c, 'binary');
        die 'received ' . _show($msg, 2000) . "\ndoes not match qr/$re/\n" unless $msg =~ $qr;
        return 'received ' . _show($msg);
    },
    tls_cert => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: tls_cert NAME REGEX\n";
        my $c = _client($ctx, $n, 'ws', 'tcp');
        die "client $n is not a TLS connection\n" unless defined $c->{tls_cert};
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        die "certificate '$c->{tls_cert}' does not match qr/$re/\n" unless $c->{tls_cert} =~ $qr;
        return $c->{tls_cert};
    },
    make_cert => sub {
        my ($ctx, $args) = @_;
        my ($name, $dir) = $args =~ /^(\S+)(?:\s+(\S+))?\s*$/ or die "usage: make_cert NAME [DIR]\n";
        my ($crt) = make_cert($name, $dir);
        return "made $crt";
    },
    set => sub {
        my ($ctx, $args, $doc) = @_;
        my ($var, $v) = _set_args($args, $doc, 'set');
        $ctx->{vars}{$var} = $v;
        return "$var = " . _show($v);
    },
    set_sip => sub {
        my ($ctx, $args, $doc) = @_;
        my ($var, $v) = _set_args($args, $doc, 'set_sip');
        $ctx->{vars}{$var} = sip_message($v);
        return "$var = " . _show($ctx->{vars}{$var});
    },
    set_eval => sub {
        my ($ctx, $args) = @_;
        my ($var, $code) = $args =~ /^(\w+)\s+(.+)$/s or die "usage: set_eval VAR PERL\n";
        my $v = eval "package main;\n#line 1 \"set_eval\"\n$code";
        die "set_eval: $@" if $@;
        die "set_eval: the expression is undef\n" unless defined $v;
        $ctx->{vars}{$var} = $v;
        return "$var = " . _show($v);
    },

    # --- raw UDP
    udp => sub {
        my ($ctx, $args) = @_;
        my ($n, $port, @opt) = split ' ', $args;
        die "usage: udp NAME PORT [bind=LOCALPORT]\n" unless defined $port && $port =~ /^\d+$/;
        my $bind = 0;
        for (@opt) { /^bind=(\d+)$/ ? ($bind = $1) : die "udp: unexpected argument '$_'\n" }
        my $s = IO::Socket::INET->new(Proto => 'udp', LocalAddr => '127.0.0.1', LocalPort => $bind)
            or die "udp: cannot bind 127.0.0.1:$bind: " . ($@ || $!) . "\n";
        $s->blocking(0);
        binmode $s;
        _set_client($ctx, $n, { kind => 'udp', name => $n, sock => $s, dport => $port,
                                lport => $s->sockport, last => undef, from => undef });
        return 'local port ' . $s->sockport;
    },
    udp_send => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: udp_send NAME TEXT\n";
        my $c = _client($ctx, $n, 'udp');
        die "udp_send: client $n has no destination port (udp $n 0)\n" unless $c->{dport};
        return _udp_send($c, '127.0.0.1', $c->{dport}, unescape($text // ''));
    },
    udp_reply => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: udp_reply NAME TEXT\n";
        my $c = _client($ctx, $n, 'udp');
        die "udp_reply: client $n has received no datagram yet\n" unless $c->{from};
        return _udp_send($c, @{$c->{from}}, unescape($text // ''));
    },
    udp_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: udp_recv NAME REGEX\n";
        my $c = _client($ctx, $n, 'udp');
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $d = _udp_recv($c, _deadline($ctx));
        die "no datagram within $ctx->{timeout} s\n" unless defined $d;
        die 'received ' . _show($d, 2000) . "\ndoes not match qr/$re/\n" unless $d =~ $qr;
        return 'received ' . _show($d) . " from $c->{from}[0]:$c->{from}[1]";
    },
    udp_wait => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: udp_wait NAME REGEX\n";
        my $c = _client($ctx, $n, 'udp');
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $deadline = _deadline($ctx);
        my @skipped;
        for (;;) {
            my $d = _udp_recv($c, $deadline);
            die "no datagram matching qr/$re/ within $ctx->{timeout} s"
                . (@skipped ? '; skipped ' . join(', ', @skipped) : '') . "\n"
                unless defined $d;
            return 'received ' . _show($d) . " from $c->{from}[0]:$c->{from}[1]"
                . (@skipped ? ' after skipping ' . join(', ', @skipped) : '')
                if $d =~ $qr;
            push @skipped, _show($d, 60);
        }
    },
    udp_no_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $ms) = $args =~ /^(\S+)\s+(\d+)\s*$/ or die "usage: udp_no_recv NAME MS\n";
        my $c = _client($ctx, $n, 'udp');
        my $d = _udp_recv($c, time + $ms / 1000);
        die 'received ' . _show($d, 2000) . " from $c->{from}[0]:$c->{from}[1]\n" if defined $d;
        return;
    },

    # --- raw TCP (optionally TLS)
    tcp => sub {
        my ($ctx, $args) = @_;
        my ($n, $port, @opt) = split ' ', $args;
        die "usage: tcp NAME PORT [tls] [sni=NAME]\n" unless defined $port && $port =~ /^\d+$/;
        my %o;
        for (@opt) {
            if    ($_ eq 'tls')         { $o{tls} = 1 }
            elsif (/^sni=(\S*)$/)       { $o{tls} = 1; $o{sni} = $1 if length $1 }
            else                        { die "tcp: unexpected argument '$_'\n" }
        }
        my $s = _tcp_connect($port, $ctx->{timeout}, %o);
        my $c = _tcp_new_client($n, $s, $port);
        _set_client($ctx, $n, $c);
        return "local port $c->{lport}" . (defined $c->{tls_cert} ? ", certificate $c->{tls_cert}" : '');
    },
    tcp_listen => sub {
        my ($ctx, $args) = @_;
        my ($n, $port) = $args =~ /^(\S+)\s+(\d+)\s*$/ or die "usage: tcp_listen NAME PORT\n";
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 16,
                                      ReuseAddr => 1)
            or die "tcp_listen: cannot listen on 127.0.0.1:$port: " . ($@ || $!) . "\n";
        _set_client($ctx, $n, { kind => 'listen', name => $n, sock => $s, lport => $s->sockport });
        return 'listening on port ' . $s->sockport;
    },
    tcp_accept => sub {
        my ($ctx, $args) = @_;
        my ($l, $n) = $args =~ /^(\S+)\s+(\S+)\s*$/ or die "usage: tcp_accept LISTENER NAME\n";
        my $lc = _client($ctx, $l, 'listen');
        IO::Select->new($lc->{sock})->can_read($ctx->{timeout})
            or die "no connection to port $lc->{lport} within $ctx->{timeout} s\n";
        my $s = $lc->{sock}->accept or die "accept failed: $!\n";
        $s->blocking(0);
        binmode $s;
        my $c = _tcp_new_client($n, $s, $s->peerport);
        _set_client($ctx, $n, $c);
        return "connection from port " . $s->peerport;
    },
    tcp_send => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: tcp_send NAME TEXT\n";
        my $c = _client($ctx, $n, 'tcp');
        my $d = _bytes(unescape($text // ''));
        my $err = _write_all($c->{sock}, $d, _deadline($ctx));
        die "client $n: $err\n" if $err;
        return 'sent ' . _show($d);
    },
    tcp_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: tcp_recv NAME REGEX\n";
        my $c = _client($ctx, $n, 'tcp');
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $dl = _deadline($ctx);
        while (1) {
            if ($c->{buf} =~ $qr) {
                my $msg = substr($c->{buf}, 0, $+[0], '');
                $c->{last} = $msg;
                return 'received ' . _show($msg);
            }
            _tcp_more($ctx, $c, $dl, "nothing matching qr/$re/");
        }
    },
    tcp_recv_sip => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: tcp_recv_sip NAME REGEX\n";
        my $c = _client($ctx, $n, 'tcp');
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $dl = _deadline($ctx);
        while (1) {
            $c->{buf} =~ s/^(?:\r\n)+//;    # keep-alive CRLFs (RFC 5626)
            my $i = index($c->{buf}, "\r\n\r\n");
            if ($i >= 0) {
                my $head = substr($c->{buf}, 0, $i + 4);
                my ($len) = $head =~ /^(?:Content-Length|l)[ \t]*:[ \t]*(\d+)[ \t]*\r?$/mi;
                die "SIP message without Content-Length (required on TCP, RFC 3261 18.3):\n"
                  . _show($head, 2000) . "\n" unless defined $len;
                if (length($c->{buf}) >= $i + 4 + $len) {
                    my $msg = substr($c->{buf}, 0, $i + 4 + $len, '');
                    $c->{last} = $msg;
                    die 'received ' . _show($msg, 2000) . "\ndoes not match qr/$re/\n"
                        unless $msg =~ $qr;
                    return 'received ' . _show($msg);
                }
            }
            _tcp_more($ctx, $c, $dl, 'no complete SIP message');
        }
    },
    tcp_no_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $ms) = $args =~ /^(\S+)\s+(\d+)\s*$/ or die "usage: tcp_no_recv NAME MS\n";
        my $c = _client($ctx, $n, 'tcp');
        die 'unread bytes from before: ' . _show($c->{buf}, 2000) . "\n" if length $c->{buf};
        die "the connection is already closed\n" if $c->{eof};
        my $r = _read_into($c->{sock}, \$c->{buf}, time + $ms / 1000);
        return unless defined $r;
        if ($r == 0) { $c->{eof} = 1; die "the server closed the connection\n" }
        die 'received ' . _show($c->{buf}, 2000) . "\n";
    },
);

# Arguments of set / set_sip: "VAR TEXT" or "VAR <<END" with a here-document
# (lines ending in CRLF). Escapes are applied to either.
sub _set_args {
    my ($args, $doc, $cmd) = @_;
    if (defined $doc) {
        my ($var) = $args =~ /^(\w+)\s+<<\w+\s*$/ or die "usage: $cmd VAR <<END\n";
        return ($var, unescape(join '', map { "$_\r\n" } @$doc));
    }
    my ($var, $text) = $args =~ /^(\w+)(?: (.*))?$/s or die "usage: $cmd VAR TEXT\n";
    return ($var, unescape($text // ''));
}

=head2 sip_message($text)

Returns C<$text> as a SIP message with a correct C<Content-Length>: the
header part (up to the first empty line; all of it when there is none) gets
its C<Content-Length> (or compact C<l>) header set to the byte length of
the body, or one appended, and ends in an empty line. Line ends are not
changed (write CRLF). Used by C<set_sip>.

=cut

sub sip_message {
    my ($m) = @_;
    $m = _bytes($m);
    my ($head, $body);
    my $i = index($m, "\r\n\r\n");
    if ($i < 0) { ($head, $body) = ($m =~ s/(?:\r\n)+\z//r, '') }
    else        { ($head, $body) = (substr($m, 0, $i), substr($m, $i + 4)) }
    my $len = length $body;
    $head .= "\r\nContent-Length: $len"
        unless $head =~ s/^(Content-Length|l)[ \t]*:[^\r\n]*/$1: $len/mi;
    return "$head\r\n\r\n$body";
}

sub _udp_send {
    my ($c, $addr, $port, $d) = @_;
    $d = _bytes($d);
    my $n = send($c->{sock}, $d, 0, sockaddr_in($port, inet_aton($addr)));
    die "udp send to $addr:$port failed: $!\n" unless defined $n;
    die "udp send to $addr:$port: only $n of " . length($d) . " bytes sent\n" if $n != length $d;
    return "sent " . _show($d) . " to $addr:$port";
}

# One datagram before $deadline (its sender becomes $c->{from}), or undef.
sub _udp_recv {
    my ($c, $deadline) = @_;
    my $sel = IO::Select->new($c->{sock});
    while (1) {
        my $from = recv($c->{sock}, my $d, 65536, 0);
        if (defined $from) {
            my ($port, $ip) = unpack_sockaddr_in($from);
            $c->{from} = [inet_ntoa($ip), $port];
            $c->{last} = $d;
            return $d;
        }
        die "udp receive failed: $!\n" unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my $left = $deadline - time;
        return undef if $left <= 0;
        $sel->can_read($left);
    }
}

sub _tcp_new_client {
    my ($n, $s, $port) = @_;
    return { kind => 'tcp', name => $n, sock => $s, buf => '', eof => 0, last => undef,
             port => $port, lport => $s->sockport, tls_cert => _tls_cert_summary($s) };
}

# Read more into a tcp client's buffer; dies on timeout / EOF saying what
# was being waited for.
sub _tcp_more {
    my ($ctx, $c, $dl, $what) = @_;
    my $got = length $c->{buf} ? 'received so far: ' . _show($c->{buf}, 2000) : 'nothing received';
    die "$what, and the connection is closed; $got\n" if $c->{eof};
    my $r = _read_into($c->{sock}, \$c->{buf}, $dl);
    die "$what within $ctx->{timeout} s; $got\n" unless defined $r;
    $c->{eof} = 1 if $r == 0;
}

sub _tcp_expect_eof {
    my ($ctx, $c) = @_;
    my $dl = _deadline($ctx);
    until ($c->{eof}) {
        my $r = _read_into($c->{sock}, \$c->{buf}, $dl);
        die "the server did not close the connection within $ctx->{timeout} s"
          . (length $c->{buf} ? '; unread: ' . _show($c->{buf}, 2000) : '') . "\n" unless defined $r;
        $c->{eof} = 1 if $r == 0;
    }
    my $ignored = length $c->{buf} ? 'ignored: ' . _show($c->{buf}) : undef;
    $c->{buf} = '';
    return $ignored;
}

=head2 ws_run_script($test_name, $script, %opts)

Runs a C<--- ws> script (a string, or an array reference of commands as
from C<--- ws eval>), one assertion per command. Options: C<timeout>
(seconds, default 5), C<workers> (for C<reload>, default 2), C<clients>
(hash of pre-made clients), C<vars> (hash of initial C<${var}> values).
Returns the context hash; its C<clients> are still open.

=head2 ws_context(%opts), ws_try($ctx, $command)

For the harness's self-test: C<ws_context> makes a context as
C<ws_run_script> does (same options); C<ws_try> runs one command line in
it without emitting TAP and returns C<(1, detail)> or C<(0, error)>.

=cut

sub ws_context {
    my (%o) = @_;
    return { timeout => $o{timeout} // 5, workers => $o{workers} // 2,
             clients => $o{clients} // {}, vars => { %{$o{vars} // {}} } };
}

# Split a script into commands: [line number, command line, here-document
# lines or undef]. An array reference holds one command per element.
sub _ws_parse {
    my ($script) = @_;
    if (ref $script eq 'ARRAY') {
        my $i = 0;
        return map { $i++; defined $_ && /\S/ ? [$i, s/^\s+//r, undef] : () } @$script;
    }
    my @lines = split /\n/, $script // '';
    my @cmds;
    for (my $i = 0; $i < @lines; $i++) {
        my $line = $lines[$i] =~ s/\r$//r;
        next if $line =~ /^\s*(?:#|$)/;
        $line =~ s/^\s+//;
        my @cmd = ($i + 1, $line, undef);
        if ($line =~ /^(?:set|set_sip)\s+\w+\s+<<(\w+)\s*$/) {
            my $end = $1;
            my @doc;
            my $j = $i + 1;
            push @doc, $lines[$j++] =~ s/\r$//r while $j < @lines && $lines[$j] !~ /^\s*\Q$end\E\s*$/;
            # a missing terminator fails the command
            $cmd[2] = $j < @lines ? \@doc : "here-document without its terminating '$end' line";
            $i = $j;
        }
        push @cmds, \@cmd;
    }
    return @cmds;
}

sub _ws_subst_vars {
    my ($ctx, $t) = @_;
    $t =~ s/\$\{(\w+)\}/
        defined $ctx->{vars}{$1} ? $ctx->{vars}{$1} : die "undefined variable \${$1}\n"/ge;
    return $t;
}

sub _ws_exec {
    my ($ctx, $line, $doc) = @_;
    die "$doc\n" if defined $doc && !ref $doc;
    my $l = _ws_subst_vars($ctx, $line);
    $doc = [map { _ws_subst_vars($ctx, $_) } @$doc] if $doc;
    my ($cmd, $args) = $l =~ /^(\S+)(?:[ \t](.*))?$/s;
    my $h = $WS_CMD{$cmd} or die "unknown ws command '$cmd'\n";
    die "$cmd: a here-document works only in the text form of a script\n"
        if !$doc && $cmd =~ /^set(?:_sip)?$/ && ($args // '') =~ /^\w+\s+<<\w+\s*$/;
    return $h->($ctx, $args // '', $doc);
}

sub ws_try {
    my ($ctx, $line) = @_;
    my ($cmd) = _ws_parse($line);
    my $detail;
    return eval { $detail = _ws_exec($ctx, $cmd->[1], $cmd->[2]); 1 } ? (1, $detail)
                                                                      : (0, $@ =~ s/\n\z//r);
}

sub ws_run_script {
    my ($tname, $script, %o) = @_;
    my $ctx = ws_context(%o);
    my $failed_at;
    for my $cmd (_ws_parse($script)) {
        my ($lineno, $line, $doc) = @$cmd;
        my $label = "$tname - ws line $lineno: " . _show($line, 120);
        if (defined $failed_at) {
            Test::Builder->new->skip("after the failure at ws line $failed_at", $label);
            next;
        }
        my $detail;
        my $ok = eval { $detail = _ws_exec($ctx, $line, $doc); 1 };
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        if ($ok) {
            pass($label);
            Test::More::note($detail) if defined $detail && !ref $detail && length $detail
                                          && $ENV{TEST_VERBOSE};
        }
        else {
            fail($label);
            diag($@ =~ s/\n\z//r);
            $failed_at = $lineno;
        }
    }
    return $ctx;
}

# ---------------------------------------------------------------------------
# Running blocks

sub _values {
    my ($block, $sec) = @_;
    return () unless exists $block->{$sec};
    my @v = @{$block->{$sec}};
    return map { ref $_ eq 'ARRAY' ? @$_ : $_ } @v;
}

sub _one {
    my ($block, $sec) = @_;
    return undef unless exists $block->{$sec};
    return $block->{$sec}[0];
}

sub _patterns {
    my ($block, $sec) = @_;
    return map {
        ref $_ ? $_ : grep { length } map { s/\r$//r } split /\n/, $_
    } grep { defined } _values($block, $sec);
}

sub _num_section {
    my ($block, $sec, $default, $re) = @_;
    my $v = _one($block, $sec);
    return $default unless defined $v;
    $v =~ s/^\s+|\s+$//g;
    die "--- $sec: invalid value '$v'\n" unless $v =~ $re;
    return $v;
}

sub run_tests {
    # Tell Test::Base a plan is handled (its END would otherwise run
    # run_compare()); done_testing() provides the plan.
    Test::Builder->new->plan();
    _init();
    &Test::Base::filters_delay(1);    # run each block's filters inside its own eval
    my @blocks = Test::Base::blocks();
    my $last_name;
    for my $block (@blocks) {
        my $name = $block->name // ('block ' . $block->seq_num);
        my $ok = eval {
            $block->run_filters unless $block->is_filtered;
            _run_block($block, $name);
            1;
        };
        unless ($ok) {
            fail("$name - harness");
            diag($@ =~ s/\n\z//r);
        }
        $last_name = $name;
    }
    for my $inst (@Inst[1, 2]) {
        _stop_instance($inst, "end of file, after $last_name") if $inst->{pid};
    }
    _redis_stop();
}

sub _run_block {
    my ($block, $name) = @_;

    my @unknown = grep { !$KNOWN_SECTIONS{$_} } @{$block->{_section_order}[0] || []};
    die "unknown section(s): " . join(', ', map { "--- $_" } @unknown) . "\n" if @unknown;

    my $timeout = _num_section($block, 'timeout', 5, qr/^\d+(?:\.\d+)?$/);
    my $wait    = _num_section($block, 'wait', 0, qr/^\d+(?:\.\d+)?$/);
    my %b = (
        workers => _num_section($block, 'workers', 2, qr/^[1-9]\d*$/),
        hosts   => _num_section($block, 'hosts', 1, qr/^[12]$/),
        has_stream => exists $block->{stream_config},
        # substituted per instance by _gen_conf
        map { $_ => _one($block, $_) // '' } qw(main_config http_config config stream_config),
    );

    # Redis: for the modules, or for blocks asking for it.
    if ($S{want_redis} || exists $block->{redis}) {
        $S{want_redis} = 1;
        my $err = _redis_start();
        die "$err\n" if $err;
    }

    # nginx: stop what is not wanted or has another configuration, mark the
    # log windows, start what is missing.
    my (@start, %conf);
    for my $n (1, 2) {
        my $inst = $Inst[$n];
        if ($n > $b{hosts}) {
            _stop_instance($inst, "not needed by $name") if $inst->{pid};
            next;
        }
        _setup_servroot($inst) unless $inst->{setup};
        $conf{$n} = _gen_conf($inst, \%b);
        if ($inst->{pid} && !_alive($inst->{pid})) {
            _stop_instance($inst, "master process died before $name");
        }
        if ($inst->{pid} && $inst->{conf} eq $conf{$n}) { next }
        _stop_instance($inst, "configuration change for $name") if $inst->{pid};
        push @start, $n;
    }
    my @used = grep { $_ <= $b{hosts} } 1, 2;
    $Inst[$_]{mark} = _log_size($Inst[$_]) for @used;
    for my $n (@start) {
        my $err = _start_instance($Inst[$n], $conf{$n});
        if ($err) {
            fail("$name - nginx instance $n starts");
            diag($err);
            $Inst[$n]{chk_pos} = _log_size($Inst[$n]);
            return;
        }
    }

    if ($Redis{running}) {
        my $r = eval { redis_cmd('FLUSHALL') };
        die "redis FLUSHALL failed: $@" unless defined $r;
    }

    # HTTP request (over TLS with --- tls)
    if (exists $block->{request} || exists $block->{raw_request}) {
        my ($pieces, $no_body, %tls);
        my $port = $S{port};
        if (exists $block->{tls}) {
            my $sni = _subst(_one($block, 'tls') // '');
            $sni =~ s/^\s+|\s+$//g;
            die "--- tls: '$sni' is not a host name\n" if $sni =~ /\s/;
            %tls = (tls => 1, length $sni ? (sni => $sni) : ());
            $port = _subst(_one($block, 'tls_port') // $S{tls_port});
            $port =~ s/^\s+|\s+$//g;
            die "--- tls_port: invalid value '$port'\n" unless $port =~ /^\d+$/;
        }
        elsif (exists $block->{tls_port} || exists $block->{tls_cert}) {
            die "--- tls_port and --- tls_cert need --- tls\n";
        }
        if (exists $block->{raw_request}) {
            my $raw = _one($block, 'raw_request');
            $pieces = [map { _subst($_) } ref $raw eq 'ARRAY' ? @$raw : ($raw // '')];
        }
        else {
            my ($bytes, $meth) = _build_request($name, _subst(_one($block, 'request') // ''),
                                                _subst(_one($block, 'more_headers')), $tls{sni});
            $pieces = [$bytes];
            $no_body = $meth eq 'HEAD';
        }
        my $res = _http_exchange($port, $pieces, $timeout, $no_body, %tls);
        $res->{no_body} = $no_body;
        _check_response($block, $name, $res);
    }

    # WebSocket script
    if (exists $block->{ws}) {
        my $ws = _one($block, 'ws');
        $ws = ref $ws eq 'ARRAY' ? [map { _subst($_) } @$ws] : _subst($ws // '');
        my $ctx = ws_run_script($name, $ws, timeout => $timeout, workers => $b{workers});
        _close_sock($_->{sock}, 1) for values %{$ctx->{clients}};    # drop what is left open
    }

    sleep $wait if $wait;
    sleep 0.05;    # let the master log a worker that just died

    my @lines;
    for my $n (@used) {
        my $inst = $Inst[$n];
        my ($lines, $end) = _log_lines($inst, $inst->{mark});
        $inst->{chk_pos} = $end;
        push @lines, @$lines;
        my @crash = _crash_lines($lines);
        ok(!@crash, "$name - no worker crash" . (@used > 1 ? " (instance $n)" : ''))
            or diag(join "\n", @crash);
    }
    {
        # an [alert], [crit] or [emerg] is a defect unless the block expects
        # it in --- error_log
        my @expect = _patterns($block, 'error_log');
        my @bad = grep {
            my $l = $_;
            $l =~ /\[(?:alert|crit|emerg)\]/
                && !grep { ref $_ ? $l =~ $_ : index($l, _subst($_)) >= 0 } @expect
        } @lines;
        ok(!@bad, "$name - nothing logged at alert, crit or emerg")
            or diag(join "\n", @bad > 20 ? @bad[0 .. 19] : @bad);
    }
    for my $p (_patterns($block, 'error_log')) {
        my $hit = ref $p ? grep { $_ =~ $p } @lines : grep { index($_, _subst($p)) >= 0 } @lines;
        ok($hit, "$name - error_log: " . _show("$p", 100))
            or diag("not found in this block's " . @lines . " error log lines:\n"
                    . join("\n", @lines > 40 ? @lines[-40 .. -1] : @lines));
    }
    for my $p (_patterns($block, 'no_error_log')) {
        my @hits = ref $p ? grep { $_ =~ $p } @lines : grep { index($_, _subst($p)) >= 0 } @lines;
        ok(!@hits, "$name - no_error_log: " . _show("$p", 100))
            or diag("found:\n" . join("\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]));
    }
}

sub _check_response {
    my ($block, $name, $res) = @_;
    if ($res->{error}) {
        fail("$name - request");
        diag($res->{error} . ($res->{raw} ne '' ? "\nreceived: " . _show($res->{raw}, 2000) : ''));
    }
    my $want = _one($block, 'error_code') // 200;
    $want =~ s/^\s+|\s+$//g;
    is($res->{status} // '', $want, "$name - status code");

    if (exists $block->{response_body}) {
        is($res->{body}, _subst(_one($block, 'response_body') // ''), "$name - response body");
    }
    if (exists $block->{response_body_like}) {
        my $pat = _subst(_one($block, 'response_body_like') // '');
        like($res->{body}, qr/$pat/s, "$name - response body like");
    }
    if (defined(my $h = _one($block, 'response_headers'))) {
        for my $l (grep { /\S/ } split /\n/, _subst($h)) {
            $l =~ s/^\s+|\s+$//g;
            if ($l =~ /^!\s*(\S+)$/) {
                my $v = _header_value($res, $1);
                ok(!defined $v, "$name - header $1 absent")
                    or diag("$1: $v");
                next;
            }
            my ($k, $v) = split /\s*:\s*/, $l, 2;
            is(_header_value($res, $k) // '(absent)', $v // '', "$name - header $k");
        }
    }
    if (defined(my $h = _one($block, 'response_headers_like'))) {
        for my $l (grep { /\S/ } split /\n/, _subst($h)) {
            $l =~ s/^\s+|\s+$//g;
            my ($k, $v) = split /\s*:\s*/, $l, 2;
            like(_header_value($res, $k) // '', qr/^$v$/, "$name - header $k like");
        }
    }
    if (exists $block->{tls_cert}) {
        my $pat = _subst(_one($block, 'tls_cert') // '');
        $pat =~ s/^\s+|\s+$//g;
        like($res->{tls_cert} // '(no TLS certificate)', qr/$pat/, "$name - TLS certificate");
    }
    # Not optional: every JSON body must be JSON, and error bodies must have
    # the agreed shape.
    my $ct = _header_value($res, 'Content-Type');
    if (is_json_content_type($ct) && !_bodiless($res)) {
        my $err = json_body_error($res->{status}, $res->{body});
        ok(!defined $err, "$name - JSON body")
            or diag("$err\nstatus " . ($res->{status} // '(none)') . ", Content-Type: $ct, body: "
                    . _show($res->{body}, 2000));
    }
}

# A response that has no body by definition.
sub _bodiless {
    my ($res) = @_;
    my $st = $res->{status} // 0;
    return $res->{no_body} || $st == 204 || $st == 304 || ($st >= 100 && $st < 200);
}

=head2 is_json_content_type($value)

True when a Content-Type value is C<application/json> (any case, any
parameters such as C<; charset=utf-8>).

=head2 json_body_error($status, $body)

The check the harness applies to every JSON response body: undef when
C<$body> (bytes) is valid JSON (RFC 8259, UTF-8, any top-level value) and,
for C<$status> E<gt>= 400, an object whose members C<error> and
C<error_description> are both strings; otherwise the reason.

=cut

sub is_json_content_type {
    my ($ct) = @_;
    return defined $ct && $ct =~ m{^\s*application/json\s*(?:;|,|$)}i ? 1 : 0;
}

sub json_body_error {
    my ($status, $body) = @_;
    $body //= '';
    return 'the body is empty, which is not JSON' unless length $body;
    my $j = eval { JSON::PP->new->utf8->allow_nonref->decode($body) };
    if (my $e = $@) {
        $e =~ s/ at \S+ line \d+\.?\n?\z//;
        return "the body is not valid JSON: $e";
    }
    return undef unless ($status // 0) >= 400;
    return 'an error body (status >= 400) must be a JSON object with "error" and '
         . '"error_description", got ' . (ref $j eq 'ARRAY' ? 'an array' : 'a scalar')
        unless ref $j eq 'HASH';
    my @bad;
    for my $k (qw(error error_description)) {
        if (!exists $j->{$k}) { push @bad, "member \"$k\" is missing"; next }
        push @bad, "member \"$k\" is not a string" unless _json_is_string($j->{$k});
    }
    return @bad ? 'error body: ' . join('; ', @bad) : undef;
}

# Did JSON::PP decode this value from a JSON string (not a number, a
# boolean, null, an array or an object)? Looks at the flags, so the value is
# not stringified first.
sub _json_is_string {
    return 0 unless defined $_[0] && !ref $_[0];
    require B;
    my $f = B::svref_2object(\$_[0])->FLAGS;
    return ($f & B::SVf_POK()) && !($f & (B::SVf_IOK() | B::SVf_NOK())) ? 1 : 0;
}

# Stop whatever is still running if the test file dies half-way.
END {
    if ($$ == $MainPid && $Initialized) {
        local $?;
        for my $inst (grep { $_ } @Inst) {
            my $pid = delete $inst->{pid} or next;
            next unless _alive($pid);
            kill 'QUIT', $pid;
            _wait_exit($pid, 5) or do { _kill_group($pid); _wait_exit($pid, 2) };
        }
        _redis_stop();
    }
}

1;
