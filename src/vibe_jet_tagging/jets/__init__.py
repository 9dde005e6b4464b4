"""Jets and where they come from: :class:`Jet`, data sets, files, prompt formats, generation.

- :mod:`.jet`: one jet (validated, pt-sorted, content key) and its observables;
- :mod:`.dataset`: :class:`JetDataset` (lazy views over files or arrays), the bundled sample;
- :mod:`.sources`, :mod:`.npz`: EnergyFlow ``.npz`` files read with bounded memory;
- :mod:`.formats`: a jet rendered as prompt text (:class:`JetFormat`);
- :mod:`.generate`: Pythia 8 + FastJet generation (the ``generate`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._imports import lazy_exports

_EXPORTS = {
    "Jet": "jet",
    "JetDataset": "dataset",
    "JetFormat": "formats",
    "OBSERVABLES": "jet",
    "PHI": "jet",
    "PID": "jet",
    "PT": "jet",
    "Y": "jet",
    "JetLike": "jet",
    "wrap_phi": "jet",
    "jet_observables": "jet",
    "load_jets": "dataset",
    "load_sample": "dataset",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())  # names imported on first use


if TYPE_CHECKING:
    from .dataset import JetDataset, load_jets, load_sample
    from .formats import JetFormat
    from .jet import OBSERVABLES, PHI, PID, PT, Jet, JetLike, Y, jet_observables, wrap_phi
