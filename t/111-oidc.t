# The platform's own OIDC provider (docs/api.md "Token endpoint"):
# discovery and JWKS, the password grant (a yescrypt hash checked in the
# thread pool), ES256 tokens that Node's crypto verifies against the JWKS
# and that the API accepts, the refresh grant with rotation, RFC 6749
# errors, failed sign-ins limited per user and per address, no password
# in the log.
use lib 't/lib';
use Test::CodeB;
use HTTP::Tiny;
use JSON::PP;
use MIME::Base64 qw(decode_base64url);
use File::Temp qw(tempdir);

my $dir = tempdir(CLEANUP => 1);
system('openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256',
       '-out', "$dir/oidc.key") == 0 or die "openssl genpkey failed\n";
$ENV{TEST_NGINX_OIDC_KEY} = "$dir/oidc.key";

# admin-demo-pass (yescrypt, made with crypt_gensalt("$y$") + crypt)
my $hash = '$y$j9T$mT/upmCB7QbvEoVJWpdoh.$GzOQxo8uL7sNypy4HB0jdQZCDQUSXMds8Mji3524N05';

# A request; dies unless the status is $want, with Cache-Control: no-store
# and a JSON body (RFC 6749 errors: error and error_description)
sub main::http {
    my ($method, $path, $form, $want, %h) = @_;
    $h{'Content-Type'} = 'application/x-www-form-urlencoded' if defined $form;
    my $res = HTTP::Tiny->new(timeout => 15)->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_PORT}$path",
        { headers => \%h, defined $form ? (content => $form) : () });
    die "$method $path: $res->{status} (want $want): $res->{content}\n"
        unless $res->{status} == $want;
    die "$method $path: Cache-Control is not no-store\n"
        unless ($res->{headers}{'cache-control'} // '') eq 'no-store';
    my $j = eval { decode_json($res->{content}) };
    die "$method $path: not JSON: $res->{content}\n" unless ref $j eq 'HASH';
    die "$method $path: error without error/error_description\n"
        if $want >= 400 && !(defined $j->{error} && defined $j->{error_description});
    $j->{_headers} = $res->{headers};
    return $j;
}

