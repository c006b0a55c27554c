"""Community ID v1 of flow tuples by the spec's reference implementation.

Reads one JSON object per line on stdin,
  {"seed": 0, "proto": 6, "saddr": "1.2.3.4", "daddr": "5.6.7.8", "sport": 1, "dport": 2}
("sport"/"dport" absent for a port-less protocol; the ICMP type and code
for ICMP and ICMPv6), and writes one line per object on stdout: the ID, or
"error: ..." when the implementation refuses the tuple. The first line out
is "communityid VERSION", so the caller knows what it compared against.
"""
import json
import sys
from importlib.metadata import version

import communityid


def main():
    out = sys.stdout
    out.write("communityid %s\n" % version("communityid"))
    ids = {}
    for line in sys.stdin:
        t = json.loads(line)
        seed = t["seed"]
        if seed not in ids:
            ids[seed] = communityid.CommunityID(seed)
        cid = ids[seed]
        try:
            tpl = communityid.FlowTuple(t["proto"], t["saddr"], t["daddr"],
                                        t.get("sport"), t.get("dport"))
        except communityid.FlowTupleError as err:
            out.write("error: %s\n" % err)
            continue
        res = cid.calc(tpl)
        out.write(res if res is not None else "error: %s" % cid.get_error())
        out.write("\n")


if __name__ == "__main__":
    main()
