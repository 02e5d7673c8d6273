# ngx_codeb_core's configuration (docs/configuration.md): codeb_redis is
# parsed when nginx reads its configuration, so `nginx -t` refuses a bad
# address; the directives of http{} may come in any order; a module that
# needs Redis without codeb_redis is refused with the place that needs it.
# Each case runs `nginx -t` on a configuration of its own.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);

my $modules = $ENV{TEST_NGINX_MODULES};
plan skip_all => 'TEST_NGINX_MODULES is not set' unless $modules;

my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $dir = tempdir(CLEANUP => 1);
mkdir "$dir/logs";

# nginx -t on an http{} body; returns (exit status, output)
sub check {
    my ($http) = @_;
    open my $f, '>', "$dir/nginx.conf" or die $!;
    print $f <<"EOF";
load_module $modules/ngx_codeb_core_module.so;
load_module $modules/ngx_codeb_signal_module.so;
error_log $dir/logs/error.log;
pid $dir/logs/nginx.pid;
events { }
http {
    access_log off;
    client_body_temp_path $dir/body;
$http
}
EOF
    close $f;
    my $out = `$nginx -t -p $dir/ -c $dir/nginx.conf -e $dir/logs/error.log 2>&1`;
    return ($? >> 8, $out);
}

sub refused {
    my ($name, $http, $re) = @_;
    my ($rc, $out) = check($http);
    ok($rc != 0, "$name: nginx -t fails") or diag $out;
    like($out, $re, "$name: the message says why");
}

sub accepted {
    my ($name, $http) = @_;
    my ($rc, $out) = check($http);
    is($rc, 0, "$name: nginx -t passes") or diag $out;
}

my $loc = 'server { listen 127.0.0.1:1999; codeb_tenant t1;'
          . ' location = /signal.ashx { codeb_signal; } }';

refused('a port that is not a number', "codeb_redis 127.0.0.1:redis; $loc",
        qr/codeb_redis "127\.0\.0\.1:redis": invalid port/);
refused('no port', "codeb_redis 127.0.0.1; $loc",
        qr/codeb_redis "127\.0\.0\.1": no port/);
refused('a host name that does not resolve',
        "codeb_redis redis.invalid:6379; $loc",
        qr/codeb_redis "redis\.invalid:6379": host not found/);
refused('twice', "codeb_redis 127.0.0.1:6379; codeb_redis 127.0.0.1:6380;",
        qr/"codeb_redis" directive is duplicate/);
refused('codeb_signal without codeb_redis', $loc,
        qr/"codeb_signal" in \S+nginx\.conf:\d+ requires "codeb_redis"/);
refused('a host id with a colon', "codeb_host_id a:b;",
        qr/codeb_host_id "a:b" may not contain/);
refused('a timeout that is not a time', "codeb_redis_timeout soon;",
        qr/"codeb_redis_timeout" directive invalid value/);

accepted('a unix socket', "codeb_redis unix:$dir/redis.sock; $loc");
accepted('host:port, and localhost resolved now',
         "codeb_redis localhost:6379; $loc");
accepted('codeb_redis after the location that needs it',
         "$loc codeb_redis 127.0.0.1:6379; codeb_redis_timeout 1s;");
accepted('no CodeB location needs no Redis',
         'server { listen 127.0.0.1:1999; }');

done_testing();
