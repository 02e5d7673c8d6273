# Per-tenant TLS for SIP over WebSocket (docs/sip.md "TLS and
# certificates"): tenants as server{} blocks chosen by SNI with their own
# certificates (plain nginx), and codeb_sip_certificates, a directory of
# <name>.crt / <name>.key pairs read at the handshake without a reload,
# cached per worker and read again only when the files change.  Every
# certificate is checked on the wire, with openssl s_client (main::cn_is)
# and with the harness's IO::Socket::SSL (tls_cert).
use lib 't/lib';
use Test::CodeB;
use File::Temp qw(tempdir);

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';

# the test's own certificates: $tmp/certs is the directory under test,
# $tmp/var the files of a server whose ssl_certificate has variables,
# $tmp itself holds what must never be served (planted outside certs/)
my $tmp = tempdir('sip-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
mkdir "$tmp/$_" or die "$tmp/$_: $!" for qw(certs var conf conf/rel);
$ENV{TEST_NGINX_SIPTLS} = $tmp;

# main::cert(REL, CN): a self-signed certificate (EC P-256) with subject
# CN and DNS subjectAltName CN, as $tmp/REL.crt and $tmp/REL.key; written
# beside and renamed into place, the key first, as an operator would
sub main::cert {
    my ($rel, $cn) = @_;
    my $t = "$tmp/.new$$";
    system("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1"
           . " -nodes -days 30 -subj '/CN=$cn' -addext 'subjectAltName=DNS:$cn'"
           . " -keyout $t.key -out $t.crt >/dev/null 2>&1") == 0
        or die "openssl req for $cn failed\n";
    rename("$t.key", "$tmp/$rel.key") && rename("$t.crt", "$tmp/$rel.crt")
        or die "rename to $tmp/$rel: $!\n";
    return 1;
}

# main::cn(SNI): the subject CN of the certificate the server presents for
# SNI (undef: none sent), through openssl s_client; '' when no handshake
sub main::cn {
    my ($sni) = @_;
    my @sni = defined $sni ? ('-servername', $sni) : ('-noservername');
    my $pid = open(my $fh, '-|') // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDERR, '>', '/dev/null';
        exec 'timeout', '10', 'openssl', 's_client', '-connect',
             "127.0.0.1:$ENV{TEST_NGINX_TLS_PORT}", @sni;
        exit 127;
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return $out =~ /^subject=.*?\bCN\s*=\s*([^,\/\n]+)/m ? $1 : '';
}

# main::cn_is(SNI, CN): true, or dies naming what came
sub main::cn_is {
    my ($sni, $want) = @_;
    my $got = main::cn($sni);
    return 1 if $got eq $want;
    die "SNI " . (defined $sni ? "'$sni'" : '(none)')
        . ": certificate CN '$got', expected '$want'\n";
}

# main::scribble(REL): overwrite $tmp/REL in place with as many bytes of
# garbage, keeping its inode, size and modification time (to the ns)
sub main::scribble {
    my ($rel) = @_;
    my $f = "$tmp/$rel";
    my $before = `stat -c '%d %i %s %.9Y' $f`;
    system('touch', '-r', $f, "$tmp/.stamp") == 0 or die "touch -r\n";
    open my $fh, '+<', $f or die "$f: $!\n";
    print $fh 'x' x -s $f;
    close $fh or die "$f: $!\n";
    system('touch', '-r', "$tmp/.stamp", $f) == 0 or die "touch -r\n";
    my $after = `stat -c '%d %i %s %.9Y' $f`;
    die "stat changed: $before -> $after" unless $before eq $after;
    return 1;
}

# main::mark() remembers where the error log ends; main::count(RE) is the
# number of its lines after the mark that match RE
my $mark = 0;
sub main::mark {
    $mark = -s "$ENV{TEST_NGINX_SERVROOT}/logs/error.log" // 0;
    return 1;
}
sub main::count {
    my ($re) = @_;
    open my $fh, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/error.log" or die $!;
    seek $fh, $mark, 0;
    my $n = grep { /$re/ } <$fh>;
    return $n;
}
sub main::count_is {
    my ($re, $want) = @_;
    my $n = main::count($re);
    return 1 if $n == $want;
    die "$n error log lines match qr/$re/ after the mark, expected $want\n";
}

# nginx -t on a server{} body (its listen included) with the modules
# loaded: (status, output)
sub check {
    my ($server) = @_;
    my ($mods, $stream) = Test::CodeB::module_list($ENV{TEST_NGINX_MODULES});
    open my $f, '>', "$tmp/conf/nginx.conf" or die $!;
    print $f "load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
        if $stream;
    print $f "load_module $_->[1];\n" for @$mods;
    print $f <<"EOF";
error_log $tmp/error.log;
pid $tmp/nginx.pid;
events { }
http {
    access_log off;
    codeb_redis unix:$tmp/redis.sock;
    server {
        $server
    }
}
EOF
    close $f;
    my $out = `$nginx -t -p $tmp/ -c $tmp/conf/nginx.conf -e $tmp/error.log 2>&1`;
    return ($? >> 8, $out);
}

if ($ENV{TEST_NGINX_MODULES}) {
    my $ssl = "listen 127.0.0.1:1999 ssl; ssl_certificate $tmp/x.crt;"
              . " ssl_certificate_key $tmp/x.key;";
    main::cert('x', 'outside.test');
    open my $f, '>', "$tmp/file" or die $!;
    close $f;
    my @refused = (
        ['a missing directory', "$ssl codeb_sip_certificates $tmp/nope;",
         qr/codeb_sip_certificates.*stat\(\) "\Q$tmp\E\/nope" failed/],
        ['a file', "$ssl codeb_sip_certificates $tmp/file;",
         qr/codeb_sip_certificates: "\Q$tmp\E\/file" is not a directory/],
        ['a server{} without ssl_certificate',
         "listen 127.0.0.1:1999; codeb_sip_certificates $tmp/certs;",
         qr/"codeb_sip_certificates" in \S+nginx\.conf:\d+ needs "ssl_certificate" in its server/],
        ['cache=0', "$ssl codeb_sip_certificates $tmp/certs cache=0;",
         qr/invalid "cache=0"/],
        ['cache=x', "$ssl codeb_sip_certificates $tmp/certs cache=x;",
         qr/invalid "cache=x"/],
        ['an unknown parameter', "$ssl codeb_sip_certificates $tmp/certs max=3;",
         qr/invalid parameter "max=3"/],
        ['twice', "$ssl codeb_sip_certificates $tmp/certs; "
                  . "codeb_sip_certificates $tmp/var;",
         qr/"codeb_sip_certificates" directive is duplicate/],
        ['in a location', "$ssl location / { codeb_sip_certificates $tmp/certs; }",
         qr/"codeb_sip_certificates" directive is not allowed here/],
    );
    for my $c (@refused) {
        my ($rc, $out) = check($c->[1]);
        ok($rc != 0, "nginx -t refuses $c->[0]") or diag $out;
        like($out, $c->[2], "nginx -t says why ($c->[0])");
    }
    my ($rc, $out);
    for my $ok (["$ssl codeb_sip_certificates $tmp/certs/ cache=5;", 'cache=5'],
                ["$ssl codeb_sip_certificates rel;", 'a path relative to the configuration directory']) {
        ($rc, $out) = check($ok->[0]);
        is($rc, 0, "nginx -t accepts $ok->[1]") or diag $out;
    }
}

# the default server (localhost) has the directory; b.test is a tenant of
# its own with its own certificate.  Every tenant here has a SIP user: a
# tenant without SIP settings does not count as a SIP tenant, and when no
# tenant does, a worker's second WebSocket on codeb_sip_ws crashes it (its
# flow tree is never initialised; found here, left to sipws's owners)
$ENV{TEST_NGINX_TLS_CONF} = <<'EOF';
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name localhost;
    ssl_certificate $TEST_NGINX_CERT_DIR/localhost.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/localhost.key;
    codeb_sip_certificates $TEST_NGINX_SIPTLS/certs;
    codeb_tenant localhost;
    codeb_sip_user alice password=alice-demo-pass;
    location = /sip { codeb_sip_ws; }
}
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name b.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/b.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/b.test.key;
    codeb_tenant b.test;
    codeb_sip_user alice password=alice-demo-pass;
    location = /sip { codeb_sip_ws; }
}
EOF

