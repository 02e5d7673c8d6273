# SIP over WebSocket (RFC 7118, docs/sip.md): the handshake needs the
# subprotocol "sip", one SIP message per WebSocket message, answered in the
# kind of frame it came in (text or binary), CRLF keepalives, malformed
# messages, REGISTER with digest (MD5 and SHA-256, RFC 8760), nonce replay
# and expiry, bindings removed when their WebSocket closes.
use lib 't/lib';
use Test::CodeB;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);
use CodeB::JWT qw(jwt_hs256);

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => time + 600,
                                               sub => 'root',
                                               role => 'admin' });

# RFC 7616 §3.4.1 with qop=auth
sub main::digest {
    my ($alg, $user, $pass, $realm, $method, $uri, $nonce, $nc, $cnonce) = @_;
    my $h = $alg eq 'SHA-256' ? \&sha256_hex : \&md5_hex;
    my $ha1 = $h->("$user:$realm:$pass");
    my $ha2 = $h->("$method:$uri");
    return $h->("$ha1:$nonce:$nc:$cnonce:auth:$ha2");
}

sub main::authz {
    my ($alg, $user, $pass, $nonce, $nc, $uri) = @_;
    $uri //= 'sip:localhost';
    my $r = main::digest($alg, $user, $pass, 'localhost', 'REGISTER', $uri,
                         $nonce, $nc, 'c0ffee');
    return qq(Digest username="$user", realm="localhost", nonce="$nonce", )
         . qq(uri="$uri", response="$r", algorithm=$alg, qop=auth, )
         . qq(nc=$nc, cnonce="c0ffee");
}

# a user the platform API keeps in Redis: its HA1s, no password
$ENV{TEST_NGINX_DAVE_MD5} = md5_hex('dave:localhost:dave-pass');
$ENV{TEST_NGINX_DAVE_SHA256} = sha256_hex('dave:localhost:dave-pass');

# $req with CSeq $cseq and the header $name: $value added
sub main::sip_with {
    my ($req, $cseq, $name, $value) = @_;
    $req =~ s/^CSeq: \d+ /CSeq: $cseq /m;
    $req =~ s/\r\n\r\n/\r\n$name: $value\r\n\r\n/;
    return $req;
}

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
codeb_oidc_hs256_secret hs;
location = /sip { codeb_sip_ws; }
location = /signal.ashx { codeb_signal; }
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: the subprotocol sip is required and echoed
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- ws
open_fail A /sip 400
open_fail B /sip 400 proto=chat
open C /sip proto=chat,sip
close C



=== TEST 2: a plain GET is 426; a tenant-less host refuses
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- request
GET /sip
--- error_code: 426
--- response_body_like: upgrade



=== TEST 3: OPTIONS as text and binary, CRLF keepalive answered
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- ws
open A /sip proto=sip
set_sip OPT <<END
OPTIONS sip:localhost SIP/2.0
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1;rport
From: <sip:alice@localhost>;tag=f1
To: <sip:localhost>
Call-ID: opt-1
CSeq: 1 OPTIONS
Max-Forwards: 70

END
send_esc A ${OPT}
recv A (?s)^SIP/2\.0 200 OK\r\n.*Allow: [^\r]*REGISTER.*Content-Length: 0\r\n\r\n$
capture A VIA ^SIP/2\.0 200 OK\r\nVia: ([^\r]*)\r\n
set_eval OK '${VIA}' =~ /branch=z9hG4bK1/ && '${VIA}' =~ /received=127\.0\.0\.1/ && '${VIA}' =~ /rport=\d+/ ? 1 : undef
send_binary A ${OPT}
recv_binary A ^SIP/2\.0 200 OK\r\n
send_esc A \r\n\r\n
recv A ^\r\n$
close A



=== TEST 4: malformed messages: 400 where a response can be made
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- ws
open A /sip proto=sip
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK2\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: bad-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 10\r\n\r\nabc
recv A ^SIP/2\.0 400 Content-Length Mismatch\r\n
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK3\r\nFrom: <sip:a@localhost>;tag=1\r\nFrom: <sip:b@localhost>;tag=2\r\nTo: <sip:localhost>\r\nCall-ID: bad-2\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n
recv A ^SIP/2\.0 400 Malformed Or Repeated Header\r\n
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK4\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: bad-3\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n\r\n
recv A ^SIP/2\.0 400 CSeq Method Mismatch\r\n
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK5\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: bad-4\r\nCSeq: 1 OPTIONS\r\n\r\n
recv A ^SIP/2\.0 400 Missing Max-Forwards\r\n
send_esc A OPTIONS sip:localhost SIP/3.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK6\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: bad-5\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n
recv A ^SIP/2\.0 400 Bad SIP Version\r\n
send_esc A hello, this is not SIP\r\n\r\n
send_esc A SIP/2.0 200 OK\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK7\r\n\r\n
send_binary A \x00\x01\x02\xff\xfe
no_recv A 300
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK8\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: ok-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n
recv A ^SIP/2\.0 200 OK\r\n
close A



=== TEST 5: REGISTER: 401 with SHA-256 then MD5; MD5 digest registers; the binding is in Redis
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- ws
open A /sip proto=sip
set_sip REG <<END
REGISTER sip:localhost SIP/2.0
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKr1
From: <sip:alice@localhost>;tag=r1
To: <sip:alice@localhost>
Call-ID: reg-1
CSeq: 1 REGISTER
Max-Forwards: 70
Supported: path, outbound
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-4000-8000-000000000001>";expires=600

