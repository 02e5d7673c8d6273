# verifiedIdentity from OIDC tokens (docs/signal.md): HS256 and RS256,
# exp / iss / aud, algorithm pinning; office tabs and the bridge rings.
use lib 't/lib';
use Test::CodeB;
use CodeB::JWT qw(jwt_hs256 jwt_rs256 jwt_none rsa_keypair);

my $now = time;
my %base = (iss => 'https://idp.test', aud => 'codeb', exp => $now + 600);

$ENV{TEST_NGINX_JWT_ALICE} = jwt_hs256('hs-secret',
    { %base, sub => 'u1', preferred_username => 'alice' });
$ENV{TEST_NGINX_JWT_EMAIL} = jwt_hs256('hs-secret',
    { %base, sub => 'u2', email => 'bob@example.test' });
$ENV{TEST_NGINX_JWT_SUB} = jwt_hs256('hs-secret', { %base, sub => 'u3' });
$ENV{TEST_NGINX_JWT_AUDS} = jwt_hs256('hs-secret',
    { %base, aud => ['other', 'codeb'], sub => 'u4' });
$ENV{TEST_NGINX_JWT_EXPIRED} = jwt_hs256('hs-secret',
    { %base, exp => $now - 10, sub => 'u5' });
$ENV{TEST_NGINX_JWT_NOEXP} = jwt_hs256('hs-secret',
    { iss => $base{iss}, aud => 'codeb', sub => 'u6' });
$ENV{TEST_NGINX_JWT_ISS} = jwt_hs256('hs-secret',
    { %base, iss => 'https://evil.test', sub => 'u7' });
$ENV{TEST_NGINX_JWT_AUD} = jwt_hs256('hs-secret',
    { %base, aud => 'other', sub => 'u8' });
$ENV{TEST_NGINX_JWT_WRONGKEY} = jwt_hs256('not-the-secret',
    { %base, sub => 'u9' });
$ENV{TEST_NGINX_JWT_NONE} = jwt_none({ %base, sub => 'u10' });
$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs-secret',
    { %base, sub => 'root', role => 'admin' });
$ENV{TEST_NGINX_JWT_ROLES} = jwt_hs256('hs-secret',
    { %base, sub => 'root2', roles => ['ops', 'admin'] });

my ($key, $pub) = rsa_keypair();
$ENV{TEST_NGINX_RSA_PUB} = $pub;
$ENV{TEST_NGINX_JWT_RS} = jwt_rs256($key,
    { %base, preferred_username => 'carol' });
# an HS256 token whose HMAC key is the RS256 public key: must be refused
{
    open my $fh, '<', $pub or die;
    local $/;
    my $pem = <$fh>;
    $ENV{TEST_NGINX_JWT_CONFUSED} = jwt_hs256($pem,
        { %base, preferred_username => 'mallory' });
}

run_tests();
done_testing();

__DATA__

=== TEST 1: HS256: the badge is preferred_username, else email, else sub
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs-secret;
codeb_oidc_issuer https://idp.test;
codeb_oidc_audience codeb;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"id","name":"A","token":"$TEST_NGINX_JWT_ALICE"}
recv A "type":"welcome"
open B
send B {"type":"join","room":"id","name":"B","token":"$TEST_NGINX_JWT_EMAIL"}
recv_json B $j->{peers}[0]{verifiedIdentity} eq 'alice'
recv A "type":"peer-joined".*"verifiedIdentity":"bob@example.test"
open C
send C {"type":"join","room":"id","name":"C","token":"$TEST_NGINX_JWT_SUB"}
recv A "verifiedIdentity":"u3"
open D
send D {"type":"join","room":"id","name":"D","token":"$TEST_NGINX_JWT_AUDS"}
recv A "verifiedIdentity":"u4"
open E
send E {"type":"join","room":"id","name":"E"}
recv_json A $j->{type} eq 'peer-joined' && $j->{name} eq 'E' && !exists $j->{verifiedIdentity}
close A
close B
close C
close D
close E

=== TEST 2: invalid tokens are forbidden, never an anonymous join
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs-secret;
codeb_oidc_issuer https://idp.test;
codeb_oidc_audience codeb;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_EXPIRED"}
recv A ^\{"type":"error","code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_NOEXP"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_ISS"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_AUD"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_WRONGKEY"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_NONE"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":"$TEST_NGINX_JWT_RS"}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A","token":12}
recv A "code":"forbidden"
send A {"type":"join","room":"bad","name":"A"}
recv_json A $j->{type} eq 'welcome' && @{$j->{peers}} == 0
close A
--- error_log
token refused: expired or without exp
token refused: wrong issuer
token refused: wrong audience
token refused: signature invalid
token refused: algorithm is not HS256
--- no_error_log eval
[qr/eyJ/]

