"""Every model the batch job fits, importable from one place (importing registers them for `Recommender.load`)."""

from batch.models.base import Recommender
from batch.models.ease import EaseRecommender
from batch.models.factors import AlsRecommender, NmfRecommender
from batch.models.hybrid import HybridRecommender
from batch.models.popularity import PopularityRecommender
from batch.models.repeat import RepeatRecommender
from batch.models.rules import RulesRecommender
from batch.models.tifu import TifuKnnRecommender

__all__ = [
    "AlsRecommender", "EaseRecommender", "HybridRecommender", "NmfRecommender", "PopularityRecommender",
    "Recommender", "RepeatRecommender", "RulesRecommender", "TifuKnnRecommender",
]
