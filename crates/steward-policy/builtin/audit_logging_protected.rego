# No change may switch off, bypass or delete the audit trail.
package steward.rules.audit_logging_protected

import rego.v1

title := "No change may disable audit logging"

controls := ["SOX 404 ITGC logging", "GDPR Art. 30", "DPDPA 2023 §8(5)"]

# Verb before the object ("disable the audit log") or after it ("audit logging turned off").
# Matched against lower-cased text with ASCII classes (the engine's regexes have no \w or \b).
patterns := [
	`(^|[^a-z])(disabl[a-z]*|turn[a-z]* +off|switch[a-z]* +off|stop[a-z]*|remov[a-z]*|delet[a-z]*|truncat[a-z]*|purg[a-z]*|bypass[a-z]*|suspend[a-z]*|skip[a-z]*|mute[a-z]*)[^.\n]{0,60}audit[ _-]*(log|trail|event|record)`,
	`audit[ _-]*(log|trail|event|record)[^.\n]{0,40}[^a-z](disabled|off|stopped|removed|deleted|truncated|purged|bypassed|suspended)([^a-z]|$)`,
]

fields := ["title", "description", "implementation_plan"]

# Only text that mentions "audit" at all is worth the regular expressions.
hits := sort([f |
	some f in fields
	text := lower(input.change[f])
	contains(text, "audit")
	some p in patterns
	regex.match(p, text)
])

deny contains msg if {
	count(hits) > 0
	msg := sprintf("the change would disable or remove audit logging (see %s); audit logging must stay on", [concat(", ", hits)])
}

deny contains "the change's category says it disables audit logging" if {
	input.change.category in {"disable-audit-logging", "audit-logging-off"}
}

inputs := {"matched_fields": hits, "category": input.change.category}
