"""Every value of the CIFAR10 and ImageNet recipes names its source,
read from the settings that actually run."""

import dataclasses

import pytest
from conftest import table_rows

from aninfonce.analyses import recipes
from aninfonce.specs import ImageSSLSpec


@pytest.mark.parametrize("entry", sorted(recipes.SOURCES))
def test_every_recipe_value_has_a_source_and_no_source_is_orphaned(entry):
    values = recipes.recipe(entry, recipes.PROFILE_SETTINGS[entry]["paper"])
    assert set(values) == set(recipes.SOURCES[entry])
    assert all(origin and note for origin, note in recipes.SOURCES[entry].values())
    table = recipes.recipe_table(entry, recipes.PROFILE_SETTINGS[entry]["paper"], "quick")
    assert "no source recorded" not in table and table.count("\n| `") == len(values)


def test_the_table_shows_the_values_that_run():
    settings = dict(recipes.PROFILE_SETTINGS["cifar10-table"]["paper"], lr=0.123)
    table = recipes.recipe_table("cifar10-table", settings, "paper")
    values = {row[0]: row[1] for row in table_rows(table)}
    assert values["`lr`"] == "0.123"
    assert values["`augment.saturation`"] == "0.4"  # SimCLR's CIFAR-10 strength 0.5, not solo-learn's 0.8


def test_every_paper_setting_of_the_tables_is_part_of_the_recipe():
    """A setting added to a paper profile must get a source here."""
    plumbing = {"dataset", "augment", "image_size", "synthetic_files", "num_workers", "log_every", "train_limit",
                "steps_per_epoch_limit", "amp", "augment_on"}  # augment_on: where the same ops run
    for entry in recipes.SOURCES:
        assert set(recipes.PROFILE_SETTINGS[entry]["paper"]) - plumbing <= set(recipes.RECIPE_FIELDS)
    spec_fields = {f.name for f in dataclasses.fields(ImageSSLSpec)}
    assert set(recipes.RECIPE_FIELDS) <= spec_fields
