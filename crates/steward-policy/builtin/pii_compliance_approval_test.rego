package steward.rules.pii_compliance_approval_test

import rego.v1

import data.steward.rules.pii_compliance_approval as rule

test_pii_target_needs_compliance_officer if {
	inp := {"targets": [{"name": "churn-model", "regulated": ["pii"]}, {"name": "gpu-a", "regulated": []}]}
	some a in rule.approvals with input as inp
	a.role == "compliance_officer"
	contains(a.reason, "churn-model")
	not contains(a.reason, "gpu-a")
}

test_no_pii_adds_nothing if {
	count(rule.approvals) == 0 with input as {"targets": [{"name": "gpu-a", "regulated": ["financial"]}]}
}
