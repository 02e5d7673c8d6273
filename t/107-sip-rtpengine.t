# The calls of t/102 (WebSocket to WebSocket) and t/105 (trunk in and
# out) with Debian's rtpengine (rtpengine-daemon, userspace only) as the
# NG daemon in place of codeb-mediad (issue 7: "It must also work with
# Debian's rtpengine in place of codeb-mediad (same NG)").  Checked: the
# SDP rtpengine writes for each side has what that side needs (browsers:
# UDP/TLS/RTP/SAVPF, ICE credentials with ICE-Lite or candidates on
# rtpengine's port, a sha-256 fingerprint, a=setup, a=rtcp-mux, none of
# the other side's ICE or DTLS; trunks: RTP/AVP with G.711, no ICE, DTLS,
# SDES, RTCP mux or Opus), both sides are in rtpengine while the call is
# up with the protocol each speaks (NG query), and the call ends with our
# delete (rtpengine's log has it, query and list no longer know the call).
# rtpengine absent or not starting: the file fails (start_rtpengine dies).
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;

start_rtpengine();

my ($PMIN, $PMAX) = rtpengine_ports();

# A browser's SDP with "c=IN IP4 0.0.0.0" (the test browsers', and a real
# browser's whose default candidate is an mDNS name) is an old-style hold
# to rtpengine unless we send replace "zero-address" and flags
# "original-sendrecv" (rtpengine 10.5 README); media_ok() checks both
# outcomes on every SDP rtpengine writes.

