"""Tests of one scenario, mirroring labtwin/scenarios/<name>/."""
