# Trunk calls (docs/sip.md "Trunks") through the back-to-back user agent
# and a real codeb-mediad: a UDP peer on the trunk's address plays the
# carrier.  Inbound: an INVITE from the trunk rings the user the inbound
# routes name, with WebRTC SDP towards the browser and plain RTP towards
# the trunk; outbound: a user's call to +E.164 goes to the trunk with plain
# RTP and G.711; CANCEL from the trunk reaches the browser's leg; a DID
# without route is 404, and rings once the REST API adds a route; a phone
# on another port of the trunk's host is not the trunk (407).
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;
use CodeB::JWT qw(jwt_hs256);
use Digest::MD5 qw(md5_hex);

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => time + 600,
                                               sub => 'root',
                                               role => 'admin' });

start_mediad();

$ENV{TEST_NGINX_TRUNK_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 71;
$ENV{TEST_NGINX_TRUNK2_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 80;

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT prefix=+,00;
codeb_inbound_route did=+4930111 from=* user=bob;
codeb_inbound_route did=+4930222 from=* user=alice;
codeb_oidc_hs256_secret hs;
location = /sip { codeb_sip_ws; }
location = /signal.ashx { codeb_signal; }
EOF

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
EOF

my $tp = $ENV{TEST_NGINX_TRUNK_PORT};

# a request of the carrier (the trunk) to us
sub main::carrier {
    my ($method, $did, $cid, $branch, $cseq, $to_tag, $body, $host, $from,
        $port) = @_;
    my $sp = $ENV{TEST_NGINX_STREAM_PORT};
    my $to = "<sip:$did\@127.0.0.1>" . ($to_tag ? ";tag=$to_tag" : '');
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    $host //= "127.0.0.1:$sp";
    $from //= '+4917012345';
    $port //= $tp;
    return sip("$method sip:$did\@$host SIP/2.0\n"
               . "Via: SIP/2.0/UDP 127.0.0.1:$port;branch=$branch;rport\n"
               . "From: \"Caller $from\" <sip:$from\@carrier.test>;tag=carrier1\n"
               . "To: $to\nCall-ID: $cid\nCSeq: $cseq $method\n"
               . "Max-Forwards: 70\nContact: <sip:carrier\@127.0.0.1:$port>$ct",
               $body);
}

# the carrier's answer to the INVITE it got
sub main::carrier_answer {
    my ($inv, $status, $body) = @_;
    my $r = answer($inv, $status, $body);
    $r =~ s/<sip:bob\@bob\.invalid;transport=ws>/<sip:carrier\@127.0.0.1:$tp>/;
    return $r;
}

# the admin flag's JSON (?cdrlog, ?diallog) into $TEST_NGINX_SERVROOT/<name>
sub main::flag {
    my ($flag, $name) = @_;
    return "shell curl -sf -H 'Authorization: Bearer \$TEST_NGINX_JWT_ADMIN' "
         . "'http://127.0.0.1:\$TEST_NGINX_PORT/signal.ashx?$flag' "
         . "> \$TEST_NGINX_SERVROOT/$name";
}

# a shell check of the JSON in $TEST_NGINX_SERVROOT/<name>: Perl code on $j
sub main::json_ok {
    my ($name, $code) = @_;
    return "shell perl -MJSON::PP -e 'local \$/; open F, \"\$ENV{TEST_NGINX_SERVROOT}/$name\"; "
         . "my \$j = decode_json(<F>); exit !($code)'";
}

# an in-dialog request from the browser to us (the 200's Contact)
sub main::browser {
    my ($method, $cid, $tag, $cseq) = @_;
    return sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
               . "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bK$method$cseq\n"
               . "From: <sip:alice\@localhost>;tag=ft1\n"
               . "To: <sip:+4930999\@localhost>;tag=$tag\n"
               . "Call-ID: $cid\nCSeq: $cseq $method\nMax-Forwards: 70");
}

our @INBOUND = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-1', 'z9hG4bKt1', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    # the browser gets WebRTC: ICE-Lite, DTLS, RTCP mux
    'recv A (?s)^INVITE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n(?=.*a=ice-lite\r\n)(?=.*a=fingerprint:sha-256 )(?=.*a=rtcp-mux\r\n).*From: "Caller \+4917012345" <sip:\+4917012345@carrier\.test>;tag=cb.*m=audio \d+ UDP/TLS/RTP/SAVPF ',
    'capture A AINV (?s)^(.*)$',
    'capture A CIDA ^INVITE (?s:.*?)\r\nCall-ID: ([^\r]+)\r\n',
    'set_eval R200 main::answer(q{${AINV}}, 200, main::sdp(q{bbbb}))',
    'send_esc A ${R200}',
    'recv A ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    # the trunk gets plain RTP from our address, our Contact on UDP
    "udp_recv T (?s)^SIP/2\\.0 200 OK\\r\\n(?!.*a=ice)(?!.*a=fingerprint).*CSeq: 1 INVITE\\r\\n.*Contact: <sip:codeb\@127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;transport=udp>\\r\\n.*c=IN IP4 127\\.0\\.0\\.1\\r\\n.*m=audio \\d+ RTP/AVP ",
    'capture T TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'tr-1', 'z9hG4bKt1a', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    'no_recv A 200',
    # the carrier hangs up
    "set_eval BYE main::carrier('BYE', '+4930222', 'tr-1', 'z9hG4bKt1b', 2, '\${TAG}')",
    'udp_send T ${BYE}',
    # (a 200 to the INVITE sent again before our ACK came may come first)
    'udp_wait T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    # to the Contact of the browser's 200
    'recv A (?s)^BYE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*Call-ID: ${CIDA}\r\n',
    'close A',
    # its record (docs/sip.md "Call records")
    'sleep 200',
    main::flag('cdrlog', 'cdr.json'),
    main::json_ok('cdr.json', '@{$j->{cdrs}} == 1 && do { my $c = $j->{cdrs}[0]; '
        . '$c->{callId} eq "tr-1" && $c->{direction} eq "inbound" && $c->{trunk} eq "carrier" '
        . '&& $c->{from} eq "+4917012345" && $c->{to} eq "alice" && $c->{did} eq "+4930222" '
        . '&& $c->{status} == 200 && $c->{cause} eq "normal" && $c->{hangup} eq "caller" '
        . '&& $c->{answer} >= $c->{start} && $c->{end} >= $c->{answer} && $c->{durationSec} >= 0 }'),
    # not a dial of a user
    main::flag('diallog', 'dial.json'),
    main::json_ok('dial.json', '@{$j->{dials}} == 0'),
    "shell test \$(curl -s -o /dev/null -w '%{http_code}' 'http://127.0.0.1:\$TEST_NGINX_PORT/signal.ashx?cdrlog') = 401",
    "shell test \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer \$TEST_NGINX_JWT_ADMIN' 'http://127.0.0.1:\$TEST_NGINX_PORT/signal.ashx?cdrlog&limit=0') = 400",
);

