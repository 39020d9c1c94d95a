package steward.rules.audit_logging_protected_test

import rego.v1

import data.steward.rules.audit_logging_protected as rule

change(plan) := {"change": {"title": "Tune scoring service", "description": "Performance work", "category": "config", "implementation_plan": plan}}

test_disabling_the_audit_log_is_denied if {
	some msg in rule.deny with input as change("Disable the audit log on scoring-api to cut latency")
	contains(msg, "implementation_plan")
}

test_object_before_verb_is_denied if {
	count(rule.deny) == 1 with input as change("Set audit_logging turned off in values.yaml; audit logging disabled until Friday")
}

test_truncating_audit_events_is_denied if {
	count(rule.deny) == 1 with input as change("truncate audit_events to free disk")
}

test_mentioning_audit_logs_harmlessly_passes if {
	count(rule.deny) == 0 with input as change("Deploy v7; check the audit log shows the alias move")
}

test_category_is_denied if {
	inp := {"change": {"title": "x", "description": "y", "implementation_plan": "z", "category": "disable-audit-logging"}}
	count(rule.deny) == 1 with input as inp
}
