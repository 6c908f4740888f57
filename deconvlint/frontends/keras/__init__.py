"""The Keras front end: ``.keras`` archives and legacy Keras ``.h5`` files to the IR, read
without keras, tensorflow or jax.

A model's configuration is JSON (``config.json`` in the zip, the ``model_config`` attribute of
the HDF5 file); nothing in it is deserialised into Python objects, so a ``Lambda`` layer's
marshalled bytecode is text that never runs and a custom class is a name that is never
imported.  Weights are read with h5py (``pip install 'deconvlint[keras]'``), in a worker
process, only when a rule asks for a layer's variables.

- :mod:`~deconvlint.frontends.keras.reader`: a path in, its configuration, variables and graph
  out;
- :mod:`~deconvlint.frontends.keras.model_json`: the configuration's JSON, bounded;
- :mod:`~deconvlint.frontends.keras.archive`: the ``.keras`` zip (its members, bounded);
- :mod:`~deconvlint.frontends.keras.graph`: a configuration (and its saved variables) to the
  IR, with Keras semantics (its layers in ``layers.py``, ``table.py`` and ``kernels.py``);
- :mod:`~deconvlint.frontends.keras.variables`, ``layouts.py``, ``worker.py`` and ``h5.py``:
  a layer's variables, read through h5py in a forked worker, hostile-safe (no link out of the
  file, no virtual or external dataset, no filter plugin, bounded sizes and time).
"""