=== TEST 3: RS256 with a public key; an HS256 token keyed with that key is refused
--- config
codeb_tenant t1;
codeb_oidc_rs256_key $TEST_NGINX_RSA_PUB;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"rs","name":"A","token":"$TEST_NGINX_JWT_CONFUSED"}
recv A "code":"forbidden"
send A {"type":"join","room":"rs","name":"A","token":"$TEST_NGINX_JWT_RS"}
recv A "type":"welcome"
open B
send B {"type":"join","room":"rs","name":"B"}
recv_json B $j->{peers}[0]{verifiedIdentity} eq 'carol'
close A
close B
--- error_log
token refused: algorithm is not RS256

=== TEST 4: office tabs ring through ?office-ring (HMAC envelope) on any worker
--- config
codeb_tenant t1;
codeb_oidc_hs256_secret hs-secret;
codeb_bridge_secret br-secret;
codeb_inbound_route did=+4930111 from=anonymous user=u3;
codeb_inbound_route did=+4930111 from=* user=alice;
location = /signal.ashx { codeb_signal; }
--- ws eval
use Digest::SHA qw(hmac_sha256_hex);
# ring(flag, body, host, [key, signed flag, signed host])
sub ring {
    my ($flag, $body, $host, $key, $sflag, $shost) = @_;
    $key //= 'br-secret';
    my $sig = hmac_sha256_hex(($sflag // $flag) . '|' . ($shost // $host)
                              . "|$body", $key);
    my $len = length $body;
    return "curl -s -o /tmp/codeb-ring.out -w '%{http_code}' -X POST "
      . "-H 'Host: $host' -H 'X-Sig: $sig' -H 'Content-Type: application/json' "
      . "--data-binary '$body' http://127.0.0.1:\$TEST_NGINX_PORT/signal.ashx?$flag";
}
my $ms = int(time * 1000);
my $ring = qq({"callId":"c1","ts":$ms,"did":"+4930111","fromNumber":"+4917000"});
my $clear = qq({"callId":"c1","ts":$ms,"reason":"answered-elsewhere"});
my $stale = qq({"callId":"c2","ts":@{[$ms - 301000]},"did":"+4930111"});
my $anon = qq({"callId":"c3","ts":$ms,"did":"+4930111"});
my $nocall = qq({"ts":$ms,"did":"+4930111"});
my $h = "localhost:" . ($ENV{TEST_NGINX_PORT} || 1984);
join "\n",
  'open A',
  'send A {"type":"join","room":"office-a","name":"A","office":true,"token":"$TEST_NGINX_JWT_ALICE"}',
  'recv A "type":"welcome"',
  'open B other A',
  'send B {"type":"join","room":"office-b","name":"B","office":true,"token":"$TEST_NGINX_JWT_ALICE"}',
  'recv B "type":"welcome"',
  'open C',
  'send C {"type":"join","room":"office-c","name":"C","token":"$TEST_NGINX_JWT_ALICE"}',
  'recv C "type":"welcome"',
  "shell test \$(" . ring('office-ring', $ring, $h) . ") = 200 && grep -q '\"delivered\":2' /tmp/codeb-ring.out",
  'recv_json A $j->{type} eq "ring" && $j->{callId} eq "c1" && $j->{did} eq "+4930111" && $j->{fromNumber} eq "+4917000" && $j->{seq} == 1',
  'recv_json B $j->{type} eq "ring" && $j->{callId} eq "c1"',
  'no_recv C 200',
  "shell test \$(" . ring('office-ring', $ring, $h, 'wrong') . ") = 401",
  "shell test \$(" . ring('office-ring-clear', $ring, $h, undef, 'office-ring') . ") = 401",
  "shell test \$(" . ring('office-ring', $ring, $h, undef, undef, 'evil.test') . ") = 401",
  "shell test \$(" . ring('office-ring', $stale, $h) . ") = 401",
  "shell test \$(" . ring('office-ring', $nocall, $h) . ") = 400",
  'no_recv A 200',
  "shell test \$(" . ring('office-ring-clear', $clear, $h) . ") = 200 && grep -q '\"ok\":true' /tmp/codeb-ring.out",
  'recv_json A $j->{type} eq "ring-cleared" && $j->{callId} eq "c1" && $j->{reason} eq "answered-elsewhere"',
  'recv B "type":"ring-cleared"',
  "shell test \$(" . ring('office-ring', $anon, $h) . ") = 200 && grep -q '\"delivered\":0' /tmp/codeb-ring.out",
  'no_recv A 200',
  'close A', 'close B', 'close C', '';
--- no_error_log
+4917000

=== TEST 5: ?office-ring with no bridge secret configured is 401
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- more_headers
X-Sig: 00
--- request
POST /signal.ashx?office-ring
{"callId":"x","ts":1}
--- error_code: 401
--- response_headers
Cache-Control: no-store
