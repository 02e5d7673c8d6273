package Test::CodeB;

# Why this file exists: the project's tests are written in the Test::Nginx
# block format, but Test::Nginx cannot be installed from the package
# registries this project reaches (no CPAN, and Debian does not package it).
# This is a small, self-contained replacement built on Debian's Test::Base
# (libtest-base-perl) that understands the subset of the format we use, plus a
# WebSocket client script language (--- ws) for the /signal.ashx endpoint.

use strict;
use warnings;

# "-base" (lower case) makes Test::CodeB a Test::Base subclass without
# Spiffy's source filter, so this file is plain Perl.
use Test::Base -base;

use Cwd qw(abs_path);
use Digest::SHA qw(sha1);
use Errno qw(EAGAIN EWOULDBLOCK EINTR EPERM);
use Fcntl qw(:flock);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempfile);
use IO::Select;
use IO::Socket::INET;
use IO::Socket::UNIX;
use JSON::PP ();
use MIME::Base64 qw(encode_base64);
use POSIX qw(WNOHANG);
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time sleep);
require Test::Base::Filter;

our @EXPORT = qw(run_tests redis_cmd done_testing);

{ no warnings 'once'; *done_testing = \&Test::More::done_testing; }

=head1 NAME

Test::CodeB - Test::Nginx-style block tests (HTTP + WebSocket) for the CodeB nginx modules

=head1 SYNOPSIS

    use lib 't/lib';
    use Test::CodeB;

    run_tests();
    done_testing();

    __DATA__

    === TEST 1: hello
    --- config
    location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello

Run with C<prove -v t/> from the repository root. Files must run one at a time
(no C<prove -j>): every file uses the same server root and ports. A second
test process on the same server root stops at once (BAIL_OUT, a lock on
F<SERVROOT/.harness.lock>); two runs side by side need different
C<TEST_NGINX_SERVROOT> and C<TEST_NGINX_PORT>. nginx and redis-server left
running by a killed run are stopped by the next run.

Always end a file with C<run_tests(); done_testing();>: the number of
assertions depends on the blocks (one per C<--- ws> line, one per log pattern,
one per nginx shutdown), so a fixed C<plan> is not supported.

=head1 DESCRIPTION

