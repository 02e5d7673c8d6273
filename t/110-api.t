# The platform REST API (docs/api.md): GET /api.ashx/v1 and the OpenAPI
# document list exactly the routes that exist (each one probed on the live
# server), the bearer (missing, forged, expired, alg none, wrong role, an
# ak_ key, a revoked one), API keys (created once with an admin OIDC
# token, listed without secrets, kept as SHA-256 only, revoked), the
# conventions (Cache-Control: no-store and JSON error bodies on every
# answer, 404 / 405 with Allow, either-case bodies, malformed and huge
# bodies, pagination edges, ids that try path traversal) and Redis going
# away.
use lib 't/lib';
use Test::CodeB;
use CodeB::JWT qw(jwt_hs256 jwt_none);
use HTTP::Tiny;
use JSON::PP;

my $claims = { sub => 'root', preferred_username => 'root', role => 'admin' };
$ENV{TEST_NGINX_JWT_ADMIN} = jwt_hs256('hs', { %$claims, exp => time + 600 });
$ENV{TEST_NGINX_JWT_USER} = jwt_hs256('hs', { %$claims, role => 'user', exp => time + 600 });
$ENV{TEST_NGINX_JWT_EXPIRED} = jwt_hs256('hs', { %$claims, exp => time - 60 });
$ENV{TEST_NGINX_JWT_FORGED} = jwt_hs256('not-the-secret', { %$claims, exp => time + 600 });
$ENV{TEST_NGINX_JWT_NONE} = jwt_none({ %$claims, exp => time + 600 });

# One request to the API: dies unless the status is $want, the answer has
# Cache-Control: no-store and its body (if any) is JSON, with error and
# error_description for a status >= 400.  Returns the decoded body (a hash
# with _headers added) for set_eval.
sub main::api {
    my ($method, $path, $token, $body, $want, %h) = @_;
    $h{Authorization} = "Bearer $token" if defined $token && length $token;
    $h{'Content-Type'} //= 'application/json' if defined $body;
    my $res = HTTP::Tiny->new(timeout => 10)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_PORT}$path",
        { headers => \%h, defined $body ? (content => $body) : () });
    die "$method $path: $res->{status} (want $want): $res->{content}\n"
        unless $res->{status} == $want;
    die "$method $path: Cache-Control is not no-store\n"
        unless ($res->{headers}{'cache-control'} // '') eq 'no-store';
    my $j = length $res->{content} ? eval { decode_json($res->{content}) } : {};
    die "$method $path: not JSON: $res->{content}\n" unless ref $j eq 'HASH';
    die "$method $path: error body without error/error_description\n"
        if $want >= 400 && !(defined $j->{error} && defined $j->{error_description});
    $j->{_headers} = $res->{headers};
    return $j;
}

# dies with $what unless $cond
sub main::ok_that {
    my ($cond, $what) = @_;
    die "$what\n" unless $cond;
    return 1;
}

# GET /api.ashx/v1 and the OpenAPI document name the same (method, path)
# pairs, and each one answers on the live server: 200 when public, 401
# without a bearer otherwise (never 404 or 405)
sub main::check_routes {
    my $d = main::api('GET', '/api.ashx/v1', '', undef, 200);
    my $o = main::api('GET', '/api.ashx/v1/openapi.json', '', undef, 200);
    my %doc = map { (lc($_->{method}) . ' ' . $_->{path}) => 1 } @{$d->{endpoints}};
    my %oas;
    for my $p (keys %{$o->{paths}}) { $oas{"$_ $p"} = 1 for keys %{$o->{paths}{$p}} }
    main::ok_that(join(',', sort keys %doc) eq join(',', sort keys %oas),
                  'describe and OpenAPI differ: ' . join(',', sort keys %doc) . ' / ' . join(',', sort keys %oas));
    for my $e (@{$d->{endpoints}}) {
        (my $path = $e->{path}) =~ s/\{[^}]+\}/0123456789abcdef/;
        my $want = $e->{auth} ? 401 : 200;
        main::api($e->{method}, $path, '', $e->{method} eq 'POST' ? '{}' : undef, $want);
    }
    1
}

