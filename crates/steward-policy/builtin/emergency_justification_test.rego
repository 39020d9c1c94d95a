package steward.rules.emergency_justification_test

import rego.v1

import data.steward.rules.emergency_justification as rule

emergency := {"classification": {"type": "emergency"}, "change": {"justification": "fraud losses spiking after v7 went live"}}

test_justified_emergency_passes_and_owes_a_review if {
	count(rule.deny) == 0 with input as emergency
	"post_implementation_review" in rule.obligations with input as emergency
}

test_thin_justification_is_denied if {
	count(rule.deny) == 1 with input as {"classification": {"type": "emergency"}, "change": {"justification": "urgent"}}
}

test_missing_justification_is_denied if {
	count(rule.deny) == 1 with input as {"classification": {"type": "emergency"}, "change": {"justification": null}}
}

test_normal_changes_owe_nothing if {
	count(rule.obligations) == 0 with input as {"classification": {"type": "normal"}, "change": {}}
}
