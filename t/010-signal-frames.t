# /signal.ashx WebSocket frames (docs/signal.md): join, welcome, signal,
# ping, leave, peer-joined / peer-left, and the errors of each.
use lib 't/lib';
use Test::CodeB;

run_tests();
done_testing();

__DATA__

=== TEST 1: join, welcome, peer-joined, signal byte for byte, leave
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"r1","name":"Alice"}
recv_json A $j->{type} eq 'welcome' && $j->{room} eq 'r1' && @{$j->{peers}} == 0 && $j->{peerId} =~ /^p_[0-9a-f]{16}$/ && $j->{resumeToken} && $j->{pingInterval} == 25 && $j->{pingTimeout} == 60 && !exists $j->{seq}
capture A a "peerId":"(p_[0-9a-f]{16})"
open B
send B {"type":"join","room":"r1","name":"Bob \u00e9"}
recv_json B $j->{type} eq 'welcome' && @{$j->{peers}} == 1 && $j->{peers}[0]{peerId} eq '${a}' && $j->{peers}[0]{name} eq 'Alice'
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A ^\{"type":"peer-joined","peerId":"${b}","name":"Bob é","seq":1\}$
send B {"type":"signal","to":"${a}","data":{"sdp":{"type":"offer","sdp":"v=0\r\n"}, "n": 1.50e3 ,"u":"\u00e9\ud83d\ude00"}}
recv A ^\{"type":"signal","from":"${b}","data":\{"sdp":\{"type":"offer","sdp":"v=0\\r\\n"\}, "n": 1\.50e3 ,"u":"\\u00e9\\ud83d\\ude00"\},"seq":2\}$
send A {"type":"signal","to":"${b}","data":null}
recv B ^\{"type":"signal","from":"${a}","data":null,"seq":1\}$
send B {"type":"ping"}
recv B ^\{"type":"pong","seq":2\}$
send B {"type":"leave"}
expect_close B 1000
recv_json A $j->{type} eq 'peer-left' && $j->{peerId} eq '${b}' && $j->{reason} eq 'left' && $j->{seq} == 3
close A

=== TEST 2: peers on different workers relay to each other
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"w2","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B other A
send B {"type":"join","room":"w2","name":"B"}
recv_json B $j->{type} eq 'welcome' && $j->{peers}[0]{peerId} eq '${a}'
capture B b "peerId":"(p_[0-9a-f]{16})"
recv A "type":"peer-joined","peerId":"${b}"
send A {"type":"signal","to":"${b}","data":{"n":1}}
send A {"type":"signal","to":"${b}","data":{"n":2}}
send A {"type":"signal","to":"${b}","data":{"n":3}}
recv B "data":\{"n":1\},"seq":1\}
recv B "data":\{"n":2\},"seq":2\}
recv B "data":\{"n":3\},"seq":3\}
send B {"type":"signal","to":"${a}","data":"hi"}
recv A "from":"${b}","data":"hi"
drop B
sleep 100
close A

=== TEST 3: errors that leave the connection open
--- config
codeb_tenant t1;
codeb_vnum 1234;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"signal","to":"p_0000000000000000","data":1}
recv A ^\{"type":"error","code":"not_joined","message":"[^"]+"\}$
send A {"type":"ping"}
recv A "code":"not_joined"
send A not json
recv A ^\{"type":"error","code":"bad_frame"
send A [1,2]
recv A "code":"bad_frame"
send A "str"
recv A "code":"bad_frame"
send A {"type":"nope"}
recv A "code":"bad_frame"
send A {"room":"x"}
recv A "code":"bad_frame"
send A {"type":"join","room":"bad room","name":"A"}
recv A "code":"bad_frame","message":"\\"room\\"
send A {"type":"join","room":"r3","name":""}
recv A "code":"bad_frame","message":"\\"name\\"
send A {"type":"join","room":"r3","name":"12345678901234567890123456789012345678901234567890123456789012345"}
recv A "code":"bad_frame"
send A {"type":"join","room":"r3","name":"tab\there"}
recv A "code":"bad_frame"
send A {"type":"join","room":"r3","name":"A","office":true}
recv A "code":"forbidden"
send A {"type":"join","room":"r3","name":"A","token":"abc.def.ghi"}
recv A "code":"forbidden"
send A {"type":"join","room":"r3","name":"A"}
recv A "type":"welcome"
send A {"type":"join","room":"r3","name":"A"}
recv A "code":"already_joined","message":"[^"]+","seq":1\}
send A {"type":"signal","to":"p_0000000000000000","data":1}
recv A "code":"unknown_peer".*"seq":2\}
send A {"type":"signal","to":"nobody","data":1}
recv A "code":"unknown_peer"
send A {"type":"signal","data":1}
recv A "code":"bad_frame"
send A {"type":"dial","number":"1234"}
recv A "code":"bridge_unavailable"
send A {"type":"dial","number":"someone"}
recv A "code":"unknown_peer"
send A {"type":"ping"}
recv A "type":"pong"
close A

