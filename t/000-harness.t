# Self-test of the test harness (t/lib/Test/CodeB.pm) against plain nginx:
# no CodeB module is loaded, whatever TEST_NGINX_MODULES says.
BEGIN { delete $ENV{TEST_NGINX_MODULES} }

use lib 't/lib';
use Test::CodeB;

use Digest::SHA qw(sha1);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use MIME::Base64 qw(encode_base64);
use POSIX ();
use Socket qw(AF_UNIX SOCK_STREAM PF_UNSPEC);

my $enc = \&Test::CodeB::ws_encode_frame;
my $dec = \&Test::CodeB::ws_decode_frame;
my $ferr = \&Test::CodeB::ws_server_frame_error;

my $port = $ENV{TEST_NGINX_PORT} || 1984;

# A fixed port (below the ephemeral range, where nginx's own upstream
# connections could hold it) for the script's own TCP and UDP peers.
$ENV{TEST_NGINX_HARNESS_PEER_PORT} = $port + 30;

# --------------------------------------------------------------------------
# 1. Frame encoder / decoder (pure functions), RFC 6455 section 5.7 examples.

is(unpack('H*', $enc->(opcode => 1, payload => 'Hello', mask => 0)),
   '810548656c6c6f', 'codec: unmasked "Hello" as in RFC 6455 5.7');
is(unpack('H*', $enc->(opcode => 1, payload => 'Hello', mask_key => pack('H*', '37fa213d'))),
   '818537fa213d7f9f4d5158', 'codec: masked "Hello" as in RFC 6455 5.7');
is(unpack('H*', $enc->(opcode => 1, payload => 'Hel', fin => 0, mask => 0)),
   '010348656c', 'codec: first fragment has FIN=0');
is(unpack('H*', $enc->(opcode => 9, payload => 'Hello', mask => 0)),
   '890548656c6c6f', 'codec: unmasked ping');

for my $len (0, 125, 126, 65535, 65536, 70000) {
    my $p = join '', map { chr(($_ * 7) % 256) } 1 .. $len;
    my $hdr = $len < 126 ? 2 : $len < 65536 ? 4 : 10;
    for my $mask (0, 1) {
        my $bytes = $enc->(opcode => 2, payload => $p, mask => $mask);
        is(length $bytes, $hdr + 4 * $mask + $len, "codec: $len bytes, mask=$mask: length");
        my $partial = substr($bytes, 0, length($bytes) - 1);
        ok(!defined $dec->(\$partial) && length($partial) == length($bytes) - 1,
           "codec: $len bytes, mask=$mask: incomplete buffer is left alone");
        my $buf = $bytes . 'NEXT';
        my $f = $dec->(\$buf);
        ok($f && $f->{payload} eq $p && $f->{masked} == $mask && $f->{opcode} == 2
               && $f->{fin} == 1 && $f->{length} == $len && $buf eq 'NEXT',
           "codec: $len bytes, mask=$mask: round trip");
    }
}
{
    my $s = "caf\x{e9} \x{263a}";    # characters go out UTF-8 encoded
    my $buf = $enc->(opcode => 1, payload => $s);
    my $f = $dec->(\$buf);
    is($f->{payload}, "caf\xc3\xa9 \xe2\x98\xba", 'codec: character strings are sent as UTF-8');
}

