# Emergency changes skip the queue, so they must say why and be reviewed afterwards.
package steward.rules.emergency_justification

import rego.v1

title := "Emergency changes carry a justification and owe a post-implementation review"

controls := ["SOX 404 ITGC change management", "ITIL emergency change"]

deny contains "an emergency change must say why it cannot wait: write a justification of at least 20 characters" if {
	input.classification.type == "emergency"
	not justified
}

justified if {
	is_string(input.change.justification)
	count(trim_space(input.change.justification)) >= 20
}

obligations contains "post_implementation_review" if input.classification.type == "emergency"

inputs := {
	"type": input.classification.type,
	"justification_chars": count(trim_space(concat("", [j | j := input.change.justification; is_string(j)]))),
}
