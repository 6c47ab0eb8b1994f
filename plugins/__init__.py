"""Built-in plugins: each registers through the ech_gateway entry-point group."""
