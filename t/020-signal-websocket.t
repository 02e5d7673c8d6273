# RFC 6455 on /signal.ashx: handshake checks, framing violations and their
# close codes (docs/signal.md "WebSocket"), fragmentation, control frames,
# keepalive, slow readers.  Every block checks that no worker crashed.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: plain GET is the build stamp, no-store
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx
--- response_headers
Content-Type: text/plain
Cache-Control: no-store
--- response_body_like chomp
^\S+ \d{4}-\d\d-\d\d\n$

=== TEST 2: handshake without Sec-WebSocket-Key is 400
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
--- error_code: 400
--- response_headers
Cache-Control: no-store
--- response_body_like chomp
"error":"bad_handshake"

=== TEST 3: a key that is not 16 bytes of base64 is 400
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA\r\n\r\n"
--- error_code: 400

=== TEST 3a: a 24-character key without padding (18 bytes) is 400
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAAA\r\n\r\n"
--- error_code: 400

=== TEST 4: version 8 is 426 with Sec-WebSocket-Version: 13
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13

=== TEST 5: POST upgrade is 405
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"POST /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n"
--- error_code: 405

=== TEST 6: Connection without the upgrade token is 400
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
--- error_code: 400

=== TEST 7: the RFC 6455 sample key gets its sample accept value
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
--- error_code: 101
--- response_headers
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
Upgrade: websocket

=== TEST 8: a host without codeb_tenant refuses the upgrade
--- config
location = /signal.ashx { codeb_signal; }
--- raw_request eval
"GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
--- error_code: 403
--- response_body_like chomp
"error":"no_tenant"

=== TEST 9: unmasked client frame closes with 1002
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_unmasked A {"type":"ping"}
expect_close A 1002
--- error_log
unmasked client frame, closing with 1002

=== TEST 10: reserved bits close with 1002
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A c1 80 00 00 00 00
expect_close A 1002

=== TEST 11: reserved opcodes close with 1002
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A 83 80 00 00 00 00
expect_close A 1002
open B
send_raw B 8b 80 00 00 00 00
expect_close B 1002

=== TEST 12: a control frame over 125 bytes or fragmented closes with 1002
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A 89 fe 00 7e 00 00 00 00 000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
expect_close A 1002
open B
send_raw B 09 80 00 00 00 00
expect_close B 1002

=== TEST 13: continuation without a start, or a new message inside one: 1002
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_frames A 0 1 {"type":"ping"}
expect_close A 1002
open B
send_frames B 1 0 {"type":
send_frames B 1 1 "ping"}
expect_close B 1002

=== TEST 14: fragments are joined; pings may come between them
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_frames A 1 0 {"type":"jo
ping A mid
expect_pong A mid
send_frames A 0 0 in","room":"frag",
send_frames A 0 1 "name":"F"}
recv A "type":"welcome","peerId"
close A

=== TEST 15: invalid UTF-8 closes with 1007, also across fragments
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A 81 84 00 00 00 00 22 c3 28 22
expect_close A 1007
open B
send_raw B 01 81 00 00 00 00 e2
send_raw B 80 81 00 00 00 00 28
expect_close B 1007
open C
send_raw C 81 86 00 00 00 00 22 ed a0 80 22 20
expect_close C 1007

