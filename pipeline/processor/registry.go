package processor

// registry lists every processor by its config name. Adding a processor
// means one line here.
func registry() map[string]constructor {
	return map[string]constructor{
		"add_fields":        newAddFields,
		"add_host_metadata": newAddHostMetadata,
		"drop_event":        newDropEvent,
		"drop_fields":       newDropFields,
		"include_fields":    newIncludeFields,
		"rename":            newRename,
	}
}