our @OUTBOUND = (
    "udp T 0 bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    inv_cmds('out-1', '+4930999'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'capture A TAGA ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:\+4930999@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    # the trunk gets plain RTP and G.711, no Opus, no ICE, no DTLS
    "udp_recv T (?s)^INVITE sip:\\+4930999\@127\\.0\\.0\\.1 SIP/2\\.0\\r\\nVia: SIP/2\\.0/UDP 127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;branch=z9hG4bKcb[0-9a-f]+-[0-9a-f]+;rport\\r\\n(?!.*a=ice)(?!.*opus)(?!.*a=fingerprint).*From: <sip:alice\@127\\.0\\.0\\.1>;tag=cb.*To: <sip:\\+4930999\@127\\.0\\.0\\.1>\\r\\n.*Contact: <sip:codeb\@127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;transport=udp>\\r\\n.*m=audio \\d+ RTP/AVP [0-9 ]*\\b0\\b.*a=rtpmap:8 PCMA/8000",
    'capture T TINV (?s)^(.*)$',
    'set_eval T180 main::carrier_answer(q{${TINV}}, 180)',
    'udp_reply T ${T180}',
    'no_recv A 200',
    'set_eval T200 main::carrier_answer(q{${TINV}}, 200, main::sdp_plain(40002))',
    'udp_reply T ${T200}',
    # (our INVITE sent again before the 180 came may come first)
    'udp_wait T ^ACK sip:carrier@127\.0\.0\.1:' . $tp . ' SIP/2\.0\r\n',
    # the browser gets WebRTC back
    'recv A (?s)^SIP/2\.0 200 OK\r\n(?=.*a=ice-lite\r\n)(?=.*a=fingerprint:sha-256 ).*CSeq: 2 INVITE\r\n.*m=audio \d+ UDP/TLS/RTP/SAVPF ',
    "set_eval ACK main::browser('ACK', 'out-1', '\${TAGA}', 2)",
    'send_esc A ${ACK}',
    "set_eval BYE main::browser('BYE', 'out-1', '\${TAGA}', 3)",
    'send_esc A ${BYE}',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 3 BYE\r\n',
    'udp_wait T ^BYE sip:carrier@127\.0\.0\.1:' . $tp . ' SIP/2\.0\r\n',
    'capture T TBYE (?s)^(.*)$',
    'set_eval TBYE200 main::carrier_answer(q{${TBYE}}, 200)',
    'udp_reply T ${TBYE200}',
    'close A',
    'sleep 200',
    main::flag('diallog', 'dial.json'),
    main::json_ok('dial.json', '@{$j->{dials}} == 1 && do { my $d = $j->{dials}[0]; '
        . '$d->{user} eq "alice" && $d->{number} eq "+4930999" && $d->{direction} eq "outbound" '
        . '&& $d->{trunk} eq "carrier" && $d->{status} == 200 && $d->{cause} eq "normal" '
        . '&& $d->{time} > 0 && $d->{durationSec} >= 0 }'),
    main::flag('cdrlog', 'cdr.json'),
    main::json_ok('cdr.json', '$j->{cdrs}[0]{hangup} eq "caller" && $j->{cdrs}[0]{callId} eq "out-1"'),
);