=== TEST 16: a message over the limit closes with 1009, whole or in fragments
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_max_message 2k;
}
--- ws
open A
send_big A 2048
recv A "type":"error","code":"not_joined"
send_big A 2049
recv A ^\{"type":"error","code":"frame_too_large"
expect_close A 1009
open B
send_frames B 1 0 {"type":"join","room":"big","name":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
send_frames B 0 0 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
send_frames B 0 1 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
expect_close B 1009
open C
send_raw C 81 ff 80 00 00 00 00 00 00 01 00 00 00 00
expect_close C 1002
open D
send_raw D 81 ff 00 00 00 01 00 00 00 00 00 00 00 00
expect_close D 1009

=== TEST 17: binary frames are a bad_frame; the connection stays
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_frames A 2 1 {"type":"ping"}
recv A "code":"bad_frame"
send A {"type":"join","room":"bin","name":"A"}
recv A "type":"welcome"
close A

=== TEST 18: close frames: echoed code, invalid code 1002, empty close 1000
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_close A 3001 bye
expect_close A 3001
open B
send_close B 1005
expect_close B 1002
open C
send_raw C 88 80 00 00 00 00
expect_close C 1000
open D
send_raw D 88 81 00 00 00 00 03
expect_close D 1002

=== TEST 19: garbage bytes after the handshake: 1002 and the worker lives
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A 474554202f20485454502f312e310d0a0d0a
expect_close A 1002
worker_alive A
open B same A
send B {"type":"join","room":"g","name":"B"}
recv B "type":"welcome"
close B

=== TEST 20: frames split across TCP segments and many frames in one segment
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send_raw A 81
sleep 50
send_raw A 8f 00 00 00 00 7b 22 74 79 70 65 22 3a 22
sleep 50
send_raw A 70 69 6e 67 22 7d 81 8f 00 00 00 00 7b 22 74 79 70 65 22 3a 22 70 69 6e 67 22 7d
recv A "code":"not_joined"
recv A "code":"not_joined"
close A

=== TEST 21: server pings every interval; a silent peer is closed and leaves
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_ping_interval 1s;
    codeb_signal_ping_timeout 3s;
    codeb_signal_resume_grace 0;
    codeb_signal_state_ttl 3s;
}
--- timeout: 8
--- ws
open A
send A {"type":"join","room":"ka","name":"A"}
recv A "type":"welcome"
open B
autopong B off
send B {"type":"join","room":"ka","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined"
expect_ping B
expect_ping B
recv_json A $j->{type} eq 'peer-left' && $j->{peerId} eq '${b}' && $j->{reason} eq 'disconnected'
expect_eof B
close A
--- error_log
WebSocket peer silent for

=== TEST 22: a slow reader is disconnected, not buffered forever
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_max_message 64k;
    codeb_signal_send_queue 64k;
    codeb_signal_resume_grace 0;
    codeb_signal_rate 1000;
    codeb_signal_burst 1000;
}
--- timeout: 10
--- ws eval
my $pad = 'x' x 60000;
my $s = "open A\nsend A {\"type\":\"join\",\"room\":\"slow\",\"name\":\"A\"}\n"
  . "recv A \"type\":\"welcome\"\n"
  . "open B\nautopong B off\n"
  . "send B {\"type\":\"join\",\"room\":\"slow\",\"name\":\"B\"}\n"
  . "recv A \"type\":\"peer-joined\"\n"
  . "capture A b \"peerId\":\"(p_[0-9a-f]{16})\"\n";
$s .= "send A {\"type\":\"signal\",\"to\":\"\${b}\",\"data\":\"$pad\"}\n" for 1 .. 400;
# B is dropped once its queue is full: signals A sends after that, handled
# locally, may be answered unknown_peer before peer-left comes over Redis.
$s .= "skip_json A \$j->{type} eq 'error' && \$j->{code} eq 'unknown_peer'\n"
  . "recv_json A \$j->{type} eq 'peer-left' && \$j->{peerId} eq '\${b}'\n"
  . "expect_eof B\nclose A\n";
$s;
--- error_log
WebSocket peer reads too slowly

=== TEST 23: frames sent in the same packet as the handshake are read
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
shell perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_PORT}") or die; $s->syswrite("GET /signal.ashx HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n\x81\x8f\0\0\0\0{\"type\":\"ping\"}\x88\x82\0\0\0\0\x03\xe8"); alarm 3; $r .= $b while sysread($s, $b, 4096); exit !($r =~ m{^HTTP/1.1 101 } && $r =~ m{"code":"not_joined"} && $r =~ m{\x88\x02\x03\xe8})'