# OPTIONS and REGISTER (the 401 names the tenant: the realm is its name)
$ENV{TEST_NGINX_OPTIONS} = 'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKo1\r\nFrom: <sip:a@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: tls-o1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\r\n';
$ENV{TEST_NGINX_REGISTER} = 'REGISTER sip:localhost SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bKr1\r\nFrom: <sip:alice@localhost>;tag=1\r\nTo: <sip:alice@localhost>\r\nCall-ID: tls-r1\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\nContact: <sip:alice@x.invalid;transport=ws>\r\n\r\n';

run_tests();
done_testing();

__DATA__

=== TEST 1: two tenants, each a server{} with its own certificate, chosen by SNI
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name a.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/a.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/a.test.key;
    codeb_tenant a.test;
    codeb_sip_user alice password=alice-demo-pass;
    location = /sip { codeb_sip_ws; }
}
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name b.test;
    ssl_certificate $TEST_NGINX_CERT_DIR/b.test.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/b.test.key;
    codeb_tenant b.test;
    codeb_sip_user alice password=alice-demo-pass;
    location = /sip { codeb_sip_ws; }
}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::cn_is('a.test', 'a.test')
set_eval OK main::cn_is('b.test', 'b.test')
set_eval OK main::cn_is(undef, 'a.test')
set_eval OK main::cn_is('c.test', 'a.test')
open A /sip sni=a.test proto=sip
tls_cert A ^CN=a\.test SAN=DNS:a\.test$
send_esc A $TEST_NGINX_OPTIONS
recv A ^SIP/2\.0 200 OK\r\n
send_esc A $TEST_NGINX_REGISTER
recv A (?s)^SIP/2\.0 401 Unauthorized\r\n.*realm="a\.test"
open B /sip sni=b.test proto=sip
tls_cert B ^CN=b\.test SAN=DNS:b\.test$
send_esc B $TEST_NGINX_OPTIONS
recv B ^SIP/2\.0 200 OK\r\n
send_esc B $TEST_NGINX_REGISTER
recv B (?s)^SIP/2\.0 401 Unauthorized\r\n.*realm="b\.test"
open N /sip tls proto=sip
tls_cert N ^CN=a\.test
close A
close B
close N
--- no_error_log
[error]



