package CodeB::Receiver;

# The webhook receiver of the tests (t/tools/webhook-receiver.py), seen
# from a test file: its port, once it listens, and what it was sent.  The
# file sets $ENV{TEST_NGINX_RECV_PORTFILE} and $ENV{TEST_NGINX_RECV_LOG}
# and starts the receiver with them.

use strict;
use warnings;
use Exporter 'import';
use JSON::PP qw(decode_json);
use Time::HiRes qw(sleep time);

our @EXPORT_OK = qw(recv_port received);

# the receiver's port, waiting (30 s: python3 alone may take 10 s to start
# on a loaded machine) until it listens (it writes it then)
sub recv_port {
    for (1 .. 300) {
        if (open my $f, '<', $ENV{TEST_NGINX_RECV_PORTFILE}) {
            my $p = <$f>;
            return $p if $p && $p =~ /^\d+$/;
        }
        sleep 0.1;
    }
    die "the webhook receiver did not start\n";
}

# the requests ({path, headers, body}) the receiver got on $path, waiting
# (20 s) until there are $n; dies when there are fewer
sub received {
    my ($path, $n) = @_;
    my $until = time + 20;
    my @got;
    while (1) {
        @got = ();
        if (open my $f, '<', $ENV{TEST_NGINX_RECV_LOG}) {
            while (<$f>) { my $j = decode_json($_); push @got, $j if $j->{path} eq $path }
        }
        last if @got >= $n || time > $until;
        sleep 0.1;
    }
    die "receiver: " . scalar(@got) . " request(s) on $path, want $n\n" unless @got >= $n;
    return \@got;
}

1;