my %bad = (
    'masked'           => [$enc->(opcode => 1, payload => 'x'), qr/masked/],
    'rsv'              => [$enc->(opcode => 1, payload => 'x', mask => 0, rsv => 4), qr/RSV/],
    'opcode 3'         => [$enc->(opcode => 3, payload => 'x', mask => 0), qr/reserved opcode/],
    'opcode 0xb'       => [$enc->(opcode => 11, payload => '', mask => 0), qr/reserved opcode/],
    'fragmented ping'  => [$enc->(opcode => 9, payload => 'x', mask => 0, fin => 0), qr/fragmented/],
    'ping 126 bytes'   => [$enc->(opcode => 9, payload => 'x' x 126, mask => 0), qr/> 125/],
    'close 1 byte'     => [$enc->(opcode => 8, payload => 'x', mask => 0), qr/1-byte/],
    '16-bit for 5'     => [pack('H*', '817e0005') . 'hello', qr/non-minimal/],
    '64-bit for 200'   => [pack('H*', '817f00000000000000c8') . ('x' x 200), qr/non-minimal/],
);
for my $k (sort keys %bad) {
    my ($bytes, $re) = @{$bad{$k}};
    my $f = $dec->(\$bytes);
    like($ferr->($f) // 'no error', $re, "frame check: $k is refused");
}
for my $op (0, 1, 2, 8, 9, 10) {
    my $bytes = $enc->(opcode => $op, payload => $op == 8 ? pack('n', 1000) : 'ok', mask => 0);
    ok(!defined $ferr->($dec->(\$bytes)), "frame check: opcode $op unmasked is accepted");
}

# --------------------------------------------------------------------------
# 2. The --- ws command runner against a tiny in-process WebSocket peer.
#    (The real server is the CodeB module; this only proves the client.)

sub write_all {
    my ($s, $d) = @_;
    while (length $d) {
        my $n = syswrite($s, $d);
        return unless $n;
        substr($d, 0, $n, '');
    }
}

# Serve one WebSocket connection (runs in a child process). Messages:
# frag, big, json, ping-me, bye, silent, send-binary; binary messages are
# echoed as binary "bin:..."; anything else is echoed as text. The path
# decides the subprotocol answer: /ws answers the first one offered,
# /ws-noproto none, /ws-wrongproto always "bogus", /ws-needproto refuses a
# handshake without one (400, JSON error body), /ws-badjson refuses every
# handshake with an invalid JSON error body.
sub ws_peer {
    my ($s, $handshake) = @_;
    binmode $s;
    my $buf = '';
    my $read = sub { my $n = sysread($s, $buf, 65536, length $buf); POSIX::_exit(0) unless $n };
    if ($handshake) {
        $read->() until $buf =~ /\r\n\r\n/;
        my ($path) = $buf =~ m{^GET (/[^ ?]*)};
        my ($key) = $buf =~ /Sec-WebSocket-Key:\s*(\S+)/i;
        my ($offer) = $buf =~ /^Sec-WebSocket-Protocol:\s*(.*?)\s*\r$/mi;
        my @offer = split /\s*,\s*/, $offer // '';
        $buf =~ s/^.*?\r\n\r\n//s;
        my $refuse = sub {
            my ($body) = @_;
            write_all($s, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                        . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n$body");
            POSIX::_exit(0);
        };
        $refuse->('{"error":"x","error_description":"a "b""}') if $path eq '/ws-badjson';
        $refuse->('{"error":"no_subprotocol","error_description":"offer sip"}')
            if $path eq '/ws-needproto' && !@offer;
        my $answer = $path eq '/ws-noproto' ? undef : $path eq '/ws-wrongproto' ? 'bogus' : $offer[0];
        my $acc = encode_base64(sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
        write_all($s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    . "Connection: Upgrade\r\nSec-WebSocket-Accept: $acc\r\n"
                    . (defined $answer ? "Sec-WebSocket-Protocol: $answer\r\n" : '') . "\r\n");
    }
    my $out = sub {
        my ($op, $p, $fin) = @_;
        write_all($s, $enc->(opcode => $op, payload => $p, mask => 0, fin => $fin // 1));
    };
    my ($msg, $want_pong, $closing, $binary) = ('', 0, 0, 0);
    while (1) {
        my $f = $dec->(\$buf) or do { $read->(); next };
        if (!$f->{masked}) { $out->(8, pack('n', 1002) . 'unmasked'); POSIX::_exit(0) }
        my $op = $f->{opcode};
        if ($op == 8) { $out->(8, $f->{payload}) unless $closing; POSIX::_exit(0) }
        if ($op == 9) { $out->(10, $f->{payload}); next }
        if ($op == 10) { $out->(1, "got-pong:$f->{payload}") if $want_pong; $want_pong = 0; next }
        $binary = $op == 2 if $op;
        $msg = $op ? $f->{payload} : $msg . $f->{payload};
        next unless $f->{fin};
        if    ($binary)           { $out->(2, "bin:$msg") }
        elsif ($msg eq 'frag')    { $out->(1, 'ab', 0); $out->(9, 'k'); $out->(0, 'cd', 0); $out->(0, 'ef') }
        elsif ($msg eq 'big')     { $out->(1, 'y' x 70000) }
        elsif ($msg eq 'json')    { $out->(1, '{"type":"welcome","peerId":"p_0123456789abcdef","peers":[]}') }
        elsif ($msg eq 'json3')   { $out->(1, '{"n":1}'); $out->(1, '{"n":2}'); $out->(1, '{"type":"x"}') }
        elsif ($msg eq 'ping-me') { $out->(9, 'srv'); $want_pong = 1 }
        elsif ($msg eq 'bye')     { $out->(8, pack('n', 4001) . 'kicked'); $closing = 1 }
        elsif ($msg eq 'silent')  { }
        elsif ($msg eq 'send-binary') { $out->(2, "\x00\x01bin\xff") }
        else                      { $out->(1, "echo:$msg len=" . length $msg) }
    }
}

sub peer_on_socketpair {
    my ($name) = @_;
    socketpair(my $mine, my $theirs, AF_UNIX, SOCK_STREAM, PF_UNSPEC) or die "socketpair: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $mine;
        alarm 30;
        eval { ws_peer($theirs, 0) };
        POSIX::_exit(0);
    }
    close $theirs;
    return ($pid, Test::CodeB::ws_client_from_socket($name, $mine));
}

my @kids;
{
    my ($p1, $A) = peer_on_socketpair('A');
    my ($p2, $B) = peer_on_socketpair('B');
    my ($p3, $C) = peer_on_socketpair('C');
    push @kids, $p1, $p2, $p3;
    my $ctx = Test::CodeB::ws_run_script('ws runner', <<'WS', timeout => 3, clients => { A => $A, B => $B, C => $C });
# comments and blank lines are ignored

send A hello
recv A ^echo:hello len=5$
send_frames A 1 0 he
send_frames A 0 1 llo
recv A ^echo:hello len=5$
send_big A 70000
recv A len=70000$
send_big A 200
recv A ^echo:\{"type":"ping","pad":"x+"\} len=200$
send_big A 10
recv A ^echo:x{10} len=10$
send A frag
recv A ^abcdef$
send A big
recv A ^(?:y{10000}){7}$
ping A p1
expect_pong A p1
ping A
expect_pong A
send A json
recv_json A $j->{type} eq 'welcome' && @{$j->{peers}} == 0
capture A pid "peerId":"(p_[0-9a-f]{16})"
send A id=${pid}
recv A ^echo:id=p_0123456789abcdef len=21$
send A json3
skip_json A exists $j->{n}
recv_json A $j->{type} eq 'x'
send A json
skip_json A exists $j->{n}
recv_json A $j->{type} eq 'welcome'
send A json3
skip_recv A ^\{"n":
recv A ^\{"type":"x"\}$

send_raw A 81 82 00 00 00 00 68 69
recv A ^echo:hi len=2$
send A silent
no_recv A 200
send A ping-me
recv A ^got-pong:srv$
autopong A off
send A ping-me
expect_ping A
no_recv A 200
autopong A on
send A bye
expect_close A 4001
send_unmasked B oops
expect_close B 1002
send_close C 1000 done
expect_close C 1000
sleep 10
WS
    is_deeply([sort keys %{$ctx->{vars}}], ['pid'], 'ws runner: capture stored ${pid}');
    close $_->{sock} for values %{$ctx->{clients}};
}

# Escapes, binary messages, set / set_sip / here-documents, array scripts.
{
    my ($p1, $A) = peer_on_socketpair('A');
    push @kids, $p1;
    my $ctx = Test::CodeB::ws_run_script('ws escapes', <<'WS', timeout => 3, clients => { A => $A });
send A a\tb\x41
recv A ^echo:a\\tb\\x41 len=8$
send_esc A a\tb\x41\\c\r\n
recv A ^echo:a\tbA\\c\r\n len=8$
send_binary A \x00\x01\xff\n
recv_binary A ^bin:\x00\x01\xff\n$
capture A b (?s)bin:(.*)
send A send-binary
recv_binary A ^\x00\x01bin\xff$
set V a\x20b\\n
send A ${V}
recv A ^echo:a b\\n len=5$
set_sip M <<END
MESSAGE sip:bob@b.test SIP/2.0
Content-Length: 1
  # not a comment: here-document lines are kept as they are

hello
END
send A ${M}
recv A ^echo:MESSAGE sip:bob@b.test SIP/2.0\r\nContent-Length: 7\r\n  # not a comment.*\r\n\r\nhello\r\n len=\d+$
set H <<EOT
a

EOT
send A ${H}
recv A ^echo:a\r\n\r\n len=5$
WS
    is($ctx->{vars}{b}, "\x00\x01\xff\n", 'ws escapes: capture works on a binary message');
    is($ctx->{vars}{V}, 'a b\n', 'ws escapes: set applies the escapes once');
    is(Test::CodeB::ws_run_script('ws eval array', ["send A two\r\nlines \\r",
                                                   'recv A ^echo:two\r\nlines \\\\r len=13$'],
                                  timeout => 3, clients => { A => $A })->{clients}{A}{last},
       "echo:two\r\nlines \\r len=13", 'ws eval array: one command per element, newlines kept');

    my $t = Test::CodeB::ws_context(timeout => 2, clients => { A => $A });
    my @neg = (
        ['send_binary A x',       'recv A .',         qr/expected a text message, got binary frame: bin:x/],
        ['send A y',              'recv_binary A .',  qr/expected a binary message, got text frame: echo:y/],
        [undef,                   'send_esc A a\qb',  qr/unknown escape \\q/],
        [undef,                   'send_binary A \x4', qr/unknown escape/],
        [undef,                   'set X \\\\',     qr/^$/],    # \\ is one backslash: fine
        [undef,                   "set X <<END\n",   qr/without its terminating .END. line/],
        [undef,                   'tls_cert A x',     qr/not a TLS connection/],
        [undef,                   'udp_recv A x',     qr/client 'A' is a ws client/],
        [undef,                   'capture A z nomatch(x)', qr/does not match/],
    );
    for my $n (@neg) {
        my ($pre, $cmd, $re) = @$n;
        if ($pre) { my ($ok, $e) = Test::CodeB::ws_try($t, $pre); ok($ok, "ws_try: $pre") or diag($e) }
        my ($ok, $err) = Test::CodeB::ws_try($t, $cmd);
        if ($re eq qr/^$/) { ok($ok, "ws_try: '$cmd' works") or diag($err); next }
        ok(!$ok, "ws_try: '$cmd' fails") && like($err, $re, "ws_try: '$cmd' says why");
    }
    my ($aok, $aerr) = Test::CodeB::ws_try($t, ['set X <<END']);
    ok(!$aok && $aerr =~ /only in the text form/, 'a here-document in an array script is refused')
        or diag($aerr);
    my @h = Test::CodeB::_ws_parse("set X <<END\nline\n");
    like($h[0][2], qr/without its terminating 'END'/, 'here-document without its end line is an error');

    close $_->{sock} for values %{$ctx->{clients}};
}

is(Test::CodeB::unescape('\r\n\t\\\\\x41\x7e'), "\r\n\t\\A~", 'unescape: all escapes');
is(Test::CodeB::sip_message("OPTIONS sip:a SIP/2.0\r\nl: 99\r\n\r\nxyz"),
   "OPTIONS sip:a SIP/2.0\r\nl: 3\r\n\r\nxyz", 'sip_message: compact l: is fixed');
is(Test::CodeB::sip_message("OPTIONS sip:a SIP/2.0\r\nVia: x\r\n"),
   "OPTIONS sip:a SIP/2.0\r\nVia: x\r\nContent-Length: 0\r\n\r\n", 'sip_message: added when missing');
is(Test::CodeB::sip_message("A\r\ncontent-length:5\r\n\r\n\x{263a}"),
   "A\r\ncontent-length: 3\r\n\r\n\xe2\x98\xba", 'sip_message: byte length of a UTF-8 body');

# The JSON body check, directly.
{
    my $je = \&Test::CodeB::json_body_error;
    my @ok = ([200, '[1,2,{"a":"b"}]'], [200, '"scalar"'], [201, '{}'],
              [400, '{"error":"bad_request","error_description":"x y"}'],
              [503, '{"error":"e","error_description":"","extra":[1]}'],
              [404, "{\"error\":\"n\",\"error_description\":\"caf\xc3\xa9\"}"]);
    ok(!defined $je->(@$_), "JSON body check accepts $_->[0] $_->[1]") for @ok;
    my @bad = ([200, '', qr/empty/], [200, '{"a":1', qr/not valid JSON/],
               [400, '{"error":"x","error_description":"a "b""}', qr/not valid JSON/],
               [400, '[]', qr/must be a JSON object/], [500, '"oops"', qr/must be a JSON object/],
               [401, '{"error":"x"}', qr/"error_description" is missing/],
               [403, '{"error":1,"error_description":"d"}', qr/"error" is not a string/],
               [403, '{"error":"e","error_description":null}', qr/"error_description" is not a string/],
               [409, '{"error":true,"error_description":"d"}', qr/"error" is not a string/],
               [400, "{\"error\":\"\xff\",\"error_description\":\"d\"}", qr/not valid JSON/]);
    like($je->(@$_[0, 1]) // 'accepted', $_->[2], "JSON body check refuses $_->[0] " . $_->[1] =~ s/[^ -~]/?/gr)
        for @bad;
    ok(Test::CodeB::is_json_content_type($_), "application/json: '$_'")
        for 'application/json', 'Application/JSON; charset=utf-8', ' application/json';
    ok(!Test::CodeB::is_json_content_type($_), "not application/json: '" . ($_ // 'undef') . "'")
        for 'text/plain', 'application/jsonx', 'application/problem+json', undef;
}

# Module loading order and stream detection (files named like modules).
{
    my $d = tempdir('codeb-mods-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    for my $m (qw(zeta core api sip)) { open my $f, '>', "$d/ngx_codeb_${m}_module.so" or die $! }
    open my $f, '>', "$d/other.so" or die $!;
    my ($l, $stream) = Test::CodeB::module_list($d);
    is_deeply([map { $_->[0] } @$l], [map { "ngx_codeb_${_}_module" } qw(core api sip zeta)],
              'modules: core first, then the others by name');
    is($l->[0][1], "$d/ngx_codeb_core_module.so", 'modules: with their paths');
    is($stream, 0, 'modules: none of these needs the stream module');
    open $f, '>', "$d/ngx_codeb_sip_stream_module.so" or die $!;
    is((Test::CodeB::module_list($d))[1], 1, 'modules: a *stream* module needs it');
    unlink "$d/ngx_codeb_sip_stream_module.so";
    # a module with an http and a stream part in one .so refers to ngx_stream_*
    SKIP: {
        skip 'no cc', 1 unless system('sh', '-c', 'command -v cc >/dev/null') == 0;
        open my $c, '>', "$d/m.c" or die $!;
        print $c "extern char ngx_stream_core_module[];\nvoid *codeb_ref(void) { return ngx_stream_core_module; }\n";
        close $c;
        system('cc', '-shared', '-fPIC', '-o', "$d/ngx_codeb_sipws_module.so", "$d/m.c") == 0 or die 'cc failed';
        is((Test::CodeB::module_list($d))[1], 1, 'modules: one that refers to ngx_stream_* needs it');
    }
}

# The same peer behind a TCP listener, reached through nginx's proxy
# (used by the "ws through nginx" block below, which exercises open/ss).
{
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 16, ReuseAddr => 1) or die "listen: $!";
    $ENV{TEST_NGINX_WS_ECHO_PORT} = $l->sockport;
    my $parent = $$;
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        alarm 300;
        $SIG{CHLD} = 'IGNORE';
        my $sel = IO::Select->new($l);
        while (getppid() == $parent) {    # ends with the test process
            next unless $sel->can_read(0.5);
            my $c = $l->accept or next;
            my $k = fork;
            if (defined $k && !$k) { alarm 60; eval { ws_peer($c, 1) }; POSIX::_exit(0) }
            close $c;
        }
        POSIX::_exit(0);
    }
    close $l;
    push @kids, $pid;
}

# --------------------------------------------------------------------------
# 3. Failures must be reported: run a small test file that is meant to fail
#    (own port and server root) and read its TAP.
{
    my $dir = tempdir('codeb-harness-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $root = $ENV{TEST_NGINX_ROOT} // do { require Cwd; Cwd::getcwd() };
    open my $fh, '>', "$dir/fail.t" or die $!;
    print $fh <<"EOT" . <<'EOT';
use lib '$root/t/lib';
EOT
use Test::CodeB;
run_tests();
done_testing();
@@DATA@@

=== TEST 1: wrong body
--- config
location = /t { return 200 "hello\n"; }
--- request
GET /t
--- response_body
goodbye

=== TEST 2: ws failure skips the rest
--- config
location = /t { return 200 "hello\n"; }
--- ws
shell echo some output; false
shell true

=== TEST 3: typo in a section name
--- config
location = /t { return 200 "hello\n"; }
--- respons_body
x

=== TEST 4: missing log line
--- config
location = /t { return 200 "hello\n"; }
--- request
GET /t
--- error_log
this line is never logged

=== TEST 5: eval that does not compile
--- config
location = /t { return 200 "hello\n"; }
--- request eval
"GET /t $undeclared_var"

=== TEST 6: a crashed worker is noticed
--- config
location = /t { return 200 "hello\n"; }
--- ws
shell kill -KILL $(pgrep -P $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid) | head -n 1)
--- wait: 0.3

=== TEST 7: open needs a 101
--- config
location = /t { return 200 "hello\n"; }
--- ws
open A /t

=== TEST 8: bad config
--- config
location = /t { no_such_directive; }
--- request
GET /t

=== TEST 9: an error body that is not JSON
--- config
default_type application/json;
location = /bad { return 400 '{"error":"x","error_description":"a "b""}'; }
location = /shape { return 401 '{"error":"x"}'; }
location = /good { return 404 '{"error":"not_found","error_description":"no such thing"}'; }
--- request
GET /bad
--- error_code: 400

=== TEST 10: an error body without error_description
--- config
default_type application/json;
location = /bad { return 400 '{"error":"x","error_description":"a "b""}'; }
location = /shape { return 401 '{"error":"x"}'; }
location = /good { return 404 '{"error":"not_found","error_description":"no such thing"}'; }
--- raw_request eval
"GET /shape HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- error_code: 401

=== TEST 11: a good error body
--- config
default_type application/json;
location = /bad { return 400 '{"error":"x","error_description":"a "b""}'; }
location = /shape { return 401 '{"error":"x"}'; }
location = /good { return 404 '{"error":"not_found","error_description":"no such thing"}'; }
--- request
GET /good
--- error_code: 404

=== TEST 12: a subprotocol was offered, none answered
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open A /ws-noproto proto=sip

=== TEST 13: none offered, one answered
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open A /ws-wrongproto

=== TEST 14: another one answered than offered
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open A /ws-wrongproto proto=sip,sip2

=== TEST 15: open_fail, but the handshake is accepted
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open_fail A /ws-needproto 400 proto=sip

=== TEST 16: open_fail with another status
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open_fail A /ws-needproto 403

=== TEST 17: open_fail checks the JSON body too
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open_fail A /ws-badjson 400

=== TEST 18: tcp_recv_sip wants a Content-Length; tls_cert; tcp_no_recv
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; return "SIP/2.0 200 OK\r\nVia: x\r\n\r\n"; }
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    return "x";
}
--- ws
tcp T $TEST_NGINX_STREAM_PORT
tcp_recv_sip T ^SIP

=== TEST 19: tls_cert
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; return "SIP/2.0 200 OK\r\nVia: x\r\n\r\n"; }
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    return "x";
}
--- ws
tcp T $TEST_NGINX_TLS_PORT sni=b.test
tls_cert T CN=b\.test

=== TEST 20: tcp_no_recv counts unread bytes
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; return "SIP/2.0 200 OK\r\nVia: x\r\n\r\n"; }
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    return "x";
}
--- ws
tcp T $TEST_NGINX_STREAM_PORT
tcp_recv T ^SIP/2.0 200
tcp_no_recv T 100
EOT
    close $fh;
    {   # the marker is spelled out only here: Test::Base's source filter
        # would take a literal one in this file for the real one
        local @ARGV = ("$dir/fail.t");
        local $^I = '';
        while (<>) { s/^\@\@DATA\@\@$/'__' . 'DATA__'/e; print }
    }
    # its own ports (PORT+40, +41; TLS +50, +51; stream +60, +61, or the
    # same 100 higher while one of them is taken by some other program),
    # server root and certificates; of the TEST_NGINX_* variables it keeps
    # only these
    my $fport = $port + 40;
    $fport += 100 while grep {
        !IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $fport + $_,
                               Proto => 'tcp', ReuseAddr => 1, Listen => 1)
    } 0, 1, 10, 11, 20, 21;
    my $rc = do {
        local %ENV = %ENV;
        delete $ENV{$_} for grep { /^TEST_NGINX_/ && !/^TEST_NGINX_(?:BINARY|REDIS_SERVER|STREAM_MODULE|WS_ECHO_PORT)$/ } keys %ENV;
        @ENV{qw(TEST_NGINX_PORT TEST_NGINX_SERVROOT TEST_NGINX_ROOT)} = ($fport, "$dir/servroot", $root);
        system('/bin/sh', '-c', "cd '$dir' && timeout 120 '$^X' fail.t > out.txt 2>&1");
    };
    open my $in, '<', "$dir/out.txt" or die $!;
    my $tap = do { local $/; <$in> };
    ok($rc != 0, 'failing file: exits non-zero');
    my @expect = (
        qr/^not ok \d+ - TEST 1: wrong body - response body$/m,
        qr/^ok \d+ - TEST 1: wrong body - status code$/m,
        qr/^not ok \d+ - TEST 2: ws failure skips the rest - ws line 1: shell echo some output; false$/m,
        qr/^#\s+some output$/m,
        qr/^ok \d+ # skip after the failure at ws line 1$/m,
        qr/^not ok \d+ - TEST 3: typo in a section name - harness$/m,
        qr/unknown section\(s\): --- respons_body/,
        qr/^not ok \d+ - TEST 4: missing log line - error_log: this line is never logged$/m,
        qr/^not ok \d+ - TEST 5: eval that does not compile - harness$/m,
        qr/Global symbol "\$undeclared_var"/,
        qr/^ok \d+ - TEST 6: a crashed worker is noticed - ws line 1/m,
        qr/^not ok \d+ - TEST 6: a crashed worker is noticed - no worker crash$/m,
        qr/exited on signal 9/,
        qr/^not ok \d+ - TEST 7: open needs a 101 - ws line 1: open A \/t$/m,
        qr/expected status 101, got 200/,
        qr/^not ok \d+ - TEST 8: bad config - nginx instance 1 starts$/m,
        qr/unknown directive "no_such_directive"/,
        qr/^ok \d+ - nginx instance 1 stopped cleanly \(configuration change for TEST 8/m,
        qr/^ok \d+ - TEST 9: an error body that is not JSON - status code$/m,
        qr/^not ok \d+ - TEST 9: an error body that is not JSON - JSON body$/m,
        qr/^#\s+the body is not valid JSON: .*\n#\s+status 400, Content-Type: application\/json, body: \{"error":"x","error_description":"a "b""\}$/m,
        qr/^not ok \d+ - TEST 10: an error body without error_description - JSON body$/m,
        qr/^#\s+error body: member "error_description" is missing$/m,
        qr/^ok \d+ - TEST 11: a good error body - JSON body$/m,
        qr/^not ok \d+ - TEST 12: a subprotocol was offered, none answered - ws line 1: open A \/ws-noproto proto=sip$/m,
        qr/^#\s+handshake: no Sec-WebSocket-Protocol in the answer \(offered: sip\)$/m,
        qr/^not ok \d+ - TEST 13: none offered, one answered - ws line 1: open A \/ws-wrongproto$/m,
        qr/^#\s+handshake: Sec-WebSocket-Protocol 'bogus' in the answer, but none was offered$/m,
        qr/^not ok \d+ - TEST 14: another one answered than offered - ws line 1/m,
        qr/^#\s+handshake: Sec-WebSocket-Protocol 'bogus' is not one of the offered sip, sip2$/m,
        qr/^not ok \d+ - TEST 15: open_fail, but the handshake is accepted - ws line 1/m,
        qr/^#\s+the handshake was accepted \(101\), expected status 400$/m,
        qr/^not ok \d+ - TEST 16: open_fail with another status - ws line 1/m,
        qr/^#\s+expected status 403, got 400$/m,
        qr/^not ok \d+ - TEST 17: open_fail checks the JSON body too - ws line 1/m,
        qr/^#\s+JSON body: the body is not valid JSON/m,
        qr/^ok \d+ - TEST 18: tcp_recv_sip wants a Content-Length; tls_cert; tcp_no_recv - ws line 1/m,
        qr/^not ok \d+ - TEST 18: .* - ws line 2: tcp_recv_sip T \^SIP$/m,
        qr/^#\s+SIP message without Content-Length/m,
        qr/^not ok \d+ - TEST 19: tls_cert - ws line 2: tls_cert T CN=b\\.test$/m,
        qr/^#\s+certificate 'CN=a\.test SAN=DNS:a\.test' does not match/m,
        qr/^ok \d+ - TEST 20: tcp_no_recv counts unread bytes - ws line 2/m,
        qr/^not ok \d+ - TEST 20: tcp_no_recv counts unread bytes - ws line 3: tcp_no_recv T 100$/m,
        qr/^#\s+unread bytes from before: \x20OK\\x0d\\x0aVia/m,
        qr/^1\.\.\d+$/m,
    );
    my $all = 1;
    for my $re (@expect) {
        like($tap, $re, "failing file: output has $re") or $all = 0;
    }
    unlike($tap, qr/^ok \d+ - TEST 1: wrong body - response body$/m,
           'failing file: a wrong body is not reported as ok');
    diag("output of the failing file:\n$tap") unless $all;
    ok(!-e "$dir/servroot/logs/nginx.pid"
           || !kill(0, do { open my $p, '<', "$dir/servroot/logs/nginx.pid"; <$p> // 0 }),
       'failing file: its nginx was stopped');
}

# --------------------------------------------------------------------------
# 4. Blocks against plain nginx.

run_tests();

kill 'TERM', @kids;
waitpid($_, 0) for @kids;

done_testing();

__DATA__

=== TEST 1: request and exact body
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /t
--- response_body
hello
--- response_headers
Content-Type: text/plain
Content-Length: 6
!X-Nope
--- error_log
start worker processes
--- no_error_log
[error]

=== TEST 2: same config: nginx keeps running, body_like, headers_like
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /t
--- response_body_like: ^hel+o$
--- response_headers_like
Server: nginx/\d+\.\d+\.\d+
Content-Length: \d
--- no_error_log
start worker processes

=== TEST 3: 404 and an error_log line
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /static/missing.txt
--- error_code: 404
--- response_body_like: <center>nginx/[\d.]+</center>
--- error_log
html/static/missing.txt" failed (2: No such file or directory)
[error]
--- no_error_log
[alert]
[crit]

=== TEST 4: the previous block's log lines are not seen
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /t
--- no_error_log
missing.txt
[error]

=== TEST 5: more_headers
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /h
--- more_headers
X-Foo: bar baz
--- response_body
foo=bar baz

=== TEST 6: chunked response is decoded
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- request
GET /c
--- response_headers
Transfer-Encoding: chunked
!Content-Length
--- response_body
chunked bbb

=== TEST 7: raw_request eval, substitution after eval, eval body
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- raw_request eval
"GET /port HTTP/1.1\r\nHost: localhost:\$TEST_NGINX_PORT\r\nConnection: close\r\n\r\n"
--- response_body eval
"localhost:$ENV{TEST_NGINX_PORT}\n"

=== TEST 8: raw_request in pieces, plain response_body with a variable
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- raw_request eval
["GET /port HTTP/1.1\r\nHost: loc", "alhost:\$TEST_NGINX_PORT\r\nConnection: close\r\n\r\n"]
--- response_body
localhost:$TEST_NGINX_PORT

=== TEST 9: a bad raw request gets a 400
--- config
location = /t { return 200 "hello\n"; }
location = /h { return 200 "foo=$http_x_foo\n"; }
location /static/ { root $TEST_NGINX_HTML_DIR; }
location = /c { sub_filter_types text/plain; sub_filter_once off; sub_filter a b; return 200 "chunked aaa\n"; }
location = /port { return 200 "$http_host\n"; }
--- raw_request eval
"GET /t HTTP/1.1\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- error_log eval
[qr/\[info\] \d+#\d+: \*\d+ client sent HTTP\/1.1 request without "Host" header/,
 'while reading client request headers']

=== TEST 10: configuration change restarts nginx; POST body through a proxy
--- config
location = /p {
    proxy_set_header X-Body $request_body;
    proxy_pass http://127.0.0.1:$TEST_NGINX_PORT/echo;
}
location = /echo { return 200 "body=$http_x_body len=$http_content_length\n"; }
--- request chomp
POST /p
hello body
--- response_body
body=hello body len=10
--- error_log
start worker processes

=== TEST 11: request eval with a body
--- config
location = /p {
    proxy_set_header X-Body $request_body;
    proxy_pass http://127.0.0.1:$TEST_NGINX_PORT/echo;
}
location = /echo { return 200 "body=$http_x_body len=$http_content_length\n"; }
--- request eval
"POST /p\nabc"
--- response_body
body=abc len=3
--- no_error_log eval
[qr/start worker process(?:es)?$/]

=== TEST 12: workers 1
--- workers: 1
--- config
location = /t { return 200 "one\n"; }
--- request
GET /t
--- response_body
one
--- ws
shell test "$(pgrep -P $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid) | wc -l)" -eq 1

=== TEST 13: default is 2 workers; reload starts new ones
--- config
location = /t { return 200 "two\n"; }
--- ws
shell test "$(pgrep -P $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid) | wc -l)" -eq 2
reload
sleep 300
shell test "$(pgrep -P $(cat $TEST_NGINX_SERVROOT/logs/nginx.pid) | wc -l)" -eq 2
--- error_log
reconfiguring
--- wait: 0.1

=== TEST 14: hosts 2: the second instance answers on $TEST_NGINX_PORT2
--- hosts: 2
--- config
location = /t2 { proxy_pass http://127.0.0.1:$TEST_NGINX_PORT2/whoami; }
location = /whoami { return 200 "port=$server_port\n"; }
--- request
GET /t2
--- response_body eval
"port=$ENV{TEST_NGINX_PORT2}\n"
--- ws
shell test -s $TEST_NGINX_SERVROOT/logs/nginx.pid
shell test -s ${TEST_NGINX_SERVROOT}2/logs/nginx.pid
shell grep -q "listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport" ${TEST_NGINX_SERVROOT}2/conf/nginx.conf
--- error_log
start worker processes

=== TEST 15: redis commands and redis_restart
--- redis
--- config
location = /t { return 200 "hello\n"; }
--- ws
redis ^PONG$ PING
redis ^OK$ SET k1 v1
redis ^v1$ GET k1
redis ^2$ RPUSH l a b
redis ^a,b$ LRANGE l 0 -1
redis_restart
redis ^$ GET k1
redis ^OK$ SET k2 v2

=== TEST 16: redis is flushed between blocks
--- redis
--- config
location = /t { return 200 "hello\n"; }
--- ws
redis ^$ GET k2
redis ^0$ DBSIZE

=== TEST 17: ws through nginx: open, other, same, worker_alive, drop
--- timeout: 5
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open A /ws
open B /ws other A
open C /ws same A
worker_alive A
worker_alive B
send A hi from A
recv A ^echo:hi from A len=9$
send B json
recv_json B $j->{peerId} =~ /^p_[0-9a-f]{16}$/
capture B id "peerId":"([^"]+)"
send C ${id}
recv C ^echo:p_0123456789abcdef len=18$
send A bye
expect_close A 4001
close B
drop C

=== TEST 18: SKIP drops a block (this config would not start)
--- SKIP
--- config
location = /t { no_such_directive; }
--- request
GET /t

=== TEST 19: TLS: the server name is chosen by SNI; --- request and tcp over TLS; wss
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name a.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    location / { return 200 "a sni=$ssl_server_name host=$host\n"; }
    location /ws {
        proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
}
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name b.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/b.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/b.test.key;
    location / { return 200 "b sni=$ssl_server_name host=$host\n"; }
}
--- config
location = /t { return 200 "hello\n"; }
--- tls: b.test
--- request
GET /x
--- response_body
b sni=b.test host=b.test
--- tls_cert: ^CN=b\.test SAN=DNS:b\.test$
--- ws
tcp T $TEST_NGINX_TLS_PORT sni=a.test
tls_cert T ^CN=a\.test SAN=DNS:a\.test$
tcp_send T GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n
tcp_recv T (?s)^HTTP/1\.1 200 OK\r\n.*?\r\n\r\na sni=a\.test host=a\.test\n
expect_eof T
tcp N $TEST_NGINX_TLS_PORT tls
tls_cert N ^CN=a\.test
open W /ws tls sni=a.test
tls_cert W ^CN=a\.test
send W over tls
recv W ^echo:over tls len=8$
send_binary W \x00\x80
recv_binary W ^bin:\x00\x80$
open P /ws port=$TEST_NGINX_TLS_PORT sni=a.test proto=sip
send P x
recv P ^echo:x len=1$
close W
drop P
--- no_error_log
[error]

=== TEST 20: TLS: raw_request without SNI goes to the default server; --- tls_port
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name a.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    location / { return 200 "a sni=$ssl_server_name host=$host\n"; }
}
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name b.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/b.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/b.test.key;
    location / { return 200 "b sni=$ssl_server_name host=$host\n"; }
}
--- config
location = /t { return 200 "hello\n"; }
--- tls
--- tls_port: $TEST_NGINX_TLS_PORT
--- raw_request eval
"GET /y HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n"
--- response_body
b sni= host=b.test
--- tls_cert: CN=a\.test

