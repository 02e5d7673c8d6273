# SIP over UDP and TCP (RFC 3261 §18, docs/sip.md): the stream module
# finds the tenant by the Request-URI, answers OPTIONS, frames TCP by
# Content-Length (several messages in one segment, one split over
# several), answers CRLF keepalives, REGISTERs with digest (SHA-256),
# refuses a replayed nonce count and a stale nonce, applies the ACL to
# REGISTER and INVITE on UDP, TCP and WebSocket, and survives malformed
# input.
use lib 't/lib';
use Test::CodeB;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);

sub main::authz {
    my ($alg, $user, $pass, $nonce, $nc) = @_;
    my $h = $alg eq 'SHA-256' ? \&sha256_hex : \&md5_hex;
    my $uri = 'sip:localhost';
    my $ha1 = $h->("$user:localhost:$pass");
    my $ha2 = $h->("REGISTER:$uri");
    my $r = $h->("$ha1:$nonce:$nc:beef:auth:$ha2");
    return qq(Digest username="$user", realm="localhost", nonce="$nonce", )
         . qq(uri="$uri", response="$r", algorithm=$alg, qop=auth, )
         . qq(nc=$nc, cnonce="beef");
}

sub main::register {
    my ($n, $auth, $cseq) = @_;
    my $a = $auth ? "Authorization: $auth\r\n" : '';
    return "REGISTER sip:localhost SIP/2.0\r\n"
         . "Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKu$n;rport\r\n"
         . "From: <sip:bob\@localhost>;tag=u1\r\nTo: <sip:bob\@localhost>\r\n"
         . "Call-ID: udp-reg-1\r\nCSeq: $cseq REGISTER\r\nMax-Forwards: 70\r\n"
         . $a . "Contact: <sip:bob\@127.0.0.1:5999>;expires=120\r\n"
         . "Content-Length: 0\r\n\r\n";
}

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; codeb_sip; }
EOF

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: OPTIONS over UDP: 200 with received and rport
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
udp U $TEST_NGINX_STREAM_PORT
udp_send U OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKo1;rport\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: u-opt-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
udp_recv U ^SIP/2\.0 200 OK\r\nVia: SIP/2\.0/UDP 10\.9\.9\.9:5060;branch=z9hG4bKo1;rport=${U_lport};received=127\.0\.0\.1\r\n
udp_send U OPTIONS sip:nowhere.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKo2\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:nowhere.test>\r\nCall-ID: u-opt-2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
udp_recv U ^SIP/2\.0 404 Domain Not Served\r\n
udp_send U \x00\x01garbage\r\n\r\n
udp_send U SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKx\r\n\r\n
udp_no_recv U 300



=== TEST 2: TCP: two messages in one segment, one split, keepalive, malformed
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
tcp T $TEST_NGINX_STREAM_PORT
set O1 OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt1\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: t-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
set O2 OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt2\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: t-2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nl: 4\r\n\r\nabcd
tcp_send T ${O1}${O2}
tcp_recv_sip T ^SIP/2\.0 200 OK\r\nVia: [^\r]*z9hG4bKt1
tcp_recv_sip T ^SIP/2\.0 200 OK\r\nVia: [^\r]*z9hG4bKt2
tcp_send T OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt3\r\nFrom: <sip:x@local
sleep 100
tcp_send T host>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: t-3\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
tcp_recv_sip T ^SIP/2\.0 200 OK\r\nVia: [^\r]*z9hG4bKt3
tcp_send T \r\n\r\n
tcp_recv T \A\r\n
tcp_send T OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKt4\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: t-4\r\nCSeq: 2 OPTIONS\r\nCSeq: 3 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
tcp_recv_sip T ^SIP/2\.0 400 Malformed Or Repeated Header\r\n
tcp_send T OPTIONS sip:localhost SIP/2.0\r\nContent-Length: x12\r\n\r\n
expect_eof T
tcp V $TEST_NGINX_STREAM_PORT
tcp_send V ${O1}
tcp_recv_sip V ^SIP/2\.0 200 OK\r\n
close V



=== TEST 3: a header block that never ends closes the TCP connection
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
["tcp T $ENV{TEST_NGINX_STREAM_PORT}",
 "tcp_send T OPTIONS sip:localhost SIP/2.0\\r\\nX-Long: " . ('a' x 17000),
 "expect_eof T"]



