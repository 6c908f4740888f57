"""What a large ``per-node-ignores`` table costs: the old matching and parsing against today's,
side by side in one run (issue 13: 50,000 globs took 18 s on a 9 KB model).

Measures the median of N repeats of:
  match (fnmatch loop)  every (rule, node) of the model asked of every glob, as before
  match (GlobSet)       the same questions through ``Settings.is_ignored_for_node`` (a fresh
                        ``Settings`` each repeat, so compiling is counted)
  yaml (3 x SafeLoader) the configuration parsed as before: events, safe_load, compose
  yaml (parse_yaml)     today's ``deconvlint.config.lines.parse_yaml``
Usage: python benchmarks/per_node_ignores.py [-n N] [--globs G]
"""

from __future__ import annotations

import argparse
import fnmatch
import statistics
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    import yaml

    from deconvlint.config.lines import parse_yaml
    from deconvlint.config.settings import Settings
    from deconvlint.engine import check_path

    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3)
    parser.add_argument("--globs", type=int, default=50_000)
    args = parser.parse_args()

    globs = {f"layer{i}.*": ("DL001",) for i in range(args.globs // 2)}
    globs |= {f"*.branch{i}": ("DL003",) for i in range(args.globs - len(globs))}
    text = "per-node-ignores:\n" + "".join(f'  "{g}": [{r[0]}]\n' for g, r in globs.items())
    model = ROOT / "examples" / "cyclegan_decoder.onnx"
    findings = check_path(str(model)).findings
    nodes = sorted({f.node for f in findings})
    rules = ("DL001", "DL003", "DL004")

    def old_match() -> None:
        for node in nodes:
            for rule in rules:
                any(
                    fnmatch.fnmatchcase(node, g) and any(rule.startswith(s) for s in r)
                    for g, r in globs.items()
                )

    def new_match() -> None:
        chosen = Settings(per_node_ignores=globs)
        for node in nodes:
            for rule in rules:
                chosen.is_ignored_for_node(rule, node)

    def old_yaml() -> None:
        list(yaml.parse(text, Loader=yaml.SafeLoader))
        yaml.safe_load(text)
        yaml.compose(text, Loader=yaml.SafeLoader)

    def new_yaml() -> None:
        parse_yaml(text, ".deconvlint.yaml")

    print(f"{len(globs)} globs, {len(nodes)} nodes x {len(rules)} rules, {len(text)} bytes of YAML")
    rows = [
        ("match (fnmatch loop)", old_match),
        ("match (GlobSet)", new_match),
        ("yaml (3 x SafeLoader)", old_yaml),
        ("yaml (parse_yaml)", new_yaml),
    ]
    times = {
        name: statistics.median(timeit.repeat(fn, number=1, repeat=args.n)) for name, fn in rows
    }
    for name, seconds in times.items():
        print(f"{name:24s} {seconds * 1000:10.1f} ms")
    print(
        f"ratios: matching {times['match (fnmatch loop)'] / times['match (GlobSet)']:.0f}x, "
        f"YAML {times['yaml (3 x SafeLoader)'] / times['yaml (parse_yaml)']:.1f}x"
    )


if __name__ == "__main__":
    main()
