# Changes to targets that process personal data need a compliance officer's approval.
package steward.rules.pii_compliance_approval

import rego.v1

title := "Changes touching personal data need compliance-officer approval"

controls := ["GDPR Art. 32", "DPDPA 2023 §8"]

approvals contains {
	"role": "compliance_officer",
	"reason": sprintf("touches personal data in %s (GDPR Art. 32, DPDPA §8)", [concat(", ", names)]),
} if {
	names := [t.name | some t in input.targets; "pii" in t.regulated]
	count(names) > 0
}

inputs := {"pii_targets": [t.name | some t in input.targets; "pii" in t.regulated]}
