"""Tests of the scenarios, one folder each (labtwin/scenarios/<name>/)."""
