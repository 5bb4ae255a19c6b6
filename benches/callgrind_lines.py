#!/usr/bin/env python3
"""Per-call cost by source line, from two callgrind runs that differ only in
how many times a loop ran (benches/constant.sh).

    callgrind_lines.py SHORT.out LONG.out EXTRA_ITERATIONS

Reads the self cost of every (source file, line, function) in both files
(inlined code keeps its own file and line), subtracts, divides by
EXTRA_ITERATIONS and prints one TSV row per line that costs at least half an
instruction per iteration, with the category it belongs to, then a table of
the categories. Only the Python standard library is used.
"""
import collections
import re
import sys

NAME = re.compile(r'^(fl|fi|fe|fn|cfl|cfi|cfn|ob|cob)=\((\d+)\)(?: (.*))?$')
COST = re.compile(r'^([+-]?\d+|\*)\s+(\d+)')


def load(path):
    names = collections.defaultdict(dict)
    cost = collections.Counter()
    fl = fi = fn = None
    line = 0
    call_cost_follows = False
    for raw in open(path):
        text = raw.rstrip('\n')
        m = NAME.match(text)
        if m:
            key, ident, name = m.groups()
            kind = 'fn' if key in ('fn', 'cfn') else 'ob' if key in ('ob', 'cob') else 'fl'
            if name:
                names[kind][ident] = name
            name = names[kind].get(ident, '?')
            if key == 'fl':
                fl = fi = name
            elif key in ('fi', 'fe'):
                fi = name
            elif key == 'fn':
                fn = name
                fi = fl
            continue
        if text.startswith('calls='):
            call_cost_follows = True  # the next cost line is inclusive: skip it
            continue
        m = COST.match(text)
        if m:
            position, value = m.groups()
            if position[0] in '+-':
                line += int(position)
            elif position != '*':
                line = int(position)
            if call_cost_follows:
                call_cost_follows = False
                continue
            cost[(fi, line, fn)] += int(value)
    return cost


def short(path):
    path = path or '?'
    if re.match(r'^/rustc/[0-9a-f]+/library/', path):
        return re.sub(r'^/rustc/[0-9a-f]+/library/', '', path)
    return re.sub(r'^.*/(src|benches|asm)/', r'\1/', path)


def category(path, line, fn):
    """Which part of the port's constant a line belongs to (by file: the
    heap's code is inlined into the C functions)."""
    fn = fn or ''
    if path.startswith('benches/'):
        return 'C driver loop (the same in the original)'
    if path.startswith('asm/'):
        return "the original's run.s"
    if path == 'src/walk.rs':
        return "asm walk and stores (run.s's instructions)"
    if path in ('src/index.rs', 'core/src/num/uint_macros.rs', 'core/src/cmp.rs', 'core/src/hint.rs') \
            or 'segment_at' in fn or (path == 'core/src/slice/mod.rs' and 2900 <= line <= 3100):
        return 'pointer check (block index lookup), size and pointer arithmetic'
    if path == 'src/fit_index.rs':
        return 'indexed-fit tree (descent and updates)'
    if path in ('src/lock.rs', 'src/process.rs') or path.startswith('std/src/sys/thread_local') \
            or path == 'core/src/sync/atomic.rs':
        return 'lock + unlock (src/lock.rs)'
    if path == 'src/heap/held_pools.rs':
        return 'held-pool check'
    if path in ('src/c_abi.rs', 'core/src/option.rs', 'core/src/result.rs'):
        return 'C ABI: argument widening, fast-path branches, returns'
    if path in ('src/heap.rs', 'src/mapped_vec.rs', 'src/header.rs') or path.startswith('core/'):
        return 'heap: segment loop, header read, tables'
    return 'other'


def regroup(path):
    """The category table of a saved per-line file, with today's categories."""
    totals = collections.Counter()
    for row in open(path):
        cols = row.rstrip('\n').split('\t')
        if len(cols) != 4 or cols[0] == 'ir_per_iteration':
            continue
        file, _, line = cols[1].rpartition(':')
        totals[category(file, int(line), cols[2])] += float(cols[0])
    print('category\tir_per_iteration')
    for cat, per in totals.most_common():
        print(f'{cat}\t{per:.1f}')
    print(f'total\t{sum(totals.values()):.1f}')


def main():
    if sys.argv[1] == '--regroup':
        regroup(sys.argv[2])
        return
    short_run, long_run, extra = sys.argv[1], sys.argv[2], float(sys.argv[3])
    a, b = load(short_run), load(long_run)
    rows = []
    for key in set(a) | set(b):
        per = (b[key] - a[key]) / extra
        if abs(per) >= 0.5:
            path, line, fn = key
            rows.append((short(path), line, fn or '?', per))
    rows.sort()
    totals = collections.Counter()
    print('ir_per_iteration\tfile:line\tfunction\tcategory')
    for path, line, fn, per in rows:
        cat = category(path, line, fn)
        totals[cat] += per
        print(f'{per:.1f}\t{path}:{line}\t{fn}\t{cat}')
    print()
    print('category\tir_per_iteration')
    for cat, per in totals.most_common():
        print(f'{cat}\t{per:.1f}')
    print(f'total\t{sum(totals.values()):.1f}')


if __name__ == '__main__':
    main()