=== TEST 21: subprotocols, open_fail and binary messages (plain ws through nginx)
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws
open A /ws proto=sip
send A hi
recv A ^echo:hi len=2$
open B /ws-noproto
open C /ws proto=chat,sip
open_fail D /ws-needproto 400 body="error":"no_subprotocol"
capture D err "error":"([^"]+)"
open E /ws-needproto proto=sip other A
send_binary E \x00\xffz
recv_binary E ^bin:\x00\xffz$
send E send-binary
recv_binary E ^\x00\x01bin\xff$
send_esc E \x41\tB
recv E ^echo:A\tB len=3$
shell test ${err} = no_subprotocol

=== TEST 22: stream: UDP and TCP against nginx's stream return
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp; return "pong from $server_port to $remote_port\n"; }
server {
    listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
    return "SIP/2.0 100 Trying\r\nVia: x\r\nContent-Length: 4\r\n\r\nbody\r\n\r\nSIP/2.0 180 Ringing\r\nl: 0\r\n\r\nhello $remote_port\r\n";
}
--- config
location = /t { return 200 "hello\n"; }
--- ws
udp U $TEST_NGINX_STREAM_PORT
udp_send U ping\r\n
udp_recv U ^pong from \d+ to (\d+)\n$
capture U p to (\d+)
shell test ${p} = ${U_lport}
udp_no_recv U 200
tcp T $TEST_NGINX_STREAM_PORT
tcp_recv_sip T (?s)^SIP/2\.0 100 Trying\r\n.*\r\n\r\nbody$
tcp_recv_sip T ^SIP/2\.0 180 Ringing\r\nl: 0\r\n\r\n$
tcp_recv T ^hello (\d+)\r\n
capture T rp hello (\d+)
shell test ${rp} = ${T_lport}
expect_eof T
tcp H $TEST_NGINX_PORT
tcp_no_recv H 100
tcp_send H GET /t HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n
tcp_recv H \r\n\r\nhello\n$
expect_eof H
--- no_error_log
[error]