Each block (C<=== TEST N: name>) is run against the real nginx binary
(C</usr/sbin/nginx>, Debian's 1.22) with C<master_process on; daemon on;>,
in the prefix C<t/servroot>. nginx is restarted only when the generated
configuration differs from the running one; otherwise it keeps running and
only the block's own part of the error log is examined. Every file stops nginx
(QUIT) at its end.

When the environment variable C<TEST_NGINX_MODULES> names a directory,
C<load_module> lines for C<ngx_codeb_core_module.so> and
C<ngx_codeb_signal_module.so> (those that exist, core first) are emitted, a
private C<redis-server> is started on a unix socket for the whole file,
C<codeb_redis unix:SOCK;> is added at http level, and Redis is flushed
(C<FLUSHALL>) before every block.

Section values go through Test::Base's default filters C<norm> and C<trim>
(so a multi-line section keeps exactly one trailing newline), then through the
filters named after the section name (C<eval>, C<chomp>, ...), then the
variables below are substituted.

=head2 Generated configuration

    worker_processes N;                 # --- workers, default 2
    daemon on; master_process on;
    user root;                          # only when the tests run as root
    pid SERVROOT/logs/nginx.pid;
    lock_file SERVROOT/logs/nginx.lock;
    error_log SERVROOT/logs/error.log info;
    load_module ...;                    # only with TEST_NGINX_MODULES
    <--- main_config>
    events { worker_connections 1024; }
    http {
        access_log SERVROOT/logs/access.log;
        client_body_temp_path SERVROOT/client_body_temp;   # and proxy, fastcgi,
        ...                                                 # uwsgi, scgi
        codeb_redis unix:REDIS_SOCK;    # only when the core module is loaded
        codeb_host_id hostN;            # only with --- hosts 2 and the core module
        <--- http_config>
        server {
            listen 127.0.0.1:PORT reuseport;
            server_name localhost;
            <--- config>
        }
    }

nginx is started as
C<nginx -p SERVROOT/ -c SERVROOT/conf/nginx.conf -e SERVROOT/logs/error.log>,
so nothing under F</etc/nginx> or F</var/log/nginx> is used.

=head2 Environment

=over

=item TEST_NGINX_BINARY

nginx to run, default F</usr/sbin/nginx>.

=item TEST_NGINX_MODULES

Directory holding the built C<.so> modules; unset or empty: plain nginx.

=item TEST_NGINX_PORT

Port of the first instance, default 1984; the second instance
(C<--- hosts 2>) listens on C<TEST_NGINX_PORT2>, default PORT+1.

=item TEST_NGINX_SERVROOT

Prefix of the first instance, default F<t/servroot> (absolute); the second
instance uses the same path with C<2> appended.

=item TEST_NGINX_REDIS_SOCK

Redis unix socket, default F<SERVROOT/redis.sock>.

=item TEST_NGINX_REDIS_SERVER

redis-server binary, default F</usr/bin/redis-server>.

=back

=head2 Variables substituted in every section

C<$TEST_NGINX_PORT> (or C<${TEST_NGINX_PORT}>), C<$TEST_NGINX_PORT2>, C<$TEST_NGINX_REDIS_SOCK>,
C<$TEST_NGINX_SERVROOT>, C<$TEST_NGINX_HTML_DIR> (SERVROOT/html, created
empty for each file), C<$TEST_NGINX_ROOT> (the repository root), plus any
other C<$TEST_NGINX_*> environment variable. An unknown C<$TEST_NGINX_*> name
fails the block. All of these are also exported to C<%ENV>, so C<shell>
commands and Perl code can use them. The substitution runs after the section
filters: inside C<eval> sections write C<\$TEST_NGINX_PORT> or use single
quotes (an C<eval> section that does not compile fails the block).

With C<--- hosts 2> the user's sections are substituted identically for both
instances (C<$TEST_NGINX_SERVROOT> and C<$TEST_NGINX_HTML_DIR> point at the
first instance's directories in both).

=head2 Sections

=over

=item --- config

Text placed inside the C<server { }> block.

=item --- http_config

Text placed at C<http { }> level, before the server.

=item --- main_config

Text placed at the top level (main context), before C<events>.

=item --- workers N

C<worker_processes> (default 2).

=item --- hosts N

1 (default) or 2. With 2, a second nginx instance runs with the same
configuration in SERVROOT2 on C<$TEST_NGINX_PORT2>; when the modules are
loaded, C<codeb_host_id host1;> / C<codeb_host_id host2;> is added at http
level. Both instances share the Redis. The crash check covers both logs;
C<--- error_log> / C<--- no_error_log> search the lines of both.
C<--- request> / C<--- raw_request> always go to the first instance; in
C<--- ws> use C<open A host2>.

=item --- redis

Start the harness's redis-server for this file even without
C<TEST_NGINX_MODULES> (it is then flushed before every block, like with the
modules).

=item --- request

First line: C<METHOD URI [HTTP/1.x]>. Any following text is the request body,
sent as is (after C<trim> it ends in one newline; use C<--- request chomp> or
C<--- request eval> for exact bytes). The request is sent as HTTP/1.1 with
C<Host: localhost> and C<Connection: close> (unless C<--- more_headers> sets
them) and a C<Content-Length> when there is a body or the method is POST, PUT
or PATCH.

=item --- raw_request

Exact bytes sent (after variable substitution); nothing is added. Plain text
keeps its LF line endings (nginx accepts them, but a trailing empty line is
removed by C<trim>), so normally write C<--- raw_request eval> with a Perl
string such as C<"GET /t HTTP/1.1\r\nHost: localhost\r\n\r\n">. When the
C<eval> yields an array reference, its elements are written one by one with a
50 ms pause in between.

=item --- more_headers

Lines C<Name: value> added to the request (C<eval> allowed).

=item --- error_code

Expected status. When a request is sent and this section is absent, 200 is
expected (as in Test::Nginx).

=item --- response_body

Exact expected body (C<eval> and C<chomp> allowed). Chunked bodies are
decoded before comparing.

=item --- response_body_like

The body must match C<qr/VALUE/s>, unanchored, VALUE being the section after
C<trim> (so it usually ends in C<\n>; write C<--- response_body_like: re>
for a one-line pattern without it).

=item --- response_headers

Lines C<Name: value>: the header must be present with exactly that value
(several headers of one name are joined with C<", ">). C<!Name>: the header
must be absent.

=item --- response_headers_like

Lines C<Name: regex>: the header value (C<""> when absent) must match
C<qr/^regex$/>.

=item --- error_log

Each non-empty line must occur as a substring in this block's error log lines
(one assertion each). With C<eval> the value may be an array reference whose
elements are strings (substrings) or C<qr//> patterns.

=item --- no_error_log

Each non-empty line (or array element, as above) must not occur.

=item --- timeout

Seconds (default 5): bound for the HTTP exchange and for each C<--- ws>
command that waits (and for C<shell> commands).

=item --- wait

Seconds to sleep after the request / ws script and before the error log is
read.

=item --- ws

A WebSocket client script, see L</WS COMMANDS>. Runs after C<--- request> /
C<--- raw_request> when both are given.

=item --- ONLY, --- SKIP, --- LAST

As in Test::Base / Test::Nginx: run only this block, skip this block, stop
after this block.

=back

The error log "window" of a block starts before nginx is (re)started for it,
so start-up messages count, and ends after the checks. After every block the
window is searched for worker crashes (C<exited on signal N>, or a worker that
C<exited with code N> / C<with fatal code N> for N != 0); a crash fails the
block ("no worker crash"). This check cannot be turned off.

Whenever an nginx instance is stopped (configuration change, end of file) one
more assertion checks that it shut down gracefully on QUIT within 5 s and
that no worker crashed since the last block: a worker that does not exit on
QUIT (for example because of a pending non-cancelable timer) fails it; the
harness then uses TERM and KILL.

A section name the harness does not know fails the block, which catches
typos such as C<--- response_header>.

=head1 WS COMMANDS

One command per line; blank lines and lines starting with C<#> are ignored.
Every command is exactly one TAP assertion named
C<TEST N: name - ws line L: COMMAND>; after the first failing line the rest
of the script is reported as skipped. C<${var}> is replaced by a value
stored with C<capture> (an unknown name fails the line). Clients are named by
a word (C<A>, C<B>, C<c1>, ...). All waits are bounded by C<--- timeout>
(default 5 s). Every server frame is validated: unmasked, RSV bits 0, known
opcode, control frames unfragmented and at most 125 bytes, minimal length
encoding, text messages valid UTF-8; a violation fails the command that read
it. Server fragmentation is reassembled. All clients are dropped at the end
of the block.

=over

=item open A [PATH] [other B | same B] [host2]

Connect to 127.0.0.1:PORT (PORT2 with C<host2>), send a client handshake for
PATH (default C</signal.ashx>) and require C<101>, C<Upgrade: websocket>,
C<Connection: Upgrade> and the right C<Sec-WebSocket-Accept>. The pid of the
worker that owns the connection is found with C<ss -tnpH state established>.
With C<other B> / C<same B> the connection must be served by a different /
the same worker as B's; unsuitable connections are closed (close frame 1000)
and the connect is retried, up to 40 times.

=item send A TEXT

The rest of the line as one masked text frame (FIN=1).

=item send_frames A OPCODE FIN TEXT

One masked frame with the given opcode (hex, C<0> = continuation) and FIN bit
(C<0>/C<1>); TEXT is the rest of the line (may be empty).

=item send_unmasked A TEXT

One unmasked text frame (a protocol violation).

=item send_raw A HEX

Raw bytes written as is, e.g. C<send_raw A 81 85 00 00 00 00 68 65 6c 6c 6f>.

=item send_big A N [OPCODE]

One masked frame (text unless OPCODE, hex) whose payload is exactly N bytes:
C<{"type":"ping","pad":"xxx..."}> padded to N (only C<x>s when N < 24).
16- and 64-bit length encodings are used as RFC 6455 requires.

=item send_close A CODE [REASON]

A masked close frame with that status code and optional reason.

=item ping A [PAYLOAD]

A masked ping frame.

=item expect_pong A [PAYLOAD]

The next control frame from the server (server pings are answered and
skipped) must be a pong with exactly PAYLOAD. Text messages that arrive first
are kept for the next C<recv>.

=item recv A REGEX

Read until a text message arrives (pings answered when autopong is on, pings
and pongs skipped) and require it to match C<qr/REGEX/> (unanchored). A close
frame, EOF, binary message or timeout fails. The message becomes A's "last
message".

=item recv_json A EXPR

Like C<recv>, but the message is decoded with JSON::PP and the Perl
expression EXPR, evaluated in package C<main> with C<$j> (and C<$_>) set to
the decoded value, must be true. Example:
C<recv_json A $j-E<gt>{type} eq 'welcome' && @{$j-E<gt>{peers}} == 0>.

=item skip_json A EXPR

Drop text messages while EXPR (as in C<recv_json>) holds for them; the first
message for which it does not is kept for the next C<recv>. Fails like
C<recv> when no such message arrives.

=item capture A NAME REGEX

Match A's last message against REGEX (one capture group) and store group 1
as C<${NAME}>.

=item no_recv A MS

No text or binary message may arrive within MS milliseconds (pings are
answered and ignored). A close frame or EOF also fails the line (and is kept
for a following C<expect_close> / C<expect_eof>).

=item expect_close A [CODE]

Read until a close frame (text messages on the way are allowed and shown in
the diagnostics), require its status code to be CODE (1005 stands for a close
frame without a code; no CODE: any), answer with a close frame, and require
the server to close the TCP connection within the timeout.

=item expect_eof A

The server must close the TCP connection within the timeout; frames are
ignored.

=item expect_ping A

The next frame must be a server ping (answered when autopong is on).

=item autopong A on|off

Answer server pings automatically (default on).

=item close A

Send close 1000 and wait for the server's close frame or EOF; then close the
socket. The client is gone afterwards.

=item drop A

Close the TCP socket abruptly, without a close frame.

=item sleep MS

Sleep MS milliseconds.

=item redis_restart

Stop the harness's redis-server (C<SHUTDOWN NOSAVE>) and start it again on
the same socket, waiting until it answers PING.

=item redis REGEX COMMAND ARGS...

Run a Redis command through C<redis_cmd>; the reply stringified (nil as the
empty string, arrays joined with C<,>) must match C<qr/REGEX/>. REGEX and the
arguments are single words.

=item shell COMMAND

Run COMMAND with C</bin/sh -c>; it must exit 0 within the timeout. The
C<TEST_NGINX_*> variables are in its environment.

=item reload

Send HUP to the first instance's master and wait until it has
C<--- workers> new worker processes.

=item worker_alive A

The worker process recorded for A by C<open> is still running.

=back

=head1 FUNCTIONS

=over

=item run_tests()

Runs all blocks of C<__DATA__>.

=item redis_cmd(@args)

Sends one command to the harness's Redis and returns the reply: a string
(C<+>, C<$>), a number (C<:>), C<undef> (nil) or an array reference (C<*>,
recursively). An error reply dies with C<redis error: ...>.

=item done_testing()

Test::More's C<done_testing>, re-exported.

=back

C<Test::CodeB::ws_encode_frame>, C<ws_decode_frame>,
C<ws_server_frame_error>, C<ws_client_from_socket> and C<ws_run_script>
exist for the harness's own self-test (F<t/000-harness.t>); call them with
the package name (C<use Test::CodeB> takes no import list).

=cut

my $WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

my %KNOWN_SECTIONS = map { $_ => 1 } qw(
    config http_config main_config workers hosts redis
    request raw_request more_headers
    error_code response_body response_body_like
    response_headers response_headers_like
    error_log no_error_log timeout wait ws
    ONLY SKIP LAST
);

$SIG{PIPE} = 'IGNORE';    # a peer that closed first must not kill the test

my %S;            # settings, filled by _init
my @Inst;         # [1] and [2]: nginx instances
my %Redis;        # the harness's redis-server
my $MainPid = $$;
my $Initialized = 0;

# ---------------------------------------------------------------------------
# Test::Base filter class: like Test::Base::Filter, but "eval" runs in
# package main and dies (failing the block) instead of silently returning $@.

package Test::CodeB::Filter;
our @ISA = ('Test::Base::Filter');

sub eval {    ## no critic (ProhibitBuiltinHomonyms)
    my $self = shift;
    $self->assert_scalar(@_);
    my $code = shift;
    my @r = CORE::eval("package main;\n#line 1 \"eval section\"\n$code");
    die "eval section does not run: $@" if $@;
    return @r;
}

package Test::CodeB;

# ---------------------------------------------------------------------------
# Set-up

sub _init {
    return if $Initialized;
    $Initialized = 1;
    $SIG{PIPE} = 'IGNORE';
    # Ctrl-C / kill: exit through END so nginx and redis-server are stopped.
    for my $sig (qw(INT TERM)) {
        $SIG{$sig} ||= sub { print STDERR "Test::CodeB: got SIG$sig, stopping servers\n"; exit 1 };
    }

    my $root = $ENV{TEST_NGINX_ROOT}
        // abs_path(dirname(abs_path(__FILE__)) . '/../../..');
    my $sr = $ENV{TEST_NGINX_SERVROOT} // "$root/t/servroot";
    $sr = abs_path($sr) // $sr if -e $sr;
    $sr =~ s{/+$}{};
    my $port = $ENV{TEST_NGINX_PORT} || 1984;

    %S = (
        root       => $root,
        servroot   => $sr,
        servroot2  => "${sr}2",
        port       => $port,
        port2      => $ENV{TEST_NGINX_PORT2} || $port + 1,
        html_dir   => "$sr/html",
        redis_sock => $ENV{TEST_NGINX_REDIS_SOCK} || "$sr/redis.sock",
        nginx      => $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx',
        redis_bin  => $ENV{TEST_NGINX_REDIS_SERVER} || '/usr/bin/redis-server',
        modules    => [],
    );

    if (defined $ENV{TEST_NGINX_MODULES} && length $ENV{TEST_NGINX_MODULES}) {
        my $dir = $ENV{TEST_NGINX_MODULES};
        $dir =~ s{/+$}{};
        for my $m (qw(ngx_codeb_core_module ngx_codeb_signal_module)) {
            push @{$S{modules}}, [$m, "$dir/$m.so"] if -f "$dir/$m.so";
        }
        Test::More::diag("TEST_NGINX_MODULES=$dir holds no ngx_codeb_*_module.so")
            unless @{$S{modules}};
        $S{want_redis} = 1;
    }
    $S{core_loaded} = grep { $_->[0] eq 'ngx_codeb_core_module' } @{$S{modules}};

    $ENV{TEST_NGINX_ROOT}       = $S{root};
    $ENV{TEST_NGINX_SERVROOT}   = $S{servroot};
    $ENV{TEST_NGINX_PORT}       = $S{port};
    $ENV{TEST_NGINX_PORT2}      = $S{port2};
    $ENV{TEST_NGINX_HTML_DIR}   = $S{html_dir};
    $ENV{TEST_NGINX_REDIS_SOCK} = $S{redis_sock};

    @Inst = (undef,
        { n => 1, servroot => $S{servroot},  port => $S{port} },
        { n => 2, servroot => $S{servroot2}, port => $S{port2} });
    %Redis = (running => 0, pidfile => "$S{servroot}/redis.pid",
              logfile => "$S{servroot}/redis.log");

    Test::More::BAIL_OUT("nginx binary $S{nginx} is not executable")
        unless -x $S{nginx};

    # One test process per server root: a second one would take the first
    # one's nginx for a leftover and stop it. The lock dies with its owner.
    make_path($S{servroot});
    open $S{lock_fh}, '>>', "$S{servroot}/.harness.lock"
        or Test::More::BAIL_OUT("cannot open $S{servroot}/.harness.lock: $!");
    unless (flock $S{lock_fh}, LOCK_EX | LOCK_NB) {
        Test::More::BAIL_OUT("another test process is using $S{servroot}; run the files "
            . 'one at a time, or give each run its own TEST_NGINX_SERVROOT and TEST_NGINX_PORT');
    }

    _setup_servroot($Inst[1]);
}

# Stop what a previous, interrupted run may have left, then recreate the
# directories the harness owns. Only known sub-paths are removed.
sub _setup_servroot {
    my ($inst) = @_;
    my $sr = $inst->{servroot};
    _stop_stale("$sr/logs/nginx.pid", 'nginx');
    _stop_stale("$sr/redis.pid", 'redis') if $inst->{n} == 1;
    remove_tree(grep { -e } "$sr/conf", "$sr/logs", "$sr/html", glob("$sr/*_temp"));
    unlink grep { -e } map { "$sr/$_" } qw(redis.sock redis.pid redis.log);
    unlink $S{redis_sock} if $inst->{n} == 1 && -S $S{redis_sock};
    make_path(map { "$sr/$_" } qw(conf logs html client_body_temp proxy_temp
                                  fastcgi_temp uwsgi_temp scgi_temp));
    $inst->{setup} = 1;
}

sub _stop_stale {
    my ($pidfile, $what) = @_;
    my $pid = _read_pidfile($pidfile) or return;
    return unless _alive($pid);
    my $cmd = _slurp("/proc/$pid/cmdline") // '';
    return unless $cmd =~ /\Q$what\E/;
    Test::More::diag("stopping $what (pid $pid) left by an earlier run ($pidfile)");
    kill 'QUIT', $pid if $what eq 'nginx';
    kill 'TERM', $pid if $what eq 'redis';
    _wait_exit($pid, 5) or do { _kill_group($pid); _wait_exit($pid, 2) };
}

# ---------------------------------------------------------------------------
# Small process and file helpers

sub _slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return undef;
    local $/;
    my $d = <$fh>;
    return $d // '';
}

sub _read_pidfile {
    my ($f) = @_;
    my $d = _slurp($f) // return undef;
    return $d =~ /(\d+)/ ? $1 : undef;
}

# kill 0 is not enough: an orphan may be a zombie nobody reaps.
sub _alive {
    my ($pid) = @_;
    return 0 unless $pid && (kill(0, $pid) || $!{EPERM});
    my $st = _slurp("/proc/$pid/stat") // return 0;
    return $st =~ /^\d+ \(.*\)\s+Z\s/s ? 0 : 1;
}

sub _wait_exit {
    my ($pid, $secs) = @_;
    my $deadline = time + $secs;
    while (_alive($pid)) {
        return 0 if time > $deadline;
        sleep 0.02;
    }
    return 1;
}

sub _kill_group {
    my ($pid) = @_;
    my $st = _slurp("/proc/$pid/stat") // '';
    my ($pgid) = $st =~ /^\d+ \(.*\)\s+\S+\s+\d+\s+(\d+)/s;
    if ($pgid && $pgid == $pid) { kill 'KILL', -$pid } else { kill 'KILL', $pid }
}

# pids whose parent is $ppid
sub _children {
    my ($ppid) = @_;
    my @kids;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = _slurp("/proc/$p/stat") // next;
        my ($state, $pp) = $st =~ /^\d+ \(.*\)\s+(\S+)\s+(\d+)/s or next;
        push @kids, $p if $pp == $ppid && $state ne 'Z';
    }
    return sort { $a <=> $b } @kids;
}

