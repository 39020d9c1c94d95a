package steward.rules.sox_financial_cab_test

import rego.v1

import data.steward.rules.sox_financial_cab as rule

test_financial_target_needs_cab if {
	some a in rule.approvals with input as {"targets": [{"name": "ledger-forecast", "regulated": ["financial"]}]}
	a.role == "cab_member"
	contains(a.reason, "SOX 404")
}

test_other_targets_do_not if {
	count(rule.approvals) == 0 with input as {"targets": [{"name": "churn", "regulated": ["pii"]}]}
}