=== TEST 4: a peer of another room is unknown; room names 64 chars and 'random'
--- config
codeb_tenant t1;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","name":"A"}
recv A "type":"welcome"
capture A a "peerId":"(p_[0-9a-f]{16})"
open B
send B {"type":"join","room":"random","name":"B"}
recv_json B $j->{type} eq 'welcome' && $j->{room} =~ /^codeb-room-[a-z0-9]{8}$/
send B {"type":"signal","to":"${a}","data":1}
recv B "code":"unknown_peer"
open C other A
send C {"type":"join","room":"random","name":"C"}
recv C "type":"welcome"
send C {"type":"signal","to":"${a}","data":1}
recv C "code":"unknown_peer"
send C {"type":"join","room":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","name":"A"}
recv C "code":"already_joined"
close A
close B
close C

=== TEST 5: join with dial gets a vnum room, then bridge_unavailable
--- config
codeb_tenant t1;
codeb_vnum 2000 name=Reception visibility=anonymous;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"random","name":"A","dial":"2000"}
recv_json A $j->{type} eq 'welcome' && $j->{room} =~ /^vnum-2000-[a-z0-9]{8}$/
recv_json A $j->{type} eq 'error' && $j->{code} eq 'bridge_unavailable' && $j->{seq} == 1
send A {"type":"join","room":"random","name":"A","dial":"12ab"}
recv A "code":"already_joined"
close A
open B
send B {"type":"join","room":"random","name":"B","dial":"12ab"}
recv B "code":"bad_frame"
close B

=== TEST 6: room_full at the configured size; a leave makes room
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_room_size 2;
}
--- ws
open A
send A {"type":"join","room":"full","name":"A"}
recv A "type":"welcome"
open B other A
send B {"type":"join","room":"full","name":"B"}
recv B "type":"welcome"
open C
send C {"type":"join","room":"full","name":"C"}
recv C ^\{"type":"error","code":"room_full"
send B {"type":"leave"}
expect_close B 1000
# the leave reaches Redis from B's worker, the join from C's: let it land
sleep 200
send C {"type":"join","room":"full","name":"C"}
recv_json C $j->{type} eq 'welcome' && @{$j->{peers}} == 1
close A
close C

=== TEST 7: TURN credentials (coturn use-auth-secret) and STUN entries
--- config
codeb_tenant t1;
codeb_turn_uri turn:127.0.0.1:3478?transport=udp;
codeb_turn_uri turns:127.0.0.1:5349?transport=tcp;
codeb_turn_secret s3cret;
codeb_turn_ttl 1h;
codeb_stun_uri stun:127.0.0.1:3478;
location = /signal.ashx { codeb_signal; }
--- ws
open A
send A {"type":"join","room":"turn","name":"A"}
recv_json A my $s = $j->{iceServers}; $s->[0]{urls} eq 'stun:127.0.0.1:3478' && !exists $s->[0]{username} && $s->[1]{urls}[1] eq 'turns:127.0.0.1:5349?transport=tcp' && $s->[1]{username} eq ((split /:/, $s->[1]{username})[0]) . ":$j->{peerId}" && abs((split /:/, $s->[1]{username})[0] - time - 3600) < 5 && $s->[1]{credential} eq do { require Digest::SHA; my $c = Digest::SHA::hmac_sha1_base64($s->[1]{username}, 's3cret'); $c . '=' x ((4 - length($c) % 4) % 4) }
close A

=== TEST 8: the rate limit drops excess messages with one rate_limited a second
--- config
codeb_tenant t1;
location = /signal.ashx {
    codeb_signal;
    codeb_signal_rate 5;
    codeb_signal_burst 5;
}
--- ws
open A
send A {"type":"join","room":"rate","name":"A"}
recv A "type":"welcome"
send A {"type":"ping"}
send A {"type":"ping"}
send A {"type":"ping"}
send A {"type":"ping"}
send A {"type":"ping"}
send A {"type":"ping"}
send A {"type":"ping"}
recv A "type":"pong","seq":1
recv A "type":"pong","seq":2
recv A "type":"pong","seq":3
recv A "type":"pong","seq":4
recv A "code":"rate_limited".*"seq":5
no_recv A 300
sleep 1100
send A {"type":"ping"}
recv A "type":"pong","seq":6
close A
