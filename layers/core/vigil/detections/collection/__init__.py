"""Vigil-specific threat purposes (GuardDuty has none of these runtime types; docs/detections.md)."""
