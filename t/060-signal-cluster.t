# Every worker is equal: two hosts sharing one Redis, Redis restarted under
# live calls, nginx reload under live calls, peers of a dead worker swept.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: two nginx instances sharing one Redis relay to each other
--- hosts: 2
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"mh","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B host2
send B {"type":"join","room":"mh","name":"B"}
recv_json B $j->{type} eq 'welcome' && $j->{peers}[0]{peerId} eq '${a}'
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined","peerId":"${b}"
send B {"type":"signal","to":"${a}","data":{"sdp":"o"}}
recv A "from":"${b}","data":\{"sdp":"o"\}
send A {"type":"signal","to":"${b}","data":{"sdp":"a"}}
recv B "from":"${a}","data":\{"sdp":"a"\}
send B {"type":"leave"}
expect_close B 1000
recv A "type":"peer-left","peerId":"${b}"
close A

=== TEST 2: Redis restarted mid-call: links come back, live peers are put back, new joins work
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- timeout: 10
--- ws
open A
send A {"type":"join","room":"rr","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B other A
send B {"type":"join","room":"rr","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined"
redis ^[^:]+:\d+$ HGET codeb:{t1}:peer:${a} w
# the harness's Redis keeps nothing (no RDB, no AOF): whatever is there after
# the restart was written back by the workers (checking that it is empty
# first would race with their reconnect)
redis_restart
sleep 1500
redis ^1$ EXISTS codeb:{t1}:peer:${a}
redis ^1$ EXISTS codeb:{t1}:peer:${b}
send A {"type":"signal","to":"${b}","data":"after"}
recv B "from":"${a}","data":"after"
open C
send C {"type":"join","room":"rr","name":"C"}
recv_json C $j->{type} eq 'welcome' && @{$j->{peers}} == 2
recv A "type":"peer-joined"
recv B "type":"peer-joined"
worker_alive A
worker_alive B
close A
close B
close C
--- error_log
reconnecting
connected again

=== TEST 3: nginx reload keeps live calls; new peers on new workers reach them
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- timeout: 10
--- ws
open A
send A {"type":"join","room":"rl","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B other A
send B {"type":"join","room":"rl","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined"
reload
sleep 300
worker_alive A
send A {"type":"signal","to":"${b}","data":"still here"}
recv B "from":"${a}","data":"still here"
open C
send C {"type":"join","room":"rl","name":"C"}
recv_json C @{$j->{peers}} == 2
capture C c "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined","peerId":"${c}"
send C {"type":"signal","to":"${a}","data":"new worker"}
recv A "from":"${c}","data":"new worker"
send A {"type":"signal","to":"${c}","data":"old worker"}
recv C "from":"${a}","data":"old worker"
close A
close B
close C

=== TEST 4: peers whose state expired (their worker died) are swept with peer-left
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_ping_interval 1s;
    codeb_signal_state_ttl 3s;
}
--- timeout: 8
--- ws
open A
send A {"type":"join","room":"gh","name":"A"}
recv A "type":"welcome"
redis ^1$ HSET codeb:{t1}:room:gh p_00000000000000aa nowhere:1
redis ^[01]$ SADD codeb:{t1}:rooms gh
recv_json A $j->{type} eq 'peer-left' && $j->{peerId} eq 'p_00000000000000aa' && $j->{reason} eq 'timeout'
redis ^$ HGET codeb:{t1}:room:gh p_00000000000000aa
close A
--- error_log
peer p_00000000000000aa expired
