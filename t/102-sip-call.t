# Calls between WebSocket users through the back-to-back user agent
# (docs/sip.md "Calls") with the media through a real codeb-mediad over NG:
# 100 and 180 at once, 407 first, the callee's INVITE with the daemon's
# SDP, the 200 deferred until the callee answers, ACK, BYE both ways,
# CANCEL during ringing, a callee that is not registered, and caller and
# callee on different workers.
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;

start_mediad();

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
codeb_sip_user carol password=carol-demo-pass;
location = /sip { codeb_sip_ws; }
EOF

our @CALL = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-1', 'bob'),
    # an early dialog: our Contact in the 180 (RFC 3261 §12.1.1)
    'recv A (?s)^SIP/2\.0 180 Ringing\r\n.*Contact: <sip:codeb@codeb\.invalid;transport=ws>\r\n',
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

# requests inside the call relayed to the other party: bob's re-INVITE
# (hold) with the daemon's SDP to alice and her answer back; alice's INFO
# as it is; alice's UPDATE with an offer; a second re-INVITE meanwhile 491
our @RELAY = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-6', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'capture A TAG ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:bob@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    "set_eval ACK main::caller_in_dialog('call-6', '\${TAG}', 'ACK', 2)",
    'send_esc A ${ACK}',
    # bob holds: re-INVITE with a=sendonly
    "set_eval HOLD main::in_dialog(q{\${INV}}, 'INVITE', 2, 'application/sdp', main::sdp(q{cccc}) =~ s/a=sendrecv/a=sendonly/r)",
    'send_esc B ${HOLD}',
    'recv B ^SIP/2\.0 100 Trying\r\n',
    'recv A (?s)^INVITE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n(?=.*a=sendonly\r\n)(?=.*a=ice-lite\r\n).*From: <sip:bob@localhost>;tag=${TAG}\r\n.*To: <sip:alice@localhost>;tag=ft1\r\n.*Call-ID: call-6\r\n.*CSeq: 1 INVITE\r\n',
    'capture A RE (?s)^(.*)$',
    # a second re-INVITE from bob while the first is under way
    "set_eval HOLD2 main::in_dialog(q{\${INV}}, 'INVITE', 3, 'application/sdp', main::sdp(q{dddd}))",
    'send_esc B ${HOLD2}',
    'recv B ^SIP/2\.0 491 Request Pending\r\n(?s:.*)CSeq: 3 INVITE\r\n',
    "set_eval RE200 main::answer_to(q{\${RE}}, 200, 'OK', 'application/sdp', main::sdp(q{eeee}) =~ s/a=sendrecv/a=recvonly/r)",
    'send_esc A ${RE200}',
    'recv A ^ACK sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n(?s:.*)CSeq: 1 ACK\r\n',
    'recv B (?s)^SIP/2\.0 200 OK\r\n(?=.*a=recvonly\r\n).*CSeq: 2 INVITE\r\n.*Contact: <sip:codeb@codeb\.invalid;transport=ws>\r\n',
    "set_eval BACK main::in_dialog(q{\${INV}}, 'ACK', 2)",
    'send_esc B ${BACK}',
    # alice's INFO reaches bob as it is, bob's answer comes back
    "set_eval INFO main::caller_in_dialog('call-6', '\${TAG}', 'INFO', 3, 'application/dtmf-relay', qq{Signal=5\r\nDuration=160\r\n})",
    'send_esc A ${INFO}',
    'recv B (?s)^INFO sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*CSeq: 2 INFO\r\n.*Content-Type: application/dtmf-relay\r\n.*\r\n\r\nSignal=5\r\nDuration=160\r\n$',
    'capture B BINFO (?s)^(.*)$',
    "set_eval INFO200 main::answer_to(q{\${BINFO}}, 200, 'OK')",
    'send_esc B ${INFO200}',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 3 INFO\r\n',
    # alice's UPDATE with an offer, bob's answer
    "set_eval UPD main::caller_in_dialog('call-6', '\${TAG}', 'UPDATE', 4, 'application/sdp', main::sdp(q{ffff}))",
    'send_esc A ${UPD}',
    'recv B (?s)^UPDATE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*CSeq: 3 UPDATE\r\n.*a=ice-lite\r\n',
    'capture B BUPD (?s)^(.*)$',
    "set_eval UPD200 main::answer_to(q{\${BUPD}}, 200, 'OK', 'application/sdp', main::sdp(q{gggg}))",
    'send_esc B ${UPD200}',
    'recv A (?s)^SIP/2\.0 200 OK\r\n.*CSeq: 4 UPDATE\r\n.*a=ice-lite\r\n',
    # and the end
    "set_eval BYE main::caller_in_dialog('call-6', '\${TAG}', 'BYE', 5)",
    'send_esc A ${BYE}',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 5 BYE\r\n',
    'recv B ^BYE ',
    'close A', 'close B',
);

# bob's REFER (in the dialog of the INVITE he got) to user $to
sub main::refer {
    my ($inv, $to) = @_;
    my $r = in_dialog($inv, 'REFER', 2);
    my $h = "Refer-To: <sip:$to\@localhost>\r\n"
          . "Contact: <sip:bob\@bob.invalid;transport=ws>\r\n";
    $r =~ s/\r\nContent-Length/\r\n${h}Content-Length/;
    return $r;
}

