# Outbound calls (docs/api.md "Outbound calls", "Dialing"): the field
# table of POST /v1/calls, Idempotency-Key, scheduled calls and their
# status filter, hangup (cancelled, then a no-op), 503 without a trunk or
# greeting, 502 when the trunk does not answer, and real calls through a
# carrier on loopback (a forked UDP peer on the trunk's address) with a
# real codeb-mediad: it rings, answers, hears the greeting as RTP, gets
# our BYE when it has played; the scheduler dials a due call by itself;
# a ringing call is cancelled through the API.  Events go to a real
# webhook receiver (t/tools/webhook-receiver.py).
use lib 't/lib';
use Test::CodeB;
use CodeB::SIP;
use CodeB::JWT qw(jwt_hs256);
use CodeB::Receiver qw(recv_port);
use HTTP::Tiny;
use JSON::PP;
use IO::Socket::INET;
use POSIX qw(strftime);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

start_mediad();

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => int(time) + 600, sub => 'root',
                                               preferred_username => 'root', role => 'admin' });
$ENV{TEST_NGINX_TRUNK_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 73;
my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_RECV_LOG} = "$dir/received.jsonl";
$ENV{TEST_NGINX_RECV_PORTFILE} = "$dir/receiver.port";
$ENV{TEST_NGINX_GREETING} = "$dir/greeting.wav";

$ENV{TEST_NGINX_LONG_GREETING} = "$dir/long.wav";

# the greetings: 1 s (and 12 s) of a 440 Hz tone, 8 kHz mono 16-bit PCM
for my $g ([$ENV{TEST_NGINX_GREETING}, 1], [$ENV{TEST_NGINX_LONG_GREETING}, 12]) {
    my $pcm = pack('s<*', map { int(8000 * sin(2 * 3.14159265 * 440 * $_ / 8000)) } 0 .. 8000 * $g->[1] - 1);
    open my $f, '>', $g->[0] or die;
    print $f 'RIFF', pack('V', 36 + length $pcm), 'WAVEfmt ', pack('VvvVVvv', 16, 1, 1, 8000, 16000, 2, 16),
             'data', pack('V', length $pcm), $pcm;
    close $f;
}

my $tp = $ENV{TEST_NGINX_TRUNK_PORT};

