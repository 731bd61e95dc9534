from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import ApiKeyChecked, State
from api.schemas import AbSummary, AbTimeline, Experiments, ExperimentStopped, Problem
from api.services.ab import UnknownExperiment, list_experiments, read_summary, read_timeline, stop_experiment
from common.events import EXPERIMENT_PATTERN

router = APIRouter(tags=["ab"])
ExperimentQuery = Annotated[str | None, Query(
    pattern=EXPERIMENT_PATTERN, description="Which experiment (default: the live one, RECSYS_AB_EXPERIMENT).")]
ExperimentPath = Annotated[str, Path(pattern=EXPERIMENT_PATTERN)]


@router.get("/ab/experiments", response_model=Experiments)
async def ab_experiments(state: State) -> Experiments:
    """Every experiment the stream has seen an exposure of, with its start (newest first), and the live one."""
    return await list_experiments(state)


@router.get("/ab/summary", response_model=AbSummary)
async def ab_summary(state: State, experiment: ExperimentQuery = None) -> AbSummary:
    """Per group: exposed and converted customers, attributed revenue. For conversion and revenue per exposed
    customer: the always-valid p-value, interval and decision (keep running / stop), and the fixed-horizon z-test,
    labelled as such. The sample-ratio-mismatch check."""
    try:
        return await read_summary(state, experiment)
    except UnknownExperiment as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get("/ab/timeline", response_model=AbTimeline)
async def ab_timeline(state: State, experiment: ExperimentQuery = None) -> AbTimeline:
    """Conversion per group over the experiment's days (cumulative customers exposed and converted, each counted
    on the day of their first exposure / first conversion), the rate and its 95% interval, and the uplift with
    its always-valid interval day by day."""
    try:
        return await read_timeline(state, experiment)
    except UnknownExperiment as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.post("/ab/experiments/{experiment}/stop", response_model=ExperimentStopped,
             responses={401: {"model": Problem, "description": "no or wrong X-API-Key"},
                        403: {"model": Problem, "description": "no API key configured"},
                        404: {"model": Problem, "description": "no such running or ended experiment"}})
async def ab_stop(state: State, experiment: ExperimentPath, _key: ApiKeyChecked) -> ExperimentStopped:
    """End an experiment: the stream stops attributing purchases to it and takes no more of its exposures, its
    final summary and timeline are kept (GET /ab/summary still answers), and its per-customer keys are freed.
    Stopping an ended experiment changes nothing and returns the kept summary."""
    try:
        return await stop_experiment(state, experiment)
    except UnknownExperiment as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
