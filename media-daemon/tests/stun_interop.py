#!/usr/bin/python3
"""
Interoperability of src/stun.c with a real ICE implementation: aioice
(Debian python3-aioice, used by python3-aiortc).  From media-daemon/:

    /usr/bin/python3 tests/stun_interop.py

It builds tests/stun_echo.c (cc ... -lcrypto) into a temporary directory
and runs it on 127.0.0.1 (loopback only, every wait bounded), then:

 1. sends Binding requests built the way aioice's Connection.build_request()
    builds them (USERNAME, PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED,
    USE-CANDIDATE, then add_message_integrity()), and parses the answers
    with aioice.stun.parse_message() given the lite agent's password, which
    checks MESSAGE-INTEGRITY and FINGERPRINT;
 2. parses md_ice_candidate()'s lines with aioice's Candidate.from_sdp();
 3. runs a whole aioice Connection (controlling, remote_is_lite) against
    the lite agent: checks, nomination with USE-CANDIDATE, then a datagram
    through the nominated pair and back;
 4. the same with an aioice Connection that starts in the wrong role
    (controlled): the 487 answer makes it switch to controlling (RFC 8445
    §7.2.5.1) and complete.

Prints one line per check and "N passed, M failed" last; exits 1 on a
failure.
"""

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, "/usr/lib/python3/dist-packages")

import aioice                                       # noqa: E402
import aioice.ice                                   # noqa: E402
from aioice import stun                             # noqa: E402
from aioice.candidate import Candidate, candidate_priority  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok   %s" % name)
    else:
        failed += 1
        print("FAIL %s %s" % (name, detail))


def build(tmp):
    exe = os.path.join(tmp, "stun_echo")
    subprocess.run(
        ["cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror",
         "-I" + os.path.join(ROOT, "src"), "-o", exe,
         os.path.join(HERE, "stun_echo.c"), os.path.join(ROOT, "src", "stun.c"),
         os.path.join(ROOT, "src", "util.c"), "-lcrypto"],
        check=True, timeout=120)
    return exe


class Echo:
    """a stun_echo process; reads its header lines up to "ready" """

    def __init__(self, exe, lufrag, lpwd, rufrag):
        self.proc = subprocess.Popen(
            [exe, lufrag, lpwd, rufrag or "-", "10"],
            stdout=subprocess.PIPE, text=True)
        self.candidates = {}
        self.lines = []
        for line in self.proc.stdout:
            words = line.split()
            if words[0] == "port":
                self.port = int(words[1])
            elif words[0] == "credentials":
                self.ufrag, self.pwd = words[1], words[2]
            elif words[0] == "candidate":
                self.candidates[words[1]] = line.split(" ", 2)[2].strip()
            elif words[0] == "ready":
                break
        self.addr = ("127.0.0.1", self.port)

    def stop(self):
        self.proc.terminate()
        try:
            rest = self.proc.communicate(timeout=5)[0]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest = self.proc.communicate()[0]
        self.lines += rest.splitlines()
        return self.lines


def transact(sock, addr, data):
    """sends data, returns the first answer (3 tries, 1 s each) or None"""
    for _ in range(3):
        sock.sendto(data, addr)
        try:
            return sock.recvfrom(2048)[0]
        except socket.timeout:
            continue
    return None


def request(username, key, controlling=True, use_candidate=False,
            tiebreaker=None):
    """as aioice's Connection.build_request() and StunProtocol.request()"""
    req = stun.Message(message_method=stun.Method.BINDING,
                       message_class=stun.Class.REQUEST)
    req.attributes["USERNAME"] = username
    req.attributes["PRIORITY"] = candidate_priority(1, "prflx")
    if tiebreaker is None:
        tiebreaker = secrets.randbits(64)
    if controlling:
        req.attributes["ICE-CONTROLLING"] = tiebreaker
        if use_candidate:
            req.attributes["USE-CANDIDATE"] = None
    else:
        req.attributes["ICE-CONTROLLED"] = tiebreaker
    req.add_message_integrity(key.encode("utf8"))
    return req


