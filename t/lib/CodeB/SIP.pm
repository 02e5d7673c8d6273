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
                 reg_cmds inv_cmds esc answer in_dialog caller_in_dialog
                 answer_to);

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
                   486 => 'Busy Here', 488 => 'Not Acceptable Here',
                   401 => 'Unauthorized', 407 => 'Proxy Authentication Required',
                   603 => 'Decline' }->{$status} // 'Status';
    my $ct = $body ? "\nContent-Type: application/sdp" : '';
    return sip("SIP/2.0 $status $phrase\n$via\n$from\nTo: $to;tag=bobtag\n"
                     . "$cid\n$cseq\nContact: <sip:bob\@bob.invalid;transport=ws>$ct",
                     $body);
}

sub in_dialog {
    my ($inv, $method, $cseq, $ctype, $body) = @_;
    my ($from) = $inv =~ /^From: ([^\r]*)\r\n/m;
    my ($to) = $inv =~ /^To: ([^\r]*)\r\n/m;
    my ($cid) = $inv =~ /^Call-ID: ([^\r]*)\r\n/m;
    my $ct = $ctype ? "\nContact: <sip:bob\@bob.invalid;transport=ws>"
                      . "\nContent-Type: $ctype" : '';
    return sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
                     . "Via: SIP/2.0/WS bob.invalid;branch=z9hG4bK$method$cseq\n"
                     . "From: $to;tag=bobtag\nTo: $from\nCall-ID: $cid\n"
                     . "CSeq: $cseq $method\nMax-Forwards: 70$ct", $body);
}

# a request of the caller alice in the dialog of call $cid (our tag $tag)
sub caller_in_dialog {
    my ($cid, $tag, $method, $cseq, $ctype, $body) = @_;
    my $ct = $ctype ? "\nContact: <sip:alice\@alice.invalid;transport=ws>"
                      . "\nContent-Type: $ctype" : '';
    return sip("$method sip:codeb\@codeb.invalid;transport=ws SIP/2.0\n"
               . "Via: SIP/2.0/WS alice.invalid;branch=z9hG4bKa$method$cseq\n"
               . "From: <sip:alice\@localhost>;tag=ft1\n"
               . "To: <sip:bob\@localhost>;tag=$tag\nCall-ID: $cid\n"
               . "CSeq: $cseq $method\nMax-Forwards: 70$ct", $body);
}

