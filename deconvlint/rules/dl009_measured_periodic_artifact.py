"""DL009 measured-periodic-artifact: what ``--probe`` measured at the harmonics of an
upsampler's period, on smooth inputs.
"""

from __future__ import annotations

from collections.abc import Iterator

from deconvlint.report import Finding
from deconvlint.rules.base import Context, fmt_number

RULE_ID = "DL009"


def check(ctx: Context) -> Iterator[Finding]:
    measured = ctx.graph.measurements
    if not measured:
        return
    max_db = float(ctx.option("max-db"))
    outputs = [m for m in measured.values() if m.output]
    outputs_clean = bool(outputs) and all(m.db <= max_db for m in outputs)
    for node in ctx.graph.nodes:
        m = measured.get(node.name)
        if m is None or m.db <= max_db:
            continue
        # an intermediate artifact that no graph output shows: something later removed it
        severity, tail = (
            ("info", "; every graph output measures below max-db")
            if outputs_clean and not m.output
            else (None, "")
        )
        where = f"graph output '{m.value}'" if m.output else f"the output of {node.op_type}"
        peak = " x ".join(str(f) for f in m.peak)
        message = (
            f"measured periodic artifact: on smooth probe inputs, {where} carries "
            f"{fmt_number(round(m.db, 1))} dB of energy at the harmonics of its period "
            f"{' x '.join(str(p) for p in m.periods)} against the smooth signal (> max-db "
            f"{fmt_number(max_db)}); strongest at {peak} cycles/sample ({fmt_number(round(m.peak_db, 1))} dB)"
            f"{tail}"
        )
        yield ctx.finding(node, message, m.to_metrics(), severity=severity)
