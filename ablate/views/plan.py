"""``ablate plan``'s answer as text: the replicates a design needs, and the power they give
(:func:`ablate.stats.power.plan_replicates` computes them)."""

from __future__ import annotations

import math
import textwrap

from ablate.stats.power import ReplicatePlan


def render_plan(plan: ReplicatePlan) -> str:
    """``ablate plan``'s answer as text."""
    what = "main effects" if plan.model == "main" else "main effects and 2-factor interactions"
    lines = [
        f"Study {plan.study}: {plan.design}; {plan.runs} runs.",
        f"Model: {what} ({plan.parameters} coefficients). Response: {plan.response}.",
        f"Noise: σ = {plan.noise.sd:.4g}, from {plan.noise.source}.",
        *([f"Warning: {plan.noise.warning}."] if plan.noise.warning else []),
        f"Goal: detect a difference of {plan.effect:g} in {plan.response} between two levels "
        f"of any factor (two-sided t test, α = {plan.alpha:g}) with power {plan.power:g}.",
        "",
        "replicates  trials  residual df  power of the weakest contrast",
    ]
    for _, row in plan.table.iterrows():
        power = "no df" if math.isnan(row["power"]) else f"{row['power']:.3f}"
        lines.append(
            f"{int(row['replicates']):>10}  {int(row['trials']):>6}  {int(row['df_resid']):>11}"
            f"  {power} ({row['weakest']})"
        )
    lines.append("")
    if plan.replicates is None:
        lines.append(
            f"Not reachable within {int(plan.table['replicates'].max())} replicates: ask for a "
            "larger effect, a lower power, or a design with more runs."
        )
    else:
        lines.append(
            f"Needed: {plan.replicates} replicate(s) per run = {plan.trials} trials "
            f"(replicates: {plan.replicates} in the study file)."
        )
        if plan.wall_seconds is not None:
            lines.append(
                f"Expected wall time: {_duration(plan.wall_seconds)} with {plan.workers} "
                f"worker(s) on this machine ({plan.noise.time_source})."
            )
    spread = plan.contrasts
    lines.append(
        f"Every contrast's power at {plan.replicates or int(plan.table['replicates'].max())} "
        "replicate(s): "
        + ", ".join(
            f"{f} {c} {p:.2f}"
            for f, c, p in zip(spread["factor"], spread["contrast"], spread["power"], strict=True)
        )
        + "."
    )
    lines.append(
        "How: the t test of each contrast, as ablate analyze reports it, on the model's "
        "residual df; power from statsmodels' FTestPowerF2 (noncentral F with one numerator "
        "df, noncentrality δ² = D²·r / (σ²·L'(X'X)⁻¹L)). Multiple-testing adjustment is not "
        "included: with Holm's, plan for a smaller α."
    )
    return "\n".join(
        textwrap.fill(line, 100, subsequent_indent="  ") if len(line) > 100 else line
        for line in lines
    )


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
