# Resume (docs/signal.md): a dropped peer keeps its place for the grace
# period; join with resume on any worker or host replays what it missed in
# order, and the other peers see no churn.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: resume on the same worker replays frames after lastSeq
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"rs","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B
send B {"type":"join","room":"rs","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
capture B tok "resumeToken":"([0-9a-f]{32})"
recv A "type":"peer-joined"
send A {"type":"signal","to":"${b}","data":1}
recv B "data":1,"seq":1\}
drop B
sleep 100
send A {"type":"signal","to":"${b}","data":2}
send A {"type":"signal","to":"${b}","data":3}
open B2 same A
send B2 {"type":"join","room":"rs","name":"B","resume":{"peerId":"${b}","resumeToken":"${tok}","lastSeq":1}}
recv_json B2 $j->{type} eq 'welcome' && $j->{resumed} && $j->{peerId} eq '${b}' && $j->{peers}[0]{peerId} eq '${a}'
recv B2 ^\{"type":"signal","from":"${a}","data":2,"seq":2\}$
recv B2 ^\{"type":"signal","from":"${a}","data":3,"seq":3\}$
send A {"type":"signal","to":"${b}","data":4}
recv B2 "data":4,"seq":4\}
send B2 {"type":"signal","to":"${a}","data":"back"}
recv A "from":"${b}","data":"back"
no_recv A 300
close A
close B2

=== TEST 2: resume on the other worker: handover of the kept frames
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"rs2","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B same A
send B {"type":"join","room":"rs2","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
capture B tok "resumeToken":"([0-9a-f]{32})"
recv A "type":"peer-joined"
send A {"type":"signal","to":"${b}","data":1}
send A {"type":"signal","to":"${b}","data":2}
recv B "data":1,"seq":1\}
drop B
sleep 100
send A {"type":"signal","to":"${b}","data":3}
open B2 other A
send B2 {"type":"join","room":"rs2","name":"B","resume":{"peerId":"${b}","resumeToken":"${tok}","lastSeq":1}}
recv_json B2 $j->{type} eq 'welcome' && $j->{resumed} && $j->{peerId} eq '${b}'
recv B2 "data":2,"seq":2\}
recv B2 "data":3,"seq":3\}
send A {"type":"signal","to":"${b}","data":4}
recv B2 "data":4,"seq":4\}
send B2 {"type":"signal","to":"${a}","data":"x"}
recv A "from":"${b}","data":"x"
send B2 {"type":"leave"}
expect_close B2 1000
recv A "type":"peer-left","peerId":"${b}","reason":"left"
close A

=== TEST 3: a wrong resume token is forbidden; a fresh join then works
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"rs3","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B
send B {"type":"join","room":"rs3","name":"B","resume":{"peerId":"${a}","resumeToken":"00000000000000000000000000000000","lastSeq":0}}
recv B ^\{"type":"error","code":"forbidden"
send B {"type":"join","room":"rs3","name":"B","resume":{"peerId":"${a}","lastSeq":0}}
recv B "code":"bad_frame"
send B {"type":"join","room":"rs3","name":"B"}
recv_json B $j->{type} eq 'welcome' && !$j->{resumed} && $j->{peerId} ne '${a}'
recv A "type":"peer-joined"
close A
close B
--- error_log
resume refused: wrong token

=== TEST 4: after the grace period the peer leaves; a late resume is a fresh join
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_resume_grace 1s;
}
--- ws
open A
send A {"type":"join","room":"rs4","name":"A"}
recv A "type":"welcome"
open B
send B {"type":"join","room":"rs4","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
capture B tok "resumeToken":"([0-9a-f]{32})"
recv A "type":"peer-joined"
drop B
no_recv A 700
recv_json A $j->{type} eq 'peer-left' && $j->{peerId} eq '${b}' && $j->{reason} eq 'disconnected'
open B2
send B2 {"type":"join","room":"rs4","name":"B","resume":{"peerId":"${b}","resumeToken":"${tok}","lastSeq":0}}
recv_json B2 $j->{type} eq 'welcome' && !$j->{resumed} && $j->{peerId} ne '${b}' && $j->{room} eq 'rs4'
recv A "type":"peer-joined","peerId":"p_
close A
close B2

=== TEST 5: resume on another host sharing the Redis
--- hosts: 2
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"rs5","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B
send B {"type":"join","room":"rs5","name":"B"}
recv B "type":"welcome"
capture B b "peerId":"(p_[0-9a-f]{16})"
capture B tok "resumeToken":"([0-9a-f]{32})"
recv A "type":"peer-joined"
drop B
sleep 100
send A {"type":"signal","to":"${b}","data":"while away"}
open B2 host2
send B2 {"type":"join","room":"rs5","name":"B","resume":{"peerId":"${b}","resumeToken":"${tok}","lastSeq":0}}
recv_json B2 $j->{type} eq 'welcome' && $j->{resumed} && $j->{peerId} eq '${b}'
recv B2 "data":"while away","seq":1\}
send A {"type":"signal","to":"${b}","data":"across hosts"}
recv B2 "data":"across hosts","seq":2\}
no_recv A 300
close A
close B2

=== TEST 6: many frames while away (the kept ring grows) come back in order
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws eval
my $s = join "\n",
  'open A', 'send A {"type":"join","room":"rs6","name":"A"}', 'recv A "type":"welcome"',
  'open B', 'send B {"type":"join","room":"rs6","name":"B"}', 'recv B "type":"welcome"',
  'capture B b "peerId":"(p_[0-9a-f]{16})"', 'capture B tok "resumeToken":"([0-9a-f]{32})"',
  'recv A "type":"peer-joined"', 'drop B', 'sleep 100', '';
$s .= qq(send A {"type":"signal","to":"\${b}","data":$_}\n) for 1 .. 40;
$s .= 'open B2' . "\n"
  . 'send B2 {"type":"join","room":"rs6","name":"B","resume":{"peerId":"${b}","resumeToken":"${tok}","lastSeq":0}}' . "\n"
  . 'recv B2 "type":"welcome","peerId":"${b}"' . "\n";
$s .= qq(recv B2 "data":$_,"seq":$_\\}\n) for 1 .. 40;
$s . "close A\nclose B2\n";
