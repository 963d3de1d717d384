"""Feast definitions for the ``feast`` CLI: the objects of :mod:`flowsense.serving` for ``$FLOWSENSE_HOME``.

Only definitions live in this folder (``feast apply`` imports every ``.py`` here). The objects are built by
:func:`flowsense.serving.build_definitions`, exactly as the programmatic ``flowsense.serving.apply`` does,
so the CLI and the code register the same entity, views and feature service.
"""

import os

from flowsense.config import Settings
from flowsense.serving import build_definitions

_home = os.environ.get("FLOWSENSE_HOME", "")
if not os.path.isabs(_home):
    raise RuntimeError(
        "set FLOWSENSE_HOME to an absolute path before running feast (feature_store.yaml substitutes it, "
        f"and `feast -c` changes the working directory); got {_home!r}"
    )

_defs = build_definitions(Settings.from_env())

symbol = _defs.entity
features_1s_source = _defs.sources["features_1s"]
features_1min_source = _defs.sources["features_1min"]
features_1s = _defs.views["features_1s"]
features_1min = _defs.views["features_1min"]
flowsense_bars = _defs.services["flowsense_bars"]
