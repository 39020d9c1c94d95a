package steward.rules.maintenance_window_test

import rego.v1

import data.steward.rules.maintenance_window as rule

window := {"start": "2026-12-01T22:00:00Z", "end": "2026-12-01T23:00:00Z"}

test_outside_maintenance_warns_without_denying if {
	inp := {"stage": "submission", "classification": {"type": "normal"}, "change": {"window": window}, "schedule": {"outside_maintenance": ["fraud-scoring"]}}
	some msg in rule.warn with input as inp
	contains(msg, "fraud-scoring")
}

test_inside_maintenance_is_quiet if {
	inp := {"stage": "submission", "classification": {"type": "normal"}, "change": {"window": window}, "schedule": {"outside_maintenance": []}}
	count(rule.warn) == 0 with input as inp
}

test_no_window_warns if {
	inp := {"stage": "submission", "classification": {"type": "normal"}, "change": {"window": null}, "schedule": {"outside_maintenance": []}}
	count(rule.warn) == 1 with input as inp
}
