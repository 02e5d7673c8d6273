# Calls between WebSocket users through the back-to-back user agent
# (docs/sip.md "Calls") with the media through a real codeb-mediad over NG:
# 100 and 180 at once, 407 first, the callee's INVITE with the daemon's
# SDP, the 200 deferred until the callee answers, ACK, BYE both ways,
# CANCEL during ringing, a callee that is not registered, and caller and
# callee on different workers.
use lib 't/lib';
use Test::CodeB;
use Digest::MD5 qw(md5_hex);
use POSIX ();

my $root = $ENV{TEST_NGINX_ROOT} || '.';
my $mediad = $ENV{CODEB_MEDIAD} || "$root/build/mediad/codeb-mediad";
my $port = $ENV{TEST_NGINX_PORT} || 1984;
$ENV{TEST_NGINX_NG_PORT} = $port + 70;

# the media daemon for the whole file, on its own ports
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    # media ports of their own, apart from another run's on another port
    my $base = 40000 + ($port - 1000) % 2000 * 10;
    exec $mediad, '--listen-ng', "127.0.0.1:$ENV{TEST_NGINX_NG_PORT}",
         '--port-min', $base, '--port-max', $base + 9, '--threads', '1';
    POSIX::_exit(127);
}
END { if ($pid) { kill 'TERM', $pid; waitpid $pid, 0 } }

sub main::authz {
    my ($user, $pass, $method, $uri, $nonce, $nc, $hdr) = @_;
    my $ha1 = md5_hex("$user:localhost:$pass");
    my $ha2 = md5_hex("$method:$uri");
    my $r = md5_hex("$ha1:$nonce:$nc:cafe:auth:$ha2");
    return "$hdr: Digest username=\"$user\", realm=\"localhost\", "
         . "nonce=\"$nonce\", uri=\"$uri\", response=\"$r\", "
         . "algorithm=MD5, qop=auth, nc=$nc, cnonce=\"cafe\"";
}

sub main::sdp {
    my ($ufrag) = @_;
    return "v=0\r\no=- 46117314 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
         . "a=group:BUNDLE 0\r\n"
         . "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n"
         . "a=rtcp:9 IN IP4 0.0.0.0\r\n"
         . "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0\r\n"
         . "a=ice-ufrag:$ufrag\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
         . "a=fingerprint:sha-256 " . join(':', ('AB') x 32) . "\r\n"
         . "a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
         . "a=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n"
         . "a=rtpmap:8 PCMA/8000\r\na=rtpmap:126 telephone-event/8000\r\n";
}

# a SIP message: headers (CRLF added), body, Content-Length set
sub main::sip {
    my ($head, $body) = @_;
    $body //= '';
    $head =~ s/\n+\z//;
    $head =~ s/\n/\r\n/g;
    return "$head\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
}

sub main::register {
    my ($user, $auth, $cseq) = @_;
    return main::sip(<<EOF);
REGISTER sip:localhost SIP/2.0
Via: SIP/2.0/WS $user.invalid;branch=z9hG4bKreg$cseq
From: <sip:$user\@localhost>;tag=reg
To: <sip:$user\@localhost>
Call-ID: reg-$user
CSeq: $cseq REGISTER
Max-Forwards: 70
Contact: <sip:$user\@$user.invalid;transport=ws>;expires=600
$auth
EOF
}

sub main::invite {
    my ($cid, $to, $auth, $cseq) = @_;
    my $a = $auth ? "\n$auth" : '';
    return main::sip(<<EOF, main::sdp('aaaa'));
INVITE sip:$to\@localhost SIP/2.0
Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKinv$cseq
From: <sip:alice\@localhost>;tag=ft1
To: <sip:$to\@localhost>
Call-ID: $cid
CSeq: $cseq INVITE
Max-Forwards: 70
Contact: <sip:alice\@alice.invalid;transport=ws>
Content-Type: application/sdp$a
EOF
}

# the registration of $user on WebSocket client $c (401, then 200)
sub main::reg_cmds {
    my ($c, $user) = @_;
    return ("send_esc $c " . esc(main::register($user, '', 1)),
            "recv $c ^SIP/2\\.0 401 ",
            "capture $c N$c nonce=\"([0-9a-f]{32})\"",
            "set_eval R$c main::register('$user', main::authz('$user', '$user-demo-pass', 'REGISTER', 'sip:localhost', '\${N$c}', '00000001', 'Authorization'), 2)",
            "send_esc $c \${R$c}",
            "recv $c ^SIP/2\\.0 200 OK");
}

# an authenticated INVITE from A (100, 407, ACK, then 100 and 180)
sub main::inv_cmds {
    my ($cid, $to) = @_;
    return ("send_esc A " . esc(main::invite($cid, $to, '', 1)),
            "recv A ^SIP/2\\.0 100 Trying",
            "recv A ^SIP/2\\.0 407 Proxy Authentication Required",
            "capture A NI nonce=\"([0-9a-f]{32})\"",
            "set_eval I2 main::invite('$cid', '$to', main::authz('alice', 'alice-demo-pass', 'INVITE', 'sip:$to\@localhost', '\${NI}', '00000001', 'Proxy-Authorization'), 2)",
            "send_esc A \${I2}",
            "recv A ^SIP/2\\.0 100 Trying");
}