# the list after one key was minted: its fields, no secret, the envelope
sub main::check_listed {
    my ($k) = @_;
    main::api('GET', '/api.ashx/v1/api-keys', $k, undef, 200);
    my $l = main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 200);
    my $e = $l->{data}[-1];
    main::ok_that($e->{name} eq 'ci "key"' && $e->{createdAtUtc} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'listed');
    main::ok_that(!exists $e->{key} && !exists $e->{hash} && encode_json($l) !~ /ak_/, 'no secret listed');
    main::ok_that($l->{total} == 1 && !defined $l->{next} && $l->{limit} == 50 && $l->{offset} == 0, 'envelope');
    1
}

# the numbers of nginx.conf, then those of Redis, without their secrets
sub main::check_numbers {
    my $l = main::api('GET', '/api.ashx/v1/numbers', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 200);
    main::ok_that($l->{tenant} eq 'localhost' && $l->{total} == 2 && !defined $l->{next}, 'envelope: ' . encode_json($l));
    my ($c, $r) = @{$l->{data}};
    main::ok_that($c->{number} eq '1234' && $c->{name} eq 'CodeBDemo' && $c->{mode} eq 'gemini-live'
                  && $c->{visibility} eq 'anonymous' && $c->{source} eq 'conf', 'conf row: ' . encode_json($c));
    main::ok_that($r->{number} eq '555' && $r->{name} eq 'R' && $r->{user} eq 'bob' && $r->{source} eq 'redis',
                  'redis row: ' . encode_json($r));
    $l = main::api('GET', '/api.ashx/v1/numbers?limit=1&offset=1', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 200);
    main::ok_that(@{$l->{data}} == 1 && $l->{data}[0]{number} eq '555', 'second page');
    1
}