our @CANCEL = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-2', 'z9hG4bKt2', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    'capture A BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    "set_eval CAN main::carrier('CANCEL', '+4930222', 'tr-2', 'z9hG4bKt2', 1)",
    'udp_send T ${CAN}',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv T ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)CSeq: 1 INVITE\r\n',
    'capture T TAG ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'tr-2', 'z9hG4bKt2', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    'udp_no_recv T 1000',
    'recv A ^CANCEL sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'close A',
);

our @NOROUTE = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    "set_eval INV main::carrier('INVITE', '+4930333', 'tr-3', 'z9hG4bKt3', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 404 Not Found\r\n',
    # the carrier's keepalive OPTIONS to our address is answered
    "set_eval OPT main::carrier('OPTIONS', '+4930333', 'tr-3o', 'z9hG4bKt3o', 1)",
    'udp_send T ${OPT}',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 OPTIONS\r\n',
    'sleep 200',
    'redis ^0,\d+$ HGET codeb:{localhost}:trunks carrier',
);

# the DID without route gets one through the REST API: the trunk's next
# INVITE to it rings that user (SIP reads the API's table), and after the
# route is deleted the DID is 404 again
our @APIROUTE = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'bob'),
    "shell curl -sf -o /dev/null -X POST -H 'Authorization: Bearer \$TEST_NGINX_JWT_ADMIN' -H 'Content-Type: application/json' -d '{\"did\":\"+4930333\",\"user\":\"bob\"}' http://127.0.0.1:\$TEST_NGINX_PORT/api.ashx/v1/inbound-routes",
    "set_eval INV main::carrier('INVITE', '+4930333', 'tr-api', 'z9hG4bKta', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    'capture A AINV (?s)^(.*)$',
    'set_eval R486 main::answer(q{${AINV}}, 486)',
    'send_esc A ${R486}',
    'udp_wait T ^SIP/2\.0 486 ',
    "shell curl -sf -o /dev/null -X DELETE -H 'Authorization: Bearer \$TEST_NGINX_JWT_ADMIN' http://127.0.0.1:\$TEST_NGINX_PORT/api.ashx/v1/inbound-routes/%2B4930333",
    "set_eval INV2 main::carrier('INVITE', '+4930333', 'tr-api2', 'z9hG4bKtb', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV2}',
    'udp_wait T ^SIP/2\.0 404 Not Found\r\n(?s:.*)Call-ID: tr-api2\r\n',
    'close A',
);

