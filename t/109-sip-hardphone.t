# Hardphones over UDP and TCP (docs/sip.md "Calls", "Trunks"): bob
# registers from a UDP (or TCP) phone with digest; alice's browser calls
# him: the phone gets our INVITE over its transport, from our address
# (Via and Contact on the listener, rport on UDP), with plain RTP and
# G.711, and the browser gets WebRTC back; then the phone calls alice
# (407 first) and hangs up.
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;
use Digest::MD5 qw(md5_hex);

start_mediad();

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
location = /sip { codeb_sip_ws; }
EOF

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; codeb_sip; }
EOF

# a request of bob's phone ($t: UDP or TCP, $lport its port)
sub main::phone {
    my ($t, $lport, $method, $ruri, $cid, $cseq, $extra, $body) = @_;
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    $extra = $extra ? "\n$extra" : '';
    return sip("$method $ruri SIP/2.0\n"
               . "Via: SIP/2.0/$t 127.0.0.1:$lport;branch=z9hG4bK$cid$cseq;rport\n"
               . "From: <sip:bob\@localhost>;tag=ph-$cid\n"
               . "To: <sip:" . ($method eq 'REGISTER' ? 'bob' : 'alice')
               . "\@localhost>\nCall-ID: $cid\nCSeq: $cseq $method\n"
               . "Max-Forwards: 70\nContact: <sip:bob\@127.0.0.1:$lport;"
               . "transport=" . lc($t) . ">;expires=600$extra$ct", $body);
}

sub main::digest {
    my ($method, $uri, $nonce, $nc, $hdr) = @_;
    my $ha1 = md5_hex("bob:localhost:bob-demo-pass");
    my $ha2 = md5_hex("$method:$uri");
    my $r = md5_hex("$ha1:$nonce:$nc:beef:auth:$ha2");
    return "$hdr: Digest username=\"bob\", realm=\"localhost\", "
         . "nonce=\"$nonce\", uri=\"$uri\", response=\"$r\", "
         . "algorithm=MD5, qop=auth, nc=$nc, cnonce=\"beef\"";
}

# the phone's answer to the request we sent it
sub main::phone_answer {
    my ($req, $status, $phrase, $lport, $t, $body) = @_;
    my $r = answer_to($req, $status, $phrase, $body ? 'application/sdp' : undef,
                      $body);
    $r =~ s/<sip:x\@x\.invalid;transport=ws>/<sip:bob\@127.0.0.1:$lport;transport=\L$t\E>/;
    $r =~ s/^(To: [^\r]*)\r\n/$1;tag=phone\r\n/m unless $r =~ /^To: [^\r]*;tag=/m;
    return $r;
}