=== TEST 23: stream proxy to the script's own peers: tcp_listen / tcp_accept, udp bind= / udp_reply
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; proxy_pass 127.0.0.1:$TEST_NGINX_HARNESS_PEER_PORT; }
server {
    listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp;
    proxy_pass 127.0.0.1:$TEST_NGINX_HARNESS_PEER_PORT;
    proxy_responses 1;
    proxy_timeout 2s;
}
--- config
location = /t { return 200 "hello\n"; }
--- ws
tcp_listen L $TEST_NGINX_HARNESS_PEER_PORT
tcp C $TEST_NGINX_STREAM_PORT
tcp_accept L S
tcp_send C REGISTER sip:a.test SIP/2.0\r\n\r\n
tcp_recv S ^REGISTER sip:a\.test SIP/2\.0\r\n\r\n$
tcp_send S SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n
tcp_recv_sip C ^SIP/2\.0 200 OK\r\n
tcp_no_recv C 100
drop S
expect_eof C
udp P 0 bind=$TEST_NGINX_HARNESS_PEER_PORT
udp U $TEST_NGINX_STREAM_PORT
udp_send U OPTIONS sip:x SIP/2.0\r\n\r\n
udp_recv P ^OPTIONS sip:x SIP/2\.0\r\n\r\n$
udp_reply P SIP/2.0 200 OK\r\n\r\n
udp_recv U ^SIP/2\.0 200 OK\r\n\r\n$
close U
close P