# the same INVITE to the tenant from another port of the trunk's host: a
# phone, asked for digest
our @NOTTRUNK = (
    "udp P \$TEST_NGINX_STREAM_PORT",
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-4', 'z9hG4bKt4', 1, '', main::sdp_plain(40000), 'localhost')",
    'udp_send P ${INV}',
    'udp_recv P ^SIP/2\.0 100 Trying\r\n',
    'udp_recv P ^SIP/2\.0 407 ',
);

# UDP retransmissions (RFC 3261 §17): our INVITE until the carrier's 100,
# our 200 until its ACK, and the 200 again for its INVITE sent again
our @RETRANS = (
    "udp T 0 bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    inv_cmds('out-2', '+4930999'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'udp_recv T ^INVITE ',
    'capture T TINV (?s)^(.*)$',
    'capture T BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    # timer A: the same INVITE after T1 (500 ms), then 2*T1
    'udp_recv T ^INVITE [^\r]*\r\nVia: [^\r]*;branch=${BR};',
    'udp_recv T ^INVITE [^\r]*\r\nVia: [^\r]*;branch=${BR};',
    'set_eval T100 main::carrier_answer(q{${TINV}}, 100)',
    'udp_reply T ${T100}',
    'udp_no_recv T 2500',
    'set_eval T486 main::carrier_answer(q{${TINV}}, 486)',
    'udp_reply T ${T486}',
    'udp_recv T ^ACK [^\r]*\r\nVia: [^\r]*;branch=${BR};',
    'recv A ^SIP/2\.0 486 Busy Here\r\n',
    'close A',
);

our @RETRANS_200 = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-6', 'z9hG4bKt6', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    # the carrier sends its INVITE again: the 180 again
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    'capture A AINV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${AINV}}, 200, main::sdp(q{bbbb}))',
    'send_esc A ${R200}',
    'recv A ^ACK ',
    # timer G: the 200 until the ACK
    'udp_recv T ^SIP/2\.0 200 OK\r\n',
    'capture T TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)To: <sip:\+4930222@127\.0\.0\.1>;tag=${TAG}\r\n',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)To: <sip:\+4930222@127\.0\.0\.1>;tag=${TAG}\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'tr-6', 'z9hG4bKt6a', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    'udp_no_recv T 2500',
    "set_eval BYE main::carrier('BYE', '+4930222', 'tr-6', 'z9hG4bKt6b', 2, '\${TAG}')",
    'udp_send T ${BYE}',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A ^BYE ',
    'close A',
);

