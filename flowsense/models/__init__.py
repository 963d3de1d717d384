"""Learned direction models, honest targets and walk-forward evaluation (no heavy imports here).

* :mod:`~flowsense.models.targets` - ``next_move`` and fixed-horizon direction targets;
* :mod:`~flowsense.models.base` - the one ``fit``/``p_up``/``predict_proba``/``save``/``load`` shape;
* :mod:`~flowsense.models.baselines` - ``majority``, ``ofi_sign``, ``qi_sign``, ``logit_ofi``;
* :mod:`~flowsense.models.xgb`, ``hawkes``, ``transformer``, ``graph``, ``ensemble`` - the models;
  :mod:`~flowsense.models.hmm` - causally filtered regimes (``regimes`` table);
* :mod:`~flowsense.models.dataset` - model inputs from the lake; :mod:`~flowsense.models.folds` - purged,
  embargoed walk-forward folds; :mod:`~flowsense.models.evaluate` - the evaluation rows;
* :mod:`~flowsense.models.registry`, :mod:`~flowsense.models.dataversion` - MLflow and DVC (``mlops``).
"""
