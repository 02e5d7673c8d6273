# Transcripts (docs/api.md "Transcripts"): JSON files in a tenant's
# codeb_transcripts_dir indexed through inotify (listed within 2 s), files
# present at a start found by the scan, deletions and renames, malformed,
# oversized and odd files skipped with nginx running on; the list's
# filters (source, q, since), order and pages; the full transcript and its
# 404; callIds that try to be paths; shares (created, viewed without a
# bearer, an allowlist of fields only, revoked, expired, ttlHours checked,
# kept as a hash only); the events transcript.saved, share.created,
# share.viewed and share.revoked at a real receiver
# (t/tools/webhook-receiver.py); a bearer needed on the API routes.
use lib 't/lib';
use Test::CodeB;
use CodeB::JWT qw(jwt_hs256);
use CodeB::Receiver qw(recv_port received);
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(sha256_hex);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => int(time) + 900, sub => 'root',
                                               preferred_username => 'root', role => 'admin' });
my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_TR} = "$dir/tr";
mkdir "$dir/tr";
mkdir "$dir/tr/$_" for qw(live start bad paths shares);
$ENV{TEST_NGINX_RECV_LOG} = "$dir/received.jsonl";
$ENV{TEST_NGINX_RECV_PORTFILE} = "$dir/receiver.port";

my $json = JSON::PP->new->canonical;

sub main::ok_that {
    my ($cond, $what) = @_;
    die "$what\n" unless $cond;
    return 1;
}

# a request to nginx: (status, decoded JSON or undef, raw body)
sub main::http {
    my ($method, $path, $auth, $body) = @_;
    my %h = $auth ? (Authorization => "Bearer $auth") : ();
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = HTTP::Tiny->new(timeout => 10)->request($method, "http://127.0.0.1:$ENV{TEST_NGINX_PORT}$path",
        { headers => \%h, defined $body ? (content => $body) : () });
    my $j = eval { decode_json($res->{content}) };
    return ($res->{status}, $j, $res->{content}, $res->{headers});
}