# bob transfers alice to carol (REFER, RFC 3515): 202 and NOTIFY 100 to
# bob; carol gets an INVITE without an offer and offers; alice gets a
# re-INVITE with that offer through the daemon, her answer goes to carol
# in the ACK; bob gets NOTIFY 200 and BYE; carol and alice talk on
our @TRANSFER = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    'open C /sip proto=sip',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::reg_cmds('C', 'carol'),
    main::inv_cmds('call-7', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'capture A TAG ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:bob@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    "set_eval ACK main::caller_in_dialog('call-7', '\${TAG}', 'ACK', 2)",
    'send_esc A ${ACK}',
    # bob: REFER to carol
    "set_eval REF main::refer(q{\${INV}}, 'carol')",
    'send_esc B ${REF}',
    'recv B ^SIP/2\.0 202 Accepted\r\n(?s:.*)CSeq: 2 REFER\r\n',
    'recv B (?s)^NOTIFY sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*CSeq: 2 NOTIFY\r\n.*Event: refer\r\n.*Subscription-State: active;expires=60\r\n.*Content-Type: message/sipfrag;version=2\.0\r\n.*\r\n\r\nSIP/2\.0 100 Trying\r\n$',
    'capture B N1 (?s)^(.*)$',
    "set_eval N1OK main::answer_to(q{\${N1}}, 200, 'OK')",
    'send_esc B ${N1OK}',
    # carol: an INVITE without an offer, from alice
    'recv C (?s)^INVITE sip:carol@carol\.invalid;transport=ws SIP/2\.0\r\n(?!.*application/sdp).*From: <sip:alice@localhost>;tag=cb.*Content-Length: 0\r\n\r\n$',
    'capture C CINV (?s)^(.*)$',
    'set_eval C200 main::answer(q{${CINV}}, 200, main::sdp(q{cccc}))',
    'send_esc C ${C200}',
    # alice: re-INVITE with carol's offer through the daemon
    'recv A (?s)^INVITE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n(?=.*a=ice-lite\r\n).*Call-ID: call-7\r\n.*CSeq: 1 INVITE\r\n',
    'capture A RE (?s)^(.*)$',
    "set_eval RE200 main::answer_to(q{\${RE}}, 200, 'OK', 'application/sdp', main::sdp(q{aaaa}))",
    'send_esc A ${RE200}',
    'recv A ^ACK ',
    # carol's ACK carries alice's answer
    'recv C (?s)^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*Content-Type: application/sdp\r\n.*a=ice-lite\r\n',
    # bob: NOTIFY 200 (terminated), then BYE
    'recv B (?s)^NOTIFY .*CSeq: 3 NOTIFY\r\n.*Subscription-State: terminated;reason=noresource\r\n.*\r\n\r\nSIP/2\.0 200 OK\r\n$',
    'capture B N2 (?s)^(.*)$',
    "set_eval N2OK main::answer_to(q{\${N2}}, 200, 'OK')",
    'send_esc B ${N2OK}',
    'recv B ^BYE (?s:.*)CSeq: 4 BYE\r\n',
    # carol hangs up: alice gets BYE
    "set_eval CBYE main::in_dialog(q{\${CINV}}, 'BYE', 2)",
    'send_esc C ${CBYE}',
    'recv C ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A ^BYE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n',
    'close A', 'close B', 'close C',
);

# a transfer to a user with no binding fails: NOTIFY 480, the call goes on
our @TRANSFER_FAIL = (
    'open A /sip proto=sip', 'open B /sip proto=sip',
    main::reg_cmds('A', 'alice'), main::reg_cmds('B', 'bob'),
    main::inv_cmds('call-8', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK ',
    'recv A ^SIP/2\.0 200 OK\r\n',
    "set_eval REF main::refer(q{\${INV}}, 'carol')",
    'send_esc B ${REF}',
    'recv B ^SIP/2\.0 202 Accepted\r\n',
    'recv B (?s)^NOTIFY .*\r\n\r\nSIP/2\.0 100 Trying\r\n$',
    'capture B N1 (?s)^(.*)$',
    "set_eval N1OK main::answer_to(q{\${N1}}, 200, 'OK')",
    'send_esc B ${N1OK}',
    'recv B (?s)^NOTIFY .*Subscription-State: terminated;reason=noresource\r\n.*\r\n\r\nSIP/2\.0 480 Temporarily Unavailable\r\n$',
    'capture B N2 (?s)^(.*)$',
    "set_eval N2OK main::answer_to(q{\${N2}}, 200, 'OK')",
    'send_esc B ${N2OK}',
    'no_recv B 500',
    'no_recv A 100',
    "set_eval BYE main::in_dialog(q{\${INV}}, 'BYE', 3)",
    'send_esc B ${BYE}',
    'recv B ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 3 BYE\r\n',
    'recv A ^BYE ',
    'close A', 'close B',
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



=== TEST 6: re-INVITE (hold), INFO and UPDATE inside the call reach the other party, answers come back; 491 while one is under way
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::RELAY



=== TEST 7: blind transfer: bob REFERs alice to carol, NOTIFY 100 then 200, carol and alice connected through the daemon
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::TRANSFER



=== TEST 8: a transfer to a user without binding: NOTIFY 480, the call goes on
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::TRANSFER_FAIL
