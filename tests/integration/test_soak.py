"""A short kill -9 soak (issue 14): tests/soak/soak.py with a few rounds.

The script starts the real server on one spool again and again, kills it
with SIGKILL mid-traffic, drains it, and checks that every acknowledged
message reached each local Maildir exactly once and each remote
recipient (a Peer behind [delivery] routes) at least once, intact, and
that nothing refused or never sent was delivered.  `make soak` runs the
same script with 50 rounds.
"""
import os
import random
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "soak" / "soak.py"
SUMMARY = re.compile(
    r"^soak: rounds=(\d+) acked=(\d+) local: delivered=(\d+) lost=(\d+) "
    r"dup=(\d+) remote: delivered=(\d+) lost=(\d+) dup=(\d+) "
    r"unacked-delivered=(\d+) violations=(\d+) seed=(\d+)", re.M)
ROUNDS = 10


def test_kill9_soak_local_mail_exactly_once_remote_at_least_once(tmp_path):
    seed = random.SystemRandom().randrange(1 << 32)
    p = subprocess.run(
        [sys.executable, str(SCRIPT), "--rounds", str(ROUNDS), "--clients",
         "4", "--seed", str(seed), "--drain-timeout", "60",
         # Small segments: rounds roll over and compact (issue 14).
         "--segment-size", "65536", "--dir",
         str(tmp_path / "soak")],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    out = p.stdout + p.stderr
    print(out)
    m = SUMMARY.search(p.stdout)
    assert m, f"no summary line:\n{out}"
    line = m.group(0)
    (rounds, acked, l_del, l_lost, l_dup, r_del, r_lost, r_dup, unacked,
     violations, _) = map(int, m.groups())
    assert p.returncode == 0 and violations == 0, out
    assert rounds == ROUNDS, line
    assert l_lost == 0 and l_dup == 0 and r_lost == 0, line
    # Traffic in every round, to both kinds of recipient: a soak that
    # sent nothing proves nothing.
    per_round = [int(x) for x in re.findall(
        r"^round \d+/\d+: .* acked=(\d+) ", p.stdout, re.M)]
    assert len(per_round) == ROUNDS and min(per_round) > 0, out
    assert acked == sum(per_round), out
    assert l_del > 0 and r_del > 0, line
    print(f"{line} (dup {r_dup} remote, {unacked} delivered without a 250)")
