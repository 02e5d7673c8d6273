# Defects a conformance run of /signal.ashx found (issue 6), one block
# each, every one failing against the modules before the fix:
#  1. a body sent with a request that takes none was parsed as a second
#     request on the same connection (request smuggling);
#  2. error bodies were not valid JSON (error_description unescaped);
#  3. ?healthsummary published the whole id of a random room;
#  4. a client that closed on purpose was held for the resume grace;
#  5. requests right after a start (Redis links not up yet) got 503.
# docs/signal.md "Plain HTTP", "Types", "Resume".
use lib 't/lib';
use Test::CodeB;
use Digest::SHA qw(hmac_sha256_hex);
use CodeB::JWT qw(jwt_hs256);

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => time + 600,
                                               sub => 'root',
                                               role => 'admin' });

my $port = $ENV{TEST_NGINX_PORT} || 1984;
my $next = "GET /signal.ashx?cameras=1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
my $smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

# one request carrying $smuggled as its body (or, with $pad, a body of
# $pad bytes ending in it), then a plain request on the same connection:
# exactly two answers must come back, the second the cameras list
sub smuggle {
    my ($name, $head, $pad) = @_;
    my $body = $pad ? ('x' x ($pad - length $smuggled)) . $smuggled
                    : $smuggled;
    my $req = "$head\r\nHost: localhost\r\nContent-Length: "
              . length($body) . "\r\n\r\n$body";
    return ("tcp $name $port",
            "tcp_send $name " . esc($req . $next),
            'tcp_recv ' . $name . ' (?s)\AHTTP/1\.1 \d\d\d (?:(?!HTTP/1\.1 ).)*'
            . 'HTTP/1\.1 200 OK\r\n(?:(?!HTTP/1\.1 ).)*\{"cameras":\[\]\}\z',
            "tcp_no_recv $name 300",
            "close $name");
}