=== TEST 2: a certificate dropped into the directory is used at the next handshake, over wss too; its removal too
--- http_config eval: $ENV{TEST_NGINX_TLS_CONF}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::cn_is('new.test', 'localhost')
open A /sip sni=new.test proto=sip
tls_cert A ^CN=localhost SAN=DNS:localhost,IP:127\.0\.0\.1$
close A
set_eval OK main::cert('certs/new.test', 'new.test')
set_eval OK main::cn_is('new.test', 'new.test')
open B /sip sni=new.test proto=sip
tls_cert B ^CN=new\.test SAN=DNS:new\.test$
send_esc B $TEST_NGINX_OPTIONS
recv B ^SIP/2\.0 200 OK\r\n
send_binary B $TEST_NGINX_OPTIONS
recv_binary B ^SIP/2\.0 200 OK\r\n
send_esc B $TEST_NGINX_REGISTER
recv B (?s)^SIP/2\.0 401 Unauthorized\r\n.*realm="localhost"
# again on both workers, in any case, with a final dot
set_eval OK main::cn_is('new.test', 'new.test')
set_eval OK main::cn_is('NEW.Test.', 'new.test')
open C /sip sni=NEW.TEST proto=sip
tls_cert C ^CN=new\.test
set_eval OK main::cn_is('other.test', 'localhost')
set_eval OK main::cn_is(undef, 'localhost')
# a server{} of its own keeps its certificate, whatever the directory holds
set_eval OK main::cert('certs/b.test', 'dir.b.test')
set_eval OK main::cn_is('b.test', 'b.test')
# removed: the server's own certificate again, the open connections go on
shell rm $TEST_NGINX_SIPTLS/certs/new.test.crt
set_eval OK main::cn_is('new.test', 'localhost')
send_esc B $TEST_NGINX_OPTIONS
recv B ^SIP/2\.0 200 OK\r\n
close B
close C
--- no_error_log
[error]



