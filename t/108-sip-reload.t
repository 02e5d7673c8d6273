# nginx -s reload with calls up (docs/sip.md "Every worker, every host"):
# the calls go on in the old workers, which stay until they end (a trunk
# call too, though the old worker's UDP listener is closed: it sends from
# a port of its own); a new setting applies to the calls after the reload
# (max_inbound=0 added: a new trunk call is held at 180).
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;

start_mediad();

$ENV{TEST_NGINX_TRUNK_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 71;
my $tp = $ENV{TEST_NGINX_TRUNK_PORT};

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT;
codeb_inbound_route did=* from=* user=alice;
location = /sip { codeb_sip_ws; }
EOF

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
EOF

# a request of the carrier (the trunk) to us
sub main::carrier {
    my ($method, $cid, $branch, $cseq, $to_tag, $body, $from) = @_;
    $from //= '+4917012345';
    my $sp = $ENV{TEST_NGINX_STREAM_PORT};
    my $to = '<sip:+4930222@127.0.0.1>' . ($to_tag ? ";tag=$to_tag" : '');
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    return sip("$method sip:+4930222\@127.0.0.1:$sp SIP/2.0\n"
               . "Via: SIP/2.0/UDP 127.0.0.1:$tp;branch=$branch;rport\n"
               . "From: <sip:$from\@carrier.test>;tag=c-$cid\n"
               . "To: $to\nCall-ID: $cid\nCSeq: $cseq $method\n"
               . "Max-Forwards: 70\nContact: <sip:carrier\@127.0.0.1:$tp>$ct",
               $body);
}

our @RELOAD = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    reg_cmds('A', 'alice'), reg_cmds('B', 'bob'),
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    # a call between browsers
    inv_cmds('rl-1', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    # a call from the trunk, answered by alice
    "set_eval TINV main::carrier('INVITE', 'rl-2', 'z9hG4bKr2', 1, '', main::sdp_plain(40000))",
    'udp_send T ${TINV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    'capture A AINV (?s)^(.*)$',
    'set_eval A200 main::answer(q{${AINV}}, 200, main::sdp(q{aaaa}))',
    'send_esc A ${A200}',
    'recv A ^ACK ',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 INVITE\r\n',
    'capture T TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval TACK main::carrier('ACK', 'rl-2', 'z9hG4bKr2a', 1, '\${TAG}')",
    'udp_send T ${TACK}',
    # new setting, then reload with both calls up
    "shell sed -i 's/codeb_sip_trunk carrier host=127.0.0.1:$tp;/codeb_sip_trunk carrier host=127.0.0.1:$tp max_inbound=0;/' \$TEST_NGINX_SERVROOT/conf/nginx.conf",
    'reload',
    'worker_alive A',
    'worker_alive B',
    # the browser call goes on: bob hangs up, alice gets BYE
    "set_eval BYE main::in_dialog(q{\${INV}}, 'BYE', 2)",
    'send_esc B ${BYE}',
    'recv B ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A ^BYE (?s:.*)Call-ID: rl-1\r\n',
    # the trunk call goes on: the carrier hangs up through a new worker
    "set_eval TBYE main::carrier('BYE', 'rl-2', 'z9hG4bKr2b', 2, '\${TAG}')",
    'udp_send T ${TBYE}',
    'udp_wait T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A ^BYE ',
    # a new call from the trunk (another caller: not a sibling of rl-2)
    # follows the new setting: held at 180.  The old workers have closed
    # their UDP listeners by now (during the reload's first moments a
    # CANCEL may reach another worker than its INVITE: docs/sip.md)
    'sleep 500',
    "set_eval TINV3 main::carrier('INVITE', 'rl-3', 'z9hG4bKr3', 1, '', main::sdp_plain(40002), '+4917099999')",
    'udp_send T ${TINV3}',
    'udp_wait T ^SIP/2\.0 100 Trying\r\n(?s:.*)Call-ID: rl-3\r\n',
    'udp_wait T ^SIP/2\.0 180 Ringing\r\n(?s:.*)Call-ID: rl-3\r\n',
    'no_recv A 800',
    "set_eval TCAN main::carrier('CANCEL', 'rl-3', 'z9hG4bKr3', 1, '', '', '+4917099999')",
    'udp_send T ${TCAN}',
    'udp_wait T ^SIP/2\.0 487 ',
    'capture T TAG3 ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval TACK3 main::carrier('ACK', 'rl-3', 'z9hG4bKr3', 1, '\${TAG3}', '', '+4917099999')",
    'udp_send T ${TACK3}',
    'close A', 'close B',
);

run_tests();
done_testing();

__DATA__

=== TEST 1: reload with a browser call and a trunk call up: both go on to their end; a new setting applies to the next call
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 10
--- ws eval
\@main::RELOAD
