"""Doctests of the plotting module need matplotlib (an optional extra, in the
``test`` extra): without it they are skipped, not failed."""

import importlib.util

import pytest


def pytest_collection_modifyitems(config, items):
    if importlib.util.find_spec("matplotlib") is not None:
        return
    skip = pytest.mark.skip(reason="matplotlib is not installed (plot extra)")
    for item in items:
        if isinstance(item, pytest.DoctestItem) and \
                item.name.startswith("skminibatch._display."):
            item.add_marker(skip)
