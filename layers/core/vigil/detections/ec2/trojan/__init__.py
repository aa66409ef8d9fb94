"""EC2 finding types: trojan."""
