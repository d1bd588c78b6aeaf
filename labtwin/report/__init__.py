"""Reports: executing notebooks, exporting them as offline slide decks, the headless demo.

The top layer: it may import everything below (description, scenarios, twin);
nothing imports it but the CLI.
"""
