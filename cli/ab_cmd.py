"""`recsys ab simulate`: the causal A/B simulator (common/ab_simulation.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer
from tqdm import tqdm

from common.ab_simulation import Outcome, Scenario, plot, regret_table, simulate, table

app = typer.Typer(help="A/B experiments: the causal simulator.", no_args_is_help=True)


@app.command("simulate")
def simulate_command(
    runs: int = typer.Option(1000, "--runs", min=10, help="Experiments per planted effect."),
    days: int = typer.Option(28, "--days", min=1, help="Days per experiment; both tests are looked at daily."),
    customers_per_day: int = typer.Option(500, "--customers-per-day", min=2),
    base_rate: float = typer.Option(0.10, "--base-rate", help="Conversion with the control list."),
    effects: str = typer.Option("0,0.005,0.01,0.02,0.03", "--effects",
                                help="Planted uplifts in conversion, comma-separated (0 is the A/A test)."),
    treatment_share: float = typer.Option(0.5, "--treatment-share"),
    basket_mean: float = typer.Option(30.0, "--basket-mean", help="Mean spend of a buyer."),
    alpha: float = typer.Option(0.05, "--alpha"),
    min_effect: float = typer.Option(0.01, "--min-effect", help="Smallest uplift (conversion points) that matters."),
    seed: int = typer.Option(1, "--seed"),
    bandit: bool = typer.Option(True, "--bandit/--no-bandit",
                                help="Also run each effect with a Thompson-sampling split and compare its regret."),
    out: Path = typer.Option(Path("artifacts/ab_simulation"), "--out", help="Folder for the table, JSON and plot."),
) -> None:
    """Many simulated experiments in which what is shown changes what is bought: the fixed-horizon and the
    always-valid tests checked after every day, their false positives (A/A), power, stopping day and coverage."""
    try:
        planted = [float(e) for e in effects.split(",")]
        scenarios = [Scenario(runs=runs, days=days, customers_per_day=customers_per_day, base_rate=base_rate,
                              effect=effect, treatment_share=treatment_share, basket_mean=basket_mean, alpha=alpha,
                              min_effect=min_effect, seed=seed + i) for i, effect in enumerate(planted)]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    bandits = [replace(s, split="thompson") for s in scenarios] if bandit else []
    outcomes: list[Outcome] = []
    with tqdm(total=days * (len(scenarios) + len(bandits)), unit="day", desc="simulating") as bar:
        for scenario in [*scenarios, *bandits]:
            outcomes.append(simulate(scenario, progress=lambda _day: bar.update(1)))
    fixed, thompson = outcomes[:len(scenarios)], outcomes[len(scenarios):]
    out.mkdir(parents=True, exist_ok=True)
    text = table(fixed)
    if thompson:
        text += "\n\nRegret (the adaptive split is for earning, not for testing: its runs report no test)\n\n"
        text += regret_table(fixed, thompson)
    (out / "table.md").write_text(text + "\n")
    (out / "simulation.json").write_text(json.dumps([o.to_dict() for o in outcomes], indent=2))
    plot(fixed, out / "ab_simulation.png")
    typer.echo(text)
    typer.echo(f"\n{runs:,} runs x {days} days x {customers_per_day} customers/day per effect; "
               f"table, JSON and plot in {out}/")