sub esc {
    my ($s) = @_;
    $s =~ s/\\/\\\\/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return $s;
}

# the callee's answers, built from the INVITE it got (${INV})
sub main::answer {
    my ($inv, $status, $body) = @_;
    my ($via) = $inv =~ /^(Via: [^\r]*)\r\n/m;
    my ($from) = $inv =~ /^(From: [^\r]*)\r\n/m;
    my ($to) = $inv =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $inv =~ /^(Call-ID: [^\r]*)\r\n/m;
    my ($cseq) = $inv =~ /^(CSeq: [^\r]*)\r\n/m;
    my $phrase = { 180 => 'Ringing', 200 => 'OK', 487 => 'Request Terminated',
                   486 => 'Busy Here' }->{$status};
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    return main::sip("SIP/2.0 $status $phrase\n$via\n$from\nTo: $to;tag=bobtag\n"
                     . "$cid\n$cseq\nContact: <sip:bob\@bob.invalid;transport=ws>$ct",
                     $body);
}

sub main::in_dialog {
    my ($inv, $method, $cseq) = @_;
    my ($from) = $inv =~ /^From: ([^\r]*)\r\n/m;
    my ($to) = $inv =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $inv =~ /^Call-ID: ([^\r]*)\r\n/m;
    return main::sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
                     . "Via: SIP/2.0/WS bob.invalid;branch=z9hG4bKbye$cseq\n"
                     . "From: $to;tag=bobtag\nTo: $from\nCall-ID: $cid\n"
                     . "CSeq: $cseq $method\nMax-Forwards: 70");
}

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
location = /sip { codeb_sip_ws; }
EOF

our @CALL = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-1', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'capture A TAG180 ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:bob@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    # the callee's INVITE: our Via, a new Call-ID, the daemon's SDP
    'recv B (?s)^INVITE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=z9hG4bKcb[0-9a-f]+-.*From: <sip:alice@localhost>;tag=cb.*Call-ID: cb[0-9a-f]+-.*a=ice-lite\r\n.*a=fingerprint:sha-256 ',
    'capture B INV (?s)^(.*)$',
    'set_eval R180 main::answer(q{${INV}}, 180)',
    'send_esc B ${R180}',
    'no_recv A 300',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    'recv A (?s)^SIP/2\.0 200 OK\r\n.*To: <sip:bob@localhost>;tag=${TAG180}\r\n.*Contact: <sip:codeb@codeb\.invalid;transport=ws>\r\n.*a=ice-lite\r\n',
    'send_esc A ACK sip:codeb@codeb.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKack\r\nFrom: <sip:alice@localhost>;tag=ft1\r\nTo: <sip:bob@localhost>;tag=${TAG180}\r\nCall-ID: call-1\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    'no_recv B 200',
    # the callee hangs up: 200 to it, BYE to the caller
    'set_eval BYE main::in_dialog(q{${INV}}, q{BYE}, 2)',
    'send_esc B ${BYE}',
    'recv B ^SIP/2\.0 200 OK\r\n',
    'recv A (?s)^BYE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n.*From: <sip:bob@localhost>;tag=${TAG180}\r\n.*To: <sip:alice@localhost>;tag=ft1\r\n.*Call-ID: call-1\r\n',
    'close A', 'close B',
);

our @CANCEL = (
    'open A /sip proto=sip', 'open B /sip proto=sip',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-2', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'send_esc A CANCEL sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKinv2\r\nFrom: <sip:alice@localhost>;tag=ft1\r\nTo: <sip:bob@localhost>\r\nCall-ID: call-2\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 CANCEL\r\n',
    'recv A ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)CSeq: 2 INVITE\r\n',
    # the callee's CANCEL: the same branch as its INVITE (RFC 3261 §9.1)
    'capture B BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    'recv B ^CANCEL sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'set_eval R487 main::answer(q{${INV}}, 487)',
    'send_esc B ${R487}',
    'recv B ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'close A', 'close B',
);

# bob's WebSocket goes during the call: alice gets BYE
our @DROP = (
    'open A /sip proto=sip', 'open B /sip proto=sip',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-4', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    'drop B',
    'recv A (?s)^BYE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n.*Call-ID: call-4\r\n',
    'close A',
);

# alice's WebSocket goes while bob rings: bob gets CANCEL
our @GONE = (
    'open A /sip proto=sip', 'open B /sip proto=sip',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-5', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'drop A',
    'recv B ^CANCEL sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    'close B',
);

our @NOBODY = (
    'open A /sip proto=sip',
    main::reg_cmds('A', 'alice'),
    main::inv_cmds('call-3', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^SIP/2\.0 480 Temporarily Unavailable\r\n',
    'close A',
);

run_tests();
done_testing();

__DATA__

=== TEST 1: alice calls bob on another worker: 180 at once, 200 when bob answers, BYE from bob
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::CALL



=== TEST 2: alice cancels while bob rings: 200 and 487 to her, CANCEL with the INVITE's branch to bob
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::CANCEL



=== TEST 3: bob is not registered: 480
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::NOBODY



=== TEST 4: bob's WebSocket drops during the call: alice gets BYE
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::DROP



=== TEST 5: alice's WebSocket drops while bob rings: bob gets CANCEL
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::GONE
