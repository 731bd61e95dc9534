"""`recsys ab`: experiments (start, list, stop, promote; through the API, the changes keyed like every
state-changing action) and the causal A/B simulator (experiments/simulation.py)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer
from tqdm import tqdm

from common.settings import Settings, get_settings
from experiments.simulation import Outcome, Scenario, cuped_table, plot, regret_table, simulate, table
from ui.experiment import render_summary

app = typer.Typer(help="A/B experiments: start, list, stop and promote them, and the causal simulator.",
                  no_args_is_help=True)
ApiUrlOption = typer.Option(None, "--api-url", help="The API (default: RECSYS_API_HOST:RECSYS_API_PORT).")
STOP_TIMEOUT_S = 120.0  # freeing a big experiment's keys takes a while


def _call(settings: Settings, method: str, path: str, api_url: str | None, keyed: bool = False,
          body: dict[str, Any] | None = None) -> Any:
    headers = {}
    key = settings.api_key if keyed else settings.api_read_key or settings.api_key
    if keyed and key is None:
        _fail("starting, stopping and promoting experiments are keyed actions: set RECSYS_API_KEY")
    if key is not None:
        headers["X-API-Key"] = key.get_secret_value()
    url = (api_url or settings.api_base_url).rstrip("/") + path
    try:
        response = httpx.request(method, url, headers=headers, json=body, timeout=STOP_TIMEOUT_S)
    except httpx.HTTPError as exc:
        _fail(f"the API at {url} did not answer ({type(exc).__name__}); is `recsys serve` running?")
    if response.status_code >= 400:
        detail = response.json().get("detail") if "json" in response.headers.get("content-type", "") else None
        _fail(f"{method} {path}: {response.status_code} {detail or response.text}")
    return response.json()


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code=2)


@app.command("start")
def start_command(
    name: str = typer.Argument(..., help="The experiment's name (new; letters, digits, '_', '-', '.')."),
    arms: list[str] = typer.Option(..., "--arm", help="NAME=best_sellers or NAME=model:VERSION ('current' follows "
                                                      "the pointer); repeat per arm, the control first."),
    split: str | None = typer.Option(None, "--split", help="Percent per arm, comma-separated, adding up to 100 "
                                                          "(default: even; a bandit's first split)."),
    bandit: bool = typer.Option(False, "--bandit", help="Re-weight the split by Thompson sampling on conversion."),
    interval_minutes: float = typer.Option(60.0, "--bandit-interval-minutes", help="How often the bandit "
                                                                                   "re-weights."),
    min_share: float = typer.Option(0.1, "--min-share", help="Each arm's floor under the bandit."),
    api_url: str | None = ApiUrlOption,
) -> None:
    """Start a model-against-model (or best-sellers) experiment: `/recommend` serves each customer their arm from
    the next request on. One runs at a time."""
    try:
        shares = [int(part) for part in split.split(",")] if split else None
    except ValueError as exc:
        raise typer.BadParameter(f"--split takes whole percents, e.g. 34,33,33: {exc}") from exc
    body = _call(get_settings(), "POST", "/ab/experiments", api_url, keyed=True,
                 body={"name": name, "arms": arms, "split": shares, "bandit": bandit,
                       "bandit_interval_minutes": interval_minutes, "min_share": min_share})
    typer.echo(f"{name} started; /recommend serves its arms now:")
    for arm in body["arms"]:
        typer.echo(f"  {arm['name']:<16} {arm['serves']:<34} {arm['percent']:>3}% of customers")


@app.command("list")
def list_command(api_url: str | None = ApiUrlOption) -> None:
    """Every experiment: running ones first, with their arms, start and exposed customers."""
    body = _call(get_settings(), "GET", "/ab/experiments", api_url)
    typer.echo(f"{'experiment':<32} {'state':<8} {'started':<20} {'ended':<20} exposed customers")
    for row in body["experiments"]:
        name = row["name"] + (" (live)" if row["live"] else "")
        typer.echo(f"{name:<32} {row['state']:<8} {row['started_at'][:19]:<20} {(row['ended_at'] or '')[:19]:<20} "
                   f"{row['exposed_customers']:,}")
        arms = ", ".join(f"{arm['name']}={arm['serves']} ({arm['percent']}%)" for arm in row["arms"])
        if arms:
            typer.echo(f"  arms: {arms}")
        if row["promoted"]:
            typer.echo(f"  promoted: {row['promoted']['arm']} ({row['promoted']['version']})")


@app.command("promote")
def promote_command(name: str = typer.Argument(..., help="The experiment."),
                    arm: str = typer.Argument(..., help="The arm whose model version becomes the current one."),
                    api_url: str | None = ApiUrlOption) -> None:
    """Make the model version an arm serves the current one (the experiment runs on until stopped)."""
    body = _call(get_settings(), "POST", f"/ab/experiments/{quote(name, safe='')}/promote", api_url, keyed=True,
                 body={"arm": arm})
    typer.echo(f"model {body['version']} (arm {arm} of {name}) is current now; it was {body['previous'] or 'none'}")


@app.command("stop")
def stop_command(name: str = typer.Argument(..., help="The experiment to end."),
                 api_url: str | None = ApiUrlOption) -> None:
    """End an experiment: the stream stops attributing to it, its final summary is kept and its per-customer
    keys are freed."""
    body = _call(get_settings(), "POST", f"/ab/experiments/{quote(name, safe='')}/stop", api_url, keyed=True)
    summary = body["summary"]
    if body["already_ended"]:
        typer.echo(f"{name} had already ended at {body['ended_at']}")
    else:
        typer.echo(f"{name} ended at {body['ended_at']}; {body['freed_keys']:,} keys freed")
    typer.echo(render_summary(summary))


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
    concentration: float = typer.Option(10.0, "--concentration", min=0.01,
                                        help="How alike customers are (their affinities' Beta concentration; "
                                             "smaller: more different, so their past predicts more)."),
    pre_weeks: int = typer.Option(4, "--pre-weeks", min=0, help="CUPED's pre-period: weekly purchase chances "
                                                                 "before a customer arrives."),
    seed: int = typer.Option(1, "--seed"),
    bandit: bool = typer.Option(True, "--bandit/--no-bandit",
                                help="Also run each effect with the guarded Thompson split: its regret and the "
                                     "error of its estimates."),
    out: Path = typer.Option(Path("artifacts/ab_simulation"), "--out", help="Folder for the table, JSON and plot."),
) -> None:
    """Many simulated experiments in which what is shown changes what is bought: the fixed-horizon and the
    always-valid tests, raw and with CUPED, checked after every day: their false positives (A/A), power, stopping
    day and coverage, and the variance CUPED removes."""
    try:
        planted = [float(e) for e in effects.split(",")]
        scenarios = [Scenario(runs=runs, days=days, customers_per_day=customers_per_day, base_rate=base_rate,
                              effect=effect, treatment_share=treatment_share, basket_mean=basket_mean, alpha=alpha,
                              min_effect=min_effect, concentration=concentration, pre_weeks=pre_weeks,
                              seed=seed + i) for i, effect in enumerate(planted)]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    bandits = [replace(s, split="thompson") for s in scenarios] if bandit else []
    outcomes: list[Outcome] = []
    with tqdm(total=days * (len(scenarios) + len(bandits)), unit="day", desc="simulating") as bar:
        for scenario in [*scenarios, *bandits]:
            outcomes.append(simulate(scenario, progress=lambda _day: bar.update(1)))
    fixed, thompson = outcomes[:len(scenarios)], outcomes[len(scenarios):]
    out.mkdir(parents=True, exist_ok=True)
    text = table(fixed) + "\n\nCUPED (each customer's pre-period spend as the covariate)\n\n" + cuped_table(fixed)
    if thompson:
        text += ("\n\nThe guarded Thompson split (re-weighted daily, at least a tenth per arm): conversions lost, and "
                 "the error of the estimated effect, plain and inverse-probability-weighted\n\n")
        text += regret_table(fixed, thompson)
    (out / "table.md").write_text(text + "\n")
    (out / "simulation.json").write_text(json.dumps([o.to_dict() for o in outcomes], indent=2))
    plot(fixed, out / "ab_simulation.png")
    typer.echo(text)
    typer.echo(f"\n{runs:,} runs x {days} days x {customers_per_day} customers/day per effect; "
               f"table, JSON and plot in {out}/")
