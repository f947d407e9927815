#!/usr/bin/env python3
"""Fails when files of one crate import each other in a cycle.

Each `src/**/*.rs` file is a node. An edge a -> b exists when a names `crate::...` (or
`super::...`) and the longest module prefix of that path is b's module; a `mod.rs`/`lib.rs`
naming a child by a relative path (`child::f()`, `pub use child::X`) is an edge too. A cycle means two files cannot be
understood apart, so the check prints every strongly connected component of more than one file.
Within a crate, import an item from the file that defines it, not through a re-export.

Usage: scripts/import_cycles.py crates/entra-auth crates/entra-webapp ...
"""
import re
import sys
from pathlib import Path

USE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def module_path(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_tests(text: str) -> str:
    # Unit tests at the bottom of a file (`#[cfg(test)] mod tests`) may use anything.
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod tests", text, re.M)
    return text[: cut.start()] if cut else text


def edges_of(src: Path):
    files = {module_path(src, f): f for f in src.rglob("*.rs")}
    graph = {m: set() for m in files}
    for module, file in files.items():
        text = strip_tests(file.read_text())
        text = re.sub(r"//.*", "", text)
        is_dir_module = file.name in ("mod.rs", "lib.rs", "main.rs")
        for root, rest in USE.findall(text):
            names = [n for n in rest.split("::") if n]
            # `super` of `a/b.rs` and of `a/b/mod.rs` is `a`.
            base = () if root == "crate" else module[:-1]
            while names and names[0] == "super":
                base, names = base[:-1], names[1:]
            target = tuple(base)
            for name in names:
                if target + (name,) in files:
                    target = target + (name,)
                else:
                    break
            if target != module and target in files:
                graph[module].add(target)
        if is_dir_module:
            # A parent naming a child by a relative path (`child::f()`, `pub use child::X`).
            for child in set(re.findall(r"(?<![:\w])([a-z_][a-z0-9_]*)::", text)):
                if module + (child,) in files:
                    graph[module].add(module + (child,))
    return graph, files


def cycles(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(component)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    failed = False
    for crate in sys.argv[1:]:
        src = Path(crate) / "src"
        graph, files = edges_of(src)
        found = cycles(graph)
        for component in found:
            failed = True
            names = sorted(str(files[m].relative_to(crate)) for m in component)
            print(f"{crate}: import cycle between {', '.join(names)}")
        if not found:
            print(f"{crate}: {len(files)} files, no import cycle")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
