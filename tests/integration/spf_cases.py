"""SPF cases written from RFC 7208, for test_spf_judge.py.

Each case is a dict:
  id       unique; its records live under the zone "<id>.test" ($D below)
  rfc      the RFC 7208 section the expected result comes from
  result   what RFC 7208 says check_host() gives
  ip, helo, sender   the SMTP facts (sender "" is the null sender, so
                     the HELO identity is checked, 2.4)
  txt      {name: record or [records]}; a record given as a tuple is
           one TXT record of several character-strings (3.3)
  a, aaaa  {name: [addresses]}
  mx       {name: [hosts]} (preference 10, 20, ... in that order)
  ptr      {address: [names]}
  pyspf_deviates  (rare) why pyspf 2.0.14 answers otherwise
In names and records "$D" stands for the case's zone.  Names under
slow.test are forwarded to a server that never answers (the "timeout"
cases).  The client 192.0.2.3 (and 2001:db8::cb01) is used unless said;
addresses the ptr cases look up have their own PTR records and no other
case gives them to a name.
"""

IP = "192.0.2.3"
IP6 = "2001:db8::cb01"
OTHER = "198.51.100.7"  # an address no record lists
SLOW = "slow.test"


def case(id, rfc, result, **kw):
    c = {"id": id, "rfc": rfc, "result": result, "ip": IP,
         "helo": "helo.example.test", "sender": "user@$D", "txt": {},
         "a": {}, "aaaa": {}, "mx": {}, "ptr": {}}
    c.update(kw)
    return c


TEN_A = " ".join(["a:h.$D"] * 10)

