"""A reload re-reads [delivery] routes (postern ctl reload, as SIGHUP):
mail deferred on a dead route goes to the new one after `queue flush`;
a routes file with a bad line makes the reload fail whole, and the old
routes stay in use.
"""
import subprocess

from smtp_peer import Peer, outbound_server, queue, queue_list, submit
from postern_test import POSTERN, poll

T = 40.0
BOB = "bob@remote.test"


def ctl(srv, *words):
    return subprocess.run([POSTERN, "ctl", *words, "-c", str(srv.conf)],
                          capture_output=True, text=True, timeout=30)


def test_reload_reads_routes_again(make_server, dead_port):
    snd = outbound_server(make_server, routes={"remote.test":
                                               f"127.0.0.1:{dead_port}"},
                          delivery={"retry": "3600"})
    qid = submit(snd, BOB)
    poll(lambda: queue_list(snd).get(qid, {}).get("rcpts", {})
         .get(BOB, {}).get("attempts", 0) >= 1, T, what="a first try")
    with Peer() as peer:
        (snd.dir / "routes").write_text(f"remote.test 127.0.0.1:{peer.port}\n")
        assert ctl(snd, "reload").returncode == 0
        queue(snd, "flush", check=0)
        peer.wait_messages(1, T)
    poll(lambda: qid not in queue_list(snd), T, what="an empty queue")


def test_bad_routes_line_fails_the_reload_and_keeps_the_old(make_server):
    with Peer() as peer:
        snd = outbound_server(make_server,
                              routes={"remote.test": f"127.0.0.1:{peer.port}"})
        (snd.dir / "routes").write_text("remote.test\n")
        r = ctl(snd, "reload")
        assert r.returncode == 1, (r.stdout, r.stderr)
        snd.wait_log(r"ev=reload_failed part=routes")
        submit(snd, BOB)
        peer.wait_messages(1, T)