# the upstream forks one call over two trunks: the second delivery (the
# same Call-ID on another branch, or another Call-ID from the same number
# to the same DID) is held at 180, its CANCEL does not stop the first
my $tp2 = $ENV{TEST_NGINX_TRUNK2_PORT};
our @FORK = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    "udp U \$TEST_NGINX_STREAM_PORT bind=$tp2",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'fork-1', 'z9hG4bKf1', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    'capture A BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    # the sibling: same Call-ID, another branch, through the other trunk
    "set_eval INV2 main::carrier('INVITE', '+4930222', 'fork-1', 'z9hG4bKf2', 1, '', main::sdp_plain(40002), undef, undef, $tp2)",
    'udp_send U ${INV2}',
    'udp_recv U ^SIP/2\.0 100 Trying\r\n',
    'udp_recv U ^SIP/2\.0 180 Ringing\r\n',
    # a B2BUA's sibling: a new Call-ID, the same caller and DID
    "set_eval INV3 main::carrier('INVITE', '+4930222', 'fork-2', 'z9hG4bKf3', 1, '', main::sdp_plain(40004), undef, undef, $tp2)",
    'udp_send U ${INV3}',
    'udp_recv U ^SIP/2\.0 100 Trying\r\n',
    'udp_recv U ^SIP/2\.0 180 Ringing\r\n',
    'no_recv A 700',
    'udp_no_recv U 300',
    # the upstream cancels the siblings: the browser keeps ringing
    "set_eval CAN2 main::carrier('CANCEL', '+4930222', 'fork-1', 'z9hG4bKf2', 1, '', '', undef, undef, $tp2)",
    'udp_send U ${CAN2}',
    'udp_recv U ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv U ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)Call-ID: fork-1\r\n',
    'capture U TAG2 ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK2 main::carrier('ACK', '+4930222', 'fork-1', 'z9hG4bKf2', 1, '\${TAG2}', '', undef, undef, $tp2)",
    'udp_send U ${ACK2}',
    "set_eval CAN3 main::carrier('CANCEL', '+4930222', 'fork-2', 'z9hG4bKf3', 1, '', '', undef, undef, $tp2)",
    'udp_send U ${CAN3}',
    'udp_recv U ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv U ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)Call-ID: fork-2\r\n',
    'capture U TAG3 ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK3 main::carrier('ACK', '+4930222', 'fork-2', 'z9hG4bKf3', 1, '\${TAG3}', '', undef, undef, $tp2)",
    'udp_send U ${ACK3}',
    'no_recv A 500',
    # the first delivery is answered
    'capture A AINV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${AINV}}, 200, main::sdp(q{bbbb}))',
    'send_esc A ${R200}',
    'recv A ^ACK ',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)Call-ID: fork-1\r\n',
    'capture T TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'fork-1', 'z9hG4bKf1a', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    "set_eval BYE main::carrier('BYE', '+4930222', 'fork-1', 'z9hG4bKf1b', 2, '\${TAG}')",
    'udp_send T ${BYE}',
    'udp_wait T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A ^BYE ',
    'close A',
);

# a trunk that takes no call (max_inbound=0) holds it at 180: no 403
our @HOLD = (
    "udp U \$TEST_NGINX_STREAM_PORT bind=$tp2",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'hold-1', 'z9hG4bKh1', 1, '', main::sdp_plain(40000), undef, undef, $tp2)",
    'udp_send U ${INV}',
    'udp_recv U ^SIP/2\.0 100 Trying\r\n',
    'udp_recv U ^SIP/2\.0 180 Ringing\r\n',
    'udp_no_recv U 1000',
    'no_recv A 100',
    "set_eval CAN main::carrier('CANCEL', '+4930222', 'hold-1', 'z9hG4bKh1', 1, '', '', undef, undef, $tp2)",
    'udp_send U ${CAN}',
    'udp_recv U ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv U ^SIP/2\.0 487 Request Terminated\r\n',
    'capture U TAG ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'hold-1', 'z9hG4bKh1', 1, '\${TAG}', '', undef, undef, $tp2)",
    'udp_send U ${ACK}',
    'close A',
);