=== TEST 3: replaced: the new certificate at the next handshake; unchanged (inode, size, mtime): not read again
--- workers: 1
--- http_config eval: $ENV{TEST_NGINX_TLS_CONF}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::mark()
set_eval OK main::cert('certs/r.test', 'r.test')
set_eval OK main::cn_is('r.test', 'r.test')
set_eval OK main::cn_is('r.test', 'r.test')
set_eval OK main::cert('certs/r.test', 'v2.r.test')
set_eval OK main::cn_is('r.test', 'v2.r.test')
open A /sip sni=r.test proto=sip
tls_cert A ^CN=v2\.r\.test SAN=DNS:v2\.r\.test$
send_esc A $TEST_NGINX_OPTIONS
recv A ^SIP/2\.0 200 OK\r\n
set_eval OK main::count_is(qr/loaded the certificate of "r\.test"/, 2)
# garbage written in place, the stamp kept: the cached pair is still served
set_eval OK main::scribble('certs/r.test.crt')
set_eval OK main::cn_is('r.test', 'v2.r.test')
open B /sip sni=r.test proto=sip
tls_cert B ^CN=v2\.r\.test
set_eval OK main::count_is(qr/loaded the certificate of "r\.test"|cannot read/, 2)
# the modification time changes: read again, refused, the server's own
shell touch $TEST_NGINX_SIPTLS/certs/r.test.crt
set_eval OK main::cn_is('r.test', 'localhost')
set_eval OK main::cn_is('r.test', 'localhost')
set_eval OK main::count_is(qr/cannot read a certificate from "[^"]*\/certs\/r\.test\.crt"/, 1)
# a new pair, key first: no failure in between, the new one
set_eval OK main::cert('certs/r.test', 'v3.r.test')
set_eval OK main::cn_is('r.test', 'v3.r.test')
close A
close B
--- error_log eval
[qr/\[error\].*codeb_sip_certificates: cannot read a certificate from "[^"]*\/certs\/r\.test\.crt".*no start line/]



=== TEST 4: key rotation, key first then certificate: the old pair until the new certificate, nothing logged
--- workers: 1
--- http_config eval: $ENV{TEST_NGINX_TLS_CONF}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::cert('certs/k.test', 'k.test')
set_eval OK main::cn_is('k.test', 'k.test')
set_eval OK main::cert('k2', 'v2.k.test')
shell mv $TEST_NGINX_SIPTLS/k2.key $TEST_NGINX_SIPTLS/certs/k.test.key
set_eval OK main::cn_is('k.test', 'k.test')
open A /sip sni=k.test proto=sip
tls_cert A ^CN=k\.test
shell mv $TEST_NGINX_SIPTLS/k2.crt $TEST_NGINX_SIPTLS/certs/k.test.crt
set_eval OK main::cn_is('k.test', 'v2.k.test')
close A
--- no_error_log
[error]