END
send_esc A ${REG}
recv A (?s)^SIP/2\.0 401 Unauthorized\r\n.*WWW-Authenticate: Digest realm="localhost", nonce="[0-9a-f]{32}", algorithm=SHA-256, qop="auth"\r\nWWW-Authenticate: Digest realm="localhost", nonce="[0-9a-f]{32}", algorithm=MD5, qop="auth"\r\n
capture A NONCE nonce="([0-9a-f]{32})"
set_eval AUTH main::authz('MD5', 'alice', 'alice-demo-pass', '${NONCE}', '00000001')
set_sip REG2 <<END
REGISTER sip:localhost SIP/2.0
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKr2
From: <sip:alice@localhost>;tag=r1
To: <sip:alice@localhost>
Call-ID: reg-1
CSeq: 2 REGISTER
Max-Forwards: 70
Supported: path, outbound
Authorization: ${AUTH}
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-4000-8000-000000000001>";expires=600

END
send_esc A ${REG2}
recv A (?s)^SIP/2\.0 200 OK\r\n.*Contact: <sip:alice@df7jal23ls0d\.invalid;transport=ws>;expires=(?:600|599)\r\n.*Require: outbound\r\n
redis ^alice$ SMEMBERS codeb:{localhost}:regs
redis "flow":"[^"]+/\d+","transport":"WS" HGET codeb:{localhost}:reg:alice <urn:uuid:00000000-0000-4000-8000-000000000001>;reg-id=1
shell curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?registrar > $TEST_NGINX_SERVROOT/reg.json
shell perl -MJSON::PP -e 'local $/; open F, "$ENV{TEST_NGINX_SERVROOT}/reg.json"; my $t = <F>; my $j = decode_json($t); my $r = $j->{registrations}; my $b = $r->[0]{bindings}[0]; exit !(@$r == 1 && $r->[0]{user} eq "alice" && $b->{contact} eq "sip:alice\@df7jal23ls0d.invalid;transport=ws" && $b->{transport} eq "WS" && $b->{instance} =~ /^<urn:uuid:/ && $b->{expiresInSec} > 500 && !exists $b->{flow} && $t !~ /password|nonce/)'
shell test $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?registrar) = 401
close A
sleep 300
redis ^0$ HLEN codeb:{localhost}:reg:alice
redis ^$ SMEMBERS codeb:{localhost}:regs



=== TEST 6: a REGISTER while Redis is down waits for it; past codeb_redis_timeout, 503 with Retry-After
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_redis_timeout 1500ms;
--- timeout: 6
--- ws
open A /sip proto=sip
set_sip REG <<END
REGISTER sip:localhost SIP/2.0
Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKw1
From: <sip:alice@localhost>;tag=w1
To: <sip:alice@localhost>
Call-ID: reg-w
CSeq: 1 REGISTER
Max-Forwards: 70
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>

END
redis_stop
sleep 500
send_esc A ${REG}
sleep 300
redis_start
recv A ^SIP/2\.0 401 Unauthorized\r\n
redis_stop
sleep 500
send_esc A ${REG}
recv A (?s)^SIP/2\.0 503 Service Unavailable\r\n.*Retry-After: 5\r\n
redis_start
close A



=== TEST 7: a tenant with codeb_sip_ws and no SIP user of its own: WebSockets one after the other, OPTIONS answered (a worker crashed on the second)
--- config
codeb_tenant localhost;
location = /sip { codeb_sip_ws; }
--- ws
open A /sip proto=sip
send_esc A OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKo7a\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: o7a\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
recv A ^SIP/2\.0 200 OK\r\n
close A
open B /sip proto=sip
send_esc B OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKo7b\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: o7b\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
recv B ^SIP/2\.0 200 OK\r\n
close B



=== TEST 8: a user from Redis (P sipuser:<name>, HA1s only): SHA-256 and MD5 register, a wrong password and an unknown user are challenged again
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- ws
redis ^2$ HSET codeb:{localhost}:sipuser:dave ha1 $TEST_NGINX_DAVE_MD5 ha1sha256 $TEST_NGINX_DAVE_SHA256
open A /sip proto=sip
set_sip REG <<END
REGISTER sip:localhost SIP/2.0
Via: SIP/2.0/WS d.invalid;branch=z9hG4bKd1
From: <sip:dave@localhost>;tag=d1
To: <sip:dave@localhost>
Call-ID: reg-d
CSeq: 1 REGISTER
Max-Forwards: 70
Contact: <sip:dave@d.invalid;transport=ws>

END
send_esc A ${REG}
recv A ^SIP/2\.0 401 Unauthorized\r\n
capture A NONCE nonce="([0-9a-f]{32})"
set_eval AUTH main::authz('SHA-256', 'dave', 'dave-pass', '${NONCE}', '00000001')
set_eval REG2 main::sip_with(q{${REG}}, 2, 'Authorization', q{${AUTH}})
send_esc A ${REG2}
recv A ^SIP/2\.0 200 OK\r\n
set_eval AUTH3 main::authz('MD5', 'dave', 'dave-pass', '${NONCE}', '00000002')
set_eval REG3 main::sip_with(q{${REG}}, 3, 'Authorization', q{${AUTH3}})
send_esc A ${REG3}
recv A ^SIP/2\.0 200 OK\r\n
set_eval AUTH4 main::authz('MD5', 'dave', 'wrong-pass', '${NONCE}', '00000003')
set_eval REG4 main::sip_with(q{${REG}}, 4, 'Authorization', q{${AUTH4}})
send_esc A ${REG4}
recv A ^SIP/2\.0 401 Unauthorized\r\n
set_eval AUTH5 main::authz('MD5', 'erin', 'x', '${NONCE}', '00000004')
set_eval REG5 main::sip_with(q{${REG}}, 5, 'Authorization', q{${AUTH5}}) =~ s/sip:dave/sip:erin/gr
send_esc A ${REG5}
recv A ^SIP/2\.0 401 Unauthorized\r\n
close A
