# Changes should run inside their targets' maintenance windows; outside one is allowed but shown.
package steward.rules.maintenance_window

import rego.v1

title := "Changes run inside their targets' maintenance windows"

controls := ["ITIL change scheduling"]

warn contains msg if {
	count(input.schedule.outside_maintenance) > 0
	msg := sprintf("the change window is outside the maintenance windows of %s", [concat(", ", input.schedule.outside_maintenance)])
}

warn contains "the change has no window, so freezes and maintenance windows cannot be checked until it is scheduled" if {
	input.stage == "submission"
	input.classification.type != "standard"
	input.change.window == null
}

inputs := {"window": input.change.window, "outside_maintenance": object.get(input.schedule, "outside_maintenance", [])}