sub main::api {
    my ($method, $path, $body, $want) = @_;
    my ($st, $j, $raw, $h) = main::http($method, "/api.ashx/v1$path", $ENV{TEST_NGINX_JWT_ADMIN}, $body);
    die "$method $path: $st (want $want): $raw\n" unless $st == $want;
    die "$method $path: Cache-Control\n" unless ($h->{'cache-control'} // '') eq 'no-store';
    return $j;
}

# a transcript as the bridge writes it
sub main::tr {
    my ($id, $src, $started, %more) = @_;
    return { callId => $id, callerSource => $src, tenant => 'localhost', startedUtc => $started,
             endedUtc => $started, durationSec => 150, outcome => 'finished', language => 'en-US',
             turns => [ { speaker => 'AI', text => "Hi, this is $id", ts => $started },
                        { speaker => 'Caller', text => "Hello \x{e9}\"\\", ts => $started, extra => 'x' } ],
             %more };
}

# writes a file into the block's directory: in place, or (rename => 1)
# as a dot file renamed into place
sub main::put {
    my ($sub, $name, $content, %o) = @_;
    my $d = "$ENV{TEST_NGINX_TR}/$sub";
    $content = JSON::PP->new->utf8->canonical->encode($content) if ref $content;
    my $f = $o{rename} ? "$d/.$name.tmp" : "$d/$name";
    open my $fh, '>', $f or die "$f: $!";
    print $fh $content;
    close $fh;
    rename $f, "$d/$name" or die "rename: $!" if $o{rename};
    return time;
}

# polls GET /transcripts$query until $pred holds; dies after $within s
sub main::until_listed {
    my ($query, $pred, $within, $what) = @_;
    my $t0 = time;
    my $l;
    while (1) {
        # 503: a worker's Redis links are not up yet (right after a reload)
        my ($st, $j, $raw) = main::http('GET', "/api.ashx/v1/transcripts$query", $ENV{TEST_NGINX_JWT_ADMIN});
        die "GET /transcripts$query: $st: $raw\n" unless $st == 200 || $st == 503;
        $l = $j;
        return $l if $st == 200 && $pred->($l);
        die "$what: not within ${within}s: " . encode_json($l) . "\n" if time - $t0 > $within;
        sleep 0.05;
    }
}

sub main::ids { join ',', map { $_->{callId} } @{$_[0]{data}} }

# the webhook receiver (t/tools/webhook-receiver.py): CodeB::Receiver
sub main::hook {
    my ($path, $events) = @_;
    my $port = main::recv_port();
    return main::api('POST', '/webhooks', encode_json({ url => "http://127.0.0.1:$port$path",
                                                       events => $events }), 201);
}

# the event bodies the receiver got on $path, at least $n (20 s)
sub main::events { [map { decode_json($_->{body}) } @{received(@_)}] }

# written while nginx runs: listed within 2 s (in place and renamed into
# place), the full transcript, an update, a deletion; transcript.saved
sub main::check_live {
    main::hook('/saved', ['transcript.saved']);
    my $oac = main::tr('oac-0123456789ab', 'outbound-ai', '2026-01-01T12:00:00.000Z',
                       phone => '+15551234567', displayName => 'Reminder', email => 'ops@example.com',
                       requestedBy => 'alex', voice => 'Aoede', model => 'live-voice-ai', tokensTotal => 18420,
                       tokensPrompt => 1240, rule => 'outbound: +15551234567 (Reminder)',
                       nested => { a => [1, 2.5, -3e2, JSON::PP::true, undef, { b => 'c' }] });
    my $t = main::put('live', 'outbound-ai-20260101-120000-oac-0123456789ab.txt', $oac);
    my $l = main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'a file written in place');
    my $s = $l->{data}[0];
    main::ok_that($s->{callId} eq 'oac-0123456789ab' && $s->{callerSource} eq 'outbound-ai'
                  && $s->{startedUtc} eq '2026-01-01T12:00:00.000Z' && $s->{durationSec} == 150
                  && $s->{phone} eq '+15551234567' && $s->{displayName} eq 'Reminder' && $s->{turnCount} == 2
                  && $s->{tokensTotal} == 18420 && $s->{tokensPrompt} == 1240 && $s->{voice} eq 'Aoede'
                  && $s->{file} eq 'outbound-ai-20260101-120000-oac-0123456789ab.txt'
                  && $s->{size} == -s "$ENV{TEST_NGINX_TR}/live/$s->{file}"
                  && $s->{mtimeUtc} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/
                  && !exists $s->{turns} && !exists $s->{email} && !exists $s->{requestedBy},
                  'the summary: ' . encode_json($s));

    my $full = main::api('GET', '/transcripts/oac-0123456789ab', undef, 200);
    main::ok_that($json->encode($full) eq $json->encode($oac), 'the full transcript: ' . encode_json($full));

    main::put('live', 'vnum-1234-20260101-120000-vnum0123456789ab.txt',
              main::tr('vnum0123456789ab', 'office-tab', '2026-06-04T17:14:03.836Z', number => '666',
                       rule => 'vnum:Shortletsmalta', outcome => 'empty-room'), rename => 1);
    $l = main::until_listed('', sub { $_[0]{total} == 2 }, 2, 'a file renamed into place');
    main::ok_that(main::ids($l) eq 'vnum0123456789ab,oac-0123456789ab', 'newest first: ' . main::ids($l));

    # an update is no new transcript
    $oac->{outcome} = 'voicemail';
    main::put('live', 'outbound-ai-20260101-120000-oac-0123456789ab.txt', $oac);
    main::until_listed('?source=outbound-ai', sub { ($_[0]{data}[0]{outcome} // '') eq 'voicemail' }, 2, 'an update');

    my $saved = main::events('/saved', 2);
    my %by = map { $_->{data}{callId} => $_ } @$saved;
    my $e = $by{'oac-0123456789ab'}{data};
    main::ok_that($by{'oac-0123456789ab'}{event} eq 'transcript.saved' && $by{'oac-0123456789ab'}{tenant} eq 'localhost'
                  && $e->{phone} eq '+15551234567' && $e->{displayName} eq 'Reminder' && !exists $e->{number}
                  && $e->{file} eq 'outbound-ai-20260101-120000-oac-0123456789ab.txt'
                  && $e->{outcome} eq 'finished' && $e->{source} eq 'outbound-ai', 'transcript.saved: ' . encode_json($e));
    $e = $by{'vnum0123456789ab'}{data};
    main::ok_that($e->{number} eq '666' && !exists $e->{phone} && $e->{source} eq 'vnum'
                  && $e->{outcome} eq 'empty-room', 'transcript.saved of a vnum call: ' . encode_json($e));

    unlink "$ENV{TEST_NGINX_TR}/live/outbound-ai-20260101-120000-oac-0123456789ab.txt";
    main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'a deletion');
    my ($st, $j) = main::http('GET', '/api.ashx/v1/transcripts/oac-0123456789ab', $ENV{TEST_NGINX_JWT_ADMIN});
    main::ok_that($st == 404 && $j->{error} eq 'not_found'
                  && $j->{error_description} eq 'No transcript for callId=oac-0123456789ab', "404: $st");

    # moved out of the directory: gone too
    rename "$ENV{TEST_NGINX_TR}/live/vnum-1234-20260101-120000-vnum0123456789ab.txt", "$dir/moved-out.txt";
    main::until_listed('', sub { $_[0]{total} == 0 }, 2, 'a file moved away');
    sleep 1;
    main::ok_that(@{main::events('/saved', 2)} == 2, 'one transcript.saved per new transcript');
    1
}

# the files of the start block, written before nginx starts
my @start = (
    [ 'oac-1', 'outbound-ai', '2026-01-01T10:00:00.000Z', phone => '+15550001111', displayName => 'Reminder' ],
    [ 'oac-2', 'outbound-ai', '2026-02-01T10:00:00Z', phone => '+15550002222', displayName => 'Survey' ],
    [ 'vnum-3', 'vnum', '2026-03-01T10:00:00.250Z', number => '1234', rule => 'vnum:CodeBDemo' ],
    [ 'vnum-4', 'office-tab', '2026-04-01T10:00:00.000Z', number => '666', rule => 'vnum:Shortletsmalta' ],
    [ 'oac-5', 'outbound-ai', '2026-05-01T10:00:00.000Z', phone => '+4930123456', displayName => 'REMINDER two' ],
    [ 'vnum-6', 'vnum', '2026-06-01T10:00:00.000Z', number => '1234', caller => 'Alice Smith' ],
    [ 'sip-7', 'sip', '2026-07-01T10:00:00.000Z', number => '+15559990000' ],
);
main::put('start', "$_->[0].json", main::tr(@$_)) for @start;

# present at a start (the scan of a new worker); order, pages, filters
sub main::check_start {
    # (after a reload on a loaded machine: the new worker 0 starts, scans
    # and reads the files in the thread pool)
    my $l = main::until_listed('', sub { $_[0]{total} == 7 }, 10, 'the files present at the start');
    # the old workers may take requests (and say 503) until they are gone
    my ($ok, $t0) = (0, time);
    while ($ok < 20) {
        my ($st) = main::http('GET', '/api.ashx/v1/transcripts?limit=1', $ENV{TEST_NGINX_JWT_ADMIN});
        $ok = $st == 200 ? $ok + 1 : 0;
        die "the old workers stay\n" if time - $t0 > 20;
    }
    main::ok_that(main::ids($l) eq 'sip-7,vnum-6,oac-5,vnum-4,vnum-3,oac-2,oac-1', 'newest first: ' . main::ids($l));
    main::ok_that(!defined $l->{next} && $l->{limit} == 50 && $l->{offset} == 0, 'one page');

    $l = main::api('GET', '/transcripts?limit=3', undef, 200);
    main::ok_that(main::ids($l) eq 'sip-7,vnum-6,oac-5' && $l->{total} == 7
                  && $l->{next} eq '/api.ashx/v1/transcripts?limit=3&offset=3', 'page 1: ' . encode_json($l));
    $l = main::api('GET', '/transcripts?limit=3&offset=6', undef, 200);
    main::ok_that(main::ids($l) eq 'oac-1' && !defined $l->{next}, 'the last page');
    $l = main::api('GET', '/transcripts?limit=3&offset=7', undef, 200);
    main::ok_that(@{$l->{data}} == 0 && $l->{total} == 7 && !defined $l->{next}, 'past the end');
    $l = main::api('GET', '/transcripts?limit=7', undef, 200);
    main::ok_that(@{$l->{data}} == 7 && !defined $l->{next}, 'exactly one page');
    main::ok_that(main::api('GET', '/transcripts?limit=9999', undef, 200)->{limit} == 500, 'limit capped');
    main::api('GET', "/transcripts?$_", undef, 400) for 'limit=0', 'limit=x', 'offset=-1';

    my %want = (
        'source=vnum' => 'vnum-6,vnum-4,vnum-3',
        'source=outbound-ai' => 'oac-5,oac-2,oac-1',
        'q=reminder' => 'oac-5,oac-1',
        'q=REMINDER' => 'oac-5,oac-1',
        'q=%2B1555' => 'sip-7,oac-2,oac-1',
        'q=+1555' => '',
        'q=666' => 'vnum-4',
        'q=shortlets' => 'vnum-4',
        'q=alice+smith' => 'vnum-6',
        'q=nothing-like-this' => '',
        'since=2026-05-01T10:00:00.000Z' => 'sip-7,vnum-6,oac-5',
        'since=2026-05-01T10%3A00%3A00Z' => 'sip-7,vnum-6,oac-5',
        'since=2026-05-01T10:00:00.001Z' => 'sip-7,vnum-6',
        'since=2026-03-01' => 'sip-7,vnum-6,oac-5,vnum-4,vnum-3',
        'since=2026-03-01T10:00:00.250Z' => 'sip-7,vnum-6,oac-5,vnum-4,vnum-3',
        'since=2026-03-01T10:00:00.251Z' => 'sip-7,vnum-6,oac-5,vnum-4',
        'source=vnum&q=1234&since=2026-03-02' => 'vnum-6',
        'source=' => 'sip-7,vnum-6,oac-5,vnum-4,vnum-3,oac-2,oac-1',
    );
    for my $q (sort keys %want) {
        $l = main::api('GET', "/transcripts?$q", undef, 200);
        my @n = split /,/, $want{$q};
        main::ok_that(main::ids($l) eq $want{$q} && $l->{total} == @n, "?$q: " . main::ids($l));
    }

    # a filtered page's next keeps the filters
    $l = main::api('GET', '/transcripts?source=vnum&limit=2', undef, 200);
    main::ok_that(main::ids($l) eq 'vnum-6,vnum-4' && $l->{total} == 3
                  && $l->{next} eq '/api.ashx/v1/transcripts?limit=2&offset=2&source=vnum', 'next: ' . ($l->{next} // 'null'));
    $l = main::api('GET', '/transcripts?limit=2&offset=2&source=vnum', undef, 200);
    main::ok_that(main::ids($l) eq 'vnum-3' && !defined $l->{next}, 'the next page of a filter');

    for my $bad ('source=sip', 'source=VNUM', 'since=yesterday', 'since=2026-13-01', 'since=2026-01-01T25:00:00Z',
                 'since=2026-01-01T10:00:00%2B02:00', 'q=' . ('x' x 129)) {
        my ($st, $j) = main::http('GET', "/api.ashx/v1/transcripts?$bad", $ENV{TEST_NGINX_JWT_ADMIN});
        my ($name) = $bad =~ /^(\w+)=/;
        main::ok_that($st == 400 && $j->{error} eq 'invalid_request' && $j->{error_description} =~ /^$name\b/,
                      "?$bad: $st " . encode_json($j));
    }
    1
}

# files that are not transcripts are skipped, and nginx runs on
sub main::check_bad {
    my $d = "$ENV{TEST_NGINX_TR}/bad";
    main::put('bad', 'notjson.json', 'this is not JSON +15551234567');
    main::put('bad', 'array.json', '[1, 2]');
    main::put('bad', 'nocallid.json', '{"phone": "+15551234567"}');
    main::put('bad', 'numid.json', '{"callId": 5}');
    main::put('bad', 'dotid.json', '{"callId": ".."}');
    main::put('bad', 'pathid.json', '{"callId": "../../etc/passwd"}');
    main::put('bad', 'deep.json', '{"callId": "deep", "x": ' . ('[' x 200) . (']' x 200) . '}');
    main::put('bad', 'badutf8.json', "{\"callId\": \"utf\", \"x\": \"\xff\xfe\"}");
    main::put('bad', 'big.json', encode_json(main::tr('big', 'vnum', '2026-01-01', pad => 'x' x (1024 * 1024))));
    main::put('bad', '.hidden.json', encode_json(main::tr('hidden', 'vnum', '2026-01-01')));
    main::put('bad', 'a space.json', encode_json(main::tr('space', 'vnum', '2026-01-01')));
    open my $f, '>', "$dir/outside.json" or die;
    print $f encode_json(main::tr('outside', 'vnum', '2026-01-01'));
    close $f;
    symlink "$dir/outside.json", "$d/link.json" or die "symlink: $!";
    main::put('bad', 'good.json', main::tr('good', 'vnum', '2026-01-01'));
    my $l = main::until_listed('', sub { $_[0]{total} >= 1 }, 2, 'a good file after the bad ones');
    sleep 0.5;
    $l = main::api('GET', '/transcripts', undef, 200);
    main::ok_that(main::ids($l) eq 'good', 'only the good file: ' . main::ids($l));
    main::api('GET', "/transcripts/$_", undef, 404) for qw(big deep utf hidden space outside);

    # a good file turned bad leaves the index
    main::put('bad', 'good.json', '{"callId": ');
    main::until_listed('', sub { $_[0]{total} == 0 }, 2, 'a file that went bad');
    main::api('GET', '/transcripts/good', undef, 404);
    main::put('bad', 'good.json', main::tr('good', 'vnum', '2026-01-01'));
    main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'and good again');
    1
}

# callIds that would be paths never reach the filesystem
sub main::check_paths {
    main::put('paths', 'secret.json', main::tr('secret', 'vnum', '2026-01-01'));
    main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'one file');
    for my $p ('..%2Fsecret.json', '..%2F..%2Fetc%2Fpasswd', '%2e%2e%2Fsecret', 'secret.json', 'a%2Fb', '%00',
               '..%5Csecret', 'x' x 65) {
        my ($st, $j, $raw) = main::http('GET', "/api.ashx/v1/transcripts/$p", $ENV{TEST_NGINX_JWT_ADMIN});
        main::ok_that(($st == 404 || $st == 400) && $raw !~ /this is secret|root:/, "/transcripts/$p: $st $raw");
        main::ok_that($st != 404 || $j->{error_description} =~ /^(No transcript for that callId|no such route)$/,
                      "/transcripts/$p: $raw");
    }
    my ($st, $j) = main::http('GET', '/api.ashx/v1/transcripts/' . ('x' x 129), $ENV{TEST_NGINX_JWT_ADMIN});
    main::ok_that($st == 400, "a 129-byte callId: $st");
    main::api('GET', '/transcripts/secret', undef, 200);
    main::ok_that(main::api('GET', '/transcripts/oac-nope', undef, 404)->{error_description}
                  eq 'No transcript for callId=oac-nope', 'the 404 text');

    # no bearer, a bad one: 401 on every transcript route; the share page needs none
    for my $r (['GET', '/transcripts'], ['GET', '/transcripts/secret'],
               ['POST', '/transcripts/secret/shares'],
               ['DELETE', '/transcripts/secret/shares/0123456789abcdef0123456789abcdef']) {
        for my $bearer (undef, 'nope') {
            my ($st) = main::http($r->[0], "/api.ashx/v1$r->[1]", $bearer);
            main::ok_that($st == 401, "$r->[0] $r->[1] without a good bearer: $st");
        }
    }
    ($st) = main::http('GET', '/transcript-share.ashx?token=0123456789abcdef0123456789abcdef');
    main::ok_that($st == 404, "the share page without a bearer: $st");
    1
}

# shares: created, viewed (public view), revoked, expired; the events
sub main::check_shares {
    main::hook('/share', ['share.created', 'share.viewed', 'share.revoked']);
    my $t = main::tr('vnum-share-1', 'outbound-ai', '2026-01-01T12:00:00.000Z', phone => '+15551234567',
                     email => 'ops@example.com', requestedBy => 'alex', trunkId => 'tr_0123456789abcdef',
                     apiKey => 'ak_secret', answeredUtc => '2026-01-01T12:00:05.500Z', displayName => 'Reminder');
    main::put('shares', 'share-1.json', $t);
    main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'the transcript');

    my $s = main::api('POST', '/transcripts/vnum-share-1/shares', '{}', 201);
    my $tok = $s->{token};
    main::ok_that($tok =~ /^[0-9a-f]{32}$/ && $s->{ttlHours} == 168
                  && $s->{url} eq "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/transcript-share.ashx?token=$tok"
                  && $s->{expiresUtc} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'created: ' . encode_json($s));
    my ($st, $j, $raw, $h) = main::http('POST', '/api.ashx/v1/transcripts/vnum-share-1/shares',
                                        $ENV{TEST_NGINX_JWT_ADMIN});
    main::ok_that($st == 201 && $j->{ttlHours} == 168, "no body at all: $st");
    my $nobody = $j;
    my $forever = main::api('POST', '/transcripts/vnum-share-1/shares', '{"ttlHours":0}', 201);
    main::ok_that($forever->{ttlHours} == 0 && !defined $forever->{expiresUtc}, 'never expires');
    main::ok_that(main::api('POST', '/transcripts/vnum-share-1/shares', '{"TtlHours":8760}', 201)->{ttlHours} == 8760,
                  'a year');
    for my $bad ('{"ttlHours":-1}', '{"ttlHours":8761}', '{"ttlHours":1.5}', '{"ttlHours":"5"}',
                 '{"ttlHours":null}', '{"ttlHours":99999999999999999999}') {
        ($st, $j) = main::http('POST', '/api.ashx/v1/transcripts/vnum-share-1/shares', $ENV{TEST_NGINX_JWT_ADMIN}, $bad);
        main::ok_that($st == 400 && $j->{error_description} =~ /^ttlHours\b/, "$bad: $st");
    }
    main::api('POST', '/transcripts/vnum-share-1/shares', '[1]', 400);
    main::ok_that(main::api('POST', '/transcripts/nope/shares', '{}', 404)->{error_description}
                  eq 'No transcript for callId=nope', 'no share of a missing transcript');

    # Redis has the token's SHA-256 only
    my $keys = redis_cmd('KEYS', '*');
    main::ok_that(grep($_ eq "codeb:{localhost}:share:" . sha256_hex($tok), @$keys) == 1, 'P share:<hash>');
    for my $k (@$keys) {
        my $type = redis_cmd('TYPE', $k);
        my $v = $type eq 'string' ? redis_cmd('GET', $k) : $type eq 'hash' ? join(' ', @{redis_cmd('HGETALL', $k)}) : '';
        main::ok_that(index("$k $v", $tok) < 0, "the token is not in $k");
    }

    # the public view: no bearer, an allowlist
    ($st, $j, $raw, $h) = main::http('GET', "/transcript-share.ashx?token=$tok");
    main::ok_that($st == 200 && ($h->{'content-type'} // '') =~ m{^application/json}
                  && ($h->{'cache-control'} // '') eq 'no-store', "viewed: $st");
    main::ok_that(join(',', sort keys %$j) eq
                  'answeredUtc,callId,callerSource,displayName,durationSec,endedUtc,language,outcome,startedUtc,turns',
                  'the public fields: ' . join(',', sort keys %$j));
    main::ok_that($j->{callId} eq 'vnum-share-1' && @{$j->{turns}} == 2
                  && join(',', sort keys %{$j->{turns}[1]}) eq 'speaker,text,ts'
                  && $j->{turns}[1]{text} eq "Hello \x{e9}\"\\", 'the turns: ' . encode_json($j->{turns}));
    main::ok_that($raw !~ /5551234567|example\.com|alex|tr_0123|ak_secret|tenant/, "nothing private: $raw");
    # a display name that is the caller's number is not shown either
    main::put('shares', 'share-2.json',
              main::tr('vnum-share-2', 'outbound-ai', '2026-01-02T12:00:00.000Z', phone => '+15557654321',
                       displayName => '+1 (555) 765-4321'));
    main::until_listed('', sub { $_[0]{total} == 2 }, 2, 'the second transcript');
    my $tok2 = main::api('POST', '/transcripts/vnum-share-2/shares', '{}', 201)->{token};
    ($st, $j, $raw) = main::http('GET', "/transcript-share.ashx?token=$tok2");
    main::ok_that($st == 200 && !exists $j->{displayName} && $raw !~ /765/, "a number as displayName: $raw");
    unlink "$ENV{TEST_NGINX_TR}/shares/share-2.json";
    main::until_listed('', sub { $_[0]{total} == 1 }, 2, 'the second transcript removed');
    ($st, $j, $raw) = main::http('HEAD', "/transcript-share.ashx?token=$tok");
    main::ok_that($st == 200 && ($raw // '') eq '', "HEAD: $st");
    for my $m ('POST', 'PUT', 'DELETE') {
        ($st, undef, undef, $h) = main::http($m, "/transcript-share.ashx?token=$tok", undef, '{}');
        main::ok_that($st == 405 && $h->{allow} eq 'GET, HEAD', "$m: $st");
    }
    ($st, $j) = main::http('GET', '/transcript-share.ashx');
    main::ok_that($st == 400 && $j->{error} eq 'invalid_request', "no token: $st");
    for my $bad ('x', uc($tok), "$tok" . '0', '0123456789abcdef0123456789abcdef', '..%2F..%2Fetc') {
        ($st, $j) = main::http('GET', "/transcript-share.ashx?token=$bad");
        main::ok_that($st == 404 && $j->{error} eq 'not_found', "token $bad: $st");
    }

    # revoked: by its callId only; then 404
    main::api('DELETE', "/transcripts/other/shares/$tok", undef, 404);
    main::api('DELETE', '/transcripts/vnum-share-1/shares/0123456789abcdef0123456789abcdef', undef, 404);
    main::api('DELETE', '/transcripts/vnum-share-1/shares/nothex', undef, 404);
    main::ok_that(main::api('DELETE', "/transcripts/vnum-share-1/shares/$tok", undef, 200)->{ok}, 'revoked');
    main::api('DELETE', "/transcripts/vnum-share-1/shares/$tok", undef, 404);
    ($st) = main::http('GET', "/transcript-share.ashx?token=$tok");
    main::ok_that($st == 404, "revoked: $st");

    # expired: its record says so before Redis drops it
    my $e = main::api('POST', '/transcripts/vnum-share-1/shares', '{"ttlHours":1}', 201);
    ($st) = main::http('GET', "/transcript-share.ashx?token=$e->{token}");
    main::ok_that($st == 200, "a fresh share: $st");
    my $k = "codeb:{localhost}:share:" . sha256_hex($e->{token});
    my $rec = decode_json(redis_cmd('GET', $k));
    $rec->{expires} = int(time * 1000) - 1000;
    redis_cmd('SET', $k, encode_json($rec));
    ($st) = main::http('GET', "/transcript-share.ashx?token=$e->{token}");
    main::ok_that($st == 404 && !redis_cmd('EXISTS', $k), "expired: $st");
    main::ok_that(redis_cmd('PTTL', "codeb:{localhost}:share:" . sha256_hex($nobody->{token})) > 167 * 3600 * 1000,
                  'the key expires with the share');

    # the transcript gone: its shares show nothing
    unlink "$ENV{TEST_NGINX_TR}/shares/share-1.json";
    main::until_listed('', sub { $_[0]{total} == 0 }, 2, 'the transcript removed');
    ($st) = main::http('GET', "/transcript-share.ashx?token=$forever->{token}");
    main::ok_that($st == 404, "a share of a removed transcript: $st");

    # the events: the token's last 8 characters only
    my $got = main::events('/share', 11);
    my %ev;
    push @{$ev{$_->{event}}}, $_->{data} for @$got;
    my $c = (grep { $_->{token} eq '...' . substr($tok, -8) } @{$ev{'share.created'}})[0];
    main::ok_that($c && $c->{file} eq 'share-1.json' && $c->{ttlHours} == 168 && $c->{createdBy} eq 'root'
                  && $c->{expiresUtc} eq $s->{expiresUtc}, 'share.created: ' . encode_json($ev{'share.created'}));
    my $v = (grep { $_->{token} eq '...' . substr($tok, -8) } @{$ev{'share.viewed'}})[0];
    main::ok_that($v && $v->{token} eq '...' . substr($tok, -8) && $v->{file} eq 'share-1.json'
                  && $v->{viewerIp} eq '127.0.0.1', 'share.viewed: ' . encode_json($v));
    my $r = $ev{'share.revoked'}[0];
    main::ok_that($r && $r->{token} eq '...' . substr($tok, -8) && $r->{file} eq 'share-1.json'
                  && $r->{revokedBy} eq 'root', 'share.revoked: ' . encode_json($r));
    main::ok_that(@{$ev{'share.viewed'}} == 4 && @{$ev{'share.created'}} == 6 && @{$ev{'share.revoked'}} == 1,
                  'views (HEAD too), creations, revocations counted');
    open my $f, '<', $ENV{TEST_NGINX_RECV_LOG} or die;
    local $/;
    my $all = <$f>;
    main::ok_that(index($all, $tok) < 0 && index($all, $e->{token}) < 0, 'no whole token in any event');
    1
}

sub main::conf {
    my ($sub) = @_;
    return <<"EOF";
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
codeb_webhook_private on;
codeb_transcripts_dir $ENV{TEST_NGINX_TR}/$sub;
location /api.ashx { codeb_api; }
location = /transcript-share.ashx { codeb_transcript_share; }
EOF
}

run_tests();
done_testing();

__DATA__

=== TEST 1: written while nginx runs: listed within 2 s, in place or renamed; the full transcript; updated; deleted; transcript.saved
--- config eval
main::conf('live')
--- timeout: 60
--- ws
shell (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval C main::check_live()



=== TEST 2: present when a worker starts: the scan finds them; newest first, pages, filters and their 400s
--- config eval
main::conf('start')
--- timeout: 60
--- ws
reload
set_eval S main::check_start()



=== TEST 3: malformed, oversized, too deep, linked and oddly named files skipped, nginx runs on; a file turned bad leaves the index
--- config eval
main::conf('bad')
--- timeout: 30
--- ws
set_eval B main::check_bad()
--- error_log
"notjson.json" skipped: it is not a JSON object
"array.json" skipped: it is not a JSON object
"nocallid.json" skipped: it has no string callId
"pathid.json" skipped: it has no string callId
"deep.json" skipped: it is not a JSON object
"badutf8.json" skipped: it is not a JSON object
"big.json" skipped: it is larger than 1 MiB
--- no_error_log
5551234567
hidden.json
a space.json



=== TEST 4: callIds that would be paths; the 404 texts; a bearer on the API routes, none on the share page
--- config eval
main::conf('paths')
--- timeout: 30
--- ws
set_eval P main::check_paths()



=== TEST 5: shares: created, viewed without a bearer (public fields only), revoked, expired; ttlHours checked; the token hashed; the events
--- config eval
main::conf('shares')
--- timeout: 90
--- ws
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid) 2>/dev/null; rm -f $TEST_NGINX_RECV_PORTFILE; true
shell (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval S main::check_shares()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)
