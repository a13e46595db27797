#!/usr/bin/env python3
"""Checks that calls between the library's source files run in one direction.

Usage: check_layers.py LIBRARY.a SRC_DIR LAYER [LAYER ...]

LAYERs are src/'s folders, lowest first, as src/meson.build lists them. From the object files
of the static library (nm: which file defines each symbol, which file uses it) and from the
`#include "folder/name.h"` lines of the sources, it refuses:
  - a call from a file to a file in a folder later in the list (a folder calling one above it);
  - an include of a header of a later folder;
  - files calling each other in a circle, in one folder or across folders (printed as the
    circle, file by file, with one symbol per step).
Exit status 0 when every rule holds, 1 with one line per violation otherwise.
"""
import os
import re
import subprocess
import sys


def nm(lib, flag):
    out = subprocess.run(['nm', '-A', flag, lib], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            # "lib.a:member.o: [address] type symbol"; a thin archive names members by path
            member = os.path.basename(line.split(':')[1])
            yield member, parts[-2], parts[-1]


def main():
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    lib, src, layers = sys.argv[1], sys.argv[2], sys.argv[3:]
    rank = {layer: i for i, layer in enumerate(layers)}
    files = {}  # object member name -> "folder/file.c"
    for layer in layers:
        for name in sorted(os.listdir(os.path.join(src, layer))):
            if name.endswith('.c'):
                # meson names the object of folder/name.c "folder_name.c.o"
                files['%s_%s.o' % (layer, name)] = '%s/%s' % (layer, name)

    def folder(path):
        return path.split('/')[0]

    defined = {}
    for member, kind, sym in nm(lib, '--defined-only'):
        if kind in 'TDBRC' and member in files:
            defined[sym] = files[member]
    unknown = sorted({m for m, _, _ in nm(lib, '--defined-only') if m not in files})
    problems = ['object %s is not in any layer folder %s' % (m, layers) for m in unknown]

    calls = {}  # caller -> {callee: a symbol}
    for member, _, sym in nm(lib, '--undefined-only'):
        if member in files and sym in defined and defined[sym] != files[member]:
            calls.setdefault(files[member], {}).setdefault(defined[sym], sym)

    for caller, callees in sorted(calls.items()):
        for callee, sym in sorted(callees.items()):
            if rank[folder(callee)] > rank[folder(caller)]:
                problems.append('%s calls %s (%s): %s/ is above %s/' %
                                (caller, callee, sym, folder(callee), folder(caller)))

    include = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/([a-z_]+\.h)"', re.M)
    for layer in layers:
        for name in sorted(os.listdir(os.path.join(src, layer))):
            if not name.endswith(('.c', '.h')):
                continue
            with open(os.path.join(src, layer, name)) as f:
                text = f.read()
            for target, header in include.findall(text):
                if target in rank and rank[target] > rank[layer]:
                    problems.append('%s/%s includes %s/%s: %s/ is above %s/' %
                                    (layer, name, target, header, target, layer))

    # Circles: Tarjan's strongly connected components over the call graph.
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in calls.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    for v in sorted(set(files.values())):
        if v not in index:
            visit(v)
    for comp in circles:
        # One circle through the component, for the message: follow calls that stay inside it.
        start, path, seen = comp[0], [comp[0]], {comp[0]}
        while True:
            nxt = [w for w in sorted(calls.get(path[-1], {})) if w in comp]
            back = [w for w in nxt if w == start]
            step = back[0] if back else next((w for w in nxt if w not in seen), None)
            if step is None:
                break
            path.append(step)
            if step == start:
                break
            seen.add(step)
        steps = ' -> '.join('%s (%s)' % (a, calls[a][b]) for a, b in zip(path, path[1:]))
        problems.append('files call each other in a circle: %s -> %s' % (steps, path[-1]))

    for p in problems:
        print('check_layers: ' + p)
    n_calls = sum(len(v) for v in calls.values())
    print('check_layers: %d files in %d folders, %d file-to-file calls, %d problems' %
          (len(files), len(layers), n_calls, len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