def part_messages(exe):
    lufrag, lpwd, rufrag = "Lite", "0123456789abcdef+/ABCDEF", "Full"
    echo = Echo(exe, lufrag, lpwd, rufrag)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(1.0)
    key = lpwd.encode("utf8")
    user = "%s:%s" % (lufrag, rufrag)

    try:
        for uc in (True, False):
            name = "200 to ICE-CONTROLLING%s" % (" + USE-CANDIDATE" if uc
                                                   else "")
            req = request(user, lpwd, True, uc)
            data = transact(sock, echo.addr, bytes(req))
            if data is None:
                check(name, False, "no answer")
                continue
            try:
                resp = stun.parse_message(data, integrity_key=key)
            except ValueError as e:
                check(name, False, "aioice rejects it: %s" % e)
                continue
            check(name + ": success class, same transaction",
                  resp.message_class == stun.Class.RESPONSE
                  and resp.message_method == stun.Method.BINDING
                  and resp.transaction_id == req.transaction_id)
            check(name + ": MESSAGE-INTEGRITY and FINGERPRINT verified",
                  "MESSAGE-INTEGRITY" in resp.attributes
                  and "FINGERPRINT" in resp.attributes)
            check(name + ": XOR-MAPPED-ADDRESS is our address",
                  resp.attributes.get("XOR-MAPPED-ADDRESS")
                  == sock.getsockname(),
                  str(resp.attributes.get("XOR-MAPPED-ADDRESS")))
            try:
                stun.parse_message(data, integrity_key=b"another password")
                check(name + ": wrong key rejected by aioice", False)
            except ValueError:
                check(name + ": wrong key rejected by aioice", True)

        req = request(user, lpwd, controlling=False)
        data = transact(sock, echo.addr, bytes(req))
        try:
            resp = stun.parse_message(data, integrity_key=key)
            check("487 to ICE-CONTROLLED, integrity verified",
                  resp.message_class == stun.Class.ERROR
                  and resp.attributes.get("ERROR-CODE", (0,))[0] == 487
                  and "MESSAGE-INTEGRITY" in resp.attributes
                  and resp.transaction_id == req.transaction_id,
                  str(resp.attributes))
        except (ValueError, TypeError) as e:
            check("487 to ICE-CONTROLLED", False, str(e))

        for name, u, k in (("401 to a wrong password", user, "nope" * 6),
                           ("401 to a wrong local ufrag", "Litf:Full", lpwd),
                           ("401 to a wrong remote ufrag", "Lite:Fulk",
                            lpwd)):
            req = request(u, k)
            data = transact(sock, echo.addr, bytes(req))
            try:
                resp = stun.parse_message(data)
                check(name + ", no MESSAGE-INTEGRITY",
                      resp.message_class == stun.Class.ERROR
                      and resp.attributes.get("ERROR-CODE", (0,))[0] == 401
                      and "MESSAGE-INTEGRITY" not in resp.attributes
                      and "FINGERPRINT" in resp.attributes,
                      str(resp.attributes))
            except (ValueError, TypeError) as e:
                check(name, False, str(e))

        # 400: USERNAME without MESSAGE-INTEGRITY (FINGERPRINT only)
        req = stun.Message(message_method=stun.Method.BINDING,
                           message_class=stun.Class.REQUEST)
        req.attributes["USERNAME"] = user
        req.attributes["FINGERPRINT"] = stun.message_fingerprint(bytes(req))
        data = transact(sock, echo.addr, bytes(req))
        try:
            resp = stun.parse_message(data)
            check("400 to a request without MESSAGE-INTEGRITY",
                  resp.attributes.get("ERROR-CODE", (0,))[0] == 400)
        except (ValueError, TypeError) as e:
            check("400 to a request without MESSAGE-INTEGRITY", False, str(e))

        # a request without FINGERPRINT is dropped; the datagram after it
        # (not STUN) comes back, so silence was the answer
        req = request(user, lpwd)
        raw = bytes(req)[:-8]
        raw = raw[:2] + (len(raw) - 20).to_bytes(2, "big") + raw[4:]
        sock.sendto(raw, echo.addr)
        sock.sendto(b"\x80marker", echo.addr)
        try:
            data = sock.recvfrom(2048)[0]
        except socket.timeout:
            data = b"(nothing)"
        check("no answer to a request without FINGERPRINT",
              data == b"\x80marker", repr(data[:8]))
    finally:
        sock.close()
        lines = echo.stop()

    seen = [ln for ln in lines if ln.startswith("stun ")]
    check("lite side saw USE-CANDIDATE from the controlling agent",
          any("valid 1 use_candidate 1 controlling 1" in ln for ln in seen),
          "\n".join(seen))
    check("lite side learned remote ufrag and PRIORITY %d"
          % candidate_priority(1, "prflx"),
          any(("priority %d remote_ufrag Full" % candidate_priority(1, "prflx"))
              in ln for ln in seen))


