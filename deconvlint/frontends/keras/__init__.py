"""The Keras front end: a Keras model configuration (and its saved variables) to the IR."""
