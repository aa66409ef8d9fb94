"""One module per detection, grouped by GuardDuty threat purpose; discovered by vigil.registry."""
