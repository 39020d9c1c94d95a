package steward.rules.standard_regulated_production_test

import rego.v1

import data.steward.rules.standard_regulated_production as rule

prod_pii := {"name": "churn", "environment": "production", "regulated": ["pii"]}

test_standard_change_on_regulated_production_is_denied if {
	inp := {"classification": {"type": "standard"}, "targets": [prod_pii], "catalog_item": {"name": "model-retrain", "allow_regulated_production": false}}
	some msg in rule.deny with input as inp
	contains(msg, "churn")
}

test_catalog_item_that_allows_it_passes if {
	inp := {"classification": {"type": "standard"}, "targets": [prod_pii], "catalog_item": {"name": "vetted", "allow_regulated_production": true}}
	count(rule.deny) == 0 with input as inp
}

test_normal_change_passes if {
	count(rule.deny) == 0 with input as {"classification": {"type": "normal"}, "targets": [prod_pii], "catalog_item": null}
}

test_staging_is_fine if {
	inp := {"classification": {"type": "standard"}, "targets": [{"name": "churn", "environment": "staging", "regulated": ["pii"]}], "catalog_item": null}
	count(rule.deny) == 0 with input as inp
}
