"""The Keras front end: ``.keras`` archives and legacy Keras ``.h5`` files, read without keras,
tensorflow or jax.

A model's configuration is JSON (``config.json`` in the zip, the ``model_config`` attribute of
the HDF5 file); nothing in it is deserialised into Python objects, so a ``Lambda`` layer's
marshalled bytecode is text that never runs and a custom class is a name that is never
imported.  Weights are read with h5py (``pip install 'deconvlint[keras]'``) only when a rule
asks for a layer's variables.

- :mod:`~deconvlint.frontends.keras.model_json`: the configuration's JSON, bounded;
- :mod:`~deconvlint.frontends.keras.archive`: the ``.keras`` zip (its members, bounded);
- :mod:`~deconvlint.frontends.keras.h5`: HDF5 through h5py, hostile-safe (no link out of the
  file, no virtual or external dataset, bounded reads): the legacy ``.h5`` model and the
  archive's ``model.weights.h5``;
- :mod:`~deconvlint.frontends.keras.reader`: a path in, its configuration and variables out.
"""
