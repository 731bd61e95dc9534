from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import ApiKeyChecked, State
from api.schemas import (
    AbSummary,
    AbTimeline,
    ArmPromoted,
    ExperimentInfo,
    Experiments,
    ExperimentStopped,
    Problem,
    PromoteArm,
    StartExperiment,
)
from api.services.ab import (
    BadPlan,
    ExperimentConflict,
    UnknownExperiment,
    list_experiments,
    read_summary,
    read_timeline,
    started_info,
)
from api.services.ab_lifecycle import promote, start_experiment, stop_experiment
from common.events import EXPERIMENT_PATTERN

router = APIRouter(tags=["ab"])
ExperimentQuery = Annotated[str | None, Query(
    pattern=EXPERIMENT_PATTERN,
    description="Which experiment (default: the live one: the running managed experiment, else RECSYS_AB_EXPERIMENT).")]
ExperimentPath = Annotated[str, Path(pattern=EXPERIMENT_PATTERN)]


@router.get("/ab/experiments", response_model=Experiments)
async def ab_experiments(state: State) -> Experiments:
    """Every experiment started or seen by the stream, with its arms, start and state, and the live one (the running
    managed experiment, else the settings')."""
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


KEYED: dict[int | str, dict[str, object]] = {
    401: {"model": Problem, "description": "no or wrong X-API-Key"},
    403: {"model": Problem, "description": "no API key configured"}}


@router.post("/ab/experiments", response_model=ExperimentInfo, status_code=201,
             responses={**KEYED, 409: {"model": Problem, "description": "another experiment runs, the name was used, "
                                                                          "or a pinned version is not published"},
                        422: {"model": Problem, "description": "the arms or split do not make an experiment"}})
async def ab_start(state: State, request: StartExperiment, _key: ApiKeyChecked) -> ExperimentInfo:
    """Start a managed experiment: from the next request on, `/recommend` assigns each customer (sticky, by a
    hash of the experiment and their id) to one of its arms by the split, serves that arm's best-sellers or model
    version, and logs the exposure in it. One runs at a time; the settings' experiment resumes when it stops."""
    try:
        return started_info(await start_experiment(state, request))
    except BadPlan as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    except ExperimentConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.post("/ab/experiments/{experiment}/promote", response_model=ArmPromoted,
             responses={**KEYED, 404: {"model": Problem, "description": "no such managed experiment or arm"},
                        409: {"model": Problem, "description": "the arm has no published model version"}})
async def ab_promote(state: State, experiment: ExperimentPath, request: PromoteArm,
                     _key: ApiKeyChecked) -> ArmPromoted:
    """Make the model version an arm serves the `current` one (atomically, like a publish's flip)."""
    try:
        return await promote(state, experiment, request.arm)
    except UnknownExperiment as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ExperimentConflict as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc


@router.post("/ab/experiments/{experiment}/stop", response_model=ExperimentStopped,
             responses={**KEYED, 404: {"model": Problem, "description": "no such running or ended experiment"}})
async def ab_stop(state: State, experiment: ExperimentPath, _key: ApiKeyChecked) -> ExperimentStopped:
    """End an experiment: the stream stops attributing purchases to it and takes no more of its exposures
    (`/recommend` goes back to the settings' experiment if it was the live one), its final summary and timeline
    are kept (GET /ab/summary still answers), and its per-customer keys are freed.
    Stopping an ended experiment changes nothing and returns the kept summary."""
    try:
        return await stop_experiment(state, experiment)
    except UnknownExperiment as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
