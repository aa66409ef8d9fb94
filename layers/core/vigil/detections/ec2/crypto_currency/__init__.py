"""EC2 finding types: crypto_currency."""