$ENV{TEST_NGINX_TRUNK_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 71;
my $tp = $ENV{TEST_NGINX_TRUNK_PORT};

$ENV{TEST_NGINX_SIP_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT prefix=+,00;
codeb_inbound_route did=+4930222 from=* user=alice;
location = /sip { codeb_sip_ws; }
EOF

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
EOF

# ---- the SDP checks (each dies with what is wrong and the SDP)

sub main::sdp_body {
    my ($msg) = @_;
    my ($b) = $msg =~ /\r\n\r\n(.*)\z/s;
    die "no SDP body in:\n$msg\n" unless defined $b && $b =~ /^v=0\r\n/;
    return $b;
}

sub main::sdp_fail {
    my ($label, $body, @bad) = @_;
    return 1 unless @bad;
    die "$label: " . join('; ', @bad) . "\n--- SDP:\n$body";
}

# the m= port: one of rtpengine's
sub main::mport {
    my ($body, $proto, $bad) = @_;
    my ($port, $p) = $body =~ /^m=audio (\d+) (\S+) /m
        or do { push @$bad, 'no m=audio line'; return 0 };
    push @$bad, "m= protocol $p, not $proto" if $p ne $proto;
    push @$bad, "m= port $port not in rtpengine's $PMIN-$PMAX"
        if $port < $PMIN || $port > $PMAX;
    return $port;
}

# what a browser needs; $role: offer (we offer to it) or answer
sub main::webrtc_sdp {
    my ($msg, $role, $label) = @_;
    my $b = main::sdp_body($msg);
    my @bad;
    my $port = main::mport($b, 'UDP/TLS/RTP/SAVPF', \@bad);
    push @bad, 'no c=IN IP4 line' unless $b =~ /^c=IN IP4 \S+\r$/m;
    push @bad, 'no a=ice-ufrag' unless $b =~ /^a=ice-ufrag:\S{4,}\r$/m;
    push @bad, 'no a=ice-pwd' unless $b =~ /^a=ice-pwd:\S{22,}\r$/m;
    push @bad, "neither a=ice-lite nor a host candidate 127.0.0.1 $port"
        unless $b =~ /^a=ice-lite\r$/m
            || $b =~ /^a=candidate:\S+ 1 UDP \d+ 127\.0\.0\.1 $port typ host\r$/mi;
    push @bad, 'no a=fingerprint:sha-256'
        unless $b =~ /^a=fingerprint:sha-256 (?:[0-9A-F]{2}:){31}[0-9A-F]{2}\r$/mi;
    my $setup = $role eq 'offer' ? 'actpass' : '(?:active|passive)';
    push @bad, "no a=setup:$setup" unless $b =~ /^a=setup:$setup\r$/m;
    push @bad, 'no a=rtcp-mux' unless $b =~ /^a=rtcp-mux\r$/m;
    push @bad, 'no a=rtpmap' unless $b =~ /^a=rtpmap:\d+ /m;
    # the browser never sees the other side's ICE or DTLS
    push @bad, "the other side's ICE credentials"
        if $b =~ /^a=ice-ufrag:(?:aaaa|bbbb)\r$/m;
    push @bad, "the other side's candidate" if $b =~ / 50000 typ host/;
    push @bad, "the other side's fingerprint" if $b =~ /AB:AB:AB:AB/;
    return main::sdp_fail("SDP to $label", $b, @bad);
}

# what a trunk needs: plain RTP with G.711, RTCP on its own port
sub main::plain_sdp {
    my ($msg, $label) = @_;
    my $b = main::sdp_body($msg);
    my @bad;
    my $port = main::mport($b, 'RTP/AVP', \@bad);
    push @bad, 'no c=IN IP4 line' unless $b =~ /^c=IN IP4 \S+\r$/m;
    push @bad, "ICE ($1)" if $b =~ /^a=(ice-\S+|candidate|end-of-candidates)/m;
    push @bad, "DTLS ($1)" if $b =~ /^a=(fingerprint|setup|tls-id)/m;
    push @bad, 'SDES a=crypto' if $b =~ /^a=crypto/m;
    push @bad, 'a=rtcp-mux' if $b =~ /^a=rtcp-mux/m;
    push @bad, 'Opus' if $b =~ /opus/i;
    push @bad, 'neither PCMA nor PCMU'
        unless $b =~ /^a=rtpmap:(?:8 PCMA|0 PCMU)\/8000\r$/m
            || $b =~ /^m=audio \d+ RTP\/AVP(?: \d+)* [08](?: |\r)/m;
    push @bad, "a=rtcp port $1, not " . ($port + 1)
        if $b =~ /^a=rtcp:(\d+)/m && $1 != $port + 1;
    return main::sdp_fail("SDP to $label", $b, @bad);
}

# the direction (sendrecv) and c= (not 0.0.0.0) of an SDP, each its own
# assertion (the ws line itself passes)
sub main::media_ok {
    my ($msg, $label) = @_;
    my $b = main::sdp_body($msg);
    my $tb = Test::Builder->new;
    my ($dir) = $b =~ /^a=(sendrecv|sendonly|recvonly|inactive)\r$/m;
    $tb->ok(!defined $dir || $dir eq 'sendrecv',
            "SDP to $label: sendrecv (a=" . ($dir // 'none') . ')');
    my @c = $b =~ /^c=IN IP4 (\S+)\r$/mg;
    $tb->ok(@c && !grep({ $_ ne '127.0.0.1' } @c),
            "SDP to $label: c= is rtpengine's address (c=IN IP4 @c)");
    return 1;
}

# ---- rtpengine's view of the call (NG query, list, its log)

sub main::ng_show {
    my ($v) = @_;
    require JSON::PP;
    return JSON::PP->new->canonical->encode($v);
}

# both sides in rtpengine with the protocol each speaks: the caller's tag
# with $caller, the other (our tag towards the caller) with $callee
sub main::rtpengine_call {
    my ($cid, $tag, $caller, $callee) = @_;
    require JSON::PP;
    my $q = ng({ command => 'query', 'call-id' => $cid });
    die "query $cid: " . main::ng_show($q) . "\n" unless ($q->{result} // '') eq 'ok';
    my %proto = map { my $t = $q->{tags}{$_};
                      ($_ => join(',', map { $_->{protocol} // '?' } @{$t->{medias} || []})) }
                keys %{$q->{tags} || {}};
    my @other = grep { $_ ne $tag } keys %proto;
    die "query $cid: tags " . main::ng_show(\%proto) . ", want $tag => $caller and one other => $callee\n"
        unless ($proto{$tag} // '') eq $caller && @other == 1 && $proto{$other[0]} eq $callee;
    return main::ng_show(\%proto);
}

sub main::rtpengine_has {
    my ($cid) = @_;
    my $l = ng({ command => 'list' });
    die "list: " . main::ng_show($l) . ", no $cid\n" unless grep { $_ eq $cid } @{$l->{calls} || []};
    return 1;
}

# the call ended with a delete from nginx: in rtpengine's log, and query
# and list no longer know it (--delete-delay=0), within 3 s; no call left
sub main::rtpengine_gone {
    my ($cid) = @_;
    require JSON::PP;
    my ($q, $l, $log);
    for (1 .. 30) {
        $q = ng({ command => 'query', 'call-id' => $cid });
        $l = ng({ command => 'list' });
        $log = do { local $/; open my $f, '<', rtpengine_log() or die "log: $!"; <$f> };
        return 1 if ($q->{result} // '') eq 'error'
                    && ($q->{'error-reason'} // '') =~ /Unknown call-id/i
                    && $l->{result} eq 'ok' && !@{$l->{calls}}
                    && $log =~ /\[\Q$cid\E\]: \[control\] Received command 'delete' from/;
        select undef, undef, undef, 0.1;
    }
    my @lines = grep { /\[\Q$cid\E\]: \[control\] (?:Received command|Dump for)/ } split /\n/, $log;
    die "after 3 s: query " . main::ng_show($q) . ", list " . main::ng_show($l)
      . "\nrtpengine's NG log of $cid:\n" . join("\n", @lines) . "\n";
}

# ---- the scenarios

# t/102 TEST 1: alice calls bob (on another worker), 180 at once, 200
# when bob answers, ACK, BYE from bob
our @CALL = (
    'open A /sip proto=sip', 'open B /sip proto=sip other A',
    reg_cmds('A', 'alice'), reg_cmds('B', 'bob'),
    inv_cmds('call-1', 'bob'),
    'recv A (?s)^SIP/2\.0 180 Ringing\r\n.*Contact: <sip:codeb@codeb\.invalid;transport=ws>\r\n',
    'capture A TAG180 ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:bob@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    'recv B (?s)^INVITE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=z9hG4bKcb[0-9a-f]+-.*From: <sip:alice@localhost>;tag=cb.*Call-ID: cb[0-9a-f]+-.*\r\n\r\nv=0\r\n',
    'capture B INV (?s)^(.*)$',
    'set_eval S1 main::webrtc_sdp(q{${INV}}, q{offer}, q{bob})',
    'set_eval T1 main::media_ok(q{${INV}}, q{bob})',
    'set_eval L1 main::rtpengine_has(q{call-1})',
    'set_eval R180 main::answer(q{${INV}}, 180)',
    'send_esc B ${R180}',
    'no_recv A 300',
    'set_eval R200 main::answer(q{${INV}}, 200, main::sdp(q{bbbb}))',
    'send_esc B ${R200}',
    'recv B ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    'recv A (?s)^SIP/2\.0 200 OK\r\n.*To: <sip:bob@localhost>;tag=${TAG180}\r\n.*Contact: <sip:codeb@codeb\.invalid;transport=ws>\r\n.*\r\n\r\nv=0\r\n',
    'capture A OK (?s)^(.*)$',
    'set_eval S2 main::webrtc_sdp(q{${OK}}, q{answer}, q{alice})',
    'set_eval T2 main::media_ok(q{${OK}}, q{alice})',
    'send_esc A ACK sip:codeb@codeb.invalid;transport=ws SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKack\r\nFrom: <sip:alice@localhost>;tag=ft1\r\nTo: <sip:bob@localhost>;tag=${TAG180}\r\nCall-ID: call-1\r\nCSeq: 2 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    'no_recv B 200',
    'set_eval Q main::rtpengine_call(q{call-1}, q{ft1}, q{UDP/TLS/RTP/SAVPF}, q{UDP/TLS/RTP/SAVPF})',
    'set_eval BYE main::in_dialog(q{${INV}}, q{BYE}, 2)',
    'send_esc B ${BYE}',
    'recv B ^SIP/2\.0 200 OK\r\n',
    'recv A (?s)^BYE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n.*From: <sip:bob@localhost>;tag=${TAG180}\r\n.*To: <sip:alice@localhost>;tag=ft1\r\n.*Call-ID: call-1\r\n',
    'set_eval GONE main::rtpengine_gone(q{call-1})',
    'close A', 'close B',
);

# t/102 TEST 2: alice cancels while bob rings
our @CANCEL = (
    'open A /sip proto=sip', 'open B /sip proto=sip',
    reg_cmds('A', 'alice'), reg_cmds('B', 'bob'),
    inv_cmds('call-2', 'bob'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'recv B ^INVITE ',
    'capture B INV (?s)^(.*)$',
    'set_eval S1 main::webrtc_sdp(q{${INV}}, q{offer}, q{bob})',
    'set_eval L1 main::rtpengine_has(q{call-2})',
    'send_esc A CANCEL sip:bob@localhost SIP/2.0\r\nVia: SIP/2.0/WS alice.invalid;branch=z9hG4bKinv2\r\nFrom: <sip:alice@localhost>;tag=ft1\r\nTo: <sip:bob@localhost>\r\nCall-ID: call-2\r\nCSeq: 2 CANCEL\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 CANCEL\r\n',
    'recv A ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)CSeq: 2 INVITE\r\n',
    'capture B BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    'recv B ^CANCEL sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'set_eval R487 main::answer(q{${INV}}, 487)',
    'send_esc B ${R487}',
    'recv B ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'set_eval GONE main::rtpengine_gone(q{call-2})',
    'close A', 'close B',
);

# a request of the carrier (the trunk) to us
sub main::carrier {
    my ($method, $did, $cid, $branch, $cseq, $to_tag, $body) = @_;
    my $sp = $ENV{TEST_NGINX_STREAM_PORT};
    my $to = "<sip:$did\@127.0.0.1>" . ($to_tag ? ";tag=$to_tag" : '');
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    return sip("$method sip:$did\@127.0.0.1:$sp SIP/2.0\n"
               . "Via: SIP/2.0/UDP 127.0.0.1:$tp;branch=$branch;rport\n"
               . "From: \"Caller +4917012345\" <sip:+4917012345\@carrier.test>;tag=carrier1\n"
               . "To: $to\nCall-ID: $cid\nCSeq: $cseq $method\n"
               . "Max-Forwards: 70\nContact: <sip:carrier\@127.0.0.1:$tp>$ct",
               $body);
}

# the carrier's answer to the INVITE it got
sub main::carrier_answer {
    my ($inv, $status, $body) = @_;
    my $r = answer($inv, $status, $body);
    $r =~ s/<sip:bob\@bob\.invalid;transport=ws>/<sip:carrier\@127.0.0.1:$tp>/;
    return $r;
}

# an in-dialog request from the browser alice to us (the 200's Contact)
sub main::browser {
    my ($method, $cid, $tag, $cseq) = @_;
    return sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
               . "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bK$method$cseq\n"
               . "From: <sip:alice\@localhost>;tag=ft1\n"
               . "To: <sip:+4930999\@localhost>;tag=$tag\n"
               . "Call-ID: $cid\nCSeq: $cseq $method\nMax-Forwards: 70");
}

# t/105 TEST 1: the carrier calls +4930222 (alice): WebRTC to the browser,
# plain RTP back to the carrier, BYE from the carrier
our @INBOUND = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-1', 'z9hG4bKt1', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A (?s)^INVITE sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\n.*From: "Caller \+4917012345" <sip:\+4917012345@carrier\.test>;tag=cb.*\r\n\r\nv=0\r\n',
    'capture A AINV (?s)^(.*)$',
    'set_eval S1 main::webrtc_sdp(q{${AINV}}, q{offer}, q{alice})',
    'set_eval T1 main::media_ok(q{${AINV}}, q{alice})',
    'capture A CIDA ^INVITE (?s:.*?)\r\nCall-ID: ([^\r]+)\r\n',
    'set_eval R200 main::answer(q{${AINV}}, 200, main::sdp(q{bbbb}))',
    'send_esc A ${R200}',
    'recv A ^ACK sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n',
    "udp_recv T (?s)^SIP/2\\.0 200 OK\\r\\n.*CSeq: 1 INVITE\\r\\n.*Contact: <sip:codeb\@127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;transport=udp>\\r\\n.*\\r\\n\\r\\nv=0\\r\\n",
    'capture T OK (?s)^(.*)$',
    'set_eval S2 main::plain_sdp(q{${OK}}, q{the carrier})',
    'set_eval T2 main::media_ok(q{${OK}}, q{the carrier})',
    'capture T TAG ^SIP/2\.0 200 OK\r\n(?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'tr-1', 'z9hG4bKt1a', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    'no_recv A 200',
    'set_eval Q main::rtpengine_call(q{tr-1}, q{carrier1}, q{RTP/AVP}, q{UDP/TLS/RTP/SAVPF})',
    "set_eval BYE main::carrier('BYE', '+4930222', 'tr-1', 'z9hG4bKt1b', 2, '\${TAG}')",
    'udp_send T ${BYE}',
    'udp_wait T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 2 BYE\r\n',
    'recv A (?s)^BYE sip:bob@bob\.invalid;transport=ws SIP/2\.0\r\n.*Call-ID: ${CIDA}\r\n',
    'set_eval GONE main::rtpengine_gone(q{tr-1})',
    'close A',
);

# t/105 TEST 2: alice calls +4930999 out through the trunk: plain RTP and
# G.711 to the carrier, WebRTC back to alice, BYE from alice
our @OUTBOUND = (
    "udp T 0 bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    inv_cmds('out-1', '+4930999'),
    'recv A ^SIP/2\.0 180 Ringing\r\n',
    'capture A TAGA ^SIP/2\.0 180 Ringing\r\n(?s:.*?)To: <sip:\+4930999@localhost>;tag=(cb[0-9a-f]+-[0-9a-f]+)\r\n',
    "udp_recv T (?s)^INVITE sip:\\+4930999\@127\\.0\\.0\\.1 SIP/2\\.0\\r\\nVia: SIP/2\\.0/UDP 127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;branch=z9hG4bKcb[0-9a-f]+-[0-9a-f]+;rport\\r\\n.*From: <sip:alice\@127\\.0\\.0\\.1>;tag=cb.*To: <sip:\\+4930999\@127\\.0\\.0\\.1>\\r\\n.*Contact: <sip:codeb\@127\\.0\\.0\\.1:\$TEST_NGINX_STREAM_PORT;transport=udp>\\r\\n.*\\r\\n\\r\\nv=0\\r\\n",
    'capture T TINV (?s)^(.*)$',
    'set_eval S1 main::plain_sdp(q{${TINV}}, q{the carrier})',
    'set_eval T1 main::media_ok(q{${TINV}}, q{the carrier})',
    'set_eval T180 main::carrier_answer(q{${TINV}}, 180)',
    'udp_reply T ${T180}',
    'no_recv A 200',
    'set_eval T200 main::carrier_answer(q{${TINV}}, 200, main::sdp_plain(40002))',
    'udp_reply T ${T200}',
    # (our INVITE sent again before the 180 came may come first)
    'udp_wait T ^ACK sip:carrier@127\.0\.0\.1:' . $tp . ' SIP/2\.0\r\n',
    'recv A (?s)^SIP/2\.0 200 OK\r\n.*CSeq: 2 INVITE\r\n.*\r\n\r\nv=0\r\n',
    'capture A OK (?s)^(.*)$',
    'set_eval S2 main::webrtc_sdp(q{${OK}}, q{answer}, q{alice})',
    'set_eval T2 main::media_ok(q{${OK}}, q{alice})',
    "set_eval ACK main::browser('ACK', 'out-1', '\${TAGA}', 2)",
    'send_esc A ${ACK}',
    'set_eval Q main::rtpengine_call(q{out-1}, q{ft1}, q{UDP/TLS/RTP/SAVPF}, q{RTP/AVP})',
    "set_eval BYE main::browser('BYE', 'out-1', '\${TAGA}', 3)",
    'send_esc A ${BYE}',
    'recv A ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 3 BYE\r\n',
    'udp_wait T ^BYE sip:carrier@127\.0\.0\.1:' . $tp . ' SIP/2\.0\r\n',
    'capture T TBYE (?s)^(.*)$',
    'set_eval TBYE200 main::carrier_answer(q{${TBYE}}, 200)',
    'udp_reply T ${TBYE200}',
    'set_eval GONE main::rtpengine_gone(q{out-1})',
    'close A',
);

# t/105 TEST 3: the carrier cancels while the browser rings
our @TCANCEL = (
    "udp T \$TEST_NGINX_STREAM_PORT bind=$tp",
    'open A /sip proto=sip',
    reg_cmds('A', 'alice'),
    "set_eval INV main::carrier('INVITE', '+4930222', 'tr-2', 'z9hG4bKt2', 1, '', main::sdp_plain(40000))",
    'udp_send T ${INV}',
    'udp_recv T ^SIP/2\.0 100 Trying\r\n',
    'udp_recv T ^SIP/2\.0 180 Ringing\r\n',
    'recv A ^INVITE ',
    'set_eval L1 main::rtpengine_has(q{tr-2})',
    'capture A BR ^INVITE [^\r]*\r\nVia: [^\r]*;branch=([^;\r]+)',
    "set_eval CAN main::carrier('CANCEL', '+4930222', 'tr-2', 'z9hG4bKt2', 1)",
    'udp_send T ${CAN}',
    'udp_recv T ^SIP/2\.0 200 OK\r\n(?s:.*)CSeq: 1 CANCEL\r\n',
    'udp_recv T ^SIP/2\.0 487 Request Terminated\r\n(?s:.*)CSeq: 1 INVITE\r\n',
    'capture T TAG ^SIP/2\.0 487 (?s:.*?)To: <sip:\+4930222@127\.0\.0\.1>;tag=([^\r]+)\r\n',
    "set_eval ACK main::carrier('ACK', '+4930222', 'tr-2', 'z9hG4bKt2', 1, '\${TAG}')",
    'udp_send T ${ACK}',
    'recv A ^CANCEL sip:alice@alice\.invalid;transport=ws SIP/2\.0\r\nVia: SIP/2\.0/WS codeb\.invalid;branch=${BR}\r\n',
    'set_eval GONE main::rtpengine_gone(q{tr-2})',
    'close A',
);

run_tests();
done_testing();

__DATA__

=== TEST 1: rtpengine: alice calls bob on another worker: WebRTC SDP both ways, BYE from bob, delete
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::CALL
--- no_error_log
media offer refused
the media daemon did not answer



=== TEST 2: rtpengine: alice cancels while bob rings: 487, CANCEL to bob, delete
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- ws eval
\@main::CANCEL
--- no_error_log
media offer refused
the media daemon did not answer



=== TEST 3: rtpengine: the trunk calls alice: WebRTC to the browser, plain RTP back, BYE from the carrier, delete
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::INBOUND
--- no_error_log
media offer refused
the media daemon did not answer



=== TEST 4: rtpengine: alice calls +4930999 through the trunk: plain RTP and G.711 out, WebRTC back, BYE from alice, delete
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::OUTBOUND
--- no_error_log
media offer refused
the media daemon did not answer



=== TEST 5: rtpengine: the carrier cancels while alice rings: 487, CANCEL to the browser, delete
--- config eval
$ENV{TEST_NGINX_SIP_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws eval
\@main::TCANCEL
--- no_error_log
media offer refused
the media daemon did not answer
