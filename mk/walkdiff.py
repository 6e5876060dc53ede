#!/usr/bin/env python3
"""walkdiff.py BASE.txt LOAD.txt N: files with a block run >= N more times under load."""
import sys, collections
def read(p):
    c = collections.Counter()
    for l in open(p):
        if l.startswith('mode:'): continue
        blk, n, cnt = l.rsplit(' ', 2)
        c[blk] += int(cnt)
    return c
a, b, n = read(sys.argv[1]), read(sys.argv[2]), int(sys.argv[3])
files = collections.Counter()
for blk, cnt in b.items():
    if cnt - a.get(blk, 0) >= n:
        files[blk.split(':')[0].replace('github.com/latticed/latticed/', '')] += 1
for f in sorted(files): print(f)
print(len(files), 'files', file=sys.stderr)
