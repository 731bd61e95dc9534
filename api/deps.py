"""Dependencies as Annotated aliases (one place to see what a route can use)."""

from __future__ import annotations

from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Path, Query, Request

from api.state import ApiState
from common.keys import KeyLayout
from common.settings import Settings

ID_PATTERN = r"^[A-Za-z0-9_.\-]+$"


def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]


def get_redis(state: State) -> aioredis.Redis:
    return state.redis


def get_keys(state: State) -> KeyLayout:
    return state.keys


def get_settings(state: State) -> Settings:
    return state.settings


RedisDep = Annotated[aioredis.Redis, Depends(get_redis)]
KeysDep = Annotated[KeyLayout, Depends(get_keys)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CustomerIdQuery = Annotated[str, Query(min_length=1, max_length=64, pattern=ID_PATTERN,
                                       description="Customer id: letters, digits, '_', '.', '-'; 1..64 chars.")]
CustomerIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
ProductIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=ID_PATTERN)]
TopK = Annotated[int, Query(ge=1, le=100, description="How many products, 1..100.")]
