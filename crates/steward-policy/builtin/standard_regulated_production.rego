# A standard (pre-approved) change may not touch production targets holding regulated data,
# unless the catalog item it uses was deliberately opened up for that.
package steward.rules.standard_regulated_production

import rego.v1

title := "Standard changes stay away from regulated production data"

controls := ["SOX 404 ITGC change management", "GDPR Art. 32"]

deny contains msg if {
	input.classification.type == "standard"
	names := [t.name | some t in input.targets; t.environment == "production"; count(t.regulated) > 0]
	count(names) > 0
	not input.catalog_item.allow_regulated_production
	msg := sprintf("standard change touches regulated production data in %s, which its catalog item does not allow: submit it as a normal change", [concat(", ", names)])
}

inputs := {
	"type": input.classification.type,
	"regulated_production_targets": [t.name | some t in input.targets; t.environment == "production"; count(t.regulated) > 0],
	"catalog_item": [name | name := input.catalog_item.name],
}
