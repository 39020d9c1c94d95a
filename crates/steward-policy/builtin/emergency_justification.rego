# Emergency changes skip the queue, so they must say why and be reviewed afterwards.
package steward.rules.emergency_justification

import rego.v1

title := "Emergency changes carry a justification and owe a post-implementation review"

controls := ["SOX 404 ITGC change management", "ITIL emergency change"]

emergency if input.classification.type == "emergency"

raw_justification := j if {
	j := input.change.justification
	is_string(j)
} else := ""

justification := trim_space(raw_justification)

deny contains "an emergency change must say why it cannot wait: write a justification of at least 20 characters" if {
	emergency
	count(justification) < 20
}

obligations contains "post_implementation_review" if emergency

inputs := {"type": input.classification.type, "justification_chars": count(justification)}
