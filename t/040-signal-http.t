# Plain HTTP on /signal.ashx (docs/signal.md): ?healthsummary,
# ?vnum-overview, ?cameras, admin flags, ?virtualnumbers CRUD and
# ?whitelist.
use lib 't/lib';
use Test::CodeB;
use CodeB::JWT qw(jwt_hs256);
use Digest::SHA qw(hmac_sha256_hex);

my %base = (exp => time + 600);
$ENV{TEST_NGINX_JWT_USER} = jwt_hs256('hs', { %base, sub => 'u1' });
$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs',
    { %base, sub => 'root', role => 'admin' });
$ENV{TEST_NGINX_JWT_ROLES} = jwt_hs256('hs',
    { %base, sub => 'root', roles => ['ops', 'admin'] });
$ENV{TEST_NGINX_JWT_BAD} = jwt_hs256('nope', { %base, sub => 'x' });

# admin HMAC: X-Sig over "<flag>|<Host>|<X-Timestamp>|<body>"
sub admin_sig {
    my ($flag, $ts, $body, $key) = @_;
    my $host = 'localhost';
    return hmac_sha256_hex("$flag|$host|$ts|" . ($body // ''), $key // 'adm');
}

my $ms = int(time * 1000);
$ENV{TEST_NGINX_TS} = $ms;
$ENV{TEST_NGINX_TS_OLD} = $ms - 400000;
$ENV{TEST_NGINX_SIG_STATS} = admin_sig('stats', $ms);
$ENV{TEST_NGINX_SIG_STATS_OLD} = admin_sig('stats', $ms - 400000);
$ENV{TEST_NGINX_SIG_STATS_WRONG} = admin_sig('stats', $ms, '', 'other');
$ENV{TEST_NGINX_SIG_WL} = admin_sig('whitelist', $ms);
$ENV{TEST_NGINX_SIG_VN} = admin_sig('virtualnumbers', $ms,
    '{"number":"777","name":"Sales","mode":"tts","visibility":"anonymous"}');

run_tests();
done_testing();

__DATA__

=== TEST 1: ?healthsummary: rooms (ids cut at 10), trunks, calls; no numbers
--- config
codeb_tenant t1;
codeb_vnum 2000;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"random","name":"A","dial":"2000"}
recv A "type":"welcome"
open B
send B {"type":"join","room":"short","name":"B"}
recv B "type":"welcome"
open C
send C {"type":"join","room":"short","name":"C"}
recv C "type":"welcome"
redis ^1$ HSET codeb:{t1}:trunks sipgate 1,1000
redis ^1$ HSET codeb:{t1}:trunks backup 0,-
redis ^1$ ZADD codeb:{t1}:cdr:vnum 9999999999 call-1
redis ^1$ SADD codeb:media:daemons md1
redis ^1$ HSET codeb:media:md1 call-x 1700000000,30000
redis ^1$ HSET codeb:media:md1 call-y 1700000000,30002
shell curl -s http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?healthsummary=1 > /tmp/codeb-hs.json
shell perl -MJSON::PP -e 'local $/; open F, "/tmp/codeb-hs.json"; my $j = decode_json(<F>); my %r = map { $_->{id} => $_->{peers} } @{$j->{rooms}}; my %t = map { $_->{id} => $_ } @{$j->{trunks}}; exit !($j->{tenant} eq "t1" && $r{"short"} == 2 && $r{"vnum-2000-..."} == 1 && keys %r == 2 && $t{sipgate}{registered} && $t{sipgate}{lastSeenSec} > 1000 && !$t{backup}{registered} && !defined $t{backup}{lastSeenSec} && $j->{vnumCallsLast24h} == 1 && $j->{mediaCalls} == 2 && $j->{build})'
close A
close B
close C

=== TEST 2: ?healthsummary headers
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?healthsummary=1
--- response_headers
Content-Type: application/json
Cache-Control: no-store
--- response_body_like chomp
^\{"build":"[^"]+","tenant":"t1","rooms":\[\],"trunks":\[\],"vnumCallsLast24h":0,"mediaCalls":0\}$

=== TEST 3: ?vnum-overview: anonymous rows only without a Bearer
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
codeb_vnum 1234 name=CodeBDemo mode=gemini-live visibility=anonymous;
codeb_vnum 5555 name=Internal visibility=signed-in user=alice;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?vnum-overview=1
--- response_body chomp
{"virtualNumbers":[{"number":"1234","name":"CodeBDemo","mode":"gemini-live","dialUrl":"http://localhost/room.html?room=random&dial=1234&cam=off","visibility":"anonymous"}]}

=== TEST 4: ?vnum-overview with a valid Bearer shows signed-in rows
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
codeb_vnum 1234 name=CodeBDemo mode=gemini-live visibility=anonymous;
codeb_vnum 5555 name=Internal visibility=signed-in user=alice;
location = /signal.ashx { codeb_signal; }
--- more_headers
Authorization: Bearer $TEST_NGINX_JWT_USER
--- request
GET /signal.ashx?vnum-overview=1
--- response_body chomp
{"virtualNumbers":[{"number":"1234","name":"CodeBDemo","mode":"gemini-live","dialUrl":"http://localhost/room.html?room=random&dial=1234&cam=off","visibility":"anonymous"},{"number":"5555","name":"Internal","mode":"tts","dialUrl":"http://localhost/room.html?room=random&dial=5555&cam=off","visibility":"signed-in"}]}

=== TEST 5: ?vnum-overview with an invalid Bearer is 401
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- more_headers
Authorization: Bearer $TEST_NGINX_JWT_BAD
--- request
GET /signal.ashx?vnum-overview=1
--- error_code: 401
--- response_body_like chomp
"error":"invalid_token"

=== TEST 6: ?cameras lists the tenant's cameras
--- config
codeb_tenant t1;
codeb_camera lobby;
codeb_camera yard cam-7;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?cameras=1
--- response_body chomp
{"cameras":[{"name":"lobby","streamId":"lobby"},{"name":"yard","streamId":"cam-7"}]}

=== TEST 7: ?cameras without cameras is an empty array
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?cameras=1
--- response_body chomp
{"cameras":[]}

=== TEST 8: unknown flag 400, wrong method 405
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?nonsense=1
--- error_code: 400
--- response_body_like chomp
"error":"unknown_flag"

=== TEST 9: POST to a read flag is 405
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- request
POST /signal.ashx?cameras=1
x
--- error_code: 405

=== TEST 10: admin flag without credentials: 401 with WWW-Authenticate
--- config
codeb_tenant t1;
codeb_admin_secret adm;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- request
GET /signal.ashx?stats=1
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer
Cache-Control: no-store

=== TEST 11: admin flag with a non-admin Bearer: 403
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- more_headers
Authorization: Bearer $TEST_NGINX_JWT_USER
--- request
GET /signal.ashx?stats=1
--- error_code: 403

=== TEST 12: ?stats with an admin Bearer (role, or roles[])
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"st","name":"A"}
recv A "type":"welcome"
shell curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?stats=1 | grep -q '"redis":"up","rooms":1,"peers":1,"mediaCalls":0,"worker":{"id":"'
shell curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ROLES' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?stats=1 | grep -q '"tenant":"t1"'
close A