# Run a command (array ref) with stdout+stderr to a temporary file, bounded by
# $timeout seconds. Returns (wait status or -1 on timeout, output).
sub _run_cmd {
    my ($argv, $timeout) = @_;
    my ($fh, $file) = tempfile('codeb-cmd-XXXXXX', TMPDIR => 1, UNLINK => 1);
    my $pid = fork;
    return (-1, "fork failed: $!") unless defined $pid;
    if (!$pid) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>&', $fh;
        open STDERR, '>&', $fh;
        setpgrp(0, 0);
        { no warnings 'exec'; exec { $argv->[0] } @$argv; }
        print STDERR "exec $argv->[0] failed: $!\n";
        POSIX::_exit(127);
    }
    my $deadline = time + $timeout;
    my $rc;
    while (1) {
        my $w = waitpid($pid, WNOHANG);
        if ($w == $pid) { $rc = $?; last }
        if (time > $deadline) {
            kill 'TERM', -$pid, $pid;
            sleep 0.2;
            kill 'KILL', -$pid, $pid;
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.01;
    }
    my $out = _slurp($file) // '';
    close $fh;
    unlink $file;
    return ($rc, $out);
}

# Is something listening on 127.0.0.1:$port (or 0.0.0.0)? Read from
# /proc/net/tcp so that no connection is made (a probe connection would log
# "client closed connection" lines at info level).
sub _listening {
    my ($port) = @_;
    my $hex = sprintf '%04X', $port;
    my $tab = _slurp('/proc/net/tcp') // return 0;
    for my $l (split /\n/, $tab) {
        my (undef, $local, undef, $st) = split ' ', $l;
        next unless defined $st && $st eq '0A';
        return 1 if $local eq "0100007F:$hex" || $local eq "00000000:$hex";
    }
    return 0;
}

# ---------------------------------------------------------------------------
# Variable substitution

sub _subst {
    my ($text) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(?:(TEST_NGINX_[A-Z0-9_]+)|\{(TEST_NGINX_[A-Z0-9_]+)\})}{
        my $v = $1 // $2;
        defined $ENV{$v} ? $ENV{$v} : die "undefined variable \$$v\n"
    }ge;
    return $text;
}

# ---------------------------------------------------------------------------
# nginx instances

sub _gen_conf {
    my ($inst, $b) = @_;
    my $sr = $inst->{servroot};
    my @c;
    push @c, "worker_processes $b->{workers};";
    push @c, 'daemon on;', 'master_process on;';
    push @c, 'user root;' if $> == 0;
    push @c, "pid $sr/logs/nginx.pid;";
    push @c, "lock_file $sr/logs/nginx.lock;";
    push @c, "error_log $sr/logs/error.log info;";
    push @c, "load_module $_->[1];" for @{$S{modules}};
    push @c, $b->{main_config} if length $b->{main_config};
    push @c, 'events { worker_connections 1024; }';
    push @c, 'http {';
    push @c, "    access_log $sr/logs/access.log;";
    push @c, "    ${_}_temp_path $sr/${_}_temp;"
        for qw(client_body proxy fastcgi uwsgi scgi);
    if ($S{core_loaded}) {
        push @c, "    codeb_redis unix:$S{redis_sock};";
        push @c, "    codeb_host_id host$inst->{n};" if $b->{hosts} == 2;
    }
    push @c, $b->{http_config} if length $b->{http_config};
    push @c, '    server {';
    push @c, "        listen 127.0.0.1:$inst->{port} reuseport;";
    push @c, '        server_name localhost;';
    push @c, $b->{config} if length $b->{config};
    push @c, '    }';
    push @c, '}';
    return join("\n", @c) . "\n";
}

sub _log_file { "$_[0]{servroot}/logs/error.log" }

