"""EC2 finding types: unauthorized_access."""