=== TEST 13: ?stats with the admin HMAC
--- config
codeb_tenant t1;
codeb_admin_secret adm;
location = /signal.ashx { codeb_signal; }
--- more_headers
X-Timestamp: $TEST_NGINX_TS
X-Sig: $TEST_NGINX_SIG_STATS
--- request
GET /signal.ashx?stats=1
--- response_body_like chomp
"redis":"up"

=== TEST 14: admin HMAC with a stale timestamp: 401
--- config
codeb_tenant t1;
codeb_admin_secret adm;
location = /signal.ashx { codeb_signal; }
--- more_headers
X-Timestamp: $TEST_NGINX_TS_OLD
X-Sig: $TEST_NGINX_SIG_STATS_OLD
--- request
GET /signal.ashx?stats=1
--- error_code: 401

=== TEST 15: admin HMAC with the wrong secret: 401
--- config
codeb_tenant t1;
codeb_admin_secret adm;
location = /signal.ashx { codeb_signal; }
--- more_headers
X-Timestamp: $TEST_NGINX_TS
X-Sig: $TEST_NGINX_SIG_STATS_WRONG
--- request
GET /signal.ashx?stats=1
--- error_code: 401

=== TEST 16: ?virtualnumbers create (HMAC), list, dial, update, delete
--- config
codeb_tenant t1;
codeb_admin_secret adm;
codeb_oidc_hs256_secret hs;
codeb_vnum 1234 name=Conf visibility=anonymous;
location = /signal.ashx { codeb_signal; }
--- ws
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Host: localhost' -H 'X-Timestamp: $TEST_NGINX_TS' -H 'X-Sig: $TEST_NGINX_SIG_VN' --data-binary '{"number":"777","name":"Sales","mode":"tts","visibility":"anonymous"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 201
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"777","name":"Again"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 409
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"1234"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 409
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"12a"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 400
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary 'not json' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 400
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"9","visibility":"public"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 400
shell curl -sf http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?vnum-overview=1 | grep -q '"number":"1234".*"number":"777","name":"Sales","mode":"tts","dialUrl":"http://127.0.0.1:[0-9]*/room.html?room=random&dial=777&cam=off","visibility":"anonymous"'
shell curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers | grep -q '"source":"config".*"source":"redis"'
open A
send A {"type":"join","room":"vn","name":"A"}
recv A "type":"welcome"
send A {"type":"dial","number":"777"}
recv A "code":"bridge_unavailable"
shell test $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"777","name":"Sales2","visibility":"signed-in"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 200
shell test $(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' --data-binary '{"number":"778","name":"Nope"}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers) = 404
shell ! curl -sf http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?vnum-overview=1 | grep -q '777'
shell test $(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' 'http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers&number=777') = 200
shell test $(curl -s -o /dev/null -w '%{http_code}' -X DELETE -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' 'http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?virtualnumbers&number=777') = 404
send A {"type":"dial","number":"777"}
recv A "code":"unknown_peer"
close A

=== TEST 17: a body over 16 KiB is 413
--- config
codeb_tenant t1;
codeb_bridge_secret b;
location = /signal.ashx { codeb_signal; }
--- request eval
"POST /signal.ashx?office-ring\n" . ('x' x 20000)
--- error_code: 413

=== TEST 18: flags answer 503 while Redis is down, and recover
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
shell redis-cli -s $TEST_NGINX_REDIS_SOCK shutdown nosave || true
sleep 300
shell test $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?healthsummary=1) = 503
shell curl -sf http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?cameras=1 | grep -q cameras
redis_restart
sleep 1500
shell test $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?healthsummary=1) = 200

=== TEST 19: ?whitelist: admin only; the tenant's set, sorted, by Bearer or HMAC
--- config
codeb_tenant t1;
codeb_admin_secret adm;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- ws
shell test $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 401
shell curl -s -o /dev/null -D - http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist | grep -qi '^WWW-Authenticate: Bearer'
shell test $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TEST_NGINX_JWT_USER' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 403
shell test $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TEST_NGINX_JWT_BAD' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 401
shell test $(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary '+15550000000' -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 405
shell test "$(curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist)" = '{"data":[],"total":0}'
redis ^1$ SADD codeb:{t1}:whitelist +4930123456
redis ^1$ SADD codeb:{t1}:whitelist +15551234567
redis ^1$ SADD codeb:{t2}:whitelist +15550000000
shell test "$(curl -sf -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist)" = '{"data":["+15551234567","+4930123456"],"total":2}'
shell test "$(curl -sf -H 'Host: localhost' -H 'X-Timestamp: $TEST_NGINX_TS' -H 'X-Sig: $TEST_NGINX_SIG_WL' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist)" = '{"data":["+15551234567","+4930123456"],"total":2}'
shell curl -sf -o /dev/null -D - -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist | grep -qi '^Content-Type: application/json'

=== TEST 20: ?whitelist answers 503 while Redis is down, and recovers
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs;
location = /signal.ashx { codeb_signal; }
--- timeout: 20
--- ws
redis ^1$ SADD codeb:{t1}:whitelist +15551234567
redis_stop
shell test $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 503
shell test $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist) = 401
redis_start
redis ^1$ SADD codeb:{t1}:whitelist +15551234567
# the links come back after their backoff (at most 5 s)
shell for i in $(seq 40); do test "$(curl -s -H 'Authorization: Bearer $TEST_NGINX_JWT_ADMIN' http://127.0.0.1:$TEST_NGINX_PORT/signal.ashx?whitelist)" = '{"data":["+15551234567"],"total":1}' && exit 0; sleep 0.5; done; exit 1
