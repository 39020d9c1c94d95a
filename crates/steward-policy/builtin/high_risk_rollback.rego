# High-risk changes need a real rollback plan and a backup or snapshot that a restore has proven.
package steward.rules.high_risk_rollback

import rego.v1

title := "High-risk changes need a rollback plan and a verified backup"

controls := ["SOX 404 ITGC change management", "ISO/IEC 27001 A.8.13 backup"]

high_risk if input.risk.level == "high"

placeholders := {"", "-", "n/a", "na", "none", "tbd", "todo", "no rollback", "not possible"}

plan := trim_space(lower(object.get(input.change, "rollback_plan", "")))

plan_missing if plan in placeholders

plan_missing if count(plan) < 15

backup := object.get(input.change, "backup", null)

deny contains "a high-risk change needs a real rollback plan: say what to run, in what order, to undo it" if {
	high_risk
	plan_missing
}

deny contains "a high-risk change needs a backup or snapshot to restore from: set backup.reference" if {
	high_risk
	not backup.reference
}

deny contains msg if {
	high_risk
	backup.reference
	not backup.verified_at
	msg := sprintf("backup %s has never been restored: test a restore and set backup.verified_at", [backup.reference])
}

warn contains msg if {
	high_risk
	age_ns := time.parse_rfc3339_ns(input.now) - time.parse_rfc3339_ns(backup.verified_at)
	age_ns > ((30 * 24) * 3600) * 1000000000
	msg := sprintf("backup %s was last verified more than 30 days ago (%s)", [backup.reference, backup.verified_at])
}

inputs := {
	"risk_level": input.risk.level,
	"risk_score": input.risk.score,
	"rollback_plan_chars": count(plan),
	"backup": backup,
}
