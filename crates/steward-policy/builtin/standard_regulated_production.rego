# A standard (pre-approved) change may not touch production targets holding regulated data,
# unless the catalog item it uses was deliberately opened up for that.
package steward.rules.standard_regulated_production

import rego.v1

title := "Standard changes stay away from regulated production data"

controls := ["SOX 404 ITGC change management", "GDPR Art. 32"]

regulated_production := sort([t.name |
	some t in input.targets
	t.environment == "production"
	count(t.regulated) > 0
])

allowed if input.catalog_item.allow_regulated_production == true

deny contains msg if {
	input.classification.type == "standard"
	count(regulated_production) > 0
	not allowed
	msg := sprintf("standard change touches regulated production data in %s, which its catalog item does not allow: submit it as a normal change", [concat(", ", regulated_production)])
}

inputs := {
	"type": input.classification.type,
	"regulated_production_targets": regulated_production,
	"catalog_item": catalog_name,
}

catalog_name := n if n := input.catalog_item.name
else := null
