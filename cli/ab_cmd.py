"""`recsys ab simulate`: the causal A/B simulator (common/ab_simulation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from tqdm import tqdm

from common.ab_simulation import Outcome, Scenario, plot, simulate, table

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
    outcomes: list[Outcome] = []
    with tqdm(total=days * len(scenarios), unit="day", desc="simulating") as bar:
        for scenario in scenarios:
            outcomes.append(simulate(scenario, progress=lambda _day: bar.update(1)))
    out.mkdir(parents=True, exist_ok=True)
    text = table(outcomes)
    (out / "table.md").write_text(text + "\n")
    (out / "simulation.json").write_text(json.dumps([o.to_dict() for o in outcomes], indent=2))
    plot(outcomes, out / "ab_simulation.png")
    typer.echo(text)
    typer.echo(f"\n{runs:,} runs x {days} days x {customers_per_day} customers/day per effect; "
               f"table, JSON and plot in {out}/")
