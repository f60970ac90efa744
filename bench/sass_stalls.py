#!/usr/bin/env python3
"""Attributes an Nsight Compute per-instruction SASS table to the kernel source's functions and lines.

    bench/sass_stalls.py KERNEL SASS_CSV [--ptx ptx/attention.ptx] [--source kernels/attention.cu] [--top N]
                         [--depth D]

SASS_CSV is `ncu --page source --print-source sass --csv` of KERNEL (what `bench/gpu.sh deform-ncu`
writes as <kernel>-sass.csv). The profiled binary JIT-compiles the embedded PTX without line information,
so this script compiles the same PTX again with `ptxas -lineinfo -arch=sm_90` (sm_90a for an sm_90a PTX,
as ptx/attention_sm90a.ptx, which a Hopper loads) and disassembles it with
`nvdisasm -gi`: the same SASS, row for row (checked: every opcode must match, else it stops), now with the
chain of inlined source lines above each instruction. ptxas and nvdisasm are taken from $NVCC's folder,
else from PATH.

Prints the warp-stall samples and executed instructions by the innermost source function, by the line in
the kernel's own body (or a __noinline__ function's) that the code was inlined into (which phase of the
kernel), by the line D levels of inlining further in (default 1: inside the functions the body calls), and
by function and opcode; each row with its largest stall reasons (ncu's stall_* columns, % of its samples).
"""
import argparse
import collections
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile


def fail(message):
    print(f"sass_stalls.py: {message}", file=sys.stderr)
    sys.exit(2)


