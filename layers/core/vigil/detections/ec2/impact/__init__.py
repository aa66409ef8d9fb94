"""EC2 finding types: impact."""