=== TEST 5: bad files: the server's own certificate, the error logged once per version, no crash
--- workers: 1
--- http_config eval: $ENV{TEST_NGINX_TLS_CONF}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::mark()
# garbage certificate
set_eval OK main::cert('certs/g.test', 'g.test')
shell echo garbage > $TEST_NGINX_SIPTLS/certs/g.test.crt
set_eval OK main::cn_is('g.test', 'localhost')
set_eval OK main::cn_is('g.test', 'localhost')
open A /sip sni=g.test proto=sip
tls_cert A ^CN=localhost
send_esc A $TEST_NGINX_OPTIONS
recv A ^SIP/2\.0 200 OK\r\n
set_eval OK main::count_is(qr/g\.test\.crt/, 1)
# a key of another certificate; then the right key alone is enough
set_eval OK main::cert('m1', 'm.test')
set_eval OK main::cert('m2', 'm.test')
shell cp $TEST_NGINX_SIPTLS/m2.key $TEST_NGINX_SIPTLS/certs/m.test.key && cp $TEST_NGINX_SIPTLS/m1.crt $TEST_NGINX_SIPTLS/certs/m.test.crt
set_eval OK main::cn_is('m.test', 'localhost')
set_eval OK main::cn_is('m.test', 'localhost')
set_eval OK main::count_is(qr/m\.test\.key" does not match the certificate of "m\.test"/, 1)
shell cp $TEST_NGINX_SIPTLS/m1.key $TEST_NGINX_SIPTLS/certs/.m && mv $TEST_NGINX_SIPTLS/certs/.m $TEST_NGINX_SIPTLS/certs/m.test.key
set_eval OK main::cn_is('m.test', 'm.test')
# no key; a garbage key; an encrypted key
set_eval OK main::cert('certs/n.test', 'n.test')
shell rm $TEST_NGINX_SIPTLS/certs/n.test.key
set_eval OK main::cn_is('n.test', 'localhost')
set_eval OK main::cert('certs/gk.test', 'gk.test')
shell head -c 200 /dev/urandom > $TEST_NGINX_SIPTLS/certs/gk.test.key
set_eval OK main::cn_is('gk.test', 'localhost')
set_eval OK main::cert('certs/e.test', 'e.test')
shell openssl pkey -in $TEST_NGINX_SIPTLS/certs/e.test.key -aes256 -passout pass:secret -out $TEST_NGINX_SIPTLS/e.key && mv $TEST_NGINX_SIPTLS/e.key $TEST_NGINX_SIPTLS/certs/e.test.key
set_eval OK main::cn_is('e.test', 'localhost')
# not regular files, an empty and an oversized one: a FIFO does not block
shell mkfifo $TEST_NGINX_SIPTLS/certs/fifo.test.crt && mkdir $TEST_NGINX_SIPTLS/certs/dir.test.crt
shell : > $TEST_NGINX_SIPTLS/certs/empty.test.crt && head -c 70000 /dev/zero > $TEST_NGINX_SIPTLS/certs/big.test.crt
set_eval OK main::cn_is('fifo.test', 'localhost')
set_eval OK main::cn_is('dir.test', 'localhost')
set_eval OK main::cn_is('empty.test', 'localhost')
set_eval OK main::cn_is('big.test', 'localhost')
# the worker still serves the good ones
set_eval OK main::cn_is('m.test', 'm.test')
open B /sip sni=m.test proto=sip
tls_cert B ^CN=m\.test
send_esc B $TEST_NGINX_OPTIONS
recv B ^SIP/2\.0 200 OK\r\n
close A
close B
--- error_log eval
[qr/\[error\].*cannot read a certificate from "[^"]*\/certs\/g\.test\.crt"/,
 qr/\[error\].*"[^"]*\/certs\/m\.test\.key" does not match the certificate of "m\.test"/,
 qr/\[error\].*open\(\) "[^"]*\/certs\/n\.test\.key" failed \(2: No such file/,
 qr/\[error\].*cannot read a private key from "[^"]*\/certs\/gk\.test\.key"/,
 qr/\[error\].*cannot read a private key from "[^"]*\/certs\/e\.test\.key"/,
 qr/\[error\].*"[^"]*\/certs\/fifo\.test\.crt": not a regular file/,
 qr/\[error\].*"[^"]*\/certs\/dir\.test\.crt": not a regular file/,
 qr/\[error\].*cannot read a certificate from "[^"]*\/certs\/empty\.test\.crt"/,
 qr/\[error\].*"[^"]*\/certs\/big\.test\.crt": not a regular file of at most 65536 bytes/]