# a 2xx (or other final answer) to the request $req, with our To tag kept
sub answer_to {
    my ($req, $status, $phrase, $ctype, $body) = @_;
    my @h = map { $req =~ /^($_: [^\r]*)\r\n/m ? $1 : () }
            qw(Via From To Call-ID CSeq);
    my $ct = $ctype ? "\nContact: <sip:x\@x.invalid;transport=ws>"
                      . "\nContent-Type: $ctype" : '';
    return sip(join("\n", "SIP/2.0 $status $phrase", @h) . $ct, $body);
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

# Debian's rtpengine (package rtpengine-daemon) in place of codeb-mediad,
# for the whole test file: userspace only (--table=-1, no kernel module;
# not --no-fallback, which would refuse to start without it), no config
# file, NG on 127.0.0.1:TEST_NGINX_PORT+90 (in TEST_NGINX_NG_PORT, as
# start_mediad's), its CLI on +91 (TEST_NGINX_RTPENGINE_CLI_PORT), 40
# media ports of its own in 61000-65399 (rtpengine_ports(): above the
# kernel's ephemeral ports and start_mediad's 40000-59999), a call gone at
# once on delete (--delete-delay=0: no longer in list nor query).  Its log
# (level 7: every NG request and reply) and pidfile in SERVROOT/rtpengine/;
# one left by a killed run is stopped first.  Dies (the file fails,
# nothing is skipped) when the binary is missing or does not answer ping
# within 10 s; stopped when the file ends.
my ($rtpengine_pid, $rtpengine_owner, $rtpengine_log, @rtpengine_ports);

# the media ports of start_rtpengine's daemon (min, max) and its log
sub rtpengine_ports { @rtpengine_ports }
sub rtpengine_log { $rtpengine_log }

sub start_rtpengine {
    my $bin = $ENV{RTPENGINE_BIN} || '/usr/bin/rtpengine';
    die "start_rtpengine: $bin is not an executable: Debian's rtpengine "
      . "(package rtpengine-daemon, ./build.sh deps) is needed\n" unless -x $bin;

    my $root = $ENV{TEST_NGINX_ROOT} || '.';
    my $port = $ENV{TEST_NGINX_PORT} || 1984;
    my $sr = $ENV{TEST_NGINX_SERVROOT} || "$root/t/servroot";
    my $dir = "$sr/rtpengine";
    my $base = 61000 + $port % 110 * 40;

    $ENV{TEST_NGINX_NG_PORT} = $port + 90;
    $ENV{TEST_NGINX_RTPENGINE_CLI_PORT} = $port + 91;

    require File::Path;
    File::Path::make_path($dir);

    # one left by a killed run holds the ports
    if (open my $f, '<', "$dir/rtpengine.pid") {
        my $old = <$f> // '';
        close $f;
        if ($old =~ /^(\d+)/ && kill 0, $1) {
            my $pid = $1;
            my $cmd = '';
            if (open my $c, '<', "/proc/$pid/cmdline") { local $/; $cmd = <$c> // ''; }
            if ($cmd =~ /rtpengine/
                && $cmd =~ /\0--listen-ng=127\.0\.0\.1:$ENV{TEST_NGINX_NG_PORT}\0/)
            {
                kill 'TERM', $pid;
                for (1 .. 50) { last unless kill 0, $pid; select undef, undef, undef, 0.1 }
                kill 'KILL', $pid if kill 0, $pid;
            }
        }
    }

    $rtpengine_log = "$dir/rtpengine.log";
    @rtpengine_ports = ($base, $base + 39);
    my @argv = ($bin, '--config-file=none', '--foreground', '--log-stderr',
                '--log-level=' . ($ENV{RTPENGINE_LOG_LEVEL} || 7),
                '--table=-1', '--interface=127.0.0.1',
                "--listen-ng=127.0.0.1:$ENV{TEST_NGINX_NG_PORT}",
                "--listen-cli=127.0.0.1:$ENV{TEST_NGINX_RTPENGINE_CLI_PORT}",
                "--port-min=$base", '--port-max=' . ($base + 39),
                "--pidfile=$dir/rtpengine.pid", '--num-threads=2',
                '--delete-delay=0');

    $rtpengine_owner = $$;
    $rtpengine_pid = fork // die "fork: $!";
    if (!$rtpengine_pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $rtpengine_log;
        open STDERR, '>&', \*STDOUT;
        { exec @argv }
        print STDERR "exec $bin: $!\n";
        POSIX::_exit(127);
    }

    my $until = time + 10;
    while (time < $until) {
        my $r = eval { ng({ command => 'ping' }, 0.2) };
        return $rtpengine_pid if $r && ($r->{result} // '') eq 'pong';
        last if waitpid($rtpengine_pid, POSIX::WNOHANG()) == $rtpengine_pid;
        select undef, undef, undef, 0.1;
    }
    my $log = '';
    if (open my $l, '<', $rtpengine_log) { local $/; $log = <$l> // ''; }
    die "start_rtpengine: rtpengine did not answer ping on 127.0.0.1:"
      . "$ENV{TEST_NGINX_NG_PORT}: @argv\n" . substr($log, -3000) . "\n";
}

END {
    if ($rtpengine_pid && $$ == $rtpengine_owner) {
        kill 'TERM', $rtpengine_pid;
        for (1 .. 50) {
            last if waitpid($rtpengine_pid, POSIX::WNOHANG()) == $rtpengine_pid;
            select undef, undef, undef, 0.1;
        }
        if (kill 0, $rtpengine_pid) {
            kill 'KILL', $rtpengine_pid;
            waitpid $rtpengine_pid, 0;
        }
    }
}

# bencode (BEP 3): hashes as dictionaries (keys sorted), array refs as
# lists, a reference to a number (\32) as an integer, anything else as a
# string
sub benc {
    my ($v) = @_;
    return 'd' . join('', map { benc("$_") . benc($v->{$_}) } sort keys %$v) . 'e'
        if ref $v eq 'HASH';
    return 'l' . join('', map { benc($_) } @$v) . 'e' if ref $v eq 'ARRAY';
    return 'i' . (0 + $$v) . 'e' if ref $v eq 'SCALAR';
    return length($v) . ":$v";
}

sub bdec {
    my ($s, $pos) = @_;
    my $p = \($_[1]);
    my $c = substr $s, $$p, 1;
    if ($c eq 'i') {
        substr($s, $$p) =~ /^i(-?\d+)e/ or die "bdec: bad integer at $$p\n";
        $$p += length($1) + 2;
        return $1 + 0;
    }
    if ($c eq 'l' || $c eq 'd') {
        $$p++;
        my @v;
        while (substr($s, $$p, 1) ne 'e') {
            die "bdec: truncated\n" if $$p >= length $s;
            push @v, bdec($s, $$p);
        }
        $$p++;
        return $c eq 'l' ? \@v : {@v};
    }
    substr($s, $$p) =~ /^(\d+):/ or die "bdec: bad string at $$p\n";
    my $v = substr $s, $$p + length($1) + 1, $1;
    $$p += length($1) + 1 + $1;
    return $v;
}

# one NG request to TEST_NGINX_NG_PORT: the decoded reply (a hash); dies
# after 3 tries of $wait seconds without one
my $ng_n = 0;
sub ng {
    my ($req, $wait) = @_;
    require IO::Socket::INET;
    require IO::Select;
    my $s = IO::Socket::INET->new(Proto => 'udp', PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_NG_PORT})
        or die "ng: socket: $!\n";
    my $cookie = sprintf 't%x_%d', $$, ++$ng_n;
    for (1 .. 3) {
        $s->send("$cookie " . benc($req)) or die "ng: send: $!\n";
        next unless IO::Select->new($s)->can_read($wait || 1);
        my $buf;
        defined $s->recv($buf, 65536) or die "ng: recv: $!\n";
        next unless $buf =~ s/^\Q$cookie\E //;
        my $pos = 0;
        return bdec($buf, $pos);
    }
    die "ng: no reply to '$req->{command}' from 127.0.0.1:$ENV{TEST_NGINX_NG_PORT}\n";
}

push @EXPORT, qw(start_rtpengine rtpengine_ports rtpengine_log ng benc bdec);

1;
