from __future__ import annotations

import json
from pathlib import Path

import typer

from cli.errors import friendly_errors
from common.data import load_history, load_mapping
from common.data.report import render_summary, summarize
from common.data.synthetic import SyntheticSpec, write
from common.settings import get_settings

app = typer.Typer(help="Generate, inspect and load purchase histories.", no_args_is_help=True)

PresetOption = typer.Option("case_study", "--preset", help="Column mapping preset: case_study or uci.")
MappingOption = typer.Option(None, "--mapping", help="A TOML column-mapping file for any other schema.")
CustomersOption = typer.Option(None, "--customers", help="Customers table (default: the preset's file beside PATH).")


@app.command()
def generate(
    out: Path = typer.Option(None, "--out", help="Folder for the two CSVs (default: <data_dir>/synthetic)."),
    customers: int = typer.Option(5000, min=10),
    products: int = typer.Option(1000, min=10),
    lines: int = typer.Option(100_000, min=100),
    seed: int = typer.Option(42),
    popularity_exponent: float = typer.Option(1.05, min=0.0, help="Zipf exponent of product popularity (tail)."),
    staple_share: float = typer.Option(0.35, min=0.0, max=1.0, help="Share of basket slots from own staples."),
) -> None:
    """Write a seeded synthetic shop in the case study's schema (dataset_sample_1.csv, dataset_sample_2.csv) and
    its catalogue with product names (products.csv)."""
    folder = out or get_settings().data_dir / "synthetic"
    spec = SyntheticSpec(customers=customers, products=products, lines=lines, seed=seed,
                         popularity_exponent=popularity_exponent, staple_share=staple_share)
    written = write(spec, folder)
    typer.echo(f"wrote {', '.join(map(str, written))}")


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="Transactions file, or a folder with the preset's file names."),
    preset: str = PresetOption,
    mapping: Path | None = MappingOption,
    customers: Path | None = CustomersOption,
    report: Path | None = typer.Option(None, "--report", help="Also write the cleaning report + EDA as JSON."),
) -> None:
    """Load and clean a history; print the cleaning report (every removed row by reason) and EDA numbers."""
    with friendly_errors():
        loaded = load_history(path, load_mapping(preset, mapping), customers, get_settings().event_bounds)
    summary = summarize(loaded.lines)
    typer.echo(loaded.report.render())
    typer.echo("")
    typer.echo(render_summary(summary))
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps({"cleaning": loaded.report.to_dict(), "eda": summary}, indent=2))
        typer.echo(f"report written to {report}")