sub main::api {
    my ($method, $path, $body, $want, $hdr) = @_;
    my $res = HTTP::Tiny->new(timeout => 15)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/api.ashx/v1$path",
        { headers => { Authorization => "Bearer $ENV{TEST_NGINX_JWT_ADMIN}", %{$hdr // {}},
                       defined $body ? ('Content-Type' => 'application/json') : () },
          defined $body ? (content => $body) : () });
    die "$method $path: $res->{status} (want $want): $res->{content}\n" unless $res->{status} == $want;
    die "$method $path: Cache-Control\n" unless ($res->{headers}{'cache-control'} // '') eq 'no-store';
    return decode_json($res->{content});
}

sub main::ok_that {
    my ($cond, $what) = @_;
    die "$what\n" unless $cond;
    return 1;
}

# the events the receiver got (on /ok) of $event (of call $id if given),
# waiting until $n came
sub main::events {
    my ($event, $n, $id) = @_;
    my $until = time + 20;
    my @got;
    while (1) {
        @got = ();
        if (open my $f, '<', $ENV{TEST_NGINX_RECV_LOG}) {
            while (<$f>) {
                my $j = decode_json($_);
                my $e = decode_json($j->{body});
                push @got, $e if $e->{event} eq $event && (!$id || $e->{data}{callId} eq $id);
            }
        }
        last if @got >= $n || time > $until;
        sleep 0.1;
    }
    die "receiver: " . scalar(@got) . " $event, want $n\n" unless @got >= $n;
    return \@got;
}

sub main::hook {
    my $port = recv_port();
    main::api('POST', '/webhooks', encode_json({ url => "http://127.0.0.1:$port/ok", events => ['*'] }), 201);
}

my %call = (phone => '+4930123456', email => 'ops@example.com', systemPrompt => 'Say hello.',
            apiKey => 'engine-key', displayName => 'Reminder', maxSeconds => 30);

sub main::iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub main::poll_call {
    my ($id, $status) = @_;
    my $c;
    for (1 .. 100) {
        $c = main::api('GET', "/calls/$id", undef, 200);
        return $c if $c->{status} eq $status;
        sleep 0.1;
    }
    die "call $id is $c->{status}, want $status: " . encode_json($c) . "\n";
}

# the field table: 400 naming the field; either case; types
sub main::check_fields {
    for my $case ([phone => '4930123'], [phone => '+0301234567'], [phone => 123], [email => 'nope'],
                  [email => undef], [systemPrompt => ''], [apiKey => undef], [maxSeconds => 5],
                  [maxSeconds => '30'], [maxSeconds => 3601], [maxSeconds => 30.5], [retries => 11],
                  [retryDelayMinutes => 0], [scheduleAtUtc => 'tomorrow'], [scheduleAtUtc => '2026-13-01T00:00:00Z'],
                  [displayName => "a\"b"], [language => 'en US'], [voice => 'x' x 65]) {
        my %b = %call;
        if (defined $case->[1]) { $b{$case->[0]} = $case->[1] } else { delete $b{$case->[0]} }
        my $e = main::api('POST', '/calls', encode_json(\%b), 400);
        main::ok_that($e->{error} eq 'invalid_request' && $e->{error_description} =~ /^\Q$case->[0]\E: /,
                      "$case->[0]: " . encode_json($e));
    }
    main::api('POST', '/calls', '{"phone": ', 400);
    main::api('POST', '/calls', '[1]', 400);
    # either case: Phone, Email, ... with a time far ahead
    my %b = map { ucfirst($_) => $call{$_} } keys %call;
    $b{ScheduleAtUtc} = main::iso(time + 3600);
    my $r = main::api('POST', '/calls', encode_json(\%b), 200);
    main::ok_that($r->{ok} && $r->{callId} =~ /^oac-[0-9a-f]{12}$/ && $r->{status} eq 'scheduled'
                  && $r->{whitelistAdded} && !defined $r->{whitelistError} && $r->{tenant} eq 'localhost',
                  'either case: ' . encode_json($r));
    1
}

# scheduled: stored whatever the trunk, listed, filtered, cancelled once
sub main::check_scheduled {
    main::hook();
    my %b = (%call, phone => '+15551234567', scheduleAtUtc => main::iso(time + 3600));
    my @ids = map { main::api('POST', '/calls', encode_json(\%b), 200)->{callId} } 1 .. 3;
    my $c = main::api('GET', "/calls/$ids[0]", undef, 200);
    main::ok_that($c->{status} eq 'scheduled' && $c->{phone} eq '+15551234567' && $c->{displayName} eq 'Reminder'
                  && $c->{scheduledForUtc} =~ /Z$/ && !defined $c->{dispatchedAtUtc} && $c->{attempt} == 0
                  && $c->{retriesLeft} == 0 && $c->{requestedBy} eq 'root' && $c->{maxSeconds} == 30
                  && !exists $c->{apiKey} && !exists $c->{systemPrompt}, 'record: ' . encode_json($c));
    my $l = main::api('GET', '/calls?status=scheduled&limit=2', undef, 200);
    main::ok_that($l->{total} == 3 && @{$l->{data}} == 2 && $l->{next} eq '/api.ashx/v1/calls?limit=2&offset=2&status=scheduled'
                  && $l->{data}[0]{callId} eq $ids[2], 'newest first: ' . encode_json($l));
    main::api('GET', '/calls?status=scheduled,bogus', undef, 400);
    main::ok_that(main::api('GET', '/calls?status=in-flight,cancelled', undef, 200)->{total} == 0, 'filter');
    my $h = main::api('POST', "/calls/$ids[0]/hangup", undef, 200);
    main::ok_that($h->{ok} && !$h->{wasNoop} && $h->{newStatus} eq 'cancelled' && $h->{actor} eq 'root', 'hangup');
    $h = main::api('POST', "/calls/$ids[0]/hangup", undef, 200);
    main::ok_that($h->{ok} && $h->{wasNoop} && $h->{status} eq 'cancelled', 'again: a no-op');
    main::ok_that(main::api('GET', '/calls?status=cancelled', undef, 200)->{data}[0]{callId} eq $ids[0]
                  && main::api('GET', '/calls?status=scheduled', undef, 200)->{total} == 2, 'moved');
    my ($e) = @{main::events('outbound-ai.finished', 1)};
    main::ok_that($e->{data}{callId} eq $ids[0] && $e->{data}{outcome} eq 'cancelled' && !$e->{data}{answered},
                  'finished: ' . encode_json($e));
    main::api('GET', '/calls/oac-000000000000', undef, 404)->{error_description} eq 'No call with id=oac-000000000000'
        or die "404 text\n";
    main::api('GET', '/calls/..%2F..%2Fx', undef, 404);
    main::api('POST', '/calls/oac-000000000000/hangup', undef, 404);
    1
}

sub main::check_idempotency {
    my %b = (%call, scheduleAtUtc => main::iso(time + 3600));
    my $k = { 'Idempotency-Key' => 'order-42' };
    my $a = main::api('POST', '/calls', encode_json(\%b), 200, $k);
    my $again = main::api('POST', '/calls', encode_json(\%b), 200, $k);
    main::ok_that($again->{callId} eq $a->{callId}, 'same key, same body: the first answer');
    $b{displayName} = 'Other';
    main::ok_that(main::api('POST', '/calls', encode_json(\%b), 409, $k)->{error} eq 'idempotency_conflict', '409');
    main::ok_that(main::api('GET', '/calls', undef, 200)->{total} == 1, 'one call');
    main::api('POST', '/calls', encode_json(\%b), 400, { 'Idempotency-Key' => 'x' x 256 });
    1
}

# no trunk for the number, or no greeting: 503, never a fake success
sub main::check_not_configured {
    my $e = main::api('POST', '/calls', encode_json({ %call, phone => '+15551234567' }), 503);
    main::ok_that($e->{error} eq 'bridge_not_configured', 'no trunk: ' . encode_json($e));
    main::ok_that(main::poll_call($e->{callId}, 'ended-failed-final')->{errorDetail} =~ /bridge_not_configured/, 'failed');
    1
}

sub main::check_no_greeting {
    my $e = main::api('POST', '/calls', encode_json(\%call), 503);
    main::ok_that($e->{error} eq 'bridge_not_configured' && $e->{error_description} =~ /codeb_call_greeting/, 'greeting');
    main::ok_that(main::api('GET', '/calls', undef, 200)->{total} == 0, 'nothing stored');
    1
}

# the carrier, forked: answers the INVITE on the trunk's port as $how
# ('answer': 100, 180, 200 with its RTP port, counts RTP until our BYE;
# 'ring': 100, 180 until our CANCEL); writes what it saw to $out
sub main::carrier {
    my ($how, $out, $number) = @_;
    my $pid = fork // die;
    return $pid if $pid;
    my %seen;
    eval {
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$tp", Proto => 'udp', ReuseAddr => 1) or die "bind: $!";
        my $rtp = IO::Socket::INET->new(LocalAddr => '127.0.0.1:0', Proto => 'udp') or die;
        my $rport = $rtp->sockport;
        my ($inv, $peer, $buf);
        my $until = time + 20;
        my $sel = IO::Select->new($s, $rtp);
        my ($answered_at, $bye_at);
        while (time < $until) {
            for my $h ($sel->can_read(0.2)) {
                my $from = $h->recv($buf, 65535);
                if ($h == $rtp) {
                    $seen{rtp}++;
                    $seen{pt}{ord(substr($buf, 1, 1)) & 0x7f}++;
                    $seen{first_rtp} //= time - $answered_at if $answered_at;
                    next;
                }
                if ($buf =~ /^INVITE sip:([^@]+)@/) {
                    # (an unanswered INVITE of an earlier block is sent
                    # again until its Timer B: not this call)
                    next if $inv || ($number && $1 ne $number);
                    $inv = $buf;
                    $peer = $from;
                    $seen{invite} = $buf;
                    $s->send(main::carrier_answer($inv, 100), 0, $peer);
                    $s->send(main::carrier_answer($inv, 180), 0, $peer);
                    if ($how eq 'answer') {
                        $s->send(main::carrier_answer($inv, 200, sdp_plain($rport)), 0, $peer);
                        $answered_at = time;
                    }
                } elsif ($buf =~ /^ACK /) {
                    $seen{ack}++;
                } elsif ($buf =~ /^(BYE|CANCEL) / && $inv
                         && ($buf =~ /^Call-ID: (\S+)/m)[0] eq ($inv =~ /^Call-ID: (\S+)/m)[0]) {
                    my ($m) = $buf =~ /^(BYE|CANCEL) /;
                    $seen{lc $m}++;
                    $seen{bye_after} = time - $answered_at if $m eq 'BYE';
                    $s->send(answer_to($buf, 200, 'OK'), 0, $from);
                    if ($m eq 'CANCEL') {
                        $s->send(main::carrier_answer($inv, 487), 0, $peer);
                    }
                    $until = time + 0.5;
                }
            }
        }
    };
    $seen{error} = $@ if $@;
    open my $f, '>', $out;
    print $f encode_json(\%seen);
    close $f;
    POSIX::_exit(0);
}

sub main::carrier_answer {
    my ($inv, $status, $body) = @_;
    my $r = answer($inv, $status, $body);
    $r =~ s/<sip:bob\@bob\.invalid;transport=ws>/<sip:carrier\@127.0.0.1:$tp>/;
    return $r;
}

sub main::carrier_saw {
    my ($pid, $out) = @_;
    waitpid($pid, 0);
    open my $f, '<', $out or die "the carrier wrote nothing\n";
    local $/;
    my $j = decode_json(<$f>);
    die "carrier: $j->{error}\n" if $j->{error};
    return $j;
}

# an immediate call: rings, answered, hears the greeting, gets our BYE
sub main::check_dial {
    main::hook();
    my $out = "$dir/carrier-dial.json";
    my $pid = main::carrier('answer', $out);
    sleep 0.3;
    my $t0 = time;
    my $r = main::api('POST', '/calls', encode_json(\%call), 200);
    main::ok_that($r->{ok} && $r->{bridgeReply} =~ /^SIP\/2\.0 1\d\d$/ && time - $t0 < 3, 'POST: ' . encode_json($r));
    my $seen = main::carrier_saw($pid, $out);
    main::ok_that($seen->{invite} =~ /^INVITE sip:\+4930123456\@127\.0\.0\.1 SIP\/2\.0\r\n/
                  && $seen->{invite} =~ /^From: "Reminder" <sip:codeb\@127\.0\.0\.1>;tag=/m
                  && $seen->{invite} =~ /m=audio \d+ RTP\/AVP/ && $seen->{invite} !~ /a=ice|opus/, 'INVITE');
    main::ok_that($seen->{ack} && $seen->{bye} == 1, 'ACK and BYE: ' . encode_json($seen));
    # 1 s of greeting: about 50 packets of G.711, then our BYE
    main::ok_that($seen->{rtp} >= 40 && (keys %{$seen->{pt}}) == 1 && (exists $seen->{pt}{8} || exists $seen->{pt}{0}),
                  "RTP: $seen->{rtp}, " . encode_json($seen->{pt}));
    main::ok_that($seen->{bye_after} >= 0.9 && $seen->{bye_after} < 4, "BYE after $seen->{bye_after} s");
    my $c = main::poll_call($r->{callId}, 'ended-success');
    main::ok_that($c->{endedReason} eq 'finished' && $c->{trunkId} eq 'carrier' && $c->{answeredAtUtc}
                  && $c->{endedAtUtc} && $c->{durationSec} >= 1 && $c->{attempt} == 1, 'record: ' . encode_json($c));
    my ($ans) = @{main::events('call.answered', 1)};
    main::ok_that($ans->{data}{callId} eq $r->{callId} && $ans->{data}{trunkId} eq 'carrier'
                  && $ans->{data}{direction} eq 'outbound' && $ans->{data}{source} eq 'outbound-ai'
                  && $ans->{data}{answerMs} >= 0, 'call.answered: ' . encode_json($ans));
    main::events('call.started', 1);
    my ($fin) = @{main::events('outbound-ai.finished', 1)};
    main::ok_that($fin->{data}{outcome} eq 'finished' && $fin->{data}{answered} && $fin->{data}{talkSec} >= 1
                  && $fin->{data}{trunk} eq 'carrier' && $fin->{data}{phone} eq '+4930123456', 'finished: ' . encode_json($fin));
    1
}

# nothing answers on the trunk's address: 502 within about 4 s
sub main::check_unreachable {
    my $t0 = time;
    my $e = main::api('POST', '/calls', encode_json({ %call, retries => 2 }), 502);
    main::ok_that($e->{error} eq 'bridge_unreachable' && time - $t0 < 7, 'unreachable: ' . encode_json($e));
    my $c = main::poll_call($e->{callId}, 'ended-failed-final');
    main::ok_that($c->{errorDetail} =~ /did not answer/ && $c->{retriesLeft} == 2, 'record: ' . encode_json($c));
    1
}

# a call due in 2 s: the scheduler dials it by itself, once
sub main::check_scheduler {
    my $out = "$dir/carrier-sched.json";
    my $pid = main::carrier('answer', $out, '+4930999888');
    my $r = main::api('POST', '/calls', encode_json({ %call, phone => '+4930999888',
                                                      scheduleAtUtc => main::iso(time + 2) }), 200);
    main::ok_that($r->{status} eq 'scheduled', 'scheduled');
    my $seen = main::carrier_saw($pid, $out);
    main::ok_that($seen->{invite} && $seen->{bye} == 1 && $seen->{rtp} >= 40, 'dialed: ' . encode_json($seen));
    my $c = main::poll_call($r->{callId}, 'ended-success');
    main::ok_that($c->{attempt} == 1 && $c->{dispatchedAtUtc}, 'record: ' . encode_json($c));
    1
}

# a ringing call cancelled through the API: CANCEL to the trunk
sub main::check_cancel_ringing {
    main::hook();
    my $out = "$dir/carrier-ring.json";
    my $pid = main::carrier('ring', $out, '+4930999777');
    sleep 0.3;
    my $r = main::api('POST', '/calls', encode_json({ %call, phone => '+4930999777' }), 200);
    main::poll_call($r->{callId}, 'in-flight');
    my $h = main::api('POST', "/calls/$r->{callId}/hangup", undef, 200);
    main::ok_that($h->{newStatus} eq 'cancelled' && $h->{previousStatus} eq 'in-flight', 'hangup');
    my $seen = main::carrier_saw($pid, $out);
    main::ok_that($seen->{cancel} == 1 && !$seen->{bye}, 'CANCEL: ' . encode_json($seen));
    my ($fin) = @{main::events('outbound-ai.finished', 1, $r->{callId})};
    main::ok_that($fin->{data}{outcome} eq 'cancelled' && !$fin->{data}{answered}, 'the event');
    sleep 1;
    main::ok_that(@{main::events('outbound-ai.finished', 1, $r->{callId})} == 1, 'exactly one finished event');
    main::ok_that(main::api('GET', "/calls/$r->{callId}", undef, 200)->{status} eq 'cancelled', 'stays cancelled');
    1
}

# two hosts on one Redis: due calls are each dialed once, by whichever
# host holds the scheduler's lease (the carrier answers 486)
sub main::check_two_hosts {
    my $n = 8;
    my $pid = fork // die;
    if (!$pid) {
        my %seen;
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$tp", Proto => 'udp', ReuseAddr => 1) or POSIX::_exit(1);
        my $until = time + 30;
        my $buf;
        while (time < $until) {
            # every number seen: a second more for a second INVITE
            $until = time + 1 if keys %seen == $n && $until > time + 1;
            next unless IO::Select->new($s)->can_read(0.2);
            my $from = $s->recv($buf, 65535);
            next unless $buf =~ /^INVITE sip:(\+493011100\d)\@/;
            my $num = $1;
            my ($cid) = $buf =~ /^Call-ID: (\S+)/m;
            my ($via) = $buf =~ /^Via: SIP\/2\.0\/UDP 127\.0\.0\.1:(\d+)/m;
            $seen{$num}{$cid} = $via;
            $s->send(main::carrier_answer($buf, 486), 0, $from);
        }
        open my $f, '>', "$dir/two-hosts.json";
        print $f encode_json(\%seen);
        close $f;
        POSIX::_exit(0);
    }
    # one a second: the test's media daemon has 10 ports, for two calls
    # (a third, and a dial ends 488 "no free media port")
    my $t0 = time;
    my @ids = map { main::api('POST', '/calls', encode_json({ %call, phone => "+493011100$_",
                                                              scheduleAtUtc => main::iso($t0 + 2 + $_) }),
                              200)->{callId} } 1 .. $n;
    main::poll_call($_, 'ended-failed-final') for @ids;
    waitpid($pid, 0);
    open my $f, '<', "$dir/two-hosts.json" or die "no carrier log\n";
    my $seen = decode_json(do { local $/; <$f> });
    main::ok_that(keys %$seen == $n, 'every call dialed: ' . encode_json($seen) . ' '
                  . encode_json([map { main::api('GET', "/calls/$_", undef, 200) } @ids]));
    for my $num (keys %$seen) {
        main::ok_that(keys %{$seen->{$num}} == 1, "$num dialed once: " . encode_json($seen->{$num}));
    }
    for my $id (@ids) {
        my $c = main::api('GET', "/calls/$id", undef, 200);
        main::ok_that($c->{attempt} == 1 && $c->{endedReason} eq 'no-answer' && $c->{errorDetail} =~ /^SIP 486/,
                      'record: ' . encode_json($c));
    }
    1
}

# sipp plays the carrier (t/tools/sipp-uas-greeting.xml): it must see
# the whole call -- INVITE, our ACK of its 200, our BYE -- and exit 0
sub main::check_sipp {
    main::hook();
    my $mp = $tp + 2;
    my $pid = fork // die;
    if (!$pid) {
        open STDOUT, '>', "$dir/sipp.out";
        open STDERR, '>&', \*STDOUT;
        { exec 'timeout', '25', 'sipp', '-sf', "$ENV{TEST_NGINX_ROOT}/t/tools/sipp-uas-greeting.xml",
               '-i', '127.0.0.1', '-p', $tp, '-mp', $mp, '-rtp_echo', '-m', '1', '-nostdin',
               '-timeout', '20s', '-timeout_error', '-trace_err', '-error_file', "$dir/sipp.err" }
        POSIX::_exit(127);
    }
    sleep 0.5;
    my $r = eval { main::api('POST', '/calls', encode_json(\%call), 200) }
        or die $@ . do { waitpid($pid, 0); local $/; open my $f, '<', "$dir/sipp.out"; <$f> };
    waitpid($pid, 0);
    my $rc = $? >> 8;
    main::ok_that($rc == 0, "sipp exit $rc: " . do { local $/; my $f; open($f, '<', "$dir/sipp.err") ? <$f> : '' });
    my $c = main::poll_call($r->{callId}, 'ended-success');
    main::ok_that($c->{endedReason} eq 'finished' && $c->{durationSec} >= 1, 'record: ' . encode_json($c));
    my ($fin) = @{main::events('outbound-ai.finished', 1, $r->{callId})};
    main::ok_that($fin->{data}{outcome} eq 'finished' && $fin->{data}{answered}, 'event: ' . encode_json($fin));
    main::events('call.answered', 1, $r->{callId});
    1
}

# a busy callee with a retry left: retry-pending, due again after
# retryDelayMinutes (in the scheduler's queue); cancelled from there
sub main::check_retry {
    main::hook();
    my $pid = fork // die;
    if (!$pid) {
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$tp", Proto => 'udp', ReuseAddr => 1) or POSIX::_exit(1);
        my ($buf, $n) = ('', 0);
        my $until = time + 10;
        while (time < $until && !$n) {
            next unless IO::Select->new($s)->can_read(0.2);
            my $from = $s->recv($buf, 65535);
            next unless $buf =~ /^INVITE sip:\+4930999666\@/;
            $s->send(main::carrier_answer($buf, 486), 0, $from);
            $n++;
        }
        sleep 1;
        POSIX::_exit(0);
    }
    sleep 0.3;
    my $t0 = time;
    my $r = main::api('POST', '/calls', encode_json({ %call, phone => '+4930999666', retries => 1,
                                                      retryDelayMinutes => 2 }), 200);
    my $c = main::poll_call($r->{callId}, 'ended-failed-retry-pending');
    waitpid($pid, 0);
    main::ok_that($c->{retriesLeft} == 0 && $c->{attempt} == 1 && $c->{endedReason} eq 'no-answer'
                  && $c->{errorDetail} =~ /^SIP 486/, 'record: ' . encode_json($c));
    my $due = redis_cmd('ZSCORE', 'codeb:calls:due', "localhost $r->{callId}");
    main::ok_that(abs($due / 1000 - ($t0 + 120)) < 5, "due again in 2 min: $due");
    my ($fin) = @{main::events('outbound-ai.finished', 1, $r->{callId})};
    main::ok_that($fin->{data}{outcome} eq 'no-answer' && !$fin->{data}{answered} && $fin->{data}{attempt} == 1,
                  'finished: ' . encode_json($fin));
    my $h = main::api('POST', "/calls/$r->{callId}/hangup", undef, 200);
    main::ok_that($h->{newStatus} eq 'cancelled' && $h->{previousStatus} eq 'ended-failed-retry-pending', 'cancelled');
    main::ok_that(!defined redis_cmd('ZSCORE', 'codeb:calls:due', "localhost $r->{callId}"), 'no longer due');
    main::ok_that(@{main::events('outbound-ai.finished', 2, $r->{callId})} == 2, 'its cancel event');
    1
}

# a greeting longer than maxSeconds: our BYE at maxSeconds, max-duration
sub main::check_max_duration {
    main::hook();
    my $out = "$dir/carrier-max.json";
    my $pid = main::carrier('answer', $out, '+4930999555');
    sleep 0.3;
    my $r = main::api('POST', '/calls', encode_json({ %call, phone => '+4930999555', maxSeconds => 10 }), 200);
    my $seen = main::carrier_saw($pid, $out);
    main::ok_that($seen->{bye} == 1 && $seen->{bye_after} >= 9.8 && $seen->{bye_after} < 12
                  && $seen->{rtp} > 400, "BYE at maxSeconds: $seen->{bye_after} s, $seen->{rtp} packets");
    my $c = main::poll_call($r->{callId}, 'ended-success');
    main::ok_that($c->{endedReason} eq 'max-duration' && $c->{durationSec} >= 9, 'record: ' . encode_json($c));
    my ($fin) = @{main::events('outbound-ai.finished', 1, $r->{callId})};
    main::ok_that($fin->{data}{outcome} eq 'max-duration', 'event: ' . encode_json($fin));
    1
}

# a call whose dialing worker went away (made so in Redis: dispatching,
# its deadline passed): failed by the scheduler, the event fired
sub main::check_lost {
    main::hook();
    my $r = main::api('POST', '/calls', encode_json({ %call, scheduleAtUtc => main::iso(time + 3600) }), 200);
    my $k = 'codeb:{localhost}:calls';
    my $rec = decode_json(redis_cmd('HGET', $k, $r->{callId}));
    $rec->{status} = 'dispatching';
    $rec->{owner} = 'gone:1';
    $rec->{dispatched} = int(time * 1000) - 200000;
    redis_cmd('HSET', $k, $r->{callId}, encode_json($rec));
    redis_cmd('ZREM', "$k:s:scheduled", $r->{callId});
    redis_cmd('ZADD', "$k:s:dispatching", $rec->{created}, $r->{callId});
    redis_cmd('ZREM', 'codeb:calls:due', "localhost $r->{callId}");
    redis_cmd('ZADD', 'codeb:calls:active', int(time * 1000) - 1000, "localhost $r->{callId}");
    my $c = main::poll_call($r->{callId}, 'ended-failed-final');
    main::ok_that($c->{errorDetail} =~ /^lost: / && $c->{endedAtUtc}, 'record: ' . encode_json($c));
    main::ok_that(!defined redis_cmd('ZSCORE', 'codeb:calls:active', "localhost $r->{callId}"), 'not active');
    my ($fin) = @{main::events('outbound-ai.finished', 1, $r->{callId})};
    main::ok_that($fin->{data}{outcome} eq 'no-answer' && $fin->{data}{errorDetail} =~ /^lost: /,
                  'event: ' . encode_json($fin));
    1
}

$ENV{TEST_NGINX_CALLS_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
codeb_webhook_private on;
codeb_call_greeting $TEST_NGINX_GREETING;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT prefix=+49;
location /api.ashx { codeb_api; }
location = /sip { codeb_sip_ws; }
EOF

$ENV{TEST_NGINX_SIP_STREAM} = <<'EOF';
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: the field table: 400 naming the field, either case, malformed JSON
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
set_eval F main::check_fields()



=== TEST 2: scheduled calls: stored without a trunk, listed newest first, filtered, cancelled once, the event
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 30
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval S main::check_scheduled()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 3: Idempotency-Key: the first answer again; another body 409
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
set_eval I main::check_idempotency()



=== TEST 4: an immediate call no trunk takes: 503 bridge_not_configured, recorded as failed
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
set_eval N main::check_not_configured()



=== TEST 5: no codeb_call_greeting: 503 before anything is stored
--- config
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT prefix=+49;
location /api.ashx { codeb_api; }
location = /sip { codeb_sip_ws; }
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- ws
set_eval G main::check_no_greeting()



=== TEST 6: a call through the carrier: rings, answered, the greeting heard, our BYE, the record and the events
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval D main::check_dial()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 7: sipp plays the carrier: the whole call as a UAS sees it, the record, the events
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval P main::check_sipp()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 8: nothing answers on the trunk: 502 bridge_unreachable, the call failed
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 30
--- ws
set_eval U main::check_unreachable()



=== TEST 9: a busy callee with a retry left: retry-pending and due again, then cancelled
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval Y main::check_retry()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 10: the scheduler dials a due call by itself
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
set_eval R main::check_scheduler()



=== TEST 11: a ringing call hung up through the API: CANCEL to the trunk, cancelled, one event
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval C main::check_cancel_ringing()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 12: two hosts on one Redis: every due call is dialed exactly once
--- hosts: 2
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_THIS_STREAM_PORT udp reuseport; codeb_sip; }
--- timeout: 40
--- ws
set_eval H main::check_two_hosts()



=== TEST 13: a greeting longer than maxSeconds: our BYE at maxSeconds, outcome max-duration
--- config
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
codeb_webhook_private on;
codeb_call_greeting $TEST_NGINX_LONG_GREETING;
codeb_sip_trunk carrier host=127.0.0.1:$TEST_NGINX_TRUNK_PORT prefix=+49;
location /api.ashx { codeb_api; }
location = /sip { codeb_sip_ws; }
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval M main::check_max_duration()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)



=== TEST 14: a call whose dialing worker went away: failed at its deadline, the event fired
--- config eval
$ENV{TEST_NGINX_CALLS_CONF}
--- http_config
codeb_sip_media 127.0.0.1:$TEST_NGINX_NG_PORT;
--- stream_config eval
$ENV{TEST_NGINX_SIP_STREAM}
--- timeout: 40
--- ws
shell rm -f $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG; (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval L main::check_lost()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)
