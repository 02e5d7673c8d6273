# Randomised input (t/tools/wsfuzz.py, fixed seeds): framing violations,
# random JSON, lying lengths, fragments with control frames between them,
# resets.  The workers must survive it (every block checks), say nothing
# above [error], keep no peer of a closed connection in Redis, and serve a
# normal join afterwards.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: framing violations mixed with random JSON, then mostly well-formed frames
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_resume_grace 0;
}
--- timeout: 180
--- ws
shell /usr/bin/python3 t/tools/wsfuzz.py --port $TEST_NGINX_PORT --iterations 500 --seed 1 --mode all
shell /usr/bin/python3 t/tools/wsfuzz.py --port $TEST_NGINX_PORT --iterations 500 --seed 2 --mode json
sleep 500
redis ^$ KEYS codeb:{t1}:peer:*
open A
send A {"type":"join","room":"fz","name":"A"}
recv_json A $j->{type} eq 'welcome' && @{$j->{peers}} == 0
close A
--- no_error_log
[alert]
[crit]
[emerg]
