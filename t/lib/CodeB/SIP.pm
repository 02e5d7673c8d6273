package CodeB::SIP;

# SIP messages for the tests of ngx_codeb_sipws: digest answers, SDP of a
# browser and of a telephony peer, REGISTER, INVITE, the callee's answers,
# in-dialog requests, and the command lists that register a WebSocket
# client and place an authenticated call.  Exported into main, so that
# set_eval lines can call them (main::answer(...)).

use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use Exporter 'import';
use POSIX ();

our @EXPORT = qw(start_mediad authz sdp sdp_plain sip register invite
                 reg_cmds inv_cmds esc answer in_dialog);

my ($mediad_pid, $owner);

# codeb-mediad for the whole test file, its NG port in TEST_NGINX_NG_PORT
# (TEST_NGINX_PORT + 70) and 10 media ports of its own, so that runs on
# other ports do not share them; stopped when the file ends
sub start_mediad {
    my $root = $ENV{TEST_NGINX_ROOT} || '.';
    my $mediad = $ENV{CODEB_MEDIAD} || "$root/build/mediad/codeb-mediad";
    my $port = $ENV{TEST_NGINX_PORT} || 1984;
    my $base = 40000 + ($port - 1000) % 2000 * 10;

    $ENV{TEST_NGINX_NG_PORT} = $port + 70;

    $owner = $$;
    $mediad_pid = fork // die "fork: $!";
    return if $mediad_pid;

    open STDOUT, '>', '/dev/null';
    open STDERR, '>', '/dev/null';
    { exec $mediad, '--listen-ng', "127.0.0.1:$ENV{TEST_NGINX_NG_PORT}",
           '--port-min', $base, '--port-max', $base + 9, '--threads', '1' }
    POSIX::_exit(127);
}

END {
    # not in a child of the test that exits
    if ($mediad_pid && $$ == $owner) {
        kill 'TERM', $mediad_pid;
        waitpid $mediad_pid, 0;
    }
}

sub authz {
    my ($user, $pass, $method, $uri, $nonce, $nc, $hdr) = @_;
    my $ha1 = md5_hex("$user:localhost:$pass");
    my $ha2 = md5_hex("$method:$uri");
    my $r = md5_hex("$ha1:$nonce:$nc:cafe:auth:$ha2");
    return "$hdr: Digest username=\"$user\", realm=\"localhost\", "
         . "nonce=\"$nonce\", uri=\"$uri\", response=\"$r\", "
         . "algorithm=MD5, qop=auth, nc=$nc, cnonce=\"cafe\"";
}

sub sdp {
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
sub sip {
    my ($head, $body) = @_;
    $body //= '';
    $head =~ s/\n+\z//;
    $head =~ s/\n/\r\n/g;
    return "$head\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
}

sub register {
    my ($user, $auth, $cseq) = @_;
    return sip(<<EOF);
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

sub invite {
    my ($cid, $to, $auth, $cseq) = @_;
    my $a = $auth ? "\n$auth" : '';
    return sip(<<EOF, sdp('aaaa'));
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
sub reg_cmds {
    my ($c, $user) = @_;
    return ("send_esc $c " . esc(register($user, '', 1)),
            "recv $c ^SIP/2\\.0 401 ",
            "capture $c N$c nonce=\"([0-9a-f]{32})\"",
            "set_eval R$c register('$user', authz('$user', '$user-demo-pass', 'REGISTER', 'sip:localhost', '\${N$c}', '00000001', 'Authorization'), 2)",
            "send_esc $c \${R$c}",
            "recv $c ^SIP/2\\.0 200 OK");
}

# an authenticated INVITE from A (100, 407, ACK, then 100 and 180)
sub inv_cmds {
    my ($cid, $to) = @_;
    return ("send_esc A " . esc(invite($cid, $to, '', 1)),
            "recv A ^SIP/2\\.0 100 Trying",
            "recv A ^SIP/2\\.0 407 Proxy Authentication Required",
            "capture A NI nonce=\"([0-9a-f]{32})\"",
            "set_eval I2 invite('$cid', '$to', authz('alice', 'alice-demo-pass', 'INVITE', 'sip:$to\@localhost', '\${NI}', '00000001', 'Proxy-Authorization'), 2)",
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
sub answer {
    my ($inv, $status, $body) = @_;
    my ($via) = $inv =~ /^(Via: [^\r]*)\r\n/m;
    my ($from) = $inv =~ /^(From: [^\r]*)\r\n/m;
    my ($to) = $inv =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $inv =~ /^(Call-ID: [^\r]*)\r\n/m;
    my ($cseq) = $inv =~ /^(CSeq: [^\r]*)\r\n/m;
    my $phrase = { 100 => 'Trying', 180 => 'Ringing', 200 => 'OK', 487 => 'Request Terminated',
                   486 => 'Busy Here' }->{$status};
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    return sip("SIP/2.0 $status $phrase\n$via\n$from\nTo: $to;tag=bobtag\n"
                     . "$cid\n$cseq\nContact: <sip:bob\@bob.invalid;transport=ws>$ct",
                     $body);
}

sub in_dialog {
    my ($inv, $method, $cseq) = @_;
    my ($from) = $inv =~ /^From: ([^\r]*)\r\n/m;
    my ($to) = $inv =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $inv =~ /^Call-ID: ([^\r]*)\r\n/m;
    return sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
                     . "Via: SIP/2.0/WS bob.invalid;branch=z9hG4bKbye$cseq\n"
                     . "From: $to;tag=bobtag\nTo: $from\nCall-ID: $cid\n"
                     . "CSeq: $cseq $method\nMax-Forwards: 70");
}


# the SDP of a telephony peer: plain RTP, G.711 A-law and mu-law
sub sdp_plain {
    my ($port) = @_;
    return "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
         . "c=IN IP4 127.0.0.1\r\nt=0 0\r\n"
         . "m=audio $port RTP/AVP 8 0 101\r\n"
         . "a=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n"
         . "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
         . "a=ptime:20\r\na=sendrecv\r\n";
}

1;