# max_inbound=1: a second call while the first rings is 503 with
# Retry-After; once the first is over, the line is free again
our @LIMIT = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'lim-1', 'z9hG4bKl1', 1, '', main::sdp_plain(40000), undef, '+111')",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    "set_eval INV2 main::carrier('INVITE', '+4930222', 'lim-2', 'z9hG4bKl2', 1, '', main::sdp_plain(40002), undef, '+222')",
    'udp_send T ${INV2}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n(?s:.*)Call-ID: lim-2\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n(?s:.*)Call-ID: lim-2\r\n',
    'udp_recv T (?s)^SIP/2\.0 503 Trunk Lines Busy\r\n.*Call-ID: lim-2\r\n.*Retry-After: 5\r\n',
    'capture T TAG2 ^SIP/2\.0 503 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK2 main::carrier('ACK', '+4930222', 'lim-2', 'z9hG4bKl2', 1, '\${TAG2}', '', undef, '+222')",
    'udp_send T ${ACK2}',
    'redis ^1$ ZCARD codeb:{localhost}:tcalls:carrier:in',
    "set_eval CAN main::carrier('CANCEL', '+4930222', 'lim-1', 'z9hG4bKl1', 1, '', '', undef, '+111')",
    'udp_send T ${CAN}',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv T ^SIP/2\.0 487 Request Terminated\r\n',
    'capture T TAG1 ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK1 main::carrier('ACK', '+4930222', 'lim-1', 'z9hG4bKl1', 1, '\${TAG1}', '', undef, '+111')",
    'udp_send T ${ACK1}',
    'recv A ^CANCEL ',
    'sleep 200',
    'redis ^0$ ZCARD codeb:{localhost}:tcalls:carrier:in',
    "set_eval INV3 main::carrier('INVITE', '+4930222', 'lim-3', 'z9hG4bKl3', 1, '', main::sdp_plain(40004), undef, '+333')",
    'udp_send T ${INV3}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n(?s:.*)Call-ID: lim-3\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n(?s:.*)Call-ID: lim-3\r\n',
    'recv A ^INVITE ',
    'close A',
    'sleep 300',
    main::flag('cdrlog&limit=2', 'cdr.json'),
    # lim-3: the browser went while it rang, no one else to ring
    main::json_ok('cdr.json', '@{$j->{cdrs}} == 2 && $j->{cdrs}[0]{callId} eq "lim-3" '
        . '&& $j->{cdrs}[0]{status} == 480 && $j->{cdrs}[0]{cause} eq "no-answer" '
        . '&& $j->{cdrs}[1]{callId} eq "lim-1" '
        . '&& $j->{cdrs}[1]{cause} eq "cancelled" && $j->{cdrs}[1]{status} == 487'),
    main::flag('cdrlog', 'cdr.json'),
    main::json_ok('cdr.json', '@{$j->{cdrs}} == 3 && $j->{cdrs}[2]{callId} eq "lim-2" '
        . '&& $j->{cdrs}[2]{status} == 503 && $j->{cdrs}[2]{cause} eq "congestion" '
        . '&& !defined $j->{cdrs}[2]{answer}'),
);

# the carrier's 407 to the INVITE it got
sub main::carrier_407 {
    my ($inv) = @_;
    my $r = main::carrier_answer($inv, 407);
    $r =~ s/SIP\/2.0 407 /SIP\/2.0 407 Proxy Authentication Required/;
    $r =~ s/\r\nContent-Length/\r\nProxy-Authenticate: Digest realm="carrier.test", nonce="cn1", qop="auth", algorithm=MD5\r\nContent-Length/;
    return $r;
}

