"""Small, faithful PyTorch versions of published architectures, for the acceptance tests."""
