"""Learning-curve predictors for nas: ``regression`` (Baker et al. 2017) and ``pfn`` (LC-PFN style).

Every predictor implements :class:`nas.interfaces.LearningCurvePredictor` and returns one of the
batched forecasts of this package (see :mod:`predictors._forecast`).  The engine finds predictors
through the ``nas.predictors`` entry points; importing this package stays light (numpy/scipy).
"""

from predictors._forecast import (
    CensoredMixtureForecast,
    HistogramForecast,
    concat_forecasts,
    take_rows,
)

__all__ = ["CensoredMixtureForecast", "HistogramForecast", "concat_forecasts", "take_rows"]