# dies unless the INVITE's Proxy-Authorization is right for trunk-pass
sub main::check_invite_digest {
    my ($req) = @_;
    my ($line) = $req =~ /^Proxy-Authorization: Digest ([^\r]*)\r\n/m
        or die "no Proxy-Authorization in:\n$req\n";
    my %p;
    while ($line =~ /(\w+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g) {
        $p{$1} = defined $2 ? $2 : $3;
    }
    my ($ruri) = $req =~ /^INVITE (\S+) SIP\/2\.0\r\n/;
    die "wrong parameters: $line\n"
        unless $p{username} eq 'acme' && $p{realm} eq 'carrier.test'
            && $p{nonce} eq 'cn1' && $p{uri} eq $ruri && $p{qop} eq 'auth'
            && $p{nc} eq '00000001' && $p{cnonce} =~ /^[0-9a-f]+$/;
    my $ha1 = md5_hex("acme:carrier.test:trunk-pass");
    my $ha2 = md5_hex("INVITE:$p{uri}");
    my $want = md5_hex("$ha1:cn1:$p{nc}:$p{cnonce}:auth:$ha2");
    die "response $p{response}, want $want\n" unless $p{response} eq $want;
    return 1;
}

# the trunk asks our INVITE for digest: the INVITE again with
# Proxy-Authorization, CSeq 2, a new branch
our @OUTAUTH = (
    "udp T 0 bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    inv_cmds('out-3', '+4930999'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'udp_recv T ^INVITE (?s:.*)CSeq: 1 INVITE\r\n',
    'capture T TINV (?s)^(.*)$',
    'capture T BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    'set_eval T407 main::carrier_407(q{${TINV}})',
    'udp_reply T ${T407}',
    'udp_wait T ^ACK [^\r]*\r\nVia: [^\r]*;branch=${BR};(?s:.*)CSeq: 1 ACK\r\n',
    'udp_wait T ^INVITE (?s:.*)CSeq: 2 INVITE\r\n',
    'capture T TINV2 (?s)^(.*)$',
    'set_eval OK main::check_invite_digest(q{${TINV2}})',
    'set_eval T200 main::carrier_answer(q{${TINV2}}, 200, main::sdp_plain(40002))',
    'udp_reply T ${T200}',
    'udp_wait T ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    'close A',
);

run_tests();
done_testing();

__DATA__

=== TEST 1: an INVITE from the trunk rings the routed user: WebRTC to the browser, plain RTP back, BYE from the carrier
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::INBOUND



=== TEST 2: alice calls +4930999: out through the trunk with plain RTP and G.711, 200 back with WebRTC, BYE from alice
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::OUTBOUND



=== TEST 3: the carrier cancels while the browser rings: 200, 487, CANCEL with the INVITE's branch to the browser
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::CANCEL



=== TEST 4: a DID without inbound route: 404; the carrier's OPTIONS answered, the trunk seen
--- config eval
# another nginx than the block before's: the trunk's "seen" writes are
# once per 10 s per worker
$ENV{TEST_NGINX_SIP_CONF} . "# fresh\n"
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::NOROUTE



=== TEST 5: another port of the trunk's host is a phone: digest asked
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::NOTTRUNK



=== TEST 6: UDP retransmissions towards the trunk: INVITE until 100, ACK of its 486
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::RETRANS



=== TEST 7: UDP retransmissions towards the trunk: 180 again for its INVITE again, 200 until its ACK
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::RETRANS_200



=== TEST 8: sibling-fork collapse: the same call over two trunks rings once; the siblings held at 180 and cancelled alone
--- config eval
$ENV{TEST_NGINX_SIP_CONF} . "codeb_sip_trunk carrier2 host=127.0.0.1:$ENV{TEST_NGINX_TRUNK2_PORT} prefix=+99;\n"
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::FORK



=== TEST 9: max_inbound=0 holds the call at 180 (no 403), the browser is not rung
--- config eval
$ENV{TEST_NGINX_SIP_CONF} . "codeb_sip_trunk carrier2 host=127.0.0.1:$ENV{TEST_NGINX_TRUNK2_PORT} prefix=+99 max_inbound=0;\n"
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::HOLD



=== TEST 10: max_inbound=1: a second call is 503 with Retry-After; the line is free again after the first
--- config eval
my $c = $ENV{TEST_NGINX_SIP_CONF};
$c =~ s/prefix=\+,00;/prefix=+,00 max_inbound=1;/;
$c
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::LIMIT



=== TEST 11: the trunk challenges our INVITE (407): answered with its credentials
--- config eval
my $c = $ENV{TEST_NGINX_SIP_CONF};
$c =~ s/prefix=\+,00;/prefix=+,00 username=acme password=trunk-pass;/;
$c
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::OUTAUTH



=== TEST 12: a route made through the REST API: the trunk's INVITE rings its user; deleted, the DID is 404 again
--- config eval
$ENV{TEST_NGINX_SIP_CONF} . "location /api.ashx { codeb_api; }\n"
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::APIROUTE
