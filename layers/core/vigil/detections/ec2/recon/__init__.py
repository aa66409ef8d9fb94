"""EC2 finding types: recon."""