sub main::token {
    my ($form, $want) = @_;
    my $j = main::http('POST', '/oidc.ashx/token', $form, $want);
    die "no Pragma: no-cache\n" unless ($j->{_headers}{pragma} // '') eq 'no-cache';
    return $j;
}

sub main::ok_that {
    my ($cond, $what) = @_;
    die "$what\n" unless $cond;
    return 1;
}

sub main::claims {
    my ($jwt) = @_;
    my ($h, $p) = split /\./, $jwt;
    return (decode_json(decode_base64url($h)), decode_json(decode_base64url($p)));
}

# the token's ES256 signature checked by Node's crypto with the JWKS key
sub main::node_verifies {
    my ($jwt) = @_;
    my $jwks = main::http('GET', '/oidc.ashx/jwks', undef, 200);
    delete $jwks->{_headers};
    local $ENV{JWT} = $jwt;
    local $ENV{JWKS} = encode_json($jwks);
    my $js = q{const c = require('crypto'); const [h, p, s] = process.env.JWT.split('.');
        const k = c.createPublicKey({ key: JSON.parse(process.env.JWKS).keys[0], format: 'jwk' });
        const ok = c.verify('sha256', Buffer.from(h + '.' + p), { key: k, dsaEncoding: 'ieee-p1363' },
                            Buffer.from(s, 'base64url'));
        process.exit(ok ? 0 : 1);};
    return system('node', '-e', $js) == 0;
}

# discovery, JWKS, a password grant and what its tokens say
sub main::check_grant {
    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/oidc.ashx";
    my $d = main::http('GET', '/oidc.ashx/.well-known/openid-configuration', undef, 200);
    main::ok_that($d->{issuer} eq $base && $d->{token_endpoint} eq "$base/token"
                  && $d->{jwks_uri} eq "$base/jwks"
                  && join(',', @{$d->{grant_types_supported}}) eq 'password,refresh_token', 'discovery');
    my $k = main::http('GET', '/oidc.ashx/jwks', undef, 200)->{keys}[0];
    main::ok_that($k->{kty} eq 'EC' && $k->{crv} eq 'P-256' && $k->{alg} eq 'ES256' && length($k->{kid}) == 43
                  && !exists $k->{d}, 'jwks: ' . encode_json($k));
    my $t = main::token('grant_type=password&client_id=codeb-admin&username=admin'
                        . '&password=admin-demo-pass&scope=openid', 200);
    main::ok_that($t->{token_type} eq 'Bearer' && $t->{expires_in} == 3600 && $t->{scope} eq 'openid'
                  && $t->{id_token} && !exists $t->{refresh_token}, 'response: ' . join(',', sort keys %$t));
    my ($h, $c) = main::claims($t->{access_token});
    main::ok_that($h->{alg} eq 'ES256' && $h->{kid} eq $k->{kid}, 'header');
    main::ok_that($c->{iss} eq $base && $c->{sub} eq 'admin' && $c->{aud} eq 'codeb-admin'
                  && $c->{role} eq 'admin' && $c->{exp} - $c->{iat} == 3600, 'claims: ' . encode_json($c));
    main::ok_that(main::node_verifies($t->{access_token}), 'Node verifies the access token');
    main::ok_that(main::node_verifies($t->{id_token}), 'Node verifies the ID token');
    my ($ih, $ic) = main::claims($t->{id_token});
    main::ok_that($ic->{sub} eq 'admin' && !exists $ic->{role}, 'ID token claims');
    return $t->{access_token};
}

# the API takes the token; a tampered one is 401
sub main::check_api {
    my ($at) = @_;
    my $res = HTTP::Tiny->new->request('POST', "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/api.ashx/v1/api-keys",
        { headers => { Authorization => "Bearer $at", 'Content-Type' => 'application/json' },
          content => '{"name":"from the IdP"}' });
    main::ok_that($res->{status} == 201, "api key with the IdP's token: $res->{status} $res->{content}");
    my ($h, $p, $s) = split /\./, $at;
    my $c = decode_json(decode_base64url($p));
    $c->{sub} = 'mallory';
    my $forged = join '.', $h, MIME::Base64::encode_base64url(encode_json($c)), $s;
    $res = HTTP::Tiny->new->request('GET', "http://127.0.0.1:$ENV{TEST_NGINX_PORT}/api.ashx/v1/api-keys",
        { headers => { Authorization => "Bearer $forged" } });
    main::ok_that($res->{status} == 401, "tampered token: $res->{status}");
    return 1;
}

# offline_access: a refresh token, rotated on use
sub main::check_refresh {
    my $t = main::token('grant_type=password&client_id=codeb-admin&username=admin'
                        . '&password=admin-demo-pass&scope=openid+offline_access', 200);
    main::ok_that($t->{refresh_token} =~ /^[0-9a-f]{64}$/ && $t->{scope} eq 'openid offline_access', 'refresh token');
    my $r = main::token("grant_type=refresh_token&client_id=codeb-admin&refresh_token=$t->{refresh_token}", 200);
    main::ok_that($r->{access_token} && $r->{refresh_token} && $r->{refresh_token} ne $t->{refresh_token}, 'rotated');
    main::token("grant_type=refresh_token&client_id=codeb-admin&refresh_token=$t->{refresh_token}", 400);
    main::token("grant_type=refresh_token&client_id=codeb-admin&refresh_token=$r->{refresh_token}", 200);
    return 1;
}

# RFC 6749 §5.2 errors
sub main::check_errors {
    my $e = main::token('grant_type=password&client_id=codeb-admin&username=admin&password=wrong', 400);
    main::ok_that($e->{error} eq 'invalid_grant', 'wrong password');
    $e = main::token('grant_type=password&client_id=codeb-admin&username=nobody&password=x', 400);
    main::ok_that($e->{error} eq 'invalid_grant', 'unknown user');
    $e = main::token('grant_type=password&client_id=other&username=admin&password=admin-demo-pass', 401);
    main::ok_that($e->{error} eq 'invalid_client', 'client');
    $e = main::token('grant_type=client_credentials&client_id=codeb-admin', 400);
    main::ok_that($e->{error} eq 'unsupported_grant_type', 'grant type');
    $e = main::token('grant_type=password&client_id=codeb-admin&username=admin', 400);
    main::ok_that($e->{error} eq 'invalid_request', 'no password');
    $e = main::token('grant_type=password&grant_type=password&client_id=codeb-admin', 400);
    main::ok_that($e->{error} eq 'invalid_request', 'a parameter twice');
    main::token('garbage', 400);
    main::http('GET', '/oidc.ashx/token', undef, 405);
    main::http('GET', '/oidc.ashx/nothing', undef, 404);
    main::token("grant_type=refresh_token&client_id=codeb-admin&refresh_token=" . ('0' x 64), 400);
    return 1;
}

# five failures lock the user and the address out (429), a success after
# the window clears the user's count
sub main::check_limits {
    main::token('grant_type=password&client_id=codeb-admin&username=admin&password=wrong', 400) for 1 .. 5;
    my $e = main::token('grant_type=password&client_id=codeb-admin&username=admin&password=admin-demo-pass', 429);
    main::ok_that($e->{_headers}{'retry-after'} eq '900', 'Retry-After');
    main::token('grant_type=password&client_id=codeb-admin&username=other&password=x', 429);
    return 1;
}

$ENV{TEST_NGINX_OIDC_CONF} = <<"EOF";
codeb_tenant localhost;
codeb_oidc_signing_key $dir/oidc.key;
codeb_admin_user admin '$hash';
location /oidc.ashx { codeb_oidc; }
location /api.ashx { codeb_api; }
EOF

run_tests();
done_testing();

__DATA__

=== TEST 1: discovery, JWKS, a password grant; the tokens verify and the API takes them
--- config eval
$ENV{TEST_NGINX_OIDC_CONF}
--- ws
set_eval AT main::check_grant()
set_eval API main::check_api('${AT}')
--- no_error_log
admin-demo-pass



=== TEST 2: refresh tokens, rotated
--- config eval
$ENV{TEST_NGINX_OIDC_CONF}
--- ws
set_eval R main::check_refresh()
redis ^0$ EXISTS codeb:{localhost}:loginfail:u:admin
--- no_error_log
admin-demo-pass



=== TEST 3: RFC 6749 errors
--- config eval
$ENV{TEST_NGINX_OIDC_CONF}
--- ws
set_eval E main::check_errors()
--- no_error_log
admin-demo-pass



=== TEST 4: failed sign-ins limited per user and per address
--- config eval
$ENV{TEST_NGINX_OIDC_CONF}
--- ws
set_eval L main::check_limits()
redis ^5$ GET codeb:{localhost}:loginfail:u:admin
redis ^5$ GET codeb:{localhost}:loginfail:a:127.0.0.1
