package steward.rules.high_risk_rollback_test

import rego.v1

import data.steward.rules.high_risk_rollback as rule

base := {
	"now": "2026-11-23T10:00:00Z",
	"risk": {"level": "high", "score": 75},
	"change": {
		"rollback_plan": "set alias champion back to version 6 and verify traffic",
		"backup": {"reference": "snap-42", "verified_at": "2026-11-20T09:00:00Z"},
	},
}

test_high_risk_with_plan_and_verified_backup_passes if {
	count(rule.deny) == 0 with input as base
	count(rule.warn) == 0 with input as base
}

test_high_risk_without_backup_is_denied if {
	some msg in rule.deny with input as json.patch(base, [{"op": "replace", "path": "/change/backup", "value": null}])
	contains(msg, "backup.reference")
}

test_unverified_backup_is_denied if {
	inp := json.patch(base, [{"op": "remove", "path": "/change/backup/verified_at"}])
	some msg in rule.deny with input as inp
	contains(msg, "never been restored")
}

test_placeholder_rollback_plan_is_denied if {
	inp := json.patch(base, [{"op": "replace", "path": "/change/rollback_plan", "value": "N/A"}])
	some msg in rule.deny with input as inp
	contains(msg, "rollback plan")
}

test_stale_backup_warns if {
	inp := json.patch(base, [{"op": "replace", "path": "/change/backup/verified_at", "value": "2026-09-01T00:00:00Z"}])
	count(rule.deny) == 0 with input as inp
	some msg in rule.warn with input as inp
	contains(msg, "more than 30 days")
}

test_low_risk_needs_no_backup if {
	inp := json.patch(base, [{"op": "replace", "path": "/risk/level", "value": "low"}, {"op": "replace", "path": "/change/rollback_plan", "value": "n/a"}])
	count(rule.deny) == 0 with input as inp
}

test_null_verification_is_denied_as_the_server_sends_it if {
	inp := json.patch(base, [{"op": "replace", "path": "/change/backup/verified_at", "value": null}])
	some msg in rule.deny with input as inp
	contains(msg, "never been restored")
}