=== TEST 24: a certificate made while nginx runs (make_cert, t/tools/mkcert.sh)
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name _;
    ssl_certificate $TEST_NGINX_SERVROOT/dyncerts/$ssl_server_name.crt;
    ssl_certificate_key $TEST_NGINX_SERVROOT/dyncerts/$ssl_server_name.key;
    location / { return 200 "$ssl_server_name\n"; }
}
--- config
location = /t { return 200 "hello\n"; }
--- ws
shell rm -rf $TEST_NGINX_SERVROOT/dyncerts
make_cert c.test $TEST_NGINX_SERVROOT/dyncerts
tcp C $TEST_NGINX_TLS_PORT sni=c.test
tls_cert C ^CN=c\.test SAN=DNS:c\.test$
shell $TEST_NGINX_ROOT/t/tools/mkcert.sh d.test $TEST_NGINX_SERVROOT/dyncerts
tcp D $TEST_NGINX_TLS_PORT sni=d.test
tls_cert D ^CN=d\.test
tcp_send D GET / HTTP/1.1\r\nHost: d.test\r\nConnection: close\r\n\r\n
tcp_recv D \r\n\r\nd\.test\n$
shell test -s $TEST_NGINX_CERT_DIR/localhost.key && test -s $TEST_NGINX_CERT_DIR/b.test.crt

