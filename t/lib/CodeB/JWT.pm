package CodeB::JWT;

# Test tokens for the OIDC paths: compact JWS (RFC 7515) signed with HS256
# (Digest::SHA) or RS256 (the openssl command line), and an RSA key pair
# made for the test run.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use File::Temp qw(tempdir);
use JSON::PP ();
use MIME::Base64 qw(encode_base64url);

use Exporter 'import';
our @EXPORT_OK = qw(jwt_hs256 jwt_rs256 jwt_none rsa_keypair);

my $json = JSON::PP->new->canonical;

sub _b64 { encode_base64url($_[0]) }

sub _input {
    my ($alg, $claims) = @_;
    return _b64($json->encode({ alg => $alg, typ => 'JWT' })) . '.'
        . _b64($json->encode($claims));
}

# jwt_hs256($secret, \%claims): HS256 token
sub jwt_hs256 {
    my ($secret, $claims) = @_;
    my $in = _input('HS256', $claims);
    return "$in." . _b64(hmac_sha256($in, $secret));
}

# jwt_none(\%claims): an unsigned token (alg "none"), to be refused
sub jwt_none {
    my ($claims) = @_;
    return _input('none', $claims) . '.';
}

# rsa_keypair(): (private PEM path, public PEM path) in a temp dir
sub rsa_keypair {
    my $dir = tempdir(CLEANUP => 1);
    system("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
           . "-out $dir/key.pem 2>/dev/null") == 0 or die "openssl genpkey\n";
    system("openssl pkey -in $dir/key.pem -pubout -out $dir/pub.pem "
           . "2>/dev/null") == 0 or die "openssl pkey\n";
    return ("$dir/key.pem", "$dir/pub.pem");
}

# jwt_rs256($key_pem, \%claims, [$alg_in_header]): RS256 token
sub jwt_rs256 {
    my ($key, $claims, $alg) = @_;
    my $in = _input($alg // 'RS256', $claims);
    my $dir = tempdir(CLEANUP => 1);
    open my $fh, '>', "$dir/in" or die;
    print $fh $in;
    close $fh;
    my $sig = `openssl dgst -sha256 -sign $key $dir/in`;
    die "openssl dgst\n" if $? != 0;
    return "$in." . _b64($sig);
}

1;
