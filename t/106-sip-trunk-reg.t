# Trunk registration (docs/sip.md "Trunk registration"): a trunk with
# register=on is registered by one worker of all the hosts sharing the
# Redis, with digest, and its state is in P trunks as ?healthsummary reads
# it.  The registrar is sipp (Debian's sip-tester, t/tools/
# sipp-registrar.xml: MD5 challenge, the digest checked by sipp's
# verifyauth), or the harness's UDP client with the digest checked here
# (SHA-256, RFC 2069 without qop, 407).  Ports: the registrar on
# TEST_NGINX_PORT + 72.
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha256_hex);
use JSON::PP ();

$ENV{TEST_NGINX_REG_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 72;

my $rp = $ENV{TEST_NGINX_REG_PORT};
my $trunks = 'codeb:{localhost}:trunks';

sub trunk_conf {
    my ($name, $password) = @_;
    return "codeb_tenant localhost;\n"
         . "codeb_sip_trunk $name host=127.0.0.1:$rp domain=reg.test "
         . "username=acme password=$password register=on expires=600;\n"
         . "codeb_sip_trunk plain host=127.0.0.1:" . ($rp + 1) . ";\n"
         . "location = /sip { codeb_sip_ws; }\n"
         . "location = /signal.ashx { codeb_signal; }\n";
}

$ENV{TEST_NGINX_REG_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_THIS_STREAM_PORT udp reuseport; codeb_sip; }
EOF

# "<registered>,<last seen>" of trunk in P trunks must be $reg, seen within
# the last $age s (undef: never, "-")
sub main::trunk_is {
    my ($trunk, $reg, $age) = @_;
    my $v = redis_cmd('HGET', $trunks, $trunk) // 'nil';
    my ($r, $seen) = $v =~ /^([01]),(-|\d+)$/ or die "P trunks $trunk: $v\n";
    die "P trunks $trunk: $v, want registered $reg\n" if $r ne $reg;
    if (!defined $age) {
        die "P trunks $trunk: $v, want never seen\n" if $seen ne '-';
    } elsif ($seen eq '-' || time - $seen > $age || $seen > time) {
        die "P trunks $trunk: $v, want seen in the last $age s\n";
    }
    return $v;
}

# ?healthsummary's trunk entry as JSON::PP decoded it
sub main::health_trunk {
    my ($file, $trunk) = @_;
    open my $fh, '<', $file or die "$file: $!\n";
    my $j = JSON::PP->new->decode(do { local $/; <$fh> });
    my ($t) = grep { $_->{id} eq $trunk } @{$j->{trunks}};
    die "no trunk $trunk in ?healthsummary\n" unless $t;
    return $t;
}

# the registrar's answer to the REGISTER it got
sub main::reg_answer {
    my ($req, $status, @headers) = @_;
    my %phrase = (200 => 'OK', 401 => 'Unauthorized', 403 => 'Forbidden',
                  407 => 'Proxy Authentication Required');
    my ($via) = $req =~ /^(Via: [^\r]*)\r\n/m;
    my ($from) = $req =~ /^(From: [^\r]*)\r\n/m;
    my ($to) = $req =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $req =~ /^(Call-ID: [^\r]*)\r\n/m;
    my ($cseq) = $req =~ /^(CSeq: [^\r]*)\r\n/m;
    return sip(join "\n", "SIP/2.0 $status $phrase{$status}", $via, $from,
               "To: $to;tag=reg1", $cid, $cseq, @headers);
}

# the digest of a REGISTER checked the registrar's way: dies unless its
# $hdr answers nonce n1 of realm reg.test with $alg (and qop=auth, nc 1
# and a cnonce when $qop; RFC 2069's form without)
sub main::check_digest {
    my ($req, $hdr, $alg, $password, $qop, $opaque) = @_;
    my ($line) = $req =~ /^$hdr: Digest ([^\r]*)\r\n/m
        or die "no $hdr in:\n$req\n";
    my %p;
    while ($line =~ /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g) {
        $p{$1} = defined $2 ? $2 : $3;
    }
    my $H = $alg eq 'SHA-256' ? \&sha256_hex : \&md5_hex;
    my %want = (username => 'acme', realm => 'reg.test', nonce => 'n1',
                uri => 'sip:reg.test', algorithm => $alg);
    $want{opaque} = $opaque if defined $opaque;
    for (sort keys %want) {
        die "$_=" . ($p{$_} // 'none') . ", want $want{$_}: $line\n"
            if ($p{$_} // '') ne $want{$_};
    }
    my $ha1 = $H->("acme:reg.test:$password");
    my $ha2 = $H->("REGISTER:$p{uri}");
    my $r;
    if ($qop) {
        die "qop, nc or cnonce wrong: $line\n"
            unless ($p{qop} // '') eq 'auth' && ($p{nc} // '') eq '00000001'
                && ($p{cnonce} // '') =~ /^[0-9a-f]{32}$/;
        $r = $H->("$ha1:$p{nonce}:$p{nc}:$p{cnonce}:auth:$ha2");
    } else {
        die "qop, nc or cnonce without qop in the challenge: $line\n"
            if grep { exists $p{$_} } qw(qop nc cnonce);
        $r = $H->("$ha1:$p{nonce}:$ha2");
    }
    die "response $p{response}, want $r\n" unless $p{response} eq $r;
    return 'ok';
}

my $sipp = "timeout 14 sipp -sf \$TEST_NGINX_ROOT/t/tools/sipp-registrar.xml"
         . " -i 127.0.0.1 -p $rp -m 1 -nostdin -timeout 12s -timeout_error"
         . " -key realm reg.test -key user acme -key password acme-secret";

# sipp registers us twice (granting 4 s: the refresh comes after 2 s)
our @SIPP = (
    "shell $sipp -key expires 4 > /dev/null",
    'sleep 300',
    "set_eval V main::trunk_is('carrier', 1, 5)",
    # a trunk that does not register: there, never seen
    "set_eval P main::trunk_is('plain', 0)",
    "redis ^\\S+:\\d+\$ GET codeb:{localhost}:trunkreg:carrier",
    "redis ^\$ GET codeb:{localhost}:trunkreg:plain",
    "shell curl -s http://127.0.0.1:\$TEST_NGINX_PORT/signal.ashx?healthsummary=1 > \$TEST_NGINX_SERVROOT/hs.json",
    "set_eval H main::health_trunk('\$TEST_NGINX_SERVROOT/hs.json', 'carrier')->{registered} ? 1 : undef",
    "set_eval L main::health_trunk('\$TEST_NGINX_SERVROOT/hs.json', 'carrier')->{lastSeenSec} <= 5 ? 1 : undef",
);

# a wrong password: sipp's verifyauth refuses the digest, 403
our @SIPP_403 = (
    "shell $sipp -key expires 60 > /dev/null",
    'sleep 300',
    "set_eval V main::trunk_is('carrier', 0)",
);

# the registrar's 401: MD5 first, then SHA-256 (with an opaque holding a
# quote, which must come back escaped the same way); its backslash doubled
# for udp_reply's escapes
sub main::reg_401_sha {
    my ($req) = @_;
    my $m = main::reg_answer($req, 401,
        'WWW-Authenticate: Digest realm="reg.test", nonce="n1", '
        . 'algorithm=MD5, qop="auth"',
        'WWW-Authenticate: Digest realm="reg.test", nonce="n1", '
        . 'algorithm=SHA-256, qop="auth,auth-int", opaque="o\\"q"');
    $m =~ s/\\/\\\\/g;
    return $m;
}

# SHA-256 taken before MD5, opaque echoed; the REGISTER's shape; a reload:
# a new worker takes over within seconds (the old holder let the lock go
# as it exited), with a Call-ID of its own
our @SHA256 = (
    "udp T 0 bind=$rp",
    'udp_wait T ^REGISTER sip:reg\.test SIP/2\.0\r\nVia: SIP/2\.0/UDP 127\.0\.0\.1:$TEST_NGINX_STREAM_PORT;branch=z9hG4bKcb[0-9a-f]+-[0-9a-f]{16};rport(?=\r\n)(?=(?s:.*)\r\nFrom: <sip:acme@reg\.test>;tag=cb[0-9a-f]+-[0-9a-f]+\r\n)(?=(?s:.*)\r\nTo: <sip:acme@reg\.test>\r\n)(?=(?s:.*)\r\nCSeq: 1 REGISTER\r\n)(?=(?s:.*)\r\nContact: <sip:acme@127\.0\.0\.1:$TEST_NGINX_STREAM_PORT;transport=udp>\r\n)(?=(?s:.*)\r\nExpires: 600\r\n)(?=(?s:.*)\r\nMax-Forwards: 70\r\n)(?!(?s:.*)Authorization)',
    'capture T REG (?s)^(.*)$',
    'capture T CID \r\nCall-ID: ([^\r]+)\r\n',
    'set_eval R401 main::reg_401_sha(q{${REG}})',
    'udp_reply T ${R401}',
    'udp_wait T ^REGISTER (?s:.*)\r\nCSeq: 2 REGISTER\r\n',
    'capture T REG2 (?s)^(.*)$',
    'capture T CID2 \r\nCall-ID: ([^\r]+)\r\n',
    "set_eval SAME '\${CID}' eq '\${CID2}' ? 1 : undef",
    "set_eval D main::check_digest(q{\${REG2}}, 'Authorization', 'SHA-256', 'acme-secret', 1, 'o\\\\\"q')",
    "set_eval R200 main::reg_answer(q{\${REG2}}, 200, 'Expires: 600')",
    'udp_reply T ${R200}',
    'sleep 300',
    "set_eval V main::trunk_is('carrier', 1, 5)",
    "set_eval OLD redis_cmd('GET', 'codeb:{localhost}:trunkreg:carrier')",
    'reload',
    'udp_wait T ^REGISTER (?s:.*)\r\nCall-ID: (?!${CID}\r\n)[^\r]+\r\nCSeq: 1 REGISTER\r\n',
    "set_eval NEW redis_cmd('GET', 'codeb:{localhost}:trunkreg:carrier') ne '\${OLD}' ? 1 : undef",
);

# 407 and a challenge without qop (RFC 2069); the time granted is our
# Contact's (2 s), not Expires nor another Contact's; the refresh after
# 1 s goes unanswered: registered 0 when the 2 s are over, last seen kept
our @EXPIRY = (
    "udp T 0 bind=$rp",
    'udp_wait T ^REGISTER (?s:.*)\r\nCSeq: 1 REGISTER\r\n',
    'capture T REG (?s)^(.*)$',
    "set_eval R407 main::reg_answer(q{\${REG}}, 407, 'Proxy-Authenticate: Digest realm=\"reg.test\", nonce=\"n1\"')",
    'udp_reply T ${R407}',
    'udp_wait T ^REGISTER (?s:.*)\r\nCSeq: 2 REGISTER\r\n',
    'capture T REG2 (?s)^(.*)$',
    "set_eval D main::check_digest(q{\${REG2}}, 'Proxy-Authorization', 'MD5', 'acme-secret', 0)",
    "set_eval R200 main::reg_answer(q{\${REG2}}, 200, 'Contact: <sip:other\@192.0.2.1>;expires=3600', 'Contact: <sip:acme\@127.0.0.1:\$TEST_NGINX_STREAM_PORT;transport=udp>;expires=2', 'Expires: 3600')",
    'udp_reply T ${R200}',
    'sleep 200',
    "set_eval V main::trunk_is('short', 1, 5)",
    "set_eval SEEN (split /,/, redis_cmd('HGET', '$trunks', 'short'))[1]",
    'udp_wait T ^(?!(?s:.*)Authorization)REGISTER (?s:.*)\r\nCSeq: 3 REGISTER\r\n',
    'sleep 2000',
    "set_eval V2 main::trunk_is('short', 0, 10) eq '0,\${SEEN}' ? 1 : undef",
);

# two hosts of two workers each share the Redis: one REGISTER of them all
our @CLUSTER = (
    "udp T 0 bind=$rp",
    'udp_wait T ^REGISTER ',
    'capture T REG (?s)^(.*)$',
    "set_eval R200 main::reg_answer(q{\${REG}}, 200, 'Expires: 600')",
    'udp_reply T ${R200}',
    'sleep 2500',
    "set_eval V main::trunk_is('duo', 1, 10)",
    "shell test \"\$(cat \$TEST_NGINX_SERVROOT/logs/error.log \${TEST_NGINX_SERVROOT}2/logs/error.log | grep -c 'trunk \"duo\": this worker registers it')\" = 1",
);

# Redis down when the workers start: no lock, no REGISTER, no crash; once
# it is back the trunk is registered
our @REDIS_DOWN = (
    "udp T 0 bind=$rp",
    'redis_stop',
    'sleep 2500',
    'redis_start',
    'udp_wait T ^REGISTER ',
    'capture T REG (?s)^(.*)$',
    "set_eval R200 main::reg_answer(q{\${REG}}, 200, 'Expires: 600')",
    'udp_reply T ${R200}',
    'sleep 300',
    "set_eval V main::trunk_is('later', 1, 5)",
);

run_tests();
done_testing();

__DATA__

=== TEST 1: sipp registers the trunk with MD5 digest (verifyauth) and its refresh after half of 4 s; P trunks and ?healthsummary say registered
--- config eval
main::trunk_conf('carrier', 'acme-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 15
--- ws eval
\@main::SIPP
--- error_log
trunk "carrier" registered for 4 s



=== TEST 2: a wrong password: sipp answers 403, registered 0
--- config eval
main::trunk_conf('carrier', 'not-the-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 15
--- ws eval
\@main::SIPP_403
--- error_log
trunk "carrier": registration failed (403), next try in 30 s



=== TEST 3: SHA-256 preferred, opaque echoed, the REGISTER's shape; after a reload a new worker registers at once
--- config eval
main::trunk_conf('carrier', 'acme-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 10
--- ws eval
\@main::SHA256



=== TEST 4: 407 without qop (RFC 2069), the time granted to our Contact, registered 0 when it runs out
--- config eval
main::trunk_conf('short', 'acme-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 10
--- ws eval
\@main::EXPIRY
--- error_log
trunk "short" registered for 2 s
trunk "short": registration expired



=== TEST 5: two hosts sharing the Redis: one worker of the four registers
--- hosts: 2
--- config eval
main::trunk_conf('duo', 'acme-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 10
--- ws eval
\@main::CLUSTER



=== TEST 6: Redis down when the workers start: registered once it is back
--- config eval
main::trunk_conf('later', 'acme-secret')
--- stream_config eval
$ENV{TEST_NGINX_REG_STREAM}
--- timeout: 12
--- ws eval
\@main::REDIS_DOWN