# the routes of nginx.conf, seeded into Redis, in their order; one by did
# (and fromNumber); created before the catch-all, changed, deleted
sub main::check_inbound {
    my $a = $ENV{TEST_NGINX_JWT_ADMIN};
    my $c = JSON::PP->new->canonical;
    my $list = sub {
        my $l = main::api('GET', '/api.ashx/v1/inbound-routes', $a, undef, 200);
        return $c->encode($l->{data});
    };
    main::ok_that($list->() eq $c->encode([{ did => '+15551234567', user => 'alex' },
                  { did => '*', fromNumber => 'anonymous', user => 'callcentre' }, { did => '*', user => 'codeb' }]),
                  'seeded: ' . $list->());
    my $r = main::api('GET', '/api.ashx/v1/inbound-routes/%2A', $a, undef, 200);
    main::ok_that($r->{did} eq '*' && $r->{fromNumber} eq 'anonymous', 'first row of did *');
    $r = main::api('GET', '/api.ashx/v1/inbound-routes/%2A?fromNumber=%2A', $a, undef, 200);
    main::ok_that($r->{user} eq 'codeb' && !exists $r->{fromNumber}, 'catch-all by fromNumber=*: ' . encode_json($r));
    $r = main::api('GET', '/api.ashx/v1/inbound-routes/%2B4400000000', $a, undef, 404);
    main::ok_that($r->{error_description} eq "No inbound route with did='+4400000000'", 'names the did');
    main::api('GET', '/api.ashx/v1/inbound-routes/x%22%7D', $a, undef, 404);

    $r = main::api('POST', '/api.ashx/v1/inbound-routes', $a, '{"Did":"+15550001","User":"bob"}', 201);
    main::ok_that($r->{did} eq '+15550001' && $r->{user} eq 'bob', 'created: ' . encode_json($r));
    main::api('POST', '/api.ashx/v1/inbound-routes', $a, '{"did":"+15550001","fromNumber":"+3561","user":"eve"}', 201);
    $r = main::api('POST', '/api.ashx/v1/inbound-routes', $a, '{"did":"+15550001","user":"x"}', 409);
    main::ok_that($r->{error} eq 'duplicate_route'
                  && $r->{error_description} eq "An inbound route already exists for Did='+15550001'", 'duplicate');
    main::api('POST', '/api.ashx/v1/inbound-routes', $a, '{"user":"x"}', 400);
    main::api('POST', '/api.ashx/v1/inbound-routes', $a, '{"did":"1","user":"a\u0001"}', 400);
    main::ok_that($list->() =~ /"user":"callcentre"\},\{"did":"\+15550001","user":"bob"\},\{"did":"\+15550001","fromNumber":"\+3561","user":"eve"\},\{"did":"\*","user":"codeb"\}\]$/,
                  'before the catch-all: ' . $list->());

    $r = main::api('PUT', '/api.ashx/v1/inbound-routes/%2A', $a, '{"User":"frontdesk"}', 200);
    main::ok_that($r->{did} eq '*' && $r->{user} eq 'frontdesk' && !exists $r->{fromNumber}, 'catch-all changed');
    $r = main::api('PUT', '/api.ashx/v1/inbound-routes/%2A?fromNumber=anonymous', $a, '{"user":"cc2"}', 200);
    main::ok_that($r->{fromNumber} eq 'anonymous' && $r->{user} eq 'cc2', 'scoped row changed');
    $r = main::api('PUT', '/api.ashx/v1/inbound-routes/anonymous?fromNumber=%2A', $a, '{"user":"x"}', 404);
    main::ok_that($r->{error_description} eq "No inbound route with Did='anonymous' FromNumber='*'", 'put 404');

    $r = main::api('DELETE', '/api.ashx/v1/inbound-routes/%2B15550001', $a, undef, 200);
    main::ok_that($r->{deleted}{user} eq 'bob', 'deleted the first +15550001');
    $r = main::api('DELETE', '/api.ashx/v1/inbound-routes/%2A', $a, undef, 200);
    main::ok_that($r->{deleted}{fromNumber} eq 'anonymous', 'the first did * is the scoped row');
    $r = main::api('DELETE', '/api.ashx/v1/inbound-routes/%2A', $a, undef, 400);
    main::ok_that($r->{error} eq 'cannot_delete_catchall', 'catch-all kept');
    main::api('DELETE', '/api.ashx/v1/inbound-routes/nope', $a, undef, 404);
    main::ok_that($list->() eq $c->encode([{ did => '+15551234567', user => 'alex' },
                  { did => '+15550001', fromNumber => '+3561', user => 'eve' }, { did => '*', user => 'frontdesk' }]),
                  'after: ' . $list->());
    1
}

# three keys k1, k2, k3 paged through
sub main::check_pages {
    my $a = $ENV{TEST_NGINX_JWT_ADMIN};
    my $p = main::api('GET', '/api.ashx/v1/api-keys?limit=2', $a, undef, 200);
    main::ok_that(@{$p->{data}} == 2 && $p->{total} == 3 && $p->{next} eq '/api.ashx/v1/api-keys?limit=2&offset=2', 'page 1: ' . encode_json($p));
    main::ok_that($p->{data}[0]{name} eq 'k1' && $p->{data}[1]{name} eq 'k2', 'oldest first');
    $p = main::api('GET', $p->{next}, $a, undef, 200);
    main::ok_that(@{$p->{data}} == 1 && $p->{data}[0]{name} eq 'k3' && !defined $p->{next}, 'page 2');
    $p = main::api('GET', '/api.ashx/v1/api-keys?offset=10', $a, undef, 200);
    main::ok_that(@{$p->{data}} == 0 && $p->{total} == 3, 'past the end');
    main::ok_that(main::api('GET', '/api.ashx/v1/api-keys?limit=9999', $a, undef, 200)->{limit} == 500, 'capped at 500');
    main::api('GET', '/api.ashx/v1/api-keys?limit=0', $a, undef, 400);
    main::api('GET', '/api.ashx/v1/api-keys?limit=x', $a, undef, 400);
    main::api('GET', '/api.ashx/v1/api-keys?offset=-1', $a, undef, 400);
    1
}

