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
    """Which part of the port's constant a line belongs to."""
    in_c_entry = fn in ('allocate', 'deallocate', 'deallocate_pool')
    if path.startswith('benches/'):
        return 'C driver loop (the same in the original)'
    if path.startswith('asm/'):
        return "the original's run.s"

    if path == 'src/walk.rs':
        return "asm walk and stores (run.s's instructions)"
    if 'try_deallocate' in (fn or '') and (
        path in ('core/src/cmp.rs', 'core/src/hint.rs', 'core/src/ptr/mod.rs', 'src/index.rs')
        or (path == 'core/src/slice/mod.rs' and line != 156 and line != 282)
    ):
        return 'binary search in the block index (try_deallocate)'
    if path.startswith('std/src/sys/sync/mutex') or (path == 'core/src/sync/atomic.rs' and line != 3975):
        return 'lock + unlock (std Mutex on a futex)'
    if path in ('std/src/panicking.rs', 'std/src/sync/poison.rs'):
        return 'poison bookkeeping (lock and unlock)'
    if in_c_entry and (path == 'core/src/sync/atomic.rs' or path == 'src/heap.rs'
                       or path == 'core/src/slice/mod.rs'):
        return 'memory_start/memory_end stores on unlock'
    if path == 'src/pools.rs' or ('try_deallocate' in (fn or '') and path in (
            'core/src/slice/iter/macros.rs', 'core/src/bool.rs')):
        return 'held-pool check'
    if path in ('src/c_abi.rs', 'core/src/option.rs', 'core/src/result.rs'):
        return 'C ABI entry/exit, int widening, Option/Result'
    if 'try_deallocate' in (fn or ''):
        return 'try_deallocate: pointer arithmetic, header read, branches'
    if 'allocate' in (fn or ''):
        return 'Heap::allocate: prologue, size check, segment loop'
    return 'other'


def main():
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
