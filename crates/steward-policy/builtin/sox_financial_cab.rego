# Changes to models and systems behind financial reporting go to the change advisory board.
package steward.rules.sox_financial_cab

import rego.v1

title := "Financial-reporting models need CAB review"

controls := ["SOX 404 ITGC change management"]

approvals contains {
	"role": "cab_member",
	"reason": sprintf("affects financial reporting through %s (SOX 404)", [concat(", ", names)]),
} if {
	names := [t.name | some t in input.targets; "financial" in t.regulated]
	count(names) > 0
}

inputs := {"financial_targets": [t.name | some t in input.targets; "financial" in t.regulated]}