def read_text(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        fail(f"{path}: {e.strerror}")


def tool(name):
    nvcc = os.environ.get("NVCC")
    if nvcc and os.path.isfile(os.path.join(os.path.dirname(nvcc), name)):
        return os.path.join(os.path.dirname(nvcc), name)
    found = shutil.which(name)
    if not found:
        fail(f"{name} not found (set NVCC to nvcc's path or put it on PATH)")
    return found


def run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        fail(f"{os.path.basename(command[0])} failed: {(done.stderr.strip().splitlines() or ['?'])[-1]}")
    return done.stdout


def disassemble(ptx, kernel):
    """[(chain of source lines, innermost first; instruction text)] of the kernel's section."""
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        arch = "sm_90a" if ".target sm_90a" in read_text(ptx) else "sm_90"
        run([tool("ptxas"), "-lineinfo", f"-arch={arch}", ptx, "-o", cubin])
        text = run([tool("nvdisasm"), "-gi", cubin])
    rows, inside, block, chain = [], False, [], ()
    for line in text.split("\n"):
        if re.match(r"^\.text\.\S+:", line):
            if inside:
                break
            inside = line.startswith(f".text.{kernel}:")
            continue
        if not inside:
            continue
        if "//## File" in line:
            # One comment per level of inlining, innermost first; its first file and line are that level's.
            m = re.search(r'File "([^"]+)", line (\d+)', line)
            block.append((os.path.basename(m.group(1)), int(m.group(2))))
            continue
        m = re.match(r"\s+/\*[0-9a-f]{4,}\*/\s+(.*?)\s*;", line)
        if m:
            if block:
                chain, block = tuple(block), []
            rows.append((chain, m.group(1)))
    if not rows:
        fail(f"{ptx}: no kernel {kernel}")
    return rows


def opcode(instruction):
    words = instruction.split()
    word = words[1] if words[0].startswith("@") else words[0]
    return word.split(".")[0]


def functions_by_line(lines):
    """The function each source line belongs to (the last `__device__ … name(` or kernel name above it)."""
    names, current = {}, "?"
    for number, line in enumerate(lines, 1):
        called = re.search(r"(\w+)\(", line)
        if called and line.startswith("__device__"):
            current = called.group(1)
        elif called and re.match(r"^deform_\w+\(|^\w+\(const", line):
            current = line.split("(")[0]
        names[number] = current
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("kernel")
    ap.add_argument("sass_csv")
    ap.add_argument("--ptx", default="ptx/attention.ptx")
    ap.add_argument("--source", default="kernels/attention.cu")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--depth", type=int, default=1)
    args = ap.parse_args()

    table = list(csv.reader(read_text(args.sass_csv).splitlines()))
    header = next((i for i, row in enumerate(table) if row and row[0] == "Address"), None)
    if header is None:
        fail(f"{args.sass_csv}: no header row (Address, Source, …): not ncu's --print-source sass --csv")
    columns, rows = table[header], [r for r in table[header + 1:] if len(r) > 2]
    wanted = ("Warp Stall Sampling (All Samples)", "Instructions Executed", "Source")
    missing = [c for c in wanted if c not in columns]
    if missing:
        fail(f"{args.sass_csv}: no column {missing[0]!r}")
    stalls, executed, source_col = (columns.index(c) for c in wanted)
    reasons = [(i, c[len("stall_"):]) for i, c in enumerate(columns) if c.startswith("stall_") and "(" not in c]
    sass = disassemble(args.ptx, args.kernel)
    if len(sass) != len(rows):
        fail(f"{args.sass_csv}: {len(rows)} rows, {len(sass)} instructions from {args.ptx}: not the profiled code")
    for i, ((_, ours), row) in enumerate(zip(sass, rows)):
        if opcode(ours) != opcode(row[source_col].strip()):
            fail(f"{args.sass_csv}: instruction {i} is {row[source_col].strip()!r} profiled, {ours!r} in {args.ptx}")

    source_name = os.path.basename(args.source)
    lines = read_text(args.source).split("\n")
    names = functions_by_line(lines)

    def function_of(place):  # (file, line) → the function of that line of the source, or the file's name
        return names.get(place[1], "?") if place[0] == source_name else place[0]

    def new_row():
        return [0, 0, collections.Counter()]

    by_function = collections.defaultdict(new_row)
    by_site = collections.defaultdict(new_row)
    by_opcode = collections.defaultdict(new_row)
    by_inner_site = collections.defaultdict(new_row)
    for (chain, instruction), row in zip(sass, rows):
        s, e = int(row[stalls] or 0), int(row[executed] or 0)
        why = collections.Counter({name: int(row[i] or 0) for i, name in reasons})
        inner = function_of(chain[0]) if chain else "?"
        site = chain[-1] if chain else ("?", 0)
        inner_site = chain[-1 - args.depth] if len(chain) > args.depth else site
        for table_, key in ((by_function, inner), (by_site, site), (by_inner_site, inner_site),
                            (by_opcode, (inner, opcode(instruction)))):
            table_[key][0] += s
            table_[key][1] += e
            table_[key][2].update(why)
    total_s = sum(v[0] for v in by_function.values()) or 1
    total_e = sum(v[1] for v in by_function.values()) or 1

    def show(title, table_, label):
        print(f"\n{title}\n  samples  executed")
        for key, (s, e, why) in sorted(table_.items(), key=lambda kv: -kv[1][0])[: args.top]:
            top = ", ".join(f"{name} {100 * n / max(s, 1):.0f}" for name, n in why.most_common(2) if n)
            print(f"  {100 * s / total_s:6.1f} % {100 * e / total_e:6.1f} %  {label(key)}  [{top}]")

    print(f"{args.kernel}: {total_s} stall samples, {total_e} warp instructions executed")
    show("By innermost source function:", by_function, str)

    def line(place):
        if place[0] != source_name or not 0 < place[1] <= len(lines):
            return f"{place[0]}:{place[1]}"
        return f"{place[1]} ({function_of(place)}): {lines[place[1] - 1].strip()[:90]}"

    show("By the kernel-body line the code comes from (its phase):", by_site, line)
    show(f"By the line {args.depth} level(s) of inlining further in:", by_inner_site, line)
    show("By function and opcode:", by_opcode, lambda k: f"{k[0]}: {k[1]}")


if __name__ == "__main__":
    main()