=== TEST 25: JSON bodies that pass the check
--- config
default_type application/json;
location = /list { return 200 '[1,"two",{"3":null}]'; }
location = /err { return 409 '{"error":"conflict","error_description":"it \\"exists\\"","id":7}'; }
--- request
GET /err
--- error_code: 409
--- response_body_like: "error":"conflict"

=== TEST 26: hosts 2: $TEST_NGINX_THIS_* differ per instance
--- hosts: 2
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_THIS_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_CERT_DIR/localhost.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/localhost.key;
    location / { return 200 "host $TEST_NGINX_THIS_HOST port $server_port http $TEST_NGINX_THIS_PORT\n"; }
}
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_THIS_STREAM_PORT udp; return "stream host $TEST_NGINX_THIS_HOST"; }
--- config
location = /t { return 200 "hello\n"; }
--- tls: localhost
--- request
GET /
--- response_body
host 1 port $TEST_NGINX_TLS_PORT http $TEST_NGINX_PORT
--- tls_cert: ^CN=localhost SAN=DNS:localhost,IP:127\.0\.0\.1$
--- ws
tcp T $TEST_NGINX_TLS_PORT2 sni=localhost
tcp_send T GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n
tcp_recv T \r\n\r\nhost 2 port $TEST_NGINX_TLS_PORT2 http $TEST_NGINX_PORT2\n$
udp U $TEST_NGINX_STREAM_PORT2
udp_send U x
udp_recv U ^stream host 2$

=== TEST 27: --- ws eval: one command per element, CR LF kept, variables substituted
--- config
location /ws {
    proxy_pass http://127.0.0.1:$TEST_NGINX_WS_ECHO_PORT;
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection "upgrade";
}
--- ws eval
['open A /ws proto=sip',
 "send A two\r\nlines",
 'recv A ^echo:two\r\nlines len=10$',
 'send A port=$TEST_NGINX_PORT',
 'recv A ^echo:port=' . $ENV{TEST_NGINX_PORT} . ' len=\d+$',
 'set_sip M ' . join('\r\n', 'OPTIONS sip:x SIP/2.0', 'CSeq: 1 OPTIONS', '', 'abc'),
 'send A ${M}',
 'recv A \r\nContent-Length: 3\r\n\r\nabc len=\d+$']