def part_candidates(exe):
    echo = Echo(exe, "-", "-", None)
    echo.stop()
    ok = (len(echo.ufrag) == 8 and len(echo.pwd) == 24
          and all(c.isalnum() or c in "+/" for c in echo.ufrag + echo.pwd))
    check("md_ice_credentials: 8 + 24 ice-chars", ok,
          "%s %s" % (echo.ufrag, echo.pwd))

    host = Candidate.from_sdp(echo.candidates["host"])
    check("aioice parses the host candidate",
          host.type == "host" and host.component == 1
          and host.transport.lower() == "udp"
          and host.priority == candidate_priority(1, "host")
          and (host.host, host.port) == echo.addr,
          echo.candidates["host"])
    srflx = Candidate.from_sdp(echo.candidates["srflx"])
    check("aioice parses the srflx candidate",
          srflx.type == "srflx" and srflx.host == "203.0.113.1"
          and srflx.priority == candidate_priority(1, "srflx")
          and srflx.related_address == "127.0.0.1"
          and srflx.related_port == echo.port,
          echo.candidates["srflx"])


async def connect(exe, start_controlling):
    # host candidates on loopback only
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]

    conn = aioice.Connection(ice_controlling=start_controlling,
                             use_ipv6=False)
    conn.remote_is_lite = True
    await conn.gather_candidates()

    echo = Echo(exe, "-", "-", conn.local_username)
    conn.remote_username = echo.ufrag
    conn.remote_password = echo.pwd
    what = "aioice Connection (%s)" % ("controlling" if start_controlling
                                        else "starting controlled")
    try:
        await conn.add_remote_candidate(
            Candidate.from_sdp(echo.candidates["host"]))
        await conn.add_remote_candidate(None)
        try:
            await asyncio.wait_for(conn.connect(), 15)
            check(what + ": ICE completed with the lite agent", True)
        except (ConnectionError, asyncio.TimeoutError) as e:
            check(what + ": ICE completed with the lite agent", False,
                  repr(e))
            return
        check(what + ": ends controlling", conn.ice_controlling)

        await conn.sendto(b"\x80media", 1)
        try:
            data, component = await asyncio.wait_for(conn.recvfrom(), 5)
            check(what + ": a datagram through the nominated pair",
                  data == b"\x80media" and component == 1)
        except asyncio.TimeoutError:
            check(what + ": a datagram through the nominated pair", False)
    finally:
        await conn.close()
        lines = echo.stop()

    seen = [ln for ln in lines if ln.startswith("stun ")]
    check(what + ": nominated with USE-CANDIDATE, answered 200",
          any("valid 1 use_candidate 1 controlling 1" in ln for ln in seen),
          "\n".join(seen))
    if not start_controlling:
        check(what + ": its ICE-CONTROLLED check got 487 (not valid)",
              any("valid 0 use_candidate 0 controlling 0" in ln
                  and " answer 0 " not in ln for ln in seen),
              "\n".join(seen))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        part_messages(exe)
        part_candidates(exe)
        asyncio.run(connect(exe, True))
        asyncio.run(connect(exe, False))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
