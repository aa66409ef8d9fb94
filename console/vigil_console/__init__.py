"""`vigil console`: a web console on loopback over the same core and adapters as the CLI."""
