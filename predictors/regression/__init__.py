"""The Baker-style regression predictor (entry point ``baker``), see :mod:`._baker`."""

from predictors.regression._baker import MODELS, BakerPredictor
from predictors.regression._features import CURVE_FEATURES, prefix_features

__all__ = ["CURVE_FEATURES", "MODELS", "BakerPredictor", "prefix_features"]
