# Webhooks (docs/api.md "Webhooks") against a real HTTP receiver on
# loopback (t/tools/webhook-receiver.py): subscriptions (the secret shown
# once, validation of url and events, private receivers refused where not
# allowed), a webhook.test delivery with the documented headers and a
# signature the receiver can check, retries with one delivery id, 410 and
# 20 failures in a row pausing the subscription, Retry-After honoured,
# the delivery log.
use lib 't/lib';
use Test::CodeB;
use CodeB::JWT qw(jwt_hs256);
use CodeB::Receiver qw(recv_port received);
use HTTP::Tiny;
use JSON::PP;
use Digest::SHA qw(hmac_sha256_hex);
use File::Temp qw(tempdir);
use Time::HiRes qw(sleep time);

$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { exp => int(time) + 600, sub => 'root',
                                               preferred_username => 'root', role => 'admin' });
my $dir = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_RECV_LOG} = "$dir/received.jsonl";
$ENV{TEST_NGINX_RECV_PORTFILE} = "$dir/receiver.port";

sub main::api {
    my ($method, $path, $body, $want) = @_;
    my $res = HTTP::Tiny->new(timeout => 10)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/api.ashx/v1$path",
        { headers => { Authorization => "Bearer $ENV{TEST_NGINX_JWT_ADMIN}",
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

sub main::hook {
    my ($path, $events) = @_;
    my $port = main::recv_port();
    return main::api('POST', '/webhooks', encode_json({ url => "http://127.0.0.1:$port$path",
                                                       events => $events // ['*'] }), 201);
}

# subscriptions: created with the secret once, listed without it, refused
# when malformed, deleted
sub main::check_crud {
    my $h = main::hook('/ok', ['call.ended', 'transcript.saved']);
    main::ok_that($h->{id} =~ /^[0-9a-f]{16}$/ && $h->{secret} =~ /^[0-9a-f]{64}$/ && $h->{active}
                  && $h->{failures} == 0 && !defined $h->{lastFiredUtc} && $h->{createdBy} eq 'root', 'created');
    my $l = main::api('GET', '/webhooks', undef, 200);
    main::ok_that($l->{total} == 1 && join(',', @{$l->{data}[0]{events}}) eq 'call.ended,transcript.saved'
                  && !exists $l->{data}[0]{secret} && encode_json($l) !~ /$h->{secret}/, 'listed without the secret');
    for my $bad ('{"url":"ftp://x/y","events":["*"]}', '{"url":"http://127.0.0.1:1/x","events":["nope"]}',
                 '{"url":"http://127.0.0.1:1/x","events":[]}', '{"url":"http://127.0.0.1:1/x"}',
                 '{"url":"http://user@127.0.0.1:1/x","events":["*"]}', '{"events":["*"]}') {
        main::api('POST', '/webhooks', $bad, 400);
    }
    main::ok_that(main::api('DELETE', "/webhooks/$h->{id}", undef, 200)->{deleted}{id} eq $h->{id}, 'deleted');
    main::api('DELETE', "/webhooks/$h->{id}", undef, 404);
    main::api('POST', "/webhooks/$h->{id}/test", undef, 404);
    main::api('GET', "/webhooks/$h->{id}/deliveries", undef, 404);
    main::api('GET', '/webhooks/..%2Fx/deliveries', undef, 404);
    1
}

# a webhook.test delivery: headers, envelope, signature; the delivery log
sub main::check_test {
    my $h = main::hook('/ok');
    my $q = main::api('POST', "/webhooks/$h->{id}/test", undef, 202);
    main::ok_that($q->{queued} == 1, 'queued');
    my ($r) = @{main::received('/ok', 1)};
    my $hd = $r->{headers};
    main::ok_that($hd->{'x-codeb-event'} eq 'webhook.test' && $hd->{'x-codeb-attempt'} eq '1'
                  && $hd->{'x-codeb-delivery-id'} =~ /^[0-9a-f]{16}$/ && $hd->{'x-codeb-timestamp'} =~ /^\d{10}$/
                  && $hd->{'content-type'} eq 'application/json', 'headers: ' . encode_json($hd));
    main::ok_that($hd->{'x-codeb-signature'} eq 'sha256=' . hmac_sha256_hex($r->{body}, $h->{secret}),
                  'signature of the raw body');
    my $e = decode_json($r->{body});
    main::ok_that($e->{event} eq 'webhook.test' && $e->{tenant} eq 'localhost'
                  && $e->{ts} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ && $e->{data}{webhookId} eq $h->{id},
                  'envelope: ' . $r->{body});
    my $log;
    for (1 .. 50) {
        $log = main::api('GET', "/webhooks/$h->{id}/deliveries", undef, 200);
        last if $log->{total} >= 1;
        sleep 0.1;
    }
    my $d = $log->{data}[0];
    main::ok_that($d->{deliveryId} eq $hd->{'x-codeb-delivery-id'} && $d->{attempt} == 1 && $d->{status} == 200
                  && !defined $d->{error} && $d->{event} eq 'webhook.test', 'log: ' . encode_json($d));
    my $w = main::api('GET', '/webhooks', undef, 200)->{data}[0];
    main::ok_that($w->{lastFiredUtc} && $w->{failures} == 0, 'lastFiredUtc');
    1
}

# 500, 500, 200: attempts 1, 2, 3 with one delivery id
sub main::check_retries {
    my $h = main::hook('/fail2');
    main::api('POST', "/webhooks/$h->{id}/test", undef, 202);
    my $got = main::received('/fail2', 3);
    main::ok_that(join(',', map { $_->{headers}{'x-codeb-attempt'} } @$got) eq '1,2,3', 'attempts');
    my %ids = map { $_->{headers}{'x-codeb-delivery-id'} => 1 } @$got;
    main::ok_that(keys %ids == 1, 'one delivery id');
    my %sigs = map { $_->{headers}{'x-codeb-signature'} => 1 } @$got;
    main::ok_that(keys %sigs == 1, 'the same body and signature');
    sleep 0.5;
    my $log = main::api('GET', "/webhooks/$h->{id}/deliveries", undef, 200);
    main::ok_that(join(',', map { "$_->{attempt}:$_->{status}" } reverse @{$log->{data}}) eq '1:500,2:500,3:200',
                  'log: ' . encode_json($log->{data}));
    sleep 2.5;
    main::ok_that(@{main::received('/fail2', 3)} == 3, 'nothing more after the 200');
    1
}

# 410 pauses at once; 20 failures in a row pause too
sub main::check_pause {
    my $g = main::hook('/gone');
    main::api('POST', "/webhooks/$g->{id}/test", undef, 202);
    main::received('/gone', 1);
    sleep 0.5;
    my ($w) = grep { $_->{id} eq $g->{id} } @{main::api('GET', '/webhooks', undef, 200)->{data}};
    main::ok_that(!$w->{active}, '410 paused it');
    main::api('POST', "/webhooks/$g->{id}/test", undef, 202);
    sleep 2;
    main::ok_that(@{main::received('/gone', 1)} == 1, 'a paused subscription gets nothing');

    my $f = main::hook('/always500');
    main::api('POST', "/webhooks/$f->{id}/test", undef, 202) for 1 .. 5;
    main::received('/always500', 20);
    sleep 0.5;
    ($w) = grep { $_->{id} eq $f->{id} } @{main::api('GET', '/webhooks', undef, 200)->{data}};
    main::ok_that(!$w->{active} && $w->{failures} >= 20, '20 failures paused it: ' . encode_json($w));
    1
}

# 503 with Retry-After: 1 s: the next attempt waits for it
sub main::check_retry_after {
    my $h = main::hook('/retry');
    main::api('POST', "/webhooks/$h->{id}/test", undef, 202);
    my $got = main::received('/retry', 2);
    main::ok_that($got->[1]{headers}{'x-codeb-attempt'} eq '2', 'second attempt');
    1
}

$ENV{TEST_NGINX_HOOK_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
codeb_webhook_private on;
codeb_webhook_retry 1s 1s 1s;
location /api.ashx { codeb_api; }
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: subscriptions: created (the secret once), listed, refused when malformed, deleted
--- config eval
$ENV{TEST_NGINX_HOOK_CONF}
--- timeout: 40
--- ws
shell (python3 t/tools/webhook-receiver.py $TEST_NGINX_RECV_PORTFILE $TEST_NGINX_RECV_LOG > /dev/null 2>&1 &)
set_eval C main::check_crud()



=== TEST 2: private and loopback receivers refused where codeb_webhook_private is off
--- config
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
location /api.ashx { codeb_api; }
--- ws
set_eval P main::api('POST', '/webhooks', '{"url":"http://127.0.0.1:9/x","events":["*"]}', 400)
set_eval L main::api('POST', '/webhooks', '{"url":"http://localhost/x","events":["*"]}', 400)
set_eval O main::api('POST', '/webhooks', '{"url":"https://hooks.example.com/codeb","events":["*"]}', 201)



=== TEST 3: webhook.test: the documented headers, the envelope, a signature of the raw body, the log
--- config eval
$ENV{TEST_NGINX_HOOK_CONF}
--- timeout: 20
--- ws
set_eval T main::check_test()
set_eval R main::check_retries()
set_eval A main::check_retry_after()
set_eval S main::check_pause()
shell kill $(cat $TEST_NGINX_RECV_PORTFILE.pid)
