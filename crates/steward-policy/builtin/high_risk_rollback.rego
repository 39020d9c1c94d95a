# High-risk changes need a real rollback plan and a backup or snapshot that a restore has proven.
# (Written with few helper rules: each one referenced costs the interpreter a lookup per query.)
package steward.rules.high_risk_rollback

import rego.v1

title := "High-risk changes need a rollback plan and a verified backup"

controls := ["SOX 404 ITGC change management", "ISO/IEC 27001 A.8.13 backup"]

# Placeholders such as "n/a", "none", "tbd" or "no rollback" are all shorter than this.
deny contains "a high-risk change needs a real rollback plan: say what to run, in what order, to undo it" if {
	input.risk.level == "high"
	count(trim_space(input.change.rollback_plan)) < 15
}

deny contains "a high-risk change needs a backup or snapshot to restore from: set backup.reference" if {
	input.risk.level == "high"
	not input.change.backup.reference
}

# `verified_at` is null when absent, and `not null` does not hold in Rego: test for a string.
deny contains msg if {
	input.risk.level == "high"
	reference := input.change.backup.reference
	not is_string(input.change.backup.verified_at)
	msg := sprintf("backup %s has never been restored: test a restore and set backup.verified_at", [reference])
}

# 30 days, in nanoseconds.
warn contains msg if {
	input.risk.level == "high"
	verified := input.change.backup.verified_at
	is_string(verified)
	time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(verified) > 2592000000000000
	msg := sprintf("backup %s was last verified more than 30 days ago (%s)", [input.change.backup.reference, verified])
}

inputs := {
	"risk_level": input.risk.level,
	"risk_score": input.risk.score,
	"rollback_plan_chars": count(trim_space(input.change.rollback_plan)),
	"backup": object.get(input.change, "backup", null),
}