CASES = [
    # --- 4.3, 4.4, 4.5: the initial domain and record selection ---
    case("sel-none", "4.5", "none", txt={"$D": "some other text"}),
    case("sel-nx", "4.3", "none", sender="user@does-not-exist.test"),
    case("sel-two", "4.5", "permerror",
         txt={"$D": ["v=spf1 +all", "v=spf1 -all"]}),
    case("sel-mixed", "4.5", "fail",
         txt={"$D": ["v=spf1 -all", "google-site-verification=abc"]}),
    case("sel-case", "4.5", "fail", txt={"$D": "V=SPF1 -all"}),
    case("sel-spf10", "4.5", "none", txt={"$D": "v=spf10 +all"}),
    case("sel-empty", "4.7", "neutral", txt={"$D": "v=spf1"}),
    case("sel-strings", "3.3", "pass",
         txt={"$D": ("v=spf1 ip4:192.0.2.0", "/24 -all")}),
    case("sel-spaces", "4.6.1", "pass",
         txt={"$D": "v=spf1   ip4:192.0.2.3    -all"}),
    case("sel-empty-label", "4.3", "none", sender="user@a..$D"),
    case("sel-long-label", "4.3", "none", sender="user@" + "x" * 64 + ".$D"),
    case("sel-single-label", "4.3", "none", sender="user@localhost",
         pyspf_deviates="pyspf looks the single label up and, with no "
         "upstream for it, reports temperror instead of 4.3's none"),

    # --- 4.6.2, 5.1: qualifiers and all ---
    case("q-pass", "4.6.2", "pass", txt={"$D": "v=spf1 +all"}),
    case("q-default", "4.6.2", "pass", txt={"$D": "v=spf1 all"}),
    case("q-fail", "4.6.2", "fail", txt={"$D": "v=spf1 -all"}),
    case("q-softfail", "4.6.2", "softfail", txt={"$D": "v=spf1 ~all"}),
    case("q-neutral", "4.6.2", "neutral", txt={"$D": "v=spf1 ?all"}),
    case("q-first-match", "4.6.2", "fail",
         txt={"$D": "v=spf1 -ip4:192.0.2.3 +all"}),
    case("q-no-match", "4.7", "neutral",
         txt={"$D": "v=spf1 ip4:198.51.100.0/24"}),

    # --- 5.6: ip4, ip6 ---
    case("ip4-net", "5.6", "pass", txt={"$D": "v=spf1 ip4:192.0.2.0/24 -all"}),
    case("ip4-host", "5.6", "pass", txt={"$D": "v=spf1 ip4:192.0.2.3 -all"}),
    case("ip4-miss", "5.6", "fail",
         txt={"$D": "v=spf1 ip4:192.0.2.4/31 -all"}),
    case("ip4-zero", "5.6", "pass", txt={"$D": "v=spf1 ip4:10.0.0.0/0 -all"}),
    case("ip4-v6-client", "5.6", "fail", ip=IP6,
         txt={"$D": "v=spf1 ip4:0.0.0.0/0 -all"}),
    case("ip4-mapped", "5", "pass", ip="::ffff:192.0.2.3",
         txt={"$D": "v=spf1 ip4:192.0.2.0/24 -all"}),
    case("ip6-net", "5.6", "pass", ip=IP6,
         txt={"$D": "v=spf1 ip6:2001:db8::/32 -all"}),
    case("ip6-miss", "5.6", "fail", ip=IP6,
         txt={"$D": "v=spf1 ip6:2001:db8:1::/48 -all"}),
    case("ip6-v4-client", "5.6", "fail",
         txt={"$D": "v=spf1 ip6:::/0 -all"}),

    # --- 5.3: a ---
    case("a-self", "5.3", "pass", txt={"$D": "v=spf1 a -all"},
         a={"$D": ["198.51.100.1", IP]}),
    case("a-other", "5.3", "pass", txt={"$D": "v=spf1 a:h.$D -all"},
         a={"h.$D": [IP]}),
    case("a-miss", "5.3", "fail", txt={"$D": "v=spf1 a:h.$D -all"},
         a={"h.$D": [OTHER]}),
    case("a-cidr", "5.3", "pass", txt={"$D": "v=spf1 a:h.$D/24 -all"},
         a={"h.$D": ["192.0.2.200"]}),
    case("a-dual-v6", "5.3", "pass", ip=IP6,
         txt={"$D": "v=spf1 a:h.$D/32//64 -all"},
         a={"h.$D": ["192.0.2.200"]}, aaaa={"h.$D": ["2001:db8::1"]}),
    case("a-dual-v4", "5.3", "fail",
         txt={"$D": "v=spf1 a:h.$D/32//64 -all"},
         a={"h.$D": ["192.0.2.200"]}, aaaa={"h.$D": ["2001:db8::1"]}),
    case("a-v6-needs-aaaa", "5.3", "fail", ip=IP6,
         txt={"$D": "v=spf1 a:h.$D ?a:x.$D -all"},
         a={"h.$D": [IP], "x.$D": [IP]}),
    case("a-nxdomain", "5.3", "fail", txt={"$D": "v=spf1 a:nx.$D -all"}),
    case("a-trailing-dot", "4.8", "pass", txt={"$D": "v=spf1 a:h.$D. -all"},
         a={"h.$D": [IP]}),

    # --- 5.4: mx ---
    case("mx-self", "5.4", "pass", txt={"$D": "v=spf1 mx -all"},
         mx={"$D": ["m1.$D", "m2.$D"]},
         a={"m1.$D": [OTHER], "m2.$D": [IP]}),
    case("mx-miss", "5.4", "fail", txt={"$D": "v=spf1 mx -all"},
         mx={"$D": ["m1.$D"]}, a={"m1.$D": [OTHER]}),
    case("mx-cidr", "5.4", "pass", txt={"$D": "v=spf1 mx:$D/24 -all"},
         mx={"$D": ["m1.$D"]}, a={"m1.$D": ["192.0.2.99"]}),
    case("mx-v6", "5.4", "pass", ip=IP6, txt={"$D": "v=spf1 mx -all"},
         mx={"$D": ["m1.$D"]}, a={"m1.$D": [OTHER]},
         aaaa={"m1.$D": [IP6]}),
    case("mx-ten", "4.6.4", "fail", txt={"$D": "v=spf1 mx -all"},
         mx={"$D": [f"m{i}.$D" for i in range(10)]},
         a={f"m{i}.$D": [OTHER] for i in range(10)}),
    case("mx-eleven", "4.6.4", "permerror", txt={"$D": "v=spf1 mx -all"},
         mx={"$D": [f"m{i}.$D" for i in range(11)]},
         a={f"m{i}.$D": [IP] for i in range(11)}),

    # --- 5.5: ptr (each with its own client address) ---
    case("ptr-valid", "5.5", "pass", ip="192.0.2.51",
         txt={"$D": "v=spf1 ptr -all"},
         ptr={"192.0.2.51": ["mail.$D"]}, a={"mail.$D": ["192.0.2.51"]}),
    case("ptr-unvalidated", "5.5", "fail", ip="192.0.2.52",
         txt={"$D": "v=spf1 ptr -all"},
         ptr={"192.0.2.52": ["mail.$D"]}, a={"mail.$D": [OTHER]}),
    case("ptr-domain", "5.5", "pass", ip="192.0.2.53",
         txt={"$D": "v=spf1 ptr:other.$D -all"},
         ptr={"192.0.2.53": ["mx.other.$D"]},
         a={"mx.other.$D": ["192.0.2.53"]}),
    case("ptr-none", "5.5", "fail", ip="192.0.2.54",
         txt={"$D": "v=spf1 ptr -all"}),

    # --- 5.7: exists ---
    case("exists-hit", "5.7", "pass",
         txt={"$D": "v=spf1 exists:ok.$D -all"}, a={"ok.$D": ["127.0.0.2"]}),
    case("exists-miss", "5.7", "fail",
         txt={"$D": "v=spf1 exists:no.$D -all"}),
    case("exists-v6-asks-a", "5.7", "pass", ip=IP6,
         txt={"$D": "v=spf1 exists:%{v}.$D -all"},
         a={"ip6.$D": ["127.0.0.2"]}),

    # --- 5.2: include and its result table ---
    case("inc-pass", "5.2", "pass",
         txt={"$D": "v=spf1 include:i.$D -all",
              "i.$D": "v=spf1 ip4:192.0.2.3 -all"}),
    case("inc-fail", "5.2", "neutral",
         txt={"$D": "v=spf1 include:i.$D ?all", "i.$D": "v=spf1 -all"}),
    case("inc-softfail", "5.2", "fail",
         txt={"$D": "v=spf1 include:i.$D -all", "i.$D": "v=spf1 ~all"}),
    case("inc-neutral", "5.2", "softfail",
         txt={"$D": "v=spf1 include:i.$D ~all", "i.$D": "v=spf1 ?all"}),
    case("inc-permerror", "5.2", "permerror",
         txt={"$D": "v=spf1 include:i.$D +all", "i.$D": "v=spf1 bogus"}),
    case("inc-none", "5.2", "permerror",
         txt={"$D": "v=spf1 include:i.$D +all", "i.$D": "not spf"}),
    case("inc-nx", "5.2", "permerror",
         txt={"$D": "v=spf1 include:nx.$D +all"}),
    case("inc-loop", "4.6.4", "permerror",
         txt={"$D": "v=spf1 include:i.$D -all",
              "i.$D": "v=spf1 include:$D -all"}),

    # --- 6.1: redirect ---
    case("red-pass", "6.1", "pass",
         txt={"$D": "v=spf1 redirect=r.$D",
              "r.$D": "v=spf1 ip4:192.0.2.3 -all"}),
    case("red-fail", "6.1", "fail",
         txt={"$D": "v=spf1 redirect=r.$D", "r.$D": "v=spf1 -all"}),
    case("red-unused", "6.1", "pass",
         txt={"$D": "v=spf1 ip4:192.0.2.3 redirect=nx.$D"}),
    case("red-none", "6.1", "permerror",
         txt={"$D": "v=spf1 redirect=nx.$D"}),
    case("red-with-all", "6.1", "softfail",
         txt={"$D": "v=spf1 ~all redirect=r.$D",
              "r.$D": "v=spf1 +all"}),

    # --- 6.2: exp ---
    case("exp-fail", "6.2", "fail",
         txt={"$D": "v=spf1 -all exp=e.$D",
              "e.$D": "%{i} is not allowed to send for %{d}"}),
    case("exp-missing", "6.2", "fail",
         txt={"$D": "v=spf1 -all exp=nx.$D"}),

    # --- 7: macros ---
    case("mac-l", "7.2", "pass", sender="alice@$D",
         txt={"$D": "v=spf1 exists:%{l}.$D -all"},
         a={"alice.$D": ["127.0.0.2"]}),
    case("mac-lr-", "7.3", "pass", sender="strong-bad@$D",
         txt={"$D": "v=spf1 exists:%{lr-}.lp.$D -all"},
         a={"bad.strong.lp.$D": ["127.0.0.2"]}),
    case("mac-l1r-", "7.3", "pass", sender="strong-bad@$D",
         txt={"$D": "v=spf1 exists:%{l1r-}.lp.$D -all"},
         a={"strong.lp.$D": ["127.0.0.2"]}),
    case("mac-ir-v", "7.4", "pass",
         txt={"$D": "v=spf1 exists:%{ir}.%{v}._spf.$D -all"},
         a={"3.2.0.192.in-addr._spf.$D": ["127.0.0.2"]}),
    case("mac-ir-v6", "7.4", "pass", ip=IP6,
         txt={"$D": "v=spf1 exists:%{ir}.%{v}._spf.$D -all"},
         a={"1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"
            ".ip6._spf.$D": ["127.0.0.2"]}),
    case("mac-d2", "7.3", "pass", sender="user@sub.$D",
         txt={"sub.$D": "v=spf1 exists:%{d2}.check.$D -all"},
         a={"$D.check.$D": ["127.0.0.2"]}),
    case("mac-dr", "7.3", "pass", sender="user@sub.$D",
         txt={"sub.$D": "v=spf1 exists:x.%{d1r}.$D -all"},
         a={"x.sub.$D": ["127.0.0.2"]}),
    case("mac-o-h", "7.2", "pass", helo="helo.$D",
         txt={"$D": "v=spf1 exists:%{h}.%{o} -all"},
         a={"helo.$D.$D": ["127.0.0.2"]}),
    case("mac-c-not-here", "7.2", "permerror",
         txt={"$D": "v=spf1 exists:%{c}.$D -all"}),
    case("mac-unknown", "7.1", "permerror",
         txt={"$D": "v=spf1 exists:%{x}.$D -all"}),
    case("mac-bad-percent", "7.1", "permerror",
         txt={"$D": "v=spf1 exists:%a.$D -all"}),

    # --- 4.6, 5, 6: syntax errors are permerror, checked first ---
    case("syn-unknown-mech", "4.6.1", "permerror",
         txt={"$D": "v=spf1 foo -all"}),
    case("syn-ip4", "5.6", "permerror", txt={"$D": "v=spf1 ip4:1.2.3 -all"}),
    case("syn-cidr", "5.6", "permerror",
         txt={"$D": "v=spf1 ip4:192.0.2.0/33 -all"}),
    case("syn-ip6-cidr", "5.6", "permerror",
         txt={"$D": "v=spf1 ip6:2001:db8::/129 -all"}),
    case("syn-no-toplabel", "4.6.1", "permerror",
         txt={"$D": "v=spf1 a:foo -all"}),
    case("syn-numeric-toplabel", "4.6.1", "permerror",
         txt={"$D": "v=spf1 a:foo.123 -all"}),
    case("syn-two-redirects", "6", "permerror",
         txt={"$D": "v=spf1 redirect=a.$D redirect=b.$D"}),
    case("syn-two-exps", "6", "permerror",
         txt={"$D": "v=spf1 -all exp=a.$D exp=b.$D"}),
    case("syn-all-arg", "5.1", "permerror", txt={"$D": "v=spf1 -all:foo"}),
    case("syn-after-match", "4.6", "permerror",
         txt={"$D": "v=spf1 +all ip4:bad"}),
    case("syn-unknown-modifier", "6", "fail",
         txt={"$D": "v=spf1 foo=bar -all"}),

    # --- 4.6.4: processing limits ---
    case("lim-ten", "4.6.4", "fail", txt={"$D": f"v=spf1 {TEN_A} -all"},
         a={"h.$D": [OTHER]}),
    case("lim-eleven", "4.6.4", "permerror",
         txt={"$D": f"v=spf1 {TEN_A} a:h.$D -all"}, a={"h.$D": [OTHER]}),
    case("lim-includes", "4.6.4", "permerror",
         txt={"$D": "v=spf1 include:i.$D include:i.$D -all",
              "i.$D": "v=spf1 a:h.$D a:h.$D a:h.$D a:h.$D a:h.$D ?all"},
         a={"h.$D": [OTHER]}),
    case("lim-match-first", "4.6.4", "pass",
         txt={"$D": f"v=spf1 {TEN_A} ip4:192.0.2.3 a:h.$D -all"},
         a={"h.$D": [OTHER]}),
    case("void-two", "4.6.4", "fail",
         txt={"$D": "v=spf1 a:nx1.$D a:nx2.$D -all"}),
    case("void-three", "4.6.4", "permerror",
         txt={"$D": "v=spf1 a:nx1.$D exists:nx2.$D a:nx3.$D -all"}),
    case("void-nodata", "4.6.4", "permerror",
         txt={"$D": "v=spf1 a:t1.$D a:t2.$D mx:t3.$D -all",
              "t1.$D": "x", "t2.$D": "x", "t3.$D": "x"}),

    # --- 2.4: the HELO identity for the null sender ---
    case("helo-pass", "2.4", "pass", sender="", helo="mx.$D",
         txt={"mx.$D": "v=spf1 a -all"}, a={"mx.$D": [IP]}),
    case("helo-fail", "2.4", "fail", sender="", helo="mx.$D", ip=OTHER,
         txt={"mx.$D": "v=spf1 a -all"}, a={"mx.$D": [IP]}),

    # --- temperror: a server that never answers (slow.test) ---
    case("tmo-txt", "4.4", "temperror", sender="user@" + SLOW, timeout=True),
    case("tmo-a", "5.3", "temperror",
         txt={"$D": "v=spf1 a:h." + SLOW + " -all"}, timeout=True),
    case("tmo-include", "5.2", "temperror",
         txt={"$D": "v=spf1 include:i." + SLOW + " -all"}, timeout=True),
    case("tmo-exp", "6.2", "fail",
         txt={"$D": "v=spf1 -all exp=e." + SLOW}, timeout=True),
]