=== TEST 4: REGISTER over UDP with SHA-256; a replayed nonce count and a stale nonce are 401
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
udp U $TEST_NGINX_STREAM_PORT
set_eval R1 main::register(1, '', 1)
udp_send U ${R1}
udp_recv U ^SIP/2\.0 401 Unauthorized\r\n
capture U NONCE nonce="([0-9a-f]{32})"
set_eval A1 main::authz('SHA-256', 'bob', 'wrong-pass', '${NONCE}', '00000001')
set_eval R2 main::register(2, '${A1}', 2)
udp_send U ${R2}
udp_recv U ^SIP/2\.0 401 Unauthorized\r\n
set_eval A2 main::authz('SHA-256', 'bob', 'bob-demo-pass', '${NONCE}', '00000001')
set_eval R3 main::register(3, '${A2}', 3)
udp_send U ${R3}
udp_recv U (?s)^SIP/2\.0 200 OK\r\n.*Contact: <sip:bob@127\.0\.0\.1:5999>;expires=1[12]\d\r\n
redis "transport":"UDP","source":"127\.0\.0\.1","port":\d+ HGET codeb:{localhost}:reg:bob sip:bob@127.0.0.1:5999
set_eval R4 main::register(4, '${A2}', 4)
udp_send U ${R4}
udp_recv U (?s)^SIP/2\.0 401 Unauthorized\r\n(?!.*stale)
redis ^1$ DEL codeb:{localhost}:nonce:${NONCE}
set_eval A3 main::authz('SHA-256', 'bob', 'bob-demo-pass', '${NONCE}', '00000002')
set_eval R5 main::register(5, '${A3}', 5)
udp_send U ${R5}
udp_recv U (?s)^SIP/2\.0 401 Unauthorized\r\n.*stale=true



=== TEST 5: codeb_sip_acl: REGISTER and INVITE refused on UDP, TCP and WebSocket; OPTIONS answered
--- config
codeb_tenant localhost;
codeb_sip_user bob password=bob-demo-pass;
codeb_sip_acl allow 10.0.0.0/8;
codeb_sip_acl deny all;
location = /sip { codeb_sip_ws; }
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
udp U $TEST_NGINX_STREAM_PORT
set_eval R1 main::register(1, '', 1)
udp_send U ${R1}
udp_recv U ^SIP/2\.0 403 Forbidden\r\n
udp_send U OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bKo1\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: u-opt-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
udp_recv U ^SIP/2\.0 200 OK\r\n
udp_send U INVITE sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bKacl1;rport\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:bob@localhost>\r\nCall-ID: u-acl-inv\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:x@127.0.0.1:5999>\r\nContent-Length: 0\r\n\r\n
udp_recv U (?s)^SIP/2\.0 403 Forbidden\r\n.*Call-ID: u-acl-inv\r\n
tcp T $TEST_NGINX_STREAM_PORT
tcp_send T REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKacl2\r\nFrom: <sip:bob@localhost>;tag=t1\r\nTo: <sip:bob@localhost>\r\nCall-ID: t-acl-reg\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:bob@127.0.0.1:5999;transport=tcp>\r\nContent-Length: 0\r\n\r\n
tcp_recv_sip T (?s)^SIP/2\.0 403 Forbidden\r\n.*Call-ID: t-acl-reg\r\n
tcp_send T INVITE sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKacl3\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:bob@localhost>\r\nCall-ID: t-acl-inv\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:x@127.0.0.1:5999;transport=tcp>\r\nContent-Length: 0\r\n\r\n
tcp_recv_sip T (?s)^SIP/2\.0 403 Forbidden\r\n.*Call-ID: t-acl-inv\r\n
open W /sip proto=sip
send_esc W REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKacl4\r\nFrom: <sip:bob@localhost>;tag=w1\r\nTo: <sip:bob@localhost>\r\nCall-ID: w-acl-reg\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:b@x.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n
recv W (?s)^SIP/2\.0 403 Forbidden\r\n.*Call-ID: w-acl-reg\r\n
send_esc W INVITE sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKacl5\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:bob@localhost>\r\nCall-ID: w-acl-inv\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContact: <sip:x@x.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n
recv W (?s)^SIP/2\.0 403 Forbidden\r\n.*Call-ID: w-acl-inv\r\n
close W
--- error_log
refused by codeb_sip_acl
