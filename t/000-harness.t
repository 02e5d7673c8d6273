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
# frag, big, json, ping-me, bye, silent; anything else is echoed.
sub ws_peer {
    my ($s, $handshake) = @_;
    binmode $s;
    my $buf = '';
    my $read = sub { my $n = sysread($s, $buf, 65536, length $buf); POSIX::_exit(0) unless $n };
    if ($handshake) {
        $read->() until $buf =~ /\r\n\r\n/;
        my ($key) = $buf =~ /Sec-WebSocket-Key:\s*(\S+)/i;
        $buf =~ s/^.*?\r\n\r\n//s;
        my $acc = encode_base64(sha1($key . '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'), '');
        write_all($s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    . "Connection: Upgrade\r\nSec-WebSocket-Accept: $acc\r\n\r\n");
    }
    my $out = sub {
        my ($op, $p, $fin) = @_;
        write_all($s, $enc->(opcode => $op, payload => $p, mask => 0, fin => $fin // 1));
    };
    my ($msg, $want_pong, $closing) = ('', 0, 0);
    while (1) {
        my $f = $dec->(\$buf) or do { $read->(); next };
        if (!$f->{masked}) { $out->(8, pack('n', 1002) . 'unmasked'); POSIX::_exit(0) }
        my $op = $f->{opcode};
        if ($op == 8) { $out->(8, $f->{payload}) unless $closing; POSIX::_exit(0) }
        if ($op == 9) { $out->(10, $f->{payload}); next }
        if ($op == 10) { $out->(1, "got-pong:$f->{payload}") if $want_pong; $want_pong = 0; next }
        $msg = $op ? $f->{payload} : $msg . $f->{payload};
        next unless $f->{fin};
        if    ($msg eq 'frag')    { $out->(1, 'ab', 0); $out->(9, 'k'); $out->(0, 'cd', 0); $out->(0, 'ef') }
        elsif ($msg eq 'big')     { $out->(1, 'y' x 70000) }
        elsif ($msg eq 'json')    { $out->(1, '{"type":"welcome","peerId":"p_0123456789abcdef","peers":[]}') }
        elsif ($msg eq 'json3')   { $out->(1, '{"n":1}'); $out->(1, '{"n":2}'); $out->(1, '{"type":"x"}') }
        elsif ($msg eq 'ping-me') { $out->(9, 'srv'); $want_pong = 1 }
        elsif ($msg eq 'bye')     { $out->(8, pack('n', 4001) . 'kicked'); $closing = 1 }
        elsif ($msg eq 'silent')  { }
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
EOT
    close $fh;
    {   # the marker is spelled out only here: Test::Base's source filter
        # would take a literal one in this file for the real one
        local @ARGV = ("$dir/fail.t");
        local $^I = '';
        while (<>) { s/^\@\@DATA\@\@$/'__' . 'DATA__'/e; print }
    }
    my $fport = $port + 10;
    my $cmd = "cd '$dir' && env -u TEST_NGINX_MODULES TEST_NGINX_PORT=$fport TEST_NGINX_PORT2="
            . ($fport + 1) . " TEST_NGINX_SERVROOT='$dir/servroot' TEST_NGINX_ROOT='$root' "
            . "timeout 120 '$^X' fail.t > out.txt 2>&1";
    my $rc = system('/bin/sh', '-c', $cmd);
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