=== TEST 6: hostile SNI names build no path: the server's own certificate, nothing read outside the directory
--- http_config eval: $ENV{TEST_NGINX_TLS_CONF}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::cert('x', 'outside.test')
set_eval OK main::cert('certs/.hidden', 'hidden.test')
set_eval OK main::cert('certs/-dash', 'dash.test')
set_eval OK main::cert('certs/ok.test', 'ok.test')
set_eval OK main::cn_is('../x', 'localhost')
set_eval OK main::cn_is('..', 'localhost')
set_eval OK main::cn_is('ok.test/../../x', 'localhost')
set_eval OK main::cn_is('ok..test', 'localhost')
set_eval OK main::cn_is('.hidden', 'localhost')
set_eval OK main::cn_is('-dash', 'localhost')
set_eval OK main::cn_is('x y', 'localhost')
set_eval OK main::cn_is('ok.test%2f', 'localhost')
set_eval OK main::cn_is('ok_test', 'localhost')
set_eval OK main::cn_is("ok.test\\", 'localhost')
set_eval OK main::cn_is('.', 'localhost')
set_eval OK main::cn_is(join('.', ('a' x 63) x 4), 'localhost')
set_eval OK main::cn_is(join('.', ('a' x 63) x 3, 'a' x 61), 'localhost')
set_eval OK main::cn_is(join('.', ('a' x 63) x 3, 'a' x 62), 'localhost')
tcp T $TEST_NGINX_TLS_PORT sni=../x
tls_cert T ^CN=localhost
tcp U $TEST_NGINX_TLS_PORT sni=../certs/ok.test
tls_cert U ^CN=localhost
set_eval OK main::cn_is('ok.test', 'ok.test')
close T
close U
--- no_error_log
[error]
outside
x.crt



=== TEST 7: ssl_certificate with variables: the directory first, then nginx's own lookup
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name localhost;
    ssl_certificate $TEST_NGINX_SIPTLS/var/$ssl_server_name.crt;
    ssl_certificate_key $TEST_NGINX_SIPTLS/var/$ssl_server_name.key;
    codeb_sip_certificates $TEST_NGINX_SIPTLS/certs;
    codeb_tenant localhost;
    codeb_sip_user alice password=alice-demo-pass;
    location = /sip { codeb_sip_ws; }
}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::cert('var/v1.test', 'var.v1.test')
set_eval OK main::cert('var/v2.test', 'var.v2.test')
set_eval OK main::cert('certs/v2.test', 'dir.v2.test')
set_eval OK main::cert('certs/v3.test', 'dir.v3.test')
set_eval OK main::cn_is('v1.test', 'var.v1.test')
set_eval OK main::cn_is('v2.test', 'dir.v2.test')
set_eval OK main::cn_is('v3.test', 'dir.v3.test')
open A /sip sni=v1.test proto=sip
tls_cert A ^CN=var\.v1\.test
send_esc A $TEST_NGINX_OPTIONS
recv A ^SIP/2\.0 200 OK\r\n
open B /sip sni=v3.test proto=sip
tls_cert B ^CN=dir\.v3\.test
send_esc B $TEST_NGINX_OPTIONS
recv B ^SIP/2\.0 200 OK\r\n
shell rm $TEST_NGINX_SIPTLS/certs/v2.test.crt
set_eval OK main::cn_is('v2.test', 'var.v2.test')
close A
close B
--- no_error_log
[error]



=== TEST 8: cache=2: the least recently used pair goes, and is read again when asked for
--- workers: 1
--- http_config
server {
    listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
    server_name localhost;
    ssl_certificate $TEST_NGINX_CERT_DIR/localhost.crt;
    ssl_certificate_key $TEST_NGINX_CERT_DIR/localhost.key;
    codeb_sip_certificates $TEST_NGINX_SIPTLS/certs cache=2;
}
--- config
location = /t { return 200; }
--- ws
set_eval OK main::mark()
set_eval OK main::cert('certs/c1.test', 'c1.test')
set_eval OK main::cert('certs/c2.test', 'c2.test')
set_eval OK main::cert('certs/c3.test', 'c3.test')
set_eval OK main::cn_is('c1.test', 'c1.test')
set_eval OK main::cn_is('c2.test', 'c2.test')
set_eval OK main::cn_is('c3.test', 'c3.test')
set_eval OK main::cn_is('c1.test', 'c1.test')
set_eval OK main::cn_is('c3.test', 'c3.test')
set_eval OK main::cn_is('c3.test', 'c3.test')
set_eval OK main::count_is(qr/loaded the certificate of "c1\.test"/, 2)
set_eval OK main::count_is(qr/loaded the certificate of "c2\.test"/, 1)
set_eval OK main::count_is(qr/loaded the certificate of "c3\.test"/, 1)
set_eval OK main::cn_is('c2.test', 'c2.test')
set_eval OK main::count_is(qr/loaded the certificate of "c2\.test"/, 2)
--- no_error_log
[error]
