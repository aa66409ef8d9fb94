"""EC2 finding types: defense_evasion."""