$ENV{TEST_NGINX_API_CONF} = <<'EOF';
codeb_tenant localhost;
codeb_oidc_hs256_secret hs;
location /api.ashx { codeb_api; }
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: self-describe and OpenAPI name the same routes, each one live
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- ws
set_eval D main::api('GET', '/api.ashx/v1', '', undef, 200)
set_eval N main::ok_that(scalar(@{main::api('GET', '/api.ashx/v1', '', undef, 200)->{endpoints}}) == 24, 'twenty-four routes')
set_eval B main::ok_that(main::api('GET', '/api.ashx/v1', '', undef, 200)->{build} =~ /\S/, 'build')
set_eval O main::api('GET', '/api.ashx/v1/openapi.json', '', undef, 200)->{openapi}
set_eval OV main::ok_that('${O}' eq '3.1.0', 'openapi 3.1.0')
set_eval SAME main::check_routes()



=== TEST 2: the bearer: missing, invalid, expired, alg none, wrong role
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- ws
set_eval A main::api('GET', '/api.ashx/v1/api-keys', '', undef, 401)->{_headers}{'www-authenticate'}
set_eval AV main::ok_that('${A}' eq 'Bearer', 'WWW-Authenticate: Bearer')
set_eval E1 main::api('GET', '/api.ashx/v1/api-keys', 'garbage', undef, 401)->{error}
set_eval E1V main::ok_that('${E1}' eq 'invalid_token', 'invalid_token')
set_eval E2 main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_FORGED}, undef, 401)
set_eval E3 main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_EXPIRED}, undef, 401)
set_eval E4 main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_NONE}, undef, 401)
set_eval E5 main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_USER}, undef, 403)->{error}
set_eval E5V main::ok_that('${E5}' eq 'forbidden', 'forbidden')
set_eval E6 main::api('GET', '/api.ashx/v1/api-keys', 'ak_0123456789abcdef0123456789abcdef', undef, 401)
set_eval OK main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 200)
--- no_error_log
ak_0123456789abcdef



=== TEST 3: API keys: minted once by an admin token, listed without secrets, usable, not able to mint, revoked
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- ws
set_eval K main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"ci \"key\""}', 201)->{key}
set_eval KV main::ok_that('${K}' =~ /^ak_[0-9a-f]{32}$/, 'ak_ + 32 hex')
set_eval ID main::api('GET', '/api.ashx/v1/api-keys', '${K}', undef, 200)->{data}[-1]{id}
set_eval IDV main::ok_that('${ID}' =~ /^[0-9a-f]{16}$/, 'id 16 hex')
set_eval L main::check_listed('${K}')
redis ^[0-9a-f]{64}$ HKEYS codeb:{localhost}:apikeyhash
set_eval NOKEY main::ok_that(!grep({ /ak_/ } @{redis_cmd('HVALS', 'codeb:{localhost}:apikeys')}), 'the key is not stored')
set_eval M main::api('POST', '/api.ashx/v1/api-keys', '${K}', '{"name":"sibling"}', 403)->{error}
set_eval MV main::ok_that('${M}' eq 'forbidden', 'an ak_ key cannot mint')
set_eval D main::api('DELETE', '/api.ashx/v1/api-keys/${ID}', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 200)->{deleted}{id}
set_eval DV main::ok_that('${D}' eq '${ID}', 'deleted')
set_eval R main::api('GET', '/api.ashx/v1/api-keys', '${K}', undef, 401)
set_eval G main::api('DELETE', '/api.ashx/v1/api-keys/${ID}', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 404)
redis ^$ HKEYS codeb:{localhost}:apikeyhash
--- no_error_log
ak_