sub _log_size { -s _log_file($_[0]) // 0 }

# Lines of the error log from byte offset $from to the current end.
sub _log_lines {
    my ($inst, $from) = @_;
    open my $fh, '<:raw', _log_file($inst) or return ([], $from);
    seek $fh, $from, 0;
    local $/;
    my $d = <$fh> // '';
    my $end = $from + length $d;
    # keep an unterminated last line for the next reader
    if (length $d && $d !~ /\n\z/) {
        my $cut = rindex($d, "\n") + 1;
        $end = $from + $cut;
        $d = substr($d, 0, $cut);
    }
    return ([split /\n/, $d], $end);
}

sub _crash_lines {
    my ($lines) = @_;
    return grep {
        /exited on signal \d+/
            || /worker process \d+ exited with (?:fatal )?code (\d+)/ && $1 != 0
    } @$lines;
}

sub _tail {
    my ($inst, $n) = @_;
    my ($lines) = _log_lines($inst, 0);
    my @l = @$lines;
    splice @l, 0, @l - $n if @l > $n;
    return join "\n", @l;
}

sub _start_instance {
    my ($inst, $conf) = @_;
    my $sr = $inst->{servroot};
    if (_listening($inst->{port})) {
        return "port 127.0.0.1:$inst->{port} is already in use before starting nginx "
             . "(another test run or server?)";
    }
    open my $fh, '>', "$sr/conf/nginx.conf" or return "cannot write $sr/conf/nginx.conf: $!";
    print $fh $conf;
    close $fh;
    unlink "$sr/logs/nginx.pid";
    my ($rc, $out) = _run_cmd([$S{nginx}, '-p', "$sr/", '-c', "$sr/conf/nginx.conf",
                               '-e', "$sr/logs/error.log"], 10);
    if ($rc != 0) {
        return "nginx failed to start (status $rc):\n$out\n--- error.log tail:\n"
             . _tail($inst, 15);
    }
    my $deadline = time + 5;
    my $pid;
    while (time < $deadline) {
        $pid = _read_pidfile("$sr/logs/nginx.pid");
        last if $pid && _alive($pid) && _listening($inst->{port});
        sleep 0.02;
    }
    unless ($pid && _alive($pid) && _listening($inst->{port})) {
        my $msg = "nginx did not come up within 5 s (pid file "
                . ($pid ? "says $pid" : 'missing') . ', port '
                . (_listening($inst->{port}) ? 'listening' : 'not listening') . ")\n"
                . "--- error.log tail:\n" . _tail($inst, 15);
        if ($pid && _alive($pid)) {    # do not leave a half-started nginx behind
            kill 'QUIT', $pid;
            _wait_exit($pid, 3) or do { _kill_group($pid); _wait_exit($pid, 2) };
        }
        return $msg;
    }
    $inst->{pid} = $pid;
    $inst->{conf} = $conf;
    return undef;
}

sub _running { $_[0]{pid} && _alive($_[0]{pid}) }

# Stop with QUIT (graceful); TERM after 5 s, KILL of the group after 3 more.
# One assertion: graceful exit and no worker crash since the last block.
sub _stop_instance {
    my ($inst, $why) = @_;
    my $pid = delete $inst->{pid};
    delete $inst->{conf};
    return unless $pid;
    my @problems;
    if (_alive($pid)) {
        kill 'QUIT', $pid;
        unless (_wait_exit($pid, 5)) {
            push @problems, "nginx did not exit within 5 s of QUIT (workers: "
                . join(' ', _children($pid)) . "); sent TERM";
            kill 'TERM', $pid;
            unless (_wait_exit($pid, 3)) {
                _kill_group($pid);
                _wait_exit($pid, 2);
                push @problems, 'still running 3 s after TERM; sent KILL to the process group';
            }
        }
    }
    my ($lines, $end) = _log_lines($inst, $inst->{chk_pos} // 0);
    $inst->{chk_pos} = $end;
    push @problems, map { "worker crash: $_" } _crash_lines($lines);
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    ok(!@problems, "nginx instance $inst->{n} stopped cleanly ($why)")
        or diag(join "\n", @problems);
}

# ---------------------------------------------------------------------------
# Redis

sub _redis_connect {
    my $s = IO::Socket::UNIX->new(Type => SOCK_STREAM, Peer => $S{redis_sock})
        or die "redis: cannot connect to $S{redis_sock}: $!\n";
    $s->blocking(0);
    return $s;
}

sub _resp_encode {
    my @a = map { my $x = "$_"; utf8::encode($x) if utf8::is_utf8($x); $x } @_;
    return '*' . @a . "\r\n" . join('', map { '$' . length($_) . "\r\n$_\r\n" } @a);
}

# Read one RESP value from $r = {sock, buf, deadline}.
sub _resp_read {
    my ($r) = @_;
    my $line = _resp_line($r);
    my ($t, $v) = (substr($line, 0, 1), substr($line, 1));
    return $v if $t eq '+';
    die "redis error: $v\n" if $t eq '-';
    return 0 + $v if $t eq ':';
    if ($t eq '$') {
        return undef if $v < 0;
        _resp_fill($r, $v + 2);
        my $d = substr($r->{buf}, 0, $v);
        substr($r->{buf}, 0, $v + 2, '');
        return $d;
    }
    if ($t eq '*') {
        return undef if $v < 0;
        return [map { _resp_read($r) } 1 .. $v];
    }
    die "redis: unexpected reply line '$line'\n";
}

sub _resp_line {
    my ($r) = @_;
    my $i;
    while (($i = index($r->{buf}, "\r\n")) < 0) { _resp_more($r) }
    my $l = substr($r->{buf}, 0, $i);
    substr($r->{buf}, 0, $i + 2, '');
    return $l;
}

sub _resp_fill {
    my ($r, $n) = @_;
    _resp_more($r) while length($r->{buf}) < $n;
}

sub _resp_more {
    my ($r) = @_;
    my $n = _read_into($r->{sock}, \$r->{buf}, $r->{deadline});
    die "redis: timeout waiting for a reply\n" unless defined $n;
    die "redis: connection closed\n" if $n == 0;
}

sub redis_cmd {
    my @args = @_;
    _init();
    croak 'redis_cmd needs a command' unless @args;
    my $s = _redis_connect();
    my $r = { sock => $s, buf => '', deadline => time + 5 };
    my $err = _write_all($s, _resp_encode(@args), $r->{deadline});
    die "redis: write failed: $err\n" if $err;
    my $v = _resp_read($r);
    close $s;
    return $v;
}

sub _redis_stringify {
    my ($v) = @_;
    return '' unless defined $v;
    return join ',', map { _redis_stringify($_) } @$v if ref $v eq 'ARRAY';
    return "$v";
}

sub _redis_start {
    return undef if $Redis{running};
    unlink $S{redis_sock} if -S $S{redis_sock};
    my ($rc, $out) = _run_cmd([$S{redis_bin}, '--port', '0',
        '--unixsocket', $S{redis_sock}, '--unixsocketperm', '777',
        '--save', '', '--appendonly', 'no', '--daemonize', 'yes',
        '--pidfile', $Redis{pidfile}, '--logfile', $Redis{logfile},
        '--dir', $S{servroot}], 10);
    return "redis-server failed to start (status $rc): $out" if $rc != 0;
    my $deadline = time + 5;
    my $last = '';
    while (time < $deadline) {
        my $pong = eval { redis_cmd('PING') };
        if (defined $pong && $pong eq 'PONG') {
            $Redis{running} = 1;
            $Redis{pid} = _read_pidfile($Redis{pidfile});
            return undef;
        }
        $last = $@;
        sleep 0.05;
    }
    return "redis-server did not answer PING within 5 s: $last\n"
         . (_slurp($Redis{logfile}) // '');
}

sub _redis_stop {
    return unless $Redis{running};
    $Redis{running} = 0;
    my $pid = $Redis{pid} // _read_pidfile($Redis{pidfile});
    eval {
        my $s = _redis_connect();
        _write_all($s, _resp_encode('SHUTDOWN', 'NOSAVE'), time + 2);
        my $buf = '';
        my $dl = time + 5;
        while (1) { my $n = _read_into($s, \$buf, $dl); last if !defined $n || $n == 0 }
        close $s;
    };
    if ($pid && !_wait_exit($pid, 5)) {
        kill 'TERM', $pid;
        _wait_exit($pid, 2) or kill 'KILL', $pid;
    }
    unlink $S{redis_sock} if -S $S{redis_sock};
}

# ---------------------------------------------------------------------------
# Socket I/O helpers (non-blocking sockets, absolute deadlines)

# Returns undef on success or an error string.
sub _write_all {
    my ($sock, $data, $deadline) = @_;
    my $off = 0;
    my $sel = IO::Select->new($sock);
    while ($off < length $data) {
        my $n = syswrite($sock, $data, length($data) - $off, $off);
        if (defined $n) { $off += $n; next }
        return "write failed: $!" unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my $left = $deadline - time;
        return 'write timed out' if $left <= 0;
        $sel->can_write($left);
    }
    return undef;
}

# Read what is available into $$bufref. Returns the byte count, 0 on EOF
# (or a reset connection), undef on timeout.
sub _read_into {
    my ($sock, $bufref, $deadline) = @_;
    my $sel = IO::Select->new($sock);
    while (1) {
        my $n = sysread($sock, my $chunk, 65536);
        if (defined $n) {
            $$bufref .= $chunk if $n;
            return $n;
        }
        return 0 unless $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        my $left = $deadline - time;
        return undef if $left <= 0;
        $sel->can_read($left);
    }
}

sub _tcp_connect {
    my ($port, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout)
        or die "connect to 127.0.0.1:$port failed: " . ($@ || $!) . "\n";
    $s->blocking(0);
    binmode $s;
    return $s;
}

# ---------------------------------------------------------------------------
# HTTP

sub _dechunk {
    my ($data) = @_;
    my ($out, $pos) = ('', 0);
    while (1) {
        my $e = index($data, "\r\n", $pos);
        return ($out, 0) if $e < 0;
        my $line = substr($data, $pos, $e - $pos);
        return ($out, 0, "bad chunk size line '$line'") unless $line =~ /^\s*([0-9a-fA-F]+)/;
        my $n = hex $1;
        $pos = $e + 2;
        if ($n == 0) {
            while (1) {    # trailer section up to an empty line
                my $t = index($data, "\r\n", $pos);
                return ($out, 0) if $t < 0;
                return ($out, 1) if $t == $pos;
                $pos = $t + 2;
            }
        }
        return ($out, 0) if length($data) < $pos + $n + 2;
        $out .= substr($data, $pos, $n);
        $pos += $n + 2;
    }
}

# Parse a (possibly partial) raw response. complete => 1 when no more bytes
# are needed; $eof says the server closed the connection.
sub _parse_response {
    my ($raw, $no_body, $eof) = @_;
    my %r = (raw => $raw, status => undef, headers => {}, raw_headers => '',
             body => '', complete => 0);
    my $i = index($raw, "\r\n\r\n");
    if ($i < 0) {
        $r{error} = 'connection closed before the end of the response header' if $eof;
        return \%r;
    }
    my $head = substr($raw, 0, $i);
    my $rest = substr($raw, $i + 4);
    $r{raw_headers} = $head;
    my ($sl, @hl) = split /\r\n/, $head;
    ($r{status}) = $sl =~ m{^HTTP/\d\.\d\s+(\d{3})};
    for (@hl) {
        next unless /^([^:\s]+)\s*:\s*(.*?)\s*$/;
        push @{$r{headers}{lc $1}}, $2;
    }
    my $st = $r{status} // 0;
    if ($no_body || $st == 101 || $st == 204 || $st == 304 || ($st >= 100 && $st < 200)) {
        $r{complete} = 1;
        return \%r;
    }
    my $te = join ',', @{$r{headers}{'transfer-encoding'} || []};
    my $cl = $r{headers}{'content-length'};
    if ($te =~ /chunked/i) {
        my ($body, $done, $err) = _dechunk($rest);
        $r{body} = $body;
        $r{complete} = $done;
        $r{error} = $err if $err;
        $r{error} //= 'connection closed in the middle of a chunked body' if $eof && !$done;
        $r{complete} = 1 if $err;
    }
    elsif ($cl) {
        my $len = $cl->[0];
        $r{body} = substr($rest, 0, $len);
        $r{complete} = length($rest) >= $len;
        $r{error} = "connection closed after " . length($rest) . " of $len body bytes"
            if $eof && !$r{complete};
    }
    else {
        $r{body} = $rest;
        $r{complete} = $eof ? 1 : 0;
    }
    $r{complete} = 1 if $eof;
    return \%r;
}

sub _http_exchange {
    my ($port, $pieces, $timeout, $no_body) = @_;
    my $deadline = time + $timeout;
    my $sock = eval { _tcp_connect($port, $timeout) };
    return { error => $@ =~ s/\n\z//r, headers => {}, body => '', raw => '' } unless $sock;
    for my $i (0 .. $#$pieces) {
        sleep 0.05 if $i;
        my $err = _write_all($sock, $pieces->[$i], $deadline);
        if ($err) { close $sock; return { error => $err, headers => {}, body => '', raw => '' } }
    }
    my $raw = '';
    my $res;
    while (1) {
        $res = _parse_response($raw, $no_body, 0);
        last if $res->{complete};
        my $n = _read_into($sock, \$raw, $deadline);
        if (!defined $n) {
            $res = _parse_response($raw, $no_body, 0);
            $res->{error} = "timeout after $timeout s waiting for the response ("
                          . length($raw) . ' bytes received)';
            last;
        }
        if ($n == 0) { $res = _parse_response($raw, $no_body, 1); last }
    }
    close $sock;
    return $res;
}

sub _header_value {
    my ($res, $name) = @_;
    my $v = $res->{headers}{lc $name};
    return $v ? join(', ', @$v) : undef;
}

sub _build_request {
    my ($name, $req, $more) = @_;
    my ($first, $body) = split /\n/, $req, 2;
    $body //= '';
    $first =~ s/\r$//;
    die "$name - --- request: first line must be 'METHOD URI [HTTP/1.x]', got '$first'\n"
        unless $first =~ /^\s*(\S+)\s+(\S+)(?:\s+(\S+))?\s*$/;
    my ($meth, $uri, $ver) = ($1, $2, $3 // 'HTTP/1.1');
    my @h;
    for my $l (split /\n/, $more // '') {
        $l =~ s/\r$//;
        next unless $l =~ /\S/;
        push @h, $l;
    }
    my $has = sub { my $n = shift; grep { /^\s*\Q$n\E\s*:/i } @h };
    unshift @h, 'Connection: close' unless $has->('Connection');
    unshift @h, 'Host: localhost' unless $has->('Host');
    if ((length $body || $meth =~ /^(?:POST|PUT|PATCH)$/)
        && !$has->('Content-Length') && !$has->('Transfer-Encoding')) {
        push @h, 'Content-Length: ' . length $body;
    }
    return ("$meth $uri $ver\r\n" . join('', map { "$_\r\n" } @h) . "\r\n" . $body, $meth);
}

# ---------------------------------------------------------------------------
# WebSocket frames (pure functions)

sub _bytes {
    my ($s) = @_;
    $s //= '';
    if (utf8::is_utf8($s)) { utf8::encode($s) unless utf8::downgrade($s, 1) }
    return $s;
}

sub _xor_mask {
    my ($data, $key) = @_;
    return '' unless length $data;
    my $m = $key x (int(length($data) / 4) + 1);
    return $data ^ substr($m, 0, length $data);
}

=head2 ws_encode_frame(%args)

Returns the bytes of one frame. Arguments: C<opcode> (required), C<payload>
(bytes, default empty), C<fin> (default 1), C<rsv> (0-7, default 0),
C<mask> (default 1), C<mask_key> (4 bytes, default random).

=cut

sub ws_encode_frame {
    my (%a) = @_;
    my $payload = _bytes($a{payload});
    my $b0 = (($a{fin} // 1) ? 0x80 : 0) | ((($a{rsv} // 0) & 7) << 4) | ($a{opcode} & 0x0f);
    my $mbit = ($a{mask} // 1) ? 0x80 : 0;
    my $len = length $payload;
    my $hdr = chr($b0);
    if    ($len < 126)   { $hdr .= chr($mbit | $len) }
    elsif ($len < 65536) { $hdr .= chr($mbit | 126) . pack('n', $len) }
    else                 { $hdr .= chr($mbit | 127) . pack('Q>', $len) }
    if ($mbit) {
        my $key = $a{mask_key} // pack('N', int rand 4294967296);
        $hdr .= $key;
        $payload = _xor_mask($payload, $key);
    }
    return $hdr . $payload;
}

=head2 ws_decode_frame(\$buffer)

Removes one complete frame from the start of C<$buffer> and returns
C<{fin, rsv, opcode, masked, mask_key, len_code, length, payload}> (payload
unmasked), or undef when the buffer does not hold a complete frame yet.

=cut

sub ws_decode_frame {
    my ($bufref) = @_;
    my $have = length $$bufref;
    return undef if $have < 2;
    my ($b0, $b1) = unpack 'CC', $$bufref;
    my $code = $b1 & 0x7f;
    my ($len, $off) = ($code, 2);
    if ($code == 126) {
        return undef if $have < 4;
        ($len, $off) = (unpack('n', substr($$bufref, 2, 2)), 4);
    }
    elsif ($code == 127) {
        return undef if $have < 10;
        ($len, $off) = (unpack('Q>', substr($$bufref, 2, 8)), 10);
    }
    my $masked = ($b1 & 0x80) ? 1 : 0;
    my $key;
    if ($masked) {
        return undef if $have < $off + 4;
        $key = substr($$bufref, $off, 4);
        $off += 4;
    }
    return undef if $have < $off + $len;
    my $payload = substr($$bufref, $off, $len);
    $payload = _xor_mask($payload, $key) if $masked;
    substr($$bufref, 0, $off + $len, '');
    return { fin => ($b0 >> 7) & 1, rsv => ($b0 >> 4) & 7, opcode => $b0 & 0x0f,
             masked => $masked, mask_key => $key, len_code => $code,
             length => $len, payload => $payload };
}

=head2 ws_server_frame_error($frame)

Returns undef for a frame a server may send, else the reason (masked, RSV
bits, reserved opcode, bad control frame, non-minimal length, 1-byte close
payload).

=cut

sub ws_server_frame_error {
    my ($f) = @_;
    return 'server frame is masked' if $f->{masked};
    return "RSV bits set ($f->{rsv})" if $f->{rsv};
    my $op = $f->{opcode};
    return sprintf('reserved opcode 0x%x', $op) unless $op <= 2 || ($op >= 8 && $op <= 10);
    if ($op >= 8) {
        return 'fragmented control frame' unless $f->{fin};
        return "control frame payload of $f->{length} bytes (> 125)" if $f->{length} > 125;
        return 'close frame with a 1-byte payload' if $op == 8 && $f->{length} == 1;
    }
    return "non-minimal length encoding ($f->{length} bytes in the 16-bit form)"
        if $f->{len_code} == 126 && $f->{length} < 126;
    return "non-minimal length encoding ($f->{length} bytes in the 64-bit form)"
        if $f->{len_code} == 127 && $f->{length} < 65536;
    return undef;
}

# ---------------------------------------------------------------------------
# WebSocket client

sub _ws_new_client {
    my ($name, $sock, %o) = @_;
    return { name => $name, sock => $sock, buf => $o{buf} // '', pending => [],
             autopong => 1, eof => 0, last => undef, frag => undef,
             port => $o{port}, lport => $o{lport}, pid => $o{pid}, seen => [] };
}

=head2 ws_client_from_socket($name, $socket)

Wraps an already connected socket (no handshake) as a ws client, for
C<ws_run_script>'s C<clients> option.

=cut

sub ws_client_from_socket {
    my ($name, $sock) = @_;
    $sock->blocking(0);
    binmode $sock;
    return _ws_new_client($name, $sock);
}

sub _ws_write {
    my ($c, $bytes, $deadline) = @_;
    my $err = _write_all($c->{sock}, $bytes, $deadline);
    die "client $c->{name}: $err\n" if $err;
}

sub _show {
    my ($s, $max) = @_;
    $max //= 400;
    return '(undef)' unless defined $s;
    my $t = length($s) > $max ? substr($s, 0, $max) . '...(' . length($s) . ' bytes)' : $s;
    $t =~ s/([^\x20-\x7e])/sprintf '\\x%02x', ord $1/ge;
    return $t;
}

sub _ev_str {
    my ($ev) = @_;
    my $t = $ev->{type};
    return "$t frame: " . _show($ev->{payload}) if $t =~ /^(?:text|binary|ping|pong)$/;
    return 'close frame, code ' . ($ev->{code} // 'none (1005)')
         . (length($ev->{reason} // '') ? ", reason '$ev->{reason}'" : '') if $t eq 'close';
    return "protocol error: $ev->{error}" if $t eq 'error';
    return 'EOF (server closed the TCP connection)'
         . ($ev->{partial} ? " with $ev->{partial} bytes of an incomplete frame" : '') if $t eq 'eof';
    return 'timeout' if $t eq 'timeout';
    return $t;
}

# The next event from the server: text / binary (a complete message), ping,
# pong, close, eof, timeout, or error (protocol violation by the server).
sub _ws_next_event {
    my ($c, $deadline) = @_;
    return shift @{$c->{pending}} if @{$c->{pending}};
    while (1) {
        if (my $f = ws_decode_frame(\$c->{buf})) {
            if (my $err = ws_server_frame_error($f)) {
                return { type => 'error', error => $err };
            }
            my $op = $f->{opcode};
            if ($op == 9) {
                # a failed pong write (server already gone) shows up as EOF later
                eval { _ws_write($c, ws_encode_frame(opcode => 10, payload => $f->{payload}),
                                 $deadline) } if $c->{autopong} && !$c->{eof};
                return { type => 'ping', payload => $f->{payload} };
            }
            return { type => 'pong', payload => $f->{payload} } if $op == 10;
            if ($op == 8) {
                my ($code, $reason) = (undef, '');
                ($code, $reason) = (unpack('n', $f->{payload}), substr($f->{payload}, 2))
                    if $f->{length} >= 2;
                $c->{got_close} = 1;
                return { type => 'close', code => $code, reason => $reason };
            }
            my $msg;
            if ($op == 0) {
                return { type => 'error', error => 'continuation frame without a started message' }
                    unless $c->{frag};
                $c->{frag}{payload} .= $f->{payload};
                $c->{frag}{n}++;
                next unless $f->{fin};
                $msg = delete $c->{frag};
            }
            else {
                return { type => 'error', error => 'new data frame inside a fragmented message' }
                    if $c->{frag};
                $msg = { opcode => $op, payload => $f->{payload}, n => 1 };
                unless ($f->{fin}) { $c->{frag} = $msg; next }
            }
            my $type = $msg->{opcode} == 1 ? 'text' : 'binary';
            if ($type eq 'text') {
                my $copy = $msg->{payload};
                return { type => 'error', error => 'text message is not valid UTF-8: '
                                                   . _show($msg->{payload}) }
                    unless utf8::decode($copy);
            }
            return { type => $type, payload => $msg->{payload}, fragments => $msg->{n} };
        }
        return { type => 'eof', partial => length $c->{buf} } if $c->{eof};
        my $n = _read_into($c->{sock}, \$c->{buf}, $deadline);
        return { type => 'timeout' } unless defined $n;
        $c->{eof} = 1 if $n == 0;
    }
}

sub _ws_handshake {
    my ($name, $port, $path, $timeout) = @_;
    my $deadline = time + $timeout;
    my $sock = _tcp_connect($port, $timeout);
    my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    my $c = _ws_new_client($name, $sock, port => $port, lport => $sock->sockport);
    _ws_write($c, "GET $path HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                . "Connection: Upgrade\r\nSec-WebSocket-Key: $key\r\n"
                . "Sec-WebSocket-Version: 13\r\n\r\n", $deadline);
    my $raw = '';
    my $i;
    while (($i = index($raw, "\r\n\r\n")) < 0) {
        my $n = _read_into($sock, \$raw, $deadline);
        die "handshake: timeout waiting for the response header; got: " . _show($raw) . "\n"
            unless defined $n;
        die "handshake: connection closed; got: " . _show($raw) . "\n" if $n == 0;
    }
    my $res = _parse_response(substr($raw, 0, $i + 4), 1, 0);
    $c->{buf} = substr($raw, $i + 4);
    my $st = $res->{status} // '(none)';
    if ($st ne '101') {    # show the body too: it usually says why
        my $dl = time + 1;
        my $full;
        while (1) {
            $full = _parse_response($raw, 0, 0);
            last if $full->{complete};
            my $n = _read_into($sock, \$raw, $dl);
            if (!$n) { $full = _parse_response($raw, 0, 1); last }
        }
        close $sock;
        die "handshake: expected status 101, got $st\n$res->{raw_headers}\n\n"
          . _show($full->{body}, 1000) . "\n";
    }
    my @bad;
    my $accept = encode_base64(sha1($key . $WS_GUID), '');
    my $got = _header_value($res, 'Sec-WebSocket-Accept') // '(absent)';
    push @bad, "Sec-WebSocket-Accept is '$got', expected '$accept'" if $got ne $accept;
    push @bad, 'no "Upgrade: websocket"'
        unless (_header_value($res, 'Upgrade') // '') =~ /^\s*websocket\s*$/i;
    push @bad, 'no "Connection: Upgrade"'
        unless (_header_value($res, 'Connection') // '') =~ /\bupgrade\b/i;
    die 'handshake: ' . join('; ', @bad) . "\n$res->{raw_headers}\n" if @bad;
    return $c;
}

# pid of the nginx worker owning the server side of the client's connection
sub _owner_pid {
    my ($c, $timeout) = @_;
    my $deadline = time + $timeout;
    my $out = '';
    while (1) {
        my $rc;
        ($rc, $out) = _run_cmd(['ss', '-tnpH', 'state', 'established'], 5);
        for my $l (split /\n/, $out) {
            my @f = split ' ', $l;
            next unless @f >= 5;
            next unless $f[2] eq "127.0.0.1:$c->{port}" && $f[3] eq "127.0.0.1:$c->{lport}";
            return $1 if $l =~ /pid=(\d+)/;
        }
        last if time > $deadline;
        sleep 0.05;
    }
    die "cannot find the worker owning 127.0.0.1:$c->{port} <- 127.0.0.1:$c->{lport} in ss output\n";
}

# Close politely: close frame 1000, wait (bounded) for the server's close/EOF.
sub _ws_close_quietly {
    my ($c, $secs) = @_;
    eval {
        my $dl = time + $secs;
        _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', 1000)), $dl)
            unless $c->{eof};
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            last if $ev->{type} =~ /^(?:close|eof|timeout|error)$/;
        }
    };
    close $c->{sock};
}

sub _client {
    my ($ctx, $name) = @_;
    die "missing client name\n" unless defined $name && length $name;
    my $c = $ctx->{clients}{$name};
    die "no open client '$name'\n" unless $c;
    return $c;
}

sub _deadline { time + $_[0]{timeout} }

# Wait for a text message; pings / pongs are skipped.
sub _ws_recv_text {
    my ($ctx, $c) = @_;
    my $dl = _deadline($ctx);
    my @skipped;
    while (1) {
        my $ev = _ws_next_event($c, $dl);
        if ($ev->{type} eq 'ping' || $ev->{type} eq 'pong') { push @skipped, _ev_str($ev); next }
        if ($ev->{type} eq 'text') {
            $c->{last} = $ev->{payload};
            return $ev->{payload};
        }
        my $why = $ev->{type} eq 'timeout'
            ? "no text message within $ctx->{timeout} s" : 'expected a text message, got ' . _ev_str($ev);
        $why .= "\n(skipped: " . join('; ', @skipped) . ')' if @skipped;
        die "$why\n";
    }
}

# "NAME EXPR" of recv_json / skip_json: the client, EXPR compiled, EXPR.
sub _json_args {
    my ($ctx, $args, $cmd) = @_;
    my ($n, $expr) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: $cmd NAME EXPR\n";
    my $c = _client($ctx, $n);
    my $code = eval "package main; no warnings 'uninitialized'; "
                  . "sub { my \$j = shift; local \$_ = \$j; $expr }"
        or die "$cmd: expression does not compile: $@";
    return ($c, $code, $expr);
}

# Whether the text message MSG is JSON and CODE holds for it; dies otherwise.
sub _json_holds {
    my ($code, $msg) = @_;
    my $j = eval { JSON::PP->new->utf8->allow_nonref->decode($msg) };
    die 'received ' . _show($msg, 2000) . "\nwhich is not JSON: $@" unless defined $j || !$@;
    my $ok = eval { $code->($j) };
    die 'received ' . _show($msg, 2000) . "\nexpression died: $@" if $@;
    return $ok;
}

my %WS_CMD;

%WS_CMD = (
    open => sub {
        my ($ctx, $args) = @_;
        my @t = split ' ', $args;
        my $name = shift @t;
        die "usage: open NAME [PATH] [other B|same B] [host2]\n" unless defined $name;
        my ($path, $rel, $relname, $host2) = ('/signal.ashx');
        while (@t) {
            my $x = shift @t;
            if ($x eq 'other' || $x eq 'same') {
                $rel = $x;
                $relname = shift @t // die "open: '$x' needs a client name\n";
            }
            elsif ($x eq 'host2') { $host2 = 1 }
            elsif ($x =~ m{^/})   { $path = $x }
            else                  { die "open: unexpected argument '$x'\n" }
        }
        my $inst = $Inst[$host2 ? 2 : 1];
        die "open: instance " . ($host2 ? 2 : 1) . " is not running (--- hosts 2?)\n"
            unless _running($inst);
        my $other_pid;
        if ($rel) {
            $other_pid = _client($ctx, $relname)->{pid}
                // die "open: client $relname has no known worker pid\n";
        }
        if (my $old = delete $ctx->{clients}{$name}) { close $old->{sock} }
        my @seen;
        for my $try (1 .. ($rel ? 40 : 1)) {
            my $c = _ws_handshake($name, $inst->{port}, $path, $ctx->{timeout});
            $c->{pid} = _owner_pid($c, $ctx->{timeout});
            if (!$rel || ($rel eq 'other' ? $c->{pid} != $other_pid : $c->{pid} == $other_pid)) {
                $ctx->{clients}{$name} = $c;
                return "worker pid $c->{pid}, local port $c->{lport}";
            }
            push @seen, $c->{pid};
            _ws_close_quietly($c, 1);
        }
        die "open: no connection on a worker $rel than/as ${relname}'s (pid $other_pid) "
          . "in 40 tries (got pids @seen)\n";
        return;
    },
    send => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send NAME TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => 1, payload => $text // ''), _deadline($ctx));
        return;
    },
    send_frames => sub {
        my ($ctx, $args) = @_;
        my ($n, $op, $fin, $text) = $args =~ /^(\S+)\s+(?:0x)?([0-9a-fA-F]+)\s+([01])(?: (.*))?$/s
            or die "usage: send_frames NAME OPCODE-HEX FIN TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => hex $op, fin => $fin, payload => $text // ''),
                  _deadline($ctx));
        return;
    },
    send_unmasked => sub {
        my ($ctx, $args) = @_;
        my ($n, $text) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: send_unmasked NAME TEXT\n";
        my $c = _client($ctx, $n);
        _ws_write($c, ws_encode_frame(opcode => 1, mask => 0, payload => $text // ''),
                  _deadline($ctx));
        return;
    },
    send_raw => sub {
        my ($ctx, $args) = @_;
        my ($n, $hex) = $args =~ /^(\S+)\s+(.*)$/s or die "usage: send_raw NAME HEX\n";
        $hex =~ s/\s+//g;
        die "send_raw: not an even-length hex string\n" unless $hex =~ /^(?:[0-9a-fA-F]{2})+$/;
        _ws_write(_client($ctx, $n), pack('H*', $hex), _deadline($ctx));
        return;
    },
    send_big => sub {
        my ($ctx, $args) = @_;
        my ($n, $size, $op) = $args =~ /^(\S+)\s+(\d+)(?:\s+(?:0x)?([0-9a-fA-F]+))?\s*$/
            or die "usage: send_big NAME BYTES [OPCODE-HEX]\n";
        my $c = _client($ctx, $n);
        my ($pre, $post) = ('{"type":"ping","pad":"', '"}');
        my $p = $size >= length($pre) + length($post)
            ? $pre . ('x' x ($size - length($pre) - length($post))) . $post
            : 'x' x $size;
        _ws_write($c, ws_encode_frame(opcode => defined $op ? hex $op : 1, payload => $p),
                  _deadline($ctx));
        return "sent $size bytes";
        return;
    },
    send_close => sub {
        my ($ctx, $args) = @_;
        my ($n, $code, $reason) = $args =~ /^(\S+)\s+(\d+)(?: (.*))?$/s
            or die "usage: send_close NAME CODE [REASON]\n";
        _ws_write(_client($ctx, $n),
                  ws_encode_frame(opcode => 8, payload => pack('n', $code) . ($reason // '')),
                  _deadline($ctx));
        return;
    },
    ping => sub {
        my ($ctx, $args) = @_;
        my ($n, $p) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: ping NAME [PAYLOAD]\n";
        _ws_write(_client($ctx, $n), ws_encode_frame(opcode => 9, payload => $p // ''),
                  _deadline($ctx));
        return;
    },
    expect_pong => sub {
        my ($ctx, $args) = @_;
        my ($n, $p) = $args =~ /^(\S+)(?: (.*))?$/s or die "usage: expect_pong NAME [PAYLOAD]\n";
        $p //= '';
        my $c = _client($ctx, $n);
        my $dl = _deadline($ctx);
        my @keep;
        my $res = eval {
            while (1) {
                my $ev = _ws_next_event($c, $dl);
                if ($ev->{type} eq 'text' || $ev->{type} eq 'binary') { push @keep, $ev; next }
                next if $ev->{type} eq 'ping';
                die 'expected a pong, got ' . _ev_str($ev) . "\n" unless $ev->{type} eq 'pong';
                die 'pong payload is ' . _show($ev->{payload}) . ', expected ' . _show($p) . "\n"
                    unless $ev->{payload} eq $p;
                last;
            }
            1;
        };
        unshift @{$c->{pending}}, @keep;
        die $@ unless $res;
        return;
    },
    recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $re) = $args =~ /^(\S+)\s+(.*?)\s*$/s or die "usage: recv NAME REGEX\n";
        my $c = _client($ctx, $n);
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $msg = _ws_recv_text($ctx, $c);
        die 'received ' . _show($msg, 2000) . "\ndoes not match qr/$re/\n" unless $msg =~ $qr;
        return 'received ' . _show($msg);
        return;
    },
    recv_json => sub {
        my ($ctx, $args) = @_;
        my ($c, $code, $expr) = _json_args($ctx, $args, 'recv_json');
        my $msg = _ws_recv_text($ctx, $c);
        die 'received ' . _show($msg, 2000) . "\nexpression is false: $expr\n"
            unless _json_holds($code, $msg);
        return 'received ' . _show($msg);
    },
    skip_json => sub {
        my ($ctx, $args) = @_;
        my ($c, $code, $expr) = _json_args($ctx, $args, 'skip_json');
        my $n = 0;
        while (1) {
            my $msg = _ws_recv_text($ctx, $c);
            if (!_json_holds($code, $msg)) {
                unshift @{$c->{pending}}, { type => 'text', payload => $msg };
                return "skipped $n";
            }
            $n++;
        }
    },
    capture => sub {
        my ($ctx, $args) = @_;
        my ($n, $var, $re) = $args =~ /^(\S+)\s+(\w+)\s+(.*?)\s*$/s
            or die "usage: capture NAME VAR REGEX\n";
        my $c = _client($ctx, $n);
        die "capture: client $n has received no message yet\n" unless defined $c->{last};
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        die 'last message ' . _show($c->{last}, 2000) . " does not match qr/$re/\n"
            unless $c->{last} =~ $qr;
        die "capture: qr/$re/ matched but group 1 is undefined\n" unless defined $1;
        $ctx->{vars}{$var} = $1;
        return "$var = $1";
        return;
    },
    no_recv => sub {
        my ($ctx, $args) = @_;
        my ($n, $ms) = $args =~ /^(\S+)\s+(\d+)\s*$/ or die "usage: no_recv NAME MS\n";
        my $c = _client($ctx, $n);
        my $dl = time + $ms / 1000;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            return if $ev->{type} eq 'timeout';
            next if $ev->{type} eq 'ping' || $ev->{type} eq 'pong';
            unshift @{$c->{pending}}, $ev if $ev->{type} =~ /^(?:close|eof)$/;
            die 'received ' . _ev_str($ev) . "\n";
        }
        return;
    },
    expect_close => sub {
        my ($ctx, $args) = @_;
        my ($n, $want) = $args =~ /^(\S+)(?:\s+(\d+))?\s*$/ or die "usage: expect_close NAME [CODE]\n";
        my $c = _client($ctx, $n);
        my $dl = _deadline($ctx);
        my @seen;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            if ($ev->{type} =~ /^(?:text|binary|ping|pong)$/) { push @seen, _ev_str($ev); next }
            my $before = @seen ? "\n(before it: " . join('; ', @seen) . ')' : '';
            die 'expected a close frame, got ' . _ev_str($ev) . "$before\n" unless $ev->{type} eq 'close';
            my $code = $ev->{code} // 1005;
            die 'got ' . _ev_str($ev) . ", expected code $want$before\n"
                if defined $want && $code != $want;
            eval { _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', $code == 1005 ? 1000 : $code)), $dl) };
            while (1) {
                my $e2 = _ws_next_event($c, $dl);
                last if $e2->{type} eq 'eof';
                die "close frame $code received, but the server did not close the TCP connection "
                  . "within $ctx->{timeout} s\n" if $e2->{type} eq 'timeout';
                die 'frame after the close frame: ' . _ev_str($e2) . "\n";
            }
            return "close code $code" . (length $ev->{reason} ? " '$ev->{reason}'" : '');
        }
        return;
    },
    expect_eof => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: expect_eof NAME\n";
        my $c = _client($ctx, $n);
        my $dl = _deadline($ctx);
        my @seen;
        while (1) {
            my $ev = _ws_next_event($c, $dl);
            return @seen ? 'ignored: ' . join('; ', @seen) : undef if $ev->{type} eq 'eof';
            die "the server did not close the TCP connection within $ctx->{timeout} s"
              . (@seen ? ' (got: ' . join('; ', @seen) . ')' : '') . "\n" if $ev->{type} eq 'timeout';
            push @seen, _ev_str($ev);
        }
        return;
    },
    expect_ping => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: expect_ping NAME\n";
        my $ev = _ws_next_event(_client($ctx, $n), _deadline($ctx));
        die 'expected a ping, got ' . _ev_str($ev) . "\n" unless $ev->{type} eq 'ping';
        return _ev_str($ev);
        return;
    },
    autopong => sub {
        my ($ctx, $args) = @_;
        my ($n, $v) = $args =~ /^(\S+)\s+(on|off)\s*$/ or die "usage: autopong NAME on|off\n";
        _client($ctx, $n)->{autopong} = $v eq 'on' ? 1 : 0;
        return;
    },
    close => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: close NAME\n";
        my $c = _client($ctx, $n);
        delete $ctx->{clients}{$n};
        my $dl = _deadline($ctx);
        my $res = eval {
            _ws_write($c, ws_encode_frame(opcode => 8, payload => pack('n', 1000)), $dl)
                unless $c->{eof};
            while (1) {
                my $ev = _ws_next_event($c, $dl);
                next if $ev->{type} =~ /^(?:text|binary|ping|pong)$/;
                die "no close frame or EOF from the server within $ctx->{timeout} s\n"
                    if $ev->{type} eq 'timeout';
                die _ev_str($ev) . "\n" if $ev->{type} eq 'error';
                last;
            }
            1;
        };
        close $c->{sock};
        die $@ unless $res;
        return;
    },
    drop => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: drop NAME\n";
        my $c = _client($ctx, $n);
        delete $ctx->{clients}{$n};
        close $c->{sock};
        return;
    },
    sleep => sub {
        my ($ctx, $args) = @_;
        my ($ms) = $args =~ /^(\d+)\s*$/ or die "usage: sleep MS\n";
        sleep $ms / 1000;
        return;
    },
    redis_restart => sub {
        die "redis_restart: the harness's redis-server is not running\n" unless $Redis{running};
        _redis_stop();
        my $err = _redis_start();
        die "$err\n" if $err;
        return;
    },
    redis => sub {
        my ($ctx, $args) = @_;
        my ($re, @cmd) = split ' ', $args;
        die "usage: redis REGEX COMMAND [ARGS...]\n" unless @cmd;
        my $qr = eval { qr/$re/ } or die "bad regex: $@";
        my $v = _redis_stringify(redis_cmd(@cmd));
        die 'reply ' . _show($v, 2000) . " does not match qr/$re/\n" unless $v =~ $qr;
        return 'reply ' . _show($v);
        return;
    },
    shell => sub {
        my ($ctx, $args) = @_;
        die "usage: shell COMMAND\n" unless $args =~ /\S/;
        my ($rc, $out) = _run_cmd(['/bin/sh', '-c', $args], $ctx->{timeout});
        die "timed out after $ctx->{timeout} s\n$out" if $rc == -1;
        die 'exit status ' . ($rc >> 8) . ($rc & 127 ? ' (signal ' . ($rc & 127) . ')' : '')
          . "\n$out" if $rc != 0;
        return length $out ? 'output: ' . _show($out) : undef;
        return;
    },
    reload => sub {
        my ($ctx) = @_;
        my $inst = $Inst[1];
        die "reload: nginx is not running\n" unless _running($inst);
        my $pid = $inst->{pid};
        my %old = map { $_ => 1 } _children($pid);
        kill 'HUP', $pid or die "reload: kill HUP $pid failed: $!\n";
        my $dl = time + ($ctx->{timeout} > 5 ? $ctx->{timeout} : 5);
        my @new;
        while (time < $dl) {
            @new = grep { !$old{$_} } _children($pid);
            return "new workers @new" if @new >= $ctx->{workers};
            sleep 0.05;
        }
        die "reload: only " . @new . " new worker(s) (@new) after the HUP, want $ctx->{workers}\n";
        return;
    },
    worker_alive => sub {
        my ($ctx, $args) = @_;
        my ($n) = $args =~ /^(\S+)\s*$/ or die "usage: worker_alive NAME\n";
        my $c = _client($ctx, $n);
        die "client $n has no recorded worker pid\n" unless $c->{pid};
        die "worker $c->{pid} of client $n is gone\n" unless _alive($c->{pid});
        return "worker $c->{pid} alive";
        return;
    },
);

=head2 ws_run_script($test_name, $script, %opts)

Runs a C<--- ws> script, one assertion per command line. Options:
C<timeout> (seconds, default 5), C<workers> (for C<reload>, default 2),
C<clients> (hash of pre-made clients). Returns the context hash; its
C<clients> are still open.

=cut

sub ws_run_script {
    my ($tname, $script, %o) = @_;
    my $ctx = { timeout => $o{timeout} // 5, workers => $o{workers} // 2,
                clients => $o{clients} // {}, vars => {} };
    my $failed_at;
    my $lineno = 0;
    for my $line (split /\n/, $script) {
        $lineno++;
        $line =~ s/\r$//;
        next if $line =~ /^\s*(?:#|$)/;
        $line =~ s/^\s+//;
        my $label = "$tname - ws line $lineno: " . _show($line, 120);
        if (defined $failed_at) {
            Test::Builder->new->skip("after the failure at ws line $failed_at", $label);
            next;
        }
        my $detail;
        my $ok = eval {
            my $l = $line;
            $l =~ s/\$\{(\w+)\}/
                defined $ctx->{vars}{$1} ? $ctx->{vars}{$1} : die "undefined variable \${$1}\n"/ge;
            my ($cmd, $args) = $l =~ /^(\S+)(?:[ \t](.*))?$/s;
            my $h = $WS_CMD{$cmd} or die "unknown ws command '$cmd'\n";
            $detail = $h->($ctx, $args // '');
            1;
        };
        local $Test::Builder::Level = $Test::Builder::Level + 1;
        if ($ok) {
            pass($label);
            Test::More::note($detail) if defined $detail && !ref $detail && length $detail
                                          && $ENV{TEST_VERBOSE};
        }
        else {
            fail($label);
            diag($@ =~ s/\n\z//r);
            $failed_at = $lineno;
        }
    }
    return $ctx;
}

# ---------------------------------------------------------------------------
# Running blocks

sub _values {
    my ($block, $sec) = @_;
    return () unless exists $block->{$sec};
    my @v = @{$block->{$sec}};
    return map { ref $_ eq 'ARRAY' ? @$_ : $_ } @v;
}

sub _one {
    my ($block, $sec) = @_;
    return undef unless exists $block->{$sec};
    return $block->{$sec}[0];
}

sub _patterns {
    my ($block, $sec) = @_;
    return map {
        ref $_ ? $_ : grep { length } map { s/\r$//r } split /\n/, $_
    } grep { defined } _values($block, $sec);
}

sub _num_section {
    my ($block, $sec, $default, $re) = @_;
    my $v = _one($block, $sec);
    return $default unless defined $v;
    $v =~ s/^\s+|\s+$//g;
    die "--- $sec: invalid value '$v'\n" unless $v =~ $re;
    return $v;
}

sub run_tests {
    # Tell Test::Base a plan is handled (its END would otherwise run
    # run_compare()); done_testing() provides the plan.
    Test::Builder->new->plan();
    _init();
    &Test::Base::filters_delay(1);    # run each block's filters inside its own eval
    my @blocks = Test::Base::blocks();
    my $last_name;
    for my $block (@blocks) {
        my $name = $block->name // ('block ' . $block->seq_num);
        my $ok = eval {
            $block->run_filters unless $block->is_filtered;
            _run_block($block, $name);
            1;
        };
        unless ($ok) {
            fail("$name - harness");
            diag($@ =~ s/\n\z//r);
        }
        $last_name = $name;
    }
    for my $inst (@Inst[1, 2]) {
        _stop_instance($inst, "end of file, after $last_name") if $inst->{pid};
    }
    _redis_stop();
}

sub _run_block {
    my ($block, $name) = @_;

    my @unknown = grep { !$KNOWN_SECTIONS{$_} } @{$block->{_section_order}[0] || []};
    die "unknown section(s): " . join(', ', map { "--- $_" } @unknown) . "\n" if @unknown;

    my $timeout = _num_section($block, 'timeout', 5, qr/^\d+(?:\.\d+)?$/);
    my $wait    = _num_section($block, 'wait', 0, qr/^\d+(?:\.\d+)?$/);
    my %b = (
        workers => _num_section($block, 'workers', 2, qr/^[1-9]\d*$/),
        hosts   => _num_section($block, 'hosts', 1, qr/^[12]$/),
        map { $_ => _subst(_one($block, $_) // '') } qw(main_config http_config config),
    );
    for (qw(main_config http_config config)) { $b{$_} =~ s/\n+\z// }

    # Redis: for the modules, or for blocks asking for it.
    if ($S{want_redis} || exists $block->{redis}) {
        $S{want_redis} = 1;
        my $err = _redis_start();
        die "$err\n" if $err;
    }

    # nginx: stop what is not wanted or has another configuration, mark the
    # log windows, start what is missing.
    my (@start, %conf);
    for my $n (1, 2) {
        my $inst = $Inst[$n];
        if ($n > $b{hosts}) {
            _stop_instance($inst, "not needed by $name") if $inst->{pid};
            next;
        }
        _setup_servroot($inst) unless $inst->{setup};
        $conf{$n} = _gen_conf($inst, \%b);
        if ($inst->{pid} && !_alive($inst->{pid})) {
            _stop_instance($inst, "master process died before $name");
        }
        if ($inst->{pid} && $inst->{conf} eq $conf{$n}) { next }
        _stop_instance($inst, "configuration change for $name") if $inst->{pid};
        push @start, $n;
    }
    my @used = grep { $_ <= $b{hosts} } 1, 2;
    $Inst[$_]{mark} = _log_size($Inst[$_]) for @used;
    for my $n (@start) {
        my $err = _start_instance($Inst[$n], $conf{$n});
        if ($err) {
            fail("$name - nginx instance $n starts");
            diag($err);
            $Inst[$n]{chk_pos} = _log_size($Inst[$n]);
            return;
        }
    }

    if ($Redis{running}) {
        my $r = eval { redis_cmd('FLUSHALL') };
        die "redis FLUSHALL failed: $@" unless defined $r;
    }

    # HTTP request
    if (exists $block->{request} || exists $block->{raw_request}) {
        my ($pieces, $no_body);
        if (exists $block->{raw_request}) {
            my $raw = _one($block, 'raw_request');
            $pieces = [map { _subst($_) } ref $raw eq 'ARRAY' ? @$raw : ($raw // '')];
        }
        else {
            my ($bytes, $meth) = _build_request($name, _subst(_one($block, 'request') // ''),
                                                _subst(_one($block, 'more_headers')));
            $pieces = [$bytes];
            $no_body = $meth eq 'HEAD';
        }
        my $res = _http_exchange($S{port}, $pieces, $timeout, $no_body);
        _check_response($block, $name, $res);
    }

    # WebSocket script
    if (exists $block->{ws}) {
        my $ctx = ws_run_script($name, _subst(_one($block, 'ws') // ''),
                                timeout => $timeout, workers => $b{workers});
        close $_->{sock} for values %{$ctx->{clients}};    # drop what is left open
    }

    sleep $wait if $wait;
    sleep 0.05;    # let the master log a worker that just died

    my @lines;
    for my $n (@used) {
        my $inst = $Inst[$n];
        my ($lines, $end) = _log_lines($inst, $inst->{mark});
        $inst->{chk_pos} = $end;
        push @lines, @$lines;
        my @crash = _crash_lines($lines);
        ok(!@crash, "$name - no worker crash" . (@used > 1 ? " (instance $n)" : ''))
            or diag(join "\n", @crash);
    }
    for my $p (_patterns($block, 'error_log')) {
        my $hit = ref $p ? grep { $_ =~ $p } @lines : grep { index($_, _subst($p)) >= 0 } @lines;
        ok($hit, "$name - error_log: " . _show("$p", 100))
            or diag("not found in this block's " . @lines . " error log lines:\n"
                    . join("\n", @lines > 40 ? @lines[-40 .. -1] : @lines));
    }
    for my $p (_patterns($block, 'no_error_log')) {
        my @hits = ref $p ? grep { $_ =~ $p } @lines : grep { index($_, _subst($p)) >= 0 } @lines;
        ok(!@hits, "$name - no_error_log: " . _show("$p", 100))
            or diag("found:\n" . join("\n", @hits[0 .. ($#hits < 9 ? $#hits : 9)]));
    }
}

sub _check_response {
    my ($block, $name, $res) = @_;
    if ($res->{error}) {
        fail("$name - request");
        diag($res->{error} . ($res->{raw} ne '' ? "\nreceived: " . _show($res->{raw}, 2000) : ''));
    }
    my $want = _one($block, 'error_code') // 200;
    $want =~ s/^\s+|\s+$//g;
    is($res->{status} // '', $want, "$name - status code");

    if (exists $block->{response_body}) {
        is($res->{body}, _subst(_one($block, 'response_body') // ''), "$name - response body");
    }
    if (exists $block->{response_body_like}) {
        my $pat = _subst(_one($block, 'response_body_like') // '');
        like($res->{body}, qr/$pat/s, "$name - response body like");
    }
    if (defined(my $h = _one($block, 'response_headers'))) {
        for my $l (grep { /\S/ } split /\n/, _subst($h)) {
            $l =~ s/^\s+|\s+$//g;
            if ($l =~ /^!\s*(\S+)$/) {
                my $v = _header_value($res, $1);
                ok(!defined $v, "$name - header $1 absent")
                    or diag("$1: $v");
                next;
            }
            my ($k, $v) = split /\s*:\s*/, $l, 2;
            is(_header_value($res, $k) // '(absent)', $v // '', "$name - header $k");
        }
    }
    if (defined(my $h = _one($block, 'response_headers_like'))) {
        for my $l (grep { /\S/ } split /\n/, _subst($h)) {
            $l =~ s/^\s+|\s+$//g;
            my ($k, $v) = split /\s*:\s*/, $l, 2;
            like(_header_value($res, $k) // '', qr/^$v$/, "$name - header $k like");
        }
    }
}

# Stop whatever is still running if the test file dies half-way.
END {
    if ($$ == $MainPid && $Initialized) {
        local $?;
        for my $inst (grep { $_ } @Inst) {
            my $pid = delete $inst->{pid} or next;
            next unless _alive($pid);
            kill 'QUIT', $pid;
            _wait_exit($pid, 5) or do { _kill_group($pid); _wait_exit($pid, 2) };
        }
        _redis_stop();
    }
}

1;
