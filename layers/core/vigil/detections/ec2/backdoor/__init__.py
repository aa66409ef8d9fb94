"""EC2 finding types: backdoor."""