def expand(text, cid):
    return text.replace("$D", f"{cid}.test")


def resolved(c):
    """The case with "$D" replaced in sender, helo and every record."""
    cid = c["id"]
    out = dict(c)
    out["sender"] = expand(c["sender"], cid)
    out["helo"] = expand(c["helo"], cid)
    for kind in ("txt", "a", "aaaa", "mx", "ptr"):
        recs = {}
        for name, v in c[kind].items():
            if isinstance(v, (str, tuple)):
                v = [v]
            recs[expand(name, cid)] = [
                tuple(expand(s, cid) for s in r) if isinstance(r, tuple)
                else expand(r, cid) for r in v]
        out[kind] = recs
    return out


def reverse_name(ip):
    import ipaddress
    return ipaddress.ip_address(ip).reverse_pointer


def dnsmasq_args(cases):
    """dnsmasq options serving every case's records."""
    args = []
    for c in map(resolved, cases):
        for name, recs in c["txt"].items():
            for r in recs:
                text = ",".join(r) if isinstance(r, tuple) else r
                args.append(f"--txt-record={name},{text}")
        names = set(c["a"]) | set(c["aaaa"])
        for name in sorted(names):
            v4 = c["a"].get(name, [])
            v6 = c["aaaa"].get(name, [])
            for i in range(max(len(v4), len(v6))):
                parts = [name]
                if i < len(v4):
                    parts.append(v4[i])
                if i < len(v6):
                    parts.append(v6[i])
                args.append("--host-record=" + ",".join(parts))
        for name, hosts in c["mx"].items():
            for i, h in enumerate(hosts):
                args.append(f"--mx-host={name},{h},{10 * (i + 1)}")
        for ip, names in c["ptr"].items():
            for n in names:
                args.append(f"--ptr-record={reverse_name(ip)},{n}")
    return args
