# Randomised SIP (t/tools/sipfuzz.py, fixed seeds) over WebSocket, UDP and
# TCP: damaged start lines and headers, lying Content-Lengths, huge and
# binary headers, messages split and joined, resets.  The workers must
# survive it (every block checks), log nothing above [error], and answer a
# normal OPTIONS on every transport afterwards.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: 1500 damaged messages, then OPTIONS works on WebSocket, UDP and TCP
--- config
codeb_tenant localhost;
codeb_sip_user alice password=alice-demo-pass;
codeb_sip_user bob password=bob-demo-pass;
location = /sip { codeb_sip_ws; }
--- stream_config
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT udp reuseport; codeb_sip; }
server { listen 127.0.0.1:$TEST_NGINX_STREAM_PORT; codeb_sip; }
--- timeout: 240
--- ws
shell /usr/bin/python3 t/tools/sipfuzz.py --ws-port $TEST_NGINX_PORT --stream-port $TEST_NGINX_STREAM_PORT --iterations 750 --seed 1
shell /usr/bin/python3 t/tools/sipfuzz.py --ws-port $TEST_NGINX_PORT --stream-port $TEST_NGINX_STREAM_PORT --iterations 750 --seed 2
set O OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKok\r\nFrom: <sip:x@localhost>;tag=1\r\nTo: <sip:localhost>\r\nCall-ID: fz-ok\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n
open A /sip proto=sip
send_esc A ${O}
recv A ^SIP/2\.0 200 OK\r\n
close A
udp U $TEST_NGINX_STREAM_PORT
udp_send U ${O}
udp_recv U ^SIP/2\.0 200 OK\r\n
tcp T $TEST_NGINX_STREAM_PORT
tcp_send T ${O}
tcp_recv_sip T ^SIP/2\.0 200 OK\r\n
close T