# the script for transport $t: recv/send commands of the phone P
sub main::script {
    my ($t) = @_;
    my $udp = $t eq 'UDP';
    my ($open, $send, $recv, $wait) = $udp
        ? ("udp P \$TEST_NGINX_STREAM_PORT", 'udp_send P', 'udp_recv P', 'udp_wait P')
        : ("tcp P \$TEST_NGINX_STREAM_PORT", 'tcp_send P', 'tcp_recv_sip P', 'tcp_recv_sip P');
    my $sp = '$TEST_NGINX_STREAM_PORT';
    return (
        $open,
        'open A /sip proto=sip',
        reg_cmds('A', 'alice'),
        # bob registers from the phone
        "set_eval R1 main::phone('$t', \${P_lport}, 'REGISTER', 'sip:localhost', 'reg-$t', 1)",
        "$send \${R1}",
        "$recv ^SIP/2\\.0 401 ",
        'capture P N nonce="([0-9a-f]{32})"',
        "set_eval R2 main::phone('$t', \${P_lport}, 'REGISTER', 'sip:localhost', 'reg-$t', 2, main::digest('REGISTER', 'sip:localhost', '\${N}', '00000001', 'Authorization'))",
        "$send \${R2}",
        "$recv ^SIP/2\\.0 200 OK\\r\\n",
        # alice calls bob: plain RTP over the phone's transport
        inv_cmds("to-$t", 'bob'),
        'recv A ^SIP/2\.0 180 Ringing\r\n',
        "$recv (?s)^INVITE sip:bob\@127\\.0\\.0\\.1:\${P_lport};transport=\L$t\E SIP/2\\.0\\r\\nVia: SIP/2\\.0/$t 127\\.0\\.0\\.1:$sp;branch=z9hG4bKcb[0-9a-f-]+" . ($udp ? ';rport' : '') . "\\r\\n(?!.*a=ice)(?!.*a=fingerprint)(?!.*opus).*Contact: <sip:codeb\@127\\.0\\.0\\.1:$sp;transport=\L$t\E>\\r\\n.*m=audio \\d+ RTP/AVP ",
        'capture P PINV (?s)^(.*)$',
        "set_eval P200 main::phone_answer(q{\${PINV}}, 200, 'OK', \${P_lport}, '$t', main::sdp_plain(40010))",
        "$send \${P200}",
        "$wait ^ACK sip:bob\@127\\.0\\.0\\.1:\${P_lport};transport=\L$t\E SIP/2\\.0\\r\\n",
        'recv A (?s)^SIP/2\.0 200 OK\r\n(?=.*a=ice-lite\r\n).*m=audio \d+ UDP/TLS/RTP/SAVPF ',
        'capture A TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:bob@localhost>;tag=([^\r]+)\r\n',
        "set_eval ACK main::caller_in_dialog('to-$t', '\${TAG}', 'ACK', 2)",
        'send_esc A ${ACK}',
        "set_eval BYE main::caller_in_dialog('to-$t', '\${TAG}', 'BYE', 3)",
        'send_esc A ${BYE}',
        'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 3 BYE\r\n',
        "$wait ^BYE sip:bob\@127\\.0\\.0\\.1:\${P_lport};transport=\L$t\E SIP/2\\.0\\r\\n",
        'capture P PBYE (?s)^(.*)$',
        "set_eval PBYE200 main::phone_answer(q{\${PBYE}}, 200, 'OK', \${P_lport}, '$t')",
        "$send \${PBYE200}",
        # bob calls alice from the phone: 407, then the call
        "set_eval I1 main::phone('$t', \${P_lport}, 'INVITE', 'sip:alice\@localhost', 'from-$t', 1, '', main::sdp_plain(40012))",
        "$send \${I1}",
        "$recv ^SIP/2\\.0 100 Trying\\r\\n",
        "$recv ^SIP/2\\.0 407 ",
        'capture P N2 nonce="([0-9a-f]{32})"',
        "set_eval I2 main::phone('$t', \${P_lport}, 'INVITE', 'sip:alice\@localhost', 'from-$t', 2, main::digest('INVITE', 'sip:alice\@localhost', '\${N2}', '00000001', 'Proxy-Authorization'), main::sdp_plain(40012))",
        "$send \${I2}",
        "$recv ^SIP/2\\.0 100 Trying\\r\\n",
        "$recv (?s)^SIP/2\\.0 180 Ringing\\r\\n.*Contact: <sip:codeb\@127\\.0\\.0\\.1:$sp;transport=\L$t\E>\\r\\n",
        'recv A (?s)^INVITE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n(?=.*a=ice-lite\r\n).*m=audio \d+ UDP/TLS/RTP/SAVPF ',
        'capture A AINV (?s)^(.*)$',
        'set_eval A200 main::answer(q{${AINV}}, 200, main::sdp(q{aaaa}))',
        'send_esc A ${A200}',
        'recv A ^ACK ',
        "$wait (?s)^SIP/2\\.0 200 OK\\r\\n(?!.*a=ice).*CSeq: 2 INVITE\\r\\n.*m=audio \\d+ RTP/AVP ",
        'capture P TAG2 ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:alice@localhost>;tag=([^\r]+)\r\n',
        "set_eval PACK main::phone('$t', \${P_lport}, 'ACK', 'sip:codeb\@127.0.0.1:$sp', 'from-$t', 2) =~ s/To: <sip:alice\\\@localhost>/To: <sip:alice\\\@localhost>;tag=\${TAG2}/r",
        "$send \${PACK}",
        "set_eval PBYE2 main::phone('$t', \${P_lport}, 'BYE', 'sip:codeb\@127.0.0.1:$sp', 'from-$t', 3) =~ s/To: <sip:alice\\\@localhost>/To: <sip:alice\\\@localhost>;tag=\${TAG2}/r",
        "$send \${PBYE2}",
        "$wait ^SIP/2\\.0 200 OK\\r\\n(?s:.*)CSeq: 3 BYE\\r\\n",
        'recv A ^BYE ',
        'close A',
    );
}

our @UDP = main::script('UDP');
our @TCP = main::script('TCP');

run_tests();
done_testing();

__DATA__

=== TEST 1: a UDP phone: registers, is called by a browser (plain RTP, our address), calls the browser (407 first)
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::UDP



=== TEST 2: the same with a TCP phone: our requests come over its connection
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::TCP
