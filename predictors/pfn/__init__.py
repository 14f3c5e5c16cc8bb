"""The ``pfn`` learning-curve predictor: a prior-data fitted transformer (LC-PFN style).

Public: :class:`PFNPredictor` (entry point ``pfn`` in ``nas.predictors``) and
:class:`StudyPFNPredictor` (``pfn-study``: the same weights reading the study as context).  The building blocks
live in submodules that import torch: :mod:`predictors.pfn.prior` (the curve prior),
:mod:`predictors.pfn.model` (the network) and :mod:`predictors.pfn.train` (training and
checkpoints, used by ``nas pfn train``).  Importing this package does not import torch.
"""

from predictors.pfn._predictor import PFNPredictor, StudyPFNPredictor, default_weights_dir

__all__ = ["PFNPredictor", "StudyPFNPredictor", "default_weights_dir"]
