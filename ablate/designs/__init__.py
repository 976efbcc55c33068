"""Designs beyond the full factorial: which cells of the grid a study trains, and what they
can estimate.

- :mod:`~ablate.designs.build`: a study's runs, stage by stage (base design, fold-overs,
  augmentations);
- :mod:`~ablate.designs.fractional`: regular fractions 2^(k−p) and fold-overs (pydoe);
- :mod:`~ablate.designs.screening`: Plackett–Burman and definitive screening designs (pydoe);
- :mod:`~ablate.designs.optimal`: D-optimal designs and their augmentation (pydoe);
- :mod:`~ablate.designs.relation`: the defining relation of two-level runs, over GF(2);
- :mod:`~ablate.designs.aliases`: what any runs can estimate, alias chains and matrices;
- :mod:`~ablate.designs.matrix`: model matrices (codings, terms) for the analysis and aliases.

Pure computation (NumPy, pandas, pydoe): no Keras.
"""