sub esc {
    my ($s) = @_;
    $s =~ s/\\/\\\\/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# bridge signature: X-Sig over "<flag>|<Host>|<body>"
my $ts = int(time * 1000);
my $nocall = qq({"ts":$ts,"did":"100"});
my $noreason = qq({"ts":$ts,"callId":"c1","reason":"x\\"y"});
$ENV{TEST_NGINX_NOCALL} = $nocall;
$ENV{TEST_NGINX_NOCALL_SIG} = hmac_sha256_hex("office-ring|localhost|$nocall",
                                              'bs');
$ENV{TEST_NGINX_NOREASON} = $noreason;
$ENV{TEST_NGINX_NOREASON_SIG} =
    hmac_sha256_hex("office-ring-clear|localhost|$noreason", 'bs');

our @SMUGGLE = (
    smuggle('T1', 'GET /signal.ashx HTTP/1.1'),
    smuggle('T2', 'GET /signal.ashx?healthsummary=1 HTTP/1.1'),
    smuggle('T3', 'GET /signal.ashx?vnum-overview=1 HTTP/1.1'),
    smuggle('T4', 'GET /signal.ashx?cameras=1 HTTP/1.1'),
    smuggle('T5', 'GET /signal.ashx?stats HTTP/1.1'),
    smuggle('T6', 'GET /signal.ashx?registrar HTTP/1.1'),
    smuggle('T7', 'GET /signal.ashx?nosuchflag HTTP/1.1'),
    smuggle('T8', 'POST /signal.ashx?healthsummary=1 HTTP/1.1'),
    smuggle('T9', 'DELETE /signal.ashx HTTP/1.1'),
    smuggle('T10', 'HEAD /signal.ashx?cameras=1 HTTP/1.1'),
    smuggle('T11', "GET /signal.ashx HTTP/1.1\r\nUpgrade: websocket\r\n"
                   . "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="),
    smuggle('T12', 'POST /signal.ashx?office-ring HTTP/1.1', 20000),
    smuggle('T13', 'PUT /signal.ashx?virtualnumbers HTTP/1.1', 20000),
);

run_tests();
done_testing();

__DATA__

=== TEST 1: a body with a request in it is never taken for a request
--- config
codeb_tenant t1;
codeb_bridge_secret bs;
location = /signal.ashx { codeb_signal; }
location / { return 404; }
--- ws eval
\@main::SMUGGLE



=== TEST 2: a 400 naming a field is valid JSON (office-ring without callId)
--- config
codeb_tenant t1;
codeb_bridge_secret bs;
location = /signal.ashx { codeb_signal; }
--- request eval
"POST /signal.ashx?office-ring\n$ENV{TEST_NGINX_NOCALL}"
--- more_headers
X-Sig: $TEST_NGINX_NOCALL_SIG
--- error_code: 400
--- response_body chomp
{"error":"invalid_request","error_description":"missing \"callId\""}



=== TEST 3: ?office-ring-clear with a bad reason: valid JSON as well
--- config
codeb_tenant t1;
codeb_bridge_secret bs;
location = /signal.ashx { codeb_signal; }
--- request eval
"POST /signal.ashx?office-ring-clear\n$ENV{TEST_NGINX_NOREASON}"
--- more_headers
X-Sig: $TEST_NGINX_NOREASON_SIG
--- error_code: 400
--- response_body chomp
{"error":"invalid_request","error_description":"\"reason\" must be cancelled, hangup or answered-elsewhere"}



=== TEST 4: ?healthsummary shows no character of a random room id
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"random","name":"A"}
recv_json A $j->{type} eq 'welcome' && $j->{room} =~ /^codeb-room-[a-z0-9]{8}$/
capture A R1 "room":"codeb-room-([a-z0-9]{8})"
open B
send B {"type":"join","room":"x","name":"B","dial":"12"}
recv_json B $j->{type} eq 'welcome' && $j->{room} =~ /^vnum-12-[a-z0-9]{8}$/
capture B R2 "room":"vnum-12-([a-z0-9]{8})"
open C
send C {"type":"join","room":"x","name":"C","dial":"123456"}
recv_json C $j->{type} eq 'welcome'
capture C R3 "room":"vnum-123456-([a-z0-9]{8})"
shell curl -s http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?healthsummary=1 > $TEST_NGINX_SERVROOT/hs.json
shell perl -MJSON::PP -e 'local $/; open F, "$ENV{TEST_NGINX_SERVROOT}/hs.json"; my $t = <F>; my $j = decode_json($t); my %r = map { $_->{id} => 1 } @{$j->{rooms}}; exit !($r{"codeb-room..."} && $r{"vnum-12-..."} && $r{"vnum-12345..."} && keys %r == 3)'
shell ! grep -e ${R1} -e ${R2} -e ${R3} $TEST_NGINX_SERVROOT/hs.json
close A
close B
close C



=== TEST 5: a client's own close frame leaves at once; a lost socket is held
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; codeb_signal_resume_grace 20s; }
--- timeout: 3
--- ws
open A
send A {"type":"join","room":"r5","name":"A"}
recv A "type":"welcome"
open B
send B {"type":"join","room":"r5","name":"B"}
recv B "type":"welcome"
capture B B "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined"
send_close B 1001 tab closed
recv_json A $j->{type} eq 'peer-left' && $j->{peerId} eq '${B}' && $j->{reason} eq 'left'
open C
send C {"type":"join","room":"r5","name":"C"}
recv C "type":"welcome"
recv A "type":"peer-joined"
drop C
no_recv A 1500
open D
send D {"type":"join","room":"r5","name":"D"}
recv D "type":"welcome"
recv A "type":"peer-joined"
send_close D 4000
recv_json A $j->{type} eq 'peer-left' && $j->{reason} eq 'left'
close A



=== TEST 6: a request and a join that come while Redis is down wait for it
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- http_config
codeb_redis_timeout 3s;
--- timeout: 6
--- ws
redis_stop
# both workers see their links drop first (a request that comes before
# they do takes the path of a link that fails under it: 503 at once)
sleep 500
tcp T $TEST_NGINX_PORT
tcp_send T GET /signal.ashx?healthsummary=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n
open A
send A {"type":"join","room":"r6","name":"A"}
sleep 500
redis_start
tcp_recv T (?s)\AHTTP/1\.1 200 OK\r\n.*"tenant":"t1"
recv A "type":"welcome"
close A



=== TEST 7: Redis still down after codeb_redis_timeout: 503, ?stats says down, 1013 for a join
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- http_config
codeb_redis_timeout 1s;
--- timeout: 5
--- ws
redis_stop
tcp T $TEST_NGINX_PORT
tcp_send T GET /signal.ashx?healthsummary=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n
open A
send A {"type":"join","room":"r7","name":"A"}
tcp_recv T \AHTTP/1\.1 503\b
expect_close A 1013
tcp S $TEST_NGINX_PORT
tcp_send S GET /signal.ashx?stats HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $TEST_NGINX_JWT_ADMIN\r\nConnection: close\r\n\r\n
tcp_recv S (?s)\AHTTP/1\.1 200 OK\r\n.*"redis":"down"
redis_start