=== TEST 4: conventions: either case, malformed and huge bodies, 404, 405, path traversal
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- ws
set_eval C main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"Name":"upper"}', 201)->{name}
set_eval CV main::ok_that('${C}' eq 'upper', 'Name accepted')
set_eval J1 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":', 400)->{error}
set_eval J1V main::ok_that('${J1}' eq 'invalid_json', 'invalid_json')
set_eval J2 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '["name"]', 400)
set_eval J3 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":42}', 400)->{error_description}
set_eval J3V main::ok_that('${J3}' =~ /^name/, 'names the field')
set_eval J4 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"' . ('x' x 101) . '"}', 400)
set_eval J5 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"big","pad":"' . ('x' x 70000) . '"}', 413)
set_eval N1 main::api('GET', '/api.ashx/v1/nothing', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 404)
set_eval N2 main::api('GET', '/api.ashx/v2', '', undef, 404)
set_eval W main::api('PUT', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{}', 405)->{_headers}{allow}
set_eval WV main::ok_that('${W}' eq 'GET, POST', 'Allow: GET, POST')
set_eval T1 main::api('DELETE', '/api.ashx/v1/api-keys/..%2F..%2Fetc%2Fpasswd', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 404)
set_eval T2 main::api('DELETE', '/api.ashx/v1/api-keys/0123456789ABCDEF', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 404)
set_eval T3 main::api('DELETE', '/api.ashx/v1/api-keys/' . ('a' x 200), $ENV{TEST_NGINX_JWT_ADMIN}, undef, 400)
set_eval S main::api('GET', '/api.ashx/v1/', '', undef, 200)



=== TEST 5: pagination: limit, offset, next, bounds
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- ws
set_eval K1 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"k1"}', 201)->{id}
set_eval K2 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"k2"}', 201)->{id}
set_eval K3 main::api('POST', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, '{"name":"k3"}', 201)->{id}
set_eval P main::check_pages()



=== TEST 6: numbers: those of nginx.conf and those of Redis, as /signal.ashx serves them
--- config eval
$ENV{TEST_NGINX_API_CONF} . "codeb_vnum 1234 name=CodeBDemo mode=gemini-live visibility=anonymous;\n"
--- ws
redis ^1$ HSET codeb:{localhost}:vnums 555 {"number":"555","name":"R","mode":"tts","visibility":"signed-in","user":"bob"}
set_eval N main::check_numbers()
set_eval U main::api('GET', '/api.ashx/v1/numbers', $ENV{TEST_NGINX_JWT_USER}, undef, 403)



=== TEST 7: inbound routes: seeded from nginx.conf, read, created before the catch-all, changed, deleted
--- config eval
$ENV{TEST_NGINX_API_CONF} . "codeb_inbound_route did=+15551234567 from=* user=alex;\n"
    . "codeb_inbound_route did=* from=anonymous user=callcentre;\n"
    . "codeb_inbound_route did=* from=* user=codeb;\n"
--- ws
set_eval I main::check_inbound()



=== TEST 8: Redis away: a request waits for it (codeb_redis_timeout), the public routes answer meanwhile
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- http_config
codeb_redis_timeout 3s;
--- timeout: 10
--- ws
redis_stop
sleep 500
tcp T $TEST_NGINX_PORT
tcp_send T GET /api.ashx/v1/api-keys HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer $TEST_NGINX_JWT_ADMIN\r\nConnection: close\r\n\r\n
set_eval D main::api('GET', '/api.ashx/v1', '', undef, 200)
sleep 300
redis_start
tcp_recv T (?s)\AHTTP/1\.1 200 OK\r\n.*Cache-Control: no-store\r\n.*"data":\[\],"total":0



=== TEST 9: Redis still away after codeb_redis_timeout: 503 with a JSON error
--- config eval
$ENV{TEST_NGINX_API_CONF}
--- http_config
codeb_redis_timeout 1s;
--- timeout: 10
--- ws
redis_stop
sleep 500
set_eval U main::api('GET', '/api.ashx/v1/api-keys', $ENV{TEST_NGINX_JWT_ADMIN}, undef, 503)->{error}
set_eval UV main::ok_that('${U}' eq 'unavailable', 'unavailable')
redis_start
