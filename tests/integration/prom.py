#!/usr/bin/env python3
"""Scrape a Prometheus text endpoint and print one series' value.

  prom.py URL SERIES...    print the value of each SERIES (as written in the
                           exposition, labels in the order given), "absent" if none

The whole answer is parsed as the text format (version 0.0.4) first: every
sample must belong to a family announced by # TYPE, label values must be quoted
and escaped, values must be numbers; a violation exits 1 with the line."""
import re
import sys
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse(text):
    families = {}
    series = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            if kind not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError(f"line {n}: unknown type {kind}")
            families[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"line {n}: not a sample: {line}")
        name, _, labels, value = m.groups()
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in families and base not in families:
            raise ValueError(f"line {n}: {name} has no # TYPE")
        pos = 0
        while labels and pos < len(labels):
            lm = LABEL.match(labels, pos)
            if not lm:
                raise ValueError(f"line {n}: bad labels: {labels}")
            pos = lm.end()
        float(value)
        key = name + ("{" + labels + "}" if labels else "")
        if key in series:
            raise ValueError(f"line {n}: {key} twice")
        series[key] = float(value)
    return series


def main():
    url, wanted = sys.argv[1], sys.argv[2:]
    with urllib.request.urlopen(url, timeout=5) as r:
        ctype = r.headers.get("Content-Type", "")
        text = r.read().decode("utf-8")
    if not ctype.startswith("text/plain; version=0.0.4"):
        print(f"unexpected Content-Type: {ctype}", file=sys.stderr)
        sys.exit(1)
    try:
        series = parse(text)
    except ValueError as e:
        print(f"not the Prometheus text format: {e}", file=sys.stderr)
        sys.exit(1)
    for w in wanted:
        v = series.get(w)
        print("absent" if v is None else ("%g" % v))


if __name__ == "__main__":
    main()
